//! What the HTTP/2 test files share: which models host HTTP/2, the h2c flags, the strict
//! client (tests/apps/h2_client.py), curl over h2c, and a folder of static files.
#![allow(dead_code)] // each test file uses a part of it

use std::path::PathBuf;
use std::process::Command;

use super::common::python::{apps_dir, venv};
use super::common::temp_path;
use serde_json::Value;

/// Whether `model` hosts HTTP/2 (its driver reads a connection while its requests run).
pub fn hosts_h2(model: &str) -> bool {
    matches!(model, "event" | "async")
}

pub fn h2_flags() -> Vec<String> {
    [
        "--http-protocols",
        "h1,h2",
        "--http2-cleartext",
        "prior-knowledge",
    ]
    .map(String::from)
    .to_vec()
}

/// A folder for static files, removed at the end.
pub struct Files(pub PathBuf);

impl Files {
    pub fn new() -> Files {
        let dir = temp_path("h2files");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("small.txt"), b"small file over h2\n").unwrap();
        Files(dir)
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the strict client to its end and parses its last line.
pub fn client(addr: &str, args: &[&str]) -> Value {
    let out = Command::new(venv().join("bin/python"))
        .arg(apps_dir().join("h2_client.py"))
        .arg(addr)
        .args(args)
        .output()
        .expect("run h2_client.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|_| {
        panic!(
            "h2_client {args:?}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// curl over h2c by prior knowledge, with `extra` arguments: (body, "VERSION STATUS").
pub fn curl_with(addr: &str, path: &str, extra: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args([
            "-s",
            "--http2-prior-knowledge",
            "-w",
            "\n%{http_version} %{http_code}",
        ])
        .args(extra)
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (body.to_string(), status.to_string())
}

pub fn curl(addr: &str, path: &str) -> (String, String) {
    curl_with(addr, path, &[])
}
