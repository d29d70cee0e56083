#!/usr/bin/env python3
"""WSGI throughput: ironhorse's models against Granian, bjoern, gunicorn, uWSGI and waitress.

    python3 bench/wsgi.py --quick                 # 1 s runs, 1 round: smoke test (tables well-formed)
    python3 bench/wsgi.py                         # hello: 5 s runs; io: 10 s runs; 3 rounds
    python3 bench/wsgi.py --bench hello --servers event,granian,bjoern --rounds 5
    python3 bench/wsgi.py --out /tmp/wsgi.md
    python3 bench/wsgi.py --servers ironhorse --binary before=/tmp/ih-before --binary after=/tmp/ih-after

Two benchmarks, each over the same plain WSGI app file (bench/apps/) for every server:

- hello: `hello:application` (13-byte body, Content-Length set). ONE process of each server
  (ironhorse `event --threads 1`, `event --threads 0` (the app on the loop's thread), `async --threads 1`, `threadpool --threads 4`, `single`,
  `prefork -w 1` (one worker reading ahead on every connection, one request at a time),
  `hybrid -w 1 --threads 4`, `thread` (a thread per connection), `fork` (a process per
  connection); Granian `--interface wsgi --workers 1`; bjoern; gunicorn `sync` and `gthread --threads 4`,
  one worker; uWSGI `--http-socket`, 1 process; waitress), `wrk -t1` at 50 and then 256
  connections. The ratio table divides each ironhorse model by each peer, round by round.
- io: `sleep:application` (time.sleep(0.1)) under `wrk -t1 -c512 --timeout 5s` for >= 10 s;
  the physical limit is 512 / 0.1 s = 5,120 requests/s. ironhorse `threadpool --threads 512`,
  `hybrid -w 2 --threads 256`, `event --threads 512`, `async --threads 512`, `thread`;
  gunicorn gthread (1 worker, 512 threads) and Granian (`--blocking-threads 512`).

Servers are pinned to CPU 0 and wrk to CPU 1 (taskset). Each round runs every server once,
ironhorse models and peers interleaved (the order reversed every other round); each start is
checked (status, body, Content-Length) before it is measured and again after: a server that
answers wrongly is not counted. With `--binary NAME=PATH` given twice or more, every
ironhorse model runs once per build in each round and a last table compares the builds:
per-round req/s ratios and the server's CPU time per request. Peers come from PyPI into bench/.venv-peers, made by
bench/peers.sh on first use; one that did not install is listed as "not available".

Importable: `prepare()`, `run_hello(...)`, `run_io(...)` return
row dicts; `hello_tables(rows)`, `io_table(rows)` format them; `finish(env)` cleans up.
"""

import argparse
import http.client
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep bench/ free of __pycache__
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import APPS, binaries, builds, procs, report, tools, wrk  # noqa: E402
from harness.fmt import fmt_ms, fmt_rps, mmm, ratio_cell  # noqa: E402
from harness.proc_stats import CpuMeter  # noqa: E402

VENV = os.path.join(HERE, ".venv-peers")
PEERS_SH = os.path.join(HERE, "peers.sh")
PEERS = ["granian", "bjoern", "gunicorn", "uwsgi", "waitress", "flask"]

HELLO_BODY = b"Hello, world!"
SLEEP_BODY = b"slept 100 ms"
FLASK_APP = "flask_json:app"
FLASK_PATH = "/json/abc?q=1"
FLASK_BODY = b'{"items":[0,1,2,3,4,5,6,7,8,9],"name":"abc","q":"1"}\n'
FLASK_CONNS = (50,)
SLEEP_S = 0.1
HELLO_CONNS = (50, 256)
IO_CONNS = 512

# --------------------------------------------------------------------------- servers
# A spec: key (for --servers), label (in tables), peer (None for ironhorse, else the PyPI
# name it needs), and argv(app, port) -> the command line (ironhorse listens on port 0).


def _ih(key, label, args, serial=False):
    return {"key": key, "label": label, "peer": None, "args": args, "serial": serial}


def _peer(key, label, peer, argv):
    return {"key": key, "label": label, "peer": peer, "argv": argv}


def _vbin(name):
    return os.path.join(VENV, "bin", name)


def _granian(extra=()):
    return lambda app, port: [_vbin("granian"), "--interface", "wsgi", "--workers", "1",
                              "--host", "127.0.0.1", "--port", str(port),
                              "--working-dir", APPS, "--no-access-log",
                              "--log-level", "warning", *extra, app]


def _gunicorn(worker, threads):
    def argv(app, port):
        a = [_vbin("gunicorn"), "-w", "1", "-k", worker, "-b", f"127.0.0.1:{port}",
             "--chdir", APPS, "--log-level", "warning"]
        if threads:
            a += ["--threads", str(threads)]
        return a + [app]
    return argv


