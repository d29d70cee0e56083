//! Timestamps, in UTC, cached per thread for the current second.
//!
//! All times are rendered in UTC with a `+0000` offset: finding the local zone needs either
//! `localtime_r` (unsafe FFI, not allowed in this crate) or parsing `/etc/localtime`, and UTC
//! is what log pipelines want anyway.
use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

/// The last second representable with a four-digit year (9999-12-31T23:59:59Z).
const MAX_SECS: u64 = 253_402_300_799;

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

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
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (h, mi, s) = (
        (rem / 3600) as u32,
        (rem / 60 % 60) as u32,
        (rem % 60) as u32,
    );
    let (y, mo, d) = civil_from_days(days);
    let y = y as u32; // 1970..=9999 after clamping.

    let mut clf = [0u8; 26];
    put2(&mut clf[0..2], d);
    clf[2] = b'/';
    clf[3..6].copy_from_slice(MONTHS[(mo - 1) as usize]);
    clf[6] = b'/';
    put4(&mut clf[7..11], y);
    clf[11] = b':';
    put2(&mut clf[12..14], h);
    clf[14] = b':';
    put2(&mut clf[15..17], mi);
    clf[17] = b':';
    put2(&mut clf[18..20], s);
    clf[20..26].copy_from_slice(b" +0000");

    let mut iso = [0u8; 19];
    put4(&mut iso[0..4], y);
    iso[4] = b'-';
    put2(&mut iso[5..7], mo);
    iso[7] = b'-';
    put2(&mut iso[8..10], d);
    iso[10] = b' ';
    put2(&mut iso[11..13], h);
    iso[13] = b':';
    put2(&mut iso[14..16], mi);
    iso[16] = b':';
    put2(&mut iso[17..19], s);

    Stamp { secs, clf, iso }
}

fn put2(out: &mut [u8], v: u32) {
    out[0] = b'0' + (v / 10 % 10) as u8;
    out[1] = b'0' + (v % 10) as u8;
}

fn put4(out: &mut [u8], v: u32) {
    put2(&mut out[0..2], v / 100);
    put2(&mut out[2..4], v % 100);
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
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
    fn agrees_with_httpdate_style_day_counting_over_many_days() {
        // Walk a day at a time over 60 years; month/day must always advance sanely.
        let mut prev = (1969, 12, 31);
        for day in 0..(365 * 60) {
            let cur = civil_from_days(day);
            let next_of_prev = if cur.1 == prev.1 {
                (prev.0, prev.1, prev.2 + 1)
            } else if cur.0 == prev.0 {
                (prev.0, prev.1 + 1, 1)
            } else {
                (prev.0 + 1, 1, 1)
            };
            assert_eq!(cur, next_of_prev, "day {day}");
            prev = cur;
        }
    }

    #[test]
    fn clamps_times_before_the_epoch_and_after_year_9999() {
        assert_eq!(split(UNIX_EPOCH - Duration::from_secs(5)), (0, 0));
        let far = UNIX_EPOCH + Duration::from_secs(MAX_SECS * 2);
        assert_eq!(split(far).0, MAX_SECS);
        assert_eq!(clf(MAX_SECS), "31/Dec/9999:23:59:59 +0000");
    }
}
