"""Losses with Keras 3's names and numbers, each with its formula and its gradient.

Notation: ``y`` the target, ``p`` predicted probabilities, ``z`` logits, ``K`` classes on the last
axis. Every loss is a *mean*: a loss per position, averaged over all ``M`` positions of the batch,
where a position is

* for the cross-entropies over ``K`` classes, one row of ``K`` outputs: ``M = N`` for ``(N, K)``,
  ``M = N H W`` for a softmax per pixel ``(N, H, W, K)`` (as in Keras);
* for the element-wise losses (mean squared and absolute errors, binary cross-entropy), one unit:
  ``M = N K`` for ``(N, K)`` (Keras averages over the last axis, then over the batch).

``per_example`` gives each example's mean over its own positions, shape ``(N,)``; the batch loss
is their mean, and ``gradient`` is ``dL/dy_pred`` of that batch loss (hence the ``1 / M``).

Categorical cross-entropy (``CategoricalCrossentropy``, one-hot or probability targets)::

    L = - sum_k y_k log p_k

*From probabilities* (``from_logits=False``, Keras's default): Keras first renormalises ``p`` to
``q = p / sum_k p_k``, then clips ``q`` to ``c = clip(q, ε, 1 - ε)`` (``ε = 1e-7``) so that ``log``
stays finite, and ``L = - sum_k y_k log c_k``; the gradient flows through both steps, and is zero
where the clip is active::

    dL/dq_k = - y_k / c_k / M   (inside the clip, else 0),
    dL/dp   = (dL/dq - sum_k (dL/dq_k) q_k) / sum_k p_k

*From logits* (``from_logits=True``): ``log p = z - logsumexp(z)``, computed stably, and

    dL/dz = (p sum_k y_k - y) / M          ( = (p - y) / M for one-hot targets)

``label_smoothing=s`` replaces the targets by ``y (1 - s) + s / K`` first.

Sparse categorical cross-entropy (``SparseCategoricalCrossentropy``, integer labels ``t`` of shape
``(N,)`` or ``(N, 1)``, or one per pixel): the same loss with ``y = onehot(t)``, ``L = - log p_t``.
From logits it is exactly the categorical one on the one-hot labels,
``dL/dz = (softmax(z) - onehot(t)) / M``. From probabilities Keras on TensorFlow clips *without*
renormalising and then takes the log-softmax of ``log c`` (its JAX, PyTorch and NumPy backends
renormalise first; the two differ only where the clip acts)::

    c = clip(p, ε, 1 - ε),    L = log(sum_k c_k) - log c_t,
    dL/dp_k = (1 / sum_j c_j - [k = t] / c_t) / M      (inside the clip, else 0)

which is the categorical number whenever each row of ``p`` sums to one and lies inside the clip
(a softmax output), and differs from it by about ``ε`` where the clip acts.

Binary cross-entropy (``BinaryCrossentropy``), per output unit, targets ``y`` in ``[0, 1]``::

    from probabilities:  c = clip(p, ε, 1 - ε),   L = - y log c - (1 - y) log(1 - c),
                         dL/dp = (- y / c + (1 - y) / (1 - c)) / M       (inside the clip, else 0)
    from logits:         L = max(z, 0) - z y + log(1 + exp(-|z|))        (= -y log σ(z) - (1-y) log σ(-z))
                         dL/dz = ((1 - y) σ(z) - y σ(-z)) / M            (= (σ(z) - y) / M)

``label_smoothing=s`` replaces the targets by ``y (1 - s) + s / 2``.

Mean squared error (``MeanSquaredError``) and mean absolute error (``MeanAbsoluteError``), per
output unit::

    L = (p - y)^2,    dL/dp = 2 (p - y) / M
    L = |p - y|,      dL/dp = sign(p - y) / M

Fused losses. A model whose last layer applies a softmax (or a sigmoid), compiled with a
cross-entropy on probabilities, is trained on the logits, as Keras on TensorFlow does: ``fit``
asks the last layer for its logits ``z`` instead of ``p = softmax(z)`` and starts the backward
pass from ``dL/dz`` -- the same loss, without the clipping, and one Jacobian product fewer. The
functions :func:`softmax_cross_entropy`, :func:`sparse_softmax_cross_entropy` and
:func:`sigmoid_cross_entropy` compute ``(per-example losses, dL/dz)`` in one go, and each loss
that can be fused names the activation it fuses with (``loss.fuses_with``) and gives that pair
for its own targets (``loss.logits_loss(y_true, z)``, label smoothing included).

Besides the classes, Keras's functions (:func:`categorical_crossentropy`,
:func:`sparse_categorical_crossentropy`, :func:`binary_crossentropy`, :func:`mean_squared_error`
alias :func:`mse`, :func:`mean_absolute_error` alias :func:`mae`) return the loss per position
(the last axis reduced), as Keras's do, and :func:`get` turns a name, a class, a function or an
instance into a loss object.
"""
import functools
import math

