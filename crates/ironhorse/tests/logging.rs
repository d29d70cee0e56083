//! Access and error logs through the real binary.

mod common;

use common::client::{get, Conn};
use common::{model_args, Server, Site};

/// Waits until the file's text satisfies `predicate` (or the server hung), and returns it.
fn wait_for_file_lines(path: &std::path::Path, predicate: impl Fn(&str) -> bool) -> String {
    let read = || std::fs::read_to_string(path).unwrap_or_default();
    common::eventually(|| predicate(&read()));
    read()
}

/// Whether process `pid` holds a descriptor open on `path`.
fn holds_open(pid: i32, path: &std::path::Path) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| {
            fds.filter_map(Result::ok)
                .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == path))
        })
        .unwrap_or(false)
}

per_model!(access_log_lines_follow_the_gunicorn_format, |model| {
    let site = Site::new(model);
    let log = site.root.parent().unwrap().join("access.log");
    let mut args = model_args(model);
    args.extend(site.root_arg());
    args.extend(["--access-logfile".into(), log.display().to_string()]);
    let server = Server::start(&args);
    let mut conn = Conn::open(&server.addr);
    conn.send(b"GET /hello.txt?x=1 HTTP/1.1\r\nHost: t\r\nUser-Agent: tester \"quoted\"\r\nReferer: http://ref/\r\n\r\n");
    assert_eq!(conn.response("GET").status, 200);
    assert_eq!(get(&server.addr, "/missing").status, 404);
    let text = wait_for_file_lines(&log, |t| t.lines().count() >= 2);
    assert_eq!(text.lines().count(), 2, "{text}");
    // Processes may flush in either order (the fork model): find each line by content.
    let hello = text
        .lines()
        .find(|l| l.contains("/hello.txt"))
        .expect("a line for /hello.txt");
    assert!(hello.starts_with("127.0.0.1 - - ["), "{hello}");
    assert!(
        hello.contains(
            "] \"GET /hello.txt?x=1 HTTP/1.1\" 200 13 \"http://ref/\" \"tester \\x22quoted\\x22\""
        ),
        "{hello}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("\"GET /missing HTTP/1.1\" 404 ")),
        "{text}"
    );
});

#[test]
fn json_access_log_escapes_every_value() {
    let site = Site::new("json");
    let log = site.root.parent().unwrap().join("access.json");
    let mut args = vec![
        "--model".to_string(),
        "event".into(),
        "--access-log-json".into(),
        "--access-logfile".into(),
        log.display().to_string(),
    ];
    args.extend(site.root_arg());
    let server = Server::start(&args);
    let mut conn = Conn::open(&server.addr);
    conn.send(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nUser-Agent: a\"b\\c\xe9\r\n\r\n");
    assert_eq!(conn.response("GET").status, 200);
    let text = wait_for_file_lines(&log, |t| !t.is_empty());
    let line: serde_json::Value =
        serde_json::from_str(text.lines().next().unwrap()).expect("valid JSON");
    assert_eq!(line["status"], 200);
    assert_eq!(line["path"], "/hello.txt");
    assert_eq!(line["bytes"], 13);
    assert_eq!(line["user_agent"], "a\"b\\c\u{fffd}");
}

#[test]
fn usr1_reopens_a_moved_access_log() {
    let site = Site::new("usr1");
    let dir = site.root.parent().unwrap().to_path_buf();
    let log = dir.join("access.log");
    let mut args = vec![
        "--model".to_string(),
        "prefork".into(),
        "-w".into(),
        "2".into(),
        "--access-logfile".into(),
        log.display().to_string(),
    ];
    args.extend(site.root_arg());
    let server = Server::start(&args);
    assert_eq!(get(&server.addr, "/hello.txt").status, 200);
    wait_for_file_lines(&log, |t| !t.is_empty());
    let moved = dir.join("access.log.1");
    std::fs::rename(&log, &moved).unwrap();
    server.signal(10); // USR1
                       // Workers reopen at their next housekeeping turn: wait until the master and every worker
                       // hold the new file and none the moved one.
    let master = server.pid();
    let reopened = common::eventually(|| {
        let mut pids = common::children_of(master);
        pids.insert(master);
        pids.len() == 3
            && pids
                .iter()
                .all(|&p| holds_open(p, &log) && !holds_open(p, &moved))
    });
    assert!(reopened, "the log files were not all reopened");
    for _ in 0..4 {
        assert_eq!(get(&server.addr, "/style.css").status, 200);
    }
    let fresh = wait_for_file_lines(&log, |t| t.lines().count() >= 4);
    assert!(
        fresh.lines().count() >= 4 && fresh.contains("/style.css"),
        "new file: {fresh:?}"
    );
    assert!(
        !std::fs::read_to_string(&moved)
            .unwrap()
            .contains("/style.css"),
        "lines went to the moved file"
    );
}

#[test]
fn error_log_goes_to_its_file_with_levels() {
    let site = Site::new("errlog");
    let log = site.root.parent().unwrap().join("error.log");
    let mut args = vec![
        "--model".to_string(),
        "prefork".into(),
        "-w".into(),
        "1".into(),
        "--error-logfile".into(),
        log.display().to_string(),
    ];
    args.extend(site.root_arg());
    let server = Server::start(&args);
    server.signal(21); // TTIN: the master logs it
    let text = wait_for_file_lines(&log, |t| t.contains("SIGTTIN"));
    assert!(
        text.lines()
            .any(|l| l.contains("[INFO]") && l.contains("SIGTTIN")),
        "{text}"
    );
}

/// With `--error-logfile FILE`, what reaches standard error lands in the file, in every model:
/// an application's traceback (the server's report of it) and what it writes to `wsgi.errors`
/// (`-D` leaves standard error nowhere else). The console still hears where the server
/// listens.
#[test]
fn application_errors_reach_the_error_log_file() {
    common::for_each_model(|model| {
        let dir = common::temp_path("errlog-app");
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("error.log");
        let mut args =
            common::python::wsgi_args(model, "wsgi_app:application", &common::python::apps_dir());
        args.extend(["--error-logfile".to_string(), log.display().to_string()]);
        let server = Server::start(&args);
        assert_eq!(get(&server.addr, "/fail-early").status, 500);
        let text = wait_for_file_lines(&log, |t| {
            t.contains("Traceback") && t.contains("listening on")
        });
        assert!(
            text.contains("exception in WSGI application"),
            "{model}: {text}"
        );
        assert!(
            text.contains("listening on"),
            "{model}: the address, in the file too"
        );
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
    });
}
