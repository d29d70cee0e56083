//! `--request-timeout` with `--static` mounts: the application then sits behind a router,
//! and the cancellation must still reach its thread (WSGI raises `TimeoutError` there).

mod common;

use common::client::{get, Conn};
use common::python::{apps_dir, wsgi_args};
use common::{wait_for, Server, Site};
use std::time::Duration;

per_model!(
    a_timed_out_request_behind_a_static_mount_is_cancelled,
    |model| {
        let site = Site::new(model);
        let mut args = wsgi_args(model, "stuck_app:application", &apps_dir());
        let mount = format!("/assets={}", site.root.display());
        args.extend(["--request-timeout", "1", "--static", &mount].map(String::from));
        let server = Server::start(&args);

        // /slow sleeps in short Python steps for 30 s: only the cancellation ends it early.
        let mut conn = Conn::open(&server.addr);
        conn.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
        let answer = conn.response("GET");
        assert_eq!(answer.status, 504, "{model}: {}", server.log_text());

        // The application thread got its TimeoutError (the router passed the cancel on).
        assert!(
            wait_for(
                || server.log_contains("TimeoutError"),
                Duration::from_secs(15)
            ),
            "{model}: {}",
            server.log_text()
        );
        // And it is free again: the application and the static mount both answer.
        assert_eq!(get(&server.addr, "/").status, 200, "{model}");
        assert_eq!(
            get(&server.addr, "/assets/style.css").status,
            200,
            "{model}"
        );
    }
);
