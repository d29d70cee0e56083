//! Real nginx (Debian's package) `uwsgi_pass` → ironhorse `--protocol uwsgi`, over a unix
//! socket and over TCP, every model: the app sees the request the client sent (method,
//! target, headers, body checked by SHA-256, chunked bodies de-chunked by nginx), the client
//! nginx saw and the scheme it was reached by (TLS at nginx, from Debian's `uwsgi_params`);
//! streams arrive as the app yields them (`uwsgi_buffering off`); HEAD, 404 and 500 pass
//! through; static mounts and the access log work as over HTTP.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::client::Conn;
use common::nginx::{self, Nginx};
use common::python::{apps_dir, wsgi_args};
use common::{temp_path, Server};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// nginx with two sites on loopback, each a plain and a TLS port: one to a unix socket, one
/// to a TCP address.
struct Front {
    _nginx: Nginx,
    /// (plain port, TLS port) of each site: unix first, TCP second.
    sites: [(u16, u16); 2],
}

fn start_front(binary: &Path, socket: &Path, tcp: &str) -> Front {
    let dir = nginx::folder("nginx-uwsgi");
    nginx::certificate(&dir, "app.example");
    let d = dir.display();
    let ports = [
        (nginx::free_port(), nginx::free_port()),
        (nginx::free_port(), nginx::free_port()),
    ];
    let site = |(plain, tls): (u16, u16), upstream: &str| {
        format!(
            "  server {{\n    listen 127.0.0.1:{plain}; listen 127.0.0.1:{tls} ssl;\n\
                 server_name app.example;\n\
                 ssl_certificate {d}/cert.pem; ssl_certificate_key {d}/key.pem;\n\
                 location / {{ include /etc/nginx/uwsgi_params; uwsgi_pass {upstream}; }}\n  }}\n"
        )
    };
    // Running as root, nginx's workers would drop to an unprivileged user that may not open
    // the server's socket file.
    let user = if nix::unistd::geteuid().is_root() {
        "user root;\n"
    } else {
        ""
    };
    let conf = format!(
        "{user}{head}  client_max_body_size 100m;\n  uwsgi_buffering off; uwsgi_request_buffering off;\n\
         {unix}{tcp}}}\n",
        head = nginx::conf_head(&dir),
        unix = site(ports[0], &format!("unix:{}", socket.display())),
        tcp = site(ports[1], tcp),
    );
    let all: Vec<u16> = ports.iter().flat_map(|(a, b)| [*a, *b]).collect();
    Front {
        _nginx: Nginx::start(binary, dir, &conf, &all),
        sites: ports,
    }
}

/// What curl got: status, headers (lower-case names) and body.
struct Got {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl Got {
    fn json(&self) -> Value {
        let text = String::from_utf8_lossy(&self.body);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }
}

/// curl from client address 127.0.0.2 with `args`, to `url`.
fn curl(url: &str, args: &[&str]) -> Got {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-k",
            "-i",
            "--max-time",
            "120",
            "--interface",
            "127.0.0.2",
        ])
        .args(["--resolve", &resolve(url)])
        .args(args)
        .arg(url)
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "{url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut raw = &out.stdout[..];
    let end = loop {
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a response head");
        // nginx's own `100 Continue` to curl's `Expect`.
        if !raw.starts_with(b"HTTP/1.1 100") {
            break end;
        }
        raw = &raw[end + 4..];
    };
    let headers = String::from_utf8_lossy(&raw[..end]).to_lowercase();
    let status = headers[9..12].parse().unwrap();
    Got {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    }
}

