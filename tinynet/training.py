"""The training loop: epochs of mini-batches, one optimizer step each, and the callbacks.

One step on a batch ``(x, y)`` is, in order (:func:`train_step`)::

    out  = model.forward(x, training=True)        # the logits z when the output is a softmax
    L, g = loss and dL/d(out)                     # fused softmax + cross-entropy on the logits
    model.backward(g)                             # fills every layer's grads
    optimizer.apply_gradients(zip(grads, params)) # e.g. RMSprop's equations (1) and (2)

where the last line runs once over the model's flat buffers (:mod:`tinynet.arena`), not once per
parameter: the same numbers, in one call.

and :func:`fit` runs it over shuffled batches, epoch after epoch, calling the callbacks (as
Keras's trainer does, with ``History`` last so that it records what the others add to the logs),
showing a progress bar, and stopping cleanly on Ctrl-C or on a NaN loss.
"""
import contextlib
import math
import os
import signal
import sys
import threading
import time
import warnings

import numpy as np

from . import activations, arena, backend, checks, losses, replay, sysinfo, threads
from .callbacks import History, TerminateOnNaN, overriding
from .metrics import errors, hits
from .callbacks import prepare as prepare_callbacks

tqdm = sysinfo.progress_bar()  # the bars of fit, evaluate and predict


class NonFiniteLossError(FloatingPointError):
    """The loss (or a gradient) became NaN or infinite during ``fit``. ``what``: which numbers
    (one of :data:`NOT_FINITE`'s texts)."""

    def __init__(self, message, what=None):
        super().__init__(message)
        self.what = what


# what a step found not finite, by the code the device-side guard records (StaticStep.reason)
LOSS, WEIGHTS, STATE = 1, 2, 3
NOT_FINITE = {LOSS: "the loss is", WEIGHTS: "the updated weights are",
              STATE: "the optimizer's state (its running averages) is"}


def fused_loss(model):
    """The fused activation + loss that trains the model on its logits, or ``None``.

    A model whose last layer applies a softmax (a sigmoid), compiled with a cross-entropy (a
    binary cross-entropy) on probabilities, is trained on the fused loss of its logits ``z``, as
    Keras does: the same loss, computed stably without the clipping, and with the famous gradient
    ``dL/dz = (p - y) / M`` instead of a Jacobian product, ``M`` the number of the loss's terms
    (the N rows of an (N, K) softmax, the N·K units of sigmoids; see :mod:`tinynet.losses`).
    With ``from_logits=True`` too: the outputs are then probabilities, not the logits the loss
    asks for, and Keras on TensorFlow (as tinynet, which warns) takes the softmax's logits
    instead of applying a second softmax to the probabilities.
    """
    loss = model.loss
    activation = losses.fused_activation(loss)
    if activation is None or activation != model.graph.output.activation_name:
        return None
    return loss.logits_loss


def on_logits(model):
    """Whether the outputs the loop sees are logits (``from_logits=True``, or the fused path)."""
    return bool(getattr(model.loss, "from_logits", False)) or fused_loss(model) is not None


def loss_and_gradient(model, x, y, training, weights=None, gradient=True):
    """Forward ``x``; return ``(out, per-example losses (N,), dL/d(out))`` of the batch-mean loss,
    each example's loss multiplied by its weight when ``weights`` (N,) are given (Keras's
    ``sample_weight``: the mean is still over the N examples). On the fused softmax path ``out``
    is the logits ``z``, which rank the classes as the probabilities do."""
    fused = fused_loss(model)
    if fused is not None:
        out = model.graph.forward(x, training=training, logits=True, keep=gradient)
        per_example, grad = fused(y, out)
    else:
        out = model.graph.forward(x, training=training, keep=gradient)
        per_example = model.loss.per_example(y, out)
        if getattr(per_example, "shape", None) != (out.shape[0],):
            raise ValueError(f"{type(model.loss).__name__}.per_example returned shape "
                             f"{getattr(per_example, 'shape', type(per_example).__name__)} for "
                             f"a batch of {out.shape[0]}: a loss gives one value per example, "
                             "shape (N,) (average over the other axes: .mean(axis=-1))")
        grad = model.loss.gradient(y, out) if gradient else None
    if weights is not None:
        per_example = per_example * weights
        if grad is not None:
            grad = grad * weights.reshape((-1,) + (1,) * (grad.ndim - 1))
    return out, per_example, grad


