"""`bench/run seeds`: seed 004's locust scenario against every model.

N users (100), each GET / then a uniform 5–15 s wait, for ever; the app (bench/apps/lab_db.py)
sleeps 300 ms per request ("the database"). locust runs headless with a fixed user count,
spawn rate and duration and writes CSV; the server's process tree is sampled from /proc.
"""

import csv
import os
import subprocess
import time

from harness.app_server import Server
from harness.fmt import fmib, fms, fnum
from harness.lab_venv import VENV, versions
from harness.proc_stats import TreeSampler
from harness.procs import lab_log as log
from harness.report import hand_notes, header, plt, problems_lines, write_report

DB_DELAY = 0.3
WAIT = (5.0, 15.0)
KEEPALIVE_TIMEOUT = 5.0  # ironhorse's default --keep-alive

# label, arguments, requests it can run at once (k), keep-alive client?
VARIANTS = [
    ("single", ["--model", "single"], 1, False),
    ("fork", ["--model", "fork"], 512, False),  # --max-children default 512
    ("thread", ["--model", "thread"], 1000, False),  # --max-connections default 1000
    ("threadpool --threads 128", ["--model", "threadpool", "--threads", "128"], 128, False),
    ("prefork -w 2", ["--model", "prefork", "-w", "2"], 2, False),
    ("prefork -w 16", ["--model", "prefork", "-w", "16"], 16, False),
    ("hybrid -w 2 --threads 64", ["--model", "hybrid", "-w", "2", "--threads", "64"], 128, False),
    ("event --threads 128", ["--model", "event", "--threads", "128"], 128, False),
    ("async --threads 128", ["--model", "async", "--threads", "128"], 128, False),
    ("threadpool --threads 4 (too few)", ["--model", "threadpool", "--threads", "4"], 4, False),
    ("single, keep-alive client", ["--model", "single"], 1, True),
]


def add_args(sp):
    sp.add_argument("--users", type=int, default=None, help="locust users (default 100; quick 10)")
    sp.add_argument("--spawn-rate", type=float, default=10.0, help="users started per second")


def read_stats(prefix):
    path = prefix + "_stats.csv"
    if not os.path.exists(path):
        return None
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    agg = [r for r in rows if r.get("Name") == "Aggregated"] or rows[-1:]
    if not agg:
        return None
    r = agg[0]

    def num(k):
        v = r.get(k)
        try:
            return float(v)
        except (TypeError, ValueError):
            return None

    return {"requests": int(num("Request Count") or 0), "failures": int(num("Failure Count") or 0),
            "rps": num("Requests/s"), "p50": num("50%"), "p95": num("95%"), "p99": num("99%"),
            "max": num("Max Response Time"), "avg": num("Average Response Time")}


def read_failures(prefix):
    path = prefix + "_failures.csv"
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return [f"{r.get('Occurrences')}× {r.get('Error')}" for r in csv.DictReader(f)]


