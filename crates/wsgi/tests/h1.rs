//! End to end through the real parser: `Service::call` with a parsed `RequestHead` and a body
//! decoded by `ServerConn` (chunked), as a driver would pass them.

mod common;

use std::io;

use common::*;
use ironhorse_app::{Request, Service};
use ironhorse_h1::{BodyRead, ServerConn};
use serde_json::Value;

/// The driver's body reader, minus the socket: everything is already buffered.
struct ConnBody<'a>(&'a mut ServerConn);

impl io::Read for ConnBody<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.read_body(buf) {
            Ok(BodyRead::Data(n)) => Ok(n),
            Ok(BodyRead::End) => Ok(0),
            Ok(BodyRead::NeedMore) => Err(io::ErrorKind::UnexpectedEof.into()),
            Err(e) => Err(io::Error::other(format!("{e:?}"))),
        }
    }
}

fn call(app: &dyn Service, raw: &[u8]) -> Collected {
    let mut conn = ServerConn::new(Default::default());
    conn.feed(raw);
    let head = conn.next_request().unwrap().expect("a complete head");
    let info = common::conn();
    let resp = app.call(Request {
        head: &head,
        body: &mut ConnBody(&mut conn),
        conn: &info,
        sink: None,
        body_length: None,
    });
    collect(resp)
}

#[test]
fn parsed_request_environ() {
    let app = load("apps:echo_environ");
    assert!(app.may_block());
    let resp = call(
        &app,
        b"GET /x%2Fy/%C3%A9?q=1 HTTP/1.1\r\nHost: a\r\nAccept: x\r\nAccept: y\r\nX_Bad: 1\r\n\r\n",
    );
    let env: Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(env["PATH_INFO"], "/x/y/\u{c3}\u{a9}");
    assert_eq!(env["QUERY_STRING"], "q=1");
    assert_eq!(env["RAW_URI"], "/x%2Fy/%C3%A9?q=1");
    assert_eq!(env["HTTP_HOST"], "a");
    assert_eq!(env["HTTP_ACCEPT"], "x, y");
    assert_eq!(env["SERVER_PROTOCOL"], "HTTP/1.1");
    assert!(env.get("HTTP_X_BAD").is_none());
    assert!(env.get("CONTENT_LENGTH").is_none());
}

#[test]
fn parsed_chunked_body_through_wsgi_input() {
    let app = load("apps:input_all");
    let resp = call(
        &app,
        b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
    );
    assert_eq!(resp.text(), "7:efg");
    let env_app = load("apps:echo_environ");
    let resp = call(
        &env_app,
        b"POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Type: text/x\r\n\r\nabc",
    );
    let env: Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(env["CONTENT_LENGTH"], "3");
    assert_eq!(env["CONTENT_TYPE"], "text/x");
}

#[test]
fn validator_on_a_parsed_post() {
    let resp = call(
        &load("apps:validated"),
        b"POST /v?a=1 HTTP/1.0\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert_eq!((resp.status, resp.text().as_str()), (200, "got:hello"));
}
