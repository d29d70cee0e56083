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

/// Descriptors the server `pid` and its children hold open on files in `dir` (spooled
/// bodies: unlinked at creation, they show as `DIR/#INODE (deleted)`).
fn files_open_in(pid: i32, dir: &std::path::Path) -> usize {
    let mut pids = vec![pid];
    pids.extend(common::children_of(pid));
    pids.iter()
        .filter_map(|p| std::fs::read_dir(format!("/proc/{p}/fd")).ok())
        .flat_map(|fds| fds.filter_map(Result::ok))
        .filter(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.starts_with(dir)))
        .count()
}

/// A server whose `$TMPDIR` (where bodies spool) is a directory of its own, removed after.
struct Spooling {
    server: Server,
    dir: std::path::PathBuf,
}

impl Spooling {
    /// The WSGI test app under `model` with a 64 KiB memory threshold and `extra`.
    fn start(model: &str, tag: &str, extra: &[&str]) -> Spooling {
        let dir = common::temp_path(tag);
        std::fs::create_dir_all(&dir).unwrap();
        let mut args = wsgi_args(model, "wsgi_app:application", &apps_dir());
        args.extend(["--buffer-request-body-memory", "64K"].map(String::from));
        args.extend(extra.iter().map(|s| s.to_string()));
        let server = Server::start_with_env(&args, &[("TMPDIR", dir.as_os_str())]);
        Spooling { server, dir }
    }

    /// Spooled files the server holds open.
    fn files(&self) -> usize {
        files_open_in(self.server.pid(), &self.dir)
    }
}

impl Drop for Spooling {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A 20 MB body (repeated from `big_bytes`).
fn twenty_megabytes() -> Vec<u8> {
    let seed = common::big_bytes();
    seed.iter().cycle().take(20 << 20).copied().collect()
}

/// Sends `request` then `body`, with its first megabyte apart: the spooled file must exist
/// by then (the event), and be gone (closed, unlinked at creation) once the response came.
fn upload_spooled(spooling: &Spooling, request: &[u8], body: &[u8]) -> String {
    let mut conn = Conn::open(&spooling.server.addr);
    conn.send(request);
    conn.send(&body[..1 << 20]);
    assert!(
        common::eventually(|| spooling.files() == 1),
        "no spooled file for a body past the memory threshold"
    );
    conn.send(&body[1 << 20..]);
    let r = conn.response("POST");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        common::eventually(|| spooling.files() == 0),
        "the spooled file outlived its request"
    );
    r.text()
}

per_model!(
    bodies_past_the_memory_threshold_spool_to_an_unlinked_file,
    |model| {
        let spooling = Spooling::start(model, "spool", &["--buffer-request-body", "32M"]);
        let body = twenty_megabytes();
        let expected = format!("{} {:x}", body.len(), Sha256::digest(&body));
        let head = format!(
            "POST /upload HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let text = upload_spooled(&spooling, head.as_bytes(), &body);
        assert_eq!(text, expected, "{model}: Content-Length");
        let mut chunked = Vec::with_capacity(body.len() + (1 << 16));
        for piece in body.chunks(100_000) {
            chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            chunked.extend_from_slice(piece);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        let head = "POST /upload HTTP/1.1\r\nHost: t\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n";
        let text = upload_spooled(&spooling, head.as_bytes(), &chunked);
        assert_eq!(text, expected, "{model}: chunked");
    }
);

per_model!(
    limit_request_body_still_answers_413_while_spooling,
    |model| {
        let spooling = Spooling::start(
            model,
            "spool-limit",
            &["--buffer-request-body", "32M", "--limit-request-body", "1M"],
        );
        let server = &spooling.server;
        // The answer comes on the head; the server discards only so much of the rest while it
        // closes, so the client's send of the 2 MiB may fail: the answer is read regardless.
        let mut conn = Conn::open(&server.addr);
        let mut request =
            b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 2097152\r\n\r\n".to_vec();
        request.extend_from_slice(&vec![b'x'; 2 << 20]);
        let _ = conn.try_send(&request);
        let r = conn.response("POST");
        assert_eq!(r.status, 413, "{model}: declared too long: {}", r.text());
        // A chunked body shows its length only as it arrives: past the threshold it was
        // being spooled when the limit struck.
        let mut conn = Conn::open(&server.addr);
        conn.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
        let piece = vec![b'y'; 256 * 1024];
        // Five pieces: the fifth's size passes the limit; the server reads (and discards) what
        // follows its answer while it closes, so the answer is not lost to a reset.
        for _ in 0..5 {
            let mut chunk = format!("{:x}\r\n", piece.len()).into_bytes();
            chunk.extend_from_slice(&piece);
            chunk.extend_from_slice(b"\r\n");
            if conn.try_send(&chunk).is_err() {
                break;
            }
        }
        let status = conn.response("POST").status;
        assert_eq!(status, 413, "{model}: chunked past the limit");
        assert!(
            common::eventually(|| spooling.files() == 0),
            "{model}: the spooled file of a refused body stayed open"
        );
    }
);

per_model!(a_stalled_spooled_body_is_408_and_its_file_closed, |model| {
    let spooling = Spooling::start(model, "spool-stall", &["--body-timeout", "1"]);
    let server = &spooling.server;
    let mut conn = Conn::open(&server.addr);
    conn.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 200000\r\n\r\n");
    conn.send(&[b'x'; 100_000]);
    let r = conn.response("POST");
    assert_eq!(r.status, 408, "{model}: {}", r.text());
    assert_eq!(r.header("connection"), Some("close"));
    assert!(
        common::eventually(|| spooling.files() == 0),
        "{model}: the spooled file of a stalled body stayed open"
    );
});
