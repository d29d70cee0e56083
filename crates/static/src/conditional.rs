//! Validators (`ETag`, `Last-Modified`) and the conditional and range request logic built on
//! them (RFC 9110 §13 and §14).

use std::fs::Metadata;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The validators of one file version, from a single `fstat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validators {
    /// Strong entity tag, quotes included: `"<mtime ns hex>-<size hex>"`. Strong because the
    /// bytes of a given size+mtime are served verbatim, which lets `If-Range` use it.
    pub etag: String,
    /// Modification time in whole seconds since the epoch (HTTP dates have second precision).
    pub mtime_secs: u64,
    pub size: u64,
}

impl Validators {
    pub fn new(meta: &Metadata) -> Self {
        let since_epoch = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .unwrap_or_default();
        Self::from_parts(since_epoch, meta.len())
    }

    pub fn from_parts(since_epoch: Duration, size: u64) -> Self {
        Validators {
            etag: format!("\"{:x}-{:x}\"", since_epoch.as_nanos(), size),
            mtime_secs: since_epoch.as_secs(),
            size,
        }
    }

    /// The `Last-Modified` value.
    pub fn last_modified(&self) -> String {
        httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(self.mtime_secs))
    }

    /// Whether the request's preconditions fail (`412 Precondition Failed`): `If-Match`
    /// names none of this version's tags by the strong comparison (`*` matches any current
    /// file), or, without `If-Match`, `If-Unmodified-Since` is older than the file
    /// (RFC 9110 §13.2.2, steps 1 and 2). An unparsable date is ignored.
    pub fn precondition_failed(
        &self,
        if_match: Option<&[u8]>,
        if_unmodified_since: Option<&[u8]>,
    ) -> bool {
        if let Some(im) = if_match {
            return !etag_list_matches(im, &self.etag, Comparison::Strong);
        }
        match if_unmodified_since.and_then(parse_date) {
            Some(since) => self.mtime_secs > since,
            None => false,
        }
    }

    /// Whether a `GET`/`HEAD` should be answered `304 Not Modified`. `If-None-Match` wins;
    /// `If-Modified-Since` is only consulted without it (RFC 9110 §13.1.3). Unparsable
    /// dates are ignored.
    pub fn not_modified(
        &self,
        if_none_match: Option<&[u8]>,
        if_modified_since: Option<&[u8]>,
    ) -> bool {
        if let Some(inm) = if_none_match {
            return etag_list_matches(inm, &self.etag, Comparison::Weak);
        }
        match if_modified_since.and_then(parse_date) {
            Some(since) => self.mtime_secs <= since,
            None => false,
        }
    }

    /// What to send for a `Range` header, given `If-Range`.
    pub fn range(&self, range: Option<&[u8]>, if_range: Option<&[u8]>) -> RangeOutcome {
        let Some(range) = range else {
            return RangeOutcome::Full;
        };
        if let Some(cond) = if_range {
            if !self.if_range_matches(cond) {
                return RangeOutcome::Full;
            }
        }
        parse_range(range, self.size)
    }

    /// `If-Range` holds an entity tag (strong comparison: a weak tag never matches) or a date,
    /// which must equal `Last-Modified` exactly and be a strong validator: the file was not
    /// changed later in the same second, which only a clock past that second shows
    /// (RFC 9110 §13.1.5, §8.8.2.2).
    fn if_range_matches(&self, cond: &[u8]) -> bool {
        let cond = trim(cond);
        if cond.starts_with(b"W/") {
            false
        } else if cond.starts_with(b"\"") {
            cond == self.etag.as_bytes()
        } else {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            parse_date(cond) == Some(self.mtime_secs) && now.as_secs() > self.mtime_secs
        }
    }
}

/// The outcome of evaluating `Range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOutcome {
    /// No usable range: send the whole file with 200.
    Full,
    /// Send `len` bytes from `start` with 206.
    Partial { start: u64, len: u64 },
    /// 416 with `Content-Range: bytes */size`.
    Unsatisfiable,
}

