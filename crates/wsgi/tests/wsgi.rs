//! PEP 3333 behaviour, driven through `WsgiApp::handle` with hand-built requests.

mod common;

use std::io;

use common::*;
use ironhorse_app::Version;
use ironhorse_wsgi::{RequestParts, WsgiApp, WsgiError};
use serde_json::Value;

fn environ(app: &WsgiApp, req: RequestParts, conn: &ironhorse_app::ConnInfo) -> Value {
    let resp = collect(app.handle(&req, &mut io::empty(), conn));
    assert_eq!(resp.status, 200, "{}", resp.text());
    serde_json::from_slice(&resp.body).unwrap()
}

#[test]
fn environ_keys_and_values() {
    let app = load("apps:echo_environ");
    let mut req = RequestParts::new("POST", "/a%20b/c?x=1&y=%20")
        .header("Host", "example.com:8080")
        .header("User-Agent", "t/1")
        .header("X-Dup", "1")
        .header("x-dup", "2")
        .header("Cookie", "a=1")
        .header("Cookie", "b=2")
        .header("X_Spoof", "evil")
        .header("Content-Type", "text/plain")
        .header("Content-Length", "4");
    req.content_length = Some(4);
    req.version = Version::Http10;
    let env = environ(&app, req, &conn());
    let s = |k: &str| {
        env[k]
            .as_str()
            .unwrap_or_else(|| panic!("{k}: {}", env[k]))
            .to_string()
    };
    assert_eq!(s("REQUEST_METHOD"), "POST");
    assert_eq!(s("SCRIPT_NAME"), "");
    assert_eq!(s("PATH_INFO"), "/a b/c");
    assert_eq!(s("QUERY_STRING"), "x=1&y=%20");
    assert_eq!(s("RAW_URI"), "/a%20b/c?x=1&y=%20");
    assert_eq!(s("SERVER_PROTOCOL"), "HTTP/1.0");
    assert_eq!(s("SERVER_NAME"), "127.0.0.1");
    assert_eq!(s("SERVER_PORT"), "8080");
    assert_eq!(s("REMOTE_ADDR"), "10.0.0.7");
    assert_eq!(s("REMOTE_PORT"), "51234");
    assert_eq!(s("CONTENT_TYPE"), "text/plain");
    assert_eq!(s("CONTENT_LENGTH"), "4");
    assert_eq!(s("HTTP_HOST"), "example.com:8080");
    assert_eq!(s("HTTP_USER_AGENT"), "t/1");
    assert_eq!(s("HTTP_X_DUP"), "1, 2");
    assert_eq!(s("HTTP_COOKIE"), "a=1; b=2");
    assert!(env.get("HTTP_X_SPOOF").is_none());
    assert!(env.get("HTTP_CONTENT_TYPE").is_none());
    assert!(env.get("HTTP_CONTENT_LENGTH").is_none());
    assert_eq!(env["wsgi.version"], serde_json::json!([1, 0]));
    assert_eq!(s("wsgi.url_scheme"), "http");
    assert_eq!(s("wsgi.input"), "Input");
    assert_eq!(s("wsgi.errors"), "TextIOWrapper");
    assert_eq!(s("wsgi.file_wrapper"), "type");
    assert_eq!(env["wsgi.multithread"], false);
    assert_eq!(env["wsgi.multiprocess"], false);
    assert_eq!(env["wsgi.run_once"], false);
    assert_eq!(env["wsgi.input_terminated"], true);
}

#[test]
fn environ_without_length_or_addresses() {
    let mut cfg = config("apps:echo_environ");
    cfg.server_name = "sock.example".into();
    cfg.server_port = 9999;
    cfg.multithread = true;
    let app = WsgiApp::load(cfg).unwrap();
    let req = RequestParts::new("GET", "/").header("Transfer-Encoding", "chunked");
    let env = environ(&app, req, &ironhorse_app::ConnInfo::unix());
    assert!(env.get("CONTENT_LENGTH").is_none());
    assert_eq!(env["QUERY_STRING"], "");
    assert_eq!(env["SERVER_NAME"], "sock.example");
    assert_eq!(env["SERVER_PORT"], "9999");
    assert_eq!(env["REMOTE_ADDR"], "");
    assert_eq!(env["SERVER_PROTOCOL"], "HTTP/1.1");
    assert_eq!(env["wsgi.multithread"], true);
}

