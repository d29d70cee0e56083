"""Tells who imported it and who serves, and holds 64 MiB written at import time.

With --preload the master imports it before forking, so every worker answers with the
master's pid first and shares the 64 MiB with it (copy-on-write); without, each worker
imports it itself.
"""

import os

IMPORTED_BY = os.getpid()
# Written byte by byte (not calloc'ed zero pages), so the pages are really resident and dirty.
BALLAST = b"x" * (64 << 20)


def application(environ, start_response):
    body = ("%d %d %d" % (IMPORTED_BY, os.getpid(), len(BALLAST))).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
