//! The non-blocking application seam (ASGI): an application that runs elsewhere (an event
//! loop thread) and trades messages with the HTTP session without a thread per request.
//!
//! The session starts an [`AppExchange`] per request, then, whenever the exchange's
//! [`Wake`] fires or input arrives, offers body bytes while the application has room
//! ([`AppExchange::wants_body`]: backpressure) and takes [`AppEvent`]s until none is ready.
//! Nothing here blocks: both sides only push into bounded queues and wake the other.

use std::sync::Arc;
use std::time::Duration;

use crate::{FileRegion, HeaderList};

/// Wakes the session's driver (the exchange has news). Callable from any thread.
pub type Wake = Arc<dyn Fn() + Send + Sync>;

/// Takes an event loop's periodic probe: `(lag, next_in)`, how late the probe ran and when
/// the next one is due. Called on the loop's thread; must not block.
pub type LagSink = Arc<dyn Fn(Duration, Duration) + Send + Sync>;

/// A piece of the response, in the order the application produced it.
#[derive(Debug)]
pub enum AppEvent {
    /// The response head. `len`: the length the application declared, if it did (the
    /// engine owns framing headers, so `Content-Length` comes here, not in `headers`).
    Head {
        status: u16,
        headers: HeaderList,
        len: Option<u64>,
    },
    /// Body bytes; `more: false` ends the response.
    Body { data: Vec<u8>, more: bool },
    /// The rest of the body is this file region (sent with `sendfile`), which ends the
    /// response (ASGI's `http.response.pathsend`).
    File(FileRegion),
    /// Trailer fields, which end a chunked response (ASGI's `http.response.trailers`; the
    /// application's side sends them only to a client that asked with `TE: trailers`).
    Trailers(HeaderList),
    /// The application failed (raised, or broke the protocol): a `500` if no head was
    /// sent, else the connection is cut without finishing the response. Already logged.
    Failed,
    /// The application returned without finishing its response (logged already): like
    /// [`Failed`](Self::Failed).
    Returned,
}

/// The session's end of one request to a non-blocking application. Dropping it tells the
/// application the client is gone.
pub trait AppExchange: Send {
    /// Whether the application asked for the body yet (`100 Continue` is due).
    fn body_requested(&self) -> bool;
    /// Whether the application has room for another body chunk.
    fn wants_body(&self) -> bool;
    /// Body bytes from the client; `more: false` for the last (maybe empty) chunk.
    fn body(&mut self, data: Vec<u8>, more: bool);
    /// The next response piece, if one is ready.
    fn next_event(&mut self) -> Option<AppEvent>;
    /// The client went away: the application gets its disconnect message.
    fn disconnect(&mut self);
    /// The client's input ended after a whole request head: it may have half-closed and
    /// still wait for the answer, or be gone (the two look alike until a write fails). The
    /// default takes it for gone.
    fn input_closed(&mut self) {
        self.disconnect();
    }
    /// The request passed its deadline: the application's task is cancelled.
    fn cancel(&mut self);
}

/// A WebSocket data message, either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsMessage {
    Text(String),
    Binary(Vec<u8>),
}

/// What a non-blocking application does with a WebSocket, in order.
#[derive(Debug)]
pub enum WsAppEvent {
    /// Accept the handshake: `101` with the subprotocol and extra headers.
    Accept {
        subprotocol: Option<String>,
        headers: HeaderList,
    },
    /// Refuse the handshake (closed before accepting): `403`.
    Deny,
    /// Refuse the handshake with the application's own response (ASGI's
    /// `websocket.http.response`): its head, then [`DenyBody`](Self::DenyBody) pieces.
    DenyWith {
        status: u16,
        headers: HeaderList,
        len: Option<u64>,
    },
    /// A piece of that response's body; `more: false` ends it (and the connection).
    DenyBody {
        data: Vec<u8>,
        more: bool,
    },
    Send(WsMessage),
    /// Close the connection with a close frame.
    Close {
        code: u16,
        reason: String,
    },
    /// The application failed (logged already): `500` before accepting, else close 1011.
    Failed,
}

/// The session's end of one WebSocket to a non-blocking application. Dropping it tells
/// the application the connection is gone (code 1006).
pub trait WsExchange: Send {
    /// Whether the application has room for another message from the client (else the
    /// session stops reading: a client cannot fill memory faster than the app reads).
    fn wants_message(&self) -> bool;
    fn message(&mut self, message: WsMessage);
    /// The next thing the application did, if any.
    fn next_event(&mut self) -> Option<WsAppEvent>;
    /// The connection ended: the client's close code (1006 when it just went away).
    fn disconnect(&mut self, code: u16, reason: &str);
}
