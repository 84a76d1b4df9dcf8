"""tinynet <-> Keras model conversion (``tinynet.interop``) on the report's four models.

Needs TensorFlow/Keras 3 (``pip install -e ".[keras]"``); skipped without it. Run with::

    pip install -e ".[keras]" && TINYNET_DATA=../shared/data pytest tests/test_interop.py

Both ways (a tinynet model copied to Keras, a Keras model built and initialised by Keras copied to
tinynet) the two models must have the same name, layer names, weight shapes and parameter count,
bit-identical weights, and predictions that agree to 1e-5 in float32 (1e-12 in float64) on MNIST
test images (random images when the data is absent).
"""
import os
import sys
import types

import numpy as np
import pytest

tf = pytest.importorskip(
    "tensorflow",
    reason="tinynet.interop tests need TensorFlow/Keras 3: pip install -e \".[keras]\"")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402
from keras import layers as kl  # noqa: E402

from tinynet import backend, layers, report_models  # noqa: E402
from tinynet.features import hog_features  # noqa: E402
from tinynet.interop import InteropError, from_keras, to_keras  # noqa: E402

from conftest import DATA_DIR  # noqa: E402

MODELS = ["mlp_raw", "mlp_features", "cnn_digits", "cnn_fashion_3"]
RTOL32, ATOL32 = 1e-5, 1e-5
TOL64 = 1e-12


# ---- the report's models built natively in Keras, initialised by Keras ----------------------------
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "keras_reference"))
from keras_models import KERAS_BUILDERS  # noqa: E402


# ---- data ---------------------------------------------------------------------------------------
_IMAGES = {}


def images():
    """256 MNIST test images as uint8 (N, 28, 28), or random ones when the data is absent."""
    if "x" not in _IMAGES:
        if (DATA_DIR / "mnist").is_dir():
            from tinynet.datasets import load_mnist
            _, (x_test, _) = load_mnist(DATA_DIR, download=False)
            _IMAGES["x"] = x_test[:256]
        else:
            _IMAGES["x"] = np.random.default_rng(0).integers(0, 256, (256, 28, 28), dtype=np.uint8)
    return _IMAGES["x"]


def inputs_for(name, dtype="float32"):
    x = images()
    if name == "mlp_features":
        return hog_features(x, cache=False, progress=False).astype(dtype)
    x = x.astype(dtype) / 255.0
    return x.reshape(-1, 784) if name == "mlp_raw" else x[..., None]


# ---- helpers ------------------------------------------------------------------------------------
def keras_predict(kmodel, x):
    if x.dtype == np.float64:  # predict() would cast the data to keras.config.floatx() (float32)
        return np.asarray(kmodel(x, training=False))
    return np.asarray(kmodel.predict(x, batch_size=64, verbose=0))


def assert_same_structure(tmodel, kmodel):
    """Model name, layer names (in order), weight shapes, dtypes, values and parameter counts."""
    assert tmodel.name == kmodel.name
    assert [layer.name for layer in tmodel.layers] == [layer.name for layer in kmodel.layers]
    assert tmodel.graph.input.name == kmodel.inputs[0]._keras_history[0].name
    for tlayer in tmodel.layers:
        klayer = kmodel.get_layer(tlayer.name)
        assert type(tlayer).__name__ == type(klayer).__name__, tlayer.name
        tw, kw = tlayer.get_weights(), klayer.get_weights()
        assert [w.shape for w in tw] == [w.shape for w in kw], tlayer.name
        for a, b in zip(tw, kw):
            assert a.dtype == b.dtype, tlayer.name
            np.testing.assert_array_equal(a, b, err_msg=f"weights of layer '{tlayer.name}'")
        assert tlayer.count_params() == klayer.count_params(), tlayer.name
    assert tmodel.count_params() == kmodel.count_params()
    assert [w.shape for w in tmodel.get_weights()] == [w.shape for w in kmodel.get_weights()]


def assert_predictions_agree(tmodel, kmodel, x, rtol, atol):
    a = tmodel.predict(x, batch_size=64)
    b = keras_predict(kmodel, x)
    assert a.shape == b.shape == (x.shape[0], 10)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol,
                               err_msg=f"tinynet and Keras predictions of '{tmodel.name}'")
    # the prediction is not trivially uniform: the models really compute something
    assert np.ptp(b, axis=1).mean() > 1e-3


# ---- the two directions on the report's four models ---------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_to_keras_report_model(name):
    backend.set_seed(7)
    tmodel = getattr(report_models, name)()
    kmodel = to_keras(tmodel)
    assert isinstance(kmodel, keras.Sequential) == name.startswith("mlp")
    assert_same_structure(tmodel, kmodel)
    assert kmodel.count_params() == report_models.REPORT_PARAMS[name]
    assert_predictions_agree(tmodel, kmodel, inputs_for(name), RTOL32, ATOL32)


