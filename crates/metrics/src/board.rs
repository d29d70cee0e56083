//! The board: one slot of counters per serving process in memory shared across `fork`, and
//! what the supervising process keeps itself — the totals of processes that exited, worker
//! starts and exits by reason. Serving processes write only to their own slot (relaxed
//! atomic increments, no system call); the supervisor reads every slot when scraped.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ironhorse_sys::SharedCounters;

use crate::layout::{self, SLOT_LEN};

/// What the supervisor keeps about the slots.
#[derive(Default)]
struct Ledger {
    /// Per slot: `None` free, `Some(pid)` claimed (pid 0 until the fork returned).
    owners: Vec<Option<i32>>,
    /// Counters of processes that exited, carried over (gauges excluded).
    retired: Vec<u64>,
    starts: BTreeMap<&'static str, u64>,
    exits: BTreeMap<&'static str, u64>,
}

/// Every serving process's counters, and the supervisor's totals.
pub struct Board {
    shared: SharedCounters,
    ledger: Mutex<Ledger>,
    started: Instant,
}

/// A consistent reading of the board, taken under its lock.
pub struct Snapshot {
    /// Counters summed over live slots and retired processes; gauges over live slots.
    pub counters: Vec<u64>,
    /// Pids of the live serving processes.
    pub pids: Vec<i32>,
    pub starts: BTreeMap<&'static str, u64>,
    pub exits: BTreeMap<&'static str, u64>,
    pub uptime_s: f64,
    /// `(pid, lag in µs)` of each live process running an event loop: the last probe's
    /// lag, or how overdue the next probe is if that is more (a loop blocked right now).
    pub loop_lags: Vec<(i32, u64)>,
}

impl Board {
    /// A board with room for `slots` serving processes at once.
    pub fn new(slots: usize) -> io::Result<Arc<Board>> {
        let slots = slots.max(1);
        Ok(Arc::new(Board {
            shared: SharedCounters::new(slots * SLOT_LEN)?,
            ledger: Mutex::new(Ledger {
                owners: vec![None; slots],
                retired: vec![0; SLOT_LEN],
                ..Ledger::default()
            }),
            started: Instant::now(),
        }))
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn slot(&self, slot: usize) -> &[AtomicU64] {
        &self.shared.counters()[slot * SLOT_LEN..(slot + 1) * SLOT_LEN]
    }

    /// Takes a free slot, zeroed, for a process about to be forked (`None`: all taken; that
    /// process then goes uncounted).
    pub fn claim(&self) -> Option<usize> {
        let mut ledger = self.ledger();
        let slot = ledger.owners.iter().position(Option::is_none)?;
        ledger.owners[slot] = Some(0);
        for counter in self.slot(slot) {
            counter.store(0, Relaxed);
        }
        Some(slot)
    }

    /// Names the process that writes to `slot` (its RSS is reported).
    pub fn owned_by(&self, slot: usize, pid: i32) {
        if let Some(owner) = self.ledger().owners.get_mut(slot) {
            *owner = Some(pid);
        }
    }

    /// The process of `slot` is gone: its counters join the totals (its gauges go with it)
    /// and the slot is free again.
    pub fn release(&self, slot: usize) {
        let mut ledger = self.ledger();
        if ledger.owners.get(slot).copied().flatten().is_none() {
            return;
        }
        ledger.owners[slot] = None;
        for (i, counter) in self.slot(slot)[..layout::GAUGES].iter().enumerate() {
            ledger.retired[i] += counter.load(Relaxed);
        }
    }

    /// Counts a worker start.
    pub fn worker_started(&self, reason: &'static str) {
        *self.ledger().starts.entry(reason).or_default() += 1;
    }

    /// Counts a worker exit.
    pub fn worker_exited(&self, reason: &'static str) {
        *self.ledger().exits.entry(reason).or_default() += 1;
    }

    /// The recorder for the process that owns `slot`.
    pub fn meter(self: &Arc<Self>, slot: usize) -> Meter {
        Meter {
            board: self.clone(),
            base: slot * SLOT_LEN,
        }
    }

    /// Reads everything at once: a slot released during a scrape is counted once.
    pub fn snapshot(&self) -> Snapshot {
        let ledger = self.ledger();
        let mut counters = ledger.retired.clone();
        let mut pids = Vec::new();
        let mut loop_lags = Vec::new();
        let now_us = self.started.elapsed().as_micros() as u64;
        for (slot, owner) in ledger.owners.iter().enumerate() {
            let Some(pid) = owner else { continue };
            if *pid > 0 {
                pids.push(*pid);
            }
            let counters_of = self.slot(slot);
            let due = counters_of[layout::LOOP_DUE_US].load(Relaxed);
            if *pid > 0 && due > 0 {
                let last = counters_of[layout::LOOP_LAG_LAST_US].load(Relaxed);
                loop_lags.push((*pid, last.max(now_us.saturating_sub(due - 1))));
            }
            for (sum, counter) in counters.iter_mut().zip(self.slot(slot)) {
                // Gauges are kept as wrapping u64: a decrement racing ahead of its
                // increment reads as a huge number for an instant.
                *sum = sum.wrapping_add(counter.load(Relaxed));
            }
        }
        for gauge in &mut counters[layout::GAUGES..] {
            if *gauge > u64::MAX / 2 {
                *gauge = 0;
            }
        }
        Snapshot {
            counters,
            pids,
            starts: ledger.starts.clone(),
            exits: ledger.exits.clone(),
            uptime_s: self.started.elapsed().as_secs_f64(),
            loop_lags,
        }
    }
}

/// A serving process's recorder: relaxed atomic updates to its own slot.
#[derive(Clone)]
pub struct Meter {
    board: Arc<Board>,
    base: usize,
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Meter(slot {})", self.base / SLOT_LEN)
    }
}

