//! Real frameworks on ironhorse, every case under every model: Flask, Django, Falcon and
//! Bottle apps (tests/apps/frameworks/) that share one endpoint contract (routing, JSON with
//! query strings, urlencoded forms, multipart uploads checked by SHA-256, cookies, redirects,
//! streamed bodies), Flask's server-sent events read as they arrive, Django's CSRF flow and
//! its admin's static files served by `--static`, and a plain WSGI app wrapped in
//! `wsgiref.validate.validator` driven with many request shapes. Also: the examples start.
//!
//! Needs `IRONHORSE_TEST_VENV` (a virtualenv with requirements-test.txt; `scripts/venv.sh`).

mod common;

use common::client::{get, Conn, Response};
use common::python::{apps_dir, examples_dir, venv};
use common::{model_args, Server};
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

fn frameworks_dir() -> PathBuf {
    apps_dir().join("frameworks")
}

/// Starts ironhorse on `spec` from the frameworks folder, in the test virtualenv.
fn serve(model: &str, spec: &str, extra: &[String]) -> Server {
    let mut args = model_args(model);
    args.extend([
        spec.to_string(),
        "--chdir".into(),
        frameworks_dir().display().to_string(),
        "--virtualenv".into(),
        venv().display().to_string(),
    ]);
    args.extend(extra.iter().cloned());
    Server::start(&args)
}

/// One request on an open connection; `headers` are extra lines ("Name: value").
fn request(conn: &mut Conn, method: &str, path: &str, headers: &[&str], body: &[u8]) -> Response {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    conn.send(head.as_bytes());
    conn.send(body);
    conn.response(method)
}

/// One request on a fresh connection.
fn fetch(addr: &str, method: &str, path: &str, headers: &[&str], body: &[u8]) -> Response {
    let mut conn = Conn::open(addr);
    let mut all = headers.to_vec();
    all.push("Connection: close");
    request(&mut conn, method, path, &all, body)
}

/// JSON text made comparable across frameworks: whitespace outside strings dropped and
/// `\uXXXX` escapes decoded (Flask and Django escape non-ASCII, Falcon does not).
fn norm_json(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if !in_string {
            if c == '"' {
                in_string = true;
            }
            if !c.is_whitespace() {
                out.push(c);
            }
            continue;
        }
        match c {
            '"' => {
                in_string = false;
                out.push(c);
            }
            '\\' => match chars.next() {
                Some('u') => {
                    let hex: String = chars.by_ref().take(4).collect();
                    let code = u32::from_str_radix(&hex, 16).expect("\\u escape");
                    out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                }
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            _ => out.push(c),
        }
    }
    out
}

fn assert_json(r: &Response, expected: &str, what: &str) {
    assert_eq!(r.status, 200, "{what}: {}", r.text());
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{what}: content-type {:?}",
        r.header("content-type")
    );
    assert_eq!(norm_json(&r.text()), norm_json(expected), "{what}");
}

/// Fails if the server log shows a Python error or a PEP 3333 complaint.
fn assert_clean_log(server: &Server) {
    let log = server.log_text();
    for bad in [
        "AssertionError",
        "WSGIWarning",
        "Traceback",
        "Exception ignored",
    ] {
        assert!(!log.contains(bad), "server log contains {bad}:\n{log}");
    }
}

// ---------------------------------------------------------------------------------------
// Upload payloads: deterministic bytes, SHA-256 computed by Python's hashlib on the same bytes
// ---------------------------------------------------------------------------------------

struct Payload {
    bytes: Vec<u8>,
    sha256: String,
}

fn make_payload(size: usize) -> Payload {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15 ^ size as u64;
    let mut bytes = Vec::with_capacity(size + 8);
    while bytes.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(size);
    let mut python = Command::new("python3")
        .args([
            "-c",
            "import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run python3 to hash the payload");
    let mut stdin = python.stdin.take().unwrap();
    let feed = {
        let bytes = bytes.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            stdin.write_all(&bytes).unwrap();
        })
    };
    let mut out = String::new();
    python
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    feed.join().unwrap();
    assert!(python.wait().unwrap().success());
    let sha256 = out.trim().to_string();
    assert_eq!(sha256.len(), 64);
    Payload { bytes, sha256 }
}

