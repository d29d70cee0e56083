//! A bounded pool of threads for application work that may block (Python), used by the
//! event-driven drivers so that their loops never run it. Threads start on first use, so a
//! pool built before `fork()` carries no threads across it.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};

type Job = Box<dyn FnOnce() + Send>;

/// A fixed number of threads running jobs in submission order.
pub struct OffloadPool {
    threads: usize,
    sender: OnceLock<Mutex<Sender<Job>>>,
}

impl OffloadPool {
    pub fn new(threads: usize) -> Self {
        OffloadPool {
            threads: threads.max(1),
            sender: OnceLock::new(),
        }
    }

    /// Queues `job`; it runs when a thread is free.
    pub fn spawn(&self, job: impl FnOnce() + Send + 'static) {
        let sender = self.sender.get_or_init(|| Mutex::new(self.start()));
        let _ = sender
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(Box::new(job));
    }

    fn start(&self) -> Sender<Job> {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver: Arc<Mutex<Receiver<Job>>> = Arc::new(Mutex::new(receiver));
        for index in 0..self.threads {
            let receiver = receiver.clone();
            let _ = std::thread::Builder::new()
                .name(format!("ih-app-{index}"))
                .spawn(move || loop {
                    let job = receiver.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                });
        }
        sender
    }
}
