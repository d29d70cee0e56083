//! Slow-client protection: clients trickling their request heads (slowloris) hold no
//! thread on the models that read heads before a thread takes them (`threadpool` and
//! `hybrid` through their watcher, `event` and `async` by design), so a normal client is
//! served every time while a crowd of them is connected. (`single`, `fork`, `prefork` and
//! `thread` give a connection a process or thread of its own: see docs/BENCHMARKS.md.)

mod common;

use std::time::{Duration, Instant};

use common::client::get;
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

#[test]
fn slowloris_crowds_do_not_starve_a_normal_client() {
    let site = Site::new("slowloris");
    for model in common::models() {
        if !["threadpool", "hybrid", "event", "async"].contains(&model) {
            continue;
        }
        let mut server_args = args(model);
        server_args.extend(site.root_arg());
        let server = Server::start(&server_args);
        let crowd = Crowd::start(
            &server.addr,
            CROWD,
            b"GET / HTTP/1.1\r\n",
            b"X-Slow: yes\r\n",
            Duration::from_secs(1),
        );
        // The event: the server took every one of them (not left in its backlog).
        assert!(
            common::eventually(|| sockets_of(server.pid()) >= CROWD),
            "{model}: the server accepted {} of {CROWD} slow clients",
            sockets_of(server.pid())
        );
        let mut latencies = Vec::with_capacity(ASKS);
        for ask in 0..ASKS {
            let started = Instant::now();
            let r = get(&server.addr, "/");
            latencies.push(started.elapsed());
            assert_eq!(
                r.status, 200,
                "{model}: ask {ask} while {CROWD} slow clients wait"
            );
            assert_eq!(r.text(), "<h1>home</h1>\n");
        }
        eprintln!(
            "{model}: normal client among {CROWD} slowloris clients: p50 {:?}, p99 {:?}",
            percentile(&mut latencies, 50),
            percentile(&mut latencies, 99)
        );
        drop(crowd);
    }
}
