"""Bad input: every kind tried, and the error tinynet gives for it.

Each row of this table is a test case: ``test_bad_input[<case>]`` makes the call described and
checks that it raises exactly the exception named (the exact class: ``NotCompiledError`` is also a
``RuntimeError`` and a ``ValueError``, ``NonFiniteLossError`` a ``FloatingPointError``), with a
message containing the excerpt. Rows whose exception is ``works`` are inputs tinynet accepts on
purpose, like Keras; their test checks the result described. The models are ``mlp`` (input
``(4,)``, layers ``hidden`` and ``probs``: 3 classes) and ``cnn`` (input ``(28, 28, 1)``); ``x``
and ``y`` have 10 examples.
Files that are not loadable models (``ModelFileError``) are tried in ``test_checkpoints.py``;
random layer stacks and data shapes in ``test_fuzz.py``.

| case | bad input | exception | message excerpt (or what happens) |
|------|-----------|-----------|-----------------------------------|
| x-object | `fit` with x of dtype object | TypeError | `fit: x has dtype object, which cannot be used as numbers` |
| x-strings | `fit` with x an array of strings | TypeError | `fit: x has dtype <U` |
| x-complex | `predict` with x of dtype complex128 | TypeError | `predict: x has dtype complex128` |
| x-none | `predict(None)` | TypeError | `predict: x must be an array, got NoneType` |
| y-object | `fit` with y of dtype object | TypeError | `fit: y has dtype object, which cannot be used as numbers` |
| y-strings | `fit` with y an array of class names | TypeError | `fit: y has dtype <U` |
| x-uint8 | images as uint8 0..255 | works | cast to float32 like Keras: same outputs as `x.astype("float32")` |
| x-int64 | x of dtype int64 | works | cast to float32: same outputs as `x.astype("float32")` |
| x-float16 | x of dtype float16 | works | cast to float32: same outputs, float32 result |
| x-float64 | x of dtype float64 while floatx is float32 | works | cast to float32: float32 result |
| x-bool | x of dtype bool | works | cast to 0.0 / 1.0 |
| x-nested-list | x as a list of lists | works | same outputs as the array |
| y-uint8 | one-hot y of dtype uint8 | works | same training as float32 labels |
| y-soft | probability rows (label smoothing) as y | works | trains; the loss is the soft cross-entropy |
| x-nan | `fit` with a NaN in x | ValueError | `fit: x contains NaN or infinite values` |
| x-inf | `predict` with an inf in x | ValueError | `predict: x contains NaN or infinite values` |
| y-nan | `fit` with a NaN in y | ValueError | `fit: y contains NaN or infinite values` |
| val-x-nan | a NaN in `validation_data`'s x | ValueError | `fit (validation_data): x contains NaN or infinite values` |
| x-empty | `fit` with x and y of 0 examples | ValueError | `fit: x is empty (shape (0, 4))` |
| predict-empty | `predict` with x of 0 examples | ValueError | `predict: x is empty (shape (0, 4))` |
| y-empty | `fit` with 10 examples in x, 0 in y | ValueError | `fit: x has 10 examples but y has 0` |
| batch-size-0 | `fit(batch_size=0)` | ValueError | `batch_size must be a positive integer, got 0` |
| batch-size-negative | `predict(batch_size=-1)` | ValueError | `batch_size must be a positive integer, got -1` |
| batch-size-float | `evaluate(batch_size=2.5)` | ValueError | `batch_size must be a positive integer, got 2.5` |
| batch-size-none | `fit(batch_size=None)` | works | Keras's default: batches of 32 |
| batch-size-numpy | `fit(batch_size=np.int64(4))` | works | batches of 4 |
| batch-size-huge | `fit(batch_size=1000)` on 10 examples | works | one batch per epoch, the loss of `train_on_batch(x, y)` |
| xy-lengths | `fit` with 10 examples in x, 9 in y | ValueError | `fit: x has 10 examples but y has 9` |
| evaluate-lengths | `evaluate` with 10 examples in x, 12 in y | ValueError | `evaluate: x has 10 examples but y has 12` |
| val-lengths | `validation_data` with 10 x and 3 y | ValueError | `fit (validation_data): x has 10 examples but y has 3` |
| val-not-a-pair | `validation_data=x_val` (no labels) | ValueError | `validation_data must be (x_val, y_val) or (x_val, y_val, sample_weight_val)` |
| images-no-channel | images (N, 28, 28) where (N, 28, 28, 1) is expected | works | the channel axis added, as Keras 3 does: same outputs as `x[..., None]` |
| images-flat | images flattened to (N, 784) | ValueError | `got (None, 784); reshape it with x.reshape((-1, 28, 28, 1))` |
| images-channels-first | images (N, 3, 8, 8) where (N, 8, 8, 3) is expected | ValueError | `channels-first? use x.transpose(0, 2, 3, 1)` |
| wrong-features | x with 5 features for an input of 4 | ValueError | `predict: model 'mlp' expects input of shape (None, 4), got (None, 5)` |
| integer-labels | y as integer class labels (10,) | ValueError | `y holds integer labels of shape (10,) but categorical_crossentropy needs one-hot labels of shape (None, 3); use tinynet.utils.to_categorical(y, 3)` |
| wrong-classes | one-hot y of 10 classes for 3 outputs | ValueError | `fit: y has shape (None, 10) but the model's output 'probs' is (None, 3)` |
| not-one-hot | y with a 2 in it | ValueError | `y must be one-hot (or probability) rows: values in [0, 1] summing to 1 per example` |
| negative-labels | y with a -1 in it | ValueError | `y must be one-hot (or probability) rows` |
| labels-column | integer labels as a column (10, 1) | ValueError | `categorical_crossentropy needs one-hot labels of shape (None, 3); use tinynet.utils.to_categorical(y, 3), or loss='sparse_categorical_crossentropy'` |
| fit-uncompiled | `fit` before `compile` | NotCompiledError | `fit: model 'mlp' is not compiled; call model.compile(optimizer, loss, metrics) first` |
| evaluate-uncompiled | `evaluate` before `compile` | NotCompiledError | `evaluate: model 'mlp' is not compiled; call model.compile(optimizer, loss, metrics) first` |
| train-on-batch-uncompiled | `train_on_batch` before `compile` | NotCompiledError | `train_on_batch: model 'mlp' is not compiled; call model.compile(optimizer, loss, metrics) first` |
| predict-uncompiled | `predict` before `compile` | works | as in Keras: outputs of shape (10, 3) |
| unknown-activation | `Dense(8, activation="rleu", name="hidden")` | ValueError | `activation 'rleu' in layer 'hidden' is unknown; tinynet's: linear, relu, sigmoid, tanh, softmax` |
| unknown-activation-layer | `Activation("softplus")` | ValueError | `is a Keras activation that tinynet does not implement; tinynet's: linear, relu` |
| unknown-loss | `compile(loss="huber")` | ValueError | `loss 'huber' is a Keras loss that tinynet does not implement; tinynet has categorical_crossentropy` |
| unknown-optimizer | `compile("adamw")` | ValueError | `optimizer 'adamw' is a Keras optimizer that tinynet does not implement; tinynet has Adam, RMSprop, SGD` |
| unknown-metric | `compile(metrics=["acuracy"])` | ValueError | `metric 'acuracy' is unknown; tinynet computes the accuracy, under Keras's names: accuracy, acc` |
| metrics-string | `compile(metrics="accuracy")` (not a list) | ValueError | `metrics must be a list` |
| dense-on-images | `Dense` right after `Input((28, 28, 1))` | ValueError | `Dense layer 'head' expects input of shape (None, features), got (None, 28, 28, 1). Put a Flatten() layer before it.` |
| conv-on-vectors | `Conv2D` after `Input((4,))` | ValueError | `Conv2D layer 'conv' expects images (None, height, width, channels), got (None, 4)` |
| kernel-too-big | `Conv2D(2, 5)` on (3, 3, 1) images, padding "valid" | ValueError | `Conv2D layer 'conv': kernel (5, 5) is larger than its input (None, 3, 3, 1)` |
| pool-too-big | `MaxPooling2D(4)` on (3, 3, 2) | ValueError | `MaxPooling2D layer 'pool': pool (4, 4) is larger than its input (None, 3, 3, 2)` |
| add-shapes | `Add()` of (None, 4) and (None, 3) | ValueError | `Add layer 'sum' needs inputs of one shape, got (None, 4), (None, 3)` |
| add-one-input | `Add()` of a single tensor | ValueError | `Add layer 'sum' needs a list of at least two inputs` |
| units-zero | `Dense(0)` | ValueError | `Dense 'hidden': units must be a positive integer, got 0` |
| kernel-size-triple | `Conv2D(2, (3, 3, 3))` | ValueError | `layer 'conv': kernel_size must be a positive int or a pair of them, got (3, 3, 3)` |
| kernel-size-none | `Conv2D(2, None)` | ValueError | `layer 'conv': kernel_size must be a positive int or a pair of them, got None` |
| padding-unknown | `Conv2D(2, 3, padding="full")` | ValueError | `layer 'conv': padding must be 'valid' or 'same', got 'full'` |
| dropout-rate-1 | `Dropout(1.0)` | ValueError | `Dropout 'drop': rate must be in [0, 1), got 1.0` |
| dropout-rate-string | `Dropout("half")` | ValueError | `Dropout 'drop': rate must be in [0, 1), got 'half'` |
| input-shape-zero | `Input((0, 3))` | ValueError | `Input shape must be a tuple of positive integers (without the batch axis), got (0, 3)` |
| input-shape-none | `Input((None, None, 1))` (Keras: any image size) | ValueError | `Input shape (None, None, 1): a size known only at run time (None) is not implemented in tinynet` |
| input-shape-arg-none | `Dense(3, input_shape=(None, 4))` (the batch axis given) | ValueError | `Dense 'dense': input_shape=(None, 4): input_shape leaves the batch axis out, and a size known only at run time (None) is not implemented` |
| two-inputs | `Model([Input, Input], ...)` | ValueError | `tinynet models take exactly one input tensor` |
| layer-reused | one `Dense` called on two tensors | ValueError | `layer 'hidden' is already used in a graph; tinynet does not share layers` |
| nan-loss | the loss overflows to NaN at the 3rd batch | NonFiniteLossError | `the loss is NaN or infinite at epoch 1, batch 3 of 4; training stopped and the weights are those before this batch` |
| split-out-of-range | `validation_split=1.5` | ValueError | `validation_split must be in (0, 1), got 1.5` |
| split-leaves-nothing | `validation_split=0.5` of 1 example | ValueError | `validation_split=0.5 leaves no training or no validation example out of 1` |
| callback-not-callback | `callbacks=[print]` | TypeError | `callbacks must be tinynet.callbacks.Callback objects` |
| epochs-0 | `fit(epochs=0)` | works | as in Keras: no step, an empty history |
| x-non-contiguous | x a strided view `big[:, ::2]` | works | same outputs and training as a contiguous copy |
| x-fortran | x in Fortran order | works | same outputs and training as a C-ordered copy |
| x-read-only | x and y read-only (`flags.writeable = False`) | works | fit, evaluate and predict run; x and y are unchanged |
| x-unchanged | a float32 x that fit could use without copying | works | fit, evaluate and predict leave x and y as they were |
| backend-int | `backend.set_backend(1)` | TypeError | `set_backend: the backend is given by its name, one of 'numpy', 'numba', 'cupy' or 'auto', got 1 (int)` |
| floatx-float | `backend.set_floatx("float")` (Keras refuses it) | ValueError | `floatx must be 'float32' or 'float64', got 'float' (write the name in full` |
| floatx-double | `backend.set_floatx("double")` (Keras refuses it) | ValueError | `floatx must be 'float32' or 'float64', got 'double' (write the name in full` |
| floatx-bfloat16 | `backend.set_floatx("bfloat16")` (a Keras floatx) | ValueError | `got 'bfloat16' (bfloat16 is one of Keras's floatx; tinynet does not compute in it` |
| floatx-python-float | `backend.set_floatx(float)` | TypeError | `set_floatx: the float type is given by its name, 'float32' or 'float64', got <class 'float'>` |
| floatx-numpy-type | `backend.set_floatx(np.float64)` | works | floatx is 'float64' (NumPy's type names it exactly) |
| sample-weight-negative | `fit` with sample_weight holding a -1 | ValueError | `fit: sample_weight must be finite and non-negative (a weight multiplies an example's loss); example 3 has -1` |
| x-pair | `fit((x, y))`: Keras's dataset form as x | ValueError | `fit: x looks like an (inputs, targets) pair; give them as two arguments: model.fit(x, y)` |
| x-batches | `fit` with x a list of (x, y) batches | ValueError | `fit: x looks like a list of (inputs, targets) batches; tinynet takes the data as arrays` |
| image-alone | `predict` of one (28, 28) image for the CNN | ValueError | `this is a single image without its batch and channel axes: use x[None, ..., None]` |
| image-flat | `predict` of one image flattened to (784,) for the CNN | ValueError | `if this is a single example of 784 values, use x.reshape((1, 28, 28, 1))` |
| x-dict-other-name | `fit({"pixels": x}, y)`, the input named otherwise | ValueError | `fit: x is a dict of keys ['pixels']; tinynet models have one input, here named` |
| y-dict-other-name | `evaluate(x, {"out": y})`, the output named `probs` | ValueError | `evaluate: y is a dict of keys ['out']; tinynet models have one output, here named 'probs': give the array itself or {'probs': array}` |
| shuffle-word | `fit(shuffle="yes")` | ValueError | `fit: shuffle='yes'; give True, False or 'batch'` |
| keras-one-output-forms | `fit([x], [y])`, `fit({input name: x}, {"probs": y})` (Keras's forms for one input and output) | works | the same training as `fit(x, y)` |
"""
import builtins

