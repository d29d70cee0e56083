//! Static files: a [`Service`] that serves a directory tree.
//!
//! Per request it does one `openat2(RESOLVE_BENEATH)` below the open root directory — the
//! kernel refuses any `..` or symlink leading outside, with no race between checking and
//! opening — and one `fstat`. Where the kernel cannot tell (no `openat2`, or an absolute
//! symlink on the way) it opens the path and asks `/proc/self/fd/N` where the file really
//! is. The body is never read: it is a [`FileRegion`] the driver sends with `sendfile(2)`.
//!
//! Behaviour choices:
//! - `..` at the mount root stays at the root (lexical resolution, like a browser).
//! - A decoded `/` (`%2f`) in a segment is 404; a decoded NUL (`%00`) is 400.
//! - The mount root without trailing slash (`/static` for prefix `/static`) redirects to
//!   `/static/` like any other directory, so relative links in its index resolve.
//! - Redirect `Location`s are rebuilt from the resolved, re-encoded path (never echoing
//!   `//host`), and keep the query string.
//! - Multiple byte ranges are ignored (full 200), as are malformed `Range` headers.
//! - Special files (FIFOs, devices, sockets) are 403; they are opened non-blocking, so a
//!   FIFO cannot stall the server.
//! - Index files that are not regular files count as missing.
#![forbid(unsafe_code)]

mod cache;
mod conditional;
mod listing;
mod mime;
mod path;

use std::borrow::Cow;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ironhorse_app::{Body, FileRegion, Request, RequestHead, Response, Service};

pub use cache::CacheOptions;
use cache::{Entry, FileCache};
use conditional::RangeOutcome;
use path::{PathError, Resolved};

/// Configuration of one static mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticOptions {
    /// Render an HTML listing for directories without an index file.
    pub autoindex: bool,
    /// The index file name served for directory URLs, e.g. `index.html`.
    pub index: String,
    /// URL mount prefix (`""` for the root, e.g. `/static`); a trailing `/` is ignored.
    pub prefix: String,
    /// The open-file cache; [`CacheOptions::OFF`] by default (the server's settings size it).
    pub cache: CacheOptions,
}

impl Default for StaticOptions {
    fn default() -> Self {
        StaticOptions {
            autoindex: false,
            index: "index.html".to_owned(),
            prefix: String::new(),
            cache: CacheOptions::OFF,
        }
    }
}

/// Serves files below a root directory.
#[derive(Debug, Clone)]
pub struct StaticFiles {
    /// Canonical, so that real paths of opened files can be compared against it.
    root: PathBuf,
    /// The root, open: files are opened beneath it by the kernel (`openat2`).
    root_dir: std::sync::Arc<File>,
    options: StaticOptions,
    /// Hot files kept open (`None`: off); shared by clones, so one per process.
    cache: Option<Arc<FileCache>>,
}

/// The parts of a request that static file serving looks at; lets the logic run (and be
/// tested) without a parsed [`RequestHead`].
#[derive(Debug, Clone, Default)]
pub struct FileRequest<'a> {
    pub method: &'a str,
    /// Path part of the target, still percent-encoded.
    pub path: &'a str,
    /// Query string without `?` (`""` when absent); only kept in redirects.
    pub query: &'a str,
    /// A list field: its lines joined when repeated.
    pub if_match: Option<Cow<'a, [u8]>>,
    pub if_unmodified_since: Option<&'a [u8]>,
    /// A list field: its lines joined when repeated.
    pub if_none_match: Option<Cow<'a, [u8]>>,
    pub if_modified_since: Option<&'a [u8]>,
    pub range: Option<&'a [u8]>,
    pub if_range: Option<&'a [u8]>,
}

/// RFC 9110's methods, and PATCH (RFC 5789).
const KNOWN_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

