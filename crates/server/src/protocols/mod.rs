//! The protocols a server speaks: HTTP/1.1, and the seeds' raw TCP exercises.

mod echo;
mod http;
mod reverse;

pub use echo::Echo;
pub use http::{Http, HttpSettings, H2_PREFACE};
pub use reverse::Reverse;
