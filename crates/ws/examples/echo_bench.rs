//! Echo throughput of the engine over loopback: `CONNS` client connections each send
//! `MESSAGES` 100-byte binary messages (in windows of `WINDOW` in flight) to the in-process
//! echo server and read the echoes back; prints messages per second and the p50/p99 time
//! for a window's echoes to come back (per message with `WINDOW` 1). Bounded: it stops when
//! every echo is back.
//!
//! `cargo run --release -p ironhorse-ws --example echo_bench [CONNS] [MESSAGES] [WINDOW]`

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[path = "support/echo.rs"]
mod echo;

const SIZE: usize = 100;

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// A masked client binary frame of `payload` (< 126 bytes).
fn masked_frame(payload: &[u8]) -> Vec<u8> {
    let mask = [0xA1, 0xB2, 0xC3, 0xD4];
    let mut f = vec![0x82, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

fn handshake(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_nodelay(true).ok();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(request.as_bytes()).expect("send handshake");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).expect("read handshake"), 1, "closed");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101 "),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s
}

/// Sends `messages` in windows and waits for each window's echoes (2-byte header + 100);
/// returns each window's round-trip time.
fn run_client(port: u16, messages: usize, window: usize) -> Vec<Duration> {
    let mut s = handshake(port);
    let frame = masked_frame(&[b'x'; SIZE]);
    let echo_len = 2 + SIZE;
    let mut batch = Vec::with_capacity(frame.len() * window);
    let mut buf = vec![0u8; echo_len * window];
    let mut sent = 0;
    let mut rtts = Vec::with_capacity(messages / window + 1);
    while sent < messages {
        let n = window.min(messages - sent);
        batch.clear();
        for _ in 0..n {
            batch.extend_from_slice(&frame);
        }
        let start = Instant::now();
        s.write_all(&batch).expect("send");
        s.read_exact(&mut buf[..echo_len * n]).expect("echoes");
        rtts.push(start.elapsed());
        sent += n;
    }
    rtts
}

fn main() {
    let (conns, messages, window) = (arg(1, 4), arg(2, 50_000), arg(3, 64).max(1));
    let port = echo::start_server();
    let start = Instant::now();
    let clients: Vec<_> = (0..conns)
        .map(|_| std::thread::spawn(move || run_client(port, messages, window)))
        .collect();
    let mut rtts: Vec<Duration> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client"))
        .collect();
    let secs = start.elapsed().as_secs_f64();
    let total = conns * messages;
    rtts.sort_unstable();
    let pct = |p: usize| rtts[(rtts.len() - 1) * p / 100].as_secs_f64() * 1e6;
    println!(
        "{total} echoes of {SIZE} bytes over {conns} connections (window {window}) in {secs:.2} s: {:.0} messages/s; window round trip p50 {:.0} µs, p99 {:.0} µs",
        total as f64 / secs,
        pct(50),
        pct(99)
    );
}
