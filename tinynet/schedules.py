"""Learning-rate schedules: the learning rate as a function of the step, ``η(t)``, with the names,
arguments and numbers of Keras's ``keras.optimizers.schedules`` (also reachable here as
``tinynet.optimizers.schedules``).

Give a schedule as an optimizer's learning rate::

    lr = optimizers.schedules.ExponentialDecay(1e-3, decay_steps=469, decay_rate=0.5)
    model.compile(optimizers.RMSprop(learning_rate=lr), "categorical_crossentropy")

Before each step the optimizer computes ``η = schedule(t)``, with ``t = optimizer.iterations``
the number of steps already taken (0 for the first step), and runs its update with that ``η``.
``t`` counts batches, not epochs: with 60,000 images in batches of 128, an epoch is 469 steps.
``optimizer.learning_rate`` reads the rate of the next step. A schedule fixes the learning rate,
so it cannot also be set by hand or by a callback (``ReduceLROnPlateau``), as in Keras.

Each rate is computed in float32, operation by operation in Keras's order, as Keras does (its
``initial_learning_rate`` becomes a float32 tensor), so that a float32 model takes the same steps
in both frameworks: the same float32 numbers where only +, -, *, / and floor are involved, within a
float32 rounding or two (about 1e-7 relative) where a power or a cosine is (ExponentialDecay,
CosineDecay, CosineDecayRestarts: NumPy's and TensorFlow's ``pow``/``cos`` round differently).
With ``η0 = initial_learning_rate``, ``T = decay_steps`` and ``r = decay_rate``:

    ExponentialDecay        η0 · r^(t/T)                 (``staircase=True``: r^floor(t/T))
    InverseTimeDecay        η0 / (1 + r · t/T)           (``staircase=True``: floor(t/T))
    PolynomialDecay         (η0 - η_end) · (1 - t'/T)^power + η_end,  t' = min(t, T)
                            (``cycle=True``: T grows to the first multiple of itself at or
                            after t)
    PiecewiseConstantDecay  values[0] while t <= boundaries[0], values[i] while
                            boundaries[i-1] < t <= boundaries[i], values[-1] after the last
    CosineDecay             η0 · ((1 - α) · ½(1 + cos(π t'/T)) + α),  t' = min(t, T),
                            after an optional linear warm-up from η0 to ``warmup_target``
                            over ``warmup_steps`` (the cosine then starts from the target)
    CosineDecayRestarts     the cosine decay over T steps, then again over t_mul·T steps from
                            η0 · ((1 - α) · m_mul + α), and so on (SGDR, Loshchilov & Hutter
                            2016)

Write one's own by subclassing :class:`LearningRateSchedule` (``__call__(self, step)`` returns the
rate; ``get_config()`` the constructor's arguments, for saving).
"""
import math

import numpy as np

from . import checks

_F32 = np.float32


class LearningRateSchedule:
    """Base class of the schedules: ``schedule(step)`` is the learning rate of step ``step``
    (counted from 0). A schedule of one's own overrides ``__call__`` and, to be saved with a
    model, ``get_config`` (a dict of its constructor's arguments)."""

    def __call__(self, step):
        raise NotImplementedError(f"learning-rate schedule {type(self).__name__} must override "
                                  "__call__(self, step), which returns the learning rate of step "
                                  "`step` (0 for the first)")

    def get_config(self):
        raise NotImplementedError(f"learning-rate schedule {type(self).__name__} must override "
                                  "get_config() (a dict of its constructor's arguments) to be "
                                  "saved")

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        try:
            args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        except NotImplementedError:
            args = "..."
        return f"{type(self).__name__}({args})"


def _number(cls, what, value, meaning="", none=False):
    """``value`` itself when it is a number (``None`` too with ``none``), else a ValueError naming
    the argument (:func:`tinynet.checks.real_number`); kept as given (the config keeps it so)."""
    if not (value is None and none):
        checks.real_number(value, what, cls, meaning)
    return value