/// Parses a single `bytes=` range against `size`. Malformed headers and multiple ranges
/// yield `Full`: ignoring `Range` is always allowed (RFC 9110 §14.2), and it spares us
/// `multipart/byteranges`, which few clients need.
pub fn parse_range(header: &[u8], size: u64) -> RangeOutcome {
    let Ok(header) = std::str::from_utf8(header) else {
        return RangeOutcome::Full;
    };
    let header = header.trim();
    let Some((unit, spec)) = header.split_once('=') else {
        return RangeOutcome::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return RangeOutcome::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeOutcome::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    // Digits beyond u64 are still a valid position (`1*DIGIT`): past any file's end.
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            Some(s.parse().unwrap_or(u64::MAX))
        }
    };
    if first.is_empty() {
        // Suffix range: the last n bytes.
        let Some(n) = num(last) else {
            return RangeOutcome::Full;
        };
        if n == 0 || size == 0 {
            return RangeOutcome::Unsatisfiable;
        }
        let len = n.min(size);
        return RangeOutcome::Partial {
            start: size - len,
            len,
        };
    }
    let Some(start) = num(first) else {
        return RangeOutcome::Full;
    };
    let end = if last.is_empty() {
        None
    } else {
        match num(last) {
            Some(end) if end >= start => Some(end),
            _ => return RangeOutcome::Full,
        }
    };
    if start >= size {
        return RangeOutcome::Unsatisfiable;
    }
    let end = end.map_or(size - 1, |e| e.min(size - 1));
    RangeOutcome::Partial {
        start,
        len: end - start + 1,
    }
}

/// How two entity tags are compared (RFC 9110 §8.8.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// Both tags strong and equal (`If-Match`).
    Strong,
    /// Equal once `W/` prefixes are ignored (`If-None-Match`).
    Weak,
}

/// Whether an `If-Match` or `If-None-Match` value (`*` or a list of entity tags) matches
/// `etag`. A malformed list matches nothing.
pub fn etag_list_matches(list: &[u8], etag: &str, comparison: Comparison) -> bool {
    let list = trim(list);
    if list == b"*" {
        return true;
    }
    let ours = etag.strip_prefix("W/").unwrap_or(etag).as_bytes();
    let mut rest = list;
    loop {
        while let [b' ' | b'\t' | b',', tail @ ..] = rest {
            rest = tail;
        }
        if rest.is_empty() {
            return false;
        }
        let mut weak = false;
        if let Some(tail) = rest.strip_prefix(b"W/") {
            rest = tail;
            weak = true;
        }
        if rest.first() != Some(&b'"') {
            return false;
        }
        let Some(close) = rest[1..].iter().position(|&b| b == b'"') else {
            return false;
        };
        let tag = &rest[..close + 2];
        if tag == ours && !(weak && comparison == Comparison::Strong) {
            return true;
        }
        rest = &rest[close + 2..];
    }
}

/// An HTTP date as whole seconds since the epoch.
fn parse_date(value: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(trim(value)).ok()?;
    let t: SystemTime = httpdate::parse_http_date(s).ok()?;
    Some(t.duration_since(UNIX_EPOCH).ok()?.as_secs())
}

