"""Requests that do not end: /stuck sleeps inside C (only a process exit frees it), /slow
sleeps in Python steps (a TimeoutError raised in its thread ends it). 200 elsewhere."""
import time


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/stuck":
        time.sleep(60)
    elif path == "/slow":
        for _ in range(600):
            time.sleep(0.05)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
