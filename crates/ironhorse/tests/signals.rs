//! The master under load, with real signals: every test runs a bounded loopback load and
//! asserts that no request failed while workers came and went.

mod common;

use common::load::Load;
use common::python::{apps_dir, wsgi_args};
use common::{children_of as workers_of, wait_for, Server, Site};
use std::process::Command;
use std::time::{Duration, Instant};

fn kill(pid: i32, signal: &str) {
    Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
}

fn static_server(site: &Site, extra: &[&str]) -> Server {
    let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    args.extend(site.root_arg());
    Server::start(&args)
}

#[test]
fn hup_replaces_every_worker_without_failing_a_request() {
    for model in ["prefork", "hybrid", "event"] {
        let site = Site::new("hup");
        let server = static_server(&site, &["--model", model, "-w", "2"]);
        assert!(wait_for(
            || workers_of(server.pid()).len() == 2,
            Duration::from_secs(5)
        ));
        let before = workers_of(server.pid());
        let load = Load::start(&server.addr, "/hello.txt", 4);
        std::thread::sleep(Duration::from_millis(300));
        server.signal(1);
        let replaced = wait_for(
            || {
                let now = workers_of(server.pid());
                now.len() == 2 && now.is_disjoint(&before)
            },
            Duration::from_secs(10),
        );
        std::thread::sleep(Duration::from_millis(300));
        let report = load.stop();
        assert!(
            replaced,
            "{model}: workers not all replaced: before {before:?}, now {:?}",
            workers_of(server.pid())
        );
        assert_eq!(report.failed, 0, "{model}: {:?}", report.errors);
        assert!(
            report.ok > 100,
            "{model}: too little load to mean anything: {report:?}"
        );
    }
}

#[test]
fn a_killed_worker_is_replaced_within_a_second_and_others_are_unaffected() {
    let site = Site::new("kill9");
    let server = static_server(&site, &["--model", "prefork", "-w", "3"]);
    assert!(wait_for(
        || workers_of(server.pid()).len() == 3,
        Duration::from_secs(5)
    ));
    // A client on each of two untouched workers… we cannot pick workers, so: keep a load
    // running and count only failures beyond the connection the victim was serving.
    let load = Load::start(&server.addr, "/hello.txt", 2);
    std::thread::sleep(Duration::from_millis(200));
    let victim = *workers_of(server.pid()).iter().next().unwrap();
    kill(victim, "9");
    let killed_at = Instant::now();
    let replaced = wait_for(
        || {
            let now = workers_of(server.pid());
            now.len() == 3 && !now.contains(&victim)
        },
        Duration::from_secs(1),
    );
    let took = killed_at.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let report = load.stop();
    assert!(replaced, "not replaced within 1 s ({took:?})");
    // The victim may have been serving one of the two load connections mid-request.
    assert!(report.failed <= 1, "{:?}", report.errors);
}

#[test]
fn max_requests_recycles_workers_without_failing_a_request() {
    let site = Site::new("maxreq");
    let server = static_server(
        &site,
        &[
            "--model",
            "prefork",
            "-w",
            "2",
            "--max-requests",
            "100",
            "--max-requests-jitter",
            "20",
        ],
    );
    assert!(wait_for(
        || workers_of(server.pid()).len() == 2,
        Duration::from_secs(5)
    ));
    let first = workers_of(server.pid());
    let load = Load::start(&server.addr, "/hello.txt", 3);
    let recycled = wait_for(|| load.ok_so_far() > 600, Duration::from_secs(20));
    let report = load.stop();
    assert!(recycled, "load too slow: {report:?}");
    assert!(wait_for(
        || workers_of(server.pid()).len() == 2,
        Duration::from_secs(5)
    ));
    assert!(
        workers_of(server.pid()).is_disjoint(&first),
        "workers were not recycled"
    );
    assert_eq!(report.failed, 0, "{:?}", report.errors);
    // Let the buffered error log reach the pipe before checking what it does not say.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !server.log_text().contains("died"),
        "a recycled worker was reported as a death:\n{}",
        server.log_text()
    );
}

