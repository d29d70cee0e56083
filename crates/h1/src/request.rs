//! A parsed request head.

/// HTTP version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// How the request body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    None,
    Length(u64),
    Chunked,
}

/// A parsed, validated request head. Owns one copy of the head bytes; accessors borrow it.
#[derive(Debug, Clone)]
pub struct RequestHead {
    // implementation-defined fields
}

impl RequestHead {
    /// The method token, e.g. `GET`.
    pub fn method(&self) -> &str {
        todo!()
    }
    /// The request-target as sent (`/a%20b?x=1`, `*`, `http://h/p`, `host:443`).
    pub fn target(&self) -> &str {
        todo!()
    }
    /// The target's path part (before `?`), still percent-encoded. For an absolute-form
    /// target, the path of the URI (`/` when empty).
    pub fn path(&self) -> &str {
        todo!()
    }
    /// The query string after `?` (without it; `""` when absent); a `#fragment` is excluded.
    pub fn query(&self) -> &str {
        todo!()
    }
    pub fn version(&self) -> Version {
        todo!()
    }
    /// Header fields in the order received, names as sent, values with surrounding
    /// whitespace trimmed.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        std::iter::empty()
    }
    /// The first value of a header, name compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        todo!()
    }
    pub fn body_framing(&self) -> BodyFraming {
        todo!()
    }
    /// Whether the client wants the connection kept alive (from version and `Connection`).
    pub fn keep_alive(&self) -> bool {
        todo!()
    }
    /// `Expect: 100-continue` was sent.
    pub fn expects_continue(&self) -> bool {
        todo!()
    }
    pub fn is_head(&self) -> bool {
        self.method() == "HEAD"
    }
}
