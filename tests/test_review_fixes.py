"""Defects a review of the redesigned core found (reproduced, then fixed): each test failed before
its fix. Keras's numbers are stated where Keras was the reference."""
import warnings

import numpy as np
import pytest

import tinynet as keras
from tinynet import backend, gradcheck, layers, optimizers


@pytest.fixture(autouse=True)
def _float64():
    backend.set_floatx("float64")


def test_validation_split_carries_the_sample_weights_along():
    x = np.random.default_rng(0).standard_normal((10, 3))
    y = np.arange(10) % 2
    w = np.ones(10)
    w[8:] = [5.0, 0.0]
    model = keras.Sequential([layers.Dense(2, activation="softmax", input_shape=(3,))])
    model.compile(optimizers.SGD(learning_rate=0.0), "sparse_categorical_crossentropy")
    history = model.fit(x, y, sample_weight=w, validation_split=0.2, verbose=0, batch_size=4)
    p = model.predict(x[8:])
    losses = -np.log(p[np.arange(2), y[8:]])
    # Keras: (5 l8 + 0 l9) / 2, the weights split with the data
    assert history.history["val_loss"][0] == pytest.approx((5 * losses[0] + 0 * losses[1]) / 2)
    model.fit(x, y, sample_weight=w, validation_split=0.2, validation_data=(x, y), verbose=0)
    model.fit(x, y, validation_data=(x, y, w), verbose=0)  # Keras's 3-tuple


def test_a_nested_softmax_model_trains_on_its_logits():
    """Keras takes the logits of a softmax however deep it is nested: a confidently wrong nested
    model gets the flat model's gradient, not the zero of a clipped probability."""
    def model(nested):
        dense = layers.Dense(3, activation="softmax")
        inner = keras.Sequential([layers.Input((2,)), dense])
        dense.set_weights([np.array([[-10.0, 10.0, 0.0], [-10.0, 10.0, 0.0]]), np.zeros(3)])
        m = keras.Sequential([layers.Input((2,)), inner]) if nested else inner
        m.compile(optimizers.SGD(0.1), "sparse_categorical_crossentropy")
        return m, dense
    x, y = np.ones((4, 2)), np.zeros(4, int)
    (flat, d1), (nested, d2) = model(False), model(True)
    # z = (-20, 20, 0) for every row, label 0: L = 40 on the logits (a clipped probability
    # would give -log(1e-7) = 16.1 and no gradient); dL/dW[0, 0] = mean(p_0 - 1) x = -1
    assert flat.train_on_batch(x, y) == pytest.approx(40.0)
    assert nested.train_on_batch(x, y) == pytest.approx(40.0)
    np.testing.assert_allclose(d2.get_weights()[0], d1.get_weights()[0], rtol=1e-12)
    assert d2.get_weights()[0][0, 0] == pytest.approx(-9.9)


def test_a_model_used_twice_as_a_layer_is_refused():
    inner = keras.Sequential([layers.Input((3,)), layers.Dense(3)])
    i = layers.Input((3,))
    t = inner(i)
    with pytest.raises(ValueError, match="already used as a layer"):
        inner(t)


def test_default_names_skip_the_names_given_and_duplicates_are_refused(tmp_path):
    model = keras.Sequential([layers.Input((3,)), layers.Dense(2, name="dense")])
    assert layers.Dense(2).name != "dense"
    model.save(tmp_path / "m.npz")
    loaded = keras.load_model(tmp_path / "m.npz")
    loaded.add(layers.Dense(2))
    loaded.save(tmp_path / "m2.npz")
    assert len(keras.load_model(tmp_path / "m2.npz").layers) == 2
    x = layers.Input((3,))
    with pytest.raises(ValueError, match=r"unique.*\['twin'\]"):
        keras.Model(x, layers.Dense(2, name="twin")(layers.Dense(3, name="twin")(x)))


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_an_overflowing_optimizer_state_stops_fit_and_is_undone():
    model = keras.Sequential([layers.Input((3,)), layers.Dense(3, activation="softmax")])
    model.compile(optimizers.RMSprop(0.001), "sparse_categorical_crossentropy")
    x = np.ones((2, 3))
    x[0] = 1e160  # a finite loss whose squared gradient overflows RMSprop's running mean
    before = model.get_weights()
    with pytest.raises(keras.NonFiniteLossError, match="optimizer's state"):
        model.fit(x, np.array([0, 1]), batch_size=2, verbose=0)
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    assert all(np.isfinite(a).all() for s in model.optimizer.get_state(model.params)["slots"]
               for a in s if a is not None)


