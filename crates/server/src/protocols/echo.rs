//! `--protocol echo`: every received byte is sent back.

use std::time::Instant;

use ironhorse_app::ConnInfo;

use crate::output::Output;
use crate::session::{Io, Protocol, Session, Step};

/// The echo protocol.
pub struct Echo;

impl Protocol for Echo {
    fn session(&self, _conn: ConnInfo) -> Box<dyn Session> {
        Box::new(EchoSession {
            buf: vec![0; 16 * 1024],
            pending: 0,
            eof: false,
        })
    }
}

struct EchoSession {
    buf: Vec<u8>,
    pending: usize,
    eof: bool,
}

impl Session for EchoSession {
    fn read_buf(&mut self) -> &mut [u8] {
        &mut self.buf[self.pending..]
    }

    fn received(&mut self, n: usize) {
        self.pending += n;
        self.eof |= n == 0;
    }

    fn advance(&mut self, out: &mut Output, _io: Io<'_>) -> Step {
        out.bytes().extend_from_slice(&self.buf[..self.pending]);
        self.pending = 0;
        if self.eof {
            Step::Close
        } else {
            Step::Read
        }
    }

    fn read_deadline(&self) -> Option<Instant> {
        None
    }

    fn is_idle(&self) -> bool {
        self.pending == 0
    }
}
