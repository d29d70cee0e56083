//! `--pid`: the master's pid file, with the hand-over of a binary upgrade: the new master
//! writes `PATH.2` and takes `PATH` over once the old master is gone. A pid file naming
//! another live process is refused, as gunicorn refuses it: a second server started by
//! mistake must not take over the first one's file (and with it `kill $(cat PATH)`).

use std::io;
use std::path::{Path, PathBuf};

use super::ProcessLogs;

/// Names the master a new one was started by (for the pid file hand-over).
pub(crate) const UPGRADED_FROM: &str = "IRONHORSE_UPGRADED_FROM";

pub(crate) struct PidFile {
    path: PathBuf,
    /// Where this master wrote its pid (`PATH`, or `PATH.2` while its predecessor lives).
    written: PathBuf,
    predecessor: Option<i32>,
}

/// Why the pid file was not claimed.
#[derive(Debug)]
pub enum PidFileError {
    /// The file names a live process that is not this one: another server runs (or the
    /// file is stale and its pid went to some other process since).
    Running { pid: i32, path: PathBuf },
    /// The file could not be written.
    Io(io::Error),
}

impl std::fmt::Display for PidFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PidFileError::Running { pid, path } => write!(
                f,
                "Already running on PID {pid} (or pid file '{}' is stale)",
                path.display()
            ),
            PidFileError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for PidFileError {}

impl From<io::Error> for PidFileError {
    fn from(e: io::Error) -> Self {
        PidFileError::Io(e)
    }
}

/// Refuses `path` if the file this process would write names another live process. Run
/// before the sockets are bound (and before `--daemon` detaches), so a second server
/// started by mistake says so on the terminal and leaves the first one's sockets alone.
pub fn check(path: &Path) -> Result<(), PidFileError> {
    refuse_live(&destination(path).0)
}

/// Where this process writes its pid, and the master it takes over from: `PATH.2` while the
/// master that started it by `USR2` still runs (that one's pid is in `PATH`, legitimately),
/// `PATH` otherwise.
fn destination(path: &Path) -> (PathBuf, Option<i32>) {
    let predecessor = live_predecessor();
    match predecessor {
        Some(_) => (PathBuf::from(format!("{}.2", path.display())), predecessor),
        None => (path.to_path_buf(), None),
    }
}

/// The master that started this one by `USR2` ([`UPGRADED_FROM`]), if one did.
pub(crate) fn upgraded_from() -> Option<i32> {
    std::env::var(UPGRADED_FROM)
        .ok()
        .and_then(|p| p.parse::<i32>().ok())
        .filter(|p| *p > 0)
}

/// The master that started this one by `USR2`, while it still runs.
pub(crate) fn live_predecessor() -> Option<i32> {
    upgraded_from().filter(|p| ironhorse_sys::process_alive(*p))
}

/// `Err` if `file` holds the pid of a live process other than this one. A missing file, one
/// without a pid, or one naming a process that is gone (stale) may be replaced.
fn refuse_live(file: &Path) -> Result<(), PidFileError> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return Ok(());
    };
    match text.trim().parse::<i32>() {
        // Not 0 or negative: those name process groups, not a process.
        Ok(pid)
            if pid > 0
                && u32::try_from(pid).is_ok_and(|p| p != std::process::id())
                && ironhorse_sys::process_alive(pid) =>
        {
            Err(PidFileError::Running {
                pid,
                path: file.to_path_buf(),
            })
        }
        _ => Ok(()),
    }
}

impl PidFile {
    /// Writes this process's pid, unless the file names another live process.
    pub fn claim(path: &Path) -> Result<PidFile, PidFileError> {
        let (written, predecessor) = destination(path);
        refuse_live(&written)?;
        write_atomically(&written, format!("{}\n", std::process::id()).as_bytes())?;
        Ok(PidFile {
            path: path.to_path_buf(),
            written,
            predecessor,
        })
    }

    /// After an upgrade: once the old master has exited, `PATH.2` becomes `PATH`.
    pub fn take_over_when_predecessor_exits(&mut self, logs: &ProcessLogs) {
        let Some(old) = self.predecessor else { return };
        if ironhorse_sys::process_alive(old) {
            return;
        }
        match std::fs::rename(&self.written, &self.path) {
            Ok(()) => {
                logs.info(format_args!(
                    "old master {old} is gone; {} is now ours",
                    self.path.display()
                ));
                self.written = self.path.clone();
                self.predecessor = None;
            }
            Err(e) => logs.info(format_args!(
                "cannot take over {}: {e}",
                self.path.display()
            )),
        }
    }

    /// Removes the file if it still names this process.
    pub fn release(self) {
        let ours = std::fs::read_to_string(&self.written)
            .is_ok_and(|s| s.trim() == std::process::id().to_string());
        if ours {
            let _ = std::fs::remove_file(&self.written);
        }
    }
}

/// Writes `path` whole or not at all (a temporary file renamed over it), so a reader never
/// sees an empty or half-written pid file.
fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let temporary = PathBuf::from(format!("{}.{}.tmp", path.display(), std::process::id()));
    std::fs::write(&temporary, contents)?;
    std::fs::rename(&temporary, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_file_naming_another_live_process_is_refused() {
        let dir = std::env::temp_dir().join(format!("ih-pidfile-live-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ih.pid");
        assert!(refuse_live(&path).is_ok(), "a missing file");
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        gone.wait().unwrap();
        for free in [
            gone.id().to_string(),
            std::process::id().to_string(),
            "0".into(),
            "-1".into(),
            "garbage".into(),
        ] {
            std::fs::write(&path, format!("{free}\n")).unwrap();
            assert!(refuse_live(&path).is_ok(), "{free:?} was refused");
        }
        let parent = std::os::unix::process::parent_id();
        std::fs::write(&path, format!("{parent}\n")).unwrap();
        let refused = refuse_live(&path).unwrap_err().to_string();
        assert!(
            refused.starts_with(&format!("Already running on PID {parent} ")),
            "{refused}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_pid_file_appears_whole_and_leaves_no_temporary_behind() {
        let dir = std::env::temp_dir().join(format!("ih-pidfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ih.pid");
        write_atomically(&path, b"123\n").unwrap();
        write_atomically(&path, b"456\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "456\n");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("ih.pid")]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
