"""C-level tests of the switch core (csrc/switch/), driven through cffi.

One API-mode cffi module is built from csrc/switch/switch.c, the register
routine for this machine (csrc/switch/arch/*.S) and the scenarios in this
directory.  cffi only writes the module's C source; the C compiler and linker
that built this Python (sysconfig CC, CCSHARED, LDSHARED) compile and link
everything, the .S included, so neither setuptools nor distutils is needed.
switch.c is compiled with -DSTL_REALLOC=stl_test_realloc so that the
scenarios can count and fail its allocations.  The build goes to
tests/c/_build/<python>-<hash of the sources>/ under a file lock, so the
pytest-xdist workers build it once and share it.

Each scenario runs in a forked child with a timeout (the core moves the C
stack: a bug there would take pytest down, or hang it) and reports 0 or the
code of the check that failed.  No Python greenlet is involved.

STL_SWITCH_DIR=/path/to/a/copy/of/csrc/switch runs the same tests against
another copy of the core (to try a fix).
"""
import fcntl
import hashlib
import importlib.util
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

cffi = pytest.importorskip("cffi")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SWITCH = Path(os.environ.get("STL_SWITCH_DIR") or ROOT / "csrc" / "switch").resolve()
MODULE = "_stl_switch_scenarios"
TIMEOUT_S = 15

ROUTINES = {
    "x86_64": "x86_64_sysv.S",
    "amd64": "x86_64_sysv.S",
    "aarch64": "aarch64_aapcs64.S",
    "arm64": "aarch64_aapcs64.S",
}

C_SOURCES = [
    SWITCH / "switch.c",
    HERE / "test_util.c",
    HERE / "test_harness.c",
    HERE / "switch_scenarios.c",
    HERE / "switch_stress.c",
    HERE / "switch_alloc.c",
]
HEADERS = [
    SWITCH / "stl_switch.h",
    SWITCH / "switch_arch.h",
    HERE / "switch_scenarios.h",
    HERE / "test_util.h",
    HERE / "test_alloc.h",
]

CDEF = """
typedef struct stl_test_result { int code; long value; char what[240]; } stl_test_result;
int stl_test_count(void);
const char *stl_test_name(int i);
const char *stl_test_unit(int i);
int stl_test_run(int i, stl_test_result *r);
int stl_test_run_isolated(int i, unsigned timeout_s, stl_test_result *r);
"""


def _routine():
    machine = platform.machine().lower()
    if machine not in ROUTINES:
        pytest.skip("no switch routine for %s" % machine)
    return SWITCH / "arch" / ROUTINES[machine]


def _scenario_names():
    """The scenario table, read from test_harness.c (one test per entry)."""
    text = (HERE / "test_harness.c").read_text()
    return re.findall(r'^\s*\{"(\w+)",\s*test_\w+,', text, re.M)


def _toolchain():
    """The compiler, shared-object flags and linker that built this Python."""
    cc = shlex.split(sysconfig.get_config_var("CC") or "cc")
    ccshared = shlex.split(sysconfig.get_config_var("CCSHARED") or "-fPIC")
    ldshared = shlex.split(sysconfig.get_config_var("LDSHARED") or "cc -shared")
    return cc, ccshared, ldshared


def _build_key(routine):
    h = hashlib.sha256()
    for path in C_SOURCES + HEADERS + [routine]:
        h.update(str(path).encode())
        h.update(path.read_bytes())
    h.update(CDEF.encode())
    h.update(repr(_toolchain()).encode())
    h.update(cffi.__version__.encode())
    return "%s-%s" % (sys.implementation.cache_tag, h.hexdigest()[:16])


def _run(cmd):
    print(" ".join(str(c) for c in cmd))
    subprocess.run([str(c) for c in cmd], check=True)


def _build(build):
    """Writes the module's C with cffi, compiles every source, links the .so."""
    cc, ccshared, ldshared = _toolchain()
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    ffi.set_source(MODULE, '#include "switch_scenarios.h"\n')
    module_c = build / (MODULE + ".c")
    ffi.emit_c_code(str(module_c))
    flags = ccshared + [
        "-O2", "-g",
        "-I", SWITCH, "-I", HERE, "-I", sysconfig.get_paths()["include"],
        "-DSTL_REALLOC=stl_test_realloc", "-include", HERE / "test_alloc.h",
    ]
    objects = []
    for source in [module_c] + C_SOURCES + [_routine()]:
        obj = build / (source.name + ".o")
        _run(cc + flags + ["-c", source, "-o", obj])
        objects.append(obj)
    so = build / (MODULE + sysconfig.get_config_var("EXT_SUFFIX"))
    _run(ldshared + objects + ["-lm", "-o", so])
    return so


def _load(path):
    spec = importlib.util.spec_from_file_location(MODULE, str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def core():
    """The built module (ffi, lib), built once per source state and Python."""
    if not (SWITCH / "switch.c").exists():
        pytest.skip("no csrc/switch next to the tests (a run against an installed wheel)")
    cc = _toolchain()[0]
    if shutil.which(cc[0]) is None:
        pytest.skip("no C compiler (%s): the C core tests build csrc/switch themselves" % cc[0])
    base = HERE / "_build"
    base.mkdir(exist_ok=True)
    build = base / _build_key(_routine())
    done = build / "built"
    with open(base / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            build.mkdir(exist_ok=True)
            done.write_text(str(_build(build)))
    return _load(Path(done.read_text()))


SCENARIOS = _scenario_names()


def test_table_matches_the_library(core):
    names = [core.ffi.string(core.lib.stl_test_name(i)).decode()
             for i in range(core.lib.stl_test_count())]
    assert names == SCENARIOS


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario(core, name):
    ffi, lib = core.ffi, core.lib
    i = SCENARIOS.index(name)
    result = ffi.new("stl_test_result *")
    code = lib.stl_test_run_isolated(i, TIMEOUT_S, result)
    what = ffi.string(result.what).decode(errors="replace")
    assert code == 0, "scenario %s failed with code %d: %s" % (name, code, what)
    unit = lib.stl_test_unit(i)
    if unit != ffi.NULL:
        print("%s: %d %s" % (name, result.value, ffi.string(unit).decode()))
        assert result.value > 0


def test_spill_of_a_shallow_stack_is_small(core):
    """A stack suspended right after it starts spills only a few frames."""
    ffi, lib = core.ffi, core.lib
    result = ffi.new("stl_test_result *")
    assert lib.stl_test_run_isolated(SCENARIOS.index("spill_shallow"), TIMEOUT_S, result) == 0
    assert 32 <= result.value <= 1024
