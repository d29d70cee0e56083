"""Unit tests of the benchmark harness (run by .ci/lab-smoke.sh):

    python3 -m unittest discover -s bench -p 'test_*.py'

The parsers get wrk's real output format; processes and /proc readings are real ones."""

import argparse
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from harness import binaries, builds, procs, report, wrk  # noqa: E402
from harness.proc_stats import CpuMeter, tree_snapshot  # noqa: E402

# wrk 4.1's report for `wrk -t1 -c50 -d1s --latency`, with socket errors and non-2xx lines
WRK_OUTPUT = """\
Running 1s test @ http://127.0.0.1:8000/small.txt
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.47ms    1.02ms  21.63ms   91.53%
    Req/Sec    20.30k     1.21k   21.76k    80.00%
  Latency Distribution
     50%  412.00us
     75%    2.65ms
     90%    3.15ms
     99%    1.20s
  20193 requests in 1.00s, 23.85MB read
  Socket errors: connect 0, read 3, write 0, timeout 7
  Non-2xx or 3xx responses: 5
Requests/sec:  20190.51
Transfer/sec:     23.85MB
"""


class WrkTest(unittest.TestCase):
    def test_parse_reads_every_figure_in_its_unit(self):
        r = wrk.parse(WRK_OUTPUT)
        self.assertEqual(r["rps"], 20190.51)
        self.assertEqual(r["requests"], 20193)
        self.assertAlmostEqual(r["p50"], 0.412)  # µs -> ms
        self.assertAlmostEqual(r["p99"], 1200.0)  # s -> ms
        self.assertAlmostEqual(r["transfer"], 23.85 * 1024 ** 2)
        self.assertEqual(r["errors"], {"read": 3, "timeout": 7})
        self.assertEqual(r["non2xx"], 5)

    def test_parse_of_nothing_is_all_unknown(self):
        r = wrk.parse("unable to connect to 127.0.0.1:1 Connection refused")
        self.assertIsNone(r["rps"])
        self.assertIsNone(r["requests"])
        self.assertEqual(r["errors"], {})

    def test_command_pins_and_adds_the_timeout_before_the_url(self):
        cmd = wrk.command("wrk", "http://h/", 50, 5, pin=1, timeout=5)
        self.assertEqual(cmd, ["taskset", "-c", "1", "wrk", "-t1", "-c50", "-d5s", "--latency",
                               "--timeout", "5s", "http://h/"])
        self.assertEqual(wrk.command("wrk", "u", 8, 1, latency=False, threads=2),
                         ["wrk", "-t2", "-c8", "-d1s", "u"])

    def test_cpu_per_request_needs_requests(self):
        self.assertAlmostEqual(wrk.cpu_us_per_request(0.5, {"requests": 1000}), 500.0)
        self.assertIsNone(wrk.cpu_us_per_request(0.5, {"requests": 0}))
        self.assertIsNone(wrk.cpu_us_per_request(None, {"requests": 10}))

    def test_summarize_takes_medians_and_sums_errors(self):
        runs = [dict(wrk.parse(WRK_OUTPUT), cpu_us=10.0), {"rps": 100.0, "errors": {"read": 1},
                                                           "cpu_us": 30.0}, {"rps": None}]
        s = wrk.summarize(runs)
        self.assertEqual((s["n"], s["min"], s["max"]), (2, 100.0, 20190.51))
        self.assertAlmostEqual(s["rps"], (100.0 + 20190.51) / 2)
        self.assertEqual(s["cpu_us"], 20.0)
        self.assertEqual(wrk.err_text(s), "read 4, timeout 7, non-2xx 5")


class TablesTest(unittest.TestCase):
    def test_counts_well_formed_tables(self):
        text = ["# t", "", "| a | b |", "|---|---|", "| 1 | 2 |", "", "x",
                "| a |", "|:-:|", "| 1 |", "| 2 |"]
        self.assertEqual(report.check_tables(text), (2, []))

    def test_names_malformed_tables(self):
        for bad in (["| a | b |", "|---|---|", "| 1 |"],       # a row too short
                    ["| a | b |", "| 1 | 2 |", "| 3 | 4 |"],   # no separator
                    ["| a | b |", "|---|---|"],                # no data row
                    ["| a | b |", "|---|---|", "| 1 | 2"]):     # a row not closed
            n, problems = report.check_tables(bad)
            self.assertEqual(n, 0, bad)
            self.assertEqual(len(problems), 1, bad)
            self.assertIn("| a | b |", problems[0])


