//! WebSockets for ASGI apps over real sockets, checked by a strict client (the `websockets`
//! package, tests/apps/ws_client.py) and by raw frames where a client library would refuse
//! to misbehave; under every model that hosts ASGI. Then the long-connection loads: 1,000
//! WebSockets echoing at once, and 10,000 server-sent event streams on one worker (one
//! Python thread), each client a separate process on loopback.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use common::client::{get, Conn};
use common::{python, Server, HUNG};

fn hosts() -> Vec<Vec<String>> {
    let mut hosts = Vec::new();
    for model in common::models() {
        match model {
            "event" => {
                hosts.push(vec!["--model".into(), "event".into()]);
                hosts.push(vec![
                    "--model".into(),
                    "event".into(),
                    "-w".into(),
                    "2".into(),
                ]);
            }
            "async" => hosts.push(vec!["--model".into(), "async".into()]),
            _ => {}
        }
    }
    hosts
}

macro_rules! per_host {
    ($name:ident, |$args:ident| $body:block) => {
        #[test]
        fn $name() {
            fn run($args: &[String]) $body
            let mut failed = Vec::new();
            for args in hosts() {
                eprintln!("--- {args:?}");
                if std::panic::catch_unwind(|| run(&args)).is_err() {
                    failed.push(args);
                }
            }
            assert!(failed.is_empty(), "failed under {failed:?}");
        }
    };
}

fn start(args: &[String], spec: &str, extra: &[&str]) -> Server {
    let mut all = args.to_vec();
    all.extend([
        spec.to_string(),
        "--chdir".into(),
        python::apps_dir().display().to_string(),
    ]);
    all.extend(extra.iter().map(|s| s.to_string()));
    Server::start(&all)
}

/// Runs a case of ws_client.py against `addr`; its JSON answer.
fn client(case: &str, addr: &str, args: &[&str]) -> serde_json::Value {
    script_client("ws_client.py", case, addr, args)
}

