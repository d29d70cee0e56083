//! Every setting, declared once, typed: the [`Settings`] struct. Its clap declaration is the
//! table from which the command line, the `IRONHORSE_*` environment variables, the config
//! file's keys (see `values.rs`) and the reference in `docs/settings.md` are all generated;
//! each default is written here and nowhere else (the HTTP parser's limits: here, taken
//! from `ironhorse_h1::Limits::DEFAULT`, which its unit tests use too).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Arg, ArgAction, CommandFactory, Parser};
use ironhorse_h1::Limits;
use ironhorse_log::Level;
use ironhorse_process::model::Model;
use ironhorse_tls::{CertReqs, MinVersion};
use ironhorse_wire::forwarded::{Headers, SchemeHeaders};
use ironhorse_wire::AllowList;

use crate::units::{self, Wire};

/// Most connections one process serves at once, when `--max-connections` is not given:
/// a thread per connection costs a stack each (and a prefork worker serves its read-ahead
/// connections one after another), an event loop's connection only a buffer.
pub const MAX_CONNECTIONS_THREADS: usize = 1000;
pub const MAX_CONNECTIONS_EVENTS: usize = 50_000;
/// Greenlets at once per worker under `-k gevent` when `--max-connections` (alias
/// `--worker-connections`) is not given: gunicorn's default.
pub const GEVENT_GREENLETS: usize = 1000;

fn max_connections_help() -> String {
    format!("Most connections one process serves at once (default {MAX_CONNECTIONS_THREADS} for thread and prefork, {MAX_CONNECTIONS_EVENTS} for event, async, threadpool and hybrid, whose idle connections wait in one epoll set); beyond it new clients wait in the backlog. A prefork worker reads ahead on up to this many while it runs one request at a time (gunicorn's --worker-connections); 1 makes it hold one connection at a time. Under -k gevent it also bounds the greenlets at once (default {GEVENT_GREENLETS} there, gunicorn's).")
}

