//! Building the WSGI `environ` dict (PEP 3333 §environ).
//!
//! Speed matters here (it is most of the per-request cost for small apps): every constant
//! entry lives in a prebuilt template dict that each request copies, keys are interned
//! strings made once, and `HTTP_*` keys are cached per header name as received.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use ironhorse_app::{Cached, ConnInfo, RequestHead, TlsInfo, Version};
use ironhorse_h1::BodyFraming;
use ironhorse_wire::forwarded::{split_host, Resolved, Scheme};
use percent_encoding::percent_decode_str;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use crate::file_wrapper::FileWrapper;
use crate::WsgiConfig;

/// The parts of a request the environ is built from.
///
/// Implemented by the HTTP parser's [`RequestHead`] and by [`RequestParts`] (for embedders
/// and tests that have no parser at hand).
pub trait RequestView {
    /// The method token, e.g. `GET`.
    fn method(&self) -> &str;
    /// The request-target as sent.
    fn target(&self) -> &str;
    /// The path, still percent-encoded.
    fn path(&self) -> &str;
    /// The query string without `?`.
    fn query(&self) -> &str;
    fn version(&self) -> Version;
    /// Header fields in the order received.
    fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_;
    /// The body length when the request declares one (not for chunked bodies).
    fn content_length(&self) -> Option<u64>;
    /// Whether a body of unknown length may follow (chunked, or HTTP/2's without
    /// `content-length`).
    fn body_of_unknown_length(&self) -> bool {
        self.headers()
            .any(|(name, _)| name.eq_ignore_ascii_case("transfer-encoding"))
    }
    /// `host[:port]` of an absolute-form target, which wins over `Host` (RFC 9112 §3.2.2).
    fn absolute_authority(&self) -> Option<&str> {
        None
    }
}

/// A request whose body the server read whole before the call: its real length is the
/// environ's `CONTENT_LENGTH`, and the `Transfer-Encoding` it arrived with (chunked) is gone
/// with the chunking.
pub(crate) struct KnownLength<'a, R: ?Sized> {
    pub(crate) request: &'a R,
    pub(crate) length: u64,
}

impl<R: RequestView + ?Sized> RequestView for KnownLength<'_, R> {
    fn method(&self) -> &str {
        self.request.method()
    }
    fn target(&self) -> &str {
        self.request.target()
    }
    fn path(&self) -> &str {
        self.request.path()
    }
    fn query(&self) -> &str {
        self.request.query()
    }
    fn version(&self) -> Version {
        self.request.version()
    }
    fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        (self.request.headers()).filter(|(name, _)| !name.eq_ignore_ascii_case("transfer-encoding"))
    }
    fn content_length(&self) -> Option<u64> {
        Some(self.length)
    }
    fn body_of_unknown_length(&self) -> bool {
        false
    }
    fn absolute_authority(&self) -> Option<&str> {
        self.request.absolute_authority()
    }
}

impl RequestView for RequestHead {
    fn method(&self) -> &str {
        RequestHead::method(self)
    }
    fn target(&self) -> &str {
        RequestHead::target(self)
    }
    fn path(&self) -> &str {
        RequestHead::path(self)
    }
    fn query(&self) -> &str {
        RequestHead::query(self)
    }
    fn version(&self) -> Version {
        RequestHead::version(self)
    }
    fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        RequestHead::headers(self)
    }
    fn content_length(&self) -> Option<u64> {
        match self.body_framing() {
            BodyFraming::Length(n) => Some(n),
            BodyFraming::None | BodyFraming::Chunked => None,
        }
    }
    fn body_of_unknown_length(&self) -> bool {
        self.body_framing() == BodyFraming::Chunked
    }
    fn absolute_authority(&self) -> Option<&str> {
        self.is_absolute_form().then(|| self.host()).flatten()
    }
}

