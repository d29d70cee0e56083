//! Process settings an operator relies on: daemonising with a pid file, environment for
//! the app, umask, inherited sockets, memory-based recycling.

mod common;

use common::client::get;
use common::python::{apps_dir, wsgi_args};
use common::{children_of, eventually, Server, Site};
use std::process::Command;

#[test]
fn daemon_mode_detaches_and_writes_the_pid_file() {
    let site = Site::new("daemon");
    let dir = site.root.parent().unwrap().to_path_buf();
    let pidfile = dir.join("ih.pid");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let status = Command::new(env!("CARGO_BIN_EXE_ironhorse"))
        .args([
            "-D",
            "--pid",
            &pidfile.display().to_string(),
            "-b",
            &format!("127.0.0.1:{port}"),
            "--root",
            &site.root.display().to_string(),
            "--model",
            "prefork",
            "-w",
            "1",
        ])
        .status()
        .unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "the launching process exits at once"
    );
    assert!(eventually(|| pidfile.exists()));
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // However this test ends, the daemon does not outlive it.
    struct KillOnDrop(i32);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = Command::new("kill")
                .args(["-9", &self.0.to_string()])
                .status();
        }
    }
    let _guard = KillOnDrop(pid);
    let listening = || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    assert!(eventually(listening));
    assert_eq!(get(&format!("127.0.0.1:{port}"), "/hello.txt").status, 200);
    // Detached: a session of its own (the second fork keeps it from ever taking a terminal).
    let session_of = |p: &str| {
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap();
        stat.rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .nth(3)
            .unwrap()
            .to_string()
    };
    assert_ne!(session_of(&pid.to_string()), session_of("self"));
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(eventually(|| !pidfile.exists()), "pid file left behind");
}

