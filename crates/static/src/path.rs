//! Turning a percent-encoded URL path into path segments below the root.
//!
//! Resolution is purely lexical, so it costs no syscalls: `.` is dropped, `..` pops a segment
//! and, at the mount root, simply stays there (like a browser would resolve it), so no URL can
//! name anything above the root. Symlinks are checked later, on the opened file.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use percent_encoding::{percent_decode_str, percent_encode, AsciiSet, CONTROLS};

/// Why a URL path cannot name a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// A decoded NUL byte, or a path not starting with `/`: answered with 400.
    Invalid,
    /// A decoded `/` inside a segment (`%2f`): no file can have that name, answered with 404.
    EncodedSlash,
}

/// A URL path resolved to decoded segments relative to the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Decoded names, none empty, `.` or `..`, none containing `/` or NUL.
    pub segments: Vec<Vec<u8>>,
    /// The URL names a directory: it ends in `/` (or in a `.`/`..` segment), or is empty.
    pub dir_url: bool,
}

impl Resolved {
    /// The file system path below `root`. Bytes are used as-is (Linux names are bytes).
    pub fn to_path(&self, root: &Path) -> PathBuf {
        let mut path = root.to_path_buf();
        for seg in &self.segments {
            path.push(OsStr::from_bytes(seg));
        }
        path
    }

    /// The canonical URL of this path under `prefix`, re-encoded. Used for redirects, so that
    /// a request like `//evil.example` can never produce a scheme-relative `Location`.
    pub fn to_url(&self, prefix: &str, trailing_slash: bool) -> String {
        let mut url = String::from(prefix);
        for seg in &self.segments {
            url.push('/');
            url.extend(percent_encode(seg, SEGMENT));
        }
        if trailing_slash || self.segments.is_empty() {
            url.push('/');
        }
        url
    }
}

/// Bytes escaped when a name is put back into a URL path segment: everything that could end
/// the segment, start a query/fragment, be read as a scheme (`:`), or confuse HTML attributes.
pub const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'\'')
    .add(b'/')
    .add(b':')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Resolves the (percent-encoded, query-free) path that follows the mount prefix.
/// An empty path is the mount root without its trailing slash.
pub fn resolve(path: &str) -> Result<Resolved, PathError> {
    if path.is_empty() {
        return Ok(Resolved {
            segments: Vec::new(),
            dir_url: false,
        });
    }
    let rest = path.strip_prefix('/').ok_or(PathError::Invalid)?;
    let mut segments: Vec<Vec<u8>> = Vec::new();
    let mut dir_url = true;
    for raw in rest.split('/') {
        let seg: Vec<u8> = percent_decode_str(raw).collect();
        if seg.contains(&0) {
            return Err(PathError::Invalid);
        }
        if seg.contains(&b'/') {
            return Err(PathError::EncodedSlash);
        }
        dir_url = true;
        match seg.as_slice() {
            b"" | b"." => {}
            b".." => {
                segments.pop();
            }
            _ => {
                segments.push(seg);
                dir_url = false;
            }
        }
    }
    Ok(Resolved { segments, dir_url })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(path: &str) -> Vec<Vec<u8>> {
        resolve(path).unwrap().segments
    }

    #[test]
    fn plain_segments_are_split_and_file_urls_are_not_dir_urls() {
        let r = resolve("/a/b.txt").unwrap();
        assert_eq!(r.segments, vec![b"a".to_vec(), b"b.txt".to_vec()]);
        assert!(!r.dir_url);
    }

    #[test]
    fn trailing_slash_makes_a_dir_url() {
        let r = resolve("/a/").unwrap();
        assert_eq!(r.segments, vec![b"a".to_vec()]);
        assert!(r.dir_url);
        assert!(resolve("/").unwrap().dir_url);
    }

    #[test]
    fn empty_path_is_the_mount_root_without_slash() {
        let r = resolve("").unwrap();
        assert!(r.segments.is_empty());
        assert!(!r.dir_url);
    }

    #[test]
    fn dot_dot_at_root_stays_at_root() {
        assert!(segs("/../../etc/passwd") == vec![b"etc".to_vec(), b"passwd".to_vec()]);
    }

    #[test]
    fn encoded_dot_dot_cannot_escape_root() {
        assert_eq!(segs("/%2e%2e/%2E%2E/x"), vec![b"x".to_vec()]);
        assert_eq!(segs("/a/%2e%2e/b"), vec![b"b".to_vec()]);
    }

    #[test]
    fn dot_segments_and_double_slashes_are_dropped() {
        assert_eq!(
            segs("/a/./b//c"),
            vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
        );
    }

    #[test]
    fn trailing_dot_segments_make_a_dir_url() {
        assert!(resolve("/a/.").unwrap().dir_url);
        assert!(resolve("/a/b/..").unwrap().dir_url);
    }

    #[test]
    fn encoded_slash_is_rejected() {
        assert_eq!(resolve("/a%2fb"), Err(PathError::EncodedSlash));
        assert_eq!(resolve("/..%2F..%2Fetc"), Err(PathError::EncodedSlash));
    }

    #[test]
    fn encoded_nul_is_invalid() {
        assert_eq!(resolve("/a%00.txt"), Err(PathError::Invalid));
    }

    #[test]
    fn path_without_leading_slash_is_invalid() {
        assert_eq!(resolve("*"), Err(PathError::Invalid));
    }

    #[test]
    fn any_byte_can_be_percent_decoded() {
        assert_eq!(
            segs("/caf%C3%A9/%ff%20x"),
            vec!["café".as_bytes().to_vec(), b"\xff x".to_vec()]
        );
    }

    #[test]
    fn redirect_urls_are_reencoded_and_cannot_be_scheme_relative() {
        let r = resolve("//evil.example").unwrap();
        assert_eq!(r.to_url("", true), "/evil.example/");
        let r = resolve("/a b/%ff").unwrap();
        assert_eq!(r.to_url("/static", true), "/static/a%20b/%FF/");
        assert_eq!(resolve("").unwrap().to_url("/static", false), "/static/");
    }
}
