"""The defects a review of the core found (issue 12), each pinned by a test that failed before
the redesign: state lost in a save, random numbers consumed or fixed behind the user's back,
wrong numbers without an error, and Keras behaviours that differed."""
import numpy as np
import pytest

import tinynet
from tinynet import backend, callbacks, gradcheck, layers, losses, optimizers
from tinynet.utils import to_categorical


def _mlp(seed=0):
    backend.set_seed(seed)
    x = layers.Input((6,))
    y = layers.Dense(5, activation="relu")(x)
    y = layers.Dropout(0.3)(y)
    y = layers.Dense(3, activation="softmax")(y)
    model = tinynet.Model(x, y)
    model.compile(optimizers.RMSprop(learning_rate=0.01), "categorical_crossentropy", ["accuracy"])
    return model


def _data(n=40, seed=1):
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, 6))
    return x, to_categorical(r.integers(0, 3, n), 3)


# 1 ------------------------------------------------------------------------------------------
def test_a_float64_model_loads_as_float64_in_a_float32_process(tmp_path, float64):
    model = _mlp()
    model.fit(*_data(), batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "m.npz")
    weights = model.get_weights()
    state = model.optimizer.get_state(model.params)["slots"]
    backend.set_floatx("float32")
    loaded = tinynet.load_model(tmp_path / "m.npz")
    assert loaded.dtype == np.float64
    for a, b in zip(loaded.get_weights(), weights):
        assert a.dtype == np.float64
        np.testing.assert_array_equal(a, b)  # not rounded to float32 on the way
    for mine, theirs in zip(loaded.optimizer.get_state(loaded.params)["slots"], state):
        for a, b in zip(mine, theirs):
            if b is not None:
                assert a.dtype == np.float64
                np.testing.assert_array_equal(a, b)
    assert backend.floatx() == "float32"  # the process's setting is left alone


# 2 ------------------------------------------------------------------------------------------
def test_loading_a_model_draws_no_random_number(tmp_path):
    _mlp().save(tmp_path / "m.npz")
    backend.set_seed(7)
    expected = backend.rng().random(5)
    backend.set_seed(7)
    tinynet.load_model(tmp_path / "m.npz")
    np.testing.assert_array_equal(backend.rng().random(5), expected)


# 3 ------------------------------------------------------------------------------------------
def test_fit_with_a_seed_leaves_the_global_generator_alone():
    model = _mlp()
    backend.set_seed(11)
    expected = backend.rng().random(5)
    backend.set_seed(11)
    model.fit(*_data(), batch_size=8, epochs=2, verbose=0, seed=3)
    np.testing.assert_array_equal(backend.rng().random(5), expected)


def test_fit_with_a_seed_repeats_itself():
    runs = []
    for _ in range(2):
        model = _mlp(seed=5)
        backend.set_seed(99)  # whatever the global generator holds
        model.fit(*_data(), batch_size=8, epochs=2, verbose=0, seed=3)
        runs.append(model.get_weights())
        backend.set_seed(123)
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


# 4 ------------------------------------------------------------------------------------------
def test_a_per_pixel_softmax_is_averaged_over_every_position_as_keras_does(float64):
    r = np.random.default_rng(0)
    z = r.standard_normal((3, 2, 2, 4))
    y = to_categorical(r.integers(0, 4, (3, 2, 2)).ravel(), 4).reshape(3, 2, 2, 4)
    p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    # Keras: the mean over all 3*2*2 positions of -sum_k y log p
    expected = float(np.mean(-(y * np.log(p)).sum(-1)))
    assert losses.CategoricalCrossentropy()(y, p) == pytest.approx(expected, rel=1e-12)
    assert losses.CategoricalCrossentropy(from_logits=True)(y, z) == pytest.approx(expected, rel=1e-12)
    # and the gradient is the derivative of that mean
    loss = losses.CategoricalCrossentropy(from_logits=True)
    g = loss.gradient(y, z)
    h, i = 1e-6, (1, 0, 1, 2)
    zp, zm = z.copy(), z.copy()
    zp[i] += h
    zm[i] -= h
    assert g[i] == pytest.approx((loss(y, zp) - loss(y, zm)) / (2 * h), rel=1e-6)


def test_accuracy_of_a_per_pixel_output_is_a_fraction_of_positions(float64):
    x = layers.Input((2, 2, 3))
    out = layers.Conv2D(4, 1, activation="softmax")(x)
    model = tinynet.Model(x, out)
    model.compile("sgd", "categorical_crossentropy", ["accuracy"])
    r = np.random.default_rng(1)
    xs = r.standard_normal((5, 2, 2, 3))
    ys = to_categorical(r.integers(0, 4, 20), 4).reshape(5, 2, 2, 4)
    loss, acc = model.evaluate(xs, ys)
    p = model.predict(xs)
    assert acc == pytest.approx(float(np.mean(p.argmax(-1) == ys.argmax(-1))), abs=1e-12)
    assert 0.0 <= acc <= 1.0
    assert loss == pytest.approx(float(np.mean(-(ys * np.log(p)).sum(-1))), rel=1e-9)


