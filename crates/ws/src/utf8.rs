//! Incremental UTF-8 validation of a text message as its bytes arrive, so invalid text is
//! refused (1007) when the bad byte comes in, not after the whole message is buffered.

/// How far a growing buffer is known to be valid UTF-8.
#[derive(Debug, Default)]
pub(crate) struct Utf8Check {
    checked: usize,
}

impl Utf8Check {
    /// Checks the bytes of `buf` not checked yet. A character cut at the end of `buf` is
    /// fine for now (the next fragment may complete it); `Err` only for bytes no
    /// continuation can make valid.
    pub(crate) fn advance(&mut self, buf: &[u8]) -> Result<(), ()> {
        let rest = buf.get(self.checked..).unwrap_or_default();
        match simdutf8::compat::from_utf8(rest) {
            Ok(_) => {
                self.checked = buf.len();
                Ok(())
            }
            Err(e) if e.error_len().is_none() => {
                self.checked += e.valid_up_to();
                Ok(())
            }
            Err(_) => Err(()),
        }
    }

    /// Whether the message ends on a character boundary (after [`advance`](Self::advance)).
    pub(crate) fn is_complete(&self, buf: &[u8]) -> bool {
        self.checked == buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_characters_wait_bad_bytes_fail_at_once() {
        let text = "aé€😀".as_bytes();
        for cut in 0..text.len() {
            let mut c = Utf8Check::default();
            let mut buf = text[..cut].to_vec();
            assert!(c.advance(&buf).is_ok());
            buf.extend_from_slice(&text[cut..]);
            assert!(c.advance(&buf).is_ok());
            assert!(c.is_complete(&buf));
        }
        let mut c = Utf8Check::default();
        assert!(
            c.advance(b"ok\xf4\x90").is_err(),
            "beyond U+10FFFF is known bad early"
        );
        let mut c = Utf8Check::default();
        assert!(c.advance(b"ok\xe2\x82").is_ok());
        assert!(!c.is_complete(b"ok\xe2\x82"));
    }
}
