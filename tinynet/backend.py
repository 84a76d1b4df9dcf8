"""The backend seam: which library holds the arrays, and which kernels run the hot loops.

tinynet has three backends that give the same numbers (to float tolerance):

* ``"numpy"``: the readable reference; every kernel is plain NumPy (``kernels/numpy_ref.py``).
* ``"numba"``: the same layers, with the hot loops (convolution, im2col, col2im, max-pool)
  compiled by numba and run in parallel on the CPU cores (``kernels/numba_cpu.py``).
* ``"cupy"``: arrays live on an NVIDIA GPU; CUDA kernels (``kernels/cupy_gpu.py``).

Choose with :func:`set_backend` or the ``TINYNET_BACKEND`` environment variable; ``"auto"`` (the
default) takes numba when it imports, else NumPy.

Everything else in tinynet reaches the backend through this module only:

* :func:`get_array_module` -- ``numpy`` or ``cupy``, from the arrays themselves (as in Chainer
  and CuPy), so that one function body serves both;
* :func:`kernels` -- the active backend's kernels, every backend offering the functions of
  :data:`KERNELS` with the same signatures (the registry: one module of kernels per backend);
* :func:`fused` -- an optional fused kernel (such as ``rmsprop_update``) for the arrays' backend,
  or ``None``, in which case the caller runs its readable NumPy code.

It also holds the default float type (``floatx``: float32 like Keras, or float64 for gradient
checks) and the random generator every initialiser, shuffle and dropout mask draws from, so that
one seed gives the same numbers on every backend (random numbers are drawn with NumPy on the host).
The numba backend's thread policy lives in :mod:`tinynet.threads`; it is applied here, once,
when that backend is selected.
"""
import contextlib
import functools
import importlib
import os
import sys
import threading
import time
import types
import warnings

import numpy as np

from . import names, threads
from .kernels import numpy_ref
from .kernels.numpy_ref import get_array_module  # noqa: F401  (defined with the reference kernels)

BACKENDS = ("numpy", "numba", "cupy")
KERNELS = ("matmul", "im2col", "col2im", "conv2d_forward", "conv2d_backward", "maxpool_forward",
           "maxpool_backward", "conv2d_maxpool_forward", "conv2d_maxpool_backward",
           "conv2d_add_maxpool_forward", "conv2d_add_maxpool_backward")
FUSED = ("rmsprop_update", "all_finite", "softmax_cross_entropy", "argmax_hits")
# kernels that are NumPy's own on the CPU (BLAS's product): no thread policy (it would put BLAS on
# one thread, which the policy does only once numba's kernels run), no compilation to announce
NOT_COMPILED = ("matmul",)
FLOATX = ("float32", "float64")

_state = {"name": None, "xp": None, "kernels": None}
_registry = {}  # backend name -> namespace of its kernels (and fused kernels), filled on first use
_floatx = "float32"
_rng = np.random.default_rng(0)


class BackendError(RuntimeError):
    """A backend was asked for that cannot run here (not installed, or no GPU)."""


def _namespace(module, before_parallel=None):
    """The registry entry of one backend: its :data:`KERNELS` and whichever :data:`FUSED` it has.
    ``before_parallel`` runs before each of the (parallel) :data:`KERNELS`: the numba thread
    policy, a no-op after its first call; the fused updates run on one thread and skip it."""
    entries = {}
    for name in KERNELS + FUSED:
        fn = getattr(module, name, None)
        if fn is None:
            if name in KERNELS:
                raise BackendError(f"kernel module {module.__name__} lacks {name}()")
            continue
        if name in NOT_COMPILED:
            entries[name] = fn
            continue
        if before_parallel is not None and name in KERNELS:
            fn = _after(before_parallel, fn)
        entries[name] = fn
    return types.SimpleNamespace(**entries)


def _after(hook, fn):
    @functools.wraps(fn)
    def run(*args, **kwargs):
        hook()
        return fn(*args, **kwargs)
    return run


# Shown once, during the first compilation; the first steps can take different paths (the residual
# CNN's second step compiles the dense backward its first, from the winners, did not need: 27 s
# then 11 s after installation), so it speaks of the first steps, not of the first one.
COMPILE_NOTICE = ("tinynet: compiling the numba kernels (once after installation for each float "
                  "type, float32 and float64: they are cached on disk for later runs; up to a "
                  "minute in all, over the first training steps, which can take different "
                  "paths)...")
_notice = {"shown": False}


def compilations():
    """How many of tinynet's numba functions this process has compiled (a first run after
    installation compiles them; later processes load them from numba's on-disk cache, which
    counts nothing) since it first asked: a timing that saw this number grow includes
    compilation. Counted by :class:`_CompileNotice` (0 without numba)."""
    listener = _listen_to_compilations()
    return 0 if listener is None else listener.count


