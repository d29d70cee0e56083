//! HTTP/2 (h2c by prior knowledge, and over TLS by ALPN) through the real binary: curl, and a strict client on
//! Python's `h2` package (tests/apps/h2_client.py) for streams, flow control, resets,
//! GOAWAY and floods. Every test body runs per model: `event` and `async` host HTTP/2, the
//! other models refuse it at startup with one line.

mod common;
#[path = "http2/support.rs"]
mod support;
// The TLS tests' certificate authority; this file uses a part of it.
#[allow(dead_code)]
#[path = "tls/pki.rs"]
mod pki;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use common::python::{apps_dir, venv, wsgi_args};
use common::{eventually, run_to_exit, Server};
use serde_json::Value;
use sha2::{Digest, Sha256};
use support::{client, curl, h2_flags, hosts_h2, Files};

const FIFTY_MB: usize = 50 << 20;

/// The WSGI test app with `/s/` served from `files`, over HTTP/2 too.
fn serve(model: &str, files: &Path, extra: &[String]) -> Server {
    let mut args = wsgi_args(model, "wsgi_app:application", &apps_dir());
    args.extend(h2_flags());
    args.extend(["--static".into(), format!("/s={}", files.display())]);
    args.extend(extra.iter().cloned());
    Server::start(&args)
}

per_model!(curl_gets_static_files_and_wsgi_over_h2c, |model| {
    if !hosts_h2(model) {
        let mut args = common::model_args(model);
        args.extend(["--root".into(), ".".into()]);
        args.extend(h2_flags());
        let (code, err) = run_to_exit(&args);
        assert_eq!(code, Some(2), "{model}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(
            err.contains("--http-protocols h2 needs --model event or async"),
            "{err}"
        );
        return;
    }
    let files = Files::new();
    let log = files.0.join("access.log");
    let server = serve(
        model,
        &files.0,
        &["--access-logfile".into(), log.display().to_string()],
    );
    let (body, status) = curl(&server.addr, "/s/small.txt");
    assert_eq!(status, "2 200");
    assert_eq!(body, "small file over h2\n");
    let (body, status) = curl(&server.addr, "/environ?x=1");
    assert_eq!(status, "2 200", "{body}");
    let env: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(env["SERVER_PROTOCOL"], "HTTP/2");
    assert_eq!(env["QUERY_STRING"], "x=1");
    assert_eq!(env["headers"]["HTTP_HOST"], server.addr.as_str());
    // HTTP/1.1 still works on the same port.
    let (_, status) = {
        let out = Command::new("curl")
            .args([
                "-s",
                "--http1.1",
                "-o",
                "/dev/null",
                "-w",
                "%{http_version} %{http_code}",
            ])
            .arg(format!("http://{}/s/small.txt", server.addr))
            .output()
            .unwrap();
        ((), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    assert_eq!(status, "1.1 200");
    let lines = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        eventually(|| lines().matches("HTTP/2.0").count() >= 2),
        "access log: {}",
        lines()
    );
    assert!(
        lines().contains("\"GET /environ?x=1 HTTP/2.0\" 200"),
        "{}",
        lines()
    );
});

per_model!(a_hundred_concurrent_streams_on_one_connection, |model| {
    if !hosts_h2(model) {
        return;
    }
    let files = Files::new();
    let server = serve(model, &files.0, &[]);
    let out = client(&server.addr, &["streams", "100", "/environ"]);
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), 100);
    for r in results {
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(r["ended"], true, "{r}");
        assert!(r["body"].as_str().unwrap().contains("HTTP/2"), "{r}");
    }
    // Static files are answered inline, many at once too.
    let out = client(&server.addr, &["streams", "100", "/s/small.txt"]);
    for r in out["results"].as_array().unwrap() {
        assert_eq!(r["body"], "small file over h2\n", "{r}");
    }
});

/// The client's deterministic upload body (see `pattern` in h2_client.py).
fn pattern(size: usize) -> Vec<u8> {
    let block: Vec<u8> = Sha256::digest(b"ironhorse").repeat(2048);
    block.iter().copied().cycle().take(size).collect()
}

