//! Slow-client protection: clients trickling their request heads (slowloris) hold no
//! thread on the models that read heads before a thread takes them (`threadpool` and
//! `hybrid` through their watcher, `event` and `async` by design), so a normal client is
//! served every time while a crowd of them is connected. (`single`, `fork`, `prefork` and
//! `thread` give a connection a process or thread of its own: see docs/BENCHMARKS.md.)

mod common;

use std::time::{Duration, Instant};

use common::client::{get, Conn, Response};
use common::slow::{percentile, sockets_of, Crowd};
use common::{Server, Site};

/// How many slowloris clients (each holds one socket here and one in the server).
const CROWD: usize = 1000;
/// How many times the normal client asks while they are connected.
const ASKS: usize = 20;

/// Each model as a user would run it against slow clients.
fn args(model: &str) -> Vec<String> {
    let mut args = vec!["--model".to_string(), model.to_string()];
    let extra: &[&str] = match model {
        "threadpool" => &["--threads", "16"],
        "hybrid" => &["-w", "1", "--threads", "16"],
        _ => &[],
    };
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Starts each pooled model with `extra`, connects a crowd trickling `prefix` then `drip`,
/// and asks with `ask` while it is connected: every ask must be answered with the page.
fn crowd_does_not_starve(
    what: &str,
    extra: &[&str],
    prefix: &[u8],
    drip: &'static [u8],
    ask: fn(&str) -> Response,
) {
    let site = Site::new("slowloris");
    for model in common::models() {
        if !["threadpool", "hybrid", "event", "async"].contains(&model) {
            continue;
        }
        let mut server_args = args(model);
        server_args.extend(site.root_arg());
        server_args.extend(extra.iter().map(|s| s.to_string()));
        let server = Server::start(&server_args);
        let crowd = Crowd::start(&server.addr, CROWD, prefix, drip, Duration::from_secs(1));
        // The event: the server took every one of them (not left in its backlog).
        assert!(
            common::eventually(|| sockets_of(server.pid()) >= CROWD),
            "{model}: the server accepted {} of {CROWD} {what}",
            sockets_of(server.pid())
        );
        let mut latencies = Vec::with_capacity(ASKS);
        for n in 0..ASKS {
            let started = Instant::now();
            let r = ask(&server.addr);
            latencies.push(started.elapsed());
            assert_eq!(r.status, 200, "{model}: ask {n} while {CROWD} {what} wait");
            assert_eq!(r.text(), "<h1>home</h1>\n");
        }
        eprintln!(
            "{model}: normal client among {CROWD} {what}: p50 {:?}, p99 {:?}",
            percentile(&mut latencies, 50),
            percentile(&mut latencies, 99)
        );
        drop(crowd);
    }
}

#[test]
fn slowloris_crowds_do_not_starve_a_normal_client() {
    crowd_does_not_starve(
        "slowloris clients",
        &[],
        b"GET / HTTP/1.1\r\n",
        b"X-Slow: yes\r\n",
        |addr| get(addr, "/"),
    );
}

/// The same behind `--proxy-protocol`: clients trickling their PROXY header (from an
/// allowed peer, as a broken or hostile balancer would) hold no pool thread either. The
/// header timeout is raised so that none of them is closed while the normal client asks,
/// and the header is a v2 one announcing a 1 KiB address block, which the crowd never
/// completes while the test runs (a short header, once whole, would free the thread).
#[test]
fn clients_trickling_a_proxy_header_do_not_starve_a_normal_client() {
    crowd_does_not_starve(
        "clients trickling a PROXY header",
        &["--proxy-protocol", "v1,v2", "--header-timeout", "300"],
        // The v2 signature, PROXY over TCP4, 1024 bytes to follow.
        b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x04\x00",
        b"\x7f\x00\x00\x01",
        |addr| {
            let mut conn = Conn::open(addr);
            conn.send(
                b"PROXY TCP4 203.0.113.8 198.51.100.1 40000 443\r\n\
                  GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            );
            conn.response("GET")
        },
    );
}
