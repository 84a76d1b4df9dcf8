"""Array-module selection: which library holds the arrays and runs the hot loops.

tinynet has three backends with the same numbers (to float tolerance):

* ``"numpy"``: the readable reference; every kernel is plain NumPy.
* ``"numba"``: the same NumPy layers, with the hot loops (im2col, col2im, max-pool) compiled
  by numba and run in parallel on the CPU cores. Matrix products stay in BLAS.
* ``"cupy"``: arrays live on an NVIDIA GPU; the layers run the same code through CuPy.

Choose with :func:`set_backend` or the ``TINYNET_BACKEND`` environment variable. ``"auto"`` (the
default) takes numba when it imports, else NumPy.

It also holds tinynet's thread policy (:func:`set_thread_policy`), the default float type (``floatx``, float32 like Keras) and the random
generator every initialiser, shuffle and dropout mask draws from, so that one seed gives the same
numbers on every backend (random numbers are always drawn with NumPy on the host).
"""
import ctypes
import importlib
import os
import warnings

import numpy as np

BACKENDS = ("numpy", "numba", "cupy")

_state = {"name": None, "xp": None, "kernels": None}
_floatx = "float32"
_rng = np.random.default_rng(0)


class BackendError(RuntimeError):
    """A backend was asked for that cannot run here (not installed, or no GPU)."""


def _load(name):
    """Return (array_module, kernels_module) for ``name`` or raise BackendError saying why."""
    if name == "numpy":
        from .kernels import numpy_ref
        return np, numpy_ref
    if name == "numba":
        try:
            import numba  # noqa: F401
        except ImportError as e:
            raise BackendError(
                f"backend 'numba' needs the numba package, which does not import here ({e}); "
                "install it with `pip install numba` or use set_backend('numpy')") from None
        from .kernels import numba_cpu
        return np, numba_cpu
    if name == "cupy":
        try:
            import cupy
        except ImportError as e:
            raise BackendError(
                f"backend 'cupy' needs CuPy, which does not import here ({e}); install it with "
                "`pip install -e \".[gpu]\"` on a machine with an NVIDIA GPU, or use "
                "set_backend('numba')") from None
        try:
            n = cupy.cuda.runtime.getDeviceCount()
        except Exception as e:  # the CUDA driver is missing or broken
            raise BackendError(f"backend 'cupy': CuPy imports but no CUDA device is usable ({e})") from None
        if n == 0:
            raise BackendError("backend 'cupy': CuPy imports but this machine has no CUDA GPU")
        from .kernels import cupy_gpu
        return cupy, cupy_gpu
    raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)} or 'auto'")


def set_backend(name):
    """Select the backend by name: ``"numpy"``, ``"numba"``, ``"cupy"`` or ``"auto"``.

    ``"auto"`` picks numba when it works and falls back to NumPy with a one-line warning.
    Asking for a named backend that cannot run raises :class:`BackendError` with the reason.
    Models keep the arrays they were built with: build (or load) a model after choosing its backend.
    """
    name = (name or "auto").lower()
    if name == "auto":
        try:
            xp, kernels = _load("numba")
            name = "numba"
        except BackendError as e:
            warnings.warn(f"tinynet: numba backend unavailable, using numpy ({e})", stacklevel=2)
            xp, kernels = _load("numpy")
            name = "numpy"
    else:
        xp, kernels = _load(name)
    _state.update(name=name, xp=xp, kernels=kernels)
    return name


def _ensure():
    if _state["name"] is None:
        set_backend(os.environ.get("TINYNET_BACKEND", "auto"))


def get_backend():
    """Name of the active backend."""
    _ensure()
    return _state["name"]


def xp():
    """The array module of the active backend (``numpy`` or ``cupy``)."""
    _ensure()
    return _state["xp"]


def kernels():
    """The kernels module of the active backend (same functions as ``kernels.numpy_ref``)."""
    _ensure()
    return _state["kernels"]


def floatx():
    """Default float dtype name for new layers, optimizers and cast inputs (``"float32"``)."""
    return _floatx


def set_floatx(dtype):
    """Set the default float dtype: ``"float32"`` (default, like Keras) or ``"float64"`` (gradient checks)."""
    global _floatx
    dtype = np.dtype(dtype).name
    if dtype not in ("float16", "float32", "float64"):
        raise ValueError(f"floatx must be float16, float32 or float64, got {dtype!r}")
    _floatx = dtype


def set_seed(seed):
    """Seed tinynet's random generator (initial weights, shuffling, dropout masks)."""
    global _rng
    _rng = np.random.default_rng(seed)


