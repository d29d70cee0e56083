//! Small responses held back for a moment, so that a thread serving many ready connections
//! in turn wakes each client once per batch of responses rather than once per response.
//!
//! Why: a client that has sent its request sleeps until the answer comes; waking it costs
//! the sender an inter-processor interrupt (a VM exit on virtual machines) and the cache
//! refills that follow. With an application of ~80 µs per request (a Flask view) the
//! `prefork` worker woke wrk once per response and spent ~1.5× the CPU per request of the
//! event loop, which sends a turn's responses together (docs/BENCHMARKS.md, issue 15).
//!
//! What is held: a connection's output while it is bytes only and at most [`HOLD_LIMIT`]
//! (a file sent with `sendfile`, or more bytes, goes out at once, after what was held for
//! that connection). How long: until the thread has served the other ready connections of
//! its turn ([`Holder::flush_all`]), until it is about to wait for that client
//! ([`Holder::release`]), and never much longer than [`HOLD_FOR`]: a flusher thread sends
//! what has waited that long, so a slow request served after a quick one does not hold the
//! quick one's answer back, and a streamed chunk reaches its client while the application
//! makes the next (PEP 3333 asks that no block be delayed while the next is produced). A
//! client that is not reading delays no other: the flusher sends without waiting.
//!
//! Each held entry keeps its socket alive (`Arc<Stream>`), so a connection dropped while
//! its bytes are held closes only once they are sent.

use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ironhorse_protocol::output::{Drained, Output};

use crate::listener::Stream;

/// Longest a response is held before the flusher sends it (give or take the scheduler).
/// The Flask view on `prefork -w 1` (`bench/wsgi.py --bench flask`, 4 rounds): CPU per
/// request 0.86× without holding at 1 ms, 0.76× at 2 ms (the flusher's batches were half
/// as large at 1 ms, each one a wake-up of the client).
pub(crate) const HOLD_FOR: Duration = Duration::from_millis(2);

/// How often the flusher looks, while answers are being held.
const TICK: Duration = Duration::from_micros(HOLD_FOR.as_micros() as u64 / 2);

/// Ticks with nothing held before the flusher sleeps until woken.
const IDLE_TICKS: u32 = 20;

/// Largest output held (a whole small response, head and body).
pub(crate) const HOLD_LIMIT: usize = 16 * 1024;

/// Emptied outputs kept for reuse.
const MAX_SPARES: usize = 64;

/// Held output of the connections one thread serves, and the flusher that bounds its wait.
pub(crate) struct Holder {
    shared: Arc<Shared>,
    /// Whether [`send`](Self::send) holds at all: the serving thread says so per request
    /// (what it serves last in a turn has nothing to wait for).
    holding: AtomicBool,
    flusher: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when an entry is held while the flusher sleeps untimed, and when a flush
    /// ends (a thread waiting to send on one of its sockets goes on).
    changed: Condvar,
}

#[derive(Default)]
struct State {
    entries: Vec<Held>,
    /// When the oldest entry was held.
    since: Option<Instant>,
    /// Flushes in progress (the flusher's, or a thread's [`Holder::flush_all`]): the entries
    /// they took are out of the list and their sockets busy until they are done.
    flushing: usize,
    /// Threads waiting for the flushes in progress to end (only they need a signal).
    waiting_for_flush: usize,
    /// The flusher waits with no timer: the next first entry must wake it.
    flusher_idle: bool,
    stop: bool,
    /// Emptied outputs, reused for the next entries (their buffers keep their capacity).
    spares: Vec<Output>,
}

struct Held {
    stream: Arc<Stream>,
    out: Output,
}

impl State {
    /// The entry held for `stream`.
    fn find(&self, stream: &Arc<Stream>) -> Option<usize> {
        self.entries
            .iter()
            .position(|h| Arc::ptr_eq(&h.stream, stream))
    }

    /// Takes entry `i` out of the list.
    fn remove(&mut self, i: usize) -> Held {
        let held = self.entries.swap_remove(i);
        if self.entries.is_empty() {
            self.since = None;
        }
        held
    }

    /// Takes every entry out of the list.
    fn take_all(&mut self) -> Vec<Held> {
        self.since = None;
        std::mem::take(&mut self.entries)
    }
}

