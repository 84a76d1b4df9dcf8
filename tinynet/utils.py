"""Small helpers a user of Keras expects: ``to_categorical``, ``normalize``, ``set_random_seed``."""
import numpy as np


def to_categorical(y, num_classes=None, dtype="float32"):
    """One-hot encode integer labels: ``to_categorical([2, 0], 3) -> [[0, 0, 1], [1, 0, 0]]``.

    As in Keras, labels of shape ``(N, 1)`` are treated as ``(N,)``, and float labels holding
    whole numbers (``3.0``) are accepted; the result has shape ``(N, num_classes)``.
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.dtype.kind == "f" and np.array_equal(y, np.round(y)):  # [] is float64: none to round
        y = y.astype(np.int64)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(f"to_categorical expects integer labels of shape (N,) or (N, 1), got "
                         f"shape {y.shape} and dtype {y.dtype}")
    if num_classes is None:
        if not y.size:
            raise ValueError("to_categorical: no labels to encode (an empty array): give "
                             "num_classes to encode zero labels as an array of shape (0, K)")
        num_classes = int(y.max()) + 1
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got values from {y.min()} to {y.max()}")
    out = np.zeros((y.shape[0], num_classes), dtype=dtype)
    out[np.arange(y.shape[0]), y] = 1
    return out


def set_random_seed(seed):
    """Seed every random number tinynet draws (initial weights, shuffles, dropout masks), and
    NumPy's global generator, as ``keras.utils.set_random_seed`` seeds Python's, NumPy's and the
    backend's."""
    from . import backend
    seed = backend.check_seed(seed, "set_random_seed")  # (NumPy's error would not say it)
    if seed is not None and seed >= 2 ** 32:
        raise ValueError(f"set_random_seed: NumPy's global generator takes seeds below 2**32, "
                         f"got {seed}; tinynet.backend.set_seed alone takes larger ones")
    np.random.seed(seed)
    backend.set_seed(seed)


def normalize(x, axis=-1, order=2):
    """Keras's ``normalize``: every vector of ``x`` along ``axis`` divided by its ``order``-norm
    (L2 by default), ``x / ||x||``, so that each has norm 1; a vector of norm 0 stays 0. Old
    tutorials scale images with it, ``normalize(x_train, axis=1)``: each column of each image
    (an image of shape (28, 28)) to norm 1, not the pixels to [0, 1] as ``x / 255.0`` does."""
    x = np.asarray(x)
    if axis is None:
        raise ValueError("normalize: give the axis to normalise along (an int), as in Keras; "
                         "axis=None would take a matrix norm")
    norm = np.linalg.norm(x, ord=order, axis=axis, keepdims=True)
    return x / np.where(norm == 0, 1, norm)


def plot_model(model, to_file="model.png", **keras_options):
    """Keras's ``plot_model``: tinynet's own diagram of the model (:func:`tinynet.plots.plot_model`,
    no graphviz needed), written to ``to_file``; Keras's display options are not used."""
    from .plots import plot_model as draw
    return draw(model, to_file)


def __getattr__(name):
    from .names import missing
    raise missing("tinynet.utils", name, "utility",
                  ["to_categorical", "normalize", "set_random_seed", "plot_model"])
