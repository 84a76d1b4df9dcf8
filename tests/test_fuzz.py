"""Fuzzing with hypothesis: random layer stacks, shapes and data.

An independent *oracle* below computes, from Keras's rules, what each random stack of layers
should do with a random input shape: the output shape and parameter count of a valid stack, or
the first layer that cannot take its input in an invalid one. Then:

* every valid model builds (Sequential with ``Input``, Sequential built on its first batch, or the
  functional API), has the oracle's output shape and parameter count, runs forward and backward
  with the right shapes, gives the same numbers on the active backend as on the NumPy reference,
  and passes ``tinynet.gradcheck.check_model`` (float64, a few entries per array) with a relative
  error below 1e-6, in inference and in training mode (dropout);
* residual blocks (``Add`` of a tensor and a shape-preserving branch) do the same;
* every invalid stack raises ``ValueError`` or ``TypeError`` whose message names the failing layer
  and the shape it was given, never an IndexError, a NumPy broadcasting error or a crash;
* data of a wrong shape or dtype given to ``predict``/``fit``/``evaluate`` is refused with a message
  naming the expected shape or the dtype; any batch size from 1 to beyond the data trains for the
  expected number of steps.

Examples are derandomized (the same every run) and small, so the file runs in seconds.
"""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinynet
from tinynet import backend, layers
from tinynet.gradcheck import check_model

FUZZ = settings(derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def fuzz(max_examples):
    return settings(FUZZ, max_examples=max_examples)

ACTIVATIONS = [None, "linear", "relu", "tanh", "sigmoid", "softmax"]


pytestmark = pytest.mark.usefixtures("float64")  # conftest.py: float64, then restored


# ---- random layer specifications and the oracle ---------------------------------------------------
pairs = st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3)))
strides = st.one_of(st.integers(1, 2), st.tuples(st.integers(1, 3), st.integers(1, 2)))

SPECS = st.one_of(
    st.builds(lambda u, a: ("Dense", {"units": u, "activation": a}),
              st.integers(1, 4), st.sampled_from(ACTIVATIONS)),
    st.builds(lambda f, k, s, p, a: ("Conv2D", {"filters": f, "kernel_size": k, "strides": s,
                                                "padding": p, "activation": a}),
              st.integers(1, 3), pairs, strides, st.sampled_from(["valid", "same"]),
              st.sampled_from(ACTIVATIONS)),
    st.builds(lambda k, s, p: ("MaxPooling2D", {"pool_size": k, "strides": s, "padding": p}),
              pairs, st.one_of(st.none(), strides), st.sampled_from(["valid", "same"])),
    st.just(("Flatten", {})),
    st.builds(lambda r: ("Dropout", {"rate": r}), st.sampled_from([0.0, 0.3, 0.5])),
    st.builds(lambda a: ("Activation", {"activation": a}), st.sampled_from(ACTIVATIONS[1:])),
)

IMAGE_SHAPES = st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 3))  # (H, W, C)
INPUT_SHAPES = st.sampled_from([3, 1, 3, 2, 3, 1]).flatmap(lambda rank: {   # mostly images
    3: IMAGE_SHAPES,
    1: st.tuples(st.integers(1, 6)),                                      # feature vectors
    2: st.tuples(st.integers(1, 5), st.integers(1, 5))}[rank])           # images without channels


