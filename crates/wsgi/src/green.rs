//! What a WSGI host that runs the application elsewhere (the gevent hub of `ironhorse-green`)
//! needs from this crate, so the environ and the response head are built and checked in
//! one place: [`GreenEnviron`] builds PEP 3333 environs exactly as [`crate::WsgiApp`] does,
//! and [`parse_head`] / [`body_bytes`] check what `start_response` and the body iterator
//! give.

use ironhorse_app::{ConnInfo, HeaderList, RequestHead};
use ironhorse_wire::forwarded::Policy;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::environ::{EnvironBuilder, KnownLength};
pub use crate::file_wrapper::wrapped_region;
use crate::WsgiConfig;

/// Why a request gets no environ: the server answers it itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `OPTIONS *` is about the server (RFC 9110 §9.3.7): `200`, empty.
    ServerOptions,
    /// A trusted proxy's forwarding headers disagree: `400` with this reason.
    Forwarding(String),
}

/// Builds environs for one application.
pub struct GreenEnviron {
    builder: EnvironBuilder,
    forwarded: Policy,
}

impl GreenEnviron {
    pub fn new(py: Python<'_>, cfg: &WsgiConfig) -> PyResult<GreenEnviron> {
        crate::client_error::register(py)?;
        Ok(GreenEnviron {
            builder: EnvironBuilder::new(py, cfg)?,
            forwarded: cfg.forwarded.clone(),
        })
    }

    /// The environ for `head` with `input` as `wsgi.input`; `body_length`: the length of a
    /// body read whole beforehand (a chunked one gets its real `CONTENT_LENGTH`).
    pub fn build<'py>(
        &self,
        py: Python<'py>,
        head: &RequestHead,
        body_length: Option<u64>,
        conn: &ConnInfo,
        input: &Bound<'py, PyAny>,
    ) -> PyResult<Result<Bound<'py, PyDict>, Refusal>> {
        if head.method() == "OPTIONS" && head.target() == "*" {
            return Ok(Err(Refusal::ServerOptions));
        }
        let peer = conn.peer.map(|p| p.ip());
        let resolved = match &conn.forwarded {
            Some(forwarded) => Ok(forwarded.clone()),
            None => self.forwarded.resolve(peer, head.headers()),
        };
        let forwarded = match resolved {
            Ok(forwarded) => forwarded,
            Err(e) => return Ok(Err(Refusal::Forwarding(e.to_string()))),
        };
        let env = match body_length {
            Some(length) => {
                let known = KnownLength {
                    request: head,
                    length,
                };
                self.builder.build(py, &known, conn, &forwarded, input)?
            }
            None => self.builder.build(py, head, conn, &forwarded, input)?,
        };
        Ok(Ok(env))
    }
}

/// `start_response`'s arguments checked as [`crate::WsgiApp`] checks them: the status code,
/// the headers (framing ones taken out) and the declared `Content-Length`.
pub fn parse_head(
    status: &Bound<'_, PyAny>,
    headers: &Bound<'_, PyAny>,
) -> PyResult<(u16, HeaderList, Option<u64>)> {
    crate::start_response::parse_head(status, headers).map(|head| head.into_parts())
}

/// A body chunk: `bytes` or `bytearray`, anything else a `TypeError`.
pub fn body_bytes(data: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    crate::start_response::body_bytes(data)
}