/// The effective settings.
#[derive(Parser, Debug)]
#[command(
    name = "ironhorse",
    version,
    about,
    after_help = "Steer a running server: ironhorse ctl --socket PATH status|workers|reload|add N|remove N|reopen-logs|stop [--quick] (see ironhorse ctl --help)."
)]
pub struct Settings {
    #[arg(long, hide = true)]
    pub print_settings_doc: bool,
    #[arg(
        short = 'c',
        long,
        value_name = "FILE",
        help = "Read settings from this TOML file (keys are the setting names); command line and environment override it."
    )]
    pub config: Option<PathBuf>,
    #[arg(
        long,
        help = "Print the effective settings as TOML, each with where it came from, and exit."
    )]
    pub print_config: bool,
    #[arg(
        long,
        help = "Check the settings and load the application, then exit (0 when all is well)."
    )]
    pub check_config: bool,
    #[arg(
        value_name = "APP",
        help = "The WSGI application: MODULE:CALLABLE, MODULE:FACTORY() or MODULE (meaning MODULE:application), as gunicorn takes it."
    )]
    pub app: Option<String>,
    #[arg(
        short = 'b',
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8000",
        help = "Where to listen: HOST:PORT, [V6]:PORT, unix:PATH or fd://N; repeatable. Port 0 picks a free port (the address is printed)."
    )]
    pub bind: Vec<String>,
    #[arg(long, value_name = "DIR", help = "Serve the files under DIR.")]
    pub root: Option<PathBuf>,
    #[arg(long, help = "List directories that have no index.html.")]
    pub autoindex: bool,
    #[arg(
        id = "static",
        long = "static",
        value_name = "PREFIX=DIR",
        help = "Serve the files under DIR at URL PREFIX from Rust, in front of the app (e.g. /static=./public); repeatable."
    )]
    pub static_mounts: Vec<String>,
    #[arg(long, value_name = "N", default_value = "1000", value_parser = units::count, help = "Static files: most files each process keeps open with their response headers (nginx's open_file_cache max), and, for files up to 16 KiB, their bytes; a hit costs one stat instead of open, fstat, read and close. Each hit checks the file is unchanged (same inode, size, mode, mtime and ctime: in-place writes and rename deploys are seen at once). 0: off.")]
    pub static_cache_entries: usize,
    #[arg(long, value_name = "BYTES", default_value = "4194304", value_parser = units::bytes, help = "Static files: most bytes of small files' contents each process keeps in its open-file cache (--static-cache-entries). Default 4 MiB.")]
    pub static_cache_bytes: u64,
    #[arg(long, value_name = "SECONDS", default_value = "0", value_parser = units::duration, help = "Static files: how long a cached file is trusted without checking it again (nginx's open_file_cache_valid). 0, the default, checks on every request, so a change is never missed; more saves that stat per request, but a file changed or deleted is served as it was for up to this long.")]
    pub static_cache_valid: Duration,
    #[arg(
        long,
        value_name = "DIR",
        help = "Change to DIR before loading the app (it is also put on sys.path)."
    )]
    pub chdir: Option<PathBuf>,
    #[arg(
        long,
        value_name = "DIR",
        help = "Put DIR first on sys.path; repeatable, or comma-separated."
    )]
    pub pythonpath: Vec<String>,
    #[arg(
        long,
        value_name = "DIR",
        help = "Run the app in this virtualenv (default: $VIRTUAL_ENV)."
    )]
    pub virtualenv: Option<PathBuf>,
    #[arg(
        long,
        value_name = "PATH",
        help = "The app's mount point. WSGI: SCRIPT_NAME, stripped from PATH_INFO where the path starts with it. ASGI: root_path, which the scope's path includes (put in front of a path that lacks it, as uvicorn does, for a proxy that strips the prefix)."
    )]
    pub root_path: Option<String>,
    #[arg(
        long,
        help = "Import the app in the master before forking workers (copy-on-write); otherwise each worker imports it."
    )]
    pub preload: bool,
    #[arg(long, help = "Show tracebacks in 500 responses (never in production).")]
    pub debug: bool,
    #[arg(short = 'k', long, alias = "worker-class", value_name = "MODEL", default_value = "event", value_parser = units::model, help = "Concurrency model: single, fork, thread, threadpool, prefork, hybrid, event, async (gunicorn's sync and gthread name prefork and hybrid; its asgi names event; its gevent is event with --interface gevent).")]
    pub model: &'static Model,
    #[arg(short = 'w', long, value_name = "N", default_value = "1", value_parser = units::positive, help = "Worker processes (prefork, hybrid; event and async with N > 1).")]
    pub workers: usize,
    #[arg(long, value_name = "K", default_value = "16", value_parser = units::count, help = "Threads per process that run requests: the pool of threadpool and hybrid, the application threads of event and async. 0 (event only, HTTP/1.1): the WSGI application runs on the event loop's own thread, bjoern-style (no hand-off; bodies read whole first, up to --buffer-request-body, longer ones answered 413; an app stuck in a call stops the worker's heartbeat and its master replaces it after --timeout).")]
    pub threads: usize,
    #[arg(long, value_name = "N", default_value = "1", value_parser = units::positive, help = "async: tokio runtime threads per process.")]
    pub runtime_threads: usize,
    #[arg(long, alias = "worker-connections", value_name = "N", value_parser = units::positive, help = max_connections_help())]
    pub max_connections: Option<usize>,
    #[arg(long, value_name = "N", default_value = "512", value_parser = units::positive, help = "fork model: most child processes at once.")]
    pub max_children: usize,
    #[arg(long, value_name = "N", default_value = "2048", value_parser = units::count, help = "Listen queue length.")]
    pub backlog: usize,
    #[arg(
        long,
        help = "Each worker listens on its own SO_REUSEPORT socket (TCP): the kernel spreads connections evenly instead of waking every worker, but connections queued on a worker's socket wait for that worker (while it is busy or at --max-connections, no idle sibling takes them) and are reset if it exits, and USR2 cannot hand such sockets over."
    )]
    pub reuse_port: bool,
    #[arg(long, value_name = "NAME", default_value = "http", value_parser = units::wire, help = "Wire protocol: http; uwsgi, the binary protocol of nginx's uwsgi_pass (requests from the peers in --uwsgi-allow-from, answered as HTTP, one per connection); or the seeds' echo and reverse TCP exercises; http+echo is HTTP where `Upgrade: echo` (or the HTTP/2 preface) switches the connection to echo.")]
    pub protocol: Wire,
    #[arg(long, value_name = "SECONDS", default_value = "0", value_parser = units::duration, help = "reverse protocol: simulated handler time before answering (seed 000 uses 5).")]
    pub work_delay: Duration,
    #[arg(long, alias = "keepalive", value_name = "SECONDS", default_value = "5", value_parser = units::duration, help = "How long an idle keep-alive connection is kept open.")]
    pub keep_alive: Duration,
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = units::duration, help = "How long a client may take to send a request head (slowloris defence).")]
    pub header_timeout: Duration,
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = units::duration, help = "Longest wait for the next bytes of a request body.")]
    pub body_timeout: Duration,
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = units::duration, help = "On SIGTERM/SIGINT, how long in-flight requests may take to finish.")]
    pub graceful_timeout: Duration,
    #[arg(
        long,
        value_name = "FILE",
        help = "Write an access log line per request to FILE ('-' for stdout)."
    )]
    pub access_logfile: Option<String>,
    #[arg(long, alias = "access-log-format", value_name = "FORMAT", default_value = ironhorse_log::DEFAULT_FORMAT, help = "Access log format, gunicorn's atoms: h l u t r m U q H s B b f a T D M L p {header}i {header}o {var}e.")]
    pub access_logformat: String,
    #[arg(long, help = "Write the access log as one JSON object per line.")]
    pub access_log_json: bool,
    #[arg(
        long,
        value_name = "FILE",
        default_value = "-",
        help = "Write the error log to FILE ('-' for stderr). With a FILE, standard error goes there too (application tracebacks, wsgi.errors, sys.stderr: nothing is lost under -D), and the addresses listened on are written to both the console and the file."
    )]
    pub error_logfile: String,
    #[arg(long, value_name = "LEVEL", default_value = "info", value_parser = units::level, help = "Error log level: debug, info, warning, error, critical.")]
    pub log_level: Level,
    #[arg(long, value_name = "SECONDS", value_parser = units::duration, help = "Longest an application request may run: then the client gets 504 (or a closed connection), the app gets TimeoutError in its thread, and a worker left stuck is replaced.")]
    pub request_timeout: Option<Duration>,
    #[arg(short = 't', long, value_name = "SECONDS", default_value = "30", value_parser = units::duration, help = "Workers silent this long (stuck in a request or a C call) are aborted and replaced; 0 disables.")]
    pub timeout: Duration,
    #[arg(long, value_name = "N", default_value = "0", value_parser = units::count, help = "Recycle a worker after this many requests (0: never).")]
    pub max_requests: usize,
    #[arg(long, value_name = "N", default_value = "0", value_parser = units::count, help = "Add a random 0..N to each worker's --max-requests, so they do not recycle together.")]
    pub max_requests_jitter: usize,
    #[arg(long, value_name = "BYTES", value_parser = units::bytes, help = "Recycle a worker whose resident memory passes this (suffixes K, M, G).")]
    pub max_worker_memory: Option<u64>,
    #[arg(
        long,
        value_name = "FILE",
        help = "Write the master's process id to FILE (PATH.2 while an upgraded master waits for the old one to exit). A FILE naming another running process refuses the start (\"Already running on PID\"), as gunicorn does; one whose process is gone is replaced."
    )]
    pub pid: Option<PathBuf>,
    #[arg(
        short = 'n',
        long,
        value_name = "NAME",
        default_value = "ih",
        help = "Process name prefix shown by ps -o comm and top: NAME:master, NAME:w:MODEL (15 bytes are kept)."
    )]
    pub name: String,
    #[arg(
        long,
        value_name = "PATH",
        help = "Take `ironhorse ctl` commands (status, workers, reload, add N, remove N, reopen-logs, stop) on this unix socket, mode 0600; needs a master (prefork, hybrid; event and async with -w 2 or more)."
    )]
    pub control_socket: Option<PathBuf>,
    #[arg(
        long,
        help = "Development: replace the workers when a file changes under --chdir, the app module's package or a --reload-extra-file path (one process: re-exec); an import error is served as a 500 until the next save. Not with --preload."
    )]
    pub reload: bool,
    #[arg(
        long,
        value_name = "PATH",
        help = "With --reload, also watch this file or folder (templates, data); repeatable."
    )]
    pub reload_extra_file: Vec<PathBuf>,
    #[arg(short = 'D', long, help = "Detach into the background.")]
    pub daemon: bool,
    #[arg(
        long,
        value_name = "USER",
        help = "Switch to this user (name or id) after binding the sockets and opening the log files (as gunicorn's master opens them: a root-only log directory works); the pid file and a later USR1 reopen happen as this user."
    )]
    pub user: Option<String>,
    #[arg(
        long,
        value_name = "GROUP",
        help = "Switch to this group (name or id) after binding."
    )]
    pub group: Option<String>,
    #[arg(long, value_name = "OCTAL", value_parser = units::octal, help = "File mode creation mask, e.g. 022.")]
    pub umask: Option<u32>,
    #[arg(
        short = 'e',
        long,
        value_name = "KEY=VALUE",
        value_parser = units::env_assignment,
        help = "Set an environment variable for the application; repeatable. A value without = is refused at startup."
    )]
    pub env: Vec<String>,
    #[arg(long, value_name = "LIST", default_value = "127.0.0.1,::1", value_parser = AllowList::parse, help = "Peers trusted as proxies: their forwarding headers (--forwarded-headers, --secure-scheme-headers) set REMOTE_ADDR, wsgi.url_scheme and the host. Addresses and networks (10.0.0.0/8, fd00::/8), comma-separated; * trusts every peer (only when nothing else can reach the server); an empty value trusts nobody. Unix-socket peers are trusted unless the list is empty, as in gunicorn (whoever may open the socket file is the proxy: guard it with its permissions). From any other peer those headers are plain HTTP_* entries and change nothing.")]
    pub forwarded_allow_ips: AllowList,
    #[arg(long, value_name = "VERSIONS", default_value = "off", value_parser = units::proxy_versions, help = "Read HAProxy's PROXY protocol header (what HAProxy, AWS NLB and nginx's stream proxy_protocol send first) from the peers in --proxy-allow-from: v1, v2 or v1,v2; off by default. Such a peer must open every connection with a header, whose client address becomes REMOTE_ADDR/REMOTE_PORT and the access log's %(h)s; a missing or malformed one (or none within --header-timeout) closes the connection with a log line. Other peers are served as if this were off (as gunicorn does), but a PROXY header from them is refused: the connection is closed with a log line.")]
    pub proxy_protocol: units::ProxyVersions,
    #[arg(long, value_name = "LIST", default_value = "127.0.0.1,::1", value_parser = AllowList::parse, help = "Peers that must (and alone may) send a PROXY protocol header when --proxy-protocol is on: addresses and networks (10.0.0.0/8), comma-separated, * for every peer. Unix-socket peers count as allowed unless the list is empty.")]
    pub proxy_allow_from: AllowList,
    #[arg(long, value_name = "LIST", default_value = "127.0.0.1,::1", value_parser = AllowList::parse, help = "With --protocol uwsgi: the peers served (the proxy, e.g. nginx's uwsgi_pass), whose packets name the client (REMOTE_ADDR, HTTPS). Addresses and networks, comma-separated, * for every peer; any other peer is closed with a log line. Unix-socket peers are served unless the list is empty (guard the socket file with its permissions).")]
    pub uwsgi_allow_from: AllowList,
    #[arg(
        long,
        value_name = "PATH",
        help = "Answer GET/HEAD requests for this exact path (e.g. /healthz) from the server itself, never the application: 200 ok while serving, 503 draining once the process was asked to stop (TERM, INT, QUIT) and finishes its requests. For load balancer and Kubernetes readiness/liveness probes."
    )]
    pub health_path: Option<String>,
    // --- metrics (issue 13) ---
    #[arg(
        long,
        value_name = "ADDR",
        value_parser = ironhorse_metrics::MetricsAddr::parse,
        help = "Serve Prometheus metrics at /metrics on this address of its own (IP:PORT, e.g. 127.0.0.1:9100, or unix:PATH), never through the application nor on --bind's sockets: requests by method and status class, server and application time histograms, requests in flight, response bytes, connections, application threads busy and queued, the accept queue, worker starts and exits by reason, worker memory, uptime and version. A master aggregates its workers (totals survive recycling) and answers while they are busy. Prometheus text by default, OpenMetrics when the scraper asks for it (Accept)."
    )]
    pub metrics_bind: Option<ironhorse_metrics::MetricsAddr>,
    // --- end metrics ---
    #[arg(long, value_name = "LIST", default_value = "x-forwarded-for", value_parser = Headers::parse, help = "What a trusted peer's headers may say about the client, comma-separated or none: x-forwarded-for sets REMOTE_ADDR and REMOTE_PORT (0 when no port is given) to the rightmost address that is not itself a trusted proxy, so a client cannot forge it; on by default, as uvicorn's --proxy-headers, because the default --forwarded-allow-ips trusts only this machine. x-forwarded-host sets HTTP_HOST, SERVER_NAME and SERVER_PORT from the last value; forwarded reads RFC 7239 (for=, proto=, host=) and wins over the X- headers when present. Add those two only if the proxy overwrites them: most pass a client's own copy on.")]
    pub forwarded_headers: Headers,
    #[arg(long, value_name = "LIST", default_value = "X-FORWARDED-PROTOCOL=ssl,X-FORWARDED-PROTO=https,X-FORWARDED-SSL=on", value_parser = SchemeHeaders::parse, help = "gunicorn's secure_scheme_headers: HEADER=VALUE pairs, comma-separated, that tell wsgi.url_scheme when a trusted peer sends them: the header with that value means https, with any other value http; headers that disagree (or disagree with Forwarded's proto=) are answered 400. Empty: the scheme is never forwarded.")]
    pub secure_scheme_headers: SchemeHeaders,
    #[arg(
        long,
        value_name = "FILE",
        help = "Serve TLS (HTTPS) with this PEM certificate chain (the server's certificate first), with --keyfile; rustls, TLS 1.2 and 1.3, RSA, ECDSA or Ed25519 keys, ALPN http/1.1. Repeatable, each with its own --keyfile in the same order, to serve several host names from one socket: a client's SNI name selects the certificate whose subjectAltName has it (exact, or a *.example.com wildcard for one label; a name in two certificates goes to the one given first), and the first is the default for clients without SNI or asking for another name. Re-read on HUP (new workers get the new certificates, old ones finish the requests in flight; without a master, new connections get them). Under TLS, file bodies are read in 64 KiB chunks and encrypted instead of leaving with sendfile(2)."
    )]
    pub certfile: Vec<PathBuf>,
    #[arg(
        long,
        value_name = "FILE",
        help = "The PEM private key of --certfile (PKCS#8, PKCS#1 RSA or SEC1 EC); one per --certfile, in the same order."
    )]
    pub keyfile: Vec<PathBuf>,
    #[arg(
        long,
        value_name = "FILE",
        help = "PEM certificate authorities that client certificates are verified against (with --cert-reqs optional or required)."
    )]
    pub ca_certs: Option<PathBuf>,
    #[arg(long, value_name = "MODE", default_value = "none", value_parser = units::cert_reqs, help = "Client certificates: none (not asked for), optional (verified against --ca-certs if sent), required (a client without a valid one fails the handshake); gunicorn's 0, 1, 2 work too. The application sees a verified one as SSL_CLIENT_S_DN, SSL_CLIENT_I_DN, SSL_CLIENT_M_SERIAL, SSL_CLIENT_CERT (PEM) and SSL_CLIENT_VERIFY=SUCCESS.")]
    pub cert_reqs: CertReqs,
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = units::duration, help = "How long a client may take to complete the TLS handshake after connecting; then the connection is closed.")]
    pub ssl_handshake_timeout: Duration,
    #[arg(long, value_name = "VERSION", default_value = "1.2", value_parser = units::tls_min_version, help = "The oldest TLS version accepted: 1.2 or 1.3.")]
    pub tls_min_version: MinVersion,
    #[arg(
        long,
        value_name = "LIST",
        help = "The TLS cipher suites offered, by IANA name as rustls and SSL_CIPHER spell them (TLS13_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, ...), comma- or colon-separated, in order of preference; default: rustls's list (AES-GCM and ChaCha20-Poly1305 with forward secrecy only). OpenSSL's cipher strings are not understood. TLS 1.2 suites name the key type (ECDHE_ECDSA, ECDHE_RSA): a list whose TLS 1.2 suites fit no --keyfile refuses the start."
    )]
    pub ciphers: Option<String>,
    #[arg(long, value_name = "BYTES", default_value_t = Limits::DEFAULT.max_request_line as u64, value_parser = units::bytes, help = "Longest request line (414 beyond).")]
    pub limit_request_line: u64,
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT.max_headers, value_parser = units::count, help = "Most header fields in a request (431 beyond).")]
    pub limit_request_fields: usize,
    #[arg(long, alias = "limit-request-field_size", value_name = "BYTES", default_value_t = Limits::DEFAULT.max_header_size as u64, value_parser = units::bytes, help = "Longest header field (431 beyond).")]
    pub limit_request_field_size: u64,
    #[arg(long, value_name = "BYTES", default_value_t = Limits::DEFAULT.max_head as u64, value_parser = units::bytes, help = "Largest request head, request line and header fields together (431 beyond): what one connection can make a worker hold before its request is answered, which the per-field limits alone put at 100 × 8 KiB. Default 64 KiB, as HTTP/2's header list here (nginx's defaults allow about 32 KiB, Node's 16 KiB); 0: no bound but the per-field ones.")]
    pub limit_request_head: u64,
    #[arg(long, value_name = "BYTES", default_value_t = Limits::DEFAULT.max_body, value_parser = units::bytes, help = "Largest request body (413 beyond).")]
    pub limit_request_body: u64,
    // ---- ASGI (issue 10) ----
    #[arg(long, value_name = "NAME", default_value = "auto", value_parser = units::interface, help = "How the app is called: wsgi (PEP 3333), asgi (ASGI 3, or an ASGI 2 class) gevent (PEP 3333 in greenlets on one gevent hub thread per process, after gevent.monkey.patch_all(); what -k gevent sets) or auto (asgi for an `async def` callable, an object whose __call__ is one, or an ASGI 2 class; wsgi otherwise; one log line says which). ASGI and gevent run on event and async (one event-loop or hub thread per process); the other models refuse them.")]
    pub interface: units::Interface,
    #[arg(long = "loop", value_name = "NAME", default_value = "auto", value_parser = units::event_loop, help = "ASGI event loop: asyncio, uvloop, or auto (uvloop when installed).")]
    pub event_loop: ironhorse_asgi::LoopKind,
    #[arg(long, value_name = "SECONDS", default_value = "1", value_parser = units::duration, help = "How long an ASGI task whose client left before its response was complete (http.disconnect; a WebSocket dropped without a closing handshake) may run on before it is cancelled: time to see the disconnect and end by itself; a task that ignores it is cancelled then, so it leaks nothing. Work after a complete response (background tasks) or after a closing handshake is never cancelled, as under uvicorn. gunicorn 27's name for its -k asgi worker (whose default is 3 s); uvicorn and Granian have no such setting.")]
    pub asgi_disconnect_grace_period: Duration,
    #[arg(long, alias = "ws-max-size", value_name = "BYTES", default_value = "16777216", value_parser = units::bytes, help = "Largest WebSocket message (and frame) an ASGI app receives, after decompression (also --ws-max-size, uvicorn's name); beyond it the connection is closed with 1009.")]
    pub ws_max_message_size: u64,
    #[arg(long, value_name = "SECONDS", default_value = "20", value_parser = units::duration, help = "Ping a WebSocket client after this long without hearing from it (uvicorn's setting and default); 0: never.")]
    pub ws_ping_interval: Duration,
    #[arg(long, value_name = "SECONDS", default_value = "20", value_parser = units::duration, help = "A WebSocket client that stays silent this long after a ping is closed with 1011 (keepalive ping timeout) and the app gets websocket.disconnect (1006); 0: never.")]
    pub ws_ping_timeout: Duration,
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = units::duration, help = "How long a WebSocket close frame of the server's (the app's close, a protocol error, a stop) waits for the client's before the connection is closed anyway (RFC 6455 §7.1.1; the websockets library's close_timeout and default, so uvicorn's). 0: close once it is sent.")]
    pub ws_close_timeout: Duration,
    #[arg(long, alias = "post-buffering", value_name = "BYTES", default_value = "1048576", value_parser = units::bytes, help = "Request bodies up to this size (uWSGI's post-buffering; also --post-buffering) are read whole before the application is called: its thread or worker is taken only once the request is complete, a chunked body (or an HTTP/2 one sent without content-length) arrives de-chunked with a real CONTENT_LENGTH, and broken chunked framing is answered 400 without calling it. The first --buffer-request-body-memory bytes are kept in memory, the rest in an unlinked temporary file in $TMPDIR (as nginx's client_body_buffer_size and client_body_temp_path). Longer bodies stream to the application as they arrive. On threadpool and hybrid the reading happens in the connection watcher (no thread held by a slow upload); on event and async in the loop; on prefork in each worker's watch, between requests (a worker reads ahead on up to --max-connections connections); single, fork and thread read on the connection's own thread or process. ASGI applications always get their body as it arrives (http.request chunks, with backpressure). Default 1 MiB (nginx's client_max_body_size): measured with 1,000 uploads held by the event loop, a connection costs what it holds in memory, about 66 KiB for a 64 KiB body, and about 2 KiB for a 1 MiB one (spooled past the 64 KiB threshold), so the size costs disk, not memory; bodies past it (large file uploads) stream rather than being written to disk first (docs/BENCHMARKS.md#buffered-bodies). 0: off.")]
    pub buffer_request_body: u64,
    #[arg(long, alias = "client-body-buffer-size", value_name = "BYTES", default_value = "65536", value_parser = units::bytes, help = "How much of a body being buffered (--buffer-request-body) is kept in memory (nginx's client_body_buffer_size; also --client-body-buffer-size); beyond it the body goes to an unlinked temporary file in $TMPDIR, gone when the request ends. Default 64 KiB: measured at 66 KiB of resident memory per connection holding a full one, so 1,000 concurrent uploads cost about 66 MiB, while the usual form and JSON bodies never touch the disk (nginx keeps 8 or 16 KiB; docs/BENCHMARKS.md#buffered-bodies).")]
    pub buffer_request_body_memory: u64,
    // ---- HTTP/2 (gunicorn 27's names) ----
    #[arg(long, value_name = "LIST", default_value = "h1", value_parser = crate::http2::protocols, help = "Protocols offered, comma-separated: h1 (HTTP/1.1), h2 (HTTP/2). h2 needs --model event or async, and --http2-cleartext without TLS.")]
    pub http_protocols: crate::http2::Protocols,
    #[arg(long, value_name = "MODE", default_value = "off", value_parser = crate::http2::cleartext, help = "HTTP/2 without TLS (h2c): off; prior-knowledge (connections opening with the HTTP/2 preface, as proxies and load balancers speak h2c to backends); upgrade (HTTP/1.1 requests without a body carrying Upgrade: h2c and HTTP2-Settings get 101 and are answered as stream 1; RFC 7540 §3.2, deprecated by RFC 9113); or both.")]
    pub http2_cleartext: crate::http2::Cleartext,
    #[arg(long, value_name = "N", default_value = "100", value_parser = units::positive, help = "HTTP/2: most streams a client may open at once on one connection (SETTINGS_MAX_CONCURRENT_STREAMS).")]
    pub http2_max_concurrent_streams: usize,
    #[arg(long, value_name = "BYTES", default_value = "65535", value_parser = units::bytes, help = "HTTP/2: flow-control window of each stream for request bodies (SETTINGS_INITIAL_WINDOW_SIZE); the connection's is four times it.")]
    pub http2_initial_window_size: u64,
    #[arg(long, value_name = "BYTES", default_value = "16384", value_parser = units::bytes, help = "HTTP/2: largest frame payload a client may send (SETTINGS_MAX_FRAME_SIZE), 16384 to 16777215.")]
    pub http2_max_frame_size: u64,
    #[arg(long, value_name = "BYTES", default_value = "65536", value_parser = units::bytes, help = "HTTP/2: largest decoded header list of a request (SETTINGS_MAX_HEADER_LIST_SIZE); larger ones (HPACK bombs) are refused.")]
    pub http2_max_header_list_size: u64,
}

