//! Property tests: arbitrary input never panics or hangs; chunking never changes the result.
use ironhorse_h1::{BodyRead, Limits, Next, ServerConn};
use proptest::prelude::*;

/// What a driver observed: each request as (method, target, headers, body, trailers), then
/// the error status if one ended the connection.
type Seen = (Vec<String>, Option<u16>);

/// Feeds `pieces` one at a time, answering every request; panics if it does not terminate.
fn drive(pieces: &[&[u8]], limits: Limits) -> Seen {
    let mut conn = ServerConn::new(limits);
    let mut seen = Vec::new();
    let mut out = Vec::new();
    let mut current: Option<(String, Vec<u8>)> = None;
    let mut next = 0;
    let mut eof = false;
    let mut buf = [0u8; 61];
    let total: usize = pieces.iter().map(|p| p.len()).sum();
    // Each step either consumes input, emits data, or feeds more: bounded by input size.
    for _ in 0..(total * 4 + pieces.len() * 4 + 64) {
        let progressed = if let Some((_, body)) = current.as_mut() {
            match conn.read_body(&mut buf) {
                Ok(BodyRead::Data(n)) => {
                    body.extend_from_slice(&buf[..n]);
                    n > 0
                }
                Ok(BodyRead::End) => {
                    let (mut req, body) = current.take().unwrap();
                    req.push_str(&format!("{body:?} trailers {:?}", conn.trailers()));
                    seen.push(req);
                    out.clear();
                    conn.write_head(200, &Vec::new(), None, &mut out);
                    conn.write_body(b"ok", &mut out);
                    if conn.finish(&mut out) == Next::Close {
                        return (seen, None);
                    }
                    true
                }
                Ok(BodyRead::NeedMore) => false,
                Err(e) => {
                    conn.write_error(&e, &mut out);
                    assert!(conn.is_closed());
                    return (seen, Some(e.status()));
                }
            }
        } else {
            match conn.next_request() {
                Ok(Some(h)) => {
                    let hs: Vec<_> = h.headers().map(|(n, v)| format!("{n}={v:?}")).collect();
                    let req = format!(
                        "{} {} {} {:?} {:?} body ",
                        h.method(),
                        h.target(),
                        h.path(),
                        h.version(),
                        hs
                    );
                    current = Some((req, Vec::new()));
                    true
                }
                Ok(None) if conn.is_closed() => return (seen, None),
                Ok(None) => false,
                Err(e) => {
                    conn.write_error(&e, &mut out);
                    assert!(conn.is_closed());
                    return (seen, Some(e.status()));
                }
            }
        };
        if progressed {
            continue;
        }
        if next < pieces.len() {
            conn.feed(pieces[next]);
            next += 1;
        } else if !eof {
            conn.feed_eof();
            eof = true;
        } else {
            panic!("no progress after EOF");
        }
    }
    panic!("did not terminate");
}

/// Splits `data` at the given (unsorted, possibly out of range) cut points.
fn split_at<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut pieces = Vec::new();
    let mut prev = 0;
    for c in cuts {
        pieces.push(&data[prev..c]);
        prev = c;
    }
    pieces.push(&data[prev..]);
    pieces
}

fn small_limits() -> Limits {
    Limits {
        max_request_line: 64,
        max_headers: 8,
        max_header_size: 64,
        max_head: 1024,
        max_body: 4096,
        max_drain: 64,
    }
}

/// One valid request: GET, Content-Length body, or chunked body with trailers.
fn request() -> impl Strategy<Value = Vec<u8>> {
    let path = "/[a-z0-9]{0,8}(\\?[a-z=&]{0,8})?";
    let header = ("X-[A-Za-z]{1,6}", "[ -~]{0,12}");
    let body = proptest::collection::vec(any::<u8>(), 0..40);
    let chunks = proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..20), 0..4);
    (
        0..3u8,
        path,
        proptest::collection::vec(header, 0..4),
        body,
        chunks,
    )
        .prop_map(|(kind, path, headers, body, chunks)| {
            let method = ["GET", "POST", "PUT"][kind as usize];
            let mut r = format!("{method} {path} HTTP/1.1\r\nHost: h\r\n").into_bytes();
            for (n, v) in headers {
                r.extend_from_slice(format!("{n}: {}\r\n", v.trim()).as_bytes());
            }
            match kind {
                0 => r.extend_from_slice(b"\r\n"),
                1 => {
                    r.extend_from_slice(
                        format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes(),
                    );
                    r.extend_from_slice(&body);
                }
                _ => {
                    r.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                    for c in chunks {
                        r.extend_from_slice(format!("{:X};x=1\r\n", c.len()).as_bytes());
                        r.extend_from_slice(&c);
                        r.extend_from_slice(b"\r\n");
                    }
                    r.extend_from_slice(b"0\r\nX-Trailer: t\r\n\r\n");
                }
            }
            r
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_in_arbitrary_splits_never_panic_and_terminate(
        data in proptest::collection::vec(any::<u8>(), 0..600),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        drive(&split_at(&data, &cuts), small_limits());
        drive(&split_at(&data, &cuts), Limits::default());
    }

    #[test]
    fn request_like_garbage_never_panics(
        parts in proptest::collection::vec(
            prop_oneof![
                Just(&b"GET / HTTP/1.1\r\n"[..]), Just(&b"Host: h\r\n"[..]), Just(&b"\r\n"[..]),
                Just(&b"Transfer-Encoding: chunked\r\n"[..]), Just(&b"Content-Length: 3\r\n"[..]),
                Just(&b"5\r\nhello\r\n"[..]), Just(&b"0\r\n"[..]), Just(&b";a=\"b\""[..]),
                Just(&b"\n"[..]), Just(&b"\r"[..]), Just(&b" "[..]), Just(&b"abc"[..]),
                Just(&b"Expect: 100-continue\r\n"[..]), Just(&b"HEAD * HTTP/1.0\r\n"[..]),
            ],
            0..30,
        ),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let data = parts.concat();
        drive(&split_at(&data, &cuts), small_limits());
        drive(&split_at(&data, &cuts), Limits::default());
    }

    #[test]
    fn any_split_of_a_pipelined_stream_gives_the_same_requests(
        reqs in proptest::collection::vec(request(), 1..5),
        cuts in proptest::collection::vec(any::<usize>(), 0..20),
    ) {
        let stream = reqs.concat();
        let whole = drive(&[&stream], Limits::default());
        prop_assert_eq!(whole.0.len(), reqs.len());
        prop_assert_eq!(whole.1, None);
        let split = drive(&split_at(&stream, &cuts), Limits::default());
        prop_assert_eq!(&whole, &split);
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        prop_assert_eq!(&whole, &drive(&bytes, Limits::default()));
    }
}
