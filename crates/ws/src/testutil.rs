//! A client's side of the wire for unit tests: masked frames in, server frames decoded.

use flate2::{Compress, Compression, FlushCompress};

/// A masked client frame with `first_byte` (FIN, RSV, opcode) as given.
pub(crate) fn raw_frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xFA, 0x21, 0x3D];
    let mut out = vec![first_byte];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// A masked frame: `fin`, `opcode`, RSV1 when `rsv1`.
pub(crate) fn frame(fin: bool, rsv1: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    raw_frame(
        (u8::from(fin) << 7) | (u8::from(rsv1) << 6) | opcode,
        payload,
    )
}

pub(crate) fn text(s: &str) -> Vec<u8> {
    frame(true, false, 1, s.as_bytes())
}

/// A client-side raw-deflate compressor (sync flush, tail stripped: RFC 7692 §7.2.1),
/// keeping its context between messages.
pub(crate) struct ClientDeflate(Compress);

impl ClientDeflate {
    pub(crate) fn new() -> Self {
        ClientDeflate(Compress::new(Compression::default(), false))
    }
    /// Compresses, then sync-flushes as Python's zlib does (`compress` + `flush`): the
    /// no-flush call first makes the flush emit its empty block even for an empty message
    /// (zlib emits nothing for a flush that repeats the previous one without input).
    pub(crate) fn compress(&mut self, mut data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 64);
        for flush in [FlushCompress::None, FlushCompress::Sync] {
            loop {
                out.reserve(1024);
                let before = self.0.total_in();
                self.0.compress_vec(data, &mut out, flush).unwrap();
                data = &data[(self.0.total_in() - before) as usize..];
                if data.is_empty() && out.len() < out.capacity() {
                    break;
                }
            }
        }
        assert!(out.ends_with(&[0, 0, 0xFF, 0xFF]));
        out.truncate(out.len() - 4);
        out
    }
}

/// A frame the server sent: (FIN, RSV1, opcode, payload). Asserts it is unmasked.
pub(crate) type ServerFrame = (bool, bool, u8, Vec<u8>);

/// Decodes the server's output into frames (all of it must be whole frames).
pub(crate) fn server_frames(mut out: &[u8]) -> Vec<ServerFrame> {
    let mut frames = Vec::new();
    while !out.is_empty() {
        let (h, n) = crate::frame::parse_header(out)
            .unwrap()
            .expect("whole header");
        assert_eq!(h.mask, None, "server frames are not masked");
        let len = h.len as usize;
        frames.push((h.fin, h.rsv1, h.raw_opcode, out[n..n + len].to_vec()));
        out = &out[n + len..];
    }
    frames
}

/// A close frame's payload.
pub(crate) fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}
