//! `--protocol echo`: every received byte is sent back.

use std::time::Instant;

use ironhorse_app::ConnInfo;

use crate::output::Output;
use crate::session::{Link, Protocol, Session, Step};

/// The echo protocol.
pub struct Echo;

impl Protocol for Echo {
    fn session(&self, _conn: ConnInfo, _link: Link) -> Box<dyn Session> {
        Box::new(EchoSession {
            scratch: vec![0; 16 * 1024],
            pending: Vec::new(),
            eof: false,
        })
    }
}

struct EchoSession {
    /// Where blocking drivers read into.
    scratch: Vec<u8>,
    /// Received, not yet queued for sending.
    pending: Vec<u8>,
    eof: bool,
}

impl Session for EchoSession {
    fn read_buf(&mut self) -> &mut [u8] {
        &mut self.scratch
    }

    fn received(&mut self, n: usize) {
        if n == 0 {
            self.eof = true;
        } else {
            self.pending.extend_from_slice(&self.scratch[..n]);
        }
    }

    fn receive(&mut self, data: &[u8]) {
        self.pending.extend_from_slice(data);
    }

    fn advance(&mut self, out: &mut Output) -> Step {
        out.bytes().extend_from_slice(&self.pending);
        self.pending.clear();
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
        self.pending.is_empty()
    }
}
