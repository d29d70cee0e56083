//! End-to-end tests of `StaticFiles::respond` against a temporary directory tree.

use super::*;
use std::ffi::OsStr;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A unique directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "ironhorse-static-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, rel: &str, contents: &[u8]) -> PathBuf {
        let path = self.0.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A site at `<tmp>/site` with an `outside` sibling holding a secret.
struct Site {
    tmp: TempDir,
    files: StaticFiles,
}

impl Site {
    fn new(options: StaticOptions) -> Self {
        let tmp = TempDir::new();
        tmp.write("outside/secret.txt", b"secret");
        tmp.write("site/hello.txt", b"hello world");
        tmp.write("site/index.html", b"<h1>home</h1>");
        tmp.write("site/app.js", b"1");
        tmp.write("site/docs/index.html", b"docs");
        tmp.write("site/empty/.keep", b"");
        tmp.write("site/sub/a.css", b"a{}");
        let files = StaticFiles::new(tmp.0.join("site"), options).unwrap();
        Site { tmp, files }
    }

    fn site(&self) -> PathBuf {
        self.tmp.0.join("site")
    }

    fn get(&self, path: &str) -> Response {
        self.req(FileRequest {
            method: "GET",
            path,
            ..Default::default()
        })
    }

    fn req(&self, req: FileRequest<'_>) -> Response {
        self.files.respond(&req)
    }
}

fn site() -> Site {
    Site::new(StaticOptions::default())
}

fn header<'r>(resp: &'r Response, name: &str) -> Option<&'r str> {
    resp.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| std::str::from_utf8(v).unwrap())
}

/// The body as bytes, reading the file region the way a driver would.
fn body(resp: &Response) -> Vec<u8> {
    match &resp.body {
        Body::Empty => Vec::new(),
        Body::Bytes(b) => b.clone(),
        Body::File(region) => {
            let mut file = region.file.try_clone().unwrap();
            file.seek(SeekFrom::Start(region.offset)).unwrap();
            let mut out = vec![0; region.len as usize];
            file.read_exact(&mut out).unwrap();
            out
        }
        Body::Stream { .. } => panic!("static files never stream"),
    }
}

fn is_file_body(resp: &Response) -> bool {
    matches!(resp.body, Body::File(_))
}

// --- basics ---

#[test]
fn a_file_is_served_from_an_open_fd_with_validators() {
    let s = site();
    let r = s.get("/hello.txt");
    assert_eq!(r.status, 200);
    assert!(is_file_body(&r));
    assert_eq!(body(&r), b"hello world");
    assert_eq!(header(&r, "Content-Type"), Some("text/plain"));
    assert_eq!(header(&r, "Accept-Ranges"), Some("bytes"));
    assert!(header(&r, "ETag").unwrap().starts_with('"'));
    assert!(header(&r, "Last-Modified").unwrap().ends_with(" GMT"));
}

#[test]
fn framing_and_connection_headers_are_never_emitted() {
    let s = site();
    for r in [
        s.get("/hello.txt"),
        s.get("/"),
        s.get("/nope"),
        s.get("/docs"),
    ] {
        for h in [
            "Content-Length",
            "Transfer-Encoding",
            "Connection",
            "Date",
            "Server",
        ] {
            assert!(header(&r, h).is_none(), "{h} in {}", r.status);
        }
    }
}

#[test]
fn head_gets_the_same_response_as_get() {
    let s = site();
    let r = s.req(FileRequest {
        method: "HEAD",
        path: "/hello.txt",
        ..Default::default()
    });
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len_hint(), Some(11));
}

#[test]
fn other_methods_are_405_with_allow_and_unknown_ones_501() {
    let s = site();
    for m in ["FOO", "get", "PROPFIND"] {
        let r = s.req(FileRequest {
            method: m,
            path: "/hello.txt",
            ..Default::default()
        });
        assert_eq!(r.status, 501, "{m}");
    }
    for m in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"] {
        let r = s.req(FileRequest {
            method: m,
            path: "/hello.txt",
            ..Default::default()
        });
        assert_eq!(r.status, 405, "{m}");
        assert_eq!(header(&r, "Allow"), Some("GET, HEAD"));
    }
}

#[test]
fn missing_file_is_404() {
    let s = site();
    assert_eq!(s.get("/nope.txt").status, 404);
    assert_eq!(s.get("/nodir/x").status, 404);
}

