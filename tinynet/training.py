"""The training loop: epochs of mini-batches, one optimizer step each, and the callbacks.

One step on a batch ``(x, y)`` is, in order (:func:`train_step`)::

    out  = model.forward(x, training=True)        # the logits z when the output is a softmax
    L, g = loss and dL/d(out)                     # fused softmax + cross-entropy on the logits
    model.backward(g)                             # fills every layer's grads
    optimizer.apply_gradients(zip(grads, params)) # e.g. RMSprop's equations (1) and (2)

and :func:`fit` runs it over shuffled batches, epoch after epoch, calling the callbacks (as
Keras's trainer does, with ``History`` last so that it records what the others add to the logs),
showing a progress bar, and stopping cleanly on Ctrl-C or on a NaN loss.
"""
import math
import signal
import threading

import numpy as np
from tqdm.auto import tqdm

from . import backend
from .callbacks import Callback, History
from .losses import CategoricalCrossentropy, softmax_cross_entropy


class NonFiniteLossError(FloatingPointError):
    """The loss (or a gradient) became NaN or infinite during ``fit``."""


def trains_on_logits(model):
    """Whether the model's softmax output and probability cross-entropy are trained as the fused
    softmax + cross-entropy on the logits (what Keras does, and what ``fit`` does here)."""
    return (isinstance(model.loss, CategoricalCrossentropy) and not model.loss.from_logits
            and model.graph.output.activation == "softmax")


def loss_and_gradient(model, x, y, training):
    """Forward ``x``; return ``(out, per-example losses (N,), dL/d(out))``. On the logits path
    ``out`` is the logits ``z``, which ranks the classes as the probabilities do."""
    if trains_on_logits(model):
        z = model.graph.forward(x, training=training, logits=True)
        per_example, grad = softmax_cross_entropy(y, z)
        return z, per_example, grad
    out = model.graph.forward(x, training=training)
    return out, model.loss.per_example(y, out), model.loss.gradient(y, out)


def correct(y, out):
    """How many examples are right (the arg-max class), each counting the fraction of its
    positions that are right when the output has more than one position per example."""
    hits = out.argmax(axis=-1) == y.argmax(axis=-1)
    return hits.reshape(hits.shape[0], -1).mean(axis=1).sum()


def train_step(model, xb, yb):
    """One step on one batch; return (summed loss, correct count) as device scalars.

    The step is undone when the loss or the updated weights are NaN or infinite (NaN and inf
    propagate through sums, so one device-to-host transfer per batch checks them all): the
    weights and the optimizer's state are then those from before this batch.
    """
    out, per_example, grad = loss_and_gradient(model, xb, yb, training=True)
    model.graph.backward(grad, need_input_grad=False)
    loss_sum = per_example.sum()
    params = model.params
    saved = model.optimizer.snapshot(params)
    model.optimizer.apply_gradients(zip(model.grads, params))
    check = loss_sum + sum(p.sum() for p in params)
    if not math.isfinite(float(check)):
        model.optimizer.restore(params, saved)
        what = "the loss" if not math.isfinite(float(loss_sum)) else "the updated weights"
        raise NonFiniteLossError(f"{what} is NaN or infinite")
    return loss_sum, correct(yb, out)


def evaluate_arrays(model, x, y, batch_size):
    """``[mean loss, accuracy]`` over checked arrays, in inference mode."""
    loss_total, right = 0.0, 0.0
    for i in range(0, x.shape[0], batch_size):
        xb, yb = x[i:i + batch_size], y[i:i + batch_size]
        out, per_example, _ = loss_and_gradient(model, xb, yb, training=False)
        loss_total += float(per_example.sum())
        right += float(correct(yb, out))
    n = x.shape[0]
    return [loss_total / n, right / n]


def _logs(model, loss_total, right, seen):
    logs = {"loss": float(loss_total) / max(seen, 1)}
    if model.metrics:
        logs["accuracy"] = float(right) / max(seen, 1)
    return logs


