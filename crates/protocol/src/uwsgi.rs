//! The uwsgi protocol (`--protocol uwsgi`), as nginx's `uwsgi_pass` speaks it: a session
//! that reads the request packet (parsed and turned back into an HTTP request by
//! `ironhorse_wire::uwsgi`), then hands the connection to the HTTP session — fed the
//! request head the packet stands for, then the body bytes after the packet — made with the
//! client the packet names. Everything after is the one HTTP path: the application, static
//! mounts, the access log, and a response written as uWSGI writes it (status line, headers,
//! body; the inner `Http` is built `close_delimited`). One request per connection.
//!
//! Only peers in the allow list are served (Unix-socket peers unless it is empty); any
//! other peer, a malformed packet, or none within the header timeout closes the connection
//! with one log line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ironhorse_app::ConnInfo;
use ironhorse_log::Level;
use ironhorse_wire::uwsgi::{self, Limits};
use ironhorse_wire::{AllowList, Parsed};

use crate::output::Output;
use crate::session::{Link, Protocol, Session, Step};

/// The most bytes read at a time while the packet is incomplete.
const CHUNK: usize = 4096;

/// `inner` (an HTTP protocol) behind uwsgi request packets from the peers in `allow`.
pub struct Uwsgi {
    inner: Arc<dyn Protocol>,
    allow: AllowList,
    limits: Limits,
    /// How long a peer may take to send the packet (`--header-timeout`).
    timeout: Duration,
}

impl Uwsgi {
    pub fn new(
        inner: Arc<dyn Protocol>,
        allow: AllowList,
        limits: Limits,
        timeout: Duration,
    ) -> Uwsgi {
        Uwsgi {
            inner,
            allow,
            limits,
            timeout,
        }
    }
}

impl Protocol for Uwsgi {
    fn session(&self, conn: ConnInfo, link: Link) -> Box<dyn Session> {
        Box::new(PacketSession {
            inner: self.inner.clone(),
            allowed: self.allow.admits(conn.peer.map(|p| p.ip())),
            limits: self.limits,
            deadline: Instant::now() + self.timeout,
            conn,
            link,
            buf: Vec::new(),
            filled: 0,
            ended: false,
            next: None,
        })
    }

    fn before_fork(&self) {
        self.inner.before_fork();
    }
    fn shutdown(&self) {
        self.inner.shutdown();
    }
    fn turn(&self, work: &mut dyn FnMut()) {
        self.inner.turn(work);
    }
    fn after_fork_parent(&self) {
        self.inner.after_fork_parent();
    }
    fn after_fork_child(&self) {
        self.inner.after_fork_child();
    }
}

/// One connection until its request packet is read.
struct PacketSession {
    inner: Arc<dyn Protocol>,
    allowed: bool,
    limits: Limits,
    deadline: Instant,
    conn: ConnInfo,
    link: Link,
    buf: Vec<u8>,
    filled: usize,
    ended: bool,
    /// The HTTP session, once the packet is read; taken by `hand_off`.
    next: Option<Box<dyn Session>>,
}

impl PacketSession {
    /// The HTTP session for a complete packet, or why there is none.
    fn translate(&self) -> Result<Option<Box<dyn Session>>, String> {
        let packet = match uwsgi::parse(&self.buf[..self.filled], &self.limits) {
            Parsed::NeedMore if self.ended => {
                return Err("the connection ended before its uwsgi packet was complete".into())
            }
            Parsed::NeedMore => return Ok(None),
            Parsed::Error(e) => return Err(e.to_string()),
            Parsed::Done(packet) => packet,
        };
        let request = uwsgi::to_http(&packet).map_err(|e| e.to_string())?;
        let mut conn = self.conn.clone();
        conn.peer = request.client.or(conn.peer);
        conn.local = request.server.or(conn.local);
        conn.scheme = if request.https { "https" } else { "http" };
        conn.server_name = (request.server_name)
            .map(|(name, port)| Arc::new(ironhorse_app::ServerName { name, port }));
        let mut next = self.inner.session(conn, self.link.clone());
        next.receive(&request.head);
        let body = &self.buf[packet.consumed..self.filled];
        if !body.is_empty() {
            next.receive(body);
        }
        if self.ended {
            next.read_buf();
            next.received(0);
        }
        Ok(Some(next))
    }