def _uwsgi(app, port):
    module, _, attr = app.partition(":")
    return [_vbin("uwsgi"), "--http-socket", f"127.0.0.1:{port}", "--processes", "1",
            "--die-on-term", "--disable-logging", "--listen", "1024",
            "--chdir", APPS, "--wsgi-file", os.path.join(APPS, module + ".py"),
            "--callable", attr or "application"]


def _bjoern(app, port):
    return [_vbin("python"), os.path.join(APPS, "run_bjoern.py"), app, "127.0.0.1", str(port)]


def _waitress(app, port):
    return [_vbin("waitress-serve"), f"--listen=127.0.0.1:{port}", "--threads=4",
            "--connection-limit=1024", "--backlog=1024", app]


HELLO_IH = [
    _ih("event", "ironhorse event --threads 1", ["--model", "event", "--threads", "1"]),
    _ih("event-default", "ironhorse event (the defaults: --threads 16)", ["--model", "event"]),
    _ih("event-inline", "ironhorse event --threads 0 (app on the loop thread)",
        ["--model", "event", "--threads", "0"]),
    _ih("async", "ironhorse async --threads 1", ["--model", "async", "--threads", "1"]),
    _ih("threadpool", "ironhorse threadpool --threads 4", ["--model", "threadpool", "--threads", "4"]),
    _ih("single", "ironhorse single", ["--model", "single"], serial=True),
    _ih("prefork", "ironhorse prefork -w 1", ["--model", "prefork", "-w", "1"]),
    _ih("hybrid", "ironhorse hybrid -w 1 --threads 4", ["--model", "hybrid", "-w", "1", "--threads", "4"]),
    _ih("thread", "ironhorse thread", ["--model", "thread"]),
    _ih("fork", "ironhorse fork", ["--model", "fork"]),
]
HELLO_PEERS = [
    _peer("granian", "granian --interface wsgi --workers 1", "granian", _granian()),
    _peer("bjoern", "bjoern", "bjoern", _bjoern),
    _peer("gunicorn-sync", "gunicorn sync -w 1", "gunicorn", _gunicorn("sync", 0)),
    _peer("gunicorn-gthread", "gunicorn gthread -w 1 --threads 4", "gunicorn",
          _gunicorn("gthread", 4)),
    _peer("uwsgi", "uwsgi --http-socket, 1 process", "uwsgi", _uwsgi),
    _peer("waitress", "waitress --threads=4", "waitress", _waitress),
]

# The Flask view: the hello models, importing Flask from the peers' venv; the peers that
# host a plain WSGI callable one process at a time (they run from that venv already).
FLASK_IH = [dict(s, args=s["args"] + ["--virtualenv", VENV]) for s in HELLO_IH]
FLASK_PEERS = [s for s in HELLO_PEERS
               if s["key"] in ("granian", "bjoern", "gunicorn-gthread")]


def installed_peers(venv):
    """The hello specs of ironhorse again, run by the console script of a pip-installed wheel
    in `venv` (`--installed VENV`): as "peers", so the ratio table reads binary / wheel."""
    exe = os.path.join(venv, "bin", "ironhorse")
    name = os.path.basename(os.path.normpath(venv))

    def argv(args):
        return lambda app, port: [exe, app, "--chdir", APPS, "-b", f"127.0.0.1:{port}", *args]

    return [_peer(f"pip-{name}-{s['key']}",
                  s["label"].replace("ironhorse", f"pip-installed ironhorse ({name})"),
                  "ironhorse-pip", argv(s["args"])) for s in HELLO_IH]


IO_IH = [
    _ih("threadpool-512", "ironhorse threadpool --threads 512",
        ["--model", "threadpool", "--threads", "512"]),
    _ih("hybrid-2x256", "ironhorse hybrid -w 2 --threads 256",
        ["--model", "hybrid", "-w", "2", "--threads", "256"]),
    _ih("event-512", "ironhorse event --threads 512", ["--model", "event", "--threads", "512"]),
    _ih("async-512", "ironhorse async --threads 512", ["--model", "async", "--threads", "512"]),
    _ih("thread", "ironhorse thread", ["--model", "thread"]),
]
IO_PEERS = [
    _peer("gunicorn-gthread-512", "gunicorn gthread -w 1 --threads 512", "gunicorn",
          _gunicorn("gthread", 512)),
    _peer("granian-512", "granian --workers 1 --blocking-threads 512", "granian",
          _granian(["--blocking-threads", "512"])),
]


def _selected(spec, wanted):
    if not wanted:
        return True
    names = {spec["key"], spec["peer"] or "ironhorse"}
    return bool(names & set(wanted))


def _per_build(specs, builds_run):
    """The ironhorse specs once per build (one after the other for each model) when builds
    are compared; as they are, run from the run's binary copy, otherwise."""
    if len(builds_run) < 2 and all(b.name == binaries.DEFAULT_NAME for b in builds_run):
        return specs
    return [dict(s, key=f"{s['key']}@{b.name}", label=f"{s['label']} [{b.name}]",
                 base_label=s["label"], build=b.name, binary=b)
            for s in specs for b in builds_run]


