//! Access-log rendering and end-to-end tests.
use std::borrow::Cow;

use base64::Engine as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::testutil::TempDir;
use crate::*;

const PID: u32 = 4242;

fn started() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(971_185_536_250)
}

type Headers = Vec<(&'static str, &'static [u8])>;

fn request_headers() -> Headers {
    vec![
        ("Host", b"example.com"),
        ("Referer", b"http://example.com/start"),
        ("User-Agent", b"curl/8.0"),
        // alice:secret
        ("Authorization", b"Basic YWxpY2U6c2VjcmV0"),
        ("X-Request-Id", b"abc-123"),
    ]
}

fn response_headers() -> Vec<(Cow<'static, str>, Vec<u8>)> {
    vec![
        (Cow::Borrowed("Content-Type"), b"text/html".to_vec()),
        (Cow::Borrowed("ETag"), b"\"v1\"".to_vec()),
    ]
}

/// Renders `fmt` for the known entry, with `edit` applied to it.
fn render_with(fmt: &str, headers: &Headers, edit: impl FnOnce(&mut AccessEntry<'_>)) -> String {
    let lookup = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    };
    let resp = response_headers();
    let mut e = AccessEntry {
        remote: Some("192.168.1.20:54321".parse().unwrap()),
        method: "GET",
        target: "/index.html?lang=en",
        path: "/index.html",
        query: "lang=en",
        version: "HTTP/1.1",
        status: 200,
        bytes: 1234,
        request_headers: &lookup,
        response_headers: &resp,
        started: started(),
        duration: Duration::from_micros(1_234_567),
    };
    edit(&mut e);
    let format = if fmt == "json" {
        AccessFormat::Json
    } else {
        AccessFormat::text(fmt).unwrap()
    };
    let mut out = Vec::new();
    render(&format, &e, PID, &mut out);
    String::from_utf8(out).unwrap()
}

fn one(fmt: &str) -> String {
    render_with(fmt, &request_headers(), |_| {})
}

#[test]
fn the_default_format_renders_a_known_entry_exactly() {
    assert_eq!(
        one(DEFAULT_FORMAT),
        "192.168.1.20 - alice [10/Oct/2000:13:45:36 +0000] \
         \"GET /index.html?lang=en HTTP/1.1\" 200 1234 \"http://example.com/start\" \"curl/8.0\""
    );
}

#[test]
fn every_atom_renders_its_value() {
    let cases = [
        ("h", "192.168.1.20"),
        ("l", "-"),
        ("u", "alice"),
        ("t", "[10/Oct/2000:13:45:36 +0000]"),
        ("r", "GET /index.html?lang=en HTTP/1.1"),
        ("m", "GET"),
        ("U", "/index.html"),
        ("q", "lang=en"),
        ("H", "HTTP/1.1"),
        ("s", "200"),
        ("B", "1234"),
        ("b", "1234"),
        ("f", "http://example.com/start"),
        ("a", "curl/8.0"),
        ("T", "1"),
        ("D", "1234567"),
        ("M", "1234"),
        ("L", "1.234567"),
        ("p", "<4242>"),
        ("nonsense", "-"),
    ];
    for (atom, want) in cases {
        assert_eq!(one(&format!("%({atom})s")), want, "atom {atom}");
    }
}

#[test]
fn byte_counts_of_zero_render_as_dash_for_b_and_zero_for_capital_b() {
    let h = request_headers();
    assert_eq!(render_with("%(b)s|%(B)s", &h, |e| e.bytes = 0), "-|0");
}

#[test]
fn decimal_seconds_are_zero_padded_to_six_digits() {
    let h = request_headers();
    let out = render_with("%(L)s %(T)s %(M)s %(D)s", &h, |e| {
        e.duration = Duration::from_micros(2_000_045)
    });
    assert_eq!(out, "2.000045 2 2000 2000045");
}

#[test]
fn missing_values_render_as_dash() {
    let none: Headers = vec![];
    assert_eq!(
        render_with("%(h)s %(u)s %(f)s %(a)s %({x-request-id}i)s", &none, |e| {
            e.remote = None
        }),
        "- - - - -"
    );
}

