//! The server around the HTTP engine: listeners, sessions (HTTP, echo, reverse), in-process
//! drivers and process strategies, composed into the `--model`s.
#![forbid(unsafe_code)]

pub mod deadlines;
pub mod drivers;
pub mod hooks;
pub mod listener;
pub mod model;
pub mod offload_pool;
pub mod output;
pub mod process;
pub mod protocols;
pub mod session;
