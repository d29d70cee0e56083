//! Heads between HTTP/2 and the application seam. A request's pseudo-header fields and
//! fields are rebuilt as an HTTP/1.1 head and parsed by h1, so that HTTP/2 requests meet the
//! same validation, limits and errors (`Error::status`) as HTTP/1.1 ones; the head then
//! says it came over HTTP/2. Responses lose the fields HTTP/2 forbids (RFC 9113 §8.2.2).

use bytes::Bytes;
use ironhorse_app::{HeaderList, RequestHead, Version};
use ironhorse_h1::{Limits, ServerConn, REASON_FIELD};

/// Rebuilds `req`'s head; `Err(status)` for a request h1 refuses (a client mistake).
/// `ended`: its HEADERS frame ended the stream (no body); a body that follows without
/// `content-length` is one of unknown length, as a chunked HTTP/1.1 one.
pub(crate) fn request_head<B>(
    req: &http::Request<B>,
    ended: bool,
    limits: Limits,
) -> Result<RequestHead, u16> {
    let uri = req.uri();
    let target = match uri.path_and_query() {
        Some(pq) if !pq.as_str().is_empty() => pq.as_str(),
        _ if req.method() == http::Method::OPTIONS => "*",
        _ => return Err(400),
    };
    let mut wire = Vec::with_capacity(256);
    wire.extend_from_slice(req.method().as_str().as_bytes());
    wire.push(b' ');
    wire.extend_from_slice(target.as_bytes());
    wire.extend_from_slice(b" HTTP/1.1\r\n");
    // `:authority` is the host (RFC 9113 §8.3.1); a `Host` field only when it is absent.
    let authority = uri.authority().map(|a| a.as_str());
    if let Some(authority) = authority {
        field(&mut wire, b"host", authority.as_bytes());
    }
    // Cookie fields may arrive split; they are one field again for HTTP/1.1 (§8.2.3).
    let mut cookies: Vec<&[u8]> = Vec::new();
    for (name, value) in req.headers() {
        match name.as_str() {
            "host" if authority.is_some() => {}
            "cookie" => cookies.push(value.as_bytes()),
            name => field(&mut wire, name.as_bytes(), value.as_bytes()),
        }
    }
    if !cookies.is_empty() {
        field(&mut wire, b"cookie", &cookies.join(&b"; "[..]));
    }
    wire.extend_from_slice(b"\r\n");
    let mut parser = ServerConn::new(limits);
    parser.feed(&wire);
    match parser.next_request() {
        Ok(Some(mut head)) => {
            head.set_version(Version::Http2);
            if !ended {
                head.set_body_of_unknown_length();
            }
            Ok(head)
        }
        Ok(None) => Err(431),
        Err(e) => Err(e.status()),
    }
}

fn field(wire: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    wire.extend_from_slice(name);
    wire.extend_from_slice(b": ");
    wire.extend_from_slice(value);
    wire.extend_from_slice(b"\r\n");
}

/// Fields that are HTTP/1.1's framing or connection management, never sent over HTTP/2
/// (`te` is a request field; the h2 crate would reset a stream whose response carried one).
fn is_connection_specific(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
        "te",
    ]
    .iter()
    .any(|n| name.eq_ignore_ascii_case(n))
}

/// The response head for the application's answer; `len` becomes `content-length`.
/// Fields HTTP/2 cannot carry are dropped (an application's own `content-length` too: the
/// server knows the length), and its `date`, which the server sets, as over HTTP/1.1 (a
/// second one would repeat a singleton field).
pub(crate) fn response_head(
    status: u16,
    headers: &HeaderList,
    len: Option<u64>,
) -> http::Response<()> {
    let mut builder = http::Response::builder().status(
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR),
    );
    for (name, value) in headers {
        if name == REASON_FIELD
            || is_connection_specific(name)
            || name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("date")
        {
            continue;
        }
        let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_bytes(value),
        ) else {
            continue;
        };
        builder = builder.header(name, value);
    }
    builder = builder.header(http::header::DATE, &ironhorse_h1::http_date_now()[..]);
    // 205 Reset Content has no content (RFC 9110 §15.3.6), whatever the application wrote.
    let len = if status == 205 { Some(0) } else { len };
    if let Some(len) = len.filter(|_| status != 204 && status != 304) {
        builder = builder.header(http::header::CONTENT_LENGTH, len);
    }
    builder.body(()).unwrap_or_else(|_| {
        let mut fallback = http::Response::new(());
        *fallback.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}

/// Trailer fields for the end of a stream (ASGI `http.response.trailers`); fields HTTP/2
/// cannot carry, or that are not valid field names and values, are dropped.
pub(crate) fn trailer_fields(fields: &HeaderList) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (name, value) in fields {
        if is_connection_specific(name) || name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_bytes(value),
        ) {
            map.append(name, value);
        }
    }
    map
}

/// A short plain-text answer (a refused request): head and body.
pub(crate) fn plain(status: u16) -> (http::Response<()>, Bytes) {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let body = Bytes::from(format!("{status} {reason}\n"));
    let headers: HeaderList = vec![("content-type".into(), b"text/plain; charset=utf-8".to_vec())];
    (
        response_head(status, &headers, Some(body.len() as u64)),
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_becomes_an_http2_head_with_its_authority_and_joined_cookies() {
        let req = http::Request::builder()
            .method("POST")
            .uri("https://example.com:8443/a/b?x=1")
            .header("cookie", "a=1")
            .header("cookie", "b=2")
            .header("content-length", "3")
            .body(())
            .unwrap();
        let head = request_head(&req, true, Limits::default()).unwrap();
        assert_eq!(head.method(), "POST");
        assert_eq!(head.path(), "/a/b");
        assert_eq!(head.query(), "x=1");
        assert_eq!(head.host(), Some("example.com:8443"));
        assert_eq!(head.header("cookie"), Some(&b"a=1; b=2"[..]));
        assert_eq!(head.version(), Version::Http2);
        assert_eq!(head.version().as_str(), "HTTP/2.0");
    }

    #[test]
    fn a_bad_request_is_a_client_error() {
        let req = http::Request::builder()
            .uri("http://x/")
            .header("content-length", "nope")
            .body(())
            .unwrap();
        assert_eq!(
            request_head(&req, true, Limits::default()).unwrap_err(),
            400
        );
    }

    #[test]
    fn connection_fields_are_dropped_and_the_length_is_the_servers() {
        let headers: HeaderList = vec![
            ("Connection".into(), b"close".to_vec()),
            ("Content-Length".into(), b"99".to_vec()),
            ("TE".into(), b"gzip".to_vec()),
            ("X-A".into(), b"1".to_vec()),
            ("Date".into(), b"Mon, 01 Jan 2001 00:00:00 GMT".to_vec()),
        ];
        let head = response_head(200, &headers, Some(5));
        assert!(head.headers().get("connection").is_none());
        assert!(head.headers().get("te").is_none());
        assert_eq!(head.headers()["content-length"], "5");
        assert_eq!(head.headers()["x-a"], "1");
        let dates: Vec<_> = head.headers().get_all("date").iter().collect();
        assert_eq!(dates.len(), 1, "the server's date only");
        assert_ne!(dates[0], "Mon, 01 Jan 2001 00:00:00 GMT");
        let reset = response_head(205, &Vec::new(), Some(4));
        assert_eq!(reset.headers()["content-length"], "0");
    }
}
