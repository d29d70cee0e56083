//! The embedded interpreter: start-up, one persistent thread state per OS thread, and fork.
//!
//! * Two hosts: the standalone binary starts CPython itself (below); the pip-installed
//!   package runs the server inside the interpreter that imported it ("hosted"), so start-up
//!   is skipped and that interpreter (its venv, its `sys.path`) is the one the app gets.
//! * Start-up goes through a `PyConfig` with `executable` set explicitly, so the runtime finds
//!   the stdlib (and virtualenv) that belongs to the libpython we linked, never a neighbour's.
//! * `Python::attach` on a thread without a thread state creates and destroys one per call,
//!   which costs more than a trivial WSGI call. [`attach`] gives every OS thread one persistent
//!   thread state instead (`PyGILState_Ensure` + `PyEval_SaveThread` once); later attaches only
//!   swap it in. It is deleted when the thread exits.
//! * Fork happens with the GIL held and CPython's fork hooks run around it, so the child
//!   inherits a consistent interpreter. In the child only the forking thread survives; its
//!   thread-local state is still accurate, and CPython deletes the other threads' states.

use std::cell::Cell;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::{WsgiConfig, WsgiError};

/// Who started the interpreter this process runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Host {
    /// We did, from a `PyConfig` (the standalone binary).
    #[cfg_attr(Py_LIMITED_API, allow(dead_code))]
    Embedded,
    /// It was running before us: we are an extension module inside `python`.
    Hosted,
}

/// The outcome of the one interpreter start-up per process.
static STARTED: OnceLock<Result<Host, String>> = OnceLock::new();

/// Starts the interpreter (once per process) and puts `chdir`/`pythonpath` on `sys.path`.
///
/// Idempotent: later calls only add missing `sys.path` entries. Leaves the GIL released.
pub fn init_python(cfg: &WsgiConfig) -> Result<(), WsgiError> {
    let host = STARTED
        .get_or_init(|| start(cfg))
        .clone()
        .map_err(WsgiError::Init)?;
    if host == Host::Hosted {
        check_hosted_virtualenv(cfg)?;
        sync_environ()?;
    }
    configure_paths(cfg)
}

/// Hosted, the interpreter (and so its virtualenv) is already chosen: an explicit
/// `--virtualenv` naming another one cannot be honoured, so say so instead of ignoring it.
fn check_hosted_virtualenv(cfg: &WsgiConfig) -> Result<(), WsgiError> {
    let Some(wanted) = &cfg.virtualenv else {
        return Ok(());
    };
    let prefix =
        attach(|py| -> PyResult<String> { py.import("sys")?.getattr("prefix")?.extract() })
            .map_err(|e| WsgiError::Init(format!("cannot read sys.prefix: {e}")))?;
    let same = match (wanted.canonicalize(), Path::new(&prefix).canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        return Ok(());
    }
    Err(WsgiError::Init(format!(
        "--virtualenv {}: this ironhorse runs inside the Python of {prefix} (it was installed \
         there with pip); install it into {} and run {}/bin/ironhorse instead",
        wanted.display(),
        wanted.display(),
        wanted.display()
    )))
}

/// Hosted, `os.environ` was read when `python` started, before our settings (`-e KEY=VALUE`,
/// `--env` in a config file) changed the process environment: bring it up to date, as an
/// embedded interpreter started after those changes would see it.
fn sync_environ() -> Result<(), WsgiError> {
    let process: std::collections::HashMap<OsString, OsString> = std::env::vars_os().collect();
    attach(|py| -> PyResult<()> {
        let environ = py.import("os")?.getattr("environ")?;
        let known: Vec<OsString> = environ
            .call_method0("keys")?
            .try_iter()?
            .map(|k| k?.extract())
            .collect::<PyResult<_>>()?;
        for key in known.iter().filter(|k| !process.contains_key(*k)) {
            environ.del_item(key)?;
        }
        for (key, value) in &process {
            let current: Option<OsString> = environ.call_method1("get", (key,))?.extract()?;
            if current.as_ref() != Some(value) {
                environ.set_item(key, value)?;
            }
        }
        Ok(())
    })
    .map_err(|e| WsgiError::Init(format!("cannot update os.environ: {e}")))
}

