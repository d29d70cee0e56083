//! Trivial-app WSGI calls per second through `WsgiApp::handle`, on 1 and 2 threads.
//!
//! `cargo run --release -p ironhorse-wsgi --example throughput`

use std::io;
use std::sync::Arc;
use std::time::Instant;

use ironhorse_app::{Body, ConnInfo};
use ironhorse_wsgi::{RequestParts, WsgiApp, WsgiConfig};

const CALLS: u32 = 200_000;

fn run(app: &WsgiApp, req: &RequestParts, conn: &ConnInfo, n: u32) {
    for _ in 0..n {
        let resp = app.handle(req, &mut io::empty(), conn);
        assert!(matches!(resp.body, Body::Bytes(ref b) if b == b"Hello, World!"));
    }
}

fn main() {
    let mut cfg = WsgiConfig::new("apps:hello");
    cfg.pythonpath = vec![concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures").into()];
    let app = Arc::new(WsgiApp::load(cfg).expect("load"));
    let conn = ConnInfo {
        peer: Some("127.0.0.1:40000".parse().unwrap()),
        local: Some("127.0.0.1:8000".parse().unwrap()),
        scheme: "http",
        forwarded: None,
        tls: None,
        server_name: None,
        cache: Default::default(),
    };
    let req = RequestParts::new("GET", "/hello?x=1")
        .header("Host", "localhost:8000")
        .header("User-Agent", "wrk")
        .header("Accept", "*/*");
    for threads in [1u32, 2] {
        let start = Instant::now();
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (app, req, conn) = (app.clone(), req.clone(), conn.clone());
                std::thread::spawn(move || run(&app, &req, &conn, CALLS))
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{threads} thread(s): {:.0} calls/s",
            f64::from(CALLS * threads) / secs
        );
    }
}