class _CompileNotice:
    """Follows numba's own "numba:compile" events, which numba sends only when it compiles, not
    when it loads a function from its on-disk cache: counts tinynet's compilations
    (:func:`compilations`) and prints :data:`COMPILE_NOTICE` to stderr, once per process, when
    they have taken ``seconds`` (one long compilation, or many short ones in a row). The notice
    waited for each kernel's first call before, and said nothing when a kernel that had loaded
    from the cache compiled another of its paths in a later call (a lesson's 11.5 s row, in
    silence)."""

    def __init__(self, seconds=1.0):
        self.seconds, self.depth, self.timer = seconds, 0, None
        self.count, self.spent, self.started = 0, 0.0, None

    @staticmethod
    def _ours(event):
        dispatcher = (event.data or {}).get("dispatcher")
        module = getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""
        return module.startswith("tinynet.")

    def on_start(self, event):
        if not self._ours(event):
            return
        self.depth += 1  # (a kernel's compilation compiles the functions it calls inside it)
        if self.depth == 1:
            self.started = time.perf_counter()
            if not _notice["shown"]:
                self.timer = threading.Timer(max(0.0, self.seconds - self.spent), self.show)
                self.timer.daemon = True
                self.timer.start()

    def on_end(self, event):
        if self.depth == 0 or not self._ours(event):
            return
        self.depth -= 1
        if self.depth == 0:
            self.count += 1
            self.spent += time.perf_counter() - self.started
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            if self.spent >= self.seconds:
                self.show()

    @staticmethod
    def show():
        if not _notice["shown"]:
            _notice["shown"] = True
            print(COMPILE_NOTICE, file=sys.stderr, flush=True)


def _listen_to_compilations():
    """The :class:`_CompileNotice` registered with numba, once per process (None without
    numba)."""
    if "listener" not in _notice:
        try:
            from numba.core import event
        except ImportError:
            return None

        class Notice(_CompileNotice, event.Listener):  # numba calls on_start and on_end
            pass

        _notice["listener"] = Notice()
        event.register("numba:compile", _notice["listener"])
    return _notice["listener"]


def _load(name):
    """Return ``(array_module, kernels namespace)`` for ``name``, or raise BackendError saying why."""
    if name in _registry:
        return _registry[name]
    if name == "numpy":
        entry = np, _namespace(numpy_ref)
    elif name == "numba":
        try:
            importlib.import_module("numba")  # installed and importable?
        except ImportError as e:
            raise BackendError(
                f"backend 'numba' needs the numba package, which does not import here ({e}); "
                "install it with `pip install numba` or use set_backend('numpy')") from None
        numba = sys.modules["numba"]
        if numba.config.DISABLE_JIT:
            raise BackendError(
                "backend 'numba': NUMBA_DISABLE_JIT=1 is set, so numba would run tinynet's kernels "
                "as plain Python, thousands of times slower (one training step of 32 images: 10 s "
                "against 3 ms); unset it, or use set_backend('numpy')")
        threads.configure_openmp()  # before numba starts its OpenMP threads
        _listen_to_compilations()
        try:
            numba_cpu = importlib.import_module(".kernels.numba_cpu", __package__)
        except RuntimeError as e:  # numba's cache=True with no folder it can write in
            raise BackendError(
                f"backend 'numba': numba cannot keep its compiled kernels anywhere ({e}); set "
                "NUMBA_CACHE_DIR to a folder this process can write in, or use "
                "set_backend('numpy')") from None
        entry = np, _namespace(numba_cpu, before_parallel=threads.before_kernels)
    elif name == "cupy":
        try:
            import cupy
        except ImportError as e:
            raise BackendError(
                f"backend 'cupy' needs CuPy, which does not import here ({e}); install it with "
                "`pip install -e \".[gpu]\"` on a machine with an NVIDIA GPU, or use "
                "set_backend('numba')") from None
        try:
            n = cupy.cuda.runtime.getDeviceCount()
        except Exception as e:  # noqa: BLE001  (the CUDA driver is missing or broken)
            raise BackendError(f"backend 'cupy': CuPy imports but no CUDA device is usable ({e})") from None
        if n == 0:
            raise BackendError("backend 'cupy': CuPy imports but this machine has no CUDA GPU")
        from .kernels import cupy_gpu
        entry = cupy, _namespace(cupy_gpu)
    else:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)} or 'auto'")
    _registry[name] = entry
    return entry


