"""CI smoke check: every report of `bench/run all --quick` holds well-formed tables.

    python3 bench/lab/check_tables.py DIR     # exit 1 (and say why) unless all are there
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from harness.report import check_tables  # noqa: E402

# report -> the least number of well-formed tables it must hold
EXPECTED = {"seeds.md": 1, "cpu-io.md": 2, "connections.md": 2, "compare.md": 2}


def count_tables(path):
    """Well-formed tables in the Markdown file (harness.report.check_tables), or -1 after
    printing what is malformed."""
    with open(path) as f:
        n, problems = check_tables(f.read().splitlines())
    for p in problems:
        print(f"{path}: {p}")
    return -1 if problems else n


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "docs/benchmarks/quick"
    bad = 0
    for name, need in EXPECTED.items():
        path = os.path.join(d, name)
        if not os.path.exists(path):
            print(f"lab-smoke: {name}: missing")
            bad += 1
            continue
        n = count_tables(path)
        ok = n >= need
        print(f"lab-smoke: {name}: {n} well-formed table(s), need {need}: {'ok' if ok else 'FAIL'}")
        bad += not ok
    print(f"lab-smoke: {len(EXPECTED) - bad} passed, {bad} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