import numpy as np
import pytest

import tinynet
import tinynet.io
import tinynet.model
from tinynet import backend, layers, optimizers
from tinynet.callbacks import Callback

def parse_table(doc):
    """The rows of the docstring's table: {case: (exception name, excerpt)}."""
    rows = {}
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if not line.startswith("| ") or len(cells) != 4 or cells[0] in ("case", "------"):
            continue
        case, _, exception, excerpt = cells
        if excerpt.startswith("`") and excerpt.endswith("`"):
            excerpt = excerpt[1:-1]
        assert case not in rows, f"case {case} twice in the table"
        rows[case] = (exception, excerpt)
    return rows


ROWS = parse_table(__doc__)


@pytest.fixture(autouse=True)
def restore_backend():
    old, old_rng = backend.floatx(), backend.rng()
    backend.set_floatx("float32")
    backend.set_seed(0)
    try:
        yield
    finally:
        backend.set_floatx(old)
        backend._rng = old_rng


def data(n=10, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    return x, tinynet.utils.to_categorical(np.arange(n) % 3, 3)


def images(n=10, shape=(28, 28, 1), seed=0):
    return np.random.default_rng(seed).random((n,) + shape).astype(np.float32)


def mlp(compiled=True):
    model = tinynet.Sequential([layers.Input((4,)), layers.Dense(8, "relu", name="hidden"),
                                layers.Dense(3, "softmax", name="probs")], name="mlp")
    if compiled:
        model.compile(optimizers.RMSprop(0.01), metrics=["accuracy"])
    return model


def cnn():
    model = tinynet.Sequential([layers.Input((28, 28, 1)), layers.Conv2D(2, 3, strides=3, name="conv"),
                                layers.Flatten(), layers.Dense(3, "softmax", name="out")], name="cnn")
    model.compile(optimizers.RMSprop(0.01))
    return model


def fit(model, x, y, **kw):
    kw = {"epochs": 1, "verbose": 0, "shuffle": False, **kw}
    return model.fit(x, y, **kw)


def same_training(x_a, x_b, y_a=None, y_b=None):
    """Two identical models trained on x_a and x_b end with the same weights and history."""
    y = data()[1]
    y_a = y if y_a is None else y_a
    y_b = y if y_b is None else y_b
    runs = []
    for xx, yy in ((x_a, y_a), (x_b, y_b)):
        backend.set_seed(0)
        model = mlp()
        h = fit(model, xx, yy, batch_size=4, epochs=2)
        runs.append((model.get_weights(), h.history["loss"]))
    for wa, wb in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(wa, wb)
    assert runs[0][1] == runs[1][1]


def same_outputs(x_variant, x_reference):
    backend.set_seed(0)
    model = mlp()
    out = model.predict(x_variant)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, model.predict(x_reference))


