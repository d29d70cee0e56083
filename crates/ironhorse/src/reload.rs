//! `--reload` (development): watch the application's source with `notify` and, on a change,
//! have the master replace its workers (it imports nothing itself), or — with no master —
//! re-exec this process on the same sockets. An app that fails to import is answered by
//! [`LoadFailed`] until the next save fixes it, so the server never goes away under the
//! developer's feet.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ironhorse_app::{Request, Response, Service};
use ironhorse_process::Processes;
use ironhorse_runtime::listener::Listener;
use notify::{EventKind, RecursiveMode, Watcher};

use crate::settings::Settings;
use crate::values::SettingError;

/// What a change leads to.
pub enum OnChange {
    /// Tell the master through this pipe (the write end); it replaces the workers.
    Master(OwnedFd),
    /// No master: re-exec this binary, handing it these sockets (`LISTEN_FDS`).
    Reexec(Vec<Listener>),
}

/// Refuses `--reload` where it cannot work, in one line; otherwise asks Python not to
/// write bytecode caches (a `.pyc` written in the same second as an edit of the same size
/// would be taken for the new source). Call while the process is single-threaded.
pub fn prepare(settings: &Settings) -> Result<(), SettingError> {
    if settings.reload && settings.preload {
        return Err(SettingError("--reload cannot be used with --preload: the master would hold the old code, and every new worker would be forked from it".into()));
    }
    if !settings.reload && !settings.reload_extra_file.is_empty() {
        return Err(SettingError(
            "--reload-extra-file is only watched with --reload".into(),
        ));
    }
    if settings.reload {
        std::env::set_var("PYTHONDONTWRITEBYTECODE", "1");
    }
    Ok(())
}

/// Starts watching (for the life of the process). Call with `settings.reload` set.
pub fn watch(settings: &Settings, on_change: OnChange) -> Result<(), SettingError> {
    let (code, extra) = watched_paths(settings);
    let extra_for_filter = extra.clone();
    let debounce = Arc::new(Debounce::new(on_change));
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if !matches!(
            event.kind,
            EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
        ) {
            return;
        }
        let changed = event
            .paths
            .iter()
            .find(|path| is_source(path) || extra_for_filter.iter().any(|e| path.starts_with(e)));
        if let Some(path) = changed {
            Debounce::event(&debounce, path);
        }
    })
    .map_err(|e| SettingError(format!("--reload: cannot watch files: {e}")))?;
    let extra_watches = extra.iter().map(|p| (p.clone(), RecursiveMode::Recursive));
    for (path, mode) in code.into_iter().chain(extra_watches) {
        watcher
            .watch(&path, mode)
            .map_err(|e| SettingError(format!("--reload: cannot watch {}: {e}", path.display())))?;
    }
    // The watcher runs its own thread for the life of the process.
    std::mem::forget(watcher);
    Ok(())
}

/// Editors save in several steps (truncate, write, rename): act once the events have been
/// quiet for [`QUIET`], so the new code is read whole and a re-exec does not miss the rest.
struct Debounce {
    on_change: OnChange,
    pending: Mutex<Pending>,
}

struct Pending {
    /// The first path changed since the last action.
    first: Option<PathBuf>,
    /// When the last event came.
    last: Instant,
    /// Whether a thread is waiting for the quiet.
    waiting: bool,
}

const QUIET: Duration = Duration::from_millis(100);

