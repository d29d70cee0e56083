//! Keepalive and heartbeat, the way the `websockets` library (and so uvicorn) does it: after
//! `interval` without hearing from the peer, ping it; if it stays silent for `timeout`
//! more, the connection is broken (its owner closes it with 1011, "keepalive ping timeout").
//!
//! Any bytes from the peer count as a sign of life, not only the pong: a client that is
//! sending is not dead, and this way a busy connection is never pinged at all. The ping
//! still keeps the connection from looking idle to proxies on the way (most close
//! connections silent for 30 to 120 s).
//!
//! Sans IO like the rest of the crate: the caller passes the time in, asks [`Keepalive::poll`]
//! what is due, and arranges to call it again at the instant it names.

use std::time::{Duration, Instant};

/// What [`Keepalive::poll`] says is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Nothing before this instant: poll again then (unless the peer is heard first, which
    /// only moves it later).
    At(Instant),
    /// Send a ping now (the caller queues it; it counts as sent).
    Ping,
    /// The peer did not answer the ping in time.
    TimedOut,
}

/// The keepalive state of one connection.
#[derive(Debug, Clone)]
pub struct Keepalive {
    interval: Duration,
    /// `None`: pings are sent but an unanswered one never ends the connection.
    timeout: Option<Duration>,
    last_heard: Instant,
    /// When our unanswered ping went out.
    ping_sent: Option<Instant>,
}

impl Keepalive {
    /// Starts counting silence at `now` (the handshake).
    pub fn new(interval: Duration, timeout: Option<Duration>, now: Instant) -> Self {
        Keepalive {
            interval,
            timeout,
            last_heard: now,
            ping_sent: None,
        }
    }

    /// The peer sent something: it is alive, and an outstanding ping counts as answered.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = now;
        self.ping_sent = None;
    }

    /// When an unanswered ping will end the connection, if one is out.
    pub fn gives_up_at(&self) -> Option<Instant> {
        Some(self.ping_sent? + self.timeout?)
    }

    /// What is due at `now`.
    pub fn poll(&mut self, now: Instant) -> Due {
        match (self.ping_sent, self.timeout) {
            (Some(sent), Some(timeout)) if now >= sent + timeout => Due::TimedOut,
            (Some(sent), Some(timeout)) => Due::At(sent + timeout),
            // No timeout: ping again an interval after the last one.
            (Some(sent), None) if now < sent + self.interval => Due::At(sent + self.interval),
            _ if now >= self.last_heard + self.interval || self.ping_sent.is_some() => {
                self.ping_sent = Some(now);
                Due::Ping
            }
            _ => Due::At(self.last_heard + self.interval),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_silent_peer_is_pinged_after_the_interval_then_times_out() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(20 * S, Some(10 * S), t0);
        assert_eq!(k.poll(t0), Due::At(t0 + 20 * S));
        assert_eq!(k.poll(t0 + 19 * S), Due::At(t0 + 20 * S));
        assert_eq!(k.poll(t0 + 20 * S), Due::Ping);
        assert_eq!(k.poll(t0 + 21 * S), Due::At(t0 + 30 * S));
        assert_eq!(k.gives_up_at(), Some(t0 + 30 * S));
        assert_eq!(k.poll(t0 + 30 * S), Due::TimedOut);
    }

    #[test]
    fn hearing_from_the_peer_answers_the_ping_and_restarts_the_interval() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(20 * S, Some(10 * S), t0);
        k.heard(t0 + 5 * S);
        assert_eq!(k.poll(t0 + 20 * S), Due::At(t0 + 25 * S));
        assert_eq!(k.poll(t0 + 25 * S), Due::Ping);
        k.heard(t0 + 26 * S);
        assert_eq!(k.gives_up_at(), None);
        assert_eq!(k.poll(t0 + 40 * S), Due::At(t0 + 46 * S));
    }

    #[test]
    fn without_a_timeout_pings_repeat_every_interval() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(2 * S, None, t0);
        assert_eq!(k.poll(t0 + 2 * S), Due::Ping);
        assert_eq!(k.poll(t0 + 3 * S), Due::At(t0 + 4 * S));
        assert_eq!(k.poll(t0 + 100 * S), Due::Ping);
    }
}
