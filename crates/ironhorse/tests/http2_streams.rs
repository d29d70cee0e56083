//! HTTP/2 streams against the real binary, beyond the basics of http2.rs: per-stream
//! `--request-timeout` and `--body-timeout` (the connection and its other streams go on),
//! `Upgrade: h2c`, forwarded headers in the access log, and the connection metrics. The
//! strict client is Python's `h2` package (tests/apps/h2_client.py); every test body runs
//! under each model that hosts HTTP/2.

mod common;
#[path = "http2/support.rs"]
mod support;

use std::path::Path;
use std::process::Command;

use common::python::{apps_dir, wsgi_args};
use common::{eventually, Server};
use serde_json::Value;
use support::{client, curl, curl_with, h2_flags, hosts_h2, Files};

/// The WSGI test app with `/s/` served from `files`, with HTTP/2 `cleartext` and `extra`.
fn serve(model: &str, files: &Path, cleartext: &str, extra: &[&str]) -> Server {
    let mut args = wsgi_args(model, "wsgi_app:application", &apps_dir());
    args.extend(h2_flags());
    if let Some(mode) = args.iter_mut().find(|a| *a == "prior-knowledge") {
        *mode = cleartext.to_string();
    }
    args.extend(["--static".into(), format!("/s={}", files.display())]);
    args.extend(extra.iter().map(|s| s.to_string()));
    Server::start(&args)
}

/// The next request on the same connection was answered, and no GOAWAY came.
fn connection_went_on(out: &Value) {
    assert_eq!(out["after"]["status"], 200, "{out}");
    assert_eq!(out["after"]["body"], "small file over h2\n", "{out}");
    assert_eq!(out["terminated"], Value::Null, "no GOAWAY: {out}");
}

const INTERNAL_ERROR: u64 = 2;
const CANCEL: u64 = 8;

per_model!(request_timeout_is_504_or_rst_stream_per_stream, |model| {
    if !hosts_h2(model) {
        return;
    }
    let files = Files::new();
    let log = files.0.join("access.log");
    let log_arg = log.display().to_string();
    let server = serve(
        model,
        &files.0,
        "prior-knowledge",
        &["--request-timeout", "1", "--access-logfile", &log_arg],
    );
    // The app waits for a body that never comes: nothing was sent yet, so 504.
    let out = client(
        &server.addr,
        &["stall", "/upload", "100", "1000", "/s/small.txt"],
    );
    assert_eq!(out["first"]["status"], 504, "{out}");
    assert_eq!(out["first"]["ended"], true, "{out}");
    connection_went_on(&out);
    // The cut-off upload never raised its TimeoutError (its wait ended in Rust); the next
    // request runs on the thread it left (the pool's last to sleep) and must not die of it.
    // The response began (one chunk), then the app stalls: the stream is reset, and the
    // job is cancelled like HTTP/1.1's (TimeoutError in its thread ends the iterable,
    // whose close() runs).
    let closefile = files.0.join("closed");
    let path = format!(
        "/stream?n=3&gate={}&closefile={}",
        files.0.join("never").display(),
        closefile.display()
    );
    let out = client(&server.addr, &["stall", &path, "0", "-1", "/s/small.txt"]);
    assert_eq!(out["first"]["status"], 200, "{out}");
    assert_eq!(out["first"]["body"], "data: 0\n\n", "{out}");
    assert_eq!(out["first"]["reset"], INTERNAL_ERROR, "{out}");
    assert_eq!(
        out["first"]["ended"], false,
        "never ended as if whole: {out}"
    );
    connection_went_on(&out);
    let closed = || std::fs::read_to_string(&closefile).unwrap_or_default();
    assert!(eventually(|| closed().contains("closed")), "job cancelled");
    let lines = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        eventually(|| lines().contains("\"POST /upload HTTP/2.0\" 504")),
        "{}",
        lines()
    );
});

per_model!(a_stalled_body_resets_the_stream_with_cancel, |model| {
    if !hosts_h2(model) {
        return;
    }
    let files = Files::new();
    let log = files.0.join("access.log");
    let log_arg = log.display().to_string();
    let server = serve(
        model,
        &files.0,
        "prior-knowledge",
        &["--body-timeout", "1", "--access-logfile", &log_arg],
    );
    let out = client(
        &server.addr,
        &["stall", "/upload", "100", "1000", "/s/small.txt"],
    );
    assert_eq!(out["first"]["reset"], CANCEL, "{out}");
    assert_eq!(
        out["first"]["status"],
        Value::Null,
        "no response head: {out}"
    );
    connection_went_on(&out);
    let lines = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        eventually(|| lines().contains("\"POST /upload HTTP/2.0\" 408")),
        "{}",
        lines()
    );
    // A body that keeps coming is not cut: a whole upload still works.
    let out = client(&server.addr, &["upload", "/upload", "3000000"]);
    assert_eq!(out["status"], 200, "{out}");
});

per_model!(expect_100_continue_gets_an_interim_100, |model| {
    if !hosts_h2(model) {
        return;
    }
    let files = Files::new();
    let server = serve(model, &files.0, "prior-knowledge", &[]);
    // The client sends its body only after the 100: the app's read asked for it.
    let out = client(&server.addr, &["continue", "/upload", "200000"]);
    assert_eq!(out["informational"], serde_json::json!([100]), "{out}");
    assert_eq!(out["status"], 200, "{out}");
    let want = format!("200000 {}", out["sent_sha256"].as_str().unwrap());
    assert_eq!(out["body"], want.as_str(), "{out}");
});

