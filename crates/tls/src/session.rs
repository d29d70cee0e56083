//! One TLS connection: a [`Session`] owning a `rustls::ServerConnection` and, once the
//! handshake is done, the inner session of the protocol ALPN chose. Drivers serve it like
//! any other session; the inner session never knows about TLS either.
//!
//! Bytes in: wire bytes go to rustls, the plaintext it yields to the inner session's
//! `receive`. Bytes out: the inner session fills an [`Output`] of its own; its bytes and file
//! regions are encrypted into the driver's `Output`, at most [`BUDGET`] per `advance` (file
//! regions read with `pread` in 64 KiB chunks), so a 50 MB file never sits in memory: the
//! session returns [`Step::Flush`] and goes on once the driver has sent the records. This is
//! what replaces `sendfile(2)` under TLS.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use ironhorse_app::ConnInfo;
use ironhorse_log::Level;
use ironhorse_protocol::output::Output;
use ironhorse_protocol::session::{Cutoff, Link, Session, Step};
use rustls::{ServerConfig, ServerConnection};

use crate::protocol::Choices;

/// Plaintext encrypted per `advance` before the driver must send what is queued.
const BUDGET: usize = 256 * 1024;
/// Wire bytes read at a time by blocking drivers (a full TLS record and its header).
const READ_CHUNK: usize = 16 * 1024 + 512;

/// Makes the session for a connection, or one that closes it at once if rustls refuses to
/// start one (the configuration was checked when loaded, so this should not happen).
pub(crate) fn start(
    server: Arc<ServerConfig>,
    choices: Arc<Choices>,
    conn: ConnInfo,
    link: Link,
    deadline: Instant,
) -> Box<dyn Session> {
    match ServerConnection::new(server) {
        Ok(mut tls) => {
            // The session bounds what it hands rustls itself (`BUDGET`).
            tls.set_buffer_limit(None);
            Box::new(TlsSession {
                tls: Arc::new(Mutex::new(tls)),
                choices,
                conn,
                link,
                deadline,
                inner: None,
                plain_out: Output::default(),
                wire_in: Vec::new(),
                scratch: Vec::new(),
                failed: None,
                closing: false,
                ended: false,
                received_any: false,
            })
        }
        Err(e) => {
            link.hooks.log(
                Level::Error,
                format_args!("TLS: cannot start a connection: {e}"),
            );
            Box::new(Refused)
        }
    }
}

pub(crate) struct TlsSession {
    /// Shared only with a watchdog's cut-off ([`crate::cutoff`]), which encrypts the last
    /// words of a request stuck in the application from its own thread; uncontended
    /// otherwise (the connection's thread holds it during each call, never across the app).
    tls: Arc<Mutex<ServerConnection>>,
    choices: Arc<Choices>,
    conn: ConnInfo,
    link: Link,
    /// The end of the handshake timeout.
    deadline: Instant,
    /// The negotiated protocol's session, made when the handshake completes.
    inner: Option<Box<dyn Session>>,
    /// The inner session's output, not yet encrypted.
    plain_out: Output,
    /// Wire bytes read by blocking drivers (`read_buf`); empty while idle.
    wire_in: Vec<u8>,
    /// File chunks read for encryption.
    scratch: Vec<u8>,
    /// Why the connection must end (a TLS error), logged by the next `advance`.
    failed: Option<String>,
    /// The inner session asked to close; its last output is still being encrypted.
    closing: bool,
    /// The peer ended its input (TCP end, or TLS `close_notify`), already passed on.
    ended: bool,
    received_any: bool,
}

impl TlsSession {
    /// Wire bytes arrived: decrypt them, handing plaintext to the inner session.
    fn take_wire(&mut self, mut wire: &[u8]) {
        self.received_any = true;
        while !wire.is_empty() && self.failed.is_none() {
            let mut tls = lock(&self.tls);
            if let Err(e) = tls.read_tls(&mut wire) {
                self.failed = Some(e.to_string());
                break;
            }
            if let Err(e) = tls.process_new_packets() {
                self.failed = Some(e.to_string());
                break;
            }
            drop(tls);
            self.pass_plain();
        }
    }