fn start(cfg: &WsgiConfig) -> Result<Host, String> {
    if initialised() {
        // Hosted: the interpreter that imported us; its threads get their states in `attach`.
        return Ok(Host::Hosted);
    }
    embedding::embed(cfg)
}

/// A stable-ABI (abi3) build is only ever an extension module: it cannot start CPython
/// (the `PyConfig` API is outside the limited API), and never needs to.
#[cfg(Py_LIMITED_API)]
mod embedding {
    pub(super) fn embed(_cfg: &crate::WsgiConfig) -> Result<super::Host, String> {
        Err("this build (stable ABI) runs only inside Python: use `python -m ironhorse`".into())
    }
}

/// Starting CPython ourselves (the standalone binary): outside the limited API.
#[cfg(not(Py_LIMITED_API))]
mod embedding {
    use std::ffi::{CStr, CString};
    use std::mem::MaybeUninit;
    use std::os::unix::ffi::OsStrExt;
    use std::path::PathBuf;

    use pyo3::ffi;

    use super::{Host, Ownership, THREAD_STATE};
    use crate::WsgiConfig;

    /// Starts CPython from a `PyConfig` naming the interpreter explicitly (the standalone binary).
    pub(super) fn embed(cfg: &WsgiConfig) -> Result<Host, String> {
        let exe = executable(cfg)?;
        let exe = exe
            .map(|p| CString::new(p.as_os_str().as_bytes()))
            .transpose()
            .map_err(|_| "interpreter path contains a NUL byte".to_string())?;
        let mut config = MaybeUninit::<ffi::PyConfig>::uninit();
        // SAFETY: PyConfig_InitPythonConfig fully initialises the struct before we read it; the
        // string we hand to PyConfig_SetBytesString outlives the call (it copies); PyConfig_Clear
        // frees what the config owns, after Py_InitializeFromConfig copied what it needs. We run
        // under the OnceLock, so no other thread initialises concurrently through us.
        unsafe {
            ffi::PyConfig_InitPythonConfig(config.as_mut_ptr());
            let mut config = config.assume_init();
            config.install_signal_handlers = 0;
            if let Some(exe) = &exe {
                let status =
                    ffi::PyConfig_SetBytesString(&mut config, &mut config.executable, exe.as_ptr());
                if ffi::PyStatus_Exception(status) != 0 {
                    ffi::PyConfig_Clear(&mut config);
                    return Err(status_message(&status));
                }
            }
            let status = ffi::Py_InitializeFromConfig(&config);
            ffi::PyConfig_Clear(&mut config);
            if ffi::PyStatus_Exception(status) != 0 {
                return Err(status_message(&status));
            }
            // Hand the GIL back: PyO3 expects to find it released.
            ffi::PyEval_SaveThread();
        }
        // This thread keeps the main thread state Py_Initialize made: mark it as present, and not
        // ours to delete (its TLS destructor may run inside `exit`).
        THREAD_STATE.with(|s| s.set(Ownership::Interpreter));
        Ok(Host::Embedded)
    }

    /// The `executable` to give CPython: the virtualenv's interpreter if one is configured (or
    /// `$VIRTUAL_ENV` is set), else the interpreter PyO3 was built against.
    fn executable(cfg: &WsgiConfig) -> Result<Option<PathBuf>, String> {
        let venv = cfg
            .virtualenv
            .clone()
            .or_else(|| std::env::var_os("VIRTUAL_ENV").map(PathBuf::from));
        if let Some(venv) = venv {
            let exe = venv.join("bin").join("python");
            if !exe.exists() {
                return Err(format!("virtualenv {} has no bin/python", venv.display()));
            }
            return Ok(Some(exe));
        }
        Ok(option_env!("IRONHORSE_PYTHON_EXECUTABLE")
            .map(PathBuf::from)
            .filter(|p| p.exists()))
    }

