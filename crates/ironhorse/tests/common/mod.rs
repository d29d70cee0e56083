//! The harness: start the real binary on a free port under a given model, talk to it over
//! real sockets, stop it with real signals.
#![allow(dead_code)]

pub mod client;
pub mod load;
pub mod nginx;
pub mod python;
pub mod slow;

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

/// How long a wait on an event may take before the test calls the server hung. Waits end as
/// soon as their event comes, so this only bounds a failing test: it is generous because the
/// machine is shared and its speed swings several-fold.
pub const HUNG: Duration = Duration::from_secs(60);

/// Polls `condition` until it holds or [`HUNG`] passes; the last answer is returned.
pub fn eventually(condition: impl FnMut() -> bool) -> bool {
    wait_for(condition, HUNG)
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

/// The models a matrix test runs: every one of the server's `Model::ALL`, or those named in
/// `IRONHORSE_TEST_MODELS` (comma-separated) to narrow a run while working.
pub fn models() -> Vec<&'static str> {
    let only = std::env::var("IRONHORSE_TEST_MODELS").unwrap_or_default();
    let only: Vec<&str> = only.split(',').filter(|m| !m.is_empty()).collect();
    let all = ironhorse_process::model::Model::ALL;
    // A misspelt filter must not turn every matrix test into one that runs nothing.
    for name in &only {
        assert!(
            all.iter().any(|m| m.name == *name) || VARIANTS.contains(name),
            "IRONHORSE_TEST_MODELS: unknown model {name:?}"
        );
    }
    all.iter()
        .map(|m| m.name)
        .filter(|name| only.is_empty() || only.contains(name))
        .collect()
}

/// Model variants, named in tests as models are: `event-inline` is `--model event
/// --threads 0` (the WSGI app on the loop's own thread). Only the tests that host the
/// feature run them ([`for_each_wsgi_model`]); `IRONHORSE_TEST_MODELS` may name them.
pub const VARIANTS: &[&str] = &["event-inline"];

/// The WSGI matrix: [`models`] and the [`VARIANTS`] (those `IRONHORSE_TEST_MODELS` names).
pub fn wsgi_models() -> Vec<&'static str> {
    let only = std::env::var("IRONHORSE_TEST_MODELS").unwrap_or_default();
    let only: Vec<&str> = only.split(',').filter(|m| !m.is_empty()).collect();
    let mut all = models();
    all.extend(
        VARIANTS
            .iter()
            .filter(|name| only.is_empty() || only.contains(name)),
    );
    all
}

/// The models that run `-w 2` as two worker processes under a master.
pub fn models_with_workers() -> Vec<&'static str> {
    use ironhorse_process::{model::Model, Processes};
    models()
        .into_iter()
        .filter(|name| Model::named(name).unwrap().processes_for(2) == Processes::Prefork)
        .collect()
}

/// The models that, run as [`model_args`] runs them (no `-w`), serve in one process with no
/// master.
pub fn models_alone() -> Vec<&'static str> {
    use ironhorse_process::{model::Model, Processes};
    models()
        .into_iter()
        .filter(|name| Model::named(name).unwrap().processes_for(1) != Processes::Prefork)
        .collect()
}

/// [`for_each_model`] over [`models_alone`].
pub fn for_each_model_alone(body: impl Fn(&str) + std::panic::RefUnwindSafe) {
    each_of(models_alone(), body);
}

/// Runs `body` once per model (see [`models`]), every model even after one failed, then
/// fails naming the models that failed (each one's panic is printed above).
pub fn for_each_model(body: impl Fn(&str) + std::panic::RefUnwindSafe) {
    each_of(models(), body);
}

/// [`for_each_model`] over [`wsgi_models`].
pub fn for_each_wsgi_model(body: impl Fn(&str) + std::panic::RefUnwindSafe) {
    each_of(wsgi_models(), body);
}

fn each_of(models: Vec<&'static str>, body: impl Fn(&str) + std::panic::RefUnwindSafe) {
    let mut failed = Vec::new();
    for model in models {
        eprintln!("--- model {model}");
        if std::panic::catch_unwind(|| body(model)).is_err() {
            failed.push(model);
        }
    }
    assert!(failed.is_empty(), "failed under --model {failed:?}");
}

/// Whether the connection from `client` to `server` (both `IP:PORT`) has left the listen
/// queue: `ss` names the process holding a socket only once a process accepted it.
pub fn accepted_by_a_process(server: &str, client: &str) -> bool {
    let out = Command::new("ss")
        .args(["-tnpH", "state", "established"])
        .output()
        .expect("ss (iproute2)");
    String::from_utf8_lossy(&out.stdout).lines().any(|line| {
        // Recv-Q Send-Q Local Peer [Process]: the server's end of this connection.
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.get(2) == Some(&server) && fields.get(3) == Some(&client) && line.contains("users:")
    })
}

