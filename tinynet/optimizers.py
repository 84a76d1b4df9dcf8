"""Optimizers that update parameters in place: ``optimizer.apply_gradients(zip(grads, params))``.

Each keeps its state (running averages, momenta) per parameter, keyed by the parameter's
*position* in the list it is given (the model always gives its parameters in the same order), so
the state follows the model through a save, a load or a copy of its arrays. A parameter's state
arrays are created on first use, of its shape, dtype and device (zeros, or Adagrad's initial
value). The updates are Keras 3's: the same operations in the same order, in the parameters'
float type, so that a float32 step is Keras's to the last bit (``tests/test_interop.py``); the
exception is ``clipnorm``/``global_clipnorm``, whose norm is a sum added in another order (a
rounding); a schedule's rate is computed in float32, as Keras computes it, within one float32
rounding where a power or a cosine enters (:mod:`tinynet.schedules`). In float64,
Keras on TensorFlow rounds some Python-float hyper-parameters through float32
(``ops.cast(0.9, "float64")`` is 0.8999999761581421: SGD's momentum, Adam's betas); tinynet
keeps them exact.

One step, for every parameter ``θ`` with gradient ``g`` (as Keras's ``apply_gradients``):

1. clip the gradients, if asked (at most one of the three, as in Keras):
   ``clipnorm=c``: each gradient on its own, ``g = g c / max(‖g‖, c)`` (its L2 norm at most c);
   ``global_clipnorm=c``: all together, ``g = g c / max(G, c)`` with ``G² = Σ_params ‖g‖²``;
   ``clipvalue=v``: each entry, ``g = clip(g, -v, v)``;
2. decoupled weight decay, if asked (``weight_decay=λ``): ``θ = θ - η λ θ`` (``η``: the
   learning rate);
3. the optimizer's own update (RMSprop's equations (1) and (2), Adam, ...) with the gradient.

Every optimizer takes, besides its own arguments, Keras's ``learning_rate`` (alias ``lr=``, the
Keras 2 name: a number, or a schedule from :mod:`tinynet.schedules`, which gives the rate of each
step), ``clipnorm``, ``clipvalue``, ``global_clipnorm``, ``weight_decay`` and ``name``.

Each ``update(θ, g, state)`` below is the readable step for one parameter (RMSprop's also runs as
one compiled pass on the numba and CUDA backends, :meth:`Optimizer.fused_update`: the same
numbers, bit for bit). ``fit`` runs the same step once over all the parameters at once
(:meth:`Optimizer.apply_flat`; once per flat buffer): a model keeps its weights, its gradients
and the optimizer's state end to end in flat buffers (the arena, :mod:`tinynet.arena`), and
since every update is element-wise with the same hyper-parameters for every parameter, one call
over the flat arrays gives the same numbers, bit for bit, as one call per parameter.
"""
import inspect
import math
import operator

import sys
import weakref

import numpy as np

from . import backend, schedules
from .backend import get_array_module
from .names import written_over
from .schedules import LearningRateSchedule

# `from tinynet.optimizers.schedules import ExponentialDecay`, as in Keras (this module is no package)
sys.modules[__name__ + ".schedules"] = schedules

# Keras 3 optimizer arguments that tinynet accepts only at their default (they change nothing)
KERAS_DEFAULTS = {"use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None,
                  "loss_scale_factor": None, "gradient_accumulation_steps": None}
COMMON = ("learning_rate", "lr", "clipnorm", "clipvalue", "global_clipnorm", "weight_decay", "name")


class ParamState(dict):
    """The state arrays of one parameter, by name (``"s"``, ``"moment"``, ...)."""

    def arrays(self, like, *names, fill=0.0):
        """The state arrays ``names`` (filled with ``fill`` like ``like`` on first use), in order."""
        for n in names:
            if n not in self:
                self[n] = get_array_module(like).full_like(like, fill)
        return [self[n] for n in names]


class FlatState(ParamState):
    """The state of a group of parameters laid end to end in a model's arena (:mod:`tinynet.arena`):
    one flat array per slot name (``"s"``, ...), cut into views that are the slots of each
    parameter's :class:`ParamState`. ``update`` receives it with the flat weights and gradient."""

    def __init__(self, group, states):
        super().__init__()
        self.group, self.states, self.views = group, states, {}
        self.clipped = None  # the clipped gradient, laid flat (kept from step to step)

    def arrays(self, like, *names, fill=0.0):
        for n in names:
            if n not in self:  # created flat, and its views handed to the parameters
                self.lay_out(n, get_array_module(like).full_like(like, fill))
        return [self[n] for n in names]

    def lay_out(self, name, flat):
        """Make ``flat`` the slot ``name``: its views become that slot of every parameter."""
        self[name] = flat
        self.views[name] = self.group.views(flat)
        for state, view in zip(self.states, self.views[name]):
            state[name] = view

    def remove(self, name):
        """Forget the slot ``name``, here and in every parameter's state."""
        del self[name], self.views[name]
        for state in self.states:
            state.pop(name, None)

    def in_sync(self, slots):
        """Whether ``slots`` (the optimizer's per-parameter states) still hold exactly this
        state's views, and nothing else (``set_state`` or ``restore`` may have replaced them)."""
        positions = self.group.positions
        if len(slots) <= positions[-1] or \
                not all(map(operator.is_, (slots[i] for i in positions), self.states)):
            return False
        n = len(self)
        return all(len(state) == n for state in self.states) and all(
            state.get(name) is view for name, views in self.views.items()
            for state, view in zip(self.states, views))


def _keep(keep, theta, state):
    """Copy ``theta`` and ``state``'s slots into the buffers of ``keep`` (``{"weights": buffer,
    slot name: buffer}``): the values before an update, to undo it."""
    for name, buffer in keep.items():
        buffer[...] = theta if name == "weights" else state[name]


