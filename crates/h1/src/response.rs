//! Response serialisation.
use std::borrow::Cow;

/// Response header fields: names usually static, values raw bytes.
pub type HeaderList = Vec<(Cow<'static, str>, Vec<u8>)>;

/// The reason phrase for a status (`200` → `OK`); `""` if unknown.
pub fn reason_phrase(status: u16) -> &'static str {
    todo!()
}