# ---- the cases, one function per row ------------------------------------------------------------
def _keras_one_output_forms():
    same_training(X, [X], Y, [Y])
    runs = []
    for keyed in (False, True):
        backend.set_seed(0)
        x = layers.Input((4,), name="pixels")
        model = tinynet.Model(x, layers.Dense(3, "softmax", name="probs")(x))
        model.compile(optimizers.RMSprop(0.01))
        assert (model.inputs[0].name, model.output_names) == ("pixels", ["probs"])
        h = fit(model, {"pixels": X} if keyed else X, {"probs": Y} if keyed else Y, batch_size=4)
        runs.append((model.get_weights()[0], h.history["loss"]))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]


def _nan_loss():
    # float32 weights of 0.5: an example of 3e38 everywhere gives logits of inf, and a NaN loss
    model = tinynet.Sequential([layers.Input((4,)), layers.Dense(2, "softmax", name="probs")])
    model.compile(optimizers.SGD(0.01))
    model.set_weights([np.full((4, 2), 0.5, np.float32), np.zeros(2, np.float32)])
    x = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32)
    x[4:6] = 3e38
    fit(model, x, tinynet.utils.to_categorical(np.arange(8) % 2, 2), batch_size=2)


def _read_only():
    x, y = data()
    x0, y0 = x.copy(), y.copy()
    x.flags.writeable = False
    y.flags.writeable = False
    model = mlp()
    fit(model, x, y, batch_size=4, validation_data=(x, y))
    model.evaluate(x, y)
    model.predict(x)
    model.train_on_batch(x, y)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)
    same_training(x, x0)