/// `--pid FILE` naming a live server: a second start is refused with one line and a non-zero
/// exit, as gunicorn's "Already running on PID"; the first server's file is left alone. A
/// stale file (its pid gone) is replaced as before.
#[test]
fn a_pid_file_naming_a_live_server_refuses_a_second_start() {
    let site = Site::new("pid-live");
    let pidfile = site.root.parent().unwrap().join("ih.pid");
    let pidfile_arg = pidfile.display().to_string();
    let mut args = site.root_arg();
    args.extend(["--model", "prefork", "-w", "1", "--pid", &pidfile_arg].map(String::from));
    let first = Server::start(&args);
    let names =
        |pid: i32| std::fs::read_to_string(&pidfile).is_ok_and(|s| s.trim() == pid.to_string());
    assert!(
        eventually(|| names(first.pid())),
        "the first server wrote no pid file"
    );
    let mut second = vec!["-b".to_string(), "127.0.0.1:0".to_string()];
    second.extend(args.iter().cloned());
    let (code, err) = common::run_to_exit(&second);
    assert!(
        code.is_some_and(|c| c != 0),
        "a second server started on a live pid file: {code:?} {err}"
    );
    assert!(
        err.contains(&format!("Already running on PID {}", first.pid())),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(names(first.pid()), "the refused start touched the pid file");
    assert_eq!(first.stop(common::HUNG), Some(0));
    // A stale file: the pid of a process that has exited.
    let mut gone = Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    std::fs::write(&pidfile, format!("{}\n", gone.id())).unwrap();
    let third = Server::start(&args);
    assert!(
        eventually(|| names(third.pid())),
        "a stale pid file was not replaced: {:?}",
        std::fs::read_to_string(&pidfile)
    );
}

#[test]
fn env_settings_reach_the_app_and_umask_applies() {
    let mut args = wsgi_args("event", "env_app:application", &apps_dir());
    args.extend(["-e", "IH_GREETING=hello there", "--umask", "027"].map(String::from));
    let server = Server::start(&args);
    let r = get(&server.addr, "/");
    assert_eq!(r.text(), "hello there 0o27");
}

#[test]
fn an_inherited_descriptor_is_served_with_fd_bind() {
    let site = Site::new("fdbind");
    // A launcher opens the socket and execs ironhorse with it at fd 5, as `-b fd://5`.
    let launcher = "import os,sys,socket; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(16); print(s.getsockname()[1], flush=True); os.dup2(s.fileno(), 5); os.set_inheritable(5, True); os.execv(sys.argv[1], sys.argv[1:])";
    let mut child = Command::new("python3")
        .args([
            "-c",
            launcher,
            env!("CARGO_BIN_EXE_ironhorse"),
            "-b",
            "fd://5",
            "--root",
            &site.root.display().to_string(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let addr = format!("127.0.0.1:{}", line.trim());
    assert!(eventually(|| std::net::TcpStream::connect(&addr).is_ok()));
    assert_eq!(get(&addr, "/hello.txt").status, 200);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn workers_over_the_memory_limit_are_recycled_without_failing_requests() {
    let site = Site::new("memlimit");
    let mut args: Vec<String> = ["--model", "prefork", "-w", "2", "--max-worker-memory", "1K"]
        .map(String::from)
        .to_vec();
    args.extend(site.root_arg());
    let server = Server::start(&args);
    assert!(eventually(|| !children_of(server.pid()).is_empty()));
    let first = children_of(server.pid());
    assert!(
        server.log_contains("--max-worker-memory"),
        "{}",
        server.log_text()
    );
    // Every worker is over a 1 KiB limit: they keep being replaced, and requests keep working.
    assert!(eventually(|| children_of(server.pid()).is_disjoint(&first)));
    for _ in 0..20 {
        assert_eq!(get(&server.addr, "/hello.txt").status, 200);
    }
    assert!(!server.log_text().contains("died"), "{}", server.log_text());
}

#[test]
fn process_names_show_role_and_model() {
    let site = Site::new("names");
    let mut args: Vec<String> = ["--model", "hybrid", "-w", "2", "-n", "shop"]
        .map(String::from)
        .to_vec();
    args.extend(site.root_arg());
    let server = Server::start(&args);
    assert!(eventually(|| children_of(server.pid()).len() == 2));
    let comm = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    assert_eq!(comm(server.pid()), "shop:master");
    // A worker names itself just after the fork: until then it shows its master's name.
    let mut names = Vec::new();
    assert!(
        eventually(|| {
            names = children_of(server.pid()).into_iter().map(comm).collect();
            names.len() == 2 && names.iter().all(|n| n == "shop:w:hybrid")
        }),
        "{names:?}"
    );
}

/// The uid in `/proc/PID/status` (real, effective, saved, fs: the first).
fn uid_of(pid: i32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `--user`: log files are opened before the switch, as gunicorn's master opens them, so a
/// log directory only root may write to (/var/log) works; then every process runs as the
/// user. Needs root and the `nobody` user (skipped otherwise).
#[test]
fn user_switch_after_the_log_files_are_open() {
    let nobody = Command::new("id").args(["-u", "nobody"]).output().ok();
    let nobody: Option<u32> =
        nobody.and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok());
    let (Some(nobody), true) = (nobody, uid_of(std::process::id() as i32) == Some(0)) else {
        eprintln!("skipped: needs root and a user named nobody");
        return;
    };
    let site = Site::new("user-switch");
    let logs = common::temp_path("user-switch-logs");
    std::fs::create_dir_all(&logs).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&logs, std::fs::Permissions::from_mode(0o700)).unwrap();
    let log = logs.join("access.log");
    let mut args = common::model_args("prefork");
    args.extend(site.root_arg());
    args.extend([
        "--user".into(),
        "nobody".into(),
        "--access-logfile".into(),
        log.display().to_string(),
    ]);
    let server = Server::start(&args);
    assert_eq!(get(&server.addr, "/hello.txt").status, 200);
    let logged = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        eventually(|| logged().contains("GET /hello.txt")),
        "the access log: {:?}\n{}",
        logged(),
        server.log_text()
    );
    assert_eq!(uid_of(server.pid()), Some(nobody), "the master");
    let workers = children_of(server.pid());
    assert!(!workers.is_empty());
    for worker in workers {
        assert_eq!(uid_of(worker), Some(nobody), "worker {worker}");
    }
    let _ = std::fs::remove_dir_all(&logs);
}
