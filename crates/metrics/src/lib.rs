//! Metrics in Prometheus/OpenMetrics text (`--metrics-bind`).
//!
//! How counters flow: the supervising process (a master, the fork-per-connection parent,
//! or a single serving process) makes a [`Board`] before it forks: a `MAP_SHARED` anonymous
//! mapping with one slot of counters per serving process ([`layout`]). Before each fork it
//! [`claims`](Board::claim) a slot; the child records into it through a [`Meter`] (relaxed
//! atomic increments where the access log line is produced — no system call per request).
//! When the supervisor reaps a child it [`releases`](Board::release) the slot: the child's
//! counters are added to the totals the supervisor keeps, so they survive recycling. A
//! thread of the supervisor ([`serve::spawn`]) answers `/metrics` on its own socket with the
//! totals plus every live slot.

mod board;
mod encode;
pub mod layout;
mod serve;

pub use board::{Board, JobTicket, Meter, Snapshot};
pub use encode::{Format, Scrape};
pub use serve::{spawn, MetricsAddr, MetricsListener, Watched};