    fn refuse(&self, why: &str) -> Step {
        let peer = self
            .conn
            .peer
            .map_or_else(|| "a unix-socket peer".to_string(), |p| p.to_string());
        self.link.hooks.log(
            Level::Warning,
            format_args!("closing the uwsgi connection from {peer}: {why}"),
        );
        Step::Close
    }
}

impl Session for PacketSession {
    fn read_buf(&mut self) -> &mut [u8] {
        if self.buf.len() < self.filled + CHUNK {
            self.buf.resize(self.filled + CHUNK, 0);
        }
        &mut self.buf[self.filled..]
    }

    fn received(&mut self, n: usize) {
        if n == 0 {
            self.ended = true;
        }
        self.filled += n;
    }

    fn receive(&mut self, data: &[u8]) {
        self.buf.truncate(self.filled);
        self.buf.extend_from_slice(data);
        self.filled = self.buf.len();
    }

    fn advance(&mut self, _out: &mut Output) -> Step {
        if self.next.is_some() {
            return Step::Upgrade;
        }
        if !self.allowed {
            return self.refuse("the peer is not in --uwsgi-allow-from");
        }
        match self.translate() {
            Ok(None) => Step::Read,
            Ok(Some(next)) => {
                self.buf = Vec::new();
                self.next = Some(next);
                Step::Upgrade
            }
            Err(why) => self.refuse(&why),
        }
    }

    /// A thread is needed once the packet is whole (its HTTP head then is too), broken,
    /// refused or cut short: a peer trickling a packet holds none on a pool model.
    fn has_work(&self) -> bool {
        let packet = uwsgi::parse(&self.buf[..self.filled], &self.limits);
        !self.allowed || self.ended || self.next.is_some() || !matches!(packet, Parsed::NeedMore)
    }

    fn read_deadline(&self) -> Option<Instant> {
        Some(self.deadline)
    }

    fn is_idle(&self) -> bool {
        false
    }

    fn is_waiting(&self) -> bool {
        self.filled == 0 && !self.ended
    }

