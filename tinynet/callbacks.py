"""Callbacks: hooks that ``fit``, ``evaluate`` and ``predict`` call at the start and end of their
work, of each epoch and of each batch, with Keras's names and arguments.

``fit`` calls, in order: ``on_train_begin()``, then for each epoch ``on_epoch_begin(epoch)``,
``on_train_batch_begin(batch)`` and ``on_train_batch_end(batch, logs)`` around every batch (as in
Keras 3, their default calls the Keras 2 names ``on_batch_begin``/``on_batch_end``, so that either
name can be overridden; a class that overrides both gets its ``on_train_batch_*`` called, which
calls the other only if it says so), the validation's ``on_test_*`` hooks
below when there is validation data, ``on_epoch_end(epoch, logs)``, and finally
``on_train_end(logs)`` with the last epoch's logs. ``evaluate`` (and the validation) calls
``on_test_begin()``, ``on_test_batch_begin(batch)`` and ``on_test_batch_end(batch, logs)`` around
every batch, then ``on_test_end(logs)``; ``predict`` calls ``on_predict_begin()``,
``on_predict_batch_begin(batch)``, ``on_predict_batch_end(batch, {"outputs": ...})``,
``on_predict_end()``. ``epoch`` and ``batch`` count from 0 (as in Keras); every hook gets ``logs``
as Keras passes it (an empty dict where there is nothing to report; by keyword, ``logs=``, to the
batch hooks); ``logs`` holds the running means (``"loss"``, ``"accuracy"``) and, at the end of an
epoch, ``"val_loss"`` and ``"val_accuracy"`` when there is validation data. A callback stops training by
setting ``self.model.stop_training = True``; ``fit`` stops at the end of the current batch. A batch
hook is called only by callbacks that override it (computing the running means needs the device's
numbers: a batch without a hook to read them skips that).

The callbacks here:

* :class:`History` -- what ``fit`` returns (added by ``fit`` itself);
* :class:`EarlyStopping` -- stop when a monitored value stops improving;
* :class:`ModelCheckpoint` -- save the model (weights, optimizer state, epoch) after each epoch
  or every few batches;
* :class:`ReduceLROnPlateau` -- divide the learning rate when a monitored value stops improving;
* :class:`LearningRateScheduler` -- set the learning rate at each epoch from a function;
* :class:`LambdaCallback` -- a callback made of functions given as arguments;
* :class:`TerminateOnNaN` -- stop training, without an error, when the loss is NaN;
* :class:`CSVLogger` -- one line of ``logs`` per epoch in a CSV file.
"""
import csv
import difflib
import math
import os
import string
import warnings

import numpy as np

from . import checks, io

MODES = ("auto", "min", "max")