class Invalid(Exception):
    """The oracle's verdict: this layer cannot take an input of this shape."""


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def oracle(shape, kind, kw):
    """(output shape, number of parameters) of layer ``kind(**kw)`` on ``shape``, by Keras's rules."""
    if kind == "Dense":
        if len(shape) != 1:
            raise Invalid
        return (kw["units"],), shape[0] * kw["units"] + kw["units"]
    if kind in ("Conv2D", "MaxPooling2D"):
        if len(shape) != 3:
            raise Invalid
        k = _pair(kw["kernel_size"] if kind == "Conv2D" else kw["pool_size"])
        s = _pair(kw["strides"] if kw["strides"] is not None else k)
        out = []
        for size, window, stride in zip(shape[:2], k, s):
            if kw["padding"] == "valid":
                if window > size:
                    raise Invalid
                out.append((size - window) // stride + 1)
            else:
                out.append(-(-size // stride))
        if kind == "MaxPooling2D":
            return (out[0], out[1], shape[2]), 0
        f = kw["filters"]
        return (out[0], out[1], f), k[0] * k[1] * shape[2] * f + f
    if kind == "Flatten":
        return (int(np.prod(shape)),), 0
    return shape, 0


def walk(shape, specs):
    """Follow ``specs`` from ``shape``: (output shape, params) or (index, input shape) of the
    first invalid layer, as ("ok", shape, params) / ("invalid", index, shape)."""
    params = 0
    for i, (kind, kw) in enumerate(specs):
        try:
            new, p = oracle(shape, kind, kw)
        except Invalid:
            return "invalid", i, shape
        shape, params = new, params + p
    return "ok", shape, params


def make_layers(specs):
    return [getattr(layers, kind)(**kw) for kind, kw in specs]


def fmt(shape):
    return str((None,) + tuple(shape))


def build(how, shape, stack):
    """A model of ``stack`` on inputs of ``shape``, built the way ``how`` says."""
    if how == "sequential":
        return tinynet.Sequential([layers.Input(shape)] + stack)
    if how == "functional":
        inp = layers.Input(shape)
        t = inp
        for layer in stack:
            t = layer(t)
        return tinynet.Model(inp, t)
    model = tinynet.Sequential(stack)  # "deferred": built by its first batch
    model.predict(np.zeros((1,) + shape))
    return model


def randomize_biases(model, rng):
    """Non-zero biases: no pre-activation sits exactly on relu's kink when its input is all zeros."""
    for layer in model.graph.order:
        if getattr(layer, "use_bias", False):
            layer.set_weights([layer.get_weights()[0], rng.normal(0.0, 0.5, layer.bias.shape)])


def on_numpy_backend(fn):
    previous = backend.get_backend()
    backend.set_backend("numpy")
    try:
        return fn()
    finally:
        backend.set_backend(previous)


@st.composite
def layer_for(draw, shape):
    """A random layer spec that can take inputs of ``shape``."""
    kinds = {1: ["Dense", "Dense", "Dense", "Dropout", "Activation"],
             2: ["Flatten", "Dropout", "Activation"],
             3: ["Conv2D", "Conv2D", "Conv2D", "MaxPooling2D", "MaxPooling2D", "Flatten", "Flatten",
                 "Dropout", "Activation"]}[len(shape)]
    kind = draw(st.sampled_from(kinds))
    if kind in ("Conv2D", "MaxPooling2D"):
        padding = draw(st.sampled_from(["valid", "same"]))
        limit = (3, 3) if padding == "same" else (min(3, shape[0]), min(3, shape[1]))
        k = (draw(st.integers(1, limit[0])), draw(st.integers(1, limit[1])))
        k = k[0] if k[0] == k[1] and draw(st.booleans()) else k  # an int or a pair, as in Keras
        s = draw(st.one_of(st.integers(1, 2), st.tuples(st.integers(1, 3), st.integers(1, 2))))
        if kind == "MaxPooling2D":
            return kind, {"pool_size": k, "strides": draw(st.one_of(st.none(), st.just(s))),
                          "padding": padding}
        return kind, {"filters": draw(st.integers(1, 3)), "kernel_size": k, "strides": s,
                      "padding": padding, "activation": draw(st.sampled_from(ACTIVATIONS))}
    if kind == "Dense":
        return kind, {"units": draw(st.integers(1, 4)), "activation": draw(st.sampled_from(ACTIVATIONS))}
    if kind == "Dropout":
        return kind, {"rate": draw(st.sampled_from([0.0, 0.3, 0.5]))}
    if kind == "Activation":
        return kind, {"activation": draw(st.sampled_from(ACTIVATIONS[1:]))}
    return kind, {}


@st.composite
def valid_stacks(draw, max_layers=5):
    """(input shape, specs, output shape, parameter count) of a stack the oracle finds valid."""
    shape = draw(INPUT_SHAPES)
    specs, current = [], shape
    for _ in range(draw(st.integers(1, max_layers))):
        spec = draw(layer_for(current))
        specs.append(spec)
        current = oracle(current, *spec)[0]
    verdict = walk(shape, specs)
    assert verdict[0] == "ok" and verdict[1] == current
    return shape, specs, verdict[1], verdict[2]


@st.composite
def invalid_stacks(draw):
    """(input shape, specs, index of the first invalid layer, the shape it is given)."""
    shape, specs, out, _ = draw(valid_stacks(max_layers=3))
    if draw(st.booleans()):
        specs = []  # the very first layer is the bad one
        out = shape
    if len(out) == 1:
        bad = draw(st.sampled_from([
            ("Conv2D", {"filters": 1, "kernel_size": 1, "strides": 1, "padding": "same",
                        "activation": None}),
            ("MaxPooling2D", {"pool_size": 1, "strides": None, "padding": "valid"})]))
    elif len(out) == 2:
        bad = draw(st.sampled_from([
            ("Dense", {"units": 2, "activation": "relu"}),
            ("Conv2D", {"filters": 1, "kernel_size": 1, "strides": 1, "padding": "valid",
                        "activation": None}),
            ("MaxPooling2D", {"pool_size": 2, "strides": None, "padding": "same"})]))
    else:
        too_big = (out[0] + draw(st.integers(1, 2)), draw(st.integers(1, out[1])))
        if draw(st.booleans()):
            too_big = too_big[::-1]
            too_big = (min(too_big[0], out[0]), out[1] + 1)
        bad = draw(st.sampled_from([
            ("Dense", {"units": 2, "activation": None}),
            ("Conv2D", {"filters": 2, "kernel_size": too_big, "strides": 1, "padding": "valid",
                        "activation": "relu"}),
            ("MaxPooling2D", {"pool_size": too_big, "strides": None, "padding": "valid"})]))
    tail = draw(st.lists(st.sampled_from([("Flatten", {}), ("Dense", {"units": 2, "activation": None})]),
                         max_size=2))
    specs = specs + [bad] + tail
    verdict = walk(shape, specs)
    assert verdict[0] == "invalid" and verdict[1] == len(specs) - len(tail) - 1
    return shape, specs, verdict[1], verdict[2]


# ---- valid stacks ---------------------------------------------------------------------------------
@fuzz(60)
@given(valid_stacks(), st.sampled_from(["sequential", "functional", "deferred"]),
       st.integers(1, 3), st.booleans(), st.integers(0, 2 ** 16))
def test_valid_stacks_build_run_and_pass_gradcheck(stack, how, n, training, seed):
    shape, specs, out_shape, n_params = stack
    backend.set_seed(seed)
    rng = np.random.default_rng(seed)
    model = build(how, shape, make_layers(specs))
    assert model.output_shape == (None,) + tuple(out_shape)
    assert model.count_params() == n_params
    randomize_biases(model, rng)
    x = rng.standard_normal((n,) + shape)

    y = model.predict(x)
    assert y.shape == (n,) + tuple(out_shape) and np.isfinite(y).all()
    np.testing.assert_allclose(on_numpy_backend(lambda: model.predict(x)), y, rtol=1e-9, atol=1e-12)

    G = rng.standard_normal(y.shape)
    model.forward(backend.asarray(x), training=False)
    dx = model.backward(backend.asarray(G))
    assert dx.shape == x.shape
    for p, g in zip(model.params, model.grads):
        assert g is not None and g.shape == p.shape
    grads = [backend.to_numpy(g).copy() for g in model.grads]

    def reference():
        model.forward(backend.asarray(x), training=False)
        return backend.to_numpy(model.backward(backend.asarray(G))), [
            backend.to_numpy(g).copy() for g in model.grads]
    dx_ref, grads_ref = on_numpy_backend(reference)
    np.testing.assert_allclose(backend.to_numpy(dx), dx_ref, rtol=1e-9, atol=1e-12)
    for g, r in zip(grads, grads_ref):
        np.testing.assert_allclose(g, r, rtol=1e-9, atol=1e-12)

    errors = check_model(model, x, entries=3, seed=seed, training=training)
    assert set(errors) == {"input"} | {f"{l.name}/{n}" for l in model.graph.order
                                       for n in l.param_names()}
    assert len(errors) == 1 + len(model.params)
    assert max(errors.values()) < 1e-6, errors


@fuzz(25)
@given(valid_stacks(max_layers=3), st.integers(1, 3), st.integers(0, 2 ** 16), st.booleans())
def test_residual_blocks_pass_gradcheck(stack, n, seed, training):
    # out = Add()([h, branch(h)]): the gradient of h is the sum of its two consumers' gradients
    shape, specs, h_shape, _ = stack
    backend.set_seed(seed)
    rng = np.random.default_rng(seed)
    inp = layers.Input(shape)
    h = inp
    for layer in make_layers(specs):
        h = layer(h)
    if len(h_shape) == 3:
        branch = layers.Conv2D(h_shape[2], 3, padding="same", activation="tanh")(h)
    elif len(h_shape) == 1:
        branch = layers.Dense(h_shape[0], activation="tanh")(h)
    else:
        branch = layers.Activation("sigmoid")(h)
    out = layers.Add()([h, branch])
    model = tinynet.Model(inp, layers.Dense(2, activation="softmax")(layers.Flatten()(out)))
    randomize_biases(model, rng)
    x = rng.standard_normal((n,) + shape)
    model.compile("sgd")
    y = tinynet.utils.to_categorical(rng.integers(0, 2, n), 2)
    errors = check_model(model, x, y, entries=3, seed=seed, training=training)  # via the logits
    assert max(errors.values()) < 1e-6, errors


# ---- invalid stacks -------------------------------------------------------------------------------
@fuzz(80)
@given(invalid_stacks(), st.sampled_from(["sequential", "functional", "deferred"]))
def test_invalid_stacks_raise_errors_naming_the_layer_and_the_shape(stack, how):
    shape, specs, bad, bad_shape = stack
    built = make_layers(specs)
    with pytest.raises((ValueError, TypeError)) as info:
        build(how, shape, built)
    message = str(info.value)
    assert f"'{built[bad].name}'" in message, message
    assert fmt(bad_shape) in message, message


@fuzz(40)
@given(IMAGE_SHAPES, st.lists(SPECS, min_size=1, max_size=4), st.integers(1, 8), st.integers(1, 8))
def test_deferred_build_on_data_the_stack_cannot_take_raises_clearly(shape, specs, h, w):
    # a Sequential without Input is built by its first batch: a batch whose shape no layer can
    # take fails with the layer's message; the model stays unbuilt
    data_shape = (h, w, shape[2])
    verdict = walk(data_shape, specs)
    model = tinynet.Sequential(make_layers(specs))
    x = np.zeros((2,) + data_shape)
    if verdict[0] == "ok":
        assert model.predict(x).shape == (2,) + tuple(verdict[1])
        return
    with pytest.raises((ValueError, TypeError)) as info:
        model.predict(x)
    assert f"'{model.layers[verdict[1]].name}'" in str(info.value)
    assert fmt(verdict[2]) in str(info.value)
    assert not model.built


def test_deferred_build_retried_with_good_data_works():
    model = tinynet.Sequential([layers.Conv2D(2, 1), layers.MaxPooling2D(3), layers.Flatten(),
                                layers.Dense(2)])
    with pytest.raises(ValueError, match="pool"):
        model.predict(np.zeros((2, 2, 2, 1)))  # the pool (3, 3) does not fit (2, 2)
    assert model.predict(np.zeros((2, 8, 8, 1))).shape == (2, 2)


def test_a_failed_add_leaves_the_sequential_model_unchanged():
    model = tinynet.Sequential([layers.Input((4,)), layers.Dense(3, name="hidden")])
    with pytest.raises(ValueError, match="expects images"):
        model.add(layers.Conv2D(2, 1, name="bad"))
    assert [l.name for l in model.layers] == ["hidden"]
    model.add(layers.Dense(2, name="out"))
    assert model.output_shape == (None, 2)
    assert [l.name for l in model.layers] == ["hidden", "out"]


# ---- layer arguments ------------------------------------------------------------------------------
NUMBERS = st.one_of(st.integers(-3, 0), st.floats(allow_nan=True))
SIZES = st.one_of(st.integers(-3, 0), st.tuples(st.integers(-2, 3)),
                  st.tuples(st.integers(-2, 3), st.integers(-2, 3), st.integers(-2, 3)),
                  st.tuples(st.integers(-2, 0), st.integers(1, 3)),
                  st.tuples(st.integers(1, 3), st.integers(-2, 0)))


@fuzz(80)
@given(st.one_of(st.tuples(st.just("Dense"), NUMBERS), st.tuples(st.just("Dropout"), NUMBERS),
                 st.tuples(st.just("Conv2D"), SIZES), st.tuples(st.just("MaxPooling2D"), SIZES)))
def test_bad_numeric_layer_arguments_raise_naming_the_layer(case):
    # (kernel sizes that are not ints or tuples, and rates that are not numbers: see the rows
    # "kernel-size-none" and "dropout-rate-string" of test_bad_input.py)
    kind, value = case
    if kind == "Dropout" and 0.0 <= value < 1.0:
        return  # a valid rate
    if kind == "Dense" and isinstance(value, float) and value.is_integer() and value > 0:
        return
    args = {"Dense": {"units": value}, "Dropout": {"rate": value},
            "Conv2D": {"filters": 2, "kernel_size": value}, "MaxPooling2D": {"pool_size": value}}
    with pytest.raises((ValueError, TypeError)) as info:
        getattr(layers, kind)(name="under_test", **args[kind])
    assert "'under_test'" in str(info.value)


# ---- data -----------------------------------------------------------------------------------------
def _mlp_and_cnn():
    backend.set_seed(0)
    mlp = tinynet.Sequential([layers.Input((4,)), layers.Dense(3, activation="softmax")], name="mlp")
    cnn = tinynet.Sequential([layers.Input((5, 5, 1)), layers.Conv2D(2, 3), layers.Flatten(),
                              layers.Dense(3, activation="softmax")], name="cnn")
    for m in (mlp, cnn):
        m.compile("rmsprop", metrics=["accuracy"])
    return mlp, cnn


@fuzz(80)
@given(st.booleans(), st.lists(st.integers(0, 6), min_size=0, max_size=5),
       st.sampled_from(["predict", "fit", "evaluate"]))
def test_data_of_a_wrong_shape_is_refused_naming_the_expected_shape(use_cnn, dims, method):
    model = _mlp_and_cnn()[use_cnn]
    expected = model.input_shape[1:]
    x = np.ones(tuple(dims))
    if x.ndim >= 1 and x.shape[0] > 0 and x.shape[1:] == expected:
        return
    n = x.shape[0] if x.ndim else 1
    y = tinynet.utils.to_categorical(np.arange(n) % 3, 3)
    call = {"predict": lambda: model.predict(x), "fit": lambda: model.fit(x, y, verbose=0),
            "evaluate": lambda: model.evaluate(x, y)}[method]
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert method in message
    assert fmt(expected) in message or "empty" in message, message


@fuzz(30)
@given(st.sampled_from([object, str, bytes, np.complex64, np.datetime64, np.timedelta64]),
       st.sampled_from(["x", "y"]), st.sampled_from(["fit", "evaluate", "predict"]))
def test_data_of_a_non_numeric_dtype_is_refused_naming_the_dtype(dtype, which, method):
    model = _mlp_and_cnn()[0]
    x = np.zeros((6, 4))
    y = tinynet.utils.to_categorical(np.arange(6) % 3, 3)
    if which == "x":
        x = x.astype(dtype) if dtype is not np.datetime64 else x.astype("datetime64[s]")
    elif method == "predict":
        return
    else:
        y = y.astype(dtype) if dtype is not np.datetime64 else y.astype("datetime64[s]")
    bad = x if which == "x" else y
    call = {"predict": lambda: model.predict(x), "fit": lambda: model.fit(x, y, verbose=0),
            "evaluate": lambda: model.evaluate(x, y)}[method]
    with pytest.raises(TypeError) as info:
        call()
    assert str(bad.dtype) in str(info.value) and which in str(info.value)


@fuzz(40)
@given(st.integers(1, 9), st.integers(1, 12), st.integers(1, 3), st.booleans(),
       st.sampled_from([0.0, 0.3]), st.integers(0, 1000))
def test_fit_with_any_batch_size_takes_the_expected_number_of_steps(n, batch_size, epochs, shuffle,
                                                                    split, seed):
    model = _mlp_and_cnn()[0]
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((n, 4)), tinynet.utils.to_categorical(rng.integers(0, 3, n), 3)
    n_train = int(n * (1 - split)) if split else n
    if split and not 0 < n_train < n:
        with pytest.raises(ValueError, match="validation_split"):
            model.fit(x, y, batch_size=batch_size, epochs=epochs, validation_split=split, verbose=0)
        return
    history = model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=shuffle,
                        validation_split=split, verbose=0, seed=seed)
    assert model.optimizer.iterations == epochs * math.ceil(n_train / batch_size)
    assert history.epoch == list(range(epochs))
    assert all(np.isfinite(v) for v in history.history["loss"])
    assert ("val_loss" in history.history) == bool(split)
