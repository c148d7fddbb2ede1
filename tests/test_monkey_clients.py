"""Real client and server programs run under ``patch_all()``: the stdlib's HTTP, SMTP
and socketserver modules, requests and urllib3 with a hundred concurrent requests,
thread programs that must print what they print unpatched, and a clean interpreter
exit.  Each scenario is a script in tests/monkey_scripts run in its own interpreter."""
import functools
import importlib.util

import pytest

from conftest import monkey_script_lines

# real servers and a hundred concurrent requests: more time than conftest's default
lines_of = functools.partial(monkey_script_lines, timeout=60)


def test_urllib_and_http_client_against_threading_http_server():
    assert lines_of("stdlib_http.py") == [
        "urllib GET 200 plain", "urllib POST 200 SHOUT",
        "http.client ['keepalive0', 'keepalive1', 'keepalive2'] 200 {\"A\": 1}",
        "concurrent 20", "done"]


def test_threading_tcp_server():
    assert lines_of("socketserver_threads.py") == [
        "replies True 10", "overlapped True", "server stopped True"]


def test_smtplib_against_a_socketserver_smtp_server():
    expected = ["results [(250, {}), (250, {}), (250, {})]"]
    expected += ["sender%d@example.com ['a@example.com', 'b@example.com'] note %d"
                 " ['line one', '.leading dot', 'number %d']" % (n, n, n) for n in range(3)]
    assert lines_of("smtp_exchange.py") == expected + ["server stopped True"]


@pytest.mark.parametrize("library", ["requests", "urllib3"])
@pytest.mark.parametrize("runner", ["threads", "greenlets"])
def test_hundred_concurrent_requests_overlap(library, runner):
    if importlib.util.find_spec(library) is None:
        pytest.skip("%s is not installed" % library)
    lines = lines_of("concurrent_fetch.py", library, runner)
    assert lines[0] == "ok 100"
    elapsed = float(lines[1].split()[1])
    print("%s with 100 %s: %.2f s" % (library, runner, elapsed))
    # 100 requests of 0.2 s each: serially 20 s; overlapped about 0.4 s here
    assert elapsed < 1.5, lines


@pytest.mark.parametrize("script", ["threading_programs.py", "producer_consumer.py"])
def test_thread_programs_print_the_same_patched(script):
    unpatched = lines_of(script)
    assert lines_of(script, "patch") == unpatched
    assert len(unpatched) >= 5


@pytest.mark.parametrize("mode,expected", [
    ("non-daemon", ["main module done", "client finished [b'A', b'B', b'C']"]),
    ("daemon", ["main module done"]),
    ("executor", ["job 0", "job 1", "job 2", "job 3", "main module done"]),
    ("none", ["main module done"]),
])
def test_interpreter_exits_cleanly(mode, expected):
    # the order of the jobs of real threads varies: compare sorted lines
    assert sorted(lines_of("exit_clean.py", mode)) == sorted(expected)
    assert sorted(lines_of("exit_clean.py", mode, "patch")) == sorted(expected)