impl Debounce {
    fn new(on_change: OnChange) -> Debounce {
        Debounce {
            on_change,
            pending: Mutex::new(Pending {
                first: None,
                last: Instant::now(),
                waiting: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn event(this: &Arc<Debounce>, path: &Path) {
        let mut pending = this.lock();
        pending.first.get_or_insert_with(|| path.to_path_buf());
        pending.last = Instant::now();
        if pending.waiting {
            return;
        }
        pending.waiting = true;
        let waiter = this.clone();
        let spawned = std::thread::Builder::new()
            .name("ih-reload".into())
            .spawn(move || loop {
                std::thread::sleep(QUIET / 2);
                let mut pending = waiter.lock();
                if pending.last.elapsed() < QUIET {
                    continue;
                }
                pending.waiting = false;
                let first = pending.first.take();
                drop(pending);
                if let Some(path) = first {
                    changed_file(&path, &waiter.on_change);
                }
                return;
            });
        if spawned.is_err() {
            // No thread to wait with: act now rather than never.
            pending.waiting = false;
            if let Some(path) = pending.first.take() {
                drop(pending);
                changed_file(&path, &this.on_change);
            }
        }
    }
}

fn changed_file(path: &Path, on_change: &OnChange) {
    match on_change {
        OnChange::Master(pipe) => {
            // One line, under PIPE_BUF: written whole; a full pipe already holds a change.
            let line = format!("{}\n", path.display());
            let line = &line.as_bytes()[..line.len().min(512)];
            let _ = ironhorse_sys::write_nonblocking(pipe.as_fd(), line);
        }
        OnChange::Reexec(listeners) => reexec(path, listeners),
    }
}

/// Python sources: `*.py`, not compiled files, not editors' hidden temporaries.
fn is_source(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_none_or(|n| n.starts_with('.'));
    path.extension().is_some_and(|e| e == "py")
        && !hidden
        && !path.components().any(|c| c.as_os_str() == "__pycache__")
}

/// The application's code (`--chdir`, recursively; else the app module's package or file
/// found on the Python path) and the extra paths.
fn watched_paths(settings: &Settings) -> (Vec<(PathBuf, RecursiveMode)>, Vec<PathBuf>) {
    let mut code = Vec::new();
    if let Some(dir) = &settings.chdir {
        code.push((dir.clone(), RecursiveMode::Recursive));
    }
    let top = settings
        .app
        .as_deref()
        .map(|spec| {
            spec.split([':', '.'])
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .unwrap_or_default();
    let mut roots = settings.python_path();
    roots.push(settings.chdir.clone().unwrap_or_else(|| PathBuf::from(".")));
    for root in roots.iter().filter(|_| !top.is_empty()) {
        let package = root.join(&top);
        if package.is_dir() {
            code.push((package, RecursiveMode::Recursive));
        } else if root.join(format!("{top}.py")).is_file() {
            // The folder, not the file: editors replace files by renaming over them.
            code.push((root.clone(), RecursiveMode::NonRecursive));
        }
    }
    (code, settings.reload_extra_file.clone())
}

/// Replaces this process with a fresh copy of the binary, same arguments, on the same
/// sockets. Runs on the watcher's thread; `exec` ends every other thread.
fn reexec(changed: &Path, listeners: &[Listener]) {
    eprintln!(
        "[ironhorse] [{}] [INFO] --reload: {} changed; restarting",
        std::process::id(),
        changed.display()
    );
    ironhorse_process::flush_logs();
    let program = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return eprintln!("ironhorse: --reload: cannot find the binary: {e}"),
    };
    let fds: Vec<_> = listeners.iter().map(|l| l.as_fd()).collect();
    if let Err(e) = ironhorse_sys::pass_fds_for_exec(&fds) {
        return eprintln!("ironhorse: --reload: cannot pass the sockets: {e}");
    }
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| !k.starts_with("LISTEN_"))
        .collect();
    env.push(("LISTEN_FDS".into(), listeners.len().to_string()));
    env.push(("LISTEN_PID".into(), std::process::id().to_string()));
    let args: Vec<String> = std::env::args().collect();
    let error = ironhorse_sys::exec(&program, &args, &env);
    eprintln!(
        "ironhorse: --reload: cannot restart {}: {error}",
        program.display()
    );
}

/// Answers every request while the application cannot be imported: 500, with the error
/// under `--debug` (the traceback is in the error log either way).
pub struct LoadFailed {
    pub message: String,
    pub debug: bool,
}

impl Service for LoadFailed {
    fn call(&self, _req: Request<'_>) -> Response {
        let body = if self.debug {
            format!(
                "Internal Server Error: the application failed to load (--reload: fix it and save)\n\n{}\n",
                self.message
            )
        } else {
            "Internal Server Error\n".to_string()
        };
        Response::text(500, body)
    }
}

/// Wraps a load error for `--reload`: logged, then served as [`LoadFailed`].
pub fn load_failed(
    message: String,
    debug: bool,
    log: &Option<ironhorse_log::ErrorLog>,
) -> Arc<dyn Service> {
    let line = format!(
        "--reload: the application failed to load; answering 500 until the next change: {message}"
    );
    match log {
        Some(log) => log.log(ironhorse_log::Level::Error, format_args!("{line}")),
        None => eprintln!("[ironhorse] [ERROR] {line}"),
    }
    Arc::new(LoadFailed { message, debug })
}

/// Starts `--reload` for a server about to load its app (before, so no change is missed):
/// with a master, returns the pipe it waits on; with none, changes re-exec this process on
/// the same sockets.
pub fn start(
    settings: &Settings,
    strategy: Processes,
    listeners: &[Listener],
) -> Result<Option<Arc<OwnedFd>>, SettingError> {
    if !settings.reload {
        return Ok(None);
    }
    if strategy == Processes::Prefork {
        let (read, write) = ironhorse_sys::pipe()
            .map_err(|e| SettingError(format!("--reload: cannot create a pipe: {e}")))?;
        watch(settings, OnChange::Master(write))?;
        return Ok(Some(Arc::new(read)));
    }
    let clones = listeners
        .iter()
        .map(Listener::try_clone)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SettingError(format!("--reload: cannot keep the sockets: {e}")))?;
    watch(settings, OnChange::Reexec(clones))?;
    Ok(None)
}
