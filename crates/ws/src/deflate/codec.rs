//! The raw-deflate streams of one connection (RFC 7692 §7.2): the compressor for what we
//! send and the decompressor for what the client sends, each created on first use (an idle
//! connection should not hold two zlib windows).

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::Deflate;

/// The bytes a sync flush ends with, which senders strip and receivers put back.
const TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

/// How much output room to offer the decompressor at a time.
const CHUNK: usize = 32 * 1024;

/// Why a compressed message could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InflateError {
    /// It inflates past the message size limit (a zip bomb stops here, bounded).
    TooBig,
    /// Not a valid deflate stream.
    Corrupt,
}

/// Decompressor of the client's messages.
pub(crate) struct Inflater {
    stream: Option<Decompress>,
    reset_each: bool,
}

impl Inflater {
    pub(crate) fn new(params: &Deflate) -> Inflater {
        Inflater {
            stream: None,
            reset_each: params.client_no_context_takeover,
        }
    }

    /// Inflates a piece of a compressed message, appending to `out`, which never grows
    /// past `limit` bytes.
    pub(crate) fn inflate(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), InflateError> {
        // A 15-bit window decodes streams made with any smaller window too.
        let stream = self
            .stream
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, 15));
        loop {
            // One byte of room past the limit tells "exactly full" from "too big".
            let allowed = (limit + 1).saturating_sub(out.len());
            if allowed == 0 {
                return Err(InflateError::TooBig);
            }
            // Room in proportion to the input (small messages stay small), grown by
            // doubling while the output keeps filling it.
            let room = input.len().saturating_mul(4).clamp(256, CHUNK).min(allowed);
            grow_within(out, room, limit + 1);
            let (in_before, out_before) = (stream.total_in(), stream.total_out());
            // Writes into the spare capacity only: nothing zero-filled, nothing past `cap`.
            let status = stream.decompress_vec(input, out, FlushDecompress::None);
            let consumed = (stream.total_in() - in_before) as usize;
            let produced = (stream.total_out() - out_before) as usize;
            if out.len() > limit {
                return Err(InflateError::TooBig);
            }
            input = &input[consumed..];
            match status {
                Err(_) => return Err(InflateError::Corrupt),
                // A final block (BFINAL) ended the stream: what follows starts a new one.
                Ok(Status::StreamEnd) => stream.reset(false),
                Ok(_) if consumed == 0 && produced == 0 && !input.is_empty() => {
                    return Err(InflateError::Corrupt)
                }
                Ok(_) => {}
            }
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(());
            }
        }
    }

    /// Ends a message: inflates the stripped flush tail and, without context takeover,
    /// forgets the window.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>, limit: usize) -> Result<(), InflateError> {
        let result = self.inflate(&TAIL, out, limit);
        if self.reset_each {
            if let Some(stream) = &mut self.stream {
                stream.reset(false);
            }
        }
        result
    }
}

/// Makes room for `room` more bytes, doubling as a `Vec` does but never past `cap`, so a
/// message inflating to the limit never holds twice the limit.
fn grow_within(out: &mut Vec<u8>, room: usize, cap: usize) {
    if out.capacity() - out.len() >= room {
        return;
    }
    let want = (out.capacity() * 2).min(cap).max(out.len() + room);
    out.reserve_exact(want - out.len());
}

/// Compressor of our messages.
pub(crate) struct Deflater {
    stream: Option<Compress>,
    params: Deflate,
}

impl Deflater {
    pub(crate) fn new(params: Deflate) -> Deflater {
        Deflater {
            stream: None,
            params,
        }
    }

    /// `data` compressed as one permessage-deflate message, or `None` to send it as is
    /// (too short, or compression did not make it smaller). Resetting our compressor is
    /// always safe for the peer (a fresh stream never refers back into the old window), so
    /// a message not worth compressing costs the context, never correctness.
    pub(crate) fn compress(&mut self, data: &[u8]) -> Option<Vec<u8>> {
        if data.len() < self.params.min_size {
            return None;
        }
        let (bits, level) = (self.params.server_max_window_bits, self.params.level);
        let stream = self.stream.get_or_insert_with(|| {
            Compress::new_with_window_bits(Compression::new(level), false, bits.clamp(9, 15))
        });
        let compressed = sync_flush(stream, data);
        let compressed = match compressed {
            Some(mut c) if c.ends_with(&TAIL) && c.len() - TAIL.len() < data.len() => {
                c.truncate(c.len() - TAIL.len());
                Some(c)
            }
            _ => {
                stream.reset();
                return None;
            }
        };
        if self.params.server_no_context_takeover {
            stream.reset();
        }
        compressed
    }
}

