"""A worker stuck in a call (a long sleep inside C) on /stuck; 200 elsewhere."""
import time


def application(environ, start_response):
    if environ["PATH_INFO"] == "/stuck":
        time.sleep(60)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
