"""Sequential and functional models: the Keras-shaped front over the graph and the training loop.

A :class:`Model` ties three small pieces together, each in its own module:

* the graph (:mod:`tinynet.graph`): the layers in order, ``forward`` and ``backward``;
* the training loop (:mod:`tinynet.training`): ``fit``'s epochs, batches, steps and callbacks;
* the checks of what the user passes (:mod:`tinynet.checks`).

What is left here is Keras's API: ``compile``, ``fit``, ``evaluate``, ``predict``,
``train_on_batch``, the weights, ``summary`` and ``save``.
"""
import copy
import time
import warnings
import weakref

import numpy as np

from . import arena, backend, checks, io, threads, training
from . import callbacks as callbacks_mod
from . import losses as losses_mod
from . import metrics as metrics_mod
from . import optimizers as optimizers_mod
from .graph import Graph
from .layers.base import Input, InputLayer, Layer, Tensor
from .names import reserve, unique_name, unknown_argument
from .shapes import fmt_shape
from .layers.nested import NestedModel


class NotCompiledError(RuntimeError, ValueError):
    """``fit``/``evaluate``/``train_on_batch`` before ``compile`` (a RuntimeError as in Keras)."""


METRICS = metrics_mod.ACCURACY_NAMES  # the accuracy under Keras's names

_CONFIG = ("tinynet saves a model's architecture with its weights in one file, model.save(path) "
           "and tinynet.load_model(path); model.summary() prints the architecture, and "
           "tinynet.interop.to_keras(model) gives the same model in Keras, which has {}")
SUBCLASSED = """{name}: subclassed models (a Model subclass with its own call() method) are not \
implemented in tinynet. Build the same model from layers with the functional API:
    inputs = keras.Input((784,))
    x = keras.layers.Dense(32, activation="relu")(inputs)
    outputs = keras.layers.Dense(10)(x)
    model = keras.Model(inputs, outputs)
or, for a stack of layers, keras.Sequential([keras.Input((784,)), keras.layers.Dense(32, \
activation="relu"), keras.layers.Dense(10)])"""
# Keras's model attributes that tinynet does not implement, and what it has instead
NOT_IMPLEMENTED = {
    "get_config": _CONFIG.format("get_config()"),
    "to_json": _CONFIG.format("to_json()"),
    "get_build_config": _CONFIG.format("get_build_config()"),
    "compute_output_shape": "model.output_shape is the output's shape (None for the batch axis); "
                            "model.predict(x).shape for a batch",
    "get_output_at": "it is a Keras 2 method (Keras 3 has it no more); model.output is the "
                     "output tensor (a tinynet model has one)",
    "get_input_at": "it is a Keras 2 method (Keras 3 has it no more); model.input is the input "
                    "tensor (a tinynet model has one)",
    "export": "tinynet saves a model with model.save('name.keras') (tinynet's own format); for "
              "Keras or TensorFlow Serving, convert it first with tinynet.interop.to_keras(model)",
    "metrics_names": "Keras 3's is ['loss', 'compile_metrics'] after compile, not one name per "
                     "value evaluate() returns: evaluate(x, y, return_dict=True) gives the values "
                     "by name, and model.metrics lists the compiled metrics' names",
}


