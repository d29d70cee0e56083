"""Build against build: the table that compares ironhorse binaries measured side by side in
one run (`--binary NAME=PATH`, repeated), round by round.

Rates on this shared machine swing 2-4x between runs minutes apart, so the table gives
per-round ratios (each build against the baseline, the first --binary, in the same round)
and the CPU time the server's process tree spent per request, which is steadier.
"""

from harness.fmt import fmt_rps, mmm, ratio_cell


def per_round_ratios(runs, base_runs, key="rps"):
    """[run[key] / base[key]] over the rounds both have a value for (runs carry "round")."""
    base = {r["round"]: r.get(key) for r in base_runs}
    return [r[key] / base[r["round"]] for r in runs if r.get(key) and base.get(r["round"])]


def build_order(builds, rnd):
    """The builds in round rnd's order: as given in odd rounds, reversed in even ones, so
    over an even number of rounds each goes first equally often."""
    return list(builds) if rnd % 2 else list(builds)[::-1]


def _spread(xs, fmt):
    """"median" of one value, "median [min–max]" of more, "—" of none."""
    xs = [x for x in xs if x is not None]
    lo, md, hi = mmm(xs)
    if md is None:
        return "—"
    return fmt(md) if len(xs) == 1 else f"{fmt(md)} [{fmt(lo)}–{fmt(hi)}]"


def table(lead, groups, names):
    """Markdown rows. lead: the names of the leading columns (e.g. ["model", "file"]);
    groups: [(leading cells, {build name: parsed runs with "round", "rps", "cpu_us"})];
    names: the build names, the baseline first."""
    lines = ["| " + " | ".join(lead) + " | build | req/s median [min–max] | CPU µs per request "
             "median [min–max] | req/s / " + names[0] + " (per round: median [min–max]) | CPU "
             "per request / " + names[0] + " (per round: median [min–max]) |",
             "|" + "---|" * (len(lead) + 5)]
    for cells, by_build in groups:
        base = by_build.get(names[0], [])
        for n in names:
            runs = by_build.get(n, [])
            rps_cell = _spread([r.get("rps") for r in runs], fmt_rps)
            cpu_cell = _spread([r.get("cpu_us") for r in runs], lambda x: f"{x:,.1f}")
            if n == names[0]:
                ratios = ["baseline", "baseline"]
            else:
                ratios = [ratio_cell(per_round_ratios(runs, base, "rps")),
                          ratio_cell(per_round_ratios(runs, base, "cpu_us"))]
            lines.append("| " + " | ".join(list(cells) + [n, rps_cell, cpu_cell] + ratios) + " |")
    return lines


def method_lines(names, rounds):
    """What the table means, for the report's header."""
    lines = [f"- builds compared: {', '.join(f'`{n}`' for n in names)} (baseline `{names[0]}`); "
             "every round measures each build once per configuration, the builds in the "
             "given order in odd rounds and in reverse in even ones; ratios are per round (a build's run "
             "over the baseline's run in the same round), then median [min–max] over the rounds",
             "- CPU µs per request: utime+stime of the server's whole process tree (all threads, "
             "reaped children included, from /proc/PID/stat) during the measured wrk run, "
             "divided by the requests wrk completed — steadier than req/s on a shared machine; "
             "a CPU ratio below 1.00 means less CPU per request than the baseline"]
    if rounds % 2:
        lines.append(f"- {rounds} round(s), an odd number: the builds did not go first equally "
                     "often, so an order effect does not fully cancel")
    return lines
