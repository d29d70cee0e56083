//! `--body-timeout` while an application waits for its request body, enforced by the
//! session itself on every driver.
//!
//! A driver only knows that a connection waiting for input expires at its read deadline,
//! and drops it: the application would see a vanished client and the client no answer.
//! Instead, while an exchange waits for body bytes, the session keeps this deadline: a
//! watchdog wake-up brings the driver back to `advance` at the deadline, the session ends
//! the body with a timeout (the application answers `408` and the connection closes), and
//! the read deadline it gives the driver lies a grace period later, only as a backstop.

use std::time::{Duration, Instant};

use crate::deadlines::{self, Watch};
use crate::session::Waker;

/// How long after the body deadline a driver may drop a connection whose session did not
/// answer the timeout itself (a backstop: the session normally acts at the deadline).
pub const GRACE: Duration = Duration::from_secs(2);

/// The body deadline of the exchange in progress.
#[derive(Default)]
pub struct BodyDeadline {
    /// The wake-up armed, and when it fires.
    armed: Option<(Instant, Watch)>,
}

impl BodyDeadline {
    /// The application waits for body bytes that have not come since `last_progress`:
    /// whether the body timed out (`now` is past the deadline). If not, a wake-up is
    /// armed for the deadline (an earlier one still armed is kept; it fires, the session
    /// looks again and arms the next).
    pub fn expired(&mut self, last_progress: Instant, timeout: Duration, waker: &Waker) -> bool {
        let now = Instant::now();
        let deadline = last_progress + timeout;
        if now >= deadline {
            self.armed = None;
            return true;
        }
        if self.armed.as_ref().is_none_or(|(at, _)| *at <= now) {
            let waker = waker.clone();
            self.armed = Some((deadline, deadlines::watch(deadline, move || waker())));
        }
        false
    }

    /// The exchange no longer waits for body bytes.
    pub fn disarm(&mut self) {
        self.armed = None;
    }
}