#[test]
fn the_user_atom_ignores_other_schemes_and_bad_base64() {
    for auth in [&b"Bearer YWxpY2U6c2VjcmV0"[..], b"Basic !!!", b"Basic"] {
        let h: Headers = vec![("Authorization", auth)];
        assert_eq!(render_with("%(u)s", &h, |_| {}), "-", "{auth:?}");
    }
    // A user name without a password, and the scheme in any case.
    let h: Headers = vec![("authorization", b"basic Ym9i")];
    assert_eq!(render_with("%(u)s", &h, |_| {}), "bob");
    // Credentials too long for the stack buffer are decoded on the heap.
    let long_user = "u".repeat(300);
    let header: &'static [u8] = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{long_user}:pw"))
    )
    .into_bytes()
    .leak();
    let h: Headers = vec![("Authorization", header)];
    assert_eq!(render_with("%(u)s", &h, |_| {}), long_user);
}

#[test]
fn ipv6_peers_render_without_brackets_or_port() {
    let h = request_headers();
    let out = render_with("%(h)s", &h, |e| {
        e.remote = Some("[2001:db8::1]:8080".parse().unwrap())
    });
    assert_eq!(out, "2001:db8::1");
    for v4 in ["0.0.0.0", "255.10.100.1"] {
        let out = render_with("%(h)s", &h, |e| {
            e.remote = Some(format!("{v4}:1").parse().unwrap())
        });
        assert_eq!(out, v4);
    }
}

#[test]
fn header_atoms_look_up_request_and_response_headers_case_insensitively() {
    assert_eq!(one("%({x-request-id}i)s"), "abc-123");
    assert_eq!(one("%({X-REQUEST-ID}i)s"), "abc-123");
    assert_eq!(one("%({content-type}o)s"), "text/html");
    // Response header values are escaped like everything else.
    assert_eq!(one("%({etag}o)s"), "\\x22v1\\x22");
    assert_eq!(one("%({x-missing}i)s %({x-missing}o)s"), "- -");
}

#[test]
fn hostile_request_values_cannot_forge_a_line_in_text_mode() {
    let forged: &'static [u8] =
        b"evil\" \"-\"\n10.0.0.1 - admin [01/Jan/2000:00:00:00 +0000] \"GET / HTTP/1.1\" 200 1 \xff\xfe\\";
    let h: Headers = vec![("User-Agent", forged), ("Referer", b"\x1b[31mred")];
    let out = render_with(DEFAULT_FORMAT, &h, |e| e.target = "/a\"b");
    assert!(!out.contains('\n'));
    assert_eq!(out.matches('"').count(), 6, "{out}");
    assert!(out.contains("\"GET /a\\x22b HTTP/1.1\""), "{out}");
    assert!(out.contains("\"\\x1B[31mred\""), "{out}");
    assert!(
        out.ends_with("\"evil\\x22 \\x22-\\x22\\x0A10.0.0.1 - admin [01/Jan/2000:00:00:00 +0000] \\x22GET / HTTP/1.1\\x22 200 1 \\xFF\\xFE\\x5C\""),
        "{out}"
    );
}

#[test]
fn json_lines_have_the_fixed_keys_in_order() {
    let out = one("json");
    assert_eq!(
        out,
        r#"{"remote_addr":"192.168.1.20","time":"2000-10-10T13:45:36.250Z","method":"GET","path":"/index.html","query":"lang=en","protocol":"HTTP/1.1","status":200,"bytes":1234,"referer":"http://example.com/start","user_agent":"curl/8.0","duration_us":1234567,"pid":4242}"#
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], 200);
}

#[test]
fn json_lines_stay_valid_and_single_line_for_hostile_values() {
    let ua: &'static [u8] = b"x\"}\n{\"status\":999,\\\x00\x1f\x7f\xff\xc3(\xe2\x80\xa8";
    let h: Headers = vec![("User-Agent", ua)];
    let out = render_with("json", &h, |e| {
        e.path = "/p\"\\\n";
        e.query = "a=\u{1}&b=\u{2028}";
        e.method = "G\"T";
        e.remote = None;
    });
    assert!(!out.contains('\n') && !out.contains('\u{2028}'), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["user_agent"], *String::from_utf8_lossy(ua));
    assert_eq!(v["path"], "/p\"\\\n");
    assert_eq!(v["query"], "a=\u{1}&b=\u{2028}");
    assert_eq!(v["method"], "G\"T");
    assert_eq!(v["status"], 200);
    assert!(v["remote_addr"].is_null());
    assert!(v["referer"].is_null());
    assert_eq!(v.as_object().unwrap().len(), 12);
}

