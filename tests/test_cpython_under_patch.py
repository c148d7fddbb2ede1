"""A selection of CPython's own test suite passes under ``patch_all()``.

tests/cpython_tests_under_patch.txt lists the modules, classes and tests of the
``test`` package that pass, and the tests left out (each with its reason), per Python
version.  They run in a few subprocesses of tests/monkey_scripts/run_cpython_tests.py,
each bounded in time; any listed test that fails fails its group.  Each subprocess
runs every listed module but only one test in GROUPS of each (``--shard``), so that
long modules such as test_socket are shared out."""
import importlib.util
import os
import subprocess
import sys

import pytest

from conftest import child_env

HERE = os.path.dirname(os.path.abspath(__file__))
RUNNER = os.path.join(HERE, "monkey_scripts", "run_cpython_tests.py")
CONFIG = os.path.join(HERE, "cpython_tests_under_patch.txt")
GROUPS = 6
GROUP_TIMEOUT = 150


def _section_applies(header, version):
    """``all``, ``3.11`` (that minor version), ``>=3.12`` or ``<3.12``."""
    if header == "all":
        return True
    for prefix, compare in ((">=", lambda v, w: v >= w), ("<", lambda v, w: v < w),
                            ("", lambda v, w: v == w)):
        if header.startswith(prefix):
            wanted = tuple(int(part) for part in header[len(prefix):].split("."))
            return compare(version, wanted)
    raise ValueError(header)


def read_config(path=CONFIG, version=sys.version_info[:2]):
    """``(ids to run, ids to leave out)`` for ``version``: lines under a ``[...]``
    header that applies; ``- ID: reason`` leaves ID out (a reason is required);
    ``#`` starts a comment."""
    included, excluded = [], []
    applies = True
    with open(path) as config:
        for number, raw in enumerate(config, 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("["):
                applies = _section_applies(line.strip("[]").strip(), version)
            elif not applies:
                continue
            elif line.startswith("-"):
                name, _, reason = line[1:].partition(":")
                if not reason.strip():
                    raise ValueError("line %d: an exclusion needs its reason" % number)
                excluded.append(name.strip())
            else:
                included.append(line)
    return included, excluded


def test_config_is_well_formed():
    included, excluded = read_config()
    assert included and len(set(included)) == len(included)
    for name in excluded:
        assert any(name.startswith(prefix + ".") or name == prefix for prefix in included), \
            "%s is left out of nothing listed" % name


@pytest.mark.skipif(importlib.util.find_spec("test.support") is None,
                    reason="this Python has no test package")
@pytest.mark.parametrize("group", range(GROUPS))
def test_cpython_tests_pass_patched(group):
    names, excluded = read_config()
    args = [sys.executable, RUNNER, "--timeout", "20", "--shard", "%d/%d" % (group, GROUPS)]
    for name in excluded:
        args += ["--exclude", name]
    result = subprocess.run(args + names, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, env=child_env(), timeout=GROUP_TIMEOUT)
    failed = [line for line in result.stdout.splitlines()
              if line.startswith(("FAIL ", "ERROR "))]
    assert result.returncode == 0 and not failed, "\n".join(
        failed + [result.stdout[-2000:], result.stderr[-6000:]])
    assert result.stdout.splitlines()[-1].startswith("ran ")
