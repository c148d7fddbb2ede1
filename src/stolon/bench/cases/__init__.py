"""The case registry.

To add a group of cases: write a module here that builds RateCase or
SampleCase objects and calls register(); import it below.  The table, the
JSON, --cases and the pytest-benchmark suite in benchmarks/ pick it up.
"""
from .base import Case, RateCase, SampleCase
from .registry import all_cases, register, select

# Import order is table order.
from . import greenlet_core  # noqa: E402,F401
from . import memory  # noqa: E402,F401
from . import loop  # noqa: E402,F401
from . import hub  # noqa: E402,F401
from . import echo  # noqa: E402,F401

__all__ = ["Case", "RateCase", "SampleCase", "all_cases", "register", "select"]