def test_accuracy_on_several_sigmoid_units_is_read_from_the_shape_as_keras_3():
    """Keras 3 picks "accuracy" from the shapes alone (keras/src/trainers/compile_utils.py): one
    output unit, the binary accuracy; several, the arg-max class (CategoricalAccuracy), even
    under a binary cross-entropy; "binary_accuracy" stays per unit."""
    model = keras.Sequential([layers.Dense(3, activation="sigmoid", input_shape=(2,))])
    model.compile("sgd", "binary_crossentropy", ["accuracy", "binary_accuracy"])
    x = np.random.default_rng(1).standard_normal((40, 2))
    y = np.random.default_rng(2).integers(0, 2, (40, 3)).astype(float)
    _, acc, binary = model.evaluate(x, y, verbose=0)
    p = model.predict(x)
    per_unit = float(np.mean((p > 0.5) == (y > 0.5)))
    arg_max = float(np.mean(p.argmax(axis=1) == y.argmax(axis=1)))
    assert per_unit != pytest.approx(arg_max)
    assert acc == pytest.approx(arg_max) and binary == pytest.approx(per_unit)


def test_a_metric_object_is_logged_under_its_own_name():
    model = keras.Sequential([layers.Dense(3, activation="softmax", input_shape=(2,))])
    model.compile("sgd", "sparse_categorical_crossentropy",
                  [keras.metrics.SparseCategoricalAccuracy(name="acc_train")])
    history = model.fit(np.ones((4, 2)), np.arange(4) % 3, verbose=0,
                        validation_data=(np.ones((2, 2)), np.arange(2)))
    assert sorted(history.history) == ["acc_train", "loss", "val_acc_train", "val_loss"]


def test_sequential_build_takes_the_batch_shape_as_keras():
    model = keras.Sequential([layers.Flatten(), layers.Dense(10)])
    model.build((None, 28, 28))
    assert model.count_params() == 7850  # Keras: 7,850
    with pytest.raises(ValueError, match=r"batch axis first.*\(None, 784\)"):
        keras.Sequential([layers.Dense(2)]).build((784,))


def test_gradcheck_checks_a_float64_model_in_float64_whatever_floatx():
    model = keras.Sequential([layers.Input((4,)), layers.Dense(3, activation="tanh")])
    backend.set_floatx("float32")
    x = np.random.default_rng(0).standard_normal((5, 4))
    assert max(gradcheck.check_model(model, x).values()) < 1e-7
    with pytest.raises(RuntimeError, match="not compiled"):
        gradcheck.check_model(model, x, np.eye(3)[[0, 1, 2, 0, 1]])


