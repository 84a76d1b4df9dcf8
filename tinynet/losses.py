"""Categorical cross-entropy, with Keras's two paths.

For one example with one-hot (or probability) target ``y`` and predicted probabilities ``p``:

    L = - sum_k y_k log p_k            and the batch loss is the mean over the N examples.

*From logits* (``from_logits=True``, and what ``fit`` uses when the model ends in a softmax, as
Keras does): ``log p = z - logsumexp(z)`` computed stably, and the gradient with respect to the
logits is the famous

    dL/dz = (p * sum_k y_k - y) / N          ( = (p - y) / N for one-hot targets)

*From probabilities*: Keras first renormalises ``p`` to sum to one, then clips it to
``[1e-7, 1 - 1e-7]`` so that ``log`` stays finite; the gradient flows through both steps (zero
where the clip is active).
"""
from .kernels.numpy_ref import array_module

EPSILON = 1e-7


class CategoricalCrossentropy:
    """``loss = fn(y_true, y_pred)`` (mean over the batch), ``fn.gradient(y_true, y_pred)`` = dL/dy_pred."""

    name = "categorical_crossentropy"

    def __init__(self, from_logits=False):
        self.from_logits = bool(from_logits)

    def _log_softmax(self, z):
        xp = array_module(z)
        shifted = z - z.max(axis=-1, keepdims=True)
        return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))

    def _clipped(self, p):
        q = p / p.sum(axis=-1, keepdims=True)
        return q, array_module(p).clip(q, EPSILON, 1.0 - EPSILON)

    def per_example(self, y_true, y_pred):
        """The loss of each example, shape ``(N,)``."""
        xp = array_module(y_pred)
        if self.from_logits:
            return -(y_true * self._log_softmax(y_pred)).sum(axis=-1)
        _, c = self._clipped(y_pred)
        return -(y_true * xp.log(c)).sum(axis=-1)

    def __call__(self, y_true, y_pred):
        return self.per_example(y_true, y_pred).mean()

    def gradient(self, y_true, y_pred):
        """dL/dy_pred of the batch-mean loss."""
        xp = array_module(y_pred)
        n = y_pred.shape[0]
        if self.from_logits:
            p = xp.exp(self._log_softmax(y_pred))
            return (p * y_true.sum(axis=-1, keepdims=True) - y_true) / n
        s = y_pred.sum(axis=-1, keepdims=True)
        q, c = self._clipped(y_pred)
        inside = (q >= EPSILON) & (q <= 1.0 - EPSILON)      # clip passes the gradient only inside
        dq = xp.where(inside, -y_true / c, 0.0) / n
        return (dq - (dq * q).sum(axis=-1, keepdims=True)) / s  # through q = p / sum(p)


LOSSES = {"categorical_crossentropy": CategoricalCrossentropy}


def get(loss):
    """A loss object from a name or an instance."""
    if isinstance(loss, CategoricalCrossentropy):
        return loss
    if isinstance(loss, str) and loss in LOSSES:
        return LOSSES[loss]()
    raise ValueError(f"unknown loss {loss!r}; valid names: {', '.join(LOSSES)}")
