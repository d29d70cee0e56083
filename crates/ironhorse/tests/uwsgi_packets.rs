//! `--protocol uwsgi` spoken directly, every model: the response is written as uWSGI writes
//! it (status line, headers, a body ended by the connection, never chunked); malformed
//! packets, peers outside `--uwsgi-allow-from` and strangers' PROXY headers are each closed
//! with a log line while the server keeps serving; a PROXY header in front names the peer.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::python::{apps_dir, wsgi_args};
use common::{Server, HUNG};
use ironhorse_wire::uwsgi::encode;

/// A request packet for `GET target` with the variables nginx's `uwsgi_params` would send.
fn request(target: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut vars = vec![
        ("REQUEST_METHOD", "GET"),
        ("REQUEST_URI", target),
        ("PATH_INFO", target.split('?').next().unwrap()),
        (
            "QUERY_STRING",
            target.split_once('?').map_or("", |(_, q)| q),
        ),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("HTTP_HOST", "app.example"),
    ];
    vars.extend_from_slice(extra);
    let vars: Vec<(&[u8], &[u8])> = vars
        .iter()
        .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
        .collect();
    encode(0, &vars).unwrap()
}

fn connect(addr: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(HUNG)).unwrap();
    stream
}

/// Sends `bytes` and reads until the server closes; what came back (a reset counts as
/// the end).
fn exchange(addr: &str, bytes: &[u8]) -> Vec<u8> {
    let mut stream = connect(addr);
    let _ = stream.write_all(bytes);
    read_to_close(&mut stream)
}

fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("read: {e} after {} bytes", got.len()),
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn start(model: &str, extra: &[&str]) -> Server {
    let mut args = wsgi_args(model, "uwsgi_app:application", &apps_dir());
    args.extend(["--protocol", "uwsgi"].map(String::from));
    args.extend(extra.iter().map(|s| s.to_string()));
    Server::start(&args)
}

per_model!(uwsgi_answers_as_uwsgi_does, |model| {
    let server = start(model, &[]);
    let got = text(&exchange(
        &server.addr,
        &request(
            "/env?a=1",
            &[("REMOTE_ADDR", "192.0.2.7"), ("REMOTE_PORT", "4000")],
        ),
    ));
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
    assert!(got.contains("Connection: close\r\n"), "{got}");
    assert!(got.contains("\"REMOTE_ADDR\": \"192.0.2.7\""), "{got}");
    assert!(got.contains("\"QUERY_STRING\": \"a=1\""), "{got}");

    // A stream of unknown length: plain bytes ended by the connection, no chunk framing.
    let release = common::temp_path("release");
    let mut stream = connect(&server.addr);
    let target = format!("/events?release={}", release.display());
    stream.write_all(&request(&target, &[])).unwrap();
    let mut first = Vec::new();
    let mut chunk = [0u8; 4096];
    while !text(&first).contains("data: first\n\n") {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "closed before the first event: {}", text(&first));
        first.extend_from_slice(&chunk[..n]);
    }
    std::fs::write(&release, "").unwrap();
    first.extend(read_to_close(&mut stream));
    let got = text(&first);
    let _ = std::fs::remove_file(&release);
    assert!(!got.contains("Transfer-Encoding"), "{got}");
    assert!(
        got.ends_with("\r\n\r\ndata: first\n\ndata: released\n\n"),
        "{got}"
    );
});

per_model!(
    malformed_packets_are_closed_and_the_server_keeps_serving,
    |model| {
        let server = start(model, &["--limit-request-fields", "10"]);
        let mut too_many: Vec<(String, String)> = Vec::new();
        for i in 0..100 {
            too_many.push((format!("HTTP_X_{i}"), "1".into()));
        }
        let too_many: Vec<(&str, &str)> = too_many
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "modifier1 5",
                vec![5, 0, 0, 0],
                "modifier1 5 is not supported",
            ),
            (
                "a key size past the block",
                vec![0, 4, 0, 0, 9, 0, b'A', b'B'],
                "runs past the end",
            ),
            (
                "more variables than --limit-request-fields allows",
                request("/env", &too_many),
                "more than 74 variables",
            ),
            (
                "a header value with a line break",
                request("/env", &[("HTTP_X_EVIL", "a\r\nContent-Length: 5")]),
                "has a line break",
            ),
            (
                "no method",
                encode(0, &[(b"REQUEST_URI", b"/")]).unwrap(),
                "without REQUEST_METHOD",
            ),
            (
                "a packet cut short",
                vec![0, 200, 0, 0, 1],
                "ended before its uwsgi packet",
            ),
        ];
        for (what, bytes, logged) in cases {
            let mut stream = connect(&server.addr);
            stream.write_all(&bytes).unwrap();
            // A packet cut short is only known to be one when the peer says it sent everything.
            stream.shutdown(std::net::Shutdown::Write).unwrap();
            let got = read_to_close(&mut stream);
            assert!(got.is_empty(), "{what}: answered {}", text(&got));
            assert!(server.log_contains(logged), "{what}: {}", server.log_text());
            let got = text(&exchange(&server.addr, &request("/env", &[])));
            assert!(got.starts_with("HTTP/1.1 200 OK"), "after {what}: {got}");
        }
    }
);

per_model!(only_peers_in_uwsgi_allow_from_are_served, |model| {
    let server = start(model, &["--uwsgi-allow-from", "10.0.0.0/8"]);
    let got = exchange(&server.addr, &request("/env", &[]));
    assert!(got.is_empty(), "answered {}", text(&got));
    assert!(
        server.log_contains("not in --uwsgi-allow-from"),
        "{}",
        server.log_text()
    );
});

per_model!(a_proxy_header_in_front_of_uwsgi_names_the_peer, |model| {
    let server = start(model, &["--proxy-protocol", "v1"]);
    // The proxy named by the header (127.0.0.1, in the default list) sends the packet.
    let mut bytes = b"PROXY TCP4 127.0.0.1 127.0.0.1 4000 80\r\n".to_vec();
    bytes.extend(request("/env", &[("REMOTE_ADDR", "198.51.100.4")]));
    let got = text(&exchange(&server.addr, &bytes));
    assert!(got.contains("\"REMOTE_ADDR\": \"198.51.100.4\""), "{got}");
    // A header naming a peer outside --uwsgi-allow-from: not served.
    let mut bytes = b"PROXY TCP4 198.51.100.9 127.0.0.1 4000 80\r\n".to_vec();
    bytes.extend(request("/env", &[]));
    assert!(exchange(&server.addr, &bytes).is_empty());
    assert!(server.log_contains("from 198.51.100.9:4000: the peer is not in --uwsgi-allow-from"));
});
