"""Callbacks given to ``fit(callbacks=[...])``: the hooks' order, EarlyStopping, ModelCheckpoint,
ReduceLROnPlateau and CSVLogger, with Keras's semantics.

To test a callback's decisions exactly, a ``Script`` callback placed before it overwrites the
monitored value in ``logs`` with a chosen sequence, so "improves" and "does not improve" are known
epoch by epoch; ``Recorder`` keeps the weights at the end of every epoch to compare against.
Models are tiny float64 MLPs, trained with ``shuffle=False`` so runs are reproducible.
"""
import copy
import csv
import math
import os
import warnings

import numpy as np
import pytest

import tinynet
from tinynet import backend, layers, optimizers
from tinynet.callbacks import CSVLogger, EarlyStopping, ModelCheckpoint, ReduceLROnPlateau


pytestmark = pytest.mark.usefixtures("float64")  # conftest.py: float64, then restored


def make_model(optimizer=None, seed=0):
    backend.set_seed(seed)
    model = tinynet.Sequential([layers.Input((4,)), layers.Dense(6, activation="tanh"),
                                layers.Dense(3, activation="softmax")])
    model.compile(optimizer or optimizers.RMSprop(learning_rate=0.01), metrics=["accuracy"])
    return model


def data(n=24, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4))
    y = tinynet.utils.to_categorical((x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int), 3)
    return x, y


class Script(tinynet.callbacks.Callback):
    """Overwrite ``logs[key]`` with ``values[epoch]`` (so the next callbacks see a chosen sequence)."""

    def __init__(self, values, key="val_loss"):
        self.values, self.key = values, key

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]


class Recorder(tinynet.callbacks.Callback):
    """Weights and learning rate at the end of every epoch; every hook call in order."""

    def __init__(self):
        self.weights, self.lr, self.calls = [], [], []

    def on_train_begin(self, logs=None):
        self.calls.append(("train_begin",))

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(("epoch_begin", epoch))

    def on_batch_end(self, batch, logs=None):
        self.calls.append(("batch_end", batch, dict(logs)))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", epoch, dict(logs)))
        self.weights.append(self.model.get_weights())
        self.lr.append(self.model.optimizer.learning_rate)

    def on_train_end(self, logs=None):
        self.calls.append(("train_end",))


def fit(model, cbs, epochs, **kw):
    x, y = data()
    kw.setdefault("batch_size", 8)
    return model.fit(x, y, epochs=epochs, verbose=0, shuffle=False, callbacks=cbs, **kw)


def same_weights(a, b):
    return len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b))


