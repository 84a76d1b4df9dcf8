"""Keras's API on tinynet (issue 11): the names, arguments and return values Keras scripts use,
and the mistakes Keras lets pass that tinynet points out. Numbers, not just "it runs"."""
import subprocess
import sys
import warnings

import re

import numpy as np
import pytest

import tinynet as keras
from tinynet import backend, layers


def _digits(n=64, seed=0, shape=(8, 8)):
    r = np.random.default_rng(seed)
    return r.random((n,) + shape), r.integers(0, 3, n)


# ---- models --------------------------------------------------------------------------------
def test_input_shape_and_input_dim_on_a_first_layer_build_the_sequential_model():
    a = keras.Sequential([layers.Dense(5, activation="relu", input_shape=(784,)), layers.Dense(3)])
    b = keras.Sequential()
    b.add(layers.Dense(5, input_dim=784))
    c = keras.Sequential([layers.InputLayer(shape=(784,)), layers.Dense(5)])
    assert a.count_params() == 784 * 5 + 5 + 5 * 3 + 3
    assert b.count_params() == c.count_params() == 784 * 5 + 5
    assert a.inputs[0].shape == (None, 784) and a.outputs[0].shape == (None, 3)


def test_weights_are_the_live_arrays_in_keras_order_and_all_of_them_train():
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="relu"),
                              layers.Dropout(0.5), layers.Dense(2)])
    model.compile("sgd", "mse")
    dense = model.layers[0]
    assert dense.weights[0] is dense.kernel and dense.weights[1] is dense.bias
    assert model.layers[1].weights == [] and model.layers[1].non_trainable_weights == []
    w = model.weights
    assert [a.shape for a in w] == [(4, 3), (3,), (3, 2), (2,)]  # Keras's order: layer by layer
    for same in (model.trainable_weights, model.trainable_variables, dense.trainable_weights
                 + model.layers[2].trainable_variables):
        assert len(same) == 4 and all(a is b for a, b in zip(same, w))
    assert model.non_trainable_weights == [] == model.non_trainable_variables
    before = [a.copy() for a in w]
    x, y = np.random.default_rng(0).random((16, 4)), np.random.default_rng(1).random((16, 2))
    model.fit(x, y, epochs=1, verbose=0)
    assert all(not np.array_equal(a, b) for a, b in zip(w, before))  # the arrays that train
    w[3][...] = 5.0  # and writing into them changes the model
    np.testing.assert_array_equal(model.get_weights()[3], [5.0, 5.0])
    assert keras.Sequential([layers.Dense(3)]).weights == []  # not built yet, as in Keras


@pytest.mark.parametrize("name,instead", [
    ("get_config", "model.save(path)"), ("to_json", "to_keras(model)"),
    ("metrics_names", "return_dict=True"), ("compute_output_shape", "model.output_shape"),
    ("get_build_config", "model.save(path)"), ("get_output_at", "model.output"),
])
def test_keras_model_attributes_tinynet_lacks_say_so_and_what_to_use(name, instead):
    model = keras.Sequential([keras.Input((4,)), layers.Dense(2)])
    model.compile("adam", "mse", metrics=["accuracy"])
    with pytest.raises(AttributeError, match=f"Sequential.{name}: Keras's {name} is not "
                                             "implemented in tinynet") as info:
        getattr(model, name)
    assert instead in str(info.value)
    assert not hasattr(model, name)
    with pytest.raises(AttributeError, match="'Sequential' object has no attribute 'nothing'"):
        model.nothing  # other names: Python's own message


def test_a_model_used_as_a_layer_trains_its_own_weights():
    backend.set_floatx("float64")
    inner = keras.Sequential([layers.Flatten(input_shape=(8, 8)), layers.Dense(3)])
    outer = keras.Sequential([inner, layers.Softmax()])
    assert outer.count_params() == inner.count_params() == 64 * 3 + 3
    x, y = _digits()
    np.testing.assert_allclose(outer.predict(x).sum(axis=1), 1.0, rtol=1e-12)
    z = inner.predict(x)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(outer.predict(x), e / e.sum(axis=1, keepdims=True), rtol=1e-12)
    before = inner.get_weights()[0].copy()
    outer.compile("sgd", "sparse_categorical_crossentropy", ["accuracy"])
    outer.fit(x, y, epochs=1, verbose=0)
    assert np.abs(inner.get_weights()[0] - before).max() > 1e-6  # the gradient reached inside


def test_the_functional_guide_s_residual_block_with_layers_add():
    # keras.io's functional API guide merges its toy ResNet's blocks with the lowercase helper
    backend.set_floatx("float64")
    inputs = keras.Input(shape=(8, 8, 3), name="img")
    block_1_output = layers.MaxPooling2D(2)(layers.Conv2D(4, 3, activation="relu", padding="same")(inputs))
    x = layers.Conv2D(4, 3, activation="relu", padding="same")(block_1_output)
    block_2_output = layers.add([x, block_1_output], name="merge")
    model = keras.Model(inputs, layers.Dense(2)(layers.Flatten()(block_2_output)), name="toy_resnet")
    merge = model.get_layer("merge")
    assert isinstance(merge, layers.Add) and merge.output_shape == (4, 4, 4)
    images = np.random.default_rng(0).random((3, 8, 8, 3))
    parts = [keras.Model(inputs, t).predict(images, verbose=0) for t in (x, block_1_output, block_2_output)]
    np.testing.assert_array_equal(parts[2], parts[0] + parts[1])
    assert np.abs(parts[0]).max() > 0 and np.abs(parts[1]).max() > 0


def test_concatenate_joins_branches_side_by_side_and_saves(tmp_path):
    """Keras's Concatenate (and layers.concatenate): the inputs' values side by side along the
    axis, the gradient split back, the model saved and loaded with its axis."""
    backend.set_floatx("float64")
    inputs = keras.Input(shape=(6, 6, 2))
    a = layers.Conv2D(3, 3, padding="same", activation="relu", name="a")(inputs)
    b = layers.Conv2D(2, 1, activation="relu", name="b")(inputs)
    both = layers.concatenate([a, b], name="both")
    assert keras.Model(inputs, both).output_shape == (None, 6, 6, 5)
    with pytest.raises(ValueError, match=r"Concatenate layer 'rows' joins along axis 1: its "
                                         r"inputs' other axes must be equal, got \(None, 6, 6, 5\), "
                                         r"\(None, 6, 6, 3\)"):
        layers.Concatenate(axis=1, name="rows")([both, a])  # along the height: channels differ
    with pytest.raises(ValueError, match=r"axis must be an axis of the examples"):
        layers.Concatenate(axis=0)
    model = keras.Model(inputs, layers.Dense(3, activation="softmax")(layers.Flatten()(both)))
    x = np.random.default_rng(0).random((4, 6, 6, 2))
    parts = [keras.Model(inputs, t).predict(x, verbose=0) for t in (a, b, both)]
    np.testing.assert_array_equal(parts[2], np.concatenate(parts[:2], axis=-1))
    model.compile("rmsprop", "categorical_crossentropy")
    y = np.eye(3)[[0, 1, 2, 0]]
    before = model.get_layer("b").get_weights()[0].copy()
    model.fit(x, y, epochs=2, verbose=0)
    assert np.abs(model.get_layer("b").get_weights()[0] - before).max() > 1e-6  # both branches learn
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    assert again.get_layer("both").axis == -1
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


def test_calling_a_model_on_an_array_is_predict():
    model = keras.Sequential([layers.Dense(4, activation="tanh", input_shape=(6,))])
    x = np.random.default_rng(0).standard_normal((5, 6)).astype("float32")
    np.testing.assert_array_equal(np.asarray(model(x)), model.predict(x))


def test_activation_given_as_a_function_is_the_named_one():
    a = layers.Dense(4, activation=keras.activations.relu)
    b = layers.Dense(4, activation="relu")
    x = np.random.default_rng(1).standard_normal((3, 5))
    assert a.activation is b.activation is keras.activations.relu
    backend.set_seed(0)
    ya = a(x)  # the weights are drawn when the layer first sees data
    backend.set_seed(0)
    np.testing.assert_array_equal(ya, b(x))


def test_reshape_rescaling_and_the_average_poolings_compute_their_formulas():
    x = np.arange(2 * 4 * 4 * 1, dtype="float64").reshape(2, 4, 4, 1)
    assert layers.Reshape((-1, 2))(x.reshape(2, 16)).shape == (2, 8, 2)
    np.testing.assert_array_equal(layers.Rescaling(0.5, offset=-1.0)(x), x * 0.5 - 1.0)
    # 'same' pooling of 3x3 windows, stride 2, on 4x4: out = ceil(4 / 2) = 2, one row and one
    # column of padding, at the end (TensorFlow's rule); the border windows average what they cover
    got = layers.AveragePooling2D(3, strides=2, padding="same")(x)[0, :, :, 0]
    img = x[0, :, :, 0]
    expected = [[img[0:3, 0:3].mean(), img[0:3, 2:4].mean()],
                [img[2:4, 0:3].mean(), img[2:4, 2:4].mean()]]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(layers.GlobalAveragePooling2D()(x), x.mean(axis=(1, 2)), rtol=1e-12)


# ---- losses, labels, metrics ---------------------------------------------------------------
def _fit_weights(loss, labels, metrics=("accuracy",), **fit_args):
    backend.set_floatx("float64")
    backend.set_seed(3)
    model = keras.Sequential([layers.Flatten(input_shape=(8, 8)), layers.Dense(3, activation="softmax")])
    model.compile("rmsprop", loss, list(metrics))
    x, _ = _digits()
    history = model.fit(x, labels, batch_size=16, epochs=2, verbose=0, seed=1, **fit_args)
    return model.get_weights(), history


def test_sparse_labels_train_exactly_as_their_one_hot_labels():
    _, y = _digits()
    one_hot, _ = _fit_weights("categorical_crossentropy", keras.utils.to_categorical(y, 3))
    sparse, _ = _fit_weights("sparse_categorical_crossentropy", y)
    column, _ = _fit_weights(keras.losses.SparseCategoricalCrossentropy(), y[:, None])
    for a, b, c in zip(one_hot, sparse, column):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-15)
        np.testing.assert_array_equal(c, b)


def test_metrics_are_logged_under_the_names_given():
    _, y = _digits()
    x, _ = _digits()
    _, history = _fit_weights("sparse_categorical_crossentropy", y, metrics=("acc",),
                              validation_data=(x, y))
    assert sorted(history.history) == ["acc", "loss", "val_acc", "val_loss"]
    assert history.params == {"verbose": 0, "epochs": 2, "steps": 4}


def test_class_weight_is_sample_weight_by_class():
    _, y = _digits()
    weights = {0: 1.0, 1: 3.0, 2: 0.5}
    by_class, _ = _fit_weights("sparse_categorical_crossentropy", y, class_weight=weights)
    by_sample, _ = _fit_weights("sparse_categorical_crossentropy", y,
                                sample_weight=np.array([weights[c] for c in y]))
    plain, _ = _fit_weights("sparse_categorical_crossentropy", y)
    for a, b in zip(by_class, by_sample):
        np.testing.assert_array_equal(a, b)
    assert np.abs(by_class[0] - plain[0]).max() > 1e-4