fn payload_50m() -> &'static Payload {
    static P: OnceLock<Payload> = OnceLock::new();
    P.get_or_init(|| make_payload(50 * 1024 * 1024 + 7))
}

fn payload_1m() -> &'static Payload {
    static P: OnceLock<Payload> = OnceLock::new();
    P.get_or_init(|| make_payload(1024 * 1024 + 3))
}

/// POSTs `payload` as multipart/form-data (a text field `note` and the file field `file`) and
/// checks the app's answer: the file name, the note, the size and the SHA-256.
fn check_upload(addr: &str, payload: &Payload, what: &str) {
    let boundary = "----ironhorse-boundary-7MA4YWxkTrZu0gW-0b2d";
    let before = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello upload\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"payload.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    let after = format!("\r\n--{boundary}--\r\n");
    let length = before.len() + payload.bytes.len() + after.len();
    let mut conn = Conn::open(addr);
    conn.stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    conn.send(
        format!(
            "POST /upload HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
             Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {length}\r\n\r\n"
        )
        .as_bytes(),
    );
    conn.send(before.as_bytes());
    for piece in payload.bytes.chunks(1 << 20) {
        conn.send(piece);
    }
    conn.send(after.as_bytes());
    let r = conn.response("POST");
    let expected = format!(
        r#"{{"filename":"payload.bin","note":"hello upload","sha256":"{}","size":{}}}"#,
        payload.sha256,
        payload.bytes.len()
    );
    assert_json(&r, &expected, what);
}

// ---------------------------------------------------------------------------------------
// The endpoint contract every framework app implements
// ---------------------------------------------------------------------------------------

fn check_common(addr: &str, framework: &str) {
    // Routing.
    let r = get(addr, "/");
    assert_eq!(r.status, 200, "{framework} /");
    assert_eq!(r.text(), format!("{framework} index\n"));
    let r = get(addr, "/users/42");
    assert_json(
        &r,
        &format!(r#"{{"framework":"{framework}","user_id":42}}"#),
        "route with an int converter",
    );
    assert_eq!(
        get(addr, "/users/abc").status,
        404,
        "{framework} int converter rejects abc"
    );
    assert_eq!(
        get(addr, "/no/such/page").status,
        404,
        "{framework} unknown path"
    );
    // PATH_INFO is percent-decoded and carried as latin-1 (PEP 3333); frameworks re-decode it.
    let r = get(addr, "/hello/caf%C3%A9%20au%20lait");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "hello café au lait", "{framework} non-ASCII path");
    assert_eq!(
        fetch(addr, "POST", "/json", &[], b"").status,
        405,
        "{framework} wrong method"
    );

    // Several requests on one keep-alive connection.
    let mut conn = Conn::open(addr);
    // JSON echo of the query string: repeats, blanks, escapes, UTF-8.
    let r = request(
        &mut conn,
        "GET",
        "/json?a=1&b=x&b=y&empty=&sp=hello%20world+again&amp=%26%3D&u=%C3%A9t%C3%A9",
        &[],
        b"",
    );
    assert_json(
        &r,
        r#"{"args":{"a":["1"],"amp":["&="],"b":["x","y"],"empty":[""],"sp":["hello world again"],"u":["\u00e9t\u00e9"]}}"#,
        "query string echo",
    );
    // A urlencoded form.
    let r = request(
        &mut conn,
        "POST",
        "/form",
        &["Content-Type: application/x-www-form-urlencoded"],
        b"name=Ada+Lovelace&lang=rust&lang=python&note=a%26b%3Dc&u=%C3%BC",
    );
    assert_json(
        &r,
        r#"{"form":{"lang":["rust","python"],"name":["Ada Lovelace"],"note":["a&b=c"],"u":["ü"]}}"#,
        "form echo",
    );
    // Cookies: set, then read back (with another one).
    let r = request(&mut conn, "GET", "/cookies/set?flavor=oatmeal", &[], b"");
    assert_eq!(r.status, 200);
    let set_cookie = r
        .header("set-cookie")
        .unwrap_or_else(|| panic!("{framework}: no Set-Cookie in {:?}", r.headers));
    let pair = set_cookie.split(';').next().unwrap().trim();
    assert_eq!(
        pair, "flavor=oatmeal",
        "{framework} Set-Cookie: {set_cookie}"
    );
    assert!(set_cookie.contains("Path=/"), "{set_cookie}");
    let cookie = format!("Cookie: {pair}; other=1");
    let r = request(&mut conn, "GET", "/cookies/get", &[&cookie], b"");
    assert_json(
        &r,
        r#"{"cookies":{"flavor":"oatmeal","other":"1"}}"#,
        "cookies read back",
    );
    // A redirect, followed.
    let r = request(&mut conn, "GET", "/redirect", &[], b"");
    assert!(
        r.status == 302 || r.status == 303,
        "{framework} redirect status {}",
        r.status
    );
    let location = r.header("location").expect("Location").to_string();
    assert!(
        location == "/target" || location == "http://test/target",
        "{framework} Location: {location}"
    );
    let r = request(&mut conn, "GET", "/target", &[], b"");
    assert_eq!(r.text(), "target\n");
    // A body produced by a generator: streamed (no Content-Length), intact.
    let r = request(&mut conn, "GET", "/stream", &["Connection: close"], b"");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text(),
        "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n",
        "{framework} stream"
    );
    assert_eq!(
        r.header("content-length"),
        None,
        "{framework} stream is not buffered"
    );
    assert!(conn.is_closed_by_server());
}

