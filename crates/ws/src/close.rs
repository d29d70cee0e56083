//! Close frame payloads (RFC 6455 §5.5.1, §7.4): the codes allowed on the wire, parsing the
//! peer's and building ours.

use crate::ProtocolError;

/// Longest close reason: 125 bytes of payload less the 2-byte code.
const MAX_REASON: usize = 123;

/// Whether `code` may appear in a close frame. 1004 is reserved; 1005, 1006 and 1015 mean
/// "no frame" locally and must never be sent; 1012–1014 are IANA-registered since RFC 6455;
/// 3000–4999 belong to libraries and applications.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// The peer's close payload: empty (no code), or a valid code and a UTF-8 reason.
pub(crate) fn parse(payload: &[u8]) -> Result<(Option<u16>, String), ProtocolError> {
    match payload {
        [] => Ok((None, String::new())),
        [_] => Err(ProtocolError::ShortClosePayload),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !is_valid_close_code(code) {
                return Err(ProtocolError::BadCloseCode(code));
            }
            let reason =
                std::str::from_utf8(reason).map_err(|_| ProtocolError::InvalidCloseReason)?;
            Ok((Some(code), reason.to_string()))
        }
    }
}

/// Our close payload. 1005 ("no status") is sent as an empty payload; any other code that
/// may not go on the wire becomes 1000 rather than a frame the peer must reject. The reason
/// is cut at a character boundary to fit.
pub(crate) fn build(code: u16, reason: &str) -> Vec<u8> {
    if code == 1005 {
        return Vec::new();
    }
    let code = if is_valid_close_code(code) {
        code
    } else {
        1000
    };
    let mut end = reason.len().min(MAX_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    payload
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_per_rfc_6455_section_7_4() {
        for ok in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999,
        ] {
            assert!(is_valid_close_code(ok), "{ok}");
        }
        for bad in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
        ] {
            assert!(!is_valid_close_code(bad), "{bad}");
        }
    }

    #[test]
    fn parse_payloads() {
        assert_eq!(parse(b""), Ok((None, String::new())));
        assert_eq!(parse(b"\x03"), Err(ProtocolError::ShortClosePayload));
        assert_eq!(parse(b"\x03\xe8bye"), Ok((Some(1000), "bye".into())));
        assert_eq!(parse(b"\x03\xed"), Err(ProtocolError::BadCloseCode(1005)));
        assert_eq!(
            parse(b"\x03\xe8\xff"),
            Err(ProtocolError::InvalidCloseReason)
        );
    }

    #[test]
    fn build_cuts_reason_at_char_boundary() {
        let reason = "é".repeat(100); // 200 bytes
        let p = build(1000, &reason);
        assert!(p.len() <= 125);
        assert!(std::str::from_utf8(&p[2..]).is_ok());
        assert_eq!(build(1005, "x"), b"");
        assert_eq!(&build(1006, "")[..], &1000u16.to_be_bytes());
    }
}
