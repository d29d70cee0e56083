//! TLS termination (`--certfile`) through the real binary, every case under every model,
//! with a CA made at test time: static files and WSGI over TLS 1.2 and 1.3 with curl and
//! Python's ssl module; a request cut off by `--request-timeout` answered with an encrypted
//! 504; RSA, ECDSA and Ed25519 keys; clients refusing a wrong host name and
//! an expired certificate; client certificates required and optional; a stalled handshake
//! closed; a 50 MB file region; many requests on one connection; a PROXY header before the
//! TLS bytes; certificates re-read on HUP; bad certificate files refused at start.

#[path = "tls/client.rs"]
mod client;
mod common;
#[path = "tls/pki.rs"]
mod pki;

use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;

use client::Client;
use common::python::{apps_dir, wsgi_args};
use common::{eventually, model_args, Server, Site, HUNG};
use pki::{Issued, Key, Pki};
use rustls::version::{TLS12, TLS13};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn tls_args(issued: &Issued) -> Vec<String> {
    vec![
        "--certfile".into(),
        issued.cert.display().to_string(),
        "--keyfile".into(),
        issued.key.display().to_string(),
    ]
}

/// A static server over TLS.
fn static_tls(model: &str, site: &Site, issued: &Issued, extra: &[&str]) -> Server {
    let mut args = model_args(model);
    args.extend(site.root_arg());
    args.extend(tls_args(issued));
    args.extend(extra.iter().map(|s| s.to_string()));
    Server::start(&args)
}

/// The TLS environ app over TLS, with the site's files under `/files`.
fn wsgi_tls(model: &str, site: &Site, issued: &Issued, extra: &[&str]) -> Server {
    let mut args = wsgi_args(model, "tls_app:application", &apps_dir());
    args.push("--static".into());
    args.push(format!("/files={}", site.root.display()));
    args.extend(tls_args(issued));
    args.extend(extra.iter().map(|s| s.to_string()));
    Server::start(&args)
}

fn port(addr: &str) -> &str {
    addr.rsplit(':').next().unwrap()
}