import numpy as np

from .backend import eager_scalar, fused, get_array_module
from .names import written_over

EPSILON = 1e-7


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def _arrays(y_true, y_pred):
    """Both as arrays of the prediction's array library; ``y_pred`` as floats (float64 when it
    holds integers). ``y_true`` keeps its dtype: the arithmetic with ``y_pred`` promotes it."""
    xp = get_array_module(y_pred) if hasattr(y_pred, "shape") else np
    y_pred = xp.asarray(y_pred)
    if y_pred.dtype.kind != "f":
        y_pred = y_pred.astype(np.float64)
    return xp.asarray(y_true), y_pred


def _shape(a):
    return "(" + ", ".join(str(int(d)) for d in a.shape) + ("," if a.ndim == 1 else "") + ")"


def _terms(y_pred):
    """M for the cross-entropies over classes: the number of rows of K outputs."""
    return math.prod(y_pred.shape[:-1])


def _per_example(per_position):
    """Mean over the positions of each example: ``(N, ...)`` -> ``(N,)``."""
    return per_position.reshape(per_position.shape[0], -1).mean(axis=1)


def _log_softmax(z):
    xp = get_array_module(z)
    shifted = z - z.max(axis=-1, keepdims=True)  # shifting by the max changes nothing but overflow
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))


def _sigmoids(z):
    """``(σ(z), σ(-z))`` without overflow: both from ``e = exp(-|z|)``, which is at most 1."""
    xp = get_array_module(z)
    e = xp.exp(-xp.abs(z))
    big, small = 1.0 / (1.0 + e), e / (1.0 + e)
    positive = z >= 0
    return xp.where(positive, big, small), xp.where(positive, small, big)


def _same_shape(y_true, y_pred, where):
    """Targets as ``y_pred``'s shape for the element-wise and categorical losses. As Keras does,
    a trailing axis of 1 on one side only is dropped (``(N,)`` against ``(N, 1)``)."""
    if y_true.shape != y_pred.shape:
        if (y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1) or \
                (y_pred.ndim == y_true.ndim + 1 and y_pred.shape[-1] == 1):
            if y_true.size == y_pred.size:
                y_true = y_true.reshape(y_pred.shape)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{where}: y_true has shape {_shape(y_true)} but y_pred has shape "
                         f"{_shape(y_pred)}; they must be the same")
    if y_true.dtype.kind not in "biuf":
        raise TypeError(f"{where}: y_true has dtype {y_true.dtype}; give numbers")
    return y_true.astype(y_pred.dtype, copy=False)


def _categorical_targets(y_true, y_pred, where):
    if y_pred.ndim < 2:
        raise ValueError(f"{where}: y_pred of shape {_shape(y_pred)} has no class axis; it must "
                         "be (N, K) (or (N, ..., K)) with the K classes on the last axis")
    if y_true.shape != y_pred.shape and y_true.shape in (y_pred.shape[:-1], y_pred.shape[:-1] + (1,)):
        raise ValueError(f"{where}: y_true of shape {_shape(y_true)} holds class indices, but "
                         f"categorical_crossentropy needs one-hot labels of shape {_shape(y_pred)}; "
                         "use sparse_categorical_crossentropy, or tinynet.utils.to_categorical(y, "
                         f"{y_pred.shape[-1]})")
    return _same_shape(y_true, y_pred, where)


