"""The training step that a GPU replays as a CUDA graph (tinynet.replay, training.StaticStep).

Its logic (fixed buffers, the NaN guard on the device, sums kept on the device, the loop that
reads them) runs on NumPy too: here it is checked against the ordinary step, bit for bit. The
recording and the replay themselves need a GPU: the tests at the end skip without one (CI has
none; benchmarks/gpu_session.sh runs them on a lent GPU machine).
"""
import contextlib
import warnings

import numpy as np
import pytest

from tinynet import arena, backend, callbacks, layers, models, optimizers, replay, report_models
from tinynet import training
from tinynet import utils

from conftest import zip_equal


def mlp(dtype="float64", seed=0, rate=0.25):
    """A small MLP with Dropout (its masks must be drawn in the same order by both steps)."""
    backend.set_seed(seed)
    with backend.floatx_scope(dtype):
        model = models.Sequential([layers.Input((12,)), layers.Dense(16, activation="relu"),
                                   layers.Dropout(rate), layers.Dense(3, activation="softmax")])
        model.compile(optimizers.RMSprop(learning_rate=0.01, momentum=0.5), metrics=["accuracy"])
    return model


def data(n=80, seed=1):
    g = np.random.default_rng(seed)
    x = g.standard_normal((n, 12))
    y = utils.to_categorical(g.integers(0, 3, n), 3)
    return x, y


class EagerGraph:
    """:class:`replay.GraphStep`'s interface with the recording left out: the static step run as
    it reads, on NumPy (what a GPU records and replays)."""

    made = []

    def __init__(self, model, static):
        self.model, self.static = model, static
        self.stream = contextlib.nullcontext()
        EagerGraph.made.append(self)

    def begin_epoch(self):
        self.static.reset()

    def end_epoch(self):
        pass

    def close(self):
        pass

    def step(self, x, y, idx):
        self.static.x[...] = x[idx]
        self.static.y[...] = y[idx]
        self.static.run()


@pytest.fixture
def static_fit(monkeypatch):
    """``fit`` takes the replayed path (on NumPy: EagerGraph) for every full batch."""
    monkeypatch.setattr(replay, "unusable", lambda model, weights: None)
    monkeypatch.setattr(replay, "GraphStep", EagerGraph)
    EagerGraph.made.clear()
    return EagerGraph.made


