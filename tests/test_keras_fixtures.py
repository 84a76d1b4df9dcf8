"""Keras parity: tinynet against reference numbers computed by Keras 3 / TensorFlow in float64.

The fixtures in ``tests/fixtures/keras/`` are written by ``tests/keras_reference/generate.py``
(run with a Python that has TensorFlow; this test needs only NumPy). Each file is one case:

* a layer: forward output for an input and weights, and the gradients of ``sum(y * G)`` with
  respect to the input and each weight, for a random ``G`` (Dense, Conv2D, MaxPooling2D, Flatten,
  Add, Dropout, Activation, and the layers Keras scripts bring: Softmax, ReLU, Reshape, Rescaling,
  AveragePooling2D, GlobalAveragePooling2D, activations given as functions). Keras's float64
  ``Rescaling(1 / 255)`` rounds a Python-float scale through float32 (1.5e-8 off); the generator
  gives it the float64 number, which is what ``Rescaling(1 / 255)`` means and what tinynet uses;
* a loss (categorical and sparse categorical cross-entropy, binary cross-entropy, mean squared
  error): the loss (mean over the batch) and its gradient w.r.t. ``y_pred``, on the logits path and
  on the probabilities path (with Keras's clipping at 1e-7), and the per-position values of
  Keras's function of the same name (``sparse_categorical_crossentropy``, ...);
* an optimizer (RMSprop, SGD, Adam, Adagrad, Adadelta, with and without clipnorm, clipvalue,
  global_clipnorm, weight_decay): the parameters after each of 6 ``apply_gradients`` steps;
* a whole model: one ``train_on_batch`` of the digits CNN and of the raw-pixel MLP, compiled with
  ``RMSprop()`` and categorical cross-entropy, in float32 and in float64 (the loss and accuracy
  it returns and the weights after the step; tolerances in ``test_one_training_step_...``).

Tolerances: every entry is compared, each relative to its own magnitude: layers and loss at most
1e-10 relative error, optimizer trajectories at most 1e-12. An entry that is a sum or difference of
larger terms (a gradient where terms cancel, a softmax probability of 1e-9 subtracted from a
label) can only be as exact as the rounding of those terms, so each array also allows an absolute
floor of 16 float64 roundings (16 x 2.2e-16) of its largest entry: measured on these fixtures, the
worst such entry is 1.1e-17 from Keras's, 0.24 of one rounding (``cce_logits``' gradient, an
entry of -3.0e-9 in an array whose largest entry is 0.2). A small entry is therefore held to 1e-10
of itself down to 1.6e-5 times the array's largest, not to 1e-10 of the largest as a comparison
normalised by the largest entry would. The versions of Keras and TensorFlow that produced the
numbers are in ``tests/fixtures/keras/VERSIONS.json``.
"""
import json
from pathlib import Path

import numpy as np
import pytest

from tinynet import activations, backend, layers, losses, optimizers, report_models

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "keras"
ALL = sorted(FIXTURES.glob("*.npz"))


def _kind(path):
    with np.load(path) as d:
        return str(d["kind"])


LAYER_FILES = [p for p in ALL if _kind(p) == "layer"]
LOSS_FILES = [p for p in ALL if _kind(p) == "loss"]
OPTIMIZER_FILES = [p for p in ALL if _kind(p) == "optimizer"]
MODEL_STEP_FILES = [p for p in ALL if _kind(p) == "model_step"]

LAYER_RTOL = 1e-10
OPT_RTOL = 1e-12
ROUNDINGS = 16  # the absolute floor, in float64 roundings (eps) of the array's largest entry


@pytest.fixture(autouse=True)
def float64():
    old = backend.floatx()
    backend.set_floatx("float64")
    try:
        yield
    finally:
        backend.set_floatx(old)


def load(path):
    with np.load(path, allow_pickle=False) as d:
        return {k: d[k] for k in d.files}


def ids(paths):
    return [p.stem for p in paths]


def layer_args(config):
    """A fixture's layer config as constructor arguments: ``{"function": name}`` stands for the
    activation function ``tinynet.activations.<name>`` (Keras's of that name in the generator)."""
    return {k: getattr(activations, v["function"]) if isinstance(v, dict) and set(v) == {"function"}
            else v for k, v in config.items()}


def host(a):
    """A NumPy array from a NumPy or CuPy array."""
    if isinstance(a, np.ndarray):
        return a
    get = getattr(a, "get", None)
    return get() if get is not None else np.asarray(a)


