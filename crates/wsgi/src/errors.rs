//! Startup errors: each displays as one line that names what to fix.

use std::fmt;

/// Why the interpreter or the application could not be set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsgiError {
    /// The interpreter failed to start or to take the configured paths.
    Init(String),
    /// The application spec is malformed (`module:callable`, `module:factory(args)`).
    BadSpec { spec: String, reason: String },
    /// Importing the module raised (ImportError, SyntaxError with file:line, any other).
    Import { module: String, error: String },
    /// The module has no such attribute.
    MissingAttribute { module: String, name: String },
    /// Calling the application factory raised.
    Factory { spec: String, error: String },
    /// The object found is not callable.
    NotCallable { spec: String, type_name: String },
}

impl fmt::Display for WsgiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsgiError::Init(msg) => write!(f, "cannot start Python: {msg}"),
            WsgiError::BadSpec { spec, reason } => {
                write!(f, "bad application spec {spec:?}: {reason}")
            }
            WsgiError::Import { module, error } => {
                write!(f, "cannot import module {module:?}: {error}")
            }
            WsgiError::MissingAttribute { module, name } => {
                write!(f, "module {module:?} has no attribute {name:?}")
            }
            WsgiError::Factory { spec, error } => {
                write!(f, "application factory {spec:?} failed: {error}")
            }
            WsgiError::NotCallable { spec, type_name } => {
                write!(
                    f,
                    "application {spec:?} is not callable (it is a {type_name})"
                )
            }
        }
    }
}

impl std::error::Error for WsgiError {}
