"""Builds an API-mode cffi module from C sources, for the tests in tests/c/.

cffi only writes the module's C source; the compiler and linker that built
this Python (sysconfig CC, CCSHARED, LDSHARED) compile and link everything,
so neither setuptools nor distutils is needed.  The result goes to
tests/c/_build/<python>-<name>-<hash of sources, flags and toolchain>/ under a
file lock, so pytest-xdist workers build it once and share it.

This is the approach of test_switch_core.py, as a function; that file keeps
its own copy (it predates this one).
"""
import fcntl
import hashlib
import importlib.util
import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path

HERE = Path(__file__).resolve().parent


def toolchain():
    """The compiler, shared-object flags and linker that built this Python."""
    cc = shlex.split(sysconfig.get_config_var("CC") or "cc")
    ccshared = shlex.split(sysconfig.get_config_var("CCSHARED") or "-fPIC")
    ldshared = shlex.split(sysconfig.get_config_var("LDSHARED") or "cc -shared")
    return cc, ccshared, ldshared


def _key(name, cdef, preamble, sources, headers, cflags, ldflags, cffi_version):
    h = hashlib.sha256()
    for path in list(sources) + list(headers):
        h.update(str(path).encode())
        h.update(Path(path).read_bytes())
    for part in (cdef, preamble, repr(cflags), repr(ldflags), repr(toolchain()), cffi_version):
        h.update(part.encode())
    return "%s-%s-%s" % (sys.implementation.cache_tag, name, h.hexdigest()[:16])


def _run(cmd):
    print(" ".join(str(c) for c in cmd))
    subprocess.run([str(c) for c in cmd], check=True)


def _compile(build, name, cdef, preamble, sources, cflags, ldflags):
    import cffi

    cc, ccshared, ldshared = toolchain()
    ffi = cffi.FFI()
    ffi.cdef(cdef)
    ffi.set_source(name, preamble)
    module_c = build / (name + ".c")
    ffi.emit_c_code(str(module_c))
    flags = ccshared + ["-I", sysconfig.get_paths()["include"]] + list(cflags)
    objects = []
    for source in [module_c] + list(sources):
        obj = build / (Path(source).name + ".o")
        _run(cc + flags + ["-c", source, "-o", obj])
        objects.append(obj)
    so = build / (name + sysconfig.get_config_var("EXT_SUFFIX"))
    _run(ldshared + objects + list(ldflags) + ["-o", so])
    return so


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_loaded = {}


def build_module(name, cdef, preamble, sources, headers=(), cflags=(), ldflags=()):
    """Builds (once per source state and Python) and imports module `name`.

    sources: C files to compile and link with the cffi-generated one;
    headers: files that only need to take part in the hash; cflags and
    ldflags: extra compiler and linker arguments.  Returns the module, whose
    .ffi and .lib are cffi's.
    """
    import cffi

    sources = [Path(s) for s in sources]
    key = _key(name, cdef, preamble, sources, [Path(h) for h in headers],
               list(map(str, cflags)), list(map(str, ldflags)), cffi.__version__)
    if key in _loaded:
        return _loaded[key]
    base = HERE / "_build"
    base.mkdir(exist_ok=True)
    build = base / key
    done = build / "built"
    with open(base / (".lock-" + name), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            build.mkdir(exist_ok=True)
            done.write_text(str(_compile(build, name, cdef, preamble, sources, cflags, ldflags)))
    module = _loaded[key] = _load(name, Path(done.read_text()))
    return module
