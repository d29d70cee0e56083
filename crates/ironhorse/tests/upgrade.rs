//! The protocol hand-off: a connection leaves HTTP/1.1 for another protocol on the same
//! socket, with the bytes already received (`--protocol http+echo`: `Upgrade: echo` after a
//! `101`, or a prior-knowledge HTTP/2 preface), under every model.

mod common;

use common::client::Conn;
use common::{model_args, Server, Site};

fn serve(model: &str, protocol: &str, site: &Site) -> Server {
    let mut args = model_args(model);
    args.extend(["--protocol".into(), protocol.into()]);
    args.extend(["--root".into(), site.root.display().to_string()]);
    Server::start(&args)
}

per_model!(upgrade_switches_a_keep_alive_connection_to_echo, |model| {
    let site = Site::new(model);
    let server = serve(model, "http+echo", &site);
    let mut conn = Conn::open(&server.addr);
    // An ordinary request first: the switch happens mid-connection.
    conn.send(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.response("GET").text(), "hello, world\n");
    // Bytes for the new protocol ride in the same packet as the request head.
    conn.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly;");
    let switched = conn.response("GET");
    assert_eq!(switched.status, 101, "{model}: {}", server.log_text());
    assert_eq!(switched.header("upgrade"), Some("echo"));
    assert_eq!(switched.header("connection"), Some("Upgrade"));
    assert_eq!(conn.read_raw(6), b"early;", "{model}");
    // Not HTTP any more: anything is echoed, request-looking or not.
    conn.send(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(conn.read_raw(18), b"GET / HTTP/1.1\r\n\r\n", "{model}");
});

per_model!(
    a_prior_knowledge_preface_is_handed_to_the_registered_protocol,
    |model| {
        let site = Site::new(model);
        let server = serve(model, "http+echo", &site);
        let preface = ironhorse_protocol::H2_PREFACE;
        let mut conn = Conn::open(&server.addr);
        // In two writes: a session that sees part of it waits for the rest before deciding
        // (the unit tests pin that down; here the two may arrive together).
        conn.stream.set_nodelay(true).unwrap();
        conn.send(&preface[..5]);
        conn.send(&preface[5..]);
        conn.send(b"frames");
        let mut expected = preface.to_vec();
        expected.extend_from_slice(b"frames");
        assert_eq!(conn.read_raw(expected.len()), expected, "{model}");
    }
);

per_model!(without_a_registered_protocol_nothing_switches, |model| {
    let site = Site::new(model);
    let server = serve(model, "http", &site);
    let mut conn = Conn::open(&server.addr);
    conn.send(
        b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
    );
    let r = conn.response("GET");
    assert_eq!(r.status, 200, "{model}");
    assert_eq!(r.text(), "hello, world\n");
    // The preface is a bad HTTP/1.1 request: answered with an error, never echoed.
    let mut conn = Conn::open(&server.addr);
    conn.send(ironhorse_protocol::H2_PREFACE);
    let r = conn.response("GET");
    assert!(r.status >= 400, "{model}: {}", r.status);
});
