"""pytest-benchmark view of the stolon.bench cases.

Run:   pytest benchmarks/ --benchmark-only
Not collected by a plain `pytest` (pyproject's testpaths is tests/).

The case bodies live in src/stolon/bench/cases/ and are shared with
`python -m stolon.bench`; this directory only adapts them to
pytest-benchmark.  Each case is a benchmark group holding stolon and its
anchor side by side; an anchor that is not installed is skipped.

pytest-benchmark times each library in its own block of rounds; for
interleaved rounds and same-run ratios use `python -m stolon.bench`.
"""
import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    """Run benchmarks serially even though pyproject's addopts has -n auto.

    Parallel workers would compete for the CPUs being measured, and
    pytest-benchmark refuses --benchmark-only under xdist.  This hook runs
    before xdist's own (this conftest is an initial conftest whenever
    benchmarks/ is on the command line), and -n 0 is xdist's "off".
    """
    if getattr(config.option, "numprocesses", None):
        config.option.numprocesses = 0
        config.option.dist = "no"


@pytest.fixture
def sample_figures(request):
    """Sample cases (memory) measure something other than time: they append
    (case, library, value, unit) here, and the terminal summary prints them."""
    return request.config.stash.setdefault(_FIGURES, [])


_FIGURES = pytest.StashKey()


def pytest_terminal_summary(terminalreporter, config):
    figures = config.stash.get(_FIGURES, [])
    if figures:
        terminalreporter.section("stolon.bench sample cases (not times)")
        for case, lib, value, unit in figures:
            terminalreporter.write_line(f"{case:24} {lib:10} {value:12,.0f} {unit}")
