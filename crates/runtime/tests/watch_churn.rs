//! The connection watch under churn, for the two drivers built on it (the pool's one-shot
//! watcher, and the read-ahead driver's edge-triggered one): every request is answered, with
//! heads trickled in pieces (the pool's watcher re-arms them), idle keep-alive connections
//! moving between threads and the watcher (more clients than threads), pipelining, and
//! sessions whose work comes by time (the sweep gives them out still armed). A lost wake-up
//! shows as a connection closed at its 20 s read deadline with a request unanswered.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ironhorse_app::ConnInfo;
use ironhorse_protocol::hooks::{Level, WorkerHooks};
use ironhorse_protocol::output::Output;
use ironhorse_protocol::session::{Link, Protocol, Session, Step};
use ironhorse_runtime::listener::{BindAddr, Listener};
use ironhorse_runtime::{Driver, DriverConfig};

/// A line protocol: each `\n`-terminated line is a request, answered `ok <line>`. A partial
/// line starting with `T` becomes work by time after `TICK` (answered `late`, the line kept):
/// a session whose `has_work` turns true with no input, as a buffered body's timeout does.
struct Lines;
const TICK: Duration = Duration::from_millis(300);

struct LineSession {
    buf: Vec<u8>,
    pending: Vec<u8>,
    ended: bool,
    answered: bool,
    progress: Instant,
}

impl Protocol for Lines {
    fn session(&self, _conn: ConnInfo, _link: Link) -> Box<dyn Session> {
        Box::new(LineSession {
            buf: vec![0; 4096],
            pending: Vec::new(),
            ended: false,
            answered: false,
            progress: Instant::now(),
        })
    }
}

impl LineSession {
    fn late(&self) -> bool {
        self.pending.first() == Some(&b'T')
            && !self.pending.contains(&b'\n')
            && Instant::now() >= self.progress + TICK
    }
}

impl Session for LineSession {
    fn read_buf(&mut self) -> &mut [u8] {
        &mut self.buf
    }
    fn received(&mut self, n: usize) {
        if n == 0 {
            self.ended = true;
        } else {
            let got = self.buf[..n].to_vec();
            self.pending.extend_from_slice(&got);
            self.progress = Instant::now();
        }
    }
    fn advance(&mut self, out: &mut Output) -> Step {
        if let Some(at) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=at).collect();
            out.bytes().extend_from_slice(b"ok ");
            out.bytes().extend_from_slice(&line);
            self.answered = true;
            return if self.pending.contains(&b'\n') {
                Step::Flush
            } else {
                Step::Read
            };
        }
        if self.late() {
            out.bytes().extend_from_slice(b"late\n");
            self.progress = Instant::now();
            return Step::Read;
        }
        if self.ended {
            return Step::Close;
        }
        Step::Read
    }
    fn read_deadline(&self) -> Option<Instant> {
        Some(self.progress + Duration::from_secs(20))
    }
    fn is_idle(&self) -> bool {
        self.answered && self.pending.is_empty() && !self.ended
    }
    fn is_waiting(&self) -> bool {
        self.pending.is_empty() && !self.ended
    }
    fn has_work(&self) -> bool {
        self.pending.contains(&b'\n') || self.ended || self.late()
    }
}

struct Quiet;
impl WorkerHooks for Quiet {
    fn beat(&self) {}
    fn request_done(&self) {}
    fn log(&self, level: Level, message: std::fmt::Arguments<'_>) {
        eprintln!("[{}] {message}", level.as_upper());
    }
    fn stuck(&self) {}
}

fn start(driver: Driver, threads: usize) -> String {
    let listener = Listener::bind(&BindAddr::parse("127.0.0.1:0").unwrap(), 1024, false).unwrap();
    let addr = listener
        .display_addr()
        .trim_start_matches("http://")
        .to_string();
    std::thread::spawn(move || {
        let config = DriverConfig {
            listeners: vec![listener],
            protocol: Arc::new(Lines),
            threads,
            max_connections: 1000,
            graceful_timeout: Duration::from_secs(1),
            hooks: Arc::new(Quiet),
        };
        driver.run(config).unwrap();
    });
    addr
}