impl Settings {
    /// `--pythonpath` as directories: every value, split at commas.
    pub fn python_path(&self) -> Vec<PathBuf> {
        self.pythonpath
            .iter()
            .flat_map(|p| p.split(','))
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .collect()
    }

    /// `--max-connections`, or the model's default (`--max-children` for the fork model).
    pub fn max_connections(&self, forks_per_connection: bool) -> usize {
        if forks_per_connection {
            return self.max_children;
        }
        self.max_connections
            .unwrap_or(if ["thread", "prefork"].contains(&self.model.name) {
                MAX_CONNECTIONS_THREADS
            } else {
                MAX_CONNECTIONS_EVENTS
            })
    }

    /// `--backlog`, as `listen(2)` takes it.
    pub fn backlog(&self) -> i32 {
        self.backlog.min(i32::MAX as usize) as i32
    }
}

/// Settings that steer the command rather than the server: not file keys, not printed.
pub const COMMAND_ONLY: &[&str] = &[
    "config",
    "print_config",
    "check_config",
    "print_settings_doc",
];

/// The `IRONHORSE_*` variable of a setting.
fn env_name(arg: &Arg) -> String {
    let key = arg.get_long().unwrap_or(arg.get_id().as_str());
    format!("IRONHORSE_{}", key.replace('-', "_").to_uppercase())
}