def metric_sums(model, y, out):
    """``{metric name: summed hits}`` of the compiled accuracies on one batch. Not weighted by
    ``sample_weight`` or ``class_weight``, which weight the loss only: Keras weights the metrics
    given as ``compile(metrics=...)`` neither (only its ``weighted_metrics``, not in tinynet)."""
    logits, sums, outputs = on_logits(model), {}, None
    for name in model.metrics:
        kind = model.metric_kinds.get(name)
        if kind in ("mae", "mse"):  # of the model's outputs: probabilities on the fused path
            if outputs is None:  # (once a batch, for every error metric)
                outputs = out if fused_loss(model) is None else \
                    activations.forward(model.graph.output.activation_name, out)
            sums[name] = errors(y, outputs, kind).sum()
            continue
        binary = kind == "binary_accuracy"
        if binary and logits and getattr(model.loss, "fuses_with", None) == "softmax":
            # "logit > 0" is "probability > 0.5" for a sigmoid only: a softmax's units are
            # thresholded on its probabilities
            sums[name] = hits(y, activations.softmax(out), False, binary=True).sum()
        else:
            sums[name] = hits(y, out, logits, binary=binary).sum()
    return sums


def train_step(model, xb, yb, weights=None):
    """One step on one batch; return (summed loss, {metric: summed hits}) on the device.

    The step is undone when the loss, the updated weights or the optimizer's updated state are NaN
    or infinite (:func:`_all_finite`): the weights and the state are then those from before this
    batch. The weights of frozen layers (``layer.trainable = False``) get no update: the step goes
    parameter by parameter then, with no gradient for them, and back-propagation stops before a
    frozen base (:meth:`tinynet.graph.Graph.backward`).
    """
    out, per_example, grad = loss_and_gradient(model, xb, yb, training=True, weights=weights)
    frozen = model._frozen()
    model.graph.backward(grad, need_input_grad=False,
                         frozen=model._frozen_layers(frozen) if any(frozen) else ())
    loss_sum = per_example.sum()
    optimizer = model.optimizer
    grads = model._gradients(frozen)  # model.grads
    _warn_of_missing_gradients(model, grads, frozen)
    arena.of(model)  # rebuilt first where weights were replaced: new arrays at the same places
    optimizer._take_places(model.params)  # fit's list: model.params (another list stepped by
    # hand before would have left its state at other weights' places: refused)
    flat_arena = None if any(frozen) else arena.for_step(model, grads)
    flats = optimizer.flat_states(flat_arena) if flat_arena is not None else None
    if flats is not None:  # one update and one check per flat buffer (tinynet.arena)
        saved = optimizer.snapshot_flat(flat_arena, flats, fill=False)
        # apply_flat fills saved as it updates, and returns the arrays no kernel has found finite
        unchecked = optimizer.apply_flat(flat_arena, flats, undo=saved)
        params = [group.weights for group in flat_arena.groups]
        state = [flat[n] for flat in flats for n in flat]
    else:  # the same step, parameter by parameter
        params = model.params
        saved = optimizer.snapshot(params)
        optimizer.apply_gradients(zip(model.grads, params))  # (a frozen weight's grad is None)
        state = optimizer.state_arrays()
        unchecked = None
    if unchecked is None:  # (also an apply_flat of one's own that returns nothing)
        unchecked = params + state
    if not _all_finite(loss_sum, unchecked):
        if not math.isfinite(float(loss_sum)):
            what = NOT_FINITE[LOSS]
        elif not _all_finite(0.0, params):  # before they are restored
            what = NOT_FINITE[WEIGHTS]
        else:
            what = NOT_FINITE[STATE]
        if flats is not None:
            optimizer.restore_flat(flat_arena, flats, saved)
        else:
            optimizer.restore(params, saved)
        raise NonFiniteLossError(f"{what} NaN or infinite", what)
    return loss_sum, metric_sums(model, yb, out)


