//! HTTP and static files over real sockets, every case under every model.

mod common;

use common::client::{get, Conn};
use common::{model_args, Server, Site};
use std::time::{Duration, Instant};

fn serve(model: &str, site: &Site, extra: &[&str]) -> Server {
    let mut args = model_args(model);
    args.extend(site.root_arg());
    args.extend(extra.iter().map(|s| s.to_string()));
    Server::start(&args)
}

per_model!(serves_index_with_exact_headers, |model| {
    let site = Site::new(model);
    let server = serve(model, &site, &[]);
    let r = get(&server.addr, "/");
    assert_eq!(r.status, 200);
    assert_eq!(r.reason, "OK");
    assert_eq!(r.version, "HTTP/1.1");
    assert_eq!(r.body, b"<h1>home</h1>\n");
    assert_eq!(r.header("content-type"), Some("text/html"));
    assert_eq!(r.header("content-length"), Some("14"));
    assert_eq!(r.header("server"), Some("ironhorse"));
    assert!(r.header("date").is_some_and(|d| d.ends_with(" GMT")));
    assert!(r.header("etag").is_some());
    assert!(r.header("last-modified").is_some());
});

per_model!(content_types_follow_extensions, |model| {
    let site = Site::new(model);
    let server = serve(model, &site, &[]);
    for (path, expected) in [
        ("/style.css", "text/css"),
        ("/app.js", "application/javascript"),
        ("/pic.jpg", "image/jpeg"),
        ("/hello.txt", "text/plain"),
        ("/big.bin", "application/octet-stream"),
    ] {
        assert_eq!(
            get(&server.addr, path).header("content-type"),
            Some(expected),
            "{path}"
        );
    }
});

per_model!(large_file_arrives_intact, |model| {
    let site = Site::new(model);
    let server = serve(model, &site, &[]);
    let r = get(&server.addr, "/big.bin");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), common::big_bytes().len());
    assert!(r.body == common::big_bytes(), "body differs");
});