/// A request described directly, without the HTTP parser.
#[derive(Debug, Clone)]
pub struct RequestParts {
    pub method: String,
    pub target: String,
    pub version: Version,
    pub headers: Vec<(String, Vec<u8>)>,
    pub content_length: Option<u64>,
}

impl RequestParts {
    /// An HTTP/1.1 request without headers or body.
    pub fn new(method: &str, target: &str) -> RequestParts {
        RequestParts {
            method: method.into(),
            target: target.into(),
            version: Version::Http11,
            headers: Vec::new(),
            content_length: None,
        }
    }

    /// Adds a header field.
    pub fn header(mut self, name: &str, value: impl Into<Vec<u8>>) -> RequestParts {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn split_target(&self) -> (&str, &str) {
        let t = self.target.split('#').next().unwrap_or("");
        t.split_once('?').unwrap_or((t, ""))
    }
}

impl RequestView for RequestParts {
    fn method(&self) -> &str {
        &self.method
    }
    fn target(&self) -> &str {
        &self.target
    }
    fn path(&self) -> &str {
        self.split_target().0
    }
    fn query(&self) -> &str {
        self.split_target().1
    }
    fn version(&self) -> Version {
        self.version
    }
    fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }
    fn content_length(&self) -> Option<u64> {
        self.content_length
    }
}

/// Interned per-request keys.
struct Keys {
    request_method: Py<PyString>,
    path_info: Py<PyString>,
    query_string: Py<PyString>,
    raw_uri: Py<PyString>,
    server_protocol: Py<PyString>,
    server_name: Py<PyString>,
    server_port: Py<PyString>,
    remote_addr: Py<PyString>,
    remote_host: Py<PyString>,
    remote_port: Py<PyString>,
    content_type: Py<PyString>,
    content_length: Py<PyString>,
    http_host: Py<PyString>,
    url_scheme: Py<PyString>,
    input: Py<PyString>,
}

/// What a connection's template was made from.
#[derive(Clone, Copy, PartialEq, Eq)]
struct ConnKey {
    peer: Option<SocketAddr>,
    local: Option<SocketAddr>,
    scheme: &'static str,
    /// The address of the connection's `TlsInfo`.
    tls: usize,
    /// The address of the connection's `ServerName`.
    server_name: usize,
}

impl ConnKey {
    fn of(conn: &ConnInfo) -> ConnKey {
        ConnKey {
            peer: conn.peer,
            local: conn.local,
            scheme: conn.scheme,
            tls: conn.tls.as_ref().map_or(0, |t| Arc::as_ptr(t) as usize),
            server_name: (conn.server_name.as_ref()).map_or(0, |s| Arc::as_ptr(s) as usize),
        }
    }
}

/// The environ template with a connection's own entries, kept with the connection.
struct ConnTemplate {
    key: ConnKey,
    dict: Py<PyDict>,
    /// The `HTTP_HOST` in `dict` (the `Host` of the connection's first request), which a
    /// request without `Host` removes and a request with another replaces.
    host: Option<Vec<u8>>,
}

impl std::ops::Deref for ConnTemplate {
    type Target = Py<PyDict>;
    fn deref(&self) -> &Py<PyDict> {
        &self.dict
    }
}

/// Most `HTTP_*` keys cached; beyond this, odd header names get a fresh key each time.
const MAX_CACHED_HEADER_KEYS: usize = 512;