class BuildsTest(unittest.TestCase):
    def test_ratios_pair_runs_of_the_same_round(self):
        base = [{"round": 1, "rps": 100.0}, {"round": 2, "rps": 200.0}, {"round": 3, "rps": None}]
        runs = [{"round": 2, "rps": 300.0}, {"round": 1, "rps": 50.0}, {"round": 3, "rps": 9.0},
                {"round": 4, "rps": 9.0}]
        self.assertEqual(builds.per_round_ratios(runs, base), [1.5, 0.5])

    def test_order_alternates_between_rounds(self):
        self.assertEqual(builds.build_order("ab", 1), ["a", "b"])
        self.assertEqual(builds.build_order("ab", 2), ["b", "a"])

    def test_table_is_well_formed_with_ratios_against_the_first_build(self):
        runs = {"before": [{"round": 1, "rps": 100.0, "cpu_us": 20.0},
                           {"round": 2, "rps": 100.0, "cpu_us": 20.0}],
                "after": [{"round": 1, "rps": 110.0, "cpu_us": 10.0},
                          {"round": 2, "rps": 130.0, "cpu_us": 30.0}]}
        lines = builds.table(["model", "file"], [(("event", "1 KiB"), runs)], ["before", "after"])
        self.assertEqual(report.check_tables(lines), (1, []))
        after = [ln for ln in lines if "| after |" in ln][0]
        self.assertIn("| 120 [110–130] |", after)
        self.assertIn("| 1.20 [1.10–1.30] | 1.00 [0.50–1.50] |", after)
        self.assertIn("| baseline | baseline |", lines[2])


class BinariesTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="harness-test-")
        self.addCleanup(subprocess.run, ["rm", "-rf", self.tmp])
        self.addCleanup(binaries._snapshots.clear)
        self.exe = os.path.join(self.tmp, "fake-ironhorse")
        with open(self.exe, "w") as f:
            f.write("#!/bin/sh\necho 'ironhorse 9.9.9'\n")
        os.chmod(self.exe, 0o755)

    def test_spec_needs_a_name_and_an_executable(self):
        self.assertEqual(binaries.parse_spec(f"after={self.exe}"), ("after", self.exe))
        for bad in (self.exe, f"={self.exe}", "a b=" + self.exe, f"x={self.tmp}",
                    f"x={self.tmp}/missing"):
            with self.assertRaises(argparse.ArgumentTypeError, msg=bad):
                binaries.parse_spec(bad)

    def test_duplicate_names_are_refused(self):
        ap = argparse.ArgumentParser()
        binaries.add_option(ap)
        a = ap.parse_args(["--binary", f"x={self.exe}", "--binary", f"x={self.exe}"])
        with self.assertRaises(SystemExit), open(os.devnull, "w") as null:
            stderr, sys.stderr = sys.stderr, null
            try:
                binaries.check_option(ap, a.binary)
            finally:
                sys.stderr = stderr

    def test_snapshots_are_copies_named_in_the_header(self):
        got = binaries.snapshot_all(self.tmp, [("before", self.exe), ("after", self.exe)])
        self.assertEqual([b.name for b in got], ["before", "after"])
        self.assertNotEqual(got[0].path, got[1].path)
        with open(got[1].path) as f, open(self.exe) as g:
            self.assertEqual(f.read(), g.read())
        lines = binaries.header_lines()
        self.assertEqual(len(lines), 2)
        self.assertTrue(lines[0].startswith("- ironhorse `before`: ironhorse 9.9.9, sha256 "))
        self.assertEqual(binaries.current(), got[0].path)


