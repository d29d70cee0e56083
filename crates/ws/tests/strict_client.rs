//! The engine against strict real clients: Python's `websockets` and `wsproto` (from the test
//! venv) talk to a small blocking echo server built on `ironhorse_ws` over real loopback
//! sockets. Each scenario of `strict_client.py` is one test.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use ironhorse_h1::{Limits, ServerConn};
use ironhorse_ws::{handshake, Config, Connection, Event, Message, State};

/// The server's message limit: the 1 MiB messages pass, 3 MiB ones get 1009.
const LIMIT: usize = 2 << 20;

fn config() -> Config {
    Config {
        max_message_size: LIMIT,
        max_frame_size: LIMIT,
        ..Config::default()
    }
}

/// Starts the echo server on an ephemeral port; it serves until the test process ends.
fn start_server() -> u16 {
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

/// The test venv (`scripts/venv.sh` makes it, with `websockets` and `wsproto`).
fn venv_python() -> PathBuf {
    let venv = match std::env::var_os("IRONHORSE_TEST_VENV") {
        Some(v) => PathBuf::from(v),
        None => {
            // Outside scripts/test.sh: make (or find) the venv the same way.
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
            let out = Command::new(root.join("scripts/venv.sh"))
                .output()
                .expect("run scripts/venv.sh");
            assert!(
                out.status.success(),
                "scripts/venv.sh failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
        }
    };
    venv.join("bin/python")
}

/// Runs one scenario of strict_client.py against a fresh server.
fn scenario(name: &str) {
    let port = start_server();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/strict_client.py");
    let out = Command::new(venv_python())
        .arg(&script)
        .arg(port.to_string())
        .arg(name)
        .output()
        .expect("run the Python client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains(&format!("PASS {name}")),
        "scenario {name} failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
}

#[test]
fn echo_plain() {
    scenario("echo_plain");
}

#[test]
fn echo_deflate() {
    scenario("echo_deflate");
}

#[test]
fn deflate_params() {
    scenario("deflate_params");
}

#[test]
fn fragmented() {
    scenario("fragmented");
}

#[test]
fn ping() {
    scenario("ping");
}

#[test]
fn close_codes() {
    scenario("close_codes");
}

#[test]
fn invalid_utf8() {
    scenario("invalid_utf8");
}

#[test]
fn unmasked() {
    scenario("unmasked");
}

#[test]
fn oversized() {
    scenario("oversized");
}

/// Sends a raw request and returns the response head (read up to its blank line).
fn raw_request(port: u16, request: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(request.replace('\n', "\r\n").as_bytes())
        .unwrap();
    let mut response = Vec::new();
    let mut byte = [0u8; 1];
    while !response.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
        response.push(byte[0]);
    }
    String::from_utf8_lossy(&response).into_owned()
}

#[test]
fn bad_handshakes_are_refused_with_their_status() {
    let port = start_server();
    let base = "GET / HTTP/1.1\nHost: x\nUpgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\n";
    let r = raw_request(port, &format!("{base}Sec-WebSocket-Version: 8\n\n"));
    assert!(r.starts_with("HTTP/1.1 426 "), "{r}");
    assert!(r.contains("Sec-WebSocket-Version: 13\r\n"), "{r}");
    let r = raw_request(
        port,
        &format!(
            "{}Sec-WebSocket-Version: 13\n\n",
            base.replace("dGhlIHNhbXBsZSBub25jZQ==", "short")
        ),
    );
    assert!(r.starts_with("HTTP/1.1 400 "), "{r}");
    let r = raw_request(port, &format!("{base}\n"));
    assert!(r.starts_with("HTTP/1.1 426 "), "{r}");
    let r = raw_request(port, &format!("{base}Sec-WebSocket-Version: 13\n\n"));
    assert!(r.starts_with("HTTP/1.1 101 "), "{r}");
    assert!(
        r.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{r}"
    );
}