class Callback:
    """Base class. ``self.model`` is set by ``fit``; set ``model.stop_training = True`` to stop.
    ``self.params``, as in Keras, is ``{"verbose": ..., "epochs": ..., "steps": ...}`` (steps: the
    batches of an epoch; ``epochs`` 1 for ``evaluate`` and ``predict``)."""

    model = None
    params = None

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_batch_begin(self, batch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        """What ``fit`` calls before each batch; by default ``on_batch_begin``, its Keras 2
        name, as in Keras 3: override either one."""
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        """What ``fit`` calls after each batch; by default ``on_batch_end``, its Keras 2 name,
        as in Keras 3: override either one."""
        self.on_batch_end(batch, logs=logs)

    def on_test_begin(self, logs=None):
        pass

    def on_test_end(self, logs=None):
        pass

    def on_test_batch_begin(self, batch, logs=None):
        pass

    def on_test_batch_end(self, batch, logs=None):
        pass

    def on_predict_begin(self, logs=None):
        pass

    def on_predict_end(self, logs=None):
        pass

    def on_predict_batch_begin(self, batch, logs=None):
        pass

    def on_predict_batch_end(self, batch, logs=None):
        pass


def check(callbacks, where):
    """Refuse ``callbacks`` that are not a callback or a list of callbacks (``callbacks=3``
    failed with "'int' object is not iterable"); ``fit``, ``evaluate`` and ``predict`` ask before
    their work starts. Returns them as a list."""
    if callbacks is not None and not isinstance(callbacks, Callback) and (
            isinstance(callbacks, (str, bytes, dict)) or not hasattr(callbacks, "__iter__")):
        callbacks = [callbacks]  # (named as the element that is not a callback, below)
    callbacks = [callbacks] if isinstance(callbacks, Callback) else list(callbacks or [])
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise TypeError(f"{where}: callbacks must be tinynet.callbacks.Callback objects (one, "
                            f"or a list of them), got {cb!r}")
    return callbacks


def prepare(callbacks, model, where, params=None):
    """``callbacks`` (a list, or one callback, as Keras takes it) as a list, each checked
    (:func:`check`) and given ``model`` and, when given, ``params``."""
    callbacks = check(callbacks, where)
    for cb in callbacks:
        cb.set_model(model)
        if params is not None:
            cb.set_params(dict(params))
    return callbacks


def overriding(callbacks, *hooks):
    """The callbacks that override one of ``hooks`` (method names), in their class or, as
    :class:`LambdaCallback` does, on the object itself: those a loop calls per batch (but for a
    hook the callback says is idle, such as an epoch-saving ModelCheckpoint's batch hook)."""
    return [cb for cb in callbacks
            if any(hook in vars(cb) or (getattr(type(cb), hook) is not getattr(Callback, hook)
                                        and not getattr(cb, "_idle", lambda hook: False)(hook))
                   for hook in hooks)]


class History(Callback):
    """What ``fit`` returns: ``history.history["loss"]``, ``["val_accuracy"]``, ... per epoch."""

    def __init__(self):
        self.history = {}
        self.epoch = []
        self.params = {}  # set by fit: verbose, epochs, steps (per epoch), as in Keras
        # tinynet's addition: the epochs (from 0) of each key's values; with validation_freq
        # the val_ values are fewer than the epochs (plots.plot_history places them with it)
        self.recorded_at = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)
            self.recorded_at.setdefault(k, []).append(epoch)


