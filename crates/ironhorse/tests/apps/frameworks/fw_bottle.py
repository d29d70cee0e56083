"""Bottle app for tests/frameworks.rs: the shared endpoint contract.

Run by hand: ironhorse fw_bottle:app --chdir crates/ironhorse/tests/apps/frameworks --virtualenv .venv
"""
import hashlib

import bottle
from bottle import redirect, request, response

app = bottle.Bottle()


def multi(forms):
    forms = forms.decode()  # bottle keeps latin-1 "native strings"; decode as UTF-8
    return {k: forms.getall(k) for k in sorted(forms.keys())}


@app.get("/")
def index():
    response.content_type = "text/plain"
    return "bottle index\n"


@app.get("/users/<user_id:int>")
def user(user_id):
    return {"framework": "bottle", "user_id": user_id}


@app.get("/hello/<name>")
def hello(name):
    response.content_type = "text/plain; charset=utf-8"
    return f"hello {name}"


@app.get("/json")
def query_echo():
    return {"args": multi(request.query)}


@app.post("/form")
def form_echo():
    return {"form": multi(request.forms)}


@app.post("/upload")
def upload():
    f = request.files.get("file")
    digest = hashlib.sha256()
    size = 0
    f.file.seek(0)
    while True:
        chunk = f.file.read(1 << 16)
        if not chunk:
            break
        digest.update(chunk)
        size += len(chunk)
    return {"filename": f.raw_filename, "note": request.forms.getunicode("note"),
            "sha256": digest.hexdigest(), "size": size}


@app.get("/cookies/set")
def cookie_set():
    response.set_cookie("flavor", request.query.get("flavor", "plain"), path="/")
    response.content_type = "text/plain"
    return "cookie set\n"


@app.get("/cookies/get")
def cookie_get():
    return {"cookies": {k: request.cookies.get(k) for k in sorted(request.cookies.keys())}}


@app.get("/redirect")
def go():
    redirect("/target")


@app.get("/target")
def target():
    response.content_type = "text/plain"
    return "target\n"


@app.get("/stream")
def stream():
    response.content_type = "text/plain"
    return (f"chunk {i}\n" for i in range(5))
