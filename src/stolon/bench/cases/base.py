"""What a case is.

A case measures one thing for every library it names: the subject
(stolon) and its anchors (e.g. greenlet).  Two kinds exist:

- RateCase: a ``prepare(lib, n)`` function returns a callable that performs
  n iterations in this process; the runner times the callable.  Setup
  (creating and parking greenlets) happens in prepare, outside the timing.
  The callable may be called again (pytest-benchmark does).
- SampleCase: a ``sample(lib, work)`` function returns one value per round by
  any means (the memory case runs a child process).

Case bodies get the library's module (``stolon`` or ``greenlet``) and use only
names both share, so the same code measures both: that is what makes the
ratio fair.
"""
import gc
import time

from ..libs import SUBJECT

# "cpu": CPU time of this process (user + sys).  For work that runs on one
# thread without waiting, it is the cost itself, and it does not count the
# time the OS gives to other processes: on a loaded 2-core VM wall-clock
# rounds of the same code differed by 2x, CPU-time rounds by 2%.
# "wall": elapsed time, for cases whose cost includes waiting (I/O, sleep).
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


class CheckFailed(Exception):
    """A library failed a case's check: it does not do the work it is timed on."""


class Case:
    kind = None
    warmup = True   # run once per library, untimed, before the rounds

    def __init__(self, name, title, group, unit, *, anchors=("greenlet",),
                 higher_is_better=True, needs=(), about="", pytest_work=1000, check=None):
        self.name = name              # id used by --cases and in the JSON
        self.title = title            # human words for the table
        self.group = group            # section of the table
        self.unit = unit              # unit of the value, e.g. "switches/s"
        self.anchors = tuple(anchors)
        self.higher_is_better = higher_is_better
        self.needs = tuple(needs)     # attributes the library module must have
        self.about = about
        self.pytest_work = pytest_work  # work per call under pytest-benchmark
        self.check = check            # check(module): asserts the library does the work

    @property
    def libraries(self):
        return (SUBJECT,) + self.anchors

    @property
    def words(self):
        """How the verdict reads for stolon: (better, worse)."""
        return ("faster", "slower") if self.higher_is_better else ("smaller", "larger")

    def missing(self, lib):
        """Why this case cannot run on lib (None when it can)."""
        if not lib.available:
            return lib.reason
        absent = [a for a in self.needs if not hasattr(lib.module, a)]
        if absent:
            return f"{lib.name} {lib.version} has no {', '.join(absent)}"
        return None

    def verify(self, lib):
        """Run the case's check (untimed): a library that is fast because it
        skips the work must get an error, not a ratio."""
        if self.check:
            try:
                self.check(lib.module)
            except AssertionError as exc:
                raise CheckFailed(f"check failed: {exc}") from None

    def calibrate(self, lib, profile):
        """Measure lib's speed so work per round can be chosen; may return None."""
        return None

    def choose_work(self, calibrations, profile):
        raise NotImplementedError

    def split(self, work, profile):
        """Work sizes of the slices one round is cut into (see runner)."""
        return [work]

    def measure(self, lib, work):
        """One slice: returns a part for combine()."""
        raise NotImplementedError

    def combine(self, parts):
        """The slices of one round of one library -> (value, raw for the JSON)."""
        raise NotImplementedError

    def describe(self):
        return {"name": self.name, "title": self.title, "group": self.group, "kind": self.kind,
                "unit": self.unit, "higher_is_better": self.higher_is_better,
                "anchors": list(self.anchors), "about": self.about}


class RateCase(Case):
    """Operations per second of a callable doing fixed work in this process."""
    kind = "rate"

    def __init__(self, name, title, group, unit, prepare, *, ops_per_iter=1, clock="cpu", **kw):
        kw.setdefault("needs", ("greenlet", "getcurrent"))
        super().__init__(name, title, group, unit, **kw)
        self.prepare = prepare
        self.ops_per_iter = ops_per_iter  # e.g. 2 switches per ping-pong round trip
        self.clock = clock

    def time(self, lib, n):
        """Seconds for n iterations, setup and teardown excluded."""
        run = self.prepare(lib.module, n)
        # Collect before, not during: garbage left by the previous round (or
        # the other library) must not be paid for by this one.
        gc.collect()
        clock = CLOCKS[self.clock]
        t0 = clock()
        run()
        elapsed = clock() - t0
        del run
        return elapsed

    def calibrate(self, lib, profile):
        """Iterations per second, from a run of at least calib_seconds."""
        n = 1
        while True:
            elapsed = self.time(lib, n)
            if elapsed >= profile.calib_seconds:
                return n / elapsed
            # grow fast while far below target, never more than 10x at once
            grow = 10.0
            if elapsed > 0:
                grow = min(10.0, max(2.0, 1.5 * profile.calib_seconds / elapsed))
            n = int(n * grow) + 1

    def choose_work(self, calibrations, profile):
        # The slowest library sets the work, so its rounds last round_seconds
        # and the run stays within the profile's time budget.
        slowest = min(calibrations.values())
        return max(1, int(profile.round_seconds * slowest))

    def split(self, work, profile):
        # slices of about slice_seconds each (for the slowest library)
        count = max(1, min(work, round(profile.round_seconds / profile.slice_seconds)))
        return [work // count + (1 if i < work % count else 0) for i in range(count)]

    def measure(self, lib, work):
        return work, self.time(lib, work)

    def combine(self, parts):
        work = sum(w for w, _ in parts)
        elapsed = sum(t for _, t in parts)
        return work * self.ops_per_iter / elapsed, {
            "work": work, "elapsed": elapsed, "slices": [t for _, t in parts]}

    def describe(self):
        return dict(super().describe(), ops_per_iter=self.ops_per_iter, clock=self.clock)


class SampleCase(Case):
    """One value per round from ``sample(lib, work)``; work is fixed by profile."""
    kind = "sample"
    warmup = False

    def __init__(self, name, title, group, unit, sample, work, **kw):
        super().__init__(name, title, group, unit, **kw)
        self.sample = sample
        self.work = work   # profile -> work (e.g. number of greenlets)

    def choose_work(self, calibrations, profile):
        return self.work(profile)

    def measure(self, lib, work):
        return self.sample(lib, work)

    def combine(self, parts):
        (part,) = parts  # never split: one sample per round
        return part
