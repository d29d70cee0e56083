//! `--pid`: the master's pid file, with the hand-over of a binary upgrade: the new master
//! writes `PATH.2` and takes `PATH` over once the old master is gone.

use std::io;
use std::path::{Path, PathBuf};

use super::log;

/// Names the master a new one was started by (for the pid file hand-over).
pub(crate) const UPGRADED_FROM: &str = "IRONHORSE_UPGRADED_FROM";

pub(crate) struct PidFile {
    path: PathBuf,
    /// Where this master wrote its pid (`PATH`, or `PATH.2` while its predecessor lives).
    written: PathBuf,
    predecessor: Option<i32>,
}

impl PidFile {
    /// Writes this process's pid.
    pub fn claim(path: &Path) -> io::Result<PidFile> {
        let predecessor = std::env::var(UPGRADED_FROM)
            .ok()
            .and_then(|p| p.parse::<i32>().ok())
            .filter(|p| ironhorse_sys::process_alive(*p));
        let written = match predecessor {
            Some(_) => PathBuf::from(format!("{}.2", path.display())),
            None => path.to_path_buf(),
        };
        write_atomically(&written, format!("{}\n", std::process::id()).as_bytes())?;
        Ok(PidFile {
            path: path.to_path_buf(),
            written,
            predecessor,
        })
    }

    /// After an upgrade: once the old master has exited, `PATH.2` becomes `PATH`.
    pub fn take_over_when_predecessor_exits(&mut self) {
        let Some(old) = self.predecessor else { return };
        if ironhorse_sys::process_alive(old) {
            return;
        }
        match std::fs::rename(&self.written, &self.path) {
            Ok(()) => {
                log(format_args!(
                    "old master {old} is gone; {} is now ours",
                    self.path.display()
                ));
                self.written = self.path.clone();
                self.predecessor = None;
            }
            Err(e) => log(format_args!(
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
