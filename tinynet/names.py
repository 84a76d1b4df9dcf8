"""Keras-style default names of layers and models: ``dense``, ``dense_1``, ``dense_2``, ..."""
from collections import defaultdict

_counts = defaultdict(int)


def unique_name(prefix):
    """The next default name for ``prefix``: ``prefix``, then ``prefix_1``, ``prefix_2``, ..."""
    n = _counts[prefix]
    _counts[prefix] += 1
    return prefix if n == 0 else f"{prefix}_{n}"


def reset_names():
    """Start default names from scratch (like ``keras.backend.clear_session()``)."""
    _counts.clear()