impl<'a> FileRequest<'a> {
    /// The request's conditional and range fields, in one pass over its head. A list field
    /// given on several lines means its values comma-joined (RFC 9110 §5.3); a field of one
    /// value given twice is ignored: a date condition with more than one member MUST be
    /// (§13.1.3, §13.1.4), a server MAY ignore `Range`, and a repeated `If-Range` cannot be
    /// trusted to hold, so the range goes with it.
    pub fn from_head(head: &'a RequestHead) -> Self {
        let mut req = FileRequest {
            method: head.method(),
            path: head.path(),
            query: head.query(),
            ..FileRequest::default()
        };
        let mut repeated = [false; 4];
        for (name, value) in head.headers() {
            let (single, i) = if name.eq_ignore_ascii_case("If-Match") {
                join(&mut req.if_match, value);
                continue;
            } else if name.eq_ignore_ascii_case("If-None-Match") {
                join(&mut req.if_none_match, value);
                continue;
            } else if name.eq_ignore_ascii_case("If-Unmodified-Since") {
                (&mut req.if_unmodified_since, 0)
            } else if name.eq_ignore_ascii_case("If-Modified-Since") {
                (&mut req.if_modified_since, 1)
            } else if name.eq_ignore_ascii_case("Range") {
                (&mut req.range, 2)
            } else if name.eq_ignore_ascii_case("If-Range") {
                (&mut req.if_range, 3)
            } else {
                continue;
            };
            repeated[i] |= single.replace(value).is_some();
        }
        let [ius, ims, range, if_range] = repeated;
        for (field, drop) in [
            (&mut req.if_unmodified_since, ius),
            (&mut req.if_modified_since, ims),
            (&mut req.range, range || if_range),
            (&mut req.if_range, if_range),
        ] {
            if drop {
                *field = None;
            }
        }
        req
    }
}

/// Adds one line of a list field to what earlier lines gave, comma-joined.
fn join<'a>(field: &mut Option<Cow<'a, [u8]>>, line: &'a [u8]) {
    match field {
        None => *field = Some(Cow::Borrowed(line)),
        Some(joined) => {
            let joined = joined.to_mut();
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(line);
        }
    }
}

