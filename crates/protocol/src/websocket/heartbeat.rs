//! The keepalive timer of a WebSocket session. [`ironhorse_ws::Keepalive`] says what is due
//! and when; a watchdog wake-up ([`crate::deadlines`], as for body deadlines and HTTP/2's
//! idle GOAWAY) brings the driver back to `advance` at that instant, so drivers need no
//! timer of their own and every driver that hosts WebSockets gets pings the same way.
//!
//! One wake-up is armed per interval, not per message: input only moves the next deadline
//! later, so an armed wake-up that comes early finds nothing due and arms the next.
//!
//! It also bounds the closing handshake: once our close frame is out, the client has
//! `--ws-close-timeout` to answer with its own before the connection is closed anyway.

use std::time::{Duration, Instant};

use ironhorse_ws::{Connection, Due, Keepalive, State};

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
    /// How long our close frame waits for the client's.
    close_timeout: Duration,
    /// When the closing handshake we started gives up, and its wake-up.
    closing: Option<(Instant, Watch)>,
}

impl Heartbeat {
    pub(crate) fn new(
        keepalive: Option<Keepalive>,
        close_timeout: Duration,
        waker: Waker,
    ) -> Heartbeat {
        Heartbeat {
            keepalive,
            waker,
            armed: None,
            heard: false,
            close_timeout,
            closing: None,
        }
    }

    /// Whether the client failed to answer our close frame in time (the connection should
    /// then end). The first call after the close went out arms the wake-up that ends it.
    pub(crate) fn closing_timed_out(&mut self, ws: &Connection) -> bool {
        if ws.state() != State::Closing {
            return false;
        }
        let now = Instant::now();
        match &self.closing {
            Some((at, _)) => now >= *at,
            None => {
                let at = now + self.close_timeout;
                let waker = self.waker.clone();
                self.closing = Some((at, deadlines::watch(at, move || waker())));
                false
            }
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
    /// unanswered ping or close.
    pub(crate) fn backstop(&self) -> Option<Instant> {
        let ping = self.keepalive.as_ref().and_then(Keepalive::gives_up_at);
        let close = self.closing.as_ref().map(|(at, _)| *at);
        Some([ping, close].into_iter().flatten().min()? + GRACE)
    }
}
