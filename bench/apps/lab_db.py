"""The seeds' web app (seed 004): every request waits ~300 ms for "the database", then
answers the same small HTML page the seed's servers send (71 bytes).

    ironhorse lab_db:app --chdir bench/apps --model thread

LAB_DB_DELAY (seconds, default 0.3) changes the wait. Used by `bench/run seeds`.
"""
import os
import time

DELAY = float(os.environ.get("LAB_DB_DELAY", "0.3"))
BODY = b"<html><head><title>Success</title></head><body>Index page</body></html>"


def app(environ, start_response):
    time.sleep(DELAY)  # the seed's `time.sleep(0.3)`: a database query
    start_response("200 OK", [("Content-Type", "text/html"),
                              ("Content-Length", str(len(BODY)))])
    return [BODY]
