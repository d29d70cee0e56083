//! The connection core on its own: a fake session, socket pairs, no driver.

use super::*;
use ironhorse_protocol::output::Output;
use ironhorse_protocol::session::Step;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;

/// Hooks that keep the log lines.
#[derive(Default)]
struct Recording(std::sync::Mutex<Vec<String>>);

impl Recording {
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl WorkerHooks for Recording {
    fn beat(&self) {}
    fn request_done(&self) {}
    fn log(&self, _level: Level, message: std::fmt::Arguments<'_>) {
        self.0.lock().unwrap().push(message.to_string());
    }
    fn stuck(&self) {}
}

/// A session that only answers the questions the core asks.
struct Fake {
    deadline: Option<Instant>,
    idle: bool,
}

impl Session for Fake {
    fn read_buf(&mut self) -> &mut [u8] {
        &mut []
    }
    fn received(&mut self, _n: usize) {}
    fn advance(&mut self, _out: &mut Output) -> Step {
        Step::Read
    }
    fn read_deadline(&self) -> Option<Instant> {
        self.deadline
    }
    fn is_idle(&self) -> bool {
        self.idle
    }
}

#[test]
fn a_waiting_connection_expires_at_its_deadline_or_when_stopping_idle() {
    let now = Instant::now();
    let past = Some(now - Duration::from_millis(1));
    let future = Some(now + Duration::from_secs(1));
    let fake = |deadline, idle| Fake { deadline, idle };
    assert!(is_expired(&mut fake(past, false), now, false));
    assert!(!is_expired(&mut fake(future, true), now, false));
    assert!(!is_expired(&mut fake(None, true), now, false));
    assert!(
        is_expired(&mut fake(future, true), now, true),
        "idle while stopping"
    );
    assert!(
        !is_expired(&mut fake(future, false), now, true),
        "busy while stopping"
    );
    assert_eq!(
        expiry_error(&fake(future, true), true).kind(),
        io::ErrorKind::Interrupted
    );
    assert_eq!(
        expiry_error(&fake(past, false), false).kind(),
        io::ErrorKind::TimedOut
    );
}

#[test]
fn lingering_half_closes_then_discards_until_the_peer_closes() {
    let (mut server, mut client) = UnixStream::pair().unwrap();
    server.write_all(b"last response").unwrap();
    let mut linger = Linger::start(&server, false);
    // The peer reads our last bytes, then EOF: a Unix socket is half-closed too.
    let mut got = Vec::new();
    client.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"last response");
    // It still sends; nothing is waiting yet on a non-blocking socket: call again later.
    server.set_nonblocking(true).unwrap();
    assert!(linger.discard(|buf| server.read(buf)));
    client.write_all(&[7; 10_000]).unwrap();
    drop(client);
    assert!(
        !linger.discard(|buf| server.read(buf)),
        "done at the peer's EOF"
    );
}

#[test]
fn lingering_stops_at_its_budget() {
    let (server, client) = UnixStream::pair().unwrap();
    let mut linger = Linger::start(&server, false);
    let mut endless = std::io::repeat(1);
    assert!(!linger.discard(|buf| endless.read(buf)));
    drop(client);
}

#[test]
fn lingering_goes_on_while_bytes_come_up_to_its_limit() {
    let (server, _client) = UnixStream::pair().unwrap();
    let mut linger = Linger::start(&server, false);
    let start = linger.until;
    // Bytes keep coming: the pause allowed starts again after each read...
    let mut reads = 0;
    assert!(linger.discard(|buf| {
        reads += 1;
        if reads > 3 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
        Ok(buf.len())
    }));
    assert!(linger.until > start, "the deadline moved on");
    // ...but never past the whole time allowed.
    linger.last = Instant::now();
    assert!(!linger.discard(|buf| Ok(buf.len())));
}

#[test]
fn lingering_stops_at_its_deadline() {
    let (server, _client) = UnixStream::pair().unwrap();
    let mut linger = Linger::start(&server, false);
    assert!(!linger.is_over(Instant::now()));
    assert!(linger.is_over(Instant::now() + LINGER));
    linger.until = Instant::now();
    assert!(!linger.discard(|_| Err(io::ErrorKind::WouldBlock.into())));
}

#[test]
fn accept_errors_are_skipped_backed_off_or_fatal() {
    let os = io::Error::from_raw_os_error;
    let log = Recording::default();
    let failed = |e: io::Error| accept_failed(&e, &log);
    assert_eq!(failed(os(libc::ECONNABORTED)), AcceptFailure::Skip);
    assert_eq!(
        failed(io::ErrorKind::WouldBlock.into()),
        AcceptFailure::Skip
    );
    assert_eq!(failed(os(libc::EPROTO)), AcceptFailure::Skip);
    assert!(log.lines().is_empty(), "lost races are not worth a line");
    assert_eq!(failed(os(libc::EMFILE)), AcceptFailure::BackOff);
    assert_eq!(failed(os(libc::ENFILE)), AcceptFailure::BackOff);
    assert_eq!(failed(os(libc::EBADF)), AcceptFailure::Fatal);
    let lines = log.lines();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].contains("pausing"), "{lines:?}");
    assert!(lines[2].contains("stops"), "{lines:?}");
}

#[test]
fn tcp_connections_are_described_for_the_application() {
    let peer: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    let info = tcp_info(peer, None);
    assert_eq!(info.peer, Some(peer));
    assert_eq!(info.scheme, "http");
}

#[test]
fn a_drain_waits_for_connections_in_flight_and_no_longer_than_allowed() {
    let live = Arc::new(Live::default());
    let tickets = [live.ticket(), live.ticket()];
    assert!(!live.drain(Duration::from_millis(1)), "two still in flight");
    let thread = std::thread::spawn(move || drop(tickets));
    assert!(live.drain(Duration::from_secs(30)));
    thread.join().unwrap();
    assert!(live.has_room_within(1, Duration::ZERO));
}

#[test]
fn a_ticket_dropped_elsewhere_makes_room_for_a_waiter() {
    let live = Arc::new(Live::default());
    let ticket = live.ticket();
    assert!(!live.has_room_within(1, Duration::ZERO), "at the cap");
    let thread = std::thread::spawn(move || drop(ticket));
    assert!(live.has_room_within(1, Duration::from_secs(30)));
    thread.join().unwrap();
    assert!(live.drain(Duration::ZERO), "the ticket counted out once");
}

#[test]
fn a_stop_is_over_when_nothing_is_left_or_at_the_deadline() {
    let draining = Draining::begin(Duration::from_secs(5));
    let now = Instant::now();
    assert!(draining.is_over(0, now));
    assert!(!draining.is_over(3, now));
    assert!(draining.is_over(3, draining.deadline()));
}
