//! `--metrics-bind` against the real binary: a known mix of requests under every model,
//! scraped during the load and after it and read with the `prometheus_client` package's
//! parsers (Prometheus text and strict OpenMetrics); totals across worker recycling and
//! reloads; scrapes answered while every worker is busy; the listener's own answers; bad
//! addresses refused in one line; the metrics socket handed over on `USR2`.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::client::{get, Conn};
use common::python::{apps_dir, venv, wsgi_args};
use common::{eventually, run_to_exit, temp_path, Server, Site, HUNG};

const APP: &str = "metrics_app:application";

/// Parsed metrics.
struct Metrics {
    types: HashMap<String, String>,
    units: HashMap<String, String>,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Metrics {
    /// The sum of the samples named `name` whose labels include `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(v))
            })
            .map(|(_, _, v)| v)
            .sum()
    }

    fn requests(&self, method: &str, status: &str) -> f64 {
        self.value(
            "ironhorse_requests_total",
            &[("method", method), ("status", status)],
        )
    }
}

/// A server on the metrics test app under `model`, with metrics on a free port.
fn start(model: &str, extra: &[&str]) -> (Server, String) {
    let mut args = wsgi_args(model, APP, &apps_dir());
    args.extend(["--metrics-bind".into(), "127.0.0.1:0".into()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let server = Server::start(&args);
    let metrics = metrics_addr(&server);
    (server, metrics)
}

/// The address the server announced for its metrics.
fn metrics_addr(server: &Server) -> String {
    const MARK: &str = "metrics on http://";
    assert!(server.log_contains(MARK), "{}", server.log_text());
    let log = server.log_text();
    let rest = &log[log.find(MARK).unwrap() + MARK.len()..];
    rest.split('/').next().unwrap().to_string()
}

/// One request to the metrics listener over any stream: (status line, head, body).
fn exchange(mut stream: impl Read + Write, request: &str) -> (String, String, String) {
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a whole response");
    let status = head.lines().next().unwrap().to_string();
    (status, head.to_string(), body.to_string())
}

fn tcp(addr: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(HUNG)).unwrap();
    stream
}

/// `GET /metrics`, which must answer 200: the text.
fn scrape_text(addr: &str, openmetrics: bool) -> String {
    let accept = if openmetrics {
        "Accept: application/openmetrics-text; version=1.0.0\r\n"
    } else {
        ""
    };
    let request = format!("GET /metrics HTTP/1.1\r\nHost: m\r\n{accept}\r\n");
    let (status, head, body) = exchange(tcp(addr), &request);
    assert!(status.contains(" 200 "), "{status}");
    let wanted = if openmetrics {
        "application/openmetrics-text"
    } else {
        "text/plain; version=0.0.4"
    };
    assert!(head.contains(wanted), "{head}");
    body
}

/// Parses with the real parsers (a parse error fails the test).
fn parse(text: &str) -> Metrics {
    let mut child = Command::new(venv().join("bin/python"))
        .arg(apps_dir().join("metrics_parse.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parser refused the text: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let map = |key: &str| -> HashMap<String, String> {
        json[key]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
            .collect()
    };
    let samples = json["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let labels = s[1]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            (
                s[0].as_str().unwrap().to_string(),
                labels,
                s[2].as_f64().unwrap(),
            )
        })
        .collect();
    Metrics {
        types: map("types"),
        units: map("units"),
        samples,
    }
}

fn scrape(addr: &str) -> Metrics {
    parse(&scrape_text(addr, false))
}

/// What one client sends: (method, path, expected status), each repeated.
const MIX: &[(&str, &str, u16, usize)] = &[
    ("GET", "/status/200", 200, 10),
    ("GET", "/status/404", 404, 5),
    ("GET", "/status/503", 503, 2),
    ("GET", "/raise", 500, 3),
    ("POST", "/", 201, 2),
];
const CLIENTS: usize = 4;

