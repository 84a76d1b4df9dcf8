"""Learning-rate schedules (``tinynet.optimizers.schedules``) and the callbacks that set the
learning rate per epoch (``LearningRateScheduler``) or run one's own functions (``LambdaCallback``).

The schedules' values are checked against their definitions at points worked out by hand, and
(with TensorFlow installed) against Keras's own schedules over 120 steps; an optimizer given a
schedule must take exactly the steps of one whose rate is set by hand to ``schedule(t)`` before
step ``t``, through ``fit``, a NaN rollback and a save and reload.
"""
import math
import warnings

import numpy as np
import pytest

import tinynet
from tinynet import backend, layers, optimizers
from tinynet.callbacks import LambdaCallback, LearningRateScheduler, ReduceLROnPlateau
from tinynet.optimizers import schedules

from conftest import zip_equal

pytestmark = pytest.mark.usefixtures("float64")  # conftest.py: float64, then restored


def f32(x):
    return float(np.float32(x))


# ---- the schedules' values, from their definitions -------------------------------------------
@pytest.mark.parametrize("schedule, step, expected", [
    # η0 r^(t/T)
    (schedules.ExponentialDecay(0.1, 10, 0.5), 0, 0.1),
    (schedules.ExponentialDecay(0.1, 10, 0.5), 20, 0.025),
    (schedules.ExponentialDecay(0.1, 10, 0.5), 5, 0.1 * 0.5 ** 0.5),
    (schedules.ExponentialDecay(0.1, 10, 0.5, staircase=True), 19, 0.05),
    # η0 / (1 + r t/T)
    (schedules.InverseTimeDecay(1.0, 2, 1.0), 4, 1 / 3),
    (schedules.InverseTimeDecay(1.0, 2, 1.0, staircase=True), 5, 1 / 3),
    (schedules.InverseTimeDecay(1.0, 2, 1.0, staircase=True), 1, 1.0),
    # (η0 - η_end)(1 - t'/T)^p + η_end
    (schedules.PolynomialDecay(1.0, 10, end_learning_rate=0.0), 5, 0.5),
    (schedules.PolynomialDecay(1.0, 10, end_learning_rate=0.2, power=2.0), 5, 0.8 * 0.25 + 0.2),
    (schedules.PolynomialDecay(1.0, 10, end_learning_rate=0.0), 20, 0.0),
    (schedules.PolynomialDecay(1.0, 10, end_learning_rate=0.0, cycle=True), 15, 0.25),
    (schedules.PolynomialDecay(1.0, 10, end_learning_rate=0.0, cycle=True), 0, 1.0),
    # values[i] on (boundaries[i-1], boundaries[i]]
    (schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1]), 10, 1.0),
    (schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1]), 11, 0.5),
    (schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1]), 20, 0.5),
    (schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1]), 21, 0.1),
    # η0 ((1 - α) ½(1 + cos(π t'/T)) + α), after a warm-up
    (schedules.CosineDecay(1.0, 10, alpha=0.1), 5, 0.9 * 0.5 + 0.1),
    (schedules.CosineDecay(1.0, 10, alpha=0.1), 10, 0.1),
    (schedules.CosineDecay(1.0, 10, alpha=0.1), 100, 0.1),
    (schedules.CosineDecay(0.0, 10, warmup_target=1.0, warmup_steps=4), 2, 0.5),
    (schedules.CosineDecay(0.0, 10, warmup_target=1.0, warmup_steps=4), 4, 1.0),
    (schedules.CosineDecay(0.0, 10, warmup_target=1.0, warmup_steps=4), 9, 0.5),
    # restarts: periods of 10, 20, 40 steps from peaks 1, 0.5, 0.25
    (schedules.CosineDecayRestarts(1.0, 10, t_mul=2.0, m_mul=0.5), 5, 0.5),
    (schedules.CosineDecayRestarts(1.0, 10, t_mul=2.0, m_mul=0.5), 10, 0.5),
    (schedules.CosineDecayRestarts(1.0, 10, t_mul=2.0, m_mul=0.5), 20, 0.25),
    (schedules.CosineDecayRestarts(1.0, 10, t_mul=2.0, m_mul=0.5), 30, 0.25),
    (schedules.CosineDecayRestarts(1.0, 10, t_mul=1.0, m_mul=0.5, alpha=0.2), 15,
     0.8 * 0.25 + 0.2),
])
def test_schedule_values_follow_their_definitions(schedule, step, expected):
    value = schedule(step)
    assert value.dtype == np.float32  # computed in float32, as Keras
    assert float(value) == pytest.approx(expected, rel=4e-7, abs=1e-7)


