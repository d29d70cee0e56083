//! The protocols a server speaks: HTTP/1.1, and the seeds' raw TCP exercises; and the
//! PROXY protocol header any of them may sit behind; uwsgi request packets in front of HTTP.

mod echo;
mod http;
mod proxy_header;
mod reverse;
mod uwsgi;

pub use echo::Echo;
pub use http::{Http, HttpSettings, H2_PREFACE};
pub use proxy_header::ProxyHeader;
pub use reverse::Reverse;
pub use uwsgi::Uwsgi;