def _unchanged():
    x, y = data()
    x0, y0 = x.copy(), y.copy()
    model = mlp()
    fit(model, x, y, batch_size=3, epochs=2, validation_data=(x, y))
    model.evaluate(x, y)
    model.predict(x)
    model.train_on_batch(x, y)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)


def _batch_size_huge():
    x, y = data()
    model = mlp()
    reference = mlp()
    reference.set_weights(model.get_weights())
    h = fit(model, x, y, batch_size=1000, epochs=2)
    assert model.optimizer.iterations == 2
    first = reference.train_on_batch(x, y)
    assert h.history["loss"][0] == pytest.approx(first[0], rel=1e-6)


def _batch_size_none():
    x, y = data(40)
    model = mlp()
    fit(model, x, y, batch_size=None)
    assert model.optimizer.iterations == 2  # 40 examples in batches of 32


def _batch_size_numpy():
    x, y = data()
    model = mlp()
    fit(model, x, y, batch_size=np.int64(4))
    assert model.optimizer.iterations == 3


def _epochs_0():
    x, y = data()
    model = mlp()
    before = model.get_weights()
    h = fit(model, x, y, epochs=0)
    assert h.history == {} and model.optimizer.iterations == 0
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def _soft_labels():
    x, y = data()
    soft = y * 0.9 + 0.1 / 3
    model = mlp()
    expected = model.evaluate(x, soft)[0]
    p = model.predict(x).astype(np.float64)
    assert expected == pytest.approx(float(-(soft * np.log(p)).sum(axis=1).mean()), rel=1e-5)
    h = fit(model, x, soft)
    assert np.isfinite(h.history["loss"][0])