/// Builds environ dicts for one application.
pub(crate) struct EnvironBuilder {
    template: Py<PyDict>,
    keys: Keys,
    /// Interned values for common methods and the two protocol versions.
    methods: Vec<(&'static str, Py<PyString>)>,
    http10: Py<PyString>,
    http2: Py<PyString>,
    /// The `HTTP_*` keys of the most frequent request header names, found without the
    /// lock and the hash of `header_keys`.
    common_keys: Vec<(&'static str, Py<PyString>)>,
    header_keys: Mutex<HashMap<Box<str>, Py<PyString>>>,
    /// `SCRIPT_NAME`, without a trailing `/`.
    root_path: String,
}

impl EnvironBuilder {
    pub(crate) fn new(py: Python<'_>, cfg: &WsgiConfig) -> PyResult<EnvironBuilder> {
        let intern = |s: &str| PyString::intern(py, s).unbind();
        let root_path = cfg.root_path.trim_end_matches('/').to_string();
        let template = PyDict::new(py);
        template.set_item(intern("wsgi.version"), PyTuple::new(py, [1, 0])?)?;
        template.set_item(intern("wsgi.url_scheme"), intern("http"))?;
        template.set_item(intern("wsgi.errors"), py.import("sys")?.getattr("stderr")?)?;
        template.set_item(intern("wsgi.multithread"), cfg.multithread)?;
        template.set_item(intern("wsgi.multiprocess"), cfg.multiprocess)?;
        template.set_item(intern("wsgi.run_once"), false)?;
        template.set_item(intern("wsgi.file_wrapper"), py.get_type::<FileWrapper>())?;
        template.set_item(intern("wsgi.input_terminated"), true)?;
        template.set_item(intern("SCRIPT_NAME"), intern(&root_path))?;
        template.set_item(intern("SERVER_NAME"), intern(&cfg.server_name))?;
        template.set_item(intern("SERVER_PORT"), intern(&cfg.server_port.to_string()))?;
        template.set_item(intern("QUERY_STRING"), intern(""))?;
        // The usual case; a request that differs overwrites them.
        template.set_item(intern("REQUEST_METHOD"), intern("GET"))?;
        template.set_item(intern("SERVER_PROTOCOL"), intern("HTTP/1.1"))?;
        template.set_item(intern("REMOTE_ADDR"), intern(""))?;
        template.set_item(intern("REMOTE_HOST"), intern(""))?;
        let keys = Keys {
            request_method: intern("REQUEST_METHOD"),
            path_info: intern("PATH_INFO"),
            query_string: intern("QUERY_STRING"),
            raw_uri: intern("RAW_URI"),
            server_protocol: intern("SERVER_PROTOCOL"),
            server_name: intern("SERVER_NAME"),
            server_port: intern("SERVER_PORT"),
            remote_addr: intern("REMOTE_ADDR"),
            remote_host: intern("REMOTE_HOST"),
            remote_port: intern("REMOTE_PORT"),
            content_type: intern("CONTENT_TYPE"),
            content_length: intern("CONTENT_LENGTH"),
            http_host: intern("HTTP_HOST"),
            url_scheme: intern("wsgi.url_scheme"),
            input: intern("wsgi.input"),
        };
        let methods = ["GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"]
            .into_iter()
            .map(|m| (m, intern(m)))
            .collect();
        Ok(EnvironBuilder {
            template: template.unbind(),
            keys,
            methods,
            http10: intern("HTTP/1.0"),
            http2: intern("HTTP/2"),
            common_keys: COMMON_HEADERS
                .iter()
                .map(|&name| (name, intern(&http_key(name))))
                .collect(),
            header_keys: Mutex::new(HashMap::new()),
            root_path,
        })
    }

    /// A fresh environ for `req`, with `input` as `wsgi.input`, and what the trusted
    /// forwarding headers said (`forwarded`) in place of the connection's own values.
    pub(crate) fn build<'py, R: RequestView + ?Sized>(
        &self,
        py: Python<'py>,
        req: &R,
        conn: &ConnInfo,
        forwarded: &Resolved,
        input: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let k = &self.keys;
        // The constant entries and the connection's own, made once per connection.
        let template = self.conn_template(py, conn, req)?;
        let env = template.bind(py).copy()?;
        let method = req.method();
        // The template says GET and HTTP/1.1, the usual case.
        if method != "GET" {
            match self.methods.iter().find(|(m, _)| *m == method) {
                Some((_, v)) => env.set_item(k.request_method.bind(py), v.bind(py))?,
                None => env.set_item(k.request_method.bind(py), method)?,
            }
        }
        let (path, target) = (req.path(), req.target());
        // Nothing to decode or strip (h1 let only ASCII through): the path as it came.
        let plain = self.root_path.is_empty() && !path.contains('%');
        let path_info = match plain {
            true => latin1_str(py, path),
            false => self.path_info(py, path),
        };
        let query = req.query();
        if !query.is_empty() {
            env.set_item(k.query_string.bind(py), latin1_str(py, query))?;
        }
        // A target that is its path (no query) with nothing decoded or stripped: one
        // string for both (a `str` is immutable).
        let raw_uri = match plain && target == path {
            true => path_info.clone(),
            false => latin1_str(py, target),
        };
        env.set_item(k.path_info.bind(py), path_info)?;
        env.set_item(k.raw_uri.bind(py), raw_uri)?;
        match req.version() {
            Version::Http11 => {}
            Version::Http10 => env.set_item(k.server_protocol.bind(py), self.http10.bind(py))?,
            Version::Http2 => env.set_item(k.server_protocol.bind(py), self.http2.bind(py))?,
        }
        // A forwarded client without a port gets port 0 (as uvicorn does): the proxy's own
        // port next to the client's address would describe neither.
        if let Some((ip, port)) = forwarded.client {
            // CGI's REMOTE_HOST: the address itself (no DNS lookups, as waitress does).
            let addr = PyString::new(py, &ip.to_string());
            env.set_item(k.remote_addr.bind(py), &addr)?;
            env.set_item(k.remote_host.bind(py), addr)?;
            env.set_item(k.remote_port.bind(py), port.unwrap_or(0).to_string())?;
        }
        let scheme = forwarded.scheme.map_or(conn.scheme, Scheme::as_str);
        if scheme != conn.scheme {
            env.set_item(k.url_scheme.bind(py), scheme)?;
        }
        if let Some(n) = req.content_length() {
            env.set_item(k.content_length.bind(py), n.to_string())?;
        }
        env.set_item(k.input.bind(py), input)?;
        let mut host_seen = false;
        for (name, value) in req.headers() {
            if !host_seen && name.eq_ignore_ascii_case("host") {
                // The template holds the connection's first `Host`: usually this one.
                host_seen = true;
                if template.host.as_deref() != Some(value) {
                    env.set_item(k.http_host.bind(py), latin1(py, value))?;
                }
                continue;
            }
            self.add_header(py, &env, name, value)?;
        }
        if !host_seen && template.host.is_some() {
            env.del_item(k.http_host.bind(py))?;
        }
        if let Some(authority) = req.absolute_authority() {
            // The target names the host; the app must not build URLs from a stale Host.
            env.set_item(k.http_host.bind(py), authority)?;
        }
        if let Some(host) = &forwarded.host {
            // The host the client asked the proxy for; the port defaults by scheme, as
            // gunicorn derives SERVER_PORT from Host.
            let (name, port) = split_host(host);
            let default_port = match scheme {
                "https" => Scheme::Https.default_port(),
                _ => Scheme::Http.default_port(),
            };
            env.set_item(k.http_host.bind(py), host)?;
            env.set_item(k.server_name.bind(py), name)?;
            env.set_item(
                k.server_port.bind(py),
                port.unwrap_or(default_port).to_string(),
            )?;
        }
        Ok(env)
    }

    /// The template with the connection's entries (server and client addresses, scheme,
    /// TLS), kept in the connection's [`ConnCache`](ironhorse_app::ConnCache): formatting
    /// addresses and ports per request was ≈ 3 % of a hello-world request's CPU.
    fn conn_template<'a, R: RequestView + ?Sized>(
        &self,
        py: Python<'_>,
        conn: &'a ConnInfo,
        req: &R,
    ) -> PyResult<Cached<'a, ConnTemplate>> {
        let key = ConnKey::of(conn);
        let cached = conn
            .cache
            .get_or_try_init(|| self.make_conn_template(py, conn, key, req))?;
        if cached.key == key {
            return Ok(cached);
        }
        // Made for other addresses (a clone changed since): not this connection's.
        self.make_conn_template(py, conn, key, req)
            .map(Cached::Unkept)
    }

    /// The template for `conn`, with `req`'s `Host` (the connection's next requests
    /// usually send the same one) as `HTTP_HOST`.
    fn make_conn_template<R: RequestView + ?Sized>(
        &self,
        py: Python<'_>,
        conn: &ConnInfo,
        key: ConnKey,
        req: &R,
    ) -> PyResult<ConnTemplate> {
        let k = &self.keys;
        let env = self.template.bind(py).copy()?;
        let host = req
            .headers()
            .find(|(name, _)| name.eq_ignore_ascii_case("host"))
            .map(|(_, value)| value.to_vec());
        if let Some(host) = &host {
            env.set_item(k.http_host.bind(py), latin1(py, host))?;
        }
        if let Some(local) = conn.local {
            env.set_item(k.server_name.bind(py), local.ip().to_string())?;
            env.set_item(k.server_port.bind(py), local.port().to_string())?;
        }
        if let Some(server) = &conn.server_name {
            env.set_item(k.server_name.bind(py), &server.name)?;
            env.set_item(k.server_port.bind(py), server.port.to_string())?;
        }
        if let Some(peer) = conn.peer {
            // CGI's REMOTE_HOST: the address itself (no DNS lookups, as waitress does).
            let addr = PyString::new(py, &peer.ip().to_string());
            env.set_item(k.remote_addr.bind(py), &addr)?;
            env.set_item(k.remote_host.bind(py), addr)?;
            env.set_item(k.remote_port.bind(py), peer.port().to_string())?;
        }
        if conn.scheme != "http" {
            env.set_item(k.url_scheme.bind(py), conn.scheme)?;
        }
        if let Some(tls) = &conn.tls {
            set_tls_keys(&env, tls)?;
        }
        Ok(ConnTemplate {
            key,
            dict: env.unbind(),
            host,
        })
    }

    /// `HTTP_*` (or `CONTENT_TYPE`), joining repeats with `, ` (`; ` for Cookie). Names with
    /// `_` are dropped so `X_Forwarded_For` cannot pose as `X-Forwarded-For`; Content-Length
    /// comes from the parsed framing instead.
    fn add_header(
        &self,
        py: Python<'_>,
        env: &Bound<'_, PyDict>,
        name: &str,
        value: &[u8],
    ) -> PyResult<()> {
        if name.contains('_') || name.eq_ignore_ascii_case("content-length") {
            return Ok(());
        }
        let key = if name.eq_ignore_ascii_case("content-type") {
            self.keys.content_type.bind(py).clone()
        } else {
            self.header_key(py, name)
        };
        let value = latin1(py, value);
        match env.get_item(&key)? {
            None => env.set_item(key, value),
            Some(prev) => {
                let sep = if name.eq_ignore_ascii_case("cookie") {
                    "; "
                } else {
                    ", "
                };
                env.set_item(key, prev.add(sep)?.add(value)?)
            }
        }
    }

    fn header_key<'py>(&self, py: Python<'py>, name: &str) -> Bound<'py, PyString> {
        if let Some((_, key)) = self
            .common_keys
            .iter()
            .find(|(common, _)| common.eq_ignore_ascii_case(name))
        {
            return key.bind(py).clone();
        }
        // The lock is never held while Python code could run (and switch threads).
        if let Some(key) = lock(&self.header_keys).get(name) {
            return key.bind(py).clone();
        }
        let key = PyString::intern(py, &http_key(name));
        let mut cache = lock(&self.header_keys);
        if cache.len() < MAX_CACHED_HEADER_KEYS {
            cache.insert(name.into(), key.clone().unbind());
        }
        key
    }

    /// The percent-decoded path as a latin-1 str, without the `SCRIPT_NAME` prefix.
    fn path_info<'py>(&self, py: Python<'py>, raw: &str) -> Bound<'py, PyString> {
        let decoded: Cow<'_, [u8]> = percent_decode_str(raw).into();
        let root = self.root_path.as_bytes();
        let path = match decoded.strip_prefix(root) {
            Some(rest) if !root.is_empty() && (rest.is_empty() || rest[0] == b'/') => rest,
            _ => &decoded[..],
        };
        latin1(py, path)
    }
}