def test_a_class_the_class_weights_do_not_name_weighs_one_as_in_keras():
    _, y = _digits()
    some, _ = _fit_weights("sparse_categorical_crossentropy", y, class_weight={1: 3.0})
    full, _ = _fit_weights("sparse_categorical_crossentropy", y,
                           class_weight={c: 3.0 if c == 1 else 1.0 for c in range(3)})
    for a, b in zip(some, full):
        np.testing.assert_array_equal(a, b)


def test_a_weighted_loss_is_the_mean_of_weighted_example_losses_as_keras():
    backend.set_floatx("float64")
    model = keras.Sequential([layers.Dense(3, activation="softmax", input_shape=(4,))])
    model.compile("sgd", "sparse_categorical_crossentropy")
    r = np.random.default_rng(2)
    x, y, w = r.standard_normal((6, 4)), r.integers(0, 3, 6), r.random(6)
    p = model.predict(x)
    expected = float(np.mean(w * -np.log(p[np.arange(6), y])))  # sum(w L) / N, not / sum(w)
    assert model.evaluate(x, y, sample_weight=w) == pytest.approx(expected, rel=1e-12)


def test_sample_and_class_weights_weight_the_loss_not_the_accuracy_as_keras():
    """Keras weights the metrics of ``compile(metrics=...)`` by nothing (only its
    ``weighted_metrics``): the accuracy under sample or class weights is the plain fraction of
    right answers (tinynet weighted it, silently another number than Keras's)."""
    backend.set_floatx("float64")
    model = keras.Sequential([layers.Dense(3, activation="softmax", input_shape=(4,))])
    model.compile(keras.optimizers.SGD(learning_rate=0.0), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    r = np.random.default_rng(3)
    x, y, w = r.standard_normal((40, 4)), r.integers(0, 3, 40), r.random(40) * (r.random(40) > 0.5)
    p = model.predict(x)
    plain = float(np.mean(p.argmax(axis=1) == y))
    loss = float(np.mean(w * -np.log(p[np.arange(40), y])))
    assert np.mean(w * (p.argmax(axis=1) == y)) / w.mean() != pytest.approx(plain)  # would differ
    for result in (model.evaluate(x, y, sample_weight=w, verbose=0),
                   model.test_on_batch(x, y, sample_weight=w),
                   model.train_on_batch(x, y, sample_weight=w)):
        assert result == [pytest.approx(loss, rel=1e-12), pytest.approx(plain, abs=1e-15)]
    history = model.fit(x, y, sample_weight=w, batch_size=8, epochs=1, verbose=0,
                        validation_data=(x, y, w))
    assert history.history["accuracy"] == [pytest.approx(plain, abs=1e-15)]
    assert history.history["val_accuracy"] == [pytest.approx(plain, abs=1e-15)]
    history = model.fit(x, y, class_weight={0: 0.1, 1: 5.0, 2: 1.0}, batch_size=8, verbose=0)
    assert history.history["accuracy"] == [pytest.approx(plain, abs=1e-15)]


def test_evaluate_test_on_batch_and_predict_on_batch_return_what_keras_returns():
    backend.set_floatx("float64")
    model = keras.Sequential([layers.Dense(3, activation="softmax", input_shape=(4,))])
    x, y = np.random.default_rng(0).standard_normal((10, 4)), np.arange(10) % 3
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    loss, acc = model.evaluate(x, y)
    assert model.evaluate(x, y, return_dict=True) == {"loss": loss, "accuracy": acc}
    assert model.test_on_batch(x, y) == pytest.approx([loss, acc], rel=1e-12)
    np.testing.assert_array_equal(model.predict_on_batch(x), model.predict(x))
    model.compile("adam", "sparse_categorical_crossentropy")
    assert model.evaluate(x, y) == pytest.approx(loss, rel=1e-12)  # no metrics: the loss alone


def test_save_weights_and_load_weights_round_trip(tmp_path):
    a = keras.Sequential([layers.Dense(3, input_shape=(4,))])
    b = keras.Sequential([layers.Dense(3, input_shape=(4,))])
    a.save_weights(tmp_path / "w.npz")
    b.load_weights(tmp_path / "w.npz")
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)


# ---- utilities -----------------------------------------------------------------------------
def test_keras_dataset_loaders_are_tinynets(data_dir, monkeypatch):
    monkeypatch.setenv("TINYNET_DATA", str(data_dir))
    (x, y), (xt, yt) = keras.datasets.mnist.load_data()
    (x2, y2), _ = keras.datasets.load_mnist()
    assert x.shape == (60000, 28, 28) and x.dtype == np.uint8 and yt.shape == (10000,)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)


def test_to_categorical_takes_columns_and_whole_floats():
    expected = np.eye(3)[[2, 0, 1]]
    np.testing.assert_array_equal(keras.utils.to_categorical(np.array([[2], [0], [1]])), expected)
    np.testing.assert_array_equal(keras.utils.to_categorical([2.0, 0.0, 1.0], 3), expected)
    with pytest.raises(ValueError, match="integer labels"):
        keras.utils.to_categorical([0.5, 1.0])


def test_backend_answers_keras_questions():
    assert keras.backend.image_data_format() == "channels_last"
    assert keras.backend.floatx() == "float32"
    keras.utils.set_random_seed(5)
    a = keras.layers.Dense(2)(np.ones((1, 3)))
    keras.utils.set_random_seed(5)
    np.testing.assert_array_equal(keras.layers.Dense(2)(np.ones((1, 3))), a)


# ---- what tinynet does not have ------------------------------------------------------------
@pytest.mark.parametrize("get,names", [
    (lambda: keras.layers.LSTM, ["LSTM", "Dense", "Conv2D"]),
    (lambda: keras.regularizers, ["regularizers", "layers"]),
    (lambda: keras.callbacks.TensorBoard, ["TensorBoard", "EarlyStopping"]),
    (lambda: keras.datasets.cifar10, ["cifar10", "mnist"]),
    (lambda: keras.metrics.AUC, ["AUC", "accuracy"]),
    (lambda: keras.initializers.HeNormal, ["kernel_initializer='he_normal'", "lecun_normal"]),
    (lambda: keras.ops.softmax, ["ops", "write NumPy", "keras.activations.softmax(x)"]),
    (lambda: keras.utils.Progbar, ["Progbar", "to_categorical", "normalize"]),
])
def test_a_missing_keras_name_is_named_with_what_tinynet_has(get, names):
    with pytest.raises(AttributeError) as info:
        get()
    for name in names:
        assert name in str(info.value)


def test_from_import_of_a_missing_name_keeps_the_message():
    """``from keras.callbacks import TensorBoard``, the usual form in scripts: Python
    turns an AttributeError raised there into a bare "cannot import name"; tinynet's message must
    reach the user all the same, while hasattr() still answers False and tinynet's own modules
    not imported yet still import."""
    with pytest.raises(ImportError, match=r"TensorBoard is a Keras callback .* "
                                          r"LearningRateScheduler"):
        from tinynet.callbacks import TensorBoard  # noqa: F401
    with pytest.raises(ImportError, match=r"kernel_initializer='he_normal'"):
        from tinynet import initializers  # noqa: F401
    with pytest.raises(ImportError, match=r"BatchNormalization is a Keras layer .* Dense"):
        from tinynet.layers import Dense, BatchNormalization  # noqa: F401
    with pytest.raises(ImportError, match=r"'Nadam': that Keras optimizer is not implemented"):
        from tinynet.optimizers import Nadam  # noqa: F401
    with pytest.raises(ImportError, match=r"schedules has no 'ExponentialDecy'; it has .*"
                                          r"ExponentialDecay.*CosineDecayRestarts"):
        from tinynet.optimizers.schedules import ExponentialDecy  # noqa: F401
    with pytest.raises(ImportError, match=r"AUC: it is a Keras metric"):
        from tinynet.metrics import AUC  # noqa: F401
    assert not hasattr(keras.callbacks, "TensorBoard")
    assert getattr(keras.layers, "BatchNormalization", None) is None
    code = "import sys, tinynet; assert 'tinynet.gradcheck' not in sys.modules; " \
           "from tinynet import gradcheck; print(gradcheck.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "tinynet.gradcheck"


@pytest.mark.parametrize("base", [keras.Model, keras.Sequential])
def test_a_subclassed_model_is_refused_when_made_with_the_functional_way_shown(base):
    class MyModel(base):  # the TensorFlow quickstart "for experts": the forward pass in call()
        def __init__(self):
            super().__init__()
            self.d1 = layers.Dense(32, activation="relu")
            self.d2 = layers.Dense(10)

        def call(self, x):
            return self.d2(self.d1(x))

    with pytest.raises(TypeError, match=r"MyModel: subclassed models .* not implemented in "
                                        r"tinynet") as info:
        MyModel()
    for way in ("keras.Input((784,))", "keras.Model(inputs, outputs)", "keras.Sequential(["):
        assert way in str(info.value)


def test_a_model_subclass_without_call_is_a_model():
    class Classifier(keras.Model):  # a functional model in a class of its own: no call()
        def __init__(self):
            inputs = keras.Input((4,))
            super().__init__(inputs, layers.Dense(3, activation="softmax")(inputs))

    model = Classifier()
    assert model.count_params() == 15 and model.predict(np.ones((2, 4))).shape == (2, 3)


@pytest.mark.parametrize("make,error,excerpt", [
    (lambda: layers.Conv2D(4, 3, data_format="channels_first"), ValueError, "channels-last"),
    (lambda: layers.Dense(4, kernel_regularizer="l2"), TypeError, "kernel_regularizer= is not implemented"),
    (lambda: layers.Dense(4, kernel_initializer="orthogonal"), ValueError, "orthogonal"),
])
def test_keras_arguments_tinynet_lacks_are_refused_by_name(make, error, excerpt):
    with pytest.raises(error, match=excerpt):
        make()


# Keras 3's normal initialisers: (name, layer, input shape, the kernel's standard deviation and
# whether it is a normal cut at two of its underlying standard deviations, std / 0.8796). The
# shapes have fan_in != fan_out, so that a swapped fan changes the standard deviation.
NORMAL_INITIALIZERS = [
    ("he_normal", lambda i: layers.Dense(200, kernel_initializer=i), (400,), (2 / 400) ** 0.5, True),
    ("he_normal", lambda i: layers.Conv2D(64, 3, kernel_initializer=i), (8, 8, 32),
     (2 / (9 * 32)) ** 0.5, True),
    ("glorot_normal", lambda i: layers.Dense(200, kernel_initializer=i), (400,), (2 / 600) ** 0.5,
     True),
    ("glorot_normal", lambda i: layers.Conv2D(64, 3, kernel_initializer=i), (8, 8, 32),
     (2 / (9 * 32 + 9 * 64)) ** 0.5, True),
    ("lecun_normal", lambda i: layers.Dense(200, kernel_initializer=i), (400,), (1 / 400) ** 0.5,
     True),
    ("random_normal", lambda i: layers.Dense(200, kernel_initializer=i), (400,), 0.05, False),
    ("normal", lambda i: layers.Dense(200, kernel_initializer=i), (400,), 0.05, False),  # Keras 2
]


