"""Hello world, plain WSGI (PEP 3333): 200, Content-Length set, the 13-byte body `Hello, world!`.

Served unchanged by every server in bench/wsgi.py (`hello:application`).
"""

BODY = b"Hello, world!"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def application(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]