def test_the_static_step_gives_train_step_s_numbers_bit_for_bit():
    x, y = data()
    eager, fixed = mlp(), mlp()
    static = training.StaticStep(fixed, x, y, 16)
    backend.set_seed(5)
    eager_losses = [training.train_step(eager, x[i:i + 16], y[i:i + 16])[0]
                    for i in range(0, 64, 16)]
    backend.set_seed(5)  # the same Dropout masks
    for i in range(0, 64, 16):
        static.x[...], static.y[...] = x[i:i + 16], y[i:i + 16]
        static.run()
    for a, b in zip_equal(eager.get_weights(), fixed.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip_equal(eager.optimizer.state_arrays(), fixed.optimizer.state_arrays()):
        np.testing.assert_array_equal(a, b)
    assert float(static.loss) == float(sum(eager_losses))
    assert int(static.steps) == 4 and eager.optimizer.iterations == fixed.optimizer.iterations == 4
    assert static.failure() is None


def test_a_non_finite_step_and_every_later_one_are_undone_on_the_device():
    x, y = data()
    model = mlp()
    static = training.StaticStep(model, x, y, 16)
    static.x[...], static.y[...] = x[:16], y[:16]
    static.run()
    before = [w.copy() for w in model.get_weights()]
    state = [s.copy() for s in model.optimizer.state_arrays()]
    loss_before = float(static.loss)
    static.x[0, 0] = np.nan  # the loss of the second step is NaN
    static.run()
    static.x[...] = x[16:32]  # a good batch, after the failure: undone too
    static.run()
    assert static.failure() == (1, "the loss is")
    for a, b in zip_equal(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip_equal(state, model.optimizer.state_arrays()):
        np.testing.assert_array_equal(a, b)
    assert float(static.loss) == loss_before  # the failed steps add nothing
    static.reset()
    assert static.failure() is None and int(static.steps) == 0 and float(static.loss) == 0


def test_overflowing_weights_are_named_as_such():
    x, y = data()
    model = mlp()
    model.optimizer.learning_rate = 1e308  # a step of about 3e308: past float64's largest
    static = training.StaticStep(model, x, y, 16)
    static.x[...], static.y[...] = x[:16], y[:16]
    with np.errstate(over="ignore", invalid="ignore"):
        static.run()
    assert static.failure() == (0, "the updated weights are")


@pytest.mark.parametrize("epochs,batch", [(2, 16), (1, 24)])  # 80 = 5 x 16; 3 x 24 + 8
def test_fit_on_the_static_step_trains_as_fit_on_train_step(static_fit, epochs, batch):
    x, y = data()
    runs = fit_both_ways(lambda model: model.fit(x, y, batch_size=batch, epochs=epochs,
                                                 verbose=0, seed=3), mlp)
    # the logs (the same sums, the last partial batch too), weights, state and step count
    assert isinstance(assert_same_runs(runs), dict)
    assert len(static_fit) == 1  # one graph for the whole fit, none for the eager one


def exploding(dtype="float64"):
    model = mlp(dtype)
    model.optimizer.learning_rate = 1e153  # weights grow each step until the loss overflows
    return model


def fit_both_ways(fit, make=None):
    """``fit(model)`` on the ordinary step, then on the static one: ``[(outcome, weights,
    iterations, state)]``, the outcome being what ``fit`` returned or the error it raised.
    ``make``: the model (default: :func:`exploding`)."""
    runs = []
    for fixed in (False, True):
        with warnings.catch_warnings(), np.errstate(all="ignore"), \
                pytest.MonkeyPatch.context() as m:
            warnings.simplefilter("ignore")
            if not fixed:
                m.setattr(replay, "unusable", lambda model, weights: "off")
            model = (make or exploding)()
            try:
                outcome = fit(model).history
            except training.NonFiniteLossError as e:
                outcome = str(e)
        runs.append((outcome, model.get_weights(), model.optimizer.iterations,
                     [a.copy() for a in model.optimizer.state_arrays()]))
    return runs


def assert_same_runs(runs):
    (outcome, weights, iterations, state), (outcome2, weights2, iterations2, state2) = runs
    assert outcome2 == outcome and iterations2 == iterations
    for a, b in zip_equal(weights, weights2):
        np.testing.assert_array_equal(a, b)
    for a, b in zip_equal(state, state2):
        np.testing.assert_array_equal(a, b)
    return outcome


@pytest.mark.parametrize("batch_hooks", [False, True])
def test_fit_reports_a_non_finite_replayed_step_as_the_eager_one(static_fit, batch_hooks):
    x, y = data(n=160)
    hooks = [callbacks.LambdaCallback(on_batch_end=lambda batch, logs: None)] if batch_hooks else []
    runs = fit_both_ways(
        lambda model: model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=hooks))
    message = assert_same_runs(runs)
    assert isinstance(message, str) and "batch 2 of 10" in message and runs[0][2] == 1


def test_a_first_step_that_fails_leaves_the_model_as_the_eager_one(static_fit):
    """An optimizer's first step makes its state, which a failed first step removes again: the
    static step takes that step as train_step does (a snapshot before it would miss the state)."""
    x, y = data(n=160)

    def huge():
        model = mlp()
        model.optimizer.learning_rate = 1e308  # the first update overflows float64
        return model
    runs = fit_both_ways(lambda model: model.fit(x, y, batch_size=16, epochs=1, verbose=0), huge)
    message = assert_same_runs(runs)
    assert "the updated weights are NaN or infinite at epoch 1, batch 1 of 10" in message
    assert runs[0][2] == 0 and runs[0][3] == []  # no step taken, no state left


def test_without_flat_buffers_the_static_fit_takes_train_step(static_fit, monkeypatch):
    """With tinynet.arena off (every step parameter by parameter), the static step runs
    train_step: the same numbers, and fit does not fail."""
    monkeypatch.setattr(arena, "ENABLED", False)
    x, y = data()
    runs = fit_both_ways(lambda model: model.fit(x, y, batch_size=16, epochs=2, verbose=0,
                                                 seed=3), mlp)
    assert isinstance(assert_same_runs(runs), dict) and runs[0][2] == 10


def test_a_nan_written_before_a_batch_stops_the_static_fit_at_that_batch(static_fit):
    x, y = data(n=160)
    runs = []
    for fixed in (False, True):
        with pytest.MonkeyPatch.context() as m:
            if not fixed:
                m.setattr(replay, "unusable", lambda model, weights: "off")
            model = mlp()
            hook, poison = poison_at(6)
            poison.model = model
            with pytest.raises(training.NonFiniteLossError) as e:
                model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[hook])
        runs.append((str(e.value), model.get_weights(), model.optimizer.iterations))
    assert "the loss is NaN or infinite at epoch 1, batch 7 of 10" in runs[0][0]
    assert runs[1][0] == runs[0][0] and runs[1][2] == runs[0][2] == 6
    for a, b in zip_equal(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)