def set_backend(name):
    """Select the backend by name: ``"numpy"``, ``"numba"``, ``"cupy"`` or ``"auto"``; return its name.

    ``"auto"`` picks numba when it works and falls back to NumPy with a one-line warning.
    Asking for a named backend that cannot run raises :class:`BackendError` with the reason.
    Models keep the arrays they were built with: build (or load) a model after choosing its backend.
    """
    if name is not None and not isinstance(name, str):
        raise TypeError(f"set_backend: the backend is given by its name, one of "
                        f"{', '.join(repr(b) for b in BACKENDS)} or 'auto', got {name!r} "
                        f"({type(name).__name__})")
    name = (name or "auto").lower()
    if name == "auto":
        try:
            xp, kernels_ = _load("numba")
            name = "numba"
        except BackendError as e:
            warnings.warn(f"tinynet: numba backend unavailable, using numpy ({e})", stacklevel=2)
            xp, kernels_ = _load("numpy")
            name = "numpy"
    else:
        xp, kernels_ = _load(name)
    _state.update(name=name, xp=xp, kernels=kernels_)
    return name


def _ensure():
    if _state["name"] is None:
        chosen = os.environ.get("TINYNET_BACKEND")
        try:
            set_backend(chosen or "auto")
        except (ValueError, BackendError) as e:
            # say where the name came from (not the code), when it came from there and the error
            # is about it (another setting's error, TINYNET_THREADS', stands on its own)
            about_it = isinstance(e, BackendError) or str(e).startswith("unknown backend")
            if chosen is None or not about_it:
                raise
            raise type(e)(f"the environment variable TINYNET_BACKEND={chosen!r} chose the "
                          f"backend: {e}. Set TINYNET_BACKEND to numpy, numba, cupy or auto, or "
                          "unset it (tinynet then takes the fastest backend that works here)"
                          ) from None


def get_backend():
    """Name of the active backend."""
    _ensure()
    return _state["name"]


def xp():
    """The array module of the active backend (``numpy`` or ``cupy``): where new arrays go."""
    _ensure()
    return _state["xp"]


def kernels():
    """The active backend's kernels: ``kernels().conv2d_forward(...)`` and the rest of :data:`KERNELS`."""
    _ensure()
    return _state["kernels"]


def matmul(a, b):
    """``a @ b`` for 2-D arrays by the active backend's product (its ``matmul`` kernel: NumPy's
    on the CPU, tinynet's own CUDA kernel on a GPU, which a CUDA graph can record)."""
    return kernels().matmul(a, b)


def fused(name, array):
    """The fused kernel ``name`` (one of :data:`FUSED`) of the backend that holds ``array``, or
    ``None`` when that backend has none (the caller then runs its readable array code)."""
    if get_array_module(array) is np:
        _ensure()
        entry = _state["kernels"] if _state["xp"] is np else _load("numpy")[1]
    else:
        entry = _load("cupy")[1]
    return getattr(entry, name, None)


def floatx():
    """Default float dtype name for new layers, optimizers and cast inputs (``"float32"``)."""
    return _floatx


def set_floatx(dtype):
    """Set the default float dtype: ``"float32"`` (default, like Keras) or ``"float64"`` (gradient
    checks). Applies to layers and optimizers built after the call.

    As in Keras, the name is written in full: ``"float"`` and ``"double"`` (float64 to NumPy,
    float32 in other frameworks) are refused, as are Keras's ``"float16"`` and ``"bfloat16"``,
    which tinynet does not compute in. NumPy's own ``np.float32`` / ``np.float64`` and their
    ``np.dtype`` are accepted (Keras takes only the names)."""
    global _floatx
    accepted = " or ".join(repr(n) for n in FLOATX)
    if isinstance(dtype, str):
        name = dtype
    elif isinstance(dtype, np.dtype) or (isinstance(dtype, type) and issubclass(dtype, np.generic)):
        name = np.dtype(dtype).name
    else:
        raise TypeError(f"set_floatx: the float type is given by its name, {accepted}, got "
                        f"{dtype!r} ({type(dtype).__name__})")
    if name not in FLOATX:
        if name in ("float16", "bfloat16"):
            why = (f" ({name} is one of Keras's floatx; tinynet does not compute in it: it would "
                   "need loss scaling and float32 master weights, which tinynet does not have)")
        elif name in ("float", "double", "single", "half") or name.lower() in FLOATX:
            why = (f" (write the name in full, as Keras needs it: {name!r} is ambiguous, float64 "
                   "to NumPy and float32 in other frameworks)" if name.lower() not in FLOATX
                   else " (the name is lower case, as Keras needs it)")
        else:
            why = ""
        raise ValueError(f"floatx must be {accepted}, got {name!r}{why}")
    _floatx = name


