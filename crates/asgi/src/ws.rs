//! The WebSocket session's end of a channel ([`WsExchange`]): client messages in (bounded),
//! the application's actions out.

use std::sync::Arc;

use ironhorse_app::{WsAppEvent, WsExchange, WsMessage};

use crate::bridge::Bridge;
use crate::channel::{ws_len, Shared, WS_QUEUE};

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
    }

    fn next_event(&mut self) -> Option<WsAppEvent> {
        let mut state = self.shared.lock();
        let event = state.ws_events.pop_front()?;
        if let WsAppEvent::Send(message) = &event {
            state.event_bytes -= ws_len(message);
        }
        self.shared.notify(&self.bridge, &mut state);
        Some(event)
    }

    fn disconnect(&mut self, code: u16, reason: &str) {
        let mut state = self.shared.lock();
        if state.close.is_none() {
            state.close = Some((code, reason.to_string()));
            state.gone = true;
            self.shared.notify(&self.bridge, &mut state);
        }
    }
}

impl Drop for WsSessionEnd {
    fn drop(&mut self) {
        self.disconnect(1006, "");
    }
}
