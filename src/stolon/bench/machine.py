"""The machine context printed above every table and stored in the JSON.

Absolute rates mean nothing without it (REFERENCE.md section 8): CPU model,
cores, kernel, Python build.  The load average and CPU governor are recorded
because they explain noisy or slow runs.
"""
import os
import platform
import subprocess
import sys


def info():
    cores = os.cpu_count() or 0
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = cores
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = None
    return {
        "hostname": platform.node(),
        "arch": platform.machine(),
        "cpu": cpu_model(),
        "cores": cores,
        "usable_cores": usable,
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_build": f"{platform.python_build()[0]}, {platform.python_compiler()}",
        "python_executable": sys.executable,
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "load_average": load,
    }


def cpu_model():
    if sys.platform.startswith("linux"):
        text = _read("/proc/cpuinfo") or ""
        # x86 says "model name"; many arm kernels only say "Model" or nothing
        for key in ("model name", "Model", "Hardware", "cpu model"):
            for line in text.splitlines():
                name, _, value = line.partition(":")
                if name.strip() == key and value.strip():
                    return value.strip()
    if sys.platform == "darwin":
        try:
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"],
                                 capture_output=True, text=True, timeout=5)
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or "unknown CPU"


def summary_lines(m):
    """Lines for the table header."""
    lines = [
        f"machine    {m['hostname']} ({m['arch']}), {m['cpu']}, "
        f"{m['cores']} cores ({m['usable_cores']} usable), {m['kernel']}",
        f"python     {m['python']} ({m['python_build']})",
    ]
    load = m.get("load_average")
    if load is not None and m.get("usable_cores") and load > 0.5 * m["usable_cores"]:
        lines.append(f"warning    load average {load:.2f} on {m['usable_cores']} usable cores: "
                     "other processes compete for the CPUs; the run takes longer, and the "
                     "caches and the memory bus are shared")
    return lines


def same_machine(a, b):
    """Differences that make absolute rates of two runs incomparable."""
    diffs = []
    for key in ("hostname", "cpu", "cores", "kernel", "python"):
        if a.get(key) != b.get(key):
            diffs.append(f"{key}: {a.get(key)} -> {b.get(key)}")
    return diffs


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None
