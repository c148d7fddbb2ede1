"""Memory per suspended greenlet, measured in a fresh child process per
library and per round, so one library's heap never pollutes the other's
numbers (and allocator state from earlier cases does not count)."""
import json
import os
import subprocess
import sys

from .base import SampleCase
from .registry import register

GROUP = "greenlet core"
PROBE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "memprobe.py")


def sample_memory(lib, count):
    """Run memprobe.py for lib with `count` greenlets; bytes per greenlet."""
    env = dict(os.environ)
    root = lib.import_root()
    if root:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, PROBE, lib.module.__name__, str(count)],
                          capture_output=True, text=True, env=env, timeout=300)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"memory probe exited {proc.returncode}: " + " | ".join(tail))
    raw = json.loads(proc.stdout.strip().splitlines()[-1])
    return raw["bytes_per_greenlet"], raw


register(SampleCase(
    "memory-suspended", "memory per suspended greenlet", GROUP, "B/greenlet",
    sample_memory, work=lambda profile: profile.memory_count,
    higher_is_better=False, needs=("greenlet", "getcurrent"),
    about="RSS growth / N for N greenlets each suspended one Python frame deep, "
          "fresh process per library and round; lower is better",
    pytest_work=10_000))