def _check_normal_draws(w, std, truncated):
    """The draws ``w`` have mean 0 and standard deviation ``std`` (to 3%: a std without Keras's
    0.8796 correction is 12% off, an untruncated one 14%); truncated ones lie within two
    standard deviations of the underlying normal, and reach close to that cut."""
    w = np.asarray(w, dtype=np.float64).ravel()
    assert abs(w.mean()) < 5 * std / np.sqrt(w.size)
    assert w.std() == pytest.approx(std, rel=0.03)
    cut = 2 * std / 0.87962566103423978
    if truncated:
        assert cut * 0.97 < np.abs(w).max() <= cut * (1 + 1e-6)
    else:
        assert np.abs(w).max() > cut * 1.5  # about 3.5 std: some dozens of 18,000 draws and more


@pytest.mark.parametrize("name,make,input_shape,std,truncated", NORMAL_INITIALIZERS)
def test_normal_initializers_draw_keras_distributions(name, make, input_shape, std, truncated):
    keras.utils.set_random_seed(0)
    layer = make(name)
    layer.build(input_shape)
    _check_normal_draws(layer.kernel, std, truncated)
    np.testing.assert_array_equal(layer.bias, 0)
    keras.utils.set_random_seed(0)  # the draws come from tinynet's generator, as every initialiser
    again = make(name)
    again.build(input_shape)
    np.testing.assert_array_equal(again.kernel, layer.kernel)


@pytest.mark.parametrize("name,make,input_shape,std,truncated", NORMAL_INITIALIZERS)
def test_keras_draws_the_distributions_the_normal_initializers_are_checked_against(
        name, make, input_shape, std, truncated):
    real_keras = pytest.importorskip("keras", reason="the [keras] extra is not installed")
    layer = make(name)
    layer.build(input_shape)
    w = real_keras.initializers.get(name)(tuple(layer.kernel.shape))
    _check_normal_draws(real_keras.ops.convert_to_numpy(w), std, truncated)


@pytest.mark.parametrize("name", ["random_uniform", "uniform", "RandomUniform",
                                  {"class_name": "RandomUniform",
                                   "config": {"seed": None, "minval": -0.05, "maxval": 0.05}}])
def test_the_random_uniform_initializer_draws_within_five_hundredths(name):
    """Keras 2 scripts' ``kernel_initializer="uniform"`` (Keras 3 still takes it) was refused."""
    keras.utils.set_random_seed(0)
    layer = layers.Dense(200, kernel_initializer=name)
    layer.build((300,))
    w = np.asarray(layer.kernel, dtype=np.float64)
    assert -0.05 <= w.min() < -0.0499 and 0.0499 < w.max() <= 0.05
    assert w.std() == pytest.approx(0.1 / 12 ** 0.5, rel=0.02)  # U(-a, a): std a / sqrt(3)
    assert layer.get_config()["kernel_initializer"] == "random_uniform"
    with pytest.raises(ValueError, match="not implemented"):
        layers.Dense(2, kernel_initializer={"class_name": "RandomUniform",
                                            "config": {"minval": -1.0, "maxval": 1.0}})


# ---- mistakes Keras lets pass --------------------------------------------------------------
def test_a_probability_loss_without_softmax_is_pointed_out():
    model = keras.Sequential([layers.Dense(3, input_shape=(4,))])
    with pytest.warns(UserWarning, match=r"no softmax.*activation='softmax'.*from_logits=True"):
        model.compile("adam", "sparse_categorical_crossentropy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))


@pytest.mark.parametrize("activation,loss,labels", [
    ("softmax", "SparseCategoricalCrossentropy", lambda r: r.integers(0, 3, 64)),
    ("sigmoid", "BinaryCrossentropy", lambda r: (r.random((64, 3)) > 0.5).astype("float32")),
])
def test_from_logits_after_a_softmax_trains_on_its_logits_as_keras_does(activation, loss, labels):
    # the TensorFlow tutorial's loss on a model that already ends in a softmax: applying the softmax
    # a second time trained on a wrong loss (3 epochs of MNIST: 1.62 instead of 0.38), silently
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 4)).astype("float32"), labels(rng)
    runs = []
    for from_logits in (False, True):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([layers.Input((4,)), layers.Dense(8, activation="relu"),
                                  layers.Dense(3, activation=activation)])
        if from_logits:
            with pytest.warns(UserWarning, match=rf"from_logits=True.*applies a {activation}.*"
                                                 r"as Keras on TensorFlow does.*activation=None"):
                model.compile("rmsprop", getattr(keras.losses, loss)(from_logits=True),
                              metrics=["accuracy"])
        else:
            model.compile("rmsprop", getattr(keras.losses, loss)(), metrics=["accuracy"])
        history = model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0).history
        runs.append((history, model.get_weights(), model.evaluate(x, y, verbose=0)))
    (h0, w0, e0), (h1, w1, e1) = runs
    assert h0 == h1 and e0 == e1 and h0["loss"][1] < h0["loss"][0]
    assert all(np.array_equal(a, b) for a, b in zip(w0, w1))


def test_a_custom_layer_with_only_call_is_refused_with_how_to_write_one():
    class Double(layers.Layer):
        def call(self, x):
            return 2 * x
    with pytest.raises(TypeError, match=r"Double: a custom layer with a call\(\) method.*"
                                        r"_forward\(self, x, training.*_backward\(self, dz"):
        Double()

    class ScaledDense(layers.Dense):  # a call() over a ready-made layer: Dense's pass would run
        def call(self, x):
            return 2 * super().call(x)
    with pytest.raises(TypeError, match="ScaledDense: a custom layer with a call"):
        ScaledDense(3)

    class Twice(layers.Layer):  # tinynet's way: both passes written (a call() beside them is fine)
        def call(self, x):
            return 2 * x

        def _forward(self, x, training, fused=None):
            return 2 * x

        def _backward(self, dz, need_input_grad=True, fused_output=None):
            return 2 * dz
    model = keras.Sequential([layers.Input((3,)), Twice(), layers.Dense(2)])
    x = np.arange(6, dtype="float32").reshape(2, 3)
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               (2 * x) @ model.layers[1].kernel + model.layers[1].bias, rtol=1e-6)


def test_an_unbuilt_model_says_how_its_kind_is_built():
    with pytest.raises(ValueError, match=r"not built yet.*Model\(inputs, outputs\)"):
        keras.Model().count_params()                       # a functional model has no build()
    with pytest.raises(ValueError, match=r"not built yet.*model.build\(\(None, \.\.\.\)\)"):
        keras.Sequential([layers.Dense(3)]).count_params()


def test_a_loss_that_does_not_fit_the_output_is_pointed_out_when_the_model_builds_late():
    # compiled before it knew its input shape: the checks ran on nothing and never again
    model = keras.Sequential([layers.Dense(8), layers.Dense(3, activation="softmax")])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.warns(UserWarning, match=r"from_logits=True.*applies a softmax"):
        model.fit(np.ones((4, 5), "float32"), np.arange(4) % 3, verbose=0)
    model = keras.Sequential([layers.Dense(3)])
    model.compile("adam", "sparse_categorical_crossentropy")
    with pytest.warns(UserWarning, match="no softmax"):
        model.build((None, 5))


