"""I/O-bound WSGI app for bench/gevent.py: each request waits on a loopback service
(UPSTREAM=host:port) through urllib3, as a Flask or Django view calling another service
would. Served by `ironhorse -k gevent` and `gunicorn -k gevent` alike (both monkey-patch
before importing it)."""
import os

import urllib3

UPSTREAM = os.environ["UPSTREAM"]
HTTP = urllib3.PoolManager(maxsize=4096, retries=False)


def application(environ, start_response):
    answer = HTTP.request("GET", f"http://{UPSTREAM}/")
    body = b"upstream said " + answer.data
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