# --------------------------------------------------------------------------- environment


class Env:
    """What a run needs: tools, CPU pins, a temporary directory, the ironhorse builds
    (binary copies), peers."""

    def __init__(self, tools, pins, tmp, peers, builds_run):
        self.tools, self.pins, self.tmp, self.peers = tools, pins, tmp, peers
        self.builds = builds_run


def install_peers(timeout=1200):
    """Run bench/peers.sh (installs on first use); {peer: (ok, version-or-reason)}."""
    status = {p: (False, "bench/peers.sh did not report it") for p in PEERS}
    env = dict(os.environ, PEERS_PYTHON=sys.executable)
    try:
        r = subprocess.run(["bash", PEERS_SH], stdout=subprocess.PIPE, text=True, env=env,
                           timeout=timeout)
        out = r.stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        out = ""
        for p in PEERS:
            status[p] = (False, f"bench/peers.sh failed: {type(e).__name__}: {e}")
    for line in out.splitlines():
        m = re.match(r"(\S+) ok (\S+)", line)
        if m and m.group(1) in status:
            status[m.group(1)] = (True, m.group(2))
            continue
        m = re.match(r"(\S+) not available: (.*)", line)
        if m and m.group(1) in status:
            status[m.group(1)] = (False, m.group(2))
    return status


def prepare(build_first=True, peers=True, binary_specs=()):
    """Tools, the binary copies (binary_specs: --binary (name, path) pairs; none: the
    default build), the peers venv and RLIMIT_NOFILE. Call finish(env) after."""
    tools.raise_nofile(soft_cap=65536)
    tool_paths = {"wrk": tools.find_tool("wrk", ["wrk"])}
    if build_first and not binary_specs:
        # others edit crates/ concurrently, so retry a failed build
        tools.build_ironhorse(retries=3)
    _, pins = tools.cpu_pins()
    tmp = procs.new_tmpdir("ironhorse-wsgi-")
    builds_run = binaries.snapshot_all(tmp, binary_specs)
    status = install_peers() if peers else {p: (False, "not requested") for p in PEERS}
    return Env(tool_paths, pins, tmp, status, builds_run)


def finish(env):
    procs.stop_all()
    shutil.rmtree(env.tmp, ignore_errors=True)


# --------------------------------------------------------------------------- one server


def _server_env():
    # waitress-serve imports the app from sys.path
    return procs.server_env({"PYTHONPATH": APPS, "PYTHONDONTWRITEBYTECODE": "1"},
                            drop_prefixes=("IRONHORSE_", "GRANIAN_", "UWSGI_", "GUNICORN_"))


def start_server(spec, app, env):
    """Start spec serving app ("module:callable"); (proc, "127.0.0.1:PORT", log_path)."""
    log_path = os.path.join(env.tmp, f"{spec['key']}.log")
    pin = env.pins[0]
    if spec["peer"] is None:
        binary = spec["binary"].path if "binary" in spec else binaries.current()
        args = [app, "--chdir", APPS, "-b", "127.0.0.1:0"] + spec["args"]
        p, addr = binaries.launch(binary, args, log_path, pin=pin, env=_server_env(), timeout=30)
        return p, addr, log_path
    port = procs.free_port()
    p = procs.spawn(procs.pinned(spec["argv"](app, port), pin), log_path, env=_server_env())
    procs.wait_for_port("127.0.0.1", port, p, timeout=30)
    return p, f"127.0.0.1:{port}", log_path


def check_response(addr, body, timeout=10.0, attempts=20, path="/"):
    """GET `path` on a fresh connection: None when status, body and Content-Length are right,
    else what was wrong. Retries refused/reset connections (a worker still starting)."""
    host, port = addr.rsplit(":", 1)
    last = None
    for _ in range(attempts):
        conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            got = r.read()
            cl = r.getheader("Content-Length")
            if r.status != 200:
                return f"status {r.status} (body {got[:80]!r})"
            if got != body:
                return f"body {got[:80]!r} ({len(got)} bytes), expected {body!r}"
            if cl != str(len(body)):
                return f"Content-Length {cl!r}, expected {len(body)}"
            return None
        except (ConnectionError, http.client.RemoteDisconnected) as e:
            last = f"{type(e).__name__}: {e}"
            time.sleep(0.25)
        except Exception as e:  # noqa: BLE001 - any other failure is a finding
            return f"{type(e).__name__}: {e}"
        finally:
            conn.close()
    return last


