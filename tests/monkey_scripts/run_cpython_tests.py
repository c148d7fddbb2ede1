"""Run tests of CPython's own suite (the ``test`` package) after ``patch_all()``.

    python run_cpython_tests.py [--timeout SECONDS] [--shard K/N] [--exclude ID ...] ID [ID ...]

An ID names a module of the ``test`` package, a class or a test in it
(``test_socket``, ``test_socket.GeneralModuleTests``,
``test_socket.GeneralModuleTests.test_repr``); a test is left out when its id starts
with an ``--exclude`` ID (or with its text, for an ID ending with ``*``).  ``--shard K/N`` runs only the tests
whose position in their module is K modulo N, so that N processes share a long
module and each still runs every module in order.  One line per test is printed: ``ok``, ``skip``, ``FAIL`` or
``ERROR`` and the id; the exit status is 1 if any test failed.  A test that runs
longer than the timeout fails with TestTimedOut if it waits cooperatively; one that
blocks the whole process for twice as long aborts the run with every thread's
traceback on stderr."""
import sys

from stolon import monkey

monkey.patch_all()

import _thread
import argparse
import faulthandler
import signal
import unittest

import stolon
from stolon.hub import get_hub


class TestTimedOut(Exception):
    """A test ran longer than ``--timeout`` seconds."""


class LineResult(unittest.TestResult):
    """Prints each outcome as it comes, and arms the per-test watchdog."""

    def __init__(self, timeout):
        unittest.TestResult.__init__(self)
        self.timeout = timeout
        self.watchdog = None

    def _line(self, status, test, detail=None):
        print(status, test.id()[len("test."):], flush=True)
        if detail:
            print(detail, file=sys.stderr, flush=True)

    def startTest(self, test):
        unittest.TestResult.startTest(self, test)
        faulthandler.dump_traceback_later(2 * self.timeout, exit=True)
        self.watchdog = stolon.Timeout.start_new(self.timeout, TestTimedOut)

    def stopTest(self, test):
        self.watchdog.close()
        faulthandler.cancel_dump_traceback_later()
        unittest.TestResult.stopTest(self, test)

    def addSuccess(self, test):
        unittest.TestResult.addSuccess(self, test)
        self._line("ok", test)

    def addSkip(self, test, reason):
        unittest.TestResult.addSkip(self, test, reason)
        self._line("skip", test)

    def addExpectedFailure(self, test, err):
        unittest.TestResult.addExpectedFailure(self, test, err)
        self._line("ok", test)

    def addUnexpectedSuccess(self, test):
        unittest.TestResult.addUnexpectedSuccess(self, test)
        self._line("FAIL", test, "unexpected success")

    def addFailure(self, test, err):
        unittest.TestResult.addFailure(self, test, err)
        self._line("FAIL", test, self.failures[-1][1])

    def addError(self, test, err):
        unittest.TestResult.addError(self, test, err)
        self._line("ERROR", test, self.errors[-1][1])

    def addSubTest(self, test, subtest, err):
        unittest.TestResult.addSubTest(self, test, subtest, err)
        if err is not None:
            failed = self.failures if issubclass(err[0], test.failureException) else self.errors
            self._line("FAIL", test, failed[-1][1])


def _count_without_hub_workers(_native_count=_thread._count):
    """``_thread._count()`` less the worker threads of the hub's pool.

    test.support's ``wait_threads_exit()`` (around every threaded test of
    test_socket, for one) waits until ``_thread._count()`` is back to what it was.
    Under patch_all a test's threads are greenlets, which that count never includes;
    but a blocking call such as getaddrinfo() starts a worker thread in the hub's pool,
    which stays idle for seconds before it exits, and each such test would wait for it."""
    return _native_count() - get_hub().threadpool.size


def _tests_of(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from _tests_of(item)
        else:
            yield item


def _shard(tests, index, count):
    """The tests whose position among those of their module is ``index`` modulo
    ``count`` (the order is kept)."""
    seen = {}
    for test in tests:
        module = type(test).__module__
        position = seen.get(module, 0)
        seen[module] = position + 1
        if position % count == index:
            yield test


def _load(names):
    from test import support
    # what regrtest sets up before running a test module
    support.verbose = 0
    if hasattr(support, "set_match_tests"):
        support.set_match_tests(None)
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    for name in names:
        module_name = "test." + name.split(".")[0]
        module = __import__(module_name, fromlist=["*"])
        if "." in name:
            suite.addTests(loader.loadTestsFromName(name.split(".", 1)[1], module))
        else:
            # modules with only test_main() (3.9's test_threading_local) still have
            # their TestCase classes
            suite.addTests(loader.loadTestsFromModule(module))
    return suite


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--exclude", action="append", default=[])
    parser.add_argument("--shard", default="0/1")
    parser.add_argument("ids", nargs="+")
    options = parser.parse_args()
    # an excluded id covers what it names and what is inside it; "name*" covers
    # every id that starts with name
    excluded = tuple("test." + (name[:-1] if name.endswith("*") else name + ".")
                     for name in options.exclude)
    index, count = (int(part) for part in options.shard.split("/"))
    tests = (test for test in _tests_of(_load(options.ids))
             if not (test.id() + ".").startswith(excluded))
    suite = unittest.TestSuite(_shard(tests, index, count))
    _thread._count = _count_without_hub_workers
    # a parent that ignores SIGINT (a shell's background job) passes that on, and the
    # tests of KeyboardInterrupt need Python's own handler, as a terminal would give
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    result = LineResult(options.timeout)
    suite.run(result)
    print("ran %d failures %d errors %d skipped %d" % (
        result.testsRun, len(result.failures), len(result.errors), len(result.skipped)),
        flush=True)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
