//! Signals sent in a burst are each counted: N `TTIN` give N workers more and N `TTOU` N
//! fewer, under load, in every model that runs a master.
//!
//! The burst is as tight as the kernel allows. A standard signal is kept pending at most once
//! (POSIX): one sent while the same signal still waits to be delivered merges with it before
//! any code of the server runs, so no server can count it. The sender therefore waits, before
//! each signal, only until the previous one has left the kernel's pending set
//! (`/proc/PID/status`), never for the master to act on it: the master's loop sees the burst
//! as signals that arrived together.

mod common;

use common::load::Load;
use common::{children_of as workers_of, wait_for, Server, Site};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

/// Every model whose `-w 2` runs a master with two worker processes.
const MASTER_MODELS: &[&str] = &["prefork", "hybrid", "event", "async"];
/// How many signals one burst holds.
const BURST: usize = 3;

/// Whether `signal` is pending (sent, not yet delivered) for process `pid`.
fn pending(pid: i32, signal: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let bit = 1u64 << (signal - 1);
    status
        .lines()
        .filter_map(|l| {
            l.strip_prefix("SigPnd:")
                .or_else(|| l.strip_prefix("ShdPnd:"))
        })
        .filter_map(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .any(|mask| mask & bit != 0)
}

/// Sends `signal` to `pid` `count` times back to back, from this process (see the module
/// doc): microseconds apart when the master is quick to take each one.
fn burst(pid: i32, signal: Signal, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for _ in 0..count {
        while pending(pid, signal as u32) {
            assert!(
                Instant::now() < deadline,
                "{signal} never delivered to {pid}"
            );
            std::thread::yield_now();
        }
        kill(Pid::from_raw(pid), signal).unwrap();
    }
}

/// How many lines of the server's log contain `needle`.
fn log_count(server: &Server, needle: &str) -> usize {
    server.log_text().matches(needle).count()
}

/// Sends a burst of `signal` to the master, then waits for every one to be handled (the
/// master logs `SIGTTIN: workers N` per signal) and for `workers` workers to run.
fn burst_and_expect(server: &Server, model: &str, signal: Signal, workers: usize) {
    let pid = server.pid();
    let line = format!("{}: workers", signal.as_str());
    let handled_before = log_count(server, &line);
    burst(pid, signal, BURST);
    assert!(
        wait_for(
            || log_count(server, &line) == handled_before + BURST,
            Duration::from_secs(30)
        ),
        "{model}: {} of {BURST} {signal} handled; log: {}",
        log_count(server, &line) - handled_before,
        server.log_text()
    );
    assert!(
        server.log_contains(&format!("{line} {workers}")),
        "{model}: {}",
        server.log_text()
    );
    assert!(
        wait_for(|| workers_of(pid).len() == workers, Duration::from_secs(30)),
        "{model}: workers {:?}, want {workers}",
        workers_of(pid)
    );
}

#[test]
fn a_burst_of_ttin_then_ttou_changes_the_worker_count_by_each_signal_under_load() {
    for model in MASTER_MODELS {
        let site = Site::new("burst");
        let mut args: Vec<String> = ["--model", model, "-w", "2"].map(String::from).to_vec();
        args.extend(site.root_arg());
        let server = Server::start(&args);
        let pid = server.pid();
        assert!(
            wait_for(|| workers_of(pid).len() == 2, Duration::from_secs(30)),
            "{model}: two workers never ran: {:?}",
            workers_of(pid)
        );
        let load = Load::start(&server.addr, "/hello.txt", 4);
        assert!(
            wait_for(|| load.ok_so_far() > 20, Duration::from_secs(30)),
            "{model}: the load never got going"
        );

        burst_and_expect(&server, model, Signal::SIGTTIN, 2 + BURST);
        burst_and_expect(&server, model, Signal::SIGTTOU, 2);

        let report = load.stop();
        assert_eq!(report.failed, 0, "{model}: {:?}", report.errors);
        assert!(report.ok > 20, "{model}: {report:?}");
        let _ = server.stop(Duration::from_secs(30));
    }
}