impl Meter {
    fn add(&self, index: usize, n: u64) {
        self.board.shared.counters()[self.base + index].fetch_add(n, Relaxed);
    }

    fn sub(&self, index: usize) {
        self.board.shared.counters()[self.base + index].fetch_sub(1, Relaxed);
    }

    /// A request head arrived: it is in flight until [`Meter::request_done`].
    pub fn request_started(&self) -> Instant {
        self.add(layout::IN_FLIGHT, 1);
        Instant::now()
    }

    /// A request started at `started` ended with `status` (0: no response head went out)
    /// after `bytes` body bytes; `method` is its [`layout::method_class`].
    pub fn request_done(&self, started: Instant, method: usize, status: u16, bytes: u64) {
        self.request_counted(method, status, bytes);
        self.observe(
            layout::DURATION,
            layout::DURATION_SUM_US,
            started.elapsed().as_micros() as u64,
        );
        self.sub(layout::IN_FLIGHT);
    }

    /// A request answered without reaching the application (refused by the parser): counted,
    /// never in flight, no duration.
    pub fn request_counted(&self, method: usize, status: u16, bytes: u64) {
        let class = method.min(layout::METHODS.len() - 1) * layout::STATUSES.len()
            + layout::status_class(status);
        self.add(layout::REQUESTS + class, 1);
        self.add(layout::RESPONSE_BYTES, bytes);
    }

    fn observe(&self, buckets: usize, sum: usize, micros: u64) {
        self.add(buckets + layout::bucket(micros), 1);
        self.add(sum, micros);
    }

    /// A connection opened; [`Meter::connection_closed`] when it ends.
    pub fn connection_opened(&self) {
        self.add(layout::CONNECTIONS_OPENED, 1);
        self.add(layout::CONNECTIONS, 1);
    }

    pub fn connection_closed(&self) {
        self.sub(layout::CONNECTIONS);
    }

    /// An event loop's periodic probe ran `lag` after it was due; the next one is due in
    /// `next_in`. Kept per process (the last lag, the next due time) and in a histogram.
    pub fn loop_probe(&self, lag: Duration, next_in: Duration) {
        let lag_us = lag.as_micros() as u64;
        self.observe(layout::LOOP_LAG, layout::LOOP_LAG_SUM_US, lag_us);
        let counters = self.board.shared.counters();
        counters[self.base + layout::LOOP_LAG_LAST_US].store(lag_us, Relaxed);
        let due = (self.board.started.elapsed() + next_in).as_micros() as u64;
        counters[self.base + layout::LOOP_DUE_US].store(due + 1, Relaxed);
    }

    /// An application job was handed to its executor: queued until it starts.
    pub fn job_queued(&self) -> JobTicket {
        self.add(layout::APP_QUEUED, 1);
        JobTicket {
            meter: self.clone(),
            started: None,
        }
    }
}

