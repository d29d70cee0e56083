//! A uwsgi request packet as the HTTP/1.x request it stands for: nginx parsed the client's
//! request once and sent its parts as CGI variables; this puts them back together as a
//! request head, so the server answers it through its one HTTP path (the same environ,
//! static mounts and access log as over HTTP).
//!
//! What the variables become:
//! * request line: `REQUEST_METHOD`, the target from `REQUEST_URI` (the client's raw target)
//!   or else `PATH_INFO` (percent-encoded again) and `QUERY_STRING`, and `SERVER_PROTOCOL`
//!   (`HTTP/1.0` stays 1.0, anything else is served as HTTP/1.1);
//! * headers: every `HTTP_*` variable (`_` becomes `-`), `CONTENT_TYPE`, `CONTENT_LENGTH`
//!   (nginx sends request bodies whole, de-chunked, with their length: it buffers chunked
//!   bodies even under `uwsgi_request_buffering off`); hop-by-hop headers the proxy already
//!   acted on (`Transfer-Encoding`, `Connection`, `Expect`, `Upgrade`, ...) are dropped (one
//!   request per connection is the server's part: nginx never sends a second one unasked);
//! * the connection: `REMOTE_ADDR`/`REMOTE_PORT` (the client), `HTTPS`/`REQUEST_SCHEME`/
//!   `UWSGI_SCHEME` (https), `SERVER_ADDR` or `SERVER_NAME` (when an address) with
//!   `SERVER_PORT`, and `SERVER_NAME`/`SERVER_PORT` as given, for the application's own
//!   (uWSGI passes them on as nginx sent them).
//!
//! Values that could not have come from a parsed HTTP request (a CR or LF in a value, a
//! space in the target, a name that is not a token) are errors: the packet is refused rather
//! than spliced into a head.

use std::net::{IpAddr, SocketAddr};

use super::Packet;

/// The request a packet stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The request line and header fields, ending with the empty line.
    pub head: Vec<u8>,
    /// `REMOTE_ADDR`:`REMOTE_PORT` (port 0 when absent), when an address.
    pub client: Option<SocketAddr>,
    /// The address the client reached (`SERVER_ADDR` or an address `SERVER_NAME`, with
    /// `SERVER_PORT`), when both are known.
    pub server: Option<SocketAddr>,
    /// The client's request came over TLS.
    pub https: bool,
    /// `SERVER_NAME` and `SERVER_PORT` as the proxy named them (nginx: `$server_name`,
    /// `$server_port`), when both are there and the port is a number.
    pub server_name: Option<(String, u16)>,
}

/// Why a packet cannot be a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("uwsgi request without REQUEST_METHOD")]
    NoMethod,
    #[error("uwsgi request: REQUEST_METHOD is not a token")]
    BadMethod,
    #[error("uwsgi request without REQUEST_URI or PATH_INFO")]
    NoTarget,
    #[error("uwsgi request: the target has spaces or control characters")]
    BadTarget,
    #[error("uwsgi request: CONTENT_LENGTH is not a number")]
    BadContentLength,
    #[error("uwsgi request: variable {0} is not a header name")]
    BadName(String),
    #[error("uwsgi request: variable {0} has a line break or NUL in its value")]
    BadValue(String),
}

/// Header variables not passed on: framing and connection management the proxy did itself
/// (`Content-Length` and `Content-Type` come from their CGI variables instead).
const DROPPED: &[&[u8]] = &[
    b"CONTENT_LENGTH",
    b"CONTENT_TYPE",
    b"TRANSFER_ENCODING",
    b"CONNECTION",
    b"KEEP_ALIVE",
    b"PROXY_CONNECTION",
    b"TE",
    b"TRAILER",
    b"UPGRADE",
    b"EXPECT",
    b"HOST",
];

