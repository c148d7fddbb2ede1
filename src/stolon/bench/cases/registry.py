"""The ordered list of cases and selection by --cases."""
import fnmatch

_CASES = []


def register(case):
    if any(c.name == case.name for c in _CASES):
        raise ValueError(f"duplicate benchmark case {case.name!r}")
    _CASES.append(case)
    return case


def all_cases():
    return list(_CASES)


def select(pattern):
    """Cases matching a comma-separated list of patterns.

    A pattern with * ? or [ is a glob on the case name; otherwise it matches
    any case whose name or group contains it ("switch", "memory").
    """
    if not pattern:
        return all_cases()
    parts = [p.strip() for p in pattern.split(",") if p.strip()]
    return [c for c in _CASES if any(_matches(c, p) for p in parts)]


def _matches(case, pattern):
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(case.name, pattern)
    return pattern in case.name or pattern in case.group
