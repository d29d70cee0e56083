//! Coroutines: a tokio runtime (`threads` worker threads; one means a current-thread
//! runtime on this thread), one task per connection over the same sans-IO sessions.

use std::io::{self, Read};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::io::unix::AsyncFd;
use tokio::sync::{Notify, Semaphore};

use super::connection::{self, accept_failed, AcceptFailure, Draining, Linger};
use super::{stopping, DriverConfig, STOP_CHECK};
use crate::listener::{accept_on, Listener};
use ironhorse_app::ConnInfo;
use ironhorse_protocol::hooks::Hooks;
use ironhorse_protocol::offload_pool::Batch;
use ironhorse_protocol::output::{Drained, Output};
use ironhorse_protocol::session::{Link, Protocol, Session, Step, Waker};
use ironhorse_sys::reactor::register_socket;
use socket2::Socket;

/// A connection under tokio: the runtime's one socket type, TCP or Unix alike, registered
/// with the reactor by descriptor.
type Conn = AsyncFd<Socket>;

thread_local! {
    /// The read buffer shared by the connections this runtime thread serves. A cache of
    /// memory, not state: nothing in it outlives one read, and tasks move between runtime
    /// threads, so a buffer per thread (no lock, none per idle connection) is the right
    /// owner; passing one down would mean a buffer per task or a lock per read.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; 64 * 1024]);
}

/// Live connection count, for the cap and for waiting at shutdown.
struct Live {
    count: AtomicUsize,
    idle: Notify,
}

pub fn run(config: DriverConfig) -> io::Result<()> {
    let _ = ironhorse_sys::raise_nofile_limit();
    // Requests for the application threads leave in batches: held while tasks run, handed
    // over when a runtime thread runs out of work.
    let batch = Arc::new(Batch::default());
    let flush = {
        let (batch, hooks) = (batch.clone(), config.hooks.clone());
        move || {
            // A runtime thread that hands requests to the application threads stops
            // preempting them (as the event loop does).
            if batch.flush_counted() > 0 {
                super::yield_to_app_threads(&*hooks);
            }
        }
    };
    let runtime = if config.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .on_thread_park(flush)
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads)
            .thread_name("ih-tokio")
            .enable_all()
            .on_thread_park(flush)
            .build()?
    };
    runtime.block_on(serve(config, batch))
}

async fn serve(config: DriverConfig, batch: Arc<Batch>) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let live = Arc::new(Live {
        count: AtomicUsize::new(0),
        idle: Notify::new(),
    });
    let shared = Shared {
        protocol: config.protocol.clone(),
        hooks: config.hooks.clone(),
        batch,
        permits,
        live: live.clone(),
    };
    let mut acceptors = Vec::new();
    for listener in config.listeners {
        acceptors.push(tokio::spawn(accept(listener, shared.clone())));
    }
    while !stopping() {
        config.hooks.beat();
        tokio::time::sleep(STOP_CHECK).await;
    }
    for acceptor in &acceptors {
        acceptor.abort();
    }
    let deadline = Draining::begin(config.graceful_timeout).deadline();
    while live.count.load(Ordering::SeqCst) > 0 {
        if tokio::time::timeout_at(deadline.into(), live.idle.notified())
            .await
            .is_err()
        {
            break;
        }
    }
    Ok(())
}

/// What every acceptor and connection task shares.
#[derive(Clone)]
struct Shared {
    protocol: Arc<dyn Protocol>,
    hooks: Hooks,
    /// Where the sessions' jobs for the application threads wait for a runtime thread to park.
    batch: Arc<Batch>,
    /// One per connection allowed at once (`max_connections`).
    permits: Arc<Semaphore>,
    live: Arc<Live>,
}

async fn accept(listener: Listener, shared: Shared) -> io::Result<()> {
    let listener = register_socket(listener.into_socket())?;
    loop {
        let permit = shared
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(io::Error::other)?;
        let accepted = loop {
            let mut ready = listener.readable().await?;
            if let Ok(accepted) = ready.try_io(|l| accept_on(l.get_ref(), false)) {
                break accepted
                    .and_then(|(stream, info)| Ok((register_socket(stream.into_socket())?, info)));
            }
        };
        match accepted {
            Ok((conn, info)) => {
                let shared = shared.clone();
                shared.live.count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let _ = serve_connection(conn, info, &shared).await;
                    drop(permit);
                    if shared.live.count.fetch_sub(1, Ordering::SeqCst) == 1 {
                        shared.live.idle.notify_waiters();
                    }
                });
            }
            Err(e) => match accept_failed(&e, &*shared.hooks) {
                AcceptFailure::Skip => {}
                AcceptFailure::BackOff => tokio::time::sleep(STOP_CHECK).await,
                AcceptFailure::Fatal => return Err(e),
            },
        }
    }
}