# ---- the Callback base class and the hooks fit calls ----------------------------------------------
def test_hooks_are_called_in_keras_order_with_running_means():
    model, rec = make_model(), Recorder()
    x, y = data()
    history = model.fit(x, y, batch_size=10, epochs=2, verbose=0, shuffle=False, callbacks=[rec],
                        validation_data=(x[:5], y[:5]))
    names = [c[0] if c[0] in ("train_begin", "train_end") else c[:2] for c in rec.calls]
    steps = [("batch_end", 0), ("batch_end", 1), ("batch_end", 2)]  # 24 examples, batches of 10
    assert names == ["train_begin", ("epoch_begin", 0), *steps, ("epoch_end", 0),
                     ("epoch_begin", 1), *steps, ("epoch_end", 1), "train_end"]
    # the epoch's logs are the example-weighted means of the batches; val_* only at epoch end
    epoch_end = [c for c in rec.calls if c[0] == "epoch_end"]
    assert set(epoch_end[0][2]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    batch_logs = [c[2] for c in rec.calls if c[0] == "batch_end"]
    assert all("val_loss" not in b for b in batch_logs)
    assert history.history["loss"] == [e[2]["loss"] for e in epoch_end]
    assert history.epoch == [0, 1]
    assert history.history["val_loss"][1] == pytest.approx(model.evaluate(x[:5], y[:5])[0], rel=1e-12)


def test_batch_logs_are_running_means_weighted_by_batch_size():
    model, rec = make_model(optimizers.SGD(learning_rate=0.0)), Recorder()  # weights never move
    x, y = data()
    model.fit(x, y, batch_size=10, epochs=1, verbose=0, shuffle=False, callbacks=[rec])
    per_example = [model.evaluate(x[i:i + 1], y[i:i + 1])[0] for i in range(24)]
    batch_logs = [c[2] for c in rec.calls if c[0] == "batch_end"]
    for k, seen in enumerate([10, 20, 24]):
        assert batch_logs[k]["loss"] == pytest.approx(np.mean(per_example[:seen]), rel=1e-12)


def test_keras_style_on_train_batch_end_is_called_too():
    class KerasStyle(tinynet.callbacks.Callback):
        def __init__(self):
            self.batches = []

        def on_train_batch_end(self, batch, logs=None):
            self.batches.append((batch, logs["loss"]))

    cb = KerasStyle()
    fit(make_model(), [cb], epochs=2)
    assert [b for b, _ in cb.batches] == [0, 1, 2, 0, 1, 2]
    assert all(np.isfinite(loss) for _, loss in cb.batches)


def test_a_class_with_both_batch_hook_names_gets_on_train_batch_called_as_in_keras_3():
    """Keras 3's fit calls on_train_batch_begin/end, whose default calls on_batch_begin/end: a
    class overriding both names (or a subclass overriding the new name of a base class that
    overrides the old one) gets the new one only, unless it calls the other itself."""
    class Old(tinynet.callbacks.Callback):
        def __init__(self):
            self.calls = []

        def on_batch_begin(self, batch, logs=None):
            self.calls.append(("on_batch_begin", batch))

        def on_batch_end(self, batch, logs=None):
            self.calls.append(("on_batch_end", batch))

    class Both(Old):
        def on_train_batch_begin(self, batch, logs=None):
            self.calls.append(("on_train_batch_begin", batch))

        def on_train_batch_end(self, batch, logs=None):
            self.calls.append(("on_train_batch_end", batch))

    class Chained(Old):
        def on_train_batch_end(self, batch, logs=None):
            super().on_train_batch_end(batch, logs=logs)  # the default: on_batch_end
            self.calls.append(("on_train_batch_end", batch))

    old, both, chained = Old(), Both(), Chained()
    fit(make_model(), [old, both, chained], epochs=1)  # 3 batches
    assert old.calls == [("on_batch_begin", 0), ("on_batch_end", 0), ("on_batch_begin", 1),
                         ("on_batch_end", 1), ("on_batch_begin", 2), ("on_batch_end", 2)]
    assert both.calls == [(f"on_train_batch_{when}", b) for b in range(3)
                          for when in ("begin", "end")]
    assert chained.calls == [(name, b) for b in range(3) for name in
                             ("on_batch_begin", "on_batch_end", "on_train_batch_end")]


def test_every_callback_gets_keras_params_and_one_callback_need_not_be_in_a_list():
    """Keras gives each callback ``self.params`` (a common read: ``self.params['epochs']``), and
    takes ``callbacks=cb`` as well as a list; a non-integer epochs is refused with a message."""
    class Reads(tinynet.callbacks.Callback):
        def __init__(self):
            self.seen = []

        def on_train_begin(self, logs=None):
            self.seen.append(("fit", dict(self.params)))

        def on_test_begin(self, logs=None):
            self.seen.append(("evaluate", dict(self.params)))

        def on_predict_begin(self, logs=None):
            self.seen.append(("predict", dict(self.params)))

    model, cb = make_model(), Reads()
    x, y = data()  # 24 examples
    model.fit(x, y, batch_size=10, epochs=3, verbose=0, callbacks=cb)
    model.evaluate(x, y, batch_size=5, verbose=0, callbacks=cb)
    model.predict(x[:7], batch_size=2, callbacks=cb)
    assert cb.seen == [("fit", {"verbose": 0, "epochs": 3, "steps": 3}),
                       ("evaluate", {"verbose": 0, "epochs": 1, "steps": 5}),
                       ("predict", {"verbose": 0, "epochs": 1, "steps": 4})]
    for bad in (2.0, None, -1, True):
        with pytest.raises(ValueError, match=r"fit: epochs must be a whole number >= 0, got "):
            model.fit(x, y, epochs=bad, verbose=0)
    with pytest.raises(ValueError, match=r"fit: initial_epoch must be a whole number >= 0"):
        model.fit(x, y, epochs=2, initial_epoch=0.5, verbose=0)


def test_stop_training_from_on_batch_end_stops_after_that_batch():
    class StopAt(tinynet.callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True

    model = make_model()
    history = fit(model, [StopAt()], epochs=5)  # 3 batches per epoch
    assert model.optimizer.iterations == 2
    assert history.epoch == [0]


def test_an_epoch_stopped_early_still_logs_the_mean_loss_of_its_batches():
    class StopInEpoch1(tinynet.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:  # the same flag Ctrl-C sets; fit finishes the batch and stops
                self.model.stop_training = True

    model = make_model()
    reference = make_model()
    x, y = data()
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0, shuffle=False,
                        callbacks=[StopInEpoch1()])
    assert model.optimizer.iterations == 4  # 3 batches of epoch 0, 1 of epoch 1
    losses = [reference.train_on_batch(x[8 * (s % 3):8 * (s % 3) + 8], y[8 * (s % 3):8 * (s % 3) + 8])[0]
              for s in range(4)]
    assert history.epoch == [0, 1]
    assert len(history.history["loss"]) == 2
    assert history.history["loss"][1] == pytest.approx(losses[3], rel=1e-12)


def test_callbacks_that_are_not_callbacks_are_refused():
    with pytest.raises(TypeError, match="callbacks must be tinynet.callbacks.Callback"):
        fit(make_model(), [lambda epoch, logs: None], epochs=1)


# ---- EarlyStopping --------------------------------------------------------------------------------
@pytest.mark.parametrize("values, patience, min_delta, epochs_run, best_epoch", [
    ([1.0, 0.9, 0.95, 0.91, 0.5, 0.4], 2, 0.0, 4, 1),       # no new best in epochs 2 and 3: stop
    ([1.0, 0.9, 0.95, 0.91, 0.5, 0.4], 0, 0.0, 3, 1),       # patience 0: the first bad epoch stops
    ([1.0, 0.9, 0.8, 0.7, 0.6, 0.5], 1, 0.0, 6, 5),         # always improving: never stops
    ([1.0, 0.95, 0.9, 0.85, 0.8, 0.75], 1, 0.1, 2, 0),      # steps of 0.05 < min_delta do not count
    ([1.0, 0.95, 0.8, 0.79, 0.78, 0.5], 2, 0.1, 5, 2),   # 0.8 beats 1.0 by more than 0.1
])
def test_early_stopping_stops_after_patience_epochs_without_improvement(
        values, patience, min_delta, epochs_run, best_epoch):
    model = make_model()
    es = EarlyStopping(monitor="val_loss", patience=patience, min_delta=min_delta)
    history = fit(model, [Script(values), es], epochs=6)
    assert len(history.epoch) == epochs_run
    assert model.epoch == epochs_run
    assert es.best == values[best_epoch]
    assert es.stopped_epoch == (epochs_run - 1 if epochs_run < 6 else 0)


def test_early_stopping_nan_never_improves_and_start_from_epoch_waits():
    model = make_model()
    es = EarlyStopping(patience=1)
    history = fit(model, [Script([math.nan, 1.0, 1.5, 0.5]), es], epochs=4)
    assert len(history.epoch) == 3 and es.best == 1.0  # NaN at epoch 0 is not a best
    model = make_model()
    es = EarlyStopping(patience=0, start_from_epoch=2)
    history = fit(model, [Script([1.0, 2.0, 3.0, 4.0, 5.0]), es], epochs=5)
    assert len(history.epoch) == 4 and es.best == 3.0  # epochs 0 and 1 are not watched


def test_early_stopping_mode_auto_maximises_accuracy_and_mode_max_min_are_obeyed():
    rising = [0.1, 0.2, 0.3, 0.4]
    model = make_model()
    assert len(fit(model, [Script(rising, "val_accuracy"),
                           EarlyStopping("val_accuracy", patience=0)], epochs=4).epoch) == 4
    model = make_model()
    assert len(fit(model, [Script(rising, "val_accuracy"),
                           EarlyStopping("val_accuracy", patience=0, mode="min")], epochs=4).epoch) == 2
    model = make_model()
    assert len(fit(model, [Script(rising, "val_loss"),
                           EarlyStopping("val_loss", patience=0, mode="max")], epochs=4).epoch) == 4
    with pytest.raises(ValueError, match="mode must be one of auto, min, max"):
        EarlyStopping(mode="minimum")


def test_mode_auto_decides_as_keras_3_from_the_loss_and_the_models_metrics():
    """Keras 3: 'auto' minimises the loss, maximises a compiled metric (under the name it was
    given, here an accuracy called 'hits', which Keras 2's rule "'acc' in the name" minimised),
    and refuses any other name, here before the first epoch trains."""
    rising = [0.1, 0.2, 0.3, 0.4]
    model = make_model()
    model.compile(optimizers.RMSprop(learning_rate=0.01),
                  metrics=[tinynet.metrics.CategoricalAccuracy(name="hits")])
    for cb in (EarlyStopping("val_hits", patience=0),
               ReduceLROnPlateau("val_hits", patience=1, factor=0.5)):
        fit(model, [Script(rising, "val_hits"), cb], epochs=4)
        assert cb.best == 0.4  # maximised: every epoch improved
    assert model.optimizer.learning_rate == 0.01  # never reduced
    for cb in (EarlyStopping("val_auc"), ReduceLROnPlateau("learning_rate"),
               ModelCheckpoint("never.npz", monitor="val_auc", save_best_only=True)):
        before = model.get_weights()
        with pytest.raises(ValueError, match=r"cannot tell whether '(val_auc|learning_rate)' "
                                             r"should be maximised.*loss, hits.*mode='max'"):
            fit(model, [cb], epochs=1)
        assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    es = EarlyStopping("val_auc", patience=0, mode="max")  # the direction given: accepted
    assert len(fit(model, [Script(rising, "val_auc"), es], epochs=4).epoch) == 4


def test_early_stopping_baseline_must_be_beaten_to_reset_patience():
    values = [1.0, 0.9, 0.9, 0.9, 0.6]
    # without a baseline: best 0.9 at epoch 1, then two epochs without improvement
    assert len(fit(make_model(), [Script(values), EarlyStopping(patience=2)], epochs=5).epoch) == 4
    # with one: epochs 0 and 1 improve but stay above 0.5, so patience keeps counting from epoch 0
    assert len(fit(make_model(), [Script(values), EarlyStopping(patience=2, baseline=0.5)],
                   epochs=5).epoch) == 3


def test_early_stopping_restore_best_weights_puts_back_the_best_epoch():
    values = [1.0, 0.7, 0.8, 0.9, 0.95]
    model, rec = make_model(), Recorder()
    es = EarlyStopping(patience=3, restore_best_weights=True)
    fit(model, [Script(values), rec, es], epochs=5)
    assert len(rec.weights) == 5
    assert es.best_epoch == 1
    assert same_weights(model.get_weights(), rec.weights[1])
    assert not same_weights(model.get_weights(), rec.weights[-1])


def test_early_stopping_restores_best_weights_even_without_stopping():
    # Keras 3: restore_best_weights applies at the end of training whether or not it stopped early
    model, rec = make_model(), Recorder()
    fit(model, [Script([1.0, 0.5, 0.6]), rec, EarlyStopping(patience=5, restore_best_weights=True)],
        epochs=3)
    assert same_weights(model.get_weights(), rec.weights[1])


def test_early_stopping_state_is_reset_by_each_fit():
    model = make_model()
    es = EarlyStopping(patience=1)
    fit(model, [Script([1.0, 2.0, 3.0]), es], epochs=3)
    assert es.stopped_epoch == 1
    history = fit(model, [Script([5.0, 4.0, 3.0]), es], epochs=3)  # a best of 1.0 would stop at once
    assert len(history.epoch) == 3 and es.stopped_epoch == 0


def test_early_stopping_on_missing_monitor_warns_with_the_available_keys_and_does_not_stop():
    model = make_model()
    with pytest.warns(RuntimeWarning, match="'val_loss' is not in the logs.*accuracy, loss"):
        history = fit(model, [EarlyStopping(patience=0)], epochs=3)
    assert len(history.epoch) == 3


def test_model_checkpoint_without_its_value_writes_a_first_file_and_keeps_the_best_and_a_nested_model_is_refused_first(
        tmp_path):
    """save_best_only with a value the logs lack (no validation data): tinynet saved nothing, so
    the file a script then loads did not exist; now the callback's first file is written (Keras 3
    saves at every such epoch). With validation_freq=2, the epochs without val_loss leave the
    best file alone (Keras 3 saves over it), and a name with {val_loss} is filled when it can.
    A model that holds a model as a layer cannot be saved whole: refused before the first epoch
    trains (it failed after it, losing the History), with save_weights_only=True as the way out."""
    model = make_model()
    with pytest.warns(RuntimeWarning, match="'val_loss' is not in the logs.*saved all the same"):
        fit(model, [ModelCheckpoint(tmp_path / "first.npz", save_best_only=True)], epochs=2)
    assert tinynet.load_model(tmp_path / "first.npz").epoch == 1  # the first, then nothing
    x, y = data()
    y_val = np.roll(y, 1, axis=1)  # val_loss rises as the model fits the training data
    model = make_model(optimizers.RMSprop(learning_rate=0.05))
    best = ModelCheckpoint(tmp_path / "best.npz", save_best_only=True)
    named = ModelCheckpoint(tmp_path / "ck-{epoch:02d}-{val_loss:.3f}.npz", save_best_only=True)
    with pytest.warns(RuntimeWarning, match="nothing is saved this epoch"):
        history = model.fit(x, y, epochs=6, batch_size=8, verbose=0, shuffle=False,
                            validation_data=(x, y_val), validation_freq=2,
                            callbacks=[best, named])
    losses = history.history["val_loss"]  # epochs 2, 4, 6 (counted from 1)
    assert losses[0] < min(losses[1:])
    assert tinynet.load_model(tmp_path / "best.npz").epoch == 2  # not 5, an unvalidated epoch
    assert sorted(os.listdir(tmp_path)) == ["best.npz", f"ck-02-{losses[0]:.3f}.npz", "first.npz"]
    inner = tinynet.Sequential([layers.Input((4,)), layers.Dense(3)])
    nested = tinynet.Sequential([inner, layers.Softmax()])
    nested.compile(optimizers.SGD(0.1))
    before = nested.get_weights()
    (tmp_path / "log.csv").write_text("epoch,loss\n0,1.5\n")  # a previous run's log
    with pytest.raises(ValueError, match=r"ModelCheckpoint: .*cannot be saved.*"
                                         r"save_weights_only=True"):
        fit(nested, [CSVLogger(tmp_path / "log.csv"), ModelCheckpoint(tmp_path / "n.npz")],
            epochs=1)
    assert all(np.array_equal(a, b) for a, b in zip(before, nested.get_weights()))
    # refused before any callback started: the CSVLogger listed first has not emptied its file
    assert (tmp_path / "log.csv").read_text() == "epoch,loss\n0,1.5\n"
    fit(nested, [ModelCheckpoint(tmp_path / "n.weights.npz", save_weights_only=True)], epochs=1)
    assert (tmp_path / "n.weights.npz").exists()


def test_model_checkpoint_every_n_batches_counts_across_epochs_as_keras(tmp_path):
    """save_freq=3 with 4 batches an epoch (Keras 3.15 writes ck-1-3 and ck-2-2 here: the count
    runs across epochs, {batch} from 1) was refused; each file holds the weights of its step."""
    model = make_model()
    x, y = data(32)
    after = []
    record = tinynet.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: after.append(model.get_weights()))
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False,
              callbacks=[ModelCheckpoint(tmp_path / "ck-{epoch}-{batch}.npz", save_freq=3),
                         record])
    assert sorted(os.listdir(tmp_path)) == ["ck-1-3.npz", "ck-2-2.npz"]
    for name, step in (("ck-1-3.npz", 3), ("ck-2-2.npz", 6)):
        saved = tinynet.load_model(tmp_path / name).get_weights()
        assert all(np.array_equal(a, b) for a, b in zip(saved, after[step - 1]))
    for bad in (0, 2.5, "batch", True):
        with pytest.raises(ValueError, match="save_freq must be 'epoch' or a positive number"):
            ModelCheckpoint(tmp_path / "x.npz", save_freq=bad)
    # a batch's logs have no val_ values: "the best" by val_loss every N batches is refused
    with pytest.raises(ValueError, match=r"save_best_only with save_freq=3 compares 'val_loss'"):
        ModelCheckpoint(tmp_path / "x.npz", save_best_only=True, save_freq=3)

    class Mine(ModelCheckpoint):  # a subclass's batch hook is called, and its super() saves
        calls = 0

        def on_train_batch_end(self, batch, logs=None):
            Mine.calls += 1
            super().on_train_batch_end(batch, logs)

    folder = tmp_path / "more"
    copied = copy.copy(ModelCheckpoint(folder / "c-{batch}.npz", save_freq=4))
    model.fit(x, y, batch_size=8, epochs=1, verbose=0,
              callbacks=[Mine(folder / "m-{batch}.npz", save_freq=4), copied])
    assert Mine.calls == 4 and sorted(os.listdir(folder)) == ["c-4.npz", "m-4.npz"]
    every_epoch, every_batch = ModelCheckpoint(tmp_path / "e.npz"), Mine(tmp_path / "b.npz")
    # fit reads every batch's logs for the callbacks that use them only
    assert tinynet.callbacks.overriding([every_epoch, every_batch], "on_train_batch_end") == \
        [every_batch]