keras = None
try:  # the same numbers as Keras's own schedules, where TensorFlow is installed
    import os
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras  # noqa: F811
except ImportError:
    pass

KERAS_CASES = [
    ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=7, decay_rate=0.93)),
    ("ExponentialDecay", dict(initial_learning_rate=1e-3, decay_steps=30, decay_rate=0.5,
                              staircase=True)),
    ("InverseTimeDecay", dict(initial_learning_rate=0.01, decay_steps=3, decay_rate=0.7)),
    ("InverseTimeDecay", dict(initial_learning_rate=0.01, decay_steps=3, decay_rate=0.7,
                              staircase=True)),
    ("PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=13, end_learning_rate=0.003,
                             power=0.5)),
    ("PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=13, power=2.0, cycle=True)),
    ("PiecewiseConstantDecay", dict(boundaries=[5, 20, 33], values=[0.1, 0.05, 0.01, 0.001])),
    ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=37, alpha=0.1)),
    ("CosineDecay", dict(initial_learning_rate=0.0, decay_steps=37, alpha=0.05, warmup_target=0.2,
                         warmup_steps=11)),
    ("CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=9)),
    ("CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=9, t_mul=1.0,
                                 m_mul=0.8, alpha=0.01)),
    ("CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=7, t_mul=1.5,
                                 m_mul=0.9)),
]


@pytest.mark.skipif(keras is None, reason="needs Keras (pip install -e '.[keras]')")
@pytest.mark.parametrize("name, kwargs", KERAS_CASES)
def test_schedules_give_keras_numbers_and_configs(name, kwargs):
    ours, theirs = getattr(schedules, name)(**kwargs), getattr(keras.optimizers.schedules, name)(**kwargs)
    assert ours.get_config() == theirs.get_config()
    steps = range(120)
    a = np.array([ours(t) for t in steps], np.float32)
    b = np.array([float(theirs(t)) for t in steps], np.float32)
    # the same float32 operations in the same order; pow, cos and log come from other libraries
    # (measured: up to 9 ulps apart, 6e-7 relative, on CosineDecayRestarts's logarithm)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=0)
    if name in ("InverseTimeDecay", "PiecewiseConstantDecay", "PolynomialDecay") or \
            kwargs.get("staircase"):
        np.testing.assert_array_equal(a, b)  # no transcendental function at integer powers


# ---- an optimizer with a schedule takes the steps of one set by hand -------------------------
def mlp(optimizer, seed=0):
    backend.set_seed(seed)
    model = tinynet.Sequential([layers.Input((5,)), layers.Dense(7, activation="relu"),
                                layers.Dense(3, activation="softmax")])
    model.compile(optimizer, "categorical_crossentropy", metrics=["accuracy"])
    return model


def data(n=64, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 5))
    return x, tinynet.utils.to_categorical(rng.integers(0, 3, n), 3)


SCHEDULED = {
    "rmsprop-exponential": lambda s: optimizers.RMSprop(learning_rate=s, momentum=0.5),
    "adam-weight-decay": lambda s: optimizers.Adam(learning_rate=s, weight_decay=0.1),
    "sgd-clipnorm": lambda s: optimizers.SGD(learning_rate=s, momentum=0.9, clipnorm=0.5),
}