    /// Hands the inner session the plaintext rustls holds (making the inner session first,
    /// when the handshake just completed), and the end of input once the peer sent it.
    fn pass_plain(&mut self) {
        if self.ended || lock(&self.tls).is_handshaking() {
            return;
        }
        let inner = match &mut self.inner {
            Some(inner) => inner,
            None => self.inner.insert(self.make_inner()),
        };
        let mut chunk = [0u8; 8192];
        loop {
            // Not held while the inner session runs.
            let read = lock(&self.tls).reader().read(&mut chunk);
            match read {
                Ok(0) => {
                    end_input(inner.as_mut());
                    self.ended = true;
                    return;
                }
                Ok(n) => inner.receive(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // The TCP connection ended without `close_notify`: an end all the same (the
                // HTTP framing tells a truncated message from a whole one).
                Err(_) => {
                    end_input(inner.as_mut());
                    self.ended = true;
                    return;
                }
            }
        }
    }

    fn make_inner(&self) -> Box<dyn Session> {
        let mut conn = self.conn.clone();
        conn.scheme = "https";
        // The lock is not held while the inner session is made.
        let (info, protocol) = {
            let tls = lock(&self.tls);
            let protocol = self.choices.pick(tls.alpn_protocol()).clone();
            (crate::info::of(&tls), protocol)
        };
        conn.tls = Some(Arc::new(info));
        protocol.session(conn, self.link.clone())
    }

    /// Moves rustls's pending records (handshake, alerts, encrypted data) to the driver.
    fn flush_tls(&mut self, out: &mut Output) {
        let mut tls = lock(&self.tls);
        while tls.wants_write() {
            if tls.write_tls(out.bytes()).is_err() {
                break;
            }
        }
    }

    /// Encrypts up to [`BUDGET`] of the inner session's output into `out`.
    fn encrypt(&mut self, out: &mut Output) -> io::Result<()> {
        let mut tls = lock(&self.tls);
        self.plain_out
            .take_plain(BUDGET, &mut self.scratch, &mut |plain| {
                tls.writer().write_all(plain)?;
                while tls.wants_write() {
                    tls.write_tls(out.bytes())?;
                }
                Ok(())
            })
            .map(drop)
    }

    fn fail(&mut self, out: &mut Output, why: &str) -> Step {
        self.flush_tls(out);
        let peer = self
            .conn
            .peer
            .map_or_else(|| "a unix-socket peer".to_string(), |p| p.to_string());
        self.link
            .hooks
            .log(Level::Debug, format_args!("TLS with {peer}: {why}"));
        Step::Close
    }

    /// Ends the connection the TLS way (`close_notify`) once all output is encrypted; not
    /// when the inner session's response was cut short where only the close marks its end
    /// (the connection is reset instead, see [`Session::ends_in_reset`]).
    fn close(&mut self, out: &mut Output) -> Step {
        if !self.ends_in_reset() {
            lock(&self.tls).send_close_notify();
        }
        self.flush_tls(out);
        Step::Close
    }

    /// After the handshake: runs the inner session, encrypting what it writes.
    fn advance_inner(&mut self, out: &mut Output) -> Step {
        if let Err(e) = self.encrypt(out) {
            return self.fail(out, &format!("reading the response: {e}"));
        }
        if !self.plain_out.is_empty() {
            self.flush_tls(out);
            return Step::Flush;
        }
        if self.closing {
            return self.close(out);
        }
        loop {
            let Some(inner) = self.inner.as_mut() else {
                return self.close(out);
            };
            let step = inner.advance(&mut self.plain_out);
            if step == Step::Upgrade {
                // A protocol switch under TLS stays under TLS.
                self.inner = inner.hand_off();
            }
            if let Err(e) = self.encrypt(out) {
                return self.fail(out, &format!("reading the response: {e}"));
            }
            match step {
                Step::Upgrade => continue,
                Step::Close if self.plain_out.is_empty() => return self.close(out),
                Step::Close => self.closing = true,
                _ => {}
            }
            self.flush_tls(out);
            return if self.plain_out.is_empty() {
                step
            } else {
                Step::Flush
            };
        }
    }
}

/// Tells a session its input ended.
fn end_input(session: &mut dyn Session) {
    session.read_buf();
    session.received(0);
}

impl Session for TlsSession {
    fn read_buf(&mut self) -> &mut [u8] {
        self.wire_in.resize(READ_CHUNK, 0);
        &mut self.wire_in
    }