@contextlib.contextmanager
def floatx_scope(dtype):
    """``with floatx_scope("float64"):`` builds layers in that dtype, then restores floatx."""
    saved = _floatx
    set_floatx(dtype)
    try:
        yield
    finally:
        set_floatx(saved)


def check_seed(seed, where="set_seed"):
    """``seed`` as an int (``None`` stays ``None``: fresh randomness), or an error saying that a
    seed is a non-negative integer (NumPy's own, from deep inside its generator, named none)."""
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{where}: a seed is a non-negative integer, like 42; got {seed!r} "
                        f"({type(seed).__name__})")
    if seed < 0:
        raise ValueError(f"{where}: a seed is a non-negative integer, like 42; got {seed}")
    return int(seed)


def set_seed(seed):
    """Seed tinynet's random generator (initial weights, shuffling, dropout masks) with a
    non-negative integer (``None``: fresh, unrepeatable randomness)."""
    global _rng
    _rng = np.random.default_rng(check_seed(seed))


def rng():
    """tinynet's NumPy random generator (host side, the same on every backend)."""
    return _rng


@contextlib.contextmanager
def generator(gen):
    """Draw from ``gen`` inside the block (``fit(seed=...)``, ``load_model``), then give back the
    global generator untouched: what follows the block draws the numbers it would have drawn."""
    global _rng
    saved = _rng
    _rng = gen
    try:
        yield gen
    finally:
        _rng = saved


def asarray(a, dtype=None):
    """Move ``a`` to the active backend's device, as ``dtype`` (default: keep the dtype)."""
    return xp().asarray(a, dtype=dtype)


class Eager(np.ndarray):
    """What ``model(x)`` and ``layer(x)`` return on data: a NumPy array that also answers
    TensorFlow's ``.numpy()``, so that ``model(x_train[:1]).numpy()`` runs as in TensorFlow's
    tutorials. It prints, computes and converts as the plain array it is."""

    def numpy(self):
        return np.asarray(self)

    def __repr__(self):
        return repr(np.asarray(self))

    def __array_wrap__(self, array, context=None, return_scalar=False):
        # what is computed from it (a sum, model(x) * 2) is a plain array or number again; an
        # in-place operation (y -= 1) leaves it what it was
        if array is self:
            return self
        array = array.view(np.ndarray)
        return array[()] if return_scalar else array


class _Float64(np.float64):
    """A float64 number that also answers TensorFlow's ``.numpy()`` (a loss value, a metric's
    result): a Python float still (JSON, ``round``, hashing), and what is computed from it is a
    plain number."""

    def numpy(self):
        return np.float64(self)


class _Float32(np.float32):
    """:class:`_Float64` for float32 numbers: NumPy's float32 (not a Python float: ``json``
    needs ``float(value)``, as for Keras's ``.numpy()``)."""

    def numpy(self):
        return np.float32(self)


def eager_scalar(value):
    """A 0-d array or number (on the GPU too) as a host number with TensorFlow's ``.numpy()``."""
    number = np.asarray(to_numpy(value))[()]
    return (_Float32 if np.asarray(number).dtype == np.float32 else _Float64)(number)


def eager(a):
    """``a`` as an :class:`Eager` array (a view, no copy); a GPU array is returned as it is."""
    return a.view(Eager) if isinstance(a, np.ndarray) else a


def apart_from(out, *inputs):
    """``out``, or a copy of it where it shares memory with one of ``inputs``: a model or layer
    that only reshapes or passes its input through (Flatten, Reshape, Dropout at inference) would
    otherwise return a view of the caller's array, which an in-place change of the result would
    change too (Keras's results are new arrays)."""
    xp = get_array_module(out)
    for a in inputs:
        if isinstance(a, (list, tuple)):  # model([x]): Keras's list of one input
            if a and apart_from(out, *a) is not out:
                return out.copy()
            continue
        if hasattr(a, "shape") and get_array_module(a) is xp and xp.may_share_memory(out, a):
            return out.copy()
    return out


def to_numpy(a):
    """Return ``a`` as a NumPy array (copies from the GPU when ``a`` is a CuPy array)."""
    if isinstance(a, np.ndarray):
        return a
    get = getattr(a, "get", None)
    if get is not None:
        return get()
    return np.asarray(a)


def image_data_format():
    """Always ``"channels_last"``: tinynet's images are ``(N, H, W, C)``, Keras's default."""
    return "channels_last"


def clear_session():
    """Start default layer names from scratch, like ``keras.backend.clear_session()``."""
    names.reset_names()


def __getattr__(name):
    raise names.missing("tinynet.backend", name, "backend function",
                        ["floatx", "set_floatx", "image_data_format", "clear_session", "set_seed",
                         "set_backend", "get_backend", "get_array_module"])