#[test]
fn path_info_is_latin1_of_decoded_bytes() {
    let app = load("apps:echo_environ");
    let env = environ(&app, RequestParts::new("GET", "/caf%C3%A9/%ff"), &conn());
    assert_eq!(env["PATH_INFO"], "/caf\u{c3}\u{a9}/\u{ff}");
    // The app can recover the UTF-8 bytes PEP 3333 style.
    let app = load("apps:path");
    assert_eq!(get(&app, "/caf%C3%A9").body, "/café".as_bytes());
}

#[test]
fn root_path_becomes_script_name() {
    let mut cfg = config("apps:echo_environ");
    cfg.root_path = "/mnt/".into();
    let app = WsgiApp::load(cfg).unwrap();
    let env = environ(&app, RequestParts::new("GET", "/mnt/x/y?q"), &conn());
    assert_eq!(env["SCRIPT_NAME"], "/mnt");
    assert_eq!(env["PATH_INFO"], "/x/y");
    let env = environ(&app, RequestParts::new("GET", "/mnt"), &conn());
    assert_eq!(env["PATH_INFO"], "");
    let env = environ(&app, RequestParts::new("GET", "/mntx"), &conn());
    assert_eq!(env["PATH_INFO"], "/mntx");
}

#[test]
fn wsgiref_validator_passes() {
    let app = load("apps:validated");
    let req = RequestParts {
        content_length: Some(5),
        ..RequestParts::new("POST", "/v?a=b").header("Content-Type", "text/plain")
    };
    let resp = collect(app.handle(
        &req,
        &mut Trickle {
            data: b"hello".to_vec(),
            pos: 0,
            step: 2,
        },
        &conn(),
    ));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.text(), "got:hello");
    assert!(resp.error.is_none());
    let resp = get(&app, "/");
    assert_eq!((resp.status, resp.text().as_str()), (200, "got:"));
}

#[test]
fn invalid_status_or_headers_are_500() {
    let app = load("apps:bad_head");
    for case in [
        "short", "letters", "nospace", "bytes", "crlf", "ctl", "hop", "te", "notuple", "badname",
        "nonlatin", "badlen", "dict",
    ] {
        let resp = get(&app, &format!("/?{case}"));
        assert_eq!(resp.status, 500, "{case}");
        assert_eq!(resp.text(), "Internal Server Error", "{case}");
        assert!(resp.header("X-A").is_none());
    }
    let resp = get(&app, "/?ok");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("X-A").as_deref(), Some("a\tb"));
}

#[test]
fn app_errors_before_headers_are_500() {
    for name in ["raises", "no_start", "str_body", "twice"] {
        let resp = get(&load(&format!("apps:{name}")), "/");
        assert_eq!(resp.status, 500, "{name}");
        assert_eq!(resp.text(), "Internal Server Error", "{name}");
        assert_eq!(
            resp.header("Content-Type").as_deref(),
            Some("text/plain; charset=utf-8")
        );
    }
}

#[test]
fn debug_puts_the_traceback_in_the_500() {
    let mut cfg = config("apps:raises");
    cfg.debug = true;
    let resp = get(&WsgiApp::load(cfg).unwrap(), "/");
    assert_eq!(resp.status, 500);
    let text = resp.text();
    assert!(text.starts_with("Internal Server Error"));
    assert!(text.contains("Traceback"), "{text}");
    assert!(text.contains("ValueError: boom before headers"), "{text}");
}