def _predict_uncompiled():
    out = mlp(compiled=False).predict(data()[0])
    assert out.shape == (10, 3)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-6)


def _bool():
    x = data()[0] > 0
    same_outputs(x, x.astype(np.float32))


def _images_no_channel():
    runs = []
    for x in (images()[..., 0], images()):
        backend.set_seed(0)
        model = cnn()
        loss = model.fit(x, Y, batch_size=4, epochs=2, shuffle=False, verbose=0).history["loss"]
        runs.append((loss, model.predict(x), model.get_weights()))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1:], runs[1][1:]):
        np.testing.assert_equal(a, b)


def _x_float64():
    x = data()[0].astype(np.float64)
    same_outputs(x, x.astype(np.float32))
    same_training(x, x.astype(np.float32))


def _non_contiguous():
    big = np.repeat(data()[0], 2, axis=1)
    view = big[:, ::2]
    assert not view.flags.c_contiguous
    same_outputs(view, np.ascontiguousarray(view))
    same_training(view, np.ascontiguousarray(view))
    backend.set_seed(0)
    c = cnn()
    imgs = images(10, (28, 56, 1))[:, :, ::2]
    np.testing.assert_array_equal(c.predict(imgs), c.predict(np.ascontiguousarray(imgs)))


def _fortran():
    x = np.asfortranarray(data()[0])
    assert not x.flags.c_contiguous
    same_outputs(x, np.ascontiguousarray(x))
    same_training(x, np.ascontiguousarray(x))
    backend.set_seed(0)
    c = cnn()
    imgs = np.asfortranarray(images())
    np.testing.assert_array_equal(c.predict(imgs), c.predict(np.ascontiguousarray(imgs)))


def _y_uint8():
    y = data()[1]
    same_training(data()[0], data()[0], y.astype(np.uint8), y)


def _two_inputs():
    a, b = layers.Input((4,)), layers.Input((4,))
    tinynet.Model([a, b], layers.Dense(2)(a))