async fn serve_connection(conn: Conn, info: ConnInfo, shared: &Shared) -> io::Result<()> {
    let mut out = Output::default();
    let notify = Arc::new(Notify::new());
    let waker: Waker = {
        let notify = notify.clone();
        Arc::new(move || notify.notify_one())
    };
    let mut session = shared.protocol.session(
        info,
        Link {
            waker,
            executor: None,
            hooks: shared.hooks.clone(),
            batch: Some(shared.batch.clone()),
        },
    );
    loop {
        let step = session.advance(&mut out);
        // Held application requests leave when this thread parks, or after a bounded
        // number of turns on a thread that never does.
        shared.batch.turn_done();
        flush(&conn, &mut out).await?;
        match step {
            Step::Flush => {}
            Step::WaitUntil(at) => tokio::time::sleep_until(at.into()).await,
            Step::Pending => notify.notified().await,
            Step::Close => {
                close(&conn, session.ends_in_reset()).await;
                return Ok(());
            }
            // A wake-up while reading is a call to `advance` too (the session may have
            // work of its own: a response from its job, a body deadline it keeps).
            Step::Read => tokio::select! {
                read = read(&conn, session.as_mut()) => read?,
                () = notify.notified() => {}
            },
            Step::Upgrade => match session.hand_off() {
                Some(next) => session = next,
                None => {
                    close(&conn, false).await;
                    return Ok(());
                }
            },
        }
    }
}

async fn flush(conn: &Conn, out: &mut Output) -> io::Result<()> {
    while !out.is_empty() {
        let mut ready = conn.writable().await?;
        // Inside `try_io`, `WouldBlock` clears tokio's readiness and the loop waits for the
        // next writable edge.
        let drained = ready.try_io(|conn| match out.drain_into(&mut conn.get_ref())? {
            Drained::All => Ok(()),
            Drained::WouldBlock => Err(io::ErrorKind::WouldBlock.into()),
        });
        if let Ok(result) = drained {
            return result;
        }
    }
    Ok(())
}

/// Closes without losing the response ([`Linger`]).
async fn close(conn: &Conn, reset: bool) {
    let mut linger = Linger::start(conn.get_ref(), reset);
    loop {
        let until = linger.until().into();
        let Ok(Ok(mut ready)) = tokio::time::timeout_at(until, conn.readable()).await else {
            return;
        };
        if !linger.discard(|buf| conn.get_ref().read(buf)) {
            return;
        }
        // It would block: wait for the next readable edge.
        ready.clear_ready();
    }
}

async fn read(conn: &Conn, session: &mut dyn Session) -> io::Result<()> {
    loop {
        let now = Instant::now();
        let stop = stopping();
        if connection::is_expired(session, now, stop) {
            connection::farewell(session, std::os::fd::AsFd::as_fd(conn.get_ref()));
            return Err(connection::expiry_error(session, stop));
        }
        let deadline = session.read_deadline();
        let wait = deadline.map_or(STOP_CHECK, |d| (d - now).min(STOP_CHECK));
        let mut ready = match tokio::time::timeout(wait, conn.readable()).await {
            Ok(ready) => ready?,
            Err(_) => {
                // Idle for a while: keep no buffers meanwhile.
                session.release_idle_memory();
                continue;
            }
        };
        // Read into this thread's shared buffer: idle connections own none.
        let read = ready.try_io(|conn| {
            SCRATCH.with(|scratch| {
                let mut scratch = scratch.borrow_mut();
                let n = conn.get_ref().read(&mut scratch)?;
                if n == 0 {
                    session.received(0);
                } else {
                    session.receive(&scratch[..n]);
                }
                Ok(())
            })
        });
        match read {
            Ok(result) => return result,
            Err(_would_block) => {}
        }
    }
}