def test_unscaled_pixels_are_pointed_out_once_unless_the_model_rescales_them():
    x = np.random.default_rng(0).integers(0, 256, (20, 8, 8)).astype("uint8")
    y = np.arange(20) % 3
    model = keras.Sequential([layers.Flatten(input_shape=(8, 8)), layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    with pytest.warns(UserWarning, match=r"0-255 pixel values.*x / 255.0.*Rescaling\(1 / 255\)"):
        model.fit(x, y, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(x, y, verbose=0)  # once per model
        rescaled = keras.Sequential([layers.Rescaling(1 / 255, input_shape=(8, 8)), layers.Flatten(),
                                     layers.Dense(3, activation="softmax")])
        rescaled.compile("adam", "sparse_categorical_crossentropy")
        rescaled.fit(x, y, verbose=0)
        model.fit(x / 255.0, y, verbose=0)
        table = keras.Sequential([layers.Dense(3, activation="softmax", input_shape=(4,))])
        table.compile("adam", "sparse_categorical_crossentropy")  # small integer features
        table.fit(np.random.default_rng(1).integers(0, 10, (20, 4)), y, verbose=0)
    # trained on [0, 1], asked to predict 0-255 pixels: saturated units, no word before
    scaled = keras.Sequential([layers.Flatten(input_shape=(8, 8)), layers.Dense(3, activation="softmax")])
    scaled.compile("adam", "sparse_categorical_crossentropy")
    scaled.fit(x / 255.0, y, verbose=0)
    with pytest.warns(UserWarning, match=r"0-255 pixel values; if the model was trained on "
                                         r"inputs scaled to \[0, 1\], it predicts nonsense"):
        scaled.predict(x)


def test_a_single_image_without_its_batch_axis_gets_the_fix():
    model = keras.Sequential([layers.Flatten(input_shape=(8, 8)), layers.Dense(3)])
    with pytest.raises(ValueError, match=r"single example without its batch axis: use x\[None\]"):
        model.predict(np.zeros((8, 8)))


def test_integer_labels_with_the_categorical_loss_get_both_fixes():
    model = keras.Sequential([layers.Dense(3, activation="softmax", input_shape=(4,))])
    model.compile("adam", "categorical_crossentropy")
    with pytest.raises(ValueError, match=r"to_categorical\(y, 3\).*sparse_categorical_crossentropy"):
        model.fit(np.zeros((5, 4)), np.zeros((5, 1), int), verbose=0)


@pytest.mark.parametrize("loss,labels,excerpt", [
    ("sparse_categorical_crossentropy", np.arange(5), r"class numbers up to 4.*3 units.*5 units"),
    ("categorical_crossentropy", np.eye(5), r"5 classes and the last layer 3 units.*5 units"),
])
def test_labels_with_more_classes_than_the_last_layer_say_what_to_change(loss, labels, excerpt):
    model = keras.Sequential([layers.Dense(3, activation="softmax", input_shape=(4,))])
    model.compile("adam", loss)
    with pytest.raises(ValueError, match=excerpt):
        model.fit(np.zeros((5, 4)), labels, verbose=0)


def test_keras_arguments_of_get_layer_train_on_batch_and_summary():
    model = keras.Sequential([layers.Input((4,)), layers.Dense(3, name="a"), layers.Dense(2, name="b")])
    assert model.get_layer(index=-1) is model.get_layer("b") is model.layers[1]
    assert model.get_layer(index=0).name == "a"
    with pytest.raises(ValueError, match="no index 2"):
        model.get_layer(index=2)
    lines = []
    model.summary(line_length=80, positions=[0.3, 0.6, 1.0], show_trainable=True, print_fn=lines.append)
    assert "Total params: 23" in lines[0]
    with pytest.raises(TypeError, match="expand_nested and layer_range are not implemented"):
        model.summary(expand_nested=True)
    model.compile("sgd", "mse")
    x, y = np.ones((2, 4)), np.zeros((2, 2))
    before = model.evaluate(x, y, verbose=0)
    assert model.train_on_batch(x, y, reset_metrics=True) == pytest.approx(before)
    with pytest.raises(TypeError, match="reset_metrics=False .* not implemented"):
        model.train_on_batch(x, y, reset_metrics=False)
    with pytest.raises(AttributeError, match="model.save.*to_keras"):
        model.export("saved")


def test_an_activation_function_of_ones_own_is_refused_even_named_like_a_built_in():
    """``activation=relu`` with the user's own leaky ``relu`` ran tinynet's relu instead, silently
    (the function was taken by its name); tinynet's and Keras's functions are still taken."""
    def relu(x):
        return np.where(x > 0, x, 0.1 * x)

    with pytest.raises(ValueError, match=r"activation=<function .*relu.* not a function of one's "
                                         r"own.* _forward and _backward"):
        layers.Dense(2, activation=relu)
    assert layers.Dense(2, activation=keras.activations.relu).activation is keras.activations.relu
    keras_module = pytest.importorskip("keras")
    assert layers.Dense(2, activation=keras_module.activations.sigmoid).activation_name == "sigmoid"


def test_a_layers_activation_is_its_function_as_in_keras():
    """Keras's ``layer.activation`` is the function itself (tinynet's was its name, a string:
    ``layer.activation(z)`` and ``layer.activation.__name__`` failed)."""
    z = np.array([[-1.0, 0.5, 2.0]])
    dense = layers.Dense(3, activation="relu")
    np.testing.assert_array_equal(dense.activation(z), [[0.0, 0.5, 2.0]])
    assert dense.activation.__name__ == "relu" and dense.activation_name == "relu"
    assert layers.Dense(3).activation is keras.activations.linear  # none: the identity
    out = layers.Dense(10, activation="softmax")
    assert out.activation is keras.activations.softmax
    np.testing.assert_allclose(out.activation(z).sum(axis=-1), 1.0)
    assert keras.activations.get("tanh") is keras.activations.tanh
    assert keras.activations.get(None) is keras.activations.linear
    out.activation = None  # the Grad-CAM idiom: the logits
    assert out.activation is keras.activations.linear and out.get_config()["activation"] == "linear"
    with pytest.raises(ValueError, match="'gelu' is a Keras activation that tinynet does not"):
        keras.activations.get("gelu")


def test_calling_a_model_or_a_layer_on_data_answers_numpy_as_tensorflow():
    """TensorFlow's quickstart: ``predictions = model(x_train[:1]).numpy()`` (it raised
    AttributeError on the NumPy array tinynet returned)."""
    model = keras.Sequential([layers.Input((4,)), layers.Dense(3)])
    x = np.random.default_rng(0).random((2, 4))
    out = model(x)
    assert type(out.numpy()) is np.ndarray
    np.testing.assert_array_equal(out.numpy(), model.predict(x))
    np.testing.assert_allclose(model.layers[0](x).numpy(), out.numpy(), rtol=1e-6)
    assert repr(out).startswith("array(")


def test_keras_input_batch_shape_mixed_precision_and_an_empty_batch():
    assert layers.Input(batch_shape=(None, 28, 28, 1)).shape == (None, 28, 28, 1)
    with pytest.raises(ValueError, match="fixed batch_size is not implemented"):
        layers.Input(batch_shape=(32, 4))
    with pytest.raises(ValueError, match=r"dtype=.mixed_float16. is not implemented .*no mixed "
                                         r"precision"):
        layers.Dense(2, dtype="mixed_float16")
    model = keras.Sequential([layers.Input((4,)), layers.Dense(2)])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match=r"x is empty \(shape \(0, 4\)\)"):  # not "batch_size ... 0"
        model.test_on_batch(np.zeros((0, 4)), np.zeros((0, 2)))


def test_a_softmax_followed_by_layers_that_pass_values_on_is_not_called_missing():
    """A softmax, then Dropout (or Reshape, or a linear Activation): the warning said the last
    layer had no softmax and to add activation='softmax' to it (Dropout takes none; on the
    Activation it would apply a second softmax). A Dense without softmax before Dropout is still
    named, as the layer that computes the outputs."""
    for after in ([layers.Dropout(0.0)], [layers.Reshape((3,))],
                  [layers.Dropout(0.0), layers.Activation("linear")]):
        model = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="softmax")]
                                 + after)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model.compile("sgd", "categorical_crossentropy")
    regrouped = keras.Sequential([keras.Input((4,)), layers.Dense(6, activation="softmax"),
                                  layers.Reshape((2, 3))])  # rows of 3 that are no distributions
    with pytest.warns(UserWarning, match=r"reads rows of the last axis, 3 value\(s\) after "
                                         r"'.*', but the softmax of '.*' makes rows of 6"):
        regrouped.compile("sgd", "categorical_crossentropy")
    for quiet, loss in (  # a sigmoid is element-wise; rows of 6 back together (a review)
            ([layers.Conv2D(1, 1, activation="sigmoid"), layers.Flatten()], "binary_crossentropy"),
            ([layers.Conv2D(6, 8, activation="softmax"), layers.Reshape((6, 1)), layers.Flatten()],
             "categorical_crossentropy")):
        model = keras.Sequential([keras.Input((8, 8, 3))] + quiet)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model.compile("sgd", loss)
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3, name="raw"), layers.Dropout(0.3)])
    with pytest.warns(UserWarning, match=r"but the layer that computes its outputs 'raw' has no "
                                         r"softmax"):
        model.compile("sgd", "categorical_crossentropy")


def test_dropout_after_the_output_s_softmax_is_pointed_out():
    """Dropout after the softmax (or sigmoid) that makes the outputs drops probabilities in
    training; a row that loses all of them is 0/0 in the loss: with 10 classes at rate 0.5 about
    one example in a thousand, a NaN loss at a random batch with advice about the learning rate
    (a new user's trial). Keras lets it pass; tinynet names the layers and the fix."""
    for last, loss in (("softmax", "categorical_crossentropy"), ("sigmoid", "binary_crossentropy")):
        model = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation=last, name="out"),
                                  layers.Dropout(0.5, name="late"), layers.Reshape((3,))])
        with pytest.warns(UserWarning, match=rf"Dropout 'late' comes after the {last} of 'out'.*"
                                             r"put the Dropout before 'out'") as said:
            model.compile("rmsprop", loss)
        assert ("NaN" in str(said[0].message)) == (last == "softmax")  # a sigmoid's are clipped
    # inside a model used as the last layer, and after one whose last layer has the softmax
    inner = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="softmax", name="p"),
                              layers.Dropout(0.5, name="inside")], name="inner")
    with pytest.warns(UserWarning, match=r"Dropout 'inside' comes after the softmax of 'p'"):
        keras.Sequential([keras.Input((4,)), inner]).compile("rmsprop", "categorical_crossentropy")
    inner = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="softmax", name="q")],
                             name="head")
    with pytest.warns(UserWarning, match=r"Dropout 'outside' comes after the softmax of 'q'.*"
                                         r"before 'head'"):
        keras.Sequential([keras.Input((4,)), inner, layers.Dropout(0.5, name="outside")]).compile(
            "rmsprop", "categorical_crossentropy")
    for quiet, logits in (([layers.Dropout(0.5), layers.Dense(3, activation="softmax")], False),
                          ([layers.Dense(3), layers.Dropout(0.5)], True)):  # no probabilities
        model = keras.Sequential([keras.Input((4,))] + quiet)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model.compile("rmsprop", keras.losses.CategoricalCrossentropy(from_logits=logits))
    # what the warning is about: a row whose probabilities are all dropped has a NaN loss
    rows = np.array([[0.0, 0.0, 0.0], [0.2, 0.0, 0.8]])
    with np.errstate(invalid="ignore"):
        loss = keras.losses.CategoricalCrossentropy().per_example(np.eye(3)[[0, 2]], rows)
    assert np.isnan(loss[0]) and np.isfinite(loss[1])


def test_arguments_given_by_position_mean_what_they_mean_in_keras():
    """Keras's positional order: a pooling's fourth argument and Flatten's first are data_format,
    tinynet took them for the layer's name, so 'channels_first' images were pooled and flattened
    as channels-last (a review: rows [44 61 53 20 ...] where Keras gives [44 53 58 47 ...])."""
    for make in (lambda: layers.MaxPooling2D(2, 2, "valid", "channels_first"),
                 lambda: layers.AveragePooling2D(2, None, "valid", "channels_first"),
                 lambda: layers.Flatten("channels_first"),
                 lambda: layers.GlobalAveragePooling2D("channels_first"),
                 lambda: layers.Conv2D(2, 3, 1, "same", "channels_first")):
        with pytest.raises(ValueError, match="channels-last only"):
            make()
    pool = layers.MaxPooling2D(2, 2, "valid", "channels_last", "pool")
    assert pool.name == "pool" and pool.strides == (2, 2)
    assert layers.Flatten("channels_last").name.startswith("flatten")
    with pytest.raises(ValueError, match=r"data_format='relu' is not a data format.*"
                                         r"activation='relu'"):
        layers.Conv2D(8, 3, 1, "same", "relu")  # activation is Keras's eighth argument
    assert layers.Input((4,), None, "float64").layer.name.startswith("input_layer")  # dtype
    with pytest.raises(ValueError, match="a seed per layer is not implemented"):
        layers.Dropout(0.5, None, 42)  # Keras: rate, noise_shape, seed (42 was the name)
    assert layers.InputLayer(batch_shape=(None, 6)).output_shape == (6,)
    # Keras 3.15's Input: shape, batch_size, dtype, sparse, ragged, batch_shape, name (a review)
    assert layers.Input(None, None, "float32", False, False, (None, 3)).shape == (None, 3)
    config = {"batch_shape": (None, 3), "dtype": "float32", "sparse": False, "ragged": False,
              "name": "from_config", "optional": False}  # keras.layers.InputLayer's get_config()
    assert layers.InputLayer(**config).output_shape == (3,)


def test_keras_defaults_of_what_tinynet_lacks_are_accepted_and_other_values_refused():
    """dilation_rate=1, groups=1, regularisers and constraints None (what code written from a
    layer's get_config passes) were refused as "not implemented"."""
    conv = layers.Conv2D(2, 3, dilation_rate=(1, 1), groups=1, kernel_regularizer=None,
                         bias_regularizer=None, activity_regularizer=None,
                         kernel_constraint=None, bias_constraint=None, data_format="channels_last")
    dense = layers.Dense(2, kernel_regularizer=None, lora_rank=None, quantization_config=None)
    layers.Dropout(0.5, noise_shape=None)
    layers.Input((3,), sparse=False)
    model = keras.Sequential([layers.Input((5, 5, 1)), conv, layers.Flatten(), dense])
    assert model.count_params() == 20 + 18 * 2 + 2
    for make, what in ((lambda: layers.Conv2D(2, 3, dilation_rate=2), "dilation_rate=1"),
                       (lambda: layers.Conv2D(2, 3, dilation_rate=(1, 2)), "dilation_rate=1"),
                       (lambda: layers.Conv2D(2, 3, groups=2), "groups=1"),
                       (lambda: layers.Dense(2, kernel_regularizer="l2"), "kernel_regularizer=None"),
                       (lambda: layers.Dropout(0.5, (None, 1)), "noise_shape=None")):
        with pytest.raises(TypeError, match=f"is not implemented in tinynet; only its default, "
                                            f"{re.escape(what)}, is accepted"):
            make()


