"""The interpreter survives random use of stolon's C types: tests/fuzz/fuzz_core_api.py
makes loops, watchers of every kind, greenlets, Waiters and hubs and calls their
methods with odd arguments, in odd orders, from re-entrant callbacks, while dropped
objects are collected.  Each seed runs in its own interpreter, which must exit 0.
(Run the script by hand with many more seeds to look for crashes.)"""
import os
import subprocess
import sys

import pytest

from conftest import child_env

FUZZ = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz", "fuzz_core_api.py")
OPERATIONS = 5000


@pytest.mark.parametrize("seed", range(12))
def test_random_calls_never_crash(seed, tmp_path):
    log = tmp_path / "calls.log"
    proc = subprocess.run([sys.executable, "-X", "faulthandler", FUZZ, str(seed), str(OPERATIONS), str(log)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120,
                          env=child_env())
    last_calls = log.read_text().splitlines()[-3:] if log.exists() else []
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:], last_calls)
    assert proc.stdout.rstrip().endswith("ok %d" % seed)
