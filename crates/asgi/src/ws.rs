//! The WebSocket session's end of a channel ([`WsExchange`]): client messages in (bounded),
//! the application's actions out.

use std::sync::Arc;

use ironhorse_app::{WsAppEvent, WsExchange, WsMessage};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::bridge::Bridge;
use crate::channel::{ws_len, Channel, Phase, Shared, State, WS_QUEUE};
use crate::message::{self, Outgoing, WsOutgoing};

pub(crate) struct WsSessionEnd {
    pub(crate) shared: Arc<Shared>,
    pub(crate) bridge: Arc<Bridge>,
}

impl WsExchange for WsSessionEnd {
    fn wants_message(&self) -> bool {
        let state = self.shared.lock();
        state.close.is_none() && state.ws_in.len() < WS_QUEUE
    }

    fn message(&mut self, message: WsMessage) {
        let mut state = self.shared.lock();
        state.ws_in.push_back(message);
        self.shared.notify(&self.bridge, &mut state);
        if state.ws_in.len() >= WS_QUEUE && !state.listed_behind {
            // The session stops reading: a stop must reach it another way.
            state.listed_behind = true;
            self.bridge.note_behind(&self.shared);
        }
    }

    fn next_event(&mut self) -> Option<WsAppEvent> {
        let mut state = self.shared.lock();
        let event = state.ws_events.pop_front()?;
        state.event_bytes -= ws_len(&event);
        self.shared.notify(&self.bridge, &mut state);
        Some(event)
    }

    fn disconnect(&mut self, code: u16, reason: &str) {
        let mut state = self.shared.lock();
        if state.close.is_none() {
            state.close = Some((code, reason.to_string()));
            state.gone = true;
            // A connection that dropped (1006: no closing handshake) while the application
            // still held it open; not a closing handshake, after which the application's
            // clean-up is its own business.
            state.abandoned = state.phase != Phase::Done && code == 1006;
            self.shared.notify(&self.bridge, &mut state);
        }
    }
}

impl Drop for WsSessionEnd {
    fn drop(&mut self) {
        self.disconnect(1006, "");
    }
}

/// The WebSocket half of the application's end.
impl Channel {
    /// The next WebSocket message for `receive`, if one is ready.
    pub(crate) fn ws_message<'py>(
        &self,
        py: Python<'py>,
        state: &mut State,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        if !state.connect_delivered {
            state.connect_delivered = true;
            return message::ws_connect(py).map(Some);
        }
        if let Some(incoming) = state.ws_in.pop_front() {
            if state.ws_in.len() + 1 == WS_QUEUE {
                (self.shared.wake)();
            }
            return message::ws_receive(py, incoming).map(Some);
        }
        if let Some((code, reason)) = &state.close {
            return message::ws_disconnect(py, *code, reason).map(Some);
        }
        if state.gone {
            return message::ws_disconnect(py, 1006, "").map(Some);
        }
        Ok(None)
    }

    /// Takes a WebSocket action from the application.
    pub(crate) fn accept_ws(&self, state: &mut State, outgoing: WsOutgoing) -> PyResult<()> {
        let event = match (state.phase, outgoing) {
            (
                Phase::Before,
                WsOutgoing::Accept {
                    subprotocol,
                    headers,
                },
            ) => {
                state.phase = Phase::Started;
                WsAppEvent::Accept {
                    subprotocol,
                    headers,
                }
            }
            (Phase::Before, WsOutgoing::Close { .. }) => {
                state.phase = Phase::Done;
                WsAppEvent::Deny
            }
            (Phase::Started, WsOutgoing::Close { code, .. })
                if !state.denying && !may_send_close_code(code) =>
            {
                // As the websockets library does: a code the peer must reject is the
                // application's mistake, not something to replace in silence.
                return Err(PyValueError::new_err(format!(
                    "websocket.close: code {code} may not be sent (RFC 6455 §7.4: 1000-1003, \
                     1007-1014 or 3000-4999)"
                )));
            }
            (Phase::Started, WsOutgoing::Close { code, reason }) if !state.denying => {
                state.phase = Phase::Done;
                WsAppEvent::Close { code, reason }
            }
            (Phase::Started, WsOutgoing::Send(message)) if !state.denying => {
                WsAppEvent::Send(message)
            }
            (
                Phase::Before,
                WsOutgoing::Deny(Outgoing::Start {
                    status,
                    headers,
                    len,
                    ..
                }),
            ) => {
                state.phase = Phase::Started;
                state.denying = true;
                WsAppEvent::DenyWith {
                    status,
                    headers,
                    len,
                }
            }
            (Phase::Started, WsOutgoing::Deny(Outgoing::Body { data, more })) if state.denying => {
                if !more {
                    state.phase = Phase::Done;
                }
                WsAppEvent::DenyBody { data, more }
            }
            (phase, outgoing) => {
                let kind = outgoing.kind();
                let denying = state.denying;
                self.break_off(state);
                return Err(PyRuntimeError::new_err(format!(
                    "unexpected ASGI message {kind:?} {}",
                    match phase {
                        Phase::Before => "before websocket.accept",
                        Phase::Started if denying => "after websocket.http.response.start",
                        Phase::Started => "after websocket.accept",
                        Phase::Done => "after the WebSocket closed",
                    }
                )));
            }
        };
        self.shared.push_ws(state, event);
        Ok(())
    }
}

/// Whether an application's close code can go on the wire: a valid one, or 1005 ("no
/// status"), which goes out as a close frame without a code.
fn may_send_close_code(code: u16) -> bool {
    code == 1005 || ironhorse_ws::is_valid_close_code(code)
}
