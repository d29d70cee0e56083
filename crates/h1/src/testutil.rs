//! Helpers for the unit tests: scripted bytes in, events out.
use crate::{BodyRead, Error, Limits, RequestHead, ServerConn};

/// A connection that has been fed `bytes`.
pub(crate) fn conn_with(bytes: &[u8]) -> ServerConn {
    let mut c = ServerConn::new(Limits::default());
    c.feed(bytes);
    c
}

/// The first request parsed from `bytes` (no EOF).
pub(crate) fn head(bytes: &[u8]) -> Result<Option<RequestHead>, Error> {
    conn_with(bytes).next_request()
}

/// The error a complete request in `bytes` is rejected with.
pub(crate) fn rejection(bytes: &[u8]) -> Error {
    let mut c = conn_with(bytes);
    c.feed_eof();
    match c.next_request() {
        Err(e) => e,
        Ok(Some(_)) => match read_all(&mut c) {
            Err(e) => e,
            Ok(body) => panic!("accepted, body {body:?}"),
        },
        Ok(None) => panic!("no request"),
    }
}

/// Reads the current body to its end.
pub(crate) fn read_all(c: &mut ServerConn) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    let mut buf = [0u8; 7];
    loop {
        match c.read_body(&mut buf)? {
            BodyRead::Data(n) => body.extend_from_slice(&buf[..n]),
            BodyRead::End => return Ok(body),
            BodyRead::NeedMore => return Err(Error::Incomplete),
        }
    }
}

/// The response bytes as text with the `Date` value blanked.
pub(crate) fn text(out: &[u8]) -> String {
    let s = String::from_utf8_lossy(out).into_owned();
    s.lines()
        .map(|l| {
            if l.starts_with("Date: ") {
                "Date: *"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
