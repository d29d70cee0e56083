//! `-k gevent` (issue 16): a WSGI application in greenlets on one gevent hub thread per
//! process, under every model that hosts it (`event`, as `-k gevent`, and `async` with
//! `--interface gevent`): PEP 3333 basics over real sockets, Flask and Django views that
//! wait on a loopback service with `requests`/`urllib3` or `time.sleep` while others are
//! served, 2,000 requests waiting at once on one Python thread, graceful stop, the request
//! timeout, and the refusals (no gevent in the venv, a model that cannot host it).
//!
//! Needs `IRONHORSE_TEST_VENV` (requirements-test.txt: gevent, requests, Flask, Django).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::client::{get, Conn};
use common::python::{apps_dir, venv};
use common::{eventually, run_to_exit, wait_for, Server};

/// The ways gevent is hosted: the flags after the app.
fn hosts() -> Vec<Vec<&'static str>> {
    let mut hosts = Vec::new();
    for model in common::models() {
        match model {
            "event" => hosts.push(vec!["-k", "gevent"]),
            "async" => hosts.push(vec!["--model", "async", "--interface", "gevent"]),
            _ => {}
        }
    }
    hosts
}

/// Runs `body` under every host, every one even after one failed.
fn for_each_host(body: impl Fn(&[&str]) + std::panic::RefUnwindSafe) {
    let mut failed = Vec::new();
    for host in hosts() {
        eprintln!("--- {host:?}");
        if std::panic::catch_unwind(|| body(&host)).is_err() {
            failed.push(format!("{host:?}"));
        }
    }
    assert!(failed.is_empty(), "failed under {failed:?}");
}

macro_rules! per_host {
    ($name:ident, |$host:ident| $body:block) => {
        #[test]
        fn $name() {
            fn run($host: &[&str]) $body
            for_each_host(run);
        }
    };
}

fn start(host: &[&str], spec: &str, extra: &[&str]) -> Server {
    let mut args: Vec<String> = host.iter().map(|s| s.to_string()).collect();
    args.extend([
        spec.to_string(),
        "--chdir".into(),
        apps_dir().display().to_string(),
        "--virtualenv".into(),
        venv().display().to_string(),
    ]);
    args.extend(extra.iter().map(|s| s.to_string()));
    Server::start(&args)
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

// ---------------------------------------------------------------------------------------
// The loopback service the applications wait on
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct Counts {
    arrived: usize,
    waiting: usize,
    max_waiting: usize,
}

/// An HTTP service on loopback that holds each request at least `min_wait` and until
/// `target` requests arrived and the test said go (or a minute passed: a test whose
/// requests never all arrive then fails on the counts, not by hanging), counting how many
/// wait at once.
struct Upstream {
    addr: String,
    state: Arc<(Mutex<Counts>, Condvar)>,
    go: Arc<AtomicBool>,
}

impl Upstream {
    fn start(target: usize, min_wait: Duration) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let state = Arc::new((Mutex::new(Counts::default()), Condvar::new()));
        let go = Arc::new(AtomicBool::new(false));
        let (state2, go2) = (state.clone(), go.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (state, go) = (state2.clone(), go2.clone());
                std::thread::Builder::new()
                    .stack_size(64 * 1024)
                    .spawn(move || hold(stream, &state, &go, target, min_wait))
                    .unwrap();
            }
        });
        Upstream { addr, state, go }
    }

    fn counts(&self) -> (usize, usize, usize) {
        let counts = self.state.0.lock().unwrap();
        (counts.arrived, counts.waiting, counts.max_waiting)
    }

    fn release(&self) {
        self.go.store(true, Ordering::SeqCst);
        self.state.1.notify_all();
    }
}

fn hold(
    mut stream: TcpStream,
    state: &(Mutex<Counts>, Condvar),
    go: &AtomicBool,
    target: usize,
    min_wait: Duration,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let start = Instant::now();
    let (lock, wake) = state;
    let mut counts = lock.lock().unwrap();
    counts.arrived += 1;
    counts.waiting += 1;
    counts.max_waiting = counts.max_waiting.max(counts.waiting);
    wake.notify_all();
    let cap = Instant::now() + Duration::from_secs(60);
    while !(counts.arrived >= target && go.load(Ordering::SeqCst)) && Instant::now() < cap {
        counts = wake
            .wait_timeout(counts, Duration::from_millis(100))
            .unwrap()
            .0;
    }
    counts.waiting -= 1;
    drop(counts);
    if let Some(rest) = min_wait.checked_sub(start.elapsed()) {
        std::thread::sleep(rest);
    }
    let _ =
        stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
}