/// An application job from submission to end: queued, then busy (with its run time
/// recorded), whichever way it ends (dropped unrun, finished, unwound).
pub struct JobTicket {
    meter: Meter,
    started: Option<Instant>,
}

impl JobTicket {
    /// The job began to run on a thread.
    pub fn running(&mut self) {
        if self.started.is_none() {
            self.meter.sub(layout::APP_QUEUED);
            self.meter.add(layout::APP_BUSY, 1);
            self.started = Some(Instant::now());
        }
    }
}

impl Drop for JobTicket {
    fn drop(&mut self) {
        match self.started {
            None => self.meter.sub(layout::APP_QUEUED),
            Some(started) => {
                self.meter.sub(layout::APP_BUSY);
                self.meter.observe(
                    layout::APP_DURATION,
                    layout::APP_DURATION_SUM_US,
                    started.elapsed().as_micros() as u64,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(board: &Board, index: usize) -> u64 {
        board.snapshot().counters[index]
    }

    #[test]
    fn totals_survive_a_release_and_gauges_do_not() {
        let board = Board::new(2).unwrap();
        let slot = board.claim().unwrap();
        board.owned_by(slot, 42);
        let meter = board.meter(slot);
        let t = meter.request_started();
        meter.request_done(t, layout::method_class("GET"), 200, 10);
        meter.connection_opened();
        let _in_flight = meter.request_started();
        assert_eq!(board.snapshot().pids, vec![42]);
        assert_eq!(total(&board, layout::IN_FLIGHT), 1);
        board.release(slot);
        board.release(slot); // twice is once
        assert_eq!(total(&board, layout::REQUESTS + 1), 1, "GET 2xx");
        assert_eq!(total(&board, layout::RESPONSE_BYTES), 10);
        assert_eq!(total(&board, layout::IN_FLIGHT), 0, "gone with the process");
        assert_eq!(total(&board, layout::CONNECTIONS), 0);
        let again = board.claim().unwrap();
        assert_eq!(again, slot, "reused");
        assert_eq!(
            total(&board, layout::REQUESTS + 1),
            1,
            "a reused slot starts at 0"
        );
        assert!(board.snapshot().pids.is_empty(), "no pid until named");
    }

    #[test]
    fn loop_lag_is_per_process_and_counts_overdue_probes() {
        let board = Board::new(2).unwrap();
        let slot = board.claim().unwrap();
        board.owned_by(slot, 7);
        assert!(board.snapshot().loop_lags.is_empty(), "no loop yet");
        let meter = board.meter(slot);
        meter.loop_probe(Duration::from_millis(3), Duration::from_secs(3600));
        assert_eq!(board.snapshot().loop_lags, vec![(7, 3_000)]);
        // A probe that was due already: the loop is late now, by at least the wait.
        meter.loop_probe(Duration::ZERO, Duration::ZERO);
        std::thread::sleep(Duration::from_millis(20));
        let (_, lag) = board.snapshot().loop_lags[0];
        assert!(lag >= 20_000, "{lag}");
        let samples: u64 = (0..layout::BUCKETS)
            .map(|b| total(&board, layout::LOOP_LAG + b))
            .sum();
        assert_eq!(samples, 2);
        board.release(slot);
        assert!(
            board.snapshot().loop_lags.is_empty(),
            "gone with the process"
        );
        assert_eq!(total(&board, layout::LOOP_LAG_SUM_US), 3_000, "kept");
    }

    #[test]
    fn a_full_board_refuses() {
        let board = Board::new(1).unwrap();
        assert!(board.claim().is_some());
        assert!(board.claim().is_none());
    }

    #[test]
    fn jobs_are_queued_then_busy() {
        let board = Board::new(1).unwrap();
        let meter = board.meter(board.claim().unwrap());
        let mut ticket = meter.job_queued();
        assert_eq!(total(&board, layout::APP_QUEUED), 1);
        ticket.running();
        assert_eq!(total(&board, layout::APP_QUEUED), 0);
        assert_eq!(total(&board, layout::APP_BUSY), 1);
        drop(ticket);
        assert_eq!(total(&board, layout::APP_BUSY), 0);
        let counts: u64 = (0..layout::BUCKETS)
            .map(|b| total(&board, layout::APP_DURATION + b))
            .sum();
        assert_eq!(counts, 1);
        drop(meter.job_queued());
        assert_eq!(total(&board, layout::APP_QUEUED), 0, "dropped unrun");
    }
}
