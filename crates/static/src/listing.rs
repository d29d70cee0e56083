//! The `autoindex` HTML directory listing.
//!
//! Names come from the file system and are untrusted: hrefs are percent-encoded (so a name
//! like `a:b` or `#x` stays a relative path) and all text is HTML-escaped.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use percent_encoding::percent_encode;

use crate::path::SEGMENT;

/// Renders the listing of `dir`, titled with the (decoded) URL path `title`. Entries are
/// sorted by name bytes; directories (including symlinks to them) get a trailing `/`.
/// `parent_link` adds a `../` entry (not at the mount root).
pub fn render(dir: &Path, title: &str, parent_link: bool) -> io::Result<Vec<u8>> {
    let mut entries: Vec<(Vec<u8>, bool)> = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let is_dir = match entry.file_type() {
            Ok(t) if t.is_symlink() => fs::metadata(entry.path()).is_ok_and(|m| m.is_dir()),
            Ok(t) => t.is_dir(),
            Err(_) => false,
        };
        entries.push((entry.file_name().as_bytes().to_vec(), is_dir));
    }
    entries.sort();

    let title = escape_html(title);
    let mut html = format!(
        "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>Index of {title}</title></head>\n\
         <body>\n<h1>Index of {title}</h1>\n<ul>\n"
    );
    if parent_link {
        html.push_str("<li><a href=\"../\">../</a></li>\n");
    }
    for (name, is_dir) in &entries {
        let slash = if *is_dir { "/" } else { "" };
        let href = escape_html(&percent_encode(name, SEGMENT).to_string());
        let text = escape_html(&String::from_utf8_lossy(name));
        html.push_str(&format!(
            "<li><a href=\"{href}{slash}\">{text}{slash}</a></li>\n"
        ));
    }
    html.push_str("</ul>\n</body>\n</html>\n");
    Ok(html.into_bytes())
}

/// Escapes text for HTML element content and double- or single-quoted attributes.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_special_characters_are_escaped() {
        assert_eq!(
            escape_html("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }
}
