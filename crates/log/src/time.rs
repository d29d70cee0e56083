//! Timestamps, in UTC, cached per thread for the current second.
//!
//! The calendar work is jiff's (the crate that also writes the HTTP `Date` header). Formatting
//! costs a few hundred nanoseconds and two small allocations, paid once per second per thread:
//! every other log call copies the cached bytes. All times are rendered in UTC with a `+0000`
//! offset, which is what log pipelines want (gunicorn writes local time; with jiff a
//! `TimeZone::system()` here would do it, if a setting ever asks for it).
use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

/// The last whole second jiff represents (9999-12-30T22:00:00Z; its range leaves room for any
/// offset): later times are written as this one.
const MAX_SECS: u64 = 253_402_207_200;

/// One second, pre-formatted both ways.
#[derive(Clone, Copy)]
pub(crate) struct Stamp {
    secs: u64,
    /// `10/Oct/2000:13:55:36 +0000` (Common Log Format, without the brackets).
    pub(crate) clf: [u8; 26],
    /// `2000-10-10 13:55:36` (the error log's and, with a `T`, RFC 3339's).
    pub(crate) iso: [u8; 19],
}

thread_local! {
    static CACHE: Cell<Stamp> = const {
        Cell::new(Stamp { secs: u64::MAX, clf: [0; 26], iso: [0; 19] })
    };
}

/// Seconds and nanoseconds since the epoch (clamped to 1970..=9999).
pub(crate) fn split(t: SystemTime) -> (u64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) if d.as_secs() <= MAX_SECS => (d.as_secs(), d.subsec_nanos()),
        Ok(_) => (MAX_SECS, 0),
        Err(_) => (0, 0),
    }
}

/// The formatted stamp for `secs` (seconds since the epoch, at most [`MAX_SECS`]); computed
/// at most once per second per thread.
pub(crate) fn stamp(secs: u64) -> Stamp {
    let secs = secs.min(MAX_SECS);
    let cached = CACHE.try_with(Cell::get).ok();
    if let Some(s) = cached.filter(|s| s.secs == secs) {
        return s;
    }
    let fresh = format(secs);
    let _ = CACHE.try_with(|c| c.set(fresh));
    fresh
}

fn format(secs: u64) -> Stamp {
    let mut clf = [0u8; 26];
    let mut iso = [0u8; 19];
    // `secs` is at most MAX_SECS, so the conversion cannot fail; the zeroed buffers are the
    // never-taken fallback.
    if let Ok(timestamp) = jiff::Timestamp::from_second(secs as i64) {
        let utc = timestamp.to_zoned_datetime(jiff::tz::TimeZone::UTC);
        copy_exact(&mut clf, &utc.strftime("%d/%b/%Y:%H:%M:%S %z").to_string());
        copy_exact(&mut iso, &utc.strftime("%Y-%m-%d %H:%M:%S").to_string());
    }
    Stamp { secs, clf, iso }
}

/// Copies `text` into `out` if it has exactly `out`'s length (four-digit years always do).
fn copy_exact(out: &mut [u8], text: &str) {
    if text.len() == out.len() {
        out.copy_from_slice(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn clf(secs: u64) -> String {
        String::from_utf8(stamp(secs).clf.to_vec()).unwrap()
    }

    #[test]
    fn formats_a_known_second_in_common_log_format() {
        assert_eq!(clf(971_185_536), "10/Oct/2000:13:45:36 +0000");
    }

    #[test]
    fn formats_the_epoch_leap_days_and_year_ends() {
        assert_eq!(clf(0), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(clf(951_782_400), "29/Feb/2000:00:00:00 +0000");
        assert_eq!(clf(1_798_761_599), "31/Dec/2026:23:59:59 +0000");
        let iso = stamp(1_795_419_612).iso;
        assert_eq!(std::str::from_utf8(&iso).unwrap(), "2026-11-23 07:40:12");
    }

    #[test]
    fn both_forms_name_the_same_second_over_many_days() {
        // Walk a day (plus a drifting time of day) at a time over 60 years: the two forms
        // must agree on date and time, and parse back to the second they were made from.
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        for day in 0..(365 * 60u64) {
            let secs = day * 86_400 + (day * 3_607) % 86_400;
            let s = stamp(secs);
            let iso = std::str::from_utf8(&s.iso).unwrap();
            let clf = std::str::from_utf8(&s.clf).unwrap();
            let (y, mo, d) = (&iso[0..4], &iso[5..7], &iso[8..10]);
            let month = MONTHS[mo.parse::<usize>().unwrap() - 1];
            assert_eq!(clf, format!("{d}/{month}/{y}:{} +0000", &iso[11..]));
            let back: jiff::Timestamp = format!("{}Z", iso.replace(' ', "T")).parse().unwrap();
            assert_eq!(back.as_second(), secs as i64, "day {day}");
        }
    }

    #[test]
    fn clamps_times_before_the_epoch_and_after_year_9999() {
        assert_eq!(split(UNIX_EPOCH - Duration::from_secs(5)), (0, 0));
        let far = UNIX_EPOCH + Duration::from_secs(MAX_SECS * 2);
        assert_eq!(split(far).0, MAX_SECS);
        assert_eq!(clf(MAX_SECS), "30/Dec/9999:22:00:00 +0000");
        assert_eq!(MAX_SECS as i64, jiff::Timestamp::MAX.as_second());
    }
}
