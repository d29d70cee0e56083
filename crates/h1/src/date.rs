//! Cached `Date` header value.
//!
//! Formatting an IMF-fixdate costs far more than a response head otherwise does, and the value
//! only changes once a second, so each thread keeps the last one. The calendar work is jiff's,
//! the same crate that stamps the access and error logs (one date source).
use std::cell::Cell;

thread_local! {
    static CACHE: Cell<(u64, [u8; 29])> = const { Cell::new((u64::MAX, [0; 29])) };
}

/// The current time as an IMF-fixdate (29 bytes), formatted at most once per second per thread.
/// The second comes from the coarse real-time clock (`CLOCK_REALTIME_COARSE`, a few ns from
/// the vDSO instead of ~25 for the precise one, every response pays it): it lags the precise
/// clock by at most a scheduler tick, which a one-second field does not show.
pub fn http_date_now() -> [u8; 29] {
    use nix::time::{clock_gettime, ClockId};
    let secs = clock_gettime(ClockId::CLOCK_REALTIME_COARSE)
        .map_or(0, |t| u64::try_from(t.tv_sec()).unwrap_or(0));
    CACHE.with(|c| {
        let (cached_secs, bytes) = c.get();
        if cached_secs == secs {
            return bytes;
        }
        let fresh = http_date(secs);
        c.set((secs, fresh));
        fresh
    })
}

/// `secs` (seconds since the epoch) as an IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
/// Times past jiff's last second (9999-12-30T22:00:00Z) are written as that one.
fn http_date(secs: u64) -> [u8; 29] {
    let timestamp = i64::try_from(secs)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .unwrap_or(jiff::Timestamp::MAX);
    let mut text = String::with_capacity(29);
    let printed =
        jiff::fmt::rfc2822::DateTimePrinter::new().print_timestamp_rfc9110(&timestamp, &mut text);
    let mut out = [0u8; 29];
    if printed.is_ok() && text.len() == 29 {
        out.copy_from_slice(text.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    fn text(secs: u64) -> String {
        String::from_utf8(http_date(secs).to_vec()).unwrap()
    }

    #[test]
    fn formats_known_seconds_as_imf_fixdate() {
        assert_eq!(text(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT"); // RFC 9110's example
        assert_eq!(text(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(text(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(text(253_402_207_200), "Thu, 30 Dec 9999 22:00:00 GMT");
        assert_eq!(text(u64::MAX), "Thu, 30 Dec 9999 22:00:00 GMT");
    }

    #[test]
    fn agrees_with_an_independent_parser_over_many_days() {
        // httpdate is a separate implementation: a calendar slip on either side shows here.
        for day in (0..20_000u64).step_by(7) {
            let secs = day * 86_400 + day % 86_400;
            let parsed = httpdate::parse_http_date(&text(secs)).unwrap();
            assert_eq!(parsed, UNIX_EPOCH + std::time::Duration::from_secs(secs));
        }
    }

    #[test]
    fn now_is_the_current_second_and_is_cached_per_second() {
        // The coarse clock may lag the precise one by a scheduler tick (at most 10 ms).
        let before = (SystemTime::now() - std::time::Duration::from_millis(10))
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let now = http_date_now();
        let after = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let parsed = httpdate::parse_http_date(std::str::from_utf8(&now).unwrap()).unwrap();
        let secs = parsed.duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert!(
            (before..=after).contains(&secs),
            "{before} <= {secs} <= {after}"
        );
        // The cache holds exactly what a fresh formatting of its second gives.
        let (cached_secs, cached) = CACHE.with(Cell::get);
        assert_eq!(cached, http_date(cached_secs));
        assert!((before..=after).contains(&cached_secs));
    }
}