def _class_indices(labels, y_pred, where):
    """Integer class labels for ``y_pred`` of shape ``(N, ..., K)``: shape ``(N, ...)`` (a trailing
    axis of 1 is dropped), values in ``[0, K)``; floats holding whole numbers are accepted (Keras
    casts labels to integers). Returns them as int64 of shape ``y_pred.shape[:-1]``."""
    xp = get_array_module(y_pred)
    labels = xp.asarray(labels)
    if y_pred.ndim < 2:
        raise ValueError(f"{where}: y_pred of shape {_shape(y_pred)} has no class axis; it must "
                         "be (N, K) (or (N, ..., K)) with the K classes on the last axis")
    positions, k = tuple(y_pred.shape[:-1]), int(y_pred.shape[-1])
    if tuple(labels.shape) == positions + (1,):
        labels = labels.reshape(positions)
    if tuple(labels.shape) != positions:
        if tuple(labels.shape) == tuple(y_pred.shape):
            hint = ("; these look like one-hot labels: use categorical_crossentropy, or give "
                    "y.argmax(axis=-1)")
        else:
            hint = (f"; give one integer label per example, shape ({positions[0]},) or "
                    f"({positions[0]}, 1)" if len(positions) == 1 else "")
        raise ValueError(f"{where}: y_true has shape {_shape(labels)} but y_pred has shape "
                         f"{_shape(y_pred)}: sparse labels must have shape "
                         f"{_shape(y_pred[..., 0])} (one class index per row of {k} outputs)"
                         f"{hint}")
    if labels.dtype.kind not in "biuf":
        raise TypeError(f"{where}: labels have dtype {labels.dtype}; give integer class indices")
    bad = (labels < 0) | (labels >= k)
    if labels.dtype.kind == "f":
        bad = bad | (labels != xp.floor(labels))  # NaN is caught here too
    if bool(bad.any()):
        value = labels[bad].ravel()[0]
        raise ValueError(f"{where}: labels must be integer class indices in [0, {k}) for the {k} "
                         f"outputs of the last axis; found {value.item()!r}")
    return labels.astype(np.int64, copy=False)


def _one_hot(labels, k, dtype):
    xp = get_array_module(labels)
    return (labels[..., None] == xp.arange(k)).astype(dtype)


def _pick(a, labels):
    """``a[..., labels]`` position by position: the entry of each row at its label."""
    return get_array_module(a).take_along_axis(a, labels[..., None], axis=-1)[..., 0]


# ---------------------------------------------------------------------------------------------
# fused activation + loss on the logits
# ---------------------------------------------------------------------------------------------

def softmax_cross_entropy(y_true, logits):
    """The fused softmax + cross-entropy: ``(per-example losses (N,), dL/dlogits)`` of the mean loss.

    ``L = -sum_k y_k log softmax(z)_k`` and ``dL/dz = (softmax(z) sum_k y_k - y) / M``.
    On numba, for (N, K) logits, one compiled pass per row computes these lines' numbers, up to
    rounding (:func:`tinynet.kernels.numba_cpu.softmax_cross_entropy`).
    """
    kernel = fused("softmax_cross_entropy", logits)
    done = kernel(y_true, logits) if kernel is not None else None
    if done is not None:
        return done
    log_p = _log_softmax(logits)
    per_position = -(y_true * log_p).sum(axis=-1)
    p = get_array_module(logits).exp(log_p)
    grad = (p * y_true.sum(axis=-1, keepdims=True) - y_true) / _terms(logits)
    return _per_example(per_position), grad


def sparse_softmax_cross_entropy(labels, logits):
    """The fused softmax + cross-entropy for integer labels: ``(per-example losses (N,),
    dL/dlogits)`` of the mean loss.

    ``L = -log softmax(z)_t`` and ``dL/dz = (softmax(z) - onehot(t)) / M``. ``labels`` has shape
    ``(N,)`` or ``(N, 1)`` for logits ``(N, K)`` (``(N, H, W)`` for ``(N, H, W, K)``).
    """
    t = _class_indices(labels, logits, "sparse_softmax_cross_entropy")
    log_p = _log_softmax(logits)
    per_position = -_pick(log_p, t)
    p = get_array_module(logits).exp(log_p)
    grad = (p - _one_hot(t, logits.shape[-1], logits.dtype)) / _terms(logits)
    return _per_example(per_position), grad


