//! Request-head parsing: forms, limits, fields, framing, Host, methods.
use super::*;
use crate::testutil::{conn_with, head, rejection};
use crate::ServerConn;

fn ok(bytes: &[u8]) -> RequestHead {
    head(bytes).unwrap().expect("complete head")
}

#[test]
fn parses_method_target_path_query_and_headers() {
    let h = ok(b"GET /a%20b?x=1#frag HTTP/1.1\r\nHost: h\r\nX-A:  v  \r\n\r\n");
    assert_eq!(h.method(), "GET");
    assert_eq!(h.target(), "/a%20b?x=1#frag");
    assert_eq!(h.path(), "/a%20b");
    assert_eq!(h.query(), "x=1");
    assert_eq!(h.version(), Version::Http11);
    let hs: Vec<_> = h.headers().collect();
    assert_eq!(hs, vec![("Host", &b"h"[..]), ("X-A", &b"v"[..])]);
    assert_eq!(h.header("x-a"), Some(&b"v"[..]));
    assert_eq!(h.body_framing(), BodyFraming::None);
}

#[test]
fn keeps_more_fields_than_fit_inline() {
    let mut req = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
    for i in 0..40 {
        req.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    let h = ok(&req);
    assert_eq!(h.headers().count(), 41);
    assert_eq!(h.header("x-39"), Some(&b"39"[..]));
}

#[test]
fn waits_for_the_blank_line() {
    assert!(head(b"GET / HTTP/1.1\r\nHost: h\r\n").unwrap().is_none());
    assert!(head(b"GET / HTTP/1.1\r\nHost: h\r\n\r").unwrap().is_none());
}

#[test]
fn ignores_leading_empty_lines() {
    let h = ok(b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(h.path(), "/");
}

#[test]
fn accepts_absolute_form_and_takes_its_path() {
    let h = ok(b"GET http://u:p@h:8/x/y?q=1 HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!((h.path(), h.query()), ("/x/y", "q=1"));
    assert_eq!(h.host(), Some("h:8"));
    assert!(h.is_absolute_form());
    let h = ok(b"GET HTTPS://h HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(h.path(), "/");
    assert_eq!(
        rejection(b"GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n"),
        Error::BadTarget
    );
    assert_eq!(
        rejection(b"GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n"),
        Error::BadTarget
    );
}

#[test]
fn answers_connect_501_once_it_is_valid_and_400_when_it_is_not() {
    let e = rejection(b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n");
    assert_eq!((e.clone(), e.status()), (Error::ConnectNotSupported, 501));
    let e = rejection(b"CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n");
    assert_eq!(e, Error::ConnectNotSupported);
    let e = rejection(b"CONNECT u@h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n");
    assert_eq!(e, Error::BadTarget);
    let e = rejection(b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\nContent-Length: x\r\n\r\n");
    assert_eq!(e, Error::BadContentLength);
    let mut c = conn_with(b"CONNECT h:443 HTTP/1.1\r\n\r\n");
    c.set_require_host(false);
    assert_eq!(c.next_request().unwrap_err(), Error::ConnectNotSupported);
    assert!(c.is_closed());
}

#[test]
fn allows_authority_form_only_for_connect() {
    let e = rejection(b"GET h:443 HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(e, Error::BadTarget);
    let e = rejection(b"CONNECT /x HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(e, Error::BadTarget);
}

#[test]
fn rejects_broken_percent_escapes_in_the_path_only() {
    for target in ["/a%zz.txt", "/a.txt%2", "/%g0", "/%", "http://h/a%2x"] {
        let req = format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(rejection(req.as_bytes()), Error::BadTarget, "{target}");
    }
    let h = ok(b"GET /a%20b%2F%c3%a9?q=%zz&r=100% HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!((h.path(), h.query()), ("/a%20b%2F%c3%a9", "q=%zz&r=100%"));
}

#[test]
fn allows_asterisk_only_for_options() {
    assert_eq!(ok(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n").path(), "*");
    assert_eq!(
        rejection(b"GET * HTTP/1.1\r\nHost: h\r\n\r\n"),
        Error::BadTarget
    );
}

#[test]
fn rejects_relative_targets_and_control_characters_in_targets() {
    assert_eq!(
        rejection(b"GET a/b HTTP/1.1\r\nHost: h\r\n\r\n"),
        Error::BadTarget
    );
    assert_eq!(
        rejection(b"GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n"),
        Error::BadTarget
    );
    assert_eq!(
        rejection(b"GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n"),
        Error::BadTarget
    );
    assert_eq!(
        rejection(b"GET /\xff HTTP/1.1\r\nHost: h\r\n\r\n"),
        Error::BadTarget
    );
}

#[test]
fn rejects_raw_bytes_over_0x7f_in_targets_even_as_utf8() {
    for target in [
        &b"/\xc3\xa0%20k"[..],
        b"/a?q=\xc3\xa9",
        b"http://h/\xe2\x82\xac",
    ] {
        let mut req = b"GET ".to_vec();
        req.extend_from_slice(target);
        req.extend_from_slice(b" HTTP/1.1\r\nHost: h\r\n\r\n");
        let e = rejection(&req);
        assert_eq!(
            (e.clone(), e.status()),
            (Error::BadTarget, 400),
            "{target:?}"
        );
    }
    // Percent-encoded, the same bytes are fine; so is visible ASCII outside RFC 3986.
    assert_eq!(
        ok(b"GET /%C3%A0 HTTP/1.1\r\nHost: h\r\n\r\n").path(),
        "/%C3%A0"
    );
    assert_eq!(
        ok(b"GET /\"q\"{|} HTTP/1.1\r\nHost: h\r\n\r\n").path(),
        "/\"q\"{|}"
    );
}

#[test]
fn validates_host_as_uri_host_and_port() {
    for host in [
        "user@host",
        "host/path",
        "a, b",
        "a,b",
        "h:x",
        "h:70000",
        "[::1",
        "a b",
    ] {
        let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let e = rejection(req.as_bytes());
        assert_eq!((e.clone(), e.status()), (Error::BadHost, 400), "{host:?}");
        // Invalid stays invalid on HTTP/1.0 and without the Host requirement.
        let req = format!("GET / HTTP/1.0\r\nHost: {host}\r\n\r\n");
        assert_eq!(rejection(req.as_bytes()), Error::BadHost, "{host:?}");
    }
    let e = rejection(b"GET / HTTP/1.1\r\nHost: h\xc3\xa9\r\n\r\n");
    assert_eq!(e, Error::BadHost);
    for host in [
        "example.com",
        "example.com:8080",
        "[::1]:80",
        "127.0.0.1",
        "0.0.0.0=5000",
    ] {
        let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        assert_eq!(ok(req.as_bytes()).host(), Some(host));
    }
}

#[test]
fn rejects_an_empty_host_on_http11_only() {
    let e = rejection(b"GET / HTTP/1.1\r\nHost:\r\n\r\n");
    assert_eq!(e, Error::BadHost);
    let e = rejection(b"GET / HTTP/1.1\r\nHost:   \r\n\r\n");
    assert_eq!(e, Error::BadHost);
    assert_eq!(ok(b"GET / HTTP/1.0\r\nHost:\r\n\r\n").host(), None);
    let mut c = conn_with(b"GET / HTTP/1.1\r\nHost:\r\n\r\n");
    c.set_require_host(false);
    assert_eq!(c.next_request().unwrap().unwrap().host(), None);
}

#[test]
fn lets_an_absolute_target_authority_win_over_host() {
    // RFC 9112 §3.2.2: a mismatch is not an error; the target's authority is the host.
    let h = ok(b"GET http://a.example:81/p HTTP/1.1\r\nHost: b.example\r\n\r\n");
    assert_eq!((h.host(), h.path()), (Some("a.example:81"), "/p"));
    assert_eq!(h.header("host"), Some(&b"b.example"[..]));
    for target in [
        "http://a b/",
        "http://h:x/",
        "http://u@/",
        "http://a,b/",
        "http://[::1/",
    ] {
        let req = format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(rejection(req.as_bytes()).status(), 400, "{target:?}");
    }
    // Host is still required and still validated with an absolute-form target.
    let e = rejection(b"GET http://a/ HTTP/1.1\r\n\r\n");
    assert_eq!(e, Error::MissingHost);
    let e = rejection(b"GET http://a/ HTTP/1.1\r\nHost: u@a\r\n\r\n");
    assert_eq!(e, Error::BadHost);
}

#[test]
fn answers_overlong_methods_501_however_the_bytes_are_split() {
    let method = "A".repeat(MAX_METHOD + 1);
    let req = format!("{method} / HTTP/1.1\r\nHost: h\r\n\r\n");
    let long_line = format!("{} / HTTP/1.1\r\nHost: h\r\n\r\n", "A".repeat(9000));
    for req in [req.as_bytes(), long_line.as_bytes()] {
        for split in [1, 7, MAX_METHOD + 1, req.len()] {
            let mut c = ServerConn::new(Limits::default());
            let mut result = Ok(None);
            for piece in req.chunks(split) {
                c.feed(piece);
                result = c.next_request();
                if result.is_err() {
                    break;
                }
            }
            let e = result.unwrap_err();
            assert_eq!(
                (e.clone(), e.status()),
                (Error::MethodTooLong, 501),
                "{split}"
            );
        }
    }
    let at_limit = format!("{} / HTTP/1.1\r\nHost: h\r\n\r\n", "A".repeat(MAX_METHOD));
    assert_eq!(ok(at_limit.as_bytes()).method().len(), MAX_METHOD);
    // Not a token within the bytes judged: the usual 400, not 501.
    let e = rejection(format!("Aa{} / HTTP/1.1\r\nHost: h\r\n\r\n", "A".repeat(30)).as_bytes());
    assert_eq!(e.status(), 400);
    // A request-line limit below the method bound trips first, on every split.
    let mut c = ServerConn::new(Limits {
        max_request_line: 10,
        ..Limits::default()
    });
    c.feed(req.as_bytes());
    assert_eq!(c.next_request().unwrap_err(), Error::RequestLineTooLong);
}

#[test]
fn rejects_malformed_request_lines() {
    for line in [
        &b"GET HTTP/1.1"[..],
        b"GET  / HTTP/1.1",
        b"GET / HTTP/1.1 ",
        b"GET / a HTTP/1.1",
        b"GET",
    ] {
        let mut req = line.to_vec();
        req.extend_from_slice(b"\r\nHost: h\r\n\r\n");
        assert_eq!(
            rejection(&req).status(),
            400,
            "{:?}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn rejects_methods_that_are_not_upper_case_tokens() {
    for m in ["get", "G:T", "GET\u{0}", "GÉT", "-bl"] {
        let req = format!("{m} / HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(rejection(req.as_bytes()), Error::BadMethod, "{m}");
    }
    assert_eq!(
        ok(b"-BLARGH / HTTP/1.1\r\nHost: h\r\n\r\n").method(),
        "-BLARGH"
    );
}

#[test]
fn answers_505_for_well_formed_unknown_versions_and_400_for_garbage() {
    let e = rejection(b"GET / HTTP/2.0\r\nHost: h\r\n\r\n");
    assert_eq!((e.clone(), e.status()), (Error::UnsupportedVersion, 505));
    for v in ["HTTP/1.10", "HTTP/111", "FTP/1.1", "http/1.1", "HTTP/1"] {
        let req = format!("GET / {v}\r\nHost: h\r\n\r\n");
        assert_eq!(rejection(req.as_bytes()), Error::BadVersion, "{v}");
    }
}

#[test]
fn detects_a_too_long_request_line_before_its_end() {
    let mut c = ServerConn::new(Limits {
        max_request_line: 16,
        ..Limits::default()
    });
    c.feed(b"GET /0123456789ab");
    assert_eq!(c.next_request().unwrap_err(), Error::RequestLineTooLong);
    assert_eq!(Error::RequestLineTooLong.status(), 414);
    assert!(c.is_closed());
}

#[test]
fn accepts_a_request_line_exactly_at_the_limit() {
    let mut c = ServerConn::new(Limits {
        max_request_line: 14,
        ..Limits::default()
    });
    c.feed(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(c.next_request().unwrap().is_some());
}

#[test]
fn detects_too_many_and_too_large_fields_early() {
    let limits = Limits {
        max_headers: 2,
        max_header_size: 10,
        ..Limits::default()
    };
    let mut c = ServerConn::new(limits);
    c.feed(b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n");
    assert_eq!(c.next_request().unwrap_err(), Error::TooManyHeaders);
    let mut c = ServerConn::new(limits);
    c.feed(b"GET / HTTP/1.1\r\nHost: 0123456");
    assert_eq!(c.next_request().unwrap_err(), Error::HeaderTooLarge);
    assert_eq!(Error::HeaderTooLarge.status(), 431);
}

#[test]
fn bounds_the_whole_head_whatever_its_fields() {
    let limits = Limits {
        max_head: 64,
        ..Limits::default()
    };
    // Each field within its own limits, the head as a whole not: refused at the line that
    // crosses the bound, and while a partial line does, before the head ends.
    let field = b"X-Field: 0123456789\r\n";
    let mut whole = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
    whole.extend(field.repeat(3));
    let mut c = ServerConn::new(limits);
    c.feed(&whole);
    assert_eq!(c.next_request().unwrap_err(), Error::HeadTooLarge);
    let mut c = ServerConn::new(limits);
    c.feed(b"GET / HTTP/1.1\r\nHost: h\r\nX-Long: ");
    c.feed(&[b'a'; 40]);
    assert_eq!(c.next_request().unwrap_err(), Error::HeadTooLarge);
    assert_eq!(Error::HeadTooLarge.status(), 431);
    // Just within it: served.
    let mut c = ServerConn::new(limits);
    c.feed(b"GET / HTTP/1.1\r\nHost: h\r\nX-Field: 0123456789\r\n\r\n");
    assert!(c.next_request().unwrap().is_some());
}

#[test]
fn rejects_obsolete_line_folding() {
    let e = rejection(b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n");
    assert_eq!(e, Error::ObsoleteFolding);
    let e = rejection(b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n");
    assert_eq!(e, Error::ObsoleteFolding);
}

#[test]
fn rejects_whitespace_between_field_name_and_colon() {
    let e = rejection(b"GET / HTTP/1.1\r\nHost : h\r\n\r\n");
    assert_eq!(e, Error::BadHeaderName);
}

#[test]
fn rejects_empty_and_non_token_field_names() {
    for line in [
        &b": v"[..],
        b"A(B: v",
        b"A\x00: v",
        b"\xc3\x9f: v",
        b"novalue",
    ] {
        let mut req = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
        req.extend_from_slice(line);
        req.extend_from_slice(b"\r\n\r\n");
        assert_eq!(
            rejection(&req).status(),
            400,
            "{:?}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn rejects_control_characters_in_field_values() {
    for v in [&b"a\x07b"[..], b"a\x7fb", b"a\x00b", b"a\x1bb"] {
        let mut req = b"GET / HTTP/1.1\r\nHost: h\r\nX: ".to_vec();
        req.extend_from_slice(v);
        req.extend_from_slice(b"\r\n\r\n");
        assert_eq!(rejection(&req), Error::BadHeaderValue, "{v:?}");
    }
    let h = ok(b"GET / HTTP/1.1\r\nHost: h\r\nX: a\tb caf\xc3\xa9\r\n\r\n");
    assert_eq!(h.header("x"), Some(&b"a\tb caf\xc3\xa9"[..]));
}

#[test]
fn rejects_bare_cr_and_bare_lf() {
    assert_eq!(
        rejection(b"GET / HTTP/1.1\nHost: h\r\n\r\n"),
        Error::BadRequestLine
    );
    assert_eq!(
        rejection(b"GET / HTTP/1.1\r\nHost: h\n\r\n"),
        Error::BadLineEnding
    );
    assert_eq!(
        rejection(b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"),
        Error::BadLineEnding
    );
    assert_eq!(
        rejection(b"GET / HTTP/1.1\r\nHost: h\r\n\n"),
        Error::BadLineEnding
    );
}

#[test]
fn requires_exactly_one_host_on_http11() {
    assert_eq!(rejection(b"GET / HTTP/1.1\r\n\r\n"), Error::MissingHost);
    let e = rejection(b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n");
    assert_eq!(e, Error::DuplicateHeader);
    assert!(ok(b"GET / HTTP/1.0\r\n\r\n").header("host").is_none());
    let mut c = conn_with(b"GET / HTTP/1.1\r\n\r\n");
    c.set_require_host(false);
    assert!(c.next_request().unwrap().is_some());
}

#[test]
fn rejects_a_second_content_type() {
    let e = rejection(b"GET / HTTP/1.1\r\nHost: h\r\nContent-Type: a\r\nContent-Type: b\r\n\r\n");
    assert_eq!(e, Error::DuplicateHeader);
}

#[test]
fn drops_fields_with_underscores() {
    let h = ok(b"GET / HTTP/1.0\r\nContent_Length: 5\r\nX-A: 1\r\n\r\n");
    assert_eq!(h.headers().count(), 1);
    assert_eq!(h.body_framing(), BodyFraming::None);
}

#[test]
fn parses_content_length() {
    let h = ok(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0012\r\n\r\n");
    assert_eq!(h.body_framing(), BodyFraming::Length(12));
    let h = ok(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(h.body_framing(), BodyFraming::Length(0));
}

#[test]
fn rejects_bad_content_lengths() {
    for v in [
        "",
        "-1",
        "+1",
        "-0",
        "0x10",
        "1, 1",
        "1 1",
        "1_0",
        "ten",
        "18446744073709551616",
    ] {
        let req = format!("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: {v}\r\n\r\n");
        assert_eq!(rejection(req.as_bytes()), Error::BadContentLength, "{v:?}");
    }
}

#[test]
fn rejects_duplicate_content_length_even_when_equal() {
    let e =
        rejection(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n");
    assert_eq!(e, Error::BadContentLength);
}

#[test]
fn rejects_content_length_with_transfer_encoding() {
    let e = rejection(
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    assert_eq!(e, Error::ContentLengthWithTransferEncoding);
}

#[test]
fn classifies_transfer_encodings() {
    let cases: [(&str, Result<BodyFraming, Error>); 9] = [
        ("chunked", Ok(BodyFraming::Chunked)),
        ("Chunked", Ok(BodyFraming::Chunked)),
        ("gzip", Err(Error::BadTransferEncoding)),
        ("chunked, gzip", Err(Error::BadTransferEncoding)),
        ("chunked, chunked", Err(Error::BadTransferEncoding)),
        ("", Err(Error::BadTransferEncoding)),
        ("gzip, chunked", Err(Error::UnsupportedTransferCoding)),
        ("identity, chunked", Err(Error::UnsupportedTransferCoding)),
        ("identity", Err(Error::BadTransferEncoding)),
    ];
    for (te, want) in cases {
        let req = format!("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: {te}\r\n\r\n");
        let got = conn_with(req.as_bytes())
            .next_request()
            .map(|h| h.unwrap().body_framing());
        assert_eq!(got, want, "{te:?}");
    }
    assert_eq!(Error::UnsupportedTransferCoding.status(), 501);
}

#[test]
fn rejects_chunked_split_across_two_fields_twice() {
    let e = rejection(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    assert_eq!(e, Error::BadTransferEncoding);
}

#[test]
fn rejects_transfer_encoding_on_http10() {
    let e = rejection(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(e, Error::TransferEncodingInHttp10);
}

#[test]
fn rejects_a_declared_body_over_max_body_at_head_time() {
    let mut c = ServerConn::new(Limits {
        max_body: 10,
        ..Limits::default()
    });
    c.feed(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n");
    let e = c.next_request().unwrap_err();
    assert_eq!((e.clone(), e.status()), (Error::BodyTooLarge, 413));
}

#[test]
fn reads_keep_alive_from_version_and_connection_tokens() {
    let ka = |req: &[u8]| ok(req).keep_alive();
    assert!(ka(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    assert!(!ka(
        b"GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, CLOSE\r\n\r\n"
    ));
    assert!(!ka(b"GET / HTTP/1.0\r\n\r\n"));
    assert!(ka(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    assert!(!ka(
        b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"
    ));
}

#[test]
fn notes_expect_100_continue() {
    let h = ok(b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\n\r\n");
    assert!(h.expects_continue());
}

#[test]
fn eof_mid_head_is_incomplete() {
    let mut c = conn_with(b"GET / HTTP/1.1\r\nHo");
    assert!(c.next_request().unwrap().is_none());
    assert!(c.is_mid_head());
    c.feed_eof();
    assert_eq!(c.next_request().unwrap_err(), Error::Incomplete);
    assert!(c.is_closed());
}

#[test]
fn eof_between_requests_closes_quietly() {
    let mut c = conn_with(b"");
    c.feed_eof();
    assert!(c.next_request().unwrap().is_none());
    assert!(c.is_closed());
}

#[test]
fn the_tchar_table_is_rfc_9110s_token_characters() {
    for b in 0..=255u8 {
        let expected = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        assert_eq!(is_tchar(b), expected, "{b:#x}");
    }
}

#[test]
fn notes_whether_an_upgrade_field_is_present() {
    assert!(ok(b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n").has_upgrade());
    assert!(ok(b"GET / HTTP/1.1\r\nHost: h\r\nuPGRADE:\r\n\r\n").has_upgrade());
    assert!(!ok(b"GET / HTTP/1.1\r\nHost: h\r\nX-Upgrade: h2c\r\n\r\n").has_upgrade());
    assert!(!ok(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\r\n").has_upgrade());
    // Dropped with the other names containing `_`, so not seen either.
    assert!(!ok(b"GET / HTTP/1.1\r\nHost: h\r\nUp_grade: x\r\n\r\n").has_upgrade());
}