def _positive_steps(cls, what, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or \
            not value > 0:
        raise ValueError(f"{cls}: {what} must be a number > 0 (steps, that is batches), got "
                         f"{value!r}")
    return value


class _PeriodDecay(LearningRateSchedule):
    """What ExponentialDecay and InverseTimeDecay share: their arguments, and the number of
    periods done, ``p = t/T`` (``floor(t/T)`` with ``staircase=True``), in float32."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase, name):
        cls = type(self).__name__
        self.initial_learning_rate = _number(cls, "initial_learning_rate", initial_learning_rate)
        self.decay_steps = _positive_steps(cls, "decay_steps", decay_steps)
        self.decay_rate = _number(cls, "decay_rate", decay_rate)
        self.staircase = staircase
        self.name = name

    def _periods(self, step):
        p = _F32(step) / _F32(self.decay_steps)
        return np.floor(p) if self.staircase else p

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


class ExponentialDecay(_PeriodDecay):
    """``η0 · r^(t/T)``: the rate is multiplied by ``decay_rate`` every ``decay_steps`` steps,
    smoothly, or all at once at the end of each period with ``staircase=True`` (``r^floor(t/T)``)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="ExponentialDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step):
        return _F32(self.initial_learning_rate) * np.power(_F32(self.decay_rate),
                                                           self._periods(step))


class InverseTimeDecay(_PeriodDecay):
    """``η0 / (1 + r · t/T)``: the rate falls as ``1/t`` (``staircase=True``: ``floor(t/T)``,
    by steps at the end of each period of ``decay_steps``)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="InverseTimeDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step):
        return _F32(self.initial_learning_rate) / (_F32(1) + _F32(self.decay_rate) *
                                                   self._periods(step))


class PolynomialDecay(LearningRateSchedule):
    """``(η0 - η_end) · (1 - t'/T)^power + η_end`` with ``t' = min(t, T)``: from ``η0`` down to
    ``end_learning_rate`` in ``decay_steps`` steps (a straight line for ``power=1``), then
    constant. ``cycle=True``: ``t`` is not clamped; instead ``T`` grows to the first multiple of
    itself at or after ``t`` (``T · ceil(t/T)``), so the rate reaches ``η_end`` at each multiple
    of ``T`` and jumps up at the step after it (to 0.45 at step 11 for ``η0 = 1``, ``T = 10``,
    ``η_end = 0``) and decays again, more slowly."""

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0,
                 cycle=False, name="PolynomialDecay"):
        cls = "PolynomialDecay"
        self.initial_learning_rate = _number(cls, "initial_learning_rate", initial_learning_rate)
        self.decay_steps = _positive_steps(cls, "decay_steps", decay_steps)
        self.end_learning_rate = _number(cls, "end_learning_rate", end_learning_rate)
        self.power = _number(cls, "power", power)
        self.cycle = cycle
        self.name = name

    def __call__(self, step):
        t, period = _F32(step), _F32(self.decay_steps)
        if self.cycle:
            multiplier = _F32(1) if t == 0 else np.ceil(t / _F32(self.decay_steps))
            period = period * multiplier
        else:
            t = min(t, period)
        p = t / period
        start, end = _F32(self.initial_learning_rate), _F32(self.end_learning_rate)
        return (start - end) * np.power(_F32(1) - p, _F32(self.power)) + end

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "end_learning_rate": self.end_learning_rate,
                "power": self.power, "cycle": self.cycle, "name": self.name}


class PiecewiseConstantDecay(LearningRateSchedule):
    """A constant rate on each interval of steps: ``values[0]`` while ``t <= boundaries[0]``,
    ``values[i]`` while ``boundaries[i-1] < t <= boundaries[i]``, ``values[-1]`` after the last
    boundary (one more value than boundaries)."""

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        boundaries, values = list(boundaries), list(values)
        if len(boundaries) != len(values) - 1:
            raise ValueError(f"PiecewiseConstantDecay: give one more value than boundaries (a "
                             f"value before the first boundary, one between each two, one after "
                             f"the last); got {len(boundaries)} boundaries and {len(values)} "
                             "values")
        for what, numbers in (("boundaries", boundaries), ("values", values)):
            for k, v in enumerate(numbers):
                _number("PiecewiseConstantDecay", f"{what}[{k}]", v,
                        "a step" if what == "boundaries" else "a learning rate")
        if any(b >= c for b, c in zip(boundaries, boundaries[1:])):
            raise ValueError(f"PiecewiseConstantDecay: the boundaries must increase, got "
                             f"{boundaries}")
        self.boundaries, self.values, self.name = boundaries, values, name

    def __call__(self, step):
        for boundary, value in zip(self.boundaries, self.values):
            if step <= boundary:
                return _F32(value)
        return _F32(self.values[-1])

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


def _cosine(fraction, alpha):
    """``(1 - α) · ½(1 + cos(π f)) + α``: from 1 at ``f = 0`` down to ``α`` at ``f = 1``."""
    return _F32(1 - alpha) * (_F32(0.5) * (_F32(1) + np.cos(_F32(math.pi) * fraction))) + \
        _F32(alpha)


class CosineDecay(LearningRateSchedule):
    """``η0 · ((1 - α) · ½(1 + cos(π t'/T)) + α)`` with ``t' = min(t, T)``: from ``η0`` down to
    ``α · η0`` along half a cosine in ``decay_steps`` steps, then constant.

    With ``warmup_target``: first a straight line from ``η0`` up to ``warmup_target`` over
    ``warmup_steps`` steps, then the cosine decay from ``warmup_target``."""

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay",
                 warmup_target=None, warmup_steps=0):
        cls = "CosineDecay"
        self.initial_learning_rate = _number(cls, "initial_learning_rate", initial_learning_rate)
        self.decay_steps = _positive_steps(cls, "decay_steps", decay_steps)
        self.alpha = _number(cls, "alpha", alpha)
        self.name = name
        self.warmup_target = _number(cls, "warmup_target", warmup_target, none=True)
        if not float(_number(cls, "warmup_steps", warmup_steps)) >= 0:
            raise ValueError(f"CosineDecay: warmup_steps must be a number >= 0 (steps, that is "
                             f"batches; 0 for no warm-up), got {warmup_steps!r}")
        self.warmup_steps = warmup_steps

    def __call__(self, step):
        t, period = _F32(step), _F32(self.decay_steps)
        start = _F32(self.initial_learning_rate)
        if self.warmup_target is None:
            return start * _cosine(min(t, period) / period, self.alpha)
        target, warmup = _F32(self.warmup_target), _F32(self.warmup_steps)
        t = min(t, period + warmup)
        if t < warmup:  # the warm-up: a straight line from η0 to the target
            return (target - start) * (t / warmup) + start
        return target * _cosine((t - warmup) / period, self.alpha)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha, "name": self.name,
                "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR): the cosine decay of :class:`CosineDecay` over
    ``first_decay_steps`` steps, then, restarting from the top, over ``t_mul`` times as many steps
    from ``m_mul`` times the previous peak, and so on.

    With ``f = t / first_decay_steps``, the restart ``i`` that ``t`` falls in is ``floor(f)`` for
    ``t_mul = 1``, else ``floor(log(1 - f (1 - t_mul)) / log(t_mul))`` (the periods 1, t_mul,
    t_mul², ... add up to ``(1 - t_mul^i) / (1 - t_mul)``); the fraction of that period done is
    ``f'``, and the rate ``η0 · ((1 - α) · m_mul^i · ½(1 + cos(π f')) + α)``."""

    def __init__(self, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0, alpha=0.0,
                 name="SGDRDecay"):
        cls = "CosineDecayRestarts"
        self.initial_learning_rate = _number(cls, "initial_learning_rate", initial_learning_rate)
        self.first_decay_steps = _positive_steps(cls, "first_decay_steps", first_decay_steps)
        if not float(_number(cls, "t_mul", t_mul)) > 0:  # log(t_mul) finds the restart
            raise ValueError(f"CosineDecayRestarts: t_mul must be a number > 0 (each period is "
                             f"t_mul times the one before), got {t_mul!r}")
        self.t_mul, self.name = t_mul, name
        self.m_mul, self.alpha = _number(cls, "m_mul", m_mul), _number(cls, "alpha", alpha)

    def __call__(self, step):
        fraction = _F32(step) / _F32(self.first_decay_steps)
        t_mul = _F32(self.t_mul)
        if t_mul == 1:
            restart = np.floor(fraction)
            fraction = fraction - restart
        else:
            restart = np.floor(np.log(_F32(1) - fraction * (_F32(1) - t_mul)) / np.log(t_mul))
            done = (_F32(1) - np.power(t_mul, restart)) / (_F32(1) - t_mul)  # periods before
            fraction = (fraction - done) / np.power(t_mul, restart)
        peak = np.power(_F32(self.m_mul), restart)
        cosine = _F32(0.5) * peak * (_F32(1) + np.cos(_F32(math.pi) * fraction))
        decayed = _F32(1 - self.alpha) * cosine + _F32(self.alpha)
        return _F32(self.initial_learning_rate) * decayed

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "first_decay_steps": self.first_decay_steps, "t_mul": self.t_mul,
                "m_mul": self.m_mul, "alpha": self.alpha, "name": self.name}


SCHEDULES = {cls.__name__: cls for cls in (ExponentialDecay, InverseTimeDecay, PolynomialDecay,
                                           PiecewiseConstantDecay, CosineDecay,
                                           CosineDecayRestarts)}


def serialize(schedule):
    """``{"class_name": ..., "config": {...}}``, Keras's form, JSON-compatible:
    :func:`deserialize` rebuilds the schedule."""
    if not isinstance(schedule, LearningRateSchedule):
        raise TypeError(f"serialize: {schedule!r} is not a learning-rate schedule (a "
                        "tinynet.optimizers.schedules.LearningRateSchedule)")
    name = type(schedule).__name__
    own = SCHEDULES.get(name) is not type(schedule)  # a schedule of one's own, as Keras writes it
    return {"module": None if own else "keras.optimizers.schedules", "class_name": name,
            "config": schedule.get_config(), "registered_name": name if own else None}


class UnknownScheduleError(ValueError):
    """A serialized schedule names a class that is neither tinynet's nor in ``custom_objects``."""


def deserialize(config, custom_objects=None):
    """The schedule that :func:`serialize` described (a schedule of one's own is found in
    ``custom_objects``, ``{class name: class}``, as in Keras)."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"deserialize: expected {{'class_name': ..., 'config': {{...}}}} (from "
                         f"serialize), got {config!r}")
    name = config["class_name"]
    cls = dict(SCHEDULES, **(custom_objects or {})).get(name)
    if cls is None:
        raise UnknownScheduleError(f"deserialize: unknown learning-rate schedule {name!r}; tinynet has "
                         f"{', '.join(SCHEDULES)}; give a schedule of your own as "
                         f"custom_objects={{{name!r}: {name}}}")
    return cls.from_config(dict(config.get("config", {})))


def __getattr__(name):
    from .names import absent
    if name.startswith("__"):
        raise AttributeError(name)
    have = ", ".join(["LearningRateSchedule", *SCHEDULES, "serialize", "deserialize"])
    raise absent(f"tinynet.optimizers.schedules has no {name!r}; it has {have} (all of Keras's)",
                 "tinynet.optimizers.schedules", name)
