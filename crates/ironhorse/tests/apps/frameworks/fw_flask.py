"""Flask app for tests/frameworks.rs: the shared endpoint contract plus an SSE stream.

Run by hand: ironhorse fw_flask:app --chdir crates/ironhorse/tests/apps/frameworks --virtualenv .venv
"""
import hashlib
import os
import sys
import time

from flask import Flask, Response, jsonify, make_response, redirect, request, stream_with_context

app = Flask(__name__)


@app.get("/")
def index():
    return "flask index\n"


@app.get("/users/<int:user_id>")
def user(user_id):
    return jsonify(framework="flask", user_id=user_id)


@app.get("/hello/<name>")
def hello(name):
    return f"hello {name}"


@app.get("/json")
def query_echo():
    return jsonify(args=request.args.to_dict(flat=False))


@app.post("/form")
def form_echo():
    return jsonify(form=request.form.to_dict(flat=False))


@app.post("/upload")
def upload():
    f = request.files["file"]
    digest = hashlib.sha256()
    size = 0
    while True:
        chunk = f.stream.read(1 << 16)
        if not chunk:
            break
        digest.update(chunk)
        size += len(chunk)
    return jsonify(filename=f.filename, note=request.form.get("note"), sha256=digest.hexdigest(), size=size)


@app.get("/cookies/set")
def cookie_set():
    resp = make_response("cookie set\n")
    resp.set_cookie("flavor", request.args.get("flavor", "plain"))
    return resp


@app.get("/cookies/get")
def cookie_get():
    return jsonify(cookies=dict(request.cookies))


@app.get("/redirect")
def go():
    return redirect("/target")


@app.get("/target")
def target():
    return "target\n"


@app.get("/stream")
def stream():
    def generate():
        for i in range(5):
            yield f"chunk {i}\n"

    return Response(generate(), mimetype="text/plain")


@app.get("/sse")
def sse():
    n = int(request.args.get("n", 10))
    # With ?gate=PATH, the events after the first wait until PATH exists (a minute at most):
    # a test sees the first event arrive while the app is still running.
    gate = request.args.get("gate")

    def events():
        sent = 0
        try:
            for i in range(n):
                if i and gate:
                    deadline = time.monotonic() + 60
                    while not os.path.exists(gate) and time.monotonic() < deadline:
                        time.sleep(0.01)
                if i:
                    time.sleep(0.1)
                yield f"data: {i}\n\n"
                sent += 1
        finally:
            # Runs when the server closes the response: at the end, or when the client left.
            sys.stderr.write(f"fw_flask: sse closed after {sent} of {n} events\n")
            sys.stderr.flush()

    return Response(stream_with_context(events()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache"})
