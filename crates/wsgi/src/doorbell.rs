//! The queue a loop thread (the ASGI loop, the gevent hub) drains: server threads push
//! commands, and only the first into an empty queue writes a byte to a socket pair whose
//! other end the loop watches, so a burst of commands costs one wake-up and one crossing.
//! Shared by `ironhorse-asgi` and `ironhorse-green`, which differ only in their commands.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::Mutex;

/// What waits for the loop.
pub struct Pending<C> {
    pub commands: Vec<C>,
    /// Serving ends (pushed as `None`).
    pub stop: bool,
}

impl<C> Default for Pending<C> {
    fn default() -> Self {
        Pending {
            commands: Vec::new(),
            stop: false,
        }
    }
}

/// The server's side: the queue and the bell.
pub struct Doorbell<C> {
    pending: Mutex<Pending<C>>,
    bell: UnixStream,
}

impl<C> Doorbell<C> {
    /// The doorbell and the loop's end of its socket pair (both non-blocking).
    pub fn new() -> std::io::Result<(Doorbell<C>, UnixStream)> {
        let (bell, ear) = UnixStream::pair()?;
        bell.set_nonblocking(true)?;
        ear.set_nonblocking(true)?;
        let pending = Mutex::default();
        Ok((Doorbell { pending, bell }, ear))
    }

    /// Queues `command` (`None`: stop), ringing if the queue was empty.
    pub fn push(&self, command: Option<C>) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let was_empty = pending.commands.is_empty() && !pending.stop;
        match command {
            Some(command) => pending.commands.push(command),
            None => pending.stop = true,
        }
        if was_empty {
            // A full socket buffer means the loop has a wake-up pending already.
            let _ = (&self.bell).write(&[1]);
        }
    }

    /// Everything queued so far, leaving the queue empty.
    pub fn take(&self) -> Pending<C> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }
}