#[test]
fn start_response_inside_a_generator() {
    let resp = get(&load("apps:lazy"), "/");
    assert_eq!(resp.status, 201);
    assert_eq!(resp.kind, "stream");
    assert_eq!(resp.length, None);
    assert_eq!(resp.text(), "onetwo");
}

#[test]
fn exc_info_replaces_the_head_before_it_is_sent() {
    let resp = get(&load("apps:exc_before"), "/");
    assert_eq!(resp.status, 503);
    assert_eq!(resp.header("X-Err").as_deref(), Some("1"));
    assert_eq!(resp.text(), "handled");
}

#[test]
fn exc_info_after_headers_reraises_into_the_stream() {
    let resp = get(&load("apps:exc_after"), "/");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "partial");
    let err = resp.error.expect("the stream fails");
    assert!(err.to_string().contains("late"), "{err}");
}

#[test]
fn content_length_moves_into_the_body() {
    let app = load("apps:with_length");
    let resp = get(&app, "/gen?5");
    assert_eq!((resp.kind, resp.length), ("stream", Some(5)));
    assert_eq!(resp.text(), "hello");
    for name in ["Content-Length", "Date", "Server"] {
        assert!(resp.header(name).is_none(), "{name}");
    }
    assert_eq!(resp.header("Content-Type").as_deref(), Some("text/plain"));
    // Too long a declaration: passed on, so the engine can close the connection.
    let resp = get(&app, "/gen?9");
    assert_eq!((resp.length, resp.text().as_str()), (Some(9), "hello"));
    // In-memory bodies: exact → bytes, shorter declaration → truncated, longer → declared.
    let resp = get(&app, "/list?5");
    assert_eq!((resp.kind, resp.length), ("bytes", Some(5)));
    let resp = get(&app, "/list?3");
    assert_eq!((resp.kind, resp.text().as_str()), ("bytes", "hel"));
    let resp = get(&app, "/list?7");
    assert_eq!((resp.kind, resp.length), ("stream", Some(7)));
    assert_eq!(resp.text(), "hello");
}

#[test]
fn one_item_list_is_bytes_and_empty_is_empty() {
    let resp = get(&load("apps:hello"), "/");
    assert_eq!((resp.status, resp.kind), (200, "bytes"));
    assert_eq!(resp.text(), "Hello, World!");
    let resp = get(&load("apps:empty"), "/");
    assert_eq!((resp.status, resp.kind), (204, "empty"));
}

#[test]
fn write_data_comes_out_in_order() {
    let resp = get(&load("apps:writer"), "/");
    assert_eq!(resp.kind, "stream");
    assert_eq!(resp.text(), "abcde");
    let resp = get(&load("apps:writer_list"), "/");
    assert_eq!((resp.kind, resp.text().as_str()), ("bytes", "123"));
}

fn closes(key: &str) -> String {
    get(&load("apps:closes"), &format!("/?{key}")).text()
}

#[test]
fn close_is_called_exactly_once() {
    let app = load("apps:closing");
    // Normal end.
    let resp = get(&app, "/?key=normal");
    assert_eq!((resp.text().as_str(), resp.error.is_none()), ("abc", true));
    assert_eq!(closes("normal"), "1");
    // Lazy start_response, normal end.
    assert_eq!(get(&app, "/?key=lazy&lazy=1").text(), "abc");
    assert_eq!(closes("lazy"), "1");
    // Exception mid-stream.
    let resp = get(&app, "/?key=mid&fail=1");
    assert_eq!(resp.text(), "a");
    assert!(resp.error.is_some());
    assert_eq!(closes("mid"), "1");
    // Exception before the first chunk: 500, still closed.
    let resp = get(&app, "/?key=first&fail=0");
    assert_eq!(resp.status, 500);
    assert_eq!(closes("first"), "1");
    // Empty iterable.
    let resp = get(&app, "/?key=empty&empty=1");
    assert_eq!((resp.status, resp.kind), (200, "empty"));
    assert_eq!(closes("empty"), "1");
    // Client gone: the stream is dropped after one chunk.
    let resp = app.handle(
        &RequestParts::new("GET", "/?key=drop"),
        &mut io::empty(),
        &conn(),
    );
    let ironhorse_app::Body::Stream { mut chunks, .. } = resp.body else {
        panic!("expected a stream")
    };
    assert_eq!(chunks.next().unwrap().unwrap(), b"a");
    assert_eq!(closes("drop"), "0");
    drop(chunks);
    assert_eq!(closes("drop"), "1");
    // Dropped before any chunk was taken, on another thread.
    let resp = app.handle(
        &RequestParts::new("GET", "/?key=drop2"),
        &mut io::empty(),
        &conn(),
    );
    std::thread::spawn(move || drop(resp)).join().unwrap();
    assert_eq!(closes("drop2"), "1");
}

