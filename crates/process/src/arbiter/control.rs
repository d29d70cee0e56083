//! The control socket (`--control-socket PATH`): a unix socket, mode 0600, on which the
//! master takes one command per connection — a line of text — and answers one line of JSON.
//! Commands go to the same handlers as signals, so `reload` is exactly `HUP`.
//!
//! | command | answer |
//! |---|---|
//! | `status` | the master (pid, model, uptime, target) and its workers |
//! | `workers` | the workers: pid, age, requests served, resident memory, state |
//! | `reload` | `HUP` |
//! | `add N` / `remove N` | `TTIN` / `TTOU`, N times |
//! | `reopen-logs` | `USR1` |
//! | `stop [--quick]` | `TERM` (`QUIT` with `--quick`) |
//!
//! Answers are `{"ok":true,...}` or `{"ok":false,"error":"one line"}`. Clients are served
//! from the master's loop without blocking it: several may be connected at once.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::super::pidfile::UPGRADED_FROM;
use super::super::ProcessLogs;
use ironhorse_sys::signals;

/// The longest command line a client may send.
const MAX_LINE: usize = 1024;
/// Most clients connected at once; more wait in the backlog.
const MAX_CLIENTS: usize = 16;
/// A client silent this long is dropped (a stuck script must not hold a slot forever).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Most workers `add` may lead to: a typo should not fork thousands of processes.
const MAX_WORKERS: usize = 1024;

/// A command, parsed from its line.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Command {
    Status,
    Workers,
    Reload,
    Add(usize),
    Remove(usize),
    ReopenLogs,
    Stop { quick: bool },
}

const USAGE: &str =
    "commands: status, workers, reload, add N, remove N, reopen-logs, stop [--quick]";

impl Command {
    pub fn parse(line: &str) -> Result<Command, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let count = |verb: &str| -> Result<usize, String> {
            match words.get(1..) {
                Some([n]) => n
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{verb}: expected a positive number, got {n:?}")),
                _ => Err(format!("{verb}: expected one number, e.g. `{verb} 1`")),
            }
        };
        match words.as_slice() {
            ["status"] => Ok(Command::Status),
            ["workers"] => Ok(Command::Workers),
            ["reload"] => Ok(Command::Reload),
            ["reopen-logs"] => Ok(Command::ReopenLogs),
            ["stop"] => Ok(Command::Stop { quick: false }),
            ["stop", "--quick"] => Ok(Command::Stop { quick: true }),
            ["add", ..] => count("add").map(Command::Add),
            ["remove", ..] => count("remove").map(Command::Remove),
            [] => Err(format!("empty command ({USAGE})")),
            _ => Err(format!("unknown command {line:?} ({USAGE})")),
        }
    }
}

struct Client {
    stream: UnixStream,
    line: Vec<u8>,
    since: Instant,
}

/// The listening control socket and its connected clients.
pub(super) struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
    /// The socket file's (device, inode): removed at exit only if it is still ours.
    identity: (u64, u64),
    clients: Vec<Client>,
}

impl ControlSocket {
    /// `--control-socket`, if given: bound, or `Err` once the reason is logged.
    pub fn open(path: Option<&Path>, logs: &ProcessLogs) -> Result<Option<ControlSocket>, ()> {
        let Some(path) = path else { return Ok(None) };
        ControlSocket::bind(path).map(Some).map_err(|e| {
            logs.info(format_args!("--control-socket {}: {e}", path.display()));
        })
    }

