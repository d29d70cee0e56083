//! The cache must never serve what the uncached path would refuse: symlinks swapped in
//! after a file was cached, at the file or at a directory on its path.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::PathBuf;

use crate::{FileRequest, StaticFiles, StaticOptions};

use super::CacheOptions;

const ON: CacheOptions = CacheOptions {
    entries: 16,
    bytes: 1 << 20,
    valid: std::time::Duration::ZERO,
};

struct Tmp(PathBuf);

impl Tmp {
    fn new(tag: &str) -> Tmp {
        let dir =
            std::env::temp_dir().join(format!("ironhorse-cache-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("site/d")).unwrap();
        fs::create_dir_all(dir.join("outside")).unwrap();
        fs::write(dir.join("site/top.txt"), b"top").unwrap();
        fs::write(dir.join("site/d/deep.txt"), b"deep").unwrap();
        fs::write(dir.join("outside/secret.txt"), b"secret").unwrap();
        Tmp(dir)
    }

    fn files(&self, cache: CacheOptions) -> StaticFiles {
        let options = StaticOptions {
            cache,
            ..StaticOptions::default()
        };
        StaticFiles::new(self.0.join("site"), options).unwrap()
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn status(files: &StaticFiles, path: &str) -> u16 {
    files
        .respond(&FileRequest {
            method: "GET",
            path,
            ..Default::default()
        })
        .status
}

fn cached(files: &StaticFiles) -> usize {
    files.cache.as_ref().map_or(0, |c| c.len())
}

#[test]
fn a_file_swapped_for_a_symlink_outside_is_refused_as_without_the_cache() {
    let tmp = Tmp::new("swap-file");
    let files = tmp.files(ON);
    assert_eq!(status(&files, "/top.txt"), 200);
    assert_eq!(cached(&files), 1);
    fs::remove_file(tmp.0.join("site/top.txt")).unwrap();
    symlink(tmp.0.join("outside/secret.txt"), tmp.0.join("site/top.txt")).unwrap();
    let uncached = status(&tmp.files(CacheOptions::OFF), "/top.txt");
    assert_eq!(uncached, 403);
    assert_eq!(status(&files, "/top.txt"), uncached);
}

#[test]
fn a_directory_moved_out_and_symlinked_back_is_refused_as_without_the_cache() {
    let tmp = Tmp::new("swap-dir");
    let files = tmp.files(ON);
    assert_eq!(status(&files, "/d/deep.txt"), 200);
    assert_eq!(cached(&files), 1);
    // The same inode, unchanged, now outside the root and reached through a symlink.
    fs::rename(tmp.0.join("site/d"), tmp.0.join("outside/d")).unwrap();
    symlink(tmp.0.join("outside/d"), tmp.0.join("site/d")).unwrap();
    let uncached = status(&tmp.files(CacheOptions::OFF), "/d/deep.txt");
    assert_eq!(uncached, 403);
    assert_eq!(status(&files, "/d/deep.txt"), uncached);
}

#[test]
fn names_ending_in_a_symlink_are_served_but_not_cached() {
    let tmp = Tmp::new("link");
    symlink("d/deep.txt", tmp.0.join("site/alias.txt")).unwrap();
    let files = tmp.files(ON);
    assert_eq!(status(&files, "/alias.txt"), 200);
    assert_eq!(cached(&files), 0);
}

#[test]
fn the_entry_bound_evicts_the_least_recently_used() {
    let tmp = Tmp::new("bound");
    for i in 0..5 {
        fs::write(tmp.0.join(format!("site/{i}.txt")), b"n").unwrap();
    }
    let files = tmp.files(CacheOptions { entries: 3, ..ON });
    for i in 0..5 {
        assert_eq!(status(&files, &format!("/{i}.txt")), 200);
    }
    assert_eq!(cached(&files), 3);
}

#[test]
fn bytes_are_kept_only_once_the_file_has_settled() {
    let tmp = Tmp::new("racy");
    let files = tmp.files(ON);
    let keeps = |files: &StaticFiles| {
        let cache = files.cache.as_ref().unwrap();
        cache.keeps_bytes_of(std::path::Path::new("top.txt"))
    };
    // Just written: a write in the same timestamp tick could keep its ctime, so only the
    // descriptor (whose reads are always current) is kept.
    fs::write(tmp.0.join("site/top.txt"), b"fresh").unwrap();
    assert_eq!(status(&files, "/top.txt"), 200);
    assert_eq!(keeps(&files), Some(false));
    let settled = std::time::Instant::now() + super::RACY + std::time::Duration::from_millis(200);
    while std::time::Instant::now() < settled {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Settled: the next hit replaces the entry by one with the bytes.
    assert_eq!(status(&files, "/top.txt"), 200);
    assert_eq!(status(&files, "/top.txt"), 200);
    assert_eq!(keeps(&files), Some(true));
}
