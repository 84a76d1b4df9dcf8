"""Shapes: how big a convolution's or a pooling's output is, and how the ``summary()`` writes a shape.

This module is the one place for these formulas; the layers (in ``build``) and every kernel use it.
For one spatial axis of ``size`` pixels, a window of ``window`` pixels moved by ``stride``:

* ``padding="valid"`` (no padding): ``out = floor((size - window) / stride) + 1``;
* ``padding="same"``: ``out = ceil(size / stride)``; the padding this needs,
  ``max((out - 1) * stride + window - size, 0)``, is split with the extra pixel at the end
  (TensorFlow's rule), so that with stride 1 the output has the input's size.

Both are the one formula ``out = floor((size + pad_before + pad_after - window) / stride) + 1``.
"""
import numpy as np


def output_size(size, window, stride, pad_before=0, pad_after=0):
    """Number of window positions along one axis: ``floor((size + pads - window) / stride) + 1``."""
    return (size + pad_before + pad_after - window) // stride + 1


def padding_amounts(size, window, stride, padding):
    """``(out, pad_before, pad_after)`` along one axis for ``padding`` ``"valid"`` or ``"same"``."""
    if padding == "valid":
        before = after = 0
    else:
        out = -(-size // stride)
        total = max((out - 1) * stride + window - size, 0)
        before, after = total // 2, total - total // 2
    return output_size(size, window, stride, before, after), before, after


def pair(value, what, owner):
    """Keras accepts ``3`` or ``(3, 3)``: return a pair of positive ints or raise naming ``owner``."""
    message = f"{owner}: {what} must be a positive int or a pair of them, got {value!r}"
    try:
        v = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    except TypeError:
        raise ValueError(message) from None
    if len(v) != 2 or not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) and a > 0
                              for a in v):
        raise ValueError(message)
    return int(v[0]), int(v[1])


def fmt_shape(shape):
    """Write a shape as ``summary()`` does, the batch dimension as ``None``: ``(None, 28, 28, 1)``."""
    if isinstance(shape, list):
        return "[" + ", ".join(fmt_shape(s) for s in shape) + "]"
    return str((None,) + tuple(shape))
