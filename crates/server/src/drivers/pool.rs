//! A fixed pool of threads: the acceptor hands connections over a bounded queue; when every
//! thread is busy and the queue is full, accepting pauses and clients wait in the backlog.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use super::{accept_loop, serve_connection, DriverConfig};

pub fn run(config: DriverConfig) -> std::io::Result<()> {
    let threads = config.threads.max(1);
    let (sender, receiver) = mpsc::sync_channel(threads);
    let receiver = Arc::new(Mutex::new(receiver));
    let mut workers = Vec::with_capacity(threads);
    for index in 0..threads {
        let receiver = receiver.clone();
        let protocol = config.protocol.clone();
        workers.push(
            std::thread::Builder::new()
                .name(format!("ih-pool-{index}"))
                .spawn(move || loop {
                    let next = receiver.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    match next {
                        Ok((stream, info)) => serve_connection(stream, protocol.session(info)),
                        Err(_) => return,
                    }
                })?,
        );
    }
    let result = accept_loop(&config.listeners, |stream, info| {
        let _ = sender.send((stream, info));
    });
    drop(sender);
    for worker in workers {
        let _ = worker.join();
    }
    result
}
