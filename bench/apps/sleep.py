"""An I/O-bound plain WSGI app: each request sleeps 100 ms (time.sleep(0.1), the GIL released),
then answers 200 with Content-Length and the 12-byte body `slept 100 ms`.

Served unchanged by every server in bench/wsgi.py (`sleep:application`). With C concurrent
connections the physical limit is C / 0.1 s requests per second (5,120/s for 512).
"""

import time

DELAY = 0.1
BODY = b"slept 100 ms"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def application(environ, start_response):
    time.sleep(DELAY)
    start_response("200 OK", HEADERS)
    return [BODY]