@pytest.mark.parametrize("make", SCHEDULED.values(), ids=SCHEDULED)
def test_fit_with_a_schedule_steps_as_the_rate_set_by_hand_before_each_step(make):
    schedule = schedules.ExponentialDecay(0.05, decay_steps=3, decay_rate=0.6)
    x, y = data()
    scheduled = mlp(make(schedule))
    scheduled.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)   # 12 steps
    by_hand = mlp(make(0.05))
    for t in range(12):
        by_hand.optimizer.learning_rate = float(schedule(t))   # step t runs with schedule(t)
        i = 16 * (t % 4)
        by_hand.train_on_batch(x[i:i + 16], y[i:i + 16])
    assert scheduled.optimizer.iterations == 12
    for a, b in zip_equal(scheduled.get_weights(), by_hand.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert scheduled.optimizer.learning_rate == f32(schedule(12))   # the next step's rate


def test_the_learning_rate_of_a_schedule_reads_the_next_step_and_cannot_be_set():
    schedule = schedules.PiecewiseConstantDecay([1], [0.1, 0.01])
    opt = optimizers.SGD(learning_rate=schedule)
    assert opt.learning_rate == f32(0.1) and opt.learning_rate.numpy() == f32(0.1)
    theta = np.ones(3)
    for expected in (0.1, 0.1, 0.01):   # steps 0 and 1 at 0.1 (t <= 1), then 0.01
        before = theta.copy()
        opt.apply_gradients([(np.ones(3), theta)])
        np.testing.assert_allclose(before - theta, f32(expected), rtol=1e-12)
    for set_it in (lambda: setattr(opt, "learning_rate", 0.5),
                   lambda: opt.learning_rate.assign(0.5), lambda: setattr(opt, "lr", 0.5)):
        with pytest.raises(TypeError, match="was given a learning-rate schedule .*Piecewise"
                                            ".*cannot also be set to 0.5"):
            set_it()
    opt.learning_rate = schedules.ExponentialDecay(1.0, 1, 0.5)  # another schedule: as Keras
    assert opt.learning_rate == 0.125   # at iterations = 3


def test_schedule_configs_round_trip_through_the_optimizer():
    schedule = schedules.CosineDecay(0.01, 100, alpha=0.1, warmup_target=0.1, warmup_steps=10)
    opt = optimizers.RMSprop(learning_rate=schedule, rho=0.8)
    config = opt.get_config()
    assert config["learning_rate"] == {"module": "keras.optimizers.schedules",
                                       "class_name": "CosineDecay",
                                       "config": schedule.get_config(), "registered_name": None}
    again = optimizers.get(config)
    assert again.get_config() == config and again.rho == 0.8
    assert isinstance(again._schedule, schedules.CosineDecay)
    assert schedules.deserialize(schedules.serialize(schedule)).get_config() == \
        schedule.get_config()


class Halving(schedules.LearningRateSchedule):
    """A schedule of one's own, as Keras's documentation writes one."""

    def __init__(self, initial_learning_rate):
        self.initial_learning_rate = initial_learning_rate

    def __call__(self, step):
        return self.initial_learning_rate / (step + 1)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate}


def test_a_schedule_of_ones_own_and_its_errors():
    opt = optimizers.SGD(learning_rate=Halving(1.0))
    theta = np.zeros(1)
    for _ in range(3):
        opt.apply_gradients([(np.ones(1), theta)])
    np.testing.assert_allclose(theta, -(1 + 1 / 2 + 1 / 3), rtol=1e-15)
    config = opt.get_config()
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'Halving'.*"
                                         "custom_objects=\\{'Halving': Halving\\}"):
        optimizers.get(config)
    assert schedules.deserialize(config["learning_rate"], {"Halving": Halving})(1) == 0.5

    class Broken(schedules.LearningRateSchedule):
        def __call__(self, step):
            return -0.1 if step >= 2 else 0.1
    opt = optimizers.SGD(learning_rate=Broken())
    for _ in range(2):
        opt.apply_gradients([(np.ones(1), theta)])
    with pytest.raises(ValueError, match="the learning-rate schedule .*Broken.* gave -0.1 at step "
                                         "2; it must give a finite number >= 0"):
        opt.apply_gradients([(np.ones(1), theta)])
    with pytest.raises(NotImplementedError, match="must override __call__"):
        optimizers.SGD(learning_rate=schedules.LearningRateSchedule())


