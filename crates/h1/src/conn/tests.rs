//! Response encoding and connection management, scripted bytes in and out.
use super::*;
use crate::testutil::{conn_with, read_all, text};
use crate::HeaderList;

const GET11: &[u8] = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";

/// Parses one request from `req` and answers it with `status`, `body` and `len`.
fn respond(req: &[u8], status: u16, len: Option<u64>, body: &[u8]) -> (String, Next) {
    let mut c = conn_with(req);
    c.next_request().unwrap().unwrap();
    let mut out = Vec::new();
    c.write_head(
        status,
        &vec![("X-App".into(), b"1".to_vec())],
        len,
        &mut out,
    );
    c.write_body(body, &mut out);
    let next = c.finish(&mut out);
    (text(&out), next)
}

#[test]
fn writes_status_line_server_date_app_headers_and_length() {
    let (out, next) = respond(GET11, 200, Some(5), b"hello");
    assert_eq!(
        out,
        "HTTP/1.1 200 OK\nServer: ironhorse\nDate: *\nX-App: 1\nContent-Length: 5\n\nhello"
    );
    assert_eq!(next, Next::KeepAlive);
}

#[test]
fn skips_engine_owned_headers_from_the_application() {
    let mut c = conn_with(GET11);
    c.next_request().unwrap().unwrap();
    let headers: HeaderList = vec![
        ("Content-Length".into(), b"99".to_vec()),
        ("connection".into(), b"x-private".to_vec()),
        ("Server".into(), b"x".to_vec()),
        ("Date".into(), b"x".to_vec()),
        ("Transfer-Encoding".into(), b"gzip".to_vec()),
        ("Keep-Alive".into(), b"x".to_vec()),
    ];
    let mut out = Vec::new();
    c.write_head(204, &headers, None, &mut out);
    assert_eq!(
        text(&out),
        "HTTP/1.1 204 No Content\nServer: ironhorse\nDate: *\n"
    );
    assert_eq!(c.finish(&mut out), Next::KeepAlive);
}