def sigmoid_cross_entropy(y_true, logits):
    """The fused sigmoid + binary cross-entropy: ``(per-example losses (N,), dL/dlogits)`` of the
    mean over every output unit.

    ``L = max(z, 0) - z y + log(1 + exp(-|z|))`` and ``dL/dz = ((1 - y) σ(z) - y σ(-z)) / M``.
    """
    xp = get_array_module(logits)
    per_unit = xp.maximum(logits, 0) - logits * y_true + xp.log1p(xp.exp(-xp.abs(logits)))
    sig, sig_neg = _sigmoids(logits)
    grad = ((1 - y_true) * sig - y_true * sig_neg) / logits.size
    return _per_example(per_unit), grad


def fused_activation(loss):
    """The output activation whose logits ``loss.logits_loss`` takes (``loss.fuses_with``), or
    ``None``. A subclass that rewrites ``per_example`` or ``gradient`` but not ``logits_loss``
    (a focal loss derived from CategoricalCrossentropy) is not fused: training then computes
    the loss it wrote, on the probabilities, instead of its parent's fused loss."""
    activation = getattr(loss, "fuses_with", None)
    if activation is None or not _writes_its_logits_loss(type(loss)):
        return None
    return activation


@functools.lru_cache(maxsize=None)
def _writes_its_logits_loss(cls):
    """Whether ``cls``'s ``logits_loss`` is written where its ``per_example`` and ``gradient``
    are, or below (once per class: training asks at every step)."""
    def written_in(name):
        return next((k for k in cls.__mro__ if name in vars(k)), None)

    fused = written_in("logits_loss")
    return fused is not None and all(written_in(name) in fused.__mro__
                                     for name in ("per_example", "gradient"))


# ---------------------------------------------------------------------------------------------
# the loss classes
# ---------------------------------------------------------------------------------------------

class Loss:
    """A loss: ``loss(y_true, y_pred)`` (mean over the batch), ``loss.per_example(y_true, y_pred)``
    (shape ``(N,)``) and ``loss.gradient(y_true, y_pred)`` = dL/dy_pred of the mean."""

    name = "loss"
    from_logits = False
    fuses_with = None  # the output activation whose logits ``logits_loss`` takes, if any

    def __new__(cls, *args, **kwargs):
        # a loss of one's own writes both per_example and gradient (tinynet has no automatic
        # differentiation): refused when made, not at the first step of fit; so is Keras's
        # call(), which tinynet would not run (a subclass of a built-in loss trained silently
        # on its parent's formula)
        missing = [m for m in ("per_example", "gradient") if getattr(cls, m) is getattr(Loss, m)]
        keras_call = written_over(cls, "call", "per_example")
        if missing or keras_call:
            what = (f"{' and '.join(missing)} missing" if missing else
                    "call() is written below them, and tinynet would not run it")
            raise TypeError(f"{cls.__name__}: a loss writes per_example(y_true, y_pred), each "
                            "example's loss (shape (N,)), and gradient(y_true, y_pred), dL/dy_pred "
                            f"of their mean; {what} (Keras's call(y_true, y_pred) is not enough: "
                            "tinynet has no automatic differentiation); see "
                            "tinynet.losses.MeanSquaredError for a short example")
        return super().__new__(cls)

    def __init__(self, reduction="sum_over_batch_size", name=None, dtype=None):
        cls = type(self).__name__
        if reduction != "sum_over_batch_size":
            raise ValueError(f"{cls}: reduction={reduction!r} is not implemented in tinynet; its "
                             "losses are the mean over the batch (Keras's default, "
                             "reduction='sum_over_batch_size'); use per_example(y_true, y_pred) "
                             "for the loss of each example")
        if dtype is not None:
            raise ValueError(f"{cls}: dtype={dtype!r} is not implemented in tinynet; a loss is "
                             "computed in its y_pred's float type")
        if name is not None:
            self.name = str(name)

    def _check_axis(self, axis):
        if axis not in (-1, None):
            raise ValueError(f"{type(self).__name__}: axis={axis!r} is not implemented in "
                             "tinynet, which is channels-last: the classes are on the last axis "
                             "(axis=-1)")

    def per_example(self, y_true, y_pred):
        """The loss of each example (the mean over its positions), shape ``(N,)``."""
        raise NotImplementedError

    def gradient(self, y_true, y_pred):
        """dL/dy_pred of the batch-mean loss, shaped like ``y_pred``."""
        raise NotImplementedError

    def __call__(self, y_true, y_pred, sample_weight=None):
        """The mean loss over the batch; with ``sample_weight`` (one weight per example), the
        mean of the weighted losses (Keras's ``sum(w * loss) / N``). A number that also answers
        TensorFlow's ``.numpy()`` (``loss_fn(y, p).numpy()``, as in Keras's loops)."""
        y_true, y_pred = _arrays(y_true, y_pred)
        per = self.per_example(y_true, y_pred)
        if sample_weight is None:
            return eager_scalar(per.mean())
        w = get_array_module(per).asarray(sample_weight, dtype=per.dtype).reshape(-1)
        if w.shape != per.shape:
            raise ValueError(f"{type(self).__name__}: sample_weight has {w.shape[0]} entries for "
                             f"{per.shape[0]} examples")
        return eager_scalar((per * w).mean())

    def get_config(self):
        """The constructor's arguments, with ``"class"``: ``from_config(get_config())`` rebuilds it."""
        config = {"class": type(self).__name__}
        if self.name != type(self).name:
            config["name"] = self.name
        return config

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "class")
        return f"{type(self).__name__}({args})"


