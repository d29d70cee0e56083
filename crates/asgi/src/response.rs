//! The HTTP response side of the application's end: `http.response.start`, `.body` and
//! `.pathsend` checked against where the response stands, and queued for the session.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use ironhorse_app::{AppEvent, FileRegion};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::channel::{Channel, Phase, State};
use crate::message::Outgoing;

impl Channel {
    pub(crate) fn accept(&self, state: &mut State, outgoing: Outgoing) -> PyResult<()> {
        match (state.phase, outgoing) {
            (
                Phase::Before,
                Outgoing::Start {
                    status,
                    headers,
                    len,
                    trailers,
                },
            ) => {
                state.phase = Phase::Started;
                state.trailers = trailers.then(Vec::new);
                let bodiless = self.shared.head_request || matches!(status, 204 | 304);
                state.declared_len = len.filter(|_| !bodiless);
                state.held_head = Some(AppEvent::Head {
                    status,
                    headers,
                    len,
                });
            }
            (Phase::Started, Outgoing::Body { data, more }) if !state.body_ended => {
                state.body_sent += data.len() as u64;
                if state.declared_len.is_some_and(|len| state.body_sent > len) {
                    // Cutting the excess silently would lose what the app meant to send.
                    self.break_off(state);
                    return Err(PyRuntimeError::new_err(
                        "response content longer than its content-length",
                    ));
                }
                if let Some(len) = state
                    .declared_len
                    .filter(|&len| !more && state.body_sent < len)
                {
                    // The client would wait for the rest (as uvicorn's h11 refuses it).
                    let sent = state.body_sent;
                    self.break_off(state);
                    return Err(PyRuntimeError::new_err(format!(
                        "response content shorter than its content-length ({sent} of {len} bytes)"
                    )));
                }
                if let Some(head) = state.held_head.take() {
                    self.shared.push_event(state, head);
                }
                // With trailers to come, the last body message does not end the response.
                state.body_ended = !more;
                let ends = !more && state.trailers.is_none();
                if ends {
                    state.phase = Phase::Done;
                }
                // Empty middle chunks carry nothing (and would end a chunked body).
                if !data.is_empty() || ends {
                    let more = !ends;
                    self.shared.push_event(state, AppEvent::Body { data, more });
                }
            }
            (Phase::Started, Outgoing::Trailers { headers, more }) if state.body_ended => {
                self.trailers(state, headers, more);
            }
            (Phase::Started, Outgoing::PathSend(path)) if state.held_head.is_some() => {
                self.path_send(state, &path)?;
            }
            (phase, outgoing) => {
                let kind = outgoing.kind();
                self.break_off(state);
                return Err(PyRuntimeError::new_err(format!(
                    "unexpected ASGI message {kind:?} {}",
                    match phase {
                        Phase::Before => "before http.response.start",
                        Phase::Started => "after http.response.start",
                        Phase::Done => "after the response completed",
                    }
                )));
            }
        }
        Ok(())
    }

    /// Trailer fields, gathered until the last trailers message ends the response.
    fn trailers(&self, state: &mut State, headers: ironhorse_app::HeaderList, more: bool) {
        let fields = state.trailers.get_or_insert_with(Vec::new);
        // Fields no trailer may carry (`host`, framing, ...) are dropped (RFC 9110 §6.5.1).
        fields.extend(
            headers
                .into_iter()
                .filter(|(name, _)| !ironhorse_h1::is_forbidden_trailer(name)),
        );
        if more {
            return;
        }
        state.phase = Phase::Done;
        let fields = state.trailers.take().unwrap_or_default();
        // RFC 9110 §6.5: only to a client that said it takes them.
        let end = if self.shared.accepts_trailers {
            AppEvent::Trailers(fields)
        } else {
            AppEvent::Body {
                data: Vec::new(),
                more: false,
            }
        };
        self.shared.push_event(state, end);
    }

    /// The whole body is the file at `path` (the head is still held: no body went out).
    fn path_send(&self, state: &mut State, path: &str) -> PyResult<()> {
        let region = match open_file(path) {
            Ok(region) => region,
            Err(e) => {
                self.break_off(state);
                return Err(e);
            }
        };
        if let Some(AppEvent::Head { len, .. }) = &mut state.held_head {
            // Without a declared length, the file's: the body is sent whole.
            len.get_or_insert(region.len);
        }
        if let Some(head) = state.held_head.take() {
            self.shared.push_event(state, head);
        }
        state.phase = Phase::Done;
        self.shared.push_event(state, AppEvent::File(region));
        Ok(())
    }
}

/// The file of an `http.response.pathsend`, whole. A relative path, a missing file or
/// one that is not a regular file is the application's error (raised from its `send`).
fn open_file(path: &str) -> PyResult<FileRegion> {
    if !Path::new(path).is_absolute() {
        return Err(PyRuntimeError::new_err(format!(
            "http.response.pathsend needs an absolute path, not {path:?}"
        )));
    }
    let file = File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(PyRuntimeError::new_err(format!(
            "http.response.pathsend: {path:?} is not a regular file"
        )));
    }
    Ok(FileRegion {
        file: Arc::new(file),
        offset: 0,
        len: meta.len(),
    })
}
