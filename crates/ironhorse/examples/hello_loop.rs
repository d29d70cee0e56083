//! The userspace cost of one WSGI hello-world request on `--threads 0`, without sockets:
//! an HTTP session with the app on its own thread (`offload_threads: 0`, as `--model event
//! --threads 0` runs it) is fed wrk's request bytes, advanced, and its output drained into
//! `/dev/null` (one `write` per response, as the event loop's one `send`), over and over.
//! What it prints is the best of several runs, in ns per request (wall clock, and the
//! thread's CPU time, which a shared machine's other load inflates less): everything ironhorse and
//! CPython do per request, the TCP stack excepted (docs/BENCHMARKS.md, issue 15).
//!
//! `cargo run --release -p ironhorse --example hello_loop [-- REQUESTS RUNS]`
//! (`PYO3_PYTHON` and a virtualenv as for the tests; the app is `bench/apps/hello.py`, or
//! `HELLO_LOOP_APP=module:callable` from `bench/apps`).

use std::fs::File;
use std::sync::Arc;
use std::time::Instant;

use ironhorse_app::{ConnInfo, Service};
use ironhorse_protocol::hooks::Detached;
use ironhorse_protocol::output::{Drained, Output};
use ironhorse_protocol::session::{Link, Protocol, Step};
use ironhorse_protocol::{Http, HttpSettings};
use ironhorse_wsgi::{WsgiApp, WsgiConfig};

/// What `wrk -t1 -c50 http://127.0.0.1:PORT/` sends.
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n";

fn main() {
    let mut args = std::env::args().skip(1);
    let requests: u32 = args
        .next()
        .map_or(200_000, |a| a.parse().expect("REQUESTS"));
    let runs: u32 = args.next().map_or(7, |a| a.parse().expect("RUNS"));
    // `HELLO_LOOP_APP=module:callable` (found in bench/apps) measures another app the same way.
    let spec = std::env::var("HELLO_LOOP_APP").unwrap_or_else(|_| "hello:application".into());
    let mut cfg = WsgiConfig::new(&spec);
    cfg.pythonpath = vec![concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/apps").into()];
    let app: Arc<dyn Service> = Arc::new(WsgiApp::load(cfg).expect("load bench/apps/hello.py"));
    let settings = HttpSettings {
        offload_threads: 0,
        ..HttpSettings::for_tests()
    };
    let http = Http::new(app, settings);
    let mut conn = ConnInfo::unix();
    conn.peer = Some("127.0.0.1:40000".parse().unwrap());
    conn.local = Some("127.0.0.1:8000".parse().unwrap());
    let link = Link {
        waker: Arc::new(|| {}),
        executor: None,
        hooks: Arc::new(Detached),
        batch: None,
    };
    let mut session = http.session(conn, link);
    let mut out = Output::default();
    let mut sink = File::create("/dev/null").expect("/dev/null");
    let mut one = || {
        session.receive(REQUEST);
        let step = session.advance(&mut out);
        assert_eq!(step, Step::Read);
        assert_eq!(out.drain_into(&mut sink).unwrap(), Drained::All);
    };
    // Warm up, and check the answer once.
    for _ in 0..10_000 {
        one();
    }
    let (mut best, mut best_cpu) = (f64::MAX, f64::MAX);
    for _ in 0..runs {
        let (start, cpu) = (Instant::now(), thread_cpu());
        for _ in 0..requests {
            one();
        }
        let ns = start.elapsed().as_nanos() as f64 / f64::from(requests);
        let cpu_ns = (thread_cpu() - cpu) * 1e9 / f64::from(requests);
        best = best.min(ns);
        best_cpu = best_cpu.min(cpu_ns);
        println!("{ns:.0} ns/request, CPU {cpu_ns:.0} ns/request");
    }
    println!("best: {best:.0} ns/request, CPU {best_cpu:.0} ns/request");
}

/// This thread's CPU time (user + system), in seconds: unlike the wall clock, it does not
/// count the time other processes of a shared machine ran instead.
fn thread_cpu() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    let usage = getrusage(UsageWho::RUSAGE_THREAD).expect("getrusage");
    let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 * 1e-6;
    secs(usage.user_time()) + secs(usage.system_time())
}