// ---------------------------------------------------------------------------------------
// PEP 3333 basics
// ---------------------------------------------------------------------------------------

per_host!(environ_is_pep_3333_and_the_app_is_patched, |host| {
    let server = start(host, "gevent_app:app", &[]);
    assert!(server.log_contains("WSGI application in greenlets (gevent)"));
    let env = json(&get(&server.addr, "/environ?x=1").body);
    assert_eq!(env["REQUEST_METHOD"], "GET");
    assert_eq!(env["PATH_INFO"], "/environ");
    assert_eq!(env["QUERY_STRING"], "x=1");
    assert_eq!(env["SERVER_PROTOCOL"], "HTTP/1.1");
    assert_eq!(env["HTTP_HOST"], "test");
    assert_eq!(env["REMOTE_ADDR"], "127.0.0.1");
    assert_eq!(env["wsgi.url_scheme"], "http");
    assert_eq!(env["wsgi.version"], serde_json::json!([1, 0]));
    assert_eq!(env["wsgi.multithread"], true);
    assert_eq!(env["wsgi.run_once"], false);
    assert_eq!(env["has_file_wrapper"], true);
    let patched = json(&get(&server.addr, "/patched").body);
    assert_eq!(patched["time.sleep"], true, "{patched}");
    assert_eq!(patched["socket"], true, "{patched}");
    assert_eq!(patched["thread"], true, "{patched}");
    assert_eq!(patched["socket_class"], "gevent._socket3");
    let missing = get(&server.addr, "/nothing");
    assert_eq!(missing.status, 404);
    let failed = get(&server.addr, "/fail");
    assert_eq!(failed.status, 500);
    assert!(server.log_contains("the app failed on purpose"));
});

per_host!(bodies_in_and_out, |host| {
    let server = start(host, "gevent_app:app", &[]);
    // Buffered whole (chunked: its real CONTENT_LENGTH), and streamed past the buffer.
    let mut conn = Conn::open(&server.addr);
    conn.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    let echoed = conn.response("POST");
    assert_eq!(echoed.text(), "hello world");
    assert_eq!(echoed.header("X-Content-Length"), Some("11"));
    let big = common::big_bytes();
    conn.send(
        format!(
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            big.len()
        )
        .as_bytes(),
    );
    conn.send(&big);
    let echoed = conn.response("POST");
    assert_eq!(echoed.status, 200);
    assert!(
        echoed.body == big,
        "a {} byte body came back as {} bytes",
        big.len(),
        echoed.body.len()
    );
    conn.send(b"POST /lines HTTP/1.1\r\nHost: t\r\nContent-Length: 13\r\n\r\none\ntwo\nthree");
    assert_eq!(conn.response("POST").text(), "3 lines, last b'three'\n");
    // Streamed, write(), file_wrapper: on the same keep-alive connection.
    conn.send(b"GET /stream?5 HTTP/1.1\r\nHost: t\r\n\r\n");
    let stream = conn.response("GET");
    assert_eq!(
        stream.text(),
        "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n"
    );
    conn.send(b"GET /write HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.response("GET").text(), "written then returned\n");
    let file = common::temp_path("gevent-file");
    std::fs::write(&file, &big).unwrap();
    conn.send(format!("GET /file?{} HTTP/1.1\r\nHost: t\r\n\r\n", file.display()).as_bytes());
    let served = conn.response("GET");
    assert!(
        served.body == big,
        "file_wrapper gave {} bytes",
        served.body.len()
    );
    let _ = std::fs::remove_file(file);
});

/// The thread of `pid` named `name`.
fn thread_named(pid: i32, name: &str) -> Option<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .filter_map(Result::ok)
        .map(|task| task.path())
        .find(|task| std::fs::read_to_string(task.join("comm")).is_ok_and(|c| c.trim() == name))
        .map(|task| task.display().to_string())
}

/// Bytes the thread at `task` (a `/proc/PID/task/TID` path) passed to read calls (`rchar`).
fn bytes_read(task: &str) -> u64 {
    let io = std::fs::read_to_string(format!("{task}/io")).unwrap();
    io.lines()
        .find_map(|line| line.strip_prefix("rchar: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no rchar in {io}"))
}