def device(a):
    """``a`` as an array of the active backend (NumPy arrays stay NumPy on CPU backends)."""
    to = getattr(backend, "asarray", None)
    return to(a) if to is not None else a


def assert_close(actual, expected, what, rtol, dtype=np.float64, roundings=ROUNDINGS, floor=None):
    """Every entry: ``|actual - expected| <= rtol * |expected| + floor``, and ``actual`` of
    ``dtype``; the floor is by default ``roundings * eps * max|expected|`` (eps of ``dtype``)."""
    actual = host(actual)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, Keras {expected.shape}"
    assert actual.dtype == dtype, f"{what}: dtype {actual.dtype}, expected {np.dtype(dtype)}"
    atol = floor if floor is not None else \
        roundings * np.finfo(dtype).eps * float(np.abs(expected).max(initial=0.0))
    diff = np.abs(actual.astype(np.float64) - expected)
    excess = diff - (atol + rtol * np.abs(expected))
    if not np.all(np.isfinite(actual)) or excess.max(initial=-np.inf) > 0:
        rel = diff / np.maximum(np.abs(expected), max(atol, 1e-300) / rtol)
        rel = np.where(np.isfinite(rel), rel, np.inf)
        i = np.unravel_index(np.argmax(rel), rel.shape)
        pytest.fail(
            f"{what}: worst relative error {rel[i]:.3e} (> {rtol:g}) at index {tuple(map(int, i))}: "
            f"tinynet {actual[i]!r}, Keras {expected[i]!r}; "
            f"{int((excess > 0).sum())} of {expected.size} entries out of tolerance",
            pytrace=False,
        )


# --------------------------------------------------------------------------------------------
# layers
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", LAYER_FILES, ids=ids(LAYER_FILES))
def test_layer_matches_keras(path):
    f = load(path)
    config = json.loads(str(f["config"]))
    cls = config.pop("class")
    layer = getattr(layers, cls)(**layer_args(config))
    n_inputs = int(f["n_inputs"])
    n_weights = int(f["n_weights"])

    shape = f["input_shape"]
    if n_inputs > 1:
        layer.build([tuple(int(d) for d in row) for row in shape])
        x = [device(f[f"x{i}"]) for i in range(n_inputs)]
    else:
        layer.build(tuple(int(d) for d in shape))
        x = device(f["x"])

    weights = [f[f"w{i}"] for i in range(n_weights)]
    got = layer.get_weights()
    assert [tuple(np.shape(w)) for w in got] == [w.shape for w in weights], \
        f"{cls}: weight shapes {[np.shape(w) for w in got]}, Keras {[w.shape for w in weights]}"
    if n_weights:
        layer.set_weights(weights)
        for i, (w, ref) in enumerate(zip(layer.get_weights(), weights)):
            assert np.array_equal(host(w), ref), f"{cls}: get_weights()[{i}] differs from set_weights"

    y = layer.forward(x, training=False)
    assert_close(y, f["y"], f"{cls} forward y", LAYER_RTOL)

    dx = layer.backward(device(f["G"]))
    if n_inputs > 1:
        assert isinstance(dx, (list, tuple)) and len(dx) == n_inputs, \
            f"{cls}.backward should return a list of {n_inputs} gradients"
        for i in range(n_inputs):
            assert_close(dx[i], f[f"dx{i}"], f"{cls} backward dx{i}", LAYER_RTOL)
    else:
        assert_close(dx, f["dx"], f"{cls} backward dx", LAYER_RTOL)

    assert len(layer.grads) == n_weights, f"{cls}: {len(layer.grads)} grads, Keras has {n_weights} weights"
    for i, g in enumerate(layer.grads):
        assert_close(g, f[f"dw{i}"], f"{cls} weight gradient dw{i}", LAYER_RTOL)