    /// Binds `path` with mode 0600. A socket file left by a master that is gone (nothing
    /// accepts on it) is replaced; a live one is refused, unless this master is taking over
    /// from it (`USR2`); any other file there is never touched. A replaced socket is swapped
    /// in by `rename`, so a client connecting meanwhile always finds one of the two masters
    /// (an unlink and bind would leave it a moment of "no such file").
    pub fn bind(path: &Path) -> io::Result<ControlSocket> {
        let replacing = match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => match UnixStream::connect(path) {
                Ok(_) if std::env::var_os(UPGRADED_FROM).is_none() => {
                    return Err(io::Error::other(
                        "a running server answers on it (stop it, or choose another path)",
                    ))
                }
                Ok(_) | Err(_) => true,
            },
            Ok(_) => {
                return Err(io::Error::other(
                    "the path exists and is not a socket; not replacing it",
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        let listener = if replacing {
            bind_and_rename(path)?
        } else {
            bind_private(path)?
        };
        listener.set_nonblocking(true)?;
        let meta = std::fs::metadata(path)?;
        Ok(ControlSocket {
            listener,
            path: path.to_path_buf(),
            identity: (meta.dev(), meta.ino()),
            clients: Vec::new(),
        })
    }

    /// The descriptors the master's wait should watch (the listener only while there is
    /// room for another client: a waiting connection must not wake the master in a loop).
    pub fn fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        let room = self.clients.len() < MAX_CLIENTS;
        room.then(|| self.listener.as_fd())
            .into_iter()
            .chain(self.clients.iter().map(|c| c.stream.as_fd()))
    }

    /// The listener's descriptor number (closed in workers).
    pub fn raw_fd(&self) -> i32 {
        ironhorse_sys::fd_number(&self.listener)
    }

    /// Accepts waiting clients, reads what they sent, and answers each complete line with
    /// `handle`'s answer. Never blocks.
    pub fn serve(&mut self, mut handle: impl FnMut(Result<Command, String>) -> Value) {
        while self.clients.len() < MAX_CLIENTS {
            match self.listener.accept() {
                Ok((stream, _)) if stream.set_nonblocking(true).is_ok() => {
                    self.clients.push(Client {
                        stream,
                        line: Vec::new(),
                        since: Instant::now(),
                    })
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        self.clients.retain_mut(|client| match client.read_line() {
            Ok(Some(line)) => {
                let command = std::str::from_utf8(&line)
                    .map_err(|_| "the command is not UTF-8".to_string())
                    .and_then(|line| Command::parse(line.trim()));
                client.answer(&handle(command));
                false
            }
            Ok(None) => client.since.elapsed() < CLIENT_TIMEOUT,
            Err(e) => {
                client.answer(&error(&e));
                false
            }
        });
    }
}

/// Binds a socket at `path` readable and writable by its owner only, from the first instant:
/// no window in which others could connect.
fn bind_private(path: &Path) -> io::Result<UnixListener> {
    let old_mask = ironhorse_sys::set_umask(0o177);
    let bound = UnixListener::bind(path);
    ironhorse_sys::set_umask(old_mask);
    let listener = bound?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Binds a socket beside `path` and renames it over the socket file there, atomically.
/// Where the sibling cannot be bound (its name does not fit a socket address's 108 bytes,
/// or a file is already there), the old file is removed and `path` bound directly.
fn bind_and_rename(path: &Path) -> io::Result<UnixListener> {
    let mut sibling = path.as_os_str().to_owned();
    sibling.push(format!(".{}", std::process::id()));
    let sibling = PathBuf::from(sibling);
    match bind_private(&sibling) {
        Ok(listener) => {
            std::fs::rename(&sibling, path).inspect_err(|_| {
                let _ = std::fs::remove_file(&sibling);
            })?;
            Ok(listener)
        }
        Err(_) => {
            std::fs::remove_file(path)?;
            bind_private(path)
        }
    }
}

impl Client {
    /// A complete line (without its newline), `None` while it is still coming, `Err` for a
    /// client that hung up or sent too much.
    fn read_line(&mut self) -> Result<Option<Vec<u8>>, String> {
        let mut buf = [0u8; 512];
        loop {
            if let Some(end) = self.line.iter().position(|b| *b == b'\n') {
                self.line.truncate(end);
                return Ok(Some(std::mem::take(&mut self.line)));
            }
            if self.line.len() > MAX_LINE {
                return Err(format!("command longer than {MAX_LINE} bytes"));
            }
            match self.stream.read(&mut buf) {
                Ok(0) if self.line.is_empty() => return Err("no command".into()),
                // A last line without its newline still counts.
                Ok(0) => return Ok(Some(std::mem::take(&mut self.line))),
                Ok(n) => self.line.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// Writes the answer (a small line: it fits the socket buffer; bounded all the same).
    fn answer(&mut self, answer: &Value) {
        let mut line = answer.to_string();
        line.push('\n');
        let _ = self.stream.set_nonblocking(false);
        let _ = self
            .stream
            .set_write_timeout(Some(Duration::from_millis(500)));
        let _ = self.stream.write_all(line.as_bytes());
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let ours = std::fs::metadata(&self.path)
            .is_ok_and(|meta| (meta.dev(), meta.ino()) == self.identity);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

pub(super) fn error(message: &str) -> Value {
    json!({ "ok": false, "error": message })
}

fn done(message: String) -> Value {
    json!({ "ok": true, "message": message })
}

impl super::Master {
    /// Serves the control socket's clients, if there is one.
    pub(super) fn serve_control(&mut self) {
        if let Some(mut control) = self.control.take() {
            control.serve(|command| match command {
                Ok(command) => self.command(command),
                Err(e) => error(&e),
            });
            self.control = Some(control);
        }
    }

    /// Runs one command through the signal handlers; the answer.
    fn command(&mut self, command: Command) -> Value {
        match command {
            Command::Status => json!({
                "ok": true,
                "master": {
                    "pid": ironhorse_sys::process::pid(),
                    "model": self.plan.supervision.model,
                    "name": self.plan.supervision.name,
                    "uptime_s": self.started.elapsed().as_secs_f64(),
                    "workers_target": self.target,
                },
                "workers": self.workers.describe(),
            }),
            Command::Workers => json!({ "ok": true, "workers": self.workers.describe() }),
            Command::Reload => {
                self.handle(signals::SIGHUP);
                done(format!("reloading: {} workers being replaced", self.target))
            }
            Command::Add(n) if self.target + n > MAX_WORKERS => error(&format!(
                "add {n}: would make {} workers; at most {MAX_WORKERS}",
                self.target + n
            )),
            Command::Add(n) => {
                (0..n).for_each(|_| self.handle(signals::SIGTTIN));
                done(format!("workers: {}", self.target))
            }
            Command::Remove(n) if n >= self.target => error(&format!(
                "remove {n}: {} workers run and at least one must stay",
                self.target
            )),
            Command::Remove(n) => {
                (0..n).for_each(|_| self.handle(signals::SIGTTOU));
                done(format!("workers: {}", self.target))
            }
            Command::ReopenLogs => {
                self.handle(signals::SIGUSR1);
                done("log files reopened".into())
            }
            Command::Stop { quick } => {
                self.handle(if quick {
                    signals::SIGQUIT
                } else {
                    signals::SIGTERM
                });
                done(format!("{} stop", if quick { "quick" } else { "graceful" }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_and_mistakes_say_why() {
        assert_eq!(Command::parse("status"), Ok(Command::Status));
        assert_eq!(Command::parse(" add  3 "), Ok(Command::Add(3)));
        assert_eq!(Command::parse("remove 1"), Ok(Command::Remove(1)));
        assert_eq!(
            Command::parse("stop --quick"),
            Ok(Command::Stop { quick: true })
        );
        assert!(Command::parse("add 0").unwrap_err().contains("positive"));
        assert!(Command::parse("add").unwrap_err().contains("one number"));
        assert!(Command::parse("add x").unwrap_err().contains("\"x\""));
        assert!(Command::parse("bogus").unwrap_err().contains("unknown"));
        assert!(Command::parse("stop now").unwrap_err().contains("unknown"));
    }
}