#[test]
fn wsgi_input_reads_lines_and_blocks() {
    let app = load("apps:input_ops");
    let data = b"line1\nline2\nline3\nabcdefgh\nl5\nl6\nl7\nl8\nrest".to_vec();
    for step in [1, 3, 1000] {
        let resp = collect(app.handle(
            &RequestParts::new("POST", "/"),
            &mut Trickle {
                data: data.clone(),
                pos: 0,
                step,
            },
            &conn(),
        ));
        assert_eq!(resp.status, 200, "{}", resp.text());
        let got: Value = serde_json::from_slice(&resp.body).unwrap();
        let want = serde_json::json!([
            "line1\n",
            "lin",
            "e2\n",
            "line3",
            "\n",
            ["abcdefgh\n"],
            "l5\n",
            "l6\n",
            "l7\n",
            "l8\n",
            "rest",
            "",
            "",
            ""
        ]);
        assert_eq!(got, want, "step {step}");
    }
}

#[test]
fn wsgi_input_read_all() {
    let app = load("apps:input_all");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let resp = collect(app.handle(
        &RequestParts::new("POST", "/"),
        &mut Trickle {
            data: data.clone(),
            pos: 0,
            step: 7000,
        },
        &conn(),
    ));
    let mut want = b"300000:".to_vec();
    want.extend_from_slice(&data[data.len() - 3..]);
    assert_eq!(resp.body, want);
}

#[test]
fn wsgi_input_after_call_returned_is_empty() {
    let app = load("apps:input_late");
    let resp = collect(app.handle(
        &RequestParts::new("POST", "/"),
        &mut Trickle {
            data: b"abcdef".to_vec(),
            pos: 0,
            step: 100,
        },
        &conn(),
    ));
    assert_eq!(resp.text(), "ab||");
}

#[test]
fn body_read_errors_raise_oserror_in_the_app() {
    struct Broken(io::ErrorKind);
    impl io::Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::new(self.0, "broken"))
        }
    }
    let status = |kind| {
        let resp = collect(load("apps:input_all").handle(
            &RequestParts::new("POST", "/"),
            &mut Broken(kind),
            &conn(),
        ));
        (resp.status, resp.header("connection"))
    };
    // The client's doing (issue 14): its status, and the connection closes.
    let close = Some("close".to_string());
    assert_eq!(status(io::ErrorKind::ConnectionReset), (400, close.clone()));
    assert_eq!(status(io::ErrorKind::TimedOut), (408, close.clone()));
    assert_eq!(status(io::ErrorKind::InvalidData), (400, close));
    // Anything else is the server's problem: 500 as before.
    assert_eq!(status(io::ErrorKind::PermissionDenied), (500, None));
}

