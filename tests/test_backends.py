"""Every backend trains to the same numbers as the NumPy reference, and the compiled kernels never
index out of bounds.

* Training the report's CNNs in float64 from the same seed gives the same loss at every step on
  the numpy and numba backends (and cupy, where a GPU is there) to 1e-10 relative: the kernels
  differ only in the order of their sums, and a few hundred steps do not amplify that.
* The numba kernels run under ``NUMBA_BOUNDSCHECK=1`` (every array access checked) on edge shapes,
  in a subprocess because the variable must be set before numba compiles anything.
"""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tinynet import backend, optimizers, report_models, utils
from tinynet.datasets import read_idx

from conftest import zip_equal

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TINYNET_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def use_backend():
    """``use_backend(name)`` switches backend (skipping with the reason when it cannot run here);
    the previous backend comes back after the test."""
    previous = backend.get_backend()

    def switch(name):
        if name == "cupy":
            pytest.importorskip("cupy", reason="CuPy is not installed")
        try:
            backend.set_backend(name)
        except backend.BackendError as e:
            pytest.skip(f"no CUDA GPU ({e})" if name == "cupy" else str(e))

    yield switch
    backend.set_backend(previous)


def digits(n):
    """The first ``n`` MNIST training images (N, 28, 28, 1) in [0, 1] and one-hot labels; random
    images when the data folder is not there (the comparison between backends holds either way)."""
    folder = DATA / "mnist"
    if (folder / "train-images-idx3-ubyte.gz").exists():
        x = read_idx(folder / "train-images-idx3-ubyte.gz")[:n].astype(np.float64) / 255.0
        y = read_idx(folder / "train-labels-idx1-ubyte.gz")[:n]
    else:
        r = np.random.default_rng(0)
        x, y = r.random((n, 28, 28)), r.integers(0, 10, n)
    return x.reshape(n, 28, 28, 1), utils.to_categorical(y, 10)


def loss_curve(name, build, steps, batch):
    """Per-step training losses of a freshly built model on ``name`` in float64, seed 0."""
    backend.set_backend(name)
    backend.set_seed(0)
    model = build()
    model.compile(optimizers.RMSprop(), "categorical_crossentropy")
    x, y = digits(steps * batch)
    losses = [model.train_on_batch(x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch])
              for i in range(steps)]
    return np.array(losses), [backend.to_numpy(w) for w in model.get_weights()]


@pytest.mark.parametrize("name", ["numba", "cupy"])
def test_cnn_digits_trains_to_the_same_losses_as_numpy(name, use_backend, float64):
    use_backend(name)
    ref, ref_w = loss_curve("numpy", report_models.cnn_digits, steps=200, batch=32)
    got, got_w = loss_curve(name, report_models.cnn_digits, steps=200, batch=32)
    if (DATA / "mnist" / "train-images-idx3-ubyte.gz").exists():  # random labels teach nothing
        assert ref[-1] < 0.7 * ref[0]  # it did learn
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=0)
    for g, r in zip(got_w, ref_w):
        np.testing.assert_allclose(g, r, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", ["numba", "cupy"])
def test_residual_cnn_with_dropout_trains_to_the_same_losses(name, use_backend, float64):
    use_backend(name)
    ref, _ = loss_curve("numpy", report_models.cnn_fashion_3, steps=60, batch=32)
    got, _ = loss_curve(name, report_models.cnn_fashion_3, steps=60, batch=32)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=0)