def test_checkpoint_on_an_epochs_last_batch_counts_that_epoch(tmp_path):
    """A save every 8 batches, 4 an epoch (TensorFlow's "every 2 epochs" recipe), wrote
    ``model.epoch = 1`` into ck-02 with the weights of the end of epoch 2: resuming it with
    ``initial_epoch=model.epoch`` trained epoch 2 twice (a review: 20 steps for 16)."""
    x, y = data(32)
    straight = make_model()
    straight.fit(x, y, batch_size=8, epochs=4, verbose=0, seed=1)
    first = make_model()
    first.fit(x, y, batch_size=8, epochs=2, verbose=0, seed=1,
              callbacks=[ModelCheckpoint(tmp_path / "ck-{epoch:02d}.npz", save_freq=8)])
    resumed = tinynet.load_model(tmp_path / "ck-02.npz")
    assert resumed.epoch == 2 and resumed.optimizer.iterations == 8
    history = resumed.fit(x, y, batch_size=8, epochs=4, initial_epoch=resumed.epoch, verbose=0,
                          seed=1)
    assert history.epoch == [2, 3] and resumed.optimizer.iterations == 16
    assert same_weights(resumed.get_weights(), straight.get_weights())


def test_model_epoch_after_fit_from_initial_epoch_is_the_epoch_reached(tmp_path):
    """Weights of epoch 2 loaded into a new model, trained on from ``initial_epoch=2`` to 4:
    ``model.epoch`` said 2 (the epochs run by this model), so a checkpoint of it resumed with
    ``initial_epoch=model.epoch`` ran epochs 2 and 3 again. It is the epoch reached, 4; fits
    that each start from 0 still count on (2 + 2 = 4)."""
    x, y = data(32)
    first = make_model()
    first.fit(x, y, batch_size=8, epochs=2, verbose=0)
    first.save_weights(tmp_path / "w.weights.npz")
    second = make_model()
    second.load_weights(tmp_path / "w.weights.npz")
    second.fit(x, y, batch_size=8, epochs=4, initial_epoch=2, verbose=0)
    assert second.epoch == 4
    again = make_model()
    again.fit(x, y, batch_size=8, epochs=2, verbose=0)
    again.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert again.epoch == 4
    # inside the first resumed epoch too (a review: a checkpoint every 2 batches of epoch 3
    # said 0, and resuming from it trained epochs 1 and 2 again)
    third = make_model()
    third.load_weights(tmp_path / "w.weights.npz")
    third.fit(x, y, batch_size=8, epochs=3, initial_epoch=2, verbose=0,
              callbacks=[ModelCheckpoint(tmp_path / "ck-{epoch}-{batch}.npz", save_freq=2)])
    assert tinynet.load_model(tmp_path / "ck-3-2.npz").epoch == 2
    assert tinynet.load_model(tmp_path / "ck-3-4.npz").epoch == 3


