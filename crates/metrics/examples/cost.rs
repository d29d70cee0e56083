//! What `--metrics-bind` adds to one request, measured alone: the recording a request goes
//! through (connection opened and closed, request started and done, an application job
//! queued, run and ended), timed over many iterations on one thread. Run with
//! `cargo run --release -p ironhorse-metrics --example cost`.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// This thread's CPU time in seconds (utime + stime): steadier than wall time on a busy
/// machine, where the thread may wait for a core.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("/proc");
    let fields: Vec<u64> = stat
        .rsplit_once(')')
        .expect("stat")
        .1
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|f| f.parse().expect("a number"))
        .collect();
    (fields[0] + fields[1]) as f64 / 100.0
}

/// CPU nanoseconds per call of `f`, over `n` calls.
fn time(n: u32, mut f: impl FnMut()) -> f64 {
    let before = cpu_seconds();
    for _ in 0..n {
        f();
    }
    (cpu_seconds() - before) * 1e9 / f64::from(n)
}

use ironhorse_metrics::{layout, Board};

fn main() {
    let board = Board::new(1).expect("map the board");
    let meter = board.meter(board.claim().expect("a slot"));
    let get = layout::method_class("GET");
    const N: u32 = 10_000_000;
    let counter = AtomicU64::new(0);
    let add = time(N, || {
        counter.fetch_add(black_box(1), Ordering::Relaxed);
    });
    println!("one relaxed fetch_add: {add:.1} ns");
    let clock = time(N, || {
        black_box(Instant::now());
    });
    println!("one Instant::now: {clock:.1} ns");
    for (name, with_job) in [
        ("static request", false),
        ("WSGI request (with its job)", true),
    ] {
        let per = time(N, || {
            meter.connection_opened();
            let began = meter.request_started();
            if with_job {
                let mut ticket = meter.job_queued();
                ticket.running();
                black_box(&ticket);
            }
            meter.request_done(began, black_box(get), black_box(200), black_box(1024));
            meter.connection_closed();
        });
        println!("{name}: {per:.1} ns CPU per request (connection included)");
    }
    black_box(board.snapshot());
}
