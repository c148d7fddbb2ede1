"""Build of stolon's C extension: the one place that knows the C sources and flags."""
import os
import platform
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))

# One register-switch routine per architecture (csrc/switch/switch_arch.h selects
# it at compile time too, and fails the build with #error on anything else).
ARCH_ROUTINES = {
    "x86_64": "x86_64_sysv.S",
    "amd64": "x86_64_sysv.S",
    "aarch64": "aarch64_aapcs64.S",
    "arm64": "aarch64_aapcs64.S",
}


def arch_routine():
    machine = os.environ.get("STOLON_ARCH") or platform.machine().lower()
    try:
        return os.path.join("csrc", "switch", "arch", ARCH_ROUTINES[machine])
    except KeyError:
        sys.exit("stolon: no stack-switch routine for machine %r" % machine)


def c_sources(folder):
    path = os.path.join(HERE, "csrc", folder)
    return sorted(os.path.join("csrc", folder, f) for f in os.listdir(path) if f.endswith(".c"))


class BuildExt(build_ext):
    """Lets the C compiler take the .S routine (setuptools only knows C-family suffixes)."""

    def build_extensions(self):
        if ".S" not in self.compiler.src_extensions:
            self.compiler.src_extensions.append(".S")
        super().build_extensions()


def extra_compile_args():
    args = ["-O3", "-DNDEBUG", "-fno-strict-aliasing", "-Wall", "-Wextra", "-Wno-unused-parameter",
            "-Wno-missing-field-initializers"]
    if os.environ.get("STOLON_SANITIZE"):
        args += ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=" + os.environ["STOLON_SANITIZE"]]
    return args


def extra_link_args():
    if os.environ.get("STOLON_SANITIZE"):
        return ["-fsanitize=" + os.environ["STOLON_SANITIZE"]]
    return []


core = Extension(
    "stolon._core",
    sources=c_sources("switch") + [arch_routine()] + c_sources("loop") + c_sources("py"),
    include_dirs=[os.path.join("csrc", d) for d in ("switch", "loop", "py")],
    depends=[os.path.join("csrc", d, f) for d in ("switch", "loop", "py")
             for f in os.listdir(os.path.join(HERE, "csrc", d)) if f.endswith(".h")],
    extra_compile_args=extra_compile_args(),
    extra_link_args=extra_link_args(),
)

setup(ext_modules=[core], cmdclass={"build_ext": BuildExt})
