//! What one access-log call costs, in the request's thread (the flusher's disk writes are not
//! counted: they happen in the background). Run with `cargo bench -p ironhorse-log`.
//!
//! Three cases: the default text format and JSON with the timestamp cache warm (every call in
//! the same second, as under load), and the text format with a new second every call (the
//! date formatting paid each time: its worst case).
use std::borrow::Cow;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ironhorse_log::{AccessEntry, AccessFormat, AccessLog, LogSink};

const HEADERS: &[(&str, &[u8])] = &[
    ("Host", b"example.com"),
    ("Referer", b"http://example.com/start"),
    ("User-Agent", b"curl/8.0"),
    ("Authorization", b"Basic YWxpY2U6c2VjcmV0"),
    ("X-Request-Id", b"abc-123"),
];

fn main() {
    let lookup = |name: &str| {
        HEADERS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    };
    let response: Vec<(Cow<'static, str>, Vec<u8>)> =
        vec![(Cow::Borrowed("Content-Type"), b"text/html".to_vec())];
    let path = std::env::temp_dir().join(format!("ironhorse-log-bench-{}.log", std::process::id()));
    let calls: u32 = if cfg!(debug_assertions) {
        20_000
    } else {
        200_000
    };
    for (name, format, new_second_each_call) in [
        ("default text", AccessFormat::default(), false),
        ("json", AccessFormat::Json, false),
        (
            "default text, new second each call",
            AccessFormat::default(),
            true,
        ),
    ] {
        let sink = LogSink::open_access(path.to_str().expect("utf-8 temp dir")).expect("open");
        let log = AccessLog::new(sink, format);
        let mut entry = AccessEntry {
            remote: Some("192.168.1.20:54321".parse().expect("address")),
            method: "GET",
            target: "/index.html?lang=en",
            path: "/index.html",
            query: "lang=en",
            version: "HTTP/1.1",
            status: 200,
            bytes: 1234,
            request_headers: &lookup,
            response_headers: &response,
            started: SystemTime::now(),
            duration: Duration::from_micros(1234),
        };
        for _ in 0..1000 {
            log.log(&entry); // warm up: flusher thread, buffers, time cache
        }
        // Five rounds; the fastest is the cost, the spread shows how loaded the machine was.
        let mut rounds: Vec<u128> = (0..5u64)
            .map(|round| {
                let start = Instant::now();
                for i in 0..calls {
                    if new_second_each_call {
                        let second = 1_700_000_000 + round * u64::from(calls) + u64::from(i);
                        entry.started = UNIX_EPOCH + Duration::from_secs(second);
                    }
                    log.log(&entry);
                }
                start.elapsed().as_nanos() / u128::from(calls)
            })
            .collect();
        rounds.sort_unstable();
        log.flush().expect("flush");
        println!(
            "{name}: {} ns per log() call (fastest of 5 rounds; median {} ns; {} lines dropped)",
            rounds[0],
            rounds[2],
            log.sink().dropped_lines()
        );
        let _ = std::fs::remove_file(&path);
    }
}
