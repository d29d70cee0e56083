//! `--preload`: the process started by the user (the binary, or `python` running the
//! pip-installed console script) imports the app, becomes the master, and its workers share
//! the imported objects' memory copy-on-write. Run against the installed package too
//! (`IRONHORSE_BIN`, see scripts/wheel-test.sh).

mod common;

use common::client::get;
use common::python::{apps_dir, wsgi_args};
use common::{children_of, wait_for, Server};
use std::time::Duration;

/// The preload app's answer: (importing pid, serving pid).
fn who(server: &Server) -> (i32, i32) {
    let r = get(&server.addr, "/");
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    let fields: Vec<i64> = text
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect();
    assert_eq!(fields.len(), 3, "{text}");
    assert_eq!(fields[2], 64 << 20, "{text}");
    (fields[0] as i32, fields[1] as i32)
}

/// `Shared_Dirty` of `pid`, in KiB: pages written before the fork and still shared.
fn shared_dirty_kib(pid: i32) -> u64 {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    rollup
        .lines()
        .find_map(|l| l.strip_prefix("Shared_Dirty:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

fn start(model: &str, preload: bool) -> Server {
    let mut args = wsgi_args(model, "preload_app:application", &apps_dir());
    if !args.iter().any(|a| a == "-w") {
        args.extend(["-w".into(), "2".into()]);
    }
    if preload {
        args.push("--preload".into());
    }
    let server = Server::start(&args);
    assert!(wait_for(
        || children_of(server.pid()).len() == 2,
        Duration::from_secs(10)
    ));
    server
}

fn preloaded_app_is_imported_by_the_master_and_shared(model: &str) {
    let server = start(model, true);
    let workers = children_of(server.pid());
    for _ in 0..4 {
        let (imported_by, served_by) = who(&server);
        assert_eq!(
            imported_by,
            server.pid(),
            "{model}: not imported by the master"
        );
        assert!(
            workers.contains(&served_by),
            "{model}: {served_by} is no worker"
        );
        // The 64 MiB written at import are still shared with the master (not copied).
        let shared = shared_dirty_kib(served_by);
        assert!(
            shared >= 64 * 1024,
            "{model}: worker shares only {shared} KiB"
        );
    }
}

#[test]
fn preload_prefork() {
    preloaded_app_is_imported_by_the_master_and_shared("prefork")
}

#[test]
fn preload_hybrid() {
    preloaded_app_is_imported_by_the_master_and_shared("hybrid")
}

#[test]
fn preload_event_with_workers() {
    preloaded_app_is_imported_by_the_master_and_shared("event")
}

#[test]
fn preload_async_with_workers() {
    preloaded_app_is_imported_by_the_master_and_shared("async")
}

#[test]
fn without_preload_each_worker_imports_the_app() {
    let server = start("prefork", false);
    let workers = children_of(server.pid());
    let (imported_by, served_by) = who(&server);
    assert_eq!(imported_by, served_by);
    assert!(workers.contains(&served_by));
    assert!(shared_dirty_kib(served_by) < 64 * 1024);
}