class _SmoothedCrossentropy(Loss):
    """What the categorical and the binary cross-entropy share: ``from_logits`` and Keras's
    ``label_smoothing`` (targets pulled towards the uniform ones), and their config."""

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name=None, dtype=None):
        super().__init__(reduction, type(self).name if name is None else name, dtype)
        self._check_axis(axis)
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)
        if not 0.0 <= self.label_smoothing <= 1.0:
            raise ValueError(f"{type(self).__name__}: label_smoothing must be in [0, 1], got "
                             f"{label_smoothing}")

    def get_config(self):
        config = super().get_config()
        config.update(from_logits=self.from_logits, label_smoothing=self.label_smoothing)
        return config


class CategoricalCrossentropy(_SmoothedCrossentropy):
    """Categorical cross-entropy on one-hot (or probability) targets, as Keras's:
    ``L = -sum_k y_k log p_k`` per row (see the module docstring for both paths)."""

    name = "categorical_crossentropy"
    fuses_with = "softmax"


    def _targets(self, y_true, y_pred):
        y_true = _categorical_targets(y_true, y_pred, self.name)
        if self.label_smoothing:
            s = self.label_smoothing
            y_true = y_true * (1.0 - s) + s / y_pred.shape[-1]
        return y_true

    @staticmethod
    def _clipped(p):
        q = p / p.sum(axis=-1, keepdims=True)
        return q, get_array_module(p).clip(q, EPSILON, 1.0 - EPSILON)

    def per_position(self, y_true, y_pred):
        """The loss of each row of K outputs, shape ``y_pred.shape[:-1]``."""
        y_true, y_pred = _arrays(y_true, y_pred)
        y = self._targets(y_true, y_pred)
        if self.from_logits:
            return -(y * _log_softmax(y_pred)).sum(axis=-1)
        _, c = self._clipped(y_pred)
        return -(y * get_array_module(c).log(c)).sum(axis=-1)

    def per_example(self, y_true, y_pred):
        return _per_example(self.per_position(y_true, y_pred))

    def gradient(self, y_true, y_pred):
        y_true, y_pred = _arrays(y_true, y_pred)
        y = self._targets(y_true, y_pred)
        if self.from_logits:
            return softmax_cross_entropy(y, y_pred)[1]
        xp = get_array_module(y_pred)
        s = y_pred.sum(axis=-1, keepdims=True)
        q, c = self._clipped(y_pred)
        inside = (q >= EPSILON) & (q <= 1.0 - EPSILON)      # clip passes the gradient only inside
        dq = xp.where(inside, -y / c, 0.0) / _terms(y_pred)
        return (dq - (dq * q).sum(axis=-1, keepdims=True)) / s  # through q = p / sum(p)

    def logits_loss(self, y_true, logits):
        """``(per-example losses, dL/dz)`` for a softmax output given by its logits ``z``."""
        y_true, logits = _arrays(y_true, logits)
        return softmax_cross_entropy(self._targets(y_true, logits), logits)


