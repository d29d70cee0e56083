//! Large bodies go through with flat memory: a 1 GiB file out (sendfile), a 1 GiB upload
//! in (streamed through wsgi.input).

mod common;

use common::python::{apps_dir, wsgi_args};
use common::{Server, Site};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const GIB: u64 = 1 << 30;

/// Resident memory of a process and its children, in bytes.
fn tree_rss(pid: i32) -> u64 {
    let mut pids = vec![pid];
    pids.extend(common::children_of(pid));
    pids.iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/statm")).ok())
        .filter_map(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|pages| pages * page_size())
        .sum()
}

/// The kernel's page size (statm counts pages), not assumed to be 4 KiB.
fn page_size() -> u64 {
    let out = std::process::Command::new("getconf")
        .arg("PAGESIZE")
        .output()
        .expect("getconf");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn a_1_gib_file_is_served_with_flat_memory() {
    for model in ["event", "threadpool"] {
        let site = Site::new("gib");
        // Sparse: instant to create, and the bytes (zeros) are known.
        std::fs::File::create(site.path("huge.bin"))
            .unwrap()
            .set_len(GIB)
            .unwrap();
        let mut args = common::model_args(model);
        args.extend(site.root_arg());
        let server = Server::start(&args);
        let before = tree_rss(server.pid());
        let mut stream = TcpStream::connect(&server.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream
            .write_all(b"GET /huge.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let (mut total, mut peak, mut head_seen) = (0u64, before, false);
        loop {
            let n = stream.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            let mut chunk = &buf[..n];
            if !head_seen {
                let end = chunk
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .expect("head in the first read")
                    + 4;
                assert!(chunk.starts_with(b"HTTP/1.1 200 OK\r\n"));
                chunk = &chunk[end..];
                head_seen = true;
            }
            assert!(chunk.iter().all(|&b| b == 0));
            total += chunk.len() as u64;
            if total % (64 << 20) < n as u64 {
                peak = peak.max(tree_rss(server.pid()));
            }
        }
        assert_eq!(total, GIB, "{model}");
        let growth = peak.saturating_sub(before);
        assert!(
            growth < 32 << 20,
            "{model}: memory grew by {} MiB serving 1 GiB",
            growth >> 20
        );
    }
}

#[test]
fn a_1_gib_upload_streams_through_wsgi_input_with_flat_memory() {
    for model in ["event", "threadpool"] {
        let server = Server::start(&wsgi_args(model, "wsgi_app:application", &apps_dir()));
        let before = tree_rss(server.pid());
        let mut stream = TcpStream::connect(&server.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        stream.write_all(format!("POST /upload HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {GIB}\r\n\r\n").as_bytes()).unwrap();
        let chunk = vec![7u8; 1 << 20];
        let mut peak = before;
        for i in 0..1024 {
            stream.write_all(&chunk).unwrap();
            if i % 64 == 0 {
                peak = peak.max(tree_rss(server.pid()));
            }
        }
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap_or_default();
        // The app answers "<size> <sha256>"; the size proves every byte arrived.
        assert!(answer.contains(&format!("{GIB} ")), "{model}: {answer}");
        let growth = peak.saturating_sub(before);
        assert!(
            growth < 64 << 20,
            "{model}: memory grew by {} MiB during a 1 GiB upload",
            growth >> 20
        );
    }
}