def test_early_stopping_on_real_validation_loss_restores_the_best_epoch():
    # validation labels are the training labels shifted by one class: the better the model fits
    # the training data, the worse its validation loss, so val_loss rises from the first epoch on
    x, y = data()
    y_val = np.roll(y, 1, axis=1)
    model = make_model(optimizers.RMSprop(learning_rate=0.01))
    initial = model.get_weights()
    rec = Recorder()
    history = model.fit(x, y, batch_size=4, epochs=30, verbose=0, shuffle=False,
                        validation_data=(x, y_val),
                        callbacks=[rec, EarlyStopping(patience=2, restore_best_weights=True)])
    vl = history.history["val_loss"]
    assert vl[0] < vl[1] < vl[2]
    assert len(vl) == 3  # best at epoch 0, no improvement in epochs 1 and 2
    assert same_weights(model.get_weights(), rec.weights[0])
    assert not same_weights(model.get_weights(), initial)
    assert model.evaluate(x, y_val)[0] == pytest.approx(vl[0], rel=1e-12)


# ---- ModelCheckpoint ------------------------------------------------------------------------------
def test_checkpoint_filepath_fields_and_contents(tmp_path):
    model, rec = make_model(optimizers.RMSprop(0.01, momentum=0.5, centered=True)), Recorder()
    x, y = data()
    pattern = str(tmp_path / "ckpt-{epoch:02d}-{val_loss:.4f}.npz")
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0, shuffle=False,
                        validation_split=0.25, callbacks=[rec, ModelCheckpoint(pattern)])
    expected = [f"ckpt-{e + 1:02d}-{v:.4f}.npz" for e, v in enumerate(history.history["val_loss"])]
    assert sorted(os.listdir(tmp_path)) == expected
    for e, name in enumerate(expected):
        loaded = tinynet.load_model(tmp_path / name)
        assert loaded.epoch == e + 1
        assert same_weights(loaded.get_weights(), rec.weights[e])
        assert loaded.optimizer.iterations == 3 * (e + 1)  # 18 training examples, batches of 8
    last = tinynet.load_model(tmp_path / expected[-1])
    mine = model.optimizer.get_state(model.params)
    theirs = last.optimizer.get_state(last.params)
    for a, b in zip(mine["slots"], theirs["slots"]):
        assert [s is None for s in a] == [s is None for s in b] == [False, False, False]
        assert all(np.array_equal(u, v) for u, v in zip(a, b))


