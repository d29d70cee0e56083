//! Real nginx's stream module (Debian's `libnginx-mod-stream`, installed with apt-get when
//! missing) in front of `ironhorse --proxy-protocol`, on loopback, every model: nginx's
//! `proxy_protocol on` names the client it accepted (127.0.0.2), which the application
//! sees; a direct connection from an allowed peer without a header is closed; a peer outside
//! `--proxy-allow-from` is served as itself and may not send a header.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::client::Conn;
use common::python::{apps_dir, wsgi_args};
use common::{temp_path, Server};
use serde_json::Value;

const STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";

/// nginx and its stream module, installing Debian's packages if needed; `None` when they
/// cannot be had.
fn nginx_with_stream() -> Option<PathBuf> {
    let binary = || {
        ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .map(PathBuf::from)
            .into_iter()
            .find(|p| p.exists())
    };
    if binary().is_none() || !Path::new(STREAM_MODULE).exists() {
        let script = "apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
                      apt-get install -y -qq nginx-light libnginx-mod-stream";
        let ok = Command::new("sh").args(["-c", script]).status();
        if !ok.is_ok_and(|s| s.success()) {
            eprintln!("apt-get could not install nginx-light and libnginx-mod-stream");
        }
    }
    binary().filter(|_| Path::new(STREAM_MODULE).exists())
}

/// nginx relaying TCP from its port to `upstream`, PROXY v1 header first.
struct StreamProxy {
    _process: common::nginx::Nginx,
    port: u16,
}

impl StreamProxy {
    fn start(binary: &Path, upstream: &str) -> StreamProxy {
        let dir = temp_path("nginx-stream");
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.display();
        let conf = format!(
            "load_module {STREAM_MODULE};\nworker_processes 1;\ndaemon off;\n\
             pid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             stream {{ server {{ listen 127.0.0.1:{port}; proxy_pass {upstream}; \
             proxy_protocol on; }} }}\n"
        );
        StreamProxy {
            _process: common::nginx::Nginx::start(binary, dir, &conf, &[port]),
            port,
        }
    }
}

/// A GET with curl from the client address `from` (and `extra` options): whether it
/// succeeded, and the body.
fn curl(from: &str, url: &str, extra: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "60", "--interface", from, url])
        .args(extra)
        .output()
        .expect("curl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

per_model!(nginx_proxy_protocol_names_the_client, |model| {
    let Some(binary) = nginx_with_stream() else {
        eprintln!("SKIPPED: nginx with its stream module is not installed and apt-get could not install it");
        return;
    };
    // Default --proxy-allow-from: 127.0.0.1 and ::1, where nginx connects from.
    let mut args = wsgi_args(model, "forwarded_app:application", &apps_dir());
    args.extend(["--proxy-protocol", "v1"].map(String::from));
    let server = Server::start(&args);
    let nginx = StreamProxy::start(&binary, &server.addr);

    // Through nginx from 127.0.0.2: the application sees that client.
    let (ok, body) = curl(
        "127.0.0.2",
        &format!("http://127.0.0.1:{}/env", nginx.port),
        &[],
    );
    assert!(ok, "{body}\n{}", server.log_text());
    let env: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(env["REMOTE_ADDR"], "127.0.0.2", "{env}");
    assert_ne!(env["REMOTE_PORT"], "0");

    // Directly from 127.0.0.1 (allowed, so a header is required) without one: closed.
    let mut conn = Conn::open(&server.addr);
    conn.send(b"GET /env HTTP/1.1\r\nHost: t\r\n\r\n");
    let mut rest = Vec::new();
    let _ = conn.stream.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    assert!(server.log_contains("no PROXY protocol header"));

    // Directly from 127.0.0.2 (not allowed): served as itself...
    let (ok, body) = curl("127.0.0.2", &format!("http://{}/env", server.addr), &[]);
    assert!(ok, "{body}");
    let env: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(env["REMOTE_ADDR"], "127.0.0.2", "{env}");
    // ... but its own PROXY header is refused.
    let (ok, body) = curl(
        "127.0.0.2",
        &format!("http://{}/env", server.addr),
        &["--haproxy-protocol"],
    );
    assert!(!ok, "{body}");
    assert!(server.log_contains("a PROXY header from a peer not in --proxy-allow-from"));
});