/// `app.example:PORT:127.0.0.1` for curl, from a URL on app.example.
fn resolve(url: &str) -> String {
    let port = url.split(':').nth(2).unwrap().split('/').next().unwrap();
    format!("app.example:{port}:127.0.0.1")
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Bytes that are not one byte repeated (a misplaced chunk changes the digest).
fn body_of(len: usize) -> Vec<u8> {
    let mut x: u32 = 12345;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect()
}

struct Files {
    dir: PathBuf,
    big: (PathBuf, String),
    small: (PathBuf, String),
}

fn files() -> Files {
    let dir = temp_path("uwsgi-files");
    std::fs::create_dir_all(dir.join("static")).unwrap();
    std::fs::write(dir.join("static/hello.txt"), "hello from a static mount\n").unwrap();
    let write = |name: &str, len: usize| {
        let bytes = body_of(len);
        let path = dir.join(name);
        std::fs::write(&path, &bytes).unwrap();
        (path, sha256_hex(&bytes))
    };
    Files {
        big: write("big.bin", 50 * 1024 * 1024),
        small: write("small.bin", 300 * 1024 + 7),
        dir: dir.clone(),
    }
}

/// Every case through one site of nginx: `plain` and `tls` are its ports.
fn cases(label: &str, (plain, tls): (u16, u16), files: &Files, server: &Server) {
    let url = |path: &str| format!("http://app.example:{plain}{path}");
    let ctx = || format!("{label}\n{}", server.log_text());

    let got = curl(&url("/env?x=1&y=%20z"), &["-H", "X-Test: hello"]);
    assert_eq!(got.status, 200, "{}", ctx());
    let env = got.json();
    assert_eq!(env["REQUEST_METHOD"], "GET", "{env}");
    assert_eq!(env["PATH_INFO"], "/env");
    assert_eq!(env["QUERY_STRING"], "x=1&y=%20z");
    assert_eq!(env["REMOTE_ADDR"], "127.0.0.2", "the client nginx saw");
    assert_eq!(env["wsgi.url_scheme"], "http");
    assert_eq!(env["HTTP_HOST"], "app.example");
    assert_eq!(env["HTTP_X_TEST"], "hello");
    assert_eq!(env["SERVER_PROTOCOL"], "HTTP/1.1");
    assert_eq!(env["HTTP_CONNECTION"], Value::Null);
    // The server the client reached is nginx's, as uwsgi_params names it (uWSGI's too).
    assert_eq!(env["SERVER_NAME"], "app.example", "{env}");
    assert_eq!(env["SERVER_PORT"], plain.to_string(), "{env}");

    let got = curl(&format!("https://app.example:{tls}/env"), &[]);
    assert_eq!(
        got.json()["wsgi.url_scheme"],
        "https",
        "HTTPS=on from uwsgi_params"
    );
    assert_eq!(got.json()["SERVER_PORT"], tls.to_string());

    let (path, sha) = &files.big;
    let data = format!("@{}", path.display());
    let got = curl(
        &url("/upload"),
        &[
            "--data-binary",
            &data,
            "-H",
            "Content-Type: application/octet-stream",
        ],
    );
    assert_eq!(got.status, 200, "{}", ctx());
    let env = got.json();
    assert_eq!(env["sha256"], sha.as_str(), "50 MB body");
    assert_eq!(env["size"], 50 * 1024 * 1024);
    assert_eq!(env["CONTENT_LENGTH"], "52428800");
    assert_eq!(env["CONTENT_TYPE"], "application/octet-stream");

    // A chunked request body: nginx reads it whole and sends it with its length.
    let (path, sha) = &files.small;
    let data = format!("@{}", path.display());
    let got = curl(
        &url("/upload"),
        &["--data-binary", &data, "-H", "Transfer-Encoding: chunked"],
    );
    let env = got.json();
    assert_eq!(env["sha256"], sha.as_str(), "chunked body {env}");
    assert_eq!(env["CONTENT_LENGTH"], (300 * 1024 + 7).to_string());
    assert_eq!(
        env["HTTP_TRANSFER_ENCODING"],
        Value::Null,
        "already de-chunked"
    );

    let got = curl(&url("/env"), &["-I"]);
    assert_eq!(got.status, 200);
    assert!(got.body.is_empty());
    let got = curl(&url("/nope"), &[]);
    assert_eq!((got.status, &got.body[..]), (404, &b"no such page\n"[..]));
    let got = curl(&url("/fail"), &[]);
    assert_eq!(got.status, 500, "{}", ctx());
    let got = curl(&url("/static/hello.txt"), &[]);
    assert_eq!(got.status, 200);
    assert_eq!(got.body, b"hello from a static mount\n");
    assert!(
        got.headers.contains("content-type: text/plain"),
        "{}",
        got.headers
    );

    stream_arrives_while_the_app_waits(plain, &files.dir.join(format!("release-{label}")));
}

/// The first event reaches the client while the app still waits for the release file, which
/// the test creates only after seeing it.
fn stream_arrives_while_the_app_waits(port: u16, release: &Path) {
    let mut conn = Conn::open(&format!("127.0.0.1:{port}"));
    let request = format!(
        "GET /events?release={} HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n",
        release.display()
    );
    conn.send(request.as_bytes());
    assert!(conn.wait_for_bytes(b"data: first\n\n"), "no first event");
    assert!(!conn.received().windows(8).any(|w| w == b"released"));
    std::fs::write(release, "").unwrap();
    assert!(
        conn.wait_for_bytes(b"data: released\n\n"),
        "no second event"
    );
}

per_model!(nginx_uwsgi_pass_over_a_unix_socket_and_tcp, |model| {
    let Some(binary) = nginx::binary() else {
        eprintln!("SKIPPED: nginx is not installed and apt-get could not install it");
        return;
    };
    let files = files();
    let socket = temp_path("uwsgi.sock");
    let log = files.dir.join("access.log");
    let mut args = wsgi_args(model, "uwsgi_app:application", &apps_dir());
    args.extend([
        "--protocol".into(),
        "uwsgi".into(),
        "-b".into(),
        format!("unix:{}", socket.display()),
        "--static".into(),
        format!("/static={}", files.dir.join("static").display()),
        "--access-logfile".into(),
        log.display().to_string(),
    ]);
    let server = Server::start(&args);
    let front = start_front(&binary, &socket, &server.addr);
    cases("unix", front.sites[0], &files, &server);
    cases("tcp", front.sites[1], &files, &server);

    // One access log line per request, as over HTTP: the client nginx saw, the request line.
    let found = common::eventually(|| {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines()
            .filter(|l| {
                l.starts_with("127.0.0.2 ") && l.contains("\"GET /env?x=1&y=%20z HTTP/1.1\" 200")
            })
            .count()
            == 2
    });
    assert!(
        found,
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    drop(front);
    drop(server);
    let _ = std::fs::remove_dir_all(&files.dir);
});
