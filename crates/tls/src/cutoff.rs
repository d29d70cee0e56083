//! A watchdog's last words under TLS. On blocking drivers a request stuck in the application
//! past `--request-timeout` is answered from the watchdog's thread (`Cutoff`), while the
//! connection's thread is still inside the application. Written to the socket as they are,
//! h1's `504` would be plaintext in the middle of a TLS stream, which a client rejects as a
//! bad record; instead they are encrypted here, with the connection's own rustls state
//! (shared with the session through a mutex, so sequence numbers stay in order), followed by
//! `close_notify`, before the driver's cut-off writes them and shuts the socket down.

use std::io::Write;
use std::sync::{Arc, Mutex};

use ironhorse_protocol::session::Cutoff;
use rustls::ServerConnection;

use crate::session::lock;

/// `raw` (which writes wire bytes and shuts the socket down), with its words encrypted
/// first. Empty words (the response had begun: the connection is only cut) stay empty, and
/// no `close_notify` is sent, so the client sees a truncated response, not a whole one.
pub(crate) fn sealed(tls: Arc<Mutex<ServerConnection>>, raw: Cutoff) -> Cutoff {
    Arc::new(move |plain: &[u8]| {
        if plain.is_empty() {
            return raw(b"");
        }
        let wire = seal(&mut lock(&tls), plain);
        raw(&wire)
    })
}

/// `plain` as TLS records, then `close_notify`, with whatever rustls still held before them.
fn seal(tls: &mut ServerConnection, plain: &[u8]) -> Vec<u8> {
    let mut wire = Vec::new();
    if tls.writer().write_all(plain).is_err() {
        return wire;
    }
    tls.send_close_notify();
    while tls.wants_write() {
        if tls.write_tls(&mut wire).is_err() {
            break;
        }
    }
    wire
}