/// Compresses all of `data` and sync-flushes (the output then ends with [`TAIL`]).
fn sync_flush(stream: &mut Compress, mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(1024));
        }
        let before = stream.total_in();
        stream
            .compress_vec(data, &mut out, FlushCompress::Sync)
            .ok()?;
        data = &data[(stream.total_in() - before) as usize..];
        // The flush is complete once the compressor returns with output room to spare.
        if data.is_empty() && out.len() < out.capacity() {
            return Some(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(takeover: bool) -> Deflate {
        Deflate {
            server_no_context_takeover: !takeover,
            client_no_context_takeover: !takeover,
            server_max_window_bits: 15,
            announce_server_max_window_bits: false,
            level: 6,
            min_size: 0,
        }
    }

    #[test]
    fn round_trip_with_and_without_context_takeover() {
        for takeover in [true, false] {
            let mut d = Deflater::new(params(takeover));
            let mut i = Inflater::new(&params(takeover));
            let msg = "hello hello hello hello hello hello".repeat(20);
            let mut sizes = Vec::new();
            for _ in 0..3 {
                let c = d.compress(msg.as_bytes()).expect("compressible");
                sizes.push(c.len());
                let mut out = Vec::new();
                for piece in c.chunks(7) {
                    i.inflate(piece, &mut out, 1 << 20).unwrap();
                }
                i.finish(&mut out, 1 << 20).unwrap();
                assert_eq!(out, msg.as_bytes());
            }
            // With the context kept, repeats refer back to the previous message.
            assert_eq!(takeover, sizes[1] < sizes[0], "{sizes:?}");
        }
    }

    #[test]
    fn bomb_stops_at_limit() {
        let mut d = Deflater::new(params(false));
        let big = vec![0u8; 10 << 20];
        let c = d.compress(&big).unwrap();
        assert!(c.len() < 20_000);
        let mut i = Inflater::new(&params(false));
        let mut out = Vec::new();
        let r = i.inflate(&c, &mut out, 1 << 20);
        assert_eq!(r, Err(InflateError::TooBig));
        assert!(out.capacity() <= (1 << 20) + 1, "{}", out.capacity());
        // Exactly at the limit is fine.
        let exact = vec![7u8; 4096];
        let c = d.compress(&exact).unwrap();
        let mut out = Vec::new();
        let mut i = Inflater::new(&params(false));
        i.inflate(&c, &mut out, 4096).unwrap();
        i.finish(&mut out, 4096).unwrap();
        assert_eq!(out, exact);
    }

    #[test]
    fn incompressible_data_is_sent_raw() {
        let mut d = Deflater::new(params(true));
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert_eq!(d.compress(&noise), None);
        assert!(d.compress(&[b'a'; 1000]).is_some());
    }

    #[test]
    fn an_empty_message_after_others_still_decodes() {
        // zlib emits nothing for a sync flush without new input: that must not go out as
        // an empty compressed payload (the receiver's appended tail would not be a block).
        for takeover in [true, false] {
            let mut d = Deflater::new(params(takeover));
            let mut i = Inflater::new(&params(takeover));
            for msg in [&b"abcabcabcabc"[..], b"", b"", b"abcabcabcabc"] {
                let Some(c) = d.compress(msg) else {
                    assert!(msg.is_empty());
                    continue;
                };
                let mut out = Vec::new();
                i.inflate(&c, &mut out, 100).unwrap();
                i.finish(&mut out, 100).unwrap();
                assert_eq!(out, msg);
            }
        }
    }

    #[test]
    fn garbage_is_corrupt() {
        let mut i = Inflater::new(&params(true));
        let mut out = Vec::new();
        let r = i.inflate(&[0xFF; 64], &mut out, 1 << 20);
        assert_eq!(r, Err(InflateError::Corrupt));
    }
}
