//! The access and error logs, from the settings.

use std::sync::Arc;

use ironhorse_log::{AccessFormat, AccessLog, ErrorLog, LogSink};

use crate::settings::Settings;
use crate::values::SettingError;

/// The configured logs.
pub struct Logs {
    pub access: Option<AccessLog>,
    pub error: ErrorLog,
    /// The error log file standard error was pointed at (`None`: `-`, standard error itself).
    stderr_file: Option<std::path::PathBuf>,
    /// What standard error was before it was pointed at the error log file.
    console: Option<Arc<std::fs::File>>,
}

impl Logs {
    /// Opens the log files.
    pub fn open(settings: &Settings) -> Result<Logs, SettingError> {
        let error_target = &settings.error_logfile;
        let error_sink = LogSink::open_error(error_target)
            .map_err(|e| SettingError(format!("--error-logfile {error_target}: {e}")))?;
        let error = ErrorLog::new(error_sink, settings.log_level);
        let stderr_file = (error_target != "-").then(|| std::path::PathBuf::from(error_target));
        let console = match &stderr_file {
            // Application tracebacks, `wsgi.errors` and anything else written to standard
            // error belong in the error log too (under `-D` standard error is /dev/null).
            Some(path) => Some(Arc::new(std::fs::File::from(
                ironhorse_sys::redirect_stderr(path)
                    .map_err(|e| SettingError(format!("--error-logfile {error_target}: {e}")))?,
            ))),
            None => None,
        };
        let access = match &settings.access_logfile {
            None => None,
            Some(target) => {
                let format = if settings.access_log_json {
                    AccessFormat::Json
                } else {
                    AccessFormat::text(&settings.access_logformat)
                        .map_err(|e| SettingError(format!("--access-logformat: {e}")))?
                };
                let sink = LogSink::open_access(target)
                    .map_err(|e| SettingError(format!("--access-logfile {target}: {e}")))?;
                Some(AccessLog::new(sink, format))
            }
        };
        Ok(Logs {
            access,
            error,
            stderr_file,
            console,
        })
    }

    /// What the server's processes log to (the error log), and flush before exiting.
    pub fn for_processes(&self) -> ironhorse_process::ProcessLogs {
        ironhorse_process::ProcessLogs::new(self.error.clone(), self.flusher())
    }

    /// Flushes both logs (before exiting).
    pub fn flusher(&self) -> Arc<dyn Fn() + Send + Sync> {
        let (access, error) = (self.access.clone(), self.error.clone());
        Arc::new(move || {
            if let Some(access) = &access {
                let _ = access.flush();
            }
            let _ = error.flush();
        })
    }

    /// Where the server announces its addresses: the console it was started from, and the
    /// error log file too when there is one.
    pub fn announcer(&self) -> impl Fn(&str) + Send + 'static {
        let (console, error) = (self.console.clone(), self.error.clone());
        move |line: &str| match &console {
            Some(console) => {
                use std::io::Write;
                let _ = writeln!(&**console, "[ironhorse] [{}] {line}", std::process::id());
                error.info(format_args!("{line}"));
            }
            None => eprintln!("[ironhorse] [{}] {line}", std::process::id()),
        }
    }

    /// Reopens both logs (on `SIGUSR1`, after logrotate moved them).
    pub fn reopener(&self) -> Arc<dyn Fn() + Send + Sync> {
        let (access, error) = (self.access.clone(), self.error.clone());
        let stderr_file = self.stderr_file.clone();
        Arc::new(move || {
            if let Some(access) = &access {
                let _ = access.reopen();
            }
            let _ = error.reopen();
            if let Some(path) = &stderr_file {
                // The console descriptor it returns is the old file's: dropped.
                let _ = ironhorse_sys::redirect_stderr(path);
            }
        })
    }
}
