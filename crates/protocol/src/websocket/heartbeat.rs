//! The keepalive timer of a WebSocket session. [`ironhorse_ws::Keepalive`] says what is due
//! and when; a watchdog wake-up ([`crate::deadlines`], as for body deadlines and HTTP/2's
//! idle GOAWAY) brings the driver back to `advance` at that instant, so drivers need no
//! timer of their own and every driver that hosts WebSockets gets pings the same way.
//!
//! One wake-up is armed per interval, not per message: input only moves the next deadline
//! later, so an armed wake-up that comes early finds nothing due and arms the next.

use std::time::{Duration, Instant};

use ironhorse_ws::{Connection, Due, Keepalive};

use crate::deadlines::{self, Watch};
use crate::session::Waker;

/// The read deadline a driver keeps past the session's own timeout, as a backstop only.
const GRACE: Duration = Duration::from_secs(2);

pub(crate) struct Heartbeat {
    /// `None`: pings are off.
    keepalive: Option<Keepalive>,
    waker: Waker,
    /// The wake-up armed, and when it fires.
    armed: Option<(Instant, Watch)>,
    /// Input came since the last check.
    heard: bool,
}

impl Heartbeat {
    pub(crate) fn new(keepalive: Option<Keepalive>, waker: Waker) -> Heartbeat {
        Heartbeat {
            keepalive,
            waker,
            armed: None,
            heard: false,
        }
    }

    /// The client sent bytes (noted cheaply; the clock is read at the next check).
    pub(crate) fn heard(&mut self) {
        self.heard = true;
    }

    /// Queues a ping on `ws` when one is due and arms the next wake-up. Whether the client
    /// failed to answer in time: then the close (1011) is queued and the connection should
    /// end without waiting for the client's.
    pub(crate) fn check(&mut self, ws: &mut Connection) -> bool {
        let Some(keepalive) = self.keepalive.as_mut() else {
            return false;
        };
        let now = Instant::now();
        if std::mem::take(&mut self.heard) {
            keepalive.heard(now);
        }
        loop {
            match keepalive.poll(now) {
                Due::TimedOut => {
                    self.armed = None;
                    ws.close(1011, "keepalive ping timeout");
                    return true;
                }
                Due::Ping => ws.send_ping(b""),
                Due::At(at) => {
                    let stale = |(armed, _): &(Instant, Watch)| *armed <= now || *armed > at;
                    if self.armed.as_ref().is_none_or(stale) {
                        let waker = self.waker.clone();
                        self.armed = Some((at, deadlines::watch(at, move || waker())));
                    }
                    return false;
                }
            }
        }
    }

    /// When a driver may drop the connection if the session somehow never acted on an
    /// unanswered ping.
    pub(crate) fn backstop(&self) -> Option<Instant> {
        Some(self.keepalive.as_ref()?.gives_up_at()? + GRACE)
    }
}