#[test]
fn javascript_gets_application_javascript() {
    assert_eq!(
        header(&site().get("/app.js"), "Content-Type"),
        Some("application/javascript")
    );
}

#[test]
fn query_string_is_ignored_for_lookup() {
    let s = site();
    let r = s.req(FileRequest {
        method: "GET",
        path: "/hello.txt",
        query: "v=1",
        ..Default::default()
    });
    assert_eq!(r.status, 200);
}

// --- directories ---

#[test]
fn root_serves_its_index_as_html() {
    let r = site().get("/");
    assert_eq!(r.status, 200);
    assert_eq!(body(&r), b"<h1>home</h1>");
    assert_eq!(header(&r, "Content-Type"), Some("text/html"));
}

#[test]
fn directory_url_serves_its_index() {
    assert_eq!(body(&site().get("/docs/")), b"docs");
}

#[test]
fn directory_without_index_is_404_without_autoindex() {
    assert_eq!(site().get("/sub/").status, 404);
}

#[test]
fn directory_without_slash_redirects_keeping_the_query() {
    let s = site();
    let r = s.get("/docs");
    assert_eq!(r.status, 301);
    assert_eq!(header(&r, "Location"), Some("/docs/"));
    let r = s.req(FileRequest {
        method: "GET",
        path: "/docs",
        query: "a=1&b",
        ..Default::default()
    });
    assert_eq!(header(&r, "Location"), Some("/docs/?a=1&b"));
}

#[test]
fn redirect_location_is_never_scheme_relative() {
    let r = site().get("//docs");
    assert_eq!(r.status, 301);
    assert_eq!(header(&r, "Location"), Some("/docs/"));
}

#[test]
fn file_url_with_trailing_slash_is_404() {
    let s = site();
    assert_eq!(s.get("/hello.txt/").status, 404);
    let s = Site::new(StaticOptions {
        autoindex: true,
        ..Default::default()
    });
    assert_eq!(s.get("/hello.txt/").status, 404);
}

#[test]
fn autoindex_lists_sorted_escaped_entries_with_dirs_slashed() {
    let s = Site::new(StaticOptions {
        autoindex: true,
        ..Default::default()
    });
    s.tmp.write("site/sub/<b>&.txt", b"");
    s.tmp.write("site/sub/b c.txt", b"");
    s.tmp.write("site/sub/a:b", b"");
    fs::create_dir(s.site().join("sub/zdir")).unwrap();
    let r = s.get("/sub/");
    assert_eq!(r.status, 200);
    assert_eq!(header(&r, "Content-Type"), Some("text/html; charset=utf-8"));
    let html = String::from_utf8(body(&r)).unwrap();
    let order: Vec<usize> = [
        "href=\"../\"",
        "href=\"%3Cb%3E%26.txt\">&lt;b&gt;&amp;.txt</a>",
        "href=\"a.css\">a.css</a>",
        "href=\"a%3Ab\">a:b</a>",
        "href=\"b%20c.txt\">b c.txt</a>",
        "href=\"zdir/\">zdir/</a>",
    ]
    .iter()
    .map(|needle| {
        html.find(needle)
            .unwrap_or_else(|| panic!("{needle} not in {html}"))
    })
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{html}");
    assert!(!html.contains("<b>&"));
}

#[test]
fn autoindex_still_prefers_the_index_file() {
    let s = Site::new(StaticOptions {
        autoindex: true,
        ..Default::default()
    });
    assert_eq!(body(&s.get("/docs/")), b"docs");
}

#[test]
fn autoindex_at_the_mount_root_has_no_parent_link() {
    let s = Site::new(StaticOptions {
        autoindex: true,
        index: "none.html".into(),
        ..Default::default()
    });
    let html = String::from_utf8(body(&s.get("/"))).unwrap();
    assert!(!html.contains("../"));
    assert!(html.contains("hello.txt"));
}

#[test]
fn custom_index_name_is_used() {
    let s = Site::new(StaticOptions {
        index: "hello.txt".into(),
        ..Default::default()
    });
    assert_eq!(body(&s.get("/")), b"hello world");
}

// --- prefix ---

