//! Deadlines that fire from a watchdog thread, for requests that would otherwise hang
//! their thread forever (`--request-timeout`). The thread starts on first use, in the
//! process that serves.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

type Expiry = Box<dyn FnOnce() + Send>;

/// How often the watchdog looks; deadlines fire up to this late.
const RESOLUTION: Duration = Duration::from_millis(100);

struct Registry {
    entries: Mutex<BTreeMap<u64, (Instant, Expiry)>>,
    next: AtomicU64,
}

static REGISTRY: OnceLock<Registry> = OnceLock::new();

fn registry() -> &'static Registry {
    REGISTRY.get_or_init(|| {
        let _ = std::thread::Builder::new()
            .name("ih-deadlines".into())
            .spawn(watch_loop);
        Registry {
            entries: Mutex::new(BTreeMap::new()),
            next: AtomicU64::new(0),
        }
    })
}

fn watch_loop() {
    loop {
        std::thread::sleep(RESOLUTION);
        let Some(registry) = REGISTRY.get() else {
            continue;
        };
        let now = Instant::now();
        let expired: Vec<Expiry> = {
            let mut entries = registry.entries.lock().unwrap_or_else(|e| e.into_inner());
            let ids: Vec<u64> = entries
                .iter()
                .filter(|(_, (at, _))| *at <= now)
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter()
                .filter_map(|id| entries.remove(&id))
                .map(|(_, f)| f)
                .collect()
        };
        for expiry in expired {
            expiry();
        }
    }
}

/// Runs `on_expiry` at `deadline` unless the returned guard is dropped first.
pub fn watch(deadline: Instant, on_expiry: impl FnOnce() + Send + 'static) -> Watch {
    let registry = registry();
    let id = registry.next.fetch_add(1, Ordering::Relaxed);
    registry
        .entries
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, (deadline, Box::new(on_expiry)));
    Watch(id)
}

/// A pending deadline; dropping it cancels it.
pub struct Watch(u64);

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(registry) = REGISTRY.get() {
            registry
                .entries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&self.0);
        }
    }
}
