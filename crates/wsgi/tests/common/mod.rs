//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use ironhorse_app::{Body, ConnInfo, Response};
use ironhorse_wsgi::{RequestParts, WsgiApp, WsgiConfig};

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn config(spec: &str) -> WsgiConfig {
    let mut cfg = WsgiConfig::new(spec);
    cfg.pythonpath = vec![fixtures()];
    cfg
}

pub fn load(spec: &str) -> WsgiApp {
    WsgiApp::load(config(spec)).unwrap_or_else(|e| panic!("{e}"))
}

pub fn conn() -> ConnInfo {
    ConnInfo {
        peer: Some("10.0.0.7:51234".parse().unwrap()),
        local: Some("127.0.0.1:8080".parse().unwrap()),
        scheme: "http",
        forwarded: None,
        tls: None,
        server_name: None,
        cache: Default::default(),
    }
}

/// A collected response: the stream error (if any) is recorded, not raised.
pub struct Collected {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    pub length: Option<u64>,
    pub kind: &'static str,
    pub error: Option<io::Error>,
}

impl Collected {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

pub fn collect(resp: Response) -> Collected {
    let length = resp.body.len_hint();
    let mut out = Collected {
        status: resp.status,
        headers: resp
            .headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect(),
        body: Vec::new(),
        length,
        kind: "",
        error: None,
    };
    match resp.body {
        Body::Empty => out.kind = "empty",
        Body::Bytes(b) => {
            out.kind = "bytes";
            out.body = b;
        }
        Body::File(region) => {
            out.kind = "file";
            out.body = vec![0; region.len as usize];
            region
                .file
                .read_exact_at(&mut out.body, region.offset)
                .unwrap();
        }
        Body::Stream { chunks, .. } => {
            out.kind = "stream";
            for chunk in chunks {
                match chunk {
                    Ok(c) => {
                        assert!(!c.is_empty(), "streams never yield empty chunks");
                        out.body.extend_from_slice(&c);
                    }
                    Err(e) => {
                        out.error = Some(e);
                        break;
                    }
                }
            }
        }
    }
    out
}

pub fn get(app: &WsgiApp, target: &str) -> Collected {
    collect(app.handle(&RequestParts::new("GET", target), &mut io::empty(), &conn()))
}

/// A body reader that hands out at most `step` bytes per read, like a chunked body.
pub struct Trickle {
    pub data: Vec<u8>,
    pub pos: usize,
    pub step: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.step).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