/// A tiny xorshift, so runs differ per client without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn read_line(stream: &mut TcpStream, out: &mut Vec<u8>) -> std::io::Result<Vec<u8>> {
    loop {
        if let Some(at) = out.iter().position(|&b| b == b'\n') {
            return Ok(out.drain(..=at).collect());
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn the_pool_answers_every_request_under_churn() {
    every_request_is_answered_under_churn(Driver::ThreadPool, 2);
}

#[test]
fn read_ahead_answers_every_request_under_churn() {
    every_request_is_answered_under_churn(Driver::ReadAhead, 1);
}

fn every_request_is_answered_under_churn(driver: Driver, threads: usize) {
    let addr = start(driver, threads);
    let worst = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..24)
        .map(|c| {
            let (addr, worst) = (addr.clone(), worst.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((c as u64 + 1) * 0x1234_5678));
                let mut stream = TcpStream::connect(&addr).unwrap();
                stream.set_nodelay(true).unwrap();
                // Only against a hang: a lost wake-up ends at the session's 20 s deadline.
                stream
                    .set_read_timeout(Some(Duration::from_secs(120)))
                    .unwrap();
                let mut buf = Vec::new();
                for i in 0..150 {
                    let kind = rng.next() % 10;
                    let line = format!("req-{c}-{i}\n");
                    let t0 = Instant::now();
                    if kind == 0 {
                        // A partial line that becomes work by time (sweep), then the rest.
                        stream.write_all(b"Tpartial").unwrap();
                        let late = read_line(&mut stream, &mut buf)
                            .unwrap_or_else(|e| panic!("client {c} req {i} (late): {e}"));
                        assert_eq!(late, b"late\n");
                        std::thread::sleep(Duration::from_millis(rng.next() % 3));
                        stream.write_all(line.as_bytes()).unwrap();
                        let mut want = b"ok Tpartial".to_vec();
                        want.extend_from_slice(line.as_bytes());
                        let got = read_line(&mut stream, &mut buf)
                            .unwrap_or_else(|e| panic!("client {c} req {i} (after late): {e}"));
                        assert_eq!(got, want);
                        continue;
                    }
                    if kind == 1 {
                        // Two pipelined.
                        let two = format!("{}{}", line, line);
                        stream.write_all(two.as_bytes()).unwrap();
                        for _ in 0..2 {
                            let got = read_line(&mut stream, &mut buf)
                                .unwrap_or_else(|e| panic!("client {c} req {i} (pipelined): {e}"));
                            assert_eq!(&got[3..], line.as_bytes());
                        }
                    } else {
                        // Trickled in 1-3 pieces.
                        let bytes = line.as_bytes();
                        let pieces = 1 + (rng.next() % 3) as usize;
                        let mut from = 0;
                        for p in 0..pieces {
                            let to = if p + 1 == pieces {
                                bytes.len()
                            } else {
                                (from + 1 + (rng.next() as usize % 3)).min(bytes.len() - 1)
                            };
                            stream.write_all(&bytes[from..to]).unwrap();
                            from = to;
                            if rng.next().is_multiple_of(2) {
                                std::thread::sleep(Duration::from_micros(rng.next() % 1500));
                            }
                        }
                        let got = read_line(&mut stream, &mut buf)
                            .unwrap_or_else(|e| panic!("client {c} req {i}: {e}"));
                        assert_eq!(&got[3..], bytes);
                    }
                    let took = t0.elapsed().as_millis() as usize;
                    worst.fetch_max(took, Ordering::SeqCst);
                    if rng.next().is_multiple_of(4) {
                        std::thread::sleep(Duration::from_micros(rng.next() % 3000));
                    }
                }
            })
        })
        .collect();
    let mut failed = Vec::new();
    for (c, client) in clients.into_iter().enumerate() {
        if let Err(e) = client.join() {
            failed.push((c, e.downcast_ref::<String>().cloned()));
        }
    }
    eprintln!("worst answer time: {} ms", worst.load(Ordering::SeqCst));
    assert!(failed.is_empty(), "{failed:?}");
}
