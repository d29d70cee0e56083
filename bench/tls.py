#!/usr/bin/env python3
"""TLS cost: ironhorse static files over TLS vs cleartext, and vs nginx with ssl, with wrk.

    python3 bench/tls.py                         # 5 s runs, 3 rounds, --model event
    python3 bench/tls.py --quick                 # 1 s, 1 round: smoke test
    python3 bench/tls.py --model async --rounds 5 --out /tmp/tls.md

Each round starts, measures and stops, in turn: nginx cleartext, nginx ssl, ironhorse
cleartext, ironhorse TLS (`--certfile`), all one process / one worker pinned to CPU 0 (wrk
on CPU 1). A measurement is a 1 s warm-up, then `wrk -t1 -c50 -d{duration}s --latency` on
the 1 KiB file and on the 1 MiB file (keep-alive: the handshake is paid once per
connection), then the same on the 1 KiB file with `Connection: close`, so every request
is a new TCP connection and, over TLS, a new handshake (the "handshakes/s" rows). The
certificate is an ECDSA P-256 one made with openssl for the run; TLS 1.3 (wrk's OpenSSL
and both servers agree on it). Under TLS ironhorse reads file bodies in 64 KiB chunks and
encrypts them (no sendfile); nginx does the same (no kTLS in Debian's build by default).

Python 3 standard library only; installs wrk / nginx with apt-get when they are missing.
"""

import argparse
import os
import ssl
import subprocess
import sys
import time
import urllib.request

sys.dont_write_bytecode = True  # keep bench/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import binaries, procs, report, tools, wrk  # noqa: E402
from harness.fmt import fmt_bytes, fmt_ms, fmt_rps  # noqa: E402
from harness.proc_stats import CpuMeter  # noqa: E402
from harness.static_site import MODEL_ARGS, make_docroot, start_ironhorse, start_nginx  # noqa: E402

SERVERS = ["nginx", "nginx ssl", "ironhorse", "ironhorse TLS"]
TESTS = [("small.txt", "1 KiB", False), ("big.bin", "1 MiB", False),
         ("small.txt", "1 KiB, new connection each", True)]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    ap.add_argument("--model", default="event", choices=list(MODEL_ARGS))
    ap.add_argument("--connections", type=int, default=50, help="wrk -c (default 50)")
    ap.add_argument("--quick", action="store_true", help="duration 1, rounds 1 (smoke test)")
    ap.add_argument("--out", help="also write the Markdown report to this file")
    ap.add_argument("--no-build", action="store_true", help="skip cargo build")
    a = ap.parse_args()
    if a.quick:
        a.duration, a.rounds = 1, 1
    return a


def make_certificate(tmp):
    """An ECDSA P-256 certificate for localhost/127.0.0.1: (cert path, key path)."""
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    os.chmod(key, 0o644)  # nginx's master reads it as root; fine for a throwaway key
    return cert, key


def check(addr, scheme, cert, expected):
    """GET every file on a fresh connection (certificate verified); a list of problems."""
    ctx = ssl.create_default_context(cafile=cert)
    problems = []
    for name, body in expected.items():
        try:
            with urllib.request.urlopen(f"{scheme}://{addr}/{name}", timeout=10,
                                        context=ctx if scheme == "https" else None) as r:
                if r.read() != body:
                    problems.append(f"GET /{name}: body differs")
        except Exception as e:  # noqa: BLE001 - any failure is a finding
            problems.append(f"GET /{name}: {type(e).__name__}: {e}")
    return problems


def wrk_command(tool, url, a, pin, close):
    cmd = [tool, "-t1", f"-c{a.connections}", f"-d{a.duration}s", "--latency"]
    cmd += ["-H", "Connection: close"] if close else []
    return procs.pinned(cmd + [url], pin)


def measure(name, start, scheme, a, tool_paths, cert, expected, pins, problems):
    """Start a server, check it, run every test, stop it: {test index: wrk result}."""
    proc, out = None, {}
    try:
        proc, addr, _ = start()
        problems += [f"{name}: before the run: {p}" for p in check(addr, scheme, cert, expected)]
        for i, (f, _, close) in enumerate(TESTS):
            url = f"{scheme}://{addr}/{f}"
            wrk.run(wrk.command(tool_paths["wrk"], url, a.connections, 1, pins[1], latency=False), 1)
            meter = CpuMeter(proc.pid)
            text, err = wrk.run(wrk_command(tool_paths["wrk"], url, a, pins[1], close), a.duration)
            cpu = meter.stop()
            if err:
                problems.append(f"{name} {f}: {err}")
            res = wrk.parse(text or "")
            res["cpu_us"] = wrk.cpu_us_per_request(cpu, res)
            out[i] = res
        problems += [f"{name}: after the run: {p}" for p in check(addr, scheme, cert, expected)]
    except procs.Interrupted:
        raise
    except Exception as e:  # noqa: BLE001 - record and go on with the next server
        problems.append(f"{name}: {type(e).__name__}: {e}")
    finally:
        if proc is not None:
            procs.stop_timed(proc)
    return out


