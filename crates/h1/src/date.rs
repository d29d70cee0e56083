//! Cached `Date` header value.
//!
//! Formatting an IMF-fixdate costs far more than a response head otherwise does, and the value
//! only changes once a second, so each thread keeps the last one.
use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

thread_local! {
    static CACHE: Cell<(u64, [u8; 29])> = const { Cell::new((u64::MAX, [0; 29])) };
}

/// The current time as an IMF-fixdate (29 bytes), formatted at most once per second per thread.
pub fn http_date_now() -> [u8; 29] {
    let now = SystemTime::now();
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    CACHE.with(|c| {
        let (cached_secs, bytes) = c.get();
        if cached_secs == secs {
            return bytes;
        }
        let mut fresh = [0u8; 29];
        let s = httpdate::fmt_http_date(now);
        // IMF-fixdate is always 29 bytes for years 1970..=9999.
        if s.len() == 29 {
            fresh.copy_from_slice(s.as_bytes());
        }
        c.set((secs, fresh));
        fresh
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_an_imf_fixdate_that_parses_back() {
        let d = http_date_now();
        let s = std::str::from_utf8(&d).unwrap();
        assert!(s.ends_with(" GMT"), "{s}");
        assert!(httpdate::parse_http_date(s).is_ok());
    }

    #[test]
    fn returns_the_cached_value_within_a_second() {
        let a = http_date_now();
        let b = http_date_now();
        // Equal unless the second ticked over between the calls.
        assert!(a == b || httpdate::parse_http_date(std::str::from_utf8(&b).unwrap()).is_ok());
    }
}