# ---- from a Keras user's trial of the guides (2026-12-01, fifth session) -------------------
def test_sequential_pop_removes_the_last_layer_and_keeps_the_others_weights():
    backend.set_seed(0)
    model = keras.Sequential([keras.Input((4,)), layers.Dense(8, activation="relu"),
                              layers.Dense(3, activation="softmax")])
    x = np.random.default_rng(0).random((5, 4)).astype("float32")
    hidden = model.layers[0].get_weights()
    last = model.pop()
    assert isinstance(last, layers.Dense) and last.units == 3 and len(model.layers) == 1
    np.testing.assert_array_equal(model.predict(x), np.maximum(x @ hidden[0] + hidden[1], 0))
    model.add(layers.Dense(2, activation="softmax"))   # a new head, as the guide does
    assert model.predict(x).shape == (5, 2)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, np.arange(5) % 2, verbose=0)
    model.pop()
    model.pop()
    assert not model.built and model.layers == []
    with pytest.raises(IndexError, match="has no layer to pop"):
        model.pop()


def test_a_layer_added_after_pop_starts_with_a_fresh_optimizer_state():
    """The optimizer's state is kept by parameter position: the popped layer's must go, or the
    layer added in its place (of the same shape) would take it over."""
    backend.set_floatx("float64")
    try:
        x, y = _digits(16, shape=(4,))
        model = keras.Sequential([keras.Input((4,)), layers.Dense(3), layers.Dense(2)])
        model.compile(keras.optimizers.RMSprop(0.01), "sparse_categorical_crossentropy")
        model.fit(x, y % 2, epochs=2, verbose=0)
        model.pop()
        model.add(layers.Dense(2, activation="softmax"))
        model.train_on_batch(x, y % 2)
        g = model.layers[-1].grads[0]
        s = model.optimizer._slots[2]["s"]
        np.testing.assert_allclose(s, 0.1 * g * g, rtol=1e-12)   # rho = 0.9 from s = 0
        model.pop()
        model.add(layers.Dense(5))   # another shape: trains, not "used for another model"
        model.compile(keras.optimizers.RMSprop(0.01), "mse")
        model.fit(x, np.zeros((16, 5)), verbose=0)
    finally:
        backend.set_floatx("float32")


def test_the_loss_is_checked_against_a_last_layer_changed_after_compile():
    """compile warns when a probability loss meets an output without softmax; a pop() and add()
    after compile changed the last layer without a word, and training ran on the clipped
    cross-entropy of raw values. The check runs again when the model changed; only then."""
    x, y = _digits(16, shape=(4,))
    onehot = np.eye(3)[y % 3]
    model = keras.Sequential([keras.Input((4,)), layers.Dense(5, activation="tanh"),
                              layers.Dense(3, activation="softmax")])
    model.compile("rmsprop", "categorical_crossentropy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(x, onehot, verbose=0)  # nothing to say
    model.pop()
    model.add(layers.Dense(3))
    with pytest.warns(UserWarning, match=r"expects probabilities, but the last layer '.*' has no "
                                         r"softmax"):
        model.fit(x, onehot, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(x, onehot, verbose=0)  # said once


def test_validation_freq_and_validation_batch_size_as_in_keras():
    x, y = _digits(48, shape=(4,))
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    every_other = model.fit(x, y, epochs=5, validation_split=0.25, validation_freq=2, verbose=0)
    assert len(every_other.history["loss"]) == 5 and len(every_other.history["val_loss"]) == 2
    batches = []
    count = keras.callbacks.LambdaCallback(on_test_batch_end=lambda b, logs: batches.append(b))
    listed = model.fit(x, y, epochs=4, validation_data=(x, y), validation_freq=[1, 4],
                       validation_batch_size=7, verbose=0, callbacks=[count])
    assert len(listed.history["val_loss"]) == 2
    assert batches == list(range(7)) * 2   # 48 examples in batches of 7, after epochs 1 and 4
    assert listed.history["val_loss"][-1] == pytest.approx(model.evaluate(x, y, verbose=0),
                                                           rel=1e-6)
    with pytest.raises(ValueError, match="validation_freq must be an integer >= 1"):
        model.fit(x, y, validation_freq=0, verbose=0)
    with pytest.raises(ValueError, match="validation_batch_size must be a positive integer"):
        model.fit(x, y, validation_batch_size=0, verbose=0)


def test_what_fit_does_not_take_is_named_with_what_to_do():
    x, y = _digits(16, shape=(4,))
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(TypeError, match=r"steps_per_epoch= is not implemented.*goes on through "
                                        r"the data.*x\[:E \* S \* batch_size\] as one epoch would"):
        model.fit(x, y, steps_per_epoch=3, verbose=0)
    with pytest.raises(TypeError, match=r"fit\(\) got an unexpected keyword argument 'epoch'; "
                                        r"fit takes x, y \(arrays\), batch_size, epochs"):
        model.fit(x, y, epoch=3, verbose=0)
    with pytest.raises(TypeError, match="workers= is Keras 2's argument .*Keras 3 has it no more"):
        model.fit(x, y, workers=2, verbose=0)
    model.fit(x, y, steps_per_epoch=None, validation_steps=None, verbose=0)   # Keras's defaults


def test_several_inputs_or_outputs_and_shared_layers_say_what_to_do():
    inputs = keras.Input((4,))
    h = layers.Dense(5, name="h")(inputs)
    out = layers.Dense(2, name="out")(h)
    with pytest.raises(ValueError, match=r"several outputs are not implemented.*"
                                         r"model.forward\(x, record=outputs\)"):
        keras.Model(inputs, [h, out])
    with pytest.raises(ValueError, match="several inputs are not implemented"):
        keras.Model([inputs, keras.Input((4,))], out)
    with pytest.raises(ValueError, match="does not share layers .*a new layer, which has weights "
                                         "of its own"):
        h.layer(keras.Input((4,)))   # the layer "h" called a second time
    outputs = {}   # the way the message gives to read every layer's output
    model = keras.Model(inputs, out)
    model.forward(np.ones((3, 4)), record=outputs)
    assert {"h", "out"} <= set(outputs) and outputs["h"].shape == (3, 5)
    assert inputs.dtype == "float32" and h.dtype == "float32"   # Keras's KerasTensor.dtype


def test_optimizer_iterations_and_binary_accuracy_threshold_as_keras_scripts_use_them():
    x, y = _digits(32, shape=(4,))
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=8, verbose=0)
    assert model.optimizer.iterations == 4 and model.optimizer.iterations.numpy() == 4
    assert isinstance(model.optimizer.iterations.numpy(), int)
    model.optimizer.iterations.assign(10)   # Keras's way to set it
    assert model.optimizer.iterations == 10
    for value, expected in ((np.array(5), 5), (7.0, 7), (np.int64(3), 3)):   # as Keras's assign
        model.optimizer.iterations.assign(value)
        assert model.optimizer.iterations == expected
    for bad in (2.7, -1, "3", True, np.inf):
        with pytest.raises(ValueError, match="iterations counts steps: a whole number >= 0"):
            model.optimizer.iterations = bad
    assert keras.metrics.BinaryAccuracy(threshold=0.5).name == "binary_accuracy"
    with pytest.raises(ValueError, match="threshold=0.3 is not implemented.*leave threshold at 0.5"):
        keras.metrics.BinaryAccuracy(threshold=0.3)


def test_binary_accuracy_on_logits_counts_a_logit_above_zero_as_class_one():
    """The one accuracy that differs from Keras's on purpose (README): Keras 3.15 compares the
    logit itself with 0.5."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 5))
    y = (x[:, 0] + 0.3 * rng.standard_normal(200) > 0.2).astype("float32")
    model = keras.Sequential([keras.Input((5,)), layers.Dense(1)])
    model.compile("sgd", keras.losses.BinaryCrossentropy(from_logits=True), metrics=["accuracy"])
    logits = model.predict(x)[:, 0]
    _, accuracy = model.evaluate(x, y, verbose=0)
    assert accuracy == pytest.approx(np.mean((logits > 0) == y), abs=1e-12)
    assert accuracy != pytest.approx(np.mean((logits > 0.5) == y), abs=1e-12)


def test_binary_accuracy_of_a_softmax_output_thresholds_its_probabilities():
    """binary_accuracy on a softmax output trained with the categorical loss: the loop sees the
    softmax's logits (the fused loss), and "logit > 0" is "probability > 0.5" for a sigmoid only;
    the metric must count each unit's probability > 0.5, as Keras on the model's outputs. Class
    numbers cannot be compared unit by unit: refused with what to use."""
    rng = np.random.default_rng(0)
    x, classes = rng.standard_normal((90, 4)), rng.integers(0, 3, 90)
    y = np.eye(3)[classes]
    for loss, activation in [("categorical_crossentropy", "softmax"),
                             (keras.losses.CategoricalCrossentropy(from_logits=True), None)]:
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation=activation)])
        model.compile("sgd", loss, metrics=["binary_accuracy"])
        p = model.predict(x)
        if activation is None:  # logits: the probabilities they stand for
            p = np.exp(p) / np.exp(p).sum(axis=1, keepdims=True)
        expected = np.mean((p > 0.5) == (y > 0.5))
        assert model.evaluate(x, y, verbose=0)[1] == pytest.approx(expected, abs=1e-12)
        history = model.fit(x, y, epochs=1, batch_size=90, shuffle=False, verbose=0)
        assert history.history["binary_accuracy"][0] == pytest.approx(expected, abs=1e-12)
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["binary_accuracy"])
    before = model.get_weights()
    for call in (lambda: model.evaluate(x, classes, verbose=0),
                 lambda: model.fit(x, classes, verbose=0)):
        with pytest.raises(ValueError, match=r"labels need the outputs' shape \(None, 3\), got "
                                             r"\(None,\); for class numbers use "
                                             r"metrics=\['accuracy'\]"):
            call()
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # refused first


def test_a_metric_name_given_twice_is_logged_twice_as_keras():
    """Keras 3 logs metrics=["accuracy", "accuracy", CategoricalAccuracy(name="accuracy")] as
    accuracy, accuracy_1, accuracy_2 (checked against Keras 3.15); tinynet merged them into one,
    so the History lacked the keys a Keras script reads. (Keras's evaluate list then has one
    value more than its names, a quirk tinynet does not copy: one value a name.)"""
    x, y = _digits(16, shape=(4,))
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy",
                  metrics=["accuracy", "accuracy", keras.metrics.CategoricalAccuracy(name="accuracy")])
    history = model.fit(x, y % 3, verbose=0)
    assert sorted(history.history) == ["accuracy", "accuracy_1", "accuracy_2", "loss"]
    loss, *accuracies = model.evaluate(x, y % 3, verbose=0)
    assert len(accuracies) == 3 and len(set(accuracies)) == 1


def test_compile_takes_keras_none_defaults_and_names_what_it_refuses():
    """weighted_metrics=None and loss_weights=None are Keras's defaults, written out by some
    scripts: taken (as fit takes steps_per_epoch=None); a value is refused, named."""
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy", metrics=["accuracy"],
                  weighted_metrics=None, loss_weights=None, run_eagerly=False,
                  auto_scale_loss=True)
    assert model.metrics == ["accuracy"]
    for key, value in (("weighted_metrics", ["accuracy"]), ("loss_weights", [1.0])):
        with pytest.raises(TypeError, match=rf"compile: Keras's argument {key}= is not "
                                            r"implemented in tinynet"):
            model.compile("sgd", "categorical_crossentropy", **{key: value})


class _Tensor:
    """Another framework's tensor: converts with np.asarray, has a shape, and a dtype NumPy does
    not know (tf.float32, torch.float32)."""

    def __init__(self, a):
        self._a, self.shape, self.dtype = a, a.shape, "tensor.float32"

    def __array__(self, dtype=None, copy=None):
        return self._a if dtype is None else self._a.astype(dtype)


def test_tensors_are_taken_as_arrays_and_generators_or_a_missing_y_are_named():
    """Keras takes TensorFlow tensors (``tf.one_hot(y, 3)``): tinynet failed inside NumPy on
    their dtype. A generator or dataset (not supported) and a forgotten y said only "missing 1
    required positional argument: 'y'" or "must be an array"."""
    x, y = _digits(32, shape=(4,))
    onehot = np.eye(3, dtype="float32")[y % 3]
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy", metrics=["accuracy"])
    assert model.evaluate(_Tensor(x), _Tensor(onehot), verbose=0) == \
        model.evaluate(x, onehot, verbose=0)
    np.testing.assert_array_equal(model.predict(_Tensor(x)), model.predict(x))
    history = model.fit(_Tensor(x), _Tensor(onehot), validation_data=(_Tensor(x), onehot),
                        verbose=0)
    assert sorted(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    batches = ((x[i:i + 8], onehot[i:i + 8]) for i in range(0, 32, 8))
    for call in (lambda: model.fit(batches, verbose=0), lambda: model.predict(batches)):
        with pytest.raises(TypeError, match=r"x is a generator, not an array: tinynet takes the "
                                            r"data as arrays.*np.concatenate"):
            call()
    with pytest.raises(TypeError, match=r"fit: y is missing; fit needs the targets: "
                                        r"model.fit\(x, y, ...\)"):
        model.fit(x, verbose=0)
    with pytest.raises(TypeError, match=r"evaluate: y is missing"):
        model.evaluate(x, verbose=0)
    with pytest.raises(TypeError, match=r"y is missing; give validation_data=\(x_val, y_val\)"):
        model.fit(x, onehot, validation_data=(x, None), verbose=0)
    with pytest.raises(TypeError, match=r"fit: x must be an array, got str$"):
        model.fit("train.csv", onehot, verbose=0)  # not "a generator or dataset"


def test_tinynets_own_modules_are_attributes_of_the_package():
    """``import tinynet; tinynet.gradcheck`` (the README names it so) said "a Keras name that
    tinynet does not implement"; ``tf.keras`` says how to write it."""
    code = ("import sys, tinynet; assert 'tinynet.gradcheck' not in sys.modules; "
            "print(tinynet.gradcheck.__name__, tinynet.interop.__name__, "
            "tinynet.report_models.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["tinynet.gradcheck", "tinynet.interop", "tinynet.report_models"]
    with pytest.raises(AttributeError, match="tinynet is itself the keras module"):
        keras.keras  # noqa: B018
    assert not hasattr(keras, "BatchNormalization")
    assert not hasattr(keras, "layers.base") and getattr(keras, "x.y", None) is None


def test_a_progress_bar_that_cannot_redraw_prints_one_line_an_epoch(capsys):
    """verbose=1 (Keras's "auto") with stderr, where the bar goes, to a file or pipe: the bar
    wrote every frame of itself there (16 an epoch in a log file); now one line an epoch
    (tinynet's choice: Keras 3.15 writes its frames into a file all the same)."""
    x, y = _digits(32, shape=(4,))
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=8, epochs=2)   # pytest's capture is not a terminal
    out, err = capsys.readouterr()
    assert [line.split(" - ")[0] for line in out.splitlines()] == ["Epoch 1/2", "4/4", "Epoch 2/2",
                                                                  "4/4"]
    assert "\r" not in err and "batch/s" not in err and history.params["verbose"] == 1
    model.evaluate(x, y)
    assert capsys.readouterr().out.startswith("1/1 - ")   # evaluate: batches of 32
    model.predict(x, verbose=2)   # Keras's one line for predict too
    assert capsys.readouterr().out.startswith("1/1 - ")


def test_in_a_terminal_verbose_1_is_a_progress_bar(capsys, monkeypatch):
    monkeypatch.setattr("tinynet.training._isatty", lambda stream: True)
    x, y = _digits(32, shape=(4,))
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=8, epochs=2)
    out, err = capsys.readouterr()
    assert out == "" and "Epoch 2/2" in err and "4/4" in err and "loss=" in err


def test_sample_weight_and_class_weight_together_are_refused_as_keras_refuses_them():
    x, y = _digits(16, shape=(4,))
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    for train in (lambda **w: model.fit(x, y, verbose=0, **w),
                  lambda **w: model.train_on_batch(x, y, **w)):
        with pytest.raises(ValueError, match="give sample_weight or class_weight, not both"):
            train(sample_weight=np.ones(16), class_weight={0: 2.0})


def test_no_pixel_warning_when_a_rescaling_comes_first_however_the_model_is_built():
    """The TF tutorial wraps a model that starts with Rescaling: Sequential([model, Softmax()]);
    predict on its uint8 images warned, and its advice (divide by 255) would scale them twice."""
    x = np.random.default_rng(0).integers(0, 256, (6, 8, 8)).astype("uint8")
    inner = keras.Sequential([layers.Input((8, 8)), layers.Rescaling(1 / 255), layers.Flatten(),
                              layers.Dense(3)])
    reshaped = keras.Sequential([layers.Input((64,)), layers.Reshape((8, 8)),
                                 layers.Rescaling(1 / 255), layers.Flatten(), layers.Dense(3)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        keras.Sequential([inner, layers.Softmax()]).predict(x)
        reshaped.predict(x.reshape(6, 64))
        weightless = keras.Sequential([layers.Input((64,)), layers.Reshape((8, 8))])
        keras.Sequential([layers.Input((64,)), weightless, layers.Rescaling(1 / 255),
                          layers.Flatten(), layers.Dense(3)]).predict(x.reshape(6, 64))
    trained = keras.Sequential([layers.Input((8, 8)), layers.Flatten(), layers.Dense(3)])
    trained.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.warns(UserWarning, match=r"if the model was trained on inputs scaled to \[0, 1\]"):
        trained.evaluate(x, np.zeros(6, int), verbose=0)


def test_sample_weights_as_a_column_weigh_as_keras_does():
    """Keras takes sample weights of shape (N, 1) as the (N,) ones; tinynet refused them (in fit,
    in a validation_data triple and in evaluate), found by a trial against Keras 3.15."""
    backend.set_floatx("float64")
    rng = np.random.default_rng(0)
    x, y, w = rng.random((20, 4)), np.eye(3)[rng.integers(0, 3, 20)], rng.random(20)

    def run(weights):
        backend.set_seed(0)
        model = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="softmax")])
        model.compile("sgd")
        history = model.fit(x, y, sample_weight=weights, epochs=2, batch_size=7, verbose=0,
                            shuffle=False, validation_data=(x, y, weights))
        return history.history, model.evaluate(x, y, sample_weight=weights, verbose=0)
    assert run(w.reshape(-1, 1)) == run(w)
    assert run(w) != run(None)