fn trim(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v() -> Validators {
        Validators::from_parts(Duration::new(1_700_000_000, 500), 1000)
    }

    fn date(secs: u64) -> String {
        httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
    }

    #[test]
    fn etag_is_strong_and_derived_from_mtime_and_size() {
        let v = v();
        assert!(v.etag.starts_with('"') && v.etag.ends_with("-3e8\""));
        assert_ne!(
            v.etag,
            Validators::from_parts(Duration::new(1_700_000_000, 501), 1000).etag
        );
    }

    #[test]
    fn last_modified_has_second_precision() {
        assert_eq!(v().last_modified(), "Tue, 14 Nov 2023 22:13:20 GMT");
    }

    #[test]
    fn if_none_match_matches_star_lists_and_weak_tags() {
        let v = v();
        assert!(v.not_modified(Some(b"*"), None));
        assert!(v.not_modified(Some(v.etag.as_bytes()), None));
        let list = format!("\"x\", W/{} ,\"y\"", v.etag);
        assert!(v.not_modified(Some(list.as_bytes()), None));
        assert!(!v.not_modified(Some(b"\"nope\", \"a,b\""), None));
        assert!(!v.not_modified(Some(b"garbage"), None));
    }

    #[test]
    fn if_match_compares_strongly_and_wins_over_if_unmodified_since() {
        let v = v();
        assert!(!v.precondition_failed(None, None));
        assert!(!v.precondition_failed(Some(b"*"), None));
        let list = format!("\"x\", {}", v.etag);
        assert!(!v.precondition_failed(Some(list.as_bytes()), None));
        let weak = format!("W/{}", v.etag);
        assert!(v.precondition_failed(Some(weak.as_bytes()), None));
        assert!(v.precondition_failed(Some(b"\"nope\""), None));
        assert!(v.precondition_failed(Some(b"garbage"), None));
        let earlier = date(v.mtime_secs - 1);
        assert!(!v.precondition_failed(Some(b"*"), Some(earlier.as_bytes())));
    }

    #[test]
    fn if_unmodified_since_fails_once_the_file_is_newer() {
        let v = v();
        assert!(v.precondition_failed(None, Some(date(v.mtime_secs - 1).as_bytes())));
        assert!(!v.precondition_failed(None, Some(date(v.mtime_secs).as_bytes())));
        assert!(!v.precondition_failed(None, Some(date(v.mtime_secs + 1).as_bytes())));
        assert!(!v.precondition_failed(None, Some(b"yesterday")));
    }

    #[test]
    fn positions_beyond_u64_are_past_the_end() {
        let huge = "99999999999999999999999";
        assert_eq!(
            parse_range(format!("bytes=5-{huge}").as_bytes(), 10),
            RangeOutcome::Partial { start: 5, len: 5 }
        );
        assert_eq!(
            parse_range(format!("bytes={huge}-").as_bytes(), 10),
            RangeOutcome::Unsatisfiable
        );
        assert_eq!(
            parse_range(format!("bytes=-{huge}").as_bytes(), 10),
            RangeOutcome::Partial { start: 0, len: 10 }
        );
    }

    #[test]
    fn if_none_match_takes_precedence_over_if_modified_since() {
        let v = v();
        let later = date(v.mtime_secs + 10);
        assert!(!v.not_modified(Some(b"\"other\""), Some(later.as_bytes())));
    }

    #[test]
    fn if_modified_since_compares_whole_seconds() {
        let v = v();
        assert!(v.not_modified(None, Some(date(v.mtime_secs).as_bytes())));
        assert!(v.not_modified(None, Some(date(v.mtime_secs + 1).as_bytes())));
        assert!(!v.not_modified(None, Some(date(v.mtime_secs - 1).as_bytes())));
        assert!(!v.not_modified(None, Some(b"yesterday")));
        assert!(!v.not_modified(None, None));
    }

    #[test]
    fn ranges_of_all_three_forms_are_parsed() {
        assert_eq!(
            parse_range(b"bytes=0-99", 1000),
            RangeOutcome::Partial { start: 0, len: 100 }
        );
        assert_eq!(
            parse_range(b"bytes=990-", 1000),
            RangeOutcome::Partial {
                start: 990,
                len: 10
            }
        );
        assert_eq!(
            parse_range(b"bytes=-10", 1000),
            RangeOutcome::Partial {
                start: 990,
                len: 10
            }
        );
        assert_eq!(
            parse_range(b"Bytes = 5 - 5 ", 1000),
            RangeOutcome::Partial { start: 5, len: 1 }
        );
    }

    #[test]
    fn ranges_past_the_end_are_clamped() {
        assert_eq!(
            parse_range(b"bytes=900-5000", 1000),
            RangeOutcome::Partial {
                start: 900,
                len: 100
            }
        );
        assert_eq!(
            parse_range(b"bytes=-5000", 1000),
            RangeOutcome::Partial {
                start: 0,
                len: 1000
            }
        );
    }

    #[test]
    fn unsatisfiable_ranges_are_reported() {
        assert_eq!(
            parse_range(b"bytes=1000-", 1000),
            RangeOutcome::Unsatisfiable
        );
        assert_eq!(
            parse_range(b"bytes=1000-2000", 1000),
            RangeOutcome::Unsatisfiable
        );
        assert_eq!(parse_range(b"bytes=-0", 1000), RangeOutcome::Unsatisfiable);
        assert_eq!(parse_range(b"bytes=0-", 0), RangeOutcome::Unsatisfiable);
        assert_eq!(parse_range(b"bytes=-5", 0), RangeOutcome::Unsatisfiable);
    }

    #[test]
    fn malformed_and_multiple_ranges_are_ignored() {
        for h in [
            &b"bytes=5-1"[..],
            b"bytes=a-b",
            b"bytes=-",
            b"bytes=+1-2",
            b"items=0-1",
            b"bytes 0-1",
            b"bytes=0-1,5-6",
            b"\xff",
        ] {
            assert_eq!(
                parse_range(h, 1000),
                RangeOutcome::Full,
                "{:?}",
                String::from_utf8_lossy(h)
            );
        }
    }

    #[test]
    fn if_range_with_matching_etag_or_date_allows_the_range() {
        let v = v();
        let part = RangeOutcome::Partial { start: 0, len: 1 };
        assert_eq!(v.range(Some(b"bytes=0-0"), Some(v.etag.as_bytes())), part);
        assert_eq!(
            v.range(Some(b"bytes=0-0"), Some(v.last_modified().as_bytes())),
            part
        );
        assert_eq!(v.range(Some(b"bytes=0-0"), None), part);
    }

    #[test]
    fn if_range_mismatch_serves_the_full_file() {
        let v = v();
        let weak = format!("W/{}", v.etag);
        for cond in [
            &b"\"old\""[..],
            weak.as_bytes(),
            date(v.mtime_secs + 1).as_bytes(),
            b"junk",
        ] {
            assert_eq!(v.range(Some(b"bytes=0-0"), Some(cond)), RangeOutcome::Full);
        }
    }
}
