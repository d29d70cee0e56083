//! `--buffer-request-body` (on by default): bodies up to the size are read whole before the
//! application runs — chunked ones arrive de-chunked with a real `CONTENT_LENGTH`, broken
//! framing is answered 400 without calling the application, and longer bodies stream as
//! before. (Slow uploaders holding no application thread: tests/slow_clients.rs.)

mod common;

use common::client::Conn;
use common::python::{apps_dir, wsgi_args};
use common::{temp_path, Server};
use sha2::{Digest, Sha256};

fn serve(model: &str, extra: &[&str]) -> Server {
    let mut args = wsgi_args(model, "wsgi_app:application", &apps_dir());
    args.extend(extra.iter().map(|s| s.to_string()));
    Server::start(&args)
}

fn post(addr: &str, path: &str, framing: &str, body: &[u8]) -> common::client::Response {
    let mut conn = Conn::open(addr);
    let mut request =
        format!("POST {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{framing}\r\n\r\n")
            .into_bytes();
    request.extend_from_slice(body);
    conn.send(&request);
    conn.response("POST")
}

per_model!(chunked_bodies_arrive_with_a_content_length, |model| {
    let server = serve(model, &[]);
    let r = post(
        &server.addr,
        "/environ",
        "Transfer-Encoding: chunked",
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let env: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(env["CONTENT_LENGTH"], "11", "{env}");
    assert!(
        env["headers"].get("HTTP_TRANSFER_ENCODING").is_none(),
        "the chunking is gone with the chunks: {env}"
    );
    // Off: the body streams, with no length to announce.
    let server = serve(model, &["--buffer-request-body", "0"]);
    let r = post(
        &server.addr,
        "/environ",
        "Transfer-Encoding: chunked",
        b"5\r\nhello\r\n0\r\n\r\n",
    );
    let env: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert!(
        env["CONTENT_LENGTH"].is_null() || env["CONTENT_LENGTH"] == "",
        "{env}"
    );
});

per_model!(broken_chunked_framing_is_400_before_the_app_runs, |model| {
    let server = serve(model, &[]);
    let record = temp_path("buffered-record");
    let path = format!("/record?file={}", record.display());
    let r = post(
        &server.addr,
        &path,
        "Transfer-Encoding: chunked",
        b"zz\r\nabc\r\n0\r\n\r\n",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let r = post(
        &server.addr,
        &path,
        "Transfer-Encoding: chunked",
        b"3\r\nabcXY0\r\n\r\n",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(!record.exists(), "the app ran for a broken body");
    // The same route with a sound body runs the app (the record above can tell).
    let r = post(
        &server.addr,
        &path,
        "Transfer-Encoding: chunked",
        b"3\r\nabc\r\n0\r\n\r\n",
    );
    assert_eq!(r.text(), "called");
    assert_eq!(std::fs::read_to_string(&record).unwrap(), "called\n");
    let _ = std::fs::remove_file(&record);
});

per_model!(bodies_over_the_size_stream_as_before, |model| {
    let server = serve(model, &["--buffer-request-body", "1K"]);
    let body = common::big_bytes()[..100_000].to_vec();
    let digest = format!("{:x}", Sha256::digest(&body));
    let r = post(&server.addr, "/upload", "Content-Length: 100000", &body);
    assert_eq!(r.text(), format!("100000 {digest}"));
    let mut chunked = Vec::new();
    for piece in body.chunks(7000) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let r = post(
        &server.addr,
        "/upload",
        "Transfer-Encoding: chunked",
        &chunked,
    );
    assert_eq!(r.text(), format!("100000 {digest}"));
});
