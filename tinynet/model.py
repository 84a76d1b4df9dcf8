"""Sequential and functional models: the graph, summary(), and compile/fit/evaluate/predict.

A model is a graph of layers, run in topological order. ``forward`` feeds each layer the
outputs of the layers it was called on; ``backward`` walks the same order in reverse, handing each
layer the gradient of the loss with respect to its output. A tensor used by several layers (the
skip connection of a residual block) receives the *sum* of their gradients: that is the chain rule
for a variable with several consumers.
"""
import math
import signal
import threading

import numpy as np
from tqdm.auto import tqdm

from . import backend
from . import losses as losses_mod
from . import optimizers as optimizers_mod
from .callbacks import Callback, History
from .layers.base import InputLayer, Layer, Tensor, fmt_shape, unique_name


class NotCompiledError(RuntimeError, ValueError):
    """``fit``/``evaluate``/``train_on_batch`` before ``compile`` (a RuntimeError as in Keras)."""


class NonFiniteLossError(FloatingPointError):
    """The loss (or a gradient) became NaN or infinite during ``fit``."""


METRICS = ("accuracy", "acc", "categorical_accuracy")


def _topological_order(output):
    """Layers from the inputs to ``output``, each after all the layers it reads from."""
    order, seen = [], set()

    def visit(layer, stack):
        if id(layer) in seen:
            return
        if id(layer) in stack:
            raise ValueError(f"the graph has a cycle through layer '{layer.name}'")
        stack.add(id(layer))
        for t in layer.inbound:
            visit(t.layer, stack)
        stack.discard(id(layer))
        seen.add(id(layer))
        order.append(layer)

    visit(output.layer, set())
    return order


