"""Models: the report's parameter counts, summary(), graph semantics, weights, save and load."""
import copy

import numpy as np
import pytest

import tinynet
from tinynet import Model, Sequential, backend, layers, report_models, utils
from tinynet.report_models import REPORT_PARAMS


@pytest.mark.parametrize("name,count", sorted(REPORT_PARAMS.items()))
def test_report_parameter_counts(name, count, capsys):
    model = getattr(report_models, name)()
    assert model.count_params() == count
    model.summary()
    text = capsys.readouterr().out
    assert f"Total params: {count:,}" in text
    assert f"Trainable params: {count:,}" in text


def test_summary_rows_match_the_report_layout(capsys):
    report_models.cnn_digits().summary()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == 'Model: "CNN"'
    assert lines[2].startswith(" Layer (type)") and lines[2].index("Output Shape") == 29
    row = next(line for line in lines if line.startswith(" l3 (Conv2D)"))
    assert row.split() == ["l3", "(Conv2D)", "(None,", "7,", "7,", "16)", "1312"]
    assert any("[(None, 28, 28, 1)]" in line for line in lines)  # the input layer row
    assert not any("Connected to" in line for line in lines)


def test_residual_summary_shows_connections(capsys):
    report_models.cnn_fashion_3().summary()
    text = capsys.readouterr().out
    assert "Connected to" in text
    add_rows = text[text.index(" add (Add)"):].splitlines()[:2]
    assert "'l2_2[0][0]'," in add_rows[0] and "'l1_mp[0][0]']" in add_rows[1]


def test_summary_of_a_sequential_not_built_yet_lists_its_layers_as_keras_3(capsys):
    """Keras 3 prints an unbuilt Sequential's layers with '?' and '0 (unbuilt)' (a script that
    calls summary() before fit ran on Keras and stopped on tinynet); built, the sizes appear."""
    model = tinynet.Sequential([layers.Dense(8, activation="relu", name="hidden"),
                                layers.Dense(3, name="out")])
    model.summary()
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["hidden", "(Dense)", "?", "0", "(unbuilt)"] in rows
    assert ["out", "(Dense)", "?", "0", "(unbuilt)"] in rows and ["Total", "params:", "0"] in rows
    model.build((None, 4))
    model.summary()
    assert ["out", "(Dense)", "(None,", "3)", "27"] in [
        line.split() for line in capsys.readouterr().out.splitlines()]


def test_a_model_used_as_a_layer_answers_as_that_model_and_its_passes_are_not_mixed():
    """outer.get_layer("inner") gave tinynet's wrapper, on which .get_layer, .layers and .predict
    failed with bare AttributeErrors; it now answers with the inner model's attributes, while its
    .output stays its output in the outer graph (Keras's feature-extraction idiom). Running the
    inner model on its own between the outer model's forward and backward is refused (its
    gradients would be those of the other data)."""
    inner = Sequential([layers.Input((5,)), layers.Dense(4, name="i1")], name="inner")
    outer = Sequential([inner, layers.Dense(2, activation="softmax", name="head")])
    wrapper = outer.get_layer("inner")
    assert wrapper.get_layer("i1") is inner.layers[0] and wrapper.layers == inner.layers
    x, other = np.random.default_rng(0).standard_normal((2, 3, 5)).astype(np.float32)
    np.testing.assert_array_equal(wrapper.predict(x), inner.predict(x))
    features = Model(outer.input, wrapper.output)  # Keras's idiom
    np.testing.assert_array_equal(features.predict(x), inner.predict(x))
    for on_its_own in (lambda: inner.forward(other), lambda: inner.predict(other),
                       lambda: inner.forward(other, until="i1")):
        y = outer.forward(x)
        on_its_own()
        with pytest.raises(ValueError, match=r"model 'inner', used as a layer in it, ran again "
                                             r"since"):
            outer.backward(np.ones_like(y))
    outer.forward(x)
    assert outer.backward(np.ones_like(y)).shape == x.shape
    outer.pop()
    popped = outer.pop()  # the wrapper, disconnected
    assert popped is wrapper
    with pytest.raises(AttributeError, match="not connected to a graph"):
        popped.output  # noqa: B018 (the layer's own error, not the inner model's output)
    del popped


