//! A WebSocket opening handshake for a non-blocking application: validated here (a bad
//! one is answered `400`, or `426` with `Sec-WebSocket-Version: 13`, before the application
//! sees it), then offered to the application, whose answer is a `101` and a hand-off to the
//! WebSocket session ([`crate::websocket`]), a `403` (closed before accepting)
//! or a `500` (it failed).

use ironhorse_app::{WsAppEvent, WsExchange};
use ironhorse_h1::{Failure, RequestHead};
use ironhorse_ws::handshake::{self, Offer};

use super::{Busy, HttpSession, HIGH_WATER};
use crate::output::Output;
use crate::session::Step;
use crate::websocket::{Heartbeat, WebSocketSession};

impl HttpSession {
    /// Whether `head` asks for a WebSocket that the application would take.
    pub(super) fn is_websocket_for_app(&self, head: &RequestHead) -> bool {
        head.has_upgrade()
            && handshake::is_upgrade_request(head)
            && self.service.hosts_websockets(head)
    }

    /// Validates the handshake and starts the application's side.
    pub(super) fn start_websocket(&mut self, head: RequestHead, out: &mut Output) -> Step {
        let offer = match handshake::validate(&head) {
            Ok(offer) => offer,
            Err(error) => {
                let headers = error
                    .headers()
                    .into_iter()
                    .map(|(n, v)| (std::borrow::Cow::Owned(n), v))
                    .collect();
                let body = format!("{error}\n").into_bytes();
                self.refuse(error.status(), headers, body, out);
                return Step::Close;
            }
        };
        let waker = self.waker.clone();
        let started = self
            .service
            .start_websocket(&head, &self.info, &offer.protocols, waker);
        let Some(exchange) = started else {
            self.refuse(503, Vec::new(), b"Service Unavailable\n".to_vec(), out);
            return Step::Close;
        };
        self.timer = self.request_timer(false);
        self.busy = Busy::WsHandshake {
            exchange: Some(exchange),
            offer: Box::new(offer),
        };
        let _: Option<&Offer> = None;
        Step::Pending
    }

    /// Waits for the application's answer to the handshake: an accept, a refusal, or a
    /// denial response of its own (streamed, then the connection closes).
    pub(super) fn pump_ws_handshake(&mut self, out: &mut Output) -> Option<Step> {
        if self.timer.as_ref().is_some_and(|t| t.timed_out()) {
            return Some(self.time_out(out));
        }
        loop {
            let Busy::WsHandshake { exchange, offer } = &mut self.busy else {
                return None;
            };
            let app = exchange.as_mut()?;
            let event = match app.next_event() {
                Some(event) => event,
                None if self.conn.input_ended() => {
                    app.disconnect(1006, "");
                    self.busy = Busy::Idle;
                    return Some(Step::Close);
                }
                None if !out.is_empty() => return Some(Step::Flush),
                None => return Some(Step::Read),
            };
            match event {
                WsAppEvent::Accept {
                    subprotocol,
                    headers,
                } => {
                    // The handshake's own fields are the server's: an app's copies would
                    // repeat them (a second Sec-WebSocket-Accept fails the client). A
                    // subprotocol named as a header instead of with `subprotocol` counts.
                    let (handshake, headers): (Vec<_>, Vec<_>) = headers
                        .into_iter()
                        .partition(|(name, _)| is_handshake_field(name));
                    let subprotocol = subprotocol.or_else(|| {
                        handshake
                            .iter()
                            .find(|(name, _)| name.eq_ignore_ascii_case("sec-websocket-protocol"))
                            .and_then(|(_, value)| String::from_utf8(value.clone()).ok())
                    });
                    if let Some(p) = subprotocol.as_deref() {
                        if !handshake::is_offered(offer, p) {
                            self.link.hooks.log(
                                crate::hooks::Level::Warning,
                                format_args!("websocket.accept named subprotocol {p:?}, which the client did not offer: accepted without it (RFC 6455 §4.2.2)"),
                            );
                        }
                    }
                    let (mut answer, deflate) = handshake::accept(
                        offer,
                        subprotocol.as_deref(),
                        &self.settings.ws_config(),
                    );
                    answer.extend(headers.into_iter().map(|(n, v)| (n.into_owned(), v)));
                    let app = exchange.take()?;
                    return Some(self.switch_to_websocket(app, answer, deflate, out));
                }
                WsAppEvent::Deny | WsAppEvent::Close { .. } => {
                    self.busy = Busy::Idle;
                    self.timer = None;
                    self.refuse(403, Vec::new(), b"Forbidden\n".to_vec(), out);
                    return Some(Step::Close);
                }
                WsAppEvent::DenyWith {
                    status,
                    headers,
                    len,
                } => {
                    self.conn.give_up_body();
                    self.send_head(status, &headers, len, out);
                }
                WsAppEvent::DenyBody { data, more } => {
                    self.send_body(&data, out);
                    if !more {
                        self.finish(out);
                        return Some(Step::Close);
                    }
                    if out.queued() > HIGH_WATER {
                        return Some(Step::Flush);
                    }
                }
                WsAppEvent::Failed | WsAppEvent::Send(_) => {
                    self.busy = Busy::Idle;
                    self.timer = None;
                    self.fail(Failure::AppFailed, out);
                    return Some(Step::Close);
                }
            }
        }
    }

    /// Writes the `101` and hands the connection to a WebSocket session.
    fn switch_to_websocket(
        &mut self,
        app: Box<dyn WsExchange>,
        answer: Vec<(String, Vec<u8>)>,
        deflate: Option<ironhorse_ws::Deflate>,
        out: &mut Output,
    ) -> Step {
        self.conn
            .write_switching_protocols_with(&answer, out.bytes());
        self.recorder.head(101, &Vec::new());
        self.recorder.end();
        self.link.hooks.request_done();
        self.busy = Busy::Idle;
        self.timer = None;
        let (input, ended) = self.conn.take_input();
        let config = self.settings.ws_config();
        let keepalive = config.keepalive(std::time::Instant::now());
        let heartbeat = Heartbeat::new(
            keepalive,
            self.settings.ws_close_timeout,
            self.waker.clone(),
        );
        let ws = ironhorse_ws::Connection::new(config, deflate);
        let mut next = WebSocketSession::new(ws, app, self.waker.clone(), heartbeat);
        if !input.is_empty() {
            crate::session::Session::receive(&mut next, &input);
        }
        if ended {
            crate::session::Session::received(&mut next, 0);
        }
        self.next = Some(Box::new(next));
        Step::Upgrade
    }

    /// A whole refusal through h1, then the connection closes.
    fn refuse(
        &mut self,
        status: u16,
        headers: ironhorse_app::HeaderList,
        body: Vec<u8>,
        out: &mut Output,
    ) {
        self.conn.give_up_body();
        self.send_head(status, &headers, Some(body.len() as u64), out);
        self.send_body(&body, out);
        self.finish(out);
    }
}

/// Fields of the `101` that the handshake sets, never the application.
fn is_handshake_field(name: &str) -> bool {
    [
        "upgrade",
        "connection",
        "sec-websocket-accept",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
    ]
    .iter()
    .any(|n| name.eq_ignore_ascii_case(n))
}