# 5 ------------------------------------------------------------------------------------------
def test_history_records_what_other_callbacks_add_to_the_logs():
    model = _mlp()
    x, y = _data()
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0, validation_data=(x, y),
                        callbacks=[callbacks.ReduceLROnPlateau(monitor="val_loss", patience=1)])
    assert history.history["learning_rate"][0] == pytest.approx(0.01)
    assert len(history.history["learning_rate"]) == 3


# 6 ------------------------------------------------------------------------------------------
def test_adam_keeps_float32_weights_and_state_in_float32():
    p = np.ones((3, 2), np.float32)
    opt = optimizers.Adam()
    for _ in range(2):
        opt.apply_gradients([(np.full((3, 2), 0.5, np.float32), p)])
    assert p.dtype == np.float32
    state = opt.get_state([p])["slots"][0]
    assert all(a is None or a.dtype == np.float32 for a in state)


def test_adam_update_runs_in_the_parameters_dtype():
    r = np.random.default_rng(0)
    p = r.standard_normal(2000).astype(np.float32)
    g = r.standard_normal(2000).astype(np.float32)
    start = p.copy()
    opt = optimizers.Adam()
    opt.apply_gradients([(g, p)])
    m, v = (opt.get_state([p])["slots"][0][k] for k in (0, 1))
    # every operation in float32, the step size too (as Keras does for float32 variables: the
    # steps are Keras's to the last bit, tests/test_interop.py); with a float64 step size the
    # update would be computed in float64 and rounded once, which differs in the last bit
    f = np.float32
    alpha = f(opt.learning_rate) * np.sqrt(1 - f(opt.beta_2)) / (1 - f(opt.beta_1))
    assert alpha.dtype == np.float32
    expected = start - (m * alpha) / (np.sqrt(v) + np.float32(1e-7))
    np.testing.assert_array_equal(p, expected)


# 7 ------------------------------------------------------------------------------------------
def test_verbose_2_prints_keras_3_s_two_lines_per_epoch_and_no_bar(capsys):
    """Keras 3: ``Epoch 1/2``, then ``2/2 - 0s - 3ms/step - accuracy: ... - loss: ...`` (the
    values by name; tinynet printed one line, the loss first)."""
    model = _mlp()
    history = model.fit(*_data(), batch_size=8, epochs=2, verbose=2)
    out, err = capsys.readouterr()
    lines = [line for line in out.splitlines() if line.strip()]
    steps = -(-len(_data()[0]) // 8)
    assert lines[0::2] == ["Epoch 1/2", "Epoch 2/2"]
    for line, epoch in zip(lines[1::2], range(2)):
        head, rest = line.split(" - ", 1)
        assert head == f"{steps}/{steps}" and rest.split(" - ")[0].endswith("s")
        values = dict(item.split(": ") for item in rest.split(" - ")[2:])
        assert list(values) == ["accuracy", "loss"]
        assert float(values["loss"]) == pytest.approx(history.history["loss"][epoch], abs=5e-5)
    assert list(history.history) == ["accuracy", "loss"]
    assert "batch" not in err and "it/s" not in err and "%|" not in err  # no tqdm bar
    from tinynet.training import progress_line
    assert progress_line(469, 2.6, {"loss": 0.31234, "lr": 1e-4}) == \
        "469/469 - 3s - 6ms/step - loss: 0.3123 - lr: 1.0000e-04"
    assert progress_line(10, 0.004, {"loss": 2.0}) == "10/10 - 0s - 400us/step - loss: 2.0000"
    model.fit(*_data(), batch_size=8, epochs=1, verbose=2)  # one epoch: no "Epoch 1/1" line
    assert not capsys.readouterr().out.startswith("Epoch")


def test_evaluate_shows_its_values_as_keras_does(capsys, monkeypatch):
    # it printed nothing whatever the verbose; Keras shows a bar (verbose 1, its "auto") or a line
    model = _mlp()
    x, y = _data()
    loss, accuracy = model.evaluate(x, y, verbose=2)
    out, err = capsys.readouterr()
    assert out.strip().endswith(f"s/step - accuracy: {accuracy:.4f} - loss: {loss:.4f}") \
        and out.startswith("2/2 - ") and "%|" not in err  # 40 examples, batches of 32
    model.evaluate(x, y)             # "auto" to a file or pipe (pytest's capture): the line
    assert capsys.readouterr().out.split(" - ")[3:] == out.split(" - ")[3:]   # the same values
    monkeypatch.setattr("tinynet.training._isatty", lambda stream: True)
    model.evaluate(x, y)             # "auto" in a terminal: the bar, ending with the values
    out, err = capsys.readouterr()
    assert out == "" and "evaluate" in err and f"loss={loss:.4f}" in err and f"accuracy={accuracy:.4f}" in err
    model.evaluate(x, y, verbose=0)
    model.test_on_batch(x, y)                               # quiet, as Keras's (called in loops)
    assert capsys.readouterr() == ("", "")


# 8 ------------------------------------------------------------------------------------------
def test_model_epoch_counts_the_epochs_done_over_several_fits():
    model = _mlp()
    model.fit(*_data(), batch_size=8, epochs=2, verbose=0)
    model.fit(*_data(), batch_size=8, epochs=3, verbose=0)
    assert model.epoch == 5


# 9 ------------------------------------------------------------------------------------------
def test_gradcheck_of_a_non_contiguous_input_checks_the_input_itself(float64):
    layer = layers.Dense(3, activation="tanh")
    x = np.random.default_rng(0).standard_normal((4, 10))[:, :5]  # a view that reshape(-1) copies
    assert not x.flags.c_contiguous and not np.shares_memory(x.reshape(-1), x)
    errors = gradcheck.check_layer(layer, x)
    assert max(errors.values()) < 1e-7, errors


# 10 -----------------------------------------------------------------------------------------
def test_float16_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="float16"):
        backend.set_floatx("float16")
    assert backend.floatx() == "float32"


