//! Importing the application from a gunicorn-style spec: `module`, `module:name`,
//! `module:factory()` or `module:factory(literal args)`.

use pyo3::exceptions::PySyntaxError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::report::log_exception;
use crate::WsgiError;

/// Parses the part after `:` with `ast`, as gunicorn does: a name, or a call of a name with
/// literal arguments.
const PARSE_SPEC: &std::ffi::CStr = cr#"
import ast

def parse(expr):
    try:
        node = ast.parse(expr.strip(), mode="eval").body
    except SyntaxError:
        raise ValueError("expected a name or a call such as create_app()")
    if isinstance(node, ast.Name):
        return node.id, None, None
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            raise ValueError("the factory must be a simple name")
        try:
            args = [ast.literal_eval(a) for a in node.args]
            kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
        except ValueError:
            raise ValueError("factory arguments must be literals")
        return node.func.id, args, kwargs
    raise ValueError("expected a name or a call such as create_app()")
"#;

/// Imports and returns the WSGI callable named by `spec`.
pub(crate) fn load_app(py: Python<'_>, spec: &str) -> Result<Py<PyAny>, WsgiError> {
    let (module, expr) = spec.split_once(':').unwrap_or((spec, "application"));
    let bad = |reason: String| WsgiError::BadSpec {
        spec: spec.to_string(),
        reason,
    };
    if module.is_empty() {
        return Err(bad("no module named before ':'".into()));
    }
    let parser = PyModule::from_code(py, PARSE_SPEC, c"<ironhorse>", c"_ironhorse_spec")
        .and_then(|m| m.getattr("parse"))
        .map_err(|e| WsgiError::Init(e.to_string()))?;
    let (name, args, kwargs): (String, Option<Bound<'_, PyList>>, Option<Bound<'_, PyDict>>) =
        parser
            .call1((expr,))
            .and_then(|parsed| parsed.extract())
            .map_err(|e| bad(e.value(py).to_string()))?;

    let imported = py.import(module).map_err(|e| WsgiError::Import {
        module: module.to_string(),
        error: describe_import_error(py, &e, module),
    })?;
    let mut app = match imported.getattr(name.as_str()) {
        Ok(obj) => obj,
        Err(_) => {
            return Err(WsgiError::MissingAttribute {
                module: module.to_string(),
                name,
            })
        }
    };
    if let Some(args) = args {
        let args = PyTuple::new(py, args.iter()).map_err(|e| WsgiError::Init(e.to_string()))?;
        app = app.call(args, kwargs.as_ref()).map_err(|e| {
            log_exception(py, &e, &format!("application factory {spec:?} raised"));
            WsgiError::Factory {
                spec: spec.to_string(),
                error: one_line(py, &e),
            }
        })?;
    }
    if !app.is_callable() {
        return Err(WsgiError::NotCallable {
            spec: spec.to_string(),
            type_name: app
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default(),
        });
    }
    Ok(app.unbind())
}

/// `Type: message`; for a SyntaxError, `SyntaxError: message (file:line)`. Exceptions other
/// than import/syntax errors also get their traceback logged, since they come from the app's
/// own module code.
fn describe_import_error(py: Python<'_>, err: &PyErr, module: &str) -> String {
    if err.is_instance_of::<PySyntaxError>(py) {
        let v = err.value(py);
        let get = |attr: &str| {
            v.getattr(attr)
                .ok()
                .filter(|a| !a.is_none())
                .map(|a| a.to_string())
        };
        let msg = get("msg").unwrap_or_else(|| v.to_string());
        let file = get("filename").unwrap_or_else(|| "?".into());
        let line = get("lineno").unwrap_or_else(|| "?".into());
        return format!("{}: {msg} ({file}:{line})", type_name(py, err));
    }
    if !err.is_instance_of::<pyo3::exceptions::PyImportError>(py) {
        log_exception(py, err, &format!("importing {module:?} raised"));
    }
    one_line(py, err)
}

fn type_name(py: Python<'_>, err: &PyErr) -> String {
    err.get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".into())
}

fn one_line(py: Python<'_>, err: &PyErr) -> String {
    let msg = err.value(py).to_string();
    let msg = msg.lines().next().unwrap_or("");
    if msg.is_empty() {
        type_name(py, err)
    } else {
        format!("{}: {msg}", type_name(py, err))
    }
}
