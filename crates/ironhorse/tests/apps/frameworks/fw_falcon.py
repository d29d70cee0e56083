"""Falcon app for tests/frameworks.rs: the shared endpoint contract.

Run by hand: ironhorse fw_falcon:app --chdir crates/ironhorse/tests/apps/frameworks --virtualenv .venv
"""
import functools
import hashlib
import json

import falcon
import falcon.media

app = falcon.App()
json_handler = falcon.media.JSONHandler(dumps=functools.partial(json.dumps, sort_keys=True))
app.resp_options.media_handlers[falcon.MEDIA_JSON] = json_handler


def as_lists(params):
    return {k: (v if isinstance(v, list) else [v]) for k, v in sorted(params.items())}


class Index:
    def on_get(self, req, resp):
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = "falcon index\n"


class User:
    def on_get(self, req, resp, user_id):
        resp.media = {"framework": "falcon", "user_id": user_id}


class Hello:
    def on_get(self, req, resp, name):
        resp.content_type = "text/plain; charset=utf-8"
        resp.text = f"hello {name}"


class QueryEcho:
    def on_get(self, req, resp):
        resp.media = {"args": as_lists(req.params)}


class FormEcho:
    def on_post(self, req, resp):
        resp.media = {"form": as_lists(req.get_media())}


class Upload:
    def on_post(self, req, resp):
        out = {}
        for part in req.get_media():
            if part.name == "file":
                digest = hashlib.sha256()
                size = 0
                while True:
                    chunk = part.stream.read(1 << 16)
                    if not chunk:
                        break
                    digest.update(chunk)
                    size += len(chunk)
                out.update(filename=part.filename, sha256=digest.hexdigest(), size=size)
            elif part.name == "note":
                out["note"] = part.text
        resp.media = out


class CookieSet:
    def on_get(self, req, resp):
        resp.set_cookie("flavor", req.get_param("flavor", default="plain"), path="/", secure=False)
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = "cookie set\n"


class CookieGet:
    def on_get(self, req, resp):
        resp.media = {"cookies": dict(req.cookies)}


class Redirect:
    def on_get(self, req, resp):
        raise falcon.HTTPFound("/target")


class Target:
    def on_get(self, req, resp):
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = "target\n"


class Stream:
    def on_get(self, req, resp):
        resp.content_type = falcon.MEDIA_TEXT
        resp.stream = (f"chunk {i}\n".encode() for i in range(5))


app.add_route("/", Index())
app.add_route("/users/{user_id:int}", User())
app.add_route("/hello/{name}", Hello())
app.add_route("/json", QueryEcho())
app.add_route("/form", FormEcho())
app.add_route("/upload", Upload())
app.add_route("/cookies/set", CookieSet())
app.add_route("/cookies/get", CookieGet())
app.add_route("/redirect", Redirect())
app.add_route("/target", Target())
app.add_route("/stream", Stream())
