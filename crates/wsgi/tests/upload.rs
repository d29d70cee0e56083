//! A 1 GiB upload streams through wsgi.input with flat memory (its own process, so the peak
//! RSS measured is this test's alone).

mod common;

use std::io::{self, Read};

use common::*;
use ironhorse_wsgi::RequestParts;

/// Produces `left` bytes without holding them.
struct Endless {
    left: u64,
}

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        buf[..n].fill(b'x');
        self.left -= n as u64;
        Ok(n)
    }
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn one_gib_upload_with_flat_memory() {
    const SIZE: u64 = 1 << 30;
    let app = load("apps:input_count");
    let _ = get(&app, "/"); // warm up
    let before = peak_rss_kib();
    let req = RequestParts {
        content_length: Some(SIZE),
        ..RequestParts::new("POST", "/upload")
    };
    let resp = collect(app.handle(&req, &mut Endless { left: SIZE }, &conn()));
    assert_eq!(resp.text(), SIZE.to_string());
    let grown = peak_rss_kib().saturating_sub(before);
    assert!(grown < 32 * 1024, "peak RSS grew by {grown} KiB");
}
