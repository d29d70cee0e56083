//! The event loop stops preempting the application threads it feeds (issue 15): once it has
//! handed a WSGI request to a thread, its own thread (the process's main thread under
//! `--model event`) runs under `SCHED_BATCH`; a loop serving only files keeps the default.
//! The same for the threadpool's watcher and the tokio runtime thread of `async`; a loop
//! running the app itself (`--threads 0`) has nobody to yield to. The ASGI loop thread yields
//! to its driver in turn, from its start (the two hand batches both ways).

mod common;

use common::client::get;
use common::python::{apps_dir, wsgi_args};
use common::{model_args, Server, Site};

const SCHED_OTHER: u32 = 0;
const SCHED_BATCH: u32 = 3;

/// The scheduling policy of the process's main thread (field 41 of its stat line).
fn main_thread_policy(pid: i32) -> u32 {
    thread_policy(pid, pid)
}

/// The scheduling policy of thread `tid` of process `pid`.
fn thread_policy(pid: i32, tid: i32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).unwrap();
    let after_name = stat.rsplit_once(')').unwrap().1;
    after_name
        .split_whitespace()
        .nth(38)
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn event_loop_yields_to_the_app_threads_once_it_hands_them_a_request() {
    let server = Server::start(&wsgi_args("event", "wsgi_app:application", &apps_dir()));
    assert_eq!(main_thread_policy(server.pid()), SCHED_OTHER);
    let r = get(&server.addr, "/lazy");
    assert_eq!(r.status, 201, "{}", server.log_text());
    assert!(
        common::eventually(|| main_thread_policy(server.pid()) == SCHED_BATCH),
        "policy {}",
        main_thread_policy(server.pid())
    );
}

#[test]
fn event_loop_serving_only_files_keeps_the_default_policy() {
    let site = Site::new("event-scheduling");
    let mut args = model_args("event");
    args.extend(site.root_arg());
    let server = Server::start(&args);
    for _ in 0..3 {
        assert_eq!(get(&server.addr, "/").status, 200);
    }
    assert_eq!(main_thread_policy(server.pid()), SCHED_OTHER);
}

#[test]
fn async_runtime_thread_yields_to_the_app_threads_once_it_hands_them_a_request() {
    // One runtime thread (the default): a current-thread runtime on the main thread.
    let server = Server::start(&wsgi_args("async", "wsgi_app:application", &apps_dir()));
    let pid = server.pid();
    batch_after_a_request(&server, pid);
}

/// Thread `tid` runs under the default policy until the server answered a WSGI request,
/// then under `SCHED_BATCH`.
fn batch_after_a_request(server: &Server, tid: i32) {
    let pid = server.pid();
    assert_eq!(thread_policy(pid, tid), SCHED_OTHER);
    let r = get(&server.addr, "/lazy");
    assert_eq!(r.status, 201, "{}", server.log_text());
    assert!(
        common::eventually(|| thread_policy(pid, tid) == SCHED_BATCH),
        "policy {}",
        thread_policy(pid, tid)
    );
}

/// The thread of `pid` named `name` (waited for: the driver starts its threads after the
/// process announced its address).
fn thread_named(pid: i32, name: &str) -> i32 {
    let find = || {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .ok()?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .find(|tid| {
                std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
                    .is_ok_and(|comm| comm.trim() == name)
            })
    };
    assert!(
        common::eventually(|| find().is_some()),
        "no thread {name} in {pid}"
    );
    find().unwrap()
}

#[test]
fn threadpool_watcher_yields_to_the_pool_once_it_hands_it_a_request() {
    let server = Server::start(&wsgi_args(
        "threadpool",
        "wsgi_app:application",
        &apps_dir(),
    ));
    let watcher = thread_named(server.pid(), "ih-keepalive");
    batch_after_a_request(&server, watcher);
}

#[test]
fn event_loop_running_the_app_itself_keeps_the_default_policy() {
    // `--threads 0`: nothing to yield to.
    let server = Server::start(&wsgi_args(
        "event-inline",
        "wsgi_app:application",
        &apps_dir(),
    ));
    for _ in 0..3 {
        assert_eq!(
            get(&server.addr, "/lazy").status,
            201,
            "{}",
            server.log_text()
        );
    }
    assert_eq!(main_thread_policy(server.pid()), SCHED_OTHER);
}

#[test]
fn asgi_loop_thread_yields_from_its_start_and_the_event_loop_once_woken_by_it() {
    for model in common::models() {
        if !matches!(model, "event" | "async") {
            continue;
        }
        let server = Server::start(&wsgi_args(model, "asgi_plain:app", &apps_dir()));
        let pid = server.pid();
        let asgi_loop = thread_named(pid, "ih-asgi-loop");
        assert!(
            common::eventually(|| thread_policy(pid, asgi_loop) == SCHED_BATCH),
            "{model}: loop policy {}",
            thread_policy(pid, asgi_loop)
        );
        let r = get(&server.addr, "/");
        assert_eq!(r.status, 200, "{model}: {}", server.log_text());
        assert_eq!(r.body, b"plain asgi", "{model}");
        if model == "event" {
            // The driver, woken by the loop, yields to it.
            assert!(
                common::eventually(|| main_thread_policy(pid) == SCHED_BATCH),
                "driver policy {}",
                main_thread_policy(pid)
            );
        }
    }
}
