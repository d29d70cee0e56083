//! A small blocking echo server on `ironhorse_ws` (one thread per connection, std sockets):
//! the handshake with `handshake::validate`/`accept` over `ironhorse_h1`'s head parser, then
//! every message echoed. Shared by `examples/echo_server.rs`, `examples/echo_bench.rs` and
//! `tests/strict_client.rs`. Two text messages are commands, for the tests: `stats` is
//! answered with the wire byte counts as JSON, `close:CODE:REASON` closes with that code.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

use ironhorse_h1::{Limits, ServerConn};
use ironhorse_ws::{handshake, Config, Connection, Event, Message, State};

/// The server's message limit: the 1 MiB messages pass, 3 MiB ones get 1009.
pub const LIMIT: usize = 2 << 20;

pub fn config() -> Config {
    Config {
        max_message_size: LIMIT,
        max_frame_size: LIMIT,
        ..Config::default()
    }
}

/// Starts the echo server on an ephemeral port; it serves until the test process ends.
pub fn start_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream));
        }
    });
    port
}

/// Reads the request head, answers the handshake, then echoes messages until closed.
fn serve(mut stream: TcpStream) {
    // A safety net against a test hanging forever, not a pace.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(120)));
    let mut h1 = ServerConn::new(Limits::default());
    let mut buf = vec![0u8; 64 * 1024];
    let head = loop {
        match h1.next_request() {
            Ok(Some(head)) => break head,
            Ok(None) => {}
            Err(_) => return,
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => h1.feed(&buf[..n]),
        }
    };
    let offer = match handshake::validate(&head) {
        Ok(offer) => offer,
        Err(e) => {
            let mut answer = format!(
                "HTTP/1.1 {} Bad Handshake\r\nContent-Length: 0\r\nConnection: close\r\n",
                e.status()
            );
            for (name, value) in e.headers() {
                answer.push_str(&format!("{name}: {}\r\n", String::from_utf8_lossy(&value)));
            }
            answer.push_str("\r\n");
            let _ = stream.write_all(answer.as_bytes());
            return;
        }
    };
    let (headers, deflate) = handshake::accept(&offer, None, &config());
    let mut answer = b"HTTP/1.1 101 Switching Protocols\r\n".to_vec();
    for (name, value) in headers {
        answer.extend_from_slice(name.as_bytes());
        answer.extend_from_slice(b": ");
        answer.extend_from_slice(&value);
        answer.extend_from_slice(b"\r\n");
    }
    answer.extend_from_slice(b"\r\n");
    if stream.write_all(&answer).is_err() {
        return;
    }
    let mut ws = Connection::new(config(), deflate);
    let (rest, _) = h1.take_input();
    ws.receive(&rest);
    echo(&mut stream, &mut ws, &mut buf, rest.len() as u64);
}

/// Counts of wire bytes after the handshake, reported to the client on "stats".
struct Wire {
    bytes_in: u64,
    bytes_out: u64,
}

fn echo(stream: &mut TcpStream, ws: &mut Connection, buf: &mut [u8], already_in: u64) {
    let mut wire = Wire {
        bytes_in: already_in,
        bytes_out: 0,
    };
    let mut out = Vec::new();
    loop {
        loop {
            match ws.next_event() {
                Ok(Some(Event::Message(msg))) => answer(ws, msg, &wire),
                Ok(Some(_)) => {} // pings are answered by the engine, closes echoed
                Ok(None) => break,
                Err(_) => {} // the close frame is queued; go on reading for the peer's
            }
        }
        ws.take_output(&mut out);
        if stream.write_all(&out).is_err() {
            return;
        }
        wire.bytes_out += out.len() as u64;
        out.clear();
        if ws.state() == State::Closed {
            let _ = stream.shutdown(Shutdown::Write);
            return;
        }
        match stream.read(buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                wire.bytes_in += n as u64;
                ws.receive(&buf[..n]);
            }
        }
    }
}

fn answer(ws: &mut Connection, msg: Message, wire: &Wire) {
    if let Message::Text(text) = &msg {
        if text == "stats" {
            let stats = format!(
                r#"{{"bytes_in": {}, "bytes_out": {}}}"#,
                wire.bytes_in, wire.bytes_out
            );
            let _ = ws.send(&Message::Text(stats));
            return;
        }
        if let Some(rest) = text.strip_prefix("close:") {
            let (code, reason) = rest.split_once(':').unwrap_or((rest, ""));
            ws.close(code.parse().unwrap_or(1000), reason);
            return;
        }
    }
    let _ = ws.send(&msg);
}