// ---------------------------------------------------------------------------------------
// Flask
// ---------------------------------------------------------------------------------------

per_model!(
    flask_routing_json_forms_cookies_redirects_streams,
    |model| {
        let server = serve(model, "fw_flask:app", &[]);
        check_common(&server.addr, "flask");
        check_upload(&server.addr, payload_1m(), "flask 1 MB upload");
        assert_clean_log(&server);
    }
);

per_model!(flask_upload_50mb, |model| {
    let server = serve(model, "fw_flask:app", &[]);
    check_upload(&server.addr, payload_50m(), "flask 50 MB upload");
    assert_clean_log(&server);
});

per_model!(flask_server_sent_events_arrive_as_sent, |model| {
    let server = serve(model, "fw_flask:app", &[]);
    let gate = common::temp_path("sse-gate");
    let mut stream = std::net::TcpStream::connect(&server.addr).unwrap();
    stream.set_read_timeout(Some(common::HUNG)).unwrap();
    use std::io::Write;
    // The app holds every event after the first until the gate opens.
    stream
        .write_all(format!("GET /sse?n=10&gate={} HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n", gate.display()).as_bytes())
        .unwrap();
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut gate_opened = false;
    loop {
        let n = stream.read(&mut chunk).expect("read SSE");
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&raw);
        if !gate_opened && text.contains("data: 0\n\n") {
            // The first event came while the app waits: events are sent as they are made,
            // not buffered to the end.
            assert!(
                !text.contains("data: 1\n\n"),
                "the gate did not hold: {text}"
            );
            std::fs::write(&gate, b"").unwrap();
            gate_opened = true;
        }
    }
    let _ = std::fs::remove_file(&gate);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let head_end = text.find("\r\n\r\n").expect("response head");
    let head = text[..head_end].to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    assert!(!head.contains("content-length"), "{head}");
    assert!(gate_opened, "the first event never came alone: {text}");
    let mut from = 0;
    for i in 0..10 {
        let at = text[from..]
            .find(&format!("data: {i}\n\n"))
            .unwrap_or_else(|| panic!("all ten events, in order: {text}"));
        from += at;
    }
    assert_clean_log(&server);
});

// ---------------------------------------------------------------------------------------
// Django
// ---------------------------------------------------------------------------------------

/// The admin's static files inside the virtualenv's Django.
fn django_admin_static() -> PathBuf {
    let lib = venv().join("lib");
    for entry in std::fs::read_dir(&lib).expect("venv lib") {
        let dir = entry
            .unwrap()
            .path()
            .join("site-packages/django/contrib/admin/static");
        if dir.is_dir() {
            return dir;
        }
    }
    panic!("no django/contrib/admin/static under {}", lib.display());
}