/// Whether an argument takes no value (`--debug`).
pub fn is_flag(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::SetTrue)
}

/// Whether an argument may be given many times (`--bind`).
pub fn is_list(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append)
}

/// The key of a setting: `--flag-name`, `IRONHORSE_FLAG_NAME`, `flag-name` (or `flag_name`)
/// in the file; the positional `app` is `app`.
pub fn key(arg: &Arg) -> &str {
    arg.get_long().unwrap_or(arg.get_id().as_str())
}

/// The command-line parser: the struct's declaration, with an environment variable for each
/// setting.
pub fn command() -> clap::Command {
    Settings::command().mut_args(|arg| {
        if arg.is_hide_set() {
            return arg;
        }
        let env = env_name(&arg);
        let takes_value = !is_flag(&arg) && !arg.is_positional();
        // Numbers are judged by the value parsers, so a negative one is "not allowed" rather
        // than "an unknown flag".
        arg.env(env).allow_negative_numbers(takes_value)
    })
}

/// The settings reference as Markdown, generated from the declaration.
pub fn markdown() -> String {
    let mut doc = String::from("# Settings\n\nGenerated by `ironhorse --print-settings-doc` from the settings table; do not edit.\n\nEvery setting is a command-line flag, an `IRONHORSE_*` environment variable, and a key of the
TOML file given with `-c`. Precedence: command line, then environment, then file, then default.\n\n| flag | environment | default | meaning |\n|---|---|---|---|\n");
    for arg in command().get_arguments().filter(|a| !a.is_hide_set()) {
        let value_name = arg
            .get_value_names()
            .and_then(|names| names.first())
            .map(|n| n.to_string())
            .unwrap_or_default();
        let mut flag = match arg.get_long() {
            None => format!("`{value_name}` (positional)"),
            Some(long) => format!("`--{long}`"),
        };
        if let Some(short) = arg.get_short() {
            flag = format!("`-{short}`, {flag}");
        }
        for alias in arg.get_all_aliases().unwrap_or_default() {
            flag.push_str(&format!(", `--{alias}`"));
        }
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|d| d.to_string_lossy().into_owned())
            .collect();
        let default = if defaults.is_empty() || is_flag(arg) {
            "—".to_string()
        } else {
            format!("`{}`", defaults.join(", "))
        };
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        doc.push_str(&format!(
            "| {flag} | `{}` | {default} | {help} |\n",
            env_name(arg)
        ));
    }
    doc
}
