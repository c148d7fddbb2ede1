"""--compare: what changed against an earlier run saved with --json.

Rates of two runs are only comparable on the same machine and Python, so a
difference there is printed as a warning; the stolon/anchor ratios are the
figures that survive a change of machine.  A change counts only when the
two runs' min-max ranges do not overlap (and it exceeds 2%).
"""
from . import fmt, machine, stats
from .libs import SUBJECT

HEADER = ["case", "library", "before", "after", "change", "verdict"]
ALIGN = "llrrrl"


def render(old, new, old_label):
    versions = ", ".join(f"{n} {i['version']}" for n, i in old["libraries"].items()
                         if i["available"])
    lines = [f"change against {old_label} ({old['created']}, {old['profile']['name']} profile, "
             f"{versions})"]
    diffs = machine.same_machine(old["machine"], new["machine"])
    if diffs:
        lines.append("warning: not the same machine/Python (" + "; ".join(diffs)
                     + "): compare the stolon/anchor ratios, not the rates")
    lines += drift_lines(old, new)
    rows = [HEADER]
    old_cases = {c["name"]: c for c in old["cases"]}
    for res in new["cases"]:
        before = old_cases.pop(res["name"], None)
        rows += case_rows(before, res) if before else [[res["name"], "", "only in the new run"]]
    for name in old_cases:
        rows.append([name, "", "only in the old run"])
    return "\n".join(lines + fmt.table(rows, ALIGN))


def case_rows(old, new):
    rows = []
    hib = new["higher_is_better"]
    # a library's own figure got faster/slower (smaller/larger); a ratio got better/worse
    words = ({"better": "faster", "worse": "slower"} if hib
             else {"better": "smaller", "worse": "larger"})
    for lib in new["libraries"]:
        rows.append(_row(lib, old["summary"].get(lib), new["summary"].get(lib), hib,
                         lambda v: fmt.value(new["unit"], v), words))
    for anchor in new["anchors"]:
        rows.append(_row(f"stolon/{anchor}", old["ratios"].get(anchor), new["ratios"].get(anchor),
                         hib, fmt.ratio, {}))
    rows[0][0] = new["name"]
    return rows


def _row(label, old, new, higher_is_better, show, words):
    if not old or not new:
        missing = "before" if not old else "after"
        return ["", label, f"no data {missing}"]
    change, verdict = stats.change_verdict(old, new, higher_is_better)
    return ["", label, show(old["median"]), show(new["median"]),
            fmt.percent(change, signed=True), words.get(verdict, verdict)]


def drift_lines(old, new):
    """An anchor whose version did not change should not change speed; if it
    did, the machine ran at another speed, and rate changes of stolon mean
    little.  Say so, with the size of the drift."""
    lines = []
    for lib, info in new["libraries"].items():
        same_version = old["libraries"].get(lib, {}).get("version") == info["version"]
        if lib == SUBJECT or not info["available"] or not same_version:
            continue
        drift = _drift(old, new, lib)
        if drift and abs(drift - 1.0) > 0.05:
            lines.append(f"note: {lib} {info['version']} is the same in both runs, yet its rates "
                         f"moved {fmt.percent(drift - 1.0, signed=True)} on average: the machine "
                         f"ran at another speed; judge stolon by the stolon/{lib} rows")
    return lines


def _drift(old, new, lib):
    """Geometric mean of lib's rate change over the rate cases of both runs."""
    old_cases = {c["name"]: c for c in old["cases"]}
    moves = []
    for res in new["cases"]:
        before = old_cases.get(res["name"])
        if res["kind"] != "rate" or not before:
            continue
        now, then = res["summary"].get(lib), before["summary"].get(lib)
        if now and then:
            moves.append(now["median"] / then["median"])
    return stats.geomean(moves)