@pytest.mark.parametrize("make, match", [
    (lambda: schedules.ExponentialDecay(0.1, 0, 0.5), "decay_steps must be a number > 0"),
    (lambda: schedules.CosineDecayRestarts(0.1, -3), "first_decay_steps must be a number > 0"),
    (lambda: schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5]),
     "one more value than boundaries.*2 boundaries and 2 values"),
    (lambda: schedules.PiecewiseConstantDecay([20, 10], [1.0, 0.5, 0.1]),
     "boundaries must increase"),
])
def test_bad_schedule_arguments_are_named(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_a_step_undone_for_nan_keeps_the_schedule_in_step():
    """A step whose loss or weights are not finite is undone (tinynet.training), its step count
    too: the rate reads again that of the step undone."""
    class Explodes(schedules.LearningRateSchedule):
        def __call__(self, step):
            return 1e300 if step == 2 else 0.05 / (step + 1)

    x, y = data(32)
    model = mlp(optimizers.SGD(learning_rate=Explodes()))
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    model.train_on_batch(x[:16], y[:16])   # step 2, at 1e300: weights of the order of 1e299
    before = model.get_weights()
    with pytest.raises(tinynet.NonFiniteLossError), np.errstate(all="ignore"):
        model.train_on_batch(x[:16], y[:16])   # step 3: the loss overflows, and it is undone
    assert model.optimizer.iterations == 3 and model.optimizer.learning_rate == 0.0125
    for a, b in zip_equal(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_save_and_reload_continues_the_schedule(tmp_path):
    schedule = schedules.InverseTimeDecay(0.05, decay_steps=2, decay_rate=1.0)
    x, y = data()
    straight = mlp(optimizers.RMSprop(learning_rate=schedule))
    straight.fit(x, y, batch_size=16, epochs=4, shuffle=False, verbose=0)
    first = mlp(optimizers.RMSprop(learning_rate=schedule))
    first.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    first.save(tmp_path / "half.npz")
    resumed = tinynet.models.load_model(tmp_path / "half.npz")
    assert resumed.optimizer.get_config() == first.optimizer.get_config()
    assert resumed.optimizer.iterations == 8
    resumed.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    for a, b in zip_equal(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_schedules_import_as_in_keras():
    from tinynet.optimizers.schedules import ExponentialDecay
    import tinynet as keras_like
    assert keras_like.optimizers.schedules.ExponentialDecay is ExponentialDecay
    assert not hasattr(keras_like.optimizers.schedules, "WarmUpCosine")


# ---- callbacks that set the learning rate ----------------------------------------------------
def test_learning_rate_scheduler_sets_the_rate_of_each_epoch(capsys):
    x, y = data(32)
    seen = []

    def schedule(epoch, lr):
        seen.append((epoch, lr))
        return lr * 0.5 if epoch else 0.04

    model = mlp(optimizers.SGD(learning_rate=0.01))
    history = model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0,
                        callbacks=[LearningRateScheduler(schedule, verbose=1)])
    assert seen == [(0, 0.01), (1, 0.04), (2, 0.02)]
    assert history.history["learning_rate"] == [0.04, 0.02, 0.01]
    assert "Epoch 2: LearningRateScheduler setting learning rate to 0.02." in capsys.readouterr().out
    by_hand = mlp(optimizers.SGD(learning_rate=0.01))
    for epoch, rate in enumerate([0.04, 0.02, 0.01]):
        by_hand.optimizer.learning_rate = rate
        by_hand.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    for a, b in zip_equal(model.get_weights(), by_hand.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_learning_rate_scheduler_of_the_epoch_alone_and_its_errors():
    x, y = data(32)
    model = mlp(optimizers.SGD(learning_rate=0.01))
    model.fit(x, y, epochs=2, verbose=0, callbacks=[LearningRateScheduler(lambda e: 0.1 / (e + 1))])
    assert model.optimizer.learning_rate == 0.05
    with pytest.raises(ValueError, match="must return a float.*at epoch 0 it returned 1"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda e, lr: 1)])
    with pytest.raises(TypeError, match="schedule must be a function"):
        LearningRateScheduler(0.1)
    scheduled = mlp(optimizers.SGD(learning_rate=schedules.ExponentialDecay(0.1, 10, 0.5)))
    with pytest.raises(TypeError, match="was given a learning-rate schedule"):
        scheduled.fit(x, y, epochs=1, verbose=0,
                      callbacks=[LearningRateScheduler(lambda e, lr: lr / 2)])


def test_reduce_lr_on_plateau_cannot_lower_a_schedules_rate():
    x, y = data(32)
    model = mlp(optimizers.SGD(learning_rate=schedules.ExponentialDecay(0.1, 10, 0.5)))
    with pytest.raises(TypeError, match="was given a learning-rate schedule"):
        model.fit(x, y, epochs=3, verbose=0,
                  callbacks=[ReduceLROnPlateau(monitor="loss", patience=0, min_delta=10.0)])


def test_lambda_callback_calls_its_functions_with_keras_arguments():
    x, y = data(32)
    calls = []
    callback = LambdaCallback(
        on_train_begin=lambda logs: calls.append(("train_begin", logs)),
        on_epoch_begin=lambda epoch, logs: calls.append(("epoch_begin", epoch, logs)),
        on_train_batch_end=lambda batch, logs: calls.append(("batch_end", batch,
                                                             sorted(logs))),
        on_epoch_end=lambda epoch, logs: calls.append(("epoch_end", epoch, sorted(logs))),
        on_test_end=lambda logs: calls.append(("test_end", sorted(logs))))
    mlp(optimizers.SGD()).fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False,
                              validation_data=(x, y), callbacks=[callback])
    assert calls == [("train_begin", {}), ("epoch_begin", 0, {}),
                     ("batch_end", 0, ["accuracy", "loss"]), ("batch_end", 1, ["accuracy", "loss"]),
                     ("test_end", ["accuracy", "loss"]),
                     ("epoch_end", 0, ["accuracy", "loss", "val_accuracy", "val_loss"])]
    with pytest.raises(TypeError, match="on_epoch_ends= is not a callback hook; the hooks are "
                                        "on_train_begin"):
        LambdaCallback(on_epoch_ends=print)


