//! HAProxy's PROXY protocol in front of another protocol: a session that reads the header a
//! load balancer sends first (v1 text or v2 binary, parsed by `ironhorse_wire`), then hands
//! the connection, with the bytes after the header, to the inner protocol's session made
//! with the client the header names. Drivers never know: to them it is one more upgrade.
//!
//! Who must send a header, and who may not:
//! * a peer in the allow list must open with one; a missing, malformed or unfinished
//!   header (within the header timeout) closes the connection with one log line;
//! * any other peer is served as if the setting were off (gunicorn's rule: its connection
//!   is the client's own), except that a PROXY header from it is refused — the connection
//!   is closed with a log line, so that nobody outside the list can name a client.
//!
//! Unix-socket peers count as allowed unless the list is empty, as for forwarded headers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ironhorse_app::ConnInfo;
use ironhorse_log::Level;
use ironhorse_wire::proxy_protocol::{self, Command, Header, Versions, V2_SIGNATURE};
use ironhorse_wire::{AllowList, Parsed};

use crate::output::Output;
use crate::session::{Link, Protocol, Session, Step};

/// How a v1 header starts.
const V1_START: &[u8] = b"PROXY ";
/// The most bytes read at a time while the header is incomplete (a v2 header may be 64 KiB).
const CHUNK: usize = 512;

/// `inner`, behind a PROXY protocol header from the peers in `allow`.
pub struct ProxyHeader {
    inner: Arc<dyn Protocol>,
    allow: AllowList,
    versions: Versions,
    /// How long a peer may take to send the header (`--header-timeout`).
    timeout: Duration,
}

impl ProxyHeader {
    pub fn new(
        inner: Arc<dyn Protocol>,
        allow: AllowList,
        versions: Versions,
        timeout: Duration,
    ) -> ProxyHeader {
        ProxyHeader {
            inner,
            allow,
            versions,
            timeout,
        }
    }
}