def _layer_reused():
    dense = layers.Dense(3, name="hidden")
    dense(layers.Input((4,)))
    dense(layers.Input((4,)))


def _x_with(value, at=(3, 2)):
    x = data()[0]
    x[at] = value
    return x


def _y_with(value):
    y = data()[1]
    y[2, 0] = value
    return y


def _floatx_kept(dtype):
    """``set_floatx(dtype)``, which must raise and leave floatx as it was."""
    try:
        backend.set_floatx(dtype)
    finally:
        assert backend.floatx() == "float32"


def _floatx_numpy_type():
    backend.set_floatx(np.float64)
    assert backend.floatx() == "float64"
    dense = layers.Dense(2)
    dense.build((3,))
    assert dense.kernel.dtype == np.float64


X, Y = data()

CASES = {
    "x-object": lambda: fit(mlp(), X.astype(object), Y),
    "x-strings": lambda: fit(mlp(), X.astype(str), Y),
    "x-complex": lambda: mlp().predict(X.astype(np.complex128)),
    "x-none": lambda: mlp().predict(None),
    "y-object": lambda: fit(mlp(), X, Y.astype(object)),
    "y-strings": lambda: fit(mlp(), X, np.array(["cat", "dog", "fish"])[np.arange(10) % 3]),
    "x-uint8": lambda: same_outputs((X * 40 + 128).clip(0, 255).astype(np.uint8),
                                    (X * 40 + 128).clip(0, 255).astype(np.uint8).astype(np.float32)),
    "x-int64": lambda: same_outputs((X * 10).astype(np.int64), (X * 10).astype(np.int64).astype(np.float32)),
    "x-float16": lambda: same_outputs(X.astype(np.float16), X.astype(np.float16).astype(np.float32)),
    "x-float64": _x_float64,
    "x-bool": _bool,
    "x-nested-list": lambda: same_outputs(X.tolist(), X),
    "y-uint8": _y_uint8,
    "y-soft": _soft_labels,
    "x-nan": lambda: fit(mlp(), _x_with(np.nan), Y),
    "x-inf": lambda: mlp().predict(_x_with(np.inf)),
    "y-nan": lambda: fit(mlp(), X, _y_with(np.nan)),
    "val-x-nan": lambda: fit(mlp(), X, Y, validation_data=(_x_with(-np.inf), Y)),
    "x-empty": lambda: fit(mlp(), X[:0], Y[:0]),
    "predict-empty": lambda: mlp().predict(X[:0]),
    "y-empty": lambda: fit(mlp(), X, Y[:0]),
    "batch-size-0": lambda: fit(mlp(), X, Y, batch_size=0),
    "batch-size-negative": lambda: mlp().predict(X, batch_size=-1),
    "batch-size-float": lambda: mlp().evaluate(X, Y, batch_size=2.5),
    "batch-size-none": _batch_size_none,
    "batch-size-numpy": _batch_size_numpy,
    "batch-size-huge": _batch_size_huge,
    "xy-lengths": lambda: fit(mlp(), X, Y[:9]),
    "evaluate-lengths": lambda: mlp().evaluate(X, np.concatenate([Y, Y[:2]])),
    "val-lengths": lambda: fit(mlp(), X, Y, validation_data=(X, Y[:3])),
    "val-not-a-pair": lambda: fit(mlp(), X, Y, validation_data=X),
    "images-no-channel": lambda: _images_no_channel(),
    "images-flat": lambda: cnn().predict(images().reshape(10, 784)),
    "images-channels-first": lambda: tinynet.Sequential(
        [layers.Input((8, 8, 3)), layers.Flatten(), layers.Dense(2)]).predict(
            images(2, (3, 8, 8))),
    "wrong-features": lambda: mlp().predict(np.zeros((10, 5), np.float32)),
    "integer-labels": lambda: fit(mlp(), X, np.arange(10) % 3),
    "wrong-classes": lambda: fit(mlp(), X, tinynet.utils.to_categorical(np.arange(10), 10)),
    "not-one-hot": lambda: fit(mlp(), X, _y_with(2.0)),
    "negative-labels": lambda: fit(mlp(), X, _y_with(-1.0)),
    "labels-column": lambda: fit(mlp(), X, (np.arange(10) % 3)[:, None]),
    "fit-uncompiled": lambda: fit(mlp(compiled=False), X, Y),
    "evaluate-uncompiled": lambda: mlp(compiled=False).evaluate(X, Y),
    "train-on-batch-uncompiled": lambda: mlp(compiled=False).train_on_batch(X, Y),
    "predict-uncompiled": _predict_uncompiled,
    "unknown-activation": lambda: layers.Dense(8, activation="rleu", name="hidden"),
    "unknown-activation-layer": lambda: layers.Activation("softplus"),
    "unknown-loss": lambda: mlp(compiled=False).compile(loss="huber"),
    "unknown-optimizer": lambda: mlp(compiled=False).compile("adamw"),
    "unknown-metric": lambda: mlp(compiled=False).compile(metrics=["acuracy"]),
    "metrics-string": lambda: mlp(compiled=False).compile(metrics="accuracy"),
    "dense-on-images": lambda: tinynet.Sequential([layers.Input((28, 28, 1)),
                                                   layers.Dense(3, name="head")]),
    "conv-on-vectors": lambda: tinynet.Sequential([layers.Input((4,)), layers.Conv2D(2, 3, name="conv")]),
    "kernel-too-big": lambda: tinynet.Sequential([layers.Input((3, 3, 1)), layers.Conv2D(2, 5, name="conv")]),
    "pool-too-big": lambda: tinynet.Sequential([layers.Input((3, 3, 2)), layers.MaxPooling2D(4, name="pool")]),
    "add-shapes": lambda: layers.Add(name="sum")([layers.Input((4,)), layers.Input((3,))]),
    "add-one-input": lambda: layers.Add(name="sum")([layers.Input((4,))]),
    "units-zero": lambda: layers.Dense(0, name="hidden"),
    "kernel-size-triple": lambda: layers.Conv2D(2, (3, 3, 3), name="conv"),
    "kernel-size-none": lambda: layers.Conv2D(2, None, name="conv"),
    "padding-unknown": lambda: layers.Conv2D(2, 3, padding="full", name="conv"),
    "dropout-rate-1": lambda: layers.Dropout(1.0, name="drop"),
    "dropout-rate-string": lambda: layers.Dropout("half", name="drop"),
    "input-shape-zero": lambda: layers.Input((0, 3)),
    "input-shape-none": lambda: layers.Input((None, None, 1)),
    "input-shape-arg-none": lambda: layers.Dense(3, input_shape=(None, 4), name="dense"),
    "two-inputs": _two_inputs,
    "layer-reused": _layer_reused,
    "nan-loss": _nan_loss,
    "split-out-of-range": lambda: fit(mlp(), X, Y, validation_split=1.5),
    "split-leaves-nothing": lambda: fit(mlp(), X[:1], Y[:1], validation_split=0.5),
    "callback-not-callback": lambda: fit(mlp(), X, Y, callbacks=[print]),
    "epochs-0": _epochs_0,
    "x-non-contiguous": _non_contiguous,
    "x-fortran": _fortran,
    "x-read-only": _read_only,
    "x-unchanged": _unchanged,
    "backend-int": lambda: backend.set_backend(1),
    "floatx-float": lambda: _floatx_kept("float"),
    "floatx-double": lambda: _floatx_kept("double"),
    "floatx-bfloat16": lambda: _floatx_kept("bfloat16"),
    "floatx-python-float": lambda: _floatx_kept(float),
    "floatx-numpy-type": _floatx_numpy_type,
    "sample-weight-negative": lambda: fit(mlp(), X, Y, sample_weight=np.r_[1, 1, 1, -1, np.ones(6)]),
    "x-pair": lambda: fit(mlp(), (X, Y), None),
    "x-batches": lambda: fit(mlp(), [(X[:5], Y[:5]), (X[5:], Y[5:])], None),
    "image-alone": lambda: cnn().predict(images(1)[0, :, :, 0]),
    "image-flat": lambda: cnn().predict(images(1).reshape(-1)),
    "x-dict-other-name": lambda: fit(mlp(), {"pixels": X}, Y),
    "y-dict-other-name": lambda: mlp().evaluate(X, {"out": Y}, verbose=0),
    "shuffle-word": lambda: fit(mlp(), X, Y, shuffle="yes"),
    "keras-one-output-forms": _keras_one_output_forms,
}


