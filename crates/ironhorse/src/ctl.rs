//! `ironhorse ctl`: the client of a master's `--control-socket`. Sends one command line,
//! prints the one-line JSON answer readably (or as is, with `--json`). Exit 0 on success,
//! 1 when the server refused or could not be reached, 2 for a bad command line.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::Value;

/// How long the client waits for the master's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Steer a running ironhorse through its control socket.
#[derive(Parser, Debug)]
#[command(name = "ironhorse ctl")]
struct Ctl {
    /// The server's --control-socket.
    #[arg(short, long, value_name = "PATH", env = "IRONHORSE_CONTROL_SOCKET")]
    socket: PathBuf,
    /// Print the server's JSON answer as it came.
    #[arg(long)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The master (pid, model, uptime) and its workers.
    Status,
    /// The workers: pid, age, requests served, resident memory, state.
    Workers,
    /// Reload the configuration and replace the workers (as SIGHUP).
    Reload,
    /// N workers more (as N × SIGTTIN).
    Add { n: String },
    /// N workers fewer (as N × SIGTTOU; at least one stays).
    Remove { n: String },
    /// Reopen the log files (as SIGUSR1).
    ReopenLogs,
    /// Stop the server: gracefully (SIGTERM), or at once with --quick (SIGQUIT).
    Stop {
        #[arg(long)]
        quick: bool,
    },
}

impl Command {
    fn line(&self) -> String {
        match self {
            Command::Status => "status".into(),
            Command::Workers => "workers".into(),
            Command::Reload => "reload".into(),
            Command::Add { n } => format!("add {n}"),
            Command::Remove { n } => format!("remove {n}"),
            Command::ReopenLogs => "reopen-logs".into(),
            Command::Stop { quick: false } => "stop".into(),
            Command::Stop { quick: true } => "stop --quick".into(),
        }
    }
}

/// Runs `ironhorse ctl ARGS` (`args` starts with `ctl`); the exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> i32 {
    let ctl = match Ctl::try_parse_from(args) {
        Ok(ctl) => ctl,
        Err(e) if e.use_stderr() => {
            eprintln!(
                "ironhorse ctl: {} (see ironhorse ctl --help)",
                crate::values::first_line(&e)
            );
            return 2;
        }
        Err(e) => {
            let _ = e.print();
            return 0;
        }
    };
    match ask(&ctl) {
        Ok(answer) if ctl.json => {
            println!("{answer}");
            if answer["ok"] == true {
                0
            } else {
                1
            }
        }
        Ok(answer) if answer["ok"] == true => {
            print!("{}", render(&answer));
            0
        }
        Ok(answer) => {
            let error = answer["error"].as_str().unwrap_or("the server refused");
            eprintln!("ironhorse ctl: {error}");
            1
        }
        Err(e) => {
            eprintln!("ironhorse ctl: {e}");
            1
        }
    }
}

fn ask(ctl: &Ctl) -> Result<Value, String> {
    let path = ctl.socket.display();
    let mut stream = UnixStream::connect(&ctl.socket).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::PermissionDenied => {
                "only the user running the server may use it".to_string()
            }
            _ => format!("is a server running with --control-socket {path}?"),
        };
        format!("cannot connect to {path}: {e} ({hint})")
    })?;
    let _ = stream.set_read_timeout(Some(ANSWER_TIMEOUT));
    let _ = stream.set_write_timeout(Some(ANSWER_TIMEOUT));
    stream
        .write_all(format!("{}\n", ctl.command.line()).as_bytes())
        .map_err(|e| format!("{path}: cannot send the command: {e}"))?;
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .map_err(|e| format!("{path}: no answer: {e}"))?;
    if line.is_empty() {
        return Err(format!(
            "{path}: the server closed the connection without an answer"
        ));
    }
    serde_json::from_str(&line).map_err(|e| format!("{path}: unreadable answer ({e}): {line}"))
}

/// A success as text: a table for `status` and `workers`, the message otherwise.
fn render(answer: &Value) -> String {
    let mut out = String::new();
    if let Some(master) = answer.get("master") {
        out.push_str(&format!(
            "master {} ({}, {}), up {}, {} workers wanted\n",
            master["pid"],
            master["model"].as_str().unwrap_or("?"),
            master["name"].as_str().unwrap_or("?"),
            seconds(&master["uptime_s"]),
            master["workers_target"],
        ));
    }
    if let Some(workers) = answer.get("workers").and_then(Value::as_array) {
        out.push_str(&format!(
            "{:>8} {:>8} {:>10} {:>10}  STATE\n",
            "PID", "AGE", "REQUESTS", "RSS"
        ));
        for w in workers {
            let rss = w["rss_bytes"].as_u64().map_or("?".to_string(), |b| {
                format!("{:.1} MiB", b as f64 / 1048576.0)
            });
            out.push_str(&format!(
                "{:>8} {:>8} {:>10} {:>10}  {}\n",
                w["pid"].to_string(),
                seconds(&w["age_s"]),
                w["requests"].to_string(),
                rss,
                w["state"].as_str().unwrap_or("?")
            ));
        }
    }
    if let Some(message) = answer.get("message").and_then(Value::as_str) {
        out.push_str(message);
        out.push('\n');
    }
    out
}

fn seconds(value: &Value) -> String {
    let secs = value.as_f64().unwrap_or(0.0) as u64;
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}
