//! The response sink on loan to `write()`: [`SinkSlot`] holds the server's
//! [`ResponseSink`] for exactly the scope of [`SinkSlot::lend`] (the application call), the
//! way [`BodySlot`](crate::input::BodySlot) holds the body reader. Data written outside that
//! scope (from a streaming response's iterator) is kept for the response stream instead.

use std::io;
use std::ptr::NonNull;
use std::sync::Mutex;

use ironhorse_app::{HeaderList, ResponseSink};

use crate::loan::{lock, Clear};

/// A response sink on loan for one `call`, and whether the head left through it.
pub(crate) struct SinkSlot {
    sink: Mutex<Option<NonNull<dyn ResponseSink>>>,
    started: Mutex<bool>,
}

// SAFETY: the pointee is a `ResponseSink`, which is `Send`; the pointer is only dereferenced
// while holding the mutex, so at most one thread uses it at a time.
unsafe impl Send for SinkSlot {}
// SAFETY: as above; all access goes through the mutex.
unsafe impl Sync for SinkSlot {}

impl SinkSlot {
    pub(crate) fn new() -> SinkSlot {
        SinkSlot {
            sink: Mutex::new(None),
            started: Mutex::new(false),
        }
    }

    /// Runs `f` with `sink` usable through this slot (if there is one); the slot is empty
    /// again afterwards.
    pub(crate) fn lend<'a, R>(
        &self,
        sink: Option<&'a mut dyn ResponseSink>,
        f: impl FnOnce() -> R,
    ) -> R {
        let Some(sink) = sink else {
            return f();
        };
        let ptr: NonNull<dyn ResponseSink + 'a> = NonNull::from(sink);
        // SAFETY: only the trait object's lifetime bound is erased. The pointer is stored in
        // the slot for the scope of this function and removed by `Clear::drop` before it
        // returns or unwinds, while `sink` (borrowed for 'a, which outlives this call) is
        // still valid and not otherwise used (we hold its unique borrow). Uses happen only
        // under the mutex, which `Clear::drop` also takes, so a write in progress on another
        // thread finishes before the pointer disappears. The guard is a local that cannot be
        // leaked by callers.
        let ptr: NonNull<dyn ResponseSink + 'static> = unsafe { std::mem::transmute(ptr) };
        *lock(&self.sink) = Some(ptr);
        let _loan = Clear(&self.sink);
        f()
    }

    /// Whether a sink is on loan now (`write()` can send at once).
    pub(crate) fn is_lent(&self) -> bool {
        lock(&self.sink).is_some()
    }

    /// Whether the response head left through the sink (what the application returns then
    /// only continues the body).
    pub(crate) fn started(&self) -> bool {
        *lock(&self.started)
    }

    /// Forgets that a head left (the slot serves another request).
    pub(crate) fn reset(&self) {
        *lock(&self.started) = false;
    }

    /// Sends `head` (unless it left already) and then `data`; blocks while the server's
    /// room for the response is full. Call without the GIL.
    pub(crate) fn send(
        &self,
        head: Option<(u16, HeaderList, Option<u64>)>,
        data: Vec<u8>,
    ) -> io::Result<()> {
        let guard = lock(&self.sink);
        let Some(mut ptr) = *guard else {
            return Err(io::Error::other("write() after the application returned"));
        };
        // SAFETY: the pointer is in the slot, so the loan is live and the sink valid (see
        // `lend`); we hold the mutex, so this is the only reference in use.
        let sink = unsafe { ptr.as_mut() };
        if let Some((status, headers, length)) = head {
            *lock(&self.started) = true;
            sink.send_head(status, headers, length)?;
        }
        sink.send_body(data)
    }
}