@pytest.mark.parametrize("name", MODELS)
def test_from_keras_report_model(name):
    keras.utils.set_random_seed(11)
    kmodel = KERAS_BUILDERS[name]()
    tmodel = from_keras(kmodel)
    assert type(tmodel).__name__ == ("Sequential" if name.startswith("mlp") else "Model")
    assert_same_structure(tmodel, kmodel)
    assert tmodel.count_params() == report_models.REPORT_PARAMS[name]
    # the same architecture as tinynet's own builder of the report's model
    reference = getattr(report_models, name)()
    assert [type(layer).__name__ for layer in tmodel.layers] == \
        [type(layer).__name__ for layer in reference.layers]
    assert [layer.get_config() | {"name": None} for layer in tmodel.layers] == \
        [layer.get_config() | {"name": None} for layer in reference.layers]
    assert [w.shape for w in tmodel.get_weights()] == [w.shape for w in reference.get_weights()]
    assert_predictions_agree(tmodel, kmodel, inputs_for(name), RTOL32, ATOL32)


@pytest.mark.parametrize("name", MODELS)
def test_round_trip_keeps_everything(name):
    keras.utils.set_random_seed(3)
    kmodel = KERAS_BUILDERS[name]()
    back = to_keras(from_keras(kmodel))
    assert type(back) is type(kmodel)
    assert [layer.name for layer in back.layers] == [layer.name for layer in kmodel.layers]
    assert [layer.get_config() for layer in back.layers] == \
        [layer.get_config() for layer in kmodel.layers]
    for a, b in zip(back.get_weights(), kmodel.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", MODELS)
def test_float64_both_ways(name):
    backend.set_floatx("float64")  # restored by conftest
    backend.set_seed(5)
    tmodel = getattr(report_models, name)()
    kmodel = to_keras(tmodel)
    assert all(w.dtype == np.float64 for w in kmodel.get_weights())
    assert_predictions_agree(tmodel, kmodel, inputs_for(name, "float64"), TOL64, TOL64)
    backend.set_floatx("float32")
    again = from_keras(kmodel)  # built in the Keras model's dtype, whatever floatx says
    assert backend.floatx() == "float32"
    assert all(w.dtype == np.float64 for w in again.get_weights())
    backend.set_floatx("float64")  # predict() casts its input to floatx
    assert_predictions_agree(again, kmodel, inputs_for(name, "float64"), TOL64, TOL64)


def test_every_supported_layer_and_option():
    """Strides, 'valid' padding, no bias, pool strides and 'same' pooling, Activation layers,
    an Add of three branches, Dropout and every activation, both ways."""
    inp = keras.Input((11, 10, 2), name="x")
    a = kl.Conv2D(4, (3, 2), strides=(2, 1), padding="same", activation="tanh", name="a")(inp)
    b = kl.Conv2D(4, 3, strides=(2, 1), padding="same", use_bias=False, name="b")(inp)
    c = kl.Activation("sigmoid", name="c")(b)
    d = kl.Activation("relu", name="d")(kl.Conv2D(4, 3, strides=(2, 1), padding="same", name="e")(inp))
    s = kl.Add(name="s")([a, c, d])
    p = kl.MaxPooling2D((3, 2), strides=(1, 2), padding="same", name="p")(s)
    v = kl.Conv2D(3, (2, 3), padding="valid", activation="linear", name="v")(p)
    v = kl.MaxPooling2D(2, padding="valid", name="mp")(v)
    f = kl.Dropout(0.5, name="drop")(kl.Flatten(name="f")(v))
    y = kl.Dense(5, activation="softmax", name="out")(f)
    kmodel = keras.Model(inp, y, name="all_layers")
    tmodel = from_keras(kmodel)
    assert sorted(layer.name for layer in tmodel.layers) == \
        sorted(layer.name for layer in kmodel.layers)
    x = np.random.default_rng(1).normal(size=(16, 11, 10, 2)).astype("float32")
    np.testing.assert_allclose(tmodel.predict(x), keras_predict(kmodel, x), rtol=1e-5, atol=1e-6)
    back = to_keras(tmodel)
    np.testing.assert_allclose(keras_predict(back, x), keras_predict(kmodel, x), rtol=1e-6,
                               atol=1e-7)


def test_concatenate_both_ways():
    """Keras's Concatenate (channels, and another axis) to tinynet and back, the same outputs."""
    inp = keras.Input((6, 6, 2), name="x")
    a = kl.Conv2D(3, 3, padding="same", activation="relu", name="a")(inp)
    b = kl.Conv2D(2, 1, activation="tanh", name="b")(inp)
    c = kl.Concatenate(name="c")([a, b])
    d = kl.Concatenate(axis=2, name="d")([c, c])  # along the width
    y = kl.Dense(4, activation="softmax", name="out")(kl.Flatten(name="f")(d))
    kmodel = keras.Model(inp, y, name="branches")
    tmodel = from_keras(kmodel)
    assert (tmodel.get_layer("c").axis, tmodel.get_layer("d").axis) == (-1, 2)
    x = np.random.default_rng(3).normal(size=(8, 6, 6, 2)).astype("float32")
    np.testing.assert_allclose(tmodel.predict(x), keras_predict(kmodel, x), rtol=1e-5, atol=1e-6)
    back = to_keras(tmodel)
    assert back.get_layer("d").get_config()["axis"] == 2
    np.testing.assert_allclose(keras_predict(back, x), keras_predict(kmodel, x), rtol=1e-6,
                               atol=1e-7)


def test_tinynet_sequential_without_report_names():
    from tinynet import Sequential
    backend.set_seed(2)
    model = Sequential([layers.Input((6, 6, 3), name="img"), layers.Conv2D(2, 3, name="c"),
                        layers.Flatten(name="f"), layers.Dense(4, name="d"),
                        layers.Activation("softmax", name="sm")], name="seq")
    kmodel = to_keras(model)
    assert isinstance(kmodel, keras.Sequential)
    assert_same_structure(model, kmodel)
    x = np.random.default_rng(0).random((8, 6, 6, 3)).astype("float32")
    np.testing.assert_allclose(model.predict(x), keras_predict(kmodel, x), rtol=1e-5, atol=1e-6)


def test_from_logits_after_a_softmax_trains_as_in_keras():
    # Keras takes the softmax's logits when from_logits=True follows a softmax (and warns);
    # tinynet must train the same, not apply a second softmax (tests/test_keras_compat.py)
    from tinynet import Sequential, losses
    backend.set_seed(3)
    model = Sequential([layers.Input((6,)), layers.Dense(5, activation="relu", name="h"),
                        layers.Dense(4, activation="softmax", name="out")], name="tut")
    kmodel = to_keras(model)
    rng = np.random.default_rng(0)
    x, y = rng.random((96, 6)).astype("float32"), rng.integers(0, 4, 96)
    with pytest.warns(UserWarning, match="from_logits=True"):
        model.compile("sgd", losses.SparseCategoricalCrossentropy(from_logits=True))
    kmodel.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ours = model.fit(x, y, batch_size=32, epochs=3, shuffle=False, verbose=0).history["loss"]
    theirs = kmodel.fit(x, y, batch_size=32, epochs=3, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)


def test_learning_rate_schedules_and_the_scheduler_callback_train_as_in_keras():
    """A step schedule given to the optimizer, and an epoch schedule given as a callback: the same
    losses as Keras's, epoch by epoch, and the same rates in the logs."""
    from tinynet import Sequential, callbacks, optimizers
    rng = np.random.default_rng(0)
    x, y = rng.random((96, 6)).astype("float32"), rng.integers(0, 4, 96)
    for lib in ("schedule", "callback"):
        backend.set_seed(5)
        model = Sequential([layers.Input((6,)), layers.Dense(8, activation="relu", name="h"),
                            layers.Dense(4, activation="softmax", name="out")], name="lr")
        kmodel = to_keras(model)
        if lib == "schedule":
            kwargs = dict(initial_learning_rate=0.01, decay_steps=2, decay_rate=0.7)
            model.compile(optimizers.RMSprop(optimizers.schedules.ExponentialDecay(**kwargs)),
                          "sparse_categorical_crossentropy")
            kmodel.compile(keras.optimizers.RMSprop(keras.optimizers.schedules.ExponentialDecay(
                **kwargs)), "sparse_categorical_crossentropy")
            ours_cb = theirs_cb = []
        else:
            model.compile(optimizers.RMSprop(0.01), "sparse_categorical_crossentropy")
            kmodel.compile(keras.optimizers.RMSprop(0.01), "sparse_categorical_crossentropy")
            ours_cb = [callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5)]
            theirs_cb = [keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5)]
        ours = model.fit(x, y, batch_size=32, epochs=4, shuffle=False, verbose=0,
                         callbacks=ours_cb).history
        theirs = kmodel.fit(x, y, batch_size=32, epochs=4, shuffle=False, verbose=0,
                            callbacks=theirs_cb).history
        np.testing.assert_allclose(ours["loss"], theirs["loss"], rtol=1e-5)
        assert ours.keys() == theirs.keys()
        if lib == "callback":
            np.testing.assert_allclose(ours["learning_rate"], theirs["learning_rate"], rtol=1e-7)
        np.testing.assert_allclose(float(model.optimizer.learning_rate),
                                   float(kmodel.optimizer.learning_rate), rtol=1e-6)