    fn hand_off(&mut self) -> Option<Box<dyn Session>> {
        self.next.take()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::hooks::Detached;
    use crate::Echo;

    /// Echo, remembering the connection info each session was made with.
    #[derive(Default)]
    struct Recording(Mutex<Vec<ConnInfo>>);

    impl Protocol for Recording {
        fn session(&self, conn: ConnInfo, link: Link) -> Box<dyn Session> {
            self.0.lock().unwrap().push(conn.clone());
            Echo.session(conn, link)
        }
    }

    fn session(allow: &str, inner: Arc<Recording>) -> Box<dyn Session> {
        let protocol = Uwsgi::new(
            inner.clone(),
            AllowList::parse(allow).unwrap(),
            Limits::default(),
            Duration::from_secs(10),
        );
        let link = Link {
            waker: Arc::new(|| {}),
            executor: None,
            hooks: Arc::new(Detached),
            batch: None,
        };
        let conn = ConnInfo {
            peer: Some("127.0.0.1:5000".parse().unwrap()),
            local: Some("127.0.0.1:8000".parse().unwrap()),
            scheme: "http",
            forwarded: None,
            tls: None,
            server_name: None,
            cache: Default::default(),
        };
        protocol.session(conn, link)
    }

    fn run(allow: &str, bytes: &[u8], at: usize) -> (Step, Vec<ConnInfo>, Vec<u8>) {
        let inner = Arc::new(Recording::default());
        let mut session = session(allow, inner.clone());
        let mut out = Output::default();
        let mut step = Step::Read;
        let mut next = None;
        for piece in [&bytes[..at], &bytes[at..]] {
            if piece.is_empty() {
                continue;
            }
            if step == Step::Read {
                session.receive(piece);
                step = session.advance(&mut out);
                if step == Step::Upgrade {
                    next = session.hand_off();
                }
            } else if let Some(next) = &mut next {
                // Bytes after the hand-off go to the HTTP session, as a driver sends them.
                next.receive(piece);
            }
        }
        let mut echoed = Vec::new();
        if let Some(mut next) = next {
            next.advance(&mut out);
            echoed = out.bytes().clone();
        }
        let infos = inner.0.lock().unwrap().clone();
        (step, infos, echoed)
    }

    #[test]
    fn a_packet_becomes_its_http_request_whatever_the_split() {
        let mut bytes = uwsgi::encode(
            0,
            &[
                (b"REQUEST_METHOD", b"POST"),
                (b"REQUEST_URI", b"/x?y"),
                (b"CONTENT_LENGTH", b"4"),
                (b"REMOTE_ADDR", b"203.0.113.7"),
                (b"REMOTE_PORT", b"4242"),
                (b"HTTPS", b"on"),
            ],
        )
        .unwrap();
        bytes.extend_from_slice(b"body");
        for at in 0..=bytes.len() {
            let (step, infos, echoed) = run("127.0.0.1", &bytes, at);
            assert_eq!(step, Step::Upgrade, "split at {at}");
            assert_eq!(infos[0].peer, Some("203.0.113.7:4242".parse().unwrap()));
            assert_eq!(infos[0].scheme, "https");
            let expected = b"POST /x?y HTTP/1.1\r\nContent-Length: 4\r\n\
                \r\nbody";
            assert_eq!(echoed, expected.to_vec(), "split at {at}");
        }
    }

    #[test]
    fn strangers_and_malformed_packets_are_closed() {
        let good =
            uwsgi::encode(0, &[(b"REQUEST_METHOD", b"GET"), (b"REQUEST_URI", b"/")]).unwrap();
        let (step, infos, _) = run("10.0.0.0/8", &good, 0);
        assert_eq!((step, infos.len()), (Step::Close, 0), "not allowed");
        let (step, _, _) = run("127.0.0.1", b"\x05\x00\x00\x00", 1);
        assert_eq!(step, Step::Close, "modifier1 5");
        let (step, _, _) = run("127.0.0.1", b"\x00\x04\x00\x00\x09\x00AB", 2);
        assert_eq!(step, Step::Close, "a size past the end");
        let no_method = uwsgi::encode(0, &[(b"REQUEST_URI", b"/")]).unwrap();
        let (step, _, _) = run("127.0.0.1", &no_method, 0);
        assert_eq!(step, Step::Close, "no method");
        let (step, _, _) = run("127.0.0.1", &good[..5], 2);
        assert_eq!(step, Step::Read, "incomplete");
    }

    #[test]
    fn a_trickled_packet_has_no_work_for_a_thread_until_it_is_whole() {
        let good =
            uwsgi::encode(0, &[(b"REQUEST_METHOD", b"GET"), (b"REQUEST_URI", b"/")]).unwrap();
        let mut trickled = session("127.0.0.1", Arc::default());
        for (i, byte) in good.iter().enumerate() {
            assert!(!trickled.has_work(), "after {i} bytes");
            trickled.receive(&[*byte]);
        }
        assert!(trickled.has_work(), "a whole packet");
        let mut broken = session("127.0.0.1", Arc::default());
        broken.receive(b"\x05\x00");
        assert!(broken.has_work(), "modifier1 5 is answered at once");
        let mut cut = session("127.0.0.1", Arc::default());
        cut.receive(&good[..3]);
        cut.read_buf();
        cut.received(0);
        assert!(cut.has_work(), "an end of input mid-packet");
        let stranger = session("10.0.0.0/8", Arc::default());
        assert!(stranger.has_work(), "a peer not allowed is closed at once");
    }
}
