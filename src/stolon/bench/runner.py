"""Running cases: check, calibrate, warm up, then interleaved rounds.

The fairness rules (REFERENCE.md section 8):
- the same fixed work for every library and every round of a case;
- an untimed warm-up per library before any timed round;
- rounds interleaved A B, B A, A B ... (the first library rotates), so drift
  of the machine (frequency, other load) hits every library alike and the
  per-round ratio compares two runs that happened back to back;
- inside a round, the work is cut into short slices run A B B A A B ...: on a
  VM whose speed wanders by 20% over tens of milliseconds, two 0.3 s blocks
  run one after the other still differ by that much, while the sums of
  interleaved 20 ms slices do not.  A round's value per library is computed
  from the sum of its slices (fixed total work per round).
A library that fails is recorded with the error and dropped from the case;
the run goes on.
"""
import time

from . import libs, results
from .cases.base import CheckFailed


def run_case(case, profile, progress):
    start = time.perf_counter()
    res = results.new_case(case)
    active = _available(case, res)
    if libs.SUBJECT not in [lib.name for lib in active]:
        res["status"] = "skipped"
        res["reason"] = res["libraries"][libs.SUBJECT]["reason"]
    else:
        _measure(case, profile, progress, res, active)
        if res["status"] == "error":
            for entry in res["libraries"].values():
                if entry["status"] == "ok" and not entry["values"]:
                    entry.update(status="not run", reason=f"not run: {libs.SUBJECT} failed")
    res["seconds"] = time.perf_counter() - start
    return results.analyze(res)


def _available(case, res):
    active = []
    for name in case.libraries:
        lib = libs.load(name)
        entry = res["libraries"][name] = results.new_entry(lib)
        why = case.missing(lib)
        if why:
            entry.update(status="unavailable", reason=why)
        else:
            active.append(lib)
    return active


def _measure(case, profile, progress, res, active):
    for lib in list(active):
        progress.phase(f"checking {lib.name}")
        _attempt(res, active, lib, case.verify, lib)
    calibrations = {}
    for lib in list(active):
        progress.phase(f"calibrating {lib.name}")
        ok, value = _attempt(res, active, lib, case.calibrate, lib, profile)
        if ok:
            calibrations[lib.name] = value
    if not _subject_alive(res):
        return
    res["work"] = work = case.choose_work(calibrations, profile)

    if case.warmup:
        progress.phase("warm-up")
        _round(case, profile, res, active, list(active), work)

    for rnd in range(profile.rounds):
        if not _subject_alive(res):
            return
        k = rnd % len(active)
        order = active[k:] + active[:k]
        res["order"].append([lib.name for lib in order])
        progress.phase(f"round {rnd + 1}/{profile.rounds}")
        for name, (value, raw) in _round(case, profile, res, active, order, work).items():
            entry = res["libraries"][name]
            entry["values"].append(value)
            entry["raw"].append(raw)


def _round(case, profile, res, active, order, work):
    """One round: every library in order does `work`, slice by slice, the
    order reversed on every other slice.  Returns {name: (value, raw)} for
    the libraries that did not fail."""
    parts = {lib.name: [] for lib in order}
    for j, size in enumerate(case.split(work, profile)):
        for lib in (order if j % 2 == 0 else order[::-1]):
            if lib in active:
                ok, part = _attempt(res, active, lib, case.measure, lib, size)
                if ok:
                    parts[lib.name].append(part)
    return {lib.name: case.combine(parts[lib.name]) for lib in order if lib in active}


def _attempt(res, active, lib, fn, *args):
    """Call fn; on an exception, record it for lib and drop lib from active."""
    try:
        return True, fn(*args)
    except Exception as exc:  # a broken library must not stop the suite
        entry = res["libraries"][lib.name]
        why = str(exc) if isinstance(exc, CheckFailed) else f"{type(exc).__name__}: {exc}"
        entry.update(status="error", reason=why)
        active.remove(lib)
        if lib.name == libs.SUBJECT:
            res.update(status="error", reason=entry["reason"])
        return False, None


def _subject_alive(res):
    return res["libraries"][libs.SUBJECT]["status"] == "ok"