# ---- the layers Keras scripts use beyond the report's: Rescaling, ReLU, Softmax, Reshape, ---------
# ---- AveragePooling2D and GlobalAveragePooling2D ------------------------------------------------
def _tinynet_extra_layers(scale=1 / 255):
    """A functional model with every option of the extra layers that tinynet has."""
    from tinynet import Model
    inp = layers.Input((9, 8, 3), name="img")
    x = layers.Rescaling(scale, offset=-0.5, name="resc")(inp)
    x = layers.Conv2D(4, 3, padding="same", name="c")(x)
    x = layers.ReLU(name="r")(x)
    a = layers.AveragePooling2D((3, 2), strides=(2, 1), padding="same", name="ap")(x)
    v = layers.AveragePooling2D(2, padding="valid", name="av")(a)
    g = layers.GlobalAveragePooling2D(name="gap")(v)
    r = layers.Reshape((2, -1), name="rs")(g)
    f = layers.Flatten(name="f")(r)
    y = layers.Softmax(name="sm")(layers.Dense(5, name="d")(f))
    return Model(inp, y, name="extra_layers")


EXTRA_KERAS_CONFIGS = {  # what each Keras layer must be configured with
    "resc": {"offset": -0.5},
    "r": {"max_value": None, "negative_slope": 0.0, "threshold": 0.0},
    "ap": {"pool_size": (3, 2), "strides": (2, 1), "padding": "same"},
    "av": {"pool_size": (2, 2), "strides": (2, 2), "padding": "valid"},
    "gap": {"keepdims": False},
    "rs": {"target_shape": (2, -1)},
    "sm": {"axis": -1},
}


