"""One ironhorse run of a WSGI app from bench/apps (the model lab's server): started from
the run's binary copy, ready when the app answers 200, stopped with checks that end up in
the report's problems (slow stop, bad exit code, unexpected log lines)."""

import os
import re
import time
import urllib.request

from harness import APPS, binaries, procs

GRACEFUL_TIMEOUT = 5  # --graceful-timeout given to every server

_LOG_NOISE = re.compile(r"listening on|signal|stop|shutting down|exit|graceful|booting|"
                        r"worker \d+ (started|ready|exited)|spawned|ready|"
                        r"ASGI event loop|[AW]SGI (3 )?application \((detected|--interface \w+)\)|"
                        r"greenlets on one hub thread|application in greenlets", re.I)


class Server:
    """`ironhorse APP --chdir bench/apps -b 127.0.0.1:0 ARGS`, labelled `label` in problems."""

    def __init__(self, label, args, app, tmp, problems, extra_env=None, pin=None,
                 ready_path="/"):
        self.label, self.problems = label, problems
        safe = re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-")
        self.log_path = os.path.join(tmp, f"server-{safe}.log")
        env_args = []
        for k, v in (extra_env or {}).items():
            env_args += ["-e", f"{k}={v}"]
        args = [app, "--chdir", APPS, "-b", "127.0.0.1:0",
                "--graceful-timeout", str(GRACEFUL_TIMEOUT)] + list(args) + env_args
        self.proc, self.addr = binaries.launch(binaries.current(), args, self.log_path, pin=pin,
                                               env=procs.server_env(extra_env), timeout=30)
        self.host, port = self.addr.rsplit(":", 1)
        self.port = int(port)
        self.url = f"http://{self.addr}"
        self._wait_ready(ready_path)

    def _wait_ready(self, path, timeout=30.0):
        """Workers of multi-process models may come up after the master prints its line."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label}: server exited with {self.proc.returncode} "
                                   f"at start: {self.log_tail()}")
            try:
                req = urllib.request.Request(self.url + path, headers={"Connection": "close"})
                with urllib.request.urlopen(req, timeout=5) as r:
                    r.read()
                    if r.status == 200:
                        return
            except Exception as e:  # noqa: BLE001
                last = e
            time.sleep(0.1)
        raise RuntimeError(f"{self.label}: no 200 on {path} within {timeout:.0f} s ({last})")

    def log_tail(self, n=2000):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGTERM (then SIGKILL) by pid; notes slow stops, bad exits and odd log lines."""
        was_alive = self.alive()
        if not was_alive:
            self.problems.append(f"{self.label}: server had exited with {self.proc.returncode} "
                                 "before the end of its run")
        # --graceful-timeout is 5 s: give it that plus 5 s before SIGKILL, so a kill means the
        # server overstayed its own graceful timeout
        code, took = procs.stop_timed(self.proc, grace=GRACEFUL_TIMEOUT + 5)
        if took > GRACEFUL_TIMEOUT + 1.5:
            self.problems.append(f"{self.label}: took {took:.1f} s to stop after SIGTERM")
        if was_alive and code not in (0, None):
            self.problems.append(f"{self.label}: exit code {code} after SIGTERM")
        odd = procs.odd_log_lines(self.log_path, _LOG_NOISE)
        if odd:
            more = f" (+{len(odd) - 5} more)" if len(odd) > 5 else ""
            self.problems.append(f"{self.label}: server log: " + " | ".join(odd[:5]) + more)
        self.stop_seconds, self.exit_code = took, code
        return code
