"""The parameter arena (``tinynet.arena``): the flat step gives the per-parameter step's numbers, bit
for bit, and everything that replaces or copies weights keeps training the arrays it should.

The reference is the per-parameter path (``arena.ENABLED = False``): ``optimizer.apply_gradients``
one parameter at a time, the readable code."""
import numpy as np
import pytest

import tinynet
from tinynet import arena, backend, layers, optimizers, training
from tinynet.callbacks import EarlyStopping
from tinynet.model import Model, Sequential

from conftest import zip_equal


def small_cnn():
    """Conv2D, pooling, Dense with and without bias, dropout: seven parameter arrays."""
    x = layers.Input((6, 6, 2))
    y = layers.Conv2D(3, 3, padding="same", activation="relu")(x)
    y = layers.MaxPooling2D(2)(y)
    y = layers.Flatten()(y)
    y = layers.Dense(7, activation="tanh", use_bias=False)(y)
    y = layers.Dropout(0.25)(y)
    y = layers.Dense(5, activation="relu")(y)
    y = layers.Dense(3, activation="softmax")(y)
    return Model(x, y)


def batches(n=4, size=8, shape=(6, 6, 2), classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((size,) + shape),
             np.eye(classes)[rng.integers(0, classes, size)]) for _ in range(n)]


def trained(make_optimizer, flat, monkeypatch, dtype="float32", steps=4, build=small_cnn,
            data=None):
    """A model trained ``steps`` steps, with the arena (``flat``) or parameter by parameter."""
    monkeypatch.setattr(arena, "ENABLED", flat)
    backend.set_floatx(dtype)
    backend.set_seed(7)  # the initial weights and the dropout masks
    model = build()
    model.compile(make_optimizer(), "categorical_crossentropy")
    for k, (xb, yb) in enumerate(data or batches(steps)):
        step(model, xb, yb, seed=k)
    assert (model._arena is not None) == flat
    return model


def step(model, xb, yb, seed):
    """One ``train_on_batch`` with its dropout masks drawn from ``seed``."""
    backend.set_seed(100 + seed)
    return model.train_on_batch(xb, yb)


def assert_same_training_state(a, b):
    for wa, wb in zip_equal(a.get_weights(), b.get_weights()):
        assert wa.dtype == wb.dtype
        np.testing.assert_array_equal(wa, wb)
    sa, sb = (m.optimizer.get_state(m.params) for m in (a, b))
    assert sa["iterations"] == sb["iterations"]
    for ra, rb in zip_equal(sa["slots"], sb["slots"]):
        for x, y in zip_equal(ra, rb):
            assert (x is None) == (y is None)
            if x is not None:
                assert x.dtype == y.dtype
                np.testing.assert_array_equal(x, y)


OPTIMIZERS = {
    "rmsprop": lambda: optimizers.RMSprop(learning_rate=0.01),
    "rmsprop-momentum": lambda: optimizers.RMSprop(learning_rate=0.01, momentum=0.9),
    "rmsprop-centered": lambda: optimizers.RMSprop(learning_rate=0.01, centered=True),
    "rmsprop-centered-momentum": lambda: optimizers.RMSprop(centered=True, momentum=0.5),
    "sgd": lambda: optimizers.SGD(learning_rate=0.1),
    "sgd-momentum": lambda: optimizers.SGD(learning_rate=0.1, momentum=0.9),
    "sgd-nesterov": lambda: optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True),
    "adam": lambda: optimizers.Adam(learning_rate=0.01),
    "adam-amsgrad": lambda: optimizers.Adam(learning_rate=0.01, amsgrad=True),
    "adagrad": lambda: optimizers.Adagrad(learning_rate=0.1),
    "adadelta": lambda: optimizers.Adadelta(learning_rate=1.0),
    # the clipping options and weight decay act on the views before the flat update
    "rmsprop-clipnorm": lambda: optimizers.RMSprop(learning_rate=0.01, clipnorm=0.05),
    "rmsprop-global-clipnorm": lambda: optimizers.RMSprop(learning_rate=0.01, global_clipnorm=0.1),
    "rmsprop-clipvalue": lambda: optimizers.RMSprop(learning_rate=0.01, clipvalue=0.01),
    "rmsprop-momentum-decay": lambda: optimizers.RMSprop(momentum=0.9, weight_decay=0.1),
    "sgd-nesterov-clipnorm": lambda: optimizers.SGD(momentum=0.9, nesterov=True, clipnorm=0.05),
    "adam-global-clipnorm-decay": lambda: optimizers.Adam(global_clipnorm=0.1, weight_decay=0.05),
    "adagrad-clipvalue": lambda: optimizers.Adagrad(learning_rate=0.1, clipvalue=0.02),
    "adadelta-clipnorm": lambda: optimizers.Adadelta(learning_rate=1.0, clipnorm=0.05),
}