impl StaticFiles {
    /// Canonicalises `root`; fails with a message naming the path if it is missing or not a
    /// directory, or if `options.index` is not a plain file name.
    pub fn new(root: impl Into<PathBuf>, mut options: StaticOptions) -> io::Result<Self> {
        let given = root.into();
        let root = fs::canonicalize(&given).map_err(|e| {
            io::Error::new(e.kind(), format!("static root {}: {e}", given.display()))
        })?;
        if !fs::metadata(&root)?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("static root {} is not a directory", given.display()),
            ));
        }
        let index = options.index.as_str();
        if index.is_empty() || index == "." || index == ".." || index.contains(['/', '\0']) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("static index {index:?} must be a plain file name"),
            ));
        }
        let prefix = options.prefix.trim_end_matches('/');
        options.prefix = if prefix.is_empty() || prefix.starts_with('/') {
            prefix.to_owned()
        } else {
            format!("/{prefix}")
        };
        let root_dir = std::sync::Arc::new(File::open(&root)?);
        let cache = FileCache::new(options.cache).map(Arc::new);
        Ok(StaticFiles {
            root,
            root_dir,
            options,
            cache,
        })
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether this mount serves the (still percent-encoded) request path: it equals the
    /// prefix or continues it with `/`. Always true for an empty prefix.
    pub fn matches(&self, path: &str) -> bool {
        self.strip_prefix(path).is_some()
    }

    fn strip_prefix<'p>(&self, path: &'p str) -> Option<&'p str> {
        let rest = path.strip_prefix(self.options.prefix.as_str())?;
        (rest.is_empty() || rest.starts_with('/')).then_some(rest)
    }

    /// Answers one request; [`Service::call`] delegates here.
    pub fn respond(&self, req: &FileRequest<'_>) -> Response {
        if req.method != "GET" && req.method != "HEAD" {
            // A method this server does not know at all is 501, one it knows but files do
            // not take is 405 (RFC 9110 §9.1, §15.5.6).
            if !KNOWN_METHODS.contains(&req.method) {
                return Response::text(501, "Not Implemented\n");
            }
            return Response::text(405, "Method Not Allowed\n").with_header("Allow", "GET, HEAD");
        }
        let Some(rest) = self.strip_prefix(req.path) else {
            return not_found();
        };
        let resolved = match path::resolve(rest) {
            Ok(r) => r,
            Err(PathError::Invalid) => return Response::text(400, "Bad Request\n"),
            Err(PathError::EncodedSlash) => return not_found(),
        };
        // Below the root: the cache's key, and all a hit needs.
        let relative = resolved.to_path(Path::new(""));
        if resolved.dir_url {
            self.serve_dir_url(req, &resolved, &relative)
        } else {
            self.serve_file_url(req, &resolved, &relative)
        }
    }

    /// A URL without trailing slash: a file, or a directory to redirect to its slashed URL.
    fn serve_file_url(
        &self,
        req: &FileRequest<'_>,
        resolved: &Resolved,
        relative: &Path,
    ) -> Response {
        if let Some(entry) = self.cached(relative) {
            return serve_file(req, &entry);
        }
        let fs_path = &resolved.to_path(&self.root);
        let (file, meta) = match self.open_inside(fs_path) {
            Ok(Some(opened)) => opened,
            Ok(None) => return forbidden(),
            Err(e) => return io_error(&e),
        };
        if meta.is_dir() {
            let mut location = resolved.to_url(&self.options.prefix, true);
            if !req.query.is_empty() {
                location.push('?');
                location.push_str(req.query);
            }
            return Response::text(301, "Moved Permanently\n").with_header("Location", location);
        }
        if !meta.is_file() {
            return forbidden();
        }
        serve_file(req, &self.entry(file, &meta, fs_path, relative))
    }

    /// A URL with trailing slash: the directory's index, else a listing or 404.
    fn serve_dir_url(
        &self,
        req: &FileRequest<'_>,
        resolved: &Resolved,
        relative: &Path,
    ) -> Response {
        let index_relative = relative.join(&self.options.index);
        if let Some(entry) = self.cached(&index_relative) {
            return serve_file(req, &entry);
        }
        let fs_path = &resolved.to_path(&self.root);
        let index_path = fs_path.join(&self.options.index);
        match self.open_inside(&index_path) {
            Ok(Some((file, meta))) if meta.is_file() => {
                return serve_file(req, &self.entry(file, &meta, &index_path, &index_relative))
            }
            Ok(Some(_)) => {}
            Ok(None) => return forbidden(),
            Err(e) if is_missing(&e) => {}
            Err(e) => return io_error(&e),
        }
        if !self.options.autoindex {
            return not_found();
        }
        match fs::canonicalize(fs_path) {
            Ok(real) if real.starts_with(&self.root) => {}
            Ok(_) => return forbidden(),
            Err(e) => return io_error(&e),
        }
        let mut title = format!("{}/", self.options.prefix);
        for seg in &resolved.segments {
            title.push_str(&String::from_utf8_lossy(seg));
            title.push('/');
        }
        match listing::render(fs_path, &title, !resolved.segments.is_empty()) {
            Ok(html) => Response {
                status: 200,
                headers: vec![(
                    Cow::Borrowed("Content-Type"),
                    b"text/html; charset=utf-8".to_vec(),
                )],
                body: Body::Bytes(html),
            },
            Err(e) => io_error(&e),
        }
    }

    /// The cached entry for `relative` (a regular file below the root), if still current.
    fn cached(&self, relative: &Path) -> Option<Arc<Entry>> {
        let cache = self.cache.as_ref()?;
        if relative.as_os_str().is_empty() {
            return None;
        }
        cache.lookup(self.root_dir.as_fd(), relative)
    }

    /// The entry to serve an opened regular file from (`path`, `relative` below the root),
    /// cached when the cache is on.
    fn entry(&self, file: File, meta: &Metadata, path: &Path, relative: &Path) -> Arc<Entry> {
        let entry = Entry::new(file, meta, path);
        match &self.cache {
            Some(cache) if !relative.as_os_str().is_empty() => {
                cache.admit(self.root_dir.as_fd(), relative, entry)
            }
            _ => Arc::new(entry),
        }
    }

    /// Opens `path` and fstats it; `Ok(None)` if it really lies outside the root.
    fn open_inside(&self, path: &Path) -> io::Result<Option<(File, Metadata)>> {
        // The fast path: the kernel resolves the path beneath the root in one call.
        if let Ok(relative) = path.strip_prefix(&self.root) {
            let relative = if relative.as_os_str().is_empty() {
                Path::new(".")
            } else {
                relative
            };
            if let ironhorse_sys::Beneath::Opened(file) =
                ironhorse_sys::open_beneath(self.root_dir.as_fd(), relative)?
            {
                let meta = file.metadata()?;
                return Ok(Some((file, meta)));
            }
        }
        // Non-blocking so that opening a FIFO returns at once; no effect on regular files.
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)?;
        if !self.is_inside(&file, path)? {
            return Ok(None);
        }
        let meta = file.metadata()?;
        Ok(Some((file, meta)))
    }

    /// Whether the opened `file` lies below the root once symlinks are resolved. Asks the
    /// kernel for the fd's real path (one syscall, no race); canonicalises `path` only when
    /// `/proc` is unavailable.
    fn is_inside(&self, file: &File, path: &Path) -> io::Result<bool> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            if let Ok(real) = fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())) {
                return Ok(real.starts_with(&self.root));
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = file;
        Ok(fs::canonicalize(path)?.starts_with(&self.root))
    }
}