fn serve_django(model: &str) -> Server {
    let static_arg = format!("/static={}", django_admin_static().display());
    serve(
        model,
        "djsite.wsgi:application",
        &["--static".into(), static_arg],
    )
}

per_model!(
    django_routing_json_forms_cookies_redirects_streams,
    |model| {
        let server = serve_django(model);
        check_common(&server.addr, "django");
        check_upload(&server.addr, payload_1m(), "django 1 MB upload");
        // Django's "Not Found: /users/abc" warnings are expected; errors are not.
        let log = server.log_text();
        assert!(!log.contains("Traceback"), "{log}");
        assert!(!log.contains("Internal Server Error"), "{log}");
    }
);

per_model!(django_upload_50mb, |model| {
    let server = serve_django(model);
    check_upload(&server.addr, payload_50m(), "django 50 MB upload");
    assert!(!server.log_text().contains("Traceback"));
});

per_model!(django_csrf_flow, |model| {
    let server = serve_django(model);
    let addr = &server.addr;
    // GET renders the form with a token and sets the csrftoken cookie.
    let r = get(addr, "/csrf-form");
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.text();
    let marker = "name=\"csrfmiddlewaretoken\" value=\"";
    let start = body
        .find(marker)
        .unwrap_or_else(|| panic!("no token in {body}"))
        + marker.len();
    let token = &body[start..start + body[start..].find('"').unwrap()];
    assert!(token.len() >= 32, "token {token}");
    let set_cookie = r
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.as_str())
        .find(|v| v.starts_with("csrftoken="))
        .unwrap_or_else(|| panic!("no csrftoken cookie: {:?}", r.headers));
    let cookie_pair = set_cookie.split(';').next().unwrap();
    let cookie = format!("Cookie: {cookie_pair}");
    let form = "Content-Type: application/x-www-form-urlencoded";

    // POST with cookie and token: accepted.
    let body = format!("csrfmiddlewaretoken={token}&message=hello+there");
    let r = fetch(
        addr,
        "POST",
        "/csrf-form",
        &[&cookie, form],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "accepted: hello there");
    // The token may also come in the X-CSRFToken header.
    let header = format!("X-CSRFToken: {token}");
    let r = fetch(
        addr,
        "POST",
        "/csrf-form",
        &[&cookie, &header, form],
        b"message=via+header",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "accepted: via header");
    // Without the cookie, without the token, or with a wrong token: 403.
    let r = fetch(addr, "POST", "/csrf-form", &[form], body.as_bytes());
    assert_eq!(r.status, 403, "no cookie");
    let r = fetch(addr, "POST", "/csrf-form", &[&cookie, form], b"message=hi");
    assert_eq!(r.status, 403, "no token");
    let wrong = format!("csrfmiddlewaretoken={}&message=hi", "x".repeat(token.len()));
    let r = fetch(
        addr,
        "POST",
        "/csrf-form",
        &[&cookie, form],
        wrong.as_bytes(),
    );
    assert_eq!(r.status, 403, "wrong token");
});

per_model!(django_admin_static_files_via_static_mount, |model| {
    let server = serve_django(model);
    let dir = django_admin_static();
    for (path, content_type) in [
        ("admin/css/base.css", "text/css"),
        ("admin/js/core.js", "application/javascript"),
        ("admin/img/icon-yes.svg", "image/svg+xml"),
    ] {
        let r = get(&server.addr, &format!("/static/{path}"));
        assert_eq!(r.status, 200, "/static/{path}");
        assert_eq!(
            r.header("content-type"),
            Some(content_type),
            "/static/{path}"
        );
        assert!(
            r.body == std::fs::read(dir.join(path)).unwrap(),
            "/static/{path} body"
        );
    }
    let r = fetch(&server.addr, "HEAD", "/static/admin/css/base.css", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-length").map(|s| s.to_string()),
        Some(
            std::fs::metadata(dir.join("admin/css/base.css"))
                .unwrap()
                .len()
                .to_string()
        )
    );
    assert_eq!(get(&server.addr, "/static/admin/css/nope.css").status, 404);
    // Everything else still reaches Django.
    assert_eq!(get(&server.addr, "/").text(), "django index\n");
});

