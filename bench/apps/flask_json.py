"""A small Flask view, the issue-15 "Flask JSON view": a URL parameter, a query argument and
a JSON body (`GET /json/<name>?q=...` -> `{"items": [0..9], "name": ..., "q": ...}`).

Served by every server in `bench/wsgi.py --bench flask` (`flask_json:app`); Flask comes from
bench/.venv-peers (installed by bench/peers.sh).
"""

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.route("/json/<name>")
def json_view(name):
    return jsonify(name=name, q=request.args.get("q"), items=list(range(10)))
