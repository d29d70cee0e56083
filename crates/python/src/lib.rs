//! `ironhorse._ironhorse`: the ironhorse server as a CPython extension module.
//!
//! `pip install ironhorse` puts this module and a console script into a virtualenv; the
//! script calls `main` with the command line, and the server runs in that very process,
//! inside the interpreter that imported us (so the venv's own CPython runs the app, with no
//! libpython of ours to pick). The process is the master of the fork-based models: the
//! server forks it with CPython's fork hooks, installs its own signal handlers over Python's
//! (SIGINT included), and names the processes with `-n` exactly as the standalone binary
//! does.

use std::ffi::OsString;

use pyo3::prelude::*;

#[pymodule]
mod _ironhorse {
    use super::*;

    /// Runs `ironhorse` with `argv` (program name first) and returns its exit code.
    ///
    /// Blocks until the server stops. The GIL is released for the whole run: the server's
    /// threads take it whenever they call the application, like they do in the binary.
    #[pyfunction]
    fn main(py: Python<'_>, argv: Vec<OsString>) -> i32 {
        py.detach(|| ironhorse::run(argv))
    }

    /// The version of the server built into this module (`ironhorse.__version__`).
    #[allow(non_upper_case_globals)] // Python's dunder name
    #[pymodule_export]
    const __version__: &str = env!("CARGO_PKG_VERSION");
}