impl Protocol for ProxyHeader {
    fn session(&self, conn: ConnInfo, link: Link) -> Box<dyn Session> {
        Box::new(HeaderSession {
            inner: self.inner.clone(),
            allowed: self.allow.admits(conn.peer.map(|p| p.ip())),
            versions: self.versions,
            deadline: Instant::now() + self.timeout,
            conn,
            link,
            buf: Vec::new(),
            filled: 0,
            ended: false,
            refusal: None,
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

/// One connection until its header is read.
struct HeaderSession {
    inner: Arc<dyn Protocol>,
    allowed: bool,
    versions: Versions,
    deadline: Instant,
    conn: ConnInfo,
    link: Link,
    buf: Vec<u8>,
    filled: usize,
    ended: bool,
    /// Why the connection is refused, once that is decided.
    refusal: Option<String>,
    /// The inner session, made as soon as the header is read (what arrives after it goes
    /// straight there, so a pool's watcher can ask it whether a thread is needed); taken
    /// by `hand_off`.
    next: Option<Box<dyn Session>>,
}

/// What the bytes so far decide.
enum Verdict {
    Wait,
    /// Hand off after `consumed` bytes, with this connection info.
    Serve {
        conn: ConnInfo,
        consumed: usize,
    },
    /// Close, logging why.
    Refuse(String),
}

impl HeaderSession {
    fn verdict(&self) -> Verdict {
        let received = &self.buf[..self.filled];
        if !self.allowed {
            return self.stranger_verdict(received);
        }
        match proxy_protocol::parse(received, self.versions) {
            Parsed::NeedMore if self.ended => {
                Verdict::Refuse("the connection ended before its PROXY header was complete".into())
            }
            Parsed::NeedMore => Verdict::Wait,
            Parsed::Error(e) => Verdict::Refuse(e.to_string()),
            Parsed::Done(header) => Verdict::Serve {
                consumed: header.consumed,
                conn: corrected(&self.conn, &header),
            },
        }
    }

    /// A peer outside the allow list: served as it is, unless it sends a PROXY header.
    fn stranger_verdict(&self, received: &[u8]) -> Verdict {
        let starts = |sig: &[u8]| received.starts_with(sig);
        let may_start =
            |sig: &[u8]| !received.is_empty() && sig.starts_with(received) && !self.ended;
        if starts(V1_START) || starts(&V2_SIGNATURE) {
            Verdict::Refuse("a PROXY header from a peer not in --proxy-allow-from".into())
        } else if received.is_empty() && !self.ended
            || may_start(V1_START)
            || may_start(&V2_SIGNATURE)
        {
            Verdict::Wait
        } else {
            Verdict::Serve {
                conn: self.conn.clone(),
                consumed: 0,
            }
        }
    }

    /// Decides what the bytes so far allow, once: the inner session is made with the rest
    /// of the input as soon as the header is whole.
    fn settle(&mut self) {
        if self.next.is_some() || self.refusal.is_some() {
            return;
        }
        match self.verdict() {
            Verdict::Wait => {}
            Verdict::Refuse(why) => self.refusal = Some(why),
            Verdict::Serve { conn, consumed } => {
                let mut next = self.inner.session(conn, self.link.clone());
                let rest = &self.buf[consumed..self.filled];
                if !rest.is_empty() {
                    next.receive(rest);
                }
                if self.ended {
                    next.read_buf();
                    next.received(0);
                }
                self.buf = Vec::new();
                self.next = Some(next);
            }
        }
    }

    fn peer_text(&self) -> String {
        self.conn
            .peer
            .map_or_else(|| "a unix-socket peer".to_string(), |p| p.to_string())
    }
}

/// The connection as the header describes it: its client and the address it reached. A
/// `LOCAL` header (the proxy's own health check) or an `UNKNOWN`/unix family keeps the real
/// endpoints.
fn corrected(conn: &ConnInfo, header: &Header) -> ConnInfo {
    let mut conn = conn.clone();
    if header.command == Command::Proxy {
        if let (Some(src), dst) = (header.src, header.dst) {
            conn.peer = Some(src);
            conn.local = dst.or(conn.local);
        }
    }
    conn
}

impl Session for HeaderSession {
    fn read_buf(&mut self) -> &mut [u8] {
        if let Some(next) = &mut self.next {
            return next.read_buf();
        }
        if self.buf.len() < self.filled + CHUNK {
            self.buf.resize(self.filled + CHUNK, 0);
        }
        &mut self.buf[self.filled..]
    }

    fn received(&mut self, n: usize) {
        if let Some(next) = &mut self.next {
            return next.received(n);
        }
        if n == 0 {
            self.ended = true;
        }
        self.filled += n;
        self.settle();
    }

    fn receive(&mut self, data: &[u8]) {
        if let Some(next) = &mut self.next {
            return next.receive(data);
        }
        self.buf.truncate(self.filled);
        self.buf.extend_from_slice(data);
        self.filled = self.buf.len();
        self.settle();
    }

    fn advance(&mut self, _out: &mut Output) -> Step {
        if self.next.is_some() {
            return Step::Upgrade;
        }
        match self.refusal.take() {
            None => Step::Read,
            Some(why) => {
                self.link.hooks.log(
                    Level::Warning,
                    format_args!("closing the connection from {}: {why}", self.peer_text()),
                );
                Step::Close
            }
        }
    }

    /// A thread is needed only for a refusal, or once the inner session has work (a
    /// client trickling its header, or the head after it, holds none on a pool model).
    fn has_work(&self) -> bool {
        match &self.next {
            Some(next) => next.has_work(),
            None => self.refusal.is_some(),
        }
    }

    fn read_deadline(&self) -> Option<Instant> {
        match &self.next {
            Some(next) => next.read_deadline(),
            None => Some(self.deadline),
        }
    }

    fn is_idle(&self) -> bool {
        false
    }

    fn is_waiting(&self) -> bool {
        match &self.next {
            Some(next) => next.is_waiting(),
            None => self.filled == 0 && !self.ended,
        }
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

    fn link() -> Link {
        Link {
            waker: Arc::new(|| {}),
            executor: None,
            hooks: Arc::new(Detached),
            batch: None,
        }
    }

    fn conn(peer: &str) -> ConnInfo {
        ConnInfo {
            peer: Some(peer.parse().unwrap()),
            local: Some("127.0.0.1:8000".parse().unwrap()),
            scheme: "http",
            forwarded: None,
            tls: None,
            server_name: None,
            cache: Default::default(),
        }
    }

    /// Feeds `bytes` in two pieces split at `at`; the last step and the inner sessions' infos.
    fn run(allow: &str, bytes: &[u8], at: usize) -> (Step, Vec<ConnInfo>) {
        let inner = Arc::new(Recording::default());
        let protocol = ProxyHeader::new(
            inner.clone(),
            AllowList::parse(allow).unwrap(),
            Versions::BOTH,
            Duration::from_secs(10),
        );
        let mut session = protocol.session(conn("127.0.0.1:5000"), link());
        let mut out = Output::default();
        let mut step = Step::Read;
        for piece in [&bytes[..at], &bytes[at..]] {
            if !piece.is_empty() && step == Step::Read {
                session.receive(piece);
                step = session.advance(&mut out);
            }
        }
        let infos = inner.0.lock().unwrap().clone();
        (step, infos)
    }

    #[test]
    fn the_header_is_read_whatever_the_split_and_names_the_peer() {
        let bytes = b"PROXY TCP4 203.0.113.7 198.51.100.1 56324 443\r\nGET /";
        let header_len = bytes.len() - 5;
        for at in 0..=bytes.len() {
            let (step, infos) = run("127.0.0.1", bytes, at);
            assert_eq!(step, Step::Upgrade, "split at {at}");
            assert_eq!(infos.len(), 1);
            assert_eq!(infos[0].peer, Some("203.0.113.7:56324".parse().unwrap()));
            assert_eq!(infos[0].local, Some("198.51.100.1:443".parse().unwrap()));
            if at < header_len {
                // Before the header is whole, nothing is handed off.
                let (step, infos) = run("127.0.0.1", &bytes[..at.max(1)], at.max(1));
                assert_eq!(step, Step::Read, "prefix of {at} bytes");
                assert!(infos.is_empty());
            }
        }
    }

    #[test]
    fn allowed_peers_need_a_header_and_strangers_may_not_send_one() {
        let (step, infos) = run("127.0.0.1", b"GET / HTTP/1.1\r\n", 3);
        assert_eq!((step, infos.len()), (Step::Close, 0), "no header");
        let (step, _) = run("127.0.0.1", b"PROXY TCP4 1.2.3.4.5 1.1.1.1 1 2\r\n", 0);
        assert_eq!(step, Step::Close, "malformed");
        let (step, infos) = run("10.0.0.0/8", b"GET / HTTP/1.1\r\n", 1);
        assert_eq!(step, Step::Upgrade, "a stranger without a header is served");
        assert_eq!(infos[0].peer, Some("127.0.0.1:5000".parse().unwrap()));
        let (step, infos) = run("10.0.0.0/8", b"PROXY TCP4 1.2.3.4 1.1.1.1 1 2\r\n", 3);
        assert_eq!((step, infos.len()), (Step::Close, 0), "a stranger's header");
        let (step, _) = run("10.0.0.0/8", &V2_SIGNATURE, 5);
        assert_eq!(step, Step::Close, "a stranger's v2 signature");
        let (step, _) = run("10.0.0.0/8", b"PROXY", 5);
        assert_eq!(step, Step::Read, "could still be a header");
    }

    /// A session that has work once a whole line is in (as HTTP has once a whole head is).
    struct Lines(Vec<u8>, [u8; 64]);

    impl Session for Lines {
        fn read_buf(&mut self) -> &mut [u8] {
            &mut self.1
        }
        fn received(&mut self, n: usize) {
            let got = self.1[..n].to_vec();
            self.0.extend_from_slice(&got);
        }
        fn advance(&mut self, _out: &mut Output) -> Step {
            Step::Read
        }
        fn read_deadline(&self) -> Option<Instant> {
            None
        }
        fn is_idle(&self) -> bool {
            false
        }
        fn has_work(&self) -> bool {
            self.0.contains(&b'\n')
        }
    }

    struct LineProtocol;

    impl Protocol for LineProtocol {
        fn session(&self, _conn: ConnInfo, _link: Link) -> Box<dyn Session> {
            Box::new(Lines(Vec::new(), [0; 64]))
        }
    }

    fn line_session(allow: &str) -> Box<dyn Session> {
        let protocol = ProxyHeader::new(
            Arc::new(LineProtocol),
            AllowList::parse(allow).unwrap(),
            Versions::BOTH,
            Duration::from_secs(10),
        );
        protocol.session(conn("127.0.0.1:5000"), link())
    }

    #[test]
    fn no_work_for_a_thread_until_the_header_and_then_the_inner_session_have_some() {
        let mut session = line_session("127.0.0.1");
        for byte in b"PROXY TCP4 203.0.113.7 198.51.100.1 56324 443\r\nGET / HTTP/1.1" {
            session.receive(&[*byte]);
            assert!(!session.has_work(), "after {:?}", *byte as char);
        }
        session.receive(b"\r\n");
        assert!(session.has_work(), "the inner session has a whole line");
        assert_eq!(session.advance(&mut Output::default()), Step::Upgrade);
        assert!(session.hand_off().unwrap().has_work(), "it got every byte");

        // Refusals and ends are work (a thread closes the connection).
        let mut session = line_session("127.0.0.1");
        session.receive(b"GET / HTTP/1.1\r\n");
        assert!(session.has_work(), "no header from an allowed peer");
        let mut session = line_session("127.0.0.1");
        session.receive(b"PROXY TCP4 1.2.3.4.5 1.1.1.1 1 2\r\n");
        assert!(session.has_work(), "a malformed header");
        let mut session = line_session("127.0.0.1");
        session.receive(b"PROXY TCP4");
        session.read_buf();
        session.received(0);
        assert!(session.has_work(), "the end of input mid-header");
        let mut session = line_session("10.0.0.0/8");
        session.receive(b"PRO");
        assert!(
            !session.has_work(),
            "a stranger's input that may be a header"
        );
    }
}