def test_shuffle_batch_keeps_the_batches_of_shuffle_false_in_a_shuffled_order():
    from tinynet import training
    backend.set_seed(0)
    order = training._epoch_order(10, 4, "batch")
    assert [sorted(order[i:i + 4]) for i in (0, 4, 8)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert any(not np.array_equal(training._epoch_order(10, 4, "batch"), np.arange(10))
               for _ in range(5))   # shuffled within the batches
    backend.set_floatx("float64")
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 5)), rng.integers(0, 3, 64)
    weights = {}
    for shuffle in (False, "batch", True):
        backend.set_seed(0)
        model = keras.Sequential([layers.Input((5,)), layers.Dense(3, activation="softmax")])
        model.compile(keras.optimizers.SGD(0.5), "sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=16, epochs=2, shuffle=shuffle, verbose=0)
        weights[shuffle] = model.get_weights()[0]
    # the same batches: the same steps up to the order of a batch's sum (as in Keras)
    np.testing.assert_allclose(weights["batch"], weights[False], rtol=0, atol=1e-13)
    assert np.abs(weights[True] - weights[False]).max() > 1e-4


def test_a_layer_is_made_again_from_its_config_or_from_a_keras_config():
    dense = layers.Dense(3, activation="relu", kernel_initializer="he_normal", name="d")
    again = layers.Dense.from_config(dense.get_config())
    assert again.get_config() == dense.get_config() and again.kernel_initializer == "he_normal"
    conv = layers.Conv2D(4, 3, padding="same", kernel_initializer="lecun_uniform")
    assert type(conv)(**conv.get_config()).kernel_initializer == "lecun_uniform"
    # what keras.layers.Dense(3, kernel_initializer="he_normal").get_config() holds
    keras_config = {
        "name": "dense", "trainable": True,
        "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"},
                  "registered_name": None},
        "units": 3, "activation": "linear", "use_bias": True,
        "kernel_initializer": {"module": "keras.initializers", "class_name": "HeNormal",
                               "config": {"seed": None}, "registered_name": None},
        "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros",
                             "config": {}, "registered_name": None},
        "kernel_regularizer": None, "bias_regularizer": None, "kernel_constraint": None,
        "bias_constraint": None, "quantization_config": None}
    assert layers.Dense.from_config(keras_config).kernel_initializer == "he_normal"
    seeded = {**keras_config, "kernel_initializer": {"class_name": "HeNormal", "config": {"seed": 3}}}
    with pytest.raises(ValueError, match=r"kernel_initializer=\{'class_name': 'HeNormal', "
                                         r"'config': \{'seed': 3\}\} is not implemented in tinynet"):
        layers.Dense.from_config(seeded)
    mixed = {**keras_config, "dtype": {"class_name": "DTypePolicy", "config": {"name": "mixed_float16"}}}
    with pytest.raises(ValueError, match="dtype='mixed_float16' is not implemented in tinynet"):
        layers.Dense.from_config(mixed)
    with pytest.raises(NotImplementedError, match="Sequential.from_config: Keras's from_config "
                                                  "is not implemented in tinynet; tinynet saves"):
        keras.Sequential.from_config({})


def test_keras_per_output_forms_of_a_model_of_one_input_and_one_output():
    """Keras's dicts and lists keyed or ordered by output (compile's loss and metrics, Model's
    inputs and outputs) name the one output of a tinynet model; they were refused with
    "unknown loss class None" and "inputs must come from layers.Input"."""
    x_in = keras.Input((4,), name="pixels")
    out = layers.Dense(3, activation="softmax", name="probs")(x_in)
    model = keras.Model({"pixels": x_in}, {"probs": out})
    assert model.output_names == ["probs"] and model.input.name == "pixels"
    for loss, metrics in (({"probs": "categorical_crossentropy"}, {"probs": ["accuracy"]}),
                          (["categorical_crossentropy"], [["accuracy"]])):
        model.compile("sgd", loss, metrics=metrics)
        assert type(model.loss).__name__ == "CategoricalCrossentropy"
        assert model.metrics == ["accuracy"]
    with pytest.raises(ValueError, match=r"compile: loss is a dict of keys \['out'\]; tinynet "
                                         r"models have one output, here named 'probs': give the "
                                         r"loss itself or \{'probs': loss\}"):
        model.compile("sgd", {"out": "mse"})
    with pytest.raises(ValueError, match=r"fit: x is a list of 2 arrays of examples, Keras's form "
                                         r"for a model of 2 inputs; tinynet models have one input"):
        x = np.zeros((5, 4))
        model.fit([x, x], np.eye(3)[np.arange(5) % 3], verbose=0)


