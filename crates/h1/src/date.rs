//! Cached `Date` header value.
/// The current time as an IMF-fixdate (29 bytes), formatted at most once per second per thread.
pub fn http_date_now() -> [u8; 29] { todo!() }
