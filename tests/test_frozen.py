"""Frozen layers (``layer.trainable = False``, Keras's transfer learning): training leaves their
weights and keeps no optimizer state for them, while the gradient still flows through them.

The reference for a frozen base under a trained head is the head trained alone on the base's
outputs: the same numbers. The Keras comparisons are in tests/test_interop.py."""
import warnings

import numpy as np
import pytest

import tinynet
from tinynet import arena, backend, layers, optimizers
from tinynet.model import Model, Sequential

from conftest import zip_equal


def data(n=96, features=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, features)), np.eye(classes)[rng.integers(0, classes, n)]


def base_and_head():
    """A two-layer base and a softmax head, as one Sequential; float64, fixed weights."""
    backend.set_floatx("float64")  # restored by conftest
    backend.set_seed(3)
    return Sequential([layers.Input((6,)), layers.Dense(8, activation="relu", name="b1"),
                       layers.Dense(5, activation="tanh", name="b2"),
                       layers.Dense(3, activation="softmax", name="head")])


def test_a_frozen_base_trains_its_head_as_the_head_alone_on_the_base_outputs():
    x, y = data()
    model = base_and_head()
    base_before = [w.copy() for w in model.get_weights()[:4]]
    features = model.forward(x, until="b2")
    head = Sequential([layers.Input((5,)), layers.Dense(3, activation="softmax")])
    head.set_weights(model.get_layer("head").get_weights())

    model.layers[0].trainable = False
    model.layers[1].trainable = False
    for m in (model, head):
        m.compile(optimizers.RMSprop(0.01, momentum=0.5, global_clipnorm=0.3),
                  "categorical_crossentropy")
    ours = model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0).history["loss"]
    alone = head.fit(features, y, batch_size=16, epochs=3, shuffle=False, verbose=0).history["loss"]

    for before, after in zip_equal(base_before, model.get_weights()[:4]):
        np.testing.assert_array_equal(before, after)  # not a single bit moved
    for a, b in zip_equal(model.get_layer("head").get_weights(), head.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-13)  # (the clipping's norm: the head's only)
    np.testing.assert_allclose(ours, alone, rtol=1e-13)
    assert np.abs(model.get_layer("head").get_weights()[0] - head.layers[0].kernel).max() < 1e-13
    slots = model.optimizer.get_state(model.params)["slots"]
    assert [any(s is not None for s in row) for row in slots] == [False] * 4 + [True] * 2


def test_freezing_and_unfreezing_between_epochs_gives_the_per_parameter_numbers(monkeypatch):
    """The flat step (the arena) while nothing is frozen, the per-parameter step while a layer is:
    the same numbers, bit for bit, as the per-parameter step throughout."""
    x, y = data()
    results = []
    for flat in (True, False):
        monkeypatch.setattr(arena, "ENABLED", flat)
        model = base_and_head()
        model.compile(optimizers.Adam(0.01), "categorical_crossentropy")
        losses = []
        for frozen in (None, "b1", "head", None):
            for layer in model.layers:
                layer.trainable = layer.name != frozen
            before = model.get_layer(frozen).get_weights() if frozen else []
            losses += model.fit(x, y, batch_size=32, epochs=1, shuffle=False,
                                verbose=0).history["loss"]
            if frozen:
                for a, b in zip_equal(before, model.get_layer(frozen).get_weights()):
                    np.testing.assert_array_equal(a, b)
        results.append((losses, model.get_weights(), model.optimizer.get_state(model.params)))
    (l1, w1, s1), (l2, w2, s2) = results
    assert l1 == l2
    for a, b in zip_equal(w1, w2):
        np.testing.assert_array_equal(a, b)
    assert s1["iterations"] == s2["iterations"] == 12
    for ra, rb in zip_equal(s1["slots"], s2["slots"]):
        for a, b in zip_equal(ra, rb):
            np.testing.assert_array_equal(a, b)


