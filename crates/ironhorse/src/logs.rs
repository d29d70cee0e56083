//! The access and error logs, from the settings; installed process-wide for the server.

use std::sync::Arc;

use ironhorse_log::{AccessFormat, AccessLog, ErrorLog, LogSink};

use crate::settings::Settings;
use crate::values::SettingError;

/// The configured logs.
pub struct Logs {
    pub access: Option<AccessLog>,
    pub error: ErrorLog,
}

impl Logs {
    /// Opens the log files and makes the error log the server's.
    pub fn open(settings: &Settings) -> Result<Logs, SettingError> {
        let error_target = &settings.error_logfile;
        let error_sink = LogSink::open_error(error_target)
            .map_err(|e| SettingError(format!("--error-logfile {error_target}: {e}")))?;
        let error = ErrorLog::new(error_sink, settings.log_level);
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
        let logs = Logs { access, error };
        ironhorse_process::set_logs(logs.error.clone(), logs.flusher());
        Ok(logs)
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

    /// Reopens both logs (on `SIGUSR1`, after logrotate moved them).
    pub fn reopener(&self) -> Arc<dyn Fn() + Send + Sync> {
        let (access, error) = (self.access.clone(), self.error.clone());
        Arc::new(move || {
            if let Some(access) = &access {
                let _ = access.reopen();
            }
            let _ = error.reopen();
        })
    }
}