@pytest.mark.parametrize("monitor, mode, values, saved_epochs", [
    ("val_loss", "auto", [1.0, 0.8, 0.9, 0.7, 0.75], [1, 2, 4]),
    ("val_accuracy", "auto", [0.5, 0.4, 0.6, 0.6, 0.9], [1, 3, 5]),
    ("val_loss", "max", [1.0, 0.8, 0.9, 1.1, 0.75], [1, 4]),
    ("val_loss", "min", [math.nan, 0.8, 0.9, 0.7, 0.75], [2, 4]),  # NaN is never an improvement
])
def test_checkpoint_save_best_only(tmp_path, monitor, mode, values, saved_epochs):
    model, rec = make_model(), Recorder()
    pattern = str(tmp_path / "best-{epoch}.npz")
    fixed = str(tmp_path / "best.npz")
    fit(model, [Script(values, monitor), rec,
                ModelCheckpoint(pattern, monitor=monitor, mode=mode, save_best_only=True),
                ModelCheckpoint(fixed, monitor=monitor, mode=mode, save_best_only=True)], epochs=5)
    assert sorted(os.listdir(tmp_path)) == sorted(["best.npz"] + [f"best-{e}.npz" for e in saved_epochs])
    best = tinynet.load_model(fixed)
    assert best.epoch == saved_epochs[-1]
    assert same_weights(best.get_weights(), rec.weights[saved_epochs[-1] - 1])


def test_checkpoint_verbose_says_what_it_did_in_keras_words(tmp_path, capsys):
    model = make_model()
    fit(model, [Script([1.0, 0.8, 0.9]), ModelCheckpoint(str(tmp_path / "b.npz"), save_best_only=True,
                                                          verbose=1)], epochs=3)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Epoch ")]
    assert lines == [f"Epoch 1: val_loss improved from None to 1.00000, saving model to {tmp_path / 'b.npz'}",
                     f"Epoch 2: val_loss improved from 1.00000 to 0.80000, saving model to {tmp_path / 'b.npz'}",
                     "Epoch 3: val_loss did not improve from 0.80000"]   # 5 decimals, as Keras


def test_checkpoint_initial_value_threshold(tmp_path):
    model = make_model()
    fit(model, [Script([1.0, 0.6, 0.4]),
                ModelCheckpoint(str(tmp_path / "c{epoch}.npz"), save_best_only=True,
                                initial_value_threshold=0.5)], epochs=3)
    assert os.listdir(tmp_path) == ["c3.npz"]


