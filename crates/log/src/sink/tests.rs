use super::*;
use crate::testutil::TempDir;

fn quiet() -> SinkOptions {
    // The flusher only runs on explicit flush, so tests see exact buffer contents.
    SinkOptions {
        max_buffer: 1000,
        flush_bytes: 1 << 30,
        flush_interval: Duration::from_secs(3600),
    }
}

#[test]
fn lines_beyond_the_cap_are_dropped_counted_and_announced_in_the_next_write() {
    let dir = TempDir::new("cap");
    let path = dir.path("access.log");
    let sink = LogSink::open(path.to_str().unwrap(), SinkKind::Access, quiet()).unwrap();
    let pid = std::process::id();
    let line = [b'x'; 99].iter().chain(b"\n").copied().collect::<Vec<u8>>(); // 100 bytes
    for _ in 0..15 {
        sink.append(&line, pid);
    }
    // 1000 bytes fit: 10 lines kept, 5 dropped.
    assert_eq!(sink.dropped_lines(), 5);
    sink.flush().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 11, "{text}");
    assert!(
        text.ends_with("ironhorse: 5 access log lines dropped\n"),
        "{text}"
    );

    // Reported once: the next line is written plainly.
    sink.append(b"after\n", pid);
    sink.flush().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with("dropped\nafter\n"), "{text}");
    assert_eq!(sink.dropped_lines(), 5);
}

#[test]
fn the_drop_notice_precedes_the_next_line_that_fits() {
    let dir = TempDir::new("notice");
    let path = dir.path("error.log");
    let sink = LogSink::open(path.to_str().unwrap(), SinkKind::Error, quiet()).unwrap();
    let pid = std::process::id();
    sink.append(&[b'y'; 1001], pid);
    sink.append(b"ok\n", pid);
    drop(sink);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text, "ironhorse: 1 error log lines dropped\nok\n");
}

#[test]
fn dropping_the_sink_writes_what_is_buffered() {
    let dir = TempDir::new("drop");
    let path = dir.path("a.log");
    let sink = LogSink::open(path.to_str().unwrap(), SinkKind::Access, quiet()).unwrap();
    sink.append(b"one\n", std::process::id());
    sink.append(b"two\n", std::process::id());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    drop(sink);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\n");
}

#[test]
fn reopen_after_rename_sends_the_following_lines_to_a_new_file() {
    let dir = TempDir::new("reopen");
    let path = dir.path("a.log");
    let rotated = dir.path("a.log.1");
    let sink = LogSink::open(path.to_str().unwrap(), SinkKind::Access, quiet()).unwrap();
    let pid = std::process::id();
    sink.append(b"before\n", pid);
    std::fs::rename(&path, &rotated).unwrap();
    sink.append(b"still old\n", pid);
    sink.reopen().unwrap();
    sink.append(b"after\n", pid);
    sink.flush().unwrap();
    assert_eq!(
        std::fs::read_to_string(&rotated).unwrap(),
        "before\nstill old\n"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "after\n");
}

#[test]
fn the_background_flusher_writes_within_the_interval_without_an_explicit_flush() {
    let dir = TempDir::new("bg");
    let path = dir.path("a.log");
    let opts = SinkOptions {
        flush_interval: Duration::from_millis(10),
        ..SinkOptions::default()
    };
    let sink = LogSink::open(path.to_str().unwrap(), SinkKind::Access, opts).unwrap();
    sink.append(b"hello\n", std::process::id());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(&path).unwrap() != "hello\n" {
        assert!(std::time::Instant::now() < deadline, "never flushed");
        std::thread::sleep(Duration::from_millis(5));
    }
    // And again after going idle.
    sink.append(b"again\n", std::process::id());
    while std::fs::read_to_string(&path).unwrap() != "hello\nagain\n" {
        assert!(std::time::Instant::now() < deadline, "never flushed twice");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn an_idle_flusher_wakes_for_a_line_preceded_by_a_drop_notice() {
    let dir = TempDir::new("idle-notice");
    let path = dir.path("a.log");
    let opts = SinkOptions {
        max_buffer: 250,
        flush_bytes: 1 << 20,
        flush_interval: Duration::from_millis(5),
    };
    let sink = LogSink::open(path.to_str().unwrap(), SinkKind::Access, opts).unwrap();
    let pid = std::process::id();
    let wait_for = |want: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let text = std::fs::read_to_string(&path).unwrap();
            if text == want {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "got {text:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    sink.append(b"a\n", pid);
    wait_for("a\n");
    // The flusher is now idle; a dropped line then a kept one must still be written.
    std::thread::sleep(Duration::from_millis(20));
    sink.append(&[b'x'; 300], pid);
    sink.append(b"b\n", pid);
    wait_for("a\nironhorse: 1 access log lines dropped\nb\n");
}

#[test]
fn the_buffer_reaching_flush_bytes_wakes_the_flusher_at_once() {
    let dir = TempDir::new("kick");
    let path = dir.path("a.log");
    let opts = SinkOptions {
        max_buffer: 1 << 20,
        flush_bytes: 100,
        flush_interval: Duration::from_secs(3600),
    };
    let sink = LogSink::open(path.to_str().unwrap(), SinkKind::Access, opts).unwrap();
    let pid = std::process::id();
    for _ in 0..20 {
        sink.append(b"0123456789\n", pid);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::fs::metadata(&path).unwrap().len() < 100 {
        assert!(std::time::Instant::now() < deadline, "flusher not woken");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_state_stamped_with_another_pid_is_replaced_not_used() {
    // What a forked child sees: the state carries the parent's pid. Simulate it by
    // appending with a pid that differs from the stamp.
    let dir = TempDir::new("adopt");
    let path = dir.path("a.log");
    let sink = LogSink::open(path.to_str().unwrap(), SinkKind::Access, quiet()).unwrap();
    let parent_state = sink.shared.current.load_full();
    let fake_child = std::process::id().wrapping_add(1);
    sink.append(b"child\n", fake_child);
    let child_state = sink.shared.current.load_full();
    assert_eq!(child_state.pid, fake_child);
    assert!(!Arc::ptr_eq(&parent_state, &child_state));
    assert!(lock(&parent_state.core.state).buf.is_empty());
    // The child's state writes through its own duplicate of the descriptor.
    child_state.core.write_pending(false).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "child\n");
}

#[test]
fn many_threads_appending_lose_nothing_below_the_cap() {
    let dir = TempDir::new("threads");
    let path = dir.path("a.log");
    let sink = LogSink::open(
        path.to_str().unwrap(),
        SinkKind::Access,
        SinkOptions::default(),
    )
    .unwrap();
    let pid = std::process::id();
    std::thread::scope(|s| {
        for t in 0..8 {
            let sink = &sink;
            s.spawn(move || {
                for i in 0..2000 {
                    sink.append(format!("t{t} line {i}\n").as_bytes(), pid);
                }
            });
        }
    });
    sink.flush().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 16_000);
    assert_eq!(sink.dropped_lines(), 0);
    for t in 0..8 {
        // Each thread's lines are in its own order.
        let mine: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with(&format!("t{t} ")))
            .collect();
        assert_eq!(mine.len(), 2000);
        assert!(mine.windows(2).all(|w| {
            let n = |l: &str| l.rsplit(' ').next().unwrap().parse::<u32>().unwrap();
            n(w[0]) < n(w[1])
        }));
    }
}
