"""Array-module selection: which library holds the arrays and runs the hot loops.

tinynet has three backends with the same numbers (to float tolerance):

* ``"numpy"``: the readable reference; every kernel is plain NumPy.
* ``"numba"``: the same NumPy layers, with the hot loops (im2col, col2im, max-pool) compiled
  by numba and run in parallel on the CPU cores. Matrix products stay in BLAS.
* ``"cupy"``: arrays live on an NVIDIA GPU; the layers run the same code through CuPy.

Choose with :func:`set_backend` or the ``TINYNET_BACKEND`` environment variable. ``"auto"`` (the
default) takes numba when it imports, else NumPy.

This module also holds the default float type (``floatx``, float32 like Keras) and the random
generator every initialiser, shuffle and dropout mask draws from, so that one seed gives the same
numbers on every backend (random numbers are always drawn with NumPy on the host).
"""
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