/// Request header names most clients send, in the spelling most send them (matched
/// case-insensitively).
const COMMON_HEADERS: &[&str] = &[
    "Host",
    "User-Agent",
    "Accept",
    "Accept-Encoding",
    "Accept-Language",
    "Connection",
    "Cookie",
    "Referer",
    "Cache-Control",
    "Origin",
    "Authorization",
    "If-None-Match",
    "If-Modified-Since",
    "X-Forwarded-For",
    "X-Forwarded-Proto",
    "X-Request-Id",
];

/// CGI's name for a request header: `HTTP_` and the name upper-cased, `-` as `_`.
fn http_key(name: &str) -> String {
    let mut key = String::with_capacity(5 + name.len());
    key.push_str("HTTP_");
    key.extend(name.chars().map(|c| match c {
        '-' => '_',
        c => c.to_ascii_uppercase(),
    }));
    key
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// [`latin1`] of text already known to be UTF-8 (ASCII, in practice: a request target).
fn latin1_str<'py>(py: Python<'py>, s: &str) -> Bound<'py, PyString> {
    if s.is_ascii() {
        PyString::new(py, s)
    } else {
        latin1(py, s.as_bytes())
    }
}

/// Bytes as a native string, PEP 3333 style: each byte one code point (latin-1).
pub(crate) fn latin1<'py>(py: Python<'py>, bytes: &[u8]) -> Bound<'py, PyString> {
    match std::str::from_utf8(bytes) {
        Ok(s) if bytes.is_ascii() => PyString::new(py, s),
        _ => PyString::new(
            py,
            &bytes.iter().map(|&b| char::from(b)).collect::<String>(),
        ),
    }
}
/// The TLS facts of a connection ironhorse terminated, under Apache mod_ssl's names (which
/// uWSGI and many frameworks' client-certificate middlewares read): `HTTPS`, `SSL_PROTOCOL`,
/// `SSL_CIPHER`, `SSL_TLS_SNI`, and for a verified client certificate `SSL_CLIENT_S_DN`,
/// `SSL_CLIENT_I_DN`, `SSL_CLIENT_M_SERIAL`, `SSL_CLIENT_CERT` (PEM), `SSL_CLIENT_VERIFY`.
fn set_tls_keys(env: &Bound<'_, PyDict>, tls: &TlsInfo) -> PyResult<()> {
    env.set_item("HTTPS", "on")?;
    env.set_item("SSL_PROTOCOL", tls.protocol)?;
    env.set_item("SSL_CIPHER", &tls.cipher)?;
    if let Some(name) = &tls.server_name {
        env.set_item("SSL_TLS_SNI", name)?;
    }
    match &tls.client_cert {
        Some(cert) => {
            env.set_item("SSL_CLIENT_VERIFY", "SUCCESS")?;
            env.set_item("SSL_CLIENT_S_DN", &cert.subject)?;
            env.set_item("SSL_CLIENT_I_DN", &cert.issuer)?;
            env.set_item("SSL_CLIENT_M_SERIAL", &cert.serial)?;
            env.set_item("SSL_CLIENT_CERT", &cert.pem)?;
        }
        None => env.set_item("SSL_CLIENT_VERIFY", "NONE")?,
    }
    Ok(())
}