def test_hooks_written_without_a_default_for_logs_are_called_as_keras_calls_them():
    """Keras passes ``logs`` to every hook (an empty dict where it has nothing to report): a
    callback written ``def on_epoch_begin(self, epoch, logs)``, or one that writes into those
    logs (``logs["t0"] = time.time()``), works there, and must here."""
    seen = []

    class Strict(tinynet.callbacks.Callback):
        def on_train_begin(self, logs):
            seen.append(logs)

        def on_epoch_begin(self, epoch, logs):
            seen.append(dict(logs))
            logs["t0"] = 0.0   # the guides' timing callbacks write into them

        def on_train_batch_begin(self, batch, logs):
            seen.append(logs)

        def on_test_begin(self, logs):
            seen.append(logs)

        def on_predict_begin(self, logs):
            seen.append(logs)

        def on_predict_end(self, logs):
            seen.append(logs)

    x, y = data(16)
    model = mlp(optimizers.SGD())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, validation_data=(x, y),
                  callbacks=[Strict()])
        model.predict(x, callbacks=[Strict()])
    assert seen == [{}] * 6   # Keras 3.15 passes {} to each of these six (checked)
    assert math.isfinite(model.evaluate(x, y, verbose=0)[0])


# ---- a review's findings ---------------------------------------------------------------------
def test_a_schedule_of_ones_own_that_would_load_changed_is_refused_at_save(tmp_path):
    """A get_config() that leaves out an argument: saved, then loaded with custom_objects, the
    rate was 0.1 where it had been 0.001, without a word (a review); tinynet refused the same
    mistake in a loss or an optimizer of one's own, not in a schedule given to its own."""
    class StepDecay(schedules.LearningRateSchedule):
        def __init__(self, initial, every=10, factor=0.5):
            self.initial, self.every, self.factor = initial, every, factor

        def __call__(self, step):
            return self.initial * self.factor ** (step // self.every)

        def get_config(self):
            return {"initial": self.initial}  # every and factor forgotten

    x, y = data()
    model = mlp(optimizers.SGD(StepDecay(0.1, every=2, factor=0.1)))
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"StepDecay would load changed: at step 4 it gives "
                                         r"0\.00100.*\{'initial': 0\.1\}\) 0\.1;"):
        model.save(tmp_path / "s.keras")
    with pytest.raises(ValueError, match="StepDecay would load changed"):
        model.fit(x, y, epochs=1, verbose=0,
                  callbacks=[tinynet.callbacks.ModelCheckpoint(tmp_path / "c.keras")])
    assert not list(tmp_path.iterdir())
    model = mlp(optimizers.SGD(Halving(0.01)))  # a complete get_config: saved
    model.save(tmp_path / "h.keras")

    class Table(schedules.LearningRateSchedule):  # defined over the planned steps only
        def __init__(self, rates):
            self.rates = list(rates)

        def __call__(self, step):
            return self.rates[int(step)]

        def get_config(self):
            return {"rates": self.rates}

    model = mlp(optimizers.SGD(Table([0.01] * 12)))
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    model.save(tmp_path / "t.keras")  # (a review: refused, its rates at step 10,000 failing)

    class ScaledTable(Table):  # get_config leaves out scale; saved when its table is used up
        def __init__(self, rates, scale=1.0):
            super().__init__(rates)
            self.scale = scale

        def __call__(self, step):
            return self.scale * super().__call__(step)

    steps = -(-len(x) // 16)
    model = mlp(optimizers.SGD(ScaledTable([0.01] * steps, scale=10.0)))
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="ScaledTable would load changed: at step 0"):
        model.save(tmp_path / "st.keras")  # every later step raises: earlier ones are compared

    class ExponentialDecay(schedules.ExponentialDecay):  # tinynet's name, another schedule
        def __call__(self, step):
            return super().__call__(step) * 0.03

    model = mlp(optimizers.SGD(ExponentialDecay(0.01, 10, 0.9)))
    with pytest.raises(ValueError, match="has the name of tinynet's ExponentialDecay"):
        model.save(tmp_path / "e.keras")  # it loaded as tinynet's: rates 30 times larger


