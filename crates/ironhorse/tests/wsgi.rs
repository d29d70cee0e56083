//! PEP 3333 through the real binary, every case under every model.

mod common;

use common::client::{get, Conn};
use common::python::{apps_dir, wsgi_args};
use common::{temp_path, Server};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

fn serve(model: &str, extra: &[&str]) -> Server {
    let mut args = wsgi_args(model, "wsgi_app:application", &apps_dir());
    args.extend(extra.iter().map(|s| s.to_string()));
    Server::start(&args)
}

/// The server with one worker process and one application thread under `model`: every
/// connection meets the same thread.
fn serve_on_one_thread(model: &str, extra: &[&str]) -> Server {
    let one_thread: &[&str] = match model {
        "prefork" => &["-w", "1"],
        "hybrid" => &["-w", "1", "--threads", "1"],
        "threadpool" | "event" | "async" => &["--threads", "1"],
        _ => &[],
    };
    let mut args = match model {
        "event-inline" => common::model_args(model),
        _ => vec!["--model".to_string(), model.to_string()],
    };
    args.extend(one_thread.iter().chain(extra).map(|s| s.to_string()));
    args.extend([
        "wsgi_app:application".into(),
        "--chdir".into(),
        apps_dir().display().to_string(),
    ]);
    Server::start(&args)
}

/// Sends `conn` a request that stays in the application until the file `gate` exists, and
/// waits until the application has it (it says so in the file `record`).
fn park_in_app(conn: &mut Conn, gate: &std::path::Path, record: &std::path::Path) {
    conn.send(
        format!(
            "GET /gate?gate={}&record={} HTTP/1.1\r\nHost: x\r\n\r\n",
            gate.display(),
            record.display()
        )
        .as_bytes(),
    );
    assert!(common::eventually(
        || std::fs::read_to_string(record).is_ok_and(|s| s.contains("entered"))
    ));
}

/// Waits until `path` has `lines` lines, then reports how many it has.
fn wait_for_lines(path: &std::path::Path, lines: usize) -> usize {
    let count = || {
        std::fs::read_to_string(path)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    common::eventually(|| count() >= lines);
    // A second close() that should not come has no event to wait for: this grace can only
    // miss one, never fail a correct server.
    std::thread::sleep(Duration::from_millis(200));
    count()
}

per_wsgi_model!(environ_follows_pep_3333, |model| {
    let server = serve(model, &["--root-path", "/mount"]);
    let mut conn = Conn::open(&server.addr);
    conn.send(
        b"POST /mount/environ/caf%C3%A9%20x?a=1&b=%20 HTTP/1.1\r\nHost: example.org:8080\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nX-Multi: one\r\nX-Multi: two\r\nCookie: a=1\r\nCookie: b=2\r\nX_Spoof: bad\r\n\r\nabc",
    );
    let r = conn.response("POST");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), server.log_text());
    let env: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(env["REQUEST_METHOD"], "POST");
    assert_eq!(env["SCRIPT_NAME"], "/mount");
    // PATH_INFO is the percent-decoded bytes, as latin-1.
    assert_eq!(
        env["path_bytes"],
        serde_json::json!("/environ/café x".as_bytes())
    );
    assert_eq!(env["QUERY_STRING"], "a=1&b=%20");
    assert_eq!(env["RAW_URI"], "/mount/environ/caf%C3%A9%20x?a=1&b=%20");
    assert_eq!(env["CONTENT_TYPE"], "text/plain");
    assert_eq!(env["CONTENT_LENGTH"], "3");
    assert_eq!(env["SERVER_PROTOCOL"], "HTTP/1.1");
    assert_eq!(env["REMOTE_ADDR"], "127.0.0.1");
    assert_eq!(env["wsgi.url_scheme"], "http");
    assert_eq!(env["version"], serde_json::json!([1, 0]));
    assert_eq!(env["wsgi.input_terminated"], true);
    assert_eq!(env["wsgi.run_once"], false);
    assert_eq!(env["headers"]["HTTP_X_MULTI"], "one, two");
    assert_eq!(env["headers"]["HTTP_COOKIE"], "a=1; b=2");
    assert!(
        env["headers"].get("HTTP_X_SPOOF").is_none(),
        "underscore header spoofed: {env}"
    );
    assert!(env["headers"].get("HTTP_CONTENT_TYPE").is_none());
    let multiprocess = matches!(model, "fork" | "prefork" | "hybrid");
    let multithread = matches!(
        model,
        "thread" | "threadpool" | "hybrid" | "event" | "async"
    );
    assert_eq!(env["wsgi.multiprocess"], multiprocess, "{model}");
    assert_eq!(env["wsgi.multithread"], multithread, "{model}");
});

