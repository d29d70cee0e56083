//! Replays gunicorn's request corpus (vendored in `tests/corpus/gunicorn-requests`, MIT, with
//! its `LICENSE.gunicorn`) through `ServerConn` under several chunkings: whole, line by line,
//! byte by byte, seeded random.
//!
//! Settings: the corpus assumes gunicorn's defaults (limit_request_line 4094,
//! limit_request_fields 100, limit_request_field_size 8190) overridden by each case's `cfg`.
//! gunicorn counts a field's CRLF against limit_request_field_size, our `max_header_size`
//! does not, hence the `- 2`. limit_request_line 0 means unlimited; limit_request_field_size 0
//! means gunicorn's default (case `limit_header_default_01`).
//!
//! Deliberate deviations from the corpus (RFC 9112 strictness over gunicorn leniency):
//! - Transfer-Encoding with a coding other than `chunked` (`gzip, chunked`,
//!   `identity, chunked`, ...) is answered 501 (RFC 9112 §6.1: we decode no other coding,
//!   and passing gzip bytes on as the body is wrong); with Content-Length too it is 400
//!   (RFC 9112 §6.3, smuggling). See `TE_DEVIATIONS`.
//! - An HTTP/1.1 request without Host is 400 by default (RFC 9112 §3.2); gunicorn accepts
//!   it. Valid cases are replayed twice: with `set_require_host(false)` they must match the
//!   corpus exactly; with the default, the first such request must be rejected with 400.
//! - CONNECT's authority-form target has no path: `path()` is the whole target. The corpus'
//!   `path: "443"` for `example.com:443` is an artefact of Python's urlsplit.
//! - `099` declares Content-Length 17914 but sends 8599 body bytes, then EOF; gunicorn
//!   hands over the short body, we answer Incomplete (400): RFC 9112 §8 says an incomplete
//!   message must not be treated as complete. We still check the head and the bytes received.
//! - Fragments are not exposed separately; we check the raw target carries them.
//! - `027` sends raw UTF-8 (`/à%20k`) in the target: 400 here. Bytes >= 0x80 are not in
//!   the request-target grammar (RFC 3986 §2.1: percent-encode them) and RFC 9112 §3 says a
//!   recipient of an invalid request-line SHOULD answer 400 rather than autocorrect it.
//! - The two valid CONNECT cases are answered 501: ironhorse is an origin server, not a
//!   proxy (RFC 9110 §9.3.6, §15.6.2); a malformed CONNECT is still 400.
use ironhorse_h1::{BodyRead, Error, Limits, Next, RequestHead, ServerConn, Version};
use serde_json::Value;
use std::path::PathBuf;

/// Valid corpus cases we reject on purpose, with the status we answer.
const TE_DEVIATIONS: &[(&str, u16)] = &[
    ("009", 400),
    ("025", 501),
    ("025_line", 501),
    ("029", 501),
    ("030", 501),
    ("rfc9112_smuggle_gzip_chunked_01", 501),
    ("rfc9112_smuggle_te_identity_chunked_01", 501),
    // Not TE: raw non-ASCII target and CONNECT (see the module comment).
    ("027", 400),
    ("rfc9112_target_authority_connect_01", 501),
    ("rfc9112_target_authority_ipv6_01", 501),
];

fn corpus_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("IRONHORSE_CONFORMANCE_DIR") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/gunicorn-requests")
}

#[derive(Debug, PartialEq)]
struct Req {
    method: Vec<u8>,
    target: Vec<u8>,
    path: Vec<u8>,
    query: Vec<u8>,
    version: Version,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    trailers: Vec<(String, Vec<u8>)>,
}

#[derive(Debug)]
struct Outcome {
    requests: Vec<Req>,
    /// The request whose body was being read when the error happened.
    partial: Option<Req>,
    error: Option<Error>,
}