    /// The text of a failed `PyStatus`.
    fn status_message(status: &ffi::PyStatus) -> String {
        if status.err_msg.is_null() {
            return "interpreter initialisation failed".into();
        }
        // SAFETY: a non-null err_msg is a static NUL-terminated C string set by CPython.
        let msg = unsafe { CStr::from_ptr(status.err_msg) }.to_string_lossy();
        if status.func.is_null() {
            msg.into_owned()
        } else {
            // SAFETY: as above, for the function name.
            let func = unsafe { CStr::from_ptr(status.func) }.to_string_lossy();
            format!("{func}: {msg}")
        }
    }
}

/// `chdir`, then `pythonpath` entries and the working directory at the front of `sys.path`.
fn configure_paths(cfg: &WsgiConfig) -> Result<(), WsgiError> {
    if let Some(dir) = &cfg.chdir {
        std::env::set_current_dir(dir)
            .map_err(|e| WsgiError::Init(format!("cannot chdir to {}: {e}", dir.display())))?;
    }
    let cwd = std::env::current_dir()
        .map_err(|e| WsgiError::Init(format!("cannot read the working directory: {e}")))?;
    let mut entries: Vec<PathBuf> = cfg.pythonpath.iter().map(|p| cwd.join(p)).collect();
    entries.push(cwd);
    attach(|py| -> PyResult<()> {
        let path = py.import("sys")?.getattr("path")?.cast_into::<PyList>()?;
        for entry in entries.iter().rev() {
            let entry = path_str(entry);
            if !path.contains(&entry)? {
                path.insert(0, entry)?;
            }
        }
        Ok(())
    })
    .map_err(|e| WsgiError::Init(format!("cannot set sys.path: {e}")))
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Who owns this thread's Python thread state.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ownership {
    /// Not created yet.
    None,
    /// Created by [`attach`]; deleted when the thread exits.
    Ours,
    /// A state someone else made (the initialising thread's, or a hosting Python thread's):
    /// lives as long as they keep it, never deleted by us.
    Interpreter,
}

/// This thread's persistent thread state; its destructor deletes the state when it is ours.
struct ThreadState(Cell<Ownership>);

impl ThreadState {
    fn set(&self, o: Ownership) {
        self.0.set(o)
    }
}

impl Drop for ThreadState {
    fn drop(&mut self) {
        // SAFETY: the state exists and belongs to this thread (we made it, with gilstate
        // counter 1). Ensure takes the GIL (counter 2); Release(LOCKED) drops the counter to 1
        // keeping the GIL; Release(UNLOCKED) drops it to 0, which clears and deletes the
        // thread state and releases the GIL.
        unsafe {
            if self.0.get() == Ownership::Ours && ffi::Py_IsInitialized() != 0 {
                ffi::PyGILState_Ensure();
                ffi::PyGILState_Release(ffi::PyGILState_STATE::PyGILState_LOCKED);
                ffi::PyGILState_Release(ffi::PyGILState_STATE::PyGILState_UNLOCKED);
            }
        }
    }
}

thread_local! {
    static THREAD_STATE: ThreadState = const { ThreadState(Cell::new(Ownership::None)) };
    /// The GIL state taken by `before_fork`, released by the `after_fork_*` hook.
    static FORK_GIL: Cell<Option<ffi::PyGILState_STATE>> = const { Cell::new(None) };
}

/// Where this thread stands in a driver's turn (see [`turn`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Turn {
    /// No turn: every [`attach`] takes the GIL and gives it back.
    Off,
    /// In a turn; no call has taken the GIL yet.
    Open,
    /// In a turn, and the GIL is held from the first call to the turn's end.
    Held,
}

thread_local! {
    static TURN: Cell<Turn> = const { Cell::new(Turn::Off) };
}