per_wsgi_model!(uploads_stream_through_wsgi_input, |model| {
    let server = serve(model, &[]);
    let body: Vec<u8> = (0..5_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let expected = format!("{} {:x}", body.len(), Sha256::digest(&body));
    let mut conn = Conn::open(&server.addr);
    conn.send(
        format!(
            "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    conn.send(&body);
    assert_eq!(conn.response("POST").text(), expected);
    // Chunked, with 100-continue, on the same connection.
    conn.send(b"POST /upload?mode=readline HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n");
    let interim = conn.response("POST");
    assert_eq!(interim.status, 100);
    for piece in body.chunks(300_007) {
        conn.send(format!("{:x};ext=1\r\n", piece.len()).as_bytes());
        conn.send(piece);
        conn.send(b"\r\n");
    }
    conn.send(b"0\r\nX-Trailer: t\r\n\r\n");
    assert_eq!(conn.response("POST").text(), expected);
});

per_wsgi_model!(streams_flush_each_chunk_and_close_is_called_once, |model| {
    let server = serve(model, &[]);
    let closefile = temp_path("close");
    let gate = temp_path("gate");
    // The app holds its second chunk until the gate opens: the first must arrive before.
    let mut conn = Conn::open(&server.addr);
    conn.send(
        format!(
            "GET /stream?n=3&gate={}&closefile={} HTTP/1.1\r\nHost: t\r\n\r\n",
            gate.display(),
            closefile.display()
        )
        .as_bytes(),
    );
    assert!(
        conn.wait_for_bytes(b"data: 0"),
        "the connection closed before the first chunk"
    );
    let early = String::from_utf8_lossy(conn.received()).into_owned();
    assert!(early.starts_with("HTTP/1.1 200"), "{early}");
    assert!(!early.contains("data: 1"), "the gate did not hold: {early}");
    std::fs::write(&gate, b"").unwrap();
    let rest = conn.response("GET");
    assert!(rest.text().contains("data: 2"), "{}", rest.text());
    assert_eq!(
        wait_for_lines(&closefile, 1),
        1,
        "close() after a complete stream"
    );
    // A client that leaves mid-stream: close() is still called, once.
    let mut conn = Conn::open(&server.addr);
    conn.send(
        format!(
            "GET /stream?n=50&delay=0.05&closefile={} HTTP/1.1\r\nHost: t\r\n\r\n",
            closefile.display()
        )
        .as_bytes(),
    );
    assert!(conn.wait_for_bytes(b"data: 1"), "the stream did not start");
    drop(conn);
    assert_eq!(
        wait_for_lines(&closefile, 2),
        2,
        "close() after the client left"
    );
    let _ = std::fs::remove_file(&closefile);
    let _ = std::fs::remove_file(&gate);
});

per_wsgi_model!(app_errors_become_500_or_a_closed_connection, |model| {
    let server = serve(model, &[]);
    let r = get(&server.addr, "/fail-early");
    assert_eq!(r.status, 500);
    assert!(
        !r.text().contains("boom"),
        "traceback leaked without --debug"
    );
    assert!(
        server.log_contains("boom before headers"),
        "traceback not logged"
    );
    let r = get(&server.addr, "/bad-header");
    assert_eq!(r.status, 500, "a header with CR/LF must not be sent on");
    assert!(r.header("injected").is_none());
    // After the head: the connection is closed without a final chunk.
    let mut conn = Conn::open(&server.addr);
    conn.send(b"GET /fail-late HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(
        conn.try_response("GET").is_none(),
        "a failed stream must not look complete"
    );
    // HTTP/1.0 (nginx's default to upstreams): the body is close-delimited, so only a
    // reset can tell the client it was cut short; an orderly close would pass it as whole.
    let mut stream = std::net::TcpStream::connect(&server.addr).unwrap();
    stream.set_read_timeout(Some(common::HUNG)).unwrap();
    stream
        .write_all(b"GET /fail-late HTTP/1.0\r\n\r\n")
        .unwrap();
    let mut chunk = [0u8; 4096];
    let end = loop {
        match stream.read(&mut chunk) {
            Ok(0) => break "an orderly close",
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break "a reset",
            Err(e) => panic!("read failed: {e}"),
        }
    };
    assert_eq!(end, "a reset", "a cut close-delimited body");
    // wsgi.input read after the first chunk: the whole body read, or none sent, reads as
    // its end; an unread body fails the read (logged) and the response is cut, never an
    // empty body passed off as the client's.
    let r = get(&server.addr, "/read-late");
    assert_eq!(r.text(), "first;read 0");
    let mut conn = Conn::open(&server.addr);
    conn.send(b"POST /read-late HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
    assert!(conn.try_response("POST").is_none(), "a body read as empty");
    assert!(server.log_contains("the request body can no longer be read"));
    // A declared Content-Length the app does not meet: the connection is closed.
    let mut conn = Conn::open(&server.addr);
    conn.send(b"GET /short HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(conn.try_response("GET").is_none());
    // The server still answers.
    assert_eq!(get(&server.addr, "/lazy").status, 201);
});

per_wsgi_model!(lazy_start_response_write_and_head, |model| {
    let server = serve(model, &[]);
    let mut conn = Conn::open(&server.addr);
    conn.send(b"GET /lazy HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = conn.response("GET");
    assert_eq!(r.status, 201);
    assert_eq!(r.header("x-lazy"), Some("yes"));
    assert_eq!(r.text(), "lazy body");
    conn.send(b"HEAD /lazy HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = conn.response("HEAD");
    assert_eq!(r.status, 201);
    assert!(r.body.is_empty());
    conn.send(b"GET /write HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.response("GET").text(), "written returned");
    conn.send(b"GET /lazy HTTP/1.0\r\n\r\n");
    let r = conn.response("GET");
    assert_eq!(r.text(), "lazy body");
    assert!(conn.is_closed_by_server());
});

// Not under `event-inline` (`--threads 0`): there the app runs on the loop's thread, which
// sends nothing until the app returns, so write() data leaves with the rest of the response.
// A client that reads nothing holds the application back (its iterable is not pulled while
// the server's buffer is full): the response is not made whole into the server's memory.
per_model!(
    a_client_that_reads_nothing_holds_the_application_back,
    |model| {
        let server = Server::start(&wsgi_args(model, "wsgi_app:application", &apps_dir()));
        let progress = temp_path("flood-progress");
        let target = format!("/flood?n=3000&progress={}", progress.display());
        let made = common::slow::chunks_made_for_a_client_that_reads_nothing(
            &server.addr,
            &target,
            &progress,
        );
        assert!(
            made < 1000,
            "{model}: {made} of 3000 chunks made for a client reading nothing"
        );
        let _ = std::fs::remove_file(&progress);
    }
);

per_model!(write_sends_before_it_returns, |model| {
    let server = serve(model, &[]);
    let gate = temp_path("write-gate");
    let mut conn = Conn::open(&server.addr);
    let ask = |conn: &mut Conn, query: String| {
        conn.send(format!("GET /write-stream?{query} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
    };
    // The app holds everything after `first` until the gate opens, which the test does only
    // once `first` arrived: a server holding write() data until the app returns hangs here.
    ask(&mut conn, format!("gate={}", gate.display()));
    assert!(
        conn.wait_for_bytes(b"first\n"),
        "the connection closed before the first write() arrived"
    );
    let early = String::from_utf8_lossy(conn.received()).into_owned();
    assert!(early.starts_with("HTTP/1.1 200"), "{early}");
    assert!(!early.contains("last"), "the gate did not hold: {early}");
    std::fs::write(&gate, b"").unwrap();
    let r = conn.response("GET");
    assert_eq!(
        r.text(),
        "first\nlast\ntail\n",
        "write() data, then the iterable"
    );
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    // A 1 MB write() arrives whole, on the same connection.
    ask(&mut conn, "big=1048576".into());
    let r = conn.response("GET");
    assert_eq!(r.body.len(), 6 + 1_048_576 + 5 + 5);
    assert!(r.body[6..6 + 1_048_576].iter().all(|&b| b == b'x'));
    assert!(r.text().ends_with("last\ntail\n"));
    // A declared Content-Length frames the written body (no chunking), the connection stays.
    ask(&mut conn, "big=1000&length=1".into());
    let r = conn.response("GET");
    assert_eq!(r.header("content-length"), Some("1016"));
    assert!(r.header("transfer-encoding").is_none());
    assert!(r.text().starts_with("first\nxxx") && r.text().ends_with("last\ntail\n"));
    assert_eq!(get(&server.addr, "/lazy").status, 201);
    let _ = std::fs::remove_file(&gate);
});

per_model!(write_to_a_client_that_left_raises_in_the_app, |model| {
    let server = serve(model, &[]);
    let (gate, record) = (temp_path("write-gate"), temp_path("write-record"));
    let mut conn = Conn::open(&server.addr);
    // 64 MiB after the gate: more than any socket buffer holds, so a write must fail.
    conn.send(
        format!(
            "GET /write-stream?gate={}&more=1024&record={} HTTP/1.1\r\nHost: t\r\n\r\n",
            gate.display(),
            record.display()
        )
        .as_bytes(),
    );
    assert!(conn.wait_for_bytes(b"first\n"), "no first write()");
    drop(conn);
    std::fs::write(&gate, b"").unwrap();
    assert_eq!(
        wait_for_lines(&record, 1),
        1,
        "the app's writes never ended"
    );
    let outcome = std::fs::read_to_string(&record).unwrap();
    assert_eq!(
        outcome.trim(),
        "ClientDisconnected",
        "write() to a client gone"
    );
    assert!(
        common::eventually(|| server.log_contains("client went away while the response was sent")),
        "{}",
        server.log_text()
    );
    let log = server.log_text();
    assert!(
        !log.contains("Traceback"),
        "a client error is not an app error: {log}"
    );
    assert_eq!(
        get(&server.addr, "/lazy").status,
        201,
        "the server still answers"
    );
    let _ = std::fs::remove_file(&gate);
    let _ = std::fs::remove_file(&record);
});

per_wsgi_model!(file_wrapper_sends_files, |model| {
    let server = serve(model, &[]);
    let path = temp_path("file");
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let r = get(&server.addr, &format!("/file?path={}", path.display()));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("2000000"));
    assert!(r.body == data);
    // A declared length within the file: that many bytes, a whole response.
    let r = get(
        &server.addr,
        &format!("/file?path={}&length=1000", path.display()),
    );
    assert_eq!(r.header("content-length"), Some("1000"));
    assert!(r.body == data[..1000]);
    // Past the file's end: the file, then the connection ends short of the declared
    // length (as for any body that falls short), not a length corrected in silence.
    let mut conn = Conn::open(&server.addr);
    let request = format!(
        "GET /file?path={}&length=2000100 HTTP/1.1\r\nHost: t\r\n\r\n",
        path.display()
    );
    conn.send(request.as_bytes());
    assert!(conn.try_response("GET").is_none(), "cut short");
    let _ = std::fs::remove_file(&path);
});

per_wsgi_model!(static_mounts_are_served_by_rust, |model| {
    let site = common::Site::new(model);
    let mount = format!("/assets={}", site.root.display());
    let server = serve(model, &["--static", &mount]);
    let r = get(&server.addr, "/assets/style.css");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/css"));
    assert_eq!(get(&server.addr, "/lazy").status, 201);
});

per_model!(
    an_app_that_cannot_load_stops_the_server_with_a_clear_message,
    |model| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ironhorse"))
            .args([
                "broken_import:application",
                "--chdir",
                &apps_dir().display().to_string(),
                "-b",
                "127.0.0.1:0",
                "--model",
                model,
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{model}: {stderr}");
        assert!(
            stderr.contains("broken_import") && stderr.contains("this_module_does_not_exist"),
            "{model}: {stderr}"
        );
    }
);

per_wsgi_model!(request_timeout_answers_504_and_frees_the_worker, |model| {
    let mut args = wsgi_args(model, "stuck_app:application", &apps_dir());
    args.extend(["--request-timeout", "1"].map(String::from));
    let server = Server::start(&args);
    // A call stuck inside C (/stuck) holds the only thread of these: their 504 waits for it.
    let paths: &[&str] = if matches!(model, "single" | "event-inline") {
        &["/slow"]
    } else {
        &["/slow", "/stuck"]
    };
    for path in paths {
        let started = Instant::now();
        let mut conn = Conn::open(&server.addr);
        conn.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        // Nothing of the response was sent when the deadline passed: the client gets a 504
        // (the app alone would answer 200, after 30 s or 60 s).
        let answer = conn.try_response("GET").map(|r| r.status);
        assert_eq!(answer, Some(504), "{model} {path}");
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "{model} {path}: cut off before --request-timeout"
        );
        // The server answers others again.
        assert_eq!(get(&server.addr, "/").status, 200, "{model} {path}");
    }
    assert!(server.log_contains("timed out"), "{}", server.log_text());
});

// One worker with one application thread serves three connections: C's request stays in
// the application until gate 1 opens, B's (quick) and A's (held until gate 2) arrive
// meanwhile. Once C ends, B is served, then A stays in the application. Responses made
// while other requests wait are held back briefly to leave together (one client wake-up
// per batch), but never behind a request that runs on: B's and C's answers must arrive
// while A is still in the application. Models whose one worker serves many connections.
per_wsgi_model!(a_quick_answer_is_not_held_behind_a_slow_request, |model| {
    if !matches!(
        model,
        "prefork" | "hybrid" | "threadpool" | "event" | "async"
    ) {
        // One connection per thread or process, or the application on the loop thread.
        return;
    }
    let server = serve_on_one_thread(model, &[]);
    let dir = temp_path("held");
    std::fs::create_dir_all(&dir).unwrap();
    let (gate1, gate2, record) = (dir.join("gate1"), dir.join("gate2"), dir.join("record"));
    let quick = b"GET /write HTTP/1.1\r\nHost: x\r\n\r\n";
    // All three accepted and idle on the one worker.
    let mut conns: Vec<Conn> = (0..3).map(|_| Conn::open(&server.addr)).collect();
    for conn in &mut conns {
        conn.send(quick);
        assert_eq!(conn.response("GET").status, 200, "{}", server.log_text());
    }
    let (mut c, mut b, mut a) = (conns.remove(0), conns.remove(0), conns.remove(0));
    park_in_app(&mut c, &gate1, &record);
    b.send(quick);
    a.send(
        format!(
            "GET /gate?gate={} HTTP/1.1\r\nHost: x\r\n\r\n",
            gate2.display()
        )
        .as_bytes(),
    );
    std::fs::write(&gate1, b"").unwrap();
    // Gate 2 opens only once these came: held behind A, they would never come (the read
    // fails after `HUNG`).
    let rb = b.response("GET");
    assert_eq!(
        (rb.status, rb.text()),
        (200, "written returned".to_string())
    );
    let rc = c.response("GET");
    assert_eq!((rc.status, rc.text()), (200, "gated".to_string()));
    std::fs::write(&gate2, b"").unwrap();
    let ra = a.response("GET");
    assert_eq!((ra.status, ra.text()), (200, "gated".to_string()));
    let _ = std::fs::remove_dir_all(&dir);
});

// Clients that keep the application thread busy, their next requests always queued, do not
// shut a newcomer out: it is accepted and answered while they go on. (A pool once paused
// accepting for as long as its queue stayed full: here, until the load ended.)
per_wsgi_model!(
    a_newcomer_is_served_while_other_clients_keep_the_server_busy,
    |model| {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
        use std::sync::Arc;
        if model == "single" {
            // One connection at a time, by design.
            return;
        }
        const CLIENTS: usize = 12;
        /// Requests per busy client, at most: the load ends by itself.
        const CAP: usize = 300;
        let server = serve_on_one_thread(model, &[]);
        let (served, capped, newcomer_done) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let busy: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (served, capped, newcomer_done) =
                    (served.clone(), capped.clone(), newcomer_done.clone());
                let mut conn = Conn::open(&server.addr);
                std::thread::spawn(move || {
                    for _ in 0..CAP {
                        if newcomer_done.load(SeqCst) {
                            return;
                        }
                        conn.send(b"GET /spin?ms=1 HTTP/1.1\r\nHost: x\r\n\r\n");
                        assert_eq!(conn.response("GET").status, 200);
                        served.fetch_add(1, SeqCst);
                    }
                    capped.store(true, SeqCst);
                })
            })
            .collect();
        assert!(common::eventually(|| served.load(SeqCst) >= 2 * CLIENTS));
        let mut newcomer = Conn::open(&server.addr);
        newcomer.send(b"GET /spin?ms=0 HTTP/1.1\r\nHost: x\r\n\r\n");
        let answer = newcomer.response("GET");
        let load_was_over = capped.load(SeqCst);
        newcomer_done.store(true, SeqCst);
        for client in busy {
            client.join().unwrap();
        }
        assert_eq!((answer.status, answer.text()), (200, "spun".to_string()));
        assert!(
            !load_was_over,
            "the newcomer was answered only once the busy clients had stopped ({} requests)",
            served.load(SeqCst)
        );
    }
);

// A second request sent on the connection while the application still runs the first
// (pipelined, after the server read the first) is served once the first is answered: a
// driver that hands the idle connection back to its watcher without reading again (the
// socket was left empty by a short read) relies on the new bytes' readiness event.
per_wsgi_model!(a_request_sent_while_the_first_runs_is_served, |model| {
    let server = serve(model, &[]);
    let dir = temp_path("pipelined");
    std::fs::create_dir_all(&dir).unwrap();
    let (gate, record) = (dir.join("gate"), dir.join("record"));
    let mut conn = Conn::open(&server.addr);
    park_in_app(&mut conn, &gate, &record);
    conn.send(b"GET /write HTTP/1.1\r\nHost: x\r\n\r\n");
    std::fs::write(&gate, b"").unwrap();
    let first = conn.response("GET");
    assert_eq!((first.status, first.text()), (200, "gated".to_string()));
    let second = conn.response("GET");
    assert_eq!(
        (second.status, second.text()),
        (200, "written returned".to_string()),
        "{}",
        server.log_text()
    );
    let _ = std::fs::remove_dir_all(&dir);
});

// A client that pipelines many requests and ends its side at once (`nc -N`) gets every
// answer, then the connection's end at once: not after the keep-alive timeout (120 s,
// beyond the client's 60 s read timeout). The worker is kept busy meanwhile, so that the
// requests and the end reach its watcher together, more than one read buffer of them: a
// driver that trusts a short read to have emptied the socket must still see the end.
per_wsgi_model!(
    pipelined_requests_then_the_clients_end_close_at_once,
    |model| {
        let server = serve_on_one_thread(model, &["--keep-alive", "120"]);
        let dir = temp_path("pipelined-end");
        std::fs::create_dir_all(&dir).unwrap();
        let (gate, record) = (dir.join("gate"), dir.join("record"));
        let mut busy = Conn::open(&server.addr);
        park_in_app(&mut busy, &gate, &record);
        const REQUESTS: usize = 600;
        let mut conn = Conn::open(&server.addr);
        conn.send(&b"GET /write HTTP/1.1\r\nHost: x\r\n\r\n".repeat(REQUESTS));
        conn.stream.shutdown(std::net::Shutdown::Write).unwrap();
        std::fs::write(&gate, b"").unwrap();
        assert_eq!(busy.response("GET").status, 200);
        // `single` serves one connection at a time, to its end.
        drop(busy);
        let mut answers = 0;
        while let Some(r) = conn.try_response("GET") {
            assert_eq!((r.status, r.text()), (200, "written returned".to_string()));
            answers += 1;
        }
        assert_eq!(answers, REQUESTS, "{}", server.log_text());
        let _ = std::fs::remove_dir_all(&dir);
    }
);
