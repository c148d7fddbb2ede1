"""Number formatting shared by the report, the comparison and the plot."""

_SI = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def si(value, unit=""):
    """3 significant digits with an SI prefix: si(2710000, 'switches/s') ->
    '2.71 M switches/s'."""
    for scale, prefix in _SI:
        if abs(value) >= scale:
            return f"{_sig3(value / scale)} {prefix} {unit}".rstrip()
    return f"{_sig3(value)} {unit}".rstrip()


def _sig3(x):
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def duration(seconds):
    """Time per operation; ASCII 'us' so a C-locale pipe never chokes."""
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
        if seconds >= scale:
            return f"{_sig3(seconds / scale)} {unit}"
    return f"{_sig3(seconds / 1e-9)} ns"


def percent(fraction, signed=False):
    return f"{fraction * 100:+.1f}%" if signed else f"{fraction * 100:.1f}%"


def ratio(x):
    return f"{x:.2f}" if x < 100 else f"{x:.0f}"


def table(rows, align):
    """Render rows (lists of str) as fixed-width columns.

    align has one 'l' or 'r' per column.  A row with fewer cells than
    columns is a note row: its last cell runs on to the right and does not
    widen any column (for "not installed ..." and error texts).  Trailing
    spaces are stripped so the output diffs cleanly.
    """
    ncol = len(align)
    widths = [0] * ncol
    for r in rows:
        full = len(r) == ncol
        for i, cell in enumerate(r if full else r[:-1]):
            widths[i] = max(widths[i], len(cell))
    out = []
    for r in rows:
        full = len(r) == ncol
        cells = [c.ljust(w) if a == "l" else c.rjust(w)
                 for c, w, a in zip(r if full else r[:-1], widths, align)]
        if not full:
            cells.append(r[-1])
        out.append("  ".join(cells).rstrip())
    return out

def value(unit, x):
    """A case's value with its unit: '2.71 M switches/s', '5,997 B/greenlet'."""
    if unit.startswith("B/"):
        return f"{x:,.0f} {unit}"
    return si(x, unit)


def per_op(kind, x):
    """Time per operation for rate cases ('' for anything else)."""
    return duration(1.0 / x) if kind == "rate" and x else ""
