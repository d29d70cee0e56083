//! The protocols a server speaks: HTTP/1.1, and the seeds' raw TCP exercises; and the
//! PROXY protocol header any of them may sit behind.

mod echo;
mod http;
mod proxy_header;
mod reverse;

pub use echo::Echo;
pub use http::{BodyDemand, Exchange, Http, HttpSettings, Recorder, Reply, H2_PREFACE};
pub use proxy_header::ProxyHeader;
pub use reverse::Reverse;
