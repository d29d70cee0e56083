"""A small Flask app on ironhorse: two pages, a JSON API, static files served by Rust.

Run from the repository root (./scripts/venv.sh makes .venv with Flask):

    ./target/debug/ironhorse app:app --chdir examples/flask_app --virtualenv .venv --static /static=examples/flask_app/static

then open http://127.0.0.1:8000/ (add e.g. `--model hybrid -w 2 --threads 8` to try a model).

    curl http://127.0.0.1:8000/hello/Ada
    curl 'http://127.0.0.1:8000/api/echo?name=Ada&lang=rust&lang=python'
    curl http://127.0.0.1:8000/static/style.css
"""
import os
import platform

from flask import Flask, jsonify, request

app = Flask(__name__, static_folder=None)  # /static is ironhorse's (--static), not Flask's

PAGE = """<!doctype html>
<html>
<head><meta charset="utf-8"><title>{title}</title><link rel="stylesheet" href="/static/style.css"></head>
<body>
<h1>{title}</h1>
{content}
<script src="/static/app.js"></script>
</body>
</html>
"""


@app.get("/")
def index():
    content = """<p>Flask on ironhorse. Try:</p>
<ul>
<li><a href="/hello/world">/hello/world</a></li>
<li><a href="/api/echo?name=Ada&amp;lang=rust&amp;lang=python">/api/echo?name=Ada&amp;lang=rust&amp;lang=python</a></li>
<li><a href="/static/style.css">/static/style.css</a> (served by Rust, never reaches Python)</li>
</ul>
<p id="api">loading /api/echo&hellip;</p>"""
    return PAGE.format(title="ironhorse + Flask", content=content)


@app.get("/hello/<name>")
def hello(name):
    return PAGE.format(title=f"Hello, {name}!", content='<p><a href="/">back</a></p>')


@app.get("/api/echo")
def echo():
    return jsonify(
        query=request.args.to_dict(flat=False),
        server=request.environ.get("SERVER_SOFTWARE", "ironhorse"),
        multithread=request.environ["wsgi.multithread"],
        multiprocess=request.environ["wsgi.multiprocess"],
        pid=os.getpid(),
        python=platform.python_version(),
    )
