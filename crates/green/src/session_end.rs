//! The HTTP session's end of a request to the hub: the [`AppExchange`] it holds. Bodies up
//! to `--buffer-request-body` are read here whole before the request is even queued for
//! the hub; longer ones, and response pieces, move through [`Shared`]'s bounded queues.

use std::sync::Arc;

use ironhorse_app::{AppEvent, AppExchange};
use ironhorse_h1::BodyFraming;

use crate::bridge::{Bridge, Command};
use crate::channel::{Shared, State, BODY_QUEUE};
use crate::watchdog::HubThread;

/// The session's end.
pub(crate) struct SessionEnd {
    pub(crate) shared: Arc<Shared>,
    pub(crate) bridge: Arc<Bridge>,
    /// Body bytes read ahead of the greenlet's start (`--buffer-request-body`); `None`
    /// once it started.
    buffering: Option<Vec<u8>>,
    limit: u64,
    hub: HubThread,
}

impl SessionEnd {
    /// Starts the request at once, or once its body is read (one that `limit` may hold).
    pub(crate) fn new(
        shared: Arc<Shared>,
        bridge: Arc<Bridge>,
        limit: u64,
        hub: HubThread,
    ) -> SessionEnd {
        let buffer = match shared.head.body_framing() {
            BodyFraming::Length(n) => n > 0 && n <= limit,
            BodyFraming::Chunked => limit > 0,
            BodyFraming::None => false,
        };
        let mut end = SessionEnd {
            shared,
            bridge,
            buffering: buffer.then(Vec::new),
            limit,
            hub,
        };
        if !buffer {
            end.start();
        }
        end
    }

    fn start(&mut self) {
        self.buffering = None;
        self.bridge.send(Some(Command::Start(self.shared.clone())));
    }

    fn notify(&self, state: &mut State) {
        self.shared.notify(&self.bridge, state);
    }
}

impl AppExchange for SessionEnd {
    fn body_requested(&self) -> bool {
        self.buffering.is_some() || self.shared.lock().body_wanted
    }

    fn wants_body(&self) -> bool {
        if self.buffering.is_some() {
            return true;
        }
        let state = self.shared.lock();
        !state.body_closed && !state.gone && state.body.len() < BODY_QUEUE
    }

    fn body(&mut self, data: Vec<u8>, more: bool) {
        let (data, whole) = match self.buffering.take() {
            Some(mut buffer) => {
                buffer.extend_from_slice(&data);
                if more && buffer.len() as u64 <= self.limit {
                    self.buffering = Some(buffer);
                    return;
                }
                let whole = (!more).then_some(buffer.len() as u64);
                (buffer, Some(whole))
            }
            None => (data, None),
        };
        let mut state = self.shared.lock();
        state.body_closed = !more;
        if !data.is_empty() || !more {
            state.body.push_back(data);
        }
        match whole {
            Some(length) => {
                state.body_length = length;
                drop(state);
                self.start();
            }
            None => self.notify(&mut state),
        }
    }

    fn next_event(&mut self) -> Option<AppEvent> {
        let mut state = self.shared.lock();
        let event = state.events.pop_front()?;
        if let AppEvent::Body { data, .. } = &event {
            state.event_bytes -= data.len();
        }
        self.notify(&mut state);
        Some(event)
    }

    fn disconnect(&mut self) {
        let mut state = self.shared.lock();
        if !state.gone {
            state.gone = true;
            self.notify(&mut state);
        }
    }

    fn cancel(&mut self) {
        let mut state = self.shared.lock();
        state.gone = true;
        state.cancel = true;
        self.notify(&mut state);
        if state.wake_queued {
            self.hub.watch(self.shared.clone());
        }
    }
}

impl Drop for SessionEnd {
    fn drop(&mut self) {
        self.disconnect();
    }
}
