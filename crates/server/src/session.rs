//! The contract between drivers and protocols.
//!
//! A [`Session`] is one connection's protocol logic, sans IO: the driver hands it received
//! bytes and drains the [`Output`] it fills. Drivers know nothing about HTTP; the seeds'
//! echo and reverse protocols run on them unchanged, which keeps that honest.

use std::time::Instant;

use ironhorse_app::ConnInfo;

use crate::output::Output;

/// What a session wants next from its driver. In every case the driver first sends what
/// the session queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Wait for input, then `received` and `advance` again.
    Read,
    /// More output will follow: once the queued output is sent, `advance` again.
    Flush,
    /// Call `advance` again at this instant (a handler's simulated work).
    WaitUntil(Instant),
    /// Close the connection once the output is sent.
    Close,
}

/// One connection's protocol state.
pub trait Session: Send {
    /// Space to read received bytes into.
    fn read_buf(&mut self) -> &mut [u8];
    /// `n` bytes of [`read_buf`](Self::read_buf) were received; `0` means end of input.
    fn received(&mut self, n: usize);
    /// Makes progress with what was received, queueing output.
    fn advance(&mut self, out: &mut Output) -> Step;
    /// How long the driver may wait for input before closing the connection.
    fn read_deadline(&self) -> Option<Instant>;
    /// Whether nothing is in progress, so a stopping server may close the connection.
    fn is_idle(&self) -> bool;
}

/// A wire protocol: makes one session per accepted connection.
pub trait Protocol: Send + Sync + 'static {
    fn session(&self, conn: ConnInfo) -> Box<dyn Session>;

    /// Called just before this process forks (see `ironhorse_app::Service::before_fork`).
    fn before_fork(&self) {}
    /// Called in the parent after a fork.
    fn after_fork_parent(&self) {}
    /// Called in the child after a fork.
    fn after_fork_child(&self) {}
}