def fit(model, x, y, batch_size, epochs, verbose, validation_data, shuffle, callbacks,
        initial_epoch, seed):
    """The loop of ``Model.fit`` on checked arrays; returns the :class:`History`."""
    history = History()
    callbacks = list(callbacks or [])
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks must be tinynet.callbacks.Callback objects, got {cb!r}")
    callbacks.append(history)  # last, as in Keras: it records what the others add to the logs
    for cb in callbacks:
        cb.set_model(model)
    # the running loss is read back from the device only when someone looks at it
    batch_hooks = [cb for cb in callbacks if type(cb).on_batch_end is not Callback.on_batch_end]
    model.stop_training = False
    n = x.shape[0]
    steps = -(-n // batch_size)
    with _StopOnInterrupt(model):
        for cb in callbacks:
            cb.on_train_begin()
        for epoch in range(int(initial_epoch), epochs):
            for cb in callbacks:
                cb.on_epoch_begin(epoch)
            # with a seed, the epoch's shuffle and dropout masks come from a generator of their
            # own, a function of (seed, epoch) only: a resumed fit repeats a straight one, and
            # the global generator is left as it was
            gen = np.random.default_rng([seed, epoch]) if seed is not None else backend.rng()
            bar = tqdm(total=steps, desc=f"Epoch {epoch + 1}/{epochs}", unit="batch",
                       disable=verbose != 1, leave=True, dynamic_ncols=True)
            try:
                with backend.generator(gen):
                    logs, seen = _train_epoch(model, x, y, batch_size, epoch, steps, shuffle, bar,
                                              batch_hooks, verbose)
                if validation_data is not None:
                    val = evaluate_arrays(model, *validation_data, batch_size=max(batch_size, 256))
                    logs["val_loss"] = val[0]
                    if model.metrics:
                        logs["val_accuracy"] = val[1]
                    bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)
            finally:
                bar.close()
            if verbose == 2:  # one line per epoch and no bar, as Keras
                print(f"Epoch {epoch + 1}/{epochs} - " +
                      " - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
            if seen == n:  # an epoch interrupted part-way is not counted as done
                model.epoch += 1
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
        for cb in callbacks:
            cb.on_train_end()
    return history


def _train_epoch(model, x, y, batch_size, epoch, steps, shuffle, bar, batch_hooks, verbose):
    """The batches of one epoch: returns the epoch's logs (running means) and how many examples
    were trained on (fewer than all when training was stopped part-way)."""
    n = x.shape[0]
    order = backend.asarray(backend.rng().permutation(n) if shuffle else np.arange(n))
    loss_total, right, seen, logs = 0.0, 0, 0, {}
    for step in range(steps):
        idx = order[step * batch_size:(step + 1) * batch_size]
        xb, yb = x[idx], y[idx]
        try:
            loss_sum, ok = train_step(model, xb, yb)
        except NonFiniteLossError as e:
            raise NonFiniteLossError(
                f"{e} at epoch {epoch + 1}, batch {step + 1} of {steps}; training stopped and the "
                "weights are those before this batch (lower the learning rate, or check the data "
                "for extreme values)") from None
        loss_total = loss_total + loss_sum  # stays on the device: no transfer
        right = right + ok
        seen += xb.shape[0]
        bar.update(1)
        if step == steps - 1 or (verbose == 1 and step % 10 == 0) or batch_hooks:
            logs = _logs(model, loss_total, right, seen)
            bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)
        for cb in batch_hooks:
            cb.on_batch_end(step, logs)
        if model.stop_training:
            break
    return _logs(model, loss_total, right, seen), seen  # the epoch's mean, however it ended


class _StopOnInterrupt:
    """During ``fit``, Ctrl-C asks training to stop at the end of the current batch."""

    def __init__(self, model):
        self.model = model
        self.previous = None

    def _handler(self, signum, frame):
        print("\nInterrupted: stopping at the end of this batch (Ctrl-C again to abort).")
        self.model.stop_training = True
        signal.signal(signal.SIGINT, self.previous)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False