def probe(addr, body, timeout, path="/"):
    """One GET `path` on a fresh connection while wrk holds its connections: seconds until the
    full answer, or None when none came within `timeout` (the server starves new clients)."""
    host, port = addr.rsplit(":", 1)
    t0 = time.monotonic()
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while not data.endswith(b"\r\n\r\n" + body):
                left = t0 + timeout - time.monotonic()
                if left <= 0:
                    return None
                s.settimeout(left)
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            return time.monotonic() - t0 if data.endswith(b"\r\n\r\n" + body) else None
    except OSError:
        return None


def _wrk_with_probe(cmd, duration, addr, body, path="/"):
    """wrk, and meanwhile (at a quarter of the run) the fresh-connection probe."""
    box = {}
    t = threading.Thread(target=lambda: box.update(r=wrk.run(cmd, duration)), daemon=True)
    t.start()
    time.sleep(duration / 4)
    lat = probe(addr, body, timeout=min(2.0, duration / 2), path=path)
    t.join(duration + 70)
    text, err = box.get("r", (None, "wrk did not finish"))
    return text, err, lat


_NOISE = re.compile(r"listening on|signal|stop|shutting down|exit|booting|worker|"
                    r"WSGI application \((detected|--interface \w+)\)", re.I)


def measure(spec, app, body, conns_list, duration, warmup, env, problems, timeout=None,
            with_probe=False, path="/"):
    """Start, check, warm up, run wrk at each connection count, check again, stop.
    Returns {conns: parsed wrk result}, or None when the server was not counted. With
    with_probe, each result also has "probe": seconds a fresh client waited during the run
    for its answer, or None when it got none within min(2 s, duration / 2). Each result
    also has cpu_us: the server tree's CPU µs per request over that run."""
    wrk_path = env.tools["wrk"]
    name = spec["label"]
    proc = log_path = None
    out = {}
    try:
        proc, addr, log_path = start_server(spec, app, env)
        err = check_response(addr, body, path=path)
        if err:
            problems.append(f"{name}: wrong response before the run, not counted: {err}")
            return None
        url = f"http://{addr}{path}"
        if warmup:
            wrk.run(wrk.command(wrk_path, url, conns_list[0], warmup, env.pins[1], latency=False,
                                timeout=timeout), warmup)
        for n in conns_list:
            cmd = wrk.command(wrk_path, url, n, duration, env.pins[1], timeout=timeout)
            meter = CpuMeter(proc.pid)
            if with_probe:
                text, werr, lat = _wrk_with_probe(cmd, duration, addr, body, path)
            else:
                (text, werr), lat = wrk.run(cmd, duration), None
            cpu = meter.stop()
            if werr:
                problems.append(f"{name} c{n}: {werr}")
            res = wrk.parse(text or "")
            if res["rps"] is None:
                problems.append(f"{name} c{n}: could not parse wrk output: {(text or '')[-300:]}")
            if with_probe:
                res["probe"] = lat
                res["probe_timeout"] = min(2.0, duration / 2)
            out[n] = res
            if proc.poll() is not None:
                problems.append(f"{name}: server exited with {proc.returncode} during c{n}")
                return None
            res["cpu_us"] = wrk.cpu_us_per_request(cpu, res)
        err = check_response(addr, body, path=path)
        if err:
            problems.append(f"{name}: wrong response after the run, not counted: {err}")
            return None
        return out
    except procs.Interrupted:
        raise
    except Exception as e:  # noqa: BLE001 - record and go on with the next server
        problems.append(f"{name}: {type(e).__name__}: {str(e)[-600:]}")
        return None
    finally:
        if proc is not None:
            code, took = procs.stop_timed(proc)
            if spec["peer"] is None:
                if took > 4.5:
                    problems.append(f"{name}: took {took:.1f} s to stop after SIGTERM")
                if code not in (0, None):
                    problems.append(f"{name}: exit code {code} after SIGTERM")
                odd = procs.odd_log_lines(log_path, _NOISE)
                if odd:
                    problems.append(f"{name}: server log ({len(odd)} lines): "
                                    + " | ".join(odd[-4:]))
            open(log_path, "w").close()


def _order(ih, peers, rnd):
    """ironhorse models and peers interleaved; reversed every other round."""
    out = []
    for i in range(max(len(ih), len(peers))):
        out += ih[i:i + 1] + peers[i:i + 1]
    return out if rnd % 2 else out[::-1]


