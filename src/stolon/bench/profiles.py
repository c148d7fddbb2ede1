"""How long a run takes: --quick, default, --full.

Work per round is fixed per case (calibrated once, the same for every
library and every round), so a round of the slower library simply takes
longer.  round_seconds is the target for the *slower* library's round, on
the case's clock (CPU time for the greenlet core, see cases/base.py): on a
busy machine the wall-clock duration of a run grows accordingly.

A profile also chooses the cases a run without --cases measures: --quick a core
of one or two cases per group, the default most of them, --full every case
(--cases selects from all of them whatever the profile).

Rounds are cut into slices of slice_seconds that alternate between the
libraries (see runner): on a VM whose speed wanders by 20% over tens of
milliseconds, only measurements that close together in time compare well.
"""
from dataclasses import dataclass, asdict


@dataclass(frozen=True)
class Profile:
    name: str
    rounds: int          # timed rounds per library (>= 5: the project rule)
    round_seconds: float  # target duration of one round
    calib_seconds: float  # a calibration run must last at least this long
    slice_seconds: float  # a round is cut into slices this long, alternating libraries
    memory_count: int    # greenlets per memory measurement
    cases: str = None    # the cases run without --cases (--cases syntax); None: all

    def as_dict(self):
        return asdict(self)


QUICK_CASES = ("switch-pingpong,create-switch-finish,memory-suspended,loop-io-pingpong,"
               "hub-sleep0,hub-spawn-join,hub-event-pingpong,echo-c100-100B")
DEFAULT_CASES = QUICK_CASES + (",switch-deep-100,switch-c-recursion-20,loop-timers,"
                               "hub-queue-pingpong,echo-bulk-100MiB,wsgi-c100")

PROFILES = {
    # ~15 s on a 2-core VM
    "quick": Profile("quick", rounds=5, round_seconds=0.1, calib_seconds=0.02,
                     slice_seconds=0.02, memory_count=10_000, cases=QUICK_CASES),
    # ~1 min
    "default": Profile("default", rounds=7, round_seconds=0.2, calib_seconds=0.05,
                       slice_seconds=0.02, memory_count=10_000, cases=DEFAULT_CASES),
    # several minutes; use for figures you publish
    "full": Profile("full", rounds=15, round_seconds=1.0, calib_seconds=0.1,
                    slice_seconds=0.025, memory_count=20_000),
}
