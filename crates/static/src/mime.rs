//! `Content-Type` from a file name's extension.
//!
//! A small table pins the values clients and tests rely on (e.g. `application/javascript`
//! where `mime_guess` says `text/javascript`, and no charset parameters); `mime_guess` covers
//! the long tail.

use std::path::Path;

const OCTET_STREAM: &str = "application/octet-stream";

/// Pinned types, by lower-case extension.
const OVERRIDES: &[(&str, &str)] = &[
    ("html", "text/html"),
    ("htm", "text/html"),
    ("css", "text/css"),
    ("js", "application/javascript"),
    ("mjs", "application/javascript"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("png", "image/png"),
    ("gif", "image/gif"),
    ("swf", "application/x-shockwave-flash"),
    ("svg", "image/svg+xml"),
    ("json", "application/json"),
    ("wasm", "application/wasm"),
    ("txt", "text/plain"),
];

/// The content type for `path`; `application/octet-stream` when unknown or extension-less.
pub fn content_type(path: &Path) -> &'static str {
    let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
        return OCTET_STREAM;
    };
    let ext = ext.to_ascii_lowercase();
    OVERRIDES
        .iter()
        .find(|(e, _)| *e == ext)
        .map(|(_, t)| *t)
        .or_else(|| mime_guess::from_ext(&ext).first_raw())
        .unwrap_or(OCTET_STREAM)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ct(name: &str) -> &'static str {
        content_type(Path::new(name))
    }

    #[test]
    fn pinned_types_are_exact() {
        assert_eq!(ct("a.html"), "text/html");
        assert_eq!(ct("a.htm"), "text/html");
        assert_eq!(ct("a.css"), "text/css");
        assert_eq!(ct("a.js"), "application/javascript");
        assert_eq!(ct("a.jpg"), "image/jpeg");
        assert_eq!(ct("a.jpeg"), "image/jpeg");
        assert_eq!(ct("a.png"), "image/png");
        assert_eq!(ct("a.gif"), "image/gif");
        assert_eq!(ct("a.swf"), "application/x-shockwave-flash");
        assert_eq!(ct("a.svg"), "image/svg+xml");
        assert_eq!(ct("a.json"), "application/json");
        assert_eq!(ct("a.wasm"), "application/wasm");
        assert_eq!(ct("a.txt"), "text/plain");
    }

    #[test]
    fn extensions_are_case_insensitive() {
        assert_eq!(ct("PHOTO.JPG"), "image/jpeg");
    }

    #[test]
    fn other_known_extensions_come_from_mime_guess() {
        assert_eq!(ct("a.pdf"), "application/pdf");
    }

    #[test]
    fn unknown_or_missing_extension_is_octet_stream() {
        assert_eq!(ct("README"), OCTET_STREAM);
        assert_eq!(ct("a.nosuchext"), OCTET_STREAM);
        assert_eq!(ct(".hidden"), OCTET_STREAM);
    }
}
