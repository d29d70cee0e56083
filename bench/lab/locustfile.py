"""The seeds' locust user (seed 004): GET / and then wait 5–15 s, for ever.

Seed 004's servers answer and close the connection, so by default every request carries
`Connection: close` (one connection per request, as there). LAB_KEEPALIVE=1 keeps locust's
default keep-alive session instead.
"""
import os

from locust import HttpUser, between, task

KEEPALIVE = os.environ.get("LAB_KEEPALIVE") == "1"
WAIT_MIN = float(os.environ.get("LAB_WAIT_MIN", "5"))
WAIT_MAX = float(os.environ.get("LAB_WAIT_MAX", "15"))


class SeedUser(HttpUser):
    wait_time = between(WAIT_MIN, WAIT_MAX)

    @task
    def index(self):
        headers = {} if KEEPALIVE else {"Connection": "close"}
        with self.client.get("/", headers=headers, catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"status {r.status_code}")
            elif b"Index page" not in r.content:
                r.failure("wrong body")
