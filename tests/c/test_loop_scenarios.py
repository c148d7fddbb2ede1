"""The loop's C scenarios (tests/c/loop_scen_*.c), each on every backend.

Each scenario is C code that drives csrc/loop/ through its API with C
callbacks recording into arrays; it runs in a forked child with a timeout
(a hang or a crash fails that one test) and reports 0 or the check that
failed.  Every scenario runs on each backend the platform has (epoll
and poll on Linux; kqueue and poll on macOS and the BSDs).  The same scenarios run
under Valgrind in run_loop_valgrind.sh.
"""
import re
import sys

import pytest

pytest.importorskip("cffi")

from loop_cffi import HERE, load  # noqa: E402

TIMEOUT_S = 60
# The backends this platform builds (the test skips one that is missing).
BACKENDS = ["epoll", "poll"] if sys.platform.startswith("linux") else ["kqueue", "poll"]


def _scenario_names():
    """The table, read from loop_tests.h (one test per entry)."""
    text = (HERE / "loop_tests.h").read_text()
    return re.findall(r"^\s*X\((\w+)\)", text, re.M)


SCENARIOS = _scenario_names()


@pytest.fixture(scope="module")
def mod():
    return load()


def test_table_matches_the_library(mod):
    ffi, lib = mod.ffi, mod.lib
    names = [ffi.string(lib.tl_name(i)).decode() for i in range(lib.tl_count())]
    assert names == SCENARIOS


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario(mod, name, backend):
    ffi, lib = mod.ffi, mod.lib
    bits = {"epoll": lib.STL_BACKEND_EPOLL, "poll": lib.STL_BACKEND_POLL,
            "kqueue": lib.STL_BACKEND_KQUEUE}[backend]
    if not lib.stl_loop_supported_backends() & bits:
        pytest.skip("no %s here" % backend)
    result = ffi.new("tl_result *")
    code = lib.tl_run_isolated(SCENARIOS.index(name), bits, TIMEOUT_S, result)
    what = ffi.string(result.what).decode(errors="replace")
    assert code == 0, "scenario %s (%s) failed with code %d: %s" % (name, backend, code, what)
    if result.value:
        print("%s/%s: value %d" % (name, backend, result.value))