def _bench(specs_ih, specs_peers, app, body, conns_list, duration, warmup, rounds, env,
           servers, problems, timeout, bench, deadline=None, with_probe=False, path="/"):
    specs_ih = _per_build([s for s in specs_ih if _selected(s, servers)], env.builds)
    specs_peers = [s for s in specs_peers if _selected(s, servers)]
    runs = {(s["key"], n): [] for s in specs_ih + specs_peers for n in conns_list}
    avail = {}
    for s in specs_peers:
        ok, info = env.peers.get(s["peer"], (False, "unknown peer"))
        avail[s["key"]] = (ok, info if ok else f"not available: {info}")
    live_peers = [s for s in specs_peers if avail[s["key"]][0]]
    for rnd in range(1, rounds + 1):
        for s in _order(specs_ih, live_peers, rnd):
            if deadline and time.monotonic() > deadline:
                problems.append(f"{bench}: time limit reached in round {rnd}; partial results")
                return _rows(bench, specs_ih, specs_peers, conns_list, runs, avail)
            procs.log(f"{bench} round {rnd}/{rounds}: {s['label']}")
            res = measure(s, app, body, conns_list, duration, warmup, env, problems, timeout,
                          with_probe, path)
            for n in conns_list:
                if res and n in res:
                    res[n]["round"] = rnd
                    runs[(s["key"], n)].append(res[n])
                    procs.log(f"  c{n}: {fmt_rps(res[n]['rps'])} req/s, p99 "
                              f"{fmt_ms(res[n]['p99'])}, errors {res[n]['errors'] or 0}"
                              + (f", fresh client {_probe_text([res[n]])}" if with_probe else ""))
    return _rows(bench, specs_ih, specs_peers, conns_list, runs, avail)


def _rows(bench, specs_ih, specs_peers, conns_list, runs, avail):
    rows = []
    for s in specs_ih + specs_peers:
        ok, info = avail.get(s["key"], (True, ""))
        for n in conns_list:
            r = runs[(s["key"], n)]
            summ = wrk.summarize(r)
            probes = [x["probe"] for x in r if "probe" in x]
            summ["starves"] = any(p is None for p in probes)
            rows.append({
                "bench": bench, "key": s["key"], "label": s["label"],
                "kind": "ironhorse" if s["peer"] is None else "peer", "peer": s["peer"],
                "serial": s.get("serial", False), "conns": n, "available": ok,
                "note": "" if ok else info, "version": info if (ok and s["peer"]) else "",
                "base_label": s.get("base_label", s["label"]), "build": s.get("build"),
                "runs": r, **summ,
            })
    return rows


# --------------------------------------------------------------------------- public API


def run_hello(env=None, servers=None, duration=5, rounds=3, connections=HELLO_CONNS,
              warmup=1, problems=None, deadline=None):
    """Hello world under every selected server; a list of row dicts (one per server and
    connection count) with rps (median), min, max, p50, p99 (ms), errs, non2xx, runs, and
    starves (a fresh client got no answer during some run: the model serves only some of
    the connections, so its req/s and latencies describe those alone)."""
    own = env is None
    env = env or prepare(build_first=False)
    problems = [] if problems is None else problems
    try:
        return _bench(HELLO_IH, HELLO_PEERS, "hello:application", HELLO_BODY, list(connections),
                      duration, warmup, rounds, env, servers, problems, 5, "hello", deadline,
                      with_probe=True)
    finally:
        if own:
            finish(env)


def run_flask(env=None, servers=None, duration=5, rounds=3, connections=FLASK_CONNS,
              warmup=1, problems=None, deadline=None):
    """The Flask JSON view (`GET /json/abc?q=1`) under every selected hello server; row
    dicts as run_hello's. Needs Flask in bench/.venv-peers (bench/peers.sh installs it)."""
    own = env is None
    env = env or prepare(build_first=False)
    problems = [] if problems is None else problems
    try:
        ok, info = env.peers.get("flask", (False, "not requested"))
        if not ok:
            problems.append(f"flask: not available ({info}); the Flask bench did not run")
            return []
        return _bench(FLASK_IH, FLASK_PEERS, FLASK_APP, FLASK_BODY, list(connections),
                      duration, warmup, rounds, env, servers, problems, 5, "flask", deadline,
                      with_probe=True, path=FLASK_PATH)
    finally:
        if own:
            finish(env)


def run_io(env=None, servers=None, duration=10, rounds=3, connections=IO_CONNS, warmup=2,
           problems=None, deadline=None):
    """The 100 ms sleep app at `connections` connections; row dicts as run_hello's, plus
    `limit` (connections / 0.1 s) and `pct` (median req/s as % of it)."""
    own = env is None
    env = env or prepare(build_first=False)
    problems = [] if problems is None else problems
    try:
        rows = _bench(IO_IH, IO_PEERS, "sleep:application", SLEEP_BODY, [connections],
                      duration, warmup, rounds, env, servers, problems, 5, "io", deadline)
    finally:
        if own:
            finish(env)
    for r in rows:
        r["limit"] = connections / SLEEP_S
        r["pct"] = 100.0 * r["rps"] / r["limit"] if r["rps"] is not None else None
    return rows


def ratios(rows):
    """{(ironhorse key, peer key, conns): [per-round ratio, ...]} over rounds both ran."""
    out = {}
    for ih in (r for r in rows if r["kind"] == "ironhorse"):
        for p in (r for r in rows if r["kind"] == "peer" and r["conns"] == ih["conns"]):
            out[(ih["key"], p["key"], ih["conns"])] = builds.per_round_ratios(ih["runs"],
                                                                              p["runs"])
    return out