#[test]
fn file_wrapper_becomes_a_file_region() {
    let dir = std::env::temp_dir().join(format!("ironhorse-wsgi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("f.txt");
    std::fs::write(&path, b"0123456789").unwrap();
    let app = load("apps:file_app");
    let p = path.display();
    let resp = get(&app, &format!("/?path={p}&seek=3"));
    assert_eq!((resp.kind, resp.length), ("file", Some(7)));
    assert_eq!(resp.text(), "3456789");
    let resp = get(&app, &format!("/?path={p}&seek=2&len=4"));
    assert_eq!((resp.kind, resp.text().as_str()), ("file", "2345"));
    assert!(resp.header("Content-Length").is_none());
    // Not a regular file: read in blocks.
    let resp = app.handle(
        &RequestParts::new("GET", "/?path=/dev/zero&len=10"),
        &mut io::empty(),
        &conn(),
    );
    assert_eq!(resp.body.len_hint(), Some(10));
    let ironhorse_app::Body::Stream { chunks, .. } = resp.body else {
        panic!("expected a stream")
    };
    let first: Vec<Vec<u8>> = chunks.take(2).map(Result::unwrap).collect();
    assert_eq!(first, vec![vec![0u8; 4]; 2]);
    let resp = get(&load("apps:bytesio_app"), "/");
    assert_eq!((resp.kind, resp.text().as_str()), ("stream", "0123456789"));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn load_err(spec: &str) -> String {
    match ironhorse_wsgi::WsgiApp::load(config(spec)) {
        Ok(_) => panic!("{spec} loaded"),
        Err(e) => {
            let text = e.to_string();
            assert!(!text.contains('\n'), "one line: {text}");
            let _: &dyn std::error::Error = &e;
            text
        }
    }
}

#[test]
fn import_errors_name_the_module() {
    let e = load_err("no_such_module_abc:app");
    assert!(
        e.contains("\"no_such_module_abc\"") && e.contains("ModuleNotFoundError"),
        "{e}"
    );
    let e = load_err("bad_syntax:app");
    assert!(
        e.contains("SyntaxError") && e.contains("bad_syntax.py:2"),
        "{e}"
    );
    let e = load_err("raises_on_import");
    assert!(e.contains("RuntimeError: module-level failure"), "{e}");
    let e = load_err("imports_missing");
    assert!(e.contains("no_such_dependency_xyz"), "{e}");
    let e = load_err("apps:nope");
    assert_eq!(e, "module \"apps\" has no attribute \"nope\"");
    let e = load_err("apps:not_callable");
    assert!(e.contains("not callable") && e.contains("int"), "{e}");
    let e = load_err("apps:failing_factory()");
    assert!(e.contains("factory exploded"), "{e}");
    let e = load_err("apps:make_app(x.y)");
    assert!(e.contains("literal"), "{e}");
    let e = load_err("apps:a.b");
    assert!(e.contains("bad application spec"), "{e}");
    assert!(matches!(
        WsgiApp::load(config(":app")),
        Err(WsgiError::BadSpec { .. })
    ));
}

#[test]
fn specs_with_factories_and_defaults() {
    assert_eq!(get(&load("apps:make_app()"), "/").text(), "hi!");
    assert_eq!(
        get(&load("apps:make_app('yo', punct='?')"), "/").text(),
        "yo?"
    );
    assert_eq!(get(&load("default_app"), "/").text(), "default");
}

#[test]
fn threads_call_concurrently() {
    let app = std::sync::Arc::new(load("apps:path"));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let app = app.clone();
            std::thread::spawn(move || {
                for i in 0..1000 {
                    let path = format!("/t{t}/{i}");
                    let resp = get(&app, &path);
                    assert_eq!((resp.status, resp.body), (200, path.into_bytes()));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// The environ entries kept per connection (`ConnCache`): the same on every request of a
/// connection, never another connection's, and a request's forwarded client, scheme and host
/// still win for that request only.
#[test]
fn per_connection_entries_follow_the_connection() {
    use ironhorse_wire::forwarded::{Resolved, Scheme};
    let app = load("apps:echo_environ");
    let conn = conn();
    for _ in 0..2 {
        let env = environ(&app, RequestParts::new("GET", "/"), &conn);
        assert_eq!(env["REMOTE_ADDR"], "10.0.0.7");
        assert_eq!(env["REMOTE_PORT"], "51234");
        assert_eq!(env["SERVER_PORT"], "8080");
        assert_eq!(env["wsgi.url_scheme"], "http");
    }
    // A clone shares the cache; changed addresses must not see the old ones.
    let mut moved = conn.clone();
    moved.peer = Some("10.0.0.8:4000".parse().unwrap());
    moved.scheme = "https";
    let env = environ(&app, RequestParts::new("GET", "/"), &moved);
    assert_eq!(env["REMOTE_ADDR"], "10.0.0.8");
    assert_eq!(env["REMOTE_PORT"], "4000");
    assert_eq!(env["wsgi.url_scheme"], "https");
    // One request's forwarding headers, then the next request without them.
    let mut forwarded = conn.clone();
    forwarded.forwarded = Some(Resolved {
        client: Some(("192.0.2.1".parse().unwrap(), None)),
        scheme: Some(Scheme::Https),
        host: Some("example.com".into()),
    });
    let env = environ(&app, RequestParts::new("POST", "/"), &forwarded);
    assert_eq!(env["REQUEST_METHOD"], "POST");
    assert_eq!(env["REMOTE_ADDR"], "192.0.2.1");
    assert_eq!(env["REMOTE_HOST"], "192.0.2.1");
    assert_eq!(env["REMOTE_PORT"], "0");
    assert_eq!(env["wsgi.url_scheme"], "https");
    assert_eq!(env["SERVER_NAME"], "example.com");
    assert_eq!(env["SERVER_PORT"], "443");
    let env = environ(&app, RequestParts::new("GET", "/"), &conn);
    assert_eq!(env["REQUEST_METHOD"], "GET");
    assert_eq!(env["REMOTE_ADDR"], "10.0.0.7");
    assert_eq!(env["REMOTE_PORT"], "51234");
    assert_eq!(env["SERVER_NAME"], "127.0.0.1");
    assert_eq!(env["SERVER_PORT"], "8080");
    assert_eq!(env["wsgi.url_scheme"], "http");
}

/// `HTTP_HOST` is the `Host` of each request, though the connection's environ template
/// keeps the first request's: another `Host` replaces it, a request without one has none.
#[test]
fn host_follows_each_request_of_a_connection() {
    let app = load("apps:echo_environ");
    let conn = conn();
    let get = |host: Option<&str>| {
        let mut req = RequestParts::new("GET", "/");
        if let Some(host) = host {
            req = req.header("Host", host);
        }
        environ(&app, req, &conn)
    };
    assert_eq!(get(Some("a.example"))["HTTP_HOST"], "a.example");
    assert_eq!(get(Some("a.example"))["HTTP_HOST"], "a.example");
    assert_eq!(get(Some("b.example:81"))["HTTP_HOST"], "b.example:81");
    assert!(get(None).get("HTTP_HOST").is_none());
    assert_eq!(get(Some("a.example"))["HTTP_HOST"], "a.example");
    // A connection whose first request had no Host.
    let bare = common::conn();
    let env = environ(&app, RequestParts::new("GET", "/"), &bare);
    assert!(env.get("HTTP_HOST").is_none());
    let env = environ(
        &app,
        RequestParts::new("GET", "/").header("Host", "c.example"),
        &bare,
    );
    assert_eq!(env["HTTP_HOST"], "c.example");
    // Two Host fields (never from h1, which refuses them) still join as before.
    let env = environ(
        &app,
        RequestParts::new("GET", "/")
            .header("Host", "a.example")
            .header("Host", "d.example"),
        &conn,
    );
    assert_eq!(env["HTTP_HOST"], "a.example, d.example");
}

/// `start_response` given the same list object, changed in place between requests (and the
/// same tuples with another status): each response has the head of its own call, and an
/// invalid header is refused however often valid ones came before.
#[test]
fn a_reused_header_list_changed_in_place_is_read_again() {
    let app = load("apps:shared_head");
    let conn = conn();
    let call = |query: &str| {
        collect(app.handle(
            &RequestParts::new("GET", &format!("/?{query}")),
            &mut io::empty(),
            &conn,
        ))
    };
    for _ in 0..2 {
        let r = call("v=a");
        assert_eq!((r.status, r.header("X-V").as_deref()), (200, Some("a")));
        let r = call("");
        assert_eq!((r.status, r.header("X-V").as_deref()), (200, Some("a")));
        let r = call("s=created");
        assert_eq!((r.status, r.header("X-V").as_deref()), (201, Some("a")));
        let r = call("s=teapot&v=b");
        assert_eq!((r.status, r.header("X-V").as_deref()), (418, Some("b")));
        let r = call("bad=1");
        assert_eq!(r.status, 500, "{}", r.text());
        let r = call("drop=1");
        assert_eq!((r.status, r.header("X-V")), (200, None));
        assert_eq!(r.header("Content-Type").as_deref(), Some("text/plain"));
    }
}

/// A thread's next request may get the `start_response`, `write` and `wsgi.input` objects
/// of the last one when its application kept none of them: each request still starts from
/// a new request's state (after `write()`, after a client's broken body), and objects an
/// application kept stay those of their own request (not reset, not reused, not reading
/// or writing the later request's body or response).
#[test]
fn request_objects_are_each_requests_own() {
    struct Broken;
    impl io::Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::ConnectionReset, "broken"))
        }
    }
    let app = load("apps:keeper");
    let conn = conn();
    let post = |query: &str, body: &str| {
        collect(app.handle(
            &RequestParts::new("POST", &format!("/?{query}")),
            &mut Trickle {
                data: body.as_bytes().to_vec(),
                pos: 0,
                step: 3,
            },
            &conn,
        ))
    };
    for round in 0..3 {
        let r = post("write", "w1");
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "written:w1"),
            "{round}"
        );
        // A head declared and a body written before: this request's start_response is new.
        let r = post("", "p2");
        assert_eq!((r.status, r.text().as_str()), (200, "plain:p2"), "{round}");
        let r = collect(app.handle(&RequestParts::new("POST", "/"), &mut Broken, &conn));
        assert_eq!(r.status, 400, "{round}: {}", r.text());
        // The client's fault was the last request's only.
        let r = post("", "p4");
        assert_eq!((r.status, r.text().as_str()), (200, "plain:p4"), "{round}");
        let r = post("keep", "k5");
        assert_eq!((r.status, r.text().as_str()), (200, "kept:k5"), "{round}");
        let r = post("check", "c6");
        assert_eq!(r.status, 200, "{round}: {}", r.text());
        let seen: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            seen,
            serde_json::json!({
                "body": "c6",
                "same_input": false,
                "same_start_response": false,
                "old_input_reads": "",
                "old_start_response": "AssertionError",
            }),
            "{round}"
        );
        let r = post("", "p7");
        assert_eq!((r.status, r.text().as_str()), (200, "plain:p7"), "{round}");
        // A streamed response still being read while later requests run (one answered
        // through write()): each keeps its own state.
        let streamed = app.handle(
            &RequestParts::new("POST", "/?gen"),
            &mut Trickle {
                data: b"g9".to_vec(),
                pos: 0,
                step: 3,
            },
            &conn,
        );
        let r = post("write", "w10");
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "written:w10"),
            "{round}"
        );
        let r = post("", "p11");
        assert_eq!((r.status, r.text().as_str()), (200, "plain:p11"), "{round}");
        let r = collect(streamed);
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "gen:g9+end"),
            "{round}"
        );
        // Only a weak reference to start_response: it still dies with its request.
        let r = post("weak", "w8");
        assert_eq!((r.status, r.text().as_str()), (200, "weak:w8"), "{round}");
        let r = post("deadref", "");
        assert_eq!((r.status, r.text().as_str()), (200, "dead"), "{round}");
    }
}