@pytest.mark.parametrize("name", ["numba", "cupy"])
def test_predict_and_evaluate_agree_in_float32(name, use_backend):
    use_backend(name)
    x, y = digits(300)
    outputs = []
    for b in ("numpy", name):
        backend.set_backend(b)
        backend.set_seed(3)
        model = report_models.cnn_fashion_3()
        model.compile(optimizers.RMSprop(), "categorical_crossentropy", ["accuracy"])
        model.fit(x[:256], y[:256], batch_size=64, epochs=1, verbose=0, seed=1)
        outputs.append((model.predict(x, batch_size=128), model.evaluate(x, y, batch_size=100)))
    (p_ref, e_ref), (p, e) = outputs
    np.testing.assert_allclose(p, p_ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(e, e_ref, rtol=1e-4)


BOUNDSCHECK_SCRIPT = textwrap.dedent("""
    import numpy as np
    from numba.core import config
    assert config.BOUNDSCHECK, "NUMBA_BOUNDSCHECK is not on"
    from tinynet.kernels import numba_cpu as K, numpy_ref as R
    r = np.random.default_rng(0)
    convs = [  # (N, H, W, C, F, kh, kw, s, pads)
        (1, 1, 1, 1, 1, 1, 1, 1, (0, 0, 0, 0)), (1, 1, 1, 1, 1, 3, 3, 1, (1, 1, 1, 1)),
        (3, 2, 3, 2, 3, 5, 5, 1, (2, 2, 2, 2)), (5, 7, 7, 9, 16, 3, 3, 1, (1, 1, 1, 1)),
        (2, 4, 5, 2, 2, 1, 1, 1, (2, 1, 0, 3)), (2, 6, 5, 1, 2, 4, 2, 1, (1, 2, 0, 1)),
        (2, 5, 5, 2, 2, 3, 3, 2, (1, 1, 1, 1)), (1, 3, 3, 1, 1, 3, 3, 1, (0, 0, 0, 0)),
        (9, 14, 14, 9, 9, 5, 5, 1, (2, 2, 2, 2)),
    ]
    for n, h, w, c, f, kh, kw, s, pads in convs:
        x = r.standard_normal((n, h, w, c)); k = r.standard_normal((kh, kw, c, f))
        b = r.standard_normal(f)
        for relu in (False, True):
            y, saved = K.conv2d_forward(x, k, b, (s, s), pads, relu=relu)
            ref, _ = R.conv2d_forward(x, k, b, (s, s), pads, relu=relu)
            assert np.allclose(y, ref), (n, h, w, c, f, kh, kw, s, pads)
            d = r.standard_normal(y.shape)
            for need_dx in (True, False):
                K.conv2d_backward(d, saved, k, (s, s), pads, y if relu else None, need_dx)
    pools = [  # (N, H, W, C, ph, pw, sh, sw, pads)
        (1, 1, 1, 1, 1, 1, 1, 1, (0, 0, 0, 0)), (2, 7, 7, 3, 2, 2, 2, 2, (0, 0, 0, 0)),
        (2, 5, 6, 2, 2, 2, 1, 1, (0, 1, 0, 1)), (1, 9, 10, 2, 3, 3, 2, 2, (1, 1, 1, 1)),
        (1, 7, 8, 1, 3, 3, 3, 3, (1, 1, 0, 1)), (1, 9, 9, 2, 2, 2, 3, 3, (0, 0, 0, 0)),
        (2, 4, 4, 3, 2, 2, 2, 2, (2, 2, 2, 2)),
    ]
    for n, h, w, c, ph, pw, sh, sw, pads in pools:
        x = r.integers(0, 3, (n, h, w, c)).astype(float)
        out, arg = K.maxpool_forward(x, ph, pw, sh, sw, pads)
        K.maxpool_backward(r.standard_normal(out.shape), arg, x.shape, ph, pw, sh, sw, pads)
        cols = K.im2col(x, ph, pw, sh, sw, pads)
        K.col2im(cols, x.shape, ph, pw, sh, sw, pads)
    print("bounds ok")
""")


def test_numba_kernels_stay_in_bounds_on_edge_shapes(tmp_path):
    pytest.importorskip("numba")
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"),
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", BOUNDSCHECK_SCRIPT], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "bounds ok" in done.stdout


def test_a_compilation_that_lasts_says_that_kernels_are_compiling(capsys, monkeypatch):
    """numba's "numba:compile" events (sent when it compiles, not when it loads a kernel from
    its cache) drive the notice, whichever call compiles: it waited for a kernel's first call and
    said nothing when a later call compiled another of that kernel's paths (an 11.5 s row of a
    lesson, in silence)."""
    import time
    from types import SimpleNamespace
    monkeypatch.setitem(backend._notice, "shown", False)

    def event(module, start):
        dispatcher = SimpleNamespace(py_func=SimpleNamespace(__module__=module))
        return SimpleNamespace(data={"dispatcher": dispatcher}, is_start=start, is_end=not start)

    ours, theirs = "tinynet.kernels.numba_cpu", "someone_else"
    notice = backend._CompileNotice(seconds=0.1)
    notice.on_start(event(ours, True))   # a quick compilation: nothing to say
    notice.on_end(event(ours, False))
    notice.on_start(event(theirs, True))  # another package's function, however long
    time.sleep(0.3)
    notice.on_end(event(theirs, False))
    assert capsys.readouterr().err == "" and notice.count == 1
    notice.on_start(event(ours, True))   # a kernel ...
    notice.on_start(event(ours, True))   # ... and a function it calls, compiled inside it
    notice.on_end(event(ours, False))
    time.sleep(0.5)                       # the kernel's own compilation still running
    assert backend.COMPILE_NOTICE in capsys.readouterr().err
    notice.on_end(event(ours, False))
    assert notice.count == 2              # (what the lessons' Timer reads)
    notice.on_start(event(ours, True))   # once per process
    time.sleep(0.3)
    notice.on_end(event(ours, False))
    assert capsys.readouterr().err == ""
    # many short compilations in a row add up (the first step compiles kernel after kernel)
    monkeypatch.setitem(backend._notice, "shown", False)
    notice = backend._CompileNotice(seconds=0.25)
    for _ in range(2):
        notice.on_start(event(ours, True))
        time.sleep(0.06)
        notice.on_end(event(ours, False))
    assert capsys.readouterr().err == ""
    for _ in range(3):
        notice.on_start(event(ours, True))
        time.sleep(0.06)
        notice.on_end(event(ours, False))
    assert backend.COMPILE_NOTICE in capsys.readouterr().err


def test_the_notice_follows_numba_s_own_compile_events():
    """The listener is registered with numba when the numba backend loads (before any kernel
    can compile), and numba's events reach it: a fresh njit function of this test, given
    tinynet's module name, is one compilation; another package's is none."""
    numba = pytest.importorskip("numba")
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", "from tinynet import backend; "
                           "backend.set_backend('numba'); print('listener' in backend._notice)"],
                          env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == "True", done.stderr[-2000:]

    def plus_one(x):
        return x + 1

    def plus_two(x):
        return x + 2
    plus_one.__module__ = "tinynet.kernels.numba_cpu"
    before = backend.compilations()
    assert numba.njit(plus_one)(1) == 2 and numba.njit(plus_two)(1) == 3
    assert backend.compilations() - before == 1