def simulate(k, busy, n, duration, spawn_rate, replicas=30, seed=1):
    """Discrete-event simulation of this exact run: n users spawned at spawn_rate/s, each
    sends at once and then U(5, 15) s after every answer; k servers, FIFO queue; a request
    takes DB_DELAY to answer and keeps its server busy for `busy` s (DB_DELAY, plus the
    keep-alive wait of a serial server with keep-alive clients). Counts what completes
    within `duration`, as locust does. Median over `replicas` random runs."""
    import heapq
    import random
    rng = random.Random(seed)
    rps, med, p95 = [], [], []
    for _ in range(replicas):
        free = [0.0] * min(k, n)
        heapq.heapify(free)
        arrivals = [(i / spawn_rate, i) for i in range(n) if i / spawn_rate < duration]
        heapq.heapify(arrivals)
        lat = []
        while arrivals:
            a, u = heapq.heappop(arrivals)
            if a >= duration:
                break
            start = max(a, heapq.heappop(free))
            heapq.heappush(free, start + busy)
            done = start + DB_DELAY
            if done <= duration:
                lat.append((done - a) * 1000)
                heapq.heappush(arrivals, (done + rng.uniform(*WAIT), u))
        rps.append(len(lat) / duration)
        lat.sort()
        med.append(lat[len(lat) // 2] if lat else None)
        p95.append(lat[int(len(lat) * 0.95)] if lat else None)
    mid = lambda xs: sorted(x for x in xs if x is not None)[len([x for x in xs if x is not None]) // 2] if any(x is not None for x in xs) else None  # noqa: E731
    return {"rps": mid(rps), "p50": mid(med), "p95": mid(p95)}


def theory(k, keepalive, n, duration, spawn_rate):
    """Closed-loop bounds (n users, think time Z, service S, k servers) and a simulation."""
    z = sum(WAIT) / 2
    s_eff = DB_DELAY + (KEEPALIVE_TIMEOUT if keepalive and k == 1 else 0.0)
    cap = k / s_eff
    demand = n / (z + DB_DELAY)
    r_steady = max(DB_DELAY, n * s_eff / k - z)
    sim = simulate(k, s_eff, n, duration, spawn_rate)
    return {"cap": cap, "demand": demand, "bound": min(cap, demand),
            "r_steady_ms": r_steady * 1000, "s_eff": s_eff, "z": z,
            "sim_rps": sim["rps"], "sim_p50": sim["p50"], "sim_p95": sim["p95"]}


def verdict(label, r, th, n):
    if r is None or r.get("rps") is None:
        return f"`{label}`: no locust result."
    rps, med = r["rps"], r["p50"]
    saturated = th["cap"] < th["demand"]
    out = (f"`{label}`: {rps:.2f} req/s against {th['sim_rps']:.2f} simulated for this run "
           f"(capacity {th['cap']:.2f} req/s, {n}-user steady demand {th['demand']:.2f} req/s); "
           f"median {fms(med)} against {fms(th['sim_p50'])} simulated")
    if saturated:
        out += (f" — saturated, as the model predicts (steady-state median bound "
                f"{fms(th['r_steady_ms'])})")
    else:
        out += " — enough app slots for the steady demand"
    notes = []
    if th["sim_rps"] and abs(rps / th["sim_rps"] - 1) > 0.15:
        notes.append(f"throughput {'above' if rps > th['sim_rps'] else 'below'} the simulation "
                     f"by {abs(rps / th['sim_rps'] - 1) * 100:.0f} %")
    if med is not None and th["sim_p50"]:
        if med > 1.5 * th["sim_p50"] and med - th["sim_p50"] > 50:
            notes.append(f"median {med / th['sim_p50']:.1f}× the simulated one "
                         f"(+{fms(med - th['sim_p50'])}): time spent in the server or the "
                         "client beyond the app's sleep and the queue")
        elif med < th["sim_p50"] / 1.5:
            notes.append(f"median {th['sim_p50'] / med:.1f}× below the simulated one")
    if r.get("failures"):
        notes.append(f"{r['failures']} failed requests")
    if notes:
        out += "; DEPARTURE: " + "; ".join(notes)
    else:
        out += "; matches the simulation within 15 % (throughput) and 1.5× (median)"
    return out + "."


def run(a, ctx):
    n = a.users or (10 if a.quick else 100)
    duration = a.duration or (5 if a.quick else 60)
    rate = a.spawn_rate
    variants = [v for v in VARIANTS if not (a.quick and v[3])]
    if a.only:
        variants = [v for v in variants if any(o in v[0] for o in a.only)]
    locust = os.path.join(VENV, "bin", "locust")
    locustfile = os.path.join(os.path.dirname(os.path.abspath(__file__)), "locustfile.py")
    problems, results = [], []
    t_start = time.monotonic()
    for i, (label, args, k, keepalive) in enumerate(variants, 1):
        log(f"seeds {i}/{len(variants)}: {label}: {n} users, {duration} s")
        res = {"label": label, "args": args, "k": k, "keepalive": keepalive}
        th = theory(k, keepalive, n, duration, rate)
        res["theory"] = th
        server = sampler = lp = None
        prefix = os.path.join(ctx.tmp, f"locust-{i}")
        try:
            server = Server(label, args, "lab_db:app", ctx.tmp, problems)
            sampler = TreeSampler(server.proc.pid, interval=0.25)
            sampler.start()
            env = dict(os.environ, LAB_KEEPALIVE="1" if keepalive else "0",
                       LAB_WAIT_MIN=str(WAIT[0]), LAB_WAIT_MAX=str(WAIT[1]))
            argv = [locust, "-f", locustfile, "--headless", "-u", str(n), "-r", str(rate),
                    "-t", f"{duration}s", "--host", server.url, "--csv", prefix,
                    "--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0",
                    "--stop-timeout", "0"]
            with open(prefix + ".log", "wb") as lf:
                lp = subprocess.Popen(argv, stdout=lf, stderr=subprocess.STDOUT, env=env,
                                      start_new_session=True)
            t0 = time.monotonic()
            next_note = t0 + 10
            while lp.poll() is None:
                if time.monotonic() - t0 > duration + 60:
                    problems.append(f"{label}: locust did not stop within {duration + 60} s")
                    break
                if time.monotonic() >= next_note:
                    s = read_stats(prefix)
                    log(f"  {label}: {time.monotonic() - t0:.0f}/{duration} s, "
                        f"{s['requests'] if s else 0} requests so far")
                    next_note += 10
                time.sleep(0.2)
            if server.proc.poll() is not None:
                problems.append(f"{label}: server exited with {server.proc.returncode} "
                                "during the run")
            r = read_stats(prefix)
            if r is None:
                problems.append(f"{label}: locust wrote no stats: "
                                f"{open(prefix + '.log', errors='replace').read()[-300:]}")
            else:
                r["locust_rps"] = r["rps"]
                r["rps"] = r["requests"] / duration  # completed requests over the run's length
                res.update(r)
                for fl in read_failures(prefix):
                    problems.append(f"{label}: locust failure: {fl}")
        except Exception as e:  # noqa: BLE001 - note it, go on with the next model
            problems.append(f"{label}: {type(e).__name__}: {e}")
        finally:
            if lp is not None and lp.poll() is None:
                import signal
                try:
                    os.killpg(lp.pid, signal.SIGKILL)
                except OSError:
                    pass
                lp.wait(timeout=10)
            if sampler is not None:
                res["peak"] = sampler.finish()
            if server is not None:
                server.stop()
        results.append(res)
        if res.get("rps") is not None:
            log(f"  {label}: {res['rps']:.2f} req/s, median {fms(res.get('p50'))}, "
                f"p95 {fms(res.get('p95'))}, failures {res.get('failures')}, "
                f"peak RSS {fmib(res.get('peak', {}).get('rss'))}")
    took = time.monotonic() - t_start
    return report(a, ctx, results, problems, n, duration, rate, took)


def report(a, ctx, results, problems, n, duration, rate, took):
    z = sum(WAIT) / 2
    cap1 = 1 / DB_DELAY
    demand = n / (z + DB_DELAY)
    lines = header("Seeds: seed 004's locust scenario on every model", ctx.tools, versions())
    lines += [
        f"- load: locust headless, {n} users, spawn rate {rate:g}/s, {duration} s per model, "
        f"wait {WAIT[0]:g}–{WAIT[1]:g} s (uniform) after each response; app "
        f"`bench/apps/lab_db.py` sleeps {DB_DELAY * 1000:.0f} ms per request; every request "
        "sends `Connection: close` (seed 004's servers close after each answer) except the "
        "`keep-alive client` row; one run per model (no repeats: the run-to-run noise of this "
        "scenario was not measured), took " f"{took / 60:.1f} min",
        "- peaks sampled every 0.25 s from /proc over the server's whole process tree: RSS "
        "summed (counts pages shared by forked processes once per process), PSS summed "
        "(shared pages divided among sharers), threads and processes",
        "- percentiles are locust's (it rounds response times above 100 ms to 2 significant "
        "digits); requests still in flight when the run ends are not counted",
        "- `prefork -w 16` stands in for a prefork with one worker per user: "
        "`-w 100` (a Python interpreter per worker) is too heavy for this 2-CPU machine",
        "",
        "### Theory",
        "",
        f"- A serial server tops out at 1 / {DB_DELAY} s = {cap1:.2f} req/s. With {n} users in "
        f"a closed loop (think time Z = {z:g} s on average), the response time settles where "
        f"throughput × (Z + R) = users: R = {n} / {cap1:.2f} − {z:g} ≈ "
        f"{max(DB_DELAY, n / cap1 - z):.1f} s in the steady state (seed 004 reports a 20 s "
        "median and ~3 req/s for its 100 users).",
        f"- A server that never makes a request wait delivers {n} / ({z:g} + {DB_DELAY}) ≈ "
        f"{demand:.1f} req/s at a median near {DB_DELAY * 1000:.0f} ms. By Little's law it "
        f"needs only about {demand * DB_DELAY:.1f} requests in flight on average, so k app "
        f"slots suffice when k / {DB_DELAY} s comfortably exceeds {demand:.1f} req/s; "
        f"but locust starts {rate:g} users per second and each sends at once, so while they "
        f"spawn the arrival rate is {rate:g} req/s and a server with less capacity than that "
        "queues them for a while even when it can carry the steady demand.",
        f"- `capacity` = k / 0.3 s for k requests at once; `steady R` is the closed-loop bound "
        "max(0.3 s, N·S/k − Z); `sim` columns are a discrete-event simulation of exactly this "
        f"run (same users, spawn rate, waits, {duration} s, k FIFO servers, 300 ms each, only "
        "requests completed in time counted; median of 30 random runs): the ideal server of "
        "each model, with zero overhead. The keep-alive row: a serial server then also waits "
        f"--keep-alive ({KEEPALIVE_TIMEOUT:g} s) for the idle connection's next request before "
        "it accepts another client, so each request holds it for 5.3 s.",
        "- req/s = completed requests / run length (locust's own figure divides by the time "
        "from the first to the last request instead).",
        "",
        "| model | k (app slots) | req/s | sim req/s | capacity | median | sim median | p95 | "
        "p99 | steady R | requests | failures | peak RSS (tree) | peak PSS | peak threads "
        "| peak processes |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        th, pk = r["theory"], r.get("peak", {})
        lines.append(
            f"| {r['label']} | {r['k']} | {fnum(r.get('rps'), 2)} | {fnum(th['sim_rps'], 2)} | "
            f"{th['cap']:.2f} | {fms(r.get('p50'))} | {fms(th['sim_p50'])} | {fms(r.get('p95'))} | "
            f"{fms(r.get('p99'))} | {fms(th['r_steady_ms'])} | {fnum(r.get('requests'))} | "
            f"{fnum(r.get('failures'))} | {fmib(pk.get('rss'))} | {fmib(pk.get('pss'))} | "
            f"{fnum(pk.get('threads'))} | {fnum(pk.get('procs'))} |")
    lines += ["", "### Departures from the theory (computed from the table)", ""]
    lines += [f"- {verdict(r['label'], r, r['theory'], n)}" for r in results]
    lines += hand_notes("seeds")
    lines += problems_lines(problems, "No problems seen: no server crashed or logged an error, "
                            "every server stopped on SIGTERM with exit code 0, locust reported "
                            "no failures.")
    fig = plot(results, n)
    return write_report(ctx.out_dir, "seeds", lines, {"results": results, "problems": problems},
                        fig)


def plot(results, n):
    p = plt()
    done = [r for r in results if r.get("rps") is not None]
    if not done:
        return None
    fig, (a1, a2) = p.subplots(1, 2, figsize=(13, 5))
    labels = [r["label"].replace(" (too few)", "*").replace(", keep-alive client", "+ka")
              for r in done]
    x = range(len(done))
    a1.bar(x, [r["rps"] for r in done], color="tab:blue", label="measured")
    a1.scatter(x, [r["theory"]["sim_rps"] for r in done], color="black", marker="_", s=400,
               zorder=3, label="simulated ideal server, this run")
    a1.set_xticks(list(x), labels, rotation=60, ha="right", fontsize=8)
    a1.set_ylabel("requests/s")
    a1.set_title(f"throughput, {n} users (wait 5–15 s, app 300 ms)")
    a1.legend(fontsize=8)
    for key, col in (("p50", "tab:green"), ("p95", "tab:orange"), ("p99", "tab:red")):
        a2.scatter(x, [r.get(key) or float("nan") for r in done], color=col, label=key, zorder=3)
    a2.scatter(x, [r["theory"]["sim_p50"] or float("nan") for r in done], color="black",
               marker="_", s=400, label="simulated median, this run", zorder=2)
    a2.set_yscale("log")
    a2.set_ylabel("response time, ms (log)")
    a2.set_xticks(list(x), labels, rotation=60, ha="right", fontsize=8)
    a2.set_title("latency")
    a2.axhline(DB_DELAY * 1000, color="grey", lw=0.8, ls="--")
    a2.legend(fontsize=8)
    fig.tight_layout()
    return fig
