//! A guard against control-frame floods that `h2` answers without limit: PING and SETTINGS
//! frames each force an acknowledgement, so a peer sending them in a loop makes the server
//! write forever (CVE-2019-9512, -9515). The guard reads only the 9-byte frame headers of
//! the input as it passes (after the 24-byte client preface) and keeps a token bucket.

use std::time::Instant;

const PREFACE_LEN: usize = 24;
const HEADER_LEN: usize = 9;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const ACK: u8 = 0x1;

/// Control frames allowed in a burst.
const BURST: f64 = 1000.0;
/// Control frames allowed per second after a burst.
const RATE: f64 = 100.0;

pub(crate) struct FloodGuard {
    /// Preface bytes still to skip.
    preface: usize,
    /// A frame header being collected.
    header: [u8; HEADER_LEN],
    have: usize,
    /// Payload bytes of the current frame still to skip.
    payload: usize,
    tokens: f64,
    refilled: Instant,
    flooded: bool,
}

impl FloodGuard {
    pub fn new() -> FloodGuard {
        FloodGuard {
            preface: PREFACE_LEN,
            header: [0; HEADER_LEN],
            have: 0,
            payload: 0,
            tokens: BURST,
            refilled: Instant::now(),
            flooded: false,
        }
    }

    /// Whether the peer sent more control frames than allowed.
    pub fn is_flooded(&self) -> bool {
        self.flooded
    }

    /// Looks at received bytes.
    pub fn scan(&mut self, mut data: &[u8]) {
        while !data.is_empty() && !self.flooded {
            if self.preface > 0 {
                let n = self.preface.min(data.len());
                self.preface -= n;
                data = &data[n..];
            } else if self.payload > 0 {
                let n = self.payload.min(data.len());
                self.payload -= n;
                data = &data[n..];
            } else {
                let n = (HEADER_LEN - self.have).min(data.len());
                self.header[self.have..self.have + n].copy_from_slice(&data[..n]);
                self.have += n;
                data = &data[n..];
                if self.have == HEADER_LEN {
                    self.have = 0;
                    self.frame();
                }
            }
        }
    }

    fn frame(&mut self) {
        let h = &self.header;
        self.payload = (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
        let (kind, flags) = (h[3], h[4]);
        if (kind == PING || kind == SETTINGS) && flags & ACK == 0 {
            let now = Instant::now();
            let elapsed = now.duration_since(self.refilled).as_secs_f64();
            self.refilled = now;
            self.tokens = (self.tokens + elapsed * RATE).min(BURST) - 1.0;
            self.flooded = self.tokens < 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut f = vec![
            (len >> 16) as u8,
            (len >> 8) as u8,
            len as u8,
            kind,
            flags,
            0,
            0,
            0,
            0,
        ];
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn a_ping_flood_trips_the_guard_and_acks_do_not() {
        let mut guard = FloodGuard::new();
        guard.scan(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        for _ in 0..5000 {
            guard.scan(&frame(PING, ACK, &[0; 8]));
        }
        assert!(!guard.is_flooded());
        let burst: Vec<u8> = (0..2000).flat_map(|_| frame(PING, 0, &[0; 8])).collect();
        // Split at odd places: headers may straddle reads.
        for piece in burst.chunks(7) {
            guard.scan(piece);
        }
        assert!(guard.is_flooded());
    }

    #[test]
    fn data_frames_are_skipped_whole() {
        let mut guard = FloodGuard::new();
        guard.scan(&[0u8; PREFACE_LEN]);
        // A DATA payload full of bytes that would look like PING headers.
        let payload = frame(PING, 0, &[]).repeat(3000);
        guard.scan(&frame(0x0, 0, &payload[..16_000]));
        assert!(!guard.is_flooded());
    }
}
