"""The results of a run as plain JSON-ready dicts, and the file format.

Everything the report, the comparison and the plot need is in these dicts,
so a saved run (--json) can be re-rendered (--load) or compared later
without the Case objects.  Raw per-round numbers are kept; summaries are
recomputed by analyze() and stored too, for other tools reading the file.
"""
import datetime
import json
import sys

from . import stats
from .libs import SUBJECT

SCHEMA = "stolon-bench/1"


def new_run(profile, machine, libraries, argv):
    return {
        "schema": SCHEMA,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "argv": list(argv),
        "profile": profile.as_dict(),
        "machine": machine,
        "libraries": {lib.name: lib.as_dict() for lib in libraries},
        "cases": [],
        "seconds": None,
        "cpu_seconds": None,
    }


def new_case(case):
    return dict(case.describe(), subject=SUBJECT, status="ok", reason=None, work=None,
                libraries={}, order=[], summary={}, ratios={}, seconds=None)


def new_entry(lib):
    return {"status": "ok", "reason": None, "version": lib.version, "values": [], "raw": []}


def analyze(res):
    """Fill res['summary'] and res['ratios'] from the per-round values."""
    res["summary"], res["ratios"] = {}, {}
    entries = res["libraries"]
    for name, entry in entries.items():
        if entry["values"]:
            res["summary"][name] = stats.summarize(entry["values"])
    subject = entries.get(res["subject"])
    if not subject or subject["status"] != "ok" or not subject["values"]:
        return res
    for anchor in res["anchors"]:
        entry = entries.get(anchor)
        if not entry or entry["status"] != "ok" or not entry["values"]:
            continue
        per_round = stats.round_ratios(subject["values"], entry["values"])
        summary = stats.summarize(per_round)
        summary["per_round"] = per_round
        summary["verdict"] = stats.verdict(summary, res["higher_is_better"])
        res["ratios"][anchor] = summary
    return res


def save(run, path):
    with open(path, "w") as f:
        json.dump(run, f, indent=1)
        f.write("\n")


def load(path):
    """Read a run saved with --json; exits with a clear message if it is not one."""
    try:
        with open(path) as f:
            run = json.load(f)
    except (OSError, ValueError) as exc:
        sys.exit(f"stolon.bench: cannot read {path}: {exc}")
    if not isinstance(run, dict) or run.get("schema") != SCHEMA:
        sys.exit(f"stolon.bench: {path} is not a stolon.bench result ({SCHEMA})")
    for res in run["cases"]:
        analyze(res)
    return run
