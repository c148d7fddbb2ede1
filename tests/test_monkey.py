"""stolon.monkey: patch_all and the single patch functions, the queries, the warnings
and ``python -m stolon.monkey``.  What patches runs in a subprocess (scripts in
tests/monkey_scripts); the query helpers are also checked in-process on a module of
our own."""
import sys
import types

import pytest

from conftest import monkey_script_lines, run_in_monkey_scripts
from stolon import monkey


def test_patch_all_replaces_and_remembers():
    lines = monkey_script_lines("basics.py")
    assert lines == [
        "socket True", "create_connection True", "getaddrinfo True", "sleep True",
        "select True", "epoll removed True", "DefaultSelector stolon.selectors",
        "patched True True", "not patched False False", "original sleep True",
        "original pair True", "original fallback True", "unpatched attribute True",
        "ten sleeps overlap True True"]


def test_patching_again_with_other_arguments_warns():
    assert monkey_script_lines("warnings_twice.py") == [
        "patched socket True", "thread untouched False",
        "MonkeyPatchWarning Patching more than once will result in the union of all True"
        " parameters being patched True"]


def test_urllib_against_threading_http_server():
    assert monkey_script_lines("http_fetch.py") == [
        "200 path=/item0 thread=Thread", "200 path=/item1 thread=Thread",
        "200 path=/item2 thread=Thread", "200 path=/item3 thread=Thread",
        "server stopped True"]


def test_ssl_imported_before_patching_warns_naming_the_module():
    lines = monkey_script_lines("ssl_early.py")
    assert len(lines) == 1, lines
    assert lines[0].startswith("MonkeyPatchWarning | Monkey-patching ssl after ssl has already"
                               " been imported")
    assert "Modules that had direct imports (NOT patched): ['__main__ (" in lines[0]
    assert "ssl_early.py)']" in lines[0]


def test_python_m_stolon_monkey_runs_the_script():
    result = run_in_monkey_scripts("-m", "stolon.monkey", "run_main.py", "one", "--two")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        "name __main__", "argv ['one', '--two']", "patched True True", "main is current True"]


def test_python_m_stolon_monkey_options():
    # stolon differs from gevent 26.9 here on purpose: naming a module (--socket) patches
    # only the modules named, as both documentations say; gevent's option parser no
    # longer finds its module names and patches everything.
    result = run_in_monkey_scripts("-m", "stolon.monkey", "--socket", "run_main.py")
    assert result.returncode == 0, result.stderr
    assert "patched True False" in result.stdout.splitlines()
    result = run_in_monkey_scripts("-m", "stolon.monkey", "--no-thread", "run_main.py")
    assert "patched True False" in result.stdout.splitlines()
    result = run_in_monkey_scripts("-m", "stolon.monkey", "--nonsense", "run_main.py")
    assert result.returncode == 1
    assert "Cannot patch 'nonsense'" in result.stderr
    result = run_in_monkey_scripts("-m", "stolon.monkey")
    assert result.returncode == 0 and "--[no-]socket" in result.stdout


def _run_snippet(code):
    result = run_in_monkey_scripts("-c", code)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.mark.parametrize("name,check", [
    ("subprocess", "subprocess.Popen is stolon.subprocess.Popen"),
    ("os", "all(getattr(os, n) is getattr(stolon.os, n) for n in stolon.os.__implements__)"),
    ("signal", "all(getattr(signal, n) is getattr(stolon.signal, n)"
               " for n in stolon.signal.__implements__)"),
])
def test_process_and_signal_modules(name, check):
    code = ("from stolon import monkey; monkey.patch_%s(); import %s, stolon.%s; print(%s)"
            % (name, name, name, check))
    assert _run_snippet(code) == ["True"]


def test_patch_all_patches_ssl_subprocess_os_and_signal():
    code = ("from stolon import monkey; monkey.patch_all();"
            "print([monkey.is_module_patched(n) for n in ('ssl', 'subprocess', 'os', 'signal')])")
    assert _run_snippet(code) == ["[True,", "True,", "True,", "True]"]


def test_single_patches():
    code = ("from stolon import monkey; monkey.patch_queue(); monkey.patch_dns();"
            "import queue, socket, stolon.queue, stolon.socket;"
            "print(queue.Queue is stolon.queue.Queue, queue.SimpleQueue is stolon.queue.SimpleQueue,"
            " socket.gethostbyname is stolon.socket.gethostbyname,"
            " socket.socket is monkey.get_original('socket', 'socket'))")
    assert _run_snippet(code) == ["True", "True", "True", "True"]


def test_patch_socket_without_dns():
    code = ("from stolon import monkey; monkey.patch_socket(dns=False);"
            "import socket, stolon.socket;"
            "print(socket.socket is stolon.socket.socket, monkey.is_object_patched('socket', 'getaddrinfo'))")
    assert _run_snippet(code) == ["True", "False"]


def test_selectors_use_the_cooperative_functions():
    code = ("from stolon import monkey; monkey.patch_select(); monkey.patch_selectors();"
            "import selectors, stolon.select;"
            "s = selectors.SelectSelector();"
            "print(type(selectors.SelectSelector._select).__name__ == 'function',"
            " selectors.PollSelector._selector_cls is stolon.select.poll,"
            " hasattr(selectors, 'EpollSelector')); s.close()")
    assert _run_snippet(code) == ["True", "True", "False"]


# -- in-process: the helpers on a throwaway module, which patching cannot disturb -------

def _throwaway_modules(name):
    target = types.ModuleType(name)
    target.value = "original"
    target.other = "kept"
    source = types.ModuleType("source_" + name)
    source.__implements__ = ["value"]
    source.value = "replacement"
    calls = []
    source._gevent_will_monkey_patch = lambda mod, items, warn: calls.append(("will", items))
    source._gevent_did_monkey_patch = lambda mod, items, warn: calls.append(("did", items))
    return target, source, calls


def test_patch_module_and_queries():
    target, source, calls = _throwaway_modules("stolon_test_throwaway_a")
    sys.modules[target.__name__] = target
    try:
        assert not monkey.is_module_patched(target.__name__)
        assert monkey.patch_module(target, source) is True
        assert calls == [("will", ["value"]), ("did", ["value"])]
        assert target.value == "replacement" and target.other == "kept"
        assert monkey.is_module_patched(target.__name__)
        assert monkey.is_object_patched(target.__name__, "value")
        assert not monkey.is_object_patched(target.__name__, "other")
        assert monkey.get_original(target.__name__, "value") == "original"
        assert monkey.get_original(target.__name__, ["value", "other"]) == ["original", "kept"]
        monkey.patch_item(target, "value", "third")
        assert monkey.get_original(target.__name__, "value") == "original"
        assert monkey.saved[target.__name__] == {"value": "original"}
    finally:
        del sys.modules[target.__name__]
        monkey.saved.pop(target.__name__, None)


def test_patch_module_needs_implements():
    target, source, _ = _throwaway_modules("stolon_test_throwaway_b")
    del source.__implements__
    with pytest.raises(AttributeError, match="bad or missing value for __implements__"):
        monkey.patch_module(target, source)
    assert target.__name__ not in monkey.saved


def test_get_original_of_missing_module():
    with pytest.raises(ImportError):
        monkey.get_original("stolon_no_such_module_anywhere", "x")


def test_warning_category():
    assert issubclass(monkey.MonkeyPatchWarning, RuntimeWarning)