def _gone(pid):
    """The process has exited (or is a zombie waiting for its new parent to reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True


class ProcsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="harness-test-")
        self.addCleanup(subprocess.run, ["rm", "-rf", self.tmp])
        self.addCleanup(procs.stop_all)

    def spawn_python(self, code, name):
        log_path = os.path.join(self.tmp, name)
        return procs.spawn([sys.executable, "-c", code], log_path), log_path

    def test_stop_kills_what_ignores_sigterm_and_its_group(self):
        code = ("import signal, subprocess, sys, time\n"
                "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
                "print('child', c.pid, flush=True)\n"
                "time.sleep(60)\n")
        p, log_path = self.spawn_python(code, "stubborn.log")
        child = int(procs.wait_for_line(p, log_path, r"child (\d+)").group(1))
        self.assertIn(child, procs.tree(p.pid))
        code, took = procs.stop_timed(p, grace=0.5)
        self.assertEqual(code, -9)
        self.assertGreaterEqual(took, 0.5)
        deadline = time.monotonic() + 30
        while not _gone(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertTrue(_gone(child), "the child in the server's group outlived stop()")
        self.assertNotIn(p, procs._started)

    def test_guarded_notes_an_interrupt_and_cleans_up(self):
        problems = []
        p, _ = self.spawn_python("import time; time.sleep(60)", "sleeper.log")
        with procs.guarded(problems, self.tmp):
            raise procs.Interrupted("signal 15")
        self.assertEqual(problems, ["interrupted (Interrupted signal 15); partial results"])
        self.assertIsNotNone(p.poll())
        self.assertFalse(os.path.exists(self.tmp))

    def test_cpu_meter_counts_the_tree_cpu_time(self):
        code = ("import time\n"
                "while time.process_time() < 0.3: pass\n"
                "print('burnt', flush=True)\n"
                "time.sleep(60)\n")
        p, log_path = self.spawn_python(code, "burner.log")
        meter = CpuMeter(p.pid)  # started right after the spawn: most of the burn is after
        procs.wait_for_line(p, log_path, "burnt", timeout=60)
        used = meter.stop()
        self.assertGreater(used, 0.1)
        self.assertLess(used, 5.0)
        self.assertEqual(tree_snapshot(p.pid)["procs"], 1)

    def test_odd_log_lines_skip_the_noise(self):
        import re
        log_path = os.path.join(self.tmp, "server.log")
        with open(log_path, "w") as f:
            f.write("listening on http://127.0.0.1:1\n\nERROR boom\nstopping\n")
        self.assertEqual(procs.odd_log_lines(log_path, re.compile("listening|stop")),
                         ["ERROR boom"])


class WsHoldTest(unittest.TestCase):
    """The lab's WebSocket client (bench/lab/ws_hold.py) reading a server's frames."""

    def setUp(self):
        import socket
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))), "lab"))
        import ws_hold
        self.ws = ws_hold
        self.client, self.server = socket.socketpair()
        self.addCleanup(self.client.close)
        self.addCleanup(self.server.close)

    def test_messages_give_latencies_and_a_close_is_answered_masked(self):
        lat = []
        c = self.ws.Conn(self.client, b"", lat)
        sent = b"%.6f" % (time.time() - 0.25)
        c.buf = bytes([0x81, len(sent)]) + sent + b"\x88\x02\x03\xe8" + b"\x81"  # + a partial
        self.ws.frames(c, time.time(), lat)
        self.assertEqual(c.messages, 1)
        self.assertEqual(len(lat), 1)
        self.assertGreaterEqual(lat[0], 250.0)
        self.assertEqual((c.close_code, c.ended), (1000, True))
        reply = self.server.recv(64)
        self.assertEqual(reply[:2], b"\x88\x82")  # close, masked, 2-byte body
        body = bytes(b ^ reply[2 + i % 4] for i, b in enumerate(reply[6:]))
        self.assertEqual(body, b"\x03\xe8")

    def test_a_partial_frame_waits_and_a_masked_server_frame_is_bad(self):
        lat = []
        c = self.ws.Conn(self.client, b"", lat)
        c.buf = b"\x81\x05123"
        self.ws.frames(c, time.time(), lat)
        self.assertEqual((c.messages, c.ended, c.buf), (0, False, b"\x81\x05123"))
        c.buf = b"\x81\x85" + b"\x00" * 9
        self.ws.frames(c, time.time(), lat)
        self.assertEqual((c.state, c.ended), ("bad frame", True))


if __name__ == "__main__":
    unittest.main()