@pytest.mark.parametrize("backend_name", ["numpy", "numba", "cupy"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_the_flat_step_gives_the_per_parameter_numbers_bit_for_bit(name, dtype, backend_name,
                                                                   monkeypatch):
    try:
        backend.set_backend(backend_name)
    except backend.BackendError as e:  # numba or CuPy (a GPU) missing: benchmarks/gpu_session.sh
        pytest.skip(str(e))
    flat = trained(OPTIMIZERS[name], True, monkeypatch, dtype)
    reference = trained(OPTIMIZERS[name], False, monkeypatch, dtype)
    assert_same_training_state(flat, reference)
    assert flat.get_weights()[0].dtype == np.dtype(dtype)


def test_one_update_call_per_step_over_the_whole_arena(monkeypatch):
    calls = []
    original = optimizers.Optimizer._update  # the fused kernel's or the readable update

    def spy(self, theta, g, state, keep=None):
        calls.append(theta.shape)
        return original(self, theta, g, state, keep)
    monkeypatch.setattr(optimizers.Optimizer, "_update", spy)
    model = trained(OPTIMIZERS["rmsprop"], True, monkeypatch, steps=3)
    assert calls == [(model.count_params(),)] * 3
    calls.clear()
    trained(OPTIMIZERS["rmsprop"], False, monkeypatch, steps=1)
    assert len(calls) == len(model.params) == 7


def test_weights_gradients_and_state_are_views_of_the_flat_buffers(monkeypatch):
    model = trained(OPTIMIZERS["rmsprop-momentum"], True, monkeypatch, steps=1)
    (group,) = model._arena.groups
    (flat,) = model.optimizer._flat
    layer = model.get_layer(model.layers[1].name)  # the Conv2D
    assert layer.kernel is layer.params[0] and layer.bias is layer.params[1]
    for p, g, state in zip_equal(model.params, model.grads, model.optimizer._slots):
        assert p.base is group.weights and g.base is group.gradients
        assert state["s"].base is flat["s"] and state["moment"].base is flat["moment"]


@pytest.mark.parametrize("flat", [True, False])
def test_a_non_finite_step_is_undone_and_named(flat, monkeypatch):
    """A first step that overflows the weights is named as such and leaves the weights and an
    empty state, and the next step is a first step again (Adagrad's accumulator starts again
    from its initial value): in the flat buffers as parameter by parameter."""
    monkeypatch.setattr(arena, "ENABLED", flat)
    backend.set_seed(7)
    model = small_cnn()
    model.compile(optimizers.Adagrad(learning_rate=0.1), "categorical_crossentropy")
    before = model.get_weights()
    (xb, yb), (xc, yc) = batches(2)
    model.optimizer.learning_rate = 1e39  # infinite in float32: the weights overflow
    with pytest.raises(training.NonFiniteLossError, match="updated weights"), \
            np.errstate(all="ignore"):
        step(model, xb, yb, seed=0)
    for a, b in zip_equal(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    assert model.optimizer.iterations == 0
    assert model.optimizer.state_arrays() == []
    model.optimizer.learning_rate = 0.1
    step(model, xc, yc, seed=0)

    reference = trained(lambda: optimizers.Adagrad(learning_rate=0.1), False, monkeypatch,
                        data=[(xc, yc)])
    assert_same_training_state(model, reference)


@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
@pytest.mark.parametrize("flat", [True, False])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_a_non_finite_step_after_others_is_undone_bit_for_bit(name, flat, backend_name,
                                                              monkeypatch):
    """After two steps, a step whose weights overflow leaves the weights and every slot of the
    state as they were: kept in the kernel's own pass where RMSprop's fused kernel runs
    (numba, the arena), copied first elsewhere (weight decay: before it changes the weights)."""
    try:
        backend.set_backend(backend_name)
    except backend.BackendError as e:
        pytest.skip(str(e))
    model = trained(OPTIMIZERS[name], flat, monkeypatch, steps=2)
    before = model.get_weights(), model.optimizer.get_state(model.params)
    model.optimizer.learning_rate = 1e39  # infinite in float32: the weights overflow
    with pytest.raises(training.NonFiniteLossError), np.errstate(all="ignore"):
        step(model, *batches(1, seed=5)[0], seed=9)
    assert_same_state_as(model, *before)


def test_a_slot_the_step_does_not_update_is_put_back_too(monkeypatch):
    """RMSprop trained centered, then not: its ``mean_grad`` is no longer updated (nor passed
    to the fused kernel) but stays in the state, and an undone step puts it back as it was."""
    backend.set_backend("numba")
    model = trained(OPTIMIZERS["rmsprop-centered"], True, monkeypatch, steps=2)
    model.optimizer.centered = False
    step(model, *batches(1, seed=4)[0], seed=8)  # the undo buffers now hold the step's start
    before = model.get_weights(), model.optimizer.get_state(model.params)
    model.optimizer.learning_rate = 1e39
    with pytest.raises(training.NonFiniteLossError), np.errstate(all="ignore"):
        step(model, *batches(1, seed=5)[0], seed=9)
    assert_same_state_as(model, *before)


def test_a_stale_slot_the_fused_pass_does_not_look_at_is_still_checked(monkeypatch):
    """RMSprop trained centered, then plain: the fused pass looks at theta and s only, so a NaN
    in the ``mean_grad`` left in the state is still found (the step names the state, and is
    undone)."""
    backend.set_backend("numba")
    model = trained(OPTIMIZERS["rmsprop-centered"], True, monkeypatch, steps=2)
    model.optimizer.centered = False
    step(model, *batches(1, seed=4)[0], seed=8)
    flat = model.optimizer.flat_states(arena.for_step(model))[0]
    flat["mean_grad"][3] = np.nan
    before = model.get_weights(), model.optimizer.get_state(model.params)
    with pytest.raises(training.NonFiniteLossError, match="optimizer's state"):
        step(model, *batches(1, seed=5)[0], seed=9)
    assert_same_state_as(model, *before)


def test_an_apply_flat_of_one_s_own_that_returns_nothing_is_still_checked(monkeypatch):
    """``apply_flat`` returns the arrays that its kernel has not found finite as it wrote them;
    an override that returns nothing leaves the step to check them all: the overflow is still
    found and undone."""
    backend.set_backend("numba")

    class Mine(optimizers.RMSprop):
        def apply_flat(self, arena, flats, undo=None):
            super().apply_flat(arena, flats, undo)

    model = trained(lambda: Mine(learning_rate=0.01), True, monkeypatch, steps=2)
    before = model.get_weights(), model.optimizer.get_state(model.params)
    model.optimizer.learning_rate = 1e39
    with pytest.raises(training.NonFiniteLossError, match="updated weights"), \
            np.errstate(all="ignore"):
        step(model, *batches(1, seed=5)[0], seed=9)
    assert_same_state_as(model, *before)


def _two_groups(kind):
    """A model whose arena has two groups: float64 and float32 weights, or a nested model's
    own buffer (adopted) and the outer model's."""
    if kind == "two-float-types":
        backend.set_floatx("float64")
        model = Sequential([layers.Input((4,)), layers.Dense(5, activation="relu")])
        backend.set_floatx("float32")
        model.add(layers.Dense(3, activation="softmax"))
        return model
    inner = Sequential([layers.Input((4,)), layers.Dense(6, activation="relu")], name="inner")
    return Sequential([inner, layers.Dense(3, activation="softmax")])


@pytest.mark.parametrize("steps", [0, 2])  # a first step (its slots are made in it) or a later one
@pytest.mark.parametrize("kind", ["two-float-types", "nested"])
@pytest.mark.parametrize("name", ["rmsprop", "rmsprop-momentum", "rmsprop-momentum-decay",
                                  "sgd-momentum", "adam-amsgrad"])
def test_an_undone_step_puts_back_every_group_bit_for_bit(name, kind, steps, monkeypatch):
    """The undo buffers of several arena groups (kept by the fused kernel or copied, group by
    group) go back to their own groups, to the bit (-0.0 and NaN payloads included)."""
    backend.set_backend("numba")
    backend.set_seed(7)
    model = _two_groups(kind)
    model.compile(OPTIMIZERS[name](), "categorical_crossentropy")
    data = [(x.reshape(len(x), -1)[:, :4], y) for x, y in batches(3, shape=(2, 2, 2))]
    for xb, yb in data[:steps]:
        model.train_on_batch(xb, yb)
    assert len(model._arena.groups) == 2
    before = model.get_weights(), model.optimizer.get_state(model.params)
    model.optimizer.learning_rate = 1e39  # infinite in float32: that group's weights overflow
    with pytest.raises(training.NonFiniteLossError), np.errstate(all="ignore"):
        model.train_on_batch(*data[2])
    assert_same_state_as(model, *before, bits=True)


def assert_same_state_as(model, weights, state, bits=False):
    def same(a, b):
        assert a.dtype == b.dtype
        if bits:
            np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))
        else:
            np.testing.assert_array_equal(a, b)
    for a, b in zip_equal(model.get_weights(), weights):
        same(a, b)
    now = model.optimizer.get_state(model.params)
    assert now["iterations"] == state["iterations"]
    for ra, rb in zip_equal(now["slots"], state["slots"]):
        for x, y in zip_equal(ra, rb):
            assert (x is None) == (y is None)
            if x is not None:
                same(x, y)


def test_after_set_weights_training_moves_the_arrays_get_weights_returns(monkeypatch):
    model = trained(OPTIMIZERS["adam"], True, monkeypatch, steps=2)
    new = [np.full_like(w, 0.01 * (i + 1)) for i, w in enumerate(model.get_weights())]
    model.set_weights(new)
    kernel = model.layers[1].kernel
    for a, b in zip(model.get_weights(), new):
        np.testing.assert_array_equal(a, b)
    xb, yb = batches(1, seed=3)[0]
    model.train_on_batch(xb, yb)
    after = model.get_weights()
    assert not np.array_equal(after[0], new[0])
    np.testing.assert_array_equal(kernel, after[0])  # the same array, moved in place


def test_after_load_weights_the_optimizer_step_moves_the_loaded_weights(tmp_path, monkeypatch):
    source = trained(OPTIMIZERS["rmsprop"], True, monkeypatch, steps=3)
    source.save_weights(tmp_path / "w.npz")
    data = batches(2, seed=5)

    def loaded_then_trained(flat):
        model = trained(OPTIMIZERS["rmsprop"], flat, monkeypatch, steps=1)
        model.load_weights(tmp_path / "w.npz")
        for a, b in zip(model.get_weights(), source.get_weights()):
            np.testing.assert_array_equal(a, b)
        for xb, yb in data:
            model.train_on_batch(xb, yb)
        return model

    flat = loaded_then_trained(True)
    assert not np.array_equal(flat.get_weights()[0], source.get_weights()[0])
    assert_same_training_state(flat, loaded_then_trained(False))


def test_a_loaded_model_continues_training_as_the_saved_one(tmp_path, monkeypatch):
    model = trained(OPTIMIZERS["rmsprop-centered-momentum"], True, monkeypatch, steps=2)
    model.save(tmp_path / "m.npz")
    loaded = tinynet.load_model(tmp_path / "m.npz")
    assert loaded._arena is not None
    for k, (xb, yb) in enumerate(batches(2, seed=9)):
        step(model, xb, yb, seed=k)
        step(loaded, xb, yb, seed=k)
    assert_same_training_state(model, loaded)


def test_set_state_in_the_middle_of_training_is_the_state_the_next_step_uses(monkeypatch):
    """Rewinding weights and optimizer state to step 2 (set_weights, set_state) and training again
    repeats steps 3 and 4: the flat state follows the arrays set_state creates."""
    data = batches(4)
    model = trained(OPTIMIZERS["adam-amsgrad"], True, monkeypatch, data=data[:2])
    weights, state = model.get_weights(), model.optimizer.get_state(model.params)
    for k, (xb, yb) in enumerate(data[2:]):
        step(model, xb, yb, seed=k)
    straight = (model.get_weights(), model.optimizer.get_state(model.params))
    model.set_weights(weights)
    model.optimizer.set_state(model.params, state)
    for k, (xb, yb) in enumerate(data[2:]):
        step(model, xb, yb, seed=k)
    for a, b in zip(model.get_weights(), straight[0]):
        np.testing.assert_array_equal(a, b)
    for ra, rb in zip(model.optimizer.get_state(model.params)["slots"], straight[1]["slots"]):
        for x, y in zip(ra, rb):
            assert (x is None) == (y is None)
            if x is not None:
                np.testing.assert_array_equal(x, y)


def test_a_model_used_as_a_layer_is_trained_through_the_outer_model(monkeypatch):
    kernels = []

    def build():
        inner = Sequential([layers.Input((4,)), layers.Dense(6, activation="relu")], name="inner")
        kernels.append(inner.layers[0].kernel)  # taken before the inner model becomes a layer
        return Sequential([inner, layers.Dense(3, activation="softmax")])

    data = batches(3, shape=(4,))
    outer = trained(OPTIMIZERS["rmsprop"], True, monkeypatch, build=build, data=data)
    reference = trained(OPTIMIZERS["rmsprop"], False, monkeypatch, build=build, data=data)
    assert_same_training_state(outer, reference)
    inner = outer.layers[0].model
    np.testing.assert_array_equal(inner.get_weights()[0], outer.get_weights()[0])
    assert inner.layers[0].kernel.base is outer._arena.groups[0].weights
    assert inner.layers[0].kernel is kernels[0]  # the outer arena took the inner one's buffer

    # the inner model trained on its own moves the same arrays (its arena and the outer one
    # share the buffer); the outer model, trained again, goes on from the values it left
    inner.compile(optimizers.SGD(learning_rate=0.5), "mse")
    before = inner.get_weights()
    inner.train_on_batch(np.ones((2, 4)), np.ones((2, 6)))
    moved = inner.get_weights()
    assert not np.array_equal(moved[0], before[0])
    np.testing.assert_array_equal(outer.get_weights()[0], moved[0])
    outer.train_on_batch(*data[0])
    assert not np.array_equal(inner.get_weights()[0], moved[0])
    np.testing.assert_array_equal(inner.get_weights()[0], outer.get_weights()[0])
    assert inner.layers[0].kernel.base is outer._arena.groups[0].weights


def test_layers_built_late_and_layers_added_later_are_trained(monkeypatch):
    def build():
        return Sequential([layers.Dense(5, activation="relu"), layers.Dense(3, activation="softmax")])

    data = batches(3, shape=(4,))
    model = trained(OPTIMIZERS["sgd-momentum"], True, monkeypatch, build=build, data=data)
    reference = trained(OPTIMIZERS["sgd-momentum"], False, monkeypatch, build=build, data=data)
    assert_same_training_state(model, reference)

    for m in (model, reference):
        monkeypatch.setattr(arena, "ENABLED", m is model)
        m.add(layers.Dense(3, activation="softmax", name=f"added_{m is model}"))
        for k, (xb, yb) in enumerate(data):
            step(m, xb, yb, seed=k)
    # one buffer for all the weights, the added layer's too: one update call a step
    assert [len(g.positions) for g in model._arena.groups] == [6]
    assert model.get_layer("added_True").kernel.base is model._arena.groups[0].weights
    assert_same_training_state(model, reference)


@pytest.mark.parametrize("how", ["layers", "input_shape", "add", "functional", "built_late"])
def test_a_model_however_made_keeps_its_weights_in_one_buffer(how):
    """One group, one optimizer update a step, whichever way the model was put together (a
    Sequential grown layer by layer got one buffer a layer, and three times slower steps)."""
    def dense(**kw):
        return layers.Dense(4, activation="relu", **kw)

    if how == "layers":
        model = Sequential([layers.Input((3,)), dense(), dense(), dense()])
    elif how == "input_shape":
        model = Sequential([dense(input_shape=(3,)), dense(), dense()])
    elif how == "add":
        model = Sequential()
        for layer in (layers.Input((3,)), dense(), dense(), dense()):
            model.add(layer)
    elif how == "functional":
        x = layers.Input((3,))
        model = Model(x, dense()(dense()(dense()(x))))
    else:
        model = Sequential([dense(), dense(), dense()])
        model.build((None, 3))
    model.compile("adam", "mse")
    model.train_on_batch(np.ones((2, 3)), np.ones((2, 4)))
    assert len(model._arena.groups) == 1


def test_a_replaced_parameter_array_is_taken_into_a_new_arena(monkeypatch):
    model = trained(OPTIMIZERS["rmsprop"], True, monkeypatch, steps=1)
    dense = model.layers[-1]
    mine = np.full(dense.kernel.shape, 0.5, dtype=dense.kernel.dtype)
    dense.hold_params([mine] + dense.params[1:])  # rebinding, not copying: a new arena around it
    model.train_on_batch(*batches(1)[0])
    assert dense.kernel is dense.params[0] and dense.kernel.base is model._arena.groups[0].weights
    assert not np.array_equal(dense.kernel, mine) and np.allclose(dense.kernel, 0.5, atol=0.05)


@pytest.mark.parametrize("how", ["attribute", "params"])
def test_an_array_assigned_to_a_weight_is_copied_into_it(how, monkeypatch):
    """``layer.kernel = w`` (or ``layer.params[0] = w``) rebound one name only: the forward pass
    then ran one array and the optimizer trained another, silently. Now the values are copied in:
    every holder (attribute, params, flat buffer, references) sees them and training moves them."""
    model = trained(OPTIMIZERS["rmsprop"], True, monkeypatch, steps=1)
    dense = model.layers[-1]
    kernel = dense.kernel
    mine = np.full(kernel.shape, 0.5)
    if how == "attribute":
        dense.kernel = mine
    else:
        dense.params[0] = mine
    assert dense.kernel is kernel is dense.params[0] and np.all(kernel == 0.5)
    model.train_on_batch(*batches(1)[0])
    assert kernel.base is model._arena.groups[0].weights and not np.all(kernel == 0.5)
    np.testing.assert_array_equal(model.get_weights()[-2], kernel)  # the one array, trained
    with pytest.raises(ValueError, match=r"kernel has shape \(5, 3\); the array assigned has "
                                         r"shape \(2, 3\)"):
        dense.kernel = np.ones((2, 3))


def test_restored_best_weights_are_the_ones_training_continues_from(monkeypatch):
    model = trained(OPTIMIZERS["rmsprop"], True, monkeypatch, steps=1)
    x = np.concatenate([xb for xb, _ in batches(4)])
    y = np.concatenate([yb for _, yb in batches(4)])
    stop = EarlyStopping(monitor="loss", patience=0, restore_best_weights=True)
    model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[stop])
    restored = model.get_weights()
    model.train_on_batch(x[:8], y[:8])
    assert not np.array_equal(model.get_weights()[0], restored[0])
    np.testing.assert_array_equal(model.layers[1].kernel, model.get_weights()[0])