fn open(dir: &TempDir, name: &str) -> (std::path::PathBuf, LogSink) {
    let path = dir.path(name);
    let opts = SinkOptions {
        flush_interval: Duration::from_secs(3600),
        ..SinkOptions::default()
    };
    let sink = LogSink::open(path.to_str().unwrap(), SinkKind::Access, opts).unwrap();
    (path, sink)
}

fn log_one(log: &AccessLog, target: &str) {
    let resp = response_headers();
    log.log(&AccessEntry {
        remote: None,
        method: "GET",
        target,
        path: target,
        query: "",
        version: "HTTP/1.1",
        status: 404,
        bytes: 0,
        request_headers: &no_headers,
        response_headers: &resp,
        started: started(),
        duration: Duration::ZERO,
    });
}

#[test]
fn an_access_log_writes_newline_terminated_lines_at_flush() {
    let dir = TempDir::new("access");
    let (path, sink) = open(&dir, "access.log");
    let log = AccessLog::new(sink, AccessFormat::text("%(r)s %(s)s %(b)s").unwrap());
    log_one(&log, "/a");
    log.clone().flush().unwrap();
    log_one(&log, "/b");
    log.flush().unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "GET /a HTTP/1.1 404 -\nGET /b HTTP/1.1 404 -\n"
    );
}

#[test]
fn dropping_the_last_access_log_clone_flushes() {
    let dir = TempDir::new("access-drop");
    let (path, sink) = open(&dir, "access.log");
    let log = AccessLog::new(sink, AccessFormat::Json);
    let clone = log.clone();
    log_one(&log, "/x");
    drop(log);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    drop(clone);
    let text = std::fs::read_to_string(&path).unwrap();
    let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(v["path"], "/x");
}

#[test]
fn access_log_reopen_after_rename_splits_lines_between_the_two_files() {
    let dir = TempDir::new("access-reopen");
    let (path, sink) = open(&dir, "access.log");
    let log = AccessLog::new(sink, AccessFormat::text("%(U)s").unwrap());
    log_one(&log, "/old");
    std::fs::rename(&path, dir.path("access.log.1")).unwrap();
    log.reopen().unwrap();
    log_one(&log, "/new");
    log.flush().unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path("access.log.1")).unwrap(),
        "/old\n"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "/new\n");
}

#[test]
fn loggers_are_send_sync_and_clone_and_entries_borrow_from_a_parsed_request() {
    fn assert_send_sync_clone<T: Send + Sync + Clone>() {}
    assert_send_sync_clone::<AccessLog>();
    assert_send_sync_clone::<ErrorLog>();
    assert_send_sync_clone::<LogSink>();

    // The shape of the server's request head: owned bytes, borrowed accessors.
    struct Head {
        fields: Vec<(String, Vec<u8>)>,
        target: String,
    }
    impl Head {
        fn header(&self, name: &str) -> Option<&[u8]> {
            self.fields
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_slice())
        }
    }
    fn log_request(log: &AccessLog, head: &Head, resp: &[(Cow<'static, str>, Vec<u8>)]) {
        log.log(&AccessEntry {
            remote: None,
            method: "GET",
            target: &head.target,
            path: &head.target,
            query: "",
            version: "HTTP/1.0",
            status: 200,
            bytes: 5,
            request_headers: &|n| head.header(n),
            response_headers: resp,
            started: SystemTime::now(),
            duration: Duration::ZERO,
        });
    }
    let dir = TempDir::new("borrow");
    let (path, sink) = open(&dir, "a.log");
    let log = AccessLog::new(sink, AccessFormat::text("%(r)s %({x-y}i)s").unwrap());
    let head = Head {
        fields: vec![("X-Y".into(), b"z".to_vec())],
        target: "/t".into(),
    };
    log_request(&log, &head, &[]);
    log.flush().unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "GET /t HTTP/1.0 z\n"
    );
}

#[test]
fn an_unopenable_path_is_an_error_at_open() {
    let err = LogSink::open_access("/nonexistent-dir-ironhorse/x.log").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
}