def test_default_names_are_unique_and_user_names_kept():
    layers.reset_names()
    a, b, c = layers.Dense(2), layers.Dense(2), layers.Dense(2, name="head")
    assert (a.name, b.name, c.name) == ("dense", "dense_1", "head")
    assert layers.Conv2D(1, 3).name == "conv2d"


def test_model_built_from_input_before_any_data():
    model = report_models.cnn_digits()
    w = [np.full(s.shape, 0.5, dtype=np.float32) for s in model.get_layer("l4").get_weights()]
    model.get_layer("l4").set_weights(w)
    np.testing.assert_array_equal(model.get_layer("l4").get_weights()[0], 0.5)
    assert model.output_shape == (None, 10)
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        model.get_layer("nope")


def test_sequential_builds_on_first_data_and_matches_manual_maths():
    model = Sequential([layers.Dense(3, activation="relu"), layers.Dense(2)])
    with pytest.raises(ValueError, match="not built"):
        model.count_params()
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    out = model.predict(x)
    w1, b1, w2, b2 = model.get_weights()
    np.testing.assert_allclose(out, np.maximum(x @ w1 + b1, 0) @ w2 + b2, rtol=1e-5)
    assert model.count_params() == 5 * 3 + 3 + 3 * 2 + 2


def test_glorot_uniform_initialisation_limits():
    layer = layers.Dense(300)
    layer.build((500,))
    w, b = layer.get_weights()
    limit = np.sqrt(6 / 800)
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.99 * limit
    assert abs(w.std() - limit / np.sqrt(3)) < 0.01 * limit  # the std of U(-l, l)
    assert not b.any() and w.dtype == np.float32


def test_same_seed_same_initial_weights():
    backend.set_seed(7)
    a = report_models.cnn_digits().get_weights()
    backend.set_seed(7)
    b = report_models.cnn_digits().get_weights()
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


def test_skip_connection_receives_the_sum_of_both_gradients(float64):
    """y = Dense(x) + x: dL/dx = W^T dy + dy, the two paths summed."""
    x_in = layers.Input((3,))
    d = layers.Dense(3, use_bias=False)
    model = Model(x_in, layers.Add()([d(x_in), x_in]))
    W = np.arange(9.0).reshape(3, 3)
    d.set_weights([W])
    x = np.ones((2, 3))
    model.forward(x)
    dy = np.array([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]])
    dx = model.backward(dy)
    np.testing.assert_allclose(dx, dy @ W.T + dy)
    # training's pass: the same weight gradient, and no (partial) input gradient handed back
    dW = model.grads[0].copy()
    assert model.backward(dy, need_input_grad=False) is None
    np.testing.assert_array_equal(model.grads[0], dW)


