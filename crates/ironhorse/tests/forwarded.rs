//! Trusted forwarding headers through the real binary, under every model: a trusted proxy
//! (loopback, the default) names the client, scheme and host; an untrusted peer's headers
//! change nothing; a Unix-socket peer is trusted; contradictions are refused.

mod common;

use std::io::{Read, Write};

use common::client::Conn;
use common::python::{apps_dir, wsgi_args};
use common::{temp_path, Server};
use serde_json::Value;

fn serve(model: &str, extra: &[&str]) -> Server {
    let mut args = wsgi_args(model, "forwarded_app:application", &apps_dir());
    args.extend(extra.iter().map(|s| s.to_string()));
    Server::start(&args)
}

/// Sends a GET with `headers` (`Name: value` lines) and returns the status and the environ.
fn environ(server: &Server, headers: &str) -> (u16, Value) {
    let mut conn = Conn::open(&server.addr);
    conn.send(format!("GET /env HTTP/1.1\r\nHost: app.internal:8000\r\n{headers}\r\n").as_bytes());
    let r = conn.response("GET");
    let env = if r.status == 200 {
        serde_json::from_slice(&r.body).expect("json")
    } else {
        Value::Null
    };
    (r.status, env)
}

/// What a client behind the proxy tries, and what the proxy adds.
const SPOOFED: &str = "X-Forwarded-For: 6.6.6.6, 203.0.113.7\r\n\
    X-Forwarded-Proto: https\r\n\
    X-Forwarded-Host: evil.example\r\n\
    X-Forwarded_For: 1.1.1.1\r\n\
    Forwarded: for=6.6.6.6;proto=https;host=evil.example\r\n";

per_model!(a_trusted_proxy_names_the_client_and_scheme, |model| {
    // Defaults: loopback is trusted; X-Forwarded-For and the scheme headers are believed,
    // X-Forwarded-Host and Forwarded are not (a proxy rarely overwrites those).
    let server = serve(model, &[]);
    let (status, env) = environ(&server, SPOOFED);
    assert_eq!(status, 200, "{}", server.log_text());
    assert_eq!(env["REMOTE_ADDR"], "203.0.113.7", "{env}");
    assert_eq!(env["REMOTE_HOST"], "203.0.113.7");
    assert_eq!(
        env["REMOTE_PORT"], "0",
        "the proxy's port is not the client's"
    );
    assert_eq!(env["wsgi.url_scheme"], "https");
    assert_eq!(env["HTTP_HOST"], "app.internal:8000");
    assert_eq!(env["SERVER_NAME"], "127.0.0.1");
    // The headers themselves stay visible to the app.
    assert_eq!(env["HTTP_X_FORWARDED_FOR"], "6.6.6.6, 203.0.113.7");
    // No forwarding headers: the connection's own peer and scheme.
    let (_, env) = environ(&server, "");
    assert_eq!(env["REMOTE_ADDR"], "127.0.0.1");
    assert_ne!(env["REMOTE_PORT"], "0");
    assert_eq!(env["wsgi.url_scheme"], "http");
    // Contradictory scheme headers from a trusted proxy: refused, like gunicorn.
    let (status, _) = environ(
        &server,
        "X-Forwarded-Proto: http\r\nX-Forwarded-Ssl: on\r\n",
    );
    assert_eq!(status, 400);
    assert!(server.log_contains("contradictory scheme headers"));
});

per_model!(an_untrusted_peers_headers_change_nothing, |model| {
    // The test connects from 127.0.0.1, which this list does not trust.
    let server = serve(
        model,
        &[
            "--forwarded-allow-ips",
            "10.0.0.0/8,fd00::/8",
            "--forwarded-headers",
            "x-forwarded-for,x-forwarded-host,forwarded",
        ],
    );
    let (status, env) = environ(&server, SPOOFED);
    assert_eq!(status, 200, "{}", server.log_text());
    assert_eq!(env["REMOTE_ADDR"], "127.0.0.1", "{env}");
    assert_eq!(env["wsgi.url_scheme"], "http");
    assert_eq!(env["HTTP_HOST"], "app.internal:8000");
    assert_eq!(env["HTTP_X_FORWARDED_FOR"], "6.6.6.6, 203.0.113.7");
    assert_eq!(
        env["HTTP_FORWARDED"],
        "for=6.6.6.6;proto=https;host=evil.example"
    );
    // Contradictions from someone whose headers mean nothing are not an error either.
    let (status, _) = environ(
        &server,
        "X-Forwarded-Proto: http\r\nX-Forwarded-Ssl: on\r\n",
    );
    assert_eq!(status, 200);
});

per_model!(a_unix_socket_peer_is_trusted_with_every_header, |model| {
    let path = temp_path("fwd.sock");
    let mut args = wsgi_args(model, "forwarded_app:application", &apps_dir());
    args.extend(
        [
            "-b",
            &format!("unix:{}", path.display()),
            "--forwarded-headers",
            "x-forwarded-for,x-forwarded-host,forwarded",
        ]
        .map(String::from),
    );
    let server = Server::start_raw(&args);
    let ask = |headers: &str| -> Value {
        let mut s = std::os::unix::net::UnixStream::connect(&path).expect("connect");
        s.set_read_timeout(Some(common::HUNG)).unwrap();
        s.write_all(
            format!(
                "GET /env HTTP/1.1\r\nHost: app.internal\r\nConnection: close\r\n{headers}\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw).into_owned();
        assert!(
            text.starts_with("HTTP/1.1 200"),
            "{text}\n{}",
            server.log_text()
        );
        let body = text.split_once("\r\n\r\n").unwrap().1;
        serde_json::from_str(body).expect("json")
    };
    // RFC 7239 wins over X-Forwarded-*; the trusted 127.0.0.1 hop is skipped.
    let env = ask(
        "X-Forwarded-For: 192.0.2.1\r\n\
         Forwarded: for=\"[2001:db8::17]:4711\";proto=https;host=\"shop.example\", for=127.0.0.1\r\n",
    );
    assert_eq!(env["REMOTE_ADDR"], "2001:db8::17", "{env}");
    assert_eq!(env["REMOTE_PORT"], "4711");
    assert_eq!(env["wsgi.url_scheme"], "https");
    assert_eq!(env["HTTP_HOST"], "shop.example");
    assert_eq!(env["SERVER_NAME"], "shop.example");
    assert_eq!(env["SERVER_PORT"], "443");
    let env = ask("X-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Host: shop.example:8443\r\n");
    assert_eq!(env["REMOTE_ADDR"], "192.0.2.1");
    assert_eq!(env["HTTP_HOST"], "shop.example:8443");
    assert_eq!(env["SERVER_PORT"], "8443");
    // Without forwarding headers a Unix-socket peer has no address at all.
    let env = ask("");
    assert_eq!(env["REMOTE_ADDR"], "");
    drop(server);
    let _ = std::fs::remove_file(&path);
});