# ---- helpers shared by the callbacks that watch a value -----------------------------------------
def _check_mode(mode, owner):
    if mode not in MODES:
        raise ValueError(f"{owner}: mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def _logged_names(model):
    """The values ``fit`` logs for ``model``: the loss and its compiled metrics, each also with
    ``val_`` (when there is validation data)."""
    names = ["loss"] + list(getattr(model, "metrics", None) or [])
    return names + [f"val_{n}" for n in names]


def _closest(monitor, names):
    """The name of ``names`` closest to ``monitor`` (a typo's fix), or ``None``."""
    close = difflib.get_close_matches(str(monitor), names, n=1, cutoff=0.7)  # (not val_auc
    # for val_accuracy, 0.63 alike; val_los for val_loss is 0.93)
    return close[0] if close else None


def _maximises(monitor, mode, model, owner):
    """Whether a larger ``monitor`` is better. ``mode="auto"`` decides as Keras 3: the loss
    (``"loss"``, ``"val_loss"``) and a regression's error (``"mae"``, ``"mse"``, under the names
    given) are minimised, an accuracy the model was compiled with maximised, and any other name
    refused, since which way is better cannot be told from it: ``mode="min"`` or ``"max"`` says
    it."""
    if mode != "auto":
        return mode == "max"
    name = monitor[len("val_"):] if monitor.startswith("val_") else monitor
    if name == "loss":
        return False
    metrics = list(getattr(model, "metrics", None) or [])
    if name in metrics:  # an accuracy, or a regression's error
        return getattr(model, "metric_kinds", {}).get(name) not in ("mae", "mse")
    from .metrics import ACCURACY_NAMES
    compile_it = (f"compile the model with metrics=[{name!r}] for it to be computed and logged, "
                  "or " if name in ACCURACY_NAMES else "")
    logged = _logged_names(model)
    close = _closest(monitor, logged)
    if close is not None:  # a typo, most likely: advice about mode would not fix it
        raise ValueError(f"{owner}: monitor={monitor!r} is not a value the model logs (it logs "
                         f"{', '.join(logged)}; the 'val_' ones with validation data): did you "
                         f"mean monitor={close!r}? " +
                         (f"Or compile the model with metrics=[{name!r}] for {monitor!r} to be "
                          "computed and logged. " if compile_it else "") +
                         "(A value that a callback of your own adds to the logs is monitored "
                         "with mode='min' or mode='max'.)")
    raise ValueError(f"{owner}: mode='auto' cannot tell whether {monitor!r} should be maximised "
                     f"or minimised: it knows the loss and the model's metrics ("
                     f"{', '.join(['loss'] + metrics)}, each also with 'val_'); {compile_it}pass "
                     "mode='max' to keep the highest value or mode='min' to keep the lowest")


class _Watching(Callback):
    """What the callbacks that watch a value share: ``monitor``, ``mode`` and which way is better,
    decided once the model is known (see :func:`_maximises`)."""

    def __init__(self, monitor, mode):
        self.monitor = monitor
        self.mode = _check_mode(mode, type(self).__name__)
        self._max = None  # decided by _maximising()

    def _maximising(self):
        if self._max is None:
            self._max = _maximises(self.monitor, self.mode, self.model, type(self).__name__)
        return self._max

    def _check_before_training(self):
        """Refuse what would fail later (here a name of unknown direction): ``fit`` calls it
        for every callback before any ``on_train_begin``, so that nothing has started yet (a
        CSVLogger's file emptied, an epoch trained)."""
        self._max = None
        self._maximising()

    def on_train_begin(self, logs=None):
        self._check_before_training()  # called by fit already: again for a direct call


def _monitored(logs, monitor, owner, then="it does nothing this epoch"):
    """``logs[monitor]`` as a float, or ``None`` (with a warning naming the available keys and
    ``then``, what the callback does instead)."""
    value = (logs or {}).get(monitor)
    if value is None:
        close = _closest(monitor, sorted(logs or {}))
        warnings.warn(f"{owner}: the monitored value {monitor!r} is not in the logs (available: "
                      f"{', '.join(sorted(logs or {})) or 'none'}); {then}. " +
                      (f"Did you mean monitor={close!r}? " if close is not None else "") +
                      "'val_...' values need validation_data or validation_split in fit, and "
                      "an epoch that is validated (see fit's validation_freq).",
                      RuntimeWarning, stacklevel=3)
        return None
    return float(value)


def _beats(value, reference, min_delta, maximising):
    """Does ``value`` beat ``reference`` by more than ``min_delta`` (>= 0)? Compared as Keras
    compares them: the margin applied to ``value``, then both rounded to float32 (Keras's ops
    turn the Python floats into float32 tensors, whatever floatx), so that 0.8 does not beat
    0.7 by more than 0.1, nor 0.5 - 1e-9 beat 0.5."""
    if maximising:
        return bool(np.float32(value - min_delta) > np.float32(reference))
    return bool(np.float32(value + min_delta) < np.float32(reference))


class EarlyStopping(_Watching):
    """Stop training when ``monitor`` has not improved for ``patience`` epochs (Keras 3 semantics,
    but for two choices: a NaN never counts as the best, where Keras 3 takes a NaN first value
    as its best and then sees nothing beat it; an epoch without the value is skipped, with a
    warning).

    An epoch *improves* when its value beats the best so far by more than ``min_delta``
    (``value + min_delta < best`` when minimising, ``value - min_delta > best`` when maximising,
    both sides rounded to float32 as Keras compares them; the first value improves unless it is
    NaN). ``mode="auto"`` minimises the loss and maximises
    the model's metrics; give ``mode`` for any other value.
    After ``patience`` epochs without improvement training stops. ``baseline``: the value must also
    beat it to count as improvement. ``start_from_epoch``: epochs before it are not watched.
    ``restore_best_weights=True`` puts back, at the end of training, the weights of the best epoch.
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, mode)
        self.min_delta = abs(checks.real_number(min_delta, "min_delta", "EarlyStopping",
                                     "the smallest change that counts as an improvement"))
        if not isinstance(patience, (int, np.integer)) or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be a non-negative integer, got {patience!r}")
        self.patience = int(patience)
        self.verbose = verbose
        self.baseline = None if baseline is None else checks.real_number(
            baseline, "baseline", "EarlyStopping", "a value to beat, or None")
        self.restore_best_weights = bool(restore_best_weights)
        self.start_from_epoch = int(start_from_epoch)
        self._reset()

    def _reset(self):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None  # no value seen yet
        self.best_weights = None
        self.best_epoch = 0

    def _improves(self, value, reference):
        if reference is None:
            return not math.isnan(value)
        return _beats(value, reference, self.min_delta, self._maximising())

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        current = _monitored(logs, self.monitor, "EarlyStopping")
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = self.model.get_weights(), epoch
        self.wait += 1
        if self._improves(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._improves(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class _SampleLogs(dict):
    """What a file name pattern is filled with to check it: a sample value for any field."""

    def __missing__(self, key):
        return 0.5  # a logged value (a loss, an accuracy) is a float


def _check_pattern(filepath):
    """Fill ``filepath`` as :meth:`ModelCheckpoint._path` will (epoch and batch numbers, a float
    for a logged value), so that a pattern ``str.format`` cannot fill is refused now, not at the
    end of the first epoch's training."""
    sample = _SampleLogs(epoch=1, batch=1)
    try:
        for _, field, _, _ in string.Formatter().parse(filepath):
            if field is not None and field.split(".")[0].split("[")[0] == "":
                raise ValueError("a field {} without a name: name what fills it, {epoch} or a "
                                 "logged value such as {val_loss}")
        filepath.format_map(sample)
    except (ValueError, IndexError, KeyError, AttributeError, TypeError) as e:
        raise ValueError(f"ModelCheckpoint: the filepath {filepath!r} is not a pattern "
                         f"str.format can fill ({e}; tried with epoch=1, batch=1 and 0.5 for a "
                         "logged value); fields are written {epoch:02d} (an int) or "
                         "{val_loss:.4f} (a float), a brace itself {{ or }}") from None


class ModelCheckpoint(_Watching):
    """Save the whole model (architecture, weights, optimizer state, epoch) after each epoch, or
    every ``save_freq`` batches (an int, counted across epochs, as Keras; with ``save_best_only``
    it watches ``loss`` or a metric then, never a ``val_`` value, which a batch's logs do not
    hold: refused, where Keras saves at each of them, over the best, with a warning).

    ``filepath`` may contain Keras-style fields filled from the epoch (counted from 1), the batch
    (from 1, with an int ``save_freq``) and the logs: ``"ckpt-{epoch:02d}-{val_loss:.4f}.npz"`` (a
    batch's logs are the epoch's running means so far, without ``val_`` values); a pattern that
    ``str.format`` cannot fill (``{epoch:xyz}``, ``{epoch``) is refused when the callback is made.
    With ``save_best_only=True`` the model is saved only when ``monitor`` beats the best value so
    far (and ``initial_value_threshold`` when given; ``mode="auto"`` minimises the loss and
    maximises the model's metrics, as in Keras 3; a NaN is never the best; an epoch without the
    value, with a warning, saves the model only when the callback has written no file yet, so that a
    script loading it afterwards finds one: Keras 3 saves at every such epoch, over the best model,
    when ``validation_freq`` skips epochs). Saves go through ``model.save``, which writes a
    temporary file and renames it: a checkpoint on disk is always a complete one. Load one with
    ``tinynet.load_model(path)`` and resume with ``model.fit(..., initial_epoch=model.epoch)``.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch",
                 initial_value_threshold=None):
        if save_freq != "epoch" and not (isinstance(save_freq, (int, np.integer)) and
                                         not isinstance(save_freq, bool) and save_freq > 0):
            raise ValueError(f"ModelCheckpoint: save_freq must be 'epoch' or a positive number "
                             f"of batches, got {save_freq!r}")
        self.save_freq = save_freq if save_freq == "epoch" else int(save_freq)
        self._batches = 0  # batches since the last save, with an int save_freq
        self._epoch = 0
        if save_best_only and save_freq != "epoch" and str(monitor).startswith("val_"):
            raise ValueError(f"ModelCheckpoint: save_best_only with save_freq={save_freq} "
                             f"compares {monitor!r} every {save_freq} batches, and a batch's "
                             "logs have no validation values (they come at the end of an "
                             "epoch): monitor 'loss' or a metric, or save every epoch "
                             "(save_freq='epoch')")
        self.save_weights_only = bool(save_weights_only)  # model.save_weights instead of save
        self.filepath = io.as_path(filepath, "ModelCheckpoint")
        _check_pattern(self.filepath)
        if not self.save_weights_only:  # a name model.save refuses is refused now, as in Keras
            io.check_model_path(self.filepath, "ModelCheckpoint")
        super().__init__(monitor, mode)
        self.verbose = verbose
        self.save_best_only = bool(save_best_only)
        self.best = None if initial_value_threshold is None else checks.real_number(
            initial_value_threshold, "initial_value_threshold", "ModelCheckpoint",
            "the value a model must beat to be saved, or None")
        self.last_saved = None  # path of the last file written

    def _path(self, epoch, logs, batch=None):
        counts = {"epoch": epoch + 1, **({} if batch is None else {"batch": batch + 1})}
        fields = {**(logs or {}), **counts}  # the counts win over logs of the same name
        try:
            return self.filepath.format(**fields)
        except (KeyError, IndexError) as e:
            names = list(counts) + sorted(k for k in fields if k not in counts)
            raise KeyError(f"ModelCheckpoint: cannot fill the filepath {self.filepath!r}: no value "
                           f"for {e}; available fields: {', '.join(names)}") from None

    def _better(self, value):
        if self.best is None:
            return not math.isnan(value)
        return _beats(value, self.best, 0.0, self._maximising())

    def _check_before_training(self):
        if not self.save_weights_only:  # refused now, not after the first epoch's training
            try:
                io.model_architecture(self.model)
                if self.model.optimizer is not None:
                    io.check_restorable(self.model)
            except ValueError as e:
                raise ValueError(f"ModelCheckpoint: {e}; or give the callback "
                                 "save_weights_only=True") from None
        if self.save_best_only:  # only then is the monitored value used
            super()._check_before_training()

    def on_train_begin(self, logs=None):
        self._check_before_training()

    def _unwatched_path(self, epoch, logs, batch):
        """Where a save without the monitored value writes: only the first file of this callback
        (Keras 3 saves at each such epoch, over the best one, when validation_freq > 1), and only
        when the file name needs no missing value; else ``None``."""
        if self.best is not None or self.last_saved is not None:
            return None
        try:
            return self._path(epoch, logs, batch)
        except KeyError:
            return None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def _idle(self, hook):
        """Whether ``hook`` is this class's own and has nothing to do (fit then need not read
        every batch's logs for it): ``on_train_batch_end`` when it saves every epoch."""
        return (self.save_freq == "epoch"
                and getattr(type(self), hook, None) is ModelCheckpoint.__dict__.get(hook))

    def on_train_batch_end(self, batch, logs=None):
        """Counts the batches, and saves every ``save_freq`` of them (an int)."""
        if self.save_freq == "epoch":
            return
        self._batches += 1
        if self._batches >= self.save_freq:
            self._batches = 0
            self._save(self._epoch, logs, batch)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, logs)

    def _save(self, epoch, logs, batch=None):
        path = None
        if self.save_best_only:
            if self.monitor not in (logs or {}):
                path = self._unwatched_path(epoch, logs, batch)
                _monitored(logs, self.monitor, "ModelCheckpoint",
                           then="nothing is saved this epoch" if path is None else
                           "the model is saved all the same (the callback's first file, so that "
                           "a script loading it finds one)")
                if path is None:
                    return
            else:
                current = _monitored(logs, self.monitor, "ModelCheckpoint")
                # what Keras 3 prints: the best so far, "None" before the first save
                best = "None" if self.best is None else f"{self.best:.5f}"
                if not self._better(current):
                    if self.verbose:
                        print(f"Epoch {epoch + 1}: {self.monitor} did not improve from {best}")
                    return
                if self.verbose:
                    print(f"Epoch {epoch + 1}: {self.monitor} improved from {best} to "
                          f"{current:.5f}, saving model to {self._path(epoch, logs, batch)}")
                self.best = current
        path = path or self._path(epoch, logs, batch)
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            try:
                self.model.save(path)
            except ValueError as e:  # what only training shows (an optimizer's state)
                raise ValueError(f"ModelCheckpoint: {e}; or give the callback "
                                 "save_weights_only=True") from None
        self.last_saved = path
        if self.verbose and not self.save_best_only:
            print(f"Epoch {epoch + 1}: saving model to {path}")