/// Runs one turn of an event loop that calls the application on its own thread
/// (`--threads 0`): the first [`attach`] in it takes the GIL and keeps it until `work`
/// returns, so the turn's further requests skip the GIL's hand-over (a mutex and a condition
/// variable each way, about 400 instructions per request). The driver must not wait for
/// anything but its own sockets inside `work`: another thread that wants the GIL waits for
/// the turn's end (an application's own threads still get it whenever its Python code runs,
/// through CPython's switch interval). Re-entrant: a nested turn is part of the outer one.
///
/// Under the stable ABI (abi3 wheels) a turn changes nothing: whether this thread holds the
/// GIL cannot be asked there.
pub fn turn(work: &mut dyn FnMut()) {
    if cfg!(Py_LIMITED_API) || TURN.get() != Turn::Off {
        return work();
    }
    /// Ends the turn, even when `work` panics.
    struct End;
    impl Drop for End {
        fn drop(&mut self) {
            if TURN.replace(Turn::Off) == Turn::Held {
                // SAFETY: `Held` means `attach` restored this thread's state and so holds
                // the GIL, and no `attach` is running (the turn's work returned).
                unsafe {
                    ffi::PyEval_SaveThread();
                }
            }
        }
    }
    TURN.set(Turn::Open);
    let _end = End;
    work();
}

/// `Python::attach`, but first giving this OS thread its persistent thread state (and,
/// inside a [`turn`], keeping the GIL until the turn ends).
pub fn attach<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> R {
    persistent_state();
    if TURN.get() == Turn::Open {
        // SAFETY: the interpreter runs and this thread has its state (just ensured). It is
        // restored only when this thread does not hold the GIL already, so it takes the GIL
        // once; `turn`'s end saves it again. PyO3's attach below then finds the GIL held
        // (PyGILState_Ensure answers LOCKED, and its release keeps the GIL).
        #[cfg(not(Py_LIMITED_API))]
        unsafe {
            if ffi::PyGILState_Check() == 0 {
                ffi::PyEval_RestoreThread(ffi::PyGILState_GetThisThreadState());
                TURN.set(Turn::Held);
            }
        }
    }
    Python::attach(f)
}

/// Gives this OS thread its persistent thread state, once.
fn persistent_state() {
    THREAD_STATE.with(|s| {
        if s.0.get() == Ownership::None {
            // SAFETY: the interpreter is initialised (WsgiApp exists only after init). A
            // thread that already has a state (a Python thread that called into us, hosted,
            // or one in a nested call) keeps it and PyO3's attach swaps it in. A thread
            // without one cannot hold the GIL: Ensure creates its state and takes the GIL,
            // and SaveThread releases the GIL while the state stays registered (counter 1).
            unsafe {
                if !ffi::PyGILState_GetThisThreadState().is_null() {
                    s.set(Ownership::Interpreter);
                } else {
                    ffi::PyGILState_Ensure();
                    ffi::PyEval_SaveThread();
                    s.set(Ownership::Ours);
                }
            }
        }
    });
}

fn initialised() -> bool {
    // SAFETY: always safe to ask.
    unsafe { ffi::Py_IsInitialized() != 0 }
}

/// Takes the GIL (kept across `fork()`) and runs CPython's pre-fork hooks.
pub fn before_fork() {
    if !initialised() {
        return;
    }
    // SAFETY: the interpreter is running; Ensure works with or without a thread state here,
    // and PyOS_BeforeFork requires the GIL, which Ensure just gave us.
    unsafe {
        let state = ffi::PyGILState_Ensure();
        ffi::PyOS_BeforeFork();
        FORK_GIL.with(|g| g.set(Some(state)));
    }
}

/// In the parent after `fork()`: CPython's parent hooks, then the GIL goes back.
pub fn after_fork_parent() {
    if let Some(state) = FORK_GIL.with(|g| g.take()) {
        // SAFETY: `before_fork` on this thread left us holding the GIL with `state`.
        unsafe {
            ffi::PyOS_AfterFork_Parent();
            ffi::PyGILState_Release(state);
        }
    }
}

/// In the child after `fork()`: CPython re-initialises its locks and forgets the threads that
/// did not survive; then the GIL goes back. This thread's persistent state (if any) stays
/// valid, so the thread-local bookkeeping needs no change.
pub fn after_fork_child() {
    if let Some(state) = FORK_GIL.with(|g| g.take()) {
        // SAFETY: the forking thread (this one) holds the GIL, as PyOS_AfterFork_Child needs.
        unsafe {
            ffi::PyOS_AfterFork_Child();
            ffi::PyGILState_Release(state);
        }
    }
}