/// Runs a case of the client `script` (in tests/apps) against `addr`; its JSON answer.
fn script_client(script: &str, case: &str, addr: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(python::venv().join("bin/python"))
        .arg(python::apps_dir().join(script))
        .args([case, addr])
        .args(args)
        .output()
        .expect("run the websockets client");
    assert!(
        out.status.success(),
        "{case}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

per_host!(echo_text_binary_fragmented_ping_and_close_codes, |args| {
    let server = start(args, "asgi_ws_app:app", &[]);
    let seen = client("echo", &server.addr, &[]);
    assert_eq!(
        seen["subprotocol"], "chat",
        "the app picked the first offer"
    );
    assert_eq!(seen["header"], "/echo", "the app's accept headers");
    assert_eq!(seen["text"], "héllo");
    assert_eq!(seen["binary"], true);
    assert_eq!(seen["fragmented"], "fragmented");
    assert_eq!(seen["big"], true, "a 1 MiB message both ways");
    assert_eq!(seen["pong"], true);
    assert_eq!(seen["close_sent"][0], 4000, "the close echoed");
    // The app got the client's code and reason (any worker that served it).
    let needle = r#"["websocket.disconnect", 4000, "client says bye"]"#;
    assert!(common::eventually(|| get(&server.addr, "/")
        .text()
        .contains(needle)));

    let closed = client("server_closes", &server.addr, &[]);
    assert_eq!(
        closed,
        serde_json::json!({"code": 4001, "reason": "server says bye", "messages": []})
    );
    // A code that may not be sent raises in the app's send() (it may then close properly)
    // instead of going out as another code.
    let closed = client("server_closes", &server.addr, &["/bad-close-code"]);
    assert_eq!(closed["code"], 4002, "{closed}");
    let said = closed["messages"][0].as_str().unwrap_or_default();
    assert!(said.contains("code 1006 may not be sent"), "{closed}");
});

// The 101's handshake fields are the server's. A subprotocol the client did not offer never
// reaches it (RFC 6455 §4.2.2: clients fail the connection on one): the socket opens without
// it, and the app's mistake is logged.
per_host!(the_handshake_fields_are_the_servers, |args| {
    let server = start(args, "asgi_ws_app:app", &[]);
    let seen = client("unoffered", &server.addr, &[]);
    assert_eq!(
        seen,
        serde_json::json!({"subprotocol": null, "echoed": "still works"})
    );
    assert!(server.log_contains("did not offer"));
    // Handshake fields of the app's own are the server's to set (a subprotocol named as
    // a header still counts).
    let seen = client("own_handshake_fields", &server.addr, &[]);
    assert_eq!(
        seen,
        serde_json::json!({"subprotocol": "chat", "echoed": "fine", "accepts": 1})
    );
});

per_host!(the_websocket_scope, |args| {
    let server = start(args, "asgi_ws_app:app", &[]);
    let scope = client("scope", &server.addr, &[]);
    assert_eq!(scope["type"], "websocket");
    assert_eq!(scope["scheme"], "ws");
    assert_eq!(scope["path"], "/scope");
    assert_eq!(scope["http_version"], "1.1");
    assert_eq!(scope["subprotocols"], serde_json::json!([]));
    assert_eq!(scope["asgi"]["version"], "3.0");
    assert!(scope.get("method").is_none());
});

per_host!(oversize_messages_close_1009, |args| {
    let server = start(args, "asgi_ws_app:app", &["--ws-max-message-size", "64K"]);
    assert_eq!(client("oversize", &server.addr, &["100000"])["code"], 1009);
    assert_eq!(
        client("scope", &server.addr, &[])["type"],
        "websocket",
        "others unaffected"
    );
});

per_host!(refusals_deny_raise_and_bad_handshakes, |args| {
    let server = start(args, "asgi_ws_app:app", &[]);
    assert_eq!(client("refused", &server.addr, &["/deny"])["status"], 403);
    assert_eq!(client("refused", &server.addr, &["/raise"])["status"], 500);
    assert!(server.log_contains("RuntimeError: refusing by raising"));

    // Bad handshakes never reach the app: 400, or 426 naming the version we speak.
    let mut conn = Conn::open(&server.addr);
    conn.send(b"GET /echo HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n");
    assert_eq!(conn.response("GET").status, 400, "no key");
    let mut conn = Conn::open(&server.addr);
    conn.send(b"GET /echo HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n");
    let response = conn.response("GET");
    assert_eq!(response.status, 426);
    assert_eq!(response.header("sec-websocket-version"), Some("13"));
    let mut conn = Conn::open(&server.addr);
    conn.send(b"GET /echo HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
    assert_eq!(
        conn.response("GET").status,
        400,
        "no version: not a handshake"
    );
});

/// Opens a WebSocket by hand; the stream after the 101.
fn raw_open(addr: &str) -> TcpStream {
    raw_open_at(addr, "/echo")
}

/// Opens a WebSocket to `path` by hand; the stream after the 101.
fn raw_open_at(addr: &str, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(HUNG)).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "{head}"
    );
    stream
}

/// The close code of the first close frame the server sends.
fn close_code(stream: &mut TcpStream) -> u16 {
    loop {
        let mut header = [0u8; 2];
        stream.read_exact(&mut header).unwrap();
        let len = (header[1] & 0x7f) as usize;
        assert!(len < 126, "small frames only here");
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload).unwrap();
        if header[0] & 0x0f == 0x8 {
            return u16::from_be_bytes([payload[0], payload[1]]);
        }
    }
}

fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    frame.extend(mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

per_host!(invalid_utf8_closes_1007_and_unmasked_frames_1002, |args| {
    let server = start(args, "asgi_ws_app:app", &[]);
    let mut stream = raw_open(&server.addr);
    stream
        .write_all(&masked_frame(0x1, b"ok \xff\xfe"))
        .unwrap();
    assert_eq!(close_code(&mut stream), 1007);

    let mut stream = raw_open(&server.addr);
    stream.write_all(&[0x81, 0x02, b'h', b'i']).unwrap();
    assert_eq!(close_code(&mut stream), 1002);
    let needle = r#"["websocket.disconnect", 1002"#;
    assert!(common::eventually(|| get(&server.addr, "/")
        .text()
        .contains(needle)));
});

/// The next frame the server sends (small ones only): opcode and payload; `None` at EOF.
fn next_frame(stream: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut header = [0u8; 2];
    match stream.read(&mut header[..1]).unwrap() {
        0 => return None,
        _ => stream.read_exact(&mut header[1..]).unwrap(),
    }
    let len = (header[1] & 0x7f) as usize;
    assert!(len < 126, "small frames only here");
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).unwrap();
    Some((header[0] & 0x0f, payload))
}

const PINGS_FAST: &[&str] = &["--ws-ping-interval", "0.2", "--ws-ping-timeout", "0.2"];

/// Fast pings, but a pong may take long: the server pings again only once the last ping was
/// answered, so a third ping proves two pongs were taken, however long the timeout (a 0.2 s
/// one asks a client process on a loaded machine to be scheduled within 0.2 s each time).
const PINGS_FAST_PATIENT: &[&str] = &["--ws-ping-interval", "0.2", "--ws-ping-timeout", "10"];

per_host!(a_silent_client_is_pinged_and_answering_keeps_it, |args| {
    let server = start(args, "asgi_ws_app:app", PINGS_FAST_PATIENT);
    // A real client with its own pings off: the library answers ours. Three pings means
    // the connection outlived several intervals, each ping answered.
    let seen = client("answers_server_pings", &server.addr, &["3"]);
    assert!(seen["pings"].as_u64().unwrap() >= 3, "{seen}");
    assert_eq!(seen["echoed"], "still here");
    assert_eq!(seen["close"], 1000, "a clean close after the pings");
});

per_host!(a_client_that_never_answers_pings_is_closed_1011, |args| {
    let server = start(args, "asgi_ws_app:app", PINGS_FAST);
    let mut stream = raw_open(&server.addr);
    let (opcode, _) = next_frame(&mut stream).expect("a ping");
    assert_eq!(opcode, 0x9, "the server pings first");
    // Never answered: the close (1011) follows, then the server ends the connection
    // without waiting for our close.
    let (opcode, payload) = next_frame(&mut stream).expect("a close");
    assert_eq!(opcode, 0x8);
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1011);
    assert_eq!(&payload[2..], b"keepalive ping timeout");
    assert_eq!(next_frame(&mut stream), None, "then EOF");
    // The app got websocket.disconnect: the client never closed (1006).
    let needle = r#"["websocket.disconnect", 1006, ""]"#;
    assert!(common::eventually(|| get(&server.addr, "/")
        .text()
        .contains(needle)));
});

// The closing handshake is bounded: a client that never answers our close frame (here
// after a protocol error: a reserved opcode) is closed after `--ws-close-timeout`, even with
// pings off (before, it held the connection until its own end).
per_host!(
    an_unanswered_close_ends_the_connection_after_the_close_timeout,
    |args| {
        let server = start(
            args,
            "asgi_ws_app:app",
            &["--ws-ping-interval", "0", "--ws-close-timeout", "0.5"],
        );
        let mut stream = raw_open(&server.addr);
        stream.write_all(&masked_frame(0x3, b"")).unwrap();
        let (opcode, payload) = next_frame(&mut stream).expect("a close");
        assert_eq!(opcode, 0x8);
        assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1002);
        assert_eq!(next_frame(&mut stream), None, "then EOF, without our close");
        let needle = r#"["websocket.disconnect", 1002"#;
        assert!(common::eventually(|| get(&server.addr, "/")
            .text()
            .contains(needle)));
    }
);

#[test]
fn a_thousand_websockets_echo_at_once() {
    let server = start(&["--model".into(), "event".into()], "asgi_ws_app:app", &[]);
    let seen = client("many_echo", &server.addr, &["1000"]);
    assert_eq!(seen, serde_json::json!({"open": 1000, "echoed": 1000}));
}

