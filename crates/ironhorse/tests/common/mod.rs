//! The harness: start the real binary on a free port under a given model, talk to it over
//! real sockets, stop it with real signals.
#![allow(dead_code)]

pub mod client;
pub mod load;
pub mod python;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The child processes of `pid` (a master's workers).
pub fn children_of(pid: i32) -> std::collections::HashSet<i32> {
    let out = Command::new("pgrep")
        .args(["-P", &pid.to_string()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// Polls `condition` until it holds or `limit` passes; the last answer is returned.
pub fn wait_for(mut condition: impl FnMut() -> bool, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    condition()
}

/// Every model, as `--model` takes them.
pub const MODELS: &[&str] = &[
    "single",
    "fork",
    "thread",
    "threadpool",
    "prefork",
    "hybrid",
    "event",
    "async",
];

/// Extra flags that make a model run the way a user would run it in production.
pub fn model_args(model: &str) -> Vec<String> {
    let mut args = vec!["--model".to_string(), model.to_string()];
    match model {
        "prefork" | "hybrid" => {
            args.extend(["-w".into(), "2".into(), "--threads".into(), "4".into()])
        }
        "threadpool" => args.extend(["--threads".into(), "8".into()]),
        "async" => args.extend(["--threads".into(), "2".into()]),
        _ => {}
    }
    args
}

/// The `ironhorse` command under test: `$IRONHORSE_BIN` if set (e.g. the console script of a
/// pip-installed wheel, see scripts/wheel-test.sh), else the binary cargo built.
pub fn binary() -> PathBuf {
    std::env::var_os("IRONHORSE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ironhorse")))
}

/// A running ironhorse.
pub struct Server {
    pub child: Child,
    pub addr: String,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `ironhorse` with `args`, bound to a free loopback port, and waits until it
    /// prints the address it listens on.
    pub fn start(args: &[String]) -> Server {
        let mut command = Command::new(binary());
        command
            .args(["-b", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        Self::spawn(command)
    }

    /// Starts with exactly these arguments (the caller binds).
    pub fn start_raw(args: &[String]) -> Server {
        let mut command = Command::new(binary());
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        Self::spawn(command)
    }

    fn spawn(mut command: Command) -> Server {
        let mut child = command.spawn().expect("start ironhorse");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(pos) = line.find("listening on ") {
                    let rest = &line[pos + "listening on ".len()..];
                    let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "server did not announce its address; log: {:?}",
                    log.lock().unwrap()
                );
            }
        };
        let addr = addr.trim_start_matches("http://").to_string();
        Server { child, addr, log }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY-free: `kill` from the command line keeps the test code free of libc.
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status();
    }

    /// Sends SIGTERM and waits for the exit code, up to `limit`.
    pub fn stop(mut self, limit: Duration) -> Option<i32> {
        self.signal(15);
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Waits until the server's log contains `needle` (the log is read by another thread,
    /// so a line written just before a response may trail it).
    pub fn log_contains(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if self.log_text().contains(needle) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal(15);
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            self.signal(9);
            let _ = self.child.wait();
            // Workers of a killed master leave on their own at the next stop check; make sure.
            let _ = Command::new("pkill")
                .args(["-9", "-P", &self.pid().to_string()])
                .status();
        }
    }
}

/// A fresh document root with known files.
pub struct Site {
    pub root: PathBuf,
    pub outside: PathBuf,
}

impl Site {
    pub fn new(tag: &str) -> Site {
        let base = std::env::temp_dir().join(format!(
            "ironhorse-test-{}-{}-{}",
            tag,
            std::process::id(),
            unique()
        ));
        let root = base.join("root");
        let outside = base.join("secret.txt");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(root.join("empty")).unwrap();
        std::fs::write(&outside, b"TOP SECRET").unwrap();
        std::fs::write(root.join("index.html"), b"<h1>home</h1>\n").unwrap();
        std::fs::write(root.join("sub/index.html"), b"<h1>sub</h1>\n").unwrap();
        std::fs::write(root.join("hello.txt"), b"hello, world\n").unwrap();
        std::fs::write(root.join("style.css"), b"body{}\n").unwrap();
        std::fs::write(root.join("app.js"), b"let x = 1;\n").unwrap();
        std::fs::write(root.join("pic.jpg"), b"\xff\xd8\xff").unwrap();
        std::fs::write(root.join("file with space.txt"), b"spaced\n").unwrap();
        std::fs::write(root.join("big.bin"), big_bytes()).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("escape.txt")).unwrap();
        Site { root, outside }
    }

    pub fn root_arg(&self) -> Vec<String> {
        vec!["--root".into(), self.root.display().to_string()]
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Some(base) = self.root.parent() {
            let _ = std::fs::remove_dir_all(base);
        }
    }
}

/// 3 MiB + 17 bytes of a deterministic pattern (large enough for sendfile and partial writes).
pub fn big_bytes() -> Vec<u8> {
    let mut state: u32 = 0x1234_5678;
    (0..(3 << 20) + 17)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

pub fn read_file(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// Declares one test per model: `per_model!(name, |model| { ... })`.
#[macro_export]
macro_rules! per_model {
    ($name:ident, |$model:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn run($model: &str) $body
            #[test] fn single() { run("single") }
            #[test] fn fork() { run("fork") }
            #[test] fn thread() { run("thread") }
            #[test] fn threadpool() { run("threadpool") }
            #[test] fn prefork() { run("prefork") }
            #[test] fn hybrid() { run("hybrid") }
            #[test] fn event() { run("event") }
            #[test] fn r#async() { run("async") }
        }
    };
}