def _pixels(shape, seed=0, dtype="float32"):
    return np.random.default_rng(seed).integers(0, 256, shape).astype(dtype)


# Keras's Rescaling makes its scale a float32 constant before casting it to a float64 model's
# dtype (1/255 becomes 0.0039215688593685627): in float64 the scale is one float32 holds exactly
@pytest.mark.parametrize("dtype, scale, tol", [("float32", 1 / 255, 1e-6),
                                               ("float64", 1 / 256, TOL64)])
def test_to_keras_extra_layers(dtype, scale, tol):
    backend.set_floatx(dtype)  # restored by conftest
    backend.set_seed(4)
    tmodel = _tinynet_extra_layers(scale)
    kmodel = to_keras(tmodel)  # said "has no tinynet equivalent" for Rescaling and the rest
    assert_same_structure(tmodel, kmodel)
    assert kmodel.get_layer("resc").get_config()["scale"] == scale
    for name, expected in EXTRA_KERAS_CONFIGS.items():
        config = kmodel.get_layer(name).get_config()
        for key, value in expected.items():
            got = tuple(config[key]) if isinstance(config[key], list) else config[key]
            assert got == value, (name, key)
    x = _pixels((32, 9, 8, 3), dtype=dtype)
    a, b = tmodel.predict(x), keras_predict(kmodel, x)
    assert a.shape == b.shape == (32, 5)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    assert np.ptp(b, axis=1).mean() > 1e-3  # not a trivially uniform output


def test_from_keras_extra_layers_and_back():
    keras.utils.set_random_seed(8)
    inp = keras.Input((9, 8, 3), name="img")
    x = kl.Rescaling(1 / 127.5, offset=-1.0, name="resc")(inp)
    x = kl.Conv2D(4, 3, padding="same", name="c")(x)
    x = kl.ReLU(name="r")(x)
    x = kl.AveragePooling2D((2, 3), strides=(1, 2), padding="same", name="ap")(x)
    x = kl.AveragePooling2D(2, name="av")(x)
    x = kl.GlobalAveragePooling2D(name="gap")(x)
    x = kl.Reshape((2, 2), name="rs")(x)
    x = kl.Softmax(axis=2, name="sm2")(x)  # the last axis written as a positive index
    x = kl.Flatten(name="f")(x)
    y = kl.Softmax(name="sm")(kl.Dense(5, name="d")(x))
    kmodel = keras.Model(inp, y, name="extra_keras")
    tmodel = from_keras(kmodel)
    assert_same_structure(tmodel, kmodel)
    assert tmodel.get_layer("resc").get_config() == {"name": "resc", "scale": 1 / 127.5,
                                                     "offset": -1.0}
    assert tmodel.get_layer("ap").pool_size == (2, 3) and tmodel.get_layer("ap").strides == (1, 2)
    assert tmodel.get_layer("ap").padding == "same"
    assert tmodel.get_layer("rs").target_shape == (2, 2)
    x = _pixels((32, 9, 8, 3), seed=1)
    np.testing.assert_allclose(tmodel.predict(x), keras_predict(kmodel, x), rtol=1e-6, atol=1e-6)
    back = to_keras(tmodel)
    np.testing.assert_allclose(keras_predict(back, x), keras_predict(kmodel, x), rtol=1e-6,
                               atol=1e-7)