def exception_class(name):
    """The exception class named in the table: a builtin or one of tinynet's."""
    for where in (builtins, tinynet, tinynet.model, tinynet.io):
        if isinstance(getattr(where, name, None), type):
            return getattr(where, name)
    raise LookupError(f"no exception class {name!r}")


def test_the_table_and_the_cases_agree():
    assert list(ROWS) == list(CASES)
    for case, (exception, _) in ROWS.items():
        assert exception == "works" or issubclass(exception_class(exception), Exception), case


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("case", list(ROWS))
def test_bad_input(case):
    exception, excerpt = ROWS[case]
    if exception == "works":
        CASES[case]()
        return
    with pytest.raises(Exception) as info:
        CASES[case]()
    assert type(info.value) is exception_class(exception), repr(info.value)
    assert excerpt in str(info.value)


# ---- the NaN loss, in detail ----------------------------------------------------------------------
class Snapshots(Callback):
    def __init__(self):
        self.weights, self.slots = [], []

    def on_batch_end(self, batch, logs=None):
        self.weights.append(self.model.get_weights())
        state = self.model.optimizer.get_state(self.model.params)
        self.slots.append([[None if a is None else a.copy() for a in s] for s in state["slots"]])


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered:RuntimeWarning")
def test_nan_loss_keeps_the_weights_and_optimizer_state_before_the_bad_step():
    model = tinynet.Sequential([layers.Input((4,)), layers.Dense(2, "softmax")])
    model.compile(optimizers.RMSprop(0.01, momentum=0.5, centered=True))
    model.set_weights([np.full((4, 2), 0.5, np.float32), np.zeros(2, np.float32)])
    x = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32)
    x[4:6] = 3e38  # the third batch of two
    y = tinynet.utils.to_categorical(np.arange(8) % 2, 2)
    snaps = Snapshots()
    # resuming at epoch index 1: the message counts epochs from 1 like the progress bar
    with pytest.raises(tinynet.NonFiniteLossError, match="at epoch 2, batch 3 of 4"):
        model.fit(x, y, batch_size=2, epochs=3, verbose=0, shuffle=False, callbacks=[snaps],
                  initial_epoch=1)
    assert len(snaps.weights) == 2
    assert model.optimizer.iterations == 2
    for a, b in zip(model.get_weights(), snaps.weights[-1]):
        np.testing.assert_array_equal(a, b)
    after = model.optimizer.get_state(model.params)["slots"]
    for s, t in zip(after, snaps.slots[-1]):
        for u, v in zip(s, t):
            np.testing.assert_array_equal(u, v)
    assert model.epoch == 1  # the epoch before initial_epoch is done, the one that failed not


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered:RuntimeWarning")
def test_nan_loss_never_leaves_non_finite_weights():
    model = tinynet.Sequential([layers.Input((4,)), layers.Dense(2, "softmax")])
    model.compile(optimizers.SGD(learning_rate=3e38))
    initial = model.get_weights()
    x = np.full((8, 4), 10.0, np.float32)
    with pytest.raises(tinynet.NonFiniteLossError, match="batch 1 of 4"):
        model.fit(x, tinynet.utils.to_categorical(np.arange(8) % 2, 2), batch_size=2, verbose=0,
                  shuffle=False)
    assert all(np.isfinite(w).all() for w in model.get_weights())
    for a, b in zip(model.get_weights(), initial):
        np.testing.assert_array_equal(a, b)



