//! The master under load, with real signals: every test runs a bounded loopback load and
//! asserts that no request failed while workers came and went.

mod common;

use common::load::Load;
use common::python::{apps_dir, wsgi_args};
use common::{children_of as workers_of, eventually, Server, Site};
use std::process::Command;

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
    for model in common::models_with_workers() {
        let site = Site::new("hup");
        let server = static_server(&site, &["--model", model, "-w", "2"]);
        assert!(eventually(|| workers_of(server.pid()).len() == 2));
        let before = workers_of(server.pid());
        let load = Load::start(&server.addr, "/hello.txt", 4);
        assert!(
            load.wait_for_more(50),
            "{model}: the load did not get going"
        );
        server.signal(1);
        let replaced = eventually(|| {
            let now = workers_of(server.pid());
            now.len() == 2 && now.is_disjoint(&before)
        });
        // The new workers serve the load on.
        assert!(load.wait_for_more(60), "{model}: the load stalled");
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
fn a_killed_worker_is_replaced_and_others_are_unaffected() {
    let site = Site::new("kill9");
    let server = static_server(&site, &["--model", "prefork", "-w", "3"]);
    assert!(eventually(|| workers_of(server.pid()).len() == 3));
    // A client on each of two untouched workers… we cannot pick workers, so: keep a load
    // running and count only failures beyond the connection the victim was serving.
    let load = Load::start(&server.addr, "/hello.txt", 2);
    assert!(load.wait_for_more(20), "the load did not get going");
    let victim = *workers_of(server.pid()).iter().next().unwrap();
    kill(victim, "9");
    let replaced = eventually(|| {
        let now = workers_of(server.pid());
        now.len() == 3 && !now.contains(&victim)
    });
    assert!(load.wait_for_more(50), "the load stalled");
    let report = load.stop();
    assert!(replaced, "not replaced: {:?}", workers_of(server.pid()));
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
    assert!(eventually(|| workers_of(server.pid()).len() == 2));
    let first = workers_of(server.pid());
    let load = Load::start(&server.addr, "/hello.txt", 3);
    let recycled = eventually(|| load.ok_so_far() > 600);
    let report = load.stop();
    assert!(recycled, "load too slow: {report:?}");
    assert!(eventually(|| workers_of(server.pid()).len() == 2));
    assert!(
        workers_of(server.pid()).is_disjoint(&first),
        "workers were not recycled"
    );
    assert_eq!(report.failed, 0, "{:?}", report.errors);
    // Every recycled worker was reaped before its successor started, so what the master
    // logged about them precedes its answer to a TTIN: once that line is read, all is.
    server.signal(21);
    assert!(server.log_contains("SIGTTIN"), "{}", server.log_text());
    assert!(
        !server.log_text().contains("died"),
        "a recycled worker was reported as a death:\n{}",
        server.log_text()
    );
}

#[test]
fn a_worker_stuck_in_a_call_is_aborted_by_the_heartbeat_timeout() {
    let mut args = wsgi_args("prefork", "stuck_app:application", &apps_dir());
    // (--timeout counts from a worker's start, its import included: long enough for that on
    // a loaded machine, where two seconds were seen to pass before a worker was ready.)
    args.extend(["--timeout", "5"].map(String::from));
    let server = Server::start(&args);
    assert!(eventually(|| workers_of(server.pid()).len() == 2));
    let before = workers_of(server.pid());
    let addr = server.addr.clone();
    let started = common::temp_path("stuck-started");
    let request = format!(
        "GET /stuck?started={} HTTP/1.1\r\nHost: t\r\n\r\n",
        started.display()
    );
    let stuck = std::thread::spawn(move || {
        let mut conn = common::client::Conn::open(&addr);
        conn.send(request.as_bytes());
        // The app sleeps 60 s: an answer (or the client's read timeout) means no abort.
        conn.try_response("GET").map(|r| r.status)
    });
    assert!(
        eventually(|| started.exists()),
        "the stuck request never reached the app"
    );
    // The other worker still answers.
    assert_eq!(common::client::get(&server.addr, "/").status, 200);
    let answer = stuck.join().unwrap();
    let _ = std::fs::remove_file(&started);
    assert!(
        answer.is_none(),
        "a stuck request should end with a closed connection, got {answer:?}"
    );
    assert!(eventually(
        || workers_of(server.pid()).len() == 2 && workers_of(server.pid()) != before
    ));
    assert!(
        server.log_contains("silent") || server.log_contains("heartbeat timeout"),
        "{}",
        server.log_text()
    );
}

/// A worker aborted by `--timeout` leaves no core file, even where core dumps are allowed
/// (`ulimit -c unlimited`): one core of a whole Python worker per stuck request could fill a
/// disk. The server runs in an empty directory, where this machine's `core_pattern` (a plain
/// file name) makes the kernel write cores of its processes.
#[test]
fn a_worker_aborted_by_the_timeout_dumps_no_core() {
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    let pattern = pattern.trim();
    if pattern.starts_with('|') || pattern.contains('/') || pattern.is_empty() {
        // Cores go to a handler or elsewhere: there is no file here to look for.
        eprintln!("skipped: core_pattern {pattern:?} does not write into the working directory");
        return;
    }
    let cwd = common::temp_path("no-core");
    std::fs::create_dir_all(&cwd).unwrap();
    let args = [
        "--model",
        "prefork",
        "stuck_app:application",
        "--pythonpath",
        &apps_dir().display().to_string(),
        "-w",
        "1",
        // Counted from the worker's start, its import included (see the test above).
        "--timeout",
        "5",
    ]
    .map(String::from);
    let server = Server::start_in(&cwd, "ulimit -c unlimited", &args);
    let started = cwd.join("stuck-started");
    let request = format!(
        "GET /stuck?started={} HTTP/1.1\r\nHost: t\r\n\r\n",
        started.display()
    );
    let addr = server.addr.clone();
    let stuck = std::thread::spawn(move || {
        let mut conn = common::client::Conn::open(&addr);
        conn.send(request.as_bytes());
        conn.try_response("GET").map(|r| r.status)
    });
    assert!(
        eventually(|| started.exists()),
        "the stuck request never reached the app"
    );
    assert!(
        server.log_contains("(--timeout 5s): aborting it"),
        "{}",
        server.log_text()
    );
    let log = server.log_text();
    let victim = log
        .split("] worker ")
        .find_map(|rest| rest.split_once(" silent for "))
        .map(|(pid, _)| pid.to_string())
        .unwrap_or_else(|| panic!("no aborted worker in {log}"));
    // Reaped: any core file of its is written whole by now (the kernel dumps before the exit).
    let reaped = server.log_contains(&format!("worker {victim} died"))
        || server.log_contains(&format!("worker {victim} killed"));
    assert!(reaped, "{}", server.log_text());
    let _ = stuck.join();
    let cores: Vec<_> = std::fs::read_dir(&cwd)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("core"))
        .collect();
    let _ = std::fs::remove_dir_all(&cwd);
    assert!(
        cores.is_empty(),
        "the aborted worker dumped core: {cores:?}"
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
    assert!(eventually(
        || std::fs::read_to_string(&pidfile).is_ok_and(|s| s.trim() == old.to_string())
    ));
    let load = Load::start(&server.addr, "/hello.txt", 4);
    assert!(load.wait_for_more(50), "the load did not get going");
    server.signal(12); // USR2
    let pidfile2 = pidfile.with_extension("pid.2");
    assert!(
        eventually(
            || std::fs::read_to_string(&pidfile2).is_ok_and(|s| s.trim().parse::<i32>().is_ok())
        ),
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
        eventually(|| workers_of(new).len() == 2),
        "the new master's workers did not start"
    );
    // Old and new serve side by side; then the operator retires the old master.
    assert!(load.wait_for_more(60), "the load stalled");
    kill(old, "WINCH");
    // The new master is a child of the old one too; only the workers must go.
    assert!(eventually(|| workers_of(old).iter().all(|p| *p == new)));
    kill(old, "TERM");
    let took_over =
        eventually(|| std::fs::read_to_string(&pidfile).is_ok_and(|s| s.trim() == new.to_string()));
    // The new master serves the load on alone.
    assert!(load.wait_for_more(50), "the load stalled");
    let report = load.stop();
    kill(new, "TERM");
    assert!(eventually(|| !std::path::Path::new(&format!(
        "/proc/{new}"
    ))
    .exists()
        || workers_of(new).is_empty()));
    assert!(
        took_over,
        "the pid file does not name the new master: {:?}",
        std::fs::read_to_string(&pidfile)
    );
    assert_eq!(report.failed, 0, "{:?}", report.errors);
    assert!(report.ok > 100, "{report:?}");
}

/// Sends `USR2` to `server`'s master, the first of the test: the new master's pid, once
/// its workers run (so its signal handling is in place).
fn upgraded(server: &Server) -> i32 {
    server.signal(12); // USR2
    assert!(
        eventually(|| new_masters_in(&server.log_text()).len() == 1),
        "no new master: {}",
        server.log_text()
    );
    let new = new_masters_in(&server.log_text())[0];
    assert!(
        eventually(|| !workers_of(new).is_empty()),
        "the new master did not start its workers"
    );
    new
}

/// The pids of the new masters a master's log says `USR2` started.
fn new_masters_in(log: &str) -> Vec<i32> {
    log.lines()
        .filter_map(|l| l.split("USR2: started a new master ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect()
}

/// However a test ends, no new master started by `USR2` outlives it (each one logs into the
/// server's stderr, which it inherited).
struct StopMasters<'a>(&'a Server);

impl Drop for StopMasters<'_> {
    fn drop(&mut self) {
        for pid in new_masters_in(&self.0.log_text()) {
            kill(pid, "TERM");
        }
    }
}

/// A second `USR2` while the first one's new master runs must not start a third master (it
/// would take the same sockets and pid file): it is ignored with a warning, as gunicorn does.
/// Once that new master is gone, `USR2` starts one again.
#[test]
fn a_repeated_usr2_is_ignored_while_the_new_master_runs() {
    let site = Site::new("usr2-twice");
    let server = static_server(&site, &["--model", "prefork", "-w", "1"]);
    let old = server.pid();
    let _guard = StopMasters(&server);
    let new = upgraded(&server);
    server.signal(12); // USR2 again, while the new master runs
    assert!(
        server.log_contains(&format!("USR2 ignored: the new master {new}")),
        "the second USR2 was not ignored: {}",
        server.log_text()
    );
    assert_eq!(
        new_masters_in(&server.log_text()),
        [new],
        "{}",
        server.log_text()
    );
    assert_eq!(
        workers_of(old)
            .iter()
            .filter(|p| !workers_of(**p).is_empty())
            .count(),
        1,
        "the old master has one new master among its children"
    );
    // The new master gone, an upgrade may start again.
    kill(new, "TERM");
    assert!(server.log_contains(&format!("the new master {new} exited")));
    server.signal(12);
    assert!(
        eventually(|| new_masters_in(&server.log_text()).len() == 2),
        "USR2 after the new master exited started none: {}",
        server.log_text()
    );
}

/// `USR2` sent to the new master while the old master that started it still runs (the
/// operator has not retired it yet) is ignored with a warning, as gunicorn ignores it while
/// its parent master runs: a third master would take the sockets and `PATH.2` meanwhile.
/// Once the old master is gone, the new one upgrades on `USR2`.
#[test]
fn usr2_to_a_new_master_is_ignored_while_its_old_master_runs() {
    let site = Site::new("usr2-child");
    let server = static_server(&site, &["--model", "prefork", "-w", "1"]);
    let old = server.pid();
    let _guard = StopMasters(&server);
    let new = upgraded(&server);
    kill(new, "USR2");
    assert!(
        server.log_contains(&format!(
            "[{new}] [WARNING] USR2 ignored: the old master {old} that started this one is still running"
        )),
        "USR2 to the new master was not ignored: {}",
        server.log_text()
    );
    assert_eq!(
        new_masters_in(&server.log_text()),
        [new],
        "{}",
        server.log_text()
    );
    // The old master retired, the new one may upgrade.
    kill(old, "TERM");
    assert!(
        eventually(|| !std::path::Path::new(&format!("/proc/{old}")).exists()
            || std::fs::read_to_string(format!("/proc/{old}/stat"))
                .is_ok_and(|s| s.contains(") Z "))),
        "the old master did not exit"
    );
    kill(new, "USR2");
    assert!(
        eventually(|| new_masters_in(&server.log_text()).len() == 2),
        "USR2 after the old master exited started no master: {}",
        server.log_text()
    );
}

/// The pid a pid file names, once it names one.
fn pid_in(path: &std::path::Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The session id of process `pid` (field 6 of `/proc/PID/stat`).
fn session_of(pid: i32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields = stat.rsplit_once(')').unwrap().1;
    fields.split_whitespace().nth(3).unwrap().to_string()
}

/// `USR2` under `--daemon`: the new master does not detach again (it is detached already,
/// in the old master's session), so it stays the old master's child, and a second `USR2`
/// to the old master is ignored while it runs. Daemonized again, it left the old master at
/// once, which took it for gone and started another master on the next `USR2`.
#[test]
fn usr2_under_daemon_keeps_the_new_master_a_child_of_the_old_one() {
    let site = Site::new("usr2-daemon");
    let dir = site.root.parent().unwrap().to_path_buf();
    let (pidfile, log) = (dir.join("ih.pid"), dir.join("error.log"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let status = Command::new(env!("CARGO_BIN_EXE_ironhorse"))
        .args(["-D", "--pid", &pidfile.display().to_string()])
        .args(["--error-logfile", &log.display().to_string()])
        .args(["-b", &format!("127.0.0.1:{port}")])
        .args(["--root", &site.root.display().to_string()])
        .args(["--model", "prefork", "-w", "1"])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0), "the launcher exits at once");
    assert!(eventually(|| pid_in(&pidfile).is_some()));
    let old = pid_in(&pidfile).unwrap();
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let pidfile2 = pidfile.with_extension("pid.2");
    // However this test ends, no master outlives it: those the old master started, the one
    // that wrote PATH.2 (a daemonized one is none of those), and the old one.
    let masters = || {
        let mut pids = new_masters_in(&log_text());
        pids.extend(pid_in(&pidfile2));
        pids.push(old);
        pids
    };
    struct StopAll<'a>(&'a dyn Fn() -> Vec<i32>);
    impl Drop for StopAll<'_> {
        fn drop(&mut self) {
            for pid in (self.0)() {
                kill(pid, "TERM");
            }
        }
    }
    let _guard = StopAll(&masters);
    assert!(
        eventually(|| !workers_of(old).is_empty()),
        "the daemon started no worker: {}",
        log_text()
    );
    kill(old, "USR2");
    assert!(
        eventually(|| pid_in(&pidfile2).is_some()),
        "the new master wrote no {}: {}",
        pidfile2.display(),
        log_text()
    );
    let new = pid_in(&pidfile2).unwrap();
    assert!(
        eventually(|| !workers_of(new).is_empty()),
        "the new master did not start its workers: {}",
        log_text()
    );
    assert!(
        workers_of(old).contains(&new),
        "the new master {new} is not the old master's child: {}",
        log_text()
    );
    assert_eq!(
        session_of(new),
        session_of(old),
        "detached as the old one is"
    );
    kill(old, "USR2");
    assert!(
        eventually(|| log_text().contains(&format!("USR2 ignored: the new master {new}"))),
        "the second USR2 was not ignored: {}",
        log_text()
    );
    assert_eq!(new_masters_in(&log_text()), [new], "{}", log_text());
}

