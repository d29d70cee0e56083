//! Slow-client protection: clients trickling their request heads (slowloris) or their bodies
//! hold no thread or worker on the models that read requests before the application takes
//! them (`threadpool` and `hybrid` through their watcher, `prefork` through each worker's
//! read-ahead watch, `event` and `async` by design), so a normal client is served every time
//! while a crowd of them is connected — and still connected once the normal client is done.
//! (`single`, `fork` and `thread` give a connection a process or thread of its own: see
//! docs/BENCHMARKS.md.)

mod common;

use std::time::{Duration, Instant};

use common::client::{get, Conn, Response};
use common::python::apps_dir;
use common::slow::{percentile, sockets_of, Crowd};
use common::{Server, Site};

/// How many slowloris clients (each holds one socket here and one in the server).
const CROWD: usize = 1000;
/// How many slow uploaders, each trickling a 10,000-byte body one byte per 100 ms.
const UPLOADERS: usize = 500;
/// How many times the normal client asks while they are connected.
const ASKS: usize = 20;

/// The models that read ahead, each as a user would run it against slow clients; `None`
/// for the others.
fn args(model: &str) -> Option<Vec<String>> {
    let extra: &[&str] = match model {
        "threadpool" => &["--threads", "16"],
        "hybrid" => &["-w", "1", "--threads", "16"],
        "prefork" => &["-w", "2"],
        "event" | "async" => &["--threads", "4"],
        _ => return None,
    };
    let mut args = vec!["--model".to_string(), model.to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    // The crowd must outlive the test's asks: only a client done in time is cut off.
    args.extend(["--header-timeout".into(), "300".into()]);
    Some(args)
}

/// Waits until `server` took all `crowd` slow clients (not left in its backlog), then has
/// the normal client `ask` [`ASKS`] times, each answered 200 with `answer` in the body, and checks that the crowd is still connected afterwards: served among them, not
/// after them.
fn normal_client_among(
    model: &str,
    server: &Server,
    crowd: usize,
    what: &str,
    (ask, answer): (fn(&str) -> Response, &str),
) {
    assert!(
        common::eventually(|| sockets_of(server.pid()) >= crowd),
        "{model}: the server accepted {} of {crowd} {what}",
        sockets_of(server.pid())
    );
    let mut latencies = Vec::with_capacity(ASKS);
    for n in 0..ASKS {
        let started = Instant::now();
        let r = ask(&server.addr);
        latencies.push(started.elapsed());
        assert_eq!(r.status, 200, "{model}: ask {n} among {crowd} {what}");
        assert!(r.text().contains(answer), "{model}: {}", r.text());
    }
    assert!(
        sockets_of(server.pid()) >= crowd,
        "{model}: the {what} were gone by the last ask ({} sockets left)",
        sockets_of(server.pid())
    );
    eprintln!(
        "{model}: normal client among {crowd} {what}: p50 {:?}, p99 {:?}",
        percentile(&mut latencies, 50),
        percentile(&mut latencies, 99)
    );
}

/// Under every model that reads ahead, serving `app`: a crowd of `crowd` clients each sends
/// `prefix`, then one byte of `drip` per `interval`, while the normal client asks (answered
/// with `answer` in the body).
fn among_a_crowd(
    app: &[String],
    crowd: usize,
    prefix: &[u8],
    drip: &'static [u8],
    interval: Duration,
    what: &str,
    ask: (fn(&str) -> Response, &str),
) {
    for model in common::models() {
        let Some(mut server_args) = args(model) else {
            continue;
        };
        server_args.extend(app.iter().cloned());
        let server = Server::start(&server_args);
        let slow = Crowd::start(&server.addr, crowd, prefix, drip, interval);
        normal_client_among(model, &server, crowd, what, ask);
        drop(slow);
    }
}

#[test]
fn slowloris_crowds_do_not_starve_a_normal_client() {
    let site = Site::new("slowloris");
    let head = b"GET / HTTP/1.1\r\n";
    let what = "slowloris clients";
    among_a_crowd(
        &site.root_arg(),
        CROWD,
        head,
        b"X-Slow: yes\r\n",
        Duration::from_secs(1),
        what,
        (|addr| get(addr, "/"), "<h1>home</h1>"),
    );
}

/// With `--buffer-request-body` on (the default, 1 MiB), a body that trickles in is read
/// before the application is called: on `prefork -w 2`, 500 uploaders hold neither worker.
#[test]
fn slow_uploaders_do_not_delay_a_normal_client() {
    let app = [
        "wsgi_app:application".to_string(),
        "--chdir".into(),
        apps_dir().display().to_string(),
    ];
    let head = b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 10000\r\n\r\n";
    let what = "slow uploaders";
    among_a_crowd(
        &app,
        UPLOADERS,
        head,
        b"x",
        Duration::from_millis(100),
        what,
        (|addr| get(addr, "/environ"), "REQUEST_METHOD"),
    );
}

/// The same behind `--proxy-protocol`: clients trickling their PROXY header (from an
/// allowed peer, as a broken or hostile balancer would) hold no thread or worker either.
/// The header is a v2 one announcing a 1 KiB address block, which the crowd never completes
/// while the test runs (a short header, once whole, would free the thread).
#[test]
fn clients_trickling_a_proxy_header_do_not_starve_a_normal_client() {
    let site = Site::new("slowproxy");
    let mut app = site.root_arg();
    app.extend(["--proxy-protocol".into(), "v1,v2".into()]);
    among_a_crowd(
        &app,
        CROWD,
        // The v2 signature, PROXY over TCP4, 1024 bytes to follow.
        b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x04\x00",
        b"\x7f\x00\x00\x01",
        Duration::from_secs(1),
        "clients trickling a PROXY header",
        (
            |addr| {
                let mut conn = Conn::open(addr);
                conn.send(
                    b"PROXY TCP4 203.0.113.8 198.51.100.1 40000 443\r\n\
                      GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                );
                conn.response("GET")
            },
            "<h1>home</h1>",
        ),
    );
}