/// Sends the mix on keep-alive connections (a fresh one after each server close).
fn send_mix(addr: &str) {
    let mut conn: Option<Conn> = None;
    for (method, path, status, times) in MIX {
        for _ in 0..*times {
            let c = conn.get_or_insert_with(|| Conn::open(addr));
            let body = if *method == "POST" { "hello" } else { "" };
            c.send(
                format!(
                    "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
            let response = c.response(method);
            assert_eq!(response.status, *status, "{method} {path}");
            if response.header("connection") == Some("close") {
                conn = None;
            }
        }
    }
}

per_model!(counts_match_what_the_clients_sent, |model| {
    let (server, metrics) = start(model, &[]);
    let fresh = scrape(&metrics);
    assert_eq!(fresh.value("ironhorse_requests_total", &[]), 0.0);
    assert_eq!(fresh.types["ironhorse_requests"], "counter");
    assert_eq!(
        fresh.types["ironhorse_request_duration_seconds"],
        "histogram"
    );
    assert_eq!(fresh.types["ironhorse_requests_in_flight"], "gauge");
    assert!(fresh.value("ironhorse_uptime_seconds", &[]) > 0.0);
    assert_eq!(
        fresh.value(
            "ironhorse_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );

    // Scrapes during the load: each parses, and no count goes backwards.
    let done = Arc::new(AtomicBool::new(false));
    let scraper = {
        let (metrics, done) = (metrics.clone(), done.clone());
        std::thread::spawn(move || {
            let (mut last, mut scrapes) = (0.0, 0);
            while !done.load(Ordering::SeqCst) || scrapes == 0 {
                let total = scrape(&metrics).value("ironhorse_requests_total", &[]);
                assert!(total >= last, "went back from {last} to {total}");
                last = total;
                scrapes += 1;
            }
        })
    };
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let addr = server.addr.clone();
            std::thread::spawn(move || send_mix(&addr))
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    scraper.join().unwrap();

    let n = |status: u16| -> f64 {
        (MIX.iter()
            .filter(|m| m.2 == status)
            .map(|m| m.3)
            .sum::<usize>()
            * CLIENTS) as f64
    };
    let total = (MIX.iter().map(|m| m.3).sum::<usize>() * CLIENTS) as f64;
    // A failed request's connection is counted as it closes, just after the client read
    // the answer: wait for the event, not a time.
    let settled = || {
        let m = scrape(&metrics);
        (m.value("ironhorse_requests_total", &[]) == total
            && m.value("ironhorse_requests_in_flight", &[]) == 0.0)
            .then_some(m)
    };
    assert!(
        eventually(|| settled().is_some()),
        "{}",
        scrape_text(&metrics, false)
    );
    let m = settled().unwrap();
    assert_eq!(m.requests("GET", "2xx"), n(200));
    assert_eq!(m.requests("GET", "4xx"), n(404));
    assert_eq!(m.requests("GET", "5xx"), n(503) + n(500));
    assert_eq!(m.requests("POST", "2xx"), n(201));
    assert_eq!(
        m.value("ironhorse_requests_total", &[("status", "none")]),
        0.0
    );
    assert_eq!(
        m.value("ironhorse_request_duration_seconds_count", &[]),
        total
    );
    assert_eq!(
        m.value(
            "ironhorse_request_duration_seconds_bucket",
            &[("le", "+Inf")]
        ),
        total
    );
    assert_eq!(m.value("ironhorse_app_duration_seconds_count", &[]), total);
    assert!(m.value("ironhorse_request_duration_seconds_sum", &[]) > 0.0);
    assert!(m.value("ironhorse_response_bytes_total", &[]) > 0.0);
    assert!(m.value("ironhorse_connections_opened_total", &[]) >= CLIENTS as f64);
    assert_eq!(
        m.value("ironhorse_connections", &[("state", "active")]),
        0.0
    );
    assert!(eventually(|| scrape(&metrics)
        .value("ironhorse_connections", &[])
        == 0.0));
    assert_eq!(m.value("ironhorse_app_threads_busy", &[]), 0.0);
    assert_eq!(m.value("ironhorse_app_queue_depth", &[]), 0.0);
    if model != "fork" {
        // (Under fork, no serving process outlives its connection.)
        assert!(m.value("ironhorse_worker_resident_memory_bytes", &[]) > 0.0);
    }

    // The same numbers in OpenMetrics, through the strict parser (HELP, TYPE, UNIT, EOF).
    let text = scrape_text(&metrics, true);
    assert!(text.ends_with("# EOF\n"), "{text}");
    let om = parse(&text);
    assert_eq!(om.requests("GET", "2xx"), n(200));
    assert_eq!(om.units["ironhorse_request_duration_seconds"], "seconds");
    assert_eq!(om.units["ironhorse_response_bytes"], "bytes");
    assert_eq!(om.types["ironhorse_build"], "info");
    assert_eq!(server.stop(HUNG), Some(0));
});

#[test]
fn totals_survive_worker_recycling_and_reloads() {
    for model in common::models_with_workers() {
        eprintln!("--- model {model}");
        // prefork and hybrid run two workers already (`model_args`).
        let mut extra = vec!["--max-requests", "5"];
        if !matches!(model, "prefork" | "hybrid") {
            extra.extend(["-w", "2"]);
        }
        let (server, metrics) = start(model, &extra);
        let exits = |m: &Metrics, reason: &str| {
            m.value("ironhorse_worker_exits_total", &[("reason", reason)])
        };
        let starts = |m: &Metrics, reason: &str| {
            m.value("ironhorse_worker_starts_total", &[("reason", reason)])
        };
        // Requests until four workers retired (a worker may serve a few past its budget
        // before it stops accepting), each on a fresh connection.
        let mut sent = 0;
        assert!(
            eventually(|| {
                for _ in 0..5 {
                    assert_eq!(get(&server.addr, "/status/200").status, 200);
                    sent += 1;
                }
                exits(&scrape(&metrics), "max_requests") >= 4.0
            }),
            "{model}: {}",
            scrape_text(&metrics, false)
        );
        assert!(
            eventually(|| {
                let m = scrape(&metrics);
                m.requests("GET", "2xx") == sent as f64
                    && starts(&m, "replace") == exits(&m, "max_requests")
            }),
            "{model}: {}",
            scrape_text(&metrics, false)
        );
        let m = scrape(&metrics);
        assert_eq!(starts(&m, "boot"), 2.0);
        assert_eq!(
            m.value("ironhorse_request_duration_seconds_count", &[]),
            sent as f64
        );
        assert_eq!(m.value("ironhorse_workers", &[]), 2.0, "{model}");

        // HUP: both workers are replaced, and the totals stay.
        let before = exits(&m, "max_requests");
        server.signal(1);
        // A worker that reached its budget with the last requests may retire only now, on
        // its own: its exit counts as max_requests, not reload (and, before the HUP, its
        // successor as a replacement). The two workers the reload ended are gone either way.
        let replaced_before = starts(&m, "replace");
        let old_workers_gone = |m: &Metrics| {
            let late_retired = exits(m, "max_requests") - before;
            let late_replaced = starts(m, "replace") - replaced_before;
            exits(m, "reload") + late_retired - late_replaced == 2.0
        };
        assert!(
            eventually(|| {
                let m = scrape(&metrics);
                old_workers_gone(&m) && starts(&m, "reload") == 2.0
            }),
            "{model}: {}",
            scrape_text(&metrics, false)
        );
        let m = scrape(&metrics);
        assert_eq!(m.requests("GET", "2xx"), sent as f64);
        let retired = exits(&m, "max_requests");
        assert!(
            retired >= before && retired <= before + 2.0,
            "{retired} after {before}"
        );
        assert_eq!(exits(&m, "crash"), 0.0);

        // A worker killed from outside is a crash; its successor a replacement.
        let replaced = starts(&m, "replace");
        let victim = *common::children_of(server.pid()).iter().next().unwrap();
        let _ = Command::new("kill")
            .args(["-9", &victim.to_string()])
            .status();
        assert!(
            eventually(|| {
                let m = scrape(&metrics);
                exits(&m, "crash") == 1.0
                    && starts(&m, "replace") == replaced + 1.0
                    && m.value("ironhorse_workers", &[]) == 2.0
            }),
            "{model}: {}",
            scrape_text(&metrics, false)
        );
        assert_eq!(scrape(&metrics).requests("GET", "2xx"), sent as f64);
        assert_eq!(server.stop(HUNG), Some(0));
    }
}

/// The files the app creates as each waiting request begins.
fn started(until: &Path) -> usize {
    let prefix = format!("{}.started.", until.file_name().unwrap().to_str().unwrap());
    std::fs::read_dir(until.parent().unwrap())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        })
        .count()
}

per_model!(metrics_answer_while_every_worker_is_busy, |model| {
    let (server, metrics) = start(model, &[]);
    let until = temp_path("metrics-until");
    const WAITING: usize = 8;
    let clients: Vec<_> = (0..WAITING)
        .map(|_| {
            let (addr, until) = (server.addr.clone(), until.clone());
            std::thread::spawn(move || {
                get(&addr, &format!("/wait?until={}", until.display())).status
            })
        })
        .collect();
    // Serial models run one request per process; the rest wait in the accept queue, which
    // the kernel reports (prefork's workers may have read a few ahead before their first
    // request was whole: at most the others).
    let busy = match model {
        "single" => Some(1),
        "prefork" => Some(2),
        _ => None,
    };
    assert!(eventually(|| started(&until) >= busy.unwrap_or(1)));
    assert!(
        eventually(|| {
            let m = scrape(&metrics);
            let queued = m.value("ironhorse_listen_queue", &[]) as usize;
            m.value("ironhorse_requests_in_flight", &[]) >= 1.0
                && m.value("ironhorse_app_threads_busy", &[]) >= 1.0
                && m.value("ironhorse_connections", &[("state", "active")]) >= 1.0
                && busy.is_none_or(|b| match model {
                    "prefork" => queued <= WAITING - b,
                    _ => queued == WAITING - b,
                })
        }),
        "{}",
        scrape_text(&metrics, false)
    );
    std::fs::write(&until, b"go").unwrap();
    for client in clients {
        assert_eq!(client.join().unwrap(), 200);
    }
    assert!(
        eventually(|| {
            let m = scrape(&metrics);
            m.requests("GET", "2xx") == WAITING as f64
                && m.value("ironhorse_requests_in_flight", &[]) == 0.0
                && m.value("ironhorse_app_threads_busy", &[]) == 0.0
                && m.value("ironhorse_listen_queue", &[]) == 0.0
        }),
        "{}",
        scrape_text(&metrics, false)
    );
    for entry in std::fs::read_dir(until.parent().unwrap())
        .unwrap()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(until.file_name().unwrap().to_str().unwrap()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    assert_eq!(server.stop(HUNG), Some(0));
});

#[test]
fn the_listener_answers_only_metrics_and_serves_a_unix_socket() {
    let site = Site::new("metrics-unix");
    let socket = temp_path("metrics-sock");
    let mut args = site.root_arg();
    args.extend([
        "--metrics-bind".to_string(),
        format!("unix:{}", socket.display()),
    ]);
    let server = Server::start(&args);
    assert!(server.log_contains("metrics on unix:"));
    assert_eq!(get(&server.addr, "/").status, 200);
    let unix = || {
        let stream = UnixStream::connect(&socket).unwrap();
        stream.set_read_timeout(Some(HUNG)).unwrap();
        stream
    };
    let (status, _, body) = exchange(unix(), "GET /metrics HTTP/1.1\r\nHost: m\r\n\r\n");
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(parse(&body).requests("GET", "2xx"), 1.0, "{body}");
    let (status, head, body) = exchange(unix(), "HEAD /metrics HTTP/1.1\r\n\r\n");
    assert!(
        status.contains(" 200 ") && head.contains("Content-Length: "),
        "{head}"
    );
    assert!(body.is_empty());
    let (status, _, _) = exchange(unix(), "GET /other HTTP/1.1\r\n\r\n");
    assert!(status.contains(" 404 "), "{status}");
    let (status, head, _) = exchange(
        unix(),
        "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    );
    assert!(
        status.contains(" 405 ") && head.contains("Allow: GET, HEAD"),
        "{head}"
    );
    let (status, _, _) = exchange(unix(), "NOT HTTP\r\n\r\n");
    assert!(status.contains(" 400 "), "{status}");
    // Scrapes count nothing: they never reach the server's own requests.
    let (_, _, body) = exchange(unix(), "GET /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(parse(&body).value("ironhorse_requests_total", &[]), 1.0);
    assert_eq!(server.stop(HUNG), Some(0));
    assert!(!socket.exists(), "the socket file is removed at stop");
}

#[test]
fn a_bad_metrics_bind_is_one_line_and_exit_code_2() {
    let site = Site::new("metrics-bad");
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap().to_string();
    let not_a_socket = temp_path("metrics-file");
    std::fs::write(&not_a_socket, b"keep me").unwrap();
    for (value, says) in [
        ("nonsense".to_string(), "--metrics-bind"),
        ("127.0.0.1".to_string(), "--metrics-bind"),
        ("unix:".to_string(), "--metrics-bind"),
        (taken.clone(), "cannot listen on"),
        (format!("unix:{}", not_a_socket.display()), "not a socket"),
    ] {
        let mut args = site.root_arg();
        args.extend([
            "-b".to_string(),
            "127.0.0.1:0".to_string(),
            "--metrics-bind".to_string(),
            value.clone(),
        ]);
        let (code, err) = run_to_exit(&args);
        assert_eq!(code, Some(2), "{value}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{value}: one line: {err:?}"
        );
        assert!(err.contains(says), "{value}: {err}");
    }
    assert_eq!(std::fs::read(&not_a_socket).unwrap(), b"keep me");
}

/// A master with one worker serving `site`, metrics on a free port, then `extra`.
fn one_static_worker(site: &Site, extra: &[&str]) -> Vec<String> {
    let mut args = site.root_arg();
    args.extend(
        [
            "--model",
            "prefork",
            "-w",
            "1",
            "--metrics-bind",
            "127.0.0.1:0",
        ]
        .map(String::from),
    );
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[test]
fn an_upgraded_master_takes_the_metrics_socket_over() {
    let site = Site::new("metrics-usr2");
    let pidfile = temp_path("metrics-usr2-pid");
    let mut args = one_static_worker(&site, &["--pid"]);
    args.push(pidfile.display().to_string());
    let server = Server::start(&args);
    let metrics = metrics_addr(&server);
    // "listening on" comes before the master forks its worker: wait for the worker.
    assert!(
        eventually(|| scrape(&metrics).value("ironhorse_workers", &[]) == 1.0),
        "{}",
        scrape_text(&metrics, false)
    );
    server.signal(12); // USR2: a new master on the same sockets, the metrics one included.
    let mut path2 = pidfile.clone().into_os_string();
    path2.push(".2");
    let path2 = std::path::PathBuf::from(path2);
    assert!(eventually(
        || std::fs::read_to_string(&path2).is_ok_and(|p| p.trim().parse::<i32>().is_ok())
    ));
    let new_master: i32 = std::fs::read_to_string(&path2)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The new master writes its pid file before it forks its worker: retire the old one
    // only once the new one serves (as an operator would), or the scrape below may find the
    // new master with no worker yet.
    assert!(
        eventually(|| common::children_of(new_master).len() == 1),
        "the new master's worker did not start"
    );
    server.signal(28); // WINCH
    assert_eq!(server.stop(HUNG), Some(0));
    // The old master is gone: the new one answers on the same address.
    let m = scrape(&metrics);
    assert_eq!(m.value("ironhorse_workers", &[]), 1.0);
    assert_eq!(
        m.value("ironhorse_worker_starts_total", &[("reason", "boot")]),
        1.0
    );
    let _ = Command::new("kill").arg(new_master.to_string()).status();
    assert!(eventually(|| TcpStream::connect(&metrics).is_err()));
}

#[test]
fn workers_recycled_for_memory_are_counted_so() {
    // Every worker is over 1 MiB: each is recycled once it is ready.
    let site = Site::new("metrics-memory");
    let args = one_static_worker(&site, &["--max-worker-memory", "1M"]);
    let server = Server::start(&args);
    let metrics = metrics_addr(&server);
    assert!(
        eventually(|| {
            let m = scrape(&metrics);
            m.value("ironhorse_worker_exits_total", &[("reason", "memory")]) >= 2.0
                && m.value("ironhorse_worker_starts_total", &[("reason", "replace")]) >= 2.0
        }),
        "{}",
        scrape_text(&metrics, false)
    );
    let m = scrape(&metrics);
    assert_eq!(
        m.value("ironhorse_worker_exits_total", &[("reason", "crash")]),
        0.0
    );
    assert_eq!(server.stop(HUNG), Some(0));
}

#[test]
fn a_worker_silent_past_its_timeout_and_a_scale_up_are_counted_so() {
    let mut args = wsgi_args("prefork", "stuck_app:application", &apps_dir());
    // (--timeout counts from a worker's start, its import included: long enough for that on
    // a loaded machine, where two seconds were seen to pass before a worker was ready.)
    args.extend(["--timeout", "5", "--metrics-bind", "127.0.0.1:0"].map(String::from));
    let server = Server::start(&args);
    let metrics = metrics_addr(&server);
    let addr = server.addr.clone();
    // The request that never ends: its worker stops beating and is aborted.
    let client = std::thread::spawn(move || {
        let mut conn = Conn::open(&addr);
        conn.send(b"GET /stuck HTTP/1.1\r\nHost: t\r\n\r\n");
        conn.try_response("GET")
    });
    assert!(
        eventually(|| {
            let m = scrape(&metrics);
            m.value("ironhorse_worker_exits_total", &[("reason", "timeout")]) == 1.0
                && m.value("ironhorse_worker_starts_total", &[("reason", "replace")]) == 1.0
        }),
        "{}",
        scrape_text(&metrics, false)
    );
    let _ = client.join();
    // TTIN: one worker more, a scale-up.
    server.signal(21);
    assert!(
        eventually(|| {
            let m = scrape(&metrics);
            m.value("ironhorse_worker_starts_total", &[("reason", "scale_up")]) == 1.0
                && m.value("ironhorse_workers", &[]) == 3.0
        }),
        "{}",
        scrape_text(&metrics, false)
    );
    assert_eq!(server.stop(HUNG), Some(0));
}

/// The loop-lag metric under each model that hosts ASGI (`event` under a master with two
/// workers, so the master's aggregation is what is read; `async` in one process): an async
/// view that blocks the loop (a blocking call, as broken apps do) shows in the per-worker
/// gauge while it blocks and in the histogram after.
#[test]
fn an_asgi_loop_blocked_by_the_app_shows_in_the_loop_lag_metrics() {
    let hosts: Vec<(&str, &[&str])> = common::models()
        .into_iter()
        .filter_map(|model| match model {
            "event" => Some(("event", &["-w", "2"][..])),
            "async" => Some(("async", &[][..])),
            _ => None,
        })
        .collect();
    for (model, extra) in hosts {
        eprintln!("--- model {model} {extra:?}");
        let mut args = wsgi_args(model, "asgi_app:app", &apps_dir());
        args.extend(["--metrics-bind".into(), "127.0.0.1:0".into()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let server = Server::start(&args);
        let metrics = metrics_addr(&server);
        assert_eq!(get(&server.addr, "/length").status, 201, "serving");
        let fresh = scrape(&metrics);
        assert_eq!(fresh.types["ironhorse_asgi_loop_lag_seconds"], "histogram");
        assert_eq!(fresh.types["ironhorse_asgi_loop_lag_last_seconds"], "gauge");
        // A serving worker's loop probes itself (reported by pid).
        assert!(eventually(|| {
            let m = scrape(&metrics);
            let lagging = m
                .samples
                .iter()
                .filter(|(n, l, _)| {
                    n == "ironhorse_asgi_loop_lag_last_seconds" && l.contains_key("pid")
                })
                .count();
            lagging >= 1 && m.value("ironhorse_asgi_loop_lag_seconds_count", &[]) > 0.0
        }));

        let release = temp_path("loop-lag");
        let blocked = release.with_extension("blocked");
        let mut conn = Conn::open(&server.addr);
        conn.send(
            format!(
                "GET /block?{} HTTP/1.1\r\nHost: t\r\n\r\n",
                release.display()
            )
            .as_bytes(),
        );
        assert!(eventually(|| blocked.exists()), "the view started");
        let pid = std::fs::read_to_string(&blocked).unwrap();
        // While the loop is blocked, its worker's gauge grows past half a second (that
        // worker's: another one's loop may lag too on a loaded machine, and its sample
        // would say nothing of this block).
        let max_lag = |m: &Metrics| {
            m.samples
                .iter()
                .filter(|(n, l, _)| {
                    n == "ironhorse_asgi_loop_lag_last_seconds"
                        && l.get("pid").is_none_or(|p| p == pid.trim())
                })
                .map(|(_, _, v)| *v)
                .fold(0.0, f64::max)
        };
        assert!(eventually(|| max_lag(&scrape(&metrics)) >= 0.5));
        let before = scrape(&metrics);
        let slow_before = before.value("ironhorse_asgi_loop_lag_seconds_count", &[])
            - before.value("ironhorse_asgi_loop_lag_seconds_bucket", &[("le", "0.5")]);
        std::fs::write(&release, b"go").unwrap();
        assert_eq!(conn.response("GET").text(), "unblocked");
        // The probe that was due during the block ran at least 0.5 s late (the gauge said
        // so before the release): one more slow sample in the histogram, its lag in the sum.
        assert!(
            eventually(|| {
                let after = scrape(&metrics);
                let slow_after = after.value("ironhorse_asgi_loop_lag_seconds_count", &[])
                    - after.value("ironhorse_asgi_loop_lag_seconds_bucket", &[("le", "0.5")]);
                slow_after >= slow_before + 1.0
                    && after.value("ironhorse_asgi_loop_lag_seconds_sum", &[]) >= 0.5
            }),
            "{slow_before} {}",
            scrape_text(&metrics, false)
        );
        let _ = std::fs::remove_file(&release);
        let _ = std::fs::remove_file(&blocked);
        server.stop(HUNG);
    }
}
