//! A bounded background load on loopback, as a keep-alive HTTP client would send it:
//! a request that finds its idle connection closed by the server is retried once on a
//! fresh connection (what browsers and HTTP libraries do); anything else that goes wrong
//! counts as a failure.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::client::Conn;

/// What a load saw.
#[derive(Debug)]
pub struct Report {
    pub ok: u64,
    pub failed: u64,
    pub errors: Vec<String>,
}

pub struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    errors: Arc<Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// At most this long, whatever the caller does.
const LIMIT: Duration = Duration::from_secs(120);

impl Load {
    /// `clients` connections sending `GET path` back to back.
    pub fn start(addr: &str, path: &str, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..clients)
            .map(|_| {
                let (addr, path) = (addr.to_string(), path.to_string());
                let (stop, ok, errors) = (stop.clone(), ok.clone(), errors.clone());
                std::thread::spawn(move || {
                    let started = Instant::now();
                    let mut conn: Option<Conn> = None;
                    while !stop.load(Ordering::Relaxed) && started.elapsed() < LIMIT {
                        match request(&mut conn, &addr, &path) {
                            Ok(()) => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                errors.lock().unwrap().push(e);
                                conn = None;
                            }
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            errors,
            threads,
        }
    }

    pub fn ok_so_far(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Waits until `more` further requests have succeeded: the load is running, and goes
    /// on past whatever just happened. False only if the server hung.
    pub fn wait_for_more(&self, more: u64) -> bool {
        let target = self.ok_so_far() + more;
        super::eventually(|| self.ok_so_far() >= target)
    }

    pub fn stop(self) -> Report {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        let errors = self.errors.lock().unwrap().clone();
        Report {
            ok: self.ok.load(Ordering::Relaxed),
            failed: errors.len() as u64,
            errors,
        }
    }
}

fn request(conn: &mut Option<Conn>, addr: &str, path: &str) -> Result<(), String> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: load\r\n\r\n");
    for attempt in 0..2 {
        let fresh = conn.is_none();
        let c = match conn {
            Some(c) => c,
            None => conn.insert(Conn::try_open(addr).map_err(|e| format!("connect: {e}"))?),
        };
        if c.try_send(request.as_bytes()).is_err() {
            *conn = None;
            if fresh || attempt == 1 {
                return Err("send failed on a fresh connection".into());
            }
            continue;
        }
        match c.try_response("GET") {
            Some(r) if r.status == 200 => {
                if r.header("connection") == Some("close") {
                    *conn = None;
                }
                return Ok(());
            }
            Some(r) => return Err(format!("status {}", r.status)),
            // Closed before any response: the server retired an idle connection.
            None if !fresh && attempt == 0 => *conn = None,
            None => return Err("connection closed without a response".into()),
        }
    }
    Err("retry failed".into())
}
