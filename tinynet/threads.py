"""tinynet's thread policy: how the numba backend shares a small machine's cores with BLAS.

numba's parallel loops run on OpenMP threads; NumPy's matrix products (the Dense layers) on
OpenBLAS's own threads. Both kinds wait for work by spinning on a core, and on a small machine
they take the cores from each other, or from other processes, in whole scheduler time slices.
Measured on this project's 2-core machine, idle, seconds per epoch:

  digits CNN     OpenMP threads spinning 1.6, sleeping at once 1.9, spinning 1000 turns 1.6
  residual CNN   OpenBLAS on 2 threads 4.6 (20 with long-spinning OpenMP threads), on 1: 2.4
  MLP            (no numba kernel, only BLAS) OpenBLAS on 2 threads 0.55, on 1: 0.80

and with other jobs on the machine, long-spinning OpenMP threads made the digits CNN's epoch
24-36 s instead of 5-10 s. Hence the ``"auto"`` policy, applied by ``backend.set_backend("numba")``:

* :func:`configure_openmp`, when the backend is selected: OpenMP threads spin only 1000 turns
  before they sleep (unless ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` is set);
* :func:`share_cores`, before the first parallel kernel runs: on a machine of at most 4 cores,
  OpenBLAS runs on one thread (unless ``OPENBLAS_NUM_THREADS`` or ``OMP_NUM_THREADS`` is set). An
  MLP, which runs no parallel kernel, keeps BLAS's threads.

These settings are process-wide, hence the ``"keep"`` policy, which changes nothing.
OpenBLAS's float32 products round differently on 1 and 2 threads (x @ W for a batch of 128 and
a 784x256 kernel: up to 3e-5 apart, about 1e-7 relative), so under "auto" a Dense layer's
float32 numbers can depend on whether a convolution ran earlier in the same process; "keep" or
``OPENBLAS_NUM_THREADS`` fixes the count, and with it the numbers, bit for bit.
"""
import ctypes
import os

from .sysinfo import usable_cpus

POLICIES = ("auto", "keep")
_state = {"policy": None, "cores_shared": False}


def set_thread_policy(policy):
    """``"auto"`` (the default): tune OpenMP's spinning and OpenBLAS's thread count for small
    machines, as measured above; ``"keep"``: change no process-wide thread setting.

    The ``TINYNET_THREADS`` environment variable gives the default. Choose before the first
    training step: OpenMP reads its settings once, when numba starts its threads.
    """
    policy = str(policy).lower()
    if policy not in POLICIES:
        raise ValueError(f"thread policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    _state["policy"] = policy


def thread_policy():
    """The active thread policy: the one set, else ``TINYNET_THREADS``, else ``"auto"``."""
    if _state["policy"] is None:
        env = os.environ.get("TINYNET_THREADS", "auto")
        if env.lower() not in POLICIES:
            raise ValueError(f"TINYNET_THREADS must be one of {', '.join(POLICIES)}, got {env!r}")
        set_thread_policy(env)
    return _state["policy"]


def configure_openmp():
    """Under "auto", make OpenMP threads sleep after 1000 spins (``GOMP_SPINCOUNT``) unless the
    user set OpenMP's waiting policy. Must run before numba starts its threads."""
    if (thread_policy() == "auto"
            and "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ):
        os.environ["GOMP_SPINCOUNT"] = "1000"


def share_cores():
    """The first time (later calls do nothing), under "auto", on a machine of at most 4 cores and
    unless ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS`` is set: put OpenBLAS on one thread so that
    its spinning workers leave the cores to the parallel kernels."""
    if _state["cores_shared"]:
        return
    _state["cores_shared"] = True
    if (thread_policy() == "auto" and usable_cpus() <= 4
            and not any(v in os.environ for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"))):
        set_blas_threads(1)


def _openblas_functions(suffix):
    """``{library path: its openblas_<suffix> C function}`` for every OpenBLAS library loaded in
    this process (NumPy's, SciPy's), found through /proc/self/maps: empty on systems without it."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower() and ".so" in line}
    except OSError:
        return {}
    found = {}
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas_", "openblas_"):
            fn = getattr(lib, f"{prefix}{suffix}64_", None) or getattr(lib, prefix + suffix, None)
            if fn is not None:
                found[path] = fn
                break
    return found


def set_blas_threads(n):
    """Set the number of threads of every OpenBLAS library loaded in this process; return how
    many were set (0 where none is found). Like starting Python with ``OPENBLAS_NUM_THREADS=n``."""
    functions = _openblas_functions("set_num_threads")
    for fn in functions.values():
        fn.argtypes = [ctypes.c_int]
        fn.restype = None
        fn(int(n))
    return len(functions)


def blas_threads():
    """``{library path: its thread count}`` for every OpenBLAS library loaded in this process.

    numba loads SciPy's OpenBLAS when it first compiles or loads a function; tinynet's kernels
    do not call it (their matrix products are NumPy's), so the policy above sets NumPy's."""
    functions = _openblas_functions("get_num_threads")
    for fn in functions.values():
        fn.restype = ctypes.c_int
    return {path: int(fn()) for path, fn in functions.items()}
