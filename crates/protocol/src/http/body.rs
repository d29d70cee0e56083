//! The request body handed to non-blocking applications (blocking ones read theirs through
//! the exchange).

use std::io::{self, Read};

use ironhorse_h1::{BodyRead, ServerConn};

fn invalid(e: ironhorse_h1::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// For non-blocking services: what is buffered, never waiting (`WouldBlock` past it).
/// Services that read bodies declare `may_block` and get the exchange's body instead.
pub(super) struct BufferedBody<'a>(pub &'a mut ServerConn);

impl Read for BufferedBody<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.read_body(buf).map_err(invalid)? {
            BodyRead::Data(n) => Ok(n),
            BodyRead::End => Ok(0),
            BodyRead::NeedMore => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}