def test_a_hand_written_step_updates_the_arena(monkeypatch):
    """A student's own loop, forward / backward / apply_gradients, trains an arena's views."""
    model = trained(OPTIMIZERS["sgd"], True, monkeypatch, steps=1)
    before = model.get_weights()
    xb, yb = batches(1, seed=2)[0]
    out = model.forward(xb, training=True)
    model.backward(model.loss.gradient(yb, out))
    grads = [g.copy() for g in model.grads]
    model.optimizer.apply_gradients(zip(model.grads, model.params))
    for b, a, g in zip(before, model.get_weights(), grads):
        np.testing.assert_allclose(b - a, np.float32(0.1) * g, rtol=1e-6, atol=1e-7)


def test_parameters_of_two_float_types_make_two_groups(monkeypatch):
    def build():
        backend.set_floatx("float64")
        model = Sequential([layers.Input((4,)), layers.Dense(5, activation="relu")])
        backend.set_floatx("float32")
        model.add(layers.Dense(3, activation="softmax"))
        return model

    data = batches(3, shape=(4,))
    model = trained(OPTIMIZERS["adam"], True, monkeypatch, build=build, data=data)
    reference = trained(OPTIMIZERS["adam"], False, monkeypatch, build=build, data=data)
    assert [g.dtype for g in model._arena.groups] == [np.float64, np.float32]
    assert_same_training_state(model, reference)