class Model:
    """A functional model: ``Model(inputs, outputs)`` with ``inputs`` from ``layers.Input``."""

    default_name = "functional"

    def __init__(self, inputs=None, outputs=None, name=None):
        self.name = name or unique_name(self.default_name)
        self.optimizer = None
        self.loss = None
        self.metrics = []
        self.stop_training = False
        self.epoch = 0  # epochs trained so far (saved with the model)
        self._order = []
        if inputs is not None or outputs is not None:
            self._set_graph(inputs, outputs)

    # ---- graph -----------------------------------------------------------------------------
    def _set_graph(self, inputs, outputs):
        if isinstance(inputs, (list, tuple)):
            if len(inputs) != 1:
                raise ValueError("tinynet models take exactly one input tensor")
            inputs = inputs[0]
        if isinstance(outputs, (list, tuple)):
            if len(outputs) != 1:
                raise ValueError("tinynet models produce exactly one output tensor")
            outputs = outputs[0]
        if not isinstance(inputs, Tensor) or not isinstance(inputs.layer, InputLayer):
            raise TypeError("Model(inputs, outputs): inputs must come from layers.Input(shape)")
        if not isinstance(outputs, Tensor):
            raise TypeError("Model(inputs, outputs): outputs must be the result of calling layers "
                            "on the input")
        order = _topological_order(outputs)
        found = [layer for layer in order if isinstance(layer, InputLayer)]
        if found != [inputs.layer]:
            raise ValueError("the outputs do not depend on exactly the given input: "
                             f"they start from {[layer.name for layer in found]}")
        self._input, self._output = inputs, outputs
        self._order = order
        self._consumers = {id(layer): 0 for layer in order}
        for layer in order:
            for t in layer.inbound:
                self._consumers[id(t.layer)] += 1
        # A layer's input gradient matters to training only when weights lie upstream of it.
        self._weights_upstream = {}
        for layer in order:
            self._weights_upstream[id(layer)] = any(
                bool(t.layer.params) or self._weights_upstream[id(t.layer)] for t in layer.inbound)

    @property
    def built(self):
        return bool(self._order)

    @property
    def layers(self):
        """The layers in topological order (the input layer first for functional models)."""
        return list(self._order)

    @property
    def input_shape(self):
        return (None,) + self._input.layer.input_shape if self.built else None

    @property
    def output_shape(self):
        return (None,) + tuple(self._output.layer.output_shape) if self.built else None

    @property
    def dtype(self):
        """The float type the model computes in: its weights' (floatx when it was built)."""
        params = self.params if self.built else []
        return params[0].dtype if params else np.dtype(backend.floatx())

    def get_layer(self, name):
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer named {name!r} in model '{self.name}'; layers: "
                         f"{[layer.name for layer in self.layers]}")

    def _require_built(self, what):
        if not self.built:
            raise ValueError(f"model '{self.name}' is not built yet, so {what} is unknown: give "
                             "it an input shape (layers.Input, or build(input_shape)), or call it "
                             "on data first")

    # ---- weights ---------------------------------------------------------------------------
    @property
    def params(self):
        return [p for layer in self.layers for p in layer.params]

    @property
    def grads(self):
        return [g for layer in self.layers for g in layer.grads]

    def count_params(self):
        self._require_built("the number of parameters")
        return sum(layer.count_params() for layer in self.layers)

    def get_weights(self):
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights):
        weights = list(weights)
        expected = sum(len(layer.params) for layer in self.layers)
        if len(weights) != expected:
            raise ValueError(f"model '{self.name}' has {expected} weight arrays, got {len(weights)}")
        i = 0
        for layer in self.layers:
            k = len(layer.params)
            layer.set_weights(weights[i:i + k])
            i += k

    # ---- the two passes --------------------------------------------------------------------
    def forward(self, x, training=False):
        """Run the graph on a batch already checked and on the device; return the output."""
        outputs = {}
        for layer in self._order:
            if isinstance(layer, InputLayer):
                outputs[id(layer)] = layer.forward(x)
                continue
            ins = [outputs[id(t.layer)] for t in layer.inbound]
            outputs[id(layer)] = layer.forward(ins if isinstance(layer.input_shape, list) else ins[0],
                                               training=training)
        return outputs[id(self._output.layer)]

    def backward(self, grad_output, from_logits=False, need_input_grad=True):
        """Back-propagate dL/d(output) (or dL/d(logits) of a softmax output when ``from_logits``);
        fill every layer's ``grads``; return dL/d(input).

        Training needs only the weights' gradients: with ``need_input_grad=False`` the backward
        pass stops where no weight lies upstream (the layers between the input and the first
        weighted layers are skipped, and those layers compute no dL/d(their input)); it returns
        ``None``. The weights' gradients are the same numbers either way.
        """
        pending = {id(self._output.layer): grad_output}
        for layer in reversed(self._order):
            g = pending.pop(id(layer), None)
            if g is None:
                continue
            if isinstance(layer, InputLayer):
                return g if need_input_grad else None
            wanted = need_input_grad or self._weights_upstream[id(layer)]
            if not (wanted or layer.params):
                continue
            if from_logits and layer is self._output.layer:
                dx = layer.backward_from_logits(g, need_input_grad=wanted)
            else:
                dx = layer.backward(g, need_input_grad=wanted)
            if not wanted:
                continue
            for t, d in zip(layer.inbound, dx if isinstance(dx, list) else [dx]):
                key = id(t.layer)
                pending[key] = d if key not in pending else pending[key] + d  # several consumers: sum
        return None

    def __call__(self, x, training=False):
        return self.forward(self._prepare_x(x, "call"), training=training)

    # ---- data checks -----------------------------------------------------------------------
    def _maybe_build(self, x):
        pass

    def _prepare_x(self, x, where):
        """Check ``x`` against the model's input and return it as floatx on the device."""
        if isinstance(x, (list, tuple)):
            x = np.asarray(x)
        if not hasattr(x, "dtype") or not hasattr(x, "shape"):
            raise TypeError(f"{where}: x must be an array, got {type(x).__name__}")
        kind = np.dtype(x.dtype).kind
        if kind not in "biuf":
            raise TypeError(f"{where}: x has dtype {x.dtype}, which cannot be used as numbers; "
                            "give an integer or float array")
        if x.ndim < 1 or x.shape[0] == 0:
            raise ValueError(f"{where}: x is empty (shape {tuple(x.shape)})")
        self._maybe_build(x)
        expected = self._input.layer.input_shape
        got = tuple(x.shape[1:])
        if got != expected:
            hint = ""
            if got + (1,) == expected:
                hint = f"; add the channel axis with x.reshape({(-1,) + expected}) or x[..., None]"
            elif len(got) == 3 and len(expected) == 3 and got == (expected[2],) + expected[:2]:
                hint = "; channels-first? use x.transpose(0, 2, 3, 1) (tinynet is channels-last)"
            elif int(np.prod(got)) == int(np.prod(expected)):
                hint = f"; reshape it with x.reshape({(-1,) + expected})"
            raise ValueError(f"{where}: model '{self.name}' expects input of shape "
                             f"{fmt_shape(expected)}, got {fmt_shape(got)}{hint}")
        x = backend.asarray(x, dtype=self.dtype)
        if not bool(backend.xp().isfinite(x).all()):
            raise ValueError(f"{where}: x contains NaN or infinite values")
        return x

    def _prepare_y(self, y, n, where):
        if isinstance(y, (list, tuple)):
            y = np.asarray(y)
        if not hasattr(y, "dtype") or np.dtype(y.dtype).kind not in "biuf":
            raise TypeError(f"{where}: y must be a numeric array, got "
                            f"{getattr(y, 'dtype', type(y).__name__)}")
        classes = self._output.layer.output_shape
        if y.ndim == 1 and np.dtype(y.dtype).kind in "iu":
            raise ValueError(f"{where}: y holds integer labels of shape {tuple(y.shape)} but "
                             f"categorical_crossentropy needs one-hot labels of shape "
                             f"{fmt_shape(classes)}; use tinynet.utils.to_categorical(y, "
                             f"{classes[-1]})")
        if tuple(y.shape[1:]) != tuple(classes):
            raise ValueError(f"{where}: y has shape {fmt_shape(y.shape[1:])} but the model's output "
                             f"'{self._output.layer.name}' is {fmt_shape(classes)}")
        if y.shape[0] != n:
            raise ValueError(f"{where}: x has {n} examples but y has {y.shape[0]}")
        y_host = backend.to_numpy(y)
        if not np.isfinite(y_host).all() or y_host.min() < 0 or y_host.max() > 1 or \
                not np.allclose(y_host.sum(axis=-1), 1.0, atol=1e-3):
            raise ValueError(f"{where}: y must be one-hot (or probability) rows: values in [0, 1] "
                             "summing to 1 per example")
        return backend.asarray(y, dtype=self.dtype)

    @staticmethod
    def _check_batch_size(batch_size):
        if batch_size is None:
            return 32  # Keras's default
        if not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        return int(batch_size)

    # ---- training --------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss="categorical_crossentropy", metrics=None):
        """Choose the optimizer, the loss and the metrics (only ``"accuracy"``)."""
        self.optimizer = optimizers_mod.get(optimizer)
        self.loss = losses_mod.get(loss)
        if isinstance(metrics, str):
            raise ValueError(f"metrics must be a list, like metrics=[{metrics!r}]")
        metrics = list(metrics or [])
        for m in metrics:
            if m not in METRICS:
                raise ValueError(f"unknown metric {m!r}; valid names: {', '.join(METRICS)}")
        self.metrics = ["accuracy" for _ in metrics[:1]]

    def _require_compiled(self, where):
        if self.loss is None:
            raise NotCompiledError(f"{where}: model '{self.name}' is not compiled; call "
                                   "model.compile(optimizer, loss, metrics) first")

    def _uses_logits(self):
        """Softmax output + categorical cross-entropy on probabilities: train on the logits, as Keras."""
        return (isinstance(self.loss, losses_mod.CategoricalCrossentropy)
                and not self.loss.from_logits and self._output.layer.activation == "softmax")

    def _loss_and_grad(self, y, out):
        """Per-example losses and dL/d(out) (or dL/d(logits) on the softmax shortcut)."""
        if self._uses_logits():
            logits_loss = losses_mod.CategoricalCrossentropy(from_logits=True)
            z = self._output.layer.logits
            return logits_loss.per_example(y, z), logits_loss.gradient(y, z), True
        return self.loss.per_example(y, out), self.loss.gradient(y, out), False

    def _train_step(self, xb, yb):
        """One step on one batch; return (summed loss, correct count) as device scalars.

        The step is undone when the loss or the updated weights are NaN or infinite (NaN and
        inf propagate through sums, so one device-to-host transfer per batch checks them all):
        the weights and the optimizer's state are then those from before this batch.
        """
        out = self.forward(xb, training=True)
        per_example, grad, from_logits = self._loss_and_grad(yb, out)
        loss_sum = per_example.sum()
        self.backward(grad, from_logits=from_logits, need_input_grad=False)
        params = self.params
        saved = self.optimizer.snapshot(params)
        self.optimizer.apply_gradients(zip(self.grads, params))
        check = loss_sum + sum(p.sum() for p in params)
        if not math.isfinite(float(check)):
            self.optimizer.restore(params, saved)
            what = "the loss" if not math.isfinite(float(loss_sum)) else "the updated weights"
            raise NonFiniteLossError(f"{what} is NaN or infinite")
        return loss_sum, self._correct(yb, out)

    @staticmethod
    def _correct(y, out):
        return (out.argmax(axis=-1) == y.argmax(axis=-1)).sum()

    def train_on_batch(self, x, y):
        """One optimizer step on the batch; returns the loss (before the step), or [loss, accuracy]."""
        self._require_compiled("train_on_batch")
        x = self._prepare_x(x, "train_on_batch")
        y = self._prepare_y(y, x.shape[0], "train_on_batch")
        loss_sum, correct = self._train_step(x, y)
        n = x.shape[0]
        loss = float(loss_sum) / n
        return [loss, float(correct) / n] if self.metrics else loss

    def fit(self, x, y, batch_size=32, epochs=1, verbose=1, validation_data=None,
            validation_split=0.0, shuffle=True, callbacks=None, initial_epoch=0, seed=None):
        """Train for ``epochs`` epochs of mini-batches; return a :class:`History`.

        ``validation_split`` holds out the *last* fraction of the data (before shuffling), as
        Keras does. ``seed`` makes each epoch's shuffling and dropout masks a function of
        ``(seed, epoch)``, so that a fit resumed from a checkpoint repeats a straight one. Epochs run from
        ``initial_epoch`` to ``epochs - 1``; ``model.epoch`` counts the epochs done so far.
        """
        self._require_compiled("fit")
        batch_size = self._check_batch_size(batch_size)
        x = self._prepare_x(x, "fit")
        y = self._prepare_y(y, x.shape[0], "fit")
        if validation_data is None and validation_split:
            if not 0.0 < validation_split < 1.0:
                raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
            split = int(x.shape[0] * (1.0 - validation_split))
            if split == 0 or split == x.shape[0]:
                raise ValueError(f"validation_split={validation_split} leaves no training or no "
                                 f"validation example out of {x.shape[0]}")
            validation_data = (x[split:], y[split:])
            x, y = x[:split], y[:split]
        elif validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a pair (x_val, y_val)")
            vx, vy = validation_data
            vx = self._prepare_x(vx, "fit (validation_data)")
            validation_data = (vx, self._prepare_y(vy, vx.shape[0], "fit (validation_data)"))

        history = History()
        cbs = [history] + list(callbacks or [])
        for cb in cbs:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be tinynet.callbacks.Callback objects, got {cb!r}")
            cb.set_model(self)
        # the running loss is read back from the device only when someone looks at it
        batch_hooks = [cb for cb in cbs if type(cb).on_batch_end is not Callback.on_batch_end]
        self.stop_training = False
        start = int(initial_epoch)  # resume with initial_epoch=model.epoch after load_model
        n = x.shape[0]
        steps = -(-n // batch_size)
        with _StopOnInterrupt(self):
            for cb in cbs:
                cb.on_train_begin()
            for epoch in range(start, epochs):
                for cb in cbs:
                    cb.on_epoch_begin(epoch)
                if seed is not None:  # each epoch's shuffle and dropout depend on (seed, epoch) only,
                    backend.set_seed([seed, epoch])  # so a resumed fit repeats a straight one
                order = backend.rng().permutation(n) if shuffle else np.arange(n)
                order = backend.asarray(order)
                loss_total, correct, seen, logs = 0.0, 0, 0, {}
                bar = tqdm(total=steps, desc=f"Epoch {epoch + 1}/{epochs}", unit="batch",
                           disable=verbose == 0, leave=True, dynamic_ncols=True)
                for step in range(steps):
                    idx = order[step * batch_size:(step + 1) * batch_size]
                    xb, yb = x[idx], y[idx]
                    try:
                        loss_sum, ok = self._train_step(xb, yb)
                    except NonFiniteLossError as e:
                        bar.close()
                        raise NonFiniteLossError(
                            f"{e} at epoch {epoch + 1}, batch {step + 1} of {steps}; training "
                            "stopped and the weights are those before this batch (lower the "
                            "learning rate, or check the data for extreme values)") from None
                    loss_total = loss_total + loss_sum  # stays on the device: no transfer
                    correct = correct + ok
                    seen += xb.shape[0]
                    bar.update(1)
                    last = step == steps - 1
                    if last or (verbose == 1 and step % 10 == 0) or batch_hooks:
                        logs = {"loss": float(loss_total) / seen}
                        if self.metrics:
                            logs["accuracy"] = float(correct) / seen
                        bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)
                    for cb in batch_hooks:
                        cb.on_batch_end(step, logs)
                    if self.stop_training:
                        break
                logs = {"loss": float(loss_total) / max(seen, 1)}  # the epoch's mean, however it ended
                if self.metrics:
                    logs["accuracy"] = float(correct) / max(seen, 1)
                if validation_data is not None:
                    val = self._evaluate_arrays(*validation_data, batch_size=max(batch_size, 256))
                    logs["val_loss"] = val[0]
                    if self.metrics:
                        logs["val_accuracy"] = val[1]
                    bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)
                bar.close()
                if verbose == 2:
                    print(f"Epoch {epoch + 1}/{epochs} - " +
                          " - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
                if seen == n:  # an epoch interrupted part-way is not counted as done
                    self.epoch = epoch + 1
                for cb in cbs:
                    cb.on_epoch_end(epoch, logs)
                if self.stop_training:
                    break
            for cb in cbs:
                cb.on_train_end()
        return history

    def _evaluate_arrays(self, x, y, batch_size):
        loss_total, correct = 0.0, 0
        for i in range(0, x.shape[0], batch_size):
            xb, yb = x[i:i + batch_size], y[i:i + batch_size]
            out = self.forward(xb, training=False)
            if self._uses_logits():
                per = losses_mod.CategoricalCrossentropy(from_logits=True).per_example(
                    yb, self._output.layer.logits)
            else:
                per = self.loss.per_example(yb, out)
            loss_total += float(per.sum())
            correct += int(self._correct(yb, out))
        n = x.shape[0]
        return [loss_total / n, correct / n]

    def evaluate(self, x, y, batch_size=32, verbose=0):
        """Mean loss over ``(x, y)`` in inference mode, and the accuracy: ``[loss, accuracy]``."""
        self._require_compiled("evaluate")
        batch_size = self._check_batch_size(batch_size)
        x = self._prepare_x(x, "evaluate")
        y = self._prepare_y(y, x.shape[0], "evaluate")
        loss, acc = self._evaluate_arrays(x, y, batch_size)
        return [loss, acc] if self.metrics else loss

    def predict(self, x, batch_size=32, verbose=0):
        """Outputs for ``x`` in inference mode, as a NumPy array."""
        batch_size = self._check_batch_size(batch_size)
        x = self._prepare_x(x, "predict")
        chunks = [backend.to_numpy(self.forward(x[i:i + batch_size], training=False))
                  for i in tqdm(range(0, x.shape[0], batch_size), disable=verbose == 0,
                                desc="predict", unit="batch")]
        return np.concatenate(chunks)

    # ---- summary and saving ----------------------------------------------------------------
    def summary(self, print_fn=print):
        """Print a Keras-style table of layers, output shapes and parameter counts."""
        self._require_built("the summary")
        from .summary import format_summary
        print_fn(format_summary(self))

    def save(self, path):
        """Write architecture, weights, compile settings, optimizer state and epoch to one file."""
        from .io import save_model
        save_model(self, path)

    def get_config(self):
        return {"name": self.name}


class Sequential(Model):
    """A stack of layers, each fed the previous one's output.

    Give the input shape with ``layers.Input(shape)`` as the first element, or ``input_shape=``,
    or let the model build on the first batch it sees.
    """

    default_name = "sequential"

    def __init__(self, layers=None, name=None, input_shape=None):
        super().__init__(name=name)
        self._stack = []
        self._input_tensor = None
        for layer in layers or []:
            self.add(layer)
        if input_shape is not None and not self.built:
            self.build(input_shape)

    def add(self, layer):
        if isinstance(layer, Tensor) and isinstance(layer.layer, InputLayer):
            if self._stack or self._input_tensor is not None:
                raise ValueError("Input must be the first element of a Sequential model")
            self._input_tensor = layer
            return
        if not isinstance(layer, Layer) or isinstance(layer, InputLayer):
            raise TypeError(f"Sequential.add expects a layer, got {layer!r}")
        if self.built:
            output = layer(self._output)  # connect first: a layer that does not fit is not added
            self._stack.append(layer)
            self._set_graph(self._input, output)
        else:
            self._stack.append(layer)
            if self._input_tensor is not None:
                try:
                    self._connect(self._input_tensor)
                except Exception:
                    self._stack.pop()
                    raise

    def _connect(self, input_tensor):
        """Call the layers in order on ``input_tensor``; on failure leave every layer unconnected."""
        t = input_tensor
        try:
            for layer in self._stack:
                t = layer(t)
        except Exception:
            for layer in self._stack:
                layer.inbound = None
            raise
        self._set_graph(input_tensor, t)

    def build(self, input_shape):
        """Build for inputs of ``input_shape`` (without the batch axis)."""
        if self.built:
            return
        from .layers.base import Input
        if not self._stack:
            raise ValueError(f"Sequential model '{self.name}' has no layers")
        input_tensor = Input(tuple(input_shape))
        self._connect(input_tensor)
        self._input_tensor = input_tensor

    def _maybe_build(self, x):
        if not self.built:
            self.build(tuple(x.shape[1:]))

    @property
    def layers(self):
        """The layers you added (Keras does not list the input layer of a Sequential)."""
        return list(self._stack)


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