class StaticStep:
    """One training step on buffers that stay in place, reading nothing back to the host.

    :func:`tinynet.training.train_step` with its NaN guard moved to the device. ``x`` and ``y``
    take the batch; ``loss`` and ``hits`` sum the loss and each metric's hits over the steps
    (the steps since :meth:`reset`); ``failed`` is set by the first step whose loss, updated
    weights or updated state are not finite: that step is undone, and so is every later one
    (their weights are put back too), until the loop reads ``failed`` and stops. On NumPy it runs
    as it reads (the tests check it against ``train_step``); on a GPU it is what gets recorded
    (:mod:`tinynet.replay`).

    A step that cannot run on the fixed buffers (:meth:`fixed`: an optimizer's first step, which
    makes its state; frozen weights; weights outside the flat buffers) is ``train_step`` itself,
    its sums and its verdict then written into the same device numbers.
    """

    def __init__(self, model, x, y, batch_size):
        self.model = model
        self.xp = xp = backend.get_array_module(x)
        self.x = xp.empty((batch_size,) + tuple(x.shape[1:]), dtype=x.dtype)
        self.y = xp.empty((batch_size,) + tuple(y.shape[1:]), dtype=y.dtype)
        self.failed = xp.zeros((), dtype=bool)
        self.failed_at = xp.zeros((), dtype=np.int64)  # the step (since reset) that failed
        self.reason = xp.zeros((), dtype=np.int64)     # what was not finite: LOSS, WEIGHTS, STATE
        self.steps = xp.zeros((), dtype=np.int64)
        self.loss = self.hits = None  # made by the first step, of the loss's and hits' types

    def reset(self):
        """Zero the sums and the step count (a new epoch)."""
        for a in [self.steps, self.failed, self.failed_at, self.reason, self.loss,
                  *(self.hits or {}).values()]:
            if a is not None:
                a.fill(0)

    def fixed(self):
        """Whether the next step can run on the fixed buffers: the optimizer has taken a step
        already (its first makes its state: a snapshot taken before it would miss the state, and
        an undone first step removes it, see ``Optimizer.restore_flat``), no weight is frozen,
        and the weights, gradients and state lie in flat buffers (:mod:`tinynet.arena`)."""
        model, optimizer = self.model, self.model.optimizer
        if optimizer.iterations == 0 or any(model._frozen()):
            return False
        arena.of(model)  # rebuilt first where weights were replaced (as in train_step)
        optimizer._take_places(model.params)  # (refuses another model's state, as train_step)
        flat_arena = arena.for_step(model)
        return flat_arena is not None and optimizer.flat_states(flat_arena) is not None

    def run(self):
        """One step on ``x`` and ``y``; returns nothing (the sums are updated in place)."""
        if not self.fixed():
            self._run_train_step()
            return
        model, xp = self.model, self.xp
        out, per_example, grad = loss_and_gradient(model, self.x, self.y, training=True)
        model.graph.backward(grad, need_input_grad=False)
        loss_sum = per_example.sum()
        optimizer = model.optimizer
        flat_arena = arena.for_step(model)  # (every gradient in the flat buffer: see fixed())
        if flat_arena is None:
            raise RuntimeError(f"model '{model.name}': a layer left its weights' gradient out of "
                               "this step's backward pass, after the step before wrote it")
        flats = optimizer.flat_states(flat_arena)
        weights = [group.weights for group in flat_arena.groups]
        state = [flat[n] for flat in flats for n in flat]
        saved = optimizer._kept_copies(weights + state, fill=False)
        going = ~self.failed
        for copy, a in zip(saved, weights + state):  # the snapshot, unless a step failed already
            xp.copyto(copy, a, where=going)
        optimizer.apply_flat(flat_arena, flats)
        loss_ok = xp.isfinite(loss_sum)
        weights_ok = xp.isfinite(_total(weights))  # NaN and infinity survive a sum
        ok = loss_ok & weights_ok
        if state:  # (plain SGD keeps none)
            ok = ok & xp.isfinite(_total(state))
        first = ~ok & going
        xp.copyto(self.failed_at, self.steps, where=first)
        xp.copyto(self.reason, xp.where(loss_ok, xp.where(weights_ok, STATE, WEIGHTS), LOSS),
                  where=first)
        self.failed |= ~ok
        for a, copy in zip(weights + state, saved):  # undone: this step, and any after a failure
            xp.copyto(a, copy, where=self.failed)
        self._add(loss_sum, metric_sums(model, self.y, out))
        self.steps += 1

    def _run_train_step(self):
        """``train_step`` on ``x`` and ``y`` (reading back: not for a CUDA graph), its sums and
        its verdict kept as :meth:`run` keeps them."""
        if not bool(self.failed):  # (after a failure every step is undone: none is taken)
            try:
                self._add(*train_step(self.model, self.x, self.y))
            except NonFiniteLossError as e:  # the step is undone already
                self.failed_at.fill(int(self.steps))
                self.reason.fill({text: code for code, text in NOT_FINITE.items()}[e.what])
                self.failed.fill(True)
        self.steps += 1

    def _add(self, loss_sum, hits):
        """Add a step's loss and hits to the sums (nothing once a step has failed)."""
        xp = self.xp
        if self.loss is None:
            self.loss = xp.zeros_like(loss_sum)
            self.hits = {name: xp.zeros_like(h) for name, h in hits.items()}
        self.loss += xp.where(self.failed, 0, loss_sum)
        for name, h in hits.items():
            self.hits[name] += xp.where(self.failed, 0, h)

    def failure(self):
        """``None``, or ``(step since reset, what was not finite)`` of the first failed step (a
        read from the device: it waits for the steps queued before)."""
        if not bool(self.failed):
            return None
        return int(self.failed_at), NOT_FINITE[int(self.reason)]