def test_softmax_output_trains_on_the_logits_like_keras(float64):
    """train_on_batch's loss is -mean log softmax(z)[label], computed from the logits."""
    model = Sequential([layers.Input((4,)), layers.Dense(3, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy")
    W = np.array([[40.0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]])
    model.layers[0].set_weights([W, np.zeros(3)])
    x = np.array([[1.0, 0, 0, 0]])
    y = np.array([[0.0, 1.0, 0.0]])
    # softmax gives p[1] = e^-40 / (1 + 2 e^-40) < 1e-7: the probability path would clip at 1e-7
    loss = model.train_on_batch(x, y)
    assert loss == pytest.approx(40 + np.log(1 + 2 * np.exp(-40)), rel=1e-12)
    assert model.evaluate(x, y) < 40  # weights moved: the gradient (p - y) was applied


def test_save_and_load_round_trip(tmp_path):
    model = report_models.cnn_fashion_3()
    model.compile(tinynet.optimizers.RMSprop(momentum=0.5, centered=True), metrics=["accuracy"])
    x = np.random.default_rng(0).random((16, 28, 28, 1))
    y = utils.to_categorical(np.arange(16) % 10, 10)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    path = tmp_path / "m.npz"
    model.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # one file, no temporary left
    loaded = tinynet.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.count_params() == 10_244 and loaded.epoch == 1
    assert [l.name for l in loaded.layers] == [l.name for l in model.layers]
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.iterations == model.optimizer.iterations == 2
    # the optimizer state came back: one more identical step gives identical weights
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, seed=3)  # same shuffle and dropout mask
    loaded.fit(x, y, batch_size=16, epochs=1, verbose=0, seed=3)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_sequential_save_and_load_keeps_it_sequential(tmp_path):
    model = report_models.mlp_raw()
    model.save(tmp_path / "mlp.npz")
    loaded = tinynet.load_model(tmp_path / "mlp.npz")
    assert isinstance(loaded, Sequential)
    assert [l.name for l in loaded.layers] == ["Input", model.layers[1].name, "Output"]
    assert loaded.optimizer is None


def test_a_float64_model_computes_in_float64_whatever_floatx_says():
    backend.set_floatx("float64")
    model = Sequential([layers.Input((3,)), layers.Dense(2)])
    backend.set_floatx("float32")
    x = np.array([[1.0 + 1e-12, 2.0, 3.0]])
    w, b = model.get_weights()
    out = model.predict(x)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, x @ w + b, rtol=1e-15)


@pytest.mark.parametrize("floatx", ["float32", "float64"])
def test_an_unpooled_one_channel_convolution_gives_the_same_weight_gradients_either_way(floatx):
    """A first Conv2D on one channel that no pooling reads (in the numba backend its dL/dx, when
    asked, runs two grid rows a pass, on longer planes of dz): its kernel's and bias's gradients
    are the same numbers, bit for bit, whether or not the input's gradient is computed (the bias
    gradient's float32 sum once depended on it)."""
    pytest.importorskip("numba")
    backend.set_backend("numba")
    backend.set_floatx(floatx)
    model = Sequential([layers.Input((8, 8, 1)), layers.Conv2D(16, 3, padding="same",
                                                               activation="relu"),
                        layers.Flatten(), layers.Dense(3)])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((37, 8, 8, 1)).astype(floatx)
    dy = rng.standard_normal((37, 3)).astype(floatx)
    model.forward(x, training=False)
    assert model.backward(dy).shape == x.shape
    full = [g.copy() for g in model.grads]
    assert model.backward(dy, need_input_grad=False) is None
    for a, b in zip(full, model.grads):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("build", [report_models.mlp_raw, report_models.cnn_digits,
                                   report_models.cnn_fashion_3])
def test_training_backward_skips_only_the_input_gradient(build, float64, monkeypatch):
    """fit's backward pass (need_input_grad=False) fills the same weight gradients, bit for bit
    but for the first weighted layer's (to rounding: without dL/dx, numba's pooled backward of
    the CNNs' first layers adds up the windows in another order), while the first weighted
    layers never compute dL/d(their input)."""
    backend.set_seed(3)
    model = build()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5,) + model.input_shape[1:])
    dy = rng.standard_normal((5,) + model.output_shape[1:])
    model.forward(x, training=False)
    assert model.backward(dy).shape == x.shape
    full = [g.copy() for g in model.grads]

    asked = []
    for layer in model.layers:
        # a Conv2D read by a MaxPooling2D runs its backward pass as backward_pooled (graph.py)
        for method in ("backward", "backward_pooled"):
            if layer.params and hasattr(layer, method):
                original = getattr(layer, method)

                def spy(g, need_input_grad=True, layer=layer, original=original):
                    dx = original(g, need_input_grad=need_input_grad)
                    asked.append((layer.name, need_input_grad, dx is None))
                    return dx
                monkeypatch.setattr(layer, method, spy)
    assert model.backward(dy, need_input_grad=False) is None
    first = next(layer for layer in model.layers if layer.params)
    for i, (a, b) in enumerate(zip(full, model.grads)):
        if i < len(first.params):
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-15)
        else:
            np.testing.assert_array_equal(a, b)
    assert [(name, flag) for name, flag, _ in asked if not flag] == [(first.name, False)]
    assert all(none == (not flag) for _, flag, none in asked)
    asked.clear()
    model.compile("sgd", "categorical_crossentropy")
    model.train_on_batch(x, np.eye(10)[rng.integers(0, 10, 5)])
    assert (first.name, False, True) in asked


