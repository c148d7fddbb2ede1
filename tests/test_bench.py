"""python -m stolon.bench, the README's main command: the command line, its outputs
(--json, --compare, --load, --plot), and the echo cases' load client and servers.

The runs here use the quick profile, two rounds and cases that take well under a
second: they check that the suite works, never how fast anything is."""
import json
import socket
import subprocess
import sys
import threading

import pytest

from conftest import child_env
from stolon.bench import libs
from stolon.bench.cases import echo

FAST_CASES = "getcurrent,hub-sleep0"


def bench(*args, timeout=120):
    proc = subprocess.run([sys.executable, "-m", "stolon.bench", *args], capture_output=True, text=True,
                          env=child_env(), timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def test_list_names_every_case():
    rc, out, _ = bench("--list")
    assert rc == 0
    names = {line.split()[0] for line in out.splitlines() if line and not line.startswith(" ")}
    assert {"switch-pingpong", "memory-suspended", "loop-io-pingpong", "hub-sleep0", "echo-c100-100B",
            "echo-bulk-100MiB", "echo-idle-10k", "wsgi-c1", "wsgi-c100"} <= names


def test_run_json_compare_and_load(tmp_path):
    saved = tmp_path / "run.json"
    rc, out, err = bench("--quick", "--rounds", "2", "--cases", FAST_CASES, "--json", str(saved), "-q")
    assert rc == 0, err
    assert "getcurrent" in out and "hub-sleep0" in out
    assert "python     CPython" in out and "machine" in out
    run = json.loads(saved.read_text())
    by_name = {res["name"]: res for res in run["cases"]}
    assert set(by_name) == {"getcurrent", "hub-sleep0"}
    for res in by_name.values():
        assert res["status"] == "ok"
        assert len(res["libraries"]["stolon"]["values"]) == 2
    rc, out, err = bench("--load", str(saved), "--compare", str(saved))
    assert rc == 0, err
    assert "getcurrent" in out.split("\n\n", 1)[1]      # the comparison follows the table


def test_an_unknown_case_is_refused_with_the_names():
    rc, _, err = bench("--cases", "no-such-case")
    assert rc == 2
    assert "no case matches 'no-such-case'" in err and "switch-pingpong" in err


def test_plot(tmp_path):
    out_png = tmp_path / "ratios.png"
    rc, _, err = bench("--quick", "--rounds", "2", "--cases", "getcurrent", "-q", "--plot", str(out_png))
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert rc == 2 and "matplotlib" in err
        assert not out_png.exists()
    else:
        assert rc == 0, err
        assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- the echo cases: C client and servers -------------------------------------------------

@pytest.fixture(scope="module")
def client():
    """The load client, built (or found built) as the echo cases do; skips where it
    cannot be (no working C compiler: the wheel tests run with CC=/bin/false)."""
    try:
        return echo._build_client()
    except echo.Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def stolon_lib(client):
    yield libs.load("stolon")
    echo._stop_servers()


def test_echo_requests(stolon_lib):
    rate, raw = echo._sample(10, 100)(stolon_lib, 300)
    assert rate > 0 and raw["errors"] == 0 and raw["requests"] > 0
    assert 0 < raw["p50_us"] <= raw["p99_us"]


def test_bulk_transfer_comes_back_checked(stolon_lib):
    rate, raw = echo._sample_bulk(stolon_lib, 8)
    assert rate > 0 and raw["bytes"] == 8 << 20 and raw["errors"] == 0


def test_idle_connections_memory(stolon_lib):
    per_connection, raw = echo._sample_idle(stolon_lib, 300)
    assert raw["count"] == 300 and raw["rss_after"] >= raw["rss_before"]
    # about 5 KB on 3.11; a stack or a buffer kept per parked connection would be
    # tens of KB (a generous bound: 300 connections make a noisy RSS difference)
    assert 0 <= per_connection < 64 * 1024


def test_wsgi_requests(stolon_lib):
    rate, raw = echo._sample_wsgi(2)(stolon_lib, 300)
    assert rate > 0 and raw["errors"] == 0 and raw["requests"] > 0


def _serve_once(listener, transform):
    """A plain-thread server for one connection: echo through transform."""
    def run():
        conn, _ = listener.accept()
        with conn:
            first = True
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                conn.sendall(transform(data) if first else data)
                first = False
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("corrupt", [False, True])
def test_bulk_client_detects_a_wrong_echo(client, corrupt):
    # the bulk client's check can fail: one flipped byte is an error
    def flip(data):
        return bytes([data[0] ^ 1]) + data[1:] if corrupt else data
    with socket.create_server(("127.0.0.1", 0)) as listener:
        thread = _serve_once(listener, flip)
        proc = subprocess.run([client, "bulk", "127.0.0.1", str(listener.getsockname()[1]), "2"],
                              capture_output=True, text=True, timeout=60)
        thread.join(10)
    assert proc.returncode == 0, proc.stderr
    raw = dict(item.split("=") for item in proc.stdout.split())
    assert int(raw["bytes"]) == 2 << 20
    assert (int(raw["errors"]) > 0) == corrupt


def test_client_usage_errors(client):
    for args in ([], ["bulk", "127.0.0.1", "1"], ["http", "nowhere", "1", "1", "1", "1"]):
        proc = subprocess.run([client, *args], capture_output=True, text=True, timeout=10)
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.startswith(("usage: echo_client", "echo_client:")), proc.stderr
