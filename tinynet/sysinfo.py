"""What a figure was measured on: the one description of the machine used by the benchmarks, the
lessons' report and the Keras timing scripts (so that every committed number says where it came from)."""
import os
import platform
from pathlib import Path

import numpy as np


def progress_bar():
    """tqdm's progress bar class for where the code runs: Jupyter's own in a notebook where
    ipywidgets can draw it, else the text bar (``tqdm.auto`` without ipywidgets warns "IProgress
    not found" and draws text anyway)."""
    import importlib.util
    import sys

    if "ipykernel" in sys.modules and importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm as bar
    else:
        from tqdm import tqdm as bar
    return bar


def usable_cpus():
    """How many CPUs this process may run on (its affinity mask where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def cpu_model():
    """The processor's name as the system reports it (``/proc/cpuinfo`` on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_description():
    """NumPy's BLAS library and version, e.g. ``scipy-openblas 0.3.29``."""
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')}".strip()
    except Exception:  # noqa: BLE001  (the layout of show_config differs between NumPy versions)
        return "unknown"


def simd_extension(cpuinfo=None):
    """The widest x86 vector extension the processor reports (``"AVX-512"``, ``"AVX2"``,
    ``"AVX"``), from the flags of ``cpuinfo`` (the text of /proc/cpuinfo, read when not given);
    None where they do not say (another system, another processor). It sets how many vector
    registers compiled loops have (32 with AVX-512, 16 below) and so the speed of the numba
    kernels."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return None
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines()
                  if line.startswith("flags")), [])
    for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX")):
        if flag in flags:
            return name
    return None


def machine():
    """A JSON-able dict: processor, CPUs, platform, versions, thread settings, load average."""
    info = {
        "cpu": cpu_model(),
        "simd": simd_extension(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable_cpus(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas_description(),
        "env": {k: v for k, v in sorted(os.environ.items())
                if k.startswith(("OPENBLAS_", "OMP_", "GOMP_", "NUMBA_", "MKL_", "TINYNET_"))},
        "load_average": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }
    try:
        import numba
        info["numba"] = numba.__version__
        info["numba_threads"] = numba.get_num_threads()
    except ImportError:
        info["numba"] = None
    return info


def describe_machine():
    """One line for a report: ``Intel Xeon ..., 2 CPU core(s), Python 3.11.7, Linux``."""
    return (f"{cpu_model()}, {usable_cpus()} CPU core(s), Python {platform.python_version()}, "
            f"{platform.system()}")
