//! Application exceptions at run time: logged through Python's own traceback machinery.

use pyo3::prelude::*;
use pyo3::types::PyString;

/// Formats `err` with `traceback.format_exception`, writes it to `sys.stderr` after a
/// one-line `context`, and returns the traceback text (for debug responses).
pub fn log_exception(py: Python<'_>, err: &PyErr, context: &str) -> String {
    let text = format_exception(py, err);
    let line = format!("[ironhorse] {context}\n{text}");
    let written = py.import("sys").and_then(|sys| {
        let stderr = sys.getattr("stderr")?;
        stderr.call_method1("write", (PyString::new(py, &line),))?;
        stderr.call_method0("flush")
    });
    if written.is_err() {
        eprint!("{line}");
    }
    text
}

fn format_exception(py: Python<'_>, err: &PyErr) -> String {
    let formatted = py.import("traceback").and_then(|tb| {
        let lines = tb.call_method1(
            "format_exception",
            (err.get_type(py), err.value(py), err.traceback(py)),
        )?;
        PyString::new(py, "")
            .call_method1("join", (lines,))?
            .extract::<String>()
    });
    formatted.unwrap_or_else(|_| format!("{err}\n"))
}
