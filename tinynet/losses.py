"""Categorical cross-entropy, and the fused softmax + cross-entropy that ``fit`` trains with.

For one example with one-hot (or probability) target ``y`` and predicted probabilities ``p``
(the last axis holds the K classes):

    L = - sum_k y_k log p_k            and the batch loss is the mean over the N examples.

An output with more axes than ``(N, K)`` (a softmax per pixel, ``(N, H, W, K)``) has one such
loss per position; as in Keras, the loss is the mean over every position of every example.
Below, ``M`` is the number of terms averaged: ``N`` times the positions per example.

*From probabilities* (``from_logits=False``, Keras's default): Keras first renormalises ``p`` to
sum to one, then clips it to ``[1e-7, 1 - 1e-7]`` so that ``log`` stays finite; the gradient
flows through both steps (zero where the clip is active).

*From logits* (``from_logits=True``): ``log p = z - logsumexp(z)``, computed stably, and the
gradient with respect to the logits is the famous

    dL/dz = (p * sum_k y_k - y) / M          ( = (p - y) / M for one-hot targets)

:func:`softmax_cross_entropy` is that fused softmax + cross-entropy. A model whose last layer
applies a softmax, compiled with the cross-entropy on probabilities, is trained on it, as Keras
does: ``fit`` asks the last layer for its logits ``z`` (``forward(..., activate=False)``) instead
of ``p = softmax(z)``, and starts the backward pass from ``dL/dz`` -- the same loss, without the
clipping, and one Jacobian product fewer.
"""
import math

from .backend import get_array_module

EPSILON = 1e-7


def _terms(y_pred):
    """M: how many per-position losses the batch mean averages (N times the positions)."""
    return math.prod(y_pred.shape[:-1])


def _per_example(per_position):
    """Mean over the positions of each example: ``(N, ...)`` -> ``(N,)``."""
    return per_position.reshape(per_position.shape[0], -1).mean(axis=1)


def _log_softmax(z):
    xp = get_array_module(z)
    shifted = z - z.max(axis=-1, keepdims=True)  # shifting by the max changes nothing but overflow
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))


def softmax_cross_entropy(y_true, logits):
    """The fused softmax + cross-entropy: ``(per-example losses (N,), dL/dlogits)`` of the mean loss.

    ``L = -sum_k y_k log softmax(z)_k`` and ``dL/dz = (softmax(z) sum_k y_k - y) / M``.
    """
    log_p = _log_softmax(logits)
    per_position = -(y_true * log_p).sum(axis=-1)
    p = get_array_module(logits).exp(log_p)
    grad = (p * y_true.sum(axis=-1, keepdims=True) - y_true) / _terms(logits)
    return _per_example(per_position), grad


class CategoricalCrossentropy:
    """``loss = fn(y_true, y_pred)`` (mean over the batch), ``fn.gradient(y_true, y_pred)`` = dL/dy_pred."""

    name = "categorical_crossentropy"

    def __init__(self, from_logits=False):
        self.from_logits = bool(from_logits)

    @staticmethod
    def _clipped(p):
        q = p / p.sum(axis=-1, keepdims=True)
        return q, get_array_module(p).clip(q, EPSILON, 1.0 - EPSILON)

    def per_example(self, y_true, y_pred):
        """The loss of each example (the mean over its positions), shape ``(N,)``."""
        if self.from_logits:
            return softmax_cross_entropy(y_true, y_pred)[0]
        _, c = self._clipped(y_pred)
        return _per_example(-(y_true * get_array_module(c).log(c)).sum(axis=-1))

    def __call__(self, y_true, y_pred):
        return self.per_example(y_true, y_pred).mean()

    def gradient(self, y_true, y_pred):
        """dL/dy_pred of the batch-mean loss."""
        if self.from_logits:
            return softmax_cross_entropy(y_true, y_pred)[1]
        xp = get_array_module(y_pred)
        s = y_pred.sum(axis=-1, keepdims=True)
        q, c = self._clipped(y_pred)
        inside = (q >= EPSILON) & (q <= 1.0 - EPSILON)      # clip passes the gradient only inside
        dq = xp.where(inside, -y_true / c, 0.0) / _terms(y_pred)
        return (dq - (dq * q).sum(axis=-1, keepdims=True)) / s  # through q = p / sum(p)


LOSSES = {"categorical_crossentropy": CategoricalCrossentropy}


def get(loss):
    """A loss object from a name or an instance."""
    if isinstance(loss, CategoricalCrossentropy):
        return loss
    if isinstance(loss, str) and loss in LOSSES:
        return LOSSES[loss]()
    raise ValueError(f"unknown loss {loss!r}; valid names: {', '.join(LOSSES)}")
