"""A static document root, and the servers that serve it: ironhorse's models and nginx."""

import os
import resource
import urllib.request

from harness import binaries, procs

# One process / one worker each, so the comparison with nginx's single worker is fair.
MODEL_ARGS = {
    "single": ["--model", "single"],
    "fork": ["--model", "fork"],
    "thread": ["--model", "thread"],
    "threadpool": ["--model", "threadpool"],
    "prefork": ["--model", "prefork", "-w", "1"],
    "hybrid": ["--model", "hybrid", "-w", "1"],
    "event": ["--model", "event"],
    "async": ["--model", "async", "--threads", "1"],
}

SMALL_SIZE = 1024
BIG_SIZE = 1024 * 1024
FILES = ["small.txt", "big.bin"]  # what make_docroot writes
FILE_LABEL = {"small.txt": "1 KiB", "big.bin": "1 MiB"}


def make_docroot(base):
    """`small.txt` (1 KiB of text) and `big.bin` (1 MiB of random bytes) under base/root."""
    root = os.path.join(base, "root")
    os.makedirs(root)
    small = (b"ironhorse benchmark 1 KiB file. " * 64)[:SMALL_SIZE]
    big = os.urandom(BIG_SIZE)
    with open(os.path.join(root, "small.txt"), "wb") as f:
        f.write(small)
    with open(os.path.join(root, "big.bin"), "wb") as f:
        f.write(big)
    # nginx drops its workers to an unprivileged user when started as root.
    for d in (base, root):
        os.chmod(d, 0o755)
    for n in ("small.txt", "big.bin"):
        os.chmod(os.path.join(root, n), 0o644)
    return root, {"small.txt": small, "big.bin": big}


def start_ironhorse(model, root, tmp, extra=(), pin=None, binary=None):
    """ironhorse `model` (MODEL_ARGS) serving root; binary: a binaries.Binary, default the
    run's first copy. (process, "HOST:PORT", log path)."""
    name = "" if binary is None or binary.name == binaries.DEFAULT_NAME else f"-{binary.name}"
    log_path = os.path.join(tmp, f"ironhorse-{model}{name}.log")
    path = binaries.current() if binary is None else binary.path
    args = ["--root", root, "-b", "127.0.0.1:0"] + MODEL_ARGS[model] + list(extra)
    p, addr = binaries.launch(path, args, log_path, pin=pin)
    return p, addr, log_path


NGINX_CONF = """\
worker_processes 1;
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
worker_rlimit_nofile {nofile};
events {{
    worker_connections {conns};
}}
http {{
    types {{
        text/plain txt;
        text/html html;
        application/octet-stream bin;
    }}
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush {nopush};
    access_log off;
    keepalive_requests 100000;
    keepalive_timeout {keepalive}s;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ }}
    }}
}}
"""


def start_nginx(nginx, root, tmp, pin=None, conns=4096, keepalive=75, nopush=True, tls=None,
                http2=False):
    """nginx, one worker, serving root; over TLS with tls=(certificate, key) PEM paths; with
    http2, HTTP/2 (over TLS by ALPN, else h2c by prior knowledge only: nginx < 1.25's
    `listen ... http2`). (process, "HOST:PORT", log path)."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if nofile == resource.RLIM_INFINITY:
        nofile = 1 << 20
    port = procs.free_port()
    conf = os.path.join(tmp, "nginx.conf")
    template = NGINX_CONF
    h2 = " http2" if http2 else ""
    if tls:
        template = template.replace(
            "listen 127.0.0.1:{port};",
            "listen 127.0.0.1:{port} ssl%s;\n        ssl_certificate %s;\n"
            "        ssl_certificate_key %s;\n        ssl_protocols TLSv1.2 TLSv1.3;"
            % ((h2,) + tuple(tls)))
    elif http2:
        template = template.replace("listen 127.0.0.1:{port};", "listen 127.0.0.1:{port} http2;")
    with open(conf, "w") as f:
        f.write(template.format(tmp=tmp, root=root, port=port, conns=conns,
                                keepalive=keepalive, nofile=nofile,
                                nopush="on" if nopush else "off"))
    log_path = os.path.join(tmp, "nginx.log")
    p = procs.spawn(procs.pinned([nginx, "-p", tmp, "-c", conf], pin), log_path)
    procs.wait_for_port("127.0.0.1", port, p)
    return p, f"127.0.0.1:{port}", log_path


def check_responses(addr, expected):
    """GET every file with a fresh connection; a list of problems (empty when all is well)."""
    problems = []
    for name, body in expected.items():
        url = f"http://{addr}/{name}"
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                got = r.read()
                if r.status != 200:
                    problems.append(f"GET /{name}: status {r.status}")
                elif got != body:
                    problems.append(f"GET /{name}: body differs ({len(got)} bytes, "
                                    f"expected {len(body)})")
        except Exception as e:  # noqa: BLE001 - any failure is a finding
            problems.append(f"GET /{name}: {type(e).__name__}: {e}")
    return problems
