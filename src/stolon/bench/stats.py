"""Statistics for interleaved rounds.

Why these choices:
- median, not mean: one round disturbed by another process must not move it;
- spread as the min-max range, not a standard deviation: with 5-15 rounds
  the range is honest and easy to read, and it is what decides whether a
  difference is real (a ratio whose range includes 1.0 is "same");
- the ratio is the median of *per-round* ratios, not a ratio of medians:
  rounds A and B of the same pair ran back to back, so a slow patch of the
  machine cancels out inside each pair.
"""
import math
import statistics

# A difference smaller than this is called "same" even when the range of
# per-round ratios happens to exclude 1.0: 2% is below what users notice and
# inside typical run-to-run drift.
SAME_WITHIN = 0.02

# Fewer rounds than this give no verdict: with 2-3 rounds a narrow range that
# excludes 1.0 happens by chance (the project rule is >= 5 rounds).
MIN_ROUNDS = 5


def summarize(values):
    """Median, min, max and relative half-range of a list of numbers."""
    med = statistics.median(values)
    lo, hi = min(values), max(values)
    spread = (hi - lo) / 2 / med if med else 0.0
    return {"median": med, "min": lo, "max": hi, "spread": spread, "n": len(values)}


def round_ratios(subject, anchor):
    """Per-round ratios subject/anchor; round i of both ran back to back."""
    return [s / a for s, a in zip(subject, anchor) if a]


def verdict(ratio_summary, higher_is_better):
    """'better', 'worse', 'same' or 'unsure' (too few rounds) for stolon,
    given stolon/anchor ratios."""
    if ratio_summary["n"] < MIN_ROUNDS:
        return "unsure"
    med, lo, hi = ratio_summary["median"], ratio_summary["min"], ratio_summary["max"]
    if lo <= 1.0 <= hi or abs(med - 1.0) < SAME_WITHIN:
        return "same"
    return "better" if (med > 1.0) == higher_is_better else "worse"


def change_verdict(old, new, higher_is_better):
    """Did a figure move beyond noise between two runs?

    'same' when the two runs' min-max ranges overlap (either run's noise
    could explain the move) or the change is under SAME_WITHIN.
    """
    change = new["median"] / old["median"] - 1.0 if old["median"] else 0.0
    overlap = new["min"] <= old["max"] and old["min"] <= new["max"]
    if overlap or abs(change) < SAME_WITHIN:
        return change, "same"
    return change, "better" if (change > 0) == higher_is_better else "worse"


def geomean(xs):
    xs = [x for x in xs if x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None