def main():
    a = parse_args()
    procs.install_signal_handlers()
    tool_paths = {"wrk": tools.find_tool("wrk", ["wrk"]),
                  "nginx": tools.find_tool("nginx", ["nginx-light", "nginx"])}
    if not a.no_build:
        tools.build_ironhorse()
    pin_ok, pins = tools.cpu_pins()
    tmp = procs.new_tmpdir("ironhorse-bench-tls-")
    root, expected = make_docroot(tmp)
    cert, key = make_certificate(tmp)
    binaries.snapshot_all(tmp, None)
    tls_args = ["--certfile", cert, "--keyfile", key]
    starts = {
        "nginx": ("http", lambda: start_nginx(tool_paths["nginx"], root, tmp, pins[0])),
        "nginx ssl": ("https", lambda: start_nginx(tool_paths["nginx"], root, tmp, pins[0],
                                                   tls=(cert, key))),
        "ironhorse": ("http", lambda: start_ironhorse(a.model, root, tmp, pin=pins[0])),
        "ironhorse TLS": ("https", lambda: start_ironhorse(a.model, root, tmp, extra=tls_args,
                                                           pin=pins[0])),
    }
    runs = {(s, i): [] for s in SERVERS for i in range(len(TESTS))}
    problems = []
    started = time.monotonic()
    with procs.guarded(problems, tmp):
        for rnd in range(1, a.rounds + 1):
            for s in SERVERS:
                procs.log(f"round {rnd}/{a.rounds}: {s}")
                scheme, start = starts[s]
                for i, res in measure(s, start, scheme, a, tool_paths, cert, expected, pins,
                                      problems).items():
                    runs[(s, i)].append(res)
    lines = report.header_lines("TLS: ironhorse over TLS vs cleartext vs nginx ssl", tool_paths)
    lines += [
        f"- load: `wrk -t1 -c{a.connections} -d{a.duration}s --latency` after a 1 s warm-up, "
        f"{a.rounds} round(s); " + ("server pinned to CPU 0 and wrk to CPU 1" if pin_ok
                                   else "no CPU pinning") + f"; took {(time.monotonic() - started) / 60:.1f} min",
        f"- ironhorse `{' '.join(MODEL_ARGS[a.model])}` (with `--certfile --keyfile` for TLS); "
        "nginx `worker_processes 1`, sendfile, access_log off, `ssl_protocols TLSv1.2 TLSv1.3`; "
        "ECDSA P-256 certificate; TLS 1.3 negotiated",
        "- \"new connection each\": `-H 'Connection: close'`, one TCP connection (and over TLS "
        "one handshake) per request: the TLS rows are handshakes per second",
        "- req/s: median [min–max] over rounds; ratios of medians",
        "",
        "| server | test | req/s median [min–max] | p50 | p99 | transfer/s | server CPU µs/req "
        "| wrk errors | vs nginx same scheme | TLS / cleartext |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, (_, label, _) in enumerate(TESTS):
        for s in SERVERS:
            m = wrk.summarize(runs[(s, i)])
            peer = {"ironhorse": "nginx", "ironhorse TLS": "nginx ssl"}.get(s)
            clear = {"nginx ssl": "nginx", "ironhorse TLS": "ironhorse"}.get(s)

            def ratio(other):
                o = wrk.summarize(runs[(other, i)]) if other else None
                return f"{m['rps'] / o['rps']:.2f}" if o and o["rps"] and m["rps"] else "—"
            rng = (f"{fmt_rps(m['rps'])} [{fmt_rps(m['min'])}–{fmt_rps(m['max'])}]"
                   if m["rps"] is not None else "—")
            lines.append(f"| {s} | {label} | {rng} | {fmt_ms(m['p50'])} | {fmt_ms(m['p99'])} | "
                         f"{fmt_bytes(m['transfer'])} | {m['cpu_us'] or 0:.0f} | {wrk.err_text(m)} | {ratio(peer)} | "
                         f"{ratio(clear)} |")
    report.finish_report(lines, problems, "No problems seen: every file checked before and after "
                         "each run (over TLS with the certificate verified) was correct.", a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