// ---------------------------------------------------------------------------------------
// Falcon and Bottle
// ---------------------------------------------------------------------------------------

per_model!(
    falcon_routing_json_forms_uploads_cookies_redirects_streams,
    |model| {
        let server = serve(model, "fw_falcon:app", &[]);
        check_common(&server.addr, "falcon");
        check_upload(&server.addr, payload_1m(), "falcon 1 MB upload");
        assert_clean_log(&server);
    }
);

per_model!(
    bottle_routing_json_forms_uploads_cookies_redirects_streams,
    |model| {
        let server = serve(model, "fw_bottle:app", &[]);
        check_common(&server.addr, "bottle");
        check_upload(&server.addr, payload_1m(), "bottle 1 MB upload");
        assert_clean_log(&server);
    }
);

// ---------------------------------------------------------------------------------------
// wsgiref.validate
// ---------------------------------------------------------------------------------------

fn summary_field(r: &Response, field: &str) -> String {
    // The app answers with sorted, flat JSON; pull one field's raw value out.
    let text = norm_json(&r.text());
    let key = format!("\"{field}\":");
    let start = text
        .find(&key)
        .unwrap_or_else(|| panic!("{field} in {text}"))
        + key.len();
    let rest = &text[start..];
    let end = if let Some(inner) = rest.strip_prefix('"') {
        1 + inner.find('"').unwrap() + 1
    } else {
        rest.find([',', '}']).unwrap()
    };
    rest[..end].to_string()
}

