//! `--proxy-protocol` and `--health-path` through the real binary, under every model: a
//! raw client plays the load balancer, sending v1 and v2 PROXY headers; the address they
//! carry is what the WSGI application and the access log see; a missing or malformed header
//! from an allowed peer closes the connection; a header from a peer outside
//! `--proxy-allow-from` is refused while its plain requests are served; the health path is
//! answered by the server, 200 while serving and 503 while draining after TERM.

mod common;

use std::io::Read;
use std::path::Path;

use common::client::Conn;
use common::python::{apps_dir, wsgi_args};
use common::{eventually, temp_path, Server};
use serde_json::Value;

fn serve(model: &str, extra: &[&str]) -> Server {
    let mut args = wsgi_args(model, "forwarded_app:application", &apps_dir());
    args.extend(extra.iter().map(|s| s.to_string()));
    Server::start(&args)
}

const GET_ENV: &[u8] = b"GET /env HTTP/1.1\r\nHost: t\r\n\r\n";

/// Sends `preamble` and a GET in pieces split at `split`, and returns the environ.
fn environ_after(conn: &mut Conn, preamble: &[u8], split: usize) -> Value {
    let mut bytes = preamble.to_vec();
    bytes.extend_from_slice(GET_ENV);
    let split = split.min(bytes.len());
    conn.send(&bytes[..split]);
    conn.send(&bytes[split..]);
    let r = conn.response("GET");
    assert_eq!(r.status, 200, "{}", r.text());
    serde_json::from_slice(&r.body).expect("json")
}

/// A v2 PROXY header for a TCP connection from `src` to `dst` (IPv6), with one TLV.
fn v2_tcp6(src: [u16; 8], sport: u16, dst: [u16; 8], dport: u16) -> Vec<u8> {
    let mut block = Vec::new();
    for ip in [src, dst] {
        for part in ip {
            block.extend_from_slice(&part.to_be_bytes());
        }
    }
    block.extend_from_slice(&sport.to_be_bytes());
    block.extend_from_slice(&dport.to_be_bytes());
    // PP2_TYPE_AUTHORITY = 0x02, "example.org": skipped by the server.
    block.extend_from_slice(&[0x02, 0, 11]);
    block.extend_from_slice(b"example.org");
    let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    header.extend_from_slice(&[0x21, 0x21]); // v2 PROXY, TCP over IPv6
    header.extend_from_slice(&(block.len() as u16).to_be_bytes());
    header.extend_from_slice(&block);
    header
}

/// A v2 LOCAL header (a proxy's own health check): the real endpoints stay.
const V2_LOCAL: &[u8] = b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00";