per_host!(
    file_wrapper_goes_out_with_sendfile_not_through_the_hub,
    |host| {
        let server = start(host, "gevent_app:app", &[]);
        // 8 MiB that no shifted copy matches.
        let big: Vec<u8> = (0..8u32 << 20).map(|i| (i % 251) as u8).collect();
        let file = common::temp_path("gevent-sendfile");
        std::fs::write(&file, &big).unwrap();
        let path = file.display().to_string();
        let hub = thread_named(server.pid(), "ih-gevent-hub").expect("the hub thread");
        let mut conn = Conn::open(&server.addr);
        let mut fetch = |method: &str, query: &str| {
            conn.send(
                format!("{method} /sendfile?path={path}{query} HTTP/1.1\r\nHost: t\r\n\r\n")
                    .as_bytes(),
            );
            conn.response(method)
        };
        // The hub hands the region to the session: it reads a few bytes of the bell, not the
        // file (iterating the wrapper on the hub would read all 8 MiB there).
        let before = bytes_read(&hub);
        let whole = fetch("GET", "");
        let read_by_hub = bytes_read(&hub) - before;
        assert_eq!(whole.status, 200);
        assert_eq!(whole.header("Content-Length"), Some("8388608"));
        assert!(
            whole.body == big,
            "{} bytes came, not byte-exact",
            whole.body.len()
        );
        assert!(read_by_hub < 1 << 20, "the hub read {read_by_hub} bytes");
        // A declared Content-Length cuts the file (from where the app left it).
        let cut = fetch("GET", "&skip=1000&length=5000");
        assert_eq!(cut.header("Content-Length"), Some("5000"));
        assert!(cut.body == big[1000..6000], "{} bytes", cut.body.len());
        // HEAD: the length, no body, and the connection goes on.
        let head = fetch("HEAD", "");
        assert_eq!(head.status, 200);
        assert_eq!(head.header("Content-Length"), Some("8388608"));
        assert!(head.body.is_empty());
        // A file-like without a descriptor is read in blocks on the hub (the fallback).
        let plain = fetch("GET", "&plain=1&skip=100");
        assert_eq!(plain.status, 200);
        assert!(plain.body == big[100..], "{} bytes", plain.body.len());
        // A longer declared length than the file holds: the file, then the connection ends
        // short of it, as on the threaded path (not a length corrected in silence).
        let mut conn = Conn::open(&server.addr);
        conn.send(
            format!(
                "GET /sendfile?path={path}&skip=8388600&length=100 HTTP/1.1\r\nHost: t\r\n\r\n"
            )
            .as_bytes(),
        );
        assert!(conn.try_response("GET").is_none(), "cut short");
        let _ = std::fs::remove_file(file);
    }
);

per_host!(a_client_reads_a_stream_as_it_is_produced, |host| {
    // Backpressure: a 200-chunk stream to a client that reads slowly still arrives whole,
    // and other requests are served meanwhile.
    let server = start(host, "gevent_app:app", &[]);
    let mut slow = Conn::open(&server.addr);
    slow.send(b"GET /stream?200 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(slow.wait_for_bytes(b"chunk 0\n"));
    assert_eq!(get(&server.addr, "/sleep?0").text(), "slept\n");
    let body = slow.response("GET").text();
    assert_eq!(body.lines().count(), 200);
    assert!(body.ends_with("chunk 199\n"));
});

// ---------------------------------------------------------------------------------------
// Frameworks waiting on the network and on time.sleep
// ---------------------------------------------------------------------------------------

/// `n` requests for `path` at once; each one's response.
fn at_once(addr: &str, paths: Vec<String>) -> Vec<common::client::Response> {
    let clients: Vec<_> = paths
        .into_iter()
        .map(|path| {
            let addr = addr.to_string();
            std::thread::Builder::new()
                .stack_size(128 * 1024)
                .spawn(move || get(&addr, &path))
                .unwrap()
        })
        .collect();
    clients.into_iter().map(|c| c.join().unwrap()).collect()
}

fn calls_wait_together(host: &[&str], spec: &str, path: &str, said: &str) {
    let server = start(host, spec, &[]);
    calls_wait_together_on(&server, path, said);
}

fn calls_wait_together_on(server: &Server, path: &str, said: &str) {
    // Each held until all 20 arrived: only requests that wait at once can finish.
    let upstream = Upstream::start(20, Duration::ZERO);
    upstream.release();
    let paths = (0..20)
        .map(|_| format!("{path}{}", upstream.addr))
        .collect();
    for response in at_once(&server.addr, paths) {
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.text(), said);
    }
    assert_eq!(
        upstream.counts().2,
        20,
        "requests that waited on the service at once"
    );
}