class ReduceLROnPlateau(_Watching):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved for ``patience``
    epochs (improving means beating the best by more than ``min_delta``), never below ``min_lr``;
    then wait ``cooldown`` epochs before watching again. Keras 3 semantics (``mode="auto"``
    minimises the loss and maximises the model's metrics), but for the same two choices as
    :class:`EarlyStopping` (a NaN is never the best; an epoch without the value is skipped); the
    current learning rate is added to the logs as ``"learning_rate"``.
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0):
        meaning = "the learning rate is multiplied by it"
        if not 0.0 < checks.real_number(factor, "factor", "ReduceLROnPlateau", meaning) < 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1) ({meaning}), got "
                             f"{factor!r}")
        super().__init__(monitor, mode)
        self.factor = float(factor)
        self.patience = int(patience)
        self.verbose = verbose
        # as Keras: a margin, whatever its sign
        self.min_delta = abs(checks.real_number(min_delta, "min_delta", "ReduceLROnPlateau",
                                     "the smallest change that counts as an improvement"))
        self.cooldown = int(cooldown)
        self.min_lr = checks.real_number(min_lr, "min_lr", "ReduceLROnPlateau",
                              "the learning rate is not reduced below it")
        self._reset()

    def _reset(self):
        self.best = None  # no value seen yet
        self.wait = 0
        self.cooldown_counter = 0

    def _improves(self, value):
        if self.best is None:
            return not math.isnan(value)
        return _beats(value, self.best, self.min_delta, self._maximising())

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        optimizer = self.model.optimizer
        if logs is not None:
            logs["learning_rate"] = float(optimizer.learning_rate)
        current = _monitored(logs, self.monitor, "ReduceLROnPlateau")
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improves(current):
            self.best = current
            self.wait = 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            # compared in float32, as Keras compares its float32 rate: repeated products
            # (0.001 * 0.1 * 0.1 = 1.0000000000000003e-05) do not make one reduction more
            if self.wait >= self.patience and \
                    np.float32(optimizer.learning_rate) > np.float32(self.min_lr):
                new_lr = max(optimizer.learning_rate * self.factor, self.min_lr)
                if self.verbose:
                    print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr}.")
                optimizer.learning_rate = new_lr
                self.cooldown_counter = self.cooldown
                self.wait = 0


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch to ``schedule(epoch, lr)`` (``epoch`` from
    0, ``lr`` the current rate), or ``schedule(epoch)`` for a function of one argument, as Keras
    does; the rate is added to the logs as ``"learning_rate"``. ``verbose=1`` prints each new rate.

    This is a rate per *epoch*; a schedule per *step* is given to the optimizer itself
    (:mod:`tinynet.schedules`)."""

    def __init__(self, schedule, verbose=0):
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: schedule must be a function "
                            f"schedule(epoch, lr) -> new rate, got {schedule!r}")
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        try:  # Keras's way to tell schedule(epoch, lr) from schedule(epoch)
            rate = self.schedule(epoch, float(optimizer.learning_rate))
        except TypeError:
            rate = self.schedule(epoch)
        if not isinstance(rate, (float, np.float32, np.float64)):  # Keras's test
            raise ValueError(f"LearningRateScheduler: the schedule must return a float (the new "
                             f"learning rate); at epoch {epoch} it returned {rate!r}")
        if not math.isfinite(rate) or rate < 0:  # named here, not as the optimizer's mistake
            name = getattr(self.schedule, "__name__", None) or repr(self.schedule)
            raise ValueError(f"LearningRateScheduler: the schedule {name} returned {rate!r} at "
                             f"epoch {epoch} (counted from 0); a learning rate must be a finite "
                             "number >= 0: fix the schedule's formula for that epoch")
        optimizer.learning_rate = rate
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {rate}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class LambdaCallback(Callback):
    """A callback made of functions, for one-off hooks: ``on_epoch_begin(epoch, logs)``,
    ``on_epoch_end(epoch, logs)``, ``on_train_begin(logs)``, ``on_train_end(logs)``,
    ``on_train_batch_begin(batch, logs)``, ``on_train_batch_end(batch, logs)``; any other hook by
    its name as a keyword (``on_test_end=...``), as in Keras::

        LambdaCallback(on_epoch_end=lambda epoch, logs: print(epoch, logs["loss"]))
    """

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
                 on_train_end=None, on_train_batch_begin=None, on_train_batch_end=None,
                 **kwargs):
        hooks = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end,
                     on_train_begin=on_train_begin, on_train_end=on_train_end,
                     on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end, **kwargs)
        for name, fn in hooks.items():
            if fn is None:
                continue
            if not (name.startswith("on_") and callable(getattr(Callback, name, None))):
                raise TypeError(f"LambdaCallback: {name}= is not a callback hook; the hooks are "
                                + ", ".join(h for h in vars(Callback) if h.startswith("on_")))
            if not callable(fn):
                raise TypeError(f"LambdaCallback: {name}= must be a function, got {fn!r}")
            setattr(self, name, fn)


class TerminateOnNaN(Callback):
    """Stop training when the loss becomes NaN or infinite, without an error: ``fit`` returns its
    History as usual (``raise_error=True``: a RuntimeError instead, as in Keras).

    Without it tinynet's ``fit`` raises :class:`tinynet.NonFiniteLossError` there. Either way the
    weights are those from before the bad batch (Keras would keep the NaN weights), and the
    epoch's logs are the means over the batches before it."""

    def __init__(self, raise_error=False):
        self.raise_error = bool(raise_error)

    def on_nonfinite_loss(self, batch, message):
        """Called by ``fit`` for batch ``batch`` (counted from 0, as Keras prints it) of this
        epoch, whose loss (or update) was not finite and was undone."""
        if self.raise_error:
            raise RuntimeError(f"NaN or Inf loss encountered at batch {batch} ({message}). "
                               "Terminating training immediately.")
        print(f"Batch {batch}: Invalid loss, terminating training ({message})")
        self.model.stop_training = True