def test_unscaled_validation_inputs_are_named_and_not_told_to_add_rescaling():
    pixels = (X * 40 + 128).clip(0, 255).round().astype(np.uint8)
    with pytest.warns(UserWarning) as caught:
        fit(mlp(), pixels / 255.0, Y, validation_data=(pixels, Y))
    said = " ".join(str(w.message) for w in caught)
    assert "the validation_data inputs look like 0-255 pixel values" in said
    assert "x_val / 255.0" in said and "Rescaling" not in said


def test_the_single_example_hint_is_given_to_one_example_only():
    # two examples of 3 features for a model of 6: not "a single example of 6 values" (a review)
    model = tinynet.Sequential([layers.Input((6,)), layers.Dense(2)])
    with pytest.raises(ValueError) as info:
        model.predict(np.ones((2, 3)))
    assert "expects input of shape (None, 6), got (None, 3)" in str(info.value)
    assert "single example" not in str(info.value)
    # one 28 x 28 image given to an MLP of 784 inputs gets it
    mlp = tinynet.Sequential([layers.Input((784,)), layers.Dense(2)])
    with pytest.raises(ValueError, match=r"if this is a single example of 784 values, use "
                                         r"x.reshape\(\(1, 784\)\)"):
        mlp.predict(np.ones((28, 28)))
