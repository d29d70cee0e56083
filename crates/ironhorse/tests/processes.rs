//! Process strategies: workers are replaced, stops are graceful, no zombies, clear errors.

mod common;

use common::client::get;
use common::{children_of, eventually, Server, Site};
use std::process::Command;

fn zombies_of(pid: i32) -> usize {
    let out = Command::new("ps")
        .args(["--ppid", &pid.to_string(), "-o", "stat="])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('Z'))
        .count()
}

fn start(site: &Site, args: &[&str]) -> Server {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend(site.root_arg());
    Server::start(&all)
}

/// A keep-alive client that has had one request answered, left open.
fn served_once(addr: &str) -> common::client::Conn {
    let mut conn = common::client::Conn::open(addr);
    conn.send(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.response("GET").status, 200);
    conn
}

#[test]
fn killed_workers_are_replaced_in_every_multiprocess_model() {
    for model in common::models_with_workers() {
        let args = ["--model", model, "-w", "2"];
        let site = Site::new("replace");
        let server = start(&site, &args);
        assert!(
            eventually(|| children_of(server.pid()).len() == 2),
            "{args:?}: workers did not start"
        );
        let victim = *children_of(server.pid()).iter().next().unwrap();
        Command::new("kill")
            .args(["-9", &victim.to_string()])
            .status()
            .unwrap();
        let replaced = eventually(|| {
            let now = children_of(server.pid());
            now.len() == 2 && !now.contains(&victim)
        });
        assert!(
            replaced,
            "{args:?}: worker not replaced: {:?}",
            children_of(server.pid())
        );
        assert_eq!(get(&server.addr, "/hello.txt").status, 200);
        assert!(
            server.log_contains("signal 9"),
            "{args:?}: death not logged"
        );
        assert_eq!(server.stop(common::HUNG), Some(0));
    }
}

#[test]
fn ttin_and_ttou_change_the_worker_count() {
    let site = Site::new("ttin");
    let server = start(&site, &["--model", "prefork", "-w", "2"]);
    assert!(eventually(|| children_of(server.pid()).len() == 2));
    server.signal(21); // TTIN
    assert!(eventually(|| children_of(server.pid()).len() == 3));
    server.signal(22); // TTOU
    assert!(eventually(|| children_of(server.pid()).len() == 2));
}

#[test]
fn fork_model_leaves_no_zombies() {
    let site = Site::new("zombies");
    let server = start(&site, &["--model", "fork"]);
    for _ in 0..20 {
        assert_eq!(get(&server.addr, "/hello.txt").status, 200);
    }
    assert!(eventually(
        || zombies_of(server.pid()) == 0 && children_of(server.pid()).is_empty()
    ));
}