#[test]
fn ttin_ttou_and_winch_set_the_worker_count() {
    let site = Site::new("ttin");
    let server = static_server(&site, &["--model", "prefork", "-w", "2"]);
    assert!(eventually(|| workers_of(server.pid()).len() == 2));
    // The kernel merges a signal sent while the same one is still pending (README: "Every
    // signal delivered counts"), so each TTIN is let land before the next, as a script must.
    server.signal(21);
    assert!(eventually(|| workers_of(server.pid()).len() == 3));
    server.signal(21);
    assert!(eventually(|| workers_of(server.pid()).len() == 4));
    server.signal(22);
    assert!(eventually(|| workers_of(server.pid()).len() == 3));
    server.signal(28); // WINCH
    assert!(eventually(|| workers_of(server.pid()).is_empty()));
    server.signal(21);
    assert!(eventually(|| workers_of(server.pid()).len() == 1));
}

/// A master in a terminal: a window resize (WINCH) must not stop its workers. The server runs
/// on a pseudo-terminal made by Python's `pty`, which sends WINCH as a resize would and relays
/// the master's log line about it.
#[test]
fn winch_from_a_terminal_resize_leaves_the_workers_alone() {
    use std::io::{BufRead, Write};
    let site = Site::new("winch-tty");
    let mut args = vec![
        env!("CARGO_BIN_EXE_ironhorse").to_string(),
        "--model".into(),
        "prefork".into(),
        "-w".into(),
        "2".into(),
        "-b".into(),
        "127.0.0.1:0".into(),
    ];
    args.extend(site.root_arg());
    let script = r#"
import os, pty, select, signal, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
print(pid, flush=True)
seen = b""
def wait_for(needle):
    global seen
    deadline = time.monotonic() + 60
    while needle not in seen and time.monotonic() < deadline:
        if select.select([fd], [], [], 1)[0]:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
    return needle in seen
wait_for(b"listening on")
if sys.stdin.readline().strip() == "winch":
    start = len(seen)
    os.kill(pid, signal.SIGWINCH)
    wait_for(b"SIGWINCH")
    line = next((l for l in seen[start:].splitlines() if b"SIGWINCH" in l), b"none")
    print(line.decode(errors="replace"), flush=True)
    sys.stdin.readline()
os.kill(pid, signal.SIGTERM)
os.waitpid(pid, 0)
"#;
    let mut relay = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(&args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut out = std::io::BufReader::new(relay.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let master: i32 = line.trim().parse().unwrap();
    assert!(
        eventually(|| workers_of(master).len() == 2),
        "workers started"
    );
    let before = workers_of(master);
    let mut stdin = relay.stdin.take().unwrap();
    writeln!(stdin, "winch").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    // The master handled the signal (it logged so), and kept its workers.
    let after = workers_of(master);
    writeln!(stdin, "done").unwrap();
    drop(stdin);
    let _ = relay.wait();
    assert!(line.contains("SIGWINCH ignored"), "{line}");
    assert_eq!(after, before, "the resize stopped workers");
}

/// A keep-alive client of workers that retire (`--max-requests`): each worker's last response
/// says `Connection: close`, so the client moves to a fresh connection; no request meets a
/// connection closed under it without warning.
#[test]
fn retiring_workers_say_connection_close_to_keep_alive_clients() {
    use std::io::{Read, Write};
    for model in common::models_with_workers() {
        let site = Site::new("retire");
        let server = static_server(&site, &["--model", model, "-w", "2", "--max-requests", "7"]);
        let mut conn: Option<std::net::TcpStream> = None;
        let (mut closes, mut failures) = (0, Vec::new());
        for i in 0..60 {
            let stream = conn.get_or_insert_with(|| {
                let s = std::net::TcpStream::connect(&server.addr).unwrap();
                s.set_read_timeout(Some(common::HUNG)).unwrap();
                s
            });
            let sent = stream.write_all(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
            // One response: its head, then the Content-Length bytes of its body.
            let mut reply = Vec::new();
            let mut byte = [0u8; 1];
            let complete = sent.is_ok()
                && loop {
                    if reply.ends_with(b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&reply).to_ascii_lowercase();
                        let len: usize = head
                            .split("content-length: ")
                            .nth(1)
                            .and_then(|v| v.split("\r\n").next())
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        let mut body = vec![0u8; len];
                        break stream.read_exact(&mut body).is_ok();
                    }
                    match stream.read(&mut byte) {
                        Ok(1) => reply.push(byte[0]),
                        _ => break false,
                    }
                };
            if !complete {
                failures.push(format!(
                    "request {i}: the connection ended without a warning"
                ));
                conn = None;
                continue;
            }
            if String::from_utf8_lossy(&reply).contains("Connection: close") {
                closes += 1;
                conn = None;
            }
        }
        assert!(
            failures.is_empty(),
            "{model}: {failures:?}\n{}",
            server.log_text()
        );
        assert!(
            closes >= 5,
            "{model}: workers retired {closes} times, each saying so"
        );
    }
}

/// One `GET /hello.txt` on a new connection; its status code, if it was answered.
fn get_status(addr: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream
        .write_all(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.get(9..12)?.parse().ok()
}

/// HUP re-reads the config file: a changed `max-requests` reaches the new workers (they
/// retire after one request), and a changed `model` or `backlog`, which a reload cannot
/// apply, is a warning naming it and what would, not part of a "configuration reloaded" line.
#[test]
fn hup_applies_what_it_can_of_a_changed_config_and_names_the_rest() {
    let site = Site::new("hup-config");
    let config = common::temp_path("hup-config.toml");
    std::fs::write(&config, "model = \"prefork\"\nworkers = 2\n").unwrap();
    let server = static_server(&site, &["-c", config.to_str().unwrap()]);
    assert!(eventually(|| workers_of(server.pid()).len() == 2));
    let before = workers_of(server.pid());

    std::fs::write(
        &config,
        "model = \"hybrid\"\nworkers = 2\nmax_requests = 1\nbacklog = 64\n",
    )
    .unwrap();
    server.signal(1);
    assert!(
        server.log_contains(
            "SIGHUP: configuration partly reloaded (applied: max-requests; not applied: backlog, model)"
        ),
        "{}",
        server.log_text()
    );
    assert!(server.log_text().contains(
        "[WARNING] SIGHUP: model changed but a reload does not apply it; it needs a restart or USR2"
    ));
    assert!(server.log_text().contains(
        "[WARNING] SIGHUP: backlog changed but a reload does not apply it; it needs a restart (USR2 keeps the sockets)"
    ));
    assert!(!server.log_text().contains("max-requests changed"));
    // The new workers retire after one request each: requests keep bringing new pids.
    assert!(eventually(|| {
        let now = workers_of(server.pid());
        now.len() == 2 && now.is_disjoint(&before)
    }));
    let reloaded = workers_of(server.pid());
    assert!(
        eventually(|| {
            assert_eq!(get_status(&server.addr), Some(200));
            !workers_of(server.pid()).is_subset(&reloaded)
        }),
        "the new workers did not retire after --max-requests 1; log: {}",
        server.log_text()
    );
    let (code, log) = server.stop_and_read_log();
    assert_eq!(code, Some(0), "{log}");
    // The model's warning is one line per HUP; none claims it reloaded.
    assert_eq!(log.matches("model changed").count(), 1, "{log}");
    let _ = std::fs::remove_file(&config);
}

/// The value the `env_echo_app` workers see for the variable `name` (`-`: unset).
fn env_seen(addr: &str, name: &str) -> String {
    let r = common::client::get(addr, &format!("/{name}"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

/// A config file serving `env_echo_app` with `env` as its `env` list (and `extra` lines).
fn write_env_config(path: &std::path::Path, env: &[&str], extra: &str) {
    let list: Vec<String> = env.iter().map(|e| format!("{e:?}")).collect();
    let text = format!(
        "model = \"prefork\"\nworkers = 2\napp = \"env_echo_app:application\"\nchdir = {:?}\nenv = [{}]\n{extra}",
        apps_dir().display().to_string(),
        list.join(", ")
    );
    std::fs::write(path, text).unwrap();
}

/// HUP applies a changed `env` (as gunicorn's does): each worker it starts sets the new
/// variables, and removes those the old list set, before it imports the app; the line says
/// env was applied.
#[test]
fn hup_applies_a_changed_env_to_the_new_workers() {
    let config = common::temp_path("hup-env.toml");
    write_env_config(&config, &["IH_COLOUR=red", "IH_GONE=here"], "");
    let server = Server::start(&["-c".to_string(), config.display().to_string()]);
    assert!(eventually(|| workers_of(server.pid()).len() == 2));
    assert_eq!(env_seen(&server.addr, "IH_COLOUR"), "red");
    assert_eq!(env_seen(&server.addr, "IH_GONE"), "here");
    let before = workers_of(server.pid());

    write_env_config(&config, &["IH_COLOUR=blue"], "");
    server.signal(1);
    assert!(
        server.log_contains("SIGHUP: configuration reloaded (applied: env)"),
        "{}",
        server.log_text()
    );
    assert!(
        eventually(|| {
            let now = workers_of(server.pid());
            now.len() == 2 && now.is_disjoint(&before)
        }),
        "the workers were not replaced: {}",
        server.log_text()
    );
    for _ in 0..4 {
        assert_eq!(env_seen(&server.addr, "IH_COLOUR"), "blue");
        assert_eq!(env_seen(&server.addr, "IH_GONE"), "-");
    }
    assert!(!server.log_text().contains("env changed"));
    let _ = std::fs::remove_file(&config);
}

/// With `--preload` the app lives in the master, which reads `env` once: a changed `env` is
/// named as not applied, and the workers keep the old value.
#[test]
fn hup_with_preload_names_a_changed_env_as_not_applied() {
    let config = common::temp_path("hup-env-preload.toml");
    write_env_config(&config, &["IH_COLOUR=red"], "preload = true\n");
    let server = Server::start(&["-c".to_string(), config.display().to_string()]);
    assert!(eventually(|| workers_of(server.pid()).len() == 2));
    write_env_config(&config, &["IH_COLOUR=blue"], "preload = true\n");
    server.signal(1);
    assert!(
        server.log_contains("SIGHUP: configuration partly reloaded (no applicable setting changed; not applied: env)"),
        "{}",
        server.log_text()
    );
    assert!(server.log_text().contains(
        "[WARNING] SIGHUP: env changed but a reload does not apply it; it needs a restart or USR2"
    ));
    assert_eq!(env_seen(&server.addr, "IH_COLOUR"), "red");
    let _ = std::fs::remove_file(&config);
}

/// A process serving alone (no master) takes the master's signals: `USR2`'s default action
/// ended it, `TTIN`'s and `TTOU`'s suspended it. Each is one line saying it needs a master,
/// and the server serves on, then stops cleanly.
#[test]
fn usr2_ttin_and_ttou_without_a_master_are_logged_and_ignored() {
    common::for_each_model_alone(|model| {
        let site = Site::new("alone-signals");
        let mut args = common::model_args(model);
        args.extend(site.root_arg());
        let server = Server::start(&args);
        for (signal, line) in [
            ("USR2", "SIGUSR2: a binary upgrade needs a master"),
            ("TTIN", "SIGTTIN: adding a worker needs a master"),
            ("TTOU", "SIGTTOU: removing a worker needs a master"),
        ] {
            kill(server.pid(), signal);
            assert!(server.log_contains(line), "{model}: {}", server.log_text());
            let response = common::client::get(&server.addr, "/hello.txt");
            assert_eq!(response.status, 200, "{model}: after {signal}");
        }
        let (code, log) = server.stop_and_read_log();
        assert_eq!(code, Some(0), "{model}: {log}");
    });
}

/// A process serving alone that drains on a graceful stop closes its listening sockets:
/// a client connecting then is refused at once. Left open (the event loop only stopped
/// watching them), the kernel completed its handshake into the backlog and the client
/// waited, unanswered, for the reset that came when the drain ended.
#[test]
fn a_draining_server_refuses_new_connections() {
    use common::client::Conn;
    use std::io::{Read, Write};
    let models: Vec<&str> = common::models_alone()
        .into_iter()
        .filter(|m| ["thread", "threadpool", "event", "async"].contains(m))
        .collect();
    for model in models {
        let dir = common::temp_path("drain-refuses");
        std::fs::create_dir_all(&dir).unwrap();
        let (gate, record) = (dir.join("gate"), dir.join("record"));
        let mut args = wsgi_args(model, "wsgi_app:application", &apps_dir());
        args.extend(["--graceful-timeout".into(), "10".into()]);
        let server = Server::start(&args);
        // An idle keep-alive client: the server closes it when its drain begins, after
        // closing the listeners (the event this test waits on).
        let mut idle = Conn::open(&server.addr);
        idle.send(b"GET /environ HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(idle.response("GET").status, 200, "{model}");
        // A request in flight, held in the application: the server drains on TERM.
        let mut slow = Conn::open(&server.addr);
        slow.send(
            format!(
                "GET /gate?gate={}&record={} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                gate.display(),
                record.display()
            )
            .as_bytes(),
        );
        assert!(
            eventually(|| std::fs::read_to_string(&record).is_ok_and(|r| r.contains("entered"))),
            "{model}: the gated request did not reach the app"
        );
        server.signal(15);
        assert!(
            idle.is_closed_by_server(),
            "{model}: the idle client stayed"
        );
        match std::net::TcpStream::connect(&server.addr) {
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{model}"),
            Ok(mut late) => {
                // Accepted: then it is answered, not left to be reset when the drain ends.
                late.set_read_timeout(Some(common::HUNG)).unwrap();
                let _ = late
                    .write_all(b"GET /environ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                let mut answer = Vec::new();
                let read = late.read_to_end(&mut answer);
                assert!(
                    answer.starts_with(b"HTTP/1.1 "),
                    "{model}: a connection made while draining was not answered: {read:?}"
                );
            }
        }
        std::fs::write(&gate, b"").unwrap();
        assert_eq!(slow.response("GET").status, 200, "{model}");
        let (code, log) = server.stop_and_read_log();
        assert_eq!(code, Some(0), "{model}: {log}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
