//! `--model event --threads 0`: the WSGI app on the event loop's own thread. What the
//! per-model PEP 3333 tests (`wsgi.rs`, variant `event-inline`) do not cover: a stuck app
//! stops the worker's heartbeat and its master replaces it, a streamed response to a client
//! that does not read holds neither the loop nor memory, bodies beyond the read-ahead buffer
//! are refused, the application's own threads get the GIL while the loop waits (the loop
//! keeps it only within a turn), and the models that cannot run it refuse the setting.

mod common;

use common::client::{get, Conn};
use common::python::apps_dir;
use common::{children_of, eventually, run_to_exit, temp_path, Server};

fn loop_args(extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["loop_app:application", "--chdir"]
        .map(String::from)
        .to_vec();
    args.push(apps_dir().display().to_string());
    args.extend(["--model", "event", "--threads", "0"].map(String::from));
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Resident memory of `pid` in KiB.
fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

#[test]
fn a_stuck_app_on_the_loop_stops_the_heartbeat_and_its_worker_is_replaced() {
    // (--timeout counts from a worker's start, its import included: long enough for that on
    // a loaded machine, where two seconds were seen to pass before a worker was ready.)
    let server = Server::start(&loop_args(&["-w", "2", "--timeout", "5"]));
    assert!(eventually(|| children_of(server.pid()).len() == 2));
    let before = children_of(server.pid());
    let started = temp_path("loop-stuck-started");
    let request = format!(
        "GET /stuck?started={} HTTP/1.1\r\nHost: t\r\n\r\n",
        started.display()
    );
    let addr = server.addr.clone();
    let stuck = std::thread::spawn(move || {
        let mut conn = Conn::open(&addr);
        conn.send(request.as_bytes());
        // The app sleeps 60 s: an answer (or the client's read timeout) means no abort.
        conn.try_response("GET").map(|r| r.status)
    });
    assert!(
        eventually(|| started.exists()),
        "the stuck request never reached the app"
    );
    // The other worker's loop still answers.
    assert_eq!(get(&server.addr, "/").status, 200);
    let answer = stuck.join().unwrap();
    let _ = std::fs::remove_file(&started);
    assert!(
        answer.is_none(),
        "a stuck request should end with a closed connection, got {answer:?}"
    );
    assert!(eventually(|| {
        let now = children_of(server.pid());
        now.len() == 2 && now != before
    }));
    assert!(
        server.log_contains("silent") || server.log_contains("heartbeat timeout"),
        "{}",
        server.log_text()
    );
    assert_eq!(get(&server.addr, "/").status, 200);
}

#[test]
fn the_apps_own_thread_runs_while_the_loop_waits() {
    let server = Server::start(&loop_args(&[]));
    for round in 0..3 {
        let done = temp_path(&format!("loop-background-{round}"));
        let reply = get(&server.addr, &format!("/arm?path={}", done.display()));
        assert_eq!(reply.status, 200);
        // No request runs from here on: the background thread can only get the GIL if the
        // loop let it go when its turn ended.
        assert!(
            eventually(|| done.exists()),
            "the app's background thread never ran after round {round}'s request"
        );
        let _ = std::fs::remove_file(&done);
    }
}

#[test]
fn a_streamed_response_to_a_client_that_does_not_read_holds_neither_loop_nor_memory() {
    let server = Server::start(&loop_args(&[]));
    let rss_before = rss_kib(server.pid());
    // 64 MiB from a generator, to a client that reads nothing for now.
    let chunks = 1024usize;
    let mut slow = Conn::open(&server.addr);
    slow.send(format!("GET /big?n={chunks} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    assert!(slow.wait_for_bytes(b"\r\n\r\n"), "no response head");
    // The loop serves others meanwhile: it is not waiting on the slow client.
    for _ in 0..20 {
        assert_eq!(get(&server.addr, "/").status, 200);
    }
    // Only what the socket buffers and one high-water mark hold is produced ahead.
    let grown = rss_kib(server.pid()).saturating_sub(rss_before);
    assert!(
        grown < 32 * 1024,
        "the server buffered the response: RSS grew by {grown} KiB"
    );
    let r = slow.response("GET");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), chunks * 65536, "the response was cut short");
    assert!(r.body.iter().all(|&b| b == b'y'));
}

#[test]
fn bodies_are_read_whole_first_and_longer_ones_refused() {
    let server = Server::start(&loop_args(&["--buffer-request-body", "4096"]));
    let mut conn = Conn::open(&server.addr);
    let body = vec![b'a'; 3000];
    conn.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 3000\r\n\r\n");
    conn.send(&body);
    assert_eq!(conn.response("POST").text(), "3000");
    // Chunked: de-chunked, with its length.
    conn.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    assert_eq!(conn.response("POST").text(), "5");
    let mut conn = Conn::open(&server.addr);
    conn.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 10000\r\n\r\n");
    let r = conn.response("POST");
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(conn.is_closed_by_server());
    assert!(
        server.log_contains("--buffer-request-body"),
        "{}",
        server.log_text()
    );
    assert_eq!(get(&server.addr, "/").status, 200);
}

#[test]
fn empty_bodies_reach_the_app_whatever_the_read_ahead_buffer() {
    // `Content-Length: 0` is what `requests.post(url)` sends; an empty chunked body fits in
    // a buffer of 0 bytes too.
    for buffer in ["4096", "0"] {
        let server = Server::start(&loop_args(&["--buffer-request-body", buffer]));
        let mut conn = Conn::open(&server.addr);
        for request in [
            &b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"[..],
            b"GET /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
            b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ] {
            conn.send(request);
            let r = conn.response("POST");
            assert_eq!(
                r.status,
                200,
                "--buffer-request-body {buffer}: {}",
                r.text()
            );
            assert_eq!(r.text(), "0");
        }
        // A body that does not fit is still refused, and the connection closed.
        let size = buffer.parse::<usize>().unwrap() + 8;
        conn.send(format!("POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{size:x}\r\n").as_bytes());
        conn.send(&vec![b'a'; size]);
        let r = conn.response("POST");
        assert_eq!(
            r.status,
            413,
            "--buffer-request-body {buffer}: {}",
            r.text()
        );
        assert!(conn.is_closed_by_server());
    }
}

#[test]
fn threads_0_is_refused_where_it_cannot_work() {
    for (extra, needle) in [
        (&["--model", "threadpool"][..], "needs --model event"),
        (&["--model", "async"][..], "needs --model event"),
        (&["--http-protocols", "h1,h2"][..], "HTTP/1.1 only"),
    ] {
        let mut args: Vec<String> = ["loop_app:application", "-b", "127.0.0.1:0", "--chdir"]
            .map(String::from)
            .to_vec();
        args.push(apps_dir().display().to_string());
        args.extend(["--threads", "0"].map(String::from));
        if extra[0] != "--model" {
            args.extend(["--model", "event"].map(String::from));
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let (code, stderr) = run_to_exit(&args);
        assert_eq!(code, Some(2), "{extra:?}: {stderr}");
        assert!(stderr.contains(needle), "{extra:?}: {stderr}");
    }
}
