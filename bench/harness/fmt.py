"""Numbers as they appear in the Markdown tables ("—" for no data)."""

import statistics


def fmt_rps(x):
    return f"{x:,.0f}" if x is not None else "—"


def fmt_ms(x):
    """milliseconds, two decimals below 100 ms (the static and WSGI tables)."""
    if x is None:
        return "—"
    return f"{x * 1000:.0f} µs" if x < 1 else f"{x:.2f} ms" if x < 100 else f"{x:.0f} ms"


def fmt_bytes(x):
    """bytes per second."""
    if x is None:
        return "—"
    for unit, div in (("GiB", 1024 ** 3), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if x >= div:
            return f"{x / div:.1f} {unit}/s"
    return f"{x:.0f} B/s"


def fnum(x, digits=0, unit=""):
    if x is None:
        return "—"
    return f"{x:,.{digits}f}{unit}"


def fms(x):
    """milliseconds → readable, one decimal below 100 ms (the model lab's tables)."""
    if x is None:
        return "—"
    if x < 1:
        return f"{x * 1000:.0f} µs"
    if x < 100:
        return f"{x:.1f} ms"
    if x < 10000:
        return f"{x:,.0f} ms"
    return f"{x / 1000:.1f} s"


def fmib(kib):
    """KiB as MiB with one decimal."""
    return "—" if kib is None else f"{kib / 1024:.1f} MiB"


def ratio_cell(rs):
    """Per-round ratios: "median" for one, "median [min–max]" for more, "—" for none."""
    if not rs:
        return "—"
    m = statistics.median(rs)
    return f"{m:.2f}" if len(rs) == 1 else f"{m:.2f} [{min(rs):.2f}–{max(rs):.2f}]"


def pct(xs, q):
    """q-th percentile (0..100) by linear interpolation; None for no data."""
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    if len(xs) == 1:
        return xs[0]
    k = (len(xs) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def mmm(xs):
    """(min, median, max) of the numbers in xs, or (None, None, None)."""
    xs = [x for x in xs if x is not None]
    if not xs:
        return None, None, None
    return min(xs), statistics.median(xs), max(xs)
