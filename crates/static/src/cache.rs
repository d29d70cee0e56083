//! The open-file cache (nginx's `open_file_cache`): for hot files, the open descriptor, the
//! response's header values and, for small files, the bytes themselves, keyed by the path
//! relative to the root — so a hit costs one `stat` instead of `openat2` + `fstat` + `pread`
//! + `close` and the header formatting.
//!
//! Never stale: every hit is validated by one `fstatat` of the path (unless the operator
//! chose a validity window, [`CacheOptions::valid`]), which must find the same inode with the
//! same size, mode, link count, `mtime` and `ctime`. Every write changes `mtime` and `ctime`;
//! a rename over the path (atomic deploys) brings another inode; `chmod`, `link`, `unlink`
//! change `ctime`, which no user can set back. Bytes are kept only for files whose `ctime`
//! lies [`RACY`] in the past when they are read, so that a later write in the same clock
//! tick (file timestamps come from a coarse clock) cannot keep the same `ctime`: until
//! then the entry keeps only the descriptor, whose reads always see the current bytes.
//!
//! As strong as the uncached path: the validating `stat` never follows a symlink on the
//! final name (`AT_SYMLINK_NOFOLLOW`), and reaches it either directly in the open root
//! directory (a name in the root) or in its parent opened with `openat2(RESOLVE_BENEATH)`
//! (deeper names), which the kernel refuses outside the root, race-free, exactly as the
//! uncached open. Names whose final component is a symlink are not cached. The lexical
//! path checks run before the cache is consulted, so they are unchanged.
//!
//! One cache per [`crate::StaticFiles`], shared by its clones: per process (a master never
//! serves, so it forks with an empty cache; descriptors are close-on-exec), behind one mutex
//! held only to look up, insert or evict — never across a system call.

use std::fs::{File, Metadata};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lru::LruCache;

use crate::conditional::Validators;
use crate::mime;

/// How old a file's `ctime` must be before its bytes are kept: more than a timestamp tick
/// (≤ 10 ms) with a wide margin for clock adjustments.
pub const RACY: Duration = Duration::from_secs(1);

/// Files up to this size keep their bytes in the cache; larger ones only their descriptor
/// (their bodies go out with `sendfile`).
pub const BYTES_MAX: u64 = 16 * 1024;

/// The cache's bounds and validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheOptions {
    /// Most files kept open; 0 turns the cache off.
    pub entries: usize,
    /// Most bytes of file contents kept (small files only, see [`BYTES_MAX`]).
    pub bytes: u64,
    /// How long a validated entry is trusted without a new `stat` (nginx's
    /// `open_file_cache_valid`). Zero, the default, checks on every hit: never stale.
    pub valid: Duration,
}

impl CacheOptions {
    /// No cache: every request opens its file.
    pub const OFF: CacheOptions = CacheOptions {
        entries: 0,
        bytes: 0,
        valid: Duration::ZERO,
    };
}

/// What identifies one version of a file; equal stamps mean unchanged (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    mode: u32,
    nlink: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of_metadata(m: &Metadata) -> Stamp {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            mode: m.mode(),
            nlink: m.nlink(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }

    fn of_stat(s: &rustix::fs::Stat) -> Stamp {
        Stamp {
            dev: s.st_dev,
            ino: s.st_ino,
            mode: s.st_mode,
            nlink: s.st_nlink,
            size: s.st_size as u64,
            mtime: (s.st_mtime, s.st_mtime_nsec as i64),
            ctime: (s.st_ctime, s.st_ctime_nsec as i64),
        }
    }

    /// Whether the bytes read now could be followed by a write that keeps this stamp.
    fn racy(&self, now: SystemTime) -> bool {
        let changed = UNIX_EPOCH + Duration::new(self.ctime.0.max(0) as u64, self.ctime.1 as u32);
        changed + RACY > now
    }
}

/// One opened regular file and what its responses need, built once per version.
#[derive(Debug)]
pub struct Entry {
    pub file: Arc<File>,
    pub validators: Validators,
    pub content_type: &'static str,
    pub last_modified: String,
    /// The whole contents, for small files that are not [`Stamp::racy`].
    pub bytes: Option<Arc<[u8]>>,
    stamp: Stamp,
    /// When the stamp was last confirmed, in ns since the cache's `epoch`.
    checked: AtomicU64,
}

impl Entry {
    /// An entry for an opened regular file (cached or not: responses are built from it).
    pub fn new(file: File, meta: &Metadata, path: &Path) -> Entry {
        let validators = Validators::new(meta);
        let last_modified = validators.last_modified();
        Entry {
            file: Arc::new(file),
            validators,
            content_type: mime::content_type(path),
            last_modified,
            bytes: None,
            stamp: Stamp::of_metadata(meta),
            checked: AtomicU64::new(0),
        }
    }

