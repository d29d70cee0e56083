//! Sessions: what is said on a connection, with no sockets, threads or processes.
//!
//! The sans-IO contract every driver runs ([`session`]: `Session`, `Protocol`, `Link`, `Job`,
//! `Executor`, `JobHost`), the bytes and file regions a session answers with
//! ([`output`]), the worker hooks a session reports to ([`hooks`]), and the protocols a
//! server speaks: HTTP/1.1, the seeds' raw TCP exercises, the PROXY protocol header any
//! of them may sit behind, and nginx's uwsgi packets in front of HTTP.
#![forbid(unsafe_code)]

pub mod deadlines;
pub mod hooks;
pub mod offload_pool;
pub mod output;
pub mod session;

mod echo;
mod http;
mod proxy_header;
mod reverse;
mod uwsgi;
mod websocket;

pub use echo::Echo;
pub use http::{
    BodyDeadline, BodyDemand, Exchange, Expiry, Http, HttpSettings, Prefilled, Recorder, Reply,
    RequestTimer, Spool, Spooled, H2_PREFACE,
};
pub use proxy_header::ProxyHeader;
pub use reverse::Reverse;
pub use uwsgi::Uwsgi;
