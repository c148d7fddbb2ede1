"""stolon's benchmark suite: ``python -m stolon.bench``.

Every case runs stolon and its anchor (the library stolon must match or
beat, e.g. the ``greenlet`` package) in the same run, rounds interleaved, and
reports the median of the per-round ratios.  Absolute rates depend on the
machine; only same-run ratios are comparable (see ``REFERENCE.md`` section 8).

Modules, one job each:

- ``cases``     the case registry and the case bodies (shared with benchmarks/)
- ``runner``    calibration, warm-up and interleaved rounds
- ``profiles``  --quick / default / --full: rounds and time per round
- ``stats``     medians, spreads, per-round ratios, verdicts
- ``libs``      importing the libraries under test and reading their versions
- ``machine``   CPU, cores, kernel, Python: the context every figure needs
- ``results``   the JSON file format (``--json``, ``--compare``, ``--load``)
- ``report``    the text table; ``compare`` the change table; ``plot`` the chart
- ``fmt``       number formatting and the column layout they share
- ``progress``  the progress display (terminal) or plain lines (pipes, CI)
- ``memprobe``  the child process that measures memory per greenlet
- ``cli``       the command line
"""
