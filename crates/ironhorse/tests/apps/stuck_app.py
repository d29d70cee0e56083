"""Requests that do not end: /stuck sleeps inside C (only a process exit frees it), /slow
sleeps in Python steps (a TimeoutError raised in its thread ends it). 200 elsewhere.
With ?started=PATH, the request creates PATH first, so a test knows the app has it."""
import time
import urllib.parse


def application(environ, start_response):
    path = environ["PATH_INFO"]
    started = urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).get("started")
    if started:
        open(started[0], "w").close()
    if path == "/stuck":
        time.sleep(60)
    elif path == "/slow":
        for _ in range(600):
            time.sleep(0.05)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
