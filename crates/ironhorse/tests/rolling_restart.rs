//! Scale-out's promise: two ironhorse instances (prefork, two workers each) behind one real
//! nginx upstream (keep-alive, `proxy_next_upstream error timeout http_502`), under a bounded
//! keep-alive client load. One instance is sent HUP (workers replaced one at a time), then
//! TERM, then started again on its port: the client sees no failed request, and nginx's own
//! access log shows every request it answered was a 200.
//!
//! Also the draining instance's part, seen directly: on TERM idle keep-alive connections are
//! closed at once (so a proxy holding them moves on to the other instance) and in-flight
//! requests finish. (The listener closes at TERM too, before any probe could be answered
//! 503: nginx sees connections refused and moves on; Kubernetes needs the `preStop` sleep
//! of deploy/kubernetes to take the pod out of its endpoints first.)

mod common;

use std::collections::HashSet;
use std::path::Path;

use common::client::Conn;
use common::load::Load;
use common::nginx::{self, Nginx};
use common::python::{apps_dir, wsgi_args};
use common::{children_of, eventually, temp_path, Server, HUNG};

fn instance_args() -> Vec<String> {
    let mut args = wsgi_args("prefork", "uwsgi_app:application", &apps_dir());
    args.extend(["--health-path", "/healthz"].map(String::from));
    args
}

fn start_nginx(binary: &Path, upstreams: &[&str]) -> (Nginx, u16, std::path::PathBuf) {
    let dir = nginx::folder("nginx-rolling");
    let port = nginx::free_port();
    let servers: String = upstreams
        .iter()
        .map(|u| format!("server {u} max_fails=1 fail_timeout=2s; "))
        .collect();
    let d = dir.display();
    let conf = format!(
        "{head}  log_format upstreams '$status $upstream_addr';\n  access_log {d}/access.log upstreams;\n\
         upstream app {{ {servers}keepalive 16; }}\n\
         server {{\n    listen 127.0.0.1:{port};\n    location / {{\n\
               proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\";\n\
               proxy_next_upstream error timeout http_502; proxy_next_upstream_tries 0;\n\
         }}\n  }}\n}}\n",
        head = nginx::conf_head(&dir).replace("  access_log off;\n", ""),
    );
    let access = dir.join("access.log");
    (Nginx::start(binary, dir, &conf, &[port]), port, access)
}

/// Waits until none of `old` is among the master's workers (and it has some again).
fn workers_replaced(server: &Server, old: &HashSet<i32>) -> bool {
    eventually(|| {
        let now = children_of(server.pid());
        now.len() >= 2 && now.is_disjoint(old)
    })
}

#[test]
fn two_instances_behind_nginx_restart_without_a_failed_request() {
    let Some(binary) = nginx::binary() else {
        eprintln!("SKIPPED: nginx is not installed and apt-get could not install it");
        return;
    };
    let a = Server::start(&instance_args());
    let b = Server::start(&instance_args());
    let (_nginx, port, access) = start_nginx(&binary, &[&a.addr, &b.addr]);
    let load = Load::start(&format!("127.0.0.1:{port}"), "/env", 4);
    assert!(load.wait_for_more(200), "no load got through");

    // HUP: A's workers are replaced one at a time while the load runs.
    let old = children_of(a.pid());
    a.signal(1);
    assert!(workers_replaced(&a, &old), "{}", a.log_text());
    assert!(load.wait_for_more(200));

    // TERM: A drains and exits; nginx moves to B.
    let a_addr = a.addr.clone();
    assert_eq!(a.stop(HUNG), Some(0), "A did not stop cleanly");
    assert!(load.wait_for_more(200));

    // A again, on its port; nginx takes it back once its failure window passed.
    let mut args = vec!["-b".to_string(), a_addr.clone()];
    args.extend(instance_args());
    let restarted_at = std::fs::metadata(&access).unwrap().len() as usize;
    let a = Server::start_raw(&args);
    assert!(load.wait_for_more(200));
    let served_by_a_again = eventually(|| {
        let log = std::fs::read(&access).unwrap();
        String::from_utf8_lossy(&log[restarted_at..])
            .lines()
            .any(|l| l.ends_with(&format!(" {a_addr}")))
    });
    assert!(
        served_by_a_again,
        "nginx never went back to the restarted instance"
    );

    let report = load.stop();
    assert_eq!(report.failed, 0, "failed requests: {:?}", report.errors);
    // nginx's own record: every answer it gave was a 200, as many as the client counted
    // (lines naming two upstreams are requests nginx retried on the other instance).
    let log = std::fs::read_to_string(&access).unwrap();
    let statuses: Vec<&str> = log.lines().filter_map(|l| l.split(' ').next()).collect();
    assert!(
        statuses.iter().all(|s| *s == "200"),
        "non-200s at nginx: {log}"
    );
    assert!(
        statuses.len() as u64 >= report.ok,
        "{} < {}",
        statuses.len(),
        report.ok
    );
    let retried = log.lines().filter(|l| l.contains(", ")).count();
    eprintln!(
        "{} requests, {retried} retried by nginx on the other instance",
        report.ok
    );
    drop(a);
    drop(b);
}

#[test]
fn a_draining_instance_closes_idle_connections_and_finishes_in_flight_ones() {
    let server = Server::start(&instance_args());
    let release = temp_path("release");
    // In flight when TERM comes: a stream the app ends only when released.
    let mut busy = Conn::open(&server.addr);
    busy.send(
        format!(
            "GET /events?release={} HTTP/1.1\r\nHost: x\r\n\r\n",
            release.display()
        )
        .as_bytes(),
    );
    assert!(busy.wait_for_bytes(b"data: first"));
    // Idle keep-alive connections: one answered a probe, both wait for their next request.
    let mut idle = Conn::open(&server.addr);
    idle.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(idle.response("GET").status, 200, "ready while serving");

    server.signal(15);
    assert!(
        idle.is_closed_by_server(),
        "an idle keep-alive connection stayed open while draining"
    );
    // The in-flight request finishes whole (its last chunk), then the connection closes.
    std::fs::write(&release, "").unwrap();
    assert!(busy.wait_for_bytes(b"data: released\n\n\r\n0\r\n\r\n"));
    assert!(busy.is_closed_by_server());
    let _ = std::fs::remove_file(&release);
    let (code, log) = server.stop_and_read_log();
    assert_eq!(code, Some(0), "{log}");
}
