//! The engine against strict real clients: Python's `websockets` and `wsproto` (from the test
//! venv) talk to a small blocking echo server built on `ironhorse_ws` over real loopback
//! sockets. Each scenario of `strict_client.py` is one test.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;

#[path = "../examples/support/echo.rs"]
mod echo;

use echo::start_server;

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
    // No version at all: not a handshake (RFC 6455 §4.2.2), not an unsupported version.
    let r = raw_request(port, &format!("{base}\n"));
    assert!(r.starts_with("HTTP/1.1 400 "), "{r}");
    let r = raw_request(port, &format!("{base}Sec-WebSocket-Version: 13\n\n"));
    assert!(r.starts_with("HTTP/1.1 101 "), "{r}");
    assert!(
        r.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{r}"
    );
}
