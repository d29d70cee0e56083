"""bench/run's command line: one scenario or all of them."""

import argparse
import os
import shutil
import time

from harness import REPO, binaries, procs, tools
from harness.procs import lab_log as log

SCENARIOS = ["seeds", "cpu-io", "compare", "connections"]


def parse_args():
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    ap.add_argument("scenario", choices=SCENARIOS + ["all"])
    ap.add_argument("--quick", action="store_true",
                    help="seconds per model instead of minutes (CI smoke); reports go to "
                         "docs/benchmarks/quick/ unless --out-dir")
    ap.add_argument("--duration", type=int, default=None,
                    help="seconds per measurement (seeds: per model, default 60; cpu-io: per "
                         "wrk run, default 10; connections: SSE streaming time, default 30)")
    ap.add_argument("--rounds", type=int, default=None,
                    help="cpu-io: repeat every measurement this many times (default 1)")
    ap.add_argument("--only", default="",
                    help="comma list: run only the models whose label contains one of these")
    ap.add_argument("--out-dir", default=None, help="where reports go (default docs/benchmarks)")
    ap.add_argument("--no-build", action="store_true", help="skip cargo build")
    ap.add_argument("--users", type=int, default=None, help="seeds: locust users (default 100)")
    ap.add_argument("--spawn-rate", type=float, default=10.0, help="seeds: users started per s")
    ap.add_argument("-n", "--connections", type=int, default=None,
                    help="connections: idle keep-alive connections per model (default 20000, "
                         "max 50000)")
    ap.add_argument("--sse", type=int, default=None,
                    help="connections: concurrent SSE streams (default 2000, max 5000)")
    ap.add_argument("--ws", type=int, default=None,
                    help="connections: WebSockets held at once, ASGI (default 2000, max 5000)")
    a = ap.parse_args()
    a.only = [o.strip() for o in a.only.split(",") if o.strip()]
    if a.out_dir is None:
        a.out_dir = os.path.join(REPO, "docs", "benchmarks", "quick" if a.quick else "")
    a.out_dir = os.path.abspath(a.out_dir)
    return a


class Ctx:
    pass


def main():
    a = parse_args()
    procs.install_signal_handlers()
    todo = SCENARIOS if a.scenario == "all" else [a.scenario]
    ctx = Ctx()
    ctx.tools = {"wrk": tools.find_tool("wrk", ["wrk"])}
    ctx.out_dir = a.out_dir
    if not a.no_build:
        tools.build_ironhorse()
    ctx.tmp = procs.new_tmpdir("ironhorse-lab-")
    binaries.snapshot(ctx.tmp)
    written, failed = [], []
    t0 = time.monotonic()
    try:
        for name in todo:
            log(f"=== {name}{' (quick)' if a.quick else ''} ===")
            t1 = time.monotonic()
            mod = __import__({"cpu-io": "cpuio"}.get(name, name))
            try:
                md = mod.run(a, ctx)
                written.append((name, md, time.monotonic() - t1))
            except (KeyboardInterrupt, procs.Interrupted):
                raise
            except Exception as e:  # noqa: BLE001 - the other scenarios still run
                import traceback
                traceback.print_exc()
                failed.append((name, f"{type(e).__name__}: {e}"))
            finally:
                procs.stop_all()
    except (KeyboardInterrupt, procs.Interrupted) as e:
        failed.append(("interrupted", str(e) or type(e).__name__))
    finally:
        procs.stop_all()
        shutil.rmtree(ctx.tmp, ignore_errors=True)
    log(f"done in {(time.monotonic() - t0) / 60:.1f} min")
    for name, md, took in written:
        log(f"  {name}: {os.path.relpath(md, REPO)} ({took:.0f} s)")
    for name, why in failed:
        log(f"  {name}: FAILED: {why}")
    return 1 if failed else 0
