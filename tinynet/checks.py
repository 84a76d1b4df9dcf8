"""The checks ``fit``, ``evaluate``, ``predict`` and ``train_on_batch`` make on their arguments.

Each says what was expected, what was found, and the change that fixes it, in the shapes that
``summary()`` prints. They return the data as the model's float type, on the backend's device.
"""
import numpy as np

from . import backend
from .shapes import fmt_shape


def as_numeric_array(a, what, where):
    """``a`` as an array of numbers (lists are converted), else a TypeError naming ``what``."""
    if isinstance(a, (list, tuple)):
        a = np.asarray(a)
    if not hasattr(a, "dtype") or not hasattr(a, "shape"):
        raise TypeError(f"{where}: {what} must be an array, got {type(a).__name__}")
    if np.dtype(a.dtype).kind not in "biuf":
        raise TypeError(f"{where}: {what} has dtype {a.dtype}, which cannot be used as numbers; "
                        "give an integer or float array")
    return a


def inputs(x, expected, dtype, model_name, where):
    """Check a batch of inputs against the model's input shape ``expected`` (no batch axis)."""
    x = as_numeric_array(x, "x", where)
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"{where}: x is empty (shape {tuple(x.shape)})")
    got = tuple(x.shape[1:])
    if got != expected:
        hint = ""
        if got + (1,) == expected:
            hint = f"; add the channel axis with x.reshape({(-1,) + expected}) or x[..., None]"
        elif tuple(x.shape) == expected:
            hint = "; this is a single example without its batch axis: use x[None] (or x[:1])"
        elif len(got) == 3 and len(expected) == 3 and got == (expected[2],) + expected[:2]:
            hint = "; channels-first? use x.transpose(0, 2, 3, 1) (tinynet is channels-last)"
        elif int(np.prod(got)) == int(np.prod(expected)):
            hint = f"; reshape it with x.reshape({(-1,) + expected})"
        raise ValueError(f"{where}: model '{model_name}' expects input of shape "
                         f"{fmt_shape(expected)}, got {fmt_shape(got)}{hint}")
    x = backend.asarray(x, dtype=dtype)
    if not bool(backend.xp().isfinite(x).all()):
        raise ValueError(f"{where}: x contains NaN or infinite values")
    return x


def targets(y, n, output_shape, output_name, dtype, where):
    """Check one-hot (or probability) labels against the model's output and the ``n`` inputs."""
    y = as_numeric_array(y, "y", where)
    if y.ndim == 1 and np.dtype(y.dtype).kind in "iu":
        raise ValueError(f"{where}: y holds integer labels of shape {tuple(y.shape)} but "
                         f"categorical_crossentropy needs one-hot labels of shape "
                         f"{fmt_shape(output_shape)}; use tinynet.utils.to_categorical(y, "
                         f"{output_shape[-1]})")
    if tuple(y.shape[1:]) != tuple(output_shape):
        raise ValueError(f"{where}: y has shape {fmt_shape(y.shape[1:])} but the model's output "
                         f"'{output_name}' is {fmt_shape(output_shape)}")
    if y.shape[0] != n:
        raise ValueError(f"{where}: x has {n} examples but y has {y.shape[0]}")
    y_host = backend.to_numpy(y)
    if not np.isfinite(y_host).all() or y_host.min() < 0 or y_host.max() > 1 or \
            not np.allclose(y_host.sum(axis=-1), 1.0, atol=1e-3):
        raise ValueError(f"{where}: y must be one-hot (or probability) rows: values in [0, 1] "
                         "summing to 1 per example")
    return backend.asarray(y, dtype=dtype)


def batch_size(value):
    """A positive batch size (Keras's default 32 for ``None``); larger than the data is one batch."""
    if value is None:
        return 32
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {value!r}")
    return int(value)


def validation(x, y, validation_data, validation_split, prepare):
    """``(x, y, validation pair or None)`` from ``fit``'s arguments. ``validation_split`` holds out
    the *last* fraction of the data (before shuffling), as Keras does; ``prepare(x, y, where)``
    checks a validation pair given as ``validation_data``."""
    if validation_data is None and validation_split:
        if not 0.0 < validation_split < 1.0:
            raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
        split = int(x.shape[0] * (1.0 - validation_split))
        if split == 0 or split == x.shape[0]:
            raise ValueError(f"validation_split={validation_split} leaves no training or no "
                             f"validation example out of {x.shape[0]}")
        return x[:split], y[:split], (x[split:], y[split:])
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("validation_data must be a pair (x_val, y_val)")
        return x, y, prepare(*validation_data, "fit (validation_data)")
    return x, y, None