#[test]
fn prefix_mount_matches_only_its_subtree() {
    let s = Site::new(StaticOptions {
        prefix: "/static/".into(),
        ..Default::default()
    });
    assert!(s.files.matches("/static"));
    assert!(s.files.matches("/static/"));
    assert!(s.files.matches("/static/a/b"));
    assert!(!s.files.matches("/staticx"));
    assert!(!s.files.matches("/"));
    assert!(site().files.matches("/anything"));
}

#[test]
fn prefix_is_stripped_before_lookup() {
    let s = Site::new(StaticOptions {
        prefix: "/static".into(),
        ..Default::default()
    });
    assert_eq!(body(&s.get("/static/hello.txt")), b"hello world");
    assert_eq!(body(&s.get("/static/")), b"<h1>home</h1>");
    assert_eq!(s.get("/hello.txt").status, 404);
    assert_eq!(s.get("/statichello.txt").status, 404);
}

#[test]
fn mount_root_without_slash_redirects_under_the_prefix() {
    let s = Site::new(StaticOptions {
        prefix: "/static".into(),
        ..Default::default()
    });
    let r = s.get("/static");
    assert_eq!(r.status, 301);
    assert_eq!(header(&r, "Location"), Some("/static/"));
    assert_eq!(
        header(&s.get("/static/docs"), "Location"),
        Some("/static/docs/")
    );
}

// --- path safety ---

#[test]
fn percent_encoded_names_are_decoded() {
    let s = site();
    s.tmp.write("site/a b.txt", b"spaced");
    assert_eq!(body(&s.get("/a%20b.txt")), b"spaced");
    assert_eq!(body(&s.get("/%68ello.txt")), b"hello world");
}

#[test]
fn non_utf8_names_are_served() {
    let s = site();
    fs::write(s.site().join(OsStr::from_bytes(b"\xff\xfe.txt")), b"bytes").unwrap();
    assert_eq!(body(&s.get("/%FF%fe.txt")), b"bytes");
}

#[test]
fn dot_dot_cannot_escape_root() {
    let s = site();
    assert_eq!(s.get("/../outside/secret.txt").status, 404);
    assert_eq!(s.get("/sub/../../outside/secret.txt").status, 404);
    assert_eq!(body(&s.get("/sub/../hello.txt")), b"hello world");
}

#[test]
fn encoded_dot_dot_cannot_escape_root() {
    let s = site();
    assert_eq!(s.get("/%2e%2e/outside/secret.txt").status, 404);
    assert_eq!(s.get("/.%2E/%2e./outside/secret.txt").status, 404);
}

#[test]
fn encoded_slash_is_404() {
    let s = site();
    assert_eq!(s.get("/sub%2fa.css").status, 404);
    assert_eq!(s.get("/..%2foutside%2fsecret.txt").status, 404);
}

#[test]
fn encoded_nul_is_400() {
    assert_eq!(site().get("/hello.txt%00.html").status, 400);
}

#[test]
fn symlinks_inside_the_root_are_followed() {
    let s = site();
    symlink("hello.txt", s.site().join("link.txt")).unwrap();
    symlink("sub", s.site().join("linkdir")).unwrap();
    assert_eq!(body(&s.get("/link.txt")), b"hello world");
    assert_eq!(body(&s.get("/linkdir/a.css")), b"a{}");
}

#[test]
fn symlinks_leaving_the_root_are_403() {
    let s = Site::new(StaticOptions {
        autoindex: true,
        ..Default::default()
    });
    let outside = s.tmp.0.join("outside");
    symlink(outside.join("secret.txt"), s.site().join("secret.txt")).unwrap();
    symlink(&outside, s.site().join("out")).unwrap();
    assert_eq!(s.get("/secret.txt").status, 403);
    assert_eq!(s.get("/out/secret.txt").status, 403);
    assert_eq!(s.get("/out").status, 403);
    assert_eq!(s.get("/out/").status, 403);
}

#[test]
fn root_given_through_a_symlink_still_serves() {
    let s = site();
    let alias = s.tmp.0.join("alias");
    symlink(s.site(), &alias).unwrap();
    let files = StaticFiles::new(&alias, StaticOptions::default()).unwrap();
    let r = files.respond(&FileRequest {
        method: "GET",
        path: "/hello.txt",
        ..Default::default()
    });
    assert_eq!(r.status, 200);
}

#[test]
fn unreadable_file_is_403() {
    let s = site();
    let path = s.tmp.write("site/locked.txt", b"x");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
    if File::open(&path).is_ok() {
        return; // Running as root: permissions are not enforced.
    }
    assert_eq!(s.get("/locked.txt").status, 403);
}

