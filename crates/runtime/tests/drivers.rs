//! Every driver with a fake session, over real TCP and Unix sockets: the connection core's
//! promises hold whatever the scheduling.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ironhorse_app::ConnInfo;
use ironhorse_protocol::hooks::{Level, WorkerHooks};
use ironhorse_protocol::output::Output;
use ironhorse_protocol::session::{Link, Protocol, Session, Step};
use ironhorse_runtime::listener::{BindAddr, Listener};
use ironhorse_runtime::{Driver, DriverConfig};

/// Larger than the socket buffers, so the server is still sending when more input comes.
const ANSWER: usize = 16 << 20;

/// Answers the first line with [`ANSWER`] bytes and closes, ignoring everything after it.
struct AnswerThenClose;

struct Answering {
    buf: Vec<u8>,
    seen: Vec<u8>,
}

impl Protocol for AnswerThenClose {
    fn session(&self, _conn: ConnInfo, _link: Link) -> Box<dyn Session> {
        Box::new(Answering {
            buf: vec![0; 4096],
            seen: Vec::new(),
        })
    }
}

impl Session for Answering {
    fn read_buf(&mut self) -> &mut [u8] {
        &mut self.buf
    }
    fn received(&mut self, n: usize) {
        let got = self.buf[..n].to_vec();
        self.receive(&got);
    }
    fn receive(&mut self, data: &[u8]) {
        self.seen.extend_from_slice(data);
    }
    fn advance(&mut self, out: &mut Output) -> Step {
        if self.seen.contains(&b'\n') {
            out.bytes().resize(ANSWER, b'a');
            Step::Close
        } else {
            Step::Read
        }
    }
    fn read_deadline(&self) -> Option<Instant> {
        Some(Instant::now() + Duration::from_secs(30))
    }
    fn is_idle(&self) -> bool {
        false
    }
}

/// Counts the heartbeats a driver gives.
#[derive(Default)]
struct Beats(AtomicUsize);

impl WorkerHooks for Beats {
    fn beat(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn request_done(&self) {}
    fn log(&self, level: Level, message: std::fmt::Arguments<'_>) {
        eprintln!("[{}] {message}", level.as_upper());
    }
    fn stuck(&self) {}
}

fn start(driver: Driver, addr: BindAddr) -> (Listener, Arc<Beats>) {
    let listener = Listener::bind(&addr, 128, false).unwrap();
    let serving = listener.try_clone().unwrap();
    let beats = Arc::new(Beats::default());
    let hooks = beats.clone();
    std::thread::spawn(move || {
        let config = DriverConfig {
            listeners: vec![serving],
            protocol: Arc::new(AnswerThenClose),
            threads: 2,
            max_connections: 100,
            graceful_timeout: Duration::from_secs(1),
            hooks,
        };
        driver.run(config).unwrap();
    });
    (listener, beats)
}

/// The client keeps sending after its request; the server closes after answering. Without
/// a lingering close, the unread bytes make the kernel reset the connection and the answer
/// is lost in flight.
fn the_last_answer_survives_a_close_with_unread_input(mut stream: impl Read + Write) {
    stream.write_all(b"go\n").unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 65536];
    // The answer has begun (and the server is closing): now more input arrives.
    let n = stream.read(&mut chunk).unwrap();
    got.extend_from_slice(&chunk[..n]);
    stream.write_all(&[b'x'; 32 * 1024]).unwrap();
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("after {} bytes: {e}", got.len()),
        }
    }
    assert_eq!(got.len(), ANSWER);
}

fn over_tcp(driver: Driver) {
    let (listener, beats) = start(driver, BindAddr::parse("127.0.0.1:0").unwrap());
    let addr = listener
        .display_addr()
        .trim_start_matches("http://")
        .to_string();
    let stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    the_last_answer_survives_a_close_with_unread_input(stream);
    // The driver reports its loop alive through the hooks it was given.
    assert!(beats.0.load(Ordering::SeqCst) > 0);
}

fn over_unix(driver: Driver) {
    let path =
        std::env::temp_dir().join(format!("ih-drivers-{}-{driver:?}.sock", std::process::id()));
    let _serving = start(driver, BindAddr::Unix(path.clone()));
    let stream = std::os::unix::net::UnixStream::connect(&path).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    the_last_answer_survives_a_close_with_unread_input(stream);
    let _ = std::fs::remove_file(path);
}

macro_rules! per_driver {
    ($($name:ident: $driver:expr,)*) => {$(
        mod $name {
            use super::*;
            #[test] fn tcp_close_keeps_the_answer() { over_tcp($driver) }
            #[test] fn unix_close_keeps_the_answer() { over_unix($driver) }
        }
    )*};
}

per_driver! {
    serial: Driver::Serial,
    read_ahead: Driver::ReadAhead,
    thread_per_connection: Driver::ThreadPerConnection,
    thread_pool: Driver::ThreadPool,
    event: Driver::Event,
    tokio: Driver::Async,
}