def test_a_model_with_a_schedule_of_ones_own_loads_given_custom_objects(tmp_path):
    x, y = data()
    model = mlp(optimizers.Adam(learning_rate=Halving(0.01)))
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    model.save(tmp_path / "own.npz")
    with pytest.raises(tinynet.io.ModelFileError, match="compiled with a learning-rate schedule "
                                                       "of its own .*custom_objects="):
        tinynet.models.load_model(tmp_path / "own.npz")
    again = tinynet.models.load_model(tmp_path / "own.npz", custom_objects={"Halving": Halving})
    assert isinstance(again.optimizer._schedule, Halving) and again.optimizer.iterations == 4
    assert again.optimizer.learning_rate == 0.01 / 5
    assert schedules.serialize(Halving(0.1)) == {"module": None, "class_name": "Halving",
                                                 "config": {"initial_learning_rate": 0.1},
                                                 "registered_name": "Halving"}   # as Keras


def test_schedules_made_of_numpy_numbers_save_and_load(tmp_path):
    schedule = schedules.PiecewiseConstantDecay(np.array([2, 5]), np.array([0.1, 0.05, 0.01]))
    x, y = data()
    model = mlp(optimizers.SGD(learning_rate=schedules.ExponentialDecay(
        np.float32(0.1), np.int64(3), np.float64(0.5))))
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    model.save(tmp_path / "np.npz")
    again = tinynet.models.load_model(tmp_path / "np.npz")
    assert again.optimizer.learning_rate == model.optimizer.learning_rate
    model.optimizer.learning_rate = schedule
    model.save(tmp_path / "np2.npz")
    assert tinynet.models.load_model(tmp_path / "np2.npz").optimizer._schedule(3) == f32(0.05)


