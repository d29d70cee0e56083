//! Request body readers handed to applications.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use ironhorse_h1::{BodyRead, ServerConn};

use crate::session::BlockingSocket;

fn invalid(e: ironhorse_h1::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// For non-blocking services: what is buffered, never waiting (`WouldBlock` past it).
/// Services that read bodies declare `may_block` and get a [`SocketBody`] instead.
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

/// For blocking drivers: reads the body from the socket as the application asks for it,
/// sending `100 Continue` first if the client waits for it.
pub(super) struct SocketBody<'a> {
    pub conn: &'a mut ServerConn,
    pub socket: &'a mut dyn BlockingSocket,
    /// Longest wait for the next body bytes.
    pub timeout: Duration,
}

impl Read for SocketBody<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut interim = Vec::new();
        self.conn.write_continue(&mut interim);
        if !interim.is_empty() {
            self.socket.write_all(&interim)?;
        }
        let mut deadline = Instant::now() + self.timeout;
        loop {
            match self.conn.read_body(buf).map_err(invalid)? {
                BodyRead::Data(n) => return Ok(n),
                BodyRead::End => return Ok(0),
                BodyRead::NeedMore => {}
            }
            match self.socket.read(self.conn.read_buf()) {
                Ok(0) => self.conn.feed_eof(),
                Ok(n) => {
                    self.conn.filled(n);
                    deadline = Instant::now() + self.timeout;
                }
                // The socket wakes periodically (stop checks); only the deadline ends a wait.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    if Instant::now() >= deadline {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "request body timed out",
                        ));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}