#[test]
fn uses_chunked_for_unknown_length_on_http11() {
    let mut c = conn_with(GET11);
    c.next_request().unwrap().unwrap();
    let mut out = Vec::new();
    c.write_head(200, &Vec::new(), None, &mut out);
    c.write_body(b"hello", &mut out);
    c.write_body(b"", &mut out);
    c.write_body(b" world", &mut out);
    assert_eq!(c.finish(&mut out), Next::KeepAlive);
    let s = String::from_utf8(out).unwrap();
    assert!(
        s.ends_with("Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
        "{s}"
    );
}

#[test]
fn close_delimited_mode_never_chunks_and_closes_after_each_response() {
    for len in [None, Some(5)] {
        let mut c = conn_with(GET11);
        c.set_close_delimited(true);
        c.next_request().unwrap().unwrap();
        let mut out = Vec::new();
        c.write_head(200, &Vec::new(), len, &mut out);
        c.write_body(b"hello", &mut out);
        assert_eq!(c.finish(&mut out), Next::Close, "{len:?}");
        let s = String::from_utf8(out).unwrap();
        assert!(!s.contains("chunked"), "{s}");
        assert!(s.ends_with("Connection: close\r\n\r\nhello"), "{s}");
    }
}

#[test]
fn closes_after_a_close_delimited_body_on_http10() {
    let (out, next) = respond(
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        200,
        None,
        b"abc",
    );
    assert!(out.ends_with("Connection: close\n\nabc"), "{out}");
    assert!(!out.contains("Transfer-Encoding"));
    assert_eq!(next, Next::Close);
}

#[test]
fn echoes_keep_alive_for_http10_keep_alive() {
    let (out, next) = respond(
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        200,
        Some(0),
        b"",
    );
    assert!(
        out.ends_with("Content-Length: 0\nConnection: keep-alive\n"),
        "{out}"
    );
    assert!(out.starts_with("HTTP/1.1 200 OK"));
    assert_eq!(next, Next::KeepAlive);
}

#[test]
fn closes_http10_without_keep_alive() {
    let (out, next) = respond(b"GET / HTTP/1.0\r\n\r\n", 200, Some(0), b"");
    assert!(out.contains("Connection: close"), "{out}");
    assert_eq!(next, Next::Close);
}

#[test]
fn closes_when_the_client_asks() {
    let (out, next) = respond(
        b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        200,
        Some(0),
        b"",
    );
    assert!(out.contains("Connection: close"), "{out}");
    assert_eq!(next, Next::Close);
}

#[test]
fn head_responses_announce_length_but_send_no_body() {
    let (out, next) = respond(
        b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n",
        200,
        Some(5),
        b"hello",
    );
    assert!(out.ends_with("Content-Length: 5\n"), "{out}");
    assert_eq!(next, Next::KeepAlive);
    let (out, next) = respond(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n", 200, None, b"hello");
    assert!(
        !out.contains("Transfer-Encoding") && !out.contains("Content-Length"),
        "{out}"
    );
    assert!(out.ends_with("X-App: 1\n"), "{out}");
    assert_eq!(next, Next::KeepAlive);
}

#[test]
fn head_responses_count_no_externally_sent_bytes() {
    let mut c = conn_with(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n");
    c.next_request().unwrap().unwrap();
    let mut out = Vec::new();
    c.write_head(200, &Vec::new(), Some(10), &mut out);
    assert_eq!(c.body_sent_externally(10), 0);
    assert_eq!(c.finish(&mut out), Next::KeepAlive);
}

#[test]
fn bodiless_statuses_get_no_framing_and_no_body() {
    for status in [204, 304, 101] {
        let (out, next) = respond(GET11, status, Some(5), b"hello");
        assert!(
            !out.contains("Content-Length") && !out.contains("Transfer-Encoding"),
            "{out}"
        );
        assert!(out.ends_with("X-App: 1\n"), "{out}");
        assert_eq!(next, Next::KeepAlive);
    }
}

#[test]
fn reset_content_says_it_has_no_body_and_sends_none() {
    for len in [Some(5), None] {
        let (out, next) = respond(GET11, 205, len, b"hello");
        assert!(out.contains("Content-Length: 0\n"), "{out}");
        assert!(!out.contains("Transfer-Encoding"), "{out}");
        assert!(!out.contains("hello"), "{out}");
        assert_eq!(next, Next::KeepAlive);
    }
}

#[test]
fn drops_bytes_beyond_a_declared_length() {
    let (out, next) = respond(GET11, 200, Some(3), b"hello");
    assert!(out.ends_with("\n\nhel"), "{out}");
    assert_eq!(next, Next::KeepAlive);
}

#[test]
fn closes_when_a_declared_length_is_not_reached() {
    let (_, next) = respond(GET11, 200, Some(10), b"hello");
    assert_eq!(next, Next::Close);
}

#[test]
fn counts_externally_sent_bytes_against_the_declared_length() {
    let mut c = conn_with(GET11);
    c.next_request().unwrap().unwrap();
    let mut out = Vec::new();
    c.write_head(200, &Vec::new(), Some(10), &mut out);
    assert_eq!(c.body_sent_externally(6), 6);
    assert_eq!(c.body_sent_externally(6), 4);
    assert_eq!(c.finish(&mut out), Next::KeepAlive);
}

#[test]
fn trailers_end_a_chunked_body_and_have_no_room_after_a_length() {
    let mut c = conn_with(GET11);
    c.next_request().unwrap().unwrap();
    let mut out = Vec::new();
    c.write_head(200, &Vec::new(), None, &mut out);
    c.write_body(b"hi", &mut out);
    let fields = vec![(std::borrow::Cow::Borrowed("x-sum"), b"1".to_vec())];
    assert!(c.write_trailers(&fields, &mut out));
    assert_eq!(c.finish(&mut out), Next::KeepAlive);
    let out = String::from_utf8(out).unwrap();
    assert!(out.ends_with("2\r\nhi\r\n0\r\nx-sum: 1\r\n\r\n"), "{out}");

    let mut c = conn_with(GET11);
    c.next_request().unwrap().unwrap();
    let mut out = Vec::new();
    c.write_head(200, &Vec::new(), Some(2), &mut out);
    c.write_body(b"hi", &mut out);
    assert!(
        !c.write_trailers(&fields, &mut out),
        "no room after a length"
    );
    assert_eq!(c.finish(&mut out), Next::KeepAlive);
    assert!(out.ends_with(b"\r\n\r\nhi"));
}

#[test]
fn answers_pipelined_requests_in_order() {
    let mut c = conn_with(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
    let mut out = Vec::new();
    for (path, body) in [("/1", b"one"), ("/2", b"two")] {
        let h = c.next_request().unwrap().unwrap();
        assert_eq!(h.path(), path);
        c.write_head(200, &Vec::new(), Some(3), &mut out);
        c.write_body(body, &mut out);
        assert_eq!(c.finish(&mut out), Next::KeepAlive);
    }
    assert!(c.next_request().unwrap().is_none());
    let s = text(&out);
    let (one, two) = (s.find("one").unwrap(), s.find("two").unwrap());
    assert!(one < two);
    assert_eq!(s.matches("HTTP/1.1 200 OK").count(), 2);
}

#[test]
fn stops_after_a_request_that_closes() {
    let mut c = conn_with(b"GET /1 HTTP/1.0\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
    c.next_request().unwrap().unwrap();
    assert!(c.next_request().unwrap().is_none());
    let mut out = Vec::new();
    c.write_head(200, &Vec::new(), Some(0), &mut out);
    assert_eq!(c.finish(&mut out), Next::Close);
    assert!(c.is_closed());
    assert!(c.next_request().unwrap().is_none());
}

#[test]
fn drains_an_unread_body_to_keep_the_connection_alive() {
    let mut c = conn_with(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhel");
    c.next_request().unwrap().unwrap();
    let mut out = Vec::new();
    c.write_head(200, &Vec::new(), Some(0), &mut out);
    assert!(!text(&out).contains("Connection"));
    assert_eq!(c.finish(&mut out), Next::KeepAlive);
    assert!(c.next_request().unwrap().is_none());
    c.feed(b"loGET /next HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(c.next_request().unwrap().unwrap().path(), "/next");
}

#[test]
fn drains_an_unread_chunked_body() {
    let mut c = conn_with(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    );
    c.next_request().unwrap().unwrap();
    let mut out = Vec::new();
    c.write_head(200, &Vec::new(), Some(0), &mut out);
    assert_eq!(c.finish(&mut out), Next::KeepAlive);
    c.feed(b"0\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(c.next_request().unwrap().unwrap().path(), "/next");
}

#[test]
fn closes_instead_of_draining_a_body_over_max_drain() {
    let mut c = ServerConn::new(Limits {
        max_drain: 4,
        ..Limits::default()
    });
    c.feed(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n");
    c.next_request().unwrap().unwrap();
    let mut out = Vec::new();
    c.write_head(200, &Vec::new(), Some(0), &mut out);
    assert!(text(&out).contains("Connection: close"));
    assert_eq!(c.finish(&mut out), Next::Close);
}

#[test]
fn closes_when_a_drained_chunked_body_exceeds_max_drain() {
    let mut c = ServerConn::new(Limits {
        max_drain: 4,
        ..Limits::default()
    });
    c.feed(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
    c.next_request().unwrap().unwrap();
    let mut out = Vec::new();
    c.write_head(200, &Vec::new(), Some(0), &mut out);
    assert_eq!(c.finish(&mut out), Next::KeepAlive);
    c.feed(b"5\r\nhello\r\n0\r\n\r\n");
    assert!(c.next_request().unwrap().is_none());
    assert!(c.is_closed());
}

#[test]
fn sends_100_continue_once_when_expected() {
    let mut c = conn_with(
        b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    );
    c.next_request().unwrap().unwrap();
    let mut out = Vec::new();
    c.write_continue(&mut out);
    c.write_continue(&mut out);
    assert_eq!(out, b"HTTP/1.1 100 Continue\r\n\r\n");
    c.feed(b"hi");
    assert_eq!(read_all(&mut c).unwrap(), b"hi");
    out.clear();
    c.write_head(200, &Vec::new(), Some(0), &mut out);
    assert_eq!(c.finish(&mut out), Next::KeepAlive);
}

#[test]
fn does_not_send_100_continue_unasked_on_http10_or_after_a_head() {
    let mut out = Vec::new();
    let mut c = conn_with(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n");
    c.next_request().unwrap().unwrap();
    c.write_continue(&mut out);
    let mut c = conn_with(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    c.next_request().unwrap().unwrap();
    c.write_continue(&mut out);
    assert!(out.is_empty());
    let mut c = conn_with(
        b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    );
    c.next_request().unwrap().unwrap();
    c.write_head(417, &Vec::new(), Some(0), &mut out);
    let head_len = out.len();
    c.write_continue(&mut out);
    assert_eq!(out.len(), head_len);
}

#[test]
fn closes_when_an_expected_100_continue_was_never_sent() {
    let mut c = conn_with(
        b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    );
    c.next_request().unwrap().unwrap();
    let mut out = Vec::new();
    c.write_head(413, &Vec::new(), Some(0), &mut out);
    assert!(text(&out).contains("Connection: close"));
    assert_eq!(c.finish(&mut out), Next::Close);
}

#[test]
fn writes_a_short_plain_text_error_and_closes() {
    let mut c = conn_with(b"GET / HTTP/1.1\r\nHost : h\r\n\r\n");
    let e = c.next_request().unwrap_err();
    let mut out = Vec::new();
    c.write_error(&e, &mut out);
    assert!(c.is_closed());
    let s = text(&out);
    assert!(
        s.starts_with("HTTP/1.1 400 Bad Request\nServer: ironhorse\nDate: *\n"),
        "{s}"
    );
    assert!(s.contains("Content-Type: text/plain"));
    assert!(
        s.ends_with("Content-Length: 20\nConnection: close\n\ninvalid header name"),
        "{s}"
    );
    assert!(out.ends_with(b"Connection: close\r\n\r\ninvalid header name\n"));
}

#[test]
fn writes_no_error_response_after_a_head_was_sent() {
    let mut c =
        conn_with(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    c.next_request().unwrap().unwrap();
    let mut out = Vec::new();
    c.write_head(200, &Vec::new(), None, &mut out);
    let e = read_all(&mut c).unwrap_err();
    let len = out.len();
    c.write_error(&e, &mut out);
    assert_eq!(out.len(), len);
    assert!(c.is_closed());
}

#[test]
fn abort_writes_no_terminating_chunk_and_closes() {
    let mut c = conn_with(GET11);
    c.next_request().unwrap().unwrap();
    let mut out = Vec::new();
    c.write_head(200, &Vec::new(), None, &mut out);
    c.write_body(b"partial", &mut out);
    c.abort();
    assert!(c.is_closed());
    assert!(!text(&out).contains("0\r\n\r\n"));
    assert_eq!(c.finish(&mut out), Next::Close);
    // The missing last chunk tells the client: an orderly close will do.
    assert!(!c.must_reset());
}

#[test]
fn a_cut_close_delimited_body_asks_for_a_reset() {
    for fail in [false, true] {
        let mut c = conn_with(b"GET / HTTP/1.0\r\n\r\n");
        c.next_request().unwrap().unwrap();
        let mut out = Vec::new();
        c.write_head(200, &Vec::new(), None, &mut out);
        assert!(!c.must_reset());
        c.write_body(b"partial", &mut out);
        if fail {
            c.write_failure(crate::Failure::AppFailed, &mut out);
        } else {
            c.abort();
        }
        assert!(c.must_reset(), "fail: {fail}");
    }
    // Cut before any head: the error answer is whole.
    let mut c = conn_with(b"GET / HTTP/1.0\r\n\r\n");
    c.next_request().unwrap().unwrap();
    c.write_failure(crate::Failure::AppFailed, &mut Vec::new());
    assert!(!c.must_reset());
}

#[test]
fn read_buf_offers_at_least_4k_and_compacts() {
    let mut c = ServerConn::new(Limits::default());
    assert!(c.read_buf().len() >= 4096);
    let req = GET11.repeat(3);
    c.read_buf()[..req.len()].copy_from_slice(&req);
    c.filled(req.len());
    assert!(c.next_request().unwrap().is_some());
    assert!(c.has_buffered_input());
    assert!(c.read_buf().len() >= 4096);
    let mut out = Vec::new();
    c.write_head(200, &Vec::new(), Some(0), &mut out);
    c.finish(&mut out);
    assert!(c.next_request().unwrap().is_some());
}

#[test]
fn tracks_head_written_and_mid_head() {
    let mut c = conn_with(b"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET");
    assert!(c.is_mid_head());
    c.next_request().unwrap().unwrap();
    assert!(!c.head_written());
    let mut out = Vec::new();
    c.write_head(200, &Vec::new(), Some(0), &mut out);
    assert!(c.head_written());
    c.finish(&mut out);
    assert!(c.next_request().unwrap().is_none());
    assert!(c.is_mid_head());
}

#[test]
fn skips_a_body_nobody_read_before_the_next_request() {
    let mut c = conn_with(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
    c.next_request().unwrap().unwrap();
    assert_eq!(c.next_request().unwrap().unwrap().path(), "/2");
}

#[test]
fn eof_while_draining_closes() {
    let mut c = conn_with(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\na");
    c.next_request().unwrap().unwrap();
    let mut out = Vec::new();
    c.write_head(200, &Vec::new(), Some(0), &mut out);
    assert_eq!(c.finish(&mut out), Next::KeepAlive);
    c.feed_eof();
    assert!(c.next_request().unwrap().is_none());
    assert!(c.is_closed());
}

#[test]
fn switching_protocols_ends_http_and_hands_over_the_bytes_after_the_head() {
    let mut c = conn_with(
        b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhello",
    );
    c.next_request().unwrap().unwrap();
    let mut out = Vec::new();
    c.write_switching_protocols("echo", &mut out);
    assert_eq!(
        text(&out),
        "HTTP/1.1 101 Switching Protocols\nServer: ironhorse\nDate: *\nConnection: Upgrade\nUpgrade: echo\n"
    );
    assert!(out.ends_with(b"echo\r\n\r\n"));
    assert!(c.is_closed());
    assert_eq!(c.take_input(), (b"hello".to_vec(), false));
    assert!(matches!(c.next_request(), Ok(None)));
}

#[test]
fn a_failure_after_the_head_only_closes() {
    let mut c = conn_with(GET11);
    c.next_request().unwrap().unwrap();
    let mut out = Vec::new();
    c.write_head(200, &Vec::new(), Some(5), &mut out);
    let head = out.len();
    c.write_failure(crate::Failure::TimedOut, &mut out);
    assert_eq!(out.len(), head, "nothing after a head already sent");
    assert!(c.is_closed());
}

#[test]
fn sends_a_custom_reason_phrase_and_never_the_pseudo_field() {
    let mut c = conn_with(GET11);
    c.next_request().unwrap().unwrap();
    let headers: HeaderList = vec![
        (crate::REASON_FIELD.into(), b"Custom Reason".to_vec()),
        ("X-A".into(), b"1".to_vec()),
    ];
    let mut out = Vec::new();
    c.write_head(299, &headers, Some(0), &mut out);
    assert_eq!(
        text(&out),
        "HTTP/1.1 299 Custom Reason\nServer: ironhorse\nDate: *\nX-A: 1\nContent-Length: 0\n"
    );
}

#[test]
fn falls_back_to_the_standard_reason_for_an_invalid_one() {
    let mut c = conn_with(GET11);
    c.next_request().unwrap().unwrap();
    let headers: HeaderList = vec![(crate::REASON_FIELD.into(), b"a\r\nX-Evil: 1".to_vec())];
    let mut out = Vec::new();
    c.write_head(404, &headers, Some(0), &mut out);
    assert!(
        text(&out).starts_with("HTTP/1.1 404 Not Found\nServer"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("Evil"));
}

#[test]
fn closes_when_the_service_asks_with_connection_close() {
    let mut c = conn_with(GET11);
    c.next_request().unwrap().unwrap();
    let headers: HeaderList = vec![("Connection".into(), b"close".to_vec())];
    let mut out = Vec::new();
    c.write_head(408, &headers, Some(0), &mut out);
    assert_eq!(
        text(&out),
        "HTTP/1.1 408 Request Timeout\nServer: ironhorse\nDate: *\nContent-Length: 0\nConnection: close\n"
    );
    assert_eq!(c.finish(&mut out), Next::Close);
}

#[test]
fn a_recycled_head_leaves_nothing_of_itself_in_the_next() {
    let mut c = conn_with(
        b"POST /first?a=1 HTTP/1.1\r\nHost: one.example\r\nX-A: 1\r\nX-B: 2\r\nContent-Length: 0\r\n\r\n\
          GET /2 HTTP/1.1\r\nHost: h\r\n\r\n\
          GET /3 HTTP/1.1\r\nHost: h\r\nX-Obs: caf\xe9\r\n\r\n\
          GET /4 HTTP/1.0\r\n\r\n",
    );
    let mut out = Vec::new();
    let mut answer = |c: &mut ServerConn| {
        c.write_head(204, &Vec::new(), None, &mut out);
        assert_eq!(c.finish(&mut out), Next::KeepAlive);
    };
    let first = c.next_request().unwrap().unwrap();
    assert_eq!(first.headers().count(), 4);
    c.recycle(first);
    answer(&mut c);
    let second = c.next_request().unwrap().unwrap();
    assert_eq!(
        (second.method(), second.target(), second.query()),
        ("GET", "/2", "")
    );
    let fields: Vec<_> = second.headers().collect();
    assert_eq!(fields, vec![("Host", &b"h"[..])]);
    assert_eq!(second.host(), Some("h"));
    c.recycle(second);
    answer(&mut c);
    // obs-text: the head is kept as bytes, not text.
    let third = c.next_request().unwrap().unwrap();
    assert_eq!(third.path(), "/3");
    assert_eq!(third.header("x-obs"), Some(&b"caf\xe9"[..]));
    c.recycle(third);
    answer(&mut c);
    let fourth = c.next_request().unwrap().unwrap();
    assert_eq!((fourth.path(), fourth.version()), ("/4", Version::Http10));
    assert_eq!(fourth.headers().count(), 0);
    assert_eq!(fourth.host(), None);
}
