"""Answers with the environment variable named by the path (`/IH_COLOUR`), or `-` if unset."""
import os


def application(environ, start_response):
    name = environ["PATH_INFO"].lstrip("/")
    body = os.environ.get(name, "-").encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
