"""Small helpers a user of Keras expects."""
import numpy as np


def to_categorical(y, num_classes=None, dtype="float32"):
    """One-hot encode integer labels: ``to_categorical([2, 0], 3) -> [[0, 0, 1], [1, 0, 0]]``."""
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(f"to_categorical expects a 1-D array of integer labels, got shape "
                         f"{y.shape} and dtype {y.dtype}")
    if num_classes is None:
        num_classes = int(y.max()) + 1
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got values from {y.min()} to {y.max()}")
    out = np.zeros((y.shape[0], num_classes), dtype=dtype)
    out[np.arange(y.shape[0]), y] = 1
    return out