def test_sequential_rescaling_script_model_converts_and_saves_in_keras(tmp_path):
    """The model of tests/keras_scripts/residual_rescaling.py, as a Sequential with a
    ReLU layer, converted and saved by Keras as the README suggests (to_keras(model).save)."""
    from tinynet import Sequential
    backend.set_seed(6)
    tmodel = Sequential([layers.Input((28, 28, 1)), layers.Rescaling(1.0 / 255),
                         layers.Conv2D(8, 3, padding="same"), layers.ReLU(),
                         layers.MaxPooling2D(2), layers.GlobalAveragePooling2D(),
                         layers.Dense(10, activation="softmax")], name="rescaled")
    kmodel = to_keras(tmodel)
    assert isinstance(kmodel, keras.Sequential)
    assert_same_structure(tmodel, kmodel)
    path = tmp_path / "rescaled.keras"
    kmodel.save(path)
    reloaded = keras.models.load_model(path)
    x = images()[:64, :, :, None]  # uint8 pixels: the Rescaling inside the model scales them
    expected = tmodel.predict(x)
    np.testing.assert_allclose(keras_predict(reloaded, x.astype("float32")), expected,
                               rtol=1e-5, atol=1e-6)
    assert np.ptp(expected, axis=1).mean() > 1e-4


# ---- clear errors -------------------------------------------------------------------------------
def _functional(*make):
    inp = keras.Input((8, 8, 3), name="x")
    y = inp
    for f in make:
        y = f(y)
    return keras.Model(inp, y, name="bad")


@pytest.mark.parametrize("make, words", [
    (lambda: kl.BatchNormalization(name="bn"), ["'bn'", "BatchNormalization", "Dense"]),
    (lambda: kl.Conv2D(2, 3, dilation_rate=2, name="dil"), ["'dil'", "dilation_rate"]),
    (lambda: kl.Conv2D(3, 3, groups=3, name="grp"), ["'grp'", "groups"]),
    (lambda: kl.Conv2D(2, 3, activation="gelu", name="g"), ["'g'", "gelu"]),
    (lambda: kl.Conv2D(2, 3, kernel_regularizer="l2", name="reg"), ["'reg'", "kernel_regularizer"]),
    (lambda: kl.MaxPooling2D(2, data_format="channels_first", name="cf"), ["'cf'", "channels_first"]),
    (lambda: kl.GlobalMaxPooling2D(name="gmp"), ["Keras layer 'gmp'", "GlobalMaxPooling2D",
                                                 "no tinynet equivalent", "AveragePooling2D"]),
    (lambda: kl.AveragePooling2D(2, data_format="channels_first", name="acf"),
     ["'acf'", "channels_first"]),
    (lambda: kl.ReLU(max_value=6.0, name="relu6"), ["'relu6'", "max_value=6.0"]),
    (lambda: kl.ReLU(negative_slope=0.1, name="leaky"), ["'leaky'", "negative_slope=0.1"]),
    (lambda: kl.Softmax(axis=1, name="sm1"), ["'sm1'", "axis=1", "last axis"]),
    (lambda: kl.GlobalAveragePooling2D(keepdims=True, name="gk"), ["'gk'", "keepdims=True"]),
    (lambda: kl.Rescaling([1.0, 2.0, 3.0], name="per_channel"), ["'per_channel'", "scale="]),
    (lambda: kl.Dropout(0.5, noise_shape=(None, 1, 1, 3), name="nd"), ["'nd'", "noise_shape"]),
])
def test_unsupported_keras_layer_or_option_names_the_layer(make, words):
    kmodel = _functional(make())
    with pytest.raises(InteropError) as info:
        from_keras(kmodel)
    for w in words:
        assert w in str(info.value)


def test_unsupported_graphs():
    shared = kl.Dense(4, name="shared")
    inp = keras.Input((4,), name="x")
    kmodel = keras.Model(inp, shared(shared(inp)), name="twice")
    with pytest.raises(InteropError, match="'shared'.*more than once"):
        from_keras(kmodel)

    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    with pytest.raises(InteropError, match="2 inputs"):
        from_keras(keras.Model([a, b], kl.Add()([a, b])))

    with pytest.raises(InteropError, match="not built"):
        from_keras(keras.Sequential([kl.Dense(3)]))

    with pytest.raises(InteropError, match="'d3'.*Flatten"):  # tinynet's Dense needs 2-D input
        from_keras(keras.Sequential([keras.Input((4, 5)), kl.Dense(3, name="d3")]))

    # Keras casts the data to an integer input's dtype (0.7 -> 0): converted, the model gave
    # predictions up to 0.65 apart on float data, silently
    with pytest.raises(InteropError, match="an input of dtype int32, to which Keras casts"):
        from_keras(keras.Sequential([keras.Input((4,), dtype="int32"), kl.Dense(3)]))