/// curl over cleartext HTTP/2 by `Upgrade: h2c` (its `--http2` on http://): (body, "VERSION STATUS").
fn curl_upgrade(addr: &str, path: &str, extra: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-s", "--http2", "-w", "\n%{http_version} %{http_code}"])
        .args(extra)
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (body.to_string(), status.to_string())
}

per_model!(upgrade_h2c_answers_the_request_as_stream_1, |model| {
    if !hosts_h2(model) {
        return;
    }
    let files = Files::new();
    let server = serve(model, &files.0, "both", &[]);
    let out = client(&server.addr, &["upgrade", "/environ?u=1", "/s/small.txt"]);
    assert!(
        out["upgrade"].as_str().unwrap().starts_with("HTTP/1.1 101"),
        "{out}"
    );
    assert_eq!(out["first"]["status"], 200, "{out}");
    assert_eq!(out["first"]["ended"], true, "{out}");
    let env: Value = serde_json::from_str(out["first"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(env["SERVER_PROTOCOL"], "HTTP/2");
    assert_eq!(env["QUERY_STRING"], "u=1");
    assert_eq!(
        env["headers"].get("HTTP_UPGRADE"),
        None,
        "hop fields dropped"
    );
    connection_went_on(&out);
    let (body, status) = curl_upgrade(&server.addr, "/environ", &[]);
    assert_eq!(status, "2 200", "{body}");
    assert!(body.contains("HTTP/2"), "{body}");
    // A request with a body is answered over HTTP/1.1 (no upgrade).
    let (body, status) = curl_upgrade(&server.addr, "/upload", &["-d", "hello"]);
    assert_eq!(status, "1.1 200", "{body}");
    assert!(body.starts_with("5 "), "{body}");
    // A malformed HTTP2-Settings (not base64url, or not whole 6-byte settings) is no
    // upgrade (RFC 7540 §3.2.1): HTTP/1.1 answers.
    for bad in ["!!not-base64!!", "AAMAAABkAA"] {
        let field = format!("HTTP2-Settings: {bad}");
        let (body, status) = curl_upgrade(&server.addr, "/environ", &["-H", &field]);
        assert_eq!(status, "1.1 200", "{bad}: {body}");
    }
    // prior knowledge still works with `both`.
    assert_eq!(curl(&server.addr, "/s/small.txt").1, "2 200");
    // `prior-knowledge` alone declines the upgrade: HTTP/1.1 answers.
    drop(server);
    let server = serve(model, &files.0, "prior-knowledge", &[]);
    let (_, status) = curl_upgrade(&server.addr, "/s/small.txt", &[]);
    assert_eq!(status, "1.1 200");
});

per_model!(
    forwarded_headers_name_the_client_in_the_access_log,
    |model| {
        if !hosts_h2(model) {
            return;
        }
        let files = Files::new();
        let log = files.0.join("access.log");
        let log_arg = log.display().to_string();
        let server = serve(
            model,
            &files.0,
            "prior-knowledge",
            &["--access-logfile", &log_arg],
        );
        let forged = ["-H", "X-Forwarded-For: 10.1.2.3"];
        let (_, status) = curl_with(&server.addr, "/s/small.txt?fwd", &forged);
        assert_eq!(status, "2 200");
        let lines = || std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            eventually(|| lines()
                .lines()
                .any(|l| l.starts_with("10.1.2.3 ") && l.contains("/s/small.txt?fwd HTTP/2.0"))),
            "{}",
            lines()
        );
        // From an untrusted peer the header changes nothing.
        drop(server);
        let server = serve(
            model,
            &files.0,
            "prior-knowledge",
            &[
                "--access-logfile",
                &log_arg,
                "--forwarded-allow-ips",
                "10.9.9.9",
            ],
        );
        let (_, status) = curl_with(&server.addr, "/s/small.txt?untrusted", &forged);
        assert_eq!(status, "2 200");
        assert!(
            eventually(|| lines()
                .lines()
                .any(|l| l.starts_with("127.0.0.1 ") && l.contains("?untrusted HTTP/2.0"))),
            "{}",
            lines()
        );
    }
);

/// `ironhorse_connections_opened_total` from the metrics listener at `addr`.
fn connections_opened(addr: &str) -> f64 {
    let out = Command::new("curl")
        .args(["-s", &format!("http://{addr}/metrics")])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("ironhorse_connections_opened_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no connections_opened_total in {text}"))
}

per_model!(an_h2_connection_counts_once_whatever_its_streams, |model| {
    if !hosts_h2(model) {
        return;
    }
    let files = Files::new();
    let server = serve(
        model,
        &files.0,
        "prior-knowledge",
        &["--metrics-bind", "127.0.0.1:0"],
    );
    const MARK: &str = "metrics on http://";
    assert!(eventually(|| server.log_contains(MARK)));
    let text = server.log_text();
    let metrics = text[text.find(MARK).unwrap() + MARK.len()..]
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let before = connections_opened(&metrics);
    let out = client(&server.addr, &["streams", "20", "/environ"]);
    assert_eq!(out["results"].as_array().unwrap().len(), 20);
    assert_eq!(connections_opened(&metrics) - before, 1.0, "one connection");
});
