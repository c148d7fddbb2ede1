"""Child process for the memory case: RSS growth per suspended greenlet.

Run as ``python memprobe.py MODULE COUNT``; prints one JSON line.  It is run
by file path, not with -m, so the stolon package is not imported when the
greenlet package is measured.  Standard library only (psutil if present).
"""
import gc
import importlib
import json
import os
import sys

# Running by path puts this directory first on sys.path; its module names
# (stats, report, ...) must not shadow anything the measured library imports.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]


def rss():
    """Resident set size in bytes, and where the number came from."""
    try:
        import psutil
        return psutil.Process().memory_info().rss, "psutil"
    except ImportError:
        pass
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"), "statm"
    except OSError:
        pass
    import resource  # peak, not current; fine here because we only grow
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (peak if sys.platform == "darwin" else peak * 1024), "ru_maxrss"


def main():
    name, count = sys.argv[1], int(sys.argv[2])
    lib = importlib.import_module(name)
    greenlet, getcurrent = lib.greenlet, lib.getcurrent
    main_g = getcurrent()

    def park():
        main_g.switch()   # the one frame each greenlet is suspended in

    # Warm up: lazily built per-thread state, type caches and the first
    # allocator arenas must not be charged to the measured greenlets.
    warm = [greenlet(park) for _ in range(100)]
    for g in warm:
        g.switch()
    del warm, g
    keep = [None] * count   # allocated before the baseline
    gc.collect()
    gc.disable()            # a collection mid-way could free unrelated memory

    before, source = rss()
    for i in range(count):
        g = greenlet(park)
        g.switch()
        keep[i] = g
    after, _ = rss()
    # A small figure means nothing unless every greenlet really is suspended.
    broken = sum(1 for g in keep if not g or g.dead)
    if broken:
        sys.exit(f"memprobe: {broken} of {count} greenlets are not suspended after switching back")

    saved = [getattr(g, "_stack_saved", None) for g in keep[:100]]
    saved = sum(saved) / len(saved) if None not in saved else None
    print(json.dumps({
        "module": name, "version": getattr(lib, "__version__", None), "count": count,
        "rss_before": before, "rss_after": after, "rss_source": source,
        "bytes_per_greenlet": (after - before) / count,
        "stack_saved_avg": saved,
    }))
    sys.stdout.flush()
    # Skip interpreter teardown: killing COUNT greenlets one by one (GreenletExit
    # into each) takes time and measures nothing.
    os._exit(0)


if __name__ == "__main__":
    main()