def test_unsupported_tinynet_layer_names_the_layer():
    class Scale(layers.Activation):
        pass

    x = layers.Input((3,), name="x")
    model = __import__("tinynet").Model(x, Scale("linear", name="scale")(x), name="custom")
    with pytest.raises(InteropError, match="'scale' \\(Scale\\) cannot be converted to Keras") \
            as info:
        to_keras(model)
    assert "no tinynet equivalent" not in str(info.value)  # it is a tinynet layer
    assert "Rescaling" in str(info.value)  # the list of the layers it does convert


def test_to_keras_without_tensorflow_says_how_to_install(monkeypatch):
    backend.set_seed(0)
    model = report_models.cnn_digits()
    monkeypatch.setitem(sys.modules, "keras", None)  # `import keras` now raises ImportError
    with pytest.raises(ImportError, match=r'pip install -e "\.\[keras\]"'):
        to_keras(model)


def _branchy(lib, which):
    """Graphs with parallel branches, built the same way in ``lib`` (tinynet or keras), in float64
    (named on every layer: Keras's global dtype policy, which other tests set, outranks floatx)."""
    import functools
    L = types.SimpleNamespace(Dense=functools.partial(lib.layers.Dense, dtype="float64"),
                              Add=functools.partial(lib.layers.Add, dtype="float64"))
    Input, Model = lib.Input, lib.Model
    x = Input((6,), name="in")
    if which == "short_branch_first":
        c = L.Dense(4, name="c")(x)
        b = L.Dense(4, name="b")(L.Dense(5, name="a")(x))
        y = L.Add(name="add")([c, b])
    elif which == "long_branch_first":
        b = L.Dense(4, name="b")(L.Dense(5, name="a")(x))
        c = L.Dense(4, name="c")(x)
        y = L.Add(name="add")([b, c])
    else:  # a skip over two layers, added in the second place, then a second branch
        h = L.Dense(4, name="h")(x)
        s = L.Add(name="add")([L.Dense(4, name="g")(L.Dense(4, name="f")(h)), h])
        y = L.Add(name="add2")([L.Dense(4, name="e")(x), s])
    return Model(x, L.Dense(2, name="out")(y))


@pytest.mark.parametrize("which", ["short_branch_first", "long_branch_first", "skip_then_branch"])
def test_layers_and_weights_come_in_keras_order_on_graphs_with_branches(which):
    """``model.layers`` and ``get_weights()`` list the layers as Keras does (by depth, then the
    order a walk back from the output meets them): weights moved with get_weights/set_weights
    between the two frameworks land on the same layers (tinynet's own order once put them on
    other layers of the same shapes, silently: predictions moved by 3.6)."""
    backend.set_floatx("float64")
    keras.backend.set_floatx("float64")
    try:
        ours, theirs = _branchy(__import__("tinynet"), which), _branchy(keras, which)
        assert [layer.name for layer in ours.layers] == [layer.name for layer in theirs.layers]
        theirs.set_weights(ours.get_weights())
        x = np.random.default_rng(0).standard_normal((5, 6))
        np.testing.assert_allclose(theirs.predict(x, verbose=0), ours.predict(x), rtol=1e-12)
    finally:
        keras.backend.set_floatx("float32")


@pytest.mark.parametrize("make", [lambda k: k.Dense(3, activation="relu", kernel_initializer="he_uniform"),
                                  lambda k: k.Conv2D(4, 3, padding="same"), lambda k: k.MaxPooling2D(2),
                                  lambda k: k.Dropout(0.25), lambda k: k.Flatten()],
                         ids=["Dense", "Conv2D", "MaxPooling2D", "Dropout", "Flatten"])
def test_a_keras_layers_config_makes_tinynets_layer(make):
    """``from_config`` of a Keras layer's get_config (its dtype policy and initializers given as
    dicts) gives the tinynet layer of the same settings; it raised NumPy's "entry not a 2- or
    3- tuple"."""
    theirs = make(kl)
    ours = getattr(layers, type(theirs).__name__).from_config(theirs.get_config())
    assert ours.get_config() == make(layers).get_config() | {"name": theirs.name}


@pytest.mark.parametrize("axis, order", [(1, 2), (-1, 2), (2, 1)])
def test_normalize_is_keras_utils_normalize(axis, order):
    x = np.random.default_rng(3).integers(0, 256, (4, 28, 28)).astype(np.uint8)
    x[0, 5] = 0
    import tinynet
    np.testing.assert_array_equal(tinynet.utils.normalize(x, axis=axis, order=order),
                                  keras.utils.normalize(x, axis=axis, order=order))