    fn received(&mut self, n: usize) {
        if n == 0 {
            if !self.ended {
                self.ended = true;
                if let Some(inner) = self.inner.as_mut() {
                    end_input(inner.as_mut());
                }
            }
            return;
        }
        let wire = std::mem::take(&mut self.wire_in);
        self.take_wire(&wire[..n]);
        self.wire_in = wire;
    }

    fn receive(&mut self, data: &[u8]) {
        self.take_wire(data);
    }

    fn advance(&mut self, out: &mut Output) -> Step {
        if let Some(why) = self.failed.take() {
            return self.fail(out, &why);
        }
        if lock(&self.tls).is_handshaking() {
            self.flush_tls(out);
            return if self.ended { Step::Close } else { Step::Read };
        }
        if self.inner.is_none() {
            self.pass_plain();
        }
        self.advance_inner(out)
    }

    fn read_deadline(&self) -> Option<Instant> {
        match &self.inner {
            Some(inner) => inner.read_deadline(),
            None => Some(self.deadline),
        }
    }

    fn is_idle(&self) -> bool {
        match &self.inner {
            Some(inner) => inner.is_idle() && self.plain_out.is_empty() && !self.closing,
            None => !self.received_any,
        }
    }

    /// Work for a thread: records rustls must send (a handshake flight, an alert), an end, a
    /// failure, output still to encrypt, or what the inner session calls work (a whole
    /// request head). A client between handshake flights, or trickling its head after the
    /// handshake, holds no pool thread or prefork worker.
    fn has_work(&self) -> bool {
        if self.failed.is_some() || self.ended || self.closing || !self.plain_out.is_empty() {
            return true;
        }
        if lock(&self.tls).wants_write() {
            return true;
        }
        self.inner.as_ref().is_some_and(|inner| inner.has_work())
    }

    fn is_waiting(&self) -> bool {
        match &self.inner {
            Some(inner) => {
                inner.is_waiting()
                    && self.plain_out.is_empty()
                    && !self.closing
                    && !lock(&self.tls).wants_write()
            }
            None => !self.received_any,
        }
    }

    /// The worker is stopping: the inner session says goodbye its way (HTTP/2's GOAWAY),
    /// sent encrypted on the next `advance`.
    fn stop(&mut self) {
        if let Some(inner) = self.inner.as_mut() {
            inner.stop();
        }
    }

    /// `close_notify` for a connection closed while it waits (idle past its keep-alive, or
    /// the server stopping), as one closed after a response gets it; none during the
    /// handshake (nothing was said yet) or once the close is under way.
    fn farewell(&mut self) -> Vec<u8> {
        let mut tls = lock(&self.tls);
        if tls.is_handshaking() || self.closing {
            return Vec::new();
        }
        tls.send_close_notify();
        let mut bytes = Vec::new();
        while tls.wants_write() {
            if tls.write_tls(&mut bytes).is_err() {
                break;
            }
        }
        bytes
    }

    fn ends_in_reset(&self) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|inner| inner.ends_in_reset())
    }

    fn release_idle_memory(&mut self) {
        self.wire_in = Vec::new();
        self.scratch = Vec::new();
        self.plain_out.release_idle_memory();
        if let Some(inner) = self.inner.as_mut() {
            inner.release_idle_memory();
        }
    }

    fn wrap_cutoff(&self, raw: Cutoff) -> Cutoff {
        let sealed = crate::cutoff::sealed(self.tls.clone(), raw);
        match &self.inner {
            Some(inner) => inner.wrap_cutoff(sealed),
            None => sealed,
        }
    }
}

/// The connection's rustls state. A poisoned lock (a panic while it was held) is used as
/// it is: at worst the connection's next record fails, which closes it.
pub(crate) fn lock(tls: &Mutex<ServerConnection>) -> MutexGuard<'_, ServerConnection> {
    tls.lock().unwrap_or_else(|e| e.into_inner())
}

/// A connection rustls would not start: closed at once.
struct Refused;

impl Session for Refused {
    fn read_buf(&mut self) -> &mut [u8] {
        &mut []
    }
    fn received(&mut self, _n: usize) {}
    fn receive(&mut self, _data: &[u8]) {}
    fn advance(&mut self, _out: &mut Output) -> Step {
        Step::Close
    }
    fn read_deadline(&self) -> Option<Instant> {
        None
    }
    fn is_idle(&self) -> bool {
        true
    }
}