def _total(arrays):
    """The sum of every number of ``arrays`` (a sum each, added; no ``0 +``: one launch fewer)."""
    total = arrays[0].sum()
    for a in arrays[1:]:
        total = total + a.sum()
    return total


def _all_finite(loss_sum, arrays):
    """Whether the loss and every number in ``arrays`` are finite: the backend's ``all_finite``
    kernel (a compiled pass over the bits on numba); on a GPU, one sum of everything instead,
    read back in one transfer (NaN and infinity propagate through a sum; a sum that overflows
    counts as not finite too)."""
    check = backend.fused("all_finite", arrays[0]) if arrays else None
    if check is None:
        return math.isfinite(float(loss_sum + _total(arrays) if arrays else loss_sum))
    return math.isfinite(float(loss_sum)) and check(arrays)


def _warn_of_missing_gradients(model, grads, frozen):
    """Warn (as Keras does) when back-propagation left a weight of a trained layer without its
    gradient (``grads``: ``model.grads``): a layer of one's own whose ``_backward`` does not write
    ``self.grads``. Its weight would not train (the optimizer skips a ``None`` gradient), and
    nothing else would say so."""
    if all(g is not None for g in grads):
        return
    holders = [h for layer in model.layers for h in layer.param_holders()]
    missing = dict.fromkeys(f"'{holder.name}' (grads[{i}])" for (holder, i), g, f
                            in zip(holders, grads, frozen) if g is None and not f)
    if missing:
        warnings.warn(f"no gradient for the weights of layer {', '.join(missing)} after the "
                      "backward pass: they do not train. A layer's _backward writes the gradient "
                      "of each of its weights into self.grads (see Dense); tinynet.gradcheck "
                      "checks them", stacklevel=checks._user_stacklevel())