def test_frozen_layers_train_and_convert_as_in_keras():
    """A frozen middle layer (``trainable=False``) in float64, trained with RMSprop and a global
    norm clip (over the trainable gradients only, as Keras): the same weights as Keras's after
    three epochs, the frozen ones untouched, the same trainable and non-trainable lists and summary
    counts; the flags cross ``from_keras``/``to_keras`` both ways."""
    from tinynet import optimizers
    keras.backend.set_floatx("float64")
    try:
        keras.utils.set_random_seed(2)
        f64 = {"dtype": "float64"}  # on every layer: other tests set Keras's global policy
        kmodel = keras.Sequential([keras.Input((6,), **f64),
                                   kl.Dense(8, activation="relu", name="a", **f64),
                                   kl.Dense(5, activation="tanh", name="frozen", trainable=False,
                                            **f64),
                                   kl.Dense(3, activation="softmax", name="out", **f64)])
        ours = from_keras(kmodel)
        assert [layer.trainable for layer in ours.layers] == [True, False, True]
        again = to_keras(ours)
        assert [layer.trainable for layer in again.layers] == [True, False, True]
        backend.set_floatx("float64")  # fit casts the data to floatx (restored by conftest)
        rng = np.random.default_rng(0)
        x, y = rng.standard_normal((96, 6)), np.eye(3)[rng.integers(0, 3, 96)]
        before = kmodel.get_layer("frozen").get_weights()
        kmodel.compile(keras.optimizers.RMSprop(0.01, global_clipnorm=0.2), "categorical_crossentropy")
        ours.compile(optimizers.RMSprop(0.01, global_clipnorm=0.2), "categorical_crossentropy")
        theirs = kmodel.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0).history
        mine = ours.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0).history
        np.testing.assert_allclose(mine["loss"], theirs["loss"], rtol=1e-12)
        for a, b in zip(ours.get_weights(), kmodel.get_weights()):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
        for a, b in zip(before, ours.get_layer("frozen").get_weights()):
            np.testing.assert_array_equal(a, b)
        for lists in ("trainable_weights", "non_trainable_weights"):
            assert [w.shape for w in getattr(ours, lists)] == \
                [tuple(w.shape) for w in getattr(kmodel, lists)]
        kmodel.trainable = False  # the whole model frozen: nothing trains in either
        assert from_keras(kmodel).trainable_weights == []
        ours.trainable = False
        assert to_keras(ours).trainable_weights == []
    finally:
        keras.backend.set_floatx("float32")


def test_a_base_called_with_training_false_still_trains_in_training_mode_as_in_keras_3():
    """Keras 3.15 lets fit's training=True win over ``base(inputs, training=False)`` (its
    Functional passes the outer mode to every layer that takes one): a Dropout inside such a base
    drops during fit in both frameworks, so that fit's loss at a rate of 0 is not evaluate's."""
    from tinynet import Model, optimizers
    x, y = np.random.default_rng(0).random((64, 60)), np.ones((64, 1))
    for lib, sgd in ((keras, keras.optimizers.SGD), (__import__("tinynet"), optimizers.SGD)):
        inp = lib.Input((60,))
        base = (keras.Model if lib is keras else Model)(inp, lib.layers.Dropout(0.9)(inp))
        base.trainable = False
        top = lib.Input((60,))
        model = (keras.Model if lib is keras else Model)(
            top, lib.layers.Dense(1)(base(top, training=False)))
        model.compile(sgd(0.0), "mse")
        fitted = model.fit(x, y, batch_size=64, verbose=0).history["loss"][0]
        assert fitted > 3 * model.evaluate(x, y, verbose=0), lib.__name__


# float32 steps of every optimizer, with the options that change its arithmetic; clipnorm and
# global_clipnorm are left out (the gradient's norm is a sum, added in another order in TensorFlow)
FLOAT32_STEPS = [("RMSprop", {}), ("RMSprop", {"momentum": 0.5}), ("RMSprop", {"centered": True}),
                 ("RMSprop", {"momentum": 0.5, "centered": True, "weight_decay": 0.01}),
                 ("Adam", {}), ("Adam", {"amsgrad": True, "clipvalue": 0.5}),
                 ("Adam", {"weight_decay": 0.01, "learning_rate": 0.0123}),
                 ("SGD", {"momentum": 0.9, "nesterov": True}), ("Adagrad", {}), ("Adadelta", {})]