def test_checkpoint_overwrites_one_file_and_creates_directories(tmp_path):
    model, rec = make_model(), Recorder()
    path = tmp_path / "runs" / "a" / "model.npz"
    fit(model, [rec, ModelCheckpoint(path)], epochs=3)
    assert os.listdir(path.parent) == ["model.npz"]  # no temporary files left behind
    loaded = tinynet.load_model(path)
    assert loaded.epoch == 3 and same_weights(loaded.get_weights(), rec.weights[2])


def test_checkpoint_filepath_with_an_unknown_field_names_it(tmp_path):
    model = make_model()
    with pytest.raises(KeyError, match=r"'val_loss'.*available fields: epoch, accuracy, loss"):
        fit(model, [ModelCheckpoint(str(tmp_path / "m-{val_loss:.3f}.npz"))], epochs=1)


def test_checkpoint_of_a_reduced_learning_rate_keeps_it(tmp_path):
    model = make_model(optimizers.RMSprop(learning_rate=0.01))
    fit(model, [Script([1.0, 1.0, 1.0]), ReduceLROnPlateau(factor=0.5, patience=1),
                ModelCheckpoint(tmp_path / "m.npz")], epochs=3)
    assert model.optimizer.learning_rate == pytest.approx(0.0025, rel=1e-15)
    assert tinynet.load_model(tmp_path / "m.npz").optimizer.learning_rate == model.optimizer.learning_rate


# ---- ReduceLROnPlateau ----------------------------------------------------------------------------
@pytest.mark.parametrize("values, kw, lrs", [
    # learning rate seen at the end of each epoch (before that epoch's reduction)
    ([1.0] * 6, dict(factor=0.5, patience=2), [0.01, 0.01, 0.01, 0.005, 0.005, 0.0025]),
    ([1.0] * 6, dict(factor=0.5, patience=2, min_lr=0.004), [0.01, 0.01, 0.01, 0.005, 0.005, 0.004]),
    # after a reduction, cooldown epochs are not plateau epochs; Keras counts the cooldown down
    # before testing it, so cooldown=1 pauses nothing and cooldown=2 pauses one epoch
    ([1.0] * 6, dict(factor=0.1, patience=1, cooldown=1), [0.01, 0.01, 1e-3, 1e-4, 1e-5, 1e-6]),
    ([1.0] * 6, dict(factor=0.1, patience=1, cooldown=2), [0.01, 0.01, 1e-3, 1e-3, 1e-4, 1e-4]),
    ([1.0, 0.9, 0.8, 0.7, 0.6, 0.5], dict(factor=0.5, patience=1), [0.01] * 6),
    # improvements smaller than min_delta (1e-4 by default) are plateaus
    ([1.0, 0.99995, 0.99992, 0.99991, 0.9, 0.9], dict(factor=0.5, patience=2),
     [0.01, 0.01, 0.01, 0.005, 0.005, 0.005]),
    ([0.1, 0.2, 0.2, 0.2, 0.3, 0.3], dict(monitor="val_accuracy", factor=0.5, patience=2),
     [0.01, 0.01, 0.01, 0.01, 0.005, 0.005]),
    # a negative min_delta is a margin of its size, as in Keras (worse values do not improve)
    ([1.0, 1.125, 1.25, 1.375, 1.5, 1.625], dict(factor=0.5, patience=1, min_delta=-0.25),
     [0.01, 0.01, 0.005, 0.0025, 0.00125, 0.000625]),
])
def test_reduce_lr_on_plateau_schedule(values, kw, lrs):
    monitor = kw.get("monitor", "val_loss")
    model, rec = make_model(optimizers.RMSprop(learning_rate=0.01)), Recorder()
    # the Recorder after ReduceLROnPlateau sees the "learning_rate" it adds to the logs
    history = fit(model, [Script(values, monitor), ReduceLROnPlateau(**kw), rec], epochs=6)
    logged = [c[2]["learning_rate"] for c in rec.calls if c[0] == "epoch_end"]
    np.testing.assert_allclose(logged, lrs, rtol=1e-12)
    np.testing.assert_allclose(rec.lr, lrs[1:] + [model.optimizer.learning_rate], rtol=1e-12)
    assert len(history.epoch) == 6


def test_reduced_learning_rate_is_the_one_the_optimizer_uses():
    # SGD without momentum: one step moves the weights by exactly lr * gradient
    model = make_model(optimizers.SGD(learning_rate=0.1))
    fit(model, [Script([1.0, 1.0]), ReduceLROnPlateau(factor=0.25, patience=1)], epochs=2)
    assert model.optimizer.learning_rate == pytest.approx(0.025)
    x, y = data()
    before = model.get_weights()
    model.train_on_batch(x[:8], y[:8])
    grads = [g.copy() for g in model.grads]
    for b, a, g in zip(before, model.get_weights(), grads):
        np.testing.assert_allclose(b - a, 0.025 * g, rtol=1e-10, atol=1e-15)


def test_reduce_lr_refuses_a_factor_that_does_not_reduce():
    with pytest.raises(ValueError, match="factor must be in"):
        ReduceLROnPlateau(factor=1.0)


# ---- CSVLogger ------------------------------------------------------------------------------------
def read_csv(path, sep=","):
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter=sep))


def test_csv_logger_writes_one_row_per_epoch_equal_to_history(tmp_path):
    path = tmp_path / "log.csv"
    model = make_model()
    x, y = data()
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0, shuffle=False,
                        validation_split=0.25, callbacks=[CSVLogger(path)])
    rows = read_csv(path)
    assert rows[0] == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert len(rows) == 4
    for e, row in enumerate(rows[1:]):
        assert int(row[0]) == e
        for key, cell in zip(rows[0][1:], row[1:]):
            assert float(cell) == history.history[key][e]  # written with full precision


