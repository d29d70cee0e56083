//! `--protocol reverse`: the server of seed 000. Read until `!`, wait the handler's
//! simulated work time, answer the bytes reversed, close.

use std::time::{Duration, Instant};

use ironhorse_app::ConnInfo;

use crate::output::Output;
use crate::session::{Link, Protocol, Session, Step};

/// Requests longer than this without a `!` are dropped.
const MAX_REQUEST: usize = 64 * 1024;

/// The reverse protocol; `work_delay` imitates a slow handler (seed 000 sleeps 5 s).
pub struct Reverse {
    pub work_delay: Duration,
}

impl Protocol for Reverse {
    fn session(&self, _conn: ConnInfo, _link: Link) -> Box<dyn Session> {
        Box::new(ReverseSession {
            request: Vec::new(),
            scratch: vec![0; 4096],
            work_delay: self.work_delay,
            state: State::Reading,
        })
    }
}

enum State {
    Reading,
    Working(Instant),
    Done,
}

struct ReverseSession {
    request: Vec<u8>,
    scratch: Vec<u8>,
    work_delay: Duration,
    state: State,
}

impl Session for ReverseSession {
    fn read_buf(&mut self) -> &mut [u8] {
        &mut self.scratch
    }

    fn received(&mut self, n: usize) {
        if !matches!(self.state, State::Reading) {
            return;
        }
        if n == 0 {
            // The client left before finishing its request: nothing to answer.
            self.state = State::Done;
            return;
        }
        self.request.extend_from_slice(&self.scratch[..n]);
        if let Some(end) = self.request.iter().position(|&b| b == b'!') {
            self.request.truncate(end + 1);
            self.state = State::Working(Instant::now() + self.work_delay);
        } else if self.request.len() > MAX_REQUEST {
            self.state = State::Done;
        }
    }

    fn advance(&mut self, out: &mut Output) -> Step {
        match self.state {
            State::Reading => Step::Read,
            State::Working(until) if Instant::now() < until => Step::WaitUntil(until),
            State::Working(_) => {
                out.bytes().extend(self.request.iter().rev());
                self.state = State::Done;
                Step::Close
            }
            State::Done => Step::Close,
        }
    }

    fn read_deadline(&self) -> Option<Instant> {
        None
    }

    fn is_idle(&self) -> bool {
        false
    }
}