/// `GET /hello.txt` over the Unix socket at `sock`: the whole answer, checked to be a 200.
fn hello_over_unix(sock: &std::path::Path) -> String {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(sock).unwrap();
    stream
        .write_all(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    answer
}

#[test]
fn unix_socket_and_ipv6_binds_work() {
    let site = Site::new("unix");
    let sock = site.root.parent().unwrap().join("ih.sock");
    let mut args = vec![
        "-b".to_string(),
        format!("unix:{}", sock.display()),
        "-b".into(),
        "[::1]:0".into(),
        "--model".into(),
        "event".into(),
    ];
    args.extend(site.root_arg());
    let server = Server::start_raw(&args);
    let answer = hello_over_unix(&sock);
    assert!(answer.ends_with("hello, world\n"));
    // The harness returns at the first address announced; the log thread may not have read
    // the second line yet.
    assert!(
        server.log_contains("listening on http://[::1]:"),
        "{}",
        server.log_text()
    );
}

per_model!(a_stopped_server_removes_its_unix_socket_file, |model| {
    // SIGTERM (graceful) and SIGQUIT (quick) alike, as gunicorn does.
    for signal in [15, 3] {
        let site = Site::new("unix-gone");
        let sock = site.root.parent().unwrap().join("ih.sock");
        let mut args = vec![
            "-b".to_string(),
            format!("unix:{}", sock.display()),
            "--model".into(),
            model.into(),
        ];
        args.extend(site.root_arg());
        let server = Server::start_raw(&args);
        hello_over_unix(&sock);
        server.signal(signal);
        let mut server = server;
        assert_eq!(
            server.child.wait().unwrap().code(),
            Some(0),
            "signal {signal}"
        );
        assert!(
            !sock.exists(),
            "signal {signal}: {} is left behind",
            sock.display()
        );
    }
});

#[test]
fn bad_settings_give_one_clear_line_and_exit_2() {
    let site = Site::new("bad");
    let root = site.root.display().to_string();
    for (args, needle) in [
        (vec!["--root", "/nonexistent/dir"], "--root"),
        (vec!["--root", &root, "--model", "nope"], "--model"),
        (vec!["--root", &root, "-w", "zero"], "--workers"),
        (vec!["--root", &root, "-b", "999.1.1.1:99999"], "--bind"),
        (vec!["--root", &root, "--keep-alive", "-3"], "--keep-alive"),
        (
            vec!["--root", &root, "--model", "threadpool", "--threads", "0"],
            "--threads",
        ),
        (vec!["--root", &root, "--log-level", "loud"], "--log-level"),
        (
            vec!["--root", &root, "--max-worker-memory", "lots"],
            "--max-worker-memory",
        ),
        (vec!["--root", &root, "--umask", "9"], "--umask"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_ironhorse"))
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(
            stderr.trim().lines().count() <= 3,
            "{args:?}: too chatty: {stderr}"
        );
    }
}

#[test]
fn a_port_in_use_is_reported() {
    let site = Site::new("inuse");
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let out = Command::new(env!("CARGO_BIN_EXE_ironhorse"))
        .args([
            "--root",
            &site.root.display().to_string(),
            "-b",
            &format!("127.0.0.1:{port}"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use"));
}

#[test]
fn event_model_holds_thousands_of_idle_connections() {
    let site = Site::new("idle");
    for model in ["event", "async"] {
        let server = start(&site, &["--model", model, "--keep-alive", "60"]);
        let mut conns = Vec::new();
        for _ in 0..2000 {
            conns.push(std::net::TcpStream::connect(&server.addr).unwrap());
        }
        // New clients are still served while the others sit idle.
        assert_eq!(get(&server.addr, "/hello.txt").status, 200, "{model}");
        drop(conns);
    }
}

#[test]
fn socket_activation_and_readiness_notification_work_with_systemd_conventions() {
    let site = Site::new("systemd");
    let dir = site.root.parent().unwrap().to_path_buf();
    let notify_path = dir.join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(common::HUNG)).unwrap();
    // A tiny launcher doing what systemd does: a listening socket at fd 3, LISTEN_PID = the
    // pid that will run ironhorse (exec keeps it). It prints the port first.
    let launcher = "import os,sys,socket; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(128); print(s.getsockname()[1], flush=True); os.dup2(s.fileno(), 3) if s.fileno() != 3 else None; os.set_inheritable(3, True); os.environ['LISTEN_FDS']='1'; os.environ['LISTEN_PID']=str(os.getpid()); os.execv(sys.argv[1], sys.argv[1:])";
    let mut child = Command::new("python3")
        .args([
            "-c",
            launcher,
            env!("CARGO_BIN_EXE_ironhorse"),
            "--root",
            &site.root.display().to_string(),
            "--model",
            "prefork",
            "-w",
            "2",
        ])
        .env("NOTIFY_SOCKET", &notify_path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut port_line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut port_line,
    )
    .unwrap();
    let port: u16 = port_line.trim().parse().unwrap();
    let mut message = [0u8; 256];
    let n = notify
        .recv(&mut message)
        .expect("no READY=1 from the server");
    let text = String::from_utf8_lossy(&message[..n]).to_string();
    assert!(text.contains("READY=1"), "{text}");
    assert!(text.contains(&format!("MAINPID={}", child.id())), "{text}");
    // Served on the inherited socket (no -b given: the default port is not used).
    assert_eq!(get(&format!("127.0.0.1:{port}"), "/hello.txt").status, 200);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let stopping = notify
        .recv(&mut message)
        .map(|n| String::from_utf8_lossy(&message[..n]).to_string())
        .unwrap_or_default();
    assert!(stopping.contains("STOPPING=1"), "{stopping}");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn reuse_port_gives_each_worker_its_own_socket_and_all_serve() {
    let site = Site::new("reuseport");
    let server = start(&site, &["--model", "prefork", "-w", "3", "--reuse-port"]);
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let listening = || {
        let out = Command::new("ss")
            .args(["-ltnpH", &format!("sport = :{port}")])
            .output()
            .expect("ss (iproute2)");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    // Each worker binds its own socket once its start is done (a fork is no sign it has; the
    // master's socket is closed at once, so until then a connection may be refused).
    let mut text = String::new();
    assert!(
        eventually(|| {
            text = listening();
            text.lines().count() == 3
        }),
        "{text}"
    );
    assert_eq!(children_of(server.pid()).len(), 3);
    // Every connection is accepted by some worker (none lands on an orphaned socket).
    for _ in 0..60 {
        assert_eq!(get(&server.addr, "/hello.txt").status, 200);
    }
    // Each worker holds its own listening socket on the port; the master holds none.
    let text = listening();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        !text.contains(&format!("pid={},", server.pid())),
        "the master still listens: {text}"
    );
}

#[test]
fn idle_keep_alive_connections_do_not_hold_pool_threads() {
    // Idle connections are kept far longer than the test may wait: were they holding the
    // threads, the next client would wait for them until the client's read timed out.
    for args in [
        &[
            "--model",
            "threadpool",
            "--threads",
            "2",
            "--keep-alive",
            "600",
        ][..],
        &[
            "--model",
            "hybrid",
            "-w",
            "1",
            "--threads",
            "2",
            "--keep-alive",
            "600",
        ],
    ] {
        let site = Site::new("parking");
        let server = start(&site, args);
        // Four keep-alive clients on two threads, each idle after one request …
        let idle: Vec<common::client::Conn> = (0..4).map(|_| served_once(&server.addr)).collect();
        // … and a fifth is served, and so is the next request of an idle one.
        assert_eq!(get(&server.addr, "/hello.txt").status, 200, "{args:?}");
        let mut first = idle.into_iter().next().unwrap();
        first.send(b"GET /style.css HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(first.response("GET").status, 200);
    }
}

#[test]
fn threads_and_pools_keep_open_connections_within_max_connections() {
    use std::io::Read;
    for model in [
        &["--model", "threadpool", "--threads", "2"][..],
        &["--model", "hybrid", "-w", "1", "--threads", "2"],
        &["--model", "thread"],
    ] {
        let mut args = model.to_vec();
        args.extend(["--max-connections", "2", "--keep-alive", "600"]);
        let site = Site::new("capped");
        let server = start(&site, &args);
        // Two keep-alive clients, idle after one request each, fill the cap …
        let mut open: Vec<common::client::Conn> =
            (0..2).map(|_| served_once(&server.addr)).collect();
        // … so a third is not served while they stay open (a grace that can only miss an
        // answer, never fail a correct server) …
        let mut third = common::client::Conn::open(&server.addr);
        third.send(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
        third
            .stream
            .set_read_timeout(Some(std::time::Duration::from_millis(300)))
            .unwrap();
        let early = third.stream.read(&mut [0u8; 1]);
        assert!(
            early.as_ref().is_err_and(|e| matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            )),
            "{args:?}: a third connection was served beyond --max-connections 2: {early:?}"
        );
        third.stream.set_read_timeout(Some(common::HUNG)).unwrap();
        // … and is once one of them closes.
        drop(open.pop());
        assert_eq!(third.response("GET").status, 200, "{args:?}");
    }
}

#[test]
fn a_pool_worker_at_max_connections_leaves_newcomers_to_its_sibling() {
    let args = [
        "--model",
        "hybrid",
        "-w",
        "2",
        "--threads",
        "1",
        "--max-connections",
        "1",
        "--keep-alive",
        "600",
        "--timeout",
        "1",
    ];
    let site = Site::new("sibling");
    let server = start(&site, &args);
    assert!(eventually(|| children_of(server.pid()).len() == 2));
    // One idle keep-alive client fills one worker's cap …
    let mut idle = served_once(&server.addr);
    // … so newcomers, one after another, are all the other worker's (a full worker that
    // accepted one would hold it until the idle client left) …
    for _ in 0..10 {
        assert_eq!(get(&server.addr, "/hello.txt").status, 200);
    }
    // … and the full worker, which accepts nothing, still tells the master it is alive:
    // after several heartbeat timeouts its client is served (a grace that can only miss a
    // kill, never fail a correct server).
    std::thread::sleep(std::time::Duration::from_secs(3));
    idle.send(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(idle.response("GET").status, 200);
}

#[test]
fn workers_stop_when_their_master_is_killed() {
    let site = Site::new("orphans");
    let server = start(&site, &["--model", "prefork", "-w", "2"]);
    assert!(eventually(|| children_of(server.pid()).len() == 2));
    let workers = children_of(server.pid());
    server.signal(9);
    let gone = eventually(|| {
        workers.iter().all(|w| {
            !std::path::Path::new(&format!("/proc/{w}/status")).exists()
                || std::fs::read_to_string(format!("/proc/{w}/status"))
                    .is_ok_and(|s| s.contains("State:\tZ"))
        })
    });
    if !gone {
        for w in &workers {
            let _ = Command::new("kill").args(["-9", &w.to_string()]).status();
        }
    }
    assert!(gone, "orphaned workers kept running: {workers:?}");
}

/// A master's failures are logged as errors, so `--log-level error` still shows why the
/// server stopped: here a worker that cannot import the application (exit 4).
#[test]
fn a_failure_to_load_the_app_is_an_error_line_even_at_log_level_error() {
    let args: Vec<String> = [
        "no_such_module_anywhere:app",
        "--model",
        "prefork",
        "-w",
        "2",
        "-b",
        "127.0.0.1:0",
        "--log-level",
        "error",
    ]
    .map(String::from)
    .to_vec();
    let (code, err) = common::run_to_exit(&args);
    assert_eq!(code, Some(4), "{err}");
    assert!(
        err.contains("[ERROR]") && err.contains("could not load the application"),
        "{err}"
    );
}