impl Holder {
    pub fn new() -> io::Result<Holder> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let flusher = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("ih-flusher".into())
                .spawn(move || shared.run_flusher())?
        };
        Ok(Holder {
            shared,
            holding: AtomicBool::new(true),
            flusher: Some(flusher),
        })
    }

    /// Whether [`send`](Self::send) may hold from now on.
    pub fn set_holding(&self, holding: bool) {
        self.holding.store(holding, Ordering::Relaxed);
    }

    /// Sends `out` to `stream`, or holds it: bytes only, within [`HOLD_LIMIT`] together with
    /// what is held for that connection already. An error is the connection's (and what was
    /// held for it, cut short, ends it: see [`send_whole`]).
    pub fn send(&self, stream: &Arc<Stream>, out: &mut Output) -> io::Result<()> {
        if out.is_empty() {
            return Ok(());
        }
        if !self.holding.load(Ordering::Relaxed) {
            self.release(stream)?;
            // As without a holder: what the socket did not take stays in `out`.
            return out.drain_into(&mut &**stream).map(drop);
        }
        let mut state = self.shared.unless_flushing();
        let index = state.find(stream);
        let held = index.map_or(0, |i| state.entries[i].out.queued() as usize);
        if !out.is_bytes_within(HOLD_LIMIT.saturating_sub(held)) {
            // Too much to hold: what was held for this connection leaves first, in the same
            // writes (a held head then shares its packet with a file body: `MSG_MORE`).
            let Some(i) = index else {
                drop(state);
                return out.drain_into(&mut &**stream).map(drop);
            };
            let mut earlier = state.remove(i);
            drop(state);
            earlier.out.append(out);
            return self.shared.send_held(earlier);
        }
        match index {
            Some(i) => state.entries[i].out.append(out),
            None => {
                let mut spare = state.spares.pop().unwrap_or_default();
                std::mem::swap(&mut spare, out);
                state.entries.push(Held {
                    stream: stream.clone(),
                    out: spare,
                });
            }
        }
        if state.since.is_none() {
            state.since = Some(Instant::now());
            if state.flusher_idle {
                self.shared.changed.notify_all();
            }
        }
        Ok(())
    }

    /// Sends what is held for `stream` now: before this thread waits for that client (who
    /// may be waiting for the answer) or closes the connection.
    pub fn release(&self, stream: &Arc<Stream>) -> io::Result<()> {
        let mut state = self.shared.unless_flushing();
        let Some(i) = state.find(stream) else {
            return Ok(());
        };
        let held = state.remove(i);
        drop(state);
        self.shared.send_held(held)
    }

    /// Sends everything held: the turn is over (the thread is about to wait for any client,
    /// or for work).
    pub fn flush_all(&self) {
        let mut state = self.shared.lock();
        if state.entries.is_empty() {
            return;
        }
        let entries = state.take_all();
        self.shared.send_all(state, entries, Stuck::Wait);
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        self.flush_all();
        self.shared.lock().stop = true;
        self.shared.changed.notify_all();
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed.wait(state).unwrap_or_else(|e| e.into_inner())
    }

    /// The state, once no flush is in progress. While one is, the entries it took are out
    /// of the list; waiting for it whatever the socket (a turn's small responses at most)
    /// keeps each connection's bytes in order.
    fn unless_flushing(&self) -> MutexGuard<'_, State> {
        let mut state = self.lock();
        while state.flushing > 0 {
            state.waiting_for_flush += 1;
            state = self.wait(state);
            state.waiting_for_flush -= 1;
        }
        state
    }

    /// Sends a held entry whole (see [`send_whole`]) and keeps its emptied output for reuse.
    fn send_held(&self, mut held: Held) -> io::Result<()> {
        send_whole(&mut held.out, &held.stream)?;
        let mut state = self.lock();
        if state.spares.len() < MAX_SPARES {
            state.spares.push(held.out);
        }
        Ok(())
    }

    /// Sends `entries`, taken out of `state`: first what each socket takes at once, so that
    /// a client that stopped reading does not delay the others; then, for those clients,
    /// as `stuck` says. A connection whose send fails is shut down, so that the thread
    /// serving it finds it closed.
    fn send_all(&self, mut state: MutexGuard<'_, State>, entries: Vec<Held>, stuck: Stuck) {
        state.flushing += 1;
        drop(state);
        let mut spares = Vec::with_capacity(entries.len());
        let mut waiting = Vec::new();
        for mut held in entries {
            match send_now(&mut held.out, &held.stream) {
                Ok(true) => spares.push(held.out),
                Ok(false) => waiting.push(held),
                Err(_) => held.stream.shutdown_both(),
            }
        }
        if stuck == Stuck::Wait {
            for mut held in waiting.drain(..) {
                if send_whole(&mut held.out, &held.stream).is_ok() {
                    spares.push(held.out);
                }
            }
        }
        let mut state = self.lock();
        if !waiting.is_empty() {
            // No entry for these connections was added meanwhile: `send` waits for flushes.
            state.entries.extend(waiting);
            state.since.get_or_insert_with(Instant::now);
        }
        let room = MAX_SPARES.saturating_sub(state.spares.len());
        state.spares.extend(spares.into_iter().take(room));
        state.flushing -= 1;
        if state.waiting_for_flush > 0 {
            self.changed.notify_all();
        }
    }

    /// The flusher: while answers are being held it wakes every [`TICK`] and sends what
    /// has waited a tick or more (so nothing waits much over [`HOLD_FOR`]); after
    /// [`IDLE_TICKS`] with nothing held it sleeps until the next answer is held. Ticking
    /// costs ~1,000 wake-ups a second under load, where a timer armed at each turn's first
    /// hold cost two per turn: WSGI hello on `prefork` measured 1.11× the CPU per request of
    /// no holding that way, 0.99× with ticking (one 6-round run each).
    fn run_flusher(&self) {
        let mut state = self.lock();
        let mut quiet = 0;
        loop {
            if state.stop {
                return;
            }
            match state.since {
                Some(since) if since.elapsed() >= TICK => {
                    let entries = state.take_all();
                    // A client that is not reading stays held: the serving thread waits for
                    // it when its turn ends, as it would have without holding.
                    self.send_all(state, entries, Stuck::Keep);
                    state = self.lock();
                    quiet = 0;
                    continue;
                }
                Some(_) => quiet = 0,
                None => quiet += 1,
            }
            if quiet >= IDLE_TICKS {
                state.flusher_idle = true;
                while state.since.is_none() && !state.stop {
                    state = self.wait(state);
                }
                state.flusher_idle = false;
                quiet = 0;
            }
            state = self
                .changed
                .wait_timeout(state, TICK)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// What [`Shared::send_all`] does with a client that is not reading.
#[derive(PartialEq)]
enum Stuck {
    /// Waits for it (blocking, within the socket's write timeout): the serving thread.
    Wait,
    /// Keeps its answer held: the flusher, which must not stall the other connections.
    Keep,
}

/// Sends all of `out` on the blocking `stream`. The socket's write timeout passing (the
/// client stopped reading) is an error too, and then the connection is shut down: an answer
/// cut short must not be followed by the next one.
fn send_whole(out: &mut Output, stream: &Stream) -> io::Result<()> {
    let failure = match out.drain_into(&mut &*stream) {
        Ok(Drained::All) => return Ok(()),
        Ok(Drained::WouldBlock) => {
            io::Error::new(io::ErrorKind::TimedOut, "the client stopped reading")
        }
        Err(e) => e,
    };
    stream.shutdown_both();
    Err(failure)
}

/// Sends what the socket takes now: `Ok(true)` once all of `out` went.
fn send_now(out: &mut Output, stream: &Stream) -> io::Result<bool> {
    Ok(out.drain_into(&mut NoWait(stream))? == Drained::All)
}

/// A socket written without waiting (`MSG_DONTWAIT`), whatever its mode. Held outputs are
/// bytes only, so `sendfile` (which would wait) never runs on it.
struct NoWait<'a>(&'a Stream);

impl Write for NoWait<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        ironhorse_sys::send_now(self.0.as_fd(), buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsFd for NoWait<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    fn pair() -> (Arc<Stream>, UnixStream) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        // A hung holder fails the test instead of hanging it.
        theirs
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        (Arc::new(Stream::from_unix(ours)), theirs)
    }

    fn output(bytes: &[u8]) -> Output {
        let mut out = Output::default();
        out.bytes().extend_from_slice(bytes);
        out
    }

    /// Reads until `want` bytes came (the test's own read blocks: no timing involved).
    fn read_exactly(peer: &mut UnixStream, want: usize) -> Vec<u8> {
        let mut got = vec![0; want];
        peer.read_exact(&mut got).unwrap();
        got
    }

    #[test]
    fn what_is_held_leaves_on_its_own_while_the_thread_does_nothing() {
        let holder = Holder::new().unwrap();
        let (stream, mut peer) = pair();
        holder.send(&stream, &mut output(b"quick answer")).unwrap();
        // No flush, no release: the flusher sends it once it has waited `HOLD_FOR`.
        assert_eq!(read_exactly(&mut peer, 12), b"quick answer");
    }

    #[test]
    fn a_connections_bytes_keep_their_order_through_holding_and_direct_sends() {
        let holder = Holder::new().unwrap();
        let (stream, mut peer) = pair();
        let big = vec![b'x'; HOLD_LIMIT + 1];
        let reader = std::thread::spawn(move || read_exactly(&mut peer, 6 + HOLD_LIMIT + 1 + 4));
        holder.send(&stream, &mut output(b"one;")).unwrap();
        holder.send(&stream, &mut output(b"2;")).unwrap();
        // Too big to hold: the held bytes go first, in the same writes.
        let mut out = output(&big);
        holder.send(&stream, &mut out).unwrap();
        assert!(out.is_empty());
        holder.send(&stream, &mut output(b"end.")).unwrap();
        holder.release(&stream).unwrap();
        let got = reader.join().unwrap();
        assert_eq!(&got[..6], b"one;2;");
        assert!(got[6..6 + big.len()].iter().all(|&b| b == b'x'));
        assert_eq!(&got[6 + big.len()..], b"end.");
    }

    #[test]
    fn a_connection_dropped_while_its_answer_is_held_closes_after_it() {
        let holder = Holder::new().unwrap();
        let (stream, mut peer) = pair();
        holder.send(&stream, &mut output(b"last words")).unwrap();
        drop(stream);
        holder.flush_all();
        let mut got = Vec::new();
        peer.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"last words");
    }

    /// Fills `stream`'s socket buffer: its client is not reading.
    fn stall(stream: &Stream) {
        stream
            .set_write_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        while (&*stream).write(&[b'.'; 65536]).is_ok() {}
    }

    #[test]
    fn a_client_that_does_not_read_delays_no_other_answer() {
        let holder = Holder::new().unwrap();
        let (stuck, _stuck_peer) = pair();
        stall(&stuck);
        // Stays stuck for the test's length: the flusher must not wait for it.
        stuck.set_write_timeout(None).unwrap();
        let (stream, mut peer) = pair();
        holder
            .send(&stuck, &mut output(b"for the stuck one"))
            .unwrap();
        holder.send(&stream, &mut output(b"answer")).unwrap();
        assert_eq!(read_exactly(&mut peer, 6), b"answer");
        // The stuck answer is still held: shut it down so that the holder's drop ends.
        stuck.shutdown_both();
    }

    #[test]
    fn an_answer_cut_short_ends_its_connection_and_leaks_nowhere() {
        let holder = Holder::new().unwrap();
        let (stuck, mut stuck_peer) = pair();
        stall(&stuck);
        holder
            .send(&stuck, &mut output(b"SECRET of the stuck one"))
            .unwrap();
        // The serving thread waits for the stuck client within its write timeout, then
        // gives up on the connection.
        holder.flush_all();
        let mut seen = Vec::new();
        stuck_peer.read_to_end(&mut seen).unwrap();
        assert!(seen.iter().all(|&b| b == b'.'), "ended, not continued");
        // The output that went to the stuck connection is not reused with its bytes.
        let (stream, mut peer) = pair();
        let mut out = output(b"answer|");
        holder.send(&stream, &mut out).unwrap();
        out.bytes().extend_from_slice(b"next");
        holder.send(&stream, &mut out).unwrap();
        drop(holder);
        drop(stream);
        let mut got = Vec::new();
        peer.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"answer|next");
    }

    #[test]
    fn dropping_the_holder_sends_what_it_held() {
        let holder = Holder::new().unwrap();
        let (streams, mut peers): (Vec<_>, Vec<_>) = (0..3).map(|_| pair()).unzip();
        for (i, stream) in streams.iter().enumerate() {
            holder
                .send(stream, &mut output(format!("answer {i}").as_bytes()))
                .unwrap();
        }
        drop(holder);
        drop(streams);
        for (i, peer) in peers.iter_mut().enumerate() {
            let mut got = String::new();
            peer.read_to_string(&mut got).unwrap();
            assert_eq!(got, format!("answer {i}"));
        }
    }
}
