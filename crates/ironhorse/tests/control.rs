//! The control socket (`--control-socket`) and its client (`ironhorse ctl`), against the
//! real binary: every command under every model that runs a master, two clients at once,
//! the file's mode, a stale socket at start, a live one refused.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::client::get;
use common::{children_of, eventually, run_to_exit, temp_path, Server, Site, HUNG};
use serde_json::Value;

/// Runs `ironhorse ctl --socket PATH ARGS`: (exit code, stdout, stderr).
fn ctl(socket: &Path, args: &[&str]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ironhorse"))
        .arg("ctl")
        .arg("--socket")
        .arg(socket)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The client bounds its own wait; this only catches a hang.
    assert!(
        eventually(|| matches!(child.try_wait(), Ok(Some(_)))),
        "ironhorse ctl {args:?} hung"
    );
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `ctl --json ARGS`, which must succeed: the answer.
fn ask(socket: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (code, out, err) = ctl(socket, &all);
    assert_eq!(code, 0, "ctl {args:?}: {out} {err}");
    serde_json::from_str(&out).unwrap()
}

/// A refused command: exit 1 and exactly one line on stderr, which is returned.
fn refused(socket: &Path, args: &[&str]) -> String {
    let (code, out, err) = ctl(socket, args);
    assert_eq!(code, 1, "ctl {args:?} should fail: {out} {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    err
}

fn worker_pids(answer: &Value) -> Vec<i64> {
    answer["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["pid"].as_i64().unwrap())
        .collect()
}

/// Waits until `n` workers are ready and nothing else is running; their pids.
fn ready_workers(socket: &Path, n: usize) -> Vec<i64> {
    let mut last = Value::Null;
    let settled = eventually(|| {
        last = ask(socket, &["workers"]);
        let workers = last["workers"].as_array().unwrap();
        workers.len() == n && workers.iter().all(|w| w["state"] == "ready")
    });
    assert!(settled, "wanted {n} ready workers: {last}");
    worker_pids(&last)
}

fn start(model: &str, site: &Site, socket: &Path) -> Server {
    let mut args: Vec<String> = ["--model", model, "-w", "2", "--control-socket"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(socket.display().to_string());
    args.extend(site.root_arg());
    Server::start(&args)
}

fn wait_exit(server: &mut Server) -> Option<i32> {
    let mut code = None;
    eventually(|| match server.child.try_wait() {
        Ok(Some(status)) => {
            code = status.code();
            true
        }
        _ => false,
    });
    code
}

#[test]
fn every_command_works_under_every_model_with_a_master() {
    for model in common::models_with_workers() {
        eprintln!("--- model {model}");
        let site = Site::new("ctl");
        let socket = temp_path("ctl.sock");
        let mut server = start(model, &site, &socket);
        let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{model}: socket mode {mode:o}");

        let status = ask(&socket, &["status"]);
        assert_eq!(status["master"]["pid"], server.pid(), "{model}: {status}");
        assert_eq!(status["master"]["model"], model);
        assert_eq!(status["master"]["workers_target"], 2);
        let pids = ready_workers(&socket, 2);
        let children: Vec<i64> = children_of(server.pid())
            .into_iter()
            .map(i64::from)
            .collect();
        for pid in &pids {
            assert!(
                children.contains(pid),
                "{model}: {pid} not a child: {children:?}"
            );
        }
        for w in status["workers"].as_array().unwrap() {
            assert!(w["age_s"].as_f64().unwrap() >= 0.0);
            assert!(w["rss_bytes"].as_u64().unwrap() > 1 << 20, "{model}: {w}");
        }
        // The text form names the master and each worker.
        let (code, text, _) = ctl(&socket, &["status"]);
        assert_eq!(code, 0);
        assert!(text.contains(&format!("master {}", server.pid())), "{text}");
        assert!(pids.iter().all(|p| text.contains(&p.to_string())), "{text}");

        // Requests served: the workers' counts add up to what was sent.
        for _ in 0..5 {
            assert_eq!(get(&server.addr, "/hello.txt").status, 200);
        }
        let mut served = 0;
        assert!(
            eventually(|| {
                let workers = ask(&socket, &["workers"]);
                served = workers["workers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|w| w["requests"].as_u64().unwrap())
                    .sum();
                served == 5
            }),
            "{model}: requests served {served}, sent 5"
        );

        // add / remove, and their limits.
        ask(&socket, &["add", "2"]);
        ready_workers(&socket, 4);
        assert_eq!(children_of(server.pid()).len(), 4, "{model}");
        ask(&socket, &["remove", "3"]);
        ready_workers(&socket, 1);
        assert!(refused(&socket, &["remove", "1"]).contains("at least one must stay"));
        assert!(refused(&socket, &["add", "0"]).contains("positive number"));
        assert!(refused(&socket, &["add", "many"]).contains("\"many\""));
        ask(&socket, &["add", "1"]);
        let before = ready_workers(&socket, 2);

        // reload replaces every worker.
        let answer = ask(&socket, &["reload"]);
        assert!(answer["message"].as_str().unwrap().contains("reloading"));
        let mut now = Vec::new();
        assert!(
            eventually(|| {
                now = worker_pids(&ask(&socket, &["workers"]));
                now.len() == 2 && now.iter().all(|p| !before.contains(p))
            }),
            "{model}: not replaced: before {before:?}, now {now:?}"
        );
        assert_eq!(get(&server.addr, "/hello.txt").status, 200);

        ask(&socket, &["reopen-logs"]);
        assert!(
            server.log_contains("SIGUSR1: reopening log files"),
            "{model}"
        );

        // A bad command over the raw protocol: one JSON line saying why.
        let answer = raw_command(&socket, "launch rockets\n");
        assert_eq!(answer["ok"], false);
        assert!(answer["error"]
            .as_str()
            .unwrap()
            .contains("unknown command"));

        let answer = ask(&socket, &["stop"]);
        assert!(answer["message"].as_str().unwrap().contains("graceful"));
        assert_eq!(wait_exit(&mut server), Some(0), "{model}");
        assert!(
            !socket.exists(),
            "{model}: the socket file outlived the master"
        );
        assert!(server.log_contains("graceful stop requested"));
    }
}

/// Sends `line` on a fresh connection; the parsed answer.
fn raw_command(socket: &Path, line: &str) -> Value {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream.set_read_timeout(Some(HUNG)).unwrap();
    stream.write_all(line.as_bytes()).unwrap();
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).unwrap();
    serde_json::from_str(&answer).unwrap()
}

#[test]
fn stop_quick_ends_the_server() {
    let site = Site::new("ctl-quick");
    let socket = temp_path("ctl.sock");
    let mut server = start("prefork", &site, &socket);
    ready_workers(&socket, 2);
    let answer = ask(&socket, &["stop", "--quick"]);
    assert!(answer["message"].as_str().unwrap().contains("quick"));
    assert_eq!(wait_exit(&mut server), Some(0));
    assert!(server.log_contains("quick stop requested"));
    assert!(!socket.exists());
}

#[test]
fn a_second_client_is_served_while_the_first_is_still_typing() {
    let site = Site::new("ctl-two");
    let socket = temp_path("ctl.sock");
    let server = start("hybrid", &site, &socket);
    let mut first = UnixStream::connect(&socket).unwrap();
    first.set_read_timeout(Some(HUNG)).unwrap();
    first.write_all(b"sta").unwrap();
    // The master is not stuck on the first client: the second gets its answer.
    let second = raw_command(&socket, "workers\n");
    assert_eq!(second["ok"], true, "{second}");
    first.write_all(b"tus\n").unwrap();
    let mut answer = String::new();
    BufReader::new(first).read_line(&mut answer).unwrap();
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["master"]["pid"], server.pid(), "{answer}");
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_one_is_refused() {
    let site = Site::new("ctl-stale");
    let socket = temp_path("ctl.sock");
    // A socket file nobody listens on, as a killed master leaves behind.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let server = start("prefork", &site, &socket);
    assert_eq!(ask(&socket, &["status"])["master"]["pid"], server.pid());

    // A second server on the same path stops with one line; the first keeps its socket.
    let args = |path: &Path| -> Vec<String> {
        let mut args: Vec<String> = ["-b", "127.0.0.1:0", "--model", "prefork", "-w", "2"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(["--control-socket".into(), path.display().to_string()]);
        args.extend(site.root_arg());
        args
    };
    let (code, err) = run_to_exit(&args(&socket));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("a running server answers on it"), "{err}");
    assert_eq!(ask(&socket, &["status"])["master"]["pid"], server.pid());

    // A file that is not a socket is never replaced.
    let file = temp_path("not-a-socket");
    std::fs::write(&file, b"keep me").unwrap();
    let (code, err) = run_to_exit(&args(&file));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("is not a socket"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
    let _ = std::fs::remove_file(&file);
}

#[test]
fn another_user_cannot_connect() {
    if nix::unistd::Uid::effective().as_raw() != 0 {
        eprintln!("skipped: needs root to run the client as another user");
        return;
    }
    let site = Site::new("ctl-owner");
    let socket = temp_path("ctl.sock");
    let _server = start("prefork", &site, &socket);
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_ironhorse"))
        .arg("ctl")
        .arg("--socket")
        .arg(&socket)
        .arg("status")
        .output()
        .expect("setpriv (util-linux)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    // The owner still gets in.
    assert_eq!(ask(&socket, &["status"])["ok"], true);
}

#[test]
fn without_a_master_the_option_is_refused_in_one_line() {
    let site = Site::new("ctl-single");
    let socket = temp_path("ctl.sock");
    let mut args: Vec<String> = ["-b", "127.0.0.1:0", "--model", "single", "--control-socket"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(socket.display().to_string());
    args.extend(site.root_arg());
    let (code, err) = run_to_exit(&args);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("--control-socket needs a master"), "{err}");
    // And the client says plainly that nothing answers.
    let err = refused(&socket, &["status"]);
    assert!(err.contains("cannot connect"), "{err}");
}

#[test]
fn an_upgraded_master_takes_the_socket_over() {
    let site = Site::new("ctl-usr2");
    let socket = temp_path("ctl.sock");
    let mut server = start("prefork", &site, &socket);
    let old = server.pid();
    ready_workers(&socket, 2);
    // A client connecting throughout the takeover always finds a socket: the new one is
    // renamed over the old, never unlinked and bound in two steps.
    let done = Arc::new(AtomicBool::new(false));
    let prober = {
        let (done, socket) = (done.clone(), socket.clone());
        std::thread::spawn(move || {
            let mut missing = 0;
            while !done.load(Ordering::Relaxed) {
                match UnixStream::connect(&socket) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => missing += 1,
                    _ => {}
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            missing
        })
    };
    server.signal(12); // USR2: a new master starts with the same arguments.
    let mut new = 0;
    assert!(
        eventually(|| {
            new = ask(&socket, &["status"])["master"]["pid"].as_i64().unwrap();
            new != i64::from(old)
        }),
        "the new master did not take the control socket"
    );
    done.store(true, Ordering::Relaxed);
    assert_eq!(prober.join().unwrap(), 0, "the socket file went missing");
    ready_workers(&socket, 2);
    // Retiring the old master leaves the new one's socket in place.
    server.signal(15);
    assert_eq!(wait_exit(&mut server), Some(0));
    assert_eq!(ask(&socket, &["status"])["master"]["pid"], new);
    ask(&socket, &["stop"]);
    assert!(
        eventually(|| !socket.exists()),
        "the new master left its socket behind"
    );
}
