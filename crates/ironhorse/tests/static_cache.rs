//! The static open-file cache over real sockets, every case under every model: a file
//! changed in place (same size or not), replaced by a rename or deleted is served as it is
//! now on the very next request; conditional, range and HEAD requests are answered right
//! from cached entries; the descriptors the cache holds stay within its bound.
//!
//! The files are created before the models run and the tests wait until they are over a
//! second old: the cache keeps the bytes of such files (younger ones only their descriptor),
//! so both kinds of entry meet the edits.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::client::{Conn, Response};
use common::{children_of, eventually, for_each_model, model_args, models, temp_path, Server};

/// A document root with, for each model, one file in the root and one a directory below
/// (the cache checks the two differently), removed on drop.
struct Root(PathBuf);

impl Root {
    /// Writes `contents` as `/{model}-top.txt` and `/{model}/deep.txt` for every model, then
    /// waits until they are old enough for the cache to keep their bytes.
    fn aged(tag: &str, contents: &[u8]) -> Root {
        let root = Root(temp_path(tag));
        for model in models() {
            fs::create_dir_all(root.0.join(model)).unwrap();
            for rel in paths(model) {
                fs::write(root.file(&rel), contents).unwrap();
            }
        }
        let settled = |p: &Path| {
            let changed = fs::metadata(p).unwrap().modified().unwrap();
            SystemTime::now()
                .duration_since(changed)
                .is_ok_and(|age| age > Duration::from_millis(1200))
        };
        assert!(eventually(|| models()
            .iter()
            .flat_map(|m| paths(m))
            .all(|rel| settled(&root.file(&rel)))));
        root
    }

    fn file(&self, rel: &str) -> PathBuf {
        self.0.join(rel.trim_start_matches('/'))
    }

