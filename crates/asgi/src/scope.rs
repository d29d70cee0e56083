//! The `http` connection scope, built on the loop thread from what the session captured.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

use ironhorse_app::{ConnInfo, RequestHead, Version};
use percent_encoding::percent_decode_str;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

/// What the scope is made from, captured on the driver's thread (no Python there).
pub(crate) struct RequestParts {
    pub head: RequestHead,
    pub conn: ConnInfo,
    /// A WebSocket handshake's offered subprotocols (`None`: an HTTP request).
    pub subprotocols: Option<Vec<String>>,
}

/// Server-wide scope values.
pub(crate) struct ScopeConfig {
    /// `--root-path`, without a trailing slash.
    pub root_path: String,
    /// For Unix-socket connections, which have no local address.
    pub server_name: String,
    pub server_port: u16,
    /// The Unix socket listened on, if any.
    pub unix_socket: Option<String>,
}

/// The client address and `server` pair of the last scope: most requests come from the
/// address the last one came from, to the same listener, so their text is made once.
#[derive(Default)]
pub(crate) struct ScopeCache {
    client_ip: Option<(IpAddr, Py<PyString>)>,
    server: Option<(SocketAddr, Py<PyTuple>)>,
}

impl ScopeCache {
    fn client_ip<'py>(&mut self, py: Python<'py>, ip: IpAddr) -> Bound<'py, PyString> {
        match &self.client_ip {
            Some((last, text)) if *last == ip => text.bind(py).clone(),
            _ => {
                let text = PyString::new(py, &ip.to_string());
                self.client_ip = Some((ip, text.clone().unbind()));
                text
            }
        }
    }

    fn server<'py>(&mut self, py: Python<'py>, local: SocketAddr) -> PyResult<Bound<'py, PyTuple>> {
        if let Some((last, pair)) = &self.server {
            if *last == local {
                return Ok(pair.bind(py).clone());
            }
        }
        let pair = (local.ip().to_string(), local.port()).into_pyobject(py)?;
        self.server = Some((local, pair.clone().unbind()));
        Ok(pair)
    }
}

/// The scope for one request (`http`) or WebSocket (`websocket`); `state` is a shallow copy of the lifespan state.
pub(crate) fn http_scope<'py>(
    py: Python<'py>,
    parts: &RequestParts,
    config: &ScopeConfig,
    state: Option<&Bound<'py, PyDict>>,
    cache: &mut ScopeCache,
) -> PyResult<Bound<'py, PyDict>> {
    let (head, conn) = (&parts.head, &parts.conn);
    let scope = PyDict::new(py);
    let websocket = parts.subprotocols.is_some();
    let kind = if websocket {
        intern!(py, "websocket")
    } else {
        intern!(py, "http")
    };
    scope.set_item(intern!(py, "type"), kind)?;
    let asgi = PyDict::new(py);
    asgi.set_item(intern!(py, "version"), intern!(py, "3.0"))?;
    asgi.set_item(intern!(py, "spec_version"), intern!(py, "2.4"))?;
    scope.set_item(intern!(py, "asgi"), asgi)?;
    let version = match head.version() {
        Version::Http10 => intern!(py, "1.0"),
        Version::Http2 => intern!(py, "2"),
        _ => intern!(py, "1.1"),
    };
    scope.set_item(intern!(py, "http_version"), version)?;
    match &parts.subprotocols {
        Some(subprotocols) => scope.set_item(intern!(py, "subprotocols"), subprotocols)?,
        None => scope.set_item(intern!(py, "method"), head.method())?,
    }
    let forwarded = conn.forwarded.as_ref();
    let scheme = forwarded
        .and_then(|f| f.scheme)
        .map_or(conn.scheme, |s| s.as_str());
    let scheme = match (websocket, scheme) {
        (false, scheme) => scheme,
        (true, "https") => "wss",
        (true, _) => "ws",
    };
    scope.set_item(intern!(py, "scheme"), scheme)?;
    let raw_path = head.path();
    let decoded: Cow<'_, str> = percent_decode_str(raw_path).decode_utf8_lossy();
    let root = config.root_path.as_str();
    // ASGI's `path` includes `root_path` (its WSGI section derives PATH_INFO by stripping
    // it): a request that came without the prefix (a proxy stripped it) gets it back, as
    // from uvicorn; one that carries it keeps its path, as `SCRIPT_NAME` is only stripped
    // from PATH_INFO where present.
    let (path, raw): (Cow<'_, str>, Cow<'_, [u8]>) = if root.is_empty() || is_under(&decoded, root)
    {
        (decoded, raw_path.as_bytes().into())
    } else {
        (
            format!("{root}{decoded}").into(),
            [root.as_bytes(), raw_path.as_bytes()].concat().into(),
        )
    };
    scope.set_item(intern!(py, "path"), PyString::new(py, &path))?;
    scope.set_item(intern!(py, "raw_path"), PyBytes::new(py, &raw))?;
    scope.set_item(
        intern!(py, "query_string"),
        PyBytes::new(py, head.query().as_bytes()),
    )?;
    scope.set_item(intern!(py, "root_path"), config.root_path.as_str())?;
    let headers = PyList::empty(py);
    // An absolute-form target's authority is the request's host, whatever `Host` says (RFC
    // 9112 §3.2.2): the app must not see a host other than the one a proxy routed on.
    let authority = head.is_absolute_form().then(|| head.host()).flatten();
    if let Some(authority) = authority {
        let pair = PyTuple::new(
            py,
            [
                PyBytes::new(py, b"host"),
                PyBytes::new(py, authority.as_bytes()),
            ],
        )?;
        headers.append(pair)?;
    }
    for (name, value) in head.headers() {
        if authority.is_some() && name.eq_ignore_ascii_case("host") {
            continue;
        }
        let name = PyBytes::new(py, name.to_ascii_lowercase().as_bytes());
        let pair = PyTuple::new(py, [name, PyBytes::new(py, value)])?;
        headers.append(pair)?;
    }
    scope.set_item(intern!(py, "headers"), headers)?;
    let client = match forwarded.and_then(|f| f.client) {
        Some((ip, port)) => Some((ip.to_string(), port.unwrap_or(0)).into_pyobject(py)?),
        None => match conn.peer {
            Some(p) => Some((cache.client_ip(py, p.ip()), p.port()).into_pyobject(py)?),
            None => None,
        },
    };
    scope.set_item(intern!(py, "client"), client)?;
    match conn.local {
        _ if conn.server_name.is_some() => {
            let server = conn
                .server_name
                .as_deref()
                .map(|s| (s.name.as_str(), s.port));
            scope.set_item(intern!(py, "server"), server)?
        }
        Some(local) => scope.set_item(intern!(py, "server"), cache.server(py, local)?)?,
        None => match &config.unix_socket {
            // A Unix socket: `[path, None]` (the ASGI spec's `server`).
            Some(path) => scope.set_item(intern!(py, "server"), (path.as_str(), py.None()))?,
            None => {
                let server = (config.server_name.as_str(), config.server_port);
                scope.set_item(intern!(py, "server"), server)?
            }
        },
    }
    if let Some(state) = state {
        scope.set_item(intern!(py, "state"), state.copy()?)?;
    }
    // The extensions served (the asgiref extensions document); trailers only to a client
    // that takes them.
    let extensions = PyDict::new(py);
    if websocket {
        extensions.set_item(intern!(py, "websocket.http.response"), PyDict::new(py))?;
    } else {
        extensions.set_item(intern!(py, "http.response.pathsend"), PyDict::new(py))?;
        if accepts_trailers(head) {
            extensions.set_item(intern!(py, "http.response.trailers"), PyDict::new(py))?;
        }
    }
    if let Some(tls) = &conn.tls {
        extensions.set_item(intern!(py, "tls"), tls_extension(py, tls)?)?;
    }
    scope.set_item(intern!(py, "extensions"), extensions)?;
    Ok(scope)
}

