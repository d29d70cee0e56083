"""A plain WSGI app for the hardening tests (tests/hardening.rs): client errors while
reading the body, reason phrases, the environ's host fields, and which requests reach it."""
import json
from urllib.parse import parse_qs, unquote


def _send(start_response, status, body, content_type="text/plain"):
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def read(environ, start_response):
    """Reads the whole body and lets any error escape (a plain app)."""
    data = environ["wsgi.input"].read()
    return _send(start_response, "200 OK", f"read {len(data)}".encode())


def framework(environ, start_response):
    """Answers 500 for any exception, as Flask and Django do for uncaught ones."""
    try:
        data = environ["wsgi.input"].read()
    except Exception as e:  # noqa: BLE001 - the point is to swallow everything
        return _send(start_response, "500 Internal Server Error", f"failed: {e!r}".encode())
    return _send(start_response, "200 OK", f"read {len(data)}".encode())


def catch(environ, start_response):
    """Catches the client error, checks its type, reads again, answers 200 itself."""
    import ironhorse
    stream = environ["wsgi.input"]
    try:
        stream.read()
        return _send(start_response, "200 OK", b"no error")
    except ironhorse.ClientError as e:
        first = type(e).__name__
        is_oserror = isinstance(e, OSError)
    try:
        stream.read()
        again = "read again"
    except ironhorse.ClientError as e:
        again = type(e).__name__
    return _send(start_response, "200 OK", f"{first} {is_oserror} {again}".encode())


def reason(environ, start_response):
    status = unquote(parse_qs(environ.get("QUERY_STRING", ""))["status"][0])
    return _send(start_response, status, b"reason test")


def environ_view(environ, start_response):
    keys = ["REMOTE_ADDR", "REMOTE_HOST", "HTTP_HOST", "PATH_INFO", "SERVER_NAME"]
    body = json.dumps({k: environ.get(k) for k in keys}).encode()
    return _send(start_response, "200 OK", body, "application/json")


ROUTES = {"/read": read, "/framework": framework, "/catch": catch, "/reason": reason,
          "/environ": environ_view}


def application(environ, start_response):
    route = ROUTES.get(environ["PATH_INFO"])
    if route is None:
        seen = f"app saw {environ['REQUEST_METHOD']} {environ['PATH_INFO']}".encode()
        return _send(start_response, "200 OK", seen)
    return route(environ, start_response)