    fn serve(&self, model: &str, extra: &[&str]) -> Server {
        let mut args = model_args(model);
        args.extend(["--root".to_string(), self.0.display().to_string()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        Server::start(&args)
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The URL paths of a model's two files.
fn paths(model: &str) -> [String; 2] {
    [format!("/{model}-top.txt"), format!("/{model}/deep.txt")]
}

/// One request with extra header lines on a fresh connection.
fn request(addr: &str, method: &str, path: &str, headers: &str) -> Response {
    let mut conn = Conn::open(addr);
    conn.send(
        format!("{method} {path} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n")
            .as_bytes(),
    );
    conn.response(method)
}

fn body(addr: &str, path: &str) -> Vec<u8> {
    let r = request(addr, "GET", path, "");
    assert_eq!(r.status, 200, "GET {path}");
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str())
    );
    r.body
}

/// Overwrites the start of a file without truncating it (an in-place edit).
fn overwrite(path: &Path, bytes: &[u8]) {
    let file = fs::OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(bytes, 0).unwrap();
}

#[test]
fn in_place_edits_are_served_at_once() {
    let root = Root::aged("cache-edit", b"version 0, aaaa\n");
    for_each_model(|model| {
        let server = root.serve(model, &[]);
        for rel in paths(model) {
            let path = root.file(&rel);
            assert_eq!(body(&server.addr, &rel), b"version 0, aaaa\n");
            assert_eq!(body(&server.addr, &rel), b"version 0, aaaa\n");
            // Same size, other bytes: the cached bytes must not be served.
            overwrite(&path, b"version 1, bbbb\n");
            assert_eq!(body(&server.addr, &rel), b"version 1, bbbb\n");
            // Edits in quick succession (within one timestamp tick, often).
            for i in 2..12 {
                let text = format!("version {:x}, cccc\n", i);
                overwrite(&path, text.as_bytes());
                assert_eq!(body(&server.addr, &rel), text.as_bytes(), "{rel} edit {i}");
            }
            // Another size, longer then shorter.
            fs::write(&path, b"a longer version of the file\n").unwrap();
            assert_eq!(body(&server.addr, &rel), b"a longer version of the file\n");
            fs::write(&path, b"short\n").unwrap();
            assert_eq!(body(&server.addr, &rel), b"short\n");
        }
    });
}

#[test]
fn renamed_and_deleted_files_are_served_as_they_are_now() {
    let root = Root::aged("cache-rename", b"before the deploy\n");
    for_each_model(|model| {
        let server = root.serve(model, &[]);
        for rel in paths(model) {
            let path = root.file(&rel);
            assert_eq!(body(&server.addr, &rel), b"before the deploy\n");
            assert_eq!(body(&server.addr, &rel), b"before the deploy\n");
            // An atomic deploy: a new file renamed over the old one (same size too).
            let staged = path.with_extension("new");
            fs::write(&staged, b"after the deploy!!\n").unwrap();
            fs::rename(&staged, &path).unwrap();
            assert_eq!(body(&server.addr, &rel), b"after the deploy!!\n");
            fs::remove_file(&path).unwrap();
            assert_eq!(request(&server.addr, "GET", &rel, "").status, 404);
            assert_eq!(request(&server.addr, "HEAD", &rel, "").status, 404);
            fs::write(&path, b"back again\n").unwrap();
            assert_eq!(body(&server.addr, &rel), b"back again\n");
        }
    });
}

#[test]
fn conditional_range_and_head_requests_are_answered_from_the_cache() {
    let root = Root::aged("cache-cond", b"0123456789abcdef\n");
    for_each_model(|model| {
        let server = root.serve(model, &[]);
        for rel in paths(model) {
            let first = request(&server.addr, "GET", &rel, "");
            let etag = first.header("etag").unwrap().to_string();
            let modified = first.header("last-modified").unwrap().to_string();
            assert_eq!(first.header("content-type"), Some("text/plain"));
            let again = request(&server.addr, "GET", &rel, "");
            assert_eq!(again.body, first.body);
            assert_eq!(again.header("etag"), Some(etag.as_str()));
            assert_eq!(again.header("last-modified"), Some(modified.as_str()));

            let inm = format!("If-None-Match: {etag}\r\n");
            let r = request(&server.addr, "GET", &rel, &inm);
            assert_eq!(r.status, 304);
            assert!(r.body.is_empty());
            let ims = format!("If-Modified-Since: {modified}\r\n");
            assert_eq!(request(&server.addr, "GET", &rel, &ims).status, 304);

            let r = request(&server.addr, "GET", &rel, "Range: bytes=2-5\r\n");
            assert_eq!(r.status, 206);
            assert_eq!(r.body, b"2345");
            assert_eq!(r.header("content-range"), Some("bytes 2-5/17"));
            let r = request(&server.addr, "GET", &rel, "Range: bytes=-3\r\n");
            assert_eq!((r.status, r.body.as_slice()), (206, &b"ef\n"[..]));
            let r = request(&server.addr, "GET", &rel, "Range: bytes=40-\r\n");
            assert_eq!(r.status, 416);
            assert_eq!(r.header("content-range"), Some("bytes */17"));

            let r = request(&server.addr, "HEAD", &rel, "");
            assert_eq!(r.status, 200);
            assert_eq!(r.header("content-length"), Some("17"));
            assert_eq!(r.header("etag"), Some(etag.as_str()));
            assert!(r.body.is_empty());

            // Once the file changes, the old validators no longer match.
            overwrite(&root.file(&rel), b"X");
            let r = request(&server.addr, "GET", &rel, &inm);
            assert_eq!(r.status, 200);
            assert_eq!(r.body, b"X123456789abcdef\n");
            assert_ne!(r.header("etag"), Some(etag.as_str()));
            let if_range = format!("If-Range: {etag}\r\nRange: bytes=0-1\r\n");
            let r = request(&server.addr, "GET", &rel, &if_range);
            assert_eq!((r.status, r.body.len()), (200, 17));
        }
    });
}

/// Descriptors of the server's processes (the master or parent and its children) that are
/// open on files under `root`.
fn open_under(server: &Server, root: &Path) -> usize {
    let mut pids = vec![server.pid()];
    pids.extend(children_of(server.pid()));
    pids.iter()
        .filter_map(|pid| fs::read_dir(format!("/proc/{pid}/fd")).ok())
        .flat_map(|dir| dir.filter_map(Result::ok))
        .filter_map(|fd| fs::read_link(fd.path()).ok())
        // The root directory itself stays open (files are opened beneath it).
        .filter(|target| target.starts_with(root) && target != root)
        .count()
}

#[test]
fn cached_descriptors_stay_within_the_bound() {
    let root = Root::aged("cache-fds", b"x\n");
    let many: Vec<String> = (0..40).map(|i| format!("/many/{i}.txt")).collect();
    fs::create_dir_all(root.file("/many")).unwrap();
    for rel in &many {
        fs::File::create(root.file(rel))
            .unwrap()
            .write_all(rel.as_bytes())
            .unwrap();
    }
    for_each_model(|model| {
        for (entries, most) in [("8", 8), ("0", 0)] {
            let server = root.serve(model, &["--static-cache-entries", entries]);
            // One keep-alive connection: one process serves it all (under fork, the child
            // of this connection, whose cache lives as long as it).
            let mut conn = Conn::open(&server.addr);
            for _ in 0..2 {
                for rel in &many {
                    conn.send(format!("GET {rel} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
                    assert_eq!(conn.response("GET").body, rel.as_bytes());
                }
            }
            let open = open_under(&server, &root.0);
            assert!(open <= most, "{open} descriptors open, the bound is {most}");
            if most > 0 {
                // The cache does hold files open (what the rest of these tests rely on).
                assert!(open > 0, "no descriptor kept open by the cache");
            }
        }
    });
}

#[test]
fn a_validity_window_trusts_entries_for_its_length() {
    let root = Root::aged("cache-valid", b"old contents\n");
    for_each_model(|model| {
        let server = root.serve(model, &["--static-cache-valid", "600"]);
        let rel = &paths(model)[0];
        let mut conn = Conn::open(&server.addr);
        let mut get = || {
            conn.send(format!("GET {rel} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
            conn.response("GET").body
        };
        assert_eq!(get(), b"old contents\n");
        overwrite(&root.file(rel), b"new");
        // What the operator chose: the cached entry (and its bytes) is trusted for 600 s.
        assert_eq!(get(), b"old contents\n");
    });
}