def test_interop_copies_the_trained_weights(monkeypatch):
    pytest.importorskip("tensorflow")
    from tinynet.interop import from_keras, to_keras
    model = trained(OPTIMIZERS["rmsprop"], True, monkeypatch, steps=2,
                    build=lambda: Sequential([layers.Input((4,)),
                                                  layers.Dense(3, activation="softmax")]),
                    data=batches(2, shape=(4,)))
    for a, b in zip(to_keras(model).get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    back = from_keras(to_keras(model))
    back.compile(optimizers.RMSprop(learning_rate=0.01), "categorical_crossentropy")
    back.train_on_batch(*batches(1, shape=(4,))[0])
    assert back.layers[0].kernel.base is back._arena.groups[0].weights
    assert not np.array_equal(back.get_weights()[0], model.get_weights()[0])


def test_a_deep_copy_of_a_trained_model_trains_on_its_own():
    """copy.deepcopy(model): the copy's steps move the copy's weights (copied views are no
    longer views of the copied buffer: the copy builds its own arena), as the original's would,
    and leave the original alone."""
    import copy

    from tinynet import report_models
    backend.set_seed(0)
    model = report_models.cnn_digits()
    model.compile("rmsprop", "categorical_crossentropy")
    r = np.random.default_rng(0)
    x = r.random((64, 28, 28, 1), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[np.arange(64) % 10]
    model.fit(x, y, epochs=1, verbose=0, shuffle=False)
    twin = copy.deepcopy(model)
    before = [w.copy() for w in model.get_weights()]
    twin.fit(x, y, epochs=1, verbose=0, shuffle=False)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert not any(np.array_equal(a, b) for a, b in zip(before, twin.get_weights()))
    model.fit(x, y, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("make", ["functional", "sequential", "sequential_late", "deep_copy"])
def test_a_reference_to_a_weight_taken_before_compile_sees_training(make):
    """Keras's ``layer.kernel`` is a variable: a reference taken once the model exists follows
    training. Here too: the weights are views of the model's flat buffer from the moment the model
    is built (not only from ``compile`` on, which left earlier references silently stale)."""
    import copy
    backend.set_seed(0)
    if make == "sequential":
        model = Sequential([layers.Input((4,)), layers.Dense(3, activation="softmax")])
    elif make == "sequential_late":
        model = Sequential([layers.Dense(3, activation="softmax")])
        model.build((None, 4))
    else:
        model = Model(*(lambda x: (x, layers.Dense(3, activation="softmax")(x)))(layers.Input((4,))))
        if make == "deep_copy":
            model = copy.deepcopy(model)
    kernel, weights = model.layers[-1].kernel, model.weights
    start = kernel.copy()
    model.compile("rmsprop", "categorical_crossentropy")
    x = np.random.default_rng(1).standard_normal((16, 4)).astype(np.float32)
    model.fit(x, np.eye(3, dtype=np.float32)[np.arange(16) % 3], epochs=1, verbose=0)
    assert not np.array_equal(kernel, start)  # it moved ...
    np.testing.assert_array_equal(kernel, model.get_weights()[0])  # ... with the model
    assert all(a is b for a, b in zip(weights, model.weights))


def test_a_model_of_some_of_the_layers_leaves_their_weights_where_references_see_them():
    """``Model(model.input, layer.output)`` (a hidden layer's output) used to copy the shared
    layers' weights into a buffer of its own: a reference taken before (``layer.kernel``, as a
    Keras variable) stopped following training, silently. The weights now stay in the first
    model's buffer; the second model's arena takes the run they fill there."""
    def trained(probe):
        backend.set_seed(0)
        x_in = layers.Input((6,))
        hidden = layers.Dense(8, activation="relu", name="h")(x_in)
        model = Model(x_in, layers.Dense(3, activation="softmax", name="out")(hidden))
        model.compile(optimizers.RMSprop(0.01), "categorical_crossentropy")
        kernel = model.get_layer("h").kernel
        feats = Model(model.input, model.get_layer("h").output) if probe else None
        x = np.random.default_rng(0).normal(size=(64, 6)).astype(np.float32)
        model.fit(x, np.eye(3, dtype=np.float32)[np.arange(64) % 3], epochs=2, verbose=0,
                  shuffle=False)
        return model, kernel, feats, x
    model, kernel, feats, x = trained(probe=True)
    assert kernel is model.get_layer("h").kernel  # the same array, moved by training
    assert np.shares_memory(kernel, model._arena.groups[0].weights)
    np.testing.assert_array_equal(feats.predict(x), np.maximum(x @ kernel + model.get_layer("h").bias, 0))
    alone = trained(probe=False)[0]
    for a, b in zip(model.get_weights(), alone.get_weights()):  # the probe changes no number
        np.testing.assert_array_equal(a, b)
    feats.compile(optimizers.SGD(0.1), "mse")
    before = kernel.copy()
    feats.fit(x, np.zeros((64, 8), np.float32), epochs=1, verbose=0)  # trains the shared layer
    assert kernel is model.get_layer("h").kernel and not np.array_equal(kernel, before)
    group = feats._arena.groups[0]  # one flat step: the run of the first model's buffer
    assert len(feats._arena.groups) == 1 and group.adopted
    assert np.shares_memory(group.weights, model._arena.groups[0].weights)


def test_a_new_head_on_some_of_a_trained_models_layers_trains_them_in_place(monkeypatch):
    """Keras's transfer learning, ``Model(base.input, Dense(...)(base.layers[-2].output))``:
    the base's layers stay in its buffer (one run of it), the head gets one of its own, and
    each step is one flat update per buffer, with the per-parameter path's numbers."""
    def run(flat):
        monkeypatch.setattr(arena, "ENABLED", flat)
        backend.set_seed(0)
        base = Sequential([layers.Input((6,)), layers.Dense(8, activation="relu"),
                           layers.Dense(8, activation="relu"), layers.Dense(3, activation="softmax")])
        base.compile(optimizers.RMSprop(0.01), "categorical_crossentropy")
        head = layers.Dense(2, activation="softmax")(base.layers[-2].output)
        model = Model(base.input, head)
        model.compile(optimizers.RMSprop(0.01), "categorical_crossentropy")
        x = np.random.default_rng(0).normal(size=(32, 6)).astype(np.float32)
        model.fit(x, np.eye(2, dtype=np.float32)[np.arange(32) % 2], epochs=2, verbose=0,
                  shuffle=False)
        return base, model
    base, model = run(True)
    groups = model._arena.groups
    assert [g.adopted for g in groups] == [True, False] and len(groups[0].weights) == 6 * 8 + 8 + 8 * 8 + 8
    assert all(np.shares_memory(w, base._arena.groups[0].weights) for w in base.layers[0].params)
    reference = run(False)[1]
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_model_made_to_look_at_a_hidden_layer_takes_no_memory_until_it_trains():
    """A probe (Model(model.input, layer.output)) used to predict built an arena at once: a
    gradient buffer the size of the shared weights, and a slice that kept the first model's
    whole buffer alive after that model was rebuilt (a review: 76 MB)."""
    import gc
    import weakref
    full = Sequential([layers.Input((30,)), layers.Dense(20, name="h"), layers.Dense(10),
                       layers.Dense(3)])
    old = weakref.ref(full._arena.groups[0].weights)
    probe = Model(full.input, full.get_layer("h").output)
    assert probe._arena is None
    probe.predict(np.zeros((2, 30), np.float32), verbose=0)
    full.pop()
    full.add(layers.Dense(4))
    arena.of(full)
    gc.collect()
    assert old() is None  # the first buffer is gone: nothing of the probe's holds it
    probe.compile(optimizers.SGD(0.1), "mse")  # training: an arena now, on the live buffer
    assert probe._arena.groups[0].adopted and np.shares_memory(
        probe._arena.groups[0].weights, full._arena.groups[0].weights)


def test_a_reference_taken_after_pop_follows_training():
    """After pop() the remaining weights are a run of the model's own buffer: the model takes
    them into a buffer of its own at once, as before (a review caught a version that waited)."""
    model = Sequential([layers.Input((4,)), layers.Dense(3), layers.Dense(2), layers.Dense(2)])
    model.compile("sgd", "mse")
    model.pop()
    kernel = model.layers[0].kernel
    model.fit(np.random.default_rng(0).random((8, 4)), np.random.default_rng(1).random((8, 2)),
              epochs=1, verbose=0)
    assert kernel is model.layers[0].kernel