/// Whether the server closes `conn` without answering a byte.
fn closed_without_answer(conn: &mut Conn) -> bool {
    let mut rest = Vec::new();
    match conn.stream.read_to_end(&mut rest) {
        Ok(_) => rest.is_empty(),
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

fn access_lines(log: &Path, min: usize) -> String {
    let mut text = String::new();
    eventually(|| {
        text = std::fs::read_to_string(log).unwrap_or_default();
        text.lines().count() >= min
    });
    text
}

per_model!(
    proxy_headers_name_the_client_for_the_app_and_the_log,
    |model| {
        let log = temp_path("proxy-access.log");
        let log_arg = log.display().to_string();
        let server = serve(
            model,
            &["--proxy-protocol", "v1,v2", "--access-logfile", &log_arg],
        );
        // v1, with the request in the same packet; the keep-alive connection keeps the client.
        let mut conn = Conn::open(&server.addr);
        let v1 = b"PROXY TCP4 203.0.113.7 198.51.100.1 56324 443\r\n";
        let env = environ_after(&mut conn, v1, usize::MAX);
        assert_eq!(env["REMOTE_ADDR"], "203.0.113.7", "{env}");
        assert_eq!(env["REMOTE_PORT"], "56324");
        let env = environ_after(&mut conn, b"", usize::MAX);
        assert_eq!(
            env["REMOTE_ADDR"], "203.0.113.7",
            "the second request: {env}"
        );
        // v2 over IPv6 with a TLV, sent split inside the signature and inside the addresses.
        let v2 = v2_tcp6(
            [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1],
            4242,
            [0xfd00, 0, 0, 0, 0, 0, 0, 2],
            80,
        );
        let mut conn = Conn::open(&server.addr);
        conn.send(&v2[..5]);
        let env = environ_after(&mut conn, &v2[5..], 20);
        assert_eq!(env["REMOTE_ADDR"], "2001:db8::1", "{env}");
        assert_eq!(env["REMOTE_PORT"], "4242");
        // LOCAL: the proxy speaking for itself.
        let env = environ_after(&mut Conn::open(&server.addr), V2_LOCAL, usize::MAX);
        assert_eq!(env["REMOTE_ADDR"], "127.0.0.1", "{env}");
        let text = access_lines(&log, 4);
        assert!(
            text.lines().any(|l| l.starts_with("203.0.113.7 - - [")),
            "{text}"
        );
        assert!(
            text.lines().any(|l| l.starts_with("2001:db8::1 - - [")),
            "{text}"
        );
        assert!(
            text.lines().any(|l| l.starts_with("127.0.0.1 - - [")),
            "{text}"
        );
        drop(server);
        let _ = std::fs::remove_file(&log);
    }
);

per_model!(
    a_missing_or_malformed_header_closes_the_connection,
    |model| {
        let server = serve(model, &["--proxy-protocol", "v1,v2"]);
        // No header at all: a plain request from an allowed peer is not served.
        let mut conn = Conn::open(&server.addr);
        conn.send(GET_ENV);
        assert!(closed_without_answer(&mut conn));
        assert!(server.log_contains("closing the connection from 127.0.0.1"));
        assert!(server.log_contains("no PROXY protocol header"));
        // Malformed: a bad address; then a v2 header of a version that does not exist.
        let mut conn = Conn::open(&server.addr);
        conn.send(b"PROXY TCP4 999.0.0.1 10.0.0.1 1 2\r\nGET / HTTP/1.1\r\n\r\n");
        assert!(closed_without_answer(&mut conn));
        assert!(server.log_contains("PROXY v1 line: bad IPv4 address"));
        let mut conn = Conn::open(&server.addr);
        conn.send(b"\r\n\r\n\0\r\nQUIT\n\x31\x11\x00\x0c");
        assert!(closed_without_answer(&mut conn));
        assert!(server.log_contains("PROXY v2: unsupported version 3"));
        // A header cut short by the client's end.
        let mut conn = Conn::open(&server.addr);
        conn.send(b"PROXY TCP4 203.0.113.7");
        conn.stream.shutdown(std::net::Shutdown::Write).unwrap();
        assert!(closed_without_answer(&mut conn));
        assert!(server.log_contains("ended before its PROXY header was complete"));
        // Only v1 accepted: a v2 header is refused.
        drop(server);
        let server = serve(model, &["--proxy-protocol", "v1"]);
        let mut conn = Conn::open(&server.addr);
        conn.send(V2_LOCAL);
        assert!(closed_without_answer(&mut conn));
        assert!(server.log_contains("PROXY protocol V2 is not accepted here"));
    }
);

per_model!(
    a_peer_outside_the_allow_list_is_served_but_may_not_send_a_header,
    |model| {
        // The test connects from 127.0.0.1, outside this list.
        let server = serve(
            model,
            &[
                "--proxy-protocol",
                "v1,v2",
                "--proxy-allow-from",
                "10.0.0.0/8",
            ],
        );
        let env = environ_after(&mut Conn::open(&server.addr), b"", usize::MAX);
        assert_eq!(env["REMOTE_ADDR"], "127.0.0.1", "{env}");
        for header in [
            &b"PROXY TCP4 203.0.113.7 198.51.100.1 56324 443\r\n"[..],
            V2_LOCAL,
        ] {
            let mut conn = Conn::open(&server.addr);
            conn.send(&header[..3]);
            conn.send(&header[3..]);
            conn.send(GET_ENV);
            assert!(closed_without_answer(&mut conn));
        }
        assert!(server.log_contains("a PROXY header from a peer not in --proxy-allow-from"));
    }
);

/// Sends the rest of a pipelined `GET /healthz` and the beginning of the next (a head in
/// progress keeps a stopping server's connection open), and returns the answer.
/// Whether the server side of `conn` has nothing left unread in its receive queue (the
/// kernel's view, through `ss`).
fn server_has_read(conn: &Conn) -> bool {
    let (local, peer) = (
        conn.stream.local_addr().unwrap(),
        conn.stream.peer_addr().unwrap(),
    );
    let out = std::process::Command::new("ss")
        .args(["-tnH", "state", "established", "src"])
        .arg(peer.to_string())
        .arg("dst")
        .arg(local.to_string())
        .output()
        .expect("ss");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace().next() == Some("0")
}

fn probe(conn: &mut Conn) -> (u16, String) {
    conn.send(b"\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n");
    let r = conn.response("GET");
    (r.status, r.text())
}

per_model!(
    the_health_path_is_answered_by_the_server_and_turns_503_on_term,
    |model| {
        let server = serve(model, &["--health-path", "/healthz"]);
        let mut conn = Conn::open(&server.addr);
        conn.send(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = conn.response("GET");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"ok\n", "not the application's JSON");
        conn.send(b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
        let r = conn.response("POST");
        assert_eq!(r.status, 405);
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
        // Other paths still reach the application.
        let env = environ_after(&mut conn, b"", usize::MAX);
        assert_eq!(env["REMOTE_ADDR"], "127.0.0.1");
        // Draining: keep a head in progress, stop the server, and probe until the worker has
        // seen the stop; every answer until then is 200.
        conn.send(b"GET /healthz HTTP/1.1\r\nHost: t\r\n");
        // Until the server has read them, those bytes are not a head in progress: a stop
        // would find the connection idle and close it (as it should).
        assert!(
            eventually(|| server_has_read(&conn)),
            "the partial head stayed unread"
        );
        server.signal(15);
        let mut answers = Vec::new();
        let drained = eventually(|| {
            let (status, text) = probe(&mut conn);
            answers.push(status);
            status == 503 && text.ends_with("draining\n")
        });
        assert!(drained, "{answers:?}\n{}", server.log_text());
        assert!(
            answers.iter().all(|s| *s == 200 || *s == 503),
            "{answers:?}"
        );
    }
);

per_model!(
    the_access_log_names_the_client_forwarded_headers_resolved,
    |model| {
        let log = temp_path("forwarded-access.log");
        let log_arg = log.display().to_string();
        let server = serve(
            model,
            &["--proxy-protocol", "v1", "--access-logfile", &log_arg],
        );
        // From loopback (a trusted proxy by default) with a PROXY header naming 127.0.0.1 too:
        // X-Forwarded-For is believed, for the application and the log alike.
        let mut conn = Conn::open(&server.addr);
        conn.send(b"PROXY TCP4 127.0.0.1 127.0.0.1 40000 80\r\n");
        conn.send(b"GET /env HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 6.6.6.6, 203.0.113.9\r\n\r\n");
        let r = conn.response("GET");
        let env: Value = serde_json::from_slice(&r.body).expect("json");
        assert_eq!(env["REMOTE_ADDR"], "203.0.113.9", "{env}");
        // A PROXY header naming a client outside --forwarded-allow-ips: its X-Forwarded-For
        // is a plain header, and the log shows the client the header named.
        let mut conn = Conn::open(&server.addr);
        conn.send(b"PROXY TCP4 198.51.100.4 127.0.0.1 40001 80\r\n");
        conn.send(b"GET /env HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 203.0.113.10\r\n\r\n");
        let r = conn.response("GET");
        let env: Value = serde_json::from_slice(&r.body).expect("json");
        assert_eq!(env["REMOTE_ADDR"], "198.51.100.4", "{env}");
        let text = access_lines(&log, 2);
        assert!(
            text.lines().any(|l| l.starts_with("203.0.113.9 - - [")),
            "{text}"
        );
        assert!(
            text.lines().any(|l| l.starts_with("198.51.100.4 - - [")),
            "{text}"
        );
        assert!(!text.contains("203.0.113.10 - -"), "{text}");
        drop(server);
        let _ = std::fs::remove_file(&log);
    }
);