def rng():
    """tinynet's NumPy random generator (host side, the same on every backend)."""
    return _rng


def asarray(a, dtype=None):
    """Move ``a`` to the active backend's device, as ``dtype`` (default: keep the dtype)."""
    return xp().asarray(a, dtype=dtype)


def to_numpy(a):
    """Return ``a`` as a NumPy array (copies from the GPU when ``a`` is a CuPy array)."""
    if isinstance(a, np.ndarray):
        return a
    get = getattr(a, "get", None)
    if get is not None:
        return get()
    return np.asarray(a)


# ---- threads -------------------------------------------------------------------------------
# numba's parallel loops run on OpenMP threads; NumPy's matrix products (the Dense layers) on
# OpenBLAS's own threads. Both kinds wait for work by spinning on a core, and on a small machine
# they take the cores from each other, or from other processes, in whole scheduler time slices.
# Measured on this project's 2-core machine, idle, seconds per epoch:
#
#   digits CNN     OpenMP threads spinning 1.6, sleeping at once 1.9, spinning 1000 turns 1.6
#   residual CNN   OpenBLAS on 2 threads 4.6 (20 with long-spinning OpenMP threads), on 1: 2.4
#   MLP            (no numba kernel, only BLAS) OpenBLAS on 2 threads 0.55, on 1: 0.80
#
# and with other jobs on the machine, long-spinning OpenMP threads made the digits CNN's epoch
# 24-36 s instead of 5-10 s. Hence the "auto" policy: OpenMP threads spin only 1000 turns before
# they sleep (unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is set); and once a process runs the
# parallel kernels, on a machine of at most 4 cores, OpenBLAS runs on one thread (unless
# OPENBLAS_NUM_THREADS or OMP_NUM_THREADS is set; an MLP, which runs no numba kernel, keeps BLAS's
# threads). These settings are process-wide, hence the "keep" policy, which changes nothing.
# OpenBLAS's float32 products round differently on 1 and 2 threads (x @ W for a batch of 128 and
# a 784x256 kernel: up to 3e-5 apart, about 1e-7 relative), so under "auto" a Dense layer's
# float32 numbers can depend on whether a convolution ran earlier in the same process; "keep" or
# OPENBLAS_NUM_THREADS fixes the count, and with it the numbers, bit for bit.
THREAD_POLICIES = ("auto", "keep")
_threads = {"policy": None, "cores_shared": False}


def set_thread_policy(policy):
    """``"auto"`` (the default): tinynet tunes OpenMP's spinning and OpenBLAS's thread count for
    small machines, as measured above; ``"keep"``: tinynet changes no process-wide thread setting.

    The ``TINYNET_THREADS`` environment variable gives the default. Choose before the first
    training step: OpenMP reads its settings once, when numba starts its threads.
    """
    policy = str(policy).lower()
    if policy not in THREAD_POLICIES:
        raise ValueError(f"thread policy must be one of {', '.join(THREAD_POLICIES)}, got {policy!r}")
    _threads["policy"] = policy


def thread_policy():
    """The active thread policy: the one set, else ``TINYNET_THREADS``, else ``"auto"``."""
    if _threads["policy"] is None:
        env = os.environ.get("TINYNET_THREADS", "auto")
        if env.lower() not in THREAD_POLICIES:
            raise ValueError(f"TINYNET_THREADS must be one of {', '.join(THREAD_POLICIES)}, "
                             f"got {env!r}")
        set_thread_policy(env)
    return _threads["policy"]


def configure_openmp():
    """Under the "auto" policy, make OpenMP threads sleep after 1000 spins (``GOMP_SPINCOUNT``),
    unless the user set OpenMP's waiting policy. Called before numba starts its threads."""
    if (thread_policy() == "auto"
            and "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ):
        os.environ["GOMP_SPINCOUNT"] = "1000"


def usable_cpus():
    """How many CPUs this process may run on (its affinity mask where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def share_cores():
    """Called before the parallel kernels run: the first time, under the "auto" policy, on a
    machine of at most 4 cores and unless ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS`` is set,
    put OpenBLAS on one thread so that its spinning workers leave the cores to the kernels."""
    if _threads["cores_shared"]:
        return
    _threads["cores_shared"] = True
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
        return []
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
    """Set the number of threads of every OpenBLAS library loaded in this process.

    Returns how many libraries were set (0 where none is found, e.g. on a non-Linux system or
    with another BLAS). Equivalent to starting Python with ``OPENBLAS_NUM_THREADS=n``.
    """
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
