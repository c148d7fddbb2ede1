"""Progress on stderr, so stdout carries only the results.

On a terminal: one line rewritten in place with the case, the phase and the
elapsed time.  Elsewhere (pipes, CI logs): one plain line per finished case,
no control characters.
"""
import sys
import time

from . import fmt


class Progress:
    def __init__(self, stream=None, enabled=True):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.live = enabled and self.stream.isatty()
        self.t0 = time.perf_counter()
        self.prefix = ""

    def case_start(self, index, total, case):
        self.prefix = f"[{index + 1}/{total}] {case.name}"
        self.case_t0 = time.perf_counter()
        self.phase("starting")

    def phase(self, text):
        if self.live:
            elapsed = time.perf_counter() - self.t0
            self._write(f"\r\x1b[2K{self.prefix}  {text}  ({elapsed:.0f} s)")

    def case_done(self, res):
        if not self.enabled:
            return
        took = time.perf_counter() - self.case_t0
        line = f"{self.prefix}: {_outcome(res)} ({took:.1f} s)"
        self._write(("\r\x1b[2K" if self.live else "") + line + "\n")

    def finish(self):
        if self.live:
            self._write("\r\x1b[2K")

    def _write(self, text):
        self.stream.write(text)
        self.stream.flush()


def _outcome(res):
    if res["status"] != "ok":
        return f"{res['status']}: {res['reason']}"
    parts = []
    for anchor in res["anchors"]:
        ratio = res["ratios"].get(anchor)
        if ratio:
            parts.append(f"stolon/{anchor} {fmt.ratio(ratio['median'])}")
        else:
            entry = res["libraries"][anchor]
            parts.append(f"{anchor} {entry['status']}: {entry['reason']}")
    return ", ".join(parts) or "done"
