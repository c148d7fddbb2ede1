"""Every registered case x every library it names, as pytest-benchmark tests."""
import statistics

import pytest

from stolon.bench import cases, libs, profiles


def _params():
    for case in cases.all_cases():
        for name in case.libraries:
            yield pytest.param(case, name, id=f"{case.name}-{name}")


@pytest.mark.parametrize("case,lib_name", list(_params()))
def test_case(benchmark, sample_figures, case, lib_name):
    lib = libs.load(lib_name)
    why = case.missing(lib)
    if why:
        pytest.skip(why)
    case.verify(lib)  # the same untimed check as python -m stolon.bench
    benchmark.group = f"{case.name} ({case.unit})" if case.kind == "rate" else \
        f"{case.name} (probe time; {case.unit}: see the stolon.bench section)"
    benchmark.extra_info.update(case=case.name, library=lib.name, version=lib.version,
                                unit=case.unit)
    if case.kind == "rate":
        _rate(benchmark, case, lib)
    else:
        _sample(benchmark, case, lib, sample_figures)


def _rate(benchmark, case, lib):
    # Fixed work per call; pytest-benchmark's times are per call, so record
    # how many operations one call is, and the median per operation.
    ops = case.pytest_work * case.ops_per_iter
    benchmark.extra_info["ops_per_call"] = ops
    run = case.prepare(lib.module, case.pytest_work)
    benchmark(run)
    if benchmark.stats:  # None under --benchmark-disable (a plain smoke run)
        benchmark.extra_info["ns_per_op_median"] = benchmark.stats.stats.median / ops * 1e9


def _sample(benchmark, case, lib, figures):
    # A sample case measures something other than time (memory): the timing
    # is the probe's, the figure that matters goes to extra_info.
    work = case.pytest_work or case.choose_work({}, profiles.PROFILES["quick"])
    values = []

    def once():
        value, _raw = case.combine([case.measure(lib, work)])
        values.append(value)

    benchmark.pedantic(once, rounds=3, iterations=1)
    benchmark.extra_info[case.unit] = median = statistics.median(values)
    figures.append((case.name, lib.name, median, case.unit))
