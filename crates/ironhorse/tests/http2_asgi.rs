//! ASGI over HTTP/2 against the real binary (tests/apps/asgi_app.py): h2c by prior
//! knowledge and TLS with ALPN, `http_version` "2", 100 concurrent streams each streaming a
//! body both ways, `http.disconnect` on a reset stream, and the per-stream deadlines. The
//! strict client is Python's `h2` package (tests/apps/h2_client.py); every test body runs
//! under each model that hosts ASGI and HTTP/2.

mod common;
#[path = "http2/support.rs"]
mod support;
// The TLS tests' certificate authority; this file uses a part of it.
#[allow(dead_code)]
#[path = "tls/pki.rs"]
mod pki;

use std::process::Command;

use common::python::{apps_dir, wsgi_args};
use common::{eventually, Server};
use serde_json::Value;
use support::{client, curl, h2_flags, hosts_h2};

fn serve(model: &str, extra: &[&str]) -> Server {
    let mut args = wsgi_args(model, "asgi_app:app", &apps_dir());
    args.extend(h2_flags());
    args.extend(extra.iter().map(|s| s.to_string()));
    Server::start(&args)
}

/// The app's `/events` (disconnects seen, tasks cancelled) contains `needle`, eventually.
fn event_seen(addr: &str, needle: &str) -> bool {
    eventually(|| curl(addr, "/events").0.contains(needle))
}

per_model!(asgi_streams_bodies_both_ways_on_100_streams, |model| {
    if !hosts_h2(model) {
        return;
    }
    let server = serve(model, &[]);
    let (body, status) = curl(&server.addr, "/scope?x=1");
    assert_eq!(status, "2 200", "{body}");
    let scope: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(scope["http_version"], "2");
    assert_eq!(scope["scheme"], "http");
    assert_eq!(scope["query_string"]["bytes"], "x=1");
    // 100 streams at once, each echoing its 100 kB body back as it arrives.
    let out = client(&server.addr, &["uploads", "100", "/echo", "100000"]);
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), 100, "{out}");
    for r in results {
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(r["ended"], true, "{r}");
        assert_eq!(r["size"], 100_000, "{r}");
        assert_eq!(r["sha256"], out["sent_sha256"], "echoed intact: {r}");
    }
    assert_eq!(out["terminated"], Value::Null, "{out}");
    // A larger body in many chunks, within the flow-control windows.
    let up = client(&server.addr, &["upload", "/sha256", "5000000"]);
    assert_eq!(up["status"], 200, "{up}");
    let answer = up["body"].as_str().unwrap().to_string();
    assert!(
        answer.starts_with(&format!("{} 5000000 ", up["sent_sha256"].as_str().unwrap())),
        "{answer}"
    );
});

per_model!(a_reset_stream_delivers_http_disconnect, |model| {
    if !hosts_h2(model) {
        return;
    }
    let server = serve(model, &[]);
    let tag = format!("h2reset{}", std::process::id());
    let out = client(
        &server.addr,
        &["hangup", &format!("/hang-up?{tag}"), "/length"],
    );
    assert_eq!(out["first"]["body"], "waiting", "{out}");
    assert_eq!(out["after"]["status"], 201, "the connection goes on: {out}");
    assert_eq!(out["terminated"], Value::Null, "{out}");
    assert!(event_seen(&server.addr, &format!("http.disconnect {tag}")));
});

per_model!(asgi_stream_deadlines, |model| {
    if !hosts_h2(model) {
        return;
    }
    // The body deadline comes first, so that a stalled body meets it rather than the request's.
    let server = serve(model, &["--request-timeout", "3", "--body-timeout", "1"]);
    // Nothing sent yet: 504, and the task is cancelled.
    let tag = format!("h2slow{}", std::process::id());
    let out = client(
        &server.addr,
        &["stall", &format!("/slow?{tag}"), "0", "-1", "/length"],
    );
    assert_eq!(out["first"]["status"], 504, "{out}");
    assert_eq!(out["after"]["status"], 201, "{out}");
    assert!(event_seen(&server.addr, &format!("cancelled {tag}")));
    // The response began: the stream is reset.
    let out = client(
        &server.addr,
        &["stall", "/hang-up?deadline", "0", "-1", "/length"],
    );
    assert_eq!(out["first"]["body"], "waiting", "{out}");
    assert_eq!(out["first"]["reset"], 2, "INTERNAL_ERROR: {out}");
    assert_eq!(out["after"]["status"], 201, "{out}");
    // A body that stalls: RST_STREAM(CANCEL).
    let out = client(
        &server.addr,
        &["stall", "/sha256", "100", "1000", "/length"],
    );
    assert_eq!(out["first"]["reset"], 8, "CANCEL: {out}");
    assert_eq!(out["after"]["status"], 201, "{out}");
    assert_eq!(out["terminated"], Value::Null, "{out}");
});

per_model!(asgi_over_tls_by_alpn_h2, |model| {
    if !hosts_h2(model) {
        return;
    }
    let pki = pki::Pki::new("h2-asgi");
    let issued = pki.server(pki::Key::EcdsaP256);
    let mut args = wsgi_args(model, "asgi_app:app", &apps_dir());
    args.extend(["--http-protocols".into(), "h1,h2".into()]);
    args.extend(["--certfile".into(), issued.cert.display().to_string()]);
    args.extend(["--keyfile".into(), issued.key.display().to_string()]);
    let server = Server::start(&args);
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let out = Command::new("curl")
        .args(["-s", "--http2", "--cacert"])
        .arg(&pki.ca)
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .args([
            "-w",
            "\n%{http_version} %{http_code}",
            "--data-binary",
            "tls body",
        ])
        .arg(format!("https://localhost:{port}/scope"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap();
    assert_eq!(status, "2 200", "ALPN chose h2: {body}");
    let scope: Value = serde_json::from_str(body).unwrap();
    assert_eq!(scope["http_version"], "2");
    assert_eq!(scope["scheme"], "https");
    assert_eq!(scope["body"], "tls body");
});

per_model!(asgi_pathsend_and_trailers_go_out_as_http2_frames, |model| {
    if !hosts_h2(model) {
        return;
    }
    let server = serve(model, &[]);
    // pathsend: the file's bytes in DATA frames (read as the windows open).
    let file = std::env::temp_dir().join(format!("ih-h2-pathsend-{}", std::process::id()));
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &content).unwrap();
    let out = client(
        &server.addr,
        &["download", &format!("/pathsend?{}", file.display())],
    );
    std::fs::remove_file(&file).ok();
    assert_eq!(out["status"], 200, "{out}");
    assert_eq!(out["ended"], true, "{out}");
    assert_eq!(out["size"], content.len(), "{out}");
    // trailers: announced to a client that sent `te: trailers`, sent as a last HEADERS frame.
    let out = client(&server.addr, &["trailers", "/trailers"]);
    assert_eq!(out["status"], 200, "{out}");
    assert_eq!(out["body"], "first last", "{out}");
    let trailers = out["trailers"].as_array().expect("trailers received");
    let names: Vec<&str> = trailers.iter().map(|t| t[0].as_str().unwrap()).collect();
    assert_eq!(names, ["x-checksum", "x-more"], "{out}");
});