def test_the_keys_of_models_dicts_name_its_input_and_output_and_configs_stay_configs():
    """A review's cases: Keras names a model's input and output by the keys of the dicts it was
    made with (output_names stays the layer's name, as in Keras 3.15); a loss's configuration (a
    dict) is not a loss per output; [y] of one example."""
    x_in = keras.Input((4,))
    model = keras.Model({"image": x_in},
                        {"prob": layers.Dense(3, activation="softmax", name="d")(x_in)})
    assert model.output_names == ["d"]
    model.compile("sgd", {"prob": "categorical_crossentropy"}, metrics={"prob": "accuracy"})
    assert model.metrics == ["accuracy"]
    x, y = np.random.default_rng(0).random((8, 4)), np.eye(3)[np.arange(8) % 3]
    keyed = model.fit({"image": x}, {"prob": y}, epochs=1, verbose=0).history["loss"]
    assert np.isfinite(keyed).all()
    one = model.evaluate(x[:1], [y[:1]], verbose=0)   # Keras's [y] for one example
    assert one == model.evaluate(x[:1], y[:1], verbose=0)
    config = keras.losses.CategoricalCrossentropy(label_smoothing=0.1).get_config()
    model.compile("sgd", config)
    assert model.loss.label_smoothing == 0.1


def test_a_models_dict_keys_survive_save_and_a_lone_metric_object_is_taken(tmp_path):
    x_in = keras.Input((4,))
    model = keras.Model({"image": x_in}, {"prob": layers.Dense(3, activation="softmax")(x_in)})
    model.compile("sgd", "categorical_crossentropy",
                  metrics={"prob": keras.metrics.CategoricalAccuracy()})
    assert model.metrics == ["categorical_accuracy"]
    model.save(tmp_path / "keys.keras")
    loaded = keras.models.load_model(tmp_path / "keys.keras")
    x, y = np.random.default_rng(0).random((8, 4)), np.eye(3)[np.arange(8) % 3]
    np.testing.assert_array_equal(loaded.evaluate({"image": x}, {"prob": y}, verbose=0),
                                  model.evaluate(x, y, verbose=0))
    # its outputs come as Keras 3.15 gives them, {key: output} (a bare array broke
    # model.predict(x)["prob"]; an audit of the README)
    for out in (loaded.predict(x), loaded.predict_on_batch(x), loaded(x)):
        assert list(out) == ["prob"] and out["prob"].shape == (8, 3)
    np.testing.assert_array_equal(loaded(x)["prob"].numpy(), model.predict(x)["prob"])


def test_the_progress_bar_of_a_notebook_needs_ipywidgets(monkeypatch):
    """In Jupyter without ipywidgets, tqdm.auto warns "IProgress not found" and draws text:
    tinynet takes the text bar there itself (one choice for fit, HOG features, downloads)."""
    import importlib.util
    import types
    import tqdm as tqdm_mod
    from tinynet import sysinfo
    assert sysinfo.progress_bar() is tqdm_mod.tqdm  # no kernel: the text bar
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "ipywidgets" else real(name, *a))
    assert sysinfo.progress_bar() is tqdm_mod.tqdm


def test_normalize_gives_each_vector_along_the_axis_norm_one():
    x = np.random.default_rng(0).integers(0, 256, (3, 28, 28)).astype(np.uint8)
    x[0, :, 3] = 0  # a column of zeros stays zeros (Keras divides it by 1)
    y = keras.utils.normalize(x, axis=1)
    norms = np.linalg.norm(y, axis=1)
    np.testing.assert_allclose(np.delete(norms[0], 3), 1.0, rtol=1e-12)
    np.testing.assert_allclose(norms[1:], 1.0, rtol=1e-12)
    assert y.dtype == np.float64 and not y[0, :, 3].any()
    np.testing.assert_allclose(keras.utils.normalize(np.array([[3.0, 4.0]])), [[0.6, 0.8]])
    np.testing.assert_allclose(keras.utils.normalize(np.array([[3.0, 4.0]]), order=1),
                               [[3 / 7, 4 / 7]])
    with pytest.raises(ValueError, match="normalize: give the axis"):
        keras.utils.normalize(x, axis=None)


