//! The RFC 6455 §5.2 frame header: parsing what a client sends, writing what the server
//! sends, and the masking both sides share.

use crate::ProtocolError;

/// Frame opcodes (RFC 6455 §5.2). Other values are reserved: a frame carrying one fails the
/// connection with 1002.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl OpCode {
    fn from_bits(bits: u8) -> Option<OpCode> {
        Some(match bits {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    pub(crate) fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Close, ping and pong: at most 125 bytes, never fragmented, allowed between the
    /// fragments of a data message.
    pub(crate) fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// Largest payload of a control frame (RFC 6455 §5.5).
pub(crate) const MAX_CONTROL_PAYLOAD: usize = 125;

/// A parsed frame header. Only structural rules are checked here (known opcode, length
/// encoding); which frames are allowed when is the reader's business.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) fin: bool,
    pub(crate) rsv1: bool,
    /// RSV2 or RSV3: no extension we negotiate defines them.
    pub(crate) rsv23: bool,
    /// `None` for a reserved opcode (the header still parses, so its payload can be skipped).
    pub(crate) opcode: Option<OpCode>,
    pub(crate) raw_opcode: u8,
    pub(crate) mask: Option<[u8; 4]>,
    pub(crate) len: u64,
}

/// Parses a header from the start of `buf`: `Ok(None)` until enough bytes are there, else
/// the header and its size in bytes. Lengths need not be minimally encoded (RFC 6455 only
/// asks senders for that), but a 64-bit length must have its most significant bit clear.
pub(crate) fn parse_header(buf: &[u8]) -> Result<Option<(Header, usize)>, ProtocolError> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    let masked = b1 & 0x80 != 0;
    let (len, mut at) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => {
                let mut be = [0u8; 8];
                be.copy_from_slice(b);
                let len = u64::from_be_bytes(be);
                if len >> 63 != 0 {
                    return Err(ProtocolError::BadLength);
                }
                (len, 10)
            }
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    let mask = if masked {
        let Some(m) = buf.get(at..at + 4) else {
            return Ok(None);
        };
        at += 4;
        Some([m[0], m[1], m[2], m[3]])
    } else {
        None
    };
    let header = Header {
        fin: b0 & 0x80 != 0,
        rsv1: b0 & 0x40 != 0,
        rsv23: b0 & 0x30 != 0,
        opcode: OpCode::from_bits(b0 & 0x0F),
        raw_opcode: b0 & 0x0F,
        mask,
        len,
    };
    Ok(Some((header, at)))
}

/// Appends an unmasked (server-to-client, RFC 6455 §5.1) frame header.
pub(crate) fn put_header(out: &mut Vec<u8>, fin: bool, rsv1: bool, opcode: OpCode, len: usize) {
    let b0 = (u8::from(fin) << 7) | (u8::from(rsv1) << 6) | opcode.bits();
    out.push(b0);
    if len < 126 {
        out.push(len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&short.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// Appends a whole unmasked frame.
pub(crate) fn put_frame(out: &mut Vec<u8>, rsv1: bool, opcode: OpCode, payload: &[u8]) {
    out.reserve(payload.len() + 10);
    put_header(out, true, rsv1, opcode, payload.len());
    out.extend_from_slice(payload);
}

/// XORs `buf` with `mask`, `buf` starting `offset` bytes into the frame's payload (payloads
/// arrive in pieces). Eight bytes at a time: unmasking is on the path of every byte received.
pub(crate) fn apply_mask(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    let mut m = mask;
    m.rotate_left(offset % 4);
    let wide = u64::from_ne_bytes([m[0], m[1], m[2], m[3], m[0], m[1], m[2], m[3]]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    for (byte, k) in chunks.into_remainder().iter_mut().zip(m.iter().cycle()) {
        *byte ^= k;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_in_pieces_equals_mask_whole() {
        let mask = [1, 2, 3, 250];
        let data: Vec<u8> = (0..=255).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, mask, 0);
        for (i, b) in whole.iter().enumerate() {
            assert_eq!(*b, data[i] ^ mask[i % 4]);
        }
        for split in [1, 3, 7, 9, 100] {
            let mut pieces = data.clone();
            let (a, b) = pieces.split_at_mut(split);
            apply_mask(a, mask, 0);
            apply_mask(b, mask, split);
            assert_eq!(pieces, whole, "split at {split}");
        }
    }

    #[test]
    fn header_lengths_round_trip() {
        for len in [0usize, 125, 126, 65535, 65536, 1 << 20] {
            let mut out = Vec::new();
            put_header(&mut out, true, false, OpCode::Binary, len);
            let (h, n) = parse_header(&out).unwrap().unwrap();
            assert_eq!(
                (h.len, n, h.fin, h.mask),
                (len as u64, out.len(), true, None)
            );
            // Every strict prefix needs more bytes.
            for cut in 0..out.len() {
                assert_eq!(parse_header(&out[..cut]).unwrap(), None);
            }
        }
    }

    #[test]
    fn non_minimal_lengths_are_accepted_msb_is_not() {
        let (h, _) = parse_header(&[0x82, 0xFE, 0, 5, 1, 2, 3, 4])
            .unwrap()
            .unwrap();
        assert_eq!(h.len, 5);
        let mut big = vec![0x82, 0xFF];
        big.extend_from_slice(&(1u64 << 63).to_be_bytes());
        assert_eq!(parse_header(&big), Err(ProtocolError::BadLength));
    }

    #[test]
    fn reserved_opcodes_parse_as_unknown() {
        for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            let (h, n) = parse_header(&[0x80 | op, 0x81, 1, 2, 3, 4])
                .unwrap()
                .unwrap();
            assert_eq!((h.opcode, h.raw_opcode, h.len, n), (None, op, 1, 6));
        }
    }
}