def test_csv_logger_separator_and_append(tmp_path):
    path = tmp_path / "log.tsv"
    model = make_model()
    fit(model, [CSVLogger(path, separator="\t")], epochs=2)
    fit(model, [CSVLogger(path, separator="\t", append=True)], epochs=5, initial_epoch=2)
    rows = read_csv(path, "\t")
    # without validation, as Keras: a val_ column for each value, NA in every row
    assert rows[0] == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2", "3", "4"]  # one header, rows appended
    assert all(r[3:] == ["NA", "NA"] for r in rows[1:])
    fit(model, [CSVLogger(path, separator="\t")], epochs=1)  # append=False starts afresh
    assert [r[0] for r in read_csv(path, "\t")] == ["epoch", "0"]


def test_csv_logger_keeps_the_validation_columns_of_epochs_validated_later(tmp_path):
    """validation_freq=2: the first epoch has no val_ values; the file had no val_ columns and
    dropped every validation value (and append=True wrote 5 fields under a 3-field header).
    Keras adds the val_ columns from the first epoch on, NA where an epoch has none."""
    path = tmp_path / "log.csv"
    model = make_model()
    x, y = data()
    history = model.fit(x, y, batch_size=8, epochs=4, verbose=0, shuffle=False,
                        validation_data=(x[:6], y[:6]), validation_freq=2,
                        callbacks=[CSVLogger(path)])
    rows = read_csv(path)
    assert rows[0] == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [r[3:] for r in rows[1::2]] == [["NA", "NA"]] * 2  # epochs 0 and 2: not validated
    assert [float(r[4]) for r in rows[2::2]] == history.history["val_loss"]  # epochs 1 and 3


def test_csv_logger_rows_survive_a_training_that_crashes(tmp_path):
    path = tmp_path / "log.csv"

    class Crash(tinynet.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fit(make_model(), [CSVLogger(path), Crash()], epochs=4)
    assert [r[0] for r in read_csv(path)] == ["epoch", "0", "1"]


def test_csv_logger_records_the_learning_rate_of_reduce_lr(tmp_path):
    path = tmp_path / "log.csv"
    fit(make_model(optimizers.RMSprop(0.01)),
        [Script([1.0] * 4), ReduceLROnPlateau(factor=0.5, patience=1), CSVLogger(path)], epochs=4)
    rows = read_csv(path)
    col = rows[0].index("learning_rate")
    assert [float(r[col]) for r in rows[1:]] == [0.01, 0.01, 0.005, 0.0025]


def test_all_callbacks_together_with_warnings_as_errors(tmp_path):
    # a normal run with validation data raises no warning from any callback
    x, y = data(40)
    model = make_model()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = model.fit(x, y, batch_size=8, epochs=3, verbose=0, validation_split=0.25,
                            seed=3, callbacks=[EarlyStopping(patience=5), ReduceLROnPlateau(),
                                               ModelCheckpoint(tmp_path / "m.npz"),
                                               CSVLogger(tmp_path / "log.csv")])
    assert len(history.epoch) == 3
    assert tinynet.load_model(tmp_path / "m.npz").epoch == 3
    assert len(read_csv(tmp_path / "log.csv")) == 4


class Every(tinynet.callbacks.Callback):
    """Records each hook Keras defines, with its batch or epoch number (Keras 3's names)."""

    def __init__(self):
        self.calls = []

    def on_train_begin(self, logs=None):
        self.calls.append("train_begin")

    def on_train_end(self, logs=None):
        self.calls.append(f"train_end {sorted(logs)}")

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(f"epoch_begin {epoch}")

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(f"epoch_end {epoch}")

    def on_train_batch_begin(self, batch, logs=None):
        self.calls.append(f"train_batch_begin {batch}")

    def on_train_batch_end(self, batch, logs=None):
        self.calls.append(f"train_batch_end {batch}")

    def on_test_begin(self, logs=None):
        self.calls.append("test_begin")

    def on_test_end(self, logs=None):
        self.calls.append(f"test_end {sorted(logs)}")

    def on_test_batch_begin(self, batch, logs=None):
        self.calls.append(f"test_batch_begin {batch}")

    def on_test_batch_end(self, batch, logs=None):
        self.calls.append(f"test_batch_end {batch} {logs['loss']:.6f}")

    def on_predict_begin(self, logs=None):
        self.calls.append("predict_begin")

    def on_predict_end(self, logs=None):
        self.calls.append("predict_end")

    def on_predict_batch_begin(self, batch, logs=None):
        self.calls.append(f"predict_batch_begin {batch}")

    def on_predict_batch_end(self, batch, logs=None):
        self.calls.append(f"predict_batch_end {batch} {logs['outputs'].shape}")


def test_every_keras_hook_is_called_in_keras_order_by_fit_evaluate_and_predict():
    """Keras calls, around each training batch, on_train_batch_begin/end; for the validation
    data, on_test_begin, on_test_batch_begin/end per batch and on_test_end, before on_epoch_end;
    evaluate(callbacks=) the on_test hooks and predict(callbacks=) the on_predict ones (tinynet
    called only the epoch and train-batch-end hooks: the others were silently never called)."""
    model, (x, y), every = make_model(), data(24), Every()
    model.fit(x, y, batch_size=10, epochs=1, verbose=0, shuffle=False, callbacks=[every],
              validation_data=(x[:8], y[:8]))
    batches = [f"train_batch_{w} {b}" for b in range(3) for w in ("begin", "end")]
    test_loss = model.evaluate(x[:8], y[:8], verbose=0)[0]
    assert every.calls == ["train_begin", "epoch_begin 0", *batches, "test_begin",
                           "test_batch_begin 0", f"test_batch_end 0 {test_loss:.6f}",
                           "test_end ['accuracy', 'loss']", "epoch_end 0",
                           "train_end ['accuracy', 'loss', 'val_accuracy', 'val_loss']"]
    every.calls = []
    # evaluate: the running mean after each batch, the whole mean at the end
    first = model.evaluate(x[:10], y[:10], verbose=0)[0]
    loss = model.evaluate(x, y, batch_size=10, verbose=0, callbacks=[every])[0]
    assert every.calls == ["test_begin", "test_batch_begin 0", f"test_batch_end 0 {first:.6f}",
                           "test_batch_begin 1", "test_batch_end 1 "
                           f"{model.evaluate(x[:20], y[:20], verbose=0)[0]:.6f}",
                           "test_batch_begin 2", f"test_batch_end 2 {loss:.6f}",
                           "test_end ['accuracy', 'loss']"]
    every.calls = []
    model.predict(x, batch_size=16, callbacks=[every])
    assert every.calls == ["predict_begin", "predict_batch_begin 0", "predict_batch_end 0 (16, 3)",
                           "predict_batch_begin 1", "predict_batch_end 1 (8, 3)", "predict_end"]


def test_keras_2_batch_hook_names_are_called_too():
    class Old(tinynet.callbacks.Callback):
        def __init__(self):
            self.calls = []

        def on_batch_begin(self, batch, logs=None):
            self.calls.append(("begin", batch))

        def on_batch_end(self, batch, logs=None):
            self.calls.append(("end", batch))

    model, (x, y), old = make_model(), data(20), Old()
    model.fit(x, y, batch_size=10, epochs=1, verbose=0, callbacks=[old])
    assert old.calls == [("begin", 0), ("end", 0), ("begin", 1), ("end", 1)]


def test_evaluate_and_predict_take_keras_steps():
    model, (x, y) = make_model(), data(24)
    np.testing.assert_array_equal(model.predict(x, batch_size=5, steps=2), model.predict(x[:10]))
    assert model.evaluate(x, y, batch_size=5, steps=2, verbose=0) == \
        pytest.approx(model.evaluate(x[:10], y[:10], verbose=0), rel=1e-14)
    assert model.evaluate(x, y, batch_size=5, steps=99, verbose=0) == \
        pytest.approx(model.evaluate(x, y, verbose=0), rel=1e-14)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        model.predict(x, steps=0)


class _Explodes(tinynet.optimizers.schedules.LearningRateSchedule):
    """A learning rate of 1e308 at step 2: the step after it overflows."""

    def __call__(self, step):
        return 1e308 if step == 2 else 0.01


def test_terminate_on_nan_stops_without_an_error_and_keeps_the_last_finite_weights(capsys):
    x, y = data(64)
    model = make_model(optimizers.SGD(learning_rate=_Explodes()))
    kept = []
    record = tinynet.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: kept.append(model.get_weights()))
    with np.errstate(all="ignore"):
        history = model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0,
                            callbacks=[record, tinynet.callbacks.TerminateOnNaN()])
    assert "Batch 3: Invalid loss, terminating training (the loss is NaN or infinite; the " \
           "weights are those before this batch)" in capsys.readouterr().out   # from 0, as Keras
    assert len(kept) == 3 and model.optimizer.iterations == 3 and model.epoch == 0
    for a, b in zip(kept[-1], model.get_weights()):   # those after step 2, the last good one
        np.testing.assert_array_equal(a, b)
    assert list(history.history) == ["accuracy", "loss"] and len(history.history["loss"]) == 1
    assert math.isfinite(history.history["loss"][0])   # the mean over the 3 good batches


