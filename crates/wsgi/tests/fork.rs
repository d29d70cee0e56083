//! The app keeps working in a forked child, even when another thread was running Python
//! at the moment of the fork.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use ironhorse_app::Service;

fn wait_with_timeout(pid: libc::pid_t, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut status = 0;
        // SAFETY: plain waitpid on our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return Some(if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                -1
            });
        }
        if Instant::now() > deadline {
            // SAFETY: killing our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn child_serves_after_fork_while_another_thread_runs_python() {
    let app = Arc::new(load("apps:path"));
    let stop = Arc::new(AtomicBool::new(false));
    let busy = {
        let (app, stop) = (app.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                assert_eq!(get(&app, "/busy").status, 200);
                n += 1;
            }
            n
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    for round in 0..5 {
        app.before_fork();
        // SAFETY: the child only runs the app (Python state made consistent by the fork
        // hooks) and leaves with _exit, never returning into the test harness.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            app.after_fork_child();
            let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let app2 = app.clone();
                let here = get(&app, "/child").body == b"/child";
                let other = std::thread::spawn(move || get(&app2, "/child-thread").body)
                    .join()
                    .map(|b| b == b"/child-thread")
                    .unwrap_or(false);
                here && other
            }))
            .unwrap_or(false);
            // SAFETY: leave the child without running the parent's atexit/TLS machinery.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        app.after_fork_parent();
        assert!(pid > 0);
        assert_eq!(
            wait_with_timeout(pid, Duration::from_secs(20)),
            Some(0),
            "round {round}"
        );
        assert_eq!(get(&app, "/parent").body, b"/parent");
    }
    stop.store(true, Ordering::Relaxed);
    assert!(busy.join().unwrap() > 0);
}
