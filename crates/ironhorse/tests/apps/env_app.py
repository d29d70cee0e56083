"""Answers with an environment variable set by `-e` and the process umask."""
import os


def application(environ, start_response):
    mask = os.umask(0)
    os.umask(mask)
    body = f"{os.environ.get('IH_GREETING', '-')} {oct(mask)}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