class CSVLogger(Callback):
    """Write one row per epoch to ``filename``: ``epoch`` (from 0, as Keras) then the first
    epoch's keys in sorted order, separated by ``separator``, and, as Keras does, a ``val_``
    column for each when the first epoch has none (validated later, with ``validation_freq``,
    or never: ``NA`` where an epoch has no value). ``append=True`` continues an existing file (the
    header is written only when the file is empty). Each row is flushed to disk when written, so
    the file survives an interrupted run. The file's folder must exist (``fit`` says so before
    training, as Keras fails then too); ``separator`` is one character.
    """

    def __init__(self, filename, separator=",", append=False):
        self.filename = io.as_path(filename, "CSVLogger")
        if not (isinstance(separator, str) and len(separator) == 1):
            raise ValueError(f"CSVLogger: separator must be one character, such as ',' (the "
                             f"default), ';' or '\\t', got {separator!r}")
        self.sep = separator
        self.append = bool(append)
        self.keys = None

    def _check_before_training(self):
        """The file's folder must be there (fit calls this before any callback starts)."""
        try:
            io._require_folder(self.filename, os.path.dirname(os.path.abspath(self.filename)))
        except OSError as e:
            raise type(e)(f"CSVLogger: {e}") from None

    def on_train_begin(self, logs=None):
        self._check_before_training()  # called by fit already: again for a direct call
        self.keys = None
        if not self.append:
            open(self.filename, "w").close()
        self._write_header = not os.path.exists(self.filename) or os.path.getsize(self.filename) == 0

    @staticmethod
    def _value(v):
        if isinstance(v, str):
            return v
        if isinstance(v, (list, tuple, np.ndarray)) and np.ndim(v) > 0:
            return '"[' + ", ".join(str(a) for a in np.ravel(v)) + ']"'
        return v

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            if not any(k.startswith("val_") for k in self.keys):
                self.keys += [f"val_{k}" for k in self.keys]
        with open(self.filename, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["epoch"] + self.keys, delimiter=self.sep,
                                    extrasaction="ignore")
            if self._write_header:
                writer.writeheader()
                self._write_header = False
            row = {"epoch": epoch}
            row.update((k, self._value(logs.get(k, "NA"))) for k in self.keys)
            writer.writerow(row)
            f.flush()


def __getattr__(name):
    from .names import missing
    raise missing("tinynet.callbacks", name, "callback",
                  ["Callback", "History", "EarlyStopping", "ModelCheckpoint", "ReduceLROnPlateau",
                   "LearningRateScheduler", "LambdaCallback", "TerminateOnNaN", "CSVLogger"])
