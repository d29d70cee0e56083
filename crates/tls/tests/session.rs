//! The TLS session sans IO: a rustls client and the server session exchange bytes through
//! memory, fed in pieces of every size, so the wrapper's bookkeeping (handshake, plaintext
//! hand-over, bounded encryption of file regions, close_notify) is checked without sockets.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ironhorse_app::{ConnInfo, FileRegion};
use ironhorse_protocol::hooks::Detached;
use ironhorse_protocol::output::Output;
use ironhorse_protocol::session::{Cutoff, Link, Protocol, Session, Step};
use ironhorse_protocol::Echo;
use ironhorse_tls::{
    CertFiles, CertReqs, MinVersion, ServerConfigSource, TlsConfig, TlsProtocol, TlsSettings,
};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore};

struct Pki {
    dir: std::path::PathBuf,
    ca_der: Vec<u8>,
}

impl Pki {
    fn new(tag: &str) -> (Pki, TlsSettings) {
        let dir = std::env::temp_dir().join(format!("ih-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = ca.self_signed(&ca_key).unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = leaf.signed_by(&key, &ca, &ca_key).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        let settings = TlsSettings {
            certs: vec![CertFiles {
                certfile: dir.join("cert.pem"),
                keyfile: dir.join("key.pem"),
            }],
            ca_certs: None,
            cert_reqs: CertReqs::None,
            min_version: MinVersion::Tls12,
            ciphers: None,
            handshake_timeout: Duration::from_secs(10),
        };
        let pki = Pki {
            dir,
            ca_der: ca.der().to_vec(),
        };
        (pki, settings)
    }

    fn client(&self) -> ClientConnection {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone().into()).unwrap();
        let config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap()).unwrap()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn link() -> Link {
    Link {
        waker: Arc::new(|| {}),
        executor: None,
        hooks: Arc::new(Detached),
        batch: None,
    }
}

fn conn() -> ConnInfo {
    let mut conn = ConnInfo::unix();
    conn.peer = Some("127.0.0.1:5000".parse().unwrap());
    conn
}

/// What a run saw.
#[derive(Default)]
struct Run {
    plaintext: Vec<u8>,
    /// The most wire bytes one `advance` queued.
    largest_advance: usize,
    last: Option<Step>,
    close_notify: bool,
}

/// Drives `session` and `client` until the session closes or nothing moves, feeding the
/// server the client's bytes in pieces of `split`.
fn exchange(session: &mut dyn Session, client: &mut ClientConnection, split: usize) -> Run {
    let mut run = Run::default();
    let (mut out, mut scratch) = (Output::default(), Vec::new());
    for _ in 0..10_000 {
        let mut wire = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut wire).unwrap();
        }
        for piece in wire.chunks(split) {
            session.receive(piece);
        }
        let step = session.advance(&mut out);
        let mut from_server = Vec::new();
        out.take_plain(usize::MAX, &mut scratch, &mut |b| {
            from_server.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        run.largest_advance = run.largest_advance.max(from_server.len());
        let mut rest = &from_server[..];
        loop {
            if !rest.is_empty() {
                client.read_tls(&mut rest).unwrap();
                client.process_new_packets().unwrap();
            }
            drain_client(client, &mut run);
            if rest.is_empty() {
                break;
            }
        }
        run.last = Some(step);
        let idle = wire.is_empty() && from_server.is_empty() && step == Step::Read;
        if step == Step::Close || idle {
            break;
        }
    }
    run
}

/// Moves the client's plaintext into `run` (rustls holds a bounded amount).
fn drain_client(client: &mut ClientConnection, run: &mut Run) {
    let mut chunk = [0u8; 65536];
    loop {
        match client.reader().read(&mut chunk) {
            Ok(0) => {
                run.close_notify = true;
                return;
            }
            Ok(n) => run.plaintext.extend_from_slice(&chunk[..n]),
            Err(_) => return,
        }
    }
}

#[test]
fn echo_through_tls_whatever_the_split() {
    let (pki, settings) = Pki::new("echo");
    let source = Arc::new(ServerConfigSource::new(TlsConfig::load(&settings).unwrap()));
    let protocol = TlsProtocol::new(source, Vec::new(), Arc::new(Echo));
    for split in [1, 5, 100, 100_000] {
        let mut session = protocol.session(conn(), link());
        let mut client = pki.client();
        client.writer().write_all(b"hello through TLS").unwrap();
        let run = exchange(session.as_mut(), &mut client, split);
        assert_eq!(run.plaintext, b"hello through TLS", "split {split}");
        assert_eq!(run.last, Some(Step::Read));
    }
}

/// A driver's cut-off that records what it would write to the socket, call by call.
fn recording_cutoff() -> (Arc<Mutex<Vec<Vec<u8>>>>, Cutoff) {
    let calls: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let seen = calls.clone();
    (
        calls,
        Arc::new(move |bytes: &[u8]| seen.lock().unwrap().push(bytes.to_vec())),
    )
}

#[test]
fn a_cutoff_from_another_thread_is_encrypted_in_sequence() {
    let (pki, settings) = Pki::new("cutoff");
    let source = Arc::new(ServerConfigSource::new(TlsConfig::load(&settings).unwrap()));
    let protocol = TlsProtocol::new(source, Vec::new(), Arc::new(Echo));
    let mut session = protocol.session(conn(), link());
    let mut client = pki.client();
    client.writer().write_all(b"before").unwrap();
    let run = exchange(session.as_mut(), &mut client, 100_000);
    assert_eq!(run.plaintext, b"before");
    let (wire, raw) = recording_cutoff();
    let cutoff = session.wrap_cutoff(raw);
    // Called from the watchdog's thread while the session sits on this one.
    std::thread::spawn(move || cutoff(b"last words"))
        .join()
        .unwrap();
    let written = wire.lock().unwrap().concat();
    assert!(
        !written.windows(10).any(|w| w == b"last words"),
        "the last words went out in clear"
    );
    let mut rest = &written[..];
    while !rest.is_empty() {
        client.read_tls(&mut rest).unwrap();
        client.process_new_packets().unwrap();
    }
    let mut after = Run::default();
    drain_client(&mut client, &mut after);
    assert_eq!(after.plaintext, b"last words");
    assert!(after.close_notify, "no close_notify after the last words");

    // Empty last words (the response had begun): nothing is encrypted, nothing sent.
    let (calls, raw) = recording_cutoff();
    session.wrap_cutoff(raw)(b"");
    assert_eq!(*calls.lock().unwrap(), vec![Vec::<u8>::new()]);
}

/// Answers the first bytes with a file region, then closes.
struct FileThenClose(Arc<std::fs::File>, u64, Arc<Mutex<Vec<ConnInfo>>>);

impl Protocol for FileThenClose {
    fn session(&self, conn: ConnInfo, _link: Link) -> Box<dyn Session> {
        self.2.lock().unwrap().push(conn);
        Box::new(FileSession(
            Some(FileRegion {
                file: self.0.clone(),
                offset: 0,
                len: self.1,
            }),
            false,
        ))
    }
}

struct FileSession(Option<FileRegion>, bool);

impl Session for FileSession {
    fn read_buf(&mut self) -> &mut [u8] {
        &mut []
    }
    fn received(&mut self, _n: usize) {}
    fn receive(&mut self, _data: &[u8]) {
        self.1 = true;
    }
    fn advance(&mut self, out: &mut Output) -> Step {
        match (self.1, self.0.take()) {
            (true, Some(region)) => {
                out.bytes().extend_from_slice(b"head;");
                out.file(region);
                Step::Close
            }
            _ => Step::Read,
        }
    }
    fn read_deadline(&self) -> Option<Instant> {
        None
    }
    fn is_idle(&self) -> bool {
        false
    }
}

#[test]
fn a_file_region_is_encrypted_in_bounded_pieces_then_close_notify() {
    let (pki, settings) = Pki::new("file");
    let body: Vec<u8> = (0..3_000_017u32).map(|i| (i % 251) as u8).collect();
    let path = pki.dir.join("body.bin");
    std::fs::write(&path, &body).unwrap();
    let file = Arc::new(std::fs::File::open(&path).unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let inner = Arc::new(FileThenClose(file, body.len() as u64, seen.clone()));
    let source = Arc::new(ServerConfigSource::new(TlsConfig::load(&settings).unwrap()));
    let protocol = TlsProtocol::new(source, Vec::new(), inner);
    let mut session = protocol.session(conn(), link());
    let mut client = pki.client();
    client.writer().write_all(b"go").unwrap();
    let run = exchange(session.as_mut(), &mut client, 4096);
    assert_eq!(run.last, Some(Step::Close));
    assert!(run.close_notify, "no close_notify after the last byte");
    assert_eq!(&run.plaintext[..5], b"head;");
    assert!(run.plaintext[5..] == body[..], "the file arrived altered");
    // 256 KiB of plaintext per advance, plus record overhead: never the whole file.
    assert!(run.largest_advance < 300 * 1024, "{}", run.largest_advance);
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].scheme, "https");
    let tls = seen[0].tls.as_ref().unwrap();
    assert!(tls.protocol == "TLSv1.3" && tls.server_name.as_deref() == Some("localhost"));
}

#[test]
fn cleartext_http_to_a_tls_port_is_closed() {
    let (_pki, settings) = Pki::new("plain");
    let source = Arc::new(ServerConfigSource::new(TlsConfig::load(&settings).unwrap()));
    let protocol = TlsProtocol::new(source, Vec::new(), Arc::new(Echo));
    let mut session = protocol.session(conn(), link());
    assert!(session.is_waiting(), "a fresh connection waits");
    assert!(
        session.read_deadline().is_some(),
        "the handshake has a deadline"
    );
    session.receive(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut out = Output::default();
    assert_eq!(session.advance(&mut out), Step::Close);
}

#[test]
fn the_end_of_input_during_the_handshake_closes() {
    let (_pki, settings) = Pki::new("eof");
    let source = Arc::new(ServerConfigSource::new(TlsConfig::load(&settings).unwrap()));
    let protocol = TlsProtocol::new(source, Vec::new(), Arc::new(Echo));
    let mut session = protocol.session(conn(), link());
    session.read_buf();
    session.received(0);
    assert_eq!(session.advance(&mut Output::default()), Step::Close);
}