def builds_table(rows, names):
    """Markdown: every ironhorse configuration once per build (names: the baseline first),
    per-round ratios against the baseline, and CPU time per request."""
    groups = {}
    for r in rows:
        if r["kind"] == "ironhorse" and r["build"] is not None:
            cells = (r["base_label"], str(r["conns"]))
            groups.setdefault(cells, {})[r["build"]] = r["runs"]
    return builds.table(["server", "conns"], list(groups.items()), names)


def _probe_text(runs):
    ps = [x for x in runs if "probe" in x]
    if not ps:
        return "—"
    if any(x["probe"] is None for x in ps):
        bad = sum(x["probe"] is None for x in ps)
        return f"starved: no answer in {ps[0]['probe_timeout']:g} s ({bad}/{len(ps)} runs)"
    return "max " + fmt_ms(1000 * max(x["probe"] for x in ps))


def _rps_cell(r):
    if not r["available"]:
        return r["note"]
    if r["rps"] is None:
        return "not counted (see problems)"
    if r["n"] == 1:
        return fmt_rps(r["rps"])
    return f"{fmt_rps(r['rps'])} [{fmt_rps(r['min'])}–{fmt_rps(r['max'])}]"


def _cpu_cell(r):
    """The server tree's CPU µs per request over the rounds (steadier than req/s here)."""
    lo, md, hi = mmm([x.get("cpu_us") for x in r["runs"]])
    if md is None:
        return "—"
    return f"{md:,.1f}" if lo == hi else f"{md:,.1f} [{lo:,.1f}–{hi:,.1f}]"


def verdict(rows):
    """The hello target (issue 15), per connection count: best single-process ironhorse model
    >= 2x Granian and >= 1.2x bjoern (median of per-round ratios). A model that starved the
    fresh-client probe serves only some connections and is not eligible."""
    rt = ratios(rows)
    lines = []
    for n in sorted({r["conns"] for r in rows}):
        ih = [r for r in rows if r["kind"] == "ironhorse" and r["conns"] == n and r["rps"]]
        fair = [r for r in ih if not r["starves"]]
        if not fair:
            lines.append(f"- {n} connections: no ironhorse model that serves every connection")
            continue
        best = max(fair, key=lambda r: r["rps"])
        skipped = [r for r in ih if r["starves"] and r["rps"] > best["rps"]]
        parts = []
        for peer, need, op in (("granian", 2.0, ">="), ("bjoern", 1.2, ">=")):
            rs = rt.get((best["key"], peer, n))
            if not rs:
                parts.append(f"vs {peer}: no result")
                continue
            m = statistics.median(rs)
            met = m >= need if op == ">=" else m > need
            parts.append(f"{m:.2f}× {peer} (target {op} {need:g}×: "
                         f"{'met' if met else 'NOT met'}; per round "
                         f"{', '.join(f'{x:.2f}' for x in rs)})")
        lines.append(f"- {n} connections: best model `{best['label']}` "
                     f"({fmt_rps(best['rps'])} req/s): " + "; ".join(parts)
                     + "".join(f" — `{r['label']}` shows more req/s ({fmt_rps(r['rps'])}) but "
                               "starves connections, so it does not count" for r in skipped))
    return lines


