//! Real nginx (Debian's package, installed with apt-get when missing) in front of ironhorse,
//! on loopback, with the shipped `deploy/nginx/ironhorse_proxy_params`: the app sees the
//! client nginx saw, the scheme nginx was reached by (TLS terminated by nginx) and the host
//! the client asked for — and none of what the client tried to forge. Every model.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::python::{apps_dir, wsgi_args};
use common::{temp_path, Server};
use serde_json::Value;

/// nginx's binary, installing Debian's package if needed; `None` when it cannot be had.
fn nginx() -> Option<PathBuf> {
    let find = || {
        ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
    };
    if let Some(path) = find() {
        return Some(path);
    }
    let installed = Command::new("sh")
        .args([
            "-c",
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        eprintln!("apt-get could not install nginx-light");
    }
    find()
}

/// A port free right now on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Nginx {
    _process: common::nginx::Nginx,
    https: u16,
    http: u16,
}

fn start_nginx(binary: &Path, upstream: &str) -> Nginx {
    let dir = temp_path("nginx");
    std::fs::create_dir_all(&dir).unwrap();
    // nginx's workers drop to an unprivileged user when it runs as root.
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    common::nginx::certificate(&dir, "shop.example");
    let params =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/nginx/ironhorse_proxy_params");
    let (https, http) = (free_port(), free_port());
    let d = dir.display();
    let conf = format!(
        "worker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n  access_log off;\n  client_max_body_size 64m;\n\
           client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
           upstream ironhorse {{ server {upstream} max_fails=0; keepalive 8; keepalive_timeout 4s; }}\n\
           server {{\n\
             listen 127.0.0.1:{https} ssl;\n    listen 127.0.0.1:{http};\n\
             server_name shop.example;\n\
             ssl_certificate {d}/cert.pem; ssl_certificate_key {d}/key.pem;\n\
             location / {{ include {params}; proxy_pass http://ironhorse; }}\n\
           }}\n}}\n",
        params = params.display()
    );
    Nginx {
        _process: common::nginx::Nginx::start(binary, dir, &conf, &[https, http]),
        https,
        http,
    }
}

/// `forwarded_app` under `model`, with nginx in front; `None` (said) without nginx.
fn forwarded_app_behind_nginx(model: &str) -> Option<(Server, Nginx)> {
    let Some(binary) = nginx() else {
        eprintln!("SKIPPED: nginx is not installed and apt-get could not install it");
        return None;
    };
    let server = Server::start(&wsgi_args(model, "forwarded_app:application", &apps_dir()));
    let nginx = start_nginx(&binary, &server.addr);
    Some((server, nginx))
}

/// A GET through nginx with curl, from the client address `from`; the app's JSON answer.
fn curl(from: &str, url: &str, resolve: Option<String>, headers: &[&str]) -> Value {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "-k",
        "--fail-with-body",
        "--max-time",
        "60",
        "--interface",
        from,
    ]);
    if let Some(r) = resolve {
        cmd.args(["--resolve", &r]);
    }
    for h in headers {
        cmd.args(["-H", h]);
    }
    let out = cmd.arg(url).output().expect("curl");
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{url}: {body} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// What a client tries to forge; the shipped params append to or drop each of them.
const FORGED: [&str; 5] = [
    "X-Forwarded-For: 6.6.6.6",
    "X-Forwarded-Ssl: off",
    "X-Forwarded-Proto: http",
    "X-Forwarded-Host: evil.example",
    "Forwarded: for=6.6.6.6;proto=http;host=evil.example",
];

