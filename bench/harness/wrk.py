"""wrk: command lines, runs, output parsing, and summaries over rounds."""

import re
import statistics
import subprocess

from harness.procs import pinned

_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}
_BYTES = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}


def _ms(s):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", s)
    return float(m.group(1)) * _UNIT[m.group(2)] if m else None


def parse(text):
    """wrk's report as a dict: rps, p50/p99 (ms), transfer (bytes/s), requests, socket
    errors by kind, non2xx; None where wrk did not say."""
    r = {"rps": None, "p50": None, "p99": None, "transfer": None, "requests": None,
         "errors": {}, "non2xx": 0}
    m = re.search(r"Requests/sec:\s*([\d.]+)", text)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"Transfer/sec:\s*([\d.]+)([KMGT]?B)", text)
    if m:
        r["transfer"] = float(m.group(1)) * _BYTES[m.group(2)]
    m = re.search(r"(\d+) requests in", text)
    if m:
        r["requests"] = int(m.group(1))
    dist = re.search(r"Latency Distribution(.*?)(?:\n\s*\d+ requests in)", text, re.S)
    if dist:
        for pct, val in re.findall(r"(\d+)%\s+([\d.]+\w+)", dist.group(1)):
            if pct == "50":
                r["p50"] = _ms(val)
            elif pct == "99":
                r["p99"] = _ms(val)
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        r["errors"] = {k: int(v) for k, v in zip(("connect", "read", "write", "timeout"),
                                                 m.groups()) if int(v)}
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        r["non2xx"] = int(m.group(1))
    return r


def command(wrk, url, conns, duration, pin=None, latency=True, threads=1, timeout=None):
    """`wrk -tN -cN -dNs [--latency] [--timeout Ns] URL`, on CPU `pin` when given."""
    cmd = [wrk, f"-t{threads}", f"-c{conns}", f"-d{duration}s"]
    cmd += ["--latency"] if latency else []
    cmd += ["--timeout", f"{timeout}s"] if timeout else []
    return pinned(cmd + [url], pin)


def run(cmd, duration):
    """(wrk's output, None) or (output or None, what went wrong)."""
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=duration + 60)
    except subprocess.TimeoutExpired:
        return None, "wrk did not finish"
    return p.stdout, None if p.returncode == 0 else f"wrk exit {p.returncode}: {p.stdout[-300:]}"


def measure(wrk, url, conns, duration, threads=1, timeout=None):
    """One run, parsed; "error" holds what went wrong (or None)."""
    cmd = command(wrk, url, conns, duration, threads=threads, timeout=timeout)
    text, err = run(cmd, duration)
    res = parse(text or "")
    res["error"] = err
    if res["rps"] is None and not err:
        res["error"] = f"could not parse wrk output: {(text or '')[-200:]}"
    return res


def cpu_us_per_request(cpu_seconds, res):
    """Server CPU µs per request completed in the parsed wrk run `res`; None without any."""
    if cpu_seconds is None or not res.get("requests"):
        return None
    return cpu_seconds * 1e6 / res["requests"]


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarize(runs):
    """Parsed runs of one server over the rounds: median/min/max req/s, median latencies,
    transfer and CPU µs per request, summed errors, and n (runs with a rate)."""
    rps = [r["rps"] for r in runs if r.get("rps") is not None]
    errs = {}
    non2xx = 0
    for r in runs:
        for k, v in r.get("errors", {}).items():
            errs[k] = errs.get(k, 0) + v
        non2xx += r.get("non2xx", 0)
    return {
        "rps": med(rps), "min": min(rps) if rps else None, "max": max(rps) if rps else None,
        "p50": med([r.get("p50") for r in runs]), "p99": med([r.get("p99") for r in runs]),
        "transfer": med([r.get("transfer") for r in runs]), "errs": errs, "non2xx": non2xx,
        "cpu_us": med([r.get("cpu_us") for r in runs]), "n": len(rps),
    }


def err_text(s):
    parts = [f"{k} {v:,}" for k, v in s["errs"].items()]
    if s["non2xx"]:
        parts.append(f"non-2xx {s['non2xx']:,}")
    return ", ".join(parts) or "0"