@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
@pytest.mark.parametrize("name, options", FLOAT32_STEPS)
def test_float32_optimizer_steps_are_keras_steps_to_the_last_bit(name, options, backend_name):
    """In float32, 25 steps of each optimizer give Keras 3's weights bit for bit (the numba
    backend's fused RMSprop too): the same operations in the same order, in float32 (RMSprop's
    (1 - ρ) (g ⊙ g), Adam's step size computed in float32, where both differed by an ulp)."""
    from tinynet import optimizers
    rng = np.random.default_rng(7)
    start = [rng.standard_normal((60, 40)).astype(np.float32),
             rng.standard_normal(40).astype(np.float32)]
    steps = [[(rng.standard_normal(p.shape) * scale).astype(np.float32) for p in start]
             for scale in rng.uniform(0.001, 5, 25)]
    previous = backend.get_backend()
    backend.set_backend(backend_name)
    try:
        ours = getattr(optimizers, name)(**options)
        weights = [p.copy() for p in start]
        for grads in steps:
            ours.apply_gradients(zip([g.copy() for g in grads], weights))
    finally:
        backend.set_backend(previous)
    theirs = getattr(keras.optimizers, name)(**options)
    variables = [keras.Variable(p.copy()) for p in start]
    for grads in steps:
        theirs.apply_gradients(zip([tf.constant(g) for g in grads], variables))
    for w, v in zip(weights, variables):
        assert w.dtype == np.float32
        np.testing.assert_array_equal(w, v.numpy())


def test_a_regression_with_the_mean_absolute_error_trains_and_logs_as_in_keras():
    """``loss="mae"``, ``metrics=["mae", "mse"]`` on Keras's initial weights, float64: the same
    history (training and validation), evaluation and weights as Keras 3.15; a softmax
    classifier's ``mae`` too (of its probabilities, which tinynet's loop sees as logits)."""
    rng = np.random.default_rng(0)
    x = rng.random((64, 3))
    y = x @ np.array([1.0, -2.0, 3.0]) + 0.5
    labels = np.eye(3)[rng.integers(0, 3, 64)]
    previous, previous_keras = backend.floatx(), keras.config.floatx()
    backend.set_floatx("float64")
    keras.config.set_floatx("float64")  # Keras's metrics keep their sums in floatx
    try:
        for target, loss, last in ((y, "mae", None), (y, "mse", None),
                                   (labels, "categorical_crossentropy", "softmax")):
            units = target.shape[1] if target.ndim == 2 else 1
            theirs = keras.Sequential([keras.Input((3,)),
                                       kl.Dense(4, activation="relu", dtype="float64"),
                                       kl.Dense(units, activation=last, dtype="float64")])
            ours = from_keras(theirs)  # the same layers and initial weights
            theirs.compile(keras.optimizers.SGD(0.05), loss, metrics=["mae", "mse"])
            ours.compile("sgd", loss, metrics=["mae", "mse"])
            ours.optimizer.learning_rate = 0.05
            h_theirs = theirs.fit(x, target, batch_size=16, epochs=3, shuffle=False, verbose=0,
                                  validation_split=0.25).history
            h_ours = ours.fit(x, target, batch_size=16, epochs=3, shuffle=False, verbose=0,
                              validation_split=0.25).history
            assert sorted(h_ours) == sorted(h_theirs)
            for key in h_ours:
                np.testing.assert_allclose(h_ours[key], h_theirs[key], rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(ours.evaluate(x, target, verbose=0),
                                       theirs.evaluate(x, target, verbose=0), rtol=1e-12)
            for a, b in zip(ours.get_weights(), theirs.get_weights()):
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    finally:
        backend.set_floatx(previous)
        keras.config.set_floatx(previous_keras)


def test_keras_s_own_accuracy_objects_are_refused_for_the_settings_tinynet_would_not_read():
    """``metrics=[keras.metrics.BinaryAccuracy(threshold=0.7)]`` was counted at tinynet's 0.5,
    silently (0.575 where Keras gives 0.55; a review); Keras's error metric objects, which have
    no such settings, are taken under their names."""
    from tinynet import Input, Sequential
    model = Sequential([Input((3,)), layers.Dense(1, activation="sigmoid")])
    with pytest.raises(ValueError, match=r"Keras's own object.*'binary_accuracy'.*"
                                         r"tinynet\.metrics\.BinaryAccuracy\(\)"):
        model.compile("sgd", "binary_crossentropy",
                      metrics=[keras.metrics.BinaryAccuracy(threshold=0.7)])
    with pytest.raises(ValueError, match=r"Keras's own object.*'accuracy'"):
        model.compile("sgd", "binary_crossentropy", metrics=[keras.metrics.Accuracy()])
    model.compile("sgd", "mse", metrics=[keras.metrics.MeanAbsoluteError(name="err")])
    assert model.metrics == ["err"] and model.metric_kinds == {"err": "mae"}