per_model!(keep_alive_and_pipelining_answer_in_order, |model| {
    let site = Site::new(model);
    let server = serve(model, &site, &[]);
    let mut conn = Conn::open(&server.addr);
    conn.send(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\nHEAD /style.css HTTP/1.1\r\nHost: t\r\n\r\nGET /sub/ HTTP/1.1\r\nHost: t\r\n\r\n");
    let a = conn.response("GET");
    let b = conn.response("HEAD");
    let c = conn.response("GET");
    assert_eq!(a.body, b"hello, world\n");
    assert_eq!(b.status, 200);
    assert_eq!(b.header("content-length"), Some("7"));
    assert!(b.body.is_empty());
    assert_eq!(c.body, b"<h1>sub</h1>\n");
    // The connection is still usable afterwards.
    conn.send(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.response("GET").body.len(), common::big_bytes().len());
    conn.send(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let last = conn.response("GET");
    assert_eq!(last.header("connection"), Some("close"));
    assert!(conn.is_closed_by_server());
});

per_model!(http10_closes_unless_keep_alive_asked, |model| {
    let site = Site::new(model);
    let server = serve(model, &site, &[]);
    let mut conn = Conn::open(&server.addr);
    conn.send(b"GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = conn.response("GET");
    assert_eq!(r.header("connection"), Some("keep-alive"));
    conn.send(b"GET /hello.txt HTTP/1.0\r\n\r\n");
    assert_eq!(conn.response("GET").body, b"hello, world\n");
    assert!(conn.is_closed_by_server());
});

per_model!(errors_have_the_right_status, |model| {
    let site = Site::new(model);
    let server = serve(model, &site, &[]);
    assert_eq!(get(&server.addr, "/missing.html").status, 404);
    assert_eq!(get(&server.addr, "/empty/").status, 404);
    assert_eq!(get(&server.addr, "/hello.txt/").status, 404);
    let mut conn = Conn::open(&server.addr);
    conn.send(b"POST /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nabcde");
    let r = conn.response("POST");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    // The unread body was drained: the connection still works.
    conn.send(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.response("GET").status, 200);
    // A method no one defined: 501 (RFC 9110 §9.1), not 405.
    conn.send(b"FROB /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.response("FROB").status, 501);
});

per_model!(paths_never_escape_the_root, |model| {
    let site = Site::new(model);
    let server = serve(model, &site, &[]);
    for path in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/sub/..%2f..%2fsecret.txt",
        "/escape.txt",
        "/%2E%2E/%2E%2E/etc/passwd",
        "/..%5csecret.txt",
    ] {
        let r = get(&server.addr, path);
        assert!(matches!(r.status, 400 | 403 | 404), "{path}: {}", r.status);
        assert!(!r.text().contains("TOP SECRET"), "{path} leaked");
    }
    assert_eq!(
        get(&server.addr, "/file%20with%20space.txt?x=1").body,
        b"spaced\n"
    );
    assert_eq!(
        get(&server.addr, "/sub/../hello.txt").body,
        b"hello, world\n"
    );
});

per_model!(malformed_requests_get_4xx_and_close, |model| {
    let site = Site::new(model);
    let server = serve(model, &site, &[]);
    let long_line = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(9000));
    let many_fields = format!(
        "GET / HTTP/1.1\r\nHost: t\r\n{}\r\n",
        "X-A: b\r\n".repeat(101)
    );
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (b"GARBAGE\r\n\r\n".to_vec(), 400),
        (b"GET / HTTP/1.1\r\n\r\n".to_vec(), 400),
        (b"GET / HTTP/2.0\r\nHost: t\r\n\r\n".to_vec(), 505),
        (b"GET /hello%zz.txt HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), 400),
        (long_line.into_bytes(), 414),
        (many_fields.into_bytes(), 431),
        (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(), 400),
        (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n".to_vec(), 400),
        (b"GET / HTTP/1.1\r\nHost: t\r\nBad Name: x\r\n\r\n".to_vec(), 400),
        (b"GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n  folded\r\n\r\n".to_vec(), 400),
        (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(), 400),
        (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".to_vec(), 501),
        (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999\r\n\r\n".to_vec(), 413),
    ];
    for (request, status) in cases {
        let mut conn = Conn::open(&server.addr);
        conn.send(&request);
        let r = conn.response("GET");
        assert_eq!(
            r.status,
            status,
            "{:?}",
            String::from_utf8_lossy(&request[..request.len().min(60)])
        );
        assert_eq!(r.header("connection"), Some("close"));
        assert!(conn.is_closed_by_server());
    }
});

per_model!(conditional_and_range_requests, |model| {
    let site = Site::new(model);
    let server = serve(model, &site, &[]);
    let first = get(&server.addr, "/hello.txt");
    let etag = first.header("etag").unwrap().to_string();
    let mut conn = Conn::open(&server.addr);
    conn.send(
        format!("GET /hello.txt HTTP/1.1\r\nHost: t\r\nIf-None-Match: {etag}\r\n\r\n").as_bytes(),
    );
    let r = conn.response("GET");
    assert_eq!(r.status, 304);
    assert!(r.header("content-length").is_none());
    conn.send(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=7-11\r\n\r\n");
    let r = conn.response("GET");
    assert_eq!(r.status, 206);
    assert_eq!(r.body, b"world");
    assert_eq!(r.header("content-range"), Some("bytes 7-11/13"));
    conn.send(b"GET /big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=-100000\r\n\r\n");
    let r = conn.response("GET");
    let big = common::big_bytes();
    assert_eq!(r.body, &big[big.len() - 100000..]);
    conn.send(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=100-\r\n\r\n");
    let r = conn.response("GET");
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */13"));
    // Failed preconditions: 412, before the range is looked at; the connection stays open.
    for failing in [
        "If-Match: \"other\"".to_string(),
        format!("If-Match: W/{etag}"),
        "If-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT".to_string(),
    ] {
        conn.send(
            format!("GET /hello.txt HTTP/1.1\r\nHost: t\r\n{failing}\r\nRange: bytes=0-1\r\n\r\n")
                .as_bytes(),
        );
        assert_eq!(conn.response("GET").status, 412, "{failing}");
    }
    conn.send(
        format!("GET /hello.txt HTTP/1.1\r\nHost: t\r\nIf-Match: \"x\", {etag}\r\n\r\n").as_bytes(),
    );
    let r = conn.response("GET");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"hello, world\n");
    // A list field split over lines means the same as one line (RFC 9110 §5.3), whichever
    // line holds the tag; a date condition given twice is ignored (§13.1.3).
    let cases = [
        (
            format!("If-None-Match: \"x\"\r\nIf-None-Match: {etag}"),
            304,
        ),
        (
            format!("If-None-Match: {etag}\r\nIf-None-Match: \"x\""),
            304,
        ),
        (format!("If-Match: \"x\"\r\nIf-Match: {etag}"), 200),
        ("If-Match: \"x\"\r\nIf-Match: \"y\"".to_string(), 412),
        (
            "If-Modified-Since: Thu, 01 Jan 2099 00:00:00 GMT\r\n\
             If-Modified-Since: Thu, 01 Jan 2099 00:00:00 GMT"
                .to_string(),
            200,
        ),
    ];
    for (fields, status) in cases {
        conn.send(format!("GET /hello.txt HTTP/1.1\r\nHost: t\r\n{fields}\r\n\r\n").as_bytes());
        assert_eq!(conn.response("GET").status, status, "{fields}");
    }
    // Range is for GET only (§14.2): HEAD gets the whole file's headers.
    conn.send(b"HEAD /hello.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=0-1\r\n\r\n");
    let r = conn.response("HEAD");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("13"));
});

per_model!(serves_many_clients_at_once, |model| {
    let site = Site::new(model);
    let server = serve(model, &site, &[]);
    let addr = server.addr.clone();
    let clients: Vec<_> = (0..24)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut conn = Conn::open(&addr);
                for _ in 0..5 {
                    conn.send(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
                    assert_eq!(conn.response("GET").body, b"hello, world\n", "client {i}");
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
});

per_model!(slow_header_senders_are_cut_off, |model| {
    let site = Site::new(model);
    let server = serve(model, &site, &["--header-timeout", "1"]);
    let mut conn = Conn::open(&server.addr);
    conn.send(b"GET / HTTP/1.1\r\n");
    // A byte every 100 ms, as a slowloris client trickles, until the server cuts it off. The
    // head never ends (a field grows 10 bytes a second, far under the field limit), so only
    // the header timeout stops it; the overall bound only fails a hung test.
    let deadline = Instant::now() + common::HUNG;
    let mut closed = false;
    while !closed && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        closed = !conn.stream.write_all_ok(b"X");
    }
    assert!(closed, "a trickling client was not cut off");
});

per_model!(idle_keep_alive_connections_time_out, |model| {
    let site = Site::new(model);
    // Two servers: one keeps idle connections 600 s, the other 1 s. The patient one's idle
    // connection starts first, so were `--keep-alive` ignored (both on the default) it would
    // be closed first; no clock is read.
    let patient = serve(model, &site, &["--keep-alive", "600"]);
    let brisk = serve(model, &site, &["--keep-alive", "1"]);
    let idle = |server: &common::Server| {
        let mut conn = Conn::open(&server.addr);
        conn.send(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(conn.response("GET").status, 200);
        conn
    };
    let mut long = idle(&patient);
    let mut short = idle(&brisk);
    // Closed by the server while the client waits (its read gives up only after a minute).
    assert!(short.is_closed_by_server());
    assert!(
        long.is_open_now(),
        "the 600 s connection closed before the 1 s one"
    );
});

per_model!(sigterm_finishes_in_flight_work_and_exits_zero, |model| {
    let site = Site::new(model);
    let server = serve(model, &site, &[]);
    let mut conn = Conn::open(&server.addr);
    conn.send(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.response("GET").status, 200);
    let log = server.log.clone();
    let code = server.stop(common::HUNG);
    assert_eq!(code, Some(0), "log: {:?}", log.lock().unwrap());
});

/// `write_all` that reports failure instead of panicking (the server may have closed).
trait WriteOk {
    fn write_all_ok(&mut self, bytes: &[u8]) -> bool;
}

impl WriteOk for std::net::TcpStream {
    fn write_all_ok(&mut self, bytes: &[u8]) -> bool {
        std::io::Write::write_all(self, bytes).is_ok()
    }
}