/// The request `packet` stands for.
pub fn to_http(packet: &Packet) -> Result<HttpRequest, RequestError> {
    let var = |name: &str| packet.var(name).filter(|v| !v.is_empty());
    let method = var("REQUEST_METHOD").ok_or(RequestError::NoMethod)?;
    if !method.iter().all(|&b| is_tchar(b)) {
        return Err(RequestError::BadMethod);
    }
    let target = target(var("REQUEST_URI"), var("PATH_INFO"), var("QUERY_STRING"))?;
    let version: &[u8] = match var("SERVER_PROTOCOL") {
        Some(b"HTTP/1.0") => b"HTTP/1.0",
        _ => b"HTTP/1.1",
    };
    let mut head = Vec::with_capacity(256);
    for part in [method, b" ", &target, b" ", version, b"\r\n"] {
        head.extend_from_slice(part);
    }
    let host = var("HTTP_HOST").or(var("SERVER_NAME"));
    if let Some(host) = host {
        put_field(&mut head, b"Host", host, "HTTP_HOST")?;
    }
    if let Some(kind) = var("CONTENT_TYPE") {
        put_field(&mut head, b"Content-Type", kind, "CONTENT_TYPE")?;
    }
    if let Some(len) = var("CONTENT_LENGTH") {
        if !len.iter().all(u8::is_ascii_digit) {
            return Err(RequestError::BadContentLength);
        }
        put_field(&mut head, b"Content-Length", len, "CONTENT_LENGTH")?;
    }
    for (key, value) in &packet.vars {
        let Some(name) = key.strip_prefix(b"HTTP_") else {
            continue;
        };
        if DROPPED.contains(&name) {
            continue;
        }
        let text = || String::from_utf8_lossy(key).into_owned();
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(RequestError::BadName(text()));
        }
        let name: Vec<u8> = name
            .iter()
            .map(|&b| if b == b'_' { b'-' } else { b })
            .collect();
        put_field(&mut head, &name, value, &text())?;
    }
    head.extend_from_slice(b"\r\n");
    Ok(HttpRequest {
        head,
        client: client(var("REMOTE_ADDR"), var("REMOTE_PORT")),
        server: server(
            var("SERVER_ADDR").or(var("SERVER_NAME")),
            var("SERVER_PORT"),
        ),
        https: is_https(packet),
        server_name: server_name(var("SERVER_NAME"), var("SERVER_PORT")),
    })
}

fn server_name(name: Option<&[u8]>, port: Option<&[u8]>) -> Option<(String, u16)> {
    let name = std::str::from_utf8(name?).ok()?;
    let port = std::str::from_utf8(port?).ok()?.parse().ok()?;
    let printable = name.bytes().all(|b| b.is_ascii_graphic());
    printable.then(|| (name.to_string(), port))
}

/// The raw target when nginx sent it, else the decoded path encoded again, with the query.
fn target(
    raw: Option<&[u8]>,
    path: Option<&[u8]>,
    query: Option<&[u8]>,
) -> Result<Vec<u8>, RequestError> {
    let target = match (raw, path) {
        (Some(raw), _) => raw.to_vec(),
        (None, Some(path)) => {
            let mut t = Vec::with_capacity(path.len() + 1);
            if !path.starts_with(b"/") {
                t.push(b'/');
            }
            for &b in path {
                if b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&b) {
                    t.push(b);
                } else {
                    t.extend_from_slice(format!("%{b:02X}").as_bytes());
                }
            }
            if let Some(q) = query {
                t.push(b'?');
                t.extend_from_slice(q);
            }
            t
        }
        (None, None) => return Err(RequestError::NoTarget),
    };
    if target.iter().any(|&b| b <= b' ' || b == 0x7f) {
        return Err(RequestError::BadTarget);
    }
    Ok(target)
}

fn put_field(head: &mut Vec<u8>, name: &[u8], value: &[u8], var: &str) -> Result<(), RequestError> {
    if value.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(RequestError::BadValue(var.to_string()));
    }
    for part in [name, b": ", value, b"\r\n"] {
        head.extend_from_slice(part);
    }
    Ok(())
}

fn address(ip: Option<&[u8]>, port: Option<&[u8]>) -> Option<(IpAddr, Option<u16>)> {
    let ip = std::str::from_utf8(ip?).ok()?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    let port = port
        .and_then(|p| std::str::from_utf8(p).ok())
        .and_then(|p| p.parse().ok());
    Some((ip.parse().ok()?, port))
}

fn client(ip: Option<&[u8]>, port: Option<&[u8]>) -> Option<SocketAddr> {
    address(ip, port).map(|(ip, port)| SocketAddr::new(ip, port.unwrap_or(0)))
}

fn server(ip: Option<&[u8]>, port: Option<&[u8]>) -> Option<SocketAddr> {
    match address(ip, port)? {
        (ip, Some(port)) => Some(SocketAddr::new(ip, port)),
        (_, None) => None,
    }
}