def test_forward_and_backward_record_every_layers_output_and_gradient():
    """What a student looks at: every layer's output and dL/d(its output), by name, for a residual
    model (the Add's output is the sum of its two inputs' recorded outputs)."""
    from tinynet import report_models
    backend.set_floatx("float64")
    model = report_models.cnn_fashion_3()
    x = np.random.default_rng(0).random((2, 28, 28, 1))
    outputs, grads = {}, {}
    y = model.forward(x, record=outputs)
    np.testing.assert_array_equal(outputs[model.layers[-1].name], y)
    assert set(outputs) == {layer.name for layer in model.layers}
    dx = model.backward(np.ones_like(y), record=grads)
    np.testing.assert_array_equal(grads[model.layers[0].name], dx)  # the input layer's
    add = model.get_layer("add")
    source = add.inbound[1].layer  # the skip comes from the pooling before the block
    consumers = [layer for layer in model.layers if any(t.layer is source for t in layer.inbound)]
    assert len(consumers) == 2
    np.testing.assert_allclose(outputs[add.name], outputs[add.inbound[0].layer.name] + outputs[source.name])
    assert grads[source.name].shape == outputs[source.name].shape
    # record= takes a dict (a list raised "list indices must be integers or slices, not str")
    with pytest.raises(TypeError, match=r"forward: record= takes a dict, which receives each "
                                        r"layer's output under the layer's name.*got list"):
        model.forward(x, record=[])
    with pytest.raises(TypeError, match=r"backward: record= takes a dict.*got bool"):
        model.backward(np.ones_like(y), record=True)


def test_the_skip_connections_sum_leaves_a_recorded_gradient_as_it_was(monkeypatch):
    """The two gradients of the skip connection's source are summed in place only into an
    array nothing else holds (the backward pass pops it first, and NumPy adds into a temporary
    alone): the Add's gradient, recorded and passed to both of its inputs, is not overwritten by
    the sum (batch 32 in float64: arrays of 451 KB, past the 256 KB from which NumPy adds in
    place)."""
    from tinynet import report_models
    backend.set_floatx("float64")
    model = report_models.cnn_fashion_3()
    x = np.random.default_rng(1).random((32, 28, 28, 1))
    y = model.forward(x, record={})
    add = model.get_layer("add")
    seen = []
    original = add.backward

    def spy(g, need_input_grad=True):
        out = original(g, need_input_grad=need_input_grad)
        seen.append([a.copy() for a in out])
        return out
    monkeypatch.setattr(add, "backward", spy)
    grads = {}
    model.backward(np.random.default_rng(2).standard_normal(y.shape), record=grads)
    source = add.inbound[1].layer
    for passed in seen[0]:  # dL/d(add's output), given to both of its inputs
        np.testing.assert_array_equal(grads[add.name], passed)
    # the source got the sum: the Add's gradient and the convolution's
    scale = np.abs(grads[add.name]).max()
    assert scale > 0 and np.abs(grads[source.name] - grads[add.name]).max() > 1e-3 * scale


def test_a_layer_refused_by_a_second_model_stays_in_its_first_model():
    """A layer of one model put into another is refused (tinynet does not share layers); the
    refusal must not unplug it from the model that owns it (it did: that model's predict failed,
    and the layer could then be called again, rebuilt with new random weights)."""
    dense = layers.Dense(3)
    owner = Sequential([layers.Input((8,)), dense])
    x = np.random.default_rng(0).random((4, 8))
    before = owner.predict(x)
    for make in (lambda: Sequential([layers.Input((8,)), dense]),
                 lambda: Sequential([layers.Dense(8), dense]).build((None, 8)),
                 lambda: dense(layers.Input((8,)))):
        with pytest.raises(ValueError, match="already used in a graph"):
            make()
    np.testing.assert_array_equal(owner.predict(x), before)


@pytest.mark.parametrize("new_name", ["renamed", "l3"])
def test_renaming_a_layer_of_a_built_model_changes_nothing_it_computes(new_name):
    """The passes were keyed by layer names: a new name failed with a bare KeyError, and the
    name of another layer silently fed that layer's output forward (predictions moved by 1.95)."""
    backend.set_seed(0)
    model = report_models.cnn_fashion_3()
    model.compile("rmsprop", "categorical_crossentropy")
    x = np.random.default_rng(0).random((8, 28, 28, 1))
    y = np.eye(10)[np.arange(8)]
    before, twin = model.predict(x), copy.deepcopy(model)
    model.get_layer("l2").name = new_name  # read by l2_2 in the residual block
    np.testing.assert_array_equal(model.predict(x), before)
    for m in (model, twin):  # the same training step (the same dropout masks)
        backend.set_seed(1)
        m.train_on_batch(x, y)
    for a, b in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(a, b)