per_model!(validator_app_sees_a_pep3333_environ, |model| {
    let server = serve(model, "fw_validator:app", &[]);
    let addr = &server.addr;
    let body: Vec<u8> = (0..20_000u32)
        .map(|i| format!("line {i}\n"))
        .collect::<String>()
        .into_bytes();

    // GET with an encoded path, query string, repeated Cookie headers, a custom header.
    let r = fetch(
        addr,
        "GET",
        "/a%20b/caf%C3%A9?x=1&y=%20&z",
        &["X-Custom: v1", "Cookie: a=1", "Cookie: b=2"],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(summary_field(&r, "method"), "\"GET\"");
    assert_eq!(summary_field(&r, "path_info"), "\"/a b/café\"");
    assert_eq!(summary_field(&r, "script_name"), "\"\"");
    assert_eq!(summary_field(&r, "query_string"), "\"x=1&y=%20&z\"");
    assert_eq!(summary_field(&r, "cookie"), "\"a=1; b=2\"");
    assert_eq!(summary_field(&r, "x_custom"), "\"v1\"");
    assert_eq!(summary_field(&r, "protocol"), "\"HTTP/1.1\"");
    assert_eq!(summary_field(&r, "scheme"), "\"http\"");
    assert_eq!(summary_field(&r, "body_len"), "0");

    // POST bodies read every way wsgi.input allows, on one keep-alive connection.
    let mut conn = Conn::open(addr);
    let mut hashes = Vec::new();
    for mode in ["read", "chunks", "readline", "readlines", "iter"] {
        let r = request(
            &mut conn,
            "POST",
            &format!("/post?mode={mode}"),
            &["Content-Type: text/plain; charset=utf-8"],
            &body,
        );
        assert_eq!(r.status, 200, "mode {mode}: {}", r.text());
        assert_eq!(
            summary_field(&r, "body_len"),
            body.len().to_string(),
            "mode {mode}"
        );
        assert_eq!(
            summary_field(&r, "content_length"),
            format!("\"{}\"", body.len())
        );
        assert_eq!(
            summary_field(&r, "content_type"),
            "\"text/plain; charset=utf-8\""
        );
        assert!(
            summary_field(&r, "body_head").starts_with(r#""line 0\nline 1\nline 2\n"#),
            "mode {mode}: {}",
            r.text()
        );
        hashes.push(summary_field(&r, "body_sha256"));
    }
    assert!(hashes.windows(2).all(|w| w[0] == w[1]), "{hashes:?}");

    // A chunked body (no Content-Length on the wire).
    let mut chunked = Vec::new();
    for piece in body.chunks(7000) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    conn.send(b"POST /chunked?mode=chunks HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\nContent-Type: application/octet-stream\r\n\r\n");
    conn.send(&chunked);
    let r = conn.response("POST");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(summary_field(&r, "body_len"), body.len().to_string());
    assert_eq!(summary_field(&r, "body_sha256"), hashes[0]);
    // Under the default --buffer-request-body (1 MiB) the body is read whole first and
    // arrives de-chunked with its length (buffered_bodies.rs covers longer, streamed ones).
    assert_eq!(
        summary_field(&r, "content_length"),
        format!("\"{}\"", body.len())
    );

    // HEAD: headers only; the legacy write() callable; an empty 204; pipelined requests.
    let r = request(&mut conn, "HEAD", "/head", &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    let r = request(&mut conn, "GET", "/write", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(summary_field(&r, "path_info"), "\"/write\"");
    let r = request(&mut conn, "GET", "/empty", &[], b"");
    assert_eq!(r.status, 204);
    conn.send(b"POST /p1?mode=read HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhelloGET /p2 HTTP/1.1\r\nHost: t\r\n\r\nDELETE /p3 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let a = conn.response("POST");
    let b = conn.response("GET");
    let c = conn.response("DELETE");
    assert_eq!(summary_field(&a, "body_head"), "\"hello\"");
    assert_eq!(summary_field(&b, "path_info"), "\"/p2\"");
    assert_eq!(summary_field(&c, "method"), "\"DELETE\"");
    assert!(conn.is_closed_by_server());

    // HTTP/1.0.
    let mut conn = Conn::open(addr);
    conn.send(b"GET /old HTTP/1.0\r\n\r\n");
    let r = conn.response("GET");
    assert_eq!(r.status, 200);
    assert_eq!(summary_field(&r, "protocol"), "\"HTTP/1.0\"");

    // An empty POST (Content-Length: 0) and a form.
    let r = fetch(addr, "POST", "/zero?mode=read", &[], b"");
    assert_eq!(summary_field(&r, "body_len"), "0");
    let r = fetch(
        addr,
        "PUT",
        "/form?mode=readline",
        &["Content-Type: application/x-www-form-urlencoded"],
        b"k=v&k2=v2",
    );
    assert_eq!(summary_field(&r, "method"), "\"PUT\"");
    assert_eq!(summary_field(&r, "body_head"), "\"k=v&k2=v2\"");

    // Let the server finish and flush its log, then look for complaints.
    let (code, log) = server.stop_and_read_log();
    assert_eq!(code, Some(0));
    for bad in [
        "AssertionError",
        "WSGIWarning",
        "Traceback",
        "Exception ignored",
    ] {
        assert!(!log.contains(bad), "server log contains {bad}:\n{log}");
    }
    // wsgi.errors reaches the server's stderr.
    assert!(
        log.contains("validator-app: served POST"),
        "wsgi.errors output missing:\n{log}"
    );
});

// ---------------------------------------------------------------------------------------
// Client disconnects and HEAD
// ---------------------------------------------------------------------------------------

per_model!(flask_sse_client_leaving_closes_the_response, |model| {
    let server = serve(model, "fw_flask:app", &[]);
    let mut conn = Conn::open(&server.addr);
    // 100 events would take ~10 s; read two and hang up.
    conn.send(b"GET /sse?n=100 HTTP/1.1\r\nHost: test\r\n\r\n");
    let mut seen = Vec::new();
    let mut chunk = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("data: 1\n\n") {
        let n = conn.stream.read(&mut chunk).expect("read SSE");
        assert!(n > 0, "stream ended early");
        seen.extend_from_slice(&chunk[..n]);
    }
    drop(conn);
    // The server notices on a following write and closes the app's iterator (its
    // `finally` logs), well before the 10 s the stream would have run.
    assert!(
        server.log_contains("fw_flask: sse closed after"),
        "iterator not closed after the client left:\n{}",
        server.log_text()
    );
    assert!(!server.log_text().contains("closed after 100 of 100"));
    // And the server still serves.
    assert_eq!(get(&server.addr, "/").text(), "flask index\n");
});

// BUG (found by this suite): for HEAD, ironhorse derives a Content-Length from the list the
// app returns. Frameworks skip the body for HEAD (werkzeug returns `()`), so a streamed
// response, which has no length under GET (chunked), is announced as `Content-Length: 0`.
// RFC 9110 §8.6: a server MUST NOT send Content-Length in a response to HEAD unless it
// equals the length GET would send (here 40 bytes).
per_model!(
    flask_head_of_a_streamed_response_announces_no_false_length,
    |model| {
        let server = serve(model, "fw_flask:app", &[]);
        let get_r = get(&server.addr, "/stream");
        assert_eq!(get_r.body.len(), 40);
        assert_eq!(get_r.header("content-length"), None);
        let head_r = fetch(&server.addr, "HEAD", "/stream", &[], b"");
        assert_eq!(head_r.status, 200);
        let length = head_r.header("content-length");
        assert!(
            length.is_none() || length == Some("40"),
            "HEAD /stream says Content-Length: {length:?}, GET /stream sends 40 bytes (chunked)"
        );
    }
);

// ---------------------------------------------------------------------------------------
// The examples start and answer (each file's header comment has its command)
// ---------------------------------------------------------------------------------------

fn serve_example(spec: &str, dir: &str, extra: &[String]) -> Server {
    let mut args = model_args("event");
    args.extend([
        spec.to_string(),
        "--chdir".into(),
        examples_dir().join(dir).display().to_string(),
        "--virtualenv".into(),
        venv().display().to_string(),
    ]);
    args.extend(extra.iter().cloned());
    Server::start(&args)
}

#[test]
fn example_flask_app() {
    let static_dir = examples_dir().join("flask_app/static");
    let server = serve_example(
        "app:app",
        "flask_app",
        &[
            "--static".into(),
            format!("/static={}", static_dir.display()),
        ],
    );
    let r = get(&server.addr, "/");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("/static/style.css"));
    assert!(get(&server.addr, "/hello/Ada")
        .text()
        .contains("Hello, Ada!"));
    let r = get(&server.addr, "/api/echo?name=Ada&lang=rust&lang=python");
    assert!(norm_json(&r.text()).contains(r#""query":{"lang":["rust","python"],"name":["Ada"]}"#));
    let r = get(&server.addr, "/static/style.css");
    assert_eq!(r.header("content-type"), Some("text/css"));
    assert!(r.body == std::fs::read(static_dir.join("style.css")).unwrap());
    assert_eq!(
        get(&server.addr, "/static/app.js").header("content-type"),
        Some("application/javascript")
    );
}

#[test]
fn example_django_project() {
    let server = serve_example(
        "mysite.wsgi",
        "django_project",
        &[
            "--static".into(),
            format!("/static={}", django_admin_static().display()),
        ],
    );
    let r = get(&server.addr, "/");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("ironhorse + Django"));
    assert!(r.text().contains("/static/admin/css/base.css"));
    assert!(r.text().contains("csrfmiddlewaretoken"));
    let r = get(&server.addr, "/static/admin/css/base.css");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/css"));
    // The admin redirects anonymous users to its login page (no database needed for that).
    let r = get(&server.addr, "/admin/");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("/admin/login/?next=/admin/"));
}

#[test]
fn example_sse_clock() {
    let server = serve_example("app:app", "sse", &[]);
    let r = get(&server.addr, "/");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("new EventSource(\"/events\")"));
    let start = Instant::now();
    let r = get(&server.addr, "/events?count=2");
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let text = r.text();
    assert!(
        text.starts_with("retry: 2000\n\nid: 1\nevent: tick\ndata: "),
        "{text}"
    );
    assert!(text.contains("\n\nid: 2\nevent: tick\ndata: "), "{text}");
    assert!(start.elapsed() >= Duration::from_millis(900));
}