def test_a_refused_schedule_changes_nothing():
    class Negative(schedules.LearningRateSchedule):
        def __call__(self, step):
            return -1.0

    opt = optimizers.SGD(learning_rate=0.1)
    with pytest.raises(ValueError, match="gave -1.0 at step 0"):
        opt.learning_rate = Negative()
    assert opt.learning_rate == 0.1
    opt.learning_rate = 0.2   # still a number that can be set
    assert opt.learning_rate == 0.2


def test_the_epoch_line_shows_what_callbacks_add_to_the_logs(capsys):
    x, y = data(32)
    model = mlp(optimizers.SGD(learning_rate=0.1))
    model.fit(x, y, batch_size=16, epochs=2, verbose=2,
              callbacks=[LearningRateScheduler(lambda epoch, lr: lr / 2)])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("2/2")]
    assert len(lines) == 2 and lines[0].endswith("learning_rate: 0.0500")   # as Keras prints it
    assert lines[1].endswith("learning_rate: 0.0250")


def test_keras_details_of_the_scheduler_and_lambda_callbacks():
    x, y = data(16)
    model = mlp(optimizers.SGD())
    with pytest.raises(ValueError, match="must return a float"):   # Keras refuses float16 too
        model.fit(x, y, verbose=0, callbacks=[LearningRateScheduler(lambda e: np.float16(0.1))])
    called = []
    both = LambdaCallback(on_batch_begin=lambda batch, logs: called.append("old"),
                          on_train_batch_begin=lambda batch, logs: called.append("new"))
    model.fit(x, y, batch_size=8, verbose=0, callbacks=[both])
    assert called == ["new", "new"]   # Keras calls on_train_batch_begin's function only


def test_the_refactored_schedules_and_readings_keep_keras_behaviour():
    """A review of a refactor: Keras's default names in the signatures (name=None stays None,
    a subclass keeps its parent's name) and learning_rate.assign of what Keras's variable takes."""
    import inspect
    for cls in (schedules.ExponentialDecay, schedules.InverseTimeDecay):
        assert inspect.signature(cls).parameters["name"].default == cls.__name__
        assert cls(0.1, 10, 0.5, name=None).get_config()["name"] is None

    class Sub(schedules.ExponentialDecay):
        pass
    assert Sub(0.1, 10, 0.5).get_config()["name"] == "ExponentialDecay"
    opt = optimizers.SGD(learning_rate=0.1)
    for value, expected in ((np.array(0.5), 0.5), (np.float32(0.25), 0.25), (True, 1.0)):
        opt.learning_rate.assign(value)
        assert opt.learning_rate == expected and type(opt._learning_rate) is float
    opt.learning_rate = np.array(0.125, np.float32)   # a 0-d array, as Keras takes it
    assert opt.learning_rate == 0.125
    with pytest.raises(TypeError, match="assign takes a number; to give the optimizer a schedule"):
        opt.learning_rate.assign(schedules.ExponentialDecay(0.1, 10, 0.5))
