"""CI smoke check: every report of `bench/run all --quick` holds well-formed tables.

    python3 bench/lab/check_tables.py DIR     # exit 1 (and say why) unless all are there
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import table_ok  # noqa: E402

# report -> the least number of well-formed tables it must hold
EXPECTED = {"seeds.md": 1, "cpu-io.md": 2, "connections.md": 2, "compare.md": 2}


def count_tables(path):
    """Well-formed tables: header row, separator with the same cell count, data rows that
    all have that cell count too."""
    with open(path) as f:
        lines = [ln.rstrip("\n") for ln in f]
    n, i = 0, 0
    while i < len(lines):
        block = []
        while i < len(lines) and lines[i].strip().startswith("|"):
            block.append(lines[i].strip())
            i += 1
        if not block:
            i += 1
            continue
        cells = block[0].count("|")
        if (len(block) >= 3 and set(block[1].replace("|", "").replace(" ", "")) <= set("-:")
                and all(r.count("|") == cells for r in block[1:]) and all(
                    r.endswith("|") for r in block)):
            n += 1
        else:
            print(f"{path}: malformed table starting {block[0][:80]!r}")
            return -1
    return n


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
        ok = n >= need and table_ok(path)
        print(f"lab-smoke: {name}: {n} well-formed table(s), need {need}: {'ok' if ok else 'FAIL'}")
        bad += not ok
    print(f"lab-smoke: {len(EXPECTED) - bad} passed, {bad} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