per_model!(
    nginx_in_front_gives_the_app_the_real_client_scheme_and_host,
    |model| {
        // Default forwarding settings: nginx connects from 127.0.0.1, which is trusted.
        let Some((server, nginx)) = forwarded_app_behind_nginx(model) else {
            return;
        };

        // HTTPS at nginx, from client 127.0.0.2, with forged headers.
        let url = format!("https://shop.example:{}/env", nginx.https);
        let resolve = format!("shop.example:{}:127.0.0.1", nginx.https);
        let env = curl("127.0.0.2", &url, Some(resolve), &FORGED);
        assert_eq!(
            env["REMOTE_ADDR"],
            "127.0.0.2",
            "{env}\n{}",
            server.log_text()
        );
        assert_eq!(env["wsgi.url_scheme"], "https");
        assert_eq!(env["HTTP_HOST"], "shop.example");
        // The client's X-Forwarded-For is kept, with the address nginx saw appended.
        assert_eq!(env["HTTP_X_FORWARDED_FOR"], "6.6.6.6, 127.0.0.2");
        assert_eq!(env["HTTP_X_FORWARDED_PROTO"], "https");
        assert_eq!(env["HTTP_X_FORWARDED_HOST"], Value::Null);
        assert_eq!(env["HTTP_FORWARDED"], Value::Null);

        // Plain HTTP at nginx, from 127.0.0.3, twice (the second over a kept upstream connection).
        for _ in 0..2 {
            let env = curl(
                "127.0.0.3",
                &format!("http://127.0.0.1:{}/env", nginx.http),
                None,
                &["X-Forwarded-Proto: https", "X-Forwarded-Ssl: on"],
            );
            assert_eq!(env["REMOTE_ADDR"], "127.0.0.3", "{env}");
            assert_eq!(env["wsgi.url_scheme"], "http");
            assert_eq!(env["HTTP_HOST"], "127.0.0.1");
        }
    }
);

// An app that answers an upload without reading it (a 401, a 413 of its own): nginx, still
// sending the body it buffered, must get the whole answer, not a reset (which it turns into
// a 502): the server reads and drops the rest of the body before it closes.
per_model!(
    an_early_answer_to_an_upload_reaches_the_client_through_nginx,
    |model| {
        let Some((_server, nginx)) = forwarded_app_behind_nginx(model) else {
            return;
        };
        let body = temp_path("upload");
        std::fs::write(&body, vec![b'x'; 30 << 20]).unwrap();
        for round in 0..3 {
            let out = Command::new("curl")
                .args([
                    "-sS",
                    "--max-time",
                    "60",
                    "-H",
                    "Expect:",
                    "-o",
                    "/dev/null",
                ])
                .args(["-w", "%{http_code}", "--data-binary"])
                .arg(format!("@{}", body.display()))
                .arg(format!("http://127.0.0.1:{}/upload", nginx.http))
                .output()
                .expect("curl");
            let status = String::from_utf8_lossy(&out.stdout);
            assert_eq!(
                status,
                "200",
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let _ = std::fs::remove_file(&body);
    }
);

/// The shipped site (`deploy/nginx/ironhorse.conf`) is valid nginx: `nginx -t` on it, with
/// only its certificate paths, static folder and ports pointed at this test's files.
#[test]
fn the_shipped_site_passes_nginx_t() {
    let Some(binary) = nginx() else {
        eprintln!("SKIPPED: nginx is not installed and apt-get could not install it");
        return;
    };
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/nginx");
    let dir = temp_path("nginx-t");
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.display().to_string();
    let site = std::fs::read_to_string(deploy.join("ironhorse.conf"))
        .unwrap()
        .replace(
            "/etc/letsencrypt/live/example.com/fullchain.pem",
            &format!("{d}/cert.pem"),
        )
        .replace(
            "/etc/letsencrypt/live/example.com/privkey.pem",
            &format!("{d}/key.pem"),
        )
        .replace(
            "include ironhorse_proxy_params",
            &format!(
                "include {}",
                deploy.join("ironhorse_proxy_params").display()
            ),
        )
        .replace("include uwsgi_params", "include /etc/nginx/uwsgi_params")
        .replace("/srv/app/static/", &format!("{d}/"))
        .replace("listen 443", &format!("listen 127.0.0.1:{}", free_port()))
        .replace("listen [::]:443", &format!("listen [::1]:{}", free_port()))
        .replace("listen 80", &format!("listen 127.0.0.1:{}", free_port()))
        .replace("listen [::]:80", &format!("listen [::1]:{}", free_port()));
    std::fs::write(dir.join("site.conf"), site).unwrap();
    std::fs::write(
        dir.join("nginx.conf"),
        format!("pid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{ include {d}/site.conf; }}\n"),
    )
    .unwrap();
    // `nginx -t` loads the certificates.
    let _ = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=example.com", "-keyout"])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let out = Command::new(&binary)
        .arg("-t")
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .output()
        .expect("nginx -t");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