# 11 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["numpy", "numba"])
def test_a_layer_called_on_integers_casts_them(name):
    backend.set_backend(name)
    x = np.random.default_rng(0).integers(0, 256, (2, 5, 5, 3)).astype(np.uint8)
    pool = layers.MaxPooling2D(2, padding="same")
    with np.errstate(all="raise"):
        got = pool(x)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, layers.MaxPooling2D(2, padding="same")(x.astype(np.float32)))
    dense = layers.Dense(2)
    assert dense(x.reshape(2, -1)).dtype == np.float32


@pytest.mark.parametrize("name", ["numpy", "numba"])
def test_a_float32_layer_called_on_float64_computes_in_float32_as_keras(name):
    """Keras casts a layer's input to its compute type: NumPy's default float64 given to a
    float32 layer gives float32 outputs and gradients (the same numbers as float32 input), not a
    float64 result beside float32 weights."""
    backend.set_backend(name)
    rng = np.random.default_rng(0)
    x64 = rng.standard_normal((3, 6, 6, 2))
    for make in (lambda: layers.Conv2D(4, 3, padding="same", activation="relu"),
                 lambda: layers.Dense(5), lambda: layers.MaxPooling2D(2)):
        backend.set_seed(1)
        layer = make()
        x = x64 if not isinstance(layer, layers.Dense) else x64.reshape(3, -1)
        y = layer(x)
        assert y.dtype == np.float32
        dx = layer.backward(np.ones(y.shape))  # a float64 gradient, cast as well
        assert dx.dtype == np.float32 and all(g.dtype == np.float32 for g in layer.grads)
        backend.set_seed(1)
        same = make()
        np.testing.assert_array_equal(same(x.astype(np.float32)), y)
        np.testing.assert_array_equal(same.backward(np.ones(y.shape, np.float32)), dx)


def test_a_model_without_weights_keeps_the_float_type_it_was_built_in():
    """Model.dtype came from its weights, else from the floatx of the moment: a float64 model of
    Rescaling and Reshape used after set_floatx("float32") computed in float32 (1.8e-8 off)."""
    backend.set_floatx("float64")
    try:
        model = tinynet.Sequential([layers.Input((3,)), layers.Rescaling(1 / 3),
                                    layers.Reshape((3, 1))])
    finally:
        backend.set_floatx("float32")
    x = np.array([[1.0, 2.0, 3.0]])
    assert model.dtype == np.float64
    np.testing.assert_array_equal(model.predict(x)[:, :, 0], x / 3)


# 12 -----------------------------------------------------------------------------------------
def test_optimizer_state_follows_the_parameters_position_not_the_array():
    g = np.array([1.0, 2.0, 3.0])
    reference = np.ones(3)
    straight = optimizers.RMSprop(learning_rate=0.1)
    straight.apply_gradients([(g, reference)])
    straight.apply_gradients([(g, reference)])   # two steps on one array
    opt = optimizers.RMSprop(learning_rate=0.1)
    p = np.ones(3)
    opt.apply_gradients([(g, p)])
    copy = p.copy()  # the same parameter, as another array (a reload, a device round trip)
    with pytest.raises(ValueError, match="not the weight it updated at that place before"):
        opt.apply_gradients([(g, copy)])  # while the first is alive, it may be another weight
    del p  # the array it replaces is gone: the state is the new one's
    opt.apply_gradients([(g, copy)])
    np.testing.assert_array_equal(copy, reference)  # s carried on: RMSprop's second step