fn record(head: &RequestHead) -> Req {
    Req {
        method: head.method().as_bytes().to_vec(),
        target: head.target().as_bytes().to_vec(),
        path: head.path().as_bytes().to_vec(),
        query: head.query().as_bytes().to_vec(),
        version: head.version(),
        headers: head
            .headers()
            .map(|(n, v)| (n.to_ascii_uppercase(), v.to_vec()))
            .collect(),
        body: Vec::new(),
        trailers: Vec::new(),
    }
}

/// Drives a connection like a server would: parse, read the body, answer 200, repeat.
fn replay(chunks: &[&[u8]], limits: Limits, require_host: bool) -> Outcome {
    let mut conn = ServerConn::new(limits);
    conn.set_require_host(require_host);
    let mut out = Vec::new();
    let mut requests = Vec::new();
    let mut current: Option<Req> = None;
    let mut next_chunk = 0;
    let mut eof = false;
    let mut buf = [0u8; 977];
    for _ in 0..10_000_000 {
        let progressed = if let Some(req) = current.as_mut() {
            match conn.read_body(&mut buf) {
                Ok(BodyRead::Data(n)) => {
                    req.body.extend_from_slice(&buf[..n]);
                    true
                }
                Ok(BodyRead::End) => {
                    let mut req = current.take().unwrap();
                    req.trailers = conn
                        .trailers()
                        .iter()
                        .map(|(n, v)| (n.to_ascii_uppercase(), v.clone()))
                        .collect();
                    requests.push(req);
                    conn.write_head(200, &Vec::new(), Some(0), &mut out);
                    if conn.finish(&mut out) == Next::Close {
                        return Outcome {
                            requests,
                            partial: None,
                            error: None,
                        };
                    }
                    true
                }
                Ok(BodyRead::NeedMore) => false,
                Err(e) => {
                    conn.write_error(&e, &mut out);
                    assert!(conn.is_closed());
                    return Outcome {
                        requests,
                        partial: current,
                        error: Some(e),
                    };
                }
            }
        } else {
            match conn.next_request() {
                Ok(Some(head)) => {
                    current = Some(record(&head));
                    true
                }
                Ok(None) if conn.is_closed() => {
                    return Outcome {
                        requests,
                        partial: None,
                        error: None,
                    }
                }
                Ok(None) => false,
                Err(e) => {
                    out.clear();
                    conn.write_error(&e, &mut out);
                    assert!(conn.is_closed());
                    let status_line = format!("HTTP/1.1 {} ", e.status());
                    assert!(out.starts_with(status_line.as_bytes()));
                    return Outcome {
                        requests,
                        partial: None,
                        error: Some(e),
                    };
                }
            }
        };
        if progressed {
            continue;
        }
        if next_chunk < chunks.len() {
            conn.feed(chunks[next_chunk]);
            next_chunk += 1;
        } else if !eof {
            conn.feed_eof();
            eof = true;
        } else {
            panic!("no progress after EOF");
        }
    }
    panic!("replay did not terminate");
}

/// Deterministic xorshift for the random splits.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// All the ways a case is chunked: (label, pieces).
fn chunkings(raw: &[u8]) -> Vec<(String, Vec<&[u8]>)> {
    let mut all = vec![("whole".to_string(), vec![raw])];
    all.push((
        "lines".to_string(),
        raw.split_inclusive(|&b| b == b'\n').collect(),
    ));
    all.push(("bytes".to_string(), raw.chunks(1).collect()));
    for seed in 1..=4u64 {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut pieces = Vec::new();
        let mut rest = raw;
        while !rest.is_empty() {
            let n = (xorshift(&mut state) % 64 + 1) as usize;
            let (a, b) = rest.split_at(n.min(rest.len()));
            pieces.push(a);
            rest = b;
        }
        all.push((format!("random{seed}"), pieces));
    }
    all
}

