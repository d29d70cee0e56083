//! ASGI 3 conformance over real sockets, under every model that hosts ASGI (`event` and
//! `async`, one process and under a master with `-w 2`): every `http` scope field, body
//! streaming both ways with backpressure, disconnects, lifespan, and each error path.
//! The other models refuse an ASGI application with one line.

mod common;

use std::io::Read;

use common::client::{get, Conn};
use common::{eventually, python, run_to_exit, Server};
use sha2::{Digest, Sha256};

/// The ways ASGI is hosted: (model, extra flags).
fn hosts() -> Vec<(&'static str, Vec<String>)> {
    let mut hosts = Vec::new();
    for model in common::models() {
        match model {
            "event" => {
                hosts.push(("event", vec![]));
                hosts.push(("event", vec!["-w".into(), "2".into()]));
            }
            "async" => hosts.push(("async", vec!["--threads".into(), "2".into()])),
            _ => {}
        }
    }
    hosts
}

/// Runs `body` under every host, every one even after one failed.
fn for_each_host(body: impl Fn(&[String]) + std::panic::RefUnwindSafe) {
    let mut failed = Vec::new();
    for (model, extra) in hosts() {
        eprintln!("--- model {model} {extra:?}");
        let mut args = vec!["--model".to_string(), model.to_string()];
        args.extend(extra.iter().cloned());
        if std::panic::catch_unwind(|| body(&args)).is_err() {
            failed.push(format!("{model} {extra:?}"));
        }
    }
    assert!(failed.is_empty(), "failed under {failed:?}");
}