#[test]
fn fifo_is_refused_without_blocking() {
    let s = site();
    let fifo = s.site().join("pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|st| st.success()) {
        return; // No mkfifo available.
    }
    assert_eq!(s.get("/pipe").status, 403);
}

// --- constructor ---

#[test]
fn missing_root_is_an_error_naming_the_path() {
    let err = StaticFiles::new("/no/such/ironhorse/root", StaticOptions::default()).unwrap_err();
    assert!(err.to_string().contains("/no/such/ironhorse/root"), "{err}");
}

#[test]
fn file_root_is_an_error_naming_the_path() {
    let s = site();
    let file = s.site().join("hello.txt");
    let err = StaticFiles::new(&file, StaticOptions::default()).unwrap_err();
    assert!(err.to_string().contains("hello.txt"), "{err}");
    assert!(err.to_string().contains("not a directory"), "{err}");
}

#[test]
fn index_with_a_slash_is_rejected() {
    let s = site();
    let opts = StaticOptions {
        index: "../x".into(),
        ..Default::default()
    };
    assert!(StaticFiles::new(s.site(), opts).is_err());
}

// --- conditional and range requests ---

fn validators(s: &Site, path: &str) -> (String, String) {
    let r = s.get(path);
    (
        header(&r, "ETag").unwrap().to_owned(),
        header(&r, "Last-Modified").unwrap().to_owned(),
    )
}

#[test]
fn matching_if_none_match_is_304_with_etag_and_no_body() {
    let s = site();
    let (etag, _) = validators(&s, "/hello.txt");
    let weak = format!("\"zzz\", W/{etag}");
    for inm in [etag.as_str(), "*", weak.as_str()] {
        let r = s.req(FileRequest {
            method: "GET",
            path: "/hello.txt",
            if_none_match: Some(inm.as_bytes().into()),
            ..Default::default()
        });
        assert_eq!(r.status, 304, "{inm}");
        assert_eq!(header(&r, "ETag"), Some(etag.as_str()));
        assert!(matches!(r.body, Body::Empty));
    }
}

#[test]
fn failed_if_match_or_if_unmodified_since_is_412_before_any_range() {
    let s = site();
    let (etag, lm) = validators(&s, "/hello.txt");
    let r = s.req(FileRequest {
        method: "GET",
        path: "/hello.txt",
        if_match: Some(b"\"nope\"".into()),
        range: Some(b"bytes=0-1"),
        ..Default::default()
    });
    assert_eq!(r.status, 412);
    let r = s.req(FileRequest {
        method: "HEAD",
        path: "/hello.txt",
        if_unmodified_since: Some(b"Thu, 01 Jan 1970 00:00:00 GMT"),
        ..Default::default()
    });
    assert_eq!(r.status, 412);
    // Preconditions that hold: the file as usual.
    let r = s.req(FileRequest {
        method: "GET",
        path: "/hello.txt",
        if_match: Some(etag.as_bytes().into()),
        if_unmodified_since: Some(lm.as_bytes()),
        range: Some(b"bytes=0-1"),
        ..Default::default()
    });
    assert_eq!(r.status, 206);
}

#[test]
fn stale_if_none_match_serves_200() {
    let s = site();
    let r = s.req(FileRequest {
        method: "GET",
        path: "/hello.txt",
        if_none_match: Some(b"\"stale\"".into()),
        ..Default::default()
    });
    assert_eq!(r.status, 200);
}

#[test]
fn if_modified_since_last_modified_is_304() {
    let s = site();
    let (_, lm) = validators(&s, "/hello.txt");
    let r = s.req(FileRequest {
        method: "GET",
        path: "/hello.txt",
        if_modified_since: Some(lm.as_bytes()),
        ..Default::default()
    });
    assert_eq!(r.status, 304);
    let r = s.req(FileRequest {
        method: "GET",
        path: "/hello.txt",
        if_modified_since: Some(b"Thu, 01 Jan 1970 00:00:00 GMT"),
        ..Default::default()
    });
    assert_eq!(r.status, 200);
}

#[test]
fn index_files_get_validators_and_304_too() {
    let s = site();
    let (etag, _) = validators(&s, "/");
    let r = s.req(FileRequest {
        method: "GET",
        path: "/",
        if_none_match: Some(etag.as_bytes().into()),
        ..Default::default()
    });
    assert_eq!(r.status, 304);
}