def test_class_weight_with_a_label_per_position_is_refused_not_read_as_one_hot_rows():
    """Class numbers for each of 4 positions, (N, 4): the argmax of each row (the position of the
    largest class number) was looked up as the example's class, silently (weights of 100 fell on
    examples of no particular class); one-hot rows of the output's shape still are read so."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 5)), rng.integers(0, 3, (64, 4))
    model = keras.Sequential([layers.Input((5,)), layers.Dense(12), layers.Reshape((4, 3)),
                              layers.Softmax()])
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"class_weight needs one label per example; with a label "
                                         r"per position \(y of shape \(64, 4\)\)"):
        model.fit(x, y, class_weight={2: 100.0}, verbose=0)
    flat = keras.Sequential([layers.Input((5,)), layers.Dense(4, activation="softmax")])
    flat.compile("sgd", "categorical_crossentropy")
    one_hot = np.eye(4)[y[:, 0]]
    weighted = flat.evaluate(x, one_hot, verbose=0)
    assert flat.train_on_batch(x, one_hot, class_weight={0: 3.0}) != weighted  # weighted by class


def test_scipy_sparse_x_and_numpy_matrix_y_train_as_their_arrays():
    """A SciPy sparse x (TF-IDF features) gave a bare "truth value of an array is ambiguous", and
    class numbers as an np.matrix column crashed inside the epoch; Keras trains on both."""
    sparse = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 5)), rng.integers(0, 3, 40)
    losses = []
    for xs, ys in ((x, y), (sparse.csr_matrix(x), np.matrix(y).T)):
        backend.set_seed(0)
        model = keras.Sequential([layers.Input((5,)), layers.Dense(3, activation="softmax")])
        model.compile("sgd", "sparse_categorical_crossentropy")
        losses.append(model.fit(xs, ys, batch_size=8, shuffle=False, verbose=0).history["loss"]
                      + [model.evaluate(xs, ys, verbose=0)] + list(model.predict(xs)[0]))
    assert losses[0] == losses[1]


def test_train_on_batch_says_its_non_finite_step_was_undone():
    """``fit``'s message gave the epoch, the batch and what to do; ``train_on_batch``'s said only
    "the loss is NaN or infinite" (after NumPy's overflow warnings)."""
    model = keras.Sequential([layers.Input((2,)), layers.Dense(1)])
    model.compile("sgd", "mse")
    before = model.get_weights()
    with warnings.catch_warnings(), pytest.raises(
            keras.NonFiniteLossError, match=r"train_on_batch: the loss is NaN or infinite; the "
                                            r"step is undone .*lower the learning rate"):
        warnings.simplefilter("ignore")  # NumPy's overflow in float32
        model.train_on_batch(np.array([[1e30, 1e30]]), np.array([[0.0]]))
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


# ---- from a Keras user's trial on tabular data (2026-12-02, eleventh session) ---------------
def test_an_accuracy_on_regression_targets_is_pointed_out_once():
    """``metrics=["accuracy"]`` on a regression (a common tutorial slip) reported 0.72 to 1.00 on
    house prices whose squared error stayed at 392, without a word (Keras 3 reports about 0)."""
    x = np.random.default_rng(0).random((40, 3))
    def fit(y, loss="mse", metrics=("accuracy",), units=1, activation=None):
        model = keras.Sequential([layers.Input((3,)), layers.Dense(units, activation=activation)])
        model.compile("sgd", loss, metrics=list(metrics))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(x, y, epochs=2, verbose=0)
            model.evaluate(x, y, verbose=0)
        return [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    prices = 20 + 5 * x[:, 0]
    said = fit(prices)
    assert len(said) == 1 and re.search(r"'accuracy' on targets that are not 0/1 labels \(from "
                                        r"20\.\d+ to 24\.\d+\).*not a regression", said[0])
    assert len(fit(x[:, 0], metrics=["binary_accuracy"])) == 1  # in [0, 1], but with mse
    labels = (x[:, 0] > 0.5).astype(float)
    assert fit(labels) == []                                   # 0/1 targets, mse: a classifier
    assert fit(x[:, 0], "binary_crossentropy", activation="sigmoid") == []  # soft labels
    assert fit(prices, metrics=()) == []
    assert fit((x[:, 0] * 3).astype(int), "sparse_categorical_crossentropy", units=3,
               activation="softmax") == []


class _Table:
    """What a pandas DataFrame of a float and a bool column gives NumPy: an object array (the
    test runs without pandas; with it, ``pd.DataFrame({"a": f, "b": f > 0})`` is the same)."""

    def __init__(self, columns):
        self.columns = columns
        self.dtypes = {name: np.asarray(c).dtype for name, c in columns.items()}

    def __array__(self, dtype=None, copy=None):
        return np.array(list(zip(*self.columns.values())), dtype=object)


def test_a_table_of_float_and_bool_columns_trains_as_its_numbers():
    """Keras trains on a DataFrame with a bool column; tinynet said "x has dtype object, which
    cannot be used as numbers" of a table the user never made an object array of."""
    f = np.random.default_rng(0).normal(size=30)
    runs = []
    for x in (_Table({"a": f, "smoker": f > 0}), np.column_stack([f, f > 0]).astype(float)):
        backend.set_seed(0)
        model = keras.Sequential([layers.Input((2,)), layers.Dense(1)])
        model.compile("sgd", "mse")
        runs.append(model.fit(x, 2 * f, epochs=2, shuffle=False, verbose=0).history["loss"])
    assert runs[0] == runs[1]
    with pytest.raises(TypeError, match=r"x has dtype object \(a table whose columns are of "
                                        r"type <U1, float64\).*x\.astype\('float32'\)"):
        model.fit(_Table({"a": f, "s": ["x"] * 30}), f, verbose=0)
    with pytest.raises(TypeError, match=r"x has dtype object, which cannot"):
        model.fit(np.column_stack([f, f]).astype(object), f, verbose=0)  # refused by Keras too


def test_a_missing_or_extra_last_axis_of_one_is_added_or_dropped_as_keras_3_does():
    """TensorFlow's basic regression tutorial fits ``Dense(1, input_shape=[1])`` on a column of
    horsepower, shape (N,); Keras 3 adds the axis (and drops an extra one), tinynet refused."""
    rng = np.random.default_rng(0)
    h, y = rng.random(20), rng.random(20)
    results = []
    for x in (h, h[:, None], h[:, None, None]):
        backend.set_seed(0)
        model = keras.Sequential([layers.Dense(1, input_shape=[1])])
        model.compile("sgd", "mse")
        loss = model.fit(x, y, epochs=2, shuffle=False, verbose=0).history["loss"]
        results.append((loss, model.evaluate(x, y, verbose=0), model.predict(x)))
    for other in results[1:]:
        assert other[0] == results[0][0] and other[1] == results[0][1]
        np.testing.assert_array_equal(other[2], results[0][2])
    with pytest.raises(ValueError, match=r"expects input of shape \(None, 1\), got \(None, 2\)"):
        model.predict(rng.random((3, 2)))
    backend.set_seed(0)  # Keras's [x] for a one-input model, x a vector (a review)
    model = keras.Sequential([layers.Dense(1, input_shape=[1])])
    model.compile("sgd", "mse")
    assert model.fit([h], y, epochs=2, shuffle=False, verbose=0).history["loss"] == results[0][0]
    # a model used as a layer, on images without their channel axis (a review)
    x = rng.random((10, 6, 6))
    runs = []
    for shape, images in (((6, 6), x), ((6, 6, 1), x[..., None])):
        backend.set_seed(0)
        inner = keras.Sequential([layers.Input((6, 6, 1)), layers.Conv2D(2, 3), layers.Flatten(),
                                  layers.Dense(3, activation="softmax")])
        outer_input = layers.Input(shape)
        outer = keras.Model(outer_input, inner(outer_input))
        outer.compile("sgd", "sparse_categorical_crossentropy")
        runs.append(outer.fit(images, np.arange(10) % 3, epochs=2, shuffle=False,
                              verbose=0).history["loss"] + [outer.get_weights()])
    assert runs[0][:2] == runs[1][:2]
    for a, b in zip(runs[0][2], runs[1][2]):
        np.testing.assert_array_equal(a, b)


def test_a_regression_s_errors_are_logged_and_early_stopping_minimises_them():
    """``loss="mae"`` and ``metrics=["mae"]``/``["mse"]`` (Keras's regression tutorials) were
    refused; the errors are the means over examples and outputs of |p - y| and (p - y)²."""
    rng = np.random.default_rng(0)
    x = rng.random((40, 3))
    y = x @ np.array([1.0, -2.0, 3.0]) + 0.5
    model = keras.Sequential([layers.Input((3,)), layers.Dense(1)])
    model.compile("sgd", "mae", metrics=["mae", keras.metrics.MeanSquaredError()])
    stop = keras.callbacks.EarlyStopping(monitor="val_mae", patience=0)
    h = model.fit(x, y, validation_split=0.25, epochs=3, shuffle=False, verbose=0,
                  callbacks=[stop]).history
    assert sorted(h) == ["loss", "mae", "mean_squared_error", "val_loss", "val_mae",
                         "val_mean_squared_error"]
    p = model.predict(x[30:])[:, 0]
    loss, mae, mse = model.evaluate(x[30:], y[30:], verbose=0)
    assert loss == pytest.approx(np.mean(np.abs(p - y[30:])), rel=1e-6)
    assert mae == pytest.approx(loss, rel=1e-12)
    assert mse == pytest.approx(np.mean((p - y[30:]) ** 2), rel=1e-6)
    assert h["val_mae"] == pytest.approx(h["val_loss"], rel=1e-12)
    assert stop._max is False  # the error is minimised (it was taken for an accuracy)
    metric = keras.metrics.MeanAbsoluteError()
    metric.update_state(np.array([[1.0], [2.0]]), np.array([[1.5], [1.0]]))
    metric.update_state(np.array([[0.0]]), np.array([[0.0]]), sample_weight=[2.0])
    assert float(metric.result()) == pytest.approx((0.5 + 1.0 + 0.0) / 4)


@pytest.mark.parametrize("given, logged", [
    (["MAE", "MSE"], ["MAE", "MSE"]),
    (["MeanAbsoluteError", "mean_squared_error"], ["MeanAbsoluteError", "mean_squared_error"]),
    ([keras.metrics.mean_absolute_error, keras.losses.mse], ["mean_absolute_error",
                                                              "mean_squared_error"]),
])
def test_every_keras_name_of_the_errors_is_taken_and_logged_as_given(given, logged):
    """Keras 3 takes 'MAE', class names as strings and its metric functions, and logs each under
    the string given or the function's name; tinynet refused them as unknown (a review)."""
    rng = np.random.default_rng(0)
    x, y = rng.random((20, 3)), rng.random(20)
    model = keras.Sequential([layers.Input((3,)), layers.Dense(1)])
    model.compile("sgd", "mse", metrics=given)
    h = model.fit(x, y, epochs=1, verbose=0).history
    assert sorted(h) == sorted(logged + ["loss"])
    p = model.predict(x)[:, 0]
    values = dict(zip(["loss"] + logged, model.evaluate(x, y, verbose=0)))
    assert values[logged[0]] == pytest.approx(np.mean(np.abs(p - y)), rel=1e-6)
    assert values[logged[1]] == pytest.approx(np.mean((p - y) ** 2), rel=1e-6)
    from tinynet import plots
    assert plots._accuracy_key(h) == logged[0]  # plot_history of the dict alone shows it too


def test_an_unbuilt_layer_has_no_parameter_count_as_in_keras():
    """``Dense(3).count_params()`` answered 0 (Keras raises: the weights do not exist yet); a
    layer without weights answers 0 built or not, as Keras's (a review: a first version refused
    them too)."""
    for unbuilt in (layers.Dense(3), layers.Conv2D(2, 3)):
        with pytest.raises(ValueError, match=r"layer '.*' is not built yet.*layer\.build"):
            unbuilt.count_params()
    dense = layers.Dense(3)
    dense.build((4,))
    assert dense.count_params() == 4 * 3 + 3
    for weightless in (layers.Dropout(0.2), layers.MaxPooling2D(), layers.Activation("relu"),
                       layers.Flatten(), layers.ReLU(), layers.Softmax()):
        assert weightless.count_params() == 0


def test_a_pickled_model_trains_as_the_model_it_was():
    """A model unpickled kept an unpickled copy of its flat buffer as its arena, which its layers
    no longer read: ``fit`` trained that buffer and the loss stayed flat (a review: 2.0288 three
    epochs running, every weight still)."""
    import copy
    import pickle
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 6)).astype("float32"), rng.integers(0, 3, 64)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([layers.Input((6,)), layers.Dense(8, activation="relu"),
                              layers.Dense(3, activation="softmax")])
    model.compile("rmsprop", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    twins = [pickle.loads(pickle.dumps(model)), copy.deepcopy(model), model]
    runs = [twin.fit(x, y, epochs=3, shuffle=False, verbose=0).history["loss"] for twin in twins]
    assert runs[0] == runs[1] == runs[2] and runs[0][2] < runs[0][0]
    for twin in twins[:2]:
        for a, b in zip(twin.get_weights(), model.get_weights()):
            np.testing.assert_array_equal(a, b)
    fresh = pickle.loads(pickle.dumps(keras.Sequential([layers.Input((6,)), layers.Dense(3)])))
    fresh.compile("sgd", "mse")
    before = fresh.get_weights()
    fresh.fit(x, rng.random((64, 3)), epochs=1, verbose=0)
    assert not np.array_equal(before[0], fresh.get_weights()[0])


@pytest.mark.parametrize("loss", ["binary_crossentropy", "mse", "mae"])
def test_per_pixel_targets_without_their_last_axis_of_one_train_as_with_it(loss):
    """Targets (N, H, W) for an output of one unit per pixel, (N, H, W, 1), as Keras takes them
    (its float64 losses equal tinynet's to 1e-16 here; they were refused: "y has shape
    (None, 6, 6)", a review)."""
    rng = np.random.default_rng(0)
    x, y = rng.random((16, 6, 6, 1)), (rng.random((16, 6, 6)) > 0.5).astype("float32")
    runs = []
    for targets in (y, y[..., None]):
        backend.set_seed(0)
        model = keras.Sequential([layers.Input((6, 6, 1)),
                                  layers.Conv2D(1, 3, padding="same", activation="sigmoid")])
        model.compile("sgd", loss)
        h = model.fit(x, targets, batch_size=8, epochs=2, shuffle=False, verbose=0).history
        runs.append((h["loss"], model.evaluate(x, targets, verbose=0)))
    assert runs[0] == runs[1]


def test_a_metric_class_is_logged_under_its_object_s_name_as_in_keras():
    """``metrics=[MeanAbsoluteError]`` (the class) is logged as Keras logs it,
    ``mean_absolute_error``, so that ``monitor="val_mean_absolute_error"`` finds it (a review:
    it was logged as ``MeanAbsoluteError``)."""
    rng = np.random.default_rng(0)
    x, y = rng.random((20, 3)), rng.random(20)
    model = keras.Sequential([layers.Input((3,)), layers.Dense(1)])
    model.compile("sgd", "mse", metrics=[keras.metrics.MeanAbsoluteError,
                                         keras.metrics.MeanSquaredError])
    stop = keras.callbacks.EarlyStopping(monitor="val_mean_absolute_error", patience=5)
    h = model.fit(x, y, validation_split=0.25, epochs=2, verbose=0, callbacks=[stop]).history
    assert sorted(h) == ["loss", "mean_absolute_error", "mean_squared_error", "val_loss",
                         "val_mean_absolute_error", "val_mean_squared_error"]
    assert stop._max is False


def test_keras_metrics_and_activations_tinynet_lacks_are_named_so():
    model = keras.Sequential([layers.Input((3,)), layers.Dense(1)])
    with pytest.raises(ValueError, match=r"metric 'auc' is a Keras metric that tinynet does not "
                                         r"implement.*accuracy.*mae, mean_absolute_error, mse"):
        model.compile("sgd", "mse", metrics=["auc"])
    with pytest.raises(ValueError, match=r"metric 'acuracy' is unknown"):
        model.compile("sgd", "mse", metrics=["acuracy"])
    with pytest.raises(ValueError, match=r"metric 'RootMeanSquaredError' is a Keras metric that "
                                         r"tinynet does not implement"):
        model.compile("sgd", "mse", metrics=["RootMeanSquaredError"])
    with pytest.raises(ValueError, match=r"activation 'elu' in layer 'hidden' is a Keras "
                                         r"activation that tinynet does not implement"):
        layers.Dense(3, activation="elu", name="hidden")


@pytest.mark.parametrize("name", ["set_backend", "get_backend", "set_floatx", "floatx", "set_seed"])
def test_a_backend_setting_asked_of_the_top_module_says_where_it_is(name):
    """``tinynet.set_backend("numba")`` is what a user tries first: the answer points at
    tinynet.backend (it said "a Keras name that tinynet does not implement"), also under
    ``from tinynet import set_backend``."""
    import tinynet
    with pytest.raises(AttributeError) as info:
        getattr(tinynet, name)
    assert f"backend.{name}(" in str(info.value) and "Keras" not in str(info.value)
    assert callable(getattr(tinynet.backend, name))
    with pytest.raises(ImportError, match=f"it is in tinynet.backend.*backend.{name}"):
        exec(f"from tinynet import {name}")


def test_image_layers_answer_their_data_format_as_keras():
    """Keras's image layers have ``data_format``, resolved to "channels_last" by default (a
    bare AttributeError in tinynet before)."""
    for layer in (layers.Conv2D(2, 3), layers.MaxPooling2D(), layers.AveragePooling2D(),
                  layers.Flatten(), layers.GlobalAveragePooling2D(),
                  layers.Conv2D(2, 3, data_format="channels_last")):
        assert layer.data_format == "channels_last", layer
    assert not hasattr(layers.Dense(2), "data_format")  # as in Keras