/// Whether `path` is `root` or below it (`/mount` and `/mount/x`, not `/mountain`).
fn is_under(path: &str, root: &str) -> bool {
    path.strip_prefix(root)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The asgiref `tls` extension for a connection whose TLS ironhorse terminates. The
/// server's own certificate is not kept per connection, so `server_cert` is `None` (the
/// spec's value for a server that cannot provide it); a client certificate reaches the app
/// only once verified, so `client_cert_error` is always `None`.
fn tls_extension<'py>(
    py: Python<'py>,
    tls: &ironhorse_app::TlsInfo,
) -> PyResult<Bound<'py, PyDict>> {
    let ext = PyDict::new(py);
    ext.set_item("server_cert", py.None())?;
    let chain: Vec<&str> = tls.client_cert.iter().map(|c| c.pem.as_str()).collect();
    ext.set_item("client_cert_chain", chain)?;
    ext.set_item(
        "client_cert_name",
        tls.client_cert.as_ref().map(|c| c.subject.as_str()),
    )?;
    ext.set_item("client_cert_error", py.None())?;
    ext.set_item("tls_version", tls.version_id)?;
    ext.set_item("cipher_suite", tls.cipher_id)?;
    Ok(ext)
}

/// Whether the request says the client takes trailer fields (`TE: trailers`, RFC 9110
/// §10.1.4) on a connection whose responses can carry them (HTTP/1.1: chunked; HTTP/2: a
/// last HEADERS frame).
pub(crate) fn accepts_trailers(head: &RequestHead) -> bool {
    matches!(head.version(), Version::Http11 | Version::Http2)
        && head.headers().any(|(name, value)| {
            name.eq_ignore_ascii_case("te")
                && value.split(|&b| b == b',').any(|item| {
                    let token = item.split(|&b| b == b';').next().unwrap_or_default();
                    token.trim_ascii().eq_ignore_ascii_case(b"trailers")
                })
        })
}

#[cfg(test)]
mod tests {
    use super::is_under;

    #[test]
    fn a_path_is_under_its_mount_point_by_whole_segments() {
        assert!(is_under("/mount", "/mount"));
        assert!(is_under("/mount/", "/mount"));
        assert!(is_under("/mount/x/y", "/mount"));
        assert!(!is_under("/mountain", "/mount"));
        assert!(!is_under("/x/mount", "/mount"));
        assert!(!is_under("/", "/mount"));
    }
}