impl Service for StaticFiles {
    fn call(&self, req: Request<'_>) -> Response {
        self.respond(&FileRequest::from_head(req.head))
    }
}

/// Serves an opened regular file: 412, 304, 200, 206 or 416, the preconditions evaluated in
/// RFC 9110 §13.2.2's order. HEAD gets the same response (the engine drops the body; the
/// region is just an open fd). A cached file's bytes, when kept, are the body of a GET (one
/// write with the head, no `pread`).
fn serve_file(req: &FileRequest<'_>, entry: &Entry) -> Response {
    let v = &entry.validators;
    if v.precondition_failed(req.if_match.as_deref(), req.if_unmodified_since) {
        return Response::text(412, "Precondition Failed\n");
    }
    if v.not_modified(req.if_none_match.as_deref(), req.if_modified_since) {
        return Response {
            status: 304,
            headers: vec![(Cow::Borrowed("ETag"), v.etag.as_bytes().to_vec())],
            body: Body::Empty,
        };
    }
    // GET is the only method with range handling: Range on any other MUST be ignored
    // (RFC 9110 §14.2), HEAD included.
    let range = req.range.filter(|_| req.method == "GET");
    let (status, offset, len, content_range) = match v.range(range, req.if_range) {
        RangeOutcome::Full => (200, 0, v.size, None),
        RangeOutcome::Partial { start, len } => (
            206,
            start,
            len,
            Some(format!("bytes {}-{}/{}", start, start + len - 1, v.size)),
        ),
        RangeOutcome::Unsatisfiable => {
            return Response::text(416, "Range Not Satisfiable\n")
                .with_header("Content-Range", format!("bytes */{}", v.size));
        }
    };
    let mut headers = vec![
        (
            Cow::Borrowed("Content-Type"),
            entry.content_type.as_bytes().to_vec(),
        ),
        (
            Cow::Borrowed("Last-Modified"),
            entry.last_modified.as_bytes().to_vec(),
        ),
        (Cow::Borrowed("ETag"), v.etag.as_bytes().to_vec()),
        (Cow::Borrowed("Accept-Ranges"), b"bytes".to_vec()),
    ];
    if let Some(cr) = content_range {
        headers.push((Cow::Borrowed("Content-Range"), cr.into_bytes()));
    }
    let body = match &entry.bytes {
        Some(bytes) if req.method != "HEAD" => {
            Body::Bytes(bytes[offset as usize..(offset + len) as usize].to_vec())
        }
        _ => Body::File(FileRegion {
            file: Arc::clone(&entry.file),
            offset,
            len,
        }),
    };
    Response {
        status,
        headers,
        body,
    }
}

/// Errors meaning "no such file here" rather than a server problem.
fn is_missing(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
        || matches!(
            e.raw_os_error(),
            Some(libc::ENOTDIR | libc::ENAMETOOLONG | libc::ELOOP)
        )
}

fn io_error(e: &io::Error) -> Response {
    if is_missing(e) {
        not_found()
    } else if e.kind() == io::ErrorKind::PermissionDenied {
        forbidden()
    } else {
        Response::text(500, "Internal Server Error\n")
    }
}

fn not_found() -> Response {
    Response::text(404, "Not Found\n")
}

fn forbidden() -> Response {
    Response::text(403, "Forbidden\n")
}

#[cfg(test)]
mod tests;
