//! `--reload`: a file watcher (outside this crate) writes the changed path into a pipe the
//! master waits on; the master then replaces its workers, as on `HUP`, without re-reading
//! the configuration or importing anything itself.

use std::os::fd::AsFd;

use super::super::log;

impl super::Master {
    /// Replaces the workers if the watcher reported a change since the last turn.
    pub(super) fn take_reload_trigger(&mut self) {
        let Some(trigger) = self.plan.supervision.reload_trigger.clone() else {
            return;
        };
        let mut changed = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = ironhorse_sys::read_nonblocking(trigger.as_fd(), &mut buf) {
            if n == 0 {
                break;
            }
            changed.extend_from_slice(&buf[..n]);
        }
        if changed.is_empty() {
            return;
        }
        let first = String::from_utf8_lossy(&changed);
        let first = first.lines().next().unwrap_or_default();
        log(format_args!(
            "--reload: {first} changed; replacing {} workers",
            self.target
        ));
        self.target = self.target.max(1);
        self.workers.start_generation();
    }
}
