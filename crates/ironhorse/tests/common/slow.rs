//! Slow clients for the slow-client tests: many connections that send a prefix at once,
//! then one byte per interval of a pattern that never completes what they send (a request
//! head that never ends, a body that never ends). Loopback only, bounded (they stop when
//! dropped, and after `MAX_ROUNDS` at most).

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The longest a crowd trickles, in intervals.
const MAX_ROUNDS: usize = 1200;

/// A crowd of slow clients, trickling until dropped.
pub struct Crowd {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Crowd {
    /// Opens `clients` connections to `addr`; each sends `prefix`, then one byte of `drip`
    /// (cycled) per `interval`.
    pub fn start(
        addr: &str,
        clients: usize,
        prefix: &[u8],
        drip: &'static [u8],
        interval: Duration,
    ) -> Crowd {
        let mut conns: Vec<TcpStream> = (0..clients)
            .map(|_| {
                let mut c = TcpStream::connect(addr).expect("slow client connects");
                c.write_all(prefix).expect("slow client sends its prefix");
                c
            })
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            for round in 0..MAX_ROUNDS {
                std::thread::sleep(interval);
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let byte = [drip[round % drip.len()]];
                // A server that closed a client (its timeout) is fine: the rest go on.
                conns.retain_mut(|c| c.write_all(&byte).is_ok());
            }
        });
        Crowd {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Crowd {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Sockets the server process `pid` and its children hold open (listeners included).
pub fn sockets_of(pid: i32) -> usize {
    let mut pids = vec![pid];
    pids.extend(super::children_of(pid));
    pids.iter()
        .map(|p| {
            std::fs::read_dir(format!("/proc/{p}/fd"))
                .map(|dir| {
                    dir.filter_map(Result::ok)
                        .filter(|e| {
                            std::fs::read_link(e.path())
                                .is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
                        })
                        .count()
                })
                .unwrap_or(0)
        })
        .sum()
}

/// Latency percentile (`p` in 0..=100) of `samples`, sorted in place.
pub fn percentile(samples: &mut [Duration], p: usize) -> Duration {
    samples.sort();
    samples[(samples.len() - 1) * p / 100]
}

/// Asks `addr` for `target` (a response of many chunks whose application counts the
/// chunks it made in the file `progress`) and reads nothing of it: how many chunks the
/// application had made once the server stopped taking them. Backpressure bounds it at what
/// the socket buffers and the server's queue hold (a few MB); a server that buffers the
/// response in memory instead runs the application to its end.
pub fn chunks_made_for_a_client_that_reads_nothing(
    addr: &str,
    target: &str,
    progress: &std::path::Path,
) -> u64 {
    let count = || {
        std::fs::read_to_string(progress)
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let mut stream = TcpStream::connect(addr).expect("connect");
    let request = format!("GET {target} HTTP/1.1\r\nHost: test\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    assert!(
        super::eventually(|| count() >= 1),
        "the application started its response"
    );
    // Time for a server without backpressure to run ahead (it makes the whole response in
    // well under a second); one with it is waiting on the client by then.
    std::thread::sleep(Duration::from_secs(2));
    let made = count();
    drop(stream);
    made
}