def hello_tables(rows):
    """Markdown: the results table and the ratio table (ironhorse model / peer)."""
    lines = ["| server | conns | req/s median [min–max] | CPU µs per request median [min–max] "
             "| p50 | p99 | wrk errors (sum) | a fresh client during the run |",
             "|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["conns"], r["kind"] != "ironhorse")):
        lines.append(f"| {r['label']} | {r['conns']} | {_rps_cell(r)} | {_cpu_cell(r)} | "
                     f"{fmt_ms(r['p50'])} | "
                     f"{fmt_ms(r['p99'])} | {wrk.err_text(r) if r['available'] else '—'} | "
                     f"{_probe_text(r['runs'])} |")
    peers = [r for r in rows if r["kind"] == "peer" and r["conns"] == rows[0]["conns"]]
    if not peers:  # no peer ran: no ratio table (it would have no columns)
        return lines
    rt = ratios(rows)
    lines += ["", "| ironhorse model / peer | conns | "
              + " | ".join(p["key"] for p in peers) + " |",
              "|---|---|" + "---|" * len(peers)]
    for r in sorted((r for r in rows if r["kind"] == "ironhorse"), key=lambda r: r["conns"]):
        cells = [ratio_cell(rt.get((r["key"], p["key"], r["conns"]))) for p in peers]
        lines.append(f"| {r['label']} | {r['conns']} | " + " | ".join(cells) + " |")
    return lines


def io_table(rows):
    lines = ["| server | conns | req/s median [min–max] | % of physical limit | p50 | p99 "
             "| wrk errors (sum) | within 5 % of the limit |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        pct = f"{r['pct']:.1f} % of {r['limit']:,.0f}" if r.get("pct") is not None else "—"
        ok = "—" if r.get("pct") is None else ("yes" if r["pct"] >= 95.0 else "no")
        lines.append(f"| {r['label']} | {r['conns']} | {_rps_cell(r)} | {pct} | "
                     f"{fmt_ms(r['p50'])} | {fmt_ms(r['p99'])} | "
                     f"{wrk.err_text(r) if r['available'] else '—'} | {ok} |")
    return lines


# --------------------------------------------------------------------------- main


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=5,
                    help="seconds per hello wrk run (default 5); io runs max(10, this)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    ap.add_argument("--servers", default="",
                    help="comma list of server keys or peer names (granian, gunicorn, ...) or "
                         "'ironhorse'; default: all")
    ap.add_argument("--bench", default="hello,io",
                    help="comma list of hello, io and flask (default: hello,io)")
    ap.add_argument("--connections", default=",".join(map(str, HELLO_CONNS)),
                    help="hello: wrk connection counts, comma-separated (default 50,256)")
    ap.add_argument("--quick", action="store_true",
                    help="1 s runs, 1 round; asserts only that the tables are well-formed")
    ap.add_argument("--out", help="also write the Markdown report to this file")
    ap.add_argument("--no-build", action="store_true", help="skip cargo build")
    ap.add_argument("--installed", metavar="VENV", action="append", default=[],
                    help="also run the hello specs with VENV/bin/ironhorse (a pip-installed "
                         "wheel, e.g. made by scripts/wheel-test.sh) as peer 'ironhorse-pip'; "
                         "may be repeated")
    ap.add_argument("--time-limit", type=float, default=60,
                    help="stop starting servers after this many minutes (default 60)")
    binaries.add_option(ap)
    a = ap.parse_args()
    binaries.check_option(ap, a.binary)
    if a.quick:
        a.duration, a.rounds = 1, 1
    a.io_duration = 1 if a.quick else max(10, a.duration)
    a.servers = [s.strip() for s in a.servers.split(",") if s.strip()]
    for venv in reversed(a.installed):
        HELLO_PEERS[:0] = installed_peers(os.path.abspath(venv))
    a.bench = [b.strip() for b in a.bench.split(",") if b.strip()]
    known = ({s["key"] for s in HELLO_IH + HELLO_PEERS + IO_IH + IO_PEERS} | set(PEERS)
             | {"ironhorse", "ironhorse-pip"})
    bad = [s for s in a.servers if s not in known]
    if bad:
        ap.error(f"unknown server(s) {bad}; known: {', '.join(sorted(known))}")
    if not set(a.bench) <= {"hello", "io", "flask"} or not a.bench:
        ap.error("--bench takes a comma list of hello, io and flask")
    return a


def main():
    a = parse_args()
    procs.install_signal_handlers()
    started = time.monotonic()
    deadline = started + a.time_limit * 60
    load_start = os.getloadavg()[0]
    # The Flask bench needs the peers' venv (Flask lives there) whichever servers run.
    wants_peers = "flask" in a.bench or any(_selected(s, a.servers)
                                            for s in HELLO_PEERS + IO_PEERS
                                            if s["peer"] != "ironhorse-pip")
    env = prepare(build_first=not a.no_build, peers=wants_peers, binary_specs=a.binary)
    if a.installed:
        exes = [os.path.join(v, "bin", "ironhorse") for v in a.installed]
        missing = [e for e in exes if not os.access(e, os.X_OK)]
        env.peers["ironhorse-pip"] = ((False, f"missing: {', '.join(missing)}") if missing else
                                      (True, binaries.output([exes[0], "--version"]) + " (wheels)"))
    problems = []
    hello = io = flask = None
    with procs.guarded(problems, env.tmp):  # what finish(env) does
        if "hello" in a.bench:
            hello = run_hello(env, a.servers, a.duration, a.rounds, problems=problems,
                              connections=tuple(int(c) for c in a.connections.split(",")),
                              deadline=deadline)
        if "flask" in a.bench:
            flask = run_flask(env, a.servers, a.duration, a.rounds, problems=problems,
                              deadline=deadline)
        if "io" in a.bench:
            io = run_io(env, a.servers, a.io_duration, a.rounds, problems=problems,
                        deadline=deadline)
    lines = report_lines(a, env, hello, io, time.monotonic() - started, load_start, flask)
    report.finish_report(lines, problems, ("No problems seen: every response checked before and after each run was "
                         "correct, no ironhorse server crashed, logged an error or stopped slowly."), a.out)
    if a.quick:
        n, bad = report.check_tables(lines)
        assert not bad, "; ".join(bad)
        assert n, "no table in the report"
        procs.log(f"quick: {n} table(s) well-formed")
    return 0


def report_lines(a, env, hello, io, elapsed, load_start, flask=None):
    """The report (without its ending): header, method, the hello, Flask and io sections, and
    the build-against-build tables when builds are compared."""
    names = [b.name for b in env.builds]
    load_end = os.getloadavg()[0]
    peers = ", ".join(f"{p} {v}" if ok else f"{p} not available ({v})"
                      for p, (ok, v) in env.peers.items())
    lines = report.header_lines("WSGI: ironhorse vs Granian, bjoern, gunicorn, uWSGI, waitress",
                                {"wrk": env.tools["wrk"]})
    lines += [
        f"- python: {sys.version.split()[0]} ({sys.executable}); peers (bench/.venv-peers): {peers}",
        f"- {a.rounds} round(s); each round starts every server once, ironhorse models and peers "
        "interleaved (order reversed every other round); server pinned to CPU 0 and wrk to CPU 1 "
        "with taskset" + ("" if env.pins[0] is not None else " (NOT pinned: taskset or 2 CPUs missing)")
        + f"; RLIMIT_NOFILE {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}; took {elapsed / 60:.1f} min",
        "- every server's `GET /` is checked (status 200, exact body, Content-Length) right after "
        "it starts and again after its runs; a server failing either check is not counted",
        "- req/s: median [min–max] over the rounds; p50/p99: median over rounds of wrk's latency "
        "distribution; ratios: median [min–max] of per-round ratios (ironhorse run / the peer's "
        "run in the same round)",
        f"- load average (1 min) when the run started: {load_start:.2f}, when it ended: {load_end:.2f}"
        + (" — other work was running on this machine; expect noise" if max(load_start, load_end) > 0.5
           else ""),
    ]
    if a.binary:
        lines += builds.method_lines(names, a.rounds)
    if hello is not None:
        lines += [
            "",
            "### Hello world (`bench/apps/hello.py`, one process each)",
            "",
            f"- load: `wrk -t1 -cN -d{a.duration}s --timeout 5s --latency` for N in "
            f"{a.connections}, after a 1 s warm-up at the first N; keep-alive",
            "- a fresh client during the run: a check that every connection gets served — "
            "at a quarter of each wrk run, one more connection sends `GET /` and the time until "
            "its full answer is noted (max over rounds), or `starved` when none came in "
            "min(2 s, duration/2). A model that starves serves only some of wrk's connections "
            "(wrk 4.1 counts no timeout for requests never answered), so its req/s and latencies "
            "describe those connections alone; it is not eligible for the target",
            "- `single` serves one connection at a time, so at 50 and 256 keep-alive connections one "
            "connection gets all the service and the others starve until it closes — expected for "
            "a serial model. The pools (`threadpool`, `hybrid`) and `prefork`'s read-ahead do not "
            "starve: a thread gives its idle keep-alive connection back to the watcher whenever "
            "other connections wait for it",
            "- gunicorn `sync` closes the connection after every response (`Connection: close`); "
            "uWSGI with `--http-socket` closes it too, without that header, so wrk counts one "
            "`read` error per response — they are not failed requests (its body was checked)",
            "",
        ]
        lines += hello_tables(hello)
        lines += ["", "Target (issue 15): ironhorse's best single-process model at least 2× "
                  "Granian and 1.2× bjoern:", ""]
        lines += verdict(hello)
        if a.binary:
            lines += ["", "#### Hello world, build against build", ""] + builds_table(hello, names)
    if flask:
        lines += [
            "",
            f"### Flask JSON view (`bench/apps/flask_json.py`, `GET {FLASK_PATH}`, one process each)",
            "",
            f"- load: `wrk -t1 -c{FLASK_CONNS[0]} -d{a.duration}s --timeout 5s --latency` after a "
            "1 s warm-up; keep-alive; the same servers as hello world, Flask imported from "
            "bench/.venv-peers (ironhorse with `--virtualenv`); every response's JSON body "
            "checked before and after the runs; the fresh client as above",
            "",
        ]
        lines += hello_tables(flask)
        if a.binary:
            lines += ["", "#### Flask JSON view, build against build", ""] + builds_table(flask, names)
    if io is not None:
        lines += [
            "",
            "### I/O-bound (`bench/apps/sleep.py`: time.sleep(0.1) per request)",
            "",
            f"- load: `wrk -t1 -c{IO_CONNS} -d{a.io_duration}s --timeout 5s --latency` after a 2 s "
            f"warm-up; physical limit {IO_CONNS} / 0.1 s = {IO_CONNS / SLEEP_S:,.0f} req/s; "
            "target: ironhorse's threaded and evented models within 5 % of it (>= 95 %)",
            "",
        ]
        lines += io_table(io)
        if a.binary:
            lines += ["", "#### I/O-bound, build against build", ""] + builds_table(io, names)
    return lines


if __name__ == "__main__":
    sys.exit(main())
