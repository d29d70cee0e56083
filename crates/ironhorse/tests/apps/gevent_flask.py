"""Flask views for tests/gevent.rs: one calls a loopback service with requests, one sleeps."""
import time

import requests
from flask import Flask, request

app = Flask(__name__)


@app.get("/call")
def call():
    upstream = request.args["upstream"]
    answer = requests.get(f"http://{upstream}/wait", timeout=60)
    return f"flask got {answer.status_code} {answer.text}"


@app.get("/sleep")
def sleep():
    time.sleep(float(request.args.get("s", "0.2")))
    return "flask slept"
