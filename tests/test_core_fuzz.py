"""The interpreter survives random use of stolon's C types: tests/fuzz/fuzz_core_api.py
makes loops, watchers of every kind, greenlets, Waiters and hubs and calls their
methods with odd arguments, in odd orders, from re-entrant callbacks, while dropped
objects are collected.  Each seed runs in its own interpreter, which must exit 0.
(Run the script by hand with many more seeds to look for crashes.)"""
import pytest

from conftest import run_fuzz_seed

OPERATIONS = 5000


@pytest.mark.parametrize("seed", range(12))
def test_random_calls_never_crash(seed, tmp_path):
    run_fuzz_seed("fuzz_core_api.py", seed, OPERATIONS, tmp_path / "calls.log")