#[test]
fn a_worker_stuck_in_a_call_is_aborted_by_the_heartbeat_timeout() {
    let mut args = wsgi_args("prefork", "stuck_app:application", &apps_dir());
    args.extend(["--timeout", "2"].map(String::from));
    let server = Server::start(&args);
    assert!(wait_for(
        || workers_of(server.pid()).len() == 2,
        Duration::from_secs(10)
    ));
    let before = workers_of(server.pid());
    let addr = server.addr.clone();
    let stuck = std::thread::spawn(move || {
        let mut conn = common::client::Conn::open(&addr);
        conn.send(b"GET /stuck HTTP/1.1\r\nHost: t\r\n\r\n");
        let started = Instant::now();
        let answer = conn.try_response("GET");
        (answer.map(|r| r.status), started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    // The other worker still answers.
    assert_eq!(common::client::get(&server.addr, "/").status, 200);
    let (answer, took) = stuck.join().unwrap();
    assert!(
        answer.is_none(),
        "a stuck request should end with a closed connection, got {answer:?}"
    );
    assert!(took < Duration::from_secs(8), "aborted only after {took:?}");
    assert!(wait_for(
        || workers_of(server.pid()).len() == 2 && workers_of(server.pid()) != before,
        Duration::from_secs(5)
    ));
    assert!(
        server.log_contains("heartbeat timeout") || server.log_contains("silent"),
        "{}",
        server.log_text()
    );
}

#[test]
fn usr2_upgrade_then_retiring_the_old_master_fails_no_request() {
    let site = Site::new("usr2");
    let pidfile = site.root.parent().unwrap().join("ih.pid");
    let pidfile_arg = pidfile.display().to_string();
    let server = static_server(
        &site,
        &["--model", "prefork", "-w", "2", "--pid", &pidfile_arg],
    );
    let old = server.pid();
    assert!(wait_for(
        || std::fs::read_to_string(&pidfile).is_ok_and(|s| s.trim() == old.to_string()),
        Duration::from_secs(5)
    ));
    let load = Load::start(&server.addr, "/hello.txt", 4);
    std::thread::sleep(Duration::from_millis(300));
    server.signal(12); // USR2
    let pidfile2 = pidfile.with_extension("pid.2");
    assert!(
        wait_for(|| pidfile2.exists(), Duration::from_secs(10)),
        "the new master wrote no {}",
        pidfile2.display()
    );
    let new: i32 = std::fs::read_to_string(&pidfile2)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_ne!(new, old);
    assert!(
        wait_for(|| workers_of(new).len() == 2, Duration::from_secs(10)),
        "the new master's workers did not start"
    );
    // Old and new serve side by side; then the operator retires the old master.
    std::thread::sleep(Duration::from_millis(500));
    kill(old, "WINCH");
    // The new master is a child of the old one too; only the workers must go.
    assert!(wait_for(
        || workers_of(old).iter().all(|p| *p == new),
        Duration::from_secs(10)
    ));
    kill(old, "TERM");
    let took_over = wait_for(
        || std::fs::read_to_string(&pidfile).is_ok_and(|s| s.trim() == new.to_string()),
        Duration::from_secs(10),
    );
    std::thread::sleep(Duration::from_millis(300));
    let report = load.stop();
    kill(new, "TERM");
    assert!(wait_for(
        || !std::path::Path::new(&format!("/proc/{new}")).exists() || workers_of(new).is_empty(),
        Duration::from_secs(10)
    ));
    assert!(
        took_over,
        "the pid file does not name the new master: {:?}",
        std::fs::read_to_string(&pidfile)
    );
    assert_eq!(report.failed, 0, "{:?}", report.errors);
    assert!(report.ok > 100, "{report:?}");
}

#[test]
fn ttin_ttou_and_winch_set_the_worker_count() {
    let site = Site::new("ttin");
    let server = static_server(&site, &["--model", "prefork", "-w", "2"]);
    assert!(wait_for(
        || workers_of(server.pid()).len() == 2,
        Duration::from_secs(5)
    ));
    server.signal(21);
    server.signal(21);
    assert!(wait_for(
        || workers_of(server.pid()).len() == 4,
        Duration::from_secs(5)
    ));
    server.signal(22);
    assert!(wait_for(
        || workers_of(server.pid()).len() == 3,
        Duration::from_secs(5)
    ));
    server.signal(28); // WINCH
    assert!(wait_for(
        || workers_of(server.pid()).is_empty(),
        Duration::from_secs(5)
    ));
    server.signal(21);
    assert!(wait_for(
        || workers_of(server.pid()).len() == 1,
        Duration::from_secs(5)
    ));
}