def _positive_or_none(cls, what, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or \
            not value > 0 or not math.isfinite(value):
        raise ValueError(f"{cls}: {what} must be a positive number (or None, for none), got "
                         f"{value!r}")
    return float(value)


class _Reading:
    """A number read from an optimizer that also answers Keras's variable methods: ``numpy()``
    (the number) and ``assign(value)`` (sets the optimizer's attribute ``_attribute``, as
    ``optimizer.<attribute> = value`` does, with its checks).

    Unlike a Keras variable it is a snapshot: ``lr = opt.learning_rate; lr.assign(0.5)`` changes
    the optimizer, and ``opt.learning_rate`` reads 0.5, while ``lr`` stays the number it was."""

    _attribute = None

    def __new__(cls, value, optimizer):
        number = super().__new__(cls, value)
        number._optimizer = optimizer
        return number

    def numpy(self):
        return self._number(self)

    def assign(self, value):
        setattr(self._optimizer, self._attribute, self._assigned(value))

    @staticmethod
    def _assigned(value):
        return value

    def __reduce__(self):  # copied or pickled: the number alone
        return self._number, (self._number(self),)


class LearningRate(_Reading, float):
    """``optimizer.learning_rate``, a float (see :class:`_Reading`). In NumPy arithmetic it counts
    as a float64 (a subclass of float is not taken as a "weak" Python number): an optimizer's
    ``update`` reads ``self._learning_rate``, the plain float."""

    _attribute, _number = "learning_rate", float

    @staticmethod
    def _assigned(value):  # a number, as Keras's variable takes (np.array(0.5), True: 1.0)
        if isinstance(value, LearningRateSchedule):
            raise TypeError("learning_rate.assign takes a number; to give the optimizer a "
                            "schedule, set optimizer.learning_rate = schedule")
        return float(value)


class StepCount(_Reading, int):
    """``optimizer.iterations``: the number of steps taken, an int (see :class:`_Reading`)."""

    _attribute, _number = "iterations", int


class Optimizer:
    """The common part: argument checks, gradient clipping, weight decay, state per parameter.

    An optimizer of one's own subclasses this and writes ``update(self, theta, g, state)`` (the
    step of one parameter, in place, reading the rate from ``self._learning_rate``; its running
    averages in ``state``, a :class:`ParamState`: ``(v,) = state.arrays(theta, "v")``), and, to
    be saved with a model and rebuilt by ``load_model(..., custom_objects={"Name": Class})``,
    ``_own_config`` (its constructor's own arguments, as a dict) and ``slot_names`` (the names
    of its state arrays); ``model.save`` refuses one whose saved form would load changed."""

    # whether two steps differ only by the learning rate (not by the step's number, as Adam's
    # bias correction does): such a step can be recorded once as a CUDA graph (tinynet.replay)
    replayable = False

    def __new__(cls, *args, **kwargs):
        # refused when made, not at the first step of fit: no update, or Keras's update_step
        # written over one (tinynet would not run it: a subclass of Adam stayed Adam)
        keras = [m for m in ("update_step", "build") if written_over(cls, m, "update")]
        if cls.update is Optimizer.update or keras:
            why = (f"{' and '.join(keras)} (Keras's) would not run" if keras
                   else "it has none")
            raise TypeError(f"{cls.__name__}: an optimizer writes update(self, theta, g, state), "
                            f"the step of one parameter theta, in place, from its gradient g; "
                            f"{why} (tinynet's optimizers hold their state per parameter); see "
                            "tinynet.optimizers.SGD for a short example")
        return super().__new__(cls)

    def __init__(self, learning_rate, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 weight_decay=None, name=None, **kwargs):
        cls = type(self).__name__
        if "lr" in kwargs:  # Keras 2's name
            lr = kwargs.pop("lr")
            default = inspect.signature(type(self).__init__).parameters["learning_rate"].default
            if learning_rate != default and learning_rate != lr:
                raise TypeError(f"{cls}: give the learning rate once, as learning_rate= (lr= is "
                                f"its Keras 2 name), not both learning_rate={learning_rate} and "
                                f"lr={lr}")
            learning_rate = lr
        decay = kwargs.pop("decay", None)
        if decay not in (None, 0, 0.0):
            raise TypeError(f"{cls}: decay={decay!r} (Keras 2's learning-rate decay) is not an "
                            "argument in tinynet, nor in Keras 3; Keras 2's η / (1 + decay · t) "
                            "is the schedule tinynet.optimizers.schedules.InverseTimeDecay(η, "
                            f"decay_steps=1, decay_rate={decay!r}), given as learning_rate")
        for k in list(kwargs):
            if k in KERAS_DEFAULTS and kwargs[k] == KERAS_DEFAULTS[k]:
                del kwargs[k]
        if kwargs:
            k = next(iter(kwargs))
            what = ("a Keras argument that tinynet does not implement" if k in KERAS_DEFAULTS
                    else "not an argument of this optimizer")
            raise TypeError(f"{cls}: {k}={kwargs[k]!r} is {what}; tinynet's {cls} takes "
                            f"{', '.join(self.arguments())}")
        self.iterations = 0
        self._schedule = None  # a LearningRateSchedule given as learning_rate, else None
        self.learning_rate = learning_rate
        self.clipnorm = _positive_or_none(cls, "clipnorm", clipnorm)
        self.clipvalue = _positive_or_none(cls, "clipvalue", clipvalue)
        self.global_clipnorm = _positive_or_none(cls, "global_clipnorm", global_clipnorm)
        if sum(a is not None for a in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError(f"{cls}: give at most one of clipnorm, clipvalue and "
                             f"global_clipnorm (as in Keras); got clipnorm={clipnorm}, "
                             f"clipvalue={clipvalue}, global_clipnorm={global_clipnorm}")
        self.weight_decay = None if weight_decay is None else float(weight_decay)
        if self.weight_decay is not None and not self.weight_decay >= 0:
            raise ValueError(f"{cls}: weight_decay must be >= 0 (or None), got {weight_decay!r}")
        self.name = cls.lower() if name is None else str(name)
        self._model = None  # a weak reference to the model compiled with it: one only (its state
        # is per weight of that model); copies and pickles of the optimizer belong to no model
        self._slots = []  # ParamState of the i-th parameter given to apply_gradients
        self._places = []  # a weak reference to the weight updated at each place, see _take_places
        self._flat_arena, self._flat = None, []  # FlatState of each group of that arena

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_model"] = None
        state["_places"] = []  # (weak references are not copied: a copy's first step sets them)
        return state

    @property
    def iterations(self):
        """The number of steps taken (0 before the first): an int, with Keras's ``.numpy()`` and
        ``.assign(n)``. A schedule's learning rate is read at this step count."""
        return StepCount(self._iterations, self)

    @iterations.setter
    def iterations(self, value):
        # an int, a NumPy integer (also 0-d), or a whole float such as 5.0, as Keras takes
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            number = int(value)
        else:
            try:
                number = float(value) if not isinstance(value, (bool, str)) else math.nan
            except (TypeError, ValueError):
                number = math.nan
            number = int(number) if number == number and float(number).is_integer() else -1
        if number < 0:
            raise ValueError(f"{type(self).__name__}: iterations counts steps: a whole number "
                             f">= 0, got {value!r}")
        self._iterations = number

    def forget_from(self, position):
        """Drop the state of the parameters from ``position`` on (a model lost its last
        layers: ``Sequential.pop``), so that a layer added in their place starts afresh."""
        del self._slots[position:]
        self._flat_arena, self._flat = None, []

    @classmethod
    def arguments(cls):
        """The names of the arguments this optimizer takes (for error messages)."""
        own = [n for n, p in inspect.signature(cls.__init__).parameters.items()
               if n != "self" and p.kind is p.POSITIONAL_OR_KEYWORD]
        return own + [n for n in COMMON if n not in own]

    @property
    def learning_rate(self):
        """The learning rate η of the next step: a number, which also answers Keras's
        ``learning_rate.numpy()`` and ``learning_rate.assign(η)`` (see :class:`LearningRate`).
        Set it at any time (``optimizer.learning_rate = 1e-4``): the next step uses it. With a
        schedule (:mod:`tinynet.schedules`), the schedule's value at ``iterations``."""
        if self._schedule is not None:
            return LearningRate(self._scheduled_rate(), self)
        return LearningRate(self._learning_rate, self)  # the updates read the plain float
        # self._learning_rate: NumPy 2 takes a Python float as the array's own type (weak), but
        # a subclass of float as a float64, which would round a float32 update differently

    @learning_rate.setter
    def learning_rate(self, value):
        cls = type(self).__name__
        if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
            value = value.item()  # a 0-d array of a number, as Keras takes it
        if isinstance(value, LearningRateSchedule):
            rate = self._scheduled_rate(value)  # checked first: a failed set changes nothing
            self._schedule, self._learning_rate = value, rate
            return
        if self._schedule is not None:
            raise TypeError(f"{cls}: this optimizer was given a learning-rate schedule "
                            f"({self._schedule!r}), which sets its learning rate at every step; "
                            f"it cannot also be set to {value!r} (by hand or by a callback). "
                            "Give the optimizer a number as learning_rate to set it as you go, "
                            "or give it another schedule")
        if callable(value) or isinstance(value, (bool, str)) or \
                not isinstance(value, (int, float, np.number)):
            raise TypeError(f"{cls}: learning_rate must be a number or a learning-rate schedule "
                            f"(tinynet.optimizers.schedules: ExponentialDecay, ..., or a subclass "
                            f"of LearningRateSchedule with __call__(self, step)), got {value!r}")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{cls}: learning_rate must be a finite number >= 0, got {value!r}")
        self._learning_rate = float(value)

    def _scheduled_rate(self, schedule=None):
        """The learning rate of ``schedule`` (the optimizer's own by default) for step
        ``iterations``, checked."""
        schedule = self._schedule if schedule is None else schedule
        value = schedule(self.iterations)
        try:
            rate = float(value)
        except (TypeError, ValueError):
            rate = None
        if rate is None or not math.isfinite(rate) or rate < 0:
            raise ValueError(f"{type(self).__name__}: the learning-rate schedule {schedule!r} "
                             f"gave {value!r} at step {self.iterations}; it must give a finite "
                             "number >= 0")
        return rate

    def _begin_step(self):
        """Before a step: a schedule's learning rate for this step becomes ``_learning_rate``."""
        if self._schedule is not None:
            self._learning_rate = self._scheduled_rate()

    @property
    def lr(self):
        """Keras 2's name of :attr:`learning_rate`."""
        return self.learning_rate

    @lr.setter
    def lr(self, value):
        self.learning_rate = value

    def get_config(self):
        """The constructor's arguments, with ``"class"``: :func:`from_config` rebuilds it."""
        rate = (float(self._learning_rate) if self._schedule is None
                else schedules.serialize(self._schedule))
        return {"class": type(self).__name__, "name": self.name,
                "learning_rate": rate, **self._own_config(),
                "clipnorm": self.clipnorm, "clipvalue": self.clipvalue,
                "global_clipnorm": self.global_clipnorm, "weight_decay": self.weight_decay}

    def _own_config(self):
        """The subclass's own constructor arguments, by name (none here)."""
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items()
                         if k != "class" and v is not None)
        return f"{type(self).__name__}({args})"

    def _param_state(self, i, param):
        while len(self._slots) <= i:
            self._slots.append(ParamState())
        state = self._slots[i]
        for name, a in state.items():
            if a.shape != param.shape:
                raise ValueError(f"{type(self).__name__}: parameter {i} has shape "
                                 f"{tuple(param.shape)} but its state {name!r} has shape "
                                 f"{tuple(a.shape)}: the state is kept by each weight's place "
                                 "in the list the optimizer is given (fit gives model.params); "
                                 "is it used for another model, or for another list of weights? "
                                 "Give each its own optimizer")
        return state

    def clip_gradients(self, grads):
        """The gradients after ``clipnorm`` / ``global_clipnorm`` / ``clipvalue`` (new arrays;
        the list itself when there is no clipping)."""
        if self.clipnorm is not None:
            out = []
            for g in grads:
                xp, c = get_array_module(g), g.dtype.type(self.clipnorm)
                norm = xp.sqrt((g * g).sum())
                out.append(g * c / xp.maximum(norm, c))      # ‖g‖ ≤ c: g unchanged
            return out
        if self.global_clipnorm is not None and grads:
            xp = get_array_module(grads[0])
            norm = xp.sqrt(sum((g * g).sum() for g in grads))  # G, over every parameter
            scale = self.global_clipnorm / xp.maximum(norm, self.global_clipnorm)
            scale = scale + (norm - norm)   # NaN when G is NaN or infinite, as in Keras
            return [g * scale.astype(g.dtype) for g in grads]
        if self.clipvalue is not None:
            return [get_array_module(g).clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        return grads

    def build(self, var_list):
        """Keras's ``build``: the weights this optimizer will update, in the order it will be given
        them (:meth:`apply_gradients`); their state is made at their first step."""
        self._take_places(list(var_list))

    def apply(self, grads, trainable_variables=None):
        """Keras 3's ``apply(grads, trainable_variables)``: ``apply_gradients(zip(grads,
        trainable_variables))``; without the weights, those given to :meth:`build` or to the
        previous step."""
        kind = type(self).__name__
        if trainable_variables is None:
            trainable_variables = [ref() if ref else None for ref in self._places]
            if not trainable_variables or any(p is None for p in trainable_variables):
                raise TypeError(f"{kind}.apply: give the weights as well, apply(grads, "
                                "weights) (this optimizer has not been built with them: "
                                "optimizer.build(weights))")
        grads, trainable_variables = list(grads), list(trainable_variables)
        if len(grads) != len(trainable_variables):
            raise ValueError(f"{kind}.apply: {len(grads)} gradients for {len(trainable_variables)} "
                             "weights: give one gradient per weight, in the weights' order (None "
                             "for a weight that should not move)")
        self.apply_gradients(zip(grads, trainable_variables))

    def _take_places(self, params):
        """Check that ``params`` are the weights this optimizer updated at the same places before,
        where it holds a state for them (a weight's state is the one at its place in the list:
        another weight there would take it over), then remember them (weakly: a weight dropped
        by its model is forgotten)."""
        kind = type(self).__name__
        for i, p in enumerate(params):
            old = self._places[i]() if i < len(self._places) and self._places[i] else None
            held = i < len(self._slots) and len(self._slots[i]) > 0  # a state to take over
            if old is not None and old is not p and held:
                raise ValueError(
                    f"{kind}: weight {i} of the list given (shape {tuple(p.shape)}) is not the "
                    f"weight it updated at that place before (shape {tuple(old.shape)}): an "
                    "optimizer keeps each weight's state (its running averages) by its place in "
                    "the list of weights it is given, and fit gives it model.params. Give it the "
                    "same weights in the same order at every step (all of them, with None as "
                    "the gradient of one that should not move), or give each list of weights its "
                    "own optimizer")
        places = []
        for p in params:
            try:
                places.append(weakref.ref(p))
            except TypeError:  # an array type without weak references: not checked
                places.append(None)
        self._places = places + self._places[len(places):]

    def _forget_places(self):
        """Forget the weights at each place (their state stays): the model's weights are new
        arrays (its arena rebuilt) or its layers changed (``model.add``, ``pop``)."""
        self._places = []

    def _holds_places_of(self, params):
        """Whether every weight this optimizer has updated is, at its place, one of ``params``."""
        return bool(self._places) and len(self._places) <= len(params) and all(
            ref is not None and ref() is p for ref, p in zip(self._places, params))

    def apply_gradients(self, grads_and_params):
        """One step: clip the gradients, decay the weights, update each parameter in place.

        ``grads_and_params``: ``(gradient, weight)`` pairs, ``zip(grads, weights)``; a ``None``
        gradient leaves its weight (a frozen layer's). Each weight's state (RMSprop's ``s``) is
        the one at its place in this list (the list ``fit`` gives is ``model.params``): the same
        weights in the same order at every step, or the step is refused."""
        pairs = list(grads_and_params)
        for pair in pairs:
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                raise TypeError(f"{type(self).__name__}.apply_gradients takes (gradient, weight) "
                                "pairs, zip(grads, weights), got an element of type "
                                f"{type(pair).__name__}")
        self._take_places([p for _, p in pairs])
        self._begin_step()
        steps = []  # (position, gradient, parameter)
        for i, (g, p) in enumerate(pairs):
            if g is None:
                continue
            self._check_pair(i, g, p)
            if g.shape != p.shape:
                raise ValueError(f"gradient of shape {tuple(g.shape)} for a parameter of shape "
                                 f"{tuple(p.shape)}")
            steps.append((i, g.astype(p.dtype, copy=False), p))
        grads = self.clip_gradients([g for _, g, _ in steps])
        for (i, _, p), g in zip(steps, grads):
            if self.weight_decay:
                p -= p * p.dtype.type(self.weight_decay) * p.dtype.type(self._learning_rate)
            self._update(p, g, self._param_state(i, p))
        self.iterations += 1

    def _check_pair(self, i, g, p):
        """Weight ``i`` a float array that can be updated in place, and its gradient an array."""
        where = f"{type(self).__name__}.apply_gradients"
        if not (hasattr(p, "shape") and hasattr(p, "dtype")):
            raise TypeError(f"{where}: weight {i} is a {type(p).__name__}, not an array: the "
                            "optimizer updates each weight in place, so it must be a float "
                            "array, e.g. np.array(weights, dtype='float32') kept and passed at "
                            "every step")
        if np.dtype(p.dtype).kind != "f":
            raise TypeError(f"{where}: weight {i} has dtype {p.dtype}; it must be a float array "
                            "(the optimizer updates it in place by fractions, which an integer "
                            "array cannot hold): create it as floats, e.g. "
                            "w = w.astype('float32'), and pass that array at every step")
        if not getattr(getattr(p, "flags", None), "writeable", True):  # (CuPy's: no such flag)
            raise ValueError(f"{where}: weight {i} is read-only; the optimizer updates it in "
                             "place: pass a writeable array (np.array(w) makes one)")
        if not (hasattr(g, "shape") and hasattr(g, "dtype")):
            raise TypeError(f"{where}: the gradient of weight {i} is a {type(g).__name__}, not "
                            "an array: give an array of the weight's shape "
                            f"{tuple(p.shape)} (or None to leave the weight as it is)")

    def update(self, theta, g, state):
        """Update ``theta`` in place from its gradient ``g``; ``state`` is its :class:`ParamState`."""
        raise NotImplementedError

    def fused_update(self, theta, g, state, keep=None):
        """:meth:`update` as one compiled pass of the backend's (numba, CUDA), where it has one
        for this optimizer: the same numbers, without the temporaries; ``False`` where it has
        none (the readable :meth:`update` then runs), else ``True``, or ``"finite"`` where the
        pass also found every number of ``theta`` and of ``state`` finite (the training step
        then need not look at them again). A hook for tinynet's kernels: an optimizer
        of one's own writes :meth:`update` only (what it computes here would differ from what
        its ``update`` computes on the NumPy backend).

        ``keep``: ``{name: buffer}``, ``"weights"`` for ``theta`` and the names of ``state``'s
        slots: a ``fused_update`` that runs must fill every one of them with that array as it was
        before the update (to undo the step, :meth:`snapshot_flat`): in the kernel's own pass
        where it can (numba's plain RMSprop), by copies first otherwise (the slots the update
        does not touch too)."""
        return False

    def _update(self, theta, g, state, keep=None):
        """:meth:`fused_update` where there is one, else :meth:`update` (``keep`` then copied
        first). Returns whether the fused pass found ``theta`` and ``state`` finite."""
        done = self.fused_update(theta, g, state) if keep is None else \
            self.fused_update(theta, g, state, keep)
        if not done:
            if keep is not None:
                _keep(keep, theta, state)
            self.update(theta, g, state)
        return done == "finite"

    def state_arrays(self):
        """Every state array of every parameter (for the snapshot and the finiteness check)."""
        return [a for state in self._slots for a in state.values()]

    def snapshot(self, params):
        """Copies of ``params`` and of their state, to undo a step with :meth:`restore`.

        ``fit`` takes one before every step, so the copies go into buffers kept from one step to
        the next (allocating fresh arrays of this size costs ten times the copy: page faults).
        Only the latest snapshot can be restored."""
        buffers = self._kept_copies(list(params) + self.state_arrays())
        copies = iter(buffers[len(params):])
        return (self.iterations, buffers[:len(params)],
                [{n: next(copies) for n in state} for state in self._slots])

    def restore(self, params, snap):
        """Put back the parameters and the state saved by :meth:`snapshot` (in place)."""
        self.iterations, saved_params, saved_slots = snap
        for p, saved in zip(params, saved_params):
            p[...] = saved
        del self._slots[len(saved_slots):]  # state created by the undone step
        for state, saved in zip(self._slots, saved_slots):
            for n in list(state):
                if n in saved:
                    state[n][...] = saved[n]
                else:
                    del state[n]

    def _kept_copies(self, arrays, fill=True):
        """Copies of ``arrays`` in buffers kept from one call to the next (reallocated only when
        the shapes change); with ``fill=False``, the buffers only."""
        buffers = getattr(self, "_undo_buffers", [])
        if len(buffers) != len(arrays) or any(b.shape != a.shape or b.dtype != a.dtype
                                              for b, a in zip(buffers, arrays)):
            buffers = self._undo_buffers = [get_array_module(a).empty_like(a) for a in arrays]
        for b, a in zip(buffers, arrays if fill else ()):
            b[...] = a
        return buffers

    # ---- the same step over a model's arena: one call per flat buffer -------------------------
    # The model's weights, gradients and this optimizer's state laid end to end (tinynet.arena):
    # the update below is element-wise with the same hyper-parameters for every parameter, so
    # update(flat weights, flat gradient, flat state) computes exactly what update(θ, g, state)
    # computes for each parameter in turn, in one call. Clipping by norm works per parameter (or
    # over all of them), so it runs on the views first, as in apply_gradients.
    def flat_states(self, arena):
        """The :class:`FlatState` of each group of ``arena``, laid out from the per-parameter
        states (copied) when they changed; ``None`` when they cannot be laid flat (a slot that
        some parameters have and others lack: take the per-parameter path); ``None`` too for an
        ``update``, ``fused_update`` or ``apply_gradients`` written outside tinynet (a subclass's
        own): they run as written, once per parameter, since they need not be element-wise (a
        step scaled by the gradient's norm)."""
        if any(getattr(getattr(self, m), "__module__", None) != __name__
               for m in ("update", "fused_update", "apply_gradients")):  # one's own: as written
            return None
        if self._flat_arena is not arena:
            self._flat_arena, self._flat = arena, [None] * len(arena.groups)
        for k, group in enumerate(arena.groups):
            flat = self._flat[k]
            if flat is None or not flat.in_sync(self._slots):
                flat = self._flat[k] = self._lay_out(group)
                if flat is None:
                    return None
        return self._flat

    def _lay_out(self, group):
        states = [self._param_state(i, view) for i, view in zip(group.positions, group.weight_views)]
        flat = FlatState(group, states)
        for name in dict.fromkeys(n for state in states for n in state):
            if not all(name in state for state in states):
                return None
            buffer = get_array_module(group.weights).empty_like(group.weights)
            for view, state in zip(group.views(buffer), states):
                view[...] = state[name]
            flat.lay_out(name, buffer)
        return flat

    def apply_flat(self, arena, flats, undo=None):
        """:meth:`apply_gradients` of the arena's gradients to its weights, one update per group.

        ``undo``: what :meth:`snapshot_flat` returned with ``fill=False``; its buffers receive
        the weights and the state as they are before this step, in the update's own pass where
        a fused kernel can (:meth:`fused_update`), else copied first (always with weight decay,
        which changes the weights before the update). A subclass that overrides this method
        must fill them too, or an undone step would put back stale values.

        Returns the arrays the caller must still check for NaN and infinity: every group's
        weights and state, but those a fused pass found finite as it wrote them."""
        self._begin_step()
        views = arena.gradient_views
        grads = self.clip_gradients(views)  # per parameter (or over all), as apply_gradients
        keeps = [None] * len(flats) if undo is None else \
            [{"weights": weights, **slots} for weights, slots in zip(undo[1], undo[2])]
        unchecked = []
        for group, flat, keep in zip(arena.groups, flats, keeps):
            g = group.gradients
            if grads is not views:  # clipped copies: laid end to end for the update
                if flat.clipped is None:
                    flat.clipped = get_array_module(g).empty_like(g)
                for view, k in zip(group.views(flat.clipped), group.positions):
                    view[...] = grads[k]
                g = flat.clipped
            theta = group.weights
            if self.weight_decay:
                if keep is not None:  # before the decay changes the weights
                    _keep(keep, theta, flat)
                    keep = None
                theta -= theta * theta.dtype.type(self.weight_decay) * \
                    theta.dtype.type(self._learning_rate)
            if not self._update(theta, g, flat, keep):
                unchecked += [theta] + [flat[n] for n in flat]
        self.iterations += 1
        return unchecked

    def snapshot_flat(self, arena, flats, fill=True):
        """:meth:`snapshot` of the arena's weights and the flat state: one copy per buffer; with
        ``fill=False`` the buffers only, for :meth:`apply_flat` to fill as it updates."""
        names = [list(flat) for flat in flats]
        buffers = iter(self._kept_copies([group.weights for group in arena.groups] +
                                         [flat[n] for flat, ns in zip(flats, names) for n in ns],
                                         fill))
        weights = [next(buffers) for _ in arena.groups]
        return self.iterations, weights, [{n: next(buffers) for n in ns} for ns in names]

    def restore_flat(self, arena, flats, snap):
        """:meth:`restore` of what :meth:`snapshot_flat` saved (slots created since are removed)."""
        self.iterations, weights, slots = snap
        for group, saved in zip(arena.groups, weights):
            group.weights[...] = saved
        for flat, saved in zip(flats, slots):
            for n in list(flat):
                if n in saved:
                    flat[n][...] = saved[n]
                else:
                    flat.remove(n)

    # state as plain arrays, in the order of the parameters (for saving and loading)
    def get_state(self, params):
        names = self.slot_names()
        out = []
        for i, _ in enumerate(params):
            state = self._slots[i] if i < len(self._slots) else {}
            out.append([None if n not in state else np.array(backend.to_numpy(state[n]))
                        for n in names])  # copies: the state goes on changing after this
        return {"iterations": self.iterations, "slots": out}

    def set_state(self, params, state):
        self.iterations = int(state["iterations"])
        names = self.slot_names()
        self._slots = []
        for i, (p, arrays) in enumerate(zip(params, state["slots"])):
            slots = self._param_state(i, p)
            for n, a in zip(names, arrays):
                if a is not None:
                    slots[n] = get_array_module(p).array(a, dtype=p.dtype)  # our own copy

    def slot_names(self):
        return ()


def _number(value):
    """``value`` as a float when it is a real number (not a bool, a string, a schedule), else
    ``None``."""
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        return None
    return float(value)


def _in_unit_interval(cls, what, value, meaning):
    """A decay rate or momentum (RMSprop's ``rho``, Adam's ``beta_1`` and ``beta_2``): a number in
    [0, 1), checked when the optimizer is made, as PyTorch's Adam checks its betas (Keras does
    not): at 1 a running mean never moves and Adam's bias correction divides by zero; outside
    [0, 1] it grows without bound, and fit failed later blaming the learning rate."""
    number = _number(value)
    if number is None or not 0.0 <= number < 1.0:
        raise ValueError(f"{cls}: {what} must be in [0, 1) ({meaning}), got {value!r}")
    return number


def _epsilon(cls, value):
    """``epsilon``: a finite number >= 0 (0 is allowed, as Keras and PyTorch allow it, if unwise:
    a parameter whose gradients are all zero then gets 0/0); Keras 2 accepted ``epsilon=None``
    for its default, 1e-7."""
    if value is None:
        return 1e-07
    number = _number(value)
    if number is None or not math.isfinite(number) or number < 0:
        raise ValueError(f"{cls}: epsilon must be a finite number >= 0 (the small constant that "
                         f"keeps the division finite; Keras's default is 1e-07), got {value!r}")
    return number


class RMSprop(Optimizer):
    """RMSprop as in the practical work's equations, with Keras's momentum and centered options.

    For each parameter ``θ`` with gradient ``g``:

        (1)  s = ρ s + (1 - ρ) g ⊙ g                      running mean of squared gradients
        (2)  θ = θ - η g ⊘ sqrt(s + ε)                    (ε inside the root, as in Keras)

    ``centered=True`` also tracks the mean gradient ``ḡ = ρ ḡ + (1 - ρ) g`` and divides by
    ``sqrt(s - ḡ² + ε)`` (an estimate of the variance instead of the raw second moment).
    ``momentum=μ > 0`` accumulates the step: ``m = μ m + η g ⊘ sqrt(...)``, ``θ = θ - m``.

    The arguments: ``η = learning_rate``, ``ρ = rho``, ``ε = epsilon``, ``μ = momentum``; ``s``,
    ``ḡ`` and ``m`` start at zero.
    """

    replayable = True

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-07, centered=False,
                 **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho = _in_unit_interval("RMSprop", "rho", rho, "the decay rate of the running mean "
                                     "of squared gradients")
        self.momentum = _in_unit_interval("RMSprop", "momentum", momentum,
                                          "the fraction of the previous step kept")
        self.epsilon = _epsilon("RMSprop", epsilon)
        self.centered = bool(centered)

    def _own_config(self):
        return {"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon,
                "centered": self.centered}

    def slot_names(self):
        return ("s", "mean_grad", "moment")

    def update(self, theta, g, state):
        rho, eta, eps = self.rho, self._learning_rate, self.epsilon
        (s,) = state.arrays(theta, "s")
        s *= rho
        s += (1 - rho) * (g * g)                             # equation (1)
        denominator = s + eps
        if self.centered:
            (mean_grad,) = state.arrays(theta, "mean_grad")
            mean_grad *= rho
            mean_grad += (1 - rho) * g
            denominator = s - mean_grad * mean_grad + eps
        step = eta * g / get_array_module(g).sqrt(denominator)  # equation (2): η g ⊘ sqrt(s + ε)
        if self.momentum > 0:
            (moment,) = state.arrays(theta, "moment")
            moment *= self.momentum
            moment += step
            step = moment
        theta -= step

    def fused_update(self, theta, g, state, keep=None):
        """The lines of :meth:`update` as one pass of the numba or CUDA kernel
        (``kernels/numba_cpu.py``, ``kernels/cupy_gpu.py``), bit for bit; not for a subclass that
        writes an ``update`` of its own."""
        fused = backend.fused("rmsprop_update", theta)
        if fused is None or getattr(self.update, "__func__", None) is not _RMSPROP_UPDATE:
            return False  # (an update of one's own: a subclass's, or one set on the class or object)
        if not theta.flags.c_contiguous:
            return False  # a view of a larger array (w[:, ::2]): the kernels run over one block
        if theta.dtype not in (np.float32, np.float64) or g.dtype != theta.dtype:
            return False  # float16 (a loop of one's own): the kernels compile float32 and float64
        (s,) = state.arrays(theta, "s")
        mean_grad = state.arrays(theta, "mean_grad")[0] if self.centered else None
        moment = state.arrays(theta, "moment")[0] if self.momentum > 0 else None
        if not all(a is None or a.flags.c_contiguous for a in (s, mean_grad, moment)):
            return False
        args = (theta, g, s, mean_grad, moment, self._learning_rate, self.rho, self.epsilon,
                self.momentum, self.centered)
        if keep is None:
            finite = fused(*args)
        else:
            updated = {"weights", "s"} | {n for n, a in (("mean_grad", mean_grad),
                                                         ("moment", moment)) if a is not None}
            _keep({n: b for n, b in keep.items() if n not in updated}, theta, state)  # left as is
            finite = fused(*args, {n: b for n, b in keep.items() if n in updated})
        # the kernel looks at theta and s (plain RMSprop): other slots, if any, are not seen
        return "finite" if finite is True and set(state) == {"s"} else True


_RMSPROP_UPDATE = RMSprop.update  # the lines the fused kernels compute


class SGD(Optimizer):
    """Gradient descent ``θ = θ - η g``; with momentum ``v = μ v - η g``, ``θ = θ + v``
    (Nesterov: ``θ = θ + μ v - η g``). ``η = learning_rate``, ``μ = momentum``; ``v`` starts
    at zero."""

    replayable = True

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"SGD: momentum must be in [0, 1], got {momentum}")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def _own_config(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}

    def slot_names(self):
        return ("velocity",)

    def update(self, theta, g, state):
        eta = self._learning_rate
        if self.momentum == 0:
            theta -= eta * g
            return
        (v,) = state.arrays(theta, "velocity")
        v *= self.momentum
        v -= eta * g
        if self.nesterov:
            theta += self.momentum * v - eta * g
        else:
            theta += v


class Adam(Optimizer):
    """Adam: running means of the gradient and of its square, bias-corrected.

        m = β1 m + (1 - β1) g              (the code: m += (g - m)(1 - β1), Keras's form)
        v = β2 v + (1 - β2) g ⊙ g          (v += (g ⊙ g - v)(1 - β2))
        θ = θ - α m ⊘ (sqrt(v) + ε),       α = η sqrt(1 - β2^t) / (1 - β1^t)

    ``t`` is the step's number (1 for the first: ``iterations + 1``); ``m`` and ``v`` start at
    zero, and ``α`` folds in the two bias corrections (Keras's form: ``ε`` is added to the
    uncorrected ``sqrt(v)``). ``amsgrad=True`` divides by the largest ``v`` so far instead,
    ``v̂ = max(v̂, v)``, so that the denominator ``sqrt(v̂)`` never shrinks when a parameter's
    gradients shrink (``α`` still follows the bias corrections: with the default betas it falls
    to 0.15 η at step 12, then rises towards η).
    The arguments: ``η = learning_rate``, ``β1 = beta_1``, ``β2 = beta_2``, ``ε = epsilon``.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-07, amsgrad=False,
                 **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = _in_unit_interval("Adam", "beta_1", beta_1, "the decay rate of the running "
                                        "mean of the gradients")
        self.beta_2 = _in_unit_interval("Adam", "beta_2", beta_2, "the decay rate of the running "
                                        "mean of their squares")
        self.epsilon = _epsilon("Adam", epsilon)
        self.amsgrad = bool(amsgrad)

    def _own_config(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "amsgrad": self.amsgrad}

    def slot_names(self):
        return ("m", "v", "v_hat")

    def update(self, theta, g, state):
        xp = get_array_module(g)
        # the step size in the parameters' float type, as Keras computes it (float32 weights:
        # float32 arithmetic, so that the step is Keras's to the last bit)
        real = theta.dtype.type
        t = real(self.iterations + 1)
        alpha = (real(self._learning_rate) * np.sqrt(1 - real(self.beta_2) ** t)
                 / (1 - real(self.beta_1) ** t))
        m, v = state.arrays(theta, "m", "v")
        m += (g - m) * (1 - self.beta_1)
        v += (g * g - v) * (1 - self.beta_2)
        if self.amsgrad:
            (v_hat,) = state.arrays(theta, "v_hat")
            xp.maximum(v_hat, v, out=v_hat)
            v = v_hat
        theta -= (m * alpha) / (xp.sqrt(v) + self.epsilon)


class Adagrad(Optimizer):
    """Adagrad: each parameter's step shrinks with the sum of its squared gradients so far.

        a = a + g ⊙ g                 (a starts at ``initial_accumulator_value``, 0.1)
        θ = θ - η g ⊘ sqrt(a + ε)

    ``η = learning_rate``, ``ε = epsilon``.
    """

    replayable = True

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-07,
                 **kwargs):
        super().__init__(learning_rate, **kwargs)
        if not initial_accumulator_value >= 0.0:
            raise ValueError(f"Adagrad: initial_accumulator_value must be >= 0, got "
                             f"{initial_accumulator_value}")
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.epsilon = _epsilon("Adagrad", epsilon)

    def _own_config(self):
        return {"initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}

    def slot_names(self):
        return ("accumulator",)

    def update(self, theta, g, state):
        (a,) = state.arrays(theta, "accumulator", fill=self.initial_accumulator_value)
        a += g * g
        theta -= self._learning_rate * g / get_array_module(g).sqrt(a + self.epsilon)


class Adadelta(Optimizer):
    """Adadelta: the step ``Δ`` is scaled by the ratio of two running root-mean-squares, of the
    past steps and of the gradients, so that it has the units of ``θ``.

        s = ρ s + (1 - ρ) g ⊙ g                       running mean of squared gradients
        Δ = - sqrt(d + ε) ⊙ g ⊘ sqrt(s + ε)           (d: running mean of squared steps)
        d = ρ d + (1 - ρ) Δ ⊙ Δ
        θ = θ + η Δ

    ``η = learning_rate``, ``ρ = rho``, ``ε = epsilon``; ``s`` and ``d`` start at zero. The
    default learning rate is Keras's, 0.001 (tf.keras's too; the standalone Keras of 2.2 and
    before used 1.0, the rate of the original paper, where ``η`` does not appear).
    """

    replayable = True

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-07, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho = _in_unit_interval("Adadelta", "rho", rho, "the decay rate of the running "
                                     "means")
        self.epsilon = _epsilon("Adadelta", epsilon)

    def _own_config(self):
        return {"rho": self.rho, "epsilon": self.epsilon}

    def slot_names(self):
        return ("accumulated_grad", "accumulated_delta_var")

    def update(self, theta, g, state):
        xp, rho, eps = get_array_module(g), self.rho, self.epsilon
        s, d = state.arrays(theta, "accumulated_grad", "accumulated_delta_var")
        s *= rho
        s += (1 - rho) * (g * g)
        delta = -(xp.sqrt(d + eps) * g) / xp.sqrt(s + eps)
        d *= rho
        d += (1 - rho) * (delta * delta)
        theta += self._learning_rate * delta


CLASSES = (RMSprop, SGD, Adam, Adagrad, Adadelta)
OPTIMIZERS = {cls.__name__.lower(): cls for cls in CLASSES}

# Keras 3 optimizers that tinynet does not implement (lower case, as keras.optimizers.get takes them)
KERAS_ONLY = ("adamw", "adamax", "nadam", "ftrl", "lion", "adafactor", "lamb", "muon",
              "lossscaleoptimizer", "schedulefreeadamw")


def available():
    return "Adam, RMSprop, SGD, Adagrad and Adadelta (as classes, or by name: 'adam', ...)"


def get(optimizer):
    """An optimizer from a name (``"adam"``, ``"RMSprop"``, ... in any case: Keras's defaults), a
    class (its defaults), an instance (returned as is) or a config dict (:func:`from_config`, or
    Keras's ``{"class_name": ..., "config": {...}}``)."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, type) and issubclass(optimizer, Optimizer) and optimizer is not Optimizer:
        return optimizer()
    if isinstance(optimizer, dict):
        if "class_name" in optimizer:
            return from_config({"class": optimizer["class_name"], **optimizer.get("config", {})})
        return from_config(optimizer)
    if isinstance(optimizer, str):
        key = optimizer.lower()
        if key in OPTIMIZERS:
            return OPTIMIZERS[key]()
        if key in KERAS_ONLY:
            raise ValueError(f"optimizer {optimizer!r} is a Keras optimizer that tinynet does not "
                             f"implement; tinynet has {available()}")
        raise ValueError(f"unknown optimizer {optimizer!r}; tinynet has {available()}")
    name = getattr(optimizer, "__name__", None) or type(optimizer).__name__
    if name.lower() in KERAS_ONLY:
        raise ValueError(f"optimizer {name!r} is a Keras optimizer that tinynet does not "
                         f"implement; tinynet has {available()}")
    raise ValueError(f"cannot interpret {optimizer!r} as an optimizer; tinynet has {available()}")


def from_config(config, custom_objects=None):
    """The optimizer described by ``config`` (from :meth:`Optimizer.get_config`; the keys of
    configs saved before ``name`` and the clipping arguments existed are enough);
    ``custom_objects`` (``{name: class}``) gives optimizers and learning-rate schedules of one's
    own."""
    config = dict(config)
    name = config.pop("class", None)
    own = (custom_objects or {}).get(name)
    cls = own if isinstance(own, type) and issubclass(own, Optimizer) else \
        OPTIMIZERS.get(str(name).lower())
    if cls is None:
        raise ValueError(f"unknown optimizer class {name!r}; tinynet has {available()} (an "
                         f"optimizer of one's own: custom_objects={{{name!r}: its class}})")
    if isinstance(config.get("learning_rate"), dict):  # a schedule, as serialize wrote it
        config["learning_rate"] = schedules.deserialize(config["learning_rate"], custom_objects)
    return cls(**config)


def __getattr__(name):
    from .names import absent
    if name.lower() in KERAS_ONLY:
        raise absent(f"tinynet.optimizers has no {name!r}: that Keras optimizer is not "
                     f"implemented in tinynet; it has {available()}", __name__, name)
    raise AttributeError(f"module 'tinynet.optimizers' has no attribute {name!r}")