# --------------------------------------------------------------------------------------------
# loss
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", LOSS_FILES, ids=ids(LOSS_FILES))
def test_loss_matches_keras(path):
    f = load(path)
    config = json.loads(str(f["config"]))
    cls = config.pop("class")
    fn = getattr(losses, cls)(**config)
    y_true, y_pred = device(f["y_true"]), device(f["y_pred"])

    loss = np.asarray(host(fn(y_true, y_pred)), dtype=np.float64)
    assert loss.size == 1, f"{cls}: loss should be a scalar, got shape {loss.shape}"
    assert_close(loss.reshape(()), f["loss"], f"{cls}({config}) loss", LAYER_RTOL)

    grad = fn.gradient(y_true, y_pred)
    assert_close(grad, f["grad"], f"{cls}({config}) gradient", LAYER_RTOL)

    per_example = host(fn.per_example(y_true, y_pred))
    assert per_example.shape == (y_pred.shape[0],), f"{cls}: per_example shape {per_example.shape}"
    assert_close(np.asarray(per_example.mean()).reshape(()), f["loss"],
                 f"{cls}({config}) mean of per_example", LAYER_RTOL)

    if "function" in f:  # Keras's function of the same name: the loss per position
        function = getattr(losses, str(f["function"]))
        assert losses.get(function).get_config() == type(fn)().get_config()
        assert_close(function(y_true, y_pred, **config), f["per_position"],
                     f"losses.{f['function']}(..., {config})", LAYER_RTOL)


# --------------------------------------------------------------------------------------------
# optimizers
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", OPTIMIZER_FILES, ids=ids(OPTIMIZER_FILES))
def test_optimizer_trajectory_matches_keras(path):
    f = load(path)
    config = json.loads(str(f["config"]))
    cls = config.pop("class")
    opt = getattr(optimizers, cls)(**config)
    n_params, n_steps = int(f["n_params"]), int(f["n_steps"])

    params = [device(f[f"p{i}"].copy()) for i in range(n_params)]
    for k in range(1, n_steps + 1):
        grads = [device(f[f"g{k}_{i}"]) for i in range(n_params)]
        opt.apply_gradients(zip(grads, params))
        for i, p in enumerate(params):
            assert_close(p, f[f"p{k}_{i}"], f"{cls}({config}) param {i} after step {k}",
                         OPT_RTOL)


# --------------------------------------------------------------------------------------------
# one training step of a whole model
# --------------------------------------------------------------------------------------------

# float64: both frameworks compute the same formulas and differ only in the order of their sums,
# which the layer fixtures above show costs at most ~1e-12 relative; 1e-10 is the standard used
# there. float32: the same sums rounded to float32 (eps 1.2e-7) over up to 784 terms with
# cancellation; 1e-5 leaves two orders of magnitude above eps while a wrong formula (a missing
# 1/N, epsilon outside the square root, the wrong rho) moves the loss or the step by far more.
STEP_RTOL = {"float64": 1e-10, "float32": 1e-5}