def test_the_static_fit_takes_a_replaced_weight_array_as_fit_does(static_fit):
    """A weight array replaced between two fits (new arrays at the same places): the arena is
    rebuilt before the optimizer checks its places, as in train_step, on both steps."""
    x, y = data()

    def fit_twice(model):
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, seed=1)
        layer = model.layers[0]
        layer.hold_params([w.copy() for w in layer.params])
        return model.fit(x, y, batch_size=16, epochs=1, verbose=0, seed=2)
    runs = fit_both_ways(fit_twice, mlp)
    assert isinstance(assert_same_runs(runs), dict) and runs[0][2] == 10


def test_terminate_on_nan_stops_a_replayed_fit_with_the_logs_of_the_good_batches(static_fit):
    x, y = data(n=160)
    runs = fit_both_ways(lambda model: model.fit(x, y, batch_size=16, epochs=2, verbose=0,
                                                 callbacks=[callbacks.TerminateOnNaN()]))
    assert isinstance(assert_same_runs(runs), dict)


def test_what_keeps_a_model_from_replay(monkeypatch):
    model = mlp()
    assert replay.unusable(model, None) == "not the CuPy backend"
    monkeypatch.setattr(backend, "get_backend", lambda: "cupy")
    assert replay.unusable(model, None) is None
    assert replay.unusable(model, np.ones(4)) == "sample or class weights"
    monkeypatch.setenv("TINYNET_CUDA_GRAPHS", "0")
    assert replay.unusable(model, None) == "TINYNET_CUDA_GRAPHS=0"
    monkeypatch.delenv("TINYNET_CUDA_GRAPHS")
    model.compile(optimizers.Adam(), metrics=["accuracy"])
    assert "step's number" in replay.unusable(model, None)
    model.compile(optimizers.SGD(), metrics=["accuracy"])
    model.layers[0].trainable = False
    assert replay.unusable(model, None) == "frozen weights"


class Doubling(layers.Layer):
    """A layer of the user's own: replay cannot know what it keeps or reads back."""

    def _forward(self, x, training, fused=None):
        return 2 * x

    def _backward(self, dz, need_input_grad=True, fused_output=None):
        return 2 * dz


def nested(own=False):
    """A model used as a layer, with a Rescaling and a Dropout inside (and a layer of one's own)."""
    inner = models.Sequential([layers.Input((12,)), layers.Rescaling(0.5, name="half"),
                               layers.Dense(8, activation="relu"), layers.Dropout(0.25)]
                              + ([Doubling()] if own else []), name="inner")
    outer = models.Sequential([layers.Input((12,)), inner, layers.Dense(3, activation="softmax")])
    outer.compile(optimizers.RMSprop(), metrics=["accuracy"])
    return outer