/// Python decoded the corpus as latin-1: map chars back to bytes.
fn latin1(v: &Value) -> Vec<u8> {
    v.as_str()
        .expect("string")
        .chars()
        .map(|c| u8::try_from(u32::from(c)).expect("latin-1"))
        .collect()
}

fn expected_fields(v: &Value) -> Vec<(String, Vec<u8>)> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|f| (f[0].as_str().unwrap().to_string(), latin1(&f[1])))
                .collect()
        })
        .unwrap_or_default()
}

/// Checks one produced request against the manifest's expectation.
fn check_request(case: &str, got: &Req, want: &Value) -> Result<(), String> {
    use base64::Engine;
    let method = latin1(&want["method"]);
    let uri = &want["uri"];
    let version = match (want["version"][0].as_u64(), want["version"][1].as_u64()) {
        (Some(1), Some(0)) => Version::Http10,
        _ => Version::Http11,
    };
    let body = base64::engine::general_purpose::STANDARD
        .decode(want["body"]["b64"].as_str().unwrap())
        .unwrap();
    let mut problems = Vec::new();
    let mut check = |what: &str, ok: bool, detail: String| {
        if !ok {
            problems.push(format!("{what}: {detail}"));
        }
    };
    check("method", got.method == method, format!("{:?}", got.method));
    let raw = latin1(&uri["raw"]);
    check("target", got.target == raw, format!("{:?}", got.target));
    let path = if method == b"CONNECT" {
        raw.clone()
    } else {
        latin1(&uri["path"])
    };
    check(
        "path",
        got.path == path,
        format!("{:?} vs {:?}", got.path, path),
    );
    let query = latin1(&uri["query"]);
    check("query", got.query == query, format!("{:?}", got.query));
    let fragment = latin1(&uri["fragment"]);
    if !fragment.is_empty() {
        let mut tail = b"#".to_vec();
        tail.extend_from_slice(&fragment);
        check("fragment", got.target.ends_with(&tail), String::new());
    }
    check(
        "version",
        got.version == version,
        format!("{:?}", got.version),
    );
    let headers = expected_fields(&want["headers"]);
    check(
        "headers",
        got.headers == headers,
        format!("{:?}", got.headers),
    );
    check(
        "body",
        got.body == body,
        format!("{} bytes", got.body.len()),
    );
    let trailers = expected_fields(&want["trailers"]);
    check(
        "trailers",
        got.trailers == trailers,
        format!("{:?}", got.trailers),
    );
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{case}: {}", problems.join("; ")))
    }
}

fn class_statuses(class: &str) -> &'static [u16] {
    match class {
        "InvalidHTTPVersion" => &[505, 400],
        "LimitRequestLine" => &[414],
        "LimitRequestHeaders" => &[431],
        _ => &[400],
    }
}

/// Our limits for a case, or why it is skipped.
fn limits_for(case: &Value) -> Result<Limits, String> {
    let mut limits = Limits {
        max_request_line: 4094,
        max_headers: 100,
        max_header_size: 8190 - 2,
        ..Limits::default()
    };
    if case["python_only"].as_bool() == Some(true) {
        return Err("python_only".into());
    }
    for (key, value) in case["cfg"].as_object().unwrap() {
        let n = value.as_u64();
        match (key.as_str(), n) {
            ("limit_request_line", Some(0)) => limits.max_request_line = usize::MAX,
            ("limit_request_line", Some(n)) => limits.max_request_line = n as usize,
            ("limit_request_fields", Some(n)) => limits.max_headers = n as usize,
            ("limit_request_field_size", Some(0)) => limits.max_header_size = 8190 - 2,
            ("limit_request_field_size", Some(n)) => limits.max_header_size = n as usize - 2,
            _ => return Err(format!("needs setting {key}={value} we do not offer")),
        }
    }
    Ok(limits)
}