fn is_https(packet: &Packet) -> bool {
    let is = |name: &str, want: &[&[u8]]| {
        packet
            .var(name)
            .is_some_and(|v| want.iter().any(|w| v.eq_ignore_ascii_case(w)))
    };
    is("HTTPS", &[b"on", b"1"])
        || is("REQUEST_SCHEME", &[b"https"])
        || is("UWSGI_SCHEME", &[b"https"])
        || is("wsgi.url_scheme", &[b"https"])
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uwsgi::{encode, parse, Limits};
    use crate::Parsed;

    fn packet(vars: &[(&str, &str)]) -> Packet {
        let vars: Vec<(&[u8], &[u8])> = vars
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
            .collect();
        match parse(&encode(0, &vars).unwrap(), &Limits::default()) {
            Parsed::Done(p) => p,
            other => panic!("{other:?}"),
        }
    }

    /// What Debian's `uwsgi_params` sends for `curl -d x 'https://h/a%20b?q=1'`.
    fn nginx_like() -> Vec<(&'static str, &'static str)> {
        vec![
            ("QUERY_STRING", "q=1"),
            ("REQUEST_METHOD", "POST"),
            ("CONTENT_TYPE", "application/x-www-form-urlencoded"),
            ("CONTENT_LENGTH", "1"),
            ("REQUEST_URI", "/a%20b?q=1"),
            ("PATH_INFO", "/a b"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("REQUEST_SCHEME", "https"),
            ("HTTPS", "on"),
            ("REMOTE_ADDR", "203.0.113.9"),
            ("REMOTE_PORT", "51000"),
            ("SERVER_PORT", "443"),
            ("SERVER_NAME", "h"),
            ("HTTP_HOST", "h"),
            ("HTTP_USER_AGENT", "curl/7"),
            ("HTTP_CONTENT_LENGTH", "1"),
            ("HTTP_CONTENT_TYPE", "application/x-www-form-urlencoded"),
            ("HTTP_TRANSFER_ENCODING", "chunked"),
            ("HTTP_EXPECT", "100-continue"),
            ("HTTP_X_REQUEST_ID", "abc"),
        ]
    }

    #[test]
    fn an_nginx_packet_is_the_client_request() {
        let r = to_http(&packet(&nginx_like())).unwrap();
        assert_eq!(
            String::from_utf8(r.head).unwrap(),
            "POST /a%20b?q=1 HTTP/1.1\r\nHost: h\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1\r\n\
             USER-AGENT: curl/7\r\nX-REQUEST-ID: abc\r\n\r\n"
        );
        assert_eq!(r.client, Some("203.0.113.9:51000".parse().unwrap()));
        assert_eq!(r.server, None, "SERVER_NAME h is not an address");
        assert!(r.https);
    }

    #[test]
    fn without_request_uri_the_path_is_encoded_again() {
        let r = to_http(&packet(&[
            ("REQUEST_METHOD", "GET"),
            ("PATH_INFO", "/a b/ü"),
            ("QUERY_STRING", "x=1"),
            ("SERVER_PROTOCOL", "HTTP/1.0"),
            ("SERVER_NAME", "127.0.0.1"),
            ("SERVER_PORT", "8080"),
            ("REMOTE_ADDR", "::1"),
        ]))
        .unwrap();
        let head = String::from_utf8(r.head).unwrap();
        assert!(
            head.starts_with("GET /a%20b/%C3%BC?x=1 HTTP/1.0\r\nHost: 127.0.0.1\r\n"),
            "{head}"
        );
        assert_eq!(r.client, Some("[::1]:0".parse().unwrap()));
        assert_eq!(r.server, Some("127.0.0.1:8080".parse().unwrap()));
        assert!(!r.https);
    }

    #[test]
    fn what_no_parsed_request_could_carry_is_refused() {
        let with = |extra: (&'static str, &'static str)| {
            let mut vars = nginx_like();
            vars.push(extra);
            to_http(&packet(&vars))
        };
        assert_eq!(
            with(("HTTP_X_EVIL", "a\r\nContent-Length: 5")),
            Err(RequestError::BadValue("HTTP_X_EVIL".into()))
        );
        assert_eq!(
            with(("HTTP_X(Y", "1")),
            Err(RequestError::BadName("HTTP_X(Y".into()))
        );
        assert_eq!(
            to_http(&packet(&[
                ("REQUEST_METHOD", "GET"),
                ("REQUEST_URI", "/a b")
            ])),
            Err(RequestError::BadTarget)
        );
        assert_eq!(
            to_http(&packet(&[("REQUEST_METHOD", "G T"), ("REQUEST_URI", "/")])),
            Err(RequestError::BadMethod)
        );
        assert_eq!(
            to_http(&packet(&[("REQUEST_URI", "/")])),
            Err(RequestError::NoMethod)
        );
        assert_eq!(
            to_http(&packet(&[("REQUEST_METHOD", "GET")])),
            Err(RequestError::NoTarget)
        );
        assert_eq!(
            to_http(&packet(&[
                ("REQUEST_METHOD", "GET"),
                ("REQUEST_URI", "/"),
                ("CONTENT_LENGTH", "-1")
            ])),
            Err(RequestError::BadContentLength)
        );
    }
}
