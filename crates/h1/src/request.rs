//! A parsed request head.

/// HTTP version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
    /// A request that arrived over HTTP/2 (its head rebuilt by the HTTP/2 session).
    Http2,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
            Version::Http2 => "HTTP/2.0",
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

/// A byte range inside [`RequestHead`]'s buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) len: u32,
}

impl Span {
    pub(crate) fn new(start: usize, len: usize) -> Span {
        // Heads are bounded by the limits far below 4 GiB.
        Span {
            start: start as u32,
            len: len as u32,
        }
    }
    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.start as usize + self.len as usize
    }
}

/// One header field: name and (trimmed) value ranges.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Field {
    pub(crate) name: Span,
    pub(crate) value: Span,
}

/// The fields of a head, in order. A `Vec` (not inline slots) keeps a head small to move
/// (it travels by value from the parser to the application); the connection reuses the
/// allocation of the last head it was given back ([`crate::ServerConn::recycle`]).
pub(crate) type Fields = Vec<Field>;

/// The head's bytes: as text when they are all UTF-8 (checked once when parsed, so the
/// accessors slice it without validating again), else as bytes (field values may carry
/// obs-text).
#[derive(Debug, Clone)]
pub(crate) enum HeadBuf {
    Text(String),
    Bytes(Vec<u8>),
}

impl HeadBuf {
    pub(crate) fn new(bytes: Vec<u8>) -> HeadBuf {
        match String::from_utf8(bytes) {
            Ok(text) => HeadBuf::Text(text),
            Err(e) => HeadBuf::Bytes(e.into_bytes()),
        }
    }
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        match self {
            HeadBuf::Text(t) => t.into_bytes(),
            HeadBuf::Bytes(b) => b,
        }
    }
    fn bytes(&self, s: Span) -> &[u8] {
        match self {
            HeadBuf::Text(t) => &t.as_bytes()[s.range()],
            HeadBuf::Bytes(b) => &b[s.range()],
        }
    }
    fn str(&self, s: Span) -> &str {
        match self {
            HeadBuf::Text(t) => t.get(s.range()).unwrap_or(""),
            HeadBuf::Bytes(b) => std::str::from_utf8(&b[s.range()]).unwrap_or(""),
        }
    }
}

/// A parsed, validated request head. Owns one copy of the head bytes; accessors borrow it.
#[derive(Debug, Clone)]
pub struct RequestHead {
    pub(crate) buf: HeadBuf,
    pub(crate) method: Span,
    pub(crate) target: Span,
    pub(crate) path: Span,
    pub(crate) query: Span,
    /// `host[:port]` of an absolute-form target; empty for the other forms.
    pub(crate) authority: Span,
    pub(crate) version: Version,
    pub(crate) fields: Fields,
    pub(crate) framing: BodyFraming,
    pub(crate) keep_alive: bool,
    pub(crate) expects_continue: bool,
    pub(crate) has_upgrade: bool,
}

impl RequestHead {
    fn str_at(&self, s: Span) -> &str {
        // Method, target and names were validated as ASCII/UTF-8 when parsed.
        self.buf.str(s)
    }

    /// The method token, e.g. `GET`.
    pub fn method(&self) -> &str {
        self.str_at(self.method)
    }
    /// The request-target as sent (`/a%20b?x=1`, `*`, `http://h/p`, `host:443`).
    pub fn target(&self) -> &str {
        self.str_at(self.target)
    }
    /// The target's path part (before `?`), still percent-encoded. For an absolute-form
    /// target, the path of the URI (`/` when empty). For `*` and authority-form (CONNECT)
    /// targets, the whole target.
    pub fn path(&self) -> &str {
        let p = self.str_at(self.path);
        if p.is_empty() {
            "/"
        } else {
            p
        }
    }
    /// The query string after `?` (without it; `""` when absent); a `#fragment` is excluded.
    pub fn query(&self) -> &str {
        self.str_at(self.query)
    }
    pub fn version(&self) -> Version {
        self.version
    }
    /// Marks a head rebuilt from another protocol's request (HTTP/2) with its version.
    pub fn set_version(&mut self, version: Version) {
        self.version = version;
    }
    /// Marks a head rebuilt from another protocol's request whose body has no declared
    /// length and ends with its stream (HTTP/2 without `content-length`): framed as
    /// [`BodyFraming::Chunked`], a body of unknown length, as an HTTP/1.1 chunked one is.
    pub fn set_body_of_unknown_length(&mut self) {
        if self.framing == BodyFraming::None {
            self.framing = BodyFraming::Chunked;
        }
    }
    /// The host the request is for, `host[:port]` as sent: an absolute-form target's
    /// authority (without userinfo), which wins over `Host` (RFC 9112 §3.2.2), else the
    /// `Host` field; `None` when neither names one (HTTP/1.0 without Host). Both were
    /// validated as `uri-host [ ":" port ]` when parsed.
    pub fn host(&self) -> Option<&str> {
        if self.authority.len > 0 {
            return Some(self.str_at(self.authority));
        }
        self.header("host")
            .filter(|h| !h.is_empty())
            .and_then(|h| std::str::from_utf8(h).ok())
    }
    /// Whether the target is in absolute form (`http://host/path`).
    pub fn is_absolute_form(&self) -> bool {
        self.authority.len > 0
    }
    /// Header fields in the order received, names as sent, values with surrounding
    /// whitespace trimmed. Fields whose name contains `_` are dropped at parse time (as nginx
    /// and gunicorn do): CGI-style environments map `-` to `_`, so `Content_Length` could
    /// otherwise shadow `Content-Length` downstream.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.fields
            .iter()
            .map(|f| (self.str_at(f.name), self.buf.bytes(f.value)))
    }
    /// The first value of a header, name compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
    pub fn body_framing(&self) -> BodyFraming {
        self.framing
    }
    /// Whether the client wants the connection kept alive (from version and `Connection`).
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }
    /// `Expect: 100-continue` was sent.
    pub fn expects_continue(&self) -> bool {
        self.expects_continue
    }
    /// Whether the head has an `Upgrade` field (any value): noted while parsing, so the
    /// many requests without one skip the search for a WebSocket or protocol switch.
    pub fn has_upgrade(&self) -> bool {
        self.has_upgrade
    }
    pub fn is_head(&self) -> bool {
        self.method() == "HEAD"
    }
}