class SparseCategoricalCrossentropy(Loss):
    """Categorical cross-entropy on integer labels (shape ``(N,)`` or ``(N, 1)``; ``(N, H, W)``
    for a softmax per pixel), as Keras's: ``L = -log p_t`` per row."""

    name = "sparse_categorical_crossentropy"
    fuses_with = "softmax"

    def __init__(self, from_logits=False, ignore_class=None, reduction="sum_over_batch_size",
                 axis=-1, name="sparse_categorical_crossentropy", dtype=None):
        super().__init__(reduction, name, dtype)
        self._check_axis(axis)
        if ignore_class is not None:
            raise ValueError(f"SparseCategoricalCrossentropy: ignore_class={ignore_class!r} is "
                             "not implemented in tinynet; every label counts")
        self.from_logits = bool(from_logits)

    def get_config(self):
        config = super().get_config()
        config.update(from_logits=self.from_logits)
        return config

    def per_position(self, y_true, y_pred):
        """The loss of each row of K outputs, shape ``y_pred.shape[:-1]``."""
        y_true, y_pred = _arrays(y_true, y_pred)
        t = _class_indices(y_true, y_pred, self.name)
        if self.from_logits:
            return -_pick(_log_softmax(y_pred), t)
        xp = get_array_module(y_pred)
        c = xp.clip(y_pred, EPSILON, 1.0 - EPSILON)
        return xp.log(c.sum(axis=-1)) - xp.log(_pick(c, t))

    def per_example(self, y_true, y_pred):
        return _per_example(self.per_position(y_true, y_pred))

    def gradient(self, y_true, y_pred):
        y_true, y_pred = _arrays(y_true, y_pred)
        if self.from_logits:
            return sparse_softmax_cross_entropy(y_true, y_pred)[1]
        t = _class_indices(y_true, y_pred, self.name)
        xp = get_array_module(y_pred)
        c = xp.clip(y_pred, EPSILON, 1.0 - EPSILON)
        inside = (y_pred >= EPSILON) & (y_pred <= 1.0 - EPSILON)
        dc = 1.0 / c.sum(axis=-1, keepdims=True) - _one_hot(t, y_pred.shape[-1], y_pred.dtype) / c
        return xp.where(inside, dc, 0.0) / _terms(y_pred)

    def logits_loss(self, y_true, logits):
        """``(per-example losses, dL/dz)`` for a softmax output given by its logits ``z``."""
        y_true, logits = _arrays(y_true, logits)
        return sparse_softmax_cross_entropy(y_true, logits)


class BinaryCrossentropy(_SmoothedCrossentropy):
    """Binary cross-entropy per output unit, targets in ``[0, 1]``, as Keras's:
    ``L = -y log p - (1 - y) log(1 - p)``, averaged over every unit."""

    name = "binary_crossentropy"
    fuses_with = "sigmoid"


    def _targets(self, y_true, y_pred):
        y_true = _same_shape(y_true, y_pred, self.name)
        if self.label_smoothing:
            y_true = y_true * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        return y_true

    def per_unit(self, y_true, y_pred):
        """The loss of each output unit, shaped like ``y_pred``."""
        y_true, y_pred = _arrays(y_true, y_pred)
        y = self._targets(y_true, y_pred)
        xp = get_array_module(y_pred)
        if self.from_logits:
            z = y_pred
            return xp.maximum(z, 0) - z * y + xp.log1p(xp.exp(-xp.abs(z)))
        c = xp.clip(y_pred, EPSILON, 1.0 - EPSILON)
        return -(y * xp.log(c) + (1 - y) * xp.log(1 - c))

    def per_example(self, y_true, y_pred):
        return _per_example(self.per_unit(y_true, y_pred))

    def gradient(self, y_true, y_pred):
        y_true, y_pred = _arrays(y_true, y_pred)
        y = self._targets(y_true, y_pred)
        if self.from_logits:
            return sigmoid_cross_entropy(y, y_pred)[1]
        xp = get_array_module(y_pred)
        c = xp.clip(y_pred, EPSILON, 1.0 - EPSILON)
        inside = (y_pred >= EPSILON) & (y_pred <= 1.0 - EPSILON)
        return xp.where(inside, -y / c + (1 - y) / (1 - c), 0.0) / y_pred.size

    def logits_loss(self, y_true, logits):
        """``(per-example losses, dL/dz)`` for a sigmoid output given by its logits ``z``."""
        y_true, logits = _arrays(y_true, logits)
        return sigmoid_cross_entropy(self._targets(y_true, logits), logits)