def test_terminate_on_nan_can_raise_and_its_absence_raises_tinynets_error():
    x, y = data(64)
    with np.errstate(all="ignore"):
        with pytest.raises(RuntimeError, match=r"NaN or Inf loss encountered at batch 3 \(the loss"):
            make_model(optimizers.SGD(learning_rate=_Explodes())).fit(
                x, y, batch_size=16, shuffle=False, verbose=0,
                callbacks=[tinynet.callbacks.TerminateOnNaN(raise_error=True)])
        with pytest.raises(tinynet.NonFiniteLossError, match="epoch 1, batch 4 of 4"):
            make_model(optimizers.SGD(learning_rate=_Explodes())).fit(
                x, y, batch_size=16, shuffle=False, verbose=0)
    # an epoch stopped at its first batch has no mean to give: NaN, not 0
    stopped = make_model(optimizers.SGD(learning_rate=1e308))
    with np.errstate(all="ignore"):
        stopped.fit(x, y, batch_size=64, verbose=0, callbacks=[tinynet.callbacks.TerminateOnNaN()])
        history = stopped.fit(x, y, batch_size=64, verbose=0,
                              callbacks=[tinynet.callbacks.TerminateOnNaN()])
    assert math.isnan(history.history["loss"][0])


@pytest.mark.parametrize("kind, values, kw, stop", [
    # Keras compares the monitored values in float32: 0.8 - 0.1 is 0.7000000000000001 in
    # float64, not more than 0.1 above 0.7; 0.5 - 1e-9 rounds to 0.5
    ("early", [0.7, 0.8], dict(monitor="val_accuracy", min_delta=0.1), 2),
    ("early", [0.5, 0.5 - 1e-9], dict(), 2),
    ("early", [0.5, 0.5 - 1e-6], dict(), None),
])
def test_improvements_are_compared_in_float32_as_keras(kind, values, kw, stop):
    model = make_model(optimizers.SGD(learning_rate=0.1))
    monitor = kw.get("monitor", "val_loss")
    history = fit(model, [Script(values + [9.0 if monitor == "val_loss" else 0.0] * 3, monitor),
                          EarlyStopping(patience=1, **kw)], epochs=len(values) + 3)
    # patience 1: training stops at the first epoch that does not improve
    assert len(history.epoch) == (stop if stop is not None else len(values) + 1)


def test_reduce_lr_stops_at_min_lr_as_keras_compares_it(capsys):
    # 0.1 * 0.1 * 0.1 * 0.1 is 1.0000000000000003e-4 in float64, above min_lr=1e-4; Keras
    # compares its float32 rate with float32(min_lr): three reductions, not a fourth to min_lr
    model = make_model(optimizers.SGD(learning_rate=0.1))
    fit(model, [Script([1.0] * 6), ReduceLROnPlateau(factor=0.1, patience=1, min_lr=1e-4,
                                                     verbose=1)], epochs=6)
    said = capsys.readouterr().out
    assert said.count("ReduceLROnPlateau reducing learning rate") == 3, said
    assert model.optimizer.learning_rate == pytest.approx(1e-4, rel=1e-12)