@pytest.mark.parametrize("path", MODEL_STEP_FILES, ids=ids(MODEL_STEP_FILES))
def test_one_training_step_of_a_report_model_matches_keras(path):
    """``train_on_batch`` from the same weights on the same batch: the loss (before the step), the
    accuracy and every weight after the step as Keras's.

    The weights are compared with ``|w - w_keras| <= rtol * (|w_keras| + max|dw_keras|)``, where
    ``dw_keras`` is the change the step made to that weight array (RMSprop's first step moves a
    weight by up to ``learning_rate * sqrt(1 / (1 - rho))`` = 3.2e-3): each weight to ``rtol`` of
    its own magnitude and, for weights near zero, to ``rtol`` of the step. Comparing only the
    weights to their own magnitude would hide a wrong step, a step being much smaller than the
    weights; so the change each weight went through is also checked on its own: weights Keras
    left unchanged (those of pixels no image of the batch inks) must be left exactly unchanged,
    and in float64 every change must be Keras's to 1e-10 of itself, beyond the two roundings of
    the weight it is added to (``2 * eps * |w|``: one in each framework).
    """
    f = load(path)
    dtype, name = str(f["dtype"]), str(f["model"])
    rtol = STEP_RTOL[dtype]
    backend.set_floatx(dtype)  # the autouse fixture restores the previous floatx afterwards
    # the MLP's Dropout at rate 0: a dropout mask is random and cannot be shared with Keras
    model = report_models.mlp_raw(dropout=0.0) if name == "mlp_raw" else getattr(report_models, name)()
    before = [f[f"w{i}"] for i in range(int(f["n_weights"]))]
    change = [f[f"dw{i}"] for i in range(int(f["n_weights"]))]
    model.set_weights(before)
    model.compile(optimizer=optimizers.RMSprop(), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    loss, accuracy = model.train_on_batch(f["x"].astype(dtype), f["y"].astype(dtype))

    assert abs(loss - float(f["loss"])) <= rtol * abs(float(f["loss"])), \
        f"{name} {dtype}: loss {loss!r}, Keras {float(f['loss'])!r}"
    # a fraction k / 32 of the batch, exact in both dtypes; a tie between two top
    # probabilities could flip a prediction, but random weights make one vanishingly unlikely
    assert accuracy == float(f["accuracy"]), f"{name} {dtype}: accuracy {accuracy}, Keras {float(f['accuracy'])}"

    after = model.get_weights()
    assert len(after) == len(before)
    eps = np.finfo(dtype).eps
    for i, (w, w0, dw) in enumerate(zip(after, before, change)):
        what = f"{name} {dtype} weight {i} {w0.shape} after the step"
        assert w.dtype == np.dtype(dtype), f"{what}: dtype {w.dtype}"
        keras_w = w0 + dw
        step = float(np.abs(dw).max())
        assert step > 0, f"{what}: Keras did not change it (the fixture is wrong)"
        assert_close(w, keras_w, what, rtol, dtype=np.dtype(dtype).type, floor=rtol * step)
        still = dw == 0.0
        np.testing.assert_array_equal(w[still], w0[still].astype(dtype),
                                      err_msg=f"{what}: weights Keras left unchanged moved")
        if dtype == "float64":
            diff = np.abs((w - w0) - dw)
            bound = rtol * np.abs(dw) + 2 * eps * np.abs(keras_w)
            assert np.all(diff <= bound), \
                f"{what}: the change differs from Keras's by up to {np.max(diff / np.maximum(np.abs(dw), 1e-300)):.3e} of itself"


# --------------------------------------------------------------------------------------------
# the fixtures themselves
# --------------------------------------------------------------------------------------------

def test_fixture_set_is_complete():
    versions = json.loads((FIXTURES / "VERSIONS.json").read_text())
    assert versions["keras"].startswith("3."), versions
    assert len(LAYER_FILES) >= 94 and len(LOSS_FILES) >= 20 and len(OPTIMIZER_FILES) >= 23
    loss_classes = {json.loads(str(load(p)["config"]))["class"] for p in LOSS_FILES}
    assert loss_classes == {"CategoricalCrossentropy", "SparseCategoricalCrossentropy",
                            "BinaryCrossentropy", "MeanSquaredError", "MeanAbsoluteError"}
    opt_configs = [json.loads(str(load(p)["config"])) for p in OPTIMIZER_FILES]
    assert {c["class"] for c in opt_configs} == {"RMSprop", "SGD", "Adam", "Adagrad", "Adadelta"}
    for arg in ("clipnorm", "clipvalue", "global_clipnorm", "weight_decay"):
        assert any(arg in c for c in opt_configs), arg
    steps = {(str(load(p)["model"]), str(load(p)["dtype"])) for p in MODEL_STEP_FILES}
    assert steps == {(m, d) for m in ("cnn_digits", "mlp_raw") for d in ("float32", "float64")}
    layer_configs = [json.loads(str(load(p)["config"])) for p in LAYER_FILES]
    classes = {c["class"] for c in layer_configs}
    assert classes >= {"Dense", "Conv2D", "MaxPooling2D", "Flatten", "Add", "Dropout", "Activation",
                       "Softmax", "ReLU", "Reshape", "Rescaling", "AveragePooling2D",
                       "GlobalAveragePooling2D"}
    # the cases issue 11 asks for: average pooling with pools 2 and 3, strides 1 and 2, 'valid'
    # and 'same' (each pair of them), Reshape with a -1, Rescaling with an offset, activations
    # given as functions
    avg = [c for c in layer_configs if c["class"] == "AveragePooling2D"]
    combos = {(c["pool_size"], c.get("strides", c["pool_size"]), c["padding"]) for c in avg
              if isinstance(c["pool_size"], int) and isinstance(c.get("strides", 1), int)}
    assert any(isinstance(c["pool_size"], list) for c in avg)  # a rectangular pool too
    assert {(p, s, pad) for p in (2, 3) for s in (1, 2) for pad in ("valid", "same")} <= combos
    assert any(-1 in c["target_shape"] for c in layer_configs if c["class"] == "Reshape")
    assert any(c.get("offset") for c in layer_configs if c["class"] == "Rescaling")
    assert {c["activation"]["function"] for c in layer_configs
            if isinstance(c.get("activation"), dict)} >= {"linear", "relu", "sigmoid", "tanh",
                                                           "softmax"}
    assert sum(p.stat().st_size for p in FIXTURES.iterdir()) < 5_000_000
    for p in ALL:
        f = load(p)
        assert str(f["keras_version"]) == versions["keras"], p.name
        assert str(f["tensorflow_version"]) == versions["tensorflow"], p.name
