"""--plot: a bar chart of the stolon/anchor ratios (needs matplotlib).

One horizontal bar per (case, anchor) on a log axis centred on 1.0, so 2x
faster and 2x slower are the same length; error bars show the per-round
min-max range.  Colour carries the verdict, because "better" is to the
right for speed and to the left for memory.
"""
import math

COLOURS = {"better": "#2e7d32", "worse": "#c62828", "same": "#9e9e9e", "unsure": "#9e9e9e"}
# Ratio ticks printed as plain numbers (matplotlib's log axis would write 9x10^-1)
TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.33, 0.5, 0.67, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2,
         3, 4, 5, 10, 20, 50, 100)


def require_matplotlib():
    """Fail before the run, not after a minute of benchmarking."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return ("--plot needs matplotlib, which is not installed: "
                "pip install matplotlib")
    return None


def draw(run, path):
    import matplotlib
    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    bars = []
    for res in run["cases"]:
        for anchor, r in res["ratios"].items():
            arrow = "" if res["higher_is_better"] else "  (lower is better)"
            bars.append((f"{res['name']} vs {anchor}{arrow}", r))
    if not bars:
        raise ValueError("no ratios to plot (no anchor installed, or no case ran)")
    bars.reverse()  # matplotlib draws bottom-up; keep table order top-down

    fig, ax = plt.subplots(figsize=(10, 1.6 + 0.45 * len(bars)))
    ys = range(len(bars))
    med = [r["median"] for _, r in bars]
    err = [[m - r["min"] for m, (_, r) in zip(med, bars)],
           [r["max"] - m for m, (_, r) in zip(med, bars)]]
    ax.barh(ys, [m - 1.0 for m in med], left=1.0, xerr=err,
            color=[COLOURS[r["verdict"]] for _, r in bars], ecolor="black", capsize=3)
    ax.set_xscale("log")
    lo = min(min(r["min"] for _, r in bars), 0.8) / 1.15
    hi = max(max(r["max"] for _, r in bars), 1.25) * 1.3   # room for the figure
    ax.set_xlim(lo, hi)
    ax.xaxis.set_major_locator(ticker.FixedLocator(_ticks(lo, hi)))
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda x, _pos: f"{x:g}"))
    ax.xaxis.set_minor_locator(ticker.NullLocator())
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(list(ys))
    ax.set_yticklabels([label for label, _ in bars])
    for y, (_, r) in zip(ys, bars):  # the figure, right of the error bar
        ax.annotate(f"{r['median']:.2f}", (max(r["max"], r["median"], 1.0), y),
                    xytext=(6, -3), textcoords="offset points", fontsize=8)
    m = run["machine"]
    libs = ", ".join(f"{n} {i['version']}" for n, i in run["libraries"].items() if i["available"])
    ax.set_title(f"stolon / anchor: median of per-round ratios, whiskers = min-max\n"
                 f"{m['cpu']}, {m['usable_cores']} cores, {m['python']}\n{libs}", fontsize=9)
    ax.set_xlabel("ratio (log scale)   green = stolon better, red = worse, "
                  "grey = same within noise",
                  fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _ticks(lo, hi):
    """Plain-number ticks, 1.0 always, none closer than a tenth of the axis."""
    gap = math.log(hi / lo) / 10
    chosen = [1.0]
    for t in sorted(TICKS, key=lambda t: abs(math.log(t))):  # outwards from 1.0
        if lo <= t <= hi and all(abs(math.log(t / c)) >= gap for c in chosen):
            chosen.append(t)
    return sorted(chosen)
