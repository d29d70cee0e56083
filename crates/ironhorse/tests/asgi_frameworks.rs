//! Real ASGI frameworks, unmodified, in the test virtualenv: FastAPI (JSON, path and query
//! parameters, a request model, `StreamingResponse`, background tasks, lifespan state, a
//! WebSocket endpoint), Starlette, Django (its ASGI handler with async views, and Channels
//! with a consumer on the in-memory channel layer), Litestar and Quart, under every model
//! that hosts ASGI.
//!
//! Needs `IRONHORSE_TEST_VENV` (a virtualenv with requirements-test.txt; `scripts/venv.sh`).

mod common;

use std::process::Command;

use common::client::{get, Conn};
use common::{eventually, python, Server};

fn start(model: &str, spec: &str) -> Server {
    start_with(model, spec, &[])
}

/// As a user would name it: `--interface asgi`.
fn start_asgi(model: &str, spec: &str) -> Server {
    start_with(model, spec, &["--interface", "asgi"])
}

fn start_with(model: &str, spec: &str, extra: &[&str]) -> Server {
    let mut args = vec![
        "--model".to_string(),
        model.into(),
        spec.into(),
        "--chdir".into(),
        python::apps_dir().display().to_string(),
        "--virtualenv".into(),
        python::venv().display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    Server::start(&args)
}

fn for_each_asgi_model(body: impl Fn(&str) + std::panic::RefUnwindSafe) {
    let models: Vec<&str> = common::models()
        .into_iter()
        .filter(|m| matches!(*m, "event" | "async"))
        .collect();
    let mut failed = Vec::new();
    for model in models {
        eprintln!("--- model {model}");
        if std::panic::catch_unwind(|| body(model)).is_err() {
            failed.push(model);
        }
    }
    assert!(failed.is_empty(), "failed under --model {failed:?}");
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

fn ws_case(case: &str, addr: &str) -> serde_json::Value {
    ws_case_with(case, addr, &[])
}

fn ws_case_with(case: &str, addr: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(python::venv().join("bin/python"))
        .arg(python::apps_dir().join("ws_client.py"))
        .args([case, addr])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn fastapi_unmodified() {
    for_each_asgi_model(|model| {
        let server = start(model, "asgi_fastapi_app:app");
        let item = get(&server.addr, "/items/42?q=find%20me");
        assert_eq!(item.status, 200);
        assert_eq!(
            json(&item.body),
            serde_json::json!({"item_id": 42, "q": "find me", "greeting": "hello from lifespan"})
        );
        assert_eq!(get(&server.addr, "/items/not-a-number").status, 422);

        check_post_and_stream(&server.addr, "fastapi");

        let mut conn = Conn::open(&server.addr);
        conn.send(b"POST /background/job7 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(json(&conn.response("POST").body)["queued"], "job7");
        assert!(eventually(|| get(&server.addr, "/done")
            .text()
            .contains("job7")));

        assert_eq!(
            ws_case("fastapi_ws", &server.addr),
            serde_json::json!({"echo": "ping"})
        );
    });
}

#[test]
fn starlette_unmodified() {
    for_each_asgi_model(|model| {
        let server = start(model, "asgi_starlette_app:app");
        let mut conn = Conn::open(&server.addr);
        conn.send(b"POST /?a=1&b=two HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world");
        let response = conn.response("POST");
        assert_eq!(
            json(&response.body),
            serde_json::json!({"method": "POST", "path": "/", "query": {"a": "1", "b": "two"}, "length": 11})
        );
        assert_eq!(get(&server.addr, "/users/ada").text(), "user ada");
        assert_eq!(get(&server.addr, "/missing").status, 404);
        assert_eq!(
            ws_case("starlette_ws", &server.addr),
            serde_json::json!({"reversed": "cba"})
        );
    });
}

/// What every framework app of this file answers alike: a JSON route with a path and a
/// query parameter, a JSON body in and out, and a streamed (chunked) response.
fn check_json_and_stream(addr: &str, framework: &str) {
    let item = get(addr, "/items/42?q=find%20me");
    assert_eq!(item.status, 200, "{framework}: {}", item.text());
    assert_eq!(
        json(&item.body),
        serde_json::json!({"item_id": 42, "q": "find me", "framework": framework})
    );
    check_post_and_stream(addr, framework);
}

/// A JSON body in and out (`POST /items`), and a streamed response (`GET /stream`).
fn check_post_and_stream(addr: &str, framework: &str) {
    let body = br#"{"name": "widget", "price": 2.5}"#;
    let mut conn = Conn::open(addr);
    conn.send(
        format!(
            "POST /items HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    conn.send(body);
    let created = conn.response("POST");
    assert_eq!(created.status, 200, "{framework}: {}", created.text());
    assert_eq!(
        json(&created.body),
        serde_json::json!({"name": "widget", "double": 5.0})
    );

    let stream = get(addr, "/stream");
    assert_eq!(stream.status, 200, "{framework}");
    assert_eq!(stream.header("transfer-encoding"), Some("chunked"));
    assert_eq!(stream.text(), "0\n1\n2\n3\n4\n", "{framework}");
}

#[test]
fn django_async_views_unmodified() {
    for_each_asgi_model(|model| {
        let server = start_asgi(model, "djasgi.asgi:application");
        check_json_and_stream(&server.addr, "django");
        assert_eq!(get(&server.addr, "/missing").status, 404);
        // Django's own handler takes HTTP only: it raises on a WebSocket before accepting.
        assert_eq!(
            ws_case_with("refused", &server.addr, &["/ws"])["status"],
            500
        );
    });
}

#[test]
fn django_channels_unmodified() {
    for_each_asgi_model(|model| {
        let server = start_asgi(model, "djasgi.asgi_channels:application");
        check_json_and_stream(&server.addr, "django");
        assert_eq!(
            ws_case("reverse", &server.addr),
            serde_json::json!({"reply": "olleh", "close": 1000})
        );
        // Through the in-memory channel layer, to both members of the group.
        assert_eq!(
            ws_case("room", &server.addr),
            serde_json::json!({"replies": ["olleh", "olleh"]})
        );
    });
}

/// A framework app with the common routes and a WebSocket endpoint answering reversed.
fn check_framework(spec: &str, framework: &str) {
    for_each_asgi_model(|model| {
        let server = start_asgi(model, spec);
        check_json_and_stream(&server.addr, framework);
        assert_eq!(get(&server.addr, "/missing").status, 404);
        assert_eq!(
            ws_case("reverse", &server.addr),
            serde_json::json!({"reply": "olleh", "close": 1000})
        );
    });
}

#[test]
fn litestar_unmodified() {
    check_framework("asgi_litestar_app:app", "litestar");
}

#[test]
fn quart_unmodified() {
    check_framework("asgi_quart_app:app", "quart");
}

#[test]
fn loop_uvloop_runs_the_app_on_uvloop() {
    for_each_asgi_model(|model| {
        let mut args = vec![
            "--model".to_string(),
            model.into(),
            "asgi_plain:app".into(),
            "--chdir".into(),
            python::apps_dir().display().to_string(),
            "--virtualenv".into(),
            python::venv().display().to_string(),
            "--loop".into(),
            "uvloop".into(),
        ];
        let server = Server::start(&args);
        assert!(server.log_contains("ASGI event loop: uvloop"));
        assert_eq!(get(&server.addr, "/").text(), "plain asgi");
        drop(server);
        args.truncate(args.len() - 4);
        args.extend(["--loop".into(), "asyncio".into()]);
        let server = Server::start(&args);
        assert!(server.log_contains("ASGI event loop: asyncio"));
    });
}