#[test]
fn ten_thousand_sse_streams_on_one_worker() {
    for model in ["event", "async"] {
        if !common::models().contains(&model) {
            continue;
        }
        let server = start(
            &[
                "--model".into(),
                model.into(),
                "--max-connections".into(),
                "12000".into(),
            ],
            "asgi_app:app",
            &[],
        );
        let seen = client("many_sse", &server.addr, &["10000"]);
        assert_eq!(
            seen,
            serde_json::json!({"open": 10000, "finished": 10000}),
            "{model}"
        );
    }
}

per_host!(a_denial_response_of_the_apps_own, |args| {
    let server = start(args, "asgi_ws_ext_app:app", &[]);
    let extensions = script_client("ws_ext_client.py", "extensions", &server.addr, &[]);
    assert_eq!(
        extensions,
        serde_json::json!({"websocket.http.response": {}}),
        "the denial extension is announced"
    );
    let seen = script_client("ws_ext_client.py", "denied", &server.addr, &["/deny-http"]);
    assert_eq!(
        seen,
        serde_json::json!({"status": 418, "body": "no websockets for you",
            "x-denied": "yes", "content-type": "text/plain"})
    );
    // A denial broken off halfway (a websocket.send after it started) is cut: the head
    // and the first piece went out, no end of the body, the connection closes.
    let mut conn = Conn::open(&server.addr);
    conn.send(b"GET /deny-then-send HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    let mut raw = Vec::new();
    conn.stream
        .read_to_end(&mut raw)
        .expect("the server closes the connection");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    assert!(raw.starts_with("HTTP/1.1 418 "), "{raw}");
    assert!(
        raw.contains("partial") && !raw.ends_with("0\r\n\r\n"),
        "{raw}"
    );
    assert!(server.log_contains(
        "unexpected ASGI message \"websocket.send\" after websocket.http.response.start"
    ));
});

per_host!(a_graceful_stop_closes_websockets_with_1001, |args| {
    // A graceful timeout far longer than any wait here: the stop ends because the
    // WebSocket closed, not because time ran out.
    let server = start(args, "asgi_ws_ext_app:app", &["--graceful-timeout", "600"]);
    let record = common::temp_path("going-away");
    let mut child = Command::new(python::venv().join("bin/python"))
        .arg(python::apps_dir().join("ws_ext_client.py"))
        .args(["going_away", &server.addr, &record.display().to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line.trim(), "open");
    assert_eq!(server.stop(HUNG), Some(0), "stopped gracefully, in time");
    let mut answer = String::new();
    stdout.read_to_string(&mut answer).unwrap();
    assert!(child.wait().unwrap().success());
    let seen: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(seen["code"], 1001, "going away: {seen}");
    let told = std::fs::read_to_string(&record).unwrap();
    assert!(told.starts_with("websocket.disconnect 1001"), "{told}");
    let _ = std::fs::remove_file(&record);
});

per_host!(
    a_graceful_stop_closes_1001_a_websocket_whose_app_is_behind,
    |args| {
        let server = start(args, "asgi_ws_ext_app:app", &["--graceful-timeout", "600"]);
        let mut stream = raw_open_at(&server.addr, "/behind");
        // A ping, then far more messages than the app's receive queue holds (it never
        // receives), in one write: the pong says the server read them, and it stopped reading
        // once the queue was full.
        let mut burst = masked_frame(0x9, b"are you there");
        for _ in 0..64 {
            burst.extend(masked_frame(0x1, b"never read"));
        }
        stream.write_all(&burst).unwrap();
        let (opcode, payload) = next_frame(&mut stream).expect("a pong");
        assert_eq!((opcode, payload.as_slice()), (0xA, &b"are you there"[..]));
        let stopping = std::thread::spawn(move || server.stop(HUNG));
        assert_eq!(close_code(&mut stream), 1001, "going away");
        stream
            .write_all(&masked_frame(0x8, &1000u16.to_be_bytes()))
            .unwrap();
        assert_eq!(
            stopping.join().unwrap(),
            Some(0),
            "stopped gracefully, in time"
        );
    }
);
