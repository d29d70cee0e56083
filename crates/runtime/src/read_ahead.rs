//! One request at a time per process, with many connections read ahead: the prefork worker
//! that a slow client cannot hold. The thread watches up to `max_connections` connections
//! ([`Watched`], the pool's watcher), reading heads and buffered bodies as they trickle in
//! without blocking, and serves a connection only once its session has work (a whole head,
//! and a whole body up to `--buffer-request-body`): the application runs inline on this
//! thread, exactly as under the serial driver ([`serve`], whose jobs pump the connection's
//! own I/O). A connection idle again (keep-alive), or whose next head arrives only in part,
//! goes back to the watch. Accepting happens only between requests, one connection per
//! listener per turn (served at once when its request is there), so a busy worker leaves new
//! clients to idle ones as a serial worker does, rather than taking a whole burst into its
//! watch while another worker idles; at the bound, clients wait in the backlog. It is the
//! pool driver with no pool: the watching thread serves.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::blocking::{serve, Conn, Served};
use super::connection::{accept_failed, AcceptFailure, Draining};
use super::held::Holder;
use super::keepalive::{Ready, Watched, OWN_TOKENS};
use super::{stopping, DriverConfig, STOP_CHECK};

/// Turns of at most this many ready connections send their held answers before the last
/// request. Measured with a 0.3 ms application: 2 and 4 connections lost 5–9 % of their
/// req/s when a turn's answers all waited for its end (the thread then waited idle for the
/// clients' next requests). A large turn spreads that wait thin and keeps one send per
/// client per turn.
const SMALL_TURN: usize = 8;

pub fn run(config: DriverConfig) -> io::Result<()> {
    let mut watched = Watched::new()?;
    // The turn's responses leave together (or about `HOLD_FOR` after the first): one wake-up
    // of each client per turn, not one per response.
    let holder = Arc::new(Holder::new()?);
    for (index, listener) in config.listeners.iter().enumerate() {
        watched.watch_own(listener, OWN_TOKENS + index)?;
    }
    // Listeners whose pending connections may not all be taken yet (edge-triggered: one
    // event per arrival, so a listener stays marked until `accept` says none is left).
    let mut pending = vec![true; config.listeners.len()];
    let mut events = Vec::new();
    let mut draining: Option<Draining> = None;
    loop {
        config.hooks.beat();
        if draining.is_none() && stopping() {
            draining = Some(Draining::begin(config.graceful_timeout));
        }
        let more = match &draining {
            Some(stop) if stop.is_over(watched.len(), Instant::now()) => return Ok(()),
            Some(_) => false,
            None => accept(&config, &mut watched, &holder, &mut pending)?,
        };
        // More may wait to be accepted: only look at what is ready, then come back.
        let wait = if more { Duration::ZERO } else { STOP_CHECK };
        holder.flush_all();
        let ready = watched.turn(wait, draining.is_some(), &mut events);
        for token in events.drain(..) {
            pending[token - OWN_TOKENS] = true;
        }
        let last = ready.len().saturating_sub(1);
        for (index, ready) in ready.into_iter().enumerate() {
            if index == last && last < SMALL_TURN {
                // A small turn's held answers leave while its last request runs, so that
                // their clients' next requests are there when it ends: held to the end, the
                // thread would wait idle for them once per turn, a cost a large turn spreads
                // thin (and there, one send of the whole turn wakes each client least).
                holder.flush_all();
            }
            // The last answer is not held: nothing follows it in this turn.
            holder.set_holding(index != last);
            serve_inline(&mut watched, ready);
        }
    }
}

/// Takes one pending connection of each listener into the watch, below the bound. Whether
/// more may be pending.
fn accept(
    config: &DriverConfig,
    watched: &mut Watched,
    holder: &Arc<Holder>,
    pending: &mut [bool],
) -> io::Result<bool> {
    let mut more = false;
    for (listener, pending) in config.listeners.iter().zip(pending) {
        if !*pending || watched.len() >= config.max_connections.max(1) {
            continue;
        }
        match listener.accept() {
            Ok((stream, info)) => {
                if let Some(conn) = Conn::new(stream, info, &*config.protocol, &config.hooks) {
                    watched.add(conn.hold_with(holder));
                }
                more = true;
            }
            // None left, or another worker won the race.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => *pending = false,
            Err(e) => match accept_failed(&e, &*config.hooks) {
                AcceptFailure::Skip => more = true,
                // Out of descriptors: try again after a turn of waiting.
                AcceptFailure::BackOff => {}
                AcceptFailure::Fatal => return Err(e),
            },
        }
    }
    Ok(more)
}

/// Serves a connection that has work on this thread until it is idle again (then it goes
/// back to the watch) or closes.
fn serve_inline(watched: &mut Watched, Ready { token, conn }: Ready) {
    // Nobody else may wait for this thread while it sits on an idle connection: it is the
    // one that watches the others and accepts.
    if let Served::Idle(conn) = serve(conn, Some(&|| true)) {
        watched.readmit(Ready { token, conn });
    }
}