    fn cost(&self) -> u64 {
        self.bytes.as_ref().map_or(0, |b| b.len() as u64)
    }
}

struct Inner {
    map: LruCache<PathBuf, Arc<Entry>>,
    bytes: u64,
}

/// The cache of one static mount.
pub struct FileCache {
    options: CacheOptions,
    epoch: Instant,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for FileCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileCache")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl FileCache {
    /// `None` when `options.entries` is 0.
    pub fn new(options: CacheOptions) -> Option<FileCache> {
        let cap = std::num::NonZeroUsize::new(options.entries)?;
        Some(FileCache {
            options,
            epoch: Instant::now(),
            inner: Mutex::new(Inner {
                map: LruCache::new(cap),
                bytes: 0,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves a consistent map (no invariant spans calls).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Whether a file of `size` bytes has its contents kept (once settled).
    fn keeps_bytes(&self, size: u64) -> bool {
        size <= BYTES_MAX.min(self.options.bytes)
    }

    /// The entry for `relative` if it is still the file at that path (one `stat`, or none
    /// inside the validity window). A stale entry is dropped.
    pub fn lookup(&self, root: BorrowedFd<'_>, relative: &Path) -> Option<Arc<Entry>> {
        let entry = self.lock().map.get(relative).cloned()?;
        let now = self.now_ns();
        let window = self.options.valid.as_nanos() as u64;
        if window > 0 && now.saturating_sub(entry.checked.load(Ordering::Relaxed)) < window {
            return Some(entry);
        }
        let fresh = stamp_at(root, relative).is_some_and(|s| s == entry.stamp)
            // Small bytes not kept while racy: re-admit once they can be.
            && !(entry.bytes.is_none()
                && self.keeps_bytes(entry.validators.size)
                && !entry.stamp.racy(SystemTime::now()));
        if fresh {
            entry.checked.store(now, Ordering::Relaxed);
            return Some(entry);
        }
        self.remove(relative);
        None
    }

    fn remove(&self, relative: &Path) {
        let mut inner = self.lock();
        if let Some(old) = inner.map.pop(relative) {
            inner.bytes -= old.cost();
        }
    }

    /// Caches a freshly opened file's entry if the path names it without a symlink on its
    /// final component (checked with the same `stat` hits use), reading the bytes of a small,
    /// settled file first. Returns the entry to serve either way.
    pub fn admit(&self, root: BorrowedFd<'_>, relative: &Path, mut entry: Entry) -> Arc<Entry> {
        if stamp_at(root, relative) != Some(entry.stamp) {
            return Arc::new(entry);
        }
        let size = entry.validators.size;
        if self.keeps_bytes(size) && !entry.stamp.racy(SystemTime::now()) {
            let mut buf = vec![0; size as usize];
            if entry.file.read_exact_at(&mut buf, 0).is_ok() {
                entry.bytes = Some(buf.into());
            }
        }
        entry.checked = AtomicU64::new(self.now_ns());
        let entry = Arc::new(entry);
        let mut inner = self.lock();
        if let Some(old) = inner.map.pop(relative) {
            inner.bytes -= old.cost();
        }
        while inner.bytes + entry.cost() > self.options.bytes {
            match inner.map.pop_lru() {
                Some((_, old)) => inner.bytes -= old.cost(),
                None => break,
            }
        }
        inner.bytes += entry.cost();
        if let Some((_, old)) = inner.map.push(relative.to_path_buf(), Arc::clone(&entry)) {
            inner.bytes -= old.cost();
        }
        entry
    }

    /// Entries held now (for tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether the entry for `relative` keeps the file's bytes (for tests).
    #[cfg(test)]
    pub fn keeps_bytes_of(&self, relative: &Path) -> Option<bool> {
        self.lock().map.peek(relative).map(|e| e.bytes.is_some())
    }
}

/// The stamp of what `relative` names below `root`, the final component not followed;
/// `None` if that cannot be told as safely as the uncached open would (see the module doc).
fn stamp_at(root: BorrowedFd<'_>, relative: &Path) -> Option<Stamp> {
    use rustix::fs::{openat2, statat, AtFlags, Mode, OFlags, ResolveFlags};
    let bytes = relative.as_os_str().as_bytes();
    let stat = match bytes.iter().rposition(|&b| b == b'/') {
        None => statat(root, relative, AtFlags::SYMLINK_NOFOLLOW).ok()?,
        Some(slash) => {
            let parent = Path::new(std::ffi::OsStr::from_bytes(&bytes[..slash]));
            let name = Path::new(std::ffi::OsStr::from_bytes(&bytes[slash + 1..]));
            let dir = openat2(
                root,
                parent,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
            )
            .ok()?;
            statat(dir.as_fd(), name, AtFlags::SYMLINK_NOFOLLOW).ok()?
        }
    };
    Some(Stamp::of_stat(&stat))
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