class MeanSquaredError(Loss):
    """Mean squared error per output unit, as Keras's: ``L = (p - y)^2`` averaged over every unit."""

    name = "mean_squared_error"

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error", dtype=None):
        super().__init__(reduction, name, dtype)

    def per_unit(self, y_true, y_pred):
        """The loss of each output unit, shaped like ``y_pred``."""
        y_true, y_pred = _arrays(y_true, y_pred)
        d = y_pred - _same_shape(y_true, y_pred, self.name)
        return d * d

    def per_example(self, y_true, y_pred):
        return _per_example(self.per_unit(y_true, y_pred))

    def gradient(self, y_true, y_pred):
        y_true, y_pred = _arrays(y_true, y_pred)
        return 2.0 * (y_pred - _same_shape(y_true, y_pred, self.name)) / y_pred.size


class MeanAbsoluteError(Loss):
    """Mean absolute error per output unit, as Keras's: ``L = |p - y|`` averaged over every unit.

    Its gradient is ``sign(p - y) / M``: each unit pulled towards its target by the same step
    whatever the error's size (0 where ``p = y``, as TensorFlow's ``abs``), which makes it less
    swayed by outliers than the squared error."""

    name = "mean_absolute_error"

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_error", dtype=None):
        super().__init__(reduction, name, dtype)

    def per_unit(self, y_true, y_pred):
        """The loss of each output unit, shaped like ``y_pred``."""
        y_true, y_pred = _arrays(y_true, y_pred)
        return abs(y_pred - _same_shape(y_true, y_pred, self.name))

    def per_example(self, y_true, y_pred):
        return _per_example(self.per_unit(y_true, y_pred))

    def gradient(self, y_true, y_pred):
        y_true, y_pred = _arrays(y_true, y_pred)
        d = y_pred - _same_shape(y_true, y_pred, self.name)
        return get_array_module(d).sign(d) / y_pred.size


# ---------------------------------------------------------------------------------------------
# Keras's functions: the loss per position (the last axis reduced)
# ---------------------------------------------------------------------------------------------

def _keras_rank(y_true, y_pred):
    """A rank-1 ``y_pred`` beside an ``(N, 1)`` ``y_true`` becomes ``(N, 1)``, as Keras's
    ``mean_squared_error`` does (Keras's ``binary_crossentropy`` function refuses that pair;
    tinynet's takes it the same way)."""
    y_true, y_pred = _arrays(y_true, y_pred)
    if y_pred.ndim == 1 and y_true.ndim == 2 and y_true.shape[-1] == 1:
        y_pred = y_pred[:, None]
    return y_true, y_pred


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Categorical cross-entropy of each row: shape ``y_pred.shape[:-1]``, e.g. ``(N,)``."""
    return CategoricalCrossentropy(from_logits, label_smoothing, axis).per_position(y_true, y_pred)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None, axis=-1):
    """Cross-entropy of each row against integer labels: shape ``y_pred.shape[:-1]``, e.g. ``(N,)``."""
    return SparseCategoricalCrossentropy(from_logits, ignore_class, axis=axis).per_position(
        y_true, y_pred)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Binary cross-entropy averaged over the last axis: shape ``y_pred.shape[:-1]``."""
    y_true, y_pred = _keras_rank(y_true, y_pred)
    return BinaryCrossentropy(from_logits, label_smoothing, axis).per_unit(
        y_true, y_pred).mean(axis=-1)


def mean_squared_error(y_true, y_pred):
    """Squared error averaged over the last axis: shape ``y_pred.shape[:-1]``."""
    y_true, y_pred = _keras_rank(y_true, y_pred)
    return MeanSquaredError().per_unit(y_true, y_pred).mean(axis=-1)


mse = mean_squared_error


def mean_absolute_error(y_true, y_pred):
    """Absolute error averaged over the last axis: shape ``y_pred.shape[:-1]``."""
    y_true, y_pred = _keras_rank(y_true, y_pred)
    return MeanAbsoluteError().per_unit(y_true, y_pred).mean(axis=-1)


mae = mean_absolute_error


# ---------------------------------------------------------------------------------------------
# names
# ---------------------------------------------------------------------------------------------

CLASSES = (CategoricalCrossentropy, SparseCategoricalCrossentropy, BinaryCrossentropy,
           MeanSquaredError, MeanAbsoluteError)

