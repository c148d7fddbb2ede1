"""Random programs over the cooperative layer (tests/fuzz/fuzz_cooperative.py) run
clean under stolon: no crash, no hang, no error printed that the program did not
raise on purpose, the invariants the programs check hold (greenlet states agree with
each other, queue sizes stay within 0..maxsize, semaphore counters within 0..initial,
every greenlet is dead after killall, pools are empty after kill), and a program
ordered by callbacks alone prints the same trace every time it runs.

(gevent is not installed in CI; run the script by hand to compare with gevent over
many more seeds.)"""
import importlib.util
import os
import sys

import pytest

FUZZ = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz", "fuzz_cooperative.py")
_spec = importlib.util.spec_from_file_location("fuzz_cooperative", FUZZ)
fuzz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz)

#: Seconds for one run of one program; the untimed ones take a fraction of a second.
RUN_TIMEOUT = 60.0


@pytest.mark.parametrize("seed", range(12))
def test_untimed_program_is_clean_and_deterministic(seed):
    report = fuzz.check_seed(seed, ops=30, unit=0.001, python=sys.executable, stolon_only=True,
                             timeout=RUN_TIMEOUT, timed=False)
    assert report is None, report


@pytest.mark.parametrize("seed", [1000, 1001, 1002, 1003])
def test_timed_program_runs_clean(seed):
    # Timers make the interleaving depend on the machine's speed, so only the
    # invariants are checked here, not that two runs agree.
    program = fuzz.Program(seed, ops=30, unit=0.002)
    outcome = fuzz.run_program(program.source("stolon"), "stolon", sys.executable, RUN_TIMEOUT)
    assert outcome.problem() is None, outcome.problem()
    assert outcome.trace and outcome.trace[-1].startswith(("obj", "pool", "dead", "end"))


def _outcome_of(extra_main_lines):
    """The outcome of a small untimed program with ``extra_main_lines`` run at the end of main."""
    program = fuzz.Program(3, ops=5, unit=0.001, timed=False)
    program.main_body.extend(extra_main_lines)
    return fuzz.run_program(program.source("stolon"), "stolon", sys.executable, RUN_TIMEOUT)


def test_checks_see_unexpected_hub_errors():
    outcome = _outcome_of(["gevent.spawn(len).join()"])       # TypeError inside a greenlet
    assert outcome.problem() and "TypeError" in outcome.problem()


def test_checks_see_broken_invariants():
    outcome = _outcome_of(["BAD('made up')"])
    assert outcome.problem() and "made up" in outcome.problem()


def test_checks_see_failing_programs():
    outcome = _outcome_of(["raise SystemExit(3)"])
    assert outcome.problem().startswith("exit 3")


def test_comparison_sees_a_changed_trace():
    source = fuzz.Program(5, ops=10, unit=0.001, timed=False).source("stolon")
    first = fuzz.run_program(source, "stolon", sys.executable, RUN_TIMEOUT)
    second = fuzz.run_program(source.replace("\nmain()\n", "\nR('extra')\nmain()\n"), "stolon",
                              sys.executable, RUN_TIMEOUT)
    assert first.problem() is None and second.problem() is None
    assert fuzz.compare(first, first) is None
    assert "extra" in fuzz.compare(first, second)
