//! A blocking application (the shape of a WSGI app) on every driver, over real sockets:
//! request bodies stream in as the application reads them, `100 Continue` is sent on the
//! first read, and streamed response chunks reach the client as they are produced.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use ironhorse_app::{Body, Request, Response, Service};
use ironhorse_protocol::{Http, HttpSettings};
use ironhorse_runtime::listener::{BindAddr, Listener};
use ironhorse_runtime::{Driver, DriverConfig};

/// `/upload`: reads the body in small pieces and answers its length and a checksum.
/// `/stream`: three chunks, the last two only once the client opened the gate (so the first
/// can only reach it if it is sent as produced). `/fail`: fails mid-stream.
struct App {
    gate: Arc<Gate>,
}

/// Opened by the client once it has the first chunk.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }

    /// Waits until the gate opens; gives up after much longer than the client waits for
    /// the first chunk, so a server that holds it back fails the test rather than hangs it.
    fn wait(&self) {
        let open = self.open.lock().unwrap();
        let _ = self
            .opened
            .wait_timeout_while(open, 2 * READ_TIMEOUT, |open| !*open)
            .unwrap();
    }
}

/// How long the client waits for any read: only bounds a failing test.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

impl Service for App {
    fn call(&self, req: Request<'_>) -> Response {
        match req.head.path() {
            "/upload" => {
                let (mut len, mut sum, mut buf) = (0u64, 0u64, [0u8; 1000]);
                loop {
                    match req.body.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            len += n as u64;
                            sum = buf[..n]
                                .iter()
                                .fold(sum, |s, &b| s.wrapping_mul(31).wrapping_add(b as u64));
                        }
                        Err(e) => return Response::text(400, format!("body error: {e}")),
                    }
                }
                Response::text(200, format!("{len} {sum}"))
            }
            "/stream" | "/fail" => {
                let fail = req.head.path() == "/fail";
                let gate = self.gate.clone();
                let chunks = (0..3).map(move |i| {
                    if i == 1 && !fail {
                        gate.wait();
                    }
                    if fail && i == 1 {
                        Err(std::io::Error::other("app failed"))
                    } else {
                        Ok(format!("data: {i}\n\n").into_bytes())
                    }
                });
                Response {
                    status: 200,
                    headers: vec![],
                    body: Body::Stream {
                        chunks: Box::new(chunks),
                        length: None,
                    },
                }
            }
            _ => Response::text(404, "no"),
        }
    }

    fn may_block(&self) -> bool {
        true
    }
}

fn start(driver: Driver) -> (String, Arc<Gate>) {
    let listener = Listener::bind(&BindAddr::parse("127.0.0.1:0").unwrap(), 128, false).unwrap();
    let addr = listener
        .display_addr()
        .trim_start_matches("http://")
        .to_string();
    let settings = HttpSettings {
        offload_threads: 4,
        ..HttpSettings::for_tests()
    };
    let gate = Arc::new(Gate::default());
    let app = App { gate: gate.clone() };
    let protocol = Arc::new(Http::new(Arc::new(app), settings));
    std::thread::spawn(move || {
        let config = DriverConfig {
            listeners: vec![listener],
            protocol,
            threads: 4,
            max_connections: 100,
            graceful_timeout: Duration::from_secs(1),
            hooks: Arc::new(ironhorse_protocol::hooks::Detached),
        };
        driver.run(config).unwrap();
    });
    (addr, gate)
}

fn checksum(data: &[u8]) -> u64 {
    data.iter()
        .fold(0u64, |s, &b| s.wrapping_mul(31).wrapping_add(b as u64))
}

fn read_until(stream: &mut TcpStream, needle: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(needle) {
        if stream.read(&mut byte).unwrap() == 0 {
            break;
        }
        got.push(byte[0]);
    }
    got
}

fn uploads_stream_in(driver: Driver) {
    let (addr, _gate) = start(driver);
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    // Content-Length, with Expect: the body is sent only after 100 Continue.
    stream.write_all(format!("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n", body.len()).as_bytes()).unwrap();
    assert_eq!(
        read_until(&mut stream, b"\r\n\r\n"),
        b"HTTP/1.1 100 Continue\r\n\r\n"
    );
    stream.write_all(&body).unwrap();
    let answer = String::from_utf8(read_until(
        &mut stream,
        format!("{}", checksum(&body)).as_bytes(),
    ))
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(
        answer.ends_with(&format!("{} {}", body.len(), checksum(&body))),
        "{answer}"
    );
    // Chunked, on the same connection, in uneven pieces.
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    for piece in body.chunks(70_001) {
        stream
            .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
            .unwrap();
        stream.write_all(piece).unwrap();
        stream.write_all(b"\r\n").unwrap();
    }
    stream.write_all(b"0\r\n\r\n").unwrap();
    let answer = String::from_utf8(read_until(
        &mut stream,
        format!("{}", checksum(&body)).as_bytes(),
    ))
    .unwrap();
    assert!(
        answer.ends_with(&format!("{} {}", body.len(), checksum(&body))),
        "{answer}"
    );
}

fn chunks_arrive_as_produced(driver: Driver) {
    let (addr, gate) = start(driver);
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stream
        .write_all(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let head = String::from_utf8(read_until(&mut stream, b"\r\n\r\n")).unwrap();
    assert!(head.contains("Transfer-Encoding: chunked"), "{head}");
    // The rest of the stream waits for the gate: the first event arrives only if it was
    // sent as produced (otherwise the read times out and the test fails).
    let first = read_until(&mut stream, b"data: 0\n\n\r\n");
    assert!(first.ends_with(b"data: 0\n\n\r\n"));
    gate.open();
    let rest = read_until(&mut stream, b"0\r\n\r\n");
    assert!(String::from_utf8_lossy(&rest).contains("data: 2"));
    // A failing stream: the connection closes without the final chunk.
    stream
        .write_all(b"GET /fail HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut all = Vec::new();
    stream.read_to_end(&mut all).unwrap();
    let text = String::from_utf8_lossy(&all);
    assert!(text.contains("data: 0"), "{text}");
    assert!(
        !text.ends_with("0\r\n\r\n"),
        "a failed stream must not look complete: {text}"
    );
}

macro_rules! per_driver {
    ($($name:ident: $driver:expr,)*) => {$(
        mod $name {
            use super::*;
            #[test] fn uploads_stream_in_with_100_continue() { uploads_stream_in($driver) }
            #[test] fn streamed_chunks_arrive_as_produced() { chunks_arrive_as_produced($driver) }
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
