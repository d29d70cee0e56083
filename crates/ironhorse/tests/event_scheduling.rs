//! The event loop stops preempting the application threads it feeds (issue 15): once it has
//! handed a WSGI request to a thread, its own thread (the process's main thread under
//! `--model event`) runs under `SCHED_BATCH`; a loop serving only files keeps the default.

mod common;

use common::client::get;
use common::python::{apps_dir, wsgi_args};
use common::{model_args, Server, Site};

const SCHED_OTHER: u32 = 0;
const SCHED_BATCH: u32 = 3;

/// The scheduling policy of the process's main thread (field 41 of its stat line).
fn main_thread_policy(pid: i32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/stat")).unwrap();
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
