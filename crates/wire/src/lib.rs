//! Sans-IO parsers for what proxies put in front of (or into) a request.
//!
//! * [`allow`]: allow lists of peers (`127.0.0.1,::1`, `10.0.0.0/8`, `*`), shared by every
//!   setting that trusts some peers and not others.
//! * [`forwarded`]: who the client really is, from a trusted peer's `X-Forwarded-For`,
//!   `X-Forwarded-Proto`/`-Ssl`/`-Protocol`, `X-Forwarded-Host` and RFC 7239 `Forwarded`.
//! * [`proxy_protocol`]: HAProxy's PROXY protocol header, v1 (text) and v2 (binary, TLVs).
//! * [`uwsgi`]: the uwsgi packet that nginx's `uwsgi_pass` sends (modifiers, var block).
//!
//! No sockets, threads or Python here: the wire parsers take the bytes received so far and
//! answer [`Parsed::NeedMore`], [`Parsed::Done`] or [`Parsed::Error`], so a session can feed
//! them from any driver, and the answer never depends on how the bytes were split.
#![forbid(unsafe_code)]

pub mod allow;
pub mod forwarded;
pub mod proxy_protocol;
pub mod uwsgi;

pub use allow::AllowList;

/// The answer of an incremental parser fed the bytes received so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<T, E> {
    /// The bytes so far are a valid beginning: call again with more.
    NeedMore,
    /// A complete item (it says how many bytes it took).
    Done(T),
    /// The bytes cannot become a valid item, whatever follows.
    Error(E),
}

impl<T, E> Parsed<T, E> {
    /// Whether this is `NeedMore`.
    pub fn is_need_more(&self) -> bool {
        matches!(self, Parsed::NeedMore)
    }
}
