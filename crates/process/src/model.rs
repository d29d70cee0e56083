//! The `--model` table: each model is a process strategy composed with an in-process driver.

use crate::Processes;
use ironhorse_runtime::Driver;

/// One concurrency model.
#[derive(Debug, Clone, Copy)]
pub struct Model {
    /// The `--model` value.
    pub name: &'static str,
    /// What the seeds call it.
    pub seed_name: &'static str,
    pub processes: Processes,
    pub driver: Driver,
    /// Whether `-w N` (N > 1) turns a single process into N workers under a master.
    pub scales_with_workers: bool,
}

/// Every model, in the seeds' order.
pub const MODELS: &[Model] = &[
    Model {
        name: "single",
        seed_name: "one process serves clients one after another",
        processes: Processes::Single,
        driver: Driver::Serial,
        scales_with_workers: false,
    },
    Model {
        name: "fork",
        seed_name: "one client, one process",
        processes: Processes::ForkPerConnection,
        driver: Driver::Serial,
        scales_with_workers: false,
    },
    Model {
        name: "thread",
        seed_name: "one client, one thread",
        processes: Processes::Single,
        driver: Driver::ThreadPerConnection,
        scales_with_workers: false,
    },
    Model {
        name: "threadpool",
        seed_name: "a pool of K threads",
        processes: Processes::Single,
        driver: Driver::ThreadPool,
        scales_with_workers: false,
    },
    Model {
        name: "prefork",
        seed_name: "a pool of N processes",
        processes: Processes::Prefork,
        // Serial in what it runs (one request at a time per worker), but reading ahead:
        // a slow client holds a socket, not the worker. `single` stays the seeds' plain
        // serial server, the one a slow client blocks.
        driver: Driver::ReadAhead,
        scales_with_workers: false,
    },
    Model {
        name: "hybrid",
        seed_name: "N processes x K threads",
        processes: Processes::Prefork,
        driver: Driver::ThreadPool,
        scales_with_workers: false,
    },
    Model {
        name: "event",
        seed_name: "many clients, one thread, non-blocking I/O",
        processes: Processes::Single,
        driver: Driver::Event,
        scales_with_workers: true,
    },
    Model {
        name: "async",
        seed_name: "coroutines",
        processes: Processes::Single,
        driver: Driver::Async,
        scales_with_workers: true,
    },
];

impl Model {
    /// Every model, in the seeds' order: the one list (the test matrix runs each).
    pub const ALL: &'static [Model] = MODELS;

    /// Looks a model up by its `--model` name.
    pub fn named(name: &str) -> Option<&'static Model> {
        MODELS.iter().find(|m| m.name == name)
    }

    /// The process strategy for `workers` workers.
    pub fn processes_for(&self, workers: usize) -> Processes {
        if self.scales_with_workers && workers > 1 {
            Processes::Prefork
        } else {
            self.processes
        }
    }

    /// All model names, for help texts and errors.
    pub fn names() -> Vec<&'static str> {
        MODELS.iter().map(|m| m.name).collect()
    }
}