/// curl to `https://HOST:PORT/PATH` (HOST resolved to 127.0.0.1): exit code, body, stderr.
fn curl(addr: &str, host: &str, ca: &Path, path: &str, extra: &[&str]) -> (i32, Vec<u8>, String) {
    let port = port(addr);
    let out = Command::new("curl")
        .args(["-sS", "--max-time", &HUNG.as_secs().to_string(), "--cacert"])
        .arg(ca)
        .args(["--resolve", &format!("{host}:{port}:127.0.0.1")])
        .args(extra)
        .arg(format!("https://{host}:{port}{path}"))
        .output()
        .expect("curl");
    let code = out.status.code().unwrap_or(-1);
    (
        code,
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn environ(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

/// Python's ssl module pinned to one TLS version: `(version line, status, body)`.
fn python_get(addr: &str, ca: &Path, path: &str, version: &str) -> (String, u16, Vec<u8>) {
    const SCRIPT: &str = r#"
import http.client, ssl, sys
ca, port, path, version = sys.argv[1:]
ctx = ssl.create_default_context(cafile=ca)
v = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}[version]
ctx.minimum_version = v
ctx.maximum_version = v
c = http.client.HTTPSConnection("localhost", int(port), context=ctx, timeout=60)
c.connect()
negotiated = c.sock.version()
c.request("GET", path)
r = c.getresponse()
body = r.read()
sys.stdout.write(f"{negotiated} {r.status}\n")
sys.stdout.flush()
sys.stdout.buffer.write(body)
"#;
    let out = Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(ca)
        .args([port(addr), path, version])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let at = out.stdout.iter().position(|&b| b == b'\n').unwrap();
    let first = String::from_utf8_lossy(&out.stdout[..at]).into_owned();
    let (version, status) = first.split_once(' ').unwrap();
    (
        version.to_string(),
        status.parse().unwrap(),
        out.stdout[at + 1..].to_vec(),
    )
}

fn first_der(pem: &Path) -> Vec<u8> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    CertificateDer::pem_file_iter(pem)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

per_model!(static_and_wsgi_over_tls_1_2_and_1_3, |model| {
    let pki = Pki::new("tls-basic");
    let site = Site::new("tls-basic");
    let server = wsgi_tls(model, &site, &pki.server(Key::EcdsaP256), &[]);
    let addr = &server.addr;
    for (flags, version) in [
        (&["--tlsv1.3"][..], "TLSv1.3"),
        (&["--tlsv1.2", "--tls-max", "1.2"][..], "TLSv1.2"),
    ] {
        let (code, body, err) = curl(addr, "localhost", &pki.ca, "/files/hello.txt", flags);
        assert_eq!(
            (code, body.as_slice()),
            (0, &b"hello, world\n"[..]),
            "{err}"
        );
        let (code, body, err) = curl(addr, "localhost", &pki.ca, "/env", flags);
        assert_eq!(code, 0, "{err}");
        let env = environ(&body);
        assert_eq!(env["wsgi.url_scheme"], "https");
        assert_eq!(env["HTTPS"], "on");
        assert_eq!(env["SSL_PROTOCOL"], version);
        assert!(
            env["SSL_CIPHER"].as_str().is_some_and(|c| !c.is_empty()),
            "{env}"
        );
        assert_eq!(env["SSL_TLS_SNI"], "localhost");
        assert_eq!(env["SSL_CLIENT_VERIFY"], "NONE");
        assert_eq!(env["REMOTE_ADDR"], "127.0.0.1");
    }
    for version in ["1.2", "1.3"] {
        let (negotiated, status, body) = python_get(addr, &pki.ca, "/files/hello.txt", version);
        assert_eq!((negotiated, status), (format!("TLSv{version}"), 200));
        assert_eq!(body, b"hello, world\n");
        let (_, status, body) = python_get(addr, &pki.ca, "/env", version);
        assert_eq!(status, 200);
        assert_eq!(environ(&body)["SSL_PROTOCOL"], format!("TLSv{version}"));
    }
});

per_model!(
    a_request_cut_off_by_the_timeout_gets_an_encrypted_504,
    |model| {
        // The watchdog answers a request stuck in the app (blocking models: from its own thread,
        // while the connection's thread is still in the app); under TLS the 504 must be
        // encrypted like any response, or Python's ssl fails on a bad record.
        let pki = Pki::new("tls-timeout");
        let mut args = wsgi_args(model, "stuck_app:application", &apps_dir());
        args.extend(["--request-timeout", "1"].map(String::from));
        args.extend(tls_args(&pki.server(Key::EcdsaP256)));
        let server = Server::start(&args);
        // /slow ends once cancelled; /stuck sleeps in C, so its worker exits and is replaced
        // (no master replaces a single process).
        let cases: &[(&str, &str)] = if model == "single" {
            &[("/slow", "1.3"), ("/slow", "1.2")]
        } else {
            &[("/slow", "1.3"), ("/stuck", "1.2")]
        };
        for (path, version) in cases {
            let started = std::time::Instant::now();
            let (negotiated, status, body) = python_get(&server.addr, &pki.ca, path, version);
            assert_eq!(
                (negotiated.as_str(), status),
                (format!("TLSv{version}").as_str(), 504),
                "{model} {path}: {}",
                String::from_utf8_lossy(&body)
            );
            assert!(
                started.elapsed() >= std::time::Duration::from_secs(1),
                "{model} {path}: cut off before --request-timeout"
            );
            // The server serves the next client.
            let (_, status, body) = python_get(&server.addr, &pki.ca, "/", version);
            assert_eq!(
                (status, body.as_slice()),
                (200, &b"ok"[..]),
                "{model} {path}"
            );
        }
        assert!(server.log_contains("timed out"), "{}", server.log_text());
    }
);

per_model!(rsa_ecdsa_and_ed25519_keys_serve, |model| {
    let pki = Pki::new("tls-keys");
    let site = Site::new("tls-keys");
    for key in [Key::Rsa, Key::EcdsaP256, Key::Ed25519] {
        let server = static_tls(model, &site, &pki.server(key), &[]);
        for flags in [&["--tlsv1.3"][..], &["--tlsv1.2", "--tls-max", "1.2"][..]] {
            let (code, body, err) = curl(&server.addr, "localhost", &pki.ca, "/hello.txt", flags);
            assert_eq!(
                (code, body.as_slice()),
                (0, &b"hello, world\n"[..]),
                "{key:?} {flags:?}: {err}"
            );
        }
    }
});

per_model!(
    clients_refuse_a_wrong_host_name_and_an_expired_certificate,
    |model| {
        let pki = Pki::new("tls-refused");
        let site = Site::new("tls-refused");
        let server = static_tls(model, &site, &pki.server(Key::EcdsaP256), &[]);
        let (code, body, err) = curl(&server.addr, "wrong.example", &pki.ca, "/hello.txt", &[]);
        assert_eq!(
            code, 60,
            "a certificate for localhost, asked for wrong.example: {err}"
        );
        assert!(body.is_empty());
        // The server goes on serving whoever asks for the right name.
        let (code, body, err) = curl(&server.addr, "localhost", &pki.ca, "/hello.txt", &[]);
        assert_eq!(
            (code, body.as_slice()),
            (0, &b"hello, world\n"[..]),
            "{err}"
        );
        drop(server);

        let server = static_tls(model, &site, &pki.expired_server(), &[]);
        let (code, body, err) = curl(&server.addr, "localhost", &pki.ca, "/hello.txt", &[]);
        assert_eq!(code, 60, "{err}");
        assert!(err.contains("expired"), "{err}");
        assert!(body.is_empty());
    }
);

per_model!(client_certificates_required_and_optional, |model| {
    let pki = Pki::new("tls-mtls");
    let stranger_ca = Pki::new("tls-mtls-stranger");
    let site = Site::new("tls-mtls");
    let server_cert = pki.server(Key::EcdsaP256);
    let alice = pki.client("alice");
    let sly = pki.client("sly, CN=admin + x");
    let mallory = stranger_ca.client("mallory");
    let with_cert = |who: &Issued| {
        vec![
            "--cert".to_string(),
            who.cert.display().to_string(),
            "--key".to_string(),
            who.key.display().to_string(),
        ]
    };
    let ca = pki.ca.display().to_string();
    for reqs in ["required", "optional"] {
        let server = wsgi_tls(
            model,
            &site,
            &server_cert,
            &["--ca-certs", &ca, "--cert-reqs", reqs],
        );
        let alice_args = with_cert(&alice);
        let alice_args: Vec<&str> = alice_args.iter().map(String::as_str).collect();
        let (code, body, err) = curl(&server.addr, "localhost", &pki.ca, "/env", &alice_args);
        assert_eq!(code, 0, "{reqs}: {err}");
        let env = environ(&body);
        assert_eq!(env["SSL_CLIENT_VERIFY"], "SUCCESS");
        let subject = env["SSL_CLIENT_S_DN"].as_str().unwrap();
        assert!(
            subject.contains("CN=alice") && subject.contains("O=Ironhorse Tests"),
            "{subject}"
        );
        assert!(env["SSL_CLIENT_I_DN"]
            .as_str()
            .unwrap()
            .contains("ironhorse test CA tls-mtls"));
        let pem = std::fs::read_to_string(&alice.cert).unwrap();
        assert_eq!(env["SSL_CLIENT_CERT"].as_str().unwrap().trim(), pem.trim());
        // A name the certificate's requester chose cannot pose as other attributes: its
        // special characters are escaped (RFC 4514).
        let args = with_cert(&sly);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, body, err) = curl(&server.addr, "localhost", &pki.ca, "/env", &args);
        assert_eq!(code, 0, "{reqs}: {err}");
        let subject = environ(&body)["SSL_CLIENT_S_DN"].to_string();
        assert!(subject.contains(r"CN=sly\\, CN=admin \\+ x"), "{subject}");
        assert!(!env["SSL_CLIENT_M_SERIAL"].as_str().unwrap().is_empty());

        // A certificate from another CA never passes.
        let mallory_args = with_cert(&mallory);
        let mallory_args: Vec<&str> = mallory_args.iter().map(String::as_str).collect();
        let (code, body, _) = curl(&server.addr, "localhost", &pki.ca, "/env", &mallory_args);
        assert_ne!(code, 0, "{reqs}: a stranger's certificate was accepted");
        assert!(body.is_empty());

        let (code, body, err) = curl(&server.addr, "localhost", &pki.ca, "/env", &[]);
        if reqs == "required" {
            assert_ne!(
                code,
                0,
                "no client certificate, yet served: {}",
                String::from_utf8_lossy(&body)
            );
            assert!(body.is_empty());
            // rustls's own client sees the refusal too, at the handshake or the first read.
            let config = client::config(&pki.ca, &[&TLS13], None);
            let refused =
                Client::connect(&server.addr, config, b"").and_then(|mut c| c.get("/env"));
            assert!(refused.is_err(), "{refused:?}");
        } else {
            assert_eq!(code, 0, "{err}");
            assert_eq!(environ(&body)["SSL_CLIENT_VERIFY"], "NONE");
        }
    }
});

per_model!(a_stalled_handshake_is_closed, |model| {
    let pki = Pki::new("tls-stall");
    let site = Site::new("tls-stall");
    let server = static_tls(
        model,
        &site,
        &pki.server(Key::EcdsaP256),
        &["--ssl-handshake-timeout", "1"],
    );
    for preamble in [&b""[..], &[0x16, 0x03, 0x01][..]] {
        // Connects, maybe starts a record, then says nothing more: the server must hang up.
        let mut sock = TcpStream::connect(&server.addr).unwrap();
        sock.set_read_timeout(Some(HUNG)).unwrap();
        std::io::Write::write_all(&mut sock, preamble).unwrap();
        let mut byte = [0u8; 1];
        match sock.read(&mut byte) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("expected the stalled handshake to be closed, got {other:?}"),
        }
    }
    // The server still serves.
    let (code, _, err) = curl(&server.addr, "localhost", &pki.ca, "/hello.txt", &[]);
    assert_eq!(code, 0, "{err}");
});

