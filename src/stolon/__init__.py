"""stolon: cooperative concurrency with a C core.

The greenlet primitive (``stolon.greenlet``) has greenlet 3.x's semantics:
code written for greenlet ports by changing the import.
"""
from stolon._core import _C_API, GreenletExit, error, getcurrent, gettrace, greenlet, settrace

__version__ = "0.1.0"

__all__ = ["greenlet", "getcurrent", "GreenletExit", "error", "settrace", "gettrace"]