macro_rules! per_host {
    ($name:ident, |$args:ident| $body:block) => {
        #[test]
        fn $name() {
            fn run($args: &[String]) $body
            for_each_host(run);
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

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

fn bytes_field(value: &serde_json::Value) -> String {
    value["bytes"].as_str().expect("a bytes value").to_string()
}

per_host!(every_scope_field, |args| {
    let server = start(args, "asgi_app:app", &["--root-path", "/mount/"]);
    assert!(server.log_contains("asgi_app:app: ASGI 3 application (detected)"));
    let mut conn = Conn::open(&server.addr);
    conn.send(
        b"POST /scope/caf%C3%A9%20x?a=1&b=%20 HTTP/1.1\r\nHost: test\r\nX-Custom: One\r\nx-custom: two\r\nContent-Length: 4\r\n\r\nbody",
    );
    let response = conn.response("POST");
    assert_eq!(response.status, 200);
    let scope = json(&response.body);
    assert_eq!(scope["type"], "http");
    assert_eq!(scope["asgi"]["version"], "3.0");
    assert_eq!(scope["asgi"]["spec_version"], "2.4");
    assert_eq!(scope["http_version"], "1.1");
    assert_eq!(scope["method"], "POST");
    assert_eq!(scope["scheme"], "http");
    // `path` includes `root_path`: put back on a request that came without it (a proxy
    // that strips the mount point), as uvicorn does...
    assert_eq!(
        scope["path"], "/mount/scope/café x",
        "percent-decoded, UTF-8"
    );
    assert_eq!(
        bytes_field(&scope["raw_path"]),
        "/mount/scope/caf%C3%A9%20x"
    );
    assert_eq!(bytes_field(&scope["query_string"]), "a=1&b=%20");
    assert_eq!(scope["root_path"], "/mount");
    assert_eq!(
        scope["extensions"],
        serde_json::json!({"http.response.pathsend": {}}),
        "pathsend served; trailers not announced"
    );
    let headers: Vec<(String, String)> = scope["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| (bytes_field(&pair[0]), bytes_field(&pair[1])))
        .collect();
    let expected = [
        ("host", "test"),
        ("x-custom", "One"),
        ("x-custom", "two"),
        ("content-length", "4"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    assert_eq!(
        headers, expected,
        "lowercased names, in order, repeats kept"
    );
    let local_port: u64 = server.addr.rsplit_once(':').unwrap().1.parse().unwrap();
    let client_port = conn.stream.local_addr().unwrap().port() as u64;
    assert_eq!(
        scope["client"],
        serde_json::json!(["127.0.0.1", client_port])
    );
    assert_eq!(
        scope["server"],
        serde_json::json!(["127.0.0.1", local_port])
    );
    assert_eq!(
        scope["state"]["started_by"], "lifespan",
        "lifespan state copied in"
    );
    assert_eq!(scope["body"], "body");
    // ...and kept on one that carries it (a proxy that passes the whole path), as WSGI's
    // SCRIPT_NAME is only stripped from PATH_INFO where present.
    let scope = json(&get(&server.addr, "/mount/scope/x%20y").body);
    assert_eq!(scope["path"], "/mount/scope/x y");
    assert_eq!(bytes_field(&scope["raw_path"]), "/mount/scope/x%20y");

    // HTTP/1.0, and the scheme a trusted proxy (this machine, by default) forwards.
    let mut conn = Conn::open(&server.addr);
    conn.send(
        b"GET /scope HTTP/1.0\r\nX-Forwarded-Proto: https\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n",
    );
    let scope = json(&conn.response("GET").body);
    assert_eq!(scope["http_version"], "1.0");
    assert_eq!(scope["scheme"], "https");
    assert_eq!(scope["client"][0], "203.0.113.9");

    // An absolute-form target's authority is the host, whatever Host says (RFC 9112 §3.2.2).
    let mut conn = Conn::open(&server.addr);
    conn.send(b"GET http://other.example:81/mount/scope/abs?x HTTP/1.1\r\nHost: test\r\n\r\n");
    let scope = json(&conn.response("GET").body);
    assert_eq!(scope["path"], "/mount/scope/abs");
    let hosts: Vec<String> = scope["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|pair| bytes_field(&pair[0]) == "host")
        .map(|pair| bytes_field(&pair[1]))
        .collect();
    assert_eq!(hosts, ["other.example:81"]);
});

per_host!(a_10_mb_upload_arrives_whole_in_bounded_chunks, |args| {
    let server = start(args, "asgi_app:app", &[]);
    let body: Vec<u8> = (0..10 * 1024 * 1024u32)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let mut conn = Conn::open(&server.addr);
    conn.send(
        format!(
            "POST /sha256 HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    conn.send(&body);
    let response = conn.response("POST");
    assert_eq!(response.status, 200);
    let text = response.text();
    let fields: Vec<&str> = text.split(' ').collect();
    assert_eq!(fields[0], hex(&Sha256::digest(&body)));
    assert_eq!(fields[1], body.len().to_string());
    let chunks: usize = fields[2].parse().unwrap();
    assert!(
        chunks >= 10 * 16,
        "at most 64 KiB per http.request: {chunks} chunks"
    );

    // Chunked uploads too, streamed back as they arrive.
    let mut conn = Conn::open(&server.addr);
    conn.send(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    );
    assert!(
        conn.wait_for_bytes(b"hello"),
        "the first piece came back before the body ended"
    );
    conn.send(b"6\r\n world\r\n0\r\n\r\n");
    let response = conn.response("POST");
    assert_eq!(response.text(), "hello world");
});

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// A client that reads nothing holds the application back: send() waits instead of the
// response being made whole into the server's memory.
per_host!(a_client_that_reads_nothing_holds_send_back, |args| {
    let server = start(args, "asgi_app:app", &[]);
    let progress = common::temp_path("asgi-flood-progress");
    // 1 MiB messages: each alone is more than the server's output buffer holds.
    let target = format!("/flood?n=300&size=1048576&progress={}", progress.display());
    let made =
        common::slow::chunks_made_for_a_client_that_reads_nothing(&server.addr, &target, &progress);
    assert!(
        made < 100,
        "{args:?}: {made} of 300 MiB made for a client reading nothing"
    );
    let _ = std::fs::remove_file(&progress);
});

// Work an application does after its complete response (background tasks) is its own: it
// is not cancelled when the connection ends, only a task whose client left mid-response is.
per_host!(work_after_a_complete_response_runs_to_its_end, |args| {
    let server = start(
        args,
        "asgi_app:app",
        &["--asgi-disconnect-grace-period", "0.3"],
    );
    let done = common::temp_path("background-done");
    let response = get(&server.addr, &format!("/background?{}", done.display()));
    assert_eq!(response.status, 200);
    assert!(
        eventually(|| done.exists()),
        "the work after the response was cut short\n{}",
        server.log_text()
    );
    let _ = std::fs::remove_file(&done);
});

per_host!(streamed_responses_are_flushed_as_produced, |args| {
    let server = start(args, "asgi_app:app", &[]);
    let mut sse = Conn::open(&server.addr);
    sse.send(b"POST /sse HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    // The first event arrives while the app still waits for the next body piece.
    assert!(sse.wait_for_bytes(b"data: first"));
    assert!(!String::from_utf8_lossy(sse.received()).contains("second"));
    sse.send(b"2\r\ngo\r\n0\r\n\r\n");
    let response = sse.response("POST");
    assert_eq!(response.header("transfer-encoding"), Some("chunked"));
    assert_eq!(response.text(), "data: first\n\ndata: second\n\n");

    // A declared length is kept (framing headers belong to the server), repeated headers too.
    let mut conn = Conn::open(&server.addr);
    conn.send(b"GET /length HTTP/1.1\r\nHost: t\r\n\r\n");
    let response = conn.response("GET");
    assert_eq!(response.status, 201);
    assert_eq!(response.header("content-length"), Some("5"));
    assert_eq!(response.text(), "hello");
    let ones: Vec<&str> = response
        .headers
        .iter()
        .filter(|(n, _)| n == "x-one")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(ones, ["1", "2"]);
    // Keep-alive: the connection serves the next request...
    conn.send(b"GET /length HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.response("GET").text(), "hello");
    // ...unless the app says `Connection: close` (said once, by the server).
    conn.send(b"GET /close-after HTTP/1.1\r\nHost: t\r\n\r\n");
    let response = conn.response("GET");
    assert_eq!(response.text(), "bye");
    let said: Vec<_> = response
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .collect();
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(conn.is_closed_by_server());
});

per_host!(a_client_that_leaves_is_told_and_later_sends_raise, |args| {
    let server = start(args, "asgi_app:app", &[]);
    let tag = format!("{}", std::process::id());
    let mut conn = Conn::open(&server.addr);
    conn.send(format!("GET /hang-up?{tag} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    assert!(conn.wait_for_bytes(b"waiting"));
    drop(conn);
    // Several workers: ask until the one that served it answers.
    let seen =
        |needle: String| eventually(|| get(&server.addr, "/events").text().contains(&needle));
    assert!(seen(format!("http.disconnect {tag}")));
    assert!(seen(format!("send raised OSError {tag}")));
});

// A Unix-socket connection has no local address: its scope's `server` is `[path, None]`.
per_host!(a_unix_socket_scope_names_the_socket_as_server, |args| {
    use std::io::Write;
    let path = common::temp_path("asgi.sock");
    let bind = format!("unix:{}", path.display());
    let _server = start(args, "asgi_app:app", &["-b", &bind]);
    let mut s = std::os::unix::net::UnixStream::connect(&path).expect("connect");
    s.set_read_timeout(Some(common::HUNG)).unwrap();
    // HTTP/1.0: the body is not chunked, and ends with the connection.
    s.write_all(b"GET /scope HTTP/1.0\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let scope = json(text.split_once("\r\n\r\n").unwrap().1.as_bytes());
    assert_eq!(
        scope["server"],
        serde_json::json!([path.display().to_string(), null])
    );
    assert_eq!(scope["client"], serde_json::Value::Null);
    let _ = std::fs::remove_file(&path);
});

// A client that ends its side right after its request (`nc -N`, `shutdown(SHUT_WR)`) still
// reads: what the application sends before it is told of the end reaches it, as from a
// WSGI application; the end is still announced (`http.disconnect`), after which sends raise.
per_host!(
    a_client_that_half_closes_after_its_request_gets_the_answer,
    |args| {
        let server = start(args, "asgi_app:app", &[]);
        let half_closed = |request: &[u8]| {
            let mut conn = Conn::open(&server.addr);
            conn.send(request);
            conn.stream.shutdown(std::net::Shutdown::Write).unwrap();
            conn
        };
        // The application never reads the request.
        let mut conn = half_closed(b"GET /length HTTP/1.1\r\nHost: t\r\n\r\n");
        let response = conn.response("GET");
        assert_eq!((response.status, response.text()), (201, "hello".into()));
        assert!(
            conn.try_response("GET").is_none(),
            "then the connection ends"
        );
        // It reads the whole body first; pipelined requests are all answered.
        let body = vec![b'x'; 300_000];
        let mut request = format!(
            "POST /sha256 HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(&body);
        request.extend_from_slice(b"GET /length HTTP/1.1\r\nHost: t\r\n\r\n");
        let mut conn = half_closed(&request);
        let digest = hex(&Sha256::digest(&body));
        let text = conn.response("POST").text();
        assert!(text.starts_with(&format!("{digest} 300000 ")), "{text}");
        assert_eq!(conn.response("GET").text(), "hello");
        // HTTP/1.0, whose response ends with the connection.
        let mut conn = half_closed(b"GET /length HTTP/1.0\r\n\r\n");
        assert_eq!(conn.response("GET").text(), "hello");
        // An application waiting on `receive` after the body learns of the end.
        let tag = format!("half-{}", std::process::id());
        let mut conn =
            half_closed(format!("GET /hang-up?{tag} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        assert!(conn.wait_for_bytes(b"waiting"));
        let seen =
            |needle: String| eventually(|| get(&server.addr, "/events").text().contains(&needle));
        assert!(seen(format!("http.disconnect {tag}")));
        assert!(seen(format!("send raised OSError {tag}")));
    }
);

/// Server-side TCP connections on `addr`'s port still open (`/proc/net/tcp`: neither
/// listening nor in TIME_WAIT).
fn open_connections(addr: &str) -> usize {
    let port = addr.rsplit_once(':').unwrap().1.parse::<u16>().unwrap();
    let local = format!(":{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields[1].ends_with(&local) && !matches!(fields[3], "0A" | "06")
        })
        .count()
}

/// `(running, cancelled)` summed over the workers' notes of `/ignore-disconnect` tasks.
fn ignoring(dir: &std::path::Path) -> (u64, u64) {
    let mut sums = (0, 0);
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read(entry.unwrap().path()).unwrap_or_default();
        // A worker may be rewriting its note: an unreadable one counts as not settled.
        let Ok(note) = serde_json::from_slice::<serde_json::Value>(&text) else {
            return (u64::MAX, 0);
        };
        sums.0 += note["running"].as_u64().unwrap();
        sums.1 += note["cancelled"].as_u64().unwrap();
    }
    sums
}

per_host!(
    tasks_that_ignore_a_disconnect_are_cancelled_and_leak_nothing,
    |args| {
        const CLIENTS: usize = 200;
        // A grace shorter than the default: the tasks that ignore the disconnect are
        // cancelled after the setting's time.
        let server = start(
            args,
            "asgi_app:app",
            &["--asgi-disconnect-grace-period", "0.3"],
        );
        assert_eq!(get(&server.addr, "/length").status, 201);
        let dir = common::temp_path("ignoring");
        std::fs::create_dir(&dir).unwrap();
        let mut conns: Vec<Conn> = (0..CLIENTS).map(|_| Conn::open(&server.addr)).collect();
        for conn in &mut conns {
            let request = format!(
                "GET /ignore-disconnect?{} HTTP/1.1\r\nHost: t\r\n\r\n",
                dir.display()
            );
            conn.send(request.as_bytes());
        }
        for conn in &mut conns {
            assert!(conn.wait_for_bytes(b"sleeping"), "every task started");
        }
        assert_eq!(
            ignoring(&dir),
            (CLIENTS as u64, 0),
            "all sleep, none cancelled"
        );
        // The clients leave; the tasks sleep for an hour and never call receive().
        drop(conns);
        assert!(
            eventually(|| ignoring(&dir) == (0, CLIENTS as u64)),
            "every task cancelled: {:?}",
            ignoring(&dir)
        );
        // Nothing of those connections is left, and the server serves on.
        assert!(
            eventually(|| open_connections(&server.addr) == 0),
            "{} connections left",
            open_connections(&server.addr)
        );
        assert_eq!(get(&server.addr, "/length").text(), "hello");
        let _ = std::fs::remove_dir_all(&dir);
    }
);

per_host!(pathsend_serves_the_file_and_refuses_bad_paths, |args| {
    let server = start(args, "asgi_app:app", &[]);
    let dir = common::temp_path("pathsend");
    std::fs::create_dir(&dir).unwrap();
    let big = dir.join("big.bin");
    let content = common::big_bytes();
    assert!(content.len() > 64 * 1024, "goes out with sendfile");
    std::fs::write(&big, &content).unwrap();
    let small = dir.join("small.txt");
    std::fs::write(&small, b"small file").unwrap();

    let mut conn = Conn::open(&server.addr);
    for (file, bytes) in [(&big, &content[..]), (&small, &b"small file"[..])] {
        conn.send(
            format!(
                "GET /pathsend?{} HTTP/1.1\r\nHost: t\r\n\r\n",
                file.display()
            )
            .as_bytes(),
        );
        let response = conn.response("GET");
        assert_eq!(response.status, 200);
        let len = bytes.len().to_string();
        assert_eq!(response.header("content-length"), Some(len.as_str()));
        assert_eq!(
            response.header("content-type"),
            Some("application/octet-stream")
        );
        assert!(response.body == bytes, "{} bytes came whole", bytes.len());
    }
    // HEAD: the length, no body; then the same connection still serves.
    conn.send(
        format!(
            "HEAD /pathsend?{} HTTP/1.1\r\nHost: t\r\n\r\n",
            big.display()
        )
        .as_bytes(),
    );
    let response = conn.response("HEAD");
    let len = content.len().to_string();
    assert_eq!(response.header("content-length"), Some(len.as_str()));
    assert!(response.body.is_empty());
    conn.send(b"GET /length HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.response("GET").text(), "hello");

    // The application's mistakes: a relative path, a missing file, a directory. Each
    // raises in its send (logged) and the client gets a 500.
    let missing = dir.join("missing");
    for (path, logged) in [
        ("relative/file".to_string(), "needs an absolute path"),
        (missing.display().to_string(), "FileNotFoundError"),
        (dir.display().to_string(), "is not a regular file"),
    ] {
        let response = get(&server.addr, &format!("/pathsend?{path}"));
        assert_eq!(response.status, 500, "{path}");
        assert!(server.log_contains(logged), "{logged}");
    }
    let _ = std::fs::remove_dir_all(&dir);
});

per_host!(trailers_go_only_to_clients_that_take_them, |args| {
    let server = start(args, "asgi_app:app", &[]);
    let raw = |te: &str| {
        let mut conn = Conn::open(&server.addr);
        let request = format!("GET /trailers HTTP/1.1\r\nHost: t\r\n{te}Connection: close\r\n\r\n");
        conn.send(request.as_bytes());
        let mut raw = Vec::new();
        conn.stream.read_to_end(&mut raw).unwrap();
        String::from_utf8(raw).unwrap()
    };
    let with = raw("TE: trailers\r\n");
    assert!(with.starts_with("HTTP/1.1 200 "), "{with}");
    assert!(with.contains("x-announced: True\r\n"), "{with}");
    assert!(with.contains("Transfer-Encoding: chunked\r\n"), "{with}");
    assert!(
        with.ends_with("6\r\nfirst \r\n4\r\nlast\r\n0\r\nx-checksum: abc\r\nx-more: 1\r\n\r\n"),
        "the body, then both trailer messages' fields: {with}"
    );
    // Without TE: trailers the extension is not announced and the fields are dropped.
    let without = raw("");
    assert!(without.contains("x-announced: False\r\n"), "{without}");
    assert!(
        without.ends_with("6\r\nfirst \r\n4\r\nlast\r\n0\r\n\r\n"),
        "{without}"
    );
});

per_host!(application_errors_answer_500_or_cut_the_response, |args| {
    let server = start(args, "asgi_app:app", &[]);
    let mut conn = Conn::open(&server.addr);
    conn.send(b"GET /raise HTTP/1.1\r\nHost: t\r\n\r\n");
    let response = conn.response("GET");
    assert_eq!(response.status, 500);
    assert_eq!(response.header("connection"), Some("close"));
    assert!(server.log_contains("ValueError: boom before start"));

    // After the head: no final chunk, the connection closes.
    let mut conn = Conn::open(&server.addr);
    conn.send(b"GET /raise-after HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(conn.wait_for_bytes(b"partial"));
    assert!(
        conn.try_response("GET").is_none(),
        "the chunked body must not end cleanly"
    );
    assert!(server.log_contains("ValueError: boom after start"));

    for (path, logged) in [
        ("/no-response", "returned without completing the response"),
        ("/interim-status", "invalid status 103"),
        ("/status-999", "invalid status 999"),
        ("/control-in-value", "invalid value for header \"x-bad\""),
        (
            "/two-lengths",
            "content-length given twice with different values",
        ),
        (
            "/wrong-order",
            "unexpected ASGI message \"http.response.body\" before http.response.start",
        ),
    ] {
        let mut conn = Conn::open(&server.addr);
        conn.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        let response = conn.response("GET");
        assert_eq!(response.status, 500, "{path}");
        assert!(conn.is_closed_by_server(), "{path}");
        assert!(server.log_contains(logged), "{path}");
    }
    let mut conn = Conn::open(&server.addr);
    conn.send(b"GET /double-start HTTP/1.1\r\nHost: t\r\n\r\n");
    let response = conn.response("GET");
    assert_eq!(response.status, 500, "the held head never left");
    assert!(server.log_contains("\"http.response.start\" after http.response.start"));
    // A body longer than the length the app declared: what fits goes, then the send of the
    // rest raises (logged) and the connection closes; nothing is dropped in silence.
    let mut conn = Conn::open(&server.addr);
    conn.send(b"GET /longer-than-declared HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.response("GET").text(), "ab");
    assert!(conn.is_closed_by_server());
    assert!(server.log_contains("response content longer than its content-length"));
    // One shorter: the client would wait for the rest, so the app's send raises (logged)
    // and, the head still held, the answer is 500; to HEAD the length is the body's to be.
    let mut conn = Conn::open(&server.addr);
    conn.send(b"GET /shorter-than-declared HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.response("GET").status, 500);
    assert!(server.log_contains("response content shorter than its content-length (3 of 5"));
    let mut conn = Conn::open(&server.addr);
    conn.send(b"HEAD /shorter-than-declared HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = conn.response("HEAD");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("5"));
});

per_host!(request_timeout_cancels_the_task_and_answers_504, |args| {
    let server = start(args, "asgi_app:app", &["--request-timeout", "1"]);
    let tag = format!("t{}", std::process::id());
    let mut conn = Conn::open(&server.addr);
    conn.send(format!("GET /slow?{tag} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    let response = conn.response("GET");
    assert_eq!(response.status, 504);
    assert!(eventually(|| get(&server.addr, "/events")
        .text()
        .contains(&format!("cancelled {tag}"))));
});

per_host!(lifespan_shutdown_runs_on_a_graceful_stop, |args| {
    let marker = common::temp_path("asgi-shutdown");
    let mut all = args.to_vec();
    all.extend([
        "asgi_app:app".into(),
        "--chdir".into(),
        python::apps_dir().display().to_string(),
        "-e".into(),
        format!("ASGI_SHUTDOWN_FILE={}", marker.display()),
    ]);
    let server = Server::start(&all);
    assert_eq!(get(&server.addr, "/length").status, 201);
    let (code, log) = server.stop_and_read_log();
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "shutdown ran");
    let _ = std::fs::remove_file(&marker);
});

per_host!(a_failed_lifespan_startup_stops_the_server, |args| {
    let mut all = args.to_vec();
    all.extend([
        "-b".into(),
        "127.0.0.1:0".into(),
        "asgi_lifespan_fail:app".into(),
        "--chdir".into(),
        python::apps_dir().display().to_string(),
    ]);
    let (code, log) = run_to_exit(&all);
    assert!(code.is_some_and(|c| c != 0), "exit {code:?}: {log}");
    assert!(
        log.contains("ASGI lifespan startup failed: database unreachable"),
        "{log}"
    );
});

per_host!(apps_without_lifespan_and_asgi2_classes_are_served, |args| {
    let server = start(args, "asgi_plain:app", &[]);
    assert_eq!(get(&server.addr, "/").text(), "plain asgi");
    assert!(server.log_contains("lifespan not supported"));
    drop(server);
    let server = start(args, "asgi_plain:spec_hello", &[]);
    let r = get(&server.addr, "/");
    assert_eq!(r.text(), "spec hello");
    assert_eq!(r.header("x-list"), Some("yes"));
    assert!(server.log_contains("returned without answering lifespan.startup"));
    drop(server);
    let server = start(args, "asgi_plain:Legacy", &[]);
    assert_eq!(get(&server.addr, "/x").text(), "asgi2 /x");
    drop(server);
    // auto keeps a plain callable on WSGI; --interface asgi forces the bridge.
    let server = start(args, "asgi_plain:wsgi", &[]);
    assert!(server.log_contains("asgi_plain:wsgi: WSGI application (detected)"));
    assert_eq!(get(&server.addr, "/").text(), "plain wsgi");
});

#[test]
fn blocking_models_refuse_asgi_with_one_line() {
    for model in common::models() {
        if matches!(model, "event" | "async") {
            continue;
        }
        let mut args = common::model_args(model);
        args.extend([
            "-b".into(),
            "127.0.0.1:0".into(),
            "asgi_plain:app".into(),
            "--chdir".into(),
            python::apps_dir().display().to_string(),
        ]);
        let (code, log) = run_to_exit(&args);
        assert!(code.is_some_and(|c| c != 0), "{model}: exit {code:?}");
        assert!(
            log.contains("an ASGI application runs on --model event or async"),
            "{model}: {log}"
        );
    }
}

#[test]
fn worker_class_asgi_serves_on_the_event_loop() {
    let server = Server::start(&[
        "-k".into(),
        "asgi".into(),
        "asgi_plain:app".into(),
        "--chdir".into(),
        python::apps_dir().display().to_string(),
    ]);
    assert!(server.log_contains("model event"));
    assert_eq!(get(&server.addr, "/").text(), "plain asgi");
}