def test_a_recording_depends_on_the_numbers_of_the_layers_inside_a_model_used_as_a_layer():
    """The kernels record a Dropout's rate and Rescaling's factors as arguments: changed inside
    a nested model, the step must be recorded again (its key's settings differ)."""
    model = nested()
    inner = model.layers[0]
    before = replay.settings(model)
    inner.layers[2].rate = 0.5
    assert replay.settings(model) != before
    inner.layers[2].rate = 0.25
    assert replay.settings(model) == before
    inner.get_layer("half").scale = 0.25
    assert replay.settings(model) != before
    inner.get_layer("half").scale, inner.get_layer("half").offset = 0.5, 1.0
    assert replay.settings(model) != before


def test_a_layer_of_one_s_own_inside_a_model_used_as_a_layer_keeps_the_step_from_replay(
        monkeypatch):
    monkeypatch.setattr(backend, "get_backend", lambda: "cupy")
    assert replay.unusable(nested(), None) is None
    reason = replay.unusable(nested(own=True), None)
    assert reason is not None and reason.startswith("Doubling not tinynet's own")


# ---- on a GPU: the recorded step, replayed ------------------------------------------------------

def _cupy():
    try:
        backend._load("cupy")
    except backend.BackendError as e:
        pytest.skip(f"no CuPy GPU backend: {e}")
    import cupy
    return cupy


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 1e-6)])
@pytest.mark.parametrize("build,shape", [(report_models.cnn_digits, (28, 28, 1)),
                                         (report_models.mlp_raw, (784,)),
                                         (report_models.cnn_fashion_3, (28, 28, 1))])
def test_a_replayed_step_gives_the_eager_step_s_weights(build, shape, dtype, tol, monkeypatch):
    _cupy()
    backend.set_backend("cupy")
    g = np.random.default_rng(0)
    x = g.random((128 * 6 + 40,) + shape)
    y = utils.to_categorical(g.integers(0, 10, x.shape[0]), 10)
    made = []
    original = replay.GraphStep

    class Spy(original):
        def __init__(self, *args):
            super().__init__(*args)
            made.append(self)
    monkeypatch.setattr(replay, "GraphStep", Spy)
    results = []
    for graphs in ("0", "1"):
        monkeypatch.setenv("TINYNET_CUDA_GRAPHS", graphs)
        backend.set_seed(0)
        with backend.floatx_scope(dtype):
            model = build()
            model.compile("rmsprop", metrics=["accuracy"])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            history = model.fit(x, y, batch_size=128, epochs=2, verbose=0, seed=1)
        assert not [w for w in caught if "CUDA graph" in str(w.message)]
        results.append((history.history, model.get_weights()))
    (graph,) = made
    assert graph.captures == 1 and graph.off is None  # recorded once, replayed 8 times
    (h0, w0), (h1, w1) = results
    for a, b in zip_equal(w0, w1):
        np.testing.assert_allclose(b, a, rtol=tol, atol=tol)
    for k in h0:
        np.testing.assert_allclose(h1[k], h0[k], rtol=tol)


def poison_at(batch):
    """A callback that writes NaN into the output layer's bias as batch ``batch`` begins."""
    def poison(b, logs):
        if b == batch:
            poison.model.layers[-1].bias.fill(np.nan)
    hook = callbacks.LambdaCallback(on_train_batch_begin=poison)
    poison.model = None
    return hook, poison


def test_a_replayed_fit_stops_on_a_non_finite_step_as_the_eager_one(monkeypatch):
    _cupy()
    backend.set_backend("cupy")
    x, y = data(n=320)
    outcomes = []
    for graphs in ("0", "1"):
        monkeypatch.setenv("TINYNET_CUDA_GRAPHS", graphs)
        model = mlp()
        hook, poison = poison_at(7)  # a replayed step (the first four run eagerly)
        poison.model = model
        with pytest.raises(training.NonFiniteLossError) as e:
            model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[hook])
        outcomes.append((str(e.value), model.get_weights(), model.optimizer.iterations))
    (message, weights, iterations), (message2, weights2, iterations2) = outcomes
    assert "the loss is NaN or infinite at epoch 1, batch 8 of 20" in message
    assert message2 == message and iterations2 == iterations == 7
    for a, b in zip_equal(weights, weights2):
        np.testing.assert_array_equal(a, b)
