//! A WebSocket connection to a non-blocking application, after the HTTP session's `101`:
//! [`ironhorse_ws::Connection`] (sans IO) turns bytes into messages and back; this session
//! moves messages between it and the application's [`WsExchange`].
//!
//! Backpressure both ways: the session stops reading while the application has not taken
//! the messages it was given, and stops taking the application's messages while the client
//! has not read what is queued (the application's `send` then waits).
//!
//! Keepalive (`--ws-ping-interval`, `--ws-ping-timeout`): a silent client is pinged, and
//! given up when it stays silent; a close frame of ours that the client does not answer
//! within `--ws-close-timeout` ends the connection all the same ([`Heartbeat`]).

use std::time::Instant;

use ironhorse_app::{WsAppEvent, WsExchange, WsMessage};
use ironhorse_ws::{Connection, Event, Message, State};

use crate::output::Output;
use crate::session::{Session, Step, Waker};
pub(crate) use heartbeat::Heartbeat;

mod heartbeat;

/// Output queued for the client beyond which the application's messages wait.
const HIGH_WATER: u64 = 256 * 1024;
/// RFC 6455 §7.4.1: the connection ended without a close frame.
const ABNORMAL: u16 = 1006;
/// RFC 6455 §7.4.1: going away, sent when the server stops.
const GOING_AWAY: u16 = 1001;

pub(crate) struct WebSocketSession {
    ws: Connection,
    app: Option<Box<dyn WsExchange>>,
    /// The client's input ended.
    ended: bool,
    /// For drivers that read into the session's own buffer (allocated on first use).
    buf: Vec<u8>,
    /// Wakes the driver to send the close frame of a stopping server.
    waker: Waker,
    heartbeat: Heartbeat,
}

impl WebSocketSession {
    pub(crate) fn new(
        ws: Connection,
        app: Box<dyn WsExchange>,
        waker: Waker,
        heartbeat: Heartbeat,
    ) -> WebSocketSession {
        WebSocketSession {
            ws,
            app: Some(app),
            ended: false,
            buf: Vec::new(),
            waker,
            heartbeat,
        }
    }

    fn disconnect(&mut self, code: u16, reason: &str) {
        if let Some(mut app) = self.app.take() {
            app.disconnect(code, reason);
        }
    }

    /// Client messages to the application while it has room (once the application was
    /// told the connection ended, they are read only to reach the client's close frame).
    fn pump_in(&mut self) {
        loop {
            if self.app.as_ref().is_some_and(|app| !app.wants_message()) {
                return;
            }
            match self.ws.next_event() {
                Ok(Some(Event::Message(message))) => {
                    let Some(app) = self.app.as_mut() else {
                        continue;
                    };
                    app.message(match message {
                        Message::Text(text) => WsMessage::Text(text),
                        Message::Binary(data) => WsMessage::Binary(data),
                    });
                }
                Ok(Some(Event::Ping(_) | Event::Pong(_))) => {}
                Ok(Some(Event::Close { code, reason })) => {
                    // RFC 6455 §7.1.5: no code in the frame reads as 1005.
                    self.disconnect(code.unwrap_or(1005), &reason);
                }
                Ok(None) => return,
                Err(error) => {
                    // The close frame with its code is queued already.
                    self.disconnect(error.code(), error.reason());
                }
            }
        }
    }

    /// The application's messages to the client while the output has room.
    fn pump_out(&mut self, out: &mut Output) {
        while out.queued() + self.ws.buffered_output() as u64 <= HIGH_WATER {
            let Some(app) = self.app.as_mut() else {
                return;
            };
            let Some(event) = app.next_event() else {
                return;
            };
            match event {
                WsAppEvent::Send(WsMessage::Text(text)) => {
                    let _ = self.ws.send(&Message::Text(text));
                }
                WsAppEvent::Send(WsMessage::Binary(data)) => {
                    let _ = self.ws.send(&Message::Binary(data));
                }
                WsAppEvent::Close { code, reason } => self.ws.close(code, &reason),
                WsAppEvent::Failed => self.ws.close(1011, "internal error"),
                // Only before the handshake's answer; the HTTP session took those.
                WsAppEvent::Accept { .. }
                | WsAppEvent::Deny
                | WsAppEvent::DenyWith { .. }
                | WsAppEvent::DenyBody { .. } => {}
            }
        }
    }
}

impl Session for WebSocketSession {
    fn read_buf(&mut self) -> &mut [u8] {
        self.buf.resize(16 * 1024, 0);
        &mut self.buf
    }

    fn received(&mut self, n: usize) {
        if n == 0 {
            self.ended = true;
        } else {
            self.heartbeat.heard();
            self.ws.receive(&self.buf[..n]);
        }
    }

    fn receive(&mut self, data: &[u8]) {
        self.heartbeat.heard();
        self.ws.receive(data);
    }

    fn advance(&mut self, out: &mut Output) -> Step {
        if self.app.as_ref().is_some_and(|app| !app.wants_message())
            && ironhorse_sys::signals::stop_requested().is_some()
        {
            // Waiting for the application, not for input, this session is not among those
            // the driver tells of a stop: the application's side wakes it instead.
            self.stop();
        }
        self.pump_in();
        self.pump_out(out);
        if self.app.as_ref().is_some_and(|app| !app.wants_message()) {
            // We stopped reading (the application is behind): the client's answers wait
            // unread, so its silence proves nothing.
            self.heartbeat.heard();
        }
        if self.heartbeat.check(&mut self.ws) {
            // The client is gone silent: our close (1011) goes out, and we wait for
            // nothing more from it.
            self.ws.take_output(out.bytes());
            self.disconnect(ABNORMAL, "");
            return Step::Close;
        }
        if self.ws.has_output() {
            self.ws.take_output(out.bytes());
        }
        if self.heartbeat.closing_timed_out(&self.ws) {
            // Our close frame went unanswered: the connection ends without the client's.
            self.disconnect(ABNORMAL, "");
            return Step::Close;
        }
        if self.ended {
            self.disconnect(ABNORMAL, "");
            return Step::Close;
        }
        if self.ws.state() == State::Closed {
            self.disconnect(ABNORMAL, "");
            return Step::Close;
        }
        if !out.is_empty() {
            return Step::Flush;
        }
        match &self.app {
            // The application has not taken what it was given: read no more for now.
            Some(app) if !app.wants_message() => Step::Pending,
            _ => Step::Read,
        }
    }

    fn read_deadline(&self) -> Option<Instant> {
        self.heartbeat.backstop()
    }

    fn is_idle(&self) -> bool {
        false
    }

    fn is_waiting(&self) -> bool {
        false
    }

    /// The server stops: close 1001 to the client (its answering close frame ends the
    /// connection, within the graceful timeout) and `websocket.disconnect` 1001 to the app.
    fn stop(&mut self) {
        if self.ws.state() == State::Open {
            self.ws.close(GOING_AWAY, "server shutting down");
            self.disconnect(GOING_AWAY, "server shutting down");
            (self.waker)();
        }
    }
}

impl Drop for WebSocketSession {
    fn drop(&mut self) {
        self.disconnect(ABNORMAL, "");
    }
}