# every name Keras's losses.get accepts for a loss tinynet has -> its class
LOSSES = {
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "bce": BinaryCrossentropy,
    "BCE": BinaryCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "MSE": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
    "MAE": MeanAbsoluteError,
}
LOSSES.update({cls.__name__: cls for cls in CLASSES})

FUNCTIONS = {
    categorical_crossentropy: CategoricalCrossentropy,
    sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
    binary_crossentropy: BinaryCrossentropy,
    mean_squared_error: MeanSquaredError,
    mean_absolute_error: MeanAbsoluteError,
}

# Keras 3 losses that tinynet does not implement (names as keras.losses.get takes them)
KERAS_ONLY = (
    "BinaryFocalCrossentropy", "CTC", "CategoricalFocalCrossentropy",
    "CategoricalGeneralizedCrossEntropy", "CategoricalHinge", "Circle", "CosineSimilarity", "Dice",
    "Hinge", "Huber", "KLD", "KLDivergence", "LogCosh", "MAPE", "MSLE",
    "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError", "Poisson", "SquaredHinge",
    "Tversky", "binary_focal_crossentropy", "categorical_focal_crossentropy",
    "categorical_generalized_cross_entropy", "categorical_hinge", "circle", "cosine_similarity",
    "ctc", "dice", "hinge", "huber", "kl_divergence", "kld", "kullback_leibler_divergence",
    "log_cosh", "logcosh", "mape", "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error", "msle", "poisson", "squared_hinge", "tversky",
)


def available():
    """What tinynet has, for error messages."""
    return ("categorical_crossentropy, sparse_categorical_crossentropy, binary_crossentropy, "
            "mean_squared_error ('mse') and mean_absolute_error ('mae'), as strings, classes "
            "(CategoricalCrossentropy, ...) or functions (tinynet.losses.categorical_crossentropy, "
            "...)")


def get(loss):
    """A loss object from a name (Keras's strings, e.g. ``"sparse_categorical_crossentropy"``,
    ``"mse"``), a loss class, one of Keras's loss functions (``losses.categorical_crossentropy``:
    the class with its defaults), an instance (returned as is) or a :meth:`Loss.get_config` dict."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, type) and issubclass(loss, Loss) and loss is not Loss:
        return loss()
    if isinstance(loss, dict):
        return from_config(loss)
    if isinstance(loss, str):
        if loss in LOSSES:
            return LOSSES[loss]()
        if loss in KERAS_ONLY:
            raise ValueError(f"loss {loss!r} is a Keras loss that tinynet does not implement; "
                             f"tinynet has {available()}")
        raise ValueError(f"unknown loss {loss!r}; tinynet has {available()}")
    if callable(loss) and loss in FUNCTIONS:
        return FUNCTIONS[loss]()
    name = getattr(loss, "__name__", None) or type(loss).__name__
    if name in KERAS_ONLY:
        raise ValueError(f"loss {name!r} is a Keras loss that tinynet does not implement; "
                         f"tinynet has {available()}")
    if callable(loss):
        raise ValueError(f"cannot use {loss!r} as a loss: tinynet needs a loss it knows the "
                         f"gradient of (a function is not enough: a loss of one's own "
                         f"subclasses tinynet.losses.Loss and writes per_example and gradient); "
                         f"it has {available()}")
    raise ValueError(f"cannot interpret {loss!r} as a loss; tinynet has {available()}")


def from_config(config, custom_objects=None):
    """The loss described by ``config`` (from :meth:`Loss.get_config`); ``custom_objects``
    (``{name: class}``) gives losses of one's own."""
    config = dict(config)
    name = config.pop("class", None)
    classes = {cls.__name__: cls for cls in CLASSES}
    own = (custom_objects or {}).get(name)
    if isinstance(own, type) and issubclass(own, Loss):
        return own(**config)
    if name not in classes:
        raise ValueError(f"unknown loss class {name!r}; known: {', '.join(classes)} (a loss of "
                         f"one's own: custom_objects={{{name!r}: its class}})")
    return classes[name](**config)


def __getattr__(name):
    from .names import absent
    if name in KERAS_ONLY:
        raise absent(f"tinynet.losses has no {name!r}: that Keras loss is not implemented in "
                     f"tinynet; it has {available()}", __name__, name)
    raise AttributeError(f"module 'tinynet.losses' has no attribute {name!r}")