def test_the_numpy_backend_never_changes_thread_counts(monkeypatch):
    from tinynet import threads, training
    calls = []
    monkeypatch.setattr(threads, "adapt_to_load", lambda: calls.append(1))
    model = keras.Sequential([layers.Input((4,)), layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    backend.set_backend("numpy")
    model.fit(np.ones((8, 4)), np.arange(8) % 2, batch_size=1, verbose=0)
    assert calls == [] and training.threads is threads
    backend.set_backend("numba")
    model.fit(np.ones((8, 4)), np.arange(8) % 2, batch_size=1, verbose=0)
    assert len(calls) == 8  # every step (it decides again only when its window has passed)


def test_class_weight_with_a_label_per_position_says_to_use_sample_weight():
    x = layers.Input((2, 2, 1))
    model = keras.Model(x, layers.Conv2D(3, 1, activation="softmax")(x))
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="one label per example.*sample_weight"):
        model.fit(np.ones((3, 2, 2, 1)), np.zeros((3, 2, 2), int), class_weight={0: 1, 1: 1, 2: 1},
                  verbose=0)


def test_float_class_numbers_with_the_categorical_loss_get_the_to_categorical_hint():
    model = keras.Sequential([layers.Dense(10, activation="softmax", input_shape=(2,))])
    model.compile("sgd", "categorical_crossentropy")
    with pytest.raises(ValueError, match=r"to_categorical\(y, 10\)"):
        model.fit(np.ones((3, 2)), np.array([[1.0], [2.0], [3.0]]), verbose=0)


def test_teaching_warnings_point_at_the_users_line():
    model = keras.Sequential([layers.Dense(3, input_shape=(2,))])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.compile("sgd", "sparse_categorical_crossentropy"); line = _line()  # noqa: E702
    assert caught and caught[0].filename == __file__ and caught[0].lineno == line


def _line():
    import inspect
    return inspect.currentframe().f_back.f_lineno


def test_keras_input_output_names_and_checkpoint_weights(tmp_path):
    model = keras.Sequential([layers.Input((4,), dtype="uint8"), layers.Dense(3, name="d1"),
                              layers.Dense(2, name="d2")])
    assert model.input.shape == (None, 4) and model.output.shape == (None, 2)
    probe = keras.Model(model.input, model.get_layer("d1").output)
    np.testing.assert_allclose(probe.predict(np.ones((1, 4))),
                               np.ones((1, 4)) @ model.get_weights()[0] + model.get_weights()[1])
    model.compile("sgd", "mse")
    cb = keras.callbacks.ModelCheckpoint(str(tmp_path / "w.npz"), save_weights_only=True,
                                         save_freq="epoch")
    model.fit(np.ones((4, 4)), np.ones((4, 2)), verbose=0, callbacks=[cb])
    other = keras.Sequential([layers.Input((4,)), layers.Dense(3), layers.Dense(2)])
    other.load_weights(tmp_path / "w.npz")
    for a, b in zip(other.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_optimizer_state_given_out_and_taken_in_is_a_copy():
    p = np.ones(3)
    opt = optimizers.RMSprop()
    opt.apply_gradients([(np.ones(3), p)])
    saved = opt.get_state([p])
    s_before = saved["slots"][0][0].copy()
    opt.apply_gradients([(np.ones(3), p)])
    np.testing.assert_array_equal(saved["slots"][0][0], s_before)
    other = optimizers.RMSprop()
    other.set_state([p], saved)
    other.apply_gradients([(np.ones(3), p)])
    np.testing.assert_array_equal(saved["slots"][0][0], s_before)


# ---- an adversarial tester's findings (checks of fit/evaluate/predict's arguments) -----------
def _small(loss="sparse_categorical_crossentropy", units=3, activation="softmax"):
    model = keras.Sequential([layers.Dense(units, activation=activation, input_shape=(4,))])
    model.compile("sgd", loss)
    return model


def test_class_weight_reads_smoothed_binary_labels_as_keras_rounding_them():
    """A label 0.95 is class 1 for class_weight, as Keras rounds it (it was truncated to class 0:
    every positive example got the negatives' weight, loss 1.065 against Keras's 2.812)."""
    model = _small("binary_crossentropy", 1, "sigmoid")
    y = np.array([0.05, 0.95, 0.95, 0.05])[:, None]
    x = np.random.default_rng(0).standard_normal((4, 4))
    weighted = model.evaluate(x, y, sample_weight=np.array([1.0, 10.0, 10.0, 1.0]), verbose=0)
    with_classes = model.fit(x, y, class_weight={0: 1.0, 1: 10.0}, epochs=1, verbose=0,
                             batch_size=4).history["loss"][0]
    assert with_classes == pytest.approx(weighted, rel=1e-6)


@pytest.mark.parametrize("weight", ["2", float("nan"), -1.0, None])
def test_class_weights_must_be_finite_non_negative_numbers(weight):
    with pytest.raises(ValueError, match="class_weight must give each class a finite number >= 0"):
        _small().fit(np.zeros((3, 4)), np.array([0, 1, 2]), class_weight={0: 1.0, 1: weight},
                     verbose=0)


@pytest.mark.parametrize("labels,excerpt", [
    ([0, 1, np.inf], "y contains NaN or infinite values"),      # an OverflowError before
    ([0, 1, np.nan], "y contains NaN or infinite values"),      # "y holds fractions" before
    ([0, 1, -1], r"class number -1; class numbers run from 0 to 2"),  # "give the last layer 2 units"
])
def test_bad_class_numbers_are_named_for_what_they_are(labels, excerpt):
    with pytest.raises(ValueError, match=excerpt):
        _small().fit(np.zeros((3, 4)), np.array(labels, dtype=float), verbose=0)


def test_inputs_keras_accepts_and_inputs_named_for_what_they_are():
    backend.set_floatx("float32")
    model = _small()
    x = np.random.default_rng(0).standard_normal((5, 4))
    np.testing.assert_array_equal(model.predict([x]), model.predict(x))  # Keras's [x]
    np.testing.assert_array_equal(model.predict_on_batch([x]), model.predict(x))
    model.compile("sgd", "sparse_categorical_crossentropy")
    assert model.test_on_batch([x], np.arange(5) % 3) == model.evaluate(x, np.arange(5) % 3,
                                                                        batch_size=5, verbose=0)
    late = keras.Sequential([layers.Dense(3, activation="softmax")])  # built by its first data
    late.compile("sgd", "sparse_categorical_crossentropy")
    late.fit([x], np.arange(5) % 3, verbose=0)
    assert late.layers[0].kernel.shape == (4, 3)
    for bad, excerpt in ((np.float64(3.0), "x is a single number"),
                         ([[1, 2, 3, 4], [1, 2]], "elements have different shapes"),
                         (np.full((2, 4), 1e300), r"too large for float32 \(largest magnitude 1e\+300")):
        with pytest.raises(ValueError, match=excerpt):
            model.predict(bad)


# ---- an adversarial tester's findings (2026-12-01, fifth session) ---------------------------
def test_a_result_is_never_a_view_of_the_callers_input():
    """A model or layer that only reshapes or passes its input on (Flatten, Reshape, Dropout at
    inference) returned a view of x: changing the result in place changed x (Keras's results
    are new arrays)."""
    x = np.ones((2, 4, 4, 1))
    flat = keras.Sequential([layers.Input((4, 4, 1)), layers.Flatten()])
    for result in (lambda: flat(x), lambda: flat([x]), lambda: flat.forward(x),
                   lambda: layers.Dropout(0.5)(x), lambda: layers.Reshape((16,))(x)):
        y = result()
        y -= 1
        assert x.max() == 1.0
    dense = keras.Sequential([layers.Input((4, 4, 1)), layers.Flatten(), layers.Dense(3)])
    assert not np.shares_memory(dense(x), x)


@pytest.mark.parametrize("name", ["numpy", "numba"])
def test_an_empty_batch_goes_through_a_convolution(name):
    """numba's stride-1 convolution divided by the number of groups: 0 for an empty batch."""
    backend.set_backend(name)
    try:
        x = np.zeros((0, 5, 5, 2))
        conv = layers.Conv2D(3, 3, padding="same")
        assert conv(x).shape == (0, 5, 5, 3)
        assert conv.backward(np.zeros((0, 5, 5, 3))).shape == (0, 5, 5, 2)
        kernels, kernel = backend.kernels(), np.ones((3, 3, 2, 3))
        pooled, saved = kernels.conv2d_maxpool_forward(np.zeros((0, 6, 6, 2)), kernel, None,
                                                       (1, 1), (1, 1, 1, 1), (2, 2), relu=True)
        assert pooled.shape == (0, 3, 3, 3)
        dx, dkernel, _ = kernels.conv2d_maxpool_backward(pooled, saved, kernel, (1, 1),
                                                         (1, 1, 1, 1), (2, 2), relu=True)
        assert dx.shape == (0, 6, 6, 2) and not dkernel.any()
    finally:
        backend.set_backend("numba")


def test_a_gradient_of_the_wrong_shape_is_named_not_broadcast():
    """layer.backward(g) broadcast a gradient of another shape (GlobalAveragePooling2D gave
    (5, 6, 6, 7) for input (3, 6, 6, 2)), or failed inside NumPy."""
    x = np.random.default_rng(0).standard_normal((3, 6, 6, 2))
    for layer, g in ((layers.GlobalAveragePooling2D(), np.ones((5, 7))),
                     (layers.Flatten(), np.ones((6, 36))),
                     (layers.Activation("relu"), np.ones((1, 1, 1, 1))),
                     (layers.Conv2D(2, 3), np.ones((3, 4, 4, 3)))):
        layer(x)
        with pytest.raises(ValueError, match=r"backward\(\) got a gradient of shape .* but the "
                                             r"last forward pass gave an output of shape"):
            layer.backward(g)
    pooled = keras.Sequential([layers.Input((6, 6, 2)), layers.Conv2D(2, 3, activation="relu"),
                               layers.MaxPooling2D(2)])   # one fused step
    pooled.forward(x)
    with pytest.raises(ValueError, match=r"with its max pooling: backward\(\) got a gradient of "
                                         r"shape \(3, 2, 2, 3\), but .* output of shape "
                                         r"\(3, 2, 2, 2\)"):
        pooled.backward(np.ones((3, 2, 2, 3)))


@pytest.mark.parametrize("name", ["numpy", "numba"])
def test_integer_gradients_work_on_every_backend(name):
    """An integer dL/d(output) worked on the numpy backend and raised a TypeError on numba."""
    backend.set_backend(name)
    try:
        x = np.random.default_rng(0).standard_normal((2, 6, 6, 2))
        conv = layers.Conv2D(2, 3)
        y = conv(x)
        np.testing.assert_allclose(conv.backward(np.ones(y.shape, np.int64)),
                                   conv.backward(np.ones(y.shape)), rtol=1e-12)
        model = keras.Sequential([layers.Input((6, 6, 2)), layers.Conv2D(2, 3, activation="relu"),
                                  layers.MaxPooling2D(2)])
        out = model.forward(x)
        np.testing.assert_allclose(model.backward(np.ones(out.shape, np.int32)),
                                   model.backward(np.ones(out.shape)), rtol=1e-12)
    finally:
        backend.set_backend("numba")
