"""The results table: what users read and trust.

Layout: a header with the machine and library versions, then per group one
row per (case, library).  Anchor rows carry the ratio stolon/anchor, its
per-round range and a verdict in words, so the direction never has to be
guessed (for memory a ratio below 1 is the good side).  A legend at the end
says how every number was obtained.
"""
import statistics

from . import fmt, machine, stats
from .libs import SUBJECT

HEADER = ["case", "library", "median", "per op", "+-", "stolon/anchor", "range", "verdict"]
ALIGN = "llrrrrll"


def render(run):
    lines = header_lines(run)
    cases = run["cases"]
    for group in _groups(cases):
        lines += ["", f"-- {group} --"]
        rows = [HEADER]
        for res in cases:
            if res["group"] == group:
                rows += case_rows(res)
        lines += fmt.table(rows, ALIGN)
    summary = summary_lines(run)
    lines += ([""] + summary if summary else []) + legend_lines(cases)
    return "\n".join(lines)


def header_lines(run):
    p = run["profile"]
    libs = ", ".join(f"{name} {info['version']}" if info["available"] else f"{name} (not installed)"
                     for name, info in run["libraries"].items())
    return [
        f"stolon.bench  {p['name']} profile: {p['rounds']} rounds per library, interleaved "
        f"(A B, B A, ...), fixed work per round, warm-up first",
        *machine.summary_lines(run["machine"]),
        f"libraries  {libs}",
        f"run        {run['created']}{_took(run)}",
    ]


def case_rows(res):
    name = res["name"] + ("" if res["higher_is_better"] else " (lower is better)")
    if res.get("clock") == "wall":
        name += " (wall)"
    if res["status"] == "skipped":
        return [[name, SUBJECT, f"skipped: {res['reason']}"]]
    rows = []
    for lib, entry in res["libraries"].items():
        first = name if not rows else ""
        summary = res["summary"].get(lib)
        if entry["status"] != "ok" or not summary:
            why = entry["reason"] or "no data"
            if entry["status"] == "error":
                why = f"error: {why}"
            rows.append([first, lib, why if lib == SUBJECT else f"{why}; no ratio"])
            continue
        row = [first, lib, fmt.value(res["unit"], summary["median"]),
               _latency(entry) or fmt.per_op(res["kind"], summary["median"]),
               fmt.percent(summary["spread"])]
        ratio = res["ratios"].get(lib)
        if ratio:
            row += [fmt.ratio(ratio["median"]),
                    f"[{fmt.ratio(ratio['min'])}-{fmt.ratio(ratio['max'])}]",
                    verdict_words(res, ratio["verdict"])]
        rows.append(row + [""] * (len(HEADER) - len(row)))
    return rows


def _latency(entry):
    """'p50 .. p99 ..' for cases whose rounds report request latency (the echo cases),
    medians over the rounds; None for the others."""
    raws = [raw for raw in entry.get("raw", []) if isinstance(raw, dict) and "p50_us" in raw]
    if not raws:
        return None
    p50 = statistics.median(raw["p50_us"] for raw in raws)
    p99 = statistics.median(raw["p99_us"] for raw in raws)
    return f"p50 {p50:,.0f} us, p99 {p99:,.0f} us"


def verdict_words(res, verdict):
    better, worse = ("faster", "slower") if res["higher_is_better"] else ("smaller", "larger")
    return {"better": f"stolon {better}", "worse": f"stolon {worse}", "same": "same",
            "unsure": f"? (< {stats.MIN_ROUNDS} rounds)"}[verdict]


def summary_lines(run):
    """Geometric mean of speed ratios per anchor: one number for the headline."""
    by_anchor = {}
    for res in run["cases"]:
        if res["kind"] == "rate":
            for anchor, r in res["ratios"].items():
                by_anchor.setdefault(anchor, []).append(r["median"])
    lines = []
    for anchor, ratios in by_anchor.items():
        gm = stats.geomean(ratios)
        lines.append(f"stolon/{anchor}, geometric mean over {len(ratios)} speed cases: "
                     f"{fmt.ratio(gm)} (above 1: stolon faster)")
    errors = [r["name"] for r in run["cases"] if r["status"] == "error"]
    if errors:
        lines.append(f"errors in: {', '.join(errors)}")
    return lines


CPU_CLOCK = ("clock: process CPU time (user+sys), so time the OS gives to other processes"
             " does not count")


def legend_lines(cases):
    # the clock of each timed case (rates, and echo cases' requests/s); memory
    # figures have none
    clocks = {res.get("clock") for res in cases if res.get("clock")}
    if clocks == {"wall"}:
        clock = "clock: elapsed time."
    elif "wall" in clocks:
        clock = CPU_CLOCK + "; cases marked (wall): elapsed time."
    elif clocks:
        clock = CPU_CLOCK + "."
    else:
        clock = "clock: none (every case measures memory)."
    return [
        "",
        clock,
        "median: of the rounds of one library; per op = 1/median (Python loop included),",
        "  or for echo cases the request latency (p50, p99; medians over the rounds);",
        "  +- = half the min-max range of the rounds, as % of the median.",
        "stolon/anchor: median of per-round ratios (each round pair ran back to back),",
        "  range = min-max.  Rates: above 1 = stolon faster.",
        "  Memory (lower is better): below 1 = stolon smaller.",
        f"verdict 'same': the range includes 1.00 or the median is within "
        f"{stats.SAME_WITHIN:.0%}.",
    ]


def _took(run):
    # wall and CPU side by side: a big gap means other processes took the CPU
    if not run.get("seconds"):
        return ""
    cpu = f", {run['cpu_seconds']:.0f} s CPU" if run.get("cpu_seconds") else ""
    return f", {run['seconds']:.0f} s wall{cpu}"


def _groups(cases):
    seen = []
    for res in cases:
        if res["group"] not in seen:
            seen.append(res["group"])
    return seen