/// Extra flags that make a model run the way a user would run it in production.
pub fn model_args(model: &str) -> Vec<String> {
    if model == "event-inline" {
        // Bodies up to 16 MiB are read whole before the app runs on the loop (longer: 413).
        return [
            "--model",
            "event",
            "--threads",
            "0",
            "--buffer-request-body",
            "16M",
        ]
        .map(String::from)
        .to_vec();
    }
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
    /// Set when the server's stderr reached its end: every line is in `log`.
    log_ended: Arc<std::sync::atomic::AtomicBool>,
}

impl Server {
    /// Starts `ironhorse` with `args`, bound to a free loopback port, and waits until it
    /// prints the address it listens on.
    pub fn start(args: &[String]) -> Server {
        Self::start_with_env(args, &[])
    }

    /// Starts as [`start`](Self::start) does, with `env` added to the server's environment.
    pub fn start_with_env(args: &[String], env: &[(&str, &std::ffi::OsStr)]) -> Server {
        let mut command = Command::new(binary());
        command
            .args(["-b", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        Self::spawn(command)
    }

    /// Starts as [`start`](Self::start) does, in the working directory `dir`, after the
    /// shell command `prelude` (e.g. `ulimit -c unlimited`) ran in the same process: the
    /// shell then execs the server, so [`pid`](Self::pid) is the server's.
    pub fn start_in(dir: &Path, prelude: &str, args: &[String]) -> Server {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("{prelude} && exec \"$0\" \"$@\""))
            .arg(binary())
            .args(["-b", "127.0.0.1:0"])
            .args(args)
            .current_dir(dir)
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
        let log_ended = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ended = log_ended.clone();
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
            ended.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let addr = match rx.recv_timeout(HUNG) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "server did not announce its address; log: {:?}",
                    log.lock().unwrap()
                );
            }
        };
        let addr = addr
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .to_string();
        Server {
            child,
            addr,
            log,
            log_ended,
        }
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

    /// Stops the server (SIGTERM) and returns its exit code and its whole log, read to the
    /// end of its stderr.
    pub fn stop_and_read_log(self) -> (Option<i32>, String) {
        let (log, ended) = (self.log.clone(), self.log_ended.clone());
        let code = self.stop(HUNG);
        eventually(|| ended.load(std::sync::atomic::Ordering::SeqCst));
        let text = log.lock().unwrap().join("\n");
        (code, text)
    }

    /// Waits until the server's log contains `needle` (the log is read by another thread,
    /// so a line written just before a response may trail it).
    pub fn log_contains(&self, needle: &str) -> bool {
        eventually(|| self.log_text().contains(needle))
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
            // Workers of a killed master leave on their own at the next stop check; make sure.
            // Before the master dies (its orphans are adopted: `pkill -P` would find none
            // after), and stopped, so that it neither forks nor reaps meanwhile.
            self.signal(19);
            let _ = Command::new("pkill")
                .args(["-9", "-P", &self.pid().to_string()])
                .status();
            self.signal(9);
            let _ = self.child.wait();
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

/// Runs the binary with `args` to its exit (a start that must fail, a client): its exit code
/// and stderr. Killed if it outlives [`HUNG`].
pub fn run_to_exit(args: &[String]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ironhorse"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ironhorse");
    if !eventually(|| matches!(child.try_wait(), Ok(Some(_)))) {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A fresh path in the temporary directory, for a file a test and its server share.
pub fn temp_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "ironhorse-{tag}-{}-{}",
        std::process::id(),
        unique()
    ))
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

pub fn read_file(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// Declares a test whose body runs under every model and the WSGI variants
/// ([`wsgi_models`]): `per_wsgi_model!(name, |model| { ... })`.
#[macro_export]
macro_rules! per_wsgi_model {
    ($name:ident, |$model:ident| $body:block) => {
        #[test]
        fn $name() {
            fn run($model: &str) $body
            $crate::common::for_each_wsgi_model(run);
        }
    };
}

/// Declares a test whose body runs under every model: `per_model!(name, |model| { ... })`.
#[macro_export]
macro_rules! per_model {
    ($name:ident, |$model:ident| $body:block) => {
        #[test]
        fn $name() {
            fn run($model: &str) $body
            $crate::common::for_each_model(run);
        }
    };
}