def test_model_trainable_sets_every_layer_and_a_frozen_model_trains_nothing():
    x, y = data()
    model = base_and_head()
    model.compile("rmsprop", "categorical_crossentropy")
    model.trainable = False
    assert not model.trainable and not any(layer.trainable for layer in model.layers)
    model.get_layer("head").trainable = True  # Keras: the frozen model still trains nothing
    assert model.trainable_weights == [] and len(model.non_trainable_weights) == 6
    before = model.get_weights()
    with pytest.warns(UserWarning, match="no trainable weights"):
        model.fit(x, y, epochs=1, verbose=0)
    for a, b in zip_equal(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    model.trainable = True
    assert all(layer.trainable for layer in model.layers)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(x, y, epochs=1, verbose=0)
    assert all(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_a_frozen_model_used_as_a_layer_keeps_its_weights_and_counts_as_non_trainable():
    x, y = data()
    backend.set_seed(0)
    base = Sequential([layers.Input((6,)), layers.Dense(8, activation="relu", name="inner")])
    base.trainable = False
    inp = layers.Input((6,))
    outer = Model(inp, layers.Dense(3, activation="softmax", name="top")(base(inp)))
    assert not outer.layers[1].trainable and outer.trainable
    assert [w.shape for w in outer.trainable_weights] == [(8, 3), (3,)]
    assert [w.shape for w in outer.non_trainable_weights] == [(6, 8), (8,)]
    lines = []
    outer.summary(print_fn=lines.append, show_trainable=True)
    table = lines[0].splitlines()
    assert "Trainable params: 27" in table and "Non-trainable params: 56" in table
    assert [row.split()[-1] for row in table if "(Sequential)" in row or "(Dense)" in row] == \
        ["N", "Y"]
    before = base.get_weights()
    outer.compile("adam", "categorical_crossentropy")
    outer.fit(x, y, epochs=2, verbose=0)
    for a, b in zip_equal(before, base.get_weights()):
        np.testing.assert_array_equal(a, b)
    base.layers[0].trainable = True  # fine-tuning: Keras's outer model then trains it too
    outer.fit(x, y, epochs=1, verbose=0)
    assert not np.array_equal(before[0], base.get_weights()[0])


def test_the_frozen_flags_are_saved_with_the_model(tmp_path):
    model = base_and_head()
    model.get_layer("b2").trainable = False
    model.compile("rmsprop", "categorical_crossentropy")
    model.save(tmp_path / "m.keras")
    again = tinynet.models.load_model(tmp_path / "m.keras")
    assert [layer.trainable for layer in again.layers] == [True, False, True] and again.trainable
    model.trainable = False
    model.get_layer("head").trainable = True
    model.save(tmp_path / "m.keras")
    again = tinynet.models.load_model(tmp_path / "m.keras")
    assert not again.trainable and again.trainable_weights == []
    assert [layer.trainable for layer in again.layers] == [False, False, True]


def test_trainable_takes_true_or_false_only():
    with pytest.raises(TypeError, match="trainable must be True or False, got 'no'"):
        layers.Dense(4, trainable="no")
    model = base_and_head()
    with pytest.raises(TypeError, match="trainable must be True or False, got 0"):
        model.trainable = 0
    assert layers.Dense(4, trainable=np.bool_(False)).trainable is False


def test_back_propagation_stops_before_a_frozen_base():
    """Training a head on a frozen convolutional base needs no gradient inside the base (Keras's
    automatic differentiation skips it too): its layers' backward passes are not run, and the
    head trains as the head alone on the base's outputs."""
    backend.set_floatx("float64")  # restored by conftest
    x = np.random.default_rng(0).random((16, 8, 8, 1))
    y = np.eye(3)[np.arange(16) % 3]
    for freeze in (True, False):
        backend.set_seed(4)
        model = Sequential([layers.Input((8, 8, 1)), layers.Conv2D(4, 3, activation="relu"),
                            layers.MaxPooling2D(2), layers.Flatten(name="flat"),
                            layers.Dense(3, activation="softmax", name="head")])
        calls = []
        for layer in model.layers[:3]:
            layer.backward = (lambda original, name: lambda *a, **k: calls.append(name) or
                              original(*a, **k))(layer.backward, layer.name)
        model.layers[0].trainable = not freeze
        model.compile(optimizers.SGD(0.1), "categorical_crossentropy")
        features = model.forward(x, until="flat")
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        assert (calls == []) == freeze, calls
    head = Sequential([layers.Input((features.shape[1],)), layers.Dense(3, activation="softmax")])
    backend.set_seed(4)
    frozen = Sequential([layers.Input((8, 8, 1)), layers.Conv2D(4, 3, activation="relu",
                                                                trainable=False),
                         layers.MaxPooling2D(2), layers.Flatten(name="flat"),
                         layers.Dense(3, activation="softmax", name="head")])
    head.set_weights(frozen.get_layer("head").get_weights())
    features = frozen.forward(x, until="flat")
    for m, data in ((frozen, x), (head, features)):
        m.compile(optimizers.SGD(0.1), "categorical_crossentropy")
        m.fit(data, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for a, b in zip_equal(frozen.get_layer("head").get_weights(), head.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-14)


def test_a_loop_of_ones_own_leaves_a_frozen_layer_as_fit_does():
    """``apply_gradients(zip(model.grads, model.params))``, the README's loop, trained a frozen
    layer (0.038 in four steps, with Adam state for it; an audit): a frozen weight's
    ``model.grads`` is None now, and the loop gives fit's weights."""
    x, y = data()
    results = []
    for by_hand in (True, False):
        model = base_and_head()
        model.get_layer("b2").trainable = False
        opt = optimizers.Adam(0.01)
        model.compile(opt, "categorical_crossentropy")
        if by_hand:
            for start in range(0, 96, 32):
                out = model.forward(x[start:start + 32], training=True)
                model.backward(model.loss.gradient(y[start:start + 32], out))
                assert [g is None for g in model.grads] == [False, False, True, True, False, False]
                opt.apply_gradients(zip(model.grads, model.params))
        else:
            model.fit(x, y, batch_size=32, shuffle=False, verbose=0)
        results.append(model.get_weights())
        assert [len(s) > 0 for s in opt._slots] == [True, True, False, False, True, True]
    for a, b in zip_equal(*results):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-15)


def test_load_weights_into_a_model_with_a_frozen_layer_says_why_the_state_stays(tmp_path):
    """The optimizer state of a file trained with every layer is not put back into a model with a
    layer frozen (as in Keras: its variables differ); the warning blamed momentum or amsgrad."""
    x, y = data()
    model = base_and_head()
    model.compile("adam", "categorical_crossentropy")
    model.fit(x, y, verbose=0)
    model.save(tmp_path / "all.keras")
    frozen = base_and_head()
    frozen.get_layer("b1").trainable = False
    frozen.compile("adam", "categorical_crossentropy")
    frozen.fit(x, y, verbose=0)
    with pytest.warns(UserWarning, match="the weights were loaded, not the optimizer's state: "
                                         "layers frozen here were not in the file's model"):
        frozen.load_weights(tmp_path / "all.keras")
    for a, b in zip_equal(frozen.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