per_model!(a_50_mb_file_region_arrives_whole, |model| {
    let pki = Pki::new("tls-50mb");
    let site = Site::new("tls-50mb");
    let piece = common::big_bytes();
    let mut file = Vec::with_capacity(50 << 20);
    while file.len() < 50 << 20 {
        file.extend_from_slice(&piece);
    }
    file.truncate(50 << 20);
    std::fs::write(site.path("fifty.bin"), &file).unwrap();
    let expected = Sha256::digest(&file);
    drop(file);
    let server = static_tls(model, &site, &pki.server(Key::EcdsaP256), &[]);
    let (code, body, err) = curl(&server.addr, "localhost", &pki.ca, "/fifty.bin", &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(body.len(), 50 << 20);
    assert_eq!(Sha256::digest(&body), expected);
    // A range of it, too.
    let (code, body, err) = curl(
        &server.addr,
        "localhost",
        &pki.ca,
        "/fifty.bin",
        &["-r", "1000-2999999"],
    );
    assert_eq!((code, body.len()), (0, 2_999_000), "{err}");
});

per_model!(many_requests_on_one_tls_connection, |model| {
    let pki = Pki::new("tls-keepalive");
    let site = Site::new("tls-keepalive");
    let server = static_tls(model, &site, &pki.server(Key::EcdsaP256), &[]);
    let big = common::big_bytes();
    for versions in [&[&TLS13][..], &[&TLS12][..]] {
        let config = client::config(&pki.ca, versions, None);
        let mut conn = Client::connect(&server.addr, config, b"").unwrap();
        for i in 0..200 {
            let (status, body) = conn.get("/hello.txt").unwrap();
            assert_eq!(
                (status, body.as_slice()),
                (200, &b"hello, world\n"[..]),
                "request {i}"
            );
            if i % 50 == 0 {
                let (status, body) = conn.get("/big.bin").unwrap();
                assert_eq!(status, 200);
                assert!(body == big, "request {i}: big.bin differs");
            }
        }
    }
});

// RFC 8446 §6.1: whoever closes says close_notify first, the server closing an idle
// keep-alive connection too (without it the client cannot tell the end from a cut).
per_model!(an_idle_connection_is_closed_with_close_notify, |model| {
    let pki = Pki::new("tls-idle-close");
    let site = Site::new("tls-idle-close");
    let issued = pki.server(Key::EcdsaP256);
    let server = static_tls(model, &site, &issued, &["--keep-alive", "1"]);
    for versions in [&[&TLS13][..], &[&TLS12][..]] {
        let config = client::config(&pki.ca, versions, None);
        let mut conn = Client::connect(&server.addr, config, b"").unwrap();
        let (status, _) = conn.get("/hello.txt").unwrap();
        assert_eq!(status, 200);
        let rest = conn.read_to_close();
        assert!(
            rest.as_ref().is_ok_and(Vec::is_empty),
            "{model} {versions:?}: {rest:?}"
        );
    }
});

per_model!(a_proxy_header_comes_before_tls, |model| {
    let pki = Pki::new("tls-proxy");
    let site = Site::new("tls-proxy");
    let server = wsgi_tls(
        model,
        &site,
        &pki.server(Key::EcdsaP256),
        &["--proxy-protocol", "v1"],
    );
    let config = client::config(&pki.ca, &[&TLS13], None);
    let header = b"PROXY TCP4 203.0.113.7 127.0.0.1 56324 443\r\n";
    let mut conn = Client::connect(&server.addr, config.clone(), header).unwrap();
    let (status, body) = conn.get("/env").unwrap();
    assert_eq!(status, 200);
    let env = environ(&body);
    assert_eq!(env["REMOTE_ADDR"], "203.0.113.7");
    assert_eq!(env["REMOTE_PORT"], "56324");
    assert_eq!(env["wsgi.url_scheme"], "https");
    // Without the header, an allowed peer is refused (the TLS bytes are no PROXY header).
    assert!(Client::connect(&server.addr, config, b"")
        .and_then(|mut c| c.get("/env"))
        .is_err());
});

/// Connects once per name with Python's ssl (`None`: no SNI at all) and returns the SHA-256
/// of the certificate the server presented each time. Names are verified against the
/// certificate (`check`) except where the default is expected for an unknown name.
fn python_peer_certs(addr: &str, ca: &Path, names: &[(Option<&str>, bool)]) -> Vec<String> {
    const SCRIPT: &str = r#"
import hashlib, socket, ssl, sys
ca, port = sys.argv[1], int(sys.argv[2])
for case in sys.argv[3:]:
    check, name = case[0] == "1", case[2:] or None
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = check
    with socket.create_connection(("127.0.0.1", port), timeout=60) as raw:
        with ctx.wrap_socket(raw, server_hostname=name) as s:
            der = s.getpeercert(binary_form=True)
            s.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"hello, world\n"), answer
    print(hashlib.sha256(der).hexdigest())
"#;
    let cases = names
        .iter()
        .map(|(name, check)| format!("{}:{}", u8::from(*check), name.unwrap_or("")));
    let out = Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(ca)
        .arg(port(addr))
        .args(cases)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn der_sha256(pem: &Path) -> String {
    Sha256::digest(first_der(pem))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

per_model!(several_certificates_are_chosen_by_sni, |model| {
    let pki = Pki::new("tls-sni");
    let site = Site::new("tls-sni");
    let default = pki.server(Key::EcdsaP256);
    let two = pki.server_named(&["two.test", "*.two.test"]);
    let three = pki.server_named(&["three.test", "two.test"]);
    let mut args = model_args(model);
    args.extend(site.root_arg());
    for issued in [&default, &two, &three] {
        args.extend(tls_args(issued));
    }
    let server = Server::start(&args);
    let got = python_peer_certs(
        &server.addr,
        &pki.ca,
        &[
            (Some("localhost"), true),
            (Some("two.test"), true),
            (Some("www.two.test"), true),
            (Some("three.test"), true),
            (Some("unknown.test"), false),
            (None, false),
        ],
    );
    let (default, two, three) = (
        der_sha256(&default.cert),
        der_sha256(&two.cert),
        der_sha256(&three.cert),
    );
    // two.test is in both: the certificate given first wins; unknown names and clients
    // without SNI get the first certificate.
    assert_eq!(
        got,
        [&default, &two, &two, &three, &default, &default].map(String::as_str)
    );
});

#[test]
fn hup_rereads_the_certificates() {
    for model in common::models_with_workers() {
        eprintln!("--- model {model}");
        let pki = Pki::new("tls-hup");
        let site = Site::new("tls-hup");
        let (old, new) = (pki.server(Key::EcdsaP256), pki.server(Key::Ed25519));
        let live = Issued {
            cert: pki.dir.join("live-cert.pem"),
            key: pki.dir.join("live-key.pem"),
        };
        // A second certificate, chosen by SNI, is re-read too.
        let (old_two, new_two) = (
            pki.server_named(&["two.test"]),
            pki.server_named(&["two.test"]),
        );
        let live_two = Issued {
            cert: pki.dir.join("live-two-cert.pem"),
            key: pki.dir.join("live-two-key.pem"),
        };
        let install = |from: &Issued, two: &Issued| {
            for (from, to) in [(from, &live), (two, &live_two)] {
                std::fs::copy(&from.cert, &to.cert).unwrap();
                std::fs::copy(&from.key, &to.key).unwrap();
            }
        };
        install(&old, &old_two);
        let large: Vec<u8> = common::big_bytes().repeat(6);
        std::fs::write(site.path("large.bin"), &large).unwrap();
        let mut args: Vec<String> = ["--model", model, "-w", "2"].map(String::from).to_vec();
        args.extend(site.root_arg());
        args.extend(tls_args(&live));
        args.extend(tls_args(&live_two));
        let server = Server::start(&args);
        let config = client::config(&pki.ca, &[&TLS13], None);
        let two_cert = || {
            Client::connect_to(&server.addr, config.clone(), b"", "two.test")
                .map(|c| c.server_cert())
                .unwrap_or_default()
        };
        assert_eq!(two_cert(), first_der(&old_two.cert));

        let mut before = Client::connect(&server.addr, config.clone(), b"").unwrap();
        assert_eq!(before.get("/hello.txt").unwrap().0, 200);
        assert_eq!(before.server_cert(), first_der(&old.cert));
        // A transfer in flight across the reload.
        before.send_get("/large.bin").unwrap();
        before.read_some(1 << 20).unwrap();

        install(&new, &new_two);
        server.signal(1);
        let new_der = first_der(&new.cert);
        assert!(
            eventually(|| Client::connect(&server.addr, config.clone(), b"")
                .is_ok_and(|c| c.server_cert() == new_der)),
            "{model}: no connection got the new certificate; log: {}",
            server.log_text()
        );
        let new_two_der = first_der(&new_two.cert);
        assert!(
            eventually(|| two_cert() == new_two_der),
            "{model}: two.test did not get its new certificate"
        );
        // The connection made before finishes its transfer with the old certificate.
        let (status, body) = before.response().unwrap();
        assert_eq!(status, 200);
        assert!(body == large, "{model}: the transfer across HUP differs");
        assert_eq!(before.server_cert(), first_der(&old.cert));
    }
}

/// Without a master (`single`, `fork`, `thread`, `threadpool`, `event` and `async` at one
/// worker) a HUP re-reads the certificates in place, says so in one line, and never stops the
/// server (HUP's default action would); a bad new file is one error line, and the current
/// certificate stays.
#[test]
fn hup_rereads_the_certificates_without_a_master() {
    use ironhorse_process::{model::Model, Processes};
    let alone = common::models()
        .into_iter()
        .filter(|name| Model::named(name).unwrap().processes_for(1) != Processes::Prefork);
    for model in alone {
        eprintln!("--- model {model}");
        let pki = Pki::new("tls-hup-alone");
        let site = Site::new("tls-hup-alone");
        let (old, new) = (pki.server(Key::EcdsaP256), pki.server(Key::Ed25519));
        let live = Issued {
            cert: pki.dir.join("live-cert.pem"),
            key: pki.dir.join("live-key.pem"),
        };
        let install = |from: &Issued| {
            std::fs::copy(&from.cert, &live.cert).unwrap();
            std::fs::copy(&from.key, &live.key).unwrap();
        };
        install(&old);
        let mut server = static_tls(model, &site, &live, &[]);
        let config = client::config(&pki.ca, &[&TLS13], None);
        let served = || {
            Client::connect(&server.addr, config.clone(), b"")
                .map(|c| c.server_cert())
                .unwrap_or_default()
        };
        assert_eq!(served(), first_der(&old.cert));

        install(&new);
        server.signal(1);
        let new_der = first_der(&new.cert);
        assert!(
            eventually(|| served() == new_der),
            "{model}: no connection got the new certificate; log: {}",
            server.log_text()
        );
        assert!(server.log_contains(
            "SIGHUP: TLS certificates re-read; a configuration reload needs a master"
        ));

        // A broken file: one error line, the certificate served stays.
        std::fs::write(&live.cert, "not a certificate\n").unwrap();
        server.signal(1);
        assert!(server.log_contains("certificates not re-read"));
        assert!(server
            .log_text()
            .contains("[ERROR] SIGHUP: certificates not re-read"));
        assert_eq!(served(), new_der, "{model}: the certificate changed");
        assert_eq!(
            server
                .log_text()
                .matches("certificates not re-read")
                .count(),
            1,
            "{model}: {}",
            server.log_text()
        );
        assert!(
            server.child.try_wait().unwrap().is_none(),
            "{model}: HUP stopped the server"
        );
        assert_eq!(server.stop(HUNG), Some(0), "{model}");
    }
}

#[test]
fn bad_certificate_files_stop_the_start_with_one_line() {
    let pki = Pki::new("tls-bad");
    let site = Site::new("tls-bad");
    let (a, b) = (pki.server(Key::EcdsaP256), pki.server(Key::EcdsaP256));
    let not_pem = pki.dir.join("not-pem.pem");
    std::fs::write(&not_pem, "this is not a certificate\n").unwrap();
    let missing = pki.dir.join("missing.pem");
    let p = |path: &Path| path.display().to_string();
    let cases: Vec<(Vec<String>, String, &str)> = vec![
        (vec![p(&missing), p(&a.key)], p(&missing), "No such file"),
        (
            vec![p(&not_pem), p(&a.key)],
            p(&not_pem),
            "no certificate in the file",
        ),
        (
            vec![p(&a.key), p(&a.key)],
            p(&a.key),
            "no certificate in the file",
        ),
        (
            vec![p(&a.cert), p(&a.cert)],
            p(&a.cert),
            "no private key in the file",
        ),
        (
            vec![p(&a.cert), p(&b.key)],
            p(&b.key),
            "does not match the certificate",
        ),
    ];
    // Several certificates: one key each, and each must be selectable by a name of its own.
    let nameless = pki.server_named(&[]);
    let several: Vec<(Vec<String>, String, &str)> = vec![
        (
            vec![
                "--certfile",
                &p(&a.cert),
                "--certfile",
                &p(&b.cert),
                "--keyfile",
                &p(&a.key),
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            "--certfile is given 2 times but --keyfile once".into(),
            "each certificate needs its private key",
        ),
        (
            [tls_args(&a), tls_args(&b)].concat(),
            p(&b.cert),
            "every DNS name in it is served by an earlier --certfile",
        ),
        (
            [tls_args(&a), tls_args(&nameless)].concat(),
            p(&nameless.cert),
            "no DNS name in its subjectAltName",
        ),
        // Only RSA suites for an ECDSA key: no TLS 1.2 handshake could ever succeed.
        (
            [
                tls_args(&a),
                vec![
                    "--ciphers".into(),
                    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into(),
                ],
            ]
            .concat(),
            p(&a.key),
            "none of the TLS 1.2 suites in --ciphers",
        ),
    ];
    let single = cases.into_iter().map(|(files, named, problem)| {
        let pair = ["--certfile", &files[0], "--keyfile", &files[1]];
        (pair.map(String::from).to_vec(), named, problem)
    });
    for (tls, named, problem) in single.chain(several) {
        let mut args = vec!["-b".to_string(), "127.0.0.1:0".into()];
        args.extend(site.root_arg());
        args.extend(tls);
        let (code, stderr) = common::run_to_exit(&args);
        assert_eq!(code, Some(2), "{stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(
            lines[0].contains(&named) && lines[0].contains(problem),
            "{stderr}"
        );
    }
    let mut args = vec!["-b".to_string(), "127.0.0.1:0".into()];
    args.extend(site.root_arg());
    args.extend(tls_args(&a));
    args.extend(["--cert-reqs".into(), "required".into()]);
    let (code, stderr) = common::run_to_exit(&args);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--cert-reqs required needs --ca-certs"),
        "{stderr}"
    );
}

per_model!(ciphers_and_the_minimum_version_are_kept, |model| {
    let pki = Pki::new("tls-ciphers");
    let site = Site::new("tls-ciphers");
    let server = wsgi_tls(
        model,
        &site,
        &pki.server(Key::EcdsaP256),
        &[
            "--tls-min-version",
            "1.3",
            "--ciphers",
            "TLS13_CHACHA20_POLY1305_SHA256",
        ],
    );
    let (code, body, err) = curl(&server.addr, "localhost", &pki.ca, "/env", &[]);
    assert_eq!(code, 0, "{err}");
    let env = environ(&body);
    assert_eq!(env["SSL_CIPHER"], "TLS13_CHACHA20_POLY1305_SHA256");
    assert_eq!(env["SSL_PROTOCOL"], "TLSv1.3");
    let (code, body, _) = curl(
        &server.addr,
        "localhost",
        &pki.ca,
        "/env",
        &["--tlsv1.2", "--tls-max", "1.2"],
    );
    assert_ne!(code, 0, "TLS 1.2 accepted under --tls-min-version 1.3");
    assert!(body.is_empty());
});

per_model!(asgi_scopes_carry_the_tls_extension, |model| {
    if !["event", "async"].contains(&model) {
        return;
    }
    let pki = Pki::new("tls-asgi");
    let server_cert = pki.server(Key::EcdsaP256);
    let alice = pki.client("alice");
    let ca = pki.ca.display().to_string();
    let mut args = wsgi_args(model, "asgi_app:app", &apps_dir());
    args.extend(tls_args(&server_cert));
    args.extend([
        "--ca-certs".into(),
        ca,
        "--cert-reqs".into(),
        "optional".into(),
    ]);
    let server = Server::start(&args);
    let cert_args = [
        "--cert".to_string(),
        alice.cert.display().to_string(),
        "--key".to_string(),
        alice.key.display().to_string(),
    ];
    let cert_args: Vec<&str> = cert_args.iter().map(String::as_str).collect();
    let (code, body, err) = curl(&server.addr, "localhost", &pki.ca, "/scope", &cert_args);
    assert_eq!(code, 0, "{err}");
    let scope = environ(&body);
    assert_eq!(scope["scheme"], "https", "{scope}");
    let tls = &scope["extensions"]["tls"];
    let version = tls["tls_version"].as_u64().expect("tls_version");
    assert!([0x0303, 0x0304].contains(&version), "{tls}");
    assert!(tls["cipher_suite"].as_u64().is_some(), "{tls}");
    assert_eq!(tls["server_cert"], Value::Null, "{tls}");
    assert_eq!(tls["client_cert_error"], Value::Null, "{tls}");
    let pem = std::fs::read_to_string(&alice.cert).unwrap();
    assert_eq!(
        tls["client_cert_chain"][0].as_str().unwrap().trim(),
        pem.trim(),
        "{tls}"
    );
    assert!(
        tls["client_cert_name"]
            .as_str()
            .unwrap()
            .contains("CN=alice"),
        "{tls}"
    );
    // Without a client certificate: an empty chain and no name.
    let (code, body, err) = curl(&server.addr, "localhost", &pki.ca, "/scope", &[]);
    assert_eq!(code, 0, "{err}");
    let tls = environ(&body)["extensions"]["tls"].clone();
    assert_eq!(tls["client_cert_chain"], serde_json::json!([]), "{tls}");
    assert_eq!(tls["client_cert_name"], Value::Null, "{tls}");
});

per_model!(clients_trickling_a_head_over_tls_hold_no_thread, |model| {
    // The models that hand a thread or worker only a whole request (each with at most 8
    // threads or workers here: fewer than the trickling clients).
    if !["threadpool", "hybrid", "prefork"].contains(&model) {
        return;
    }
    let pki = Pki::new("tls-trickle");
    let site = Site::new("tls-trickle");
    let issued = pki.server(Key::EcdsaP256);
    let server = static_tls(model, &site, &issued, &["--header-timeout", "300"]);
    let config = client::config(&pki.ca, &[&TLS13], None);
    // Twelve clients finish the handshake, then send part of a head and stop there.
    let trickling: Vec<Client> = (0..12)
        .map(|_| {
            let mut c = Client::connect(&server.addr, config.clone(), b"").unwrap();
            c.send_raw(b"GET / HTTP/1.1\r\nHost: local").unwrap();
            c
        })
        .collect();
    // A normal client is served while they wait (without `has_work`, each of them held a
    // thread or the worker until --header-timeout).
    for _ in 0..3 {
        let mut normal = Client::connect(&server.addr, config.clone(), b"").unwrap();
        let (status, _) = normal.get("/").expect("served among trickling TLS clients");
        assert_eq!(status, 200);
    }
    drop(trickling);
});