#[test]
fn replays_the_gunicorn_corpus_under_every_chunking() {
    let dir = corpus_dir();
    let manifest = std::fs::read_to_string(dir.join("manifest.json")).unwrap_or_else(|e| {
        panic!(
            "conformance corpus missing at {} ({e}); set IRONHORSE_CONFORMANCE_DIR",
            dir.display()
        )
    });
    let cases: Vec<Value> = serde_json::from_str(&manifest).unwrap();
    assert!(cases.len() > 100, "corpus looks truncated");
    let mut failures = Vec::new();
    let mut skipped = Vec::new();
    let mut ran = 0;
    for case in &cases {
        let name = format!(
            "{}/{}",
            case["kind"].as_str().unwrap(),
            case["name"].as_str().unwrap()
        );
        let limits = match limits_for(case) {
            Ok(l) => l,
            Err(why) => {
                skipped.push(format!("{name}: {why}"));
                continue;
            }
        };
        ran += 1;
        let raw = std::fs::read(dir.join(case["raw_file"].as_str().unwrap())).unwrap();
        for (label, chunks) in chunkings(&raw) {
            let tag = format!("{name} [{label}]");
            if case["kind"] == "valid" {
                check_valid(&tag, case, &chunks, limits, &mut failures);
            } else {
                let class = case["expect_exception"].as_str().unwrap();
                let outcome = replay(&chunks, limits, false);
                match &outcome.error {
                    Some(e) if class_statuses(class).contains(&e.status()) => {}
                    Some(Error::Incomplete) if class == "NoMoreData" => {}
                    other => failures.push(format!("{tag}: expected {class}, got {other:?}")),
                }
            }
        }
    }
    println!("ran {ran} corpus cases; skipped {}:", skipped.len());
    for s in &skipped {
        println!("  skipped {s}");
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn check_valid(
    tag: &str,
    case: &Value,
    chunks: &[&[u8]],
    limits: Limits,
    failures: &mut Vec<String>,
) {
    let wants = case["expect_requests"].as_array().unwrap();
    let deviation = TE_DEVIATIONS
        .iter()
        .find(|(n, _)| *n == case["name"].as_str().unwrap())
        .map(|&(_, s)| s);
    for require_host in [false, true] {
        let outcome = replay(chunks, limits, require_host);
        let mode = if require_host {
            "strict Host"
        } else {
            "lenient Host"
        };
        // Where the strict engine must stop, and with which status.
        let stop = wants.iter().enumerate().find_map(|(i, w)| {
            if deviation.is_some() {
                return deviation.map(|s| (i, s));
            }
            let has_host = w["headers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h[0] == "HOST");
            let is_11 = w["version"][1].as_u64() == Some(1);
            (require_host && is_11 && !has_host).then_some((i, 400))
        });
        if case["name"] == "099" {
            // Truncated body: see the module comment.
            match (&outcome.partial, &outcome.error) {
                (Some(partial), Some(Error::Incomplete)) if outcome.requests.is_empty() => {
                    if let Err(e) = check_request(tag, partial, &wants[0]) {
                        failures.push(e);
                    }
                }
                other => failures.push(format!(
                    "{tag}: expected Incomplete mid-body, got {other:?}"
                )),
            }
            continue;
        }
        let expect_n = stop.map_or(wants.len(), |(i, _)| i);
        if outcome.requests.len() != expect_n {
            failures.push(format!(
                "{tag} ({mode}): {} requests, expected {expect_n}; error {:?}",
                outcome.requests.len(),
                outcome.error
            ));
            continue;
        }
        for (got, want) in outcome.requests.iter().zip(wants) {
            if let Err(e) = check_request(tag, got, want) {
                failures.push(format!("{e} ({mode})"));
            }
        }
        match (stop, &outcome.error) {
            (None, None) => {}
            (Some((_, status)), Some(e)) if e.status() == status => {}
            (_, e) => failures.push(format!("{tag} ({mode}): expected {stop:?}, got {e:?}")),
        }
    }
}