def evaluate_arrays(model, x, y, batch_size, weights=None, verbose=0, callbacks=()):
    """``{"loss": mean loss, metric: value, ...}`` over checked arrays, in inference mode, the loss
    weighted as in ``fit``. ``verbose``: 1 a progress bar ending with the values, 2 one line, 0
    silent. ``callbacks`` (ready, see :func:`callbacks.prepare`) get the ``on_test_*`` hooks."""
    verbose = shown(verbose)
    batch_begin = overriding(callbacks, "on_test_batch_begin")
    batch_end = overriding(callbacks, "on_test_batch_end")
    for cb in callbacks:
        cb.on_test_begin({})
    loss_total, right = 0.0, {name: 0.0 for name in model.metrics}
    started, steps = time.perf_counter(), -(-x.shape[0] // batch_size)
    bar = tqdm(total=steps, desc="evaluate", unit="batch",
               disable=verbose != 1, leave=True, dynamic_ncols=True)
    adapt = backend.get_backend() == "numba"  # as fit: the cores other processes leave free
    try:
        for i in range(0, x.shape[0], batch_size):
            if adapt:
                threads.adapt_to_load()
            for cb in batch_begin:
                cb.on_test_batch_begin(i // batch_size, logs={})
            xb, yb = x[i:i + batch_size], y[i:i + batch_size]
            wb = None if weights is None else weights[i:i + batch_size]
            out, per_example, _ = loss_and_gradient(model, xb, yb, training=False, weights=wb,
                                                    gradient=False)
            loss_total += float(per_example.sum())
            for name, h in metric_sums(model, yb, out).items():
                right[name] += float(h)
            bar.update(1)
            if batch_end:
                running = make_logs(model, loss_total, right, i + xb.shape[0])
                for cb in batch_end:
                    cb.on_test_batch_end(i // batch_size, logs=running)
        logs = make_logs(model, loss_total, right, x.shape[0])
        bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)
    finally:
        bar.close()
        if adapt:
            threads.after_fit()  # the thread count the user had (in fit: decided again soon)
    if verbose == 2:  # one line and no bar, as Keras
        print(progress_line(steps, time.perf_counter() - started, logs))
    for cb in callbacks:
        cb.on_test_end(logs)
    return logs


def shown(verbose):
    """``verbose``, or 2 for a progress bar (1) that could not redraw itself in place (the bar
    goes to stderr: a file or a pipe there would get every frame of it). tinynet's choice: Keras
    writes its frames into a file all the same."""
    if verbose == 1 and not (_isatty(sys.stderr) or "ipykernel" in sys.modules
                             or os.environ.get("PYCHARM_HOSTED")):  # PyCharm's console redraws
        return 2
    return verbose


def _isatty(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress_line(steps, seconds, logs):
    """Keras 3's line for ``verbose=2``: ``469/469 - 3s - 6ms/step - accuracy: ... - loss: ...``
    (the time a step in s, ms or us, whichever is at least 1; a value up to 1e-3 as ``1.2340e-04``)."""
    per = seconds / max(steps, 1)
    step = (f"{per:.0f}s" if per >= 1 or per == 0 else
            f"{per * 1e3:.0f}ms" if per >= 1e-3 else f"{per * 1e6:.0f}us")
    values = "".join(f" - {k}: {v:.4f}" if v > 1e-3 else f" - {k}: {v:.4e}"
                     for k, v in logs.items())
    return f"{steps}/{steps} - {seconds:.0f}s - {step}/step{values}"


def make_logs(model, loss_total, right, seen):
    """The loss and each metric (the mean of its hits), each a mean over the ``seen`` examples,
    under the names the user gave, in Keras 3's order (by name: ``accuracy`` before ``loss``)."""
    logs = {"loss": float(loss_total) / seen if seen else math.nan}  # NaN: no example yet
    for name in model.metrics:
        logs[name] = float(right.get(name, 0.0)) / seen if seen else math.nan
    return dict(sorted(logs.items()))


def fit(model, x, y, batch_size, epochs, verbose, validation_data, shuffle, callbacks,
        initial_epoch, seed, weights=None, validation=(1, None)):
    """The loop of ``Model.fit`` on checked arrays; returns the :class:`History`. ``validation``:
    ``(validation_freq, validation batch size or None)``; ``None``: the batch size, at least 256
    (fewer, larger batches: the numbers depend on it only through float rounding)."""
    validation_freq, validation_batch = validation
    validation_batch = validation_batch or max(batch_size, 256)
    history = History()
    n = x.shape[0]
    steps = -(-n // batch_size)
    params = {"verbose": verbose, "epochs": epochs, "steps": steps}  # what Keras gives callbacks
    # History last, as in Keras: it records what the others add to the logs
    callbacks = prepare_callbacks(callbacks, model, "fit", params) + \
        prepare_callbacks([history], model, "fit", params)
    model.stop_training = False
    verbose = shown(verbose)
    # on a GPU, every full batch's step is one CUDA graph launch (tinynet.replay)
    graph_step = replay.GraphStep(model, StaticStep(model, x, y, batch_size)) \
        if n >= batch_size and replay.unusable(model, weights) is None else None
    if model.params and all(model._frozen()):
        warnings.warn(f"model '{model.name}' has no trainable weights (every layer with weights is "
                      "frozen, or the model itself: trainable = False): fit will not change it",
                      stacklevel=checks._user_stacklevel())
    for cb in callbacks:  # what a callback refuses, before any of them starts
        getattr(cb, "_check_before_training", lambda: None)()
    model.epoch = max(model.epoch, initial_epoch)  # epochs before initial_epoch count as done
    try:
        with _StopOnInterrupt(model) as interrupt:
            for cb in callbacks:
                cb.on_train_begin({})
            logs = {}  # what on_train_end gets when no epoch runs, as Keras
            for epoch in range(initial_epoch, epochs):
                for cb in callbacks:
                    cb.on_epoch_begin(epoch, {})
                if verbose == 2 and epochs > 1:  # Keras 3's first line (no epoch named for one)
                    print(f"Epoch {epoch + 1}/{epochs}")
                # with a seed, the epoch's shuffle and dropout masks come from a generator of their
                # own, a function of (seed, epoch) only: a resumed fit repeats a straight one, and
                # the global generator is left as it was
                gen = np.random.default_rng([seed, epoch]) if seed is not None else backend.rng()
                started = time.perf_counter()
                bar = tqdm(total=steps, desc=f"Epoch {epoch + 1}/{epochs}", unit="batch",
                           disable=verbose != 1, leave=True, dynamic_ncols=True)
                try:
                    stream = contextlib.nullcontext() if graph_step is None else graph_step.stream
                    with backend.generator(gen), stream:
                        try:
                            epoch_logs, seen = _train_epoch(model, x, y, weights, batch_size, epoch,
                                                            steps, shuffle, bar, callbacks, verbose,
                                                            graph_step)
                        finally:  # (also when a callback raises: no replay left running)
                            if graph_step is not None:
                                graph_step.end_epoch()
                    if interrupt.fired and seen < n:  # Ctrl-C part-way: the epoch did not happen
                        bar.close()  # (the message goes on a line of its own, after the bar)
                        print(f"Epoch {epoch + 1} interrupted after {seen} of {n} examples: it is "
                              "not counted (no validation, no callbacks' end of epoch, so no "
                              "checkpoint of it); the weights are those after the last batch "
                              "trained, unless a callback puts others back as training ends "
                              "(EarlyStopping(restore_best_weights=True))")
                        break
                    logs = epoch_logs
                    if validation_data is not None and (
                            epoch + 1 in validation_freq if isinstance(validation_freq, tuple)
                            else (epoch + 1) % validation_freq == 0):  # Keras's epochs, from 1
                        vx, vy, vw = validation_data
                        val = evaluate_arrays(model, vx, vy, validation_batch, vw,
                                              callbacks=callbacks)
                        logs.update({f"val_{k}": v for k, v in val.items()})
                    for cb in callbacks:
                        cb.on_epoch_end(epoch, logs)
                    # the epoch's line shows what the callbacks added too (learning_rate), as Keras's
                    bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)
                finally:
                    bar.close()
                if verbose == 2:  # no bar: the second line, after the callbacks, as Keras 3's
                    print(progress_line(steps, time.perf_counter() - started, logs))
                if model.stop_training:
                    break
            for cb in callbacks:
                cb.on_train_end(logs)  # the last epoch's logs, as in Keras
    finally:
        threads.after_fit()  # the thread count the user had
        if graph_step is not None:
            graph_step.close()
    return history


def _epoch_order(n, batch_size, shuffle):
    """The order of the ``n`` examples in an epoch: shuffled (``True``), as given (``False``),
    or Keras's ``"batch"``: the batches of ``shuffle=False``, each in a shuffled order."""
    if shuffle == "batch":
        rng = backend.rng()
        return np.concatenate([start + rng.permutation(min(batch_size, n - start))
                               for start in range(0, n, batch_size)] or [np.arange(0)])
    return backend.rng().permutation(n) if shuffle else np.arange(n)


def _train_epoch(model, x, y, weights, batch_size, epoch, steps, shuffle, bar, callbacks,
                 verbose, graph_step=None):
    """The batches of one epoch: returns the epoch's logs (running means) and how many examples
    were trained on (fewer than all when training was stopped part-way). ``graph_step``: the
    :class:`tinynet.replay.GraphStep` that trains the full batches, or ``None``."""
    # the running loss is read back from the device only when someone looks at it
    batch_begin = overriding(callbacks, "on_train_batch_begin", "on_batch_begin")
    batch_hooks = overriding(callbacks, "on_train_batch_end", "on_batch_end")
    n = x.shape[0]
    order = backend.asarray(_epoch_order(n, batch_size, shuffle))
    loss_total, right, seen, logs = 0.0, {}, 0, {}
    adapt = backend.get_backend() == "numba"  # the numpy backend, the reference, never does
    if graph_step is not None:
        graph_step.begin_epoch()
        iterations = model.optimizer.iterations
    for step in range(steps):
        if adapt:
            threads.adapt_to_load()  # as many threads as the cores other processes leave free
        idx = order[step * batch_size:(step + 1) * batch_size]
        replayed = graph_step is not None and idx.shape[0] == batch_size
        for cb in batch_begin:
            cb.on_train_batch_begin(step, logs={})
        if replayed:
            graph_step.step(x, y, idx)  # the NaN guard's verdict is read below, with the loss
        else:
            if graph_step is not None and graph_step.static.failure() is not None:
                break  # (a replayed step failed: reported below, before an eager step runs)
            xb, yb = x[idx], y[idx]
            wb = None if weights is None else weights[idx]
            try:
                loss_sum, ok = train_step(model, xb, yb, wb)
            except NonFiniteLossError as e:
                _stop_on_nonfinite(callbacks, str(e), epoch, step, steps)
                break
            loss_total = loss_total + loss_sum  # stays on the device: no transfer
            right = {name: right.get(name, 0) + h for name, h in ok.items()}  # on the device
        reading = step == steps - 1 or (verbose == 1 and step % 10 == 0) or batch_hooks
        if replayed and reading and graph_step.static.failure() is not None:
            break
        seen += idx.shape[0]
        if seen == n:  # every batch trained: the epoch is done (a checkpoint saved by the last
            # batch's hook says so); one more epoch, and at least this one's number, from 1,
            # so that fit(initial_epoch=k) after load_weights counts on from k
            model.epoch = max(model.epoch + 1, epoch + 1)
        bar.update(1)
        if reading:
            logs = make_logs(model, *_with_replayed(loss_total, right, graph_step), seen)
            bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)
        for cb in batch_hooks:
            cb.on_train_batch_end(step, logs=logs)
        if model.stop_training:
            break
    failure = graph_step.static.failure() if graph_step is not None else None
    if failure is not None:  # a replayed step was not finite: it, and those after, were undone
        failed_at, what = failure
        seen = failed_at * batch_size
        model.optimizer.iterations = iterations + failed_at
        _stop_on_nonfinite(callbacks, f"{what} NaN or infinite", epoch, failed_at, steps)
    # the epoch's mean, however it ended
    return make_logs(model, *_with_replayed(loss_total, right, graph_step), seen), seen


def _with_replayed(loss_total, right, graph_step):
    """The sums of the eager steps plus those the replayed steps kept on the device."""
    if graph_step is None or graph_step.static.loss is None:
        return loss_total, right
    static = graph_step.static
    return loss_total + static.loss, {name: right.get(name, 0) + h
                                      for name, h in static.hits.items()}


def _stop_on_nonfinite(callbacks, what, epoch, step, steps):
    """A step's loss, weights or state were not finite (the step is undone): raise
    :class:`NonFiniteLossError`, or, with :class:`TerminateOnNaN`, let it stop training."""
    terminate = [cb for cb in callbacks if isinstance(cb, TerminateOnNaN)]
    if not terminate:
        raise NonFiniteLossError(
            f"{what} at epoch {epoch + 1}, batch {step + 1} of {steps}; training stopped and "
            "the weights are those before this batch (lower the learning rate, or check "
            "the data for extreme values)") from None
    for cb in terminate:  # stop without an error (or raise Keras's RuntimeError)
        cb.on_nonfinite_loss(step, f"{what}; the weights are those before this batch")


class _StopOnInterrupt:
    """During ``fit``, Ctrl-C asks training to stop at the end of the current batch."""

    def __init__(self, model):
        self.model = model
        self.previous = None
        self.fired = False

    def _handler(self, signum, frame):
        print("\nInterrupted: stopping at the end of this batch (Ctrl-C again to abort).")
        self.fired = True
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