class Model:
    """A functional model: ``Model(inputs, outputs)`` with ``inputs`` from ``layers.Input``."""

    default_name = "functional"

    def __new__(cls, *args, **kwargs):
        # Keras's subclassed models, whose forward pass is their own call() method, are refused
        # as they are made: tinynet's models are graphs of layers (a subclass without a call()
        # that passes inputs and outputs to Model.__init__ is one)
        if hasattr(cls, "call"):
            raise TypeError(SUBCLASSED.format(name=cls.__name__))
        return super().__new__(cls)

    def __init__(self, inputs=None, outputs=None, name=None):
        if name is not None and name != "":
            reserve(name, type(self).__name__)
        self.name = name or unique_name(self.default_name)
        self.optimizer = None
        self.loss = None
        self.metrics = []        # the names the accuracies are logged under
        self.metric_kinds = {}   # name -> "accuracy" (arg-max class) or "binary_accuracy"
        self.stop_training = False
        self.epoch = 0  # the last epoch completed, from 1, over every fit (saved with the model)
        self.history = None  # the History of the last fit, as in Keras
        self.graph = None
        self._arena = None  # the flat buffers of its weights, once it is built (tinynet.arena)
        self._warned_unscaled = False
        self._warned_regression_accuracy = False
        self._keys = {}  # "input"/"output": the key of Keras's Model({key: input}, {key: output})
        if inputs is not None or outputs is not None:
            self._set_graph(inputs, outputs)

    def _set_graph(self, inputs, outputs):
        # Keras's dicts, {name: tensor}: a model of one input and one output takes one of each,
        # and its key then names it in fit's and compile's dicts (model.output_names)
        self._keys = {}
        for what, given in (("input", inputs), ("output", outputs)):
            if isinstance(given, dict) and len(given) == 1:
                self._keys[what] = next(iter(given))
        if isinstance(inputs, dict):
            inputs = list(inputs.values())
        if isinstance(outputs, dict):
            outputs = list(outputs.values())
        if isinstance(inputs, (list, tuple)):
            if len(inputs) != 1:
                raise ValueError(f"tinynet models take exactly one input tensor, got "
                                 f"{len(inputs)}: Keras's models with several inputs are not "
                                 "implemented in tinynet; give the model one Input")
            inputs = inputs[0]
        if isinstance(outputs, (list, tuple)):
            if len(outputs) != 1:
                raise ValueError(f"tinynet models produce exactly one output tensor, got "
                                 f"{len(outputs)}: Keras's models with several outputs are not "
                                 "implemented in tinynet. To read every layer's output (feature "
                                 "extraction), run model.forward(x, record=outputs): the dict "
                                 "outputs receives each layer's output by name; or make one "
                                 "Model(model.input, layer.output) per layer")
            outputs = outputs[0]
        self.graph = Graph(inputs, outputs)
        # the weights become views of one flat buffer now, so that a reference to layer.kernel
        # taken from here on follows training (as a reference to a Keras variable does)
        arena.as_built(self)
        if getattr(self, "optimizer", None) is not None:  # its layers changed (add, pop)
            self.optimizer._forget_places()

    # ---- structure -------------------------------------------------------------------------
    @property
    def built(self):
        return self.graph is not None

    @property
    def layers(self):
        """The layers in topological order (the input layer first for functional models)."""
        return list(self.graph.order) if self.built else []

    @property
    def input(self):
        """The symbolic input tensor, as Keras's ``model.input``."""
        return self.inputs[0] if self.built else None

    @property
    def output(self):
        """The symbolic output tensor, as Keras's ``model.output``."""
        return self.outputs[0] if self.built else None

    @property
    def output_names(self):
        """The output layer's name, in a list, as Keras's ``model.output_names``."""
        return [self.graph.output.name] if self.built else []

    def _output_key(self):
        """What names the output in ``{name: y}`` (``fit``, ``evaluate``) and ``{name: loss}``
        (``compile``): the key of ``Model(inputs, {key: output})``, else the layer's name."""
        return self._keys.get("output", self.graph.output.name) if self.built else None

    @property
    def inputs(self):
        """The symbolic input tensors (one), as Keras's ``model.inputs``."""
        return [self.graph.input.output] if self.built else None

    @property
    def outputs(self):
        """The symbolic output tensors (one), as Keras's ``model.outputs``."""
        return [self.graph.output.output] if self.built else None

    @property
    def input_shape(self):
        return (None,) + self.graph.input.input_shape if self.built else None

    @property
    def output_shape(self):
        return (None,) + tuple(self.graph.output.output_shape) if self.built else None

    @property
    def dtype(self):
        """The float type the model computes in: its weights' (floatx when it was built; for a
        model without weights, the floatx its layers were built in)."""
        params = self.params if self.built else []
        if params:
            return params[0].dtype
        built_in = getattr(self.graph.output, "dtype", None) if self.built else None
        return np.dtype(built_in or backend.floatx())

    def get_layer(self, name=None, index=None):
        """The layer called ``name``, or at position ``index`` of ``model.layers``, as Keras (a
        model used as a layer answers with that model's attributes, ``.layers``, ``.get_layer``,
        ``.predict``, and its ``.output`` is its output in this model's graph)."""
        if (name is None) == (index is None):
            raise ValueError("get_layer takes a layer's name or its index, one of the two")
        if index is not None:
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"model '{self.name}' has {len(self.layers)} layers, no index "
                                 f"{index}")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer named {name!r} in model '{self.name}'; layers: "
                         f"{[layer.name for layer in self.layers]}")

    def _require_built(self, what, consequence=None):
        """Refuse an unbuilt model: ``{what} is unknown`` (or ``consequence``), and how to
        build it."""
        if not self.built:
            how = ("give it an input shape (layers.Input first, input_shape= on its first layer, "
                   "or model.build((None, ...))), or call it on data first"
                   if hasattr(self, "build") else
                   "a functional model is made from its tensors, Model(inputs, outputs), with "
                   "inputs = layers.Input(shape) and outputs the layers called on them")
            raise ValueError(f"model '{self.name}' is not built yet, so "
                             f"{consequence or f'{what} is unknown'}: {how}")

    # ---- weights ---------------------------------------------------------------------------
    @property
    def trainable(self):
        """Keras's ``model.trainable``: setting it sets every layer's :attr:`Layer.trainable`
        (``model.trainable = False`` freezes them all, ``True`` unfreezes them all: freeze some
        again after it); read, it is the value set last (``True`` at first)."""
        return getattr(self, "_trainable", True)

    @trainable.setter
    def trainable(self, value):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"model '{self.name}': trainable must be True or False, got {value!r}")
        self._trainable = bool(value)
        for layer in self.layers:
            layer.trainable = bool(value)

    @property
    def params(self):
        return [p for layer in self.layers for p in layer.params]

    @property
    def grads(self):
        """dL/d(each weight) of the last ``backward``, in the order of ``params``: the model's own
        gradient arrays, which the next ``backward`` writes over (as PyTorch's ``.grad``, not as
        TensorFlow's new tensors): copy them to keep them, ``[g.copy() for g in model.grads]``,
        for instance to add up the gradients of several batches. A frozen weight's is ``None``
        (training computes none: :attr:`Layer.trainable`), so that a loop of one's own,
        ``apply_gradients(zip(model.grads, model.params))``, leaves it as ``fit`` does."""
        return self._gradients(self._frozen())

    def _gradients(self, frozen):
        """:attr:`grads`, the frozen arrays given (``frozen``: :meth:`_frozen`; the training step
        has them already)."""
        grads = [g for layer in self.layers for g in layer.grads]
        return [None if f else g for g, f in zip(grads, frozen)] if any(frozen) else grads

    # Keras's names for the weight arrays themselves, layer after layer (see Layer.weights)
    weights = Layer.weights

    @property
    def trainable_weights(self):
        """The weights that training updates, layer after layer: those of unfrozen layers, none
        when the model itself is frozen (Keras's rule)."""
        return [w for w, frozen in zip(self.params, self._frozen()) if not frozen]

    @property
    def non_trainable_weights(self):
        """The weights that training leaves, layer after layer (see :attr:`Layer.trainable`)."""
        return [w for w, frozen in zip(self.params, self._frozen()) if frozen]

    trainable_variables = trainable_weights  # Keras 3's other names for the same lists
    non_trainable_variables = non_trainable_weights

    def _frozen_layers(self, frozen):
        """Ids of the layers all of whose weights are frozen (``frozen``: :meth:`_frozen`)."""
        ids, k = set(), 0
        for layer in self.layers:
            n = len(layer.params)
            if n and all(frozen[k:k + n]):
                ids.add(id(layer))
            k += n
        return ids

    def _frozen(self):
        """For each array of ``params``: whether training leaves it, as in Keras: all of them when
        the model is frozen, else those whose own layer is (a layer inside a model used as a
        layer answers for itself)."""
        if not self.trainable:
            return [True] * len(self.params)
        return [not holder.trainable for layer in self.layers if layer.params
                for holder, _ in layer.param_holders()]

    def __deepcopy__(self, memo):
        """``copy.deepcopy(model)``: every attribute copied, then the copy's own arena built, so
        that its weights are views of its own flat buffer from the start (the copied arena's
        views would be views of the copied buffer, not of the copy's weights)."""
        twin = object.__new__(type(self))
        memo[id(self)] = twin
        twin.__dict__.update(copy.deepcopy(self.__dict__, memo))
        arena.of(twin)
        return twin

    def __setstate__(self, state):
        """Unpickled (``pickle.loads``): the attributes, then the model's own arena, as for a
        deep copy (see :meth:`__deepcopy__`)."""
        self.__dict__.update(state)
        arena.of(self)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """Keras's ``Model.from_config``: not implemented (see :data:`NOT_IMPLEMENTED`)."""
        raise NotImplementedError(f"{cls.__name__}.from_config: Keras's from_config is not "
                                  f"implemented in tinynet; {_CONFIG.format('from_config()')}")

    def __getattr__(self, name):
        # Python calls this only for a name the model does not have: Keras's names that tinynet
        # does not implement get an answer that says what to use instead
        if name in NOT_IMPLEMENTED:
            raise AttributeError(f"{type(self).__name__}.{name}: Keras's {name} is not implemented "
                                 f"in tinynet; {NOT_IMPLEMENTED[name]}")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def count_params(self):
        self._require_built("the number of parameters")
        return sum(layer.count_params() for layer in self.layers)

    def get_weights(self):
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights):
        weights = list(weights)
        expected = sum(len(layer.params) for layer in self.layers)
        if len(weights) != expected and not self.built:
            self._require_built("its weights", f"its layers have no weights yet, and the "
                                f"{len(weights)} array(s) given cannot be set")
        if len(weights) != expected:
            raise ValueError(f"model '{self.name}' has {expected} weight arrays, got {len(weights)}")
        i = 0
        for layer in self.layers:
            k = len(layer.params)
            layer.set_weights(weights[i:i + k])
            i += k

    # ---- the two passes --------------------------------------------------------------------
    def forward(self, x, training=False, until=None, record=None):
        """The output for a batch ``x`` (checked and cast like ``predict``'s), on the device; with
        ``until="layer name"``, that layer's output instead (what the layer makes of ``x``); a dict
        given as ``record`` receives every layer's output, by name."""
        prepared = self._prepare_x(x, "forward")
        out = self.graph.forward(prepared, training=training, until=until, record=record)
        return backend.apart_from(out, x)  # never a view of the caller's x

    def backward(self, grad_output, need_input_grad=True, record=None):
        """Back-propagate dL/d(output) of the last ``forward``; fill every layer's ``grads``;
        return dL/d(input); a dict given as ``record`` receives dL/d(output) of every layer, by
        name (see :meth:`tinynet.graph.Graph.backward`)."""
        return self.graph.backward(grad_output, need_input_grad=need_input_grad, record=record)

    def __call__(self, x, training=False):
        """On data: the output (as ``forward``). On a symbolic tensor: the model used as one layer
        of another model (``Sequential([model, layers.Softmax()])``)."""
        if isinstance(x, Tensor):
            return NestedModel(self)(x)
        return self._keyed(backend.eager(self.forward(x, training=training)))

    # ---- checks ----------------------------------------------------------------------------
    def _maybe_build(self, x):
        pass

    def _check_loss_against_output(self):
        """The mistakes of a loss that does not fit the last layer (checks.py), once the model
        is both compiled and built: at ``compile``, or when a compiled model builds on its data."""
        if self.built and self.loss is not None:
            checks.warn_if_softmax_over_one_value(self)
            checks.warn_if_probabilities_without_softmax(self)
            checks.warn_if_logits_loss_after_activation(self)
        self._loss_checked = (self.graph, self.loss)  # what the warnings were about

    def _one_input(self, x, where="fit"):
        """``x``, or the array of Keras's ``[x]`` or ``{input name: x}`` for this one-input model
        (a model not built yet takes a one-element list of an array of two or more axes for it)."""
        if self.built:
            name = self._keys.get("input", self.graph.input.name)
            return checks.one_input(x, self.graph.input.input_shape, name, where)
        if isinstance(x, dict):
            return checks.one_input(x, None, None, where)  # refused: no name to compare with
        if isinstance(x, (list, tuple)) and len(x) == 1 and getattr(x[0], "ndim", 0) >= 2:
            return x[0]
        return x

    def _prepare_x(self, x, where):
        x = self._one_input(x, where)
        x = checks.as_numeric_array(x, "x", where)
        self._maybe_build(x)
        self._require_built("its input shape")
        return checks.inputs(x, self.graph.input.input_shape, self.dtype, self.name, where)

    def _prepare_y(self, y, n, where):
        kind = type(self.loss).name if self.loss is not None else None
        output_shape = self.graph.output.output_shape
        y = checks.one_target(y, n, self._output_key(), where)
        y = checks.targets(y, n, output_shape, self.graph.output.name, self.dtype, where,
                           loss_name=kind)
        for metric in ("binary_accuracy", "mae", "mse"):
            if metric in self.metric_kinds.values():
                checks.unit_labels(y, output_shape, where, metric)
        if not self._warned_regression_accuracy:
            self._warned_regression_accuracy = checks.warn_if_accuracy_of_a_regression(self, y)
        return y

    def _prepare(self, x, y, where):
        if getattr(self, "_loss_checked", None) != (self.graph, self.loss):
            self._check_loss_against_output()  # layers added or popped since compile
        x = checks.as_numeric_array(self._one_input(x, where), "x", where)  # own dtype: warning
        if not self._warned_unscaled:  # (evaluate: a trained model is asked to predict)
            self._warned_unscaled = checks.warn_if_unscaled(
                self, x, predicting=where in ("evaluate", "test_on_batch"),
                validation="validation_data" in where)
        x = self._prepare_x(x, where)
        return x, self._prepare_y(y, x.shape[0], where)

    # ---- training --------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss="categorical_crossentropy", metrics=None,
                **keras_options):
        """Choose the optimizer, the loss and the metrics (Keras's names of the accuracy)."""
        for key, value in keras_options.items():
            if key in ("weighted_metrics", "loss_weights") and value is None:
                continue  # Keras's default: none
            if key not in ("run_eagerly", "jit_compile", "steps_per_execution",
                           "auto_scale_loss") or \
                    value not in (None, False, True, 1, "auto"):
                raise unknown_argument("compile", key, "compile takes optimizer, loss, metrics")
        optimizer = optimizers_mod.get(optimizer)
        self._check_optimizer_is_free(optimizer)
        loss = losses_mod.get(self._for_the_output(loss, "loss"))
        metrics = self._for_the_output(metrics, "metrics")
        if isinstance(metrics, str):
            raise ValueError(f"metrics must be a list, like metrics=[{metrics!r}]")
        names, kinds = [], {}
        for m in metrics or []:
            kind = m if isinstance(m, str) else getattr(type(m), "default_name", None)
            name = m if isinstance(m, str) else getattr(m, "name", None)
            if isinstance(m, type):  # a metric class: its object with its defaults, as Keras
                kind = name = metrics_mod.METRIC_ALIASES.get(m.__name__, m.__name__)
            elif kind is None and hasattr(m, "__name__") and callable(m) and \
                    (getattr(m, "__module__", None) or "").split(".")[0] in ("tinynet", "keras",
                                                                            "tensorflow"):
                kind = name = m.__name__  # Keras's metric functions, by name
            elif kind is None and not isinstance(m, str):  # another library's metric object
                kind = type(m).__name__
                if metrics_mod.METRIC_ALIASES.get(kind) in METRICS:  # its settings unread
                    raise ValueError(f"metric {m!r} is Keras's own object, whose settings "
                                     "(threshold, ...) tinynet would not read: give its name, "
                                     f"{metrics_mod.METRIC_ALIASES[kind]!r}, or tinynet's "
                                     f"tinynet.metrics.{kind}()")
            kind = metrics_mod.METRIC_ALIASES.get(kind, kind)
            if kind not in METRICS and kind not in metrics_mod.ERROR_NAMES:
                what = ("is a Keras metric that tinynet does not implement"
                        if kind in metrics_mod.KERAS_ONLY else "is unknown")
                raise ValueError(f"metric {m!r} {what}; tinynet computes the accuracy, under "
                                 f"Keras's names: {', '.join(METRICS)}, and a regression's "
                                 f"errors: {', '.join(metrics_mod.ERROR_NAMES)} (or as the "
                                 "classes of tinynet.metrics)")
            base, k = name, 0
            while name in kinds:  # a name given twice is logged twice, as Keras: name_1, ...
                k += 1
                name = f"{base}_{k}"
            names.append(name)
            kinds[name] = self._metric_kind(kind)
        # every argument checked: the model takes them all (a compile that fails changes nothing)
        self.optimizer, self.loss, self.metrics, self.metric_kinds = optimizer, loss, names, kinds
        optimizer._model = weakref.ref(self)  # the optimizer is this model's now
        self._check_loss_against_output()
        arena.of(self)  # rebuilt if layers or weight arrays were replaced since the model was built

    def _for_the_output(self, value, what):
        """``value``, or what Keras's per-output forms give the model's one output: ``{output
        name: value}``, or a list of one loss (``[loss]``) or of one list of metrics."""
        if isinstance(value, dict) and not {"class", "class_name", "config"} & set(value):
            # (a loss's configuration is a dict too: tinynet's get_config, Keras's serialised form)
            value = checks.one_named(value, what, self._output_key(), "output", "compile",
                                     "loss" if what == "loss" else "list of metrics")
            if what == "metrics" and not isinstance(value, (list, tuple)):
                return [value]  # one metric (a name or an object): a list of it, as Keras
            return value
        if isinstance(value, (list, tuple)) and len(value) == 1 and (
                what == "loss" or isinstance(value[0], (list, tuple))):
            return value[0]
        return value

    def _check_optimizer_is_free(self, optimizer):
        """An optimizer's state (running averages, step count) belongs to the weights of the model
        it trained: refused for another model while that one still uses it, or while it holds
        that state (Keras refuses such an optimizer too). This model's own optimizer (also the
        copy a deep copy of the model holds), a fresh one, and one that has stepped on this
        model's weights by hand (``apply_gradients(zip(model.grads, model.params))``) are fine."""
        if optimizer is self.optimizer:
            return
        kind = type(optimizer).__name__
        fresh = f"give each model its own optimizer: compile(optimizer=optimizers.{kind}(...)) " \
                f"or a name such as '{kind.lower()}'"
        owner = optimizer._model() if getattr(optimizer, "_model", None) is not None else None
        if owner is not None and owner is not self and owner.optimizer is optimizer:
            raise ValueError(f"compile: this {kind} already trains model '{owner.name}', and its "
                             f"state (running averages, step count) belongs to that model's "
                             f"weights; {fresh}")
        if (optimizer.iterations or optimizer._slots) and \
                not (owner is None and optimizer._holds_places_of(self.params)):
            mine = [ref() for ref in optimizer._places if ref is not None and ref() is not None]
            ids = {id(p) for p in self.params}
            if owner is None and mine and all(id(p) in ids for p in mine):
                raise ValueError(f"compile: this {kind} stepped on this model's weights, but "
                                 "given in another list than model.params (model.trainable_"
                                 "weights with a layer frozen?); it keeps each weight's state by "
                                 "its place in the list, and fit gives it model.params: step by "
                                 "hand with zip(grads, model.params), None as the gradient of a "
                                 f"frozen weight, or {fresh}")
            raise ValueError(f"compile: this {kind} holds the state of another model's training "
                             f"({optimizer.iterations} step{'s' * (optimizer.iterations != 1)}: "
                             "running averages of other weights); "
                             f"{fresh}")

    def _metric_kind(self, kind):
        """What a metric computes: ``"mae"`` or ``"mse"`` for a regression's errors, else the
        accuracy as Keras 3 reads "accuracy": from the output's shape alone, whatever the loss:
        the binary accuracy for one output unit (:func:`metrics.hits` sees it at each batch),
        else the arg-max class (Keras 2 read a binary cross-entropy on several units as their
        binary accuracy; ask for ``"binary_accuracy"`` for that)."""
        if kind in metrics_mod.ERROR_NAMES:
            return metrics_mod.ERROR_NAMES[kind]
        return "binary_accuracy" if kind == "binary_accuracy" else "accuracy"

    def _require_compiled(self, where):
        if self.loss is None:
            raise NotCompiledError(f"{where}: model '{self.name}' is not compiled; call "
                                   "model.compile(optimizer, loss, metrics) first")

    def _result(self, logs, return_dict=False):
        """What Keras returns: the loss, or ``[loss, *metrics]``, or the dict of them."""
        if return_dict:
            return dict(logs)
        return [logs["loss"]] + [logs[m] for m in self.metrics] if self.metrics else logs["loss"]

    def train_on_batch(self, x, y, sample_weight=None, class_weight=None, return_dict=False,
                       reset_metrics=True):
        """One optimizer step on the batch; returns the loss (before the step), or [loss, accuracy]
        of this batch alone (Keras's ``reset_metrics=True``)."""
        if not reset_metrics:
            raise TypeError("train_on_batch: reset_metrics=False (metrics accumulated over calls) "
                            "is not implemented in tinynet; each call returns the values of its "
                            "batch alone")
        self._require_compiled("train_on_batch")
        x, y = self._prepare(x, y, "train_on_batch")
        w = self._weights(sample_weight, class_weight, y, "train_on_batch")
        try:
            loss_sum, right = training.train_step(self, x, y, w)
        except training.NonFiniteLossError as e:
            raise training.NonFiniteLossError(
                f"train_on_batch: {e}; the step is undone (the weights and the optimizer's state "
                "are those before this batch): lower the learning rate, or check the data for "
                "extreme values") from None
        n = x.shape[0]
        logs = training.make_logs(self, loss_sum, right, n)
        return self._result(logs, return_dict)

    def test_on_batch(self, x, y, sample_weight=None, return_dict=False):
        """The loss (and accuracy) on one batch, in inference mode, without a step."""
        x = self._one_input(x, "test_on_batch")
        return self._evaluate(x, y, max(len(x), 1), 0, sample_weight, None, None, return_dict,
                              "test_on_batch")

    def _weights(self, sample_weight, class_weight, y, where):
        w = checks.sample_weights(sample_weight, class_weight, backend.to_numpy(y), y.shape[0],
                                  where, self.graph.output.output_shape if self.built else None,
                                  self.graph.output.name if self.built else None,
                                  type(self.loss).name if self.loss is not None else None)
        return None if w is None else backend.asarray(w, dtype=self.dtype)

    def fit(self, x, y=None, batch_size=32, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, seed=None, validation_freq=1,
            validation_batch_size=None, **keras_options):
        """Train for ``epochs`` epochs of mini-batches; return a :class:`History`.

        ``validation_split`` holds out the *last* fraction of the data (before shuffling), as
        Keras does. ``seed`` draws each epoch's shuffling and dropout masks from a generator of
        their own, a function of ``(seed, epoch)``, so that a fit resumed from a checkpoint
        repeats a straight one. Epochs run from ``initial_epoch`` to ``epochs - 1``;
        ``model.epoch`` is the last epoch completed, counted from 1 over every fit: each epoch
        done adds one, and an epoch run from ``initial_epoch=k`` brings it to at least ``k + 1``
        (so a checkpoint resumes with ``initial_epoch=model.epoch``). Ctrl-C stops at the end of
        the current batch; that epoch is not counted and the callbacks do not see its end.
        ``shuffle``: ``True``, ``False``, or ``"batch"`` (Keras's: the batches of ``False``,
        each in a shuffled order). ``verbose``: 0 silent,
        1 (or ``"auto"``) a progress bar, 2 two lines per epoch (Keras 3's: the epoch, then steps,
        time and values). ``class_weight`` (a dict from class to weight) and ``sample_weight``
        (one weight per example) weight each example's loss; the accuracy stays the plain
        fraction of right answers, as Keras's ``metrics`` do. ``validation_freq``: validate
        after every ``k``-th epoch (an int), or after the epochs listed (counted from 1), as Keras;
        ``validation_batch_size``: the batch size of the validation (by default ``batch_size``,
        at least 256: the numbers depend on it only through float rounding).
        """
        for key, value in keras_options.items():  # Keras arguments for data pipelines
            if key in FIT_ADVICE and value is None:
                continue  # Keras's default: all the data
            if key in KERAS_2_FIT:
                raise TypeError(f"fit: {key}= is Keras 2's argument for data generators (Keras 3 "
                                "has it no more); tinynet's fit takes arrays: leave it out")
            if key not in FIT_ADVICE:
                raise TypeError(f"fit() got an unexpected keyword argument {key!r}; "
                                f"{FIT_ADVICE[None]}")
            raise unknown_argument("fit", key, FIT_ADVICE[key])
        self._require_compiled("fit")
        batch_size = checks.batch_size(batch_size)
        if validation_batch_size is not None:
            validation_batch_size = checks.batch_size(validation_batch_size,
                                                      "validation_batch_size")
        validation_freq = checks.validation_freq(validation_freq)
        epochs, initial_epoch = checks.epochs(epochs, initial_epoch)
        verbose = checks.verbose(verbose, "fit")
        seed = backend.check_seed(seed, "fit")
        callbacks = callbacks_mod.check(callbacks, "fit")
        if isinstance(shuffle, str) and shuffle != "batch":
            raise ValueError(f"fit: shuffle={shuffle!r}; give True, False or 'batch' (Keras's: "
                             "the batches of shuffle=False, each in a shuffled order)")
        x, y = self._prepare(x, y, "fit")
        if sample_weight is not None:
            sample_weight = checks.sample_weights(sample_weight, None, None, x.shape[0], "fit")
        x, y, sample_weight, val = checks.validation(x, y, sample_weight, validation_data,
                                                     validation_split, self._prepare)
        w = self._weights(sample_weight, class_weight, y, "fit")  # class weights: training only
        if val is not None:
            val = (val[0], val[1], self._weights(val[2], None, val[1], "fit (validation_data)"))
        self.history = training.fit(self, x, y, batch_size, epochs, verbose, val, shuffle,
                                    callbacks, initial_epoch, seed, weights=w,
                                    validation=(validation_freq, validation_batch_size))
        return self.history

    def evaluate(self, x, y=None, batch_size=32, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        """Mean loss over ``(x, y)`` in inference mode and the metrics: ``[loss, accuracy]`` (or
        the loss alone without metrics, or a dict with ``return_dict=True``), as Keras returns.
        ``verbose``: 1 (``"auto"``, as in Keras) a progress bar that ends with the values, 2 one
        line with them, 0 nothing. ``steps``: only the first ``steps`` batches. ``callbacks`` get
        the ``on_test_*`` hooks (see :mod:`tinynet.callbacks`)."""
        return self._evaluate(x, y, batch_size, verbose, sample_weight, steps, callbacks,
                              return_dict, "evaluate")

    def _evaluate(self, x, y, batch_size, verbose, sample_weight, steps, callbacks, return_dict,
                  where):
        """:meth:`evaluate`, its messages starting with ``where`` (``test_on_batch`` too)."""
        self._require_compiled(where)
        batch_size = checks.batch_size(batch_size)
        verbose = checks.verbose(verbose, where)
        callbacks = callbacks_mod.check(callbacks, where)
        x, y = self._prepare(x, y, where)
        w = self._weights(sample_weight, None, y, where)
        keep = checks.steps(steps, batch_size, x.shape[0], where)
        x, y, w = x[:keep], y[:keep], None if w is None else w[:keep]
        callbacks = callbacks_mod.prepare(callbacks, self, where, {
            "verbose": verbose, "epochs": 1, "steps": -(-x.shape[0] // batch_size)})
        return self._result(training.evaluate_arrays(self, x, y, batch_size, w, verbose,
                                                     callbacks), return_dict)

    def predict_on_batch(self, x):
        """Outputs for one batch ``x``, in inference mode, as a NumPy array."""
        x = self._one_input(x, "predict_on_batch")
        return self._predict(x, max(len(x), 1), 0, None, None, "predict_on_batch")

    def predict(self, x, batch_size=32, verbose=0, steps=None, callbacks=None):
        """Outputs for ``x`` in inference mode, as a NumPy array. ``steps``: only the first
        ``steps`` batches. ``callbacks`` get the ``on_predict_*`` hooks (see
        :mod:`tinynet.callbacks`)."""
        return self._predict(x, batch_size, verbose, steps, callbacks, "predict")

    def _predict(self, x, batch_size, verbose, steps, callbacks, where):
        """:meth:`predict`, its errors prefixed with ``where`` (``predict_on_batch`` too)."""
        batch_size = checks.batch_size(batch_size)
        verbose = checks.verbose(verbose, where)
        callbacks = callbacks_mod.check(callbacks, where)
        if not self._warned_unscaled:
            x = checks.as_numeric_array(self._one_input(x, where), "x", where)
            self._warned_unscaled = checks.warn_if_unscaled(self, x, predicting=True)
        x = self._prepare_x(x, where)
        x = x[:checks.steps(steps, batch_size, x.shape[0], where)]
        callbacks = callbacks_mod.prepare(callbacks, self, "predict", {
            "verbose": verbose, "epochs": 1, "steps": -(-x.shape[0] // batch_size)})
        begin = callbacks_mod.overriding(callbacks, "on_predict_batch_begin")
        end = callbacks_mod.overriding(callbacks, "on_predict_batch_end")
        for cb in callbacks:
            cb.on_predict_begin({})
        chunks, started = [], time.perf_counter()
        # on a GPU the outputs stay there until the end (one copy back, not one per batch, which
        # waits for the batch: the host could not queue the next ones), unless a callback reads
        # each batch's outputs (as NumPy arrays)
        per_batch = bool(end) or backend.get_backend() != "cupy"
        verbose = training.shown(verbose)
        adapt = backend.get_backend() == "numba"  # as fit: the cores other processes leave free
        try:
            for i in training.tqdm(range(0, x.shape[0], batch_size), disable=verbose != 1,
                                   desc="predict", unit="batch"):
                if adapt:
                    threads.adapt_to_load()
                for cb in begin:
                    cb.on_predict_batch_begin(i // batch_size, logs={})
                out = self.graph.forward(x[i:i + batch_size], training=False, keep=False)
                chunks.append(backend.to_numpy(out) if per_batch else out)
                for cb in end:
                    cb.on_predict_batch_end(i // batch_size, logs={"outputs": chunks[-1]})
        finally:
            if adapt:
                threads.after_fit()  # the thread count the user had
        out = (np.concatenate(chunks) if per_batch  # (here a GPU has finished the batches)
               else backend.to_numpy(backend.xp().concatenate(chunks)))
        if verbose == 2:  # one line, as Keras's
            print(training.progress_line(len(chunks), time.perf_counter() - started, {}))
        for cb in callbacks:
            cb.on_predict_end({})
        return self._keyed(out)

    def _keyed(self, out):
        """The output as Keras gives it: ``{key: out}`` for ``Model(..., {key: output})``."""
        return {self._keys["output"]: out} if "output" in self._keys else out

    # ---- summary and saving ----------------------------------------------------------------
    def summary(self, line_length=None, positions=None, print_fn=print, expand_nested=False,
                show_trainable=False, layer_range=None):
        """Print a Keras-style table of layers, output shapes and parameter counts (for a
        ``Sequential`` not built yet, its layers with ``?`` and ``0 (unbuilt)``, as Keras 3).

        Keras's layout arguments ``line_length`` and ``positions`` are accepted and the table keeps
        its own widths; ``show_trainable=True`` adds Keras's *Trainable* column (Y, N for a
        frozen layer, - for one without weights). ``expand_nested`` and ``layer_range`` are not
        implemented."""
        if not callable(print_fn):
            raise TypeError(f"summary: print_fn must be a function that takes the table's text, "
                            f"such as print (the default) or a logger's info, got {print_fn!r}")
        if expand_nested or layer_range is not None:
            raise TypeError("summary: expand_nested and layer_range are not implemented in "
                            "tinynet; a model used as a layer lists its layers in its own "
                            "summary()")
        from .summary import format_summary, format_unbuilt_summary
        if not self.built and self.layers:  # a Sequential given no input shape yet, as Keras 3
            print_fn(format_unbuilt_summary(self))
            return
        self._require_built("the summary")
        print_fn(format_summary(self, show_trainable=bool(show_trainable)))

    def save(self, path, overwrite=True, zipped=None, **kwargs):
        """Write architecture, weights, compile settings, optimizer state and epoch to one file.

        The name ends in ``.keras``, ``.h5`` or ``.npz``: a name without one of them is refused,
        as Keras 3 refuses one without ``.keras`` or ``.h5``. Whatever its name, the file is
        tinynet's own format (an ``.npz`` archive): ``tinynet.load_model`` reads it, Keras does
        not. For a Keras file, convert the model first: ``tinynet.interop.to_keras(model)``
        (architecture and weights) has Keras's ``save``. Keras's arguments ``overwrite`` and
        ``include_optimizer`` work as in Keras (see :func:`tinynet.io.save_model`)."""
        io.save_model(self, path, overwrite=overwrite, zipped=zipped, **kwargs)

    def save_weights(self, path, overwrite=True, max_shard_size=None):
        """Write the weights (Keras order) to one ``.npz`` file, atomically, with the optimizer's
        state as Keras 3 does (``load_weights`` puts it back when the model's optimizer has taken
        a step; the whole model, to resume training: ``save``)."""
        io.save_weights(self.get_weights(), path, overwrite=overwrite,
                        max_shard_size=max_shard_size, optimizer_state=io.optimizer_state(self))

    def load_weights(self, path, skip_mismatch=False, **kwargs):
        """Read weights written by ``save_weights``, or those of a file written by ``save``, as
        Keras 3 reads a ``.keras`` file's, into this model (same architecture); with
        ``skip_mismatch=True`` a layer whose shapes differ keeps its weights, with a warning (see
        :func:`tinynet.io.load_weights_into`). As Keras 3, the optimizer's state in the file is
        put back when this model's optimizer has taken a step and is of the same kind (a model
        rolled back to a checkpoint then trains on as if never past it); else a warning says
        why it was not."""
        io.load_weights_into(self, path, skip_mismatch=skip_mismatch, classes=_model_classes(),
                             **kwargs)


# what fit says of Keras's arguments for data pipelines that it does not take
FIT_ADVICE = {
    None: ("fit takes x, y (arrays), batch_size, epochs, verbose, callbacks, validation_split, "
           "validation_data, shuffle, class_weight, sample_weight, initial_epoch, seed, "
           "validation_freq, validation_batch_size"),
    "steps_per_epoch": ("each epoch trains on every batch of x. Keras, given arrays, goes on "
                        "through the data from one epoch to the next: with shuffle=False its "
                        "epochs=E, steps_per_epoch=S train the batches of "
                        "x[:E * S * batch_size] as one epoch would (while they fit in x; past "
                        "its end, Keras warns that it ran out of data and starts again)"),
    "validation_steps": ("the validation runs on all of validation_data (for fewer steps, slice "
                         "it)"),
}
KERAS_2_FIT = ("max_queue_size", "workers", "use_multiprocessing")


class Sequential(Model):
    """A stack of layers, each fed the previous one's output.

    Give the input shape with ``layers.Input(shape)`` as the first element, or ``input_shape=``,
    or let the model build on the first batch it sees.
    """

    default_name = "sequential"

    def __init__(self, layers=None, name=None, input_shape=None):
        if layers is not None and (isinstance(layers, (Layer, Tensor, Model, str, dict))
                                   or not hasattr(layers, "__iter__")):
            kind = (f"a single {type(layers).__name__} layer" if isinstance(layers, Layer) else
                    "a single tensor" if isinstance(layers, Tensor) else
                    f"a single model, '{layers.name}'" if isinstance(layers, Model) else
                    f"{layers!r} ({type(layers).__name__})")
            raise TypeError(f"Sequential takes a list of layers, got {kind}; give a list, even "
                            "of one layer: Sequential([layers.Input((784,)), "
                            "layers.Dense(10)]), or add them one by one with model.add(layer)")
        super().__init__(name=name)
        self._stack = []
        self._input_tensor = None
        for layer in layers or []:
            self.add(layer)
        if input_shape is not None and not self.built:
            self.build((None,) + tuple(input_shape))

    def add(self, layer):
        if isinstance(layer, InputLayer):
            layer = layer.output
        if isinstance(layer, Tensor) and isinstance(layer.layer, InputLayer):
            if self._stack or self._input_tensor is not None:
                raise ValueError("Input must be the first element of a Sequential model")
            self._input_tensor = layer
            return
        if isinstance(layer, Model):
            layer = NestedModel(layer)
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a layer, got {layer!r}")
        shape = getattr(layer, "requested_input_shape", None)
        if shape is not None and not self._stack and self._input_tensor is None:
            self._input_tensor = Input(shape)  # Keras 2's Dense(..., input_shape=(784,)) first
        elif shape is not None and not isinstance(layer, NestedModel):  # (a model's own shape)
            self._check_later_input_shape(layer, shape)
        if self.built:
            output = layer(self.graph.output.output)
            self._stack.append(layer)  # connected first: a layer that does not fit is not added
            self._set_graph(self._input_tensor, output)
        else:
            self._stack.append(layer)
            if self._input_tensor is not None:
                try:
                    self._connect(self._input_tensor)
                except Exception:
                    self._stack.pop()
                    raise

    def _check_later_input_shape(self, layer, shape):
        """``input_shape=`` on a layer that is not the model's first: the model's input is given
        already, and the layer takes what the layer before it outputs. A shape that contradicts
        that input is refused (the student thinks the layer sees other data than it does: the
        mistake stays hidden until a shape error far away, or forever when both fit); one that
        agrees, or that cannot be compared yet, is ignored with a warning, as Keras warns."""
        if self.built:
            actual, source = tuple(self.graph.output.output_shape), \
                f"the output of '{self.graph.output.name}'"
        elif not self._stack and self._input_tensor is not None:
            actual, source = tuple(self._input_tensor.shape[1:]), \
                f"the model's Input '{self._input_tensor.layer.name}'"
        else:
            actual = source = None
        where = f"Sequential '{self.name}': layer '{layer.name}' ({type(layer).__name__})"
        if actual is not None and actual != tuple(shape):
            raise ValueError(f"{where} was given the input shape {tuple(shape)} (input_shape= "
                             f"or input_dim=), but its input is "
                             f"{source}, of shape {fmt_shape(actual)}: only the first layer's "
                             "input_shape (or an Input) gives a model its input, and a later "
                             "layer takes what the layer before it outputs; remove input_shape "
                             "from this layer, or change the model's input")
        warnings.warn(f"{where}: its input shape {tuple(shape)} (input_shape= or input_dim=) "
                      "is ignored: the layer is not the "
                      "model's first, and takes what the layer before it outputs"
                      + (f" ({source}, of this shape)" if actual is not None else "") +
                      "; only the first layer's input_shape (or an Input) gives a model its "
                      "input: remove it from this layer", UserWarning,
                      stacklevel=checks._user_stacklevel())

    def pop(self, rebuild=True):
        """Remove the last layer and return it, as Keras: the model then ends at the layer before
        (its weights kept). ``rebuild`` is Keras's argument; tinynet always rebuilds at once."""
        if not self._stack:
            raise IndexError(f"Sequential model '{self.name}' has no layer to pop")
        kept = sum(len(other.params) for other in self._stack[:-1])
        layer = self._stack.pop()
        layer.inbound = None  # free to be used in another model
        if getattr(self, "optimizer", None) is not None:  # its state of the popped weights goes
            self.optimizer.forget_from(kept)
        if self.built:
            if self._stack:
                self._set_graph(self._input_tensor, self._stack[-1].output)
            else:  # only the input is left: nothing to run
                self.graph = None
        return layer

    def _connect(self, input_tensor):
        """Call the layers in order on ``input_tensor``; on failure leave the layers this call
        connected unconnected again (and the others, such as a layer of another model refused
        here, as they were)."""
        t, connected = input_tensor, []
        # the layers this call builds are left unbuilt again if it fails, so that a build
        # retried with other data (another number of channels) builds them afresh
        unbuilt = {id(layer): dict(layer.__dict__) for layer in self._stack if not layer.built}
        try:
            for layer in self._stack:
                t = layer(t)
                connected.append(layer)
        except Exception:
            for layer in connected:
                layer.inbound = None
            for layer in self._stack:
                if id(layer) in unbuilt:
                    layer.__dict__.clear()
                    layer.__dict__.update(unbuilt[id(layer)])
            raise
        self._set_graph(input_tensor, t)

    def build(self, input_shape):
        """Build for batches of ``input_shape``, as Keras: the batch axis first, ``(None, 28, 28)``."""
        if self.built:
            return
        if not self._stack:
            raise ValueError(f"Sequential model '{self.name}' has no layers")
        input_shape = tuple(input_shape)
        if len(input_shape) < 2:
            raise ValueError(f"Sequential.build takes the shape of a batch, the batch axis first "
                             f"as in Keras: build((None, 784)), got {input_shape}")
        input_tensor = Input(input_shape[1:])
        self._connect(input_tensor)
        self._input_tensor = input_tensor
        self._check_loss_against_output()  # compiled before it knew its input shape

    def _maybe_build(self, x):
        if not self.built:
            self.build((None,) + tuple(x.shape[1:]))

    @property
    def layers(self):
        """The layers you added (Keras does not list the input layer of a Sequential)."""
        return list(self._stack)


def _model_classes():
    """The classes a model file names, for :mod:`tinynet.io` (which does not import this module)."""
    return {"Model": Model, "Sequential": Sequential}


def load_model(path, custom_objects=None, compile=True, safe_mode=True):
    """The model saved by ``model.save(path)``: architecture, weights, compile settings, optimizer
    state and epoch counter, in the float type it was saved in, ready to continue training
    (``compile=False``: uncompiled). Keras's own files (``.keras``, ``.h5``) are not read: the
    error says how to convert them (``tinynet.interop.from_keras(keras.models.load_model(path))``)."""
    return io.load_model(path, _model_classes(),
                         custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)