fn sleep_yields(host: &[&str], spec: &str, slow: &str, fast: &str, said: &str) {
    let server = start(host, spec, &[]);
    let mut sleeper = Conn::open(&server.addr);
    sleeper.send(format!("GET {slow} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    // Served while the other greenlet sleeps: the sleeper has not answered yet.
    for _ in 0..5 {
        assert_eq!(get(&server.addr, fast).text(), said);
    }
    assert!(sleeper.is_open_now(), "the sleeping request answered early");
    assert_eq!(sleeper.response("GET").text(), said);
}

per_host!(flask_calls_a_service_with_requests_and_sleeps, |host| {
    calls_wait_together(
        host,
        "gevent_flask:app",
        "/call?upstream=",
        "flask got 200 ok",
    );
    sleep_yields(
        host,
        "gevent_flask:app",
        "/sleep?s=3",
        "/sleep?s=0",
        "flask slept",
    );
});

per_host!(django_calls_a_service_with_urllib3_and_sleeps, |host| {
    calls_wait_together(
        host,
        "gevent_django",
        "/call?upstream=",
        "django got 200 ok",
    );
    sleep_yields(
        host,
        "gevent_django",
        "/sleep?s=3",
        "/sleep?s=0",
        "django slept",
    );
});

// ---------------------------------------------------------------------------------------
// Thousands waiting on one thread
// ---------------------------------------------------------------------------------------

per_host!(two_thousand_requests_wait_at_once_on_one_thread, |host| {
    const N: usize = 2000;
    let server = start(host, "gevent_app:app", &["--worker-connections", "2048"]);
    let threads_before = threads_of(server.pid());
    let upstream = Upstream::start(N, Duration::from_secs(1));
    let paths = (0..N)
        .map(|_| format!("/upstream?{}", upstream.addr))
        .collect();
    let addr = server.addr.clone();
    let clients = std::thread::spawn(move || at_once(&addr, paths));
    assert!(
        wait_for(|| upstream.counts().1 >= N, Duration::from_secs(120)),
        "waiting at once: {:?} (arrived, waiting, most)",
        upstream.counts()
    );
    // Every request is inside the app, waiting: the process did not grow a thread each
    // (gevent's resolver pool adds up to 10 threads for getaddrinfo).
    let threads = threads_of(server.pid());
    assert!(
        threads <= threads_before + 12,
        "{threads} threads with {N} requests in flight ({threads_before} idle)"
    );
    upstream.release();
    let responses = clients.join().unwrap();
    assert_eq!(responses.len(), N);
    for response in &responses {
        assert_eq!(response.text(), "upstream said ok");
    }
    assert_eq!(upstream.counts().2, N);
});

fn threads_of(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count()
}

// ---------------------------------------------------------------------------------------
// Lifecycle: graceful stop, request timeout, --worker-connections
// ---------------------------------------------------------------------------------------

per_host!(graceful_stop_lets_waiting_greenlets_finish, |host| {
    let server = start(host, "gevent_app:app", &["--health-path", "/healthz"]);
    let upstream = Upstream::start(1, Duration::ZERO);
    let mut conn = Conn::open(&server.addr);
    conn.send(
        format!(
            "GET /upstream?{} HTTP/1.1\r\nHost: t\r\n\r\n",
            upstream.addr
        )
        .as_bytes(),
    );
    assert!(eventually(|| upstream.counts().1 == 1));
    let mut probe = Conn::open(&server.addr);
    // `None`: the stopping server closed the idle probe connection instead of answering.
    let mut health = || {
        probe.send(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
        probe.try_response("GET").map(|r| r.status)
    };
    assert_eq!(health(), Some(200));
    server.signal(15);
    // The server is stopping (its health answers 503, or it closed the idle probe) while
    // the greenlet still waits.
    assert!(
        eventually(|| matches!(health(), Some(503) | None)),
        "the stop was not seen"
    );
    assert_eq!(upstream.counts().1, 1);
    upstream.release();
    let response = conn.response("GET");
    assert_eq!(response.text(), "upstream said ok");
    let (code, _) = server.stop_and_read_log();
    assert_eq!(code, Some(0));
});

per_host!(
    a_client_that_leaves_mid_request_does_not_hold_the_stop,
    |host| {
        let server = start(host, "gevent_app:app", &["--graceful-timeout", "20"]);
        let upstream = Upstream::start(1, Duration::ZERO);
        let mut conn = Conn::open(&server.addr);
        conn.send(
            format!(
                "GET /upstream?{} HTTP/1.1\r\nHost: t\r\n\r\n",
                upstream.addr
            )
            .as_bytes(),
        );
        assert!(eventually(|| upstream.counts().1 == 1));
        drop(conn);
        upstream.release();
        assert!(eventually(|| upstream.counts().1 == 0));
        // The greenlet's answer finds the client gone; the request ends there, not at the
        // graceful timeout.
        let (code, log) = server.stop_and_read_log();
        assert_eq!(code, Some(0), "{log}");
        assert!(!log.contains("graceful timeout passed"), "{log}");
    }
);

per_host!(request_timeout_answers_504_and_kills_the_greenlet, |host| {
    let server = start(host, "gevent_app:app", &["--request-timeout", "1"]);
    let mut conn = Conn::open(&server.addr);
    conn.send(b"GET /sleep?60 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.response("GET").status, 504);
    assert_eq!(get(&server.addr, "/sleep?0").text(), "slept\n");
    // A greenlet that never yields blocks the hub: it is interrupted, the hub serves again.
    let mut conn = Conn::open(&server.addr);
    conn.send(b"GET /spin?60 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.response("GET").status, 504);
    assert!(server.log_contains("blocked the gevent hub past --request-timeout"));
    assert_eq!(get(&server.addr, "/sleep?0").text(), "slept\n");
});

per_host!(a_hub_stuck_in_a_c_call_stops_the_heartbeat, |host| {
    // The driver's thread is free, but the hub is not: the worker must fall silent, be
    // aborted after --timeout and be replaced, as gunicorn's gevent worker is.
    // (--timeout counts from a worker's start: short enough to wait for, long enough for
    // an import on a loaded machine.)
    let server = start(host, "gevent_app:app", &["-w", "2", "--timeout", "5"]);
    assert!(eventually(|| common::children_of(server.pid()).len() == 2));
    let marker = common::temp_path("gevent-hog");
    let request = format!("GET /hog?{} HTTP/1.1\r\nHost: t\r\n\r\n", marker.display());
    let addr = server.addr.clone();
    let hogged = std::thread::spawn(move || {
        let mut conn = Conn::open(&addr);
        conn.send(request.as_bytes());
        conn.try_response("GET").map(|r| r.status)
    });
    assert!(
        eventually(|| std::fs::read_to_string(&marker).is_ok_and(|p| !p.is_empty())),
        "the request never reached the app"
    );
    let stuck: i32 = std::fs::read_to_string(&marker).unwrap().parse().unwrap();
    let _ = std::fs::remove_file(&marker);
    assert!(
        eventually(|| {
            let workers = common::children_of(server.pid());
            workers.len() == 2 && !workers.contains(&stuck)
        }),
        "worker {stuck} was not replaced: {}",
        server.log_text()
    );
    assert!(
        server.log_contains(&format!("worker {stuck} silent for")),
        "{}",
        server.log_text()
    );
    assert_eq!(
        hogged.join().unwrap(),
        None,
        "the stuck request was answered"
    );
    // Served again, by live hubs.
    let pid = get(&server.addr, "/pid");
    assert_eq!(pid.status, 200);
    assert_ne!(pid.text(), stuck.to_string());
});

per_host!(max_requests_recycles_workers_and_their_hubs, |host| {
    let server = start(host, "gevent_app:app", &["-w", "2", "--max-requests", "4"]);
    let mut pids = std::collections::HashSet::new();
    // Workers retire after 4 requests; their successors' hubs answer too.
    let recycled = eventually(|| {
        let response = get(&server.addr, "/pid");
        assert_eq!(response.status, 200, "{}", response.text());
        pids.insert(response.text());
        pids.len() >= 4
    });
    assert!(recycled, "only {} workers answered", pids.len());
    assert!(server.log_contains("(--max-requests); retiring"));
});

per_host!(preload_patches_in_the_master_before_the_import, |host| {
    let server = start(host, "gevent_app:app", &["-w", "2", "--preload"]);
    let patched = json(&get(&server.addr, "/patched").body);
    assert_eq!(patched["socket"], true, "{patched}");
    calls_wait_together_on(&server, "/upstream?", "upstream said ok");
});

per_host!(worker_connections_bounds_the_greenlets, |host| {
    let server = start(host, "gevent_app:app", &["--worker-connections", "3"]);
    // Held until released, each.
    let upstream = Upstream::start(0, Duration::ZERO);
    let paths = (0..6)
        .map(|_| format!("/upstream?{}", upstream.addr))
        .collect();
    let addr = server.addr.clone();
    let clients = std::thread::spawn(move || at_once(&addr, paths));
    assert!(eventually(|| upstream.counts().1 == 3));
    // The other three wait for a greenlet: none reaches the service while three wait.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        upstream.counts().0,
        3,
        "more greenlets than --worker-connections"
    );
    upstream.release();
    for response in clients.join().unwrap() {
        assert_eq!(response.text(), "upstream said ok");
    }
});

// ---------------------------------------------------------------------------------------
// Refusals
// ---------------------------------------------------------------------------------------

#[test]
fn without_gevent_installed_the_start_fails_with_one_line() {
    let bare = common::temp_path("venv-without-gevent");
    let made = std::process::Command::new(venv().join("bin/python"))
        .args(["-m", "venv", "--without-pip"])
        .arg(&bare)
        .status()
        .unwrap();
    assert!(made.success());
    let (code, log) = run_to_exit(&[
        "gevent_app:app".into(),
        "-k".into(),
        "gevent".into(),
        "--chdir".into(),
        apps_dir().display().to_string(),
        "--virtualenv".into(),
        bare.display().to_string(),
        "-b".into(),
        "127.0.0.1:0".into(),
    ]);
    let _ = std::fs::remove_dir_all(&bare);
    assert_eq!(code, Some(2), "{log}");
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("gevent")).collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains("pip install gevent"), "{log}");
    assert!(!log.contains("Traceback"), "{log}");
}

#[test]
fn models_without_a_loop_refuse_gevent() {
    let (code, log) = run_to_exit(&[
        "gevent_app:app".into(),
        "--model".into(),
        "threadpool".into(),
        "--interface".into(),
        "gevent".into(),
        "--chdir".into(),
        apps_dir().display().to_string(),
        "-b".into(),
        "127.0.0.1:0".into(),
    ]);
    assert_eq!(code, Some(2), "{log}");
    assert!(
        log.contains("a gevent application runs on --model event or async"),
        "{log}"
    );
}

/// HTTP/2 streams reach greenlets through the same non-blocking seam as ASGI: a body in,
/// an environ saying HTTP/2, a streamed response out, each checked with curl over h2c.
#[test]
fn greenlets_answer_http2_streams() {
    for_each_host(|host| {
        let server = start(
            host,
            "gevent_app:app",
            &[
                "--http-protocols",
                "h1,h2",
                "--http2-cleartext",
                "prior-knowledge",
            ],
        );
        let curl = |args: &[&str]| {
            let out = std::process::Command::new("curl")
                .args([
                    "-s",
                    "--http2-prior-knowledge",
                    "-w",
                    "\n%{http_version} %{http_code}",
                ])
                .args(args)
                .output()
                .expect("run curl");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let base = format!("http://{}", server.addr);
        let echoed = curl(&["--data-binary", "hello over h2", &format!("{base}/echo")]);
        assert_eq!(echoed, "hello over h2\n2 200", "{echoed}");
        let env = curl(&[&format!("{base}/environ")]);
        let (body, status) = env.rsplit_once('\n').unwrap();
        assert_eq!(status, "2 200", "{env}");
        assert_eq!(json(body.as_bytes())["SERVER_PROTOCOL"], "HTTP/2", "{env}");
        let streamed = curl(&[&format!("{base}/stream?5")]);
        assert_eq!(streamed.matches("chunk ").count(), 5, "{streamed}");
        assert!(streamed.ends_with("2 200"), "{streamed}");
    });
}
