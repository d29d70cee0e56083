"""A plain WSGI app wrapped in wsgiref.validate.validator: any PEP 3333 violation by the
server (environ, wsgi.input, start_response, close) raises AssertionError (a 500, or
"Exception ignored" on stderr) or a WSGIWarning.

The app answers with a JSON summary of what it saw, reading the body the way ?mode= says:
read (one read(CONTENT_LENGTH)), chunks (read(4096) until b""), readline, readlines, iter.
/write uses the legacy write() callable; /empty answers 204.

Run by hand: ironhorse fw_validator:app --chdir crates/ironhorse/tests/apps/frameworks
"""
import hashlib
import json
import sys
import warnings
from urllib.parse import parse_qs
from wsgiref.validate import validator

# Make every WSGIWarning loud (printed once per location by default; we want them all).
warnings.simplefilter("always")


def read_body(environ, mode):
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH") or ""
    if mode == "read":
        return stream.read(int(length) if length else 0)
    if mode == "chunks":
        parts = []
        while True:
            part = stream.read(4096)
            if not part:
                return b"".join(parts)
            parts.append(part)
    if mode == "readline":
        parts = []
        while True:
            line = stream.readline()
            if not line:
                return b"".join(parts)
            parts.append(line)
    if mode == "readlines":
        return b"".join(stream.readlines())
    if mode == "iter":
        return b"".join(line for line in stream)
    raise ValueError(mode)


def wire(s):
    """PEP 3333 strings carry bytes as latin-1; show them as the UTF-8 they were."""
    return s.encode("latin-1").decode("utf-8", "replace")


def inner(environ, start_response):
    query = parse_qs(environ.get("QUERY_STRING", ""))
    mode = query.get("mode", ["read"])[0]
    body = read_body(environ, mode)
    environ["wsgi.errors"].write("validator-app: served %s\n" % environ["REQUEST_METHOD"])
    environ["wsgi.errors"].flush()
    if environ["PATH_INFO"] == "/empty":
        start_response("204 No Content", [])
        return []
    summary = {
        "method": environ["REQUEST_METHOD"],
        "script_name": wire(environ.get("SCRIPT_NAME", "")),
        "path_info": wire(environ.get("PATH_INFO", "")),
        "query_string": environ.get("QUERY_STRING"),
        "content_type": environ.get("CONTENT_TYPE"),
        "content_length": environ.get("CONTENT_LENGTH"),
        "protocol": environ.get("SERVER_PROTOCOL"),
        "scheme": environ["wsgi.url_scheme"],
        "cookie": environ.get("HTTP_COOKIE"),
        "x_custom": environ.get("HTTP_X_CUSTOM"),
        "body_len": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "body_head": body[:64].decode("latin-1"),
    }
    out = json.dumps(summary, sort_keys=True).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(out)))]
    if environ["PATH_INFO"] == "/write":
        write = start_response("200 OK", headers)
        write(out[:10])
        write(out[10:])
        return []
    start_response("200 OK", headers)
    return [out]


app = validator(inner)