def test_compilations_count_a_kernel_compiled_here_not_one_loaded_from_the_cache(tmp_path):
    """numba's counters (what the lessons' Timer reads): a kernel compiled in this process is a
    cache miss, one loaded a hit."""
    pytest.importorskip("numba")
    script = ("import numpy as np; from tinynet import backend; from tinynet.kernels import "
              "numba_cpu as nc; x = np.ones((2, 5, 5, 1)); "
              "before = backend.compilations(); nc.maxpool_forward(x, 2, 2, 2, 2, (0, 0, 0, 0)); "
              "print(backend.compilations() - before)")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path),
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    runs = [subprocess.run([sys.executable, "-c", script], env=env, cwd=REPO, capture_output=True,
                           text=True, timeout=600) for _ in range(2)]
    first, second = (r.stdout.strip() for r in runs)
    assert int(first) >= 1, runs[0].stderr[-2000:]
    assert second == "0", runs[1].stderr[-2000:]


@pytest.mark.parametrize("cause, expected", [
    ("jit", "NUMBA_DISABLE_JIT=1 is set, so numba would run tinynet's kernels as plain Python"),
    ("cache", "numba cannot keep its compiled kernels anywhere .*set NUMBA_CACHE_DIR"),
])
def test_numba_that_cannot_compile_or_cache_is_refused_and_auto_falls_back(cause, expected):
    """NUMBA_DISABLE_JIT=1 ran the kernels as Python (a training step of 32 images: 10 s) under
    the name 'numba'; a machine where numba can write no cache failed at import with numba's
    RuntimeError, 'auto' included, where 'auto' promises NumPy with a warning."""
    numba = pytest.importorskip("numba")
    # patched by hand, and put back before conftest's fixture selects the backend again
    registry, state = dict(backend._registry), dict(backend._state)
    disabled = numba.config.DISABLE_JIT
    real = backend.importlib.import_module

    def no_locator(name, package=None):
        if name.endswith("numba_cpu"):
            raise RuntimeError("cannot cache function '_blocked_sums': no locator available")
        return real(name, package)
    try:
        backend._registry.pop("numba", None)
        if cause == "jit":
            numba.config.DISABLE_JIT = True
        else:
            backend.importlib.import_module = no_locator
        with pytest.raises(backend.BackendError, match=expected):
            backend.set_backend("numba")
        with pytest.warns(UserWarning, match="numba backend unavailable, using numpy"):
            assert backend.set_backend("auto") == "numpy"
    finally:
        numba.config.DISABLE_JIT = disabled
        backend.importlib.import_module = real
        backend._registry.clear()
        backend._registry.update(registry)
        backend._state.clear()
        backend._state.update(state)


@pytest.mark.parametrize("first, then", [("numba", "numpy"), ("numpy", "numba")])
def test_a_backward_pass_uses_the_kernels_of_its_forward_pass(first, then, use_backend):
    """What a forward pass saves for its backward belongs to its kernels (numba's fused conv +
    pool keeps the pooled output and the winners, NumPy's the convolution's output): switching
    backend between the two passes still gives the gradients of one backend alone (it raised a
    broadcasting error from inside NumPy)."""
    from tinynet import layers
    from tinynet.model import Model
    use_backend(first)

    def gradients(switch_to=None):
        backend.set_seed(0)
        x = layers.Input((8, 8, 2))
        y = layers.Conv2D(3, 3, padding="same", activation="relu")(x)
        y = layers.MaxPooling2D(2)(y)
        y = layers.Conv2D(2, 3, padding="same")(y)
        y = layers.MaxPooling2D(2)(y)
        y = layers.Flatten()(y)
        model = Model(x, layers.Dense(3, activation="softmax")(y))
        xb = np.random.default_rng(1).random((4, 8, 8, 2)).astype(np.float32)
        out = model.forward(xb, training=True)
        if switch_to:
            backend.set_backend(switch_to)
        model.backward(out - np.eye(3, dtype=np.float32)[[0, 1, 2, 0]])
        backend.set_backend(first)
        return [np.array(g) for g in model.grads]

    for a, b in zip_equal(gradients(), gradients(switch_to=then)):
        np.testing.assert_array_equal(a, b)