per_model!(fifty_megabytes_each_way_within_flow_control, |model| {
    if !hosts_h2(model) {
        return;
    }
    let files = Files::new();
    let big: Vec<u8> = (0..FIFTY_MB as u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
        .collect();
    std::fs::write(files.0.join("big.bin"), &big).unwrap();
    let server = serve(model, &files.0, &[]);
    // A 64 KiB window: the server must wait for every WINDOW_UPDATE (h2 checks it).
    let down = client(&server.addr, &["download", "/s/big.bin"]);
    assert_eq!(down["status"], 200, "{down}");
    assert_eq!(down["size"], FIFTY_MB, "{down}");
    assert_eq!(down["sha256"], format!("{:x}", Sha256::digest(&big)));
    let up = client(&server.addr, &["upload", "/upload", &FIFTY_MB.to_string()]);
    let expected = format!("{FIFTY_MB} {:x}", Sha256::digest(pattern(FIFTY_MB)));
    assert_eq!(
        up["sent_sha256"],
        format!("{:x}", Sha256::digest(pattern(FIFTY_MB)))
    );
    assert_eq!(up["status"], 200, "{up}");
    assert_eq!(up["body"], expected, "the app read the whole body intact");
});

per_model!(
    a_body_sent_without_content_length_reaches_wsgi_with_its_length,
    |model| {
        if !hosts_h2(model) {
            return;
        }
        let files = Files::new();
        // The application on threads, and in greenlets (gevent reads bodies ahead itself,
        // up to the in-memory part of the buffer: 64 KiB by default).
        let threads = serve(model, &files.0, &[]);
        let greenlets = serve(
            model,
            &files.0,
            &[
                "--interface".into(),
                "gevent".into(),
                "--virtualenv".into(),
                venv().display().to_string(),
            ],
        );
        for (server, buffered) in [(&threads, 1 << 20), (&greenlets, 64 << 10)] {
            // HTTP/2 needs no content-length; a WSGI app that reads CONTENT_LENGTH bytes
            // (as Django does) must still get the body: empty, in memory, spooled to a
            // file, and exactly --buffer-request-body.
            for size in [0, 1, 60_000, buffered] {
                let out = client(
                    &server.addr,
                    &["upload", "/read-declared", &size.to_string(), "unsized"],
                );
                assert_eq!(out["status"], 200, "{out}");
                let expected = format!("{size} {size} {:x}", Sha256::digest(pattern(size)));
                assert_eq!(out["body"], expected, "{size} bytes: {out}");
            }
            // A longer one streams to the application as it comes (no length to give).
            let size = buffered + 1;
            let out = client(
                &server.addr,
                &["upload", "/upload", &size.to_string(), "unsized"],
            );
            let expected = format!("{size} {:x}", Sha256::digest(pattern(size)));
            assert_eq!(out["body"], expected, "{out}");
        }
    }
);

per_model!(
    a_stream_reset_mid_body_leaves_the_connection_serving,
    |model| {
        if !hosts_h2(model) {
            return;
        }
        let files = Files::new();
        let server = serve(model, &files.0, &[]);
        let out = client(&server.addr, &["reset", "/upload", "1000000"]);
        assert_eq!(out["terminated"], Value::Null, "no GOAWAY: {out}");
        let after = &out["after_reset"];
        assert_eq!(
            after["status"], 404,
            "the app answered the next stream: {out}"
        );
        assert_eq!(after["ended"], true);
        // The server goes on serving new connections too.
        let (_, status) = curl(&server.addr, "/s/small.txt");
        assert_eq!(status, "2 200");
    }
);

per_model!(application_failures_are_500_or_rst_stream, |model| {
    if !hosts_h2(model) {
        return;
    }
    let files = Files::new();
    let server = serve(model, &files.0, &[]);
    let early = client(&server.addr, &["streams", "1", "/fail-early"]);
    assert_eq!(early["results"][0]["status"], 500, "{early}");
    assert_eq!(early["results"][0]["ended"], true, "{early}");
    // Headers and a chunk went out before the failure: the stream is reset
    // (INTERNAL_ERROR), never ended as if complete.
    let late = client(&server.addr, &["streams", "1", "/fail-late"]);
    assert_eq!(late["results"][0]["status"], 200, "{late}");
    assert_eq!(
        late["results"][0]["body"], "partial",
        "what it produced went out"
    );
    assert_eq!(late["results"][0]["reset"], 2, "{late}");
    assert_eq!(late["results"][0]["ended"], false, "{late}");
    // A body short of its declared content-length is reset too (RFC 9113 §8.1.1).
    let short = client(&server.addr, &["streams", "1", "/short"]);
    assert_eq!(short["results"][0]["body"], "only ten b", "{short}");
    assert_eq!(short["results"][0]["reset"], 2, "{short}");
    assert_eq!(short["results"][0]["ended"], false, "{short}");
});

per_model!(sigterm_sends_goaway_and_in_flight_streams_finish, |model| {
    if !hosts_h2(model) {
        return;
    }
    sigterm_goaway(model, false);
    // Over TLS too: the TLS layer passes the stop on to the HTTP/2 session inside it.
    sigterm_goaway(model, true);
});

fn sigterm_goaway(model: &str, tls: bool) {
    let files = Files::new();
    let pki = pki::Pki::new("h2-goaway");
    let issued = pki.server(pki::Key::EcdsaP256);
    let tls_flags = [
        "--certfile".to_string(),
        issued.cert.display().to_string(),
        "--keyfile".to_string(),
        issued.key.display().to_string(),
    ];
    let server = serve(model, &files.0, if tls { &tls_flags } else { &[] });
    let addr = server.addr.trim_start_matches("https://").to_string();
    let gate = files.0.join("gate");
    let closefile = files.0.join("closed");
    let path = format!(
        "/stream?n=3&gate={}&closefile={}",
        gate.display(),
        closefile.display()
    );
    let mut child = Command::new(venv().join("bin/python"))
        .arg(apps_dir().join("h2_client.py"))
        // Two streams: `async` runs with two application threads here, each held by one.
        .args([addr.as_str(), "goaway", &path, "2"])
        .env("H2_CLIENT_TLS", if tls { "1" } else { "" })
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || lines.next().unwrap().unwrap();
    assert_eq!(next(), "\"ready\"", "both streams have their first bytes");
    server.signal(15);
    assert_eq!(
        next(),
        "\"goaway\"",
        "GOAWAY while the streams are in flight"
    );
    std::fs::write(&gate, b"").unwrap();
    let out: Value = serde_json::from_str(&next()).unwrap();
    let _ = child.wait();
    assert_eq!(out["terminated"]["error"], 0, "a graceful GOAWAY: {out}");
    for r in out["results"].as_array().unwrap() {
        assert_eq!(r["ended"], true, "{out}");
        assert_eq!(r["size"], 27, "every chunk arrived: {out}");
    }
    assert_eq!(out["closed"], true, "the server closed once they were done");
    assert_eq!(server.stop(common::HUNG), Some(0));
}

per_model!(malformed_frames_get_goaway_with_their_error, |model| {
    if !hosts_h2(model) {
        return;
    }
    let files = Files::new();
    let server = serve(model, &files.0, &[]);
    const PROTOCOL_ERROR: u64 = 1;
    const FRAME_SIZE_ERROR: u64 = 6;
    for (kind, codes) in [
        ("data-stream0", &[PROTOCOL_ERROR][..]),
        ("even-stream", &[PROTOCOL_ERROR][..]),
        ("oversized", &[FRAME_SIZE_ERROR][..]),
        // RFC 9113 §6.7 says FRAME_SIZE_ERROR; the h2 crate answers PROTOCOL_ERROR.
        ("ping-size", &[FRAME_SIZE_ERROR, PROTOCOL_ERROR][..]),
    ] {
        let out = client(&server.addr, &["malformed", kind]);
        let code = out["goaway"]
            .as_u64()
            .unwrap_or_else(|| panic!("{kind}: {out}"));
        assert!(codes.contains(&code), "{kind}: GOAWAY {code}");
    }
    let (_, status) = curl(&server.addr, "/s/small.txt");
    assert_eq!(status, "2 200", "still serving");
});

per_model!(floods_close_the_connection, |model| {
    if !hosts_h2(model) {
        return;
    }
    let files = Files::new();
    let server = serve(model, &files.0, &[]);
    const ENHANCE_YOUR_CALM: u64 = 11;
    for kind in ["rapid-reset", "ping"] {
        let out = client(&server.addr, &["flood", kind]);
        assert_eq!(out["goaway"], ENHANCE_YOUR_CALM, "{kind}: {out}");
    }
    let (_, status) = curl(&server.addr, "/s/small.txt");
    assert_eq!(status, "2 200", "still serving");
});

per_model!(
    an_idle_connection_gets_goaway_at_the_keep_alive_time,
    |model| {
        if !hosts_h2(model) {
            return;
        }
        let files = Files::new();
        let server = serve(model, &files.0, &["--keep-alive".into(), "1".into()]);
        let out = client(&server.addr, &["idle", "/s/small.txt"]);
        assert_eq!(out["result"]["status"], 200, "{out}");
        assert_eq!(
            out["terminated"]["error"], 0,
            "GOAWAY(NO_ERROR) first: {out}"
        );
        assert_eq!(out["closed"], true, "{out}");
    }
);

per_model!(tls_offers_h2_by_alpn_and_http1_to_the_others, |model| {
    if !hosts_h2(model) {
        return;
    }
    let files = Files::new();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(files.0.join("big.bin"), &big).unwrap();
    let pki = pki::Pki::new("h2-tls");
    let issued = pki.server(pki::Key::EcdsaP256);
    let mut args = wsgi_args(model, "wsgi_app:application", &apps_dir());
    args.extend(["--http-protocols".into(), "h1,h2".into()]);
    args.extend(["--static".into(), format!("/s={}", files.0.display())]);
    args.extend(["--certfile".into(), issued.cert.display().to_string()]);
    args.extend(["--keyfile".into(), issued.key.display().to_string()]);
    // Cleartext HTTP/2 asked for too: it has no say over TLS, where ALPN chooses.
    args.extend(["--http2-cleartext".into(), "prior-knowledge".into()]);
    let server = Server::start(&args);
    let addr = server.addr.trim_start_matches("https://").to_string();
    let port = addr.rsplit(':').next().unwrap().to_string();
    let curl_tls = |flag: &str, path: &str| {
        let out = Command::new("curl")
            .args(["-s", flag, "--cacert"])
            .arg(&pki.ca)
            .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
            .args(["-w", "\n%{http_version} %{http_code}"])
            .arg(format!("https://localhost:{port}{path}"))
            .output()
            .expect("curl");
        let text = out.stdout;
        let split = text.iter().rposition(|&b| b == b'\n').unwrap();
        (
            text[..split].to_vec(),
            String::from_utf8_lossy(&text[split + 1..]).into_owned(),
        )
    };
    let (body, status) = curl_tls("--http2", "/environ");
    assert_eq!(status, "2 200", "ALPN chose h2");
    let env: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(env["SERVER_PROTOCOL"], "HTTP/2");
    assert_eq!(env["wsgi.url_scheme"], "https");
    let (body, status) = curl_tls("--http2", "/s/big.bin");
    assert_eq!(status, "2 200");
    assert_eq!(
        Sha256::digest(&body),
        Sha256::digest(&big),
        "the file intact"
    );
    let (_, status) = curl_tls("--http1.1", "/s/big.bin");
    assert_eq!(
        status, "1.1 200",
        "HTTP/1.1 for clients that do not offer h2"
    );
    // A client that chose http/1.1 by ALPN speaks HTTP/1.1 (RFC 9113 §3.3): the HTTP/2
    // preface is then an HTTP/1.1 request line this server refuses, not HTTP/2.
    let script = r#"
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.set_alpn_protocols(["http/1.1"])
raw = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s = ctx.wrap_socket(raw, server_hostname="localhost")
assert s.selected_alpn_protocol() == "http/1.1", s.selected_alpn_protocol()
s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
data = b""
while len(data) < 12:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print(data[:12].decode("latin-1"))
"#;
    let out = Command::new("python3")
        .args(["-c", script, &port])
        .arg(&pki.ca)
        .output()
        .expect("python3");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.starts_with("HTTP/1.1 4") || said.starts_with("HTTP/1.1 505"),
        "an HTTP/1.1 refusal: {said:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );
});