fn range(s: &Site, range: &str, if_range: Option<&str>) -> Response {
    s.req(FileRequest {
        method: "GET",
        path: "/hello.txt",
        range: Some(range.as_bytes()),
        if_range: if_range.map(str::as_bytes),
        ..Default::default()
    })
}

#[test]
fn single_range_is_206_with_content_range() {
    let s = site();
    let r = range(&s, "bytes=0-4", None);
    assert_eq!(r.status, 206);
    assert_eq!(header(&r, "Content-Range"), Some("bytes 0-4/11"));
    assert_eq!(body(&r), b"hello");
    assert_eq!(body(&range(&s, "bytes=6-", None)), b"world");
    let r = range(&s, "bytes=-3", None);
    assert_eq!(header(&r, "Content-Range"), Some("bytes 8-10/11"));
    assert_eq!(body(&r), b"rld");
    assert!(is_file_body(&r));
}

#[test]
fn unsatisfiable_range_is_416_with_size() {
    let r = range(&site(), "bytes=11-", None);
    assert_eq!(r.status, 416);
    assert_eq!(header(&r, "Content-Range"), Some("bytes */11"));
}

#[test]
fn multiple_or_malformed_ranges_serve_the_whole_file() {
    let s = site();
    for h in ["bytes=0-1,3-4", "bytes=x-", "lines=1-2"] {
        let r = range(&s, h, None);
        assert_eq!(r.status, 200, "{h}");
        assert_eq!(body(&r), b"hello world");
    }
}

#[test]
fn if_range_decides_between_partial_and_full() {
    let s = site();
    // A date validator is strong only once the clock is past its second: make the file an
    // hour old.
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let file = File::options()
        .write(true)
        .open(s.site().join("hello.txt"))
        .unwrap();
    file.set_modified(hour_ago).unwrap();
    let (etag, lm) = validators(&s, "/hello.txt");
    assert_eq!(range(&s, "bytes=0-0", Some(&etag)).status, 206);
    assert_eq!(range(&s, "bytes=0-0", Some(&lm)).status, 206);
    assert_eq!(range(&s, "bytes=0-0", Some("\"old\"")).status, 200);
    assert_eq!(
        range(&s, "bytes=0-0", Some("Thu, 01 Jan 1970 00:00:00 GMT")).status,
        200
    );
}

#[test]
fn io_errors_map_to_403_404_and_500() {
    let status = |e: io::Error| io_error(&e).status;
    assert_eq!(status(io::ErrorKind::PermissionDenied.into()), 403);
    assert_eq!(status(io::ErrorKind::NotFound.into()), 404);
    assert_eq!(status(io::Error::from_raw_os_error(libc::ENOTDIR)), 404);
    assert_eq!(status(io::Error::from_raw_os_error(libc::ELOOP)), 404);
    assert_eq!(status(io::Error::from_raw_os_error(libc::EIO)), 500);
}

#[test]
fn index_that_is_a_directory_counts_as_missing() {
    let s = site();
    fs::create_dir_all(s.site().join("odd/index.html")).unwrap();
    assert_eq!(s.get("/odd/").status, 404);
}

#[test]
fn a_date_if_range_for_a_file_changed_this_second_is_weak() {
    let s = site();
    let file = File::options()
        .write(true)
        .open(s.site().join("hello.txt"))
        .unwrap();
    file.set_modified(std::time::SystemTime::now()).unwrap();
    let (etag, lm) = validators(&s, "/hello.txt");
    assert_eq!(
        range(&s, "bytes=0-0", Some(&lm)).status,
        200,
        "the whole file"
    );
    assert_eq!(
        range(&s, "bytes=0-0", Some(&etag)).status,
        206,
        "the tag is strong"
    );
}

#[test]
fn range_is_for_get_only() {
    let s = site();
    let r = s.req(FileRequest {
        method: "HEAD",
        path: "/hello.txt",
        range: Some(b"bytes=0-1"),
        ..Default::default()
    });
    assert_eq!(r.status, 200);
    assert_eq!(header(&r, "Content-Range"), None);
    assert_eq!(
        body(&r),
        b"hello world",
        "the whole file's length for HEAD's headers"
    );
}
