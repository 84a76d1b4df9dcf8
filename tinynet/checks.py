"""The checks ``fit``, ``evaluate``, ``predict`` and ``train_on_batch`` make on their arguments.

Each says what was expected, what was found, and the change that fixes it, in the shapes that
``summary()`` prints. They return the data as the model's float type, on the backend's device.
"""
import math
import sys
import warnings

import numpy as np

from . import backend, losses
from .shapes import fmt_shape


def as_numeric_array(a, what, where):
    """``a`` as an array of numbers (lists are converted), else a TypeError naming ``what``."""
    if isinstance(a, (list, tuple)):
        ragged = ValueError(f"{where}: {what} is a list whose elements have different shapes; "
                            f"give one array with the examples along its first axis")
        if what == "x" and _is_pair(a):
            call = where.split()[0]
            ragged = ValueError(f"{where}: x looks like an (inputs, targets) pair; " + (
                "predict takes the inputs alone: model.predict(x)" if call == "predict" else
                f"give them as two arguments: model.{call}(x, y)"))
        elif what == "x" and a and all(isinstance(e, (list, tuple)) and _is_pair(e) for e in a):
            ragged = ValueError(f"{where}: x looks like a list of (inputs, targets) batches; "
                                "tinynet takes the data as arrays: collect the batches first, "
                                "x = np.concatenate([xb for xb, yb in batches]), y likewise")
        try:
            with warnings.catch_warnings():  # NumPy < 1.24 warns and makes an object array
                warnings.simplefilter("ignore")
                a = np.asarray(a)
        except ValueError:  # NumPy >= 1.24
            raise ragged from None
        if a.dtype == object and any(isinstance(e, (list, tuple, np.ndarray)) for e in a.flat):
            raise ragged  # rows of different lengths (a list of numbers and None is not ragged)
    if hasattr(a, "toarray") and hasattr(a, "nnz"):  # a SciPy sparse matrix (TF-IDF features)
        a = a.toarray()  # as Keras, which trains on it: dense here, the layers are dense
    if isinstance(a, np.matrix):  # (from .todense()): a plain array, whose reshape keeps (n,)
        a = np.asarray(a)
    if a is None and what == "y":
        raise TypeError(f"{where}: y is missing; " + (
            "give validation_data=(x_val, y_val)" if "validation_data" in where else
            f"{where} needs the targets: model.{where}(x, y, ...)"))
    table = getattr(a, "dtypes", None)  # a pandas table: its columns' types, for the message
    if not isinstance(a, np.ndarray) and backend.get_array_module(a) is np and \
            hasattr(a, "__array__"):  # a TensorFlow or PyTorch tensor, a pandas table, ...
        try:
            a = np.asarray(a)
        except Exception as e:  # a tensor on a GPU, for one
            raise TypeError(f"{where}: {what} (a {type(a).__module__}.{type(a).__name__}) does "
                            f"not convert to a NumPy array ({e}); convert it first, e.g. "
                            f"{what}.numpy(), or for a PyTorch tensor "
                            f"{what}.detach().cpu().numpy()") from None
    if not hasattr(a, "dtype") or not hasattr(a, "shape"):
        if (hasattr(a, "__iter__") or hasattr(a, "__next__")) and \
                not isinstance(a, (str, bytes, dict, set)):
            raise TypeError(f"{where}: {what} is a {type(a).__name__}, not an array: tinynet "
                            "takes the data as arrays (examples along the first axis), "
                            "not tf.data, generators or data loaders: collect the batches "
                            "into arrays first, e.g. np.concatenate([xb for xb, yb in data])")
        raise TypeError(f"{where}: {what} must be an array, got {type(a).__name__}")
    if a.dtype == object and table is not None and all(
            isinstance(e, (bool, int, float, np.bool_, np.number)) for e in a.flat):
        a = a.astype(np.float64)  # a table of bool and float columns, which Keras takes too
    if np.dtype(a.dtype).kind not in "biuf":
        columns = ""
        if table is not None and hasattr(table, "items"):
            kinds = sorted({str(t) for _, t in table.items()})
            columns = f" (a table whose columns are of type {', '.join(kinds)})"
        raise not_numbers(a.dtype, what, where, columns)
    return a


def real_number(value, what, where, meaning=""):
    """``value`` as a float when it is a real number (not a bool, a string or NaN), else a
    ValueError naming the argument ``what`` of ``where`` and, when given, what it ``meaning``s:
    the one check of a callback's and a schedule's numeric arguments (``float('a')`` named none)."""
    try:
        if isinstance(value, (bool, np.bool_, str, bytes)):
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if math.isnan(number):
        raise ValueError(f"{where}: {what} must be a number{f' ({meaning})' if meaning else ''}, "
                         f"got {value!r}")
    return number


def not_numbers(dtype, what, where, columns=""):
    """The TypeError for ``what`` (an array of ``dtype``: strings, objects, complex numbers, dates)
    where real numbers are needed: the inputs and targets of ``fit``, a layer's input, the weights
    given to ``set_weights``. (Cast silently, strings failed inside NumPy with "could not convert
    string to float", and complex numbers lost their imaginary part.)"""
    if np.dtype(dtype).kind == "c":
        fix = ("; tinynet computes in real numbers: give the real parts (.real), the "
               "magnitudes (np.abs(...)), or the two parts side by side")
    elif columns:
        fix = (f", e.g. {what}.astype('float32') (text columns turned into numbers first, "
               "missing values filled)")
    else:
        fix = ""
    return TypeError(f"{where}: {what} has dtype {dtype}{columns}, which cannot be used as "
                     f"numbers; give an integer or float array{fix}")


def _is_pair(a):
    """Does the list ``a`` look like Keras's ``(x, y)``: two arrays of as many examples, of
    different shapes? (Only asked of a list that does not make one array.)"""
    return len(a) == 2 and all(getattr(e, "ndim", 0) >= 1 for e in a) and \
        a[0].shape[0] == a[1].shape[0] and tuple(a[0].shape) != tuple(a[1].shape)


def fits(shape, expected):
    """Whether examples of ``shape`` are inputs of ``expected``, as Keras 3 takes them: the same
    shape, or one whose last axis of length 1 is missing (images (28, 28) for a model of
    (28, 28, 1), one feature given as a number) or extra."""
    return shape == expected or shape + (1,) == expected or shape == expected + (1,)


def one_named(a, what, name, kind, where, thing="array"):
    """The value of Keras's ``{name: a}`` for a model's one input or output, else an error that
    names the keys given and the model's one name."""
    if name is not None and list(a) == [name]:
        return a[name]
    raise ValueError(f"{where}: {what} is a dict of keys {list(a)}; tinynet models have one "
                     f"{kind}" + (f", here named '{name}': give the {thing} itself or "
                                  f"{{'{name}': {thing}}}" if name else
                                  f": give the {thing} itself"))


def one_input(x, expected, name=None, where="fit"):
    """``x`` itself, or the array of Keras's forms for a one-input model: the list of its inputs,
    ``[x]`` (an array whose examples have the ``expected`` shape; a list of examples stays a
    list), or ``{name: x}`` with the input layer's ``name``."""
    if isinstance(x, dict):
        return one_named(x, "x", name, "input", where)
    if isinstance(x, (list, tuple)) and len(x) == 1 and hasattr(x[0], "shape") and \
            expected is not None and fits(tuple(x[0].shape[1:]), tuple(expected)):
        return x[0]
    if isinstance(x, (list, tuple)) and len(x) > 1 and expected is not None and \
            all(getattr(e, "ndim", 0) >= 2 and tuple(e.shape[1:]) == tuple(expected) for e in x):
        raise ValueError(f"{where}: x is a list of {len(x)} arrays of examples, Keras's form for "
                         f"a model of {len(x)} inputs; tinynet models have one input: give one "
                         "array (np.concatenate(x) for more examples)")
    return x


def one_target(y, n, name, where):
    """``y`` itself, or the array of Keras's forms for a one-output model: ``[y]`` (an array of
    the ``n`` examples' targets; a list of labels stays a list) or ``{name: y}`` with the output
    layer's ``name``."""
    if isinstance(y, dict):
        return one_named(y, "y", name, "output", where)
    if isinstance(y, (list, tuple)) and len(y) == 1 and getattr(y[0], "ndim", 0) >= 1 and \
            y[0].shape[0] == n:  # (one example's label [np.array([2])]: the same labels either way)
        return y[0]
    return y


def inputs(x, expected, dtype, model_name, where):
    """Check a batch of inputs against the model's input shape ``expected`` (no batch axis)."""
    x = as_numeric_array(x, "x", where)
    if x.ndim == 0:
        raise ValueError(f"{where}: x is a single number; give a batch of examples, an array of "
                         f"shape {fmt_shape(expected)}")
    if x.shape[0] == 0:
        raise ValueError(f"{where}: x is empty (shape {tuple(x.shape)})")
    got = tuple(x.shape[1:])
    if fits(got, expected):
        x = x.reshape((x.shape[0],) + expected)
        got = expected
    if got != expected:
        hint, single = "", True  # single: x looks like one example without its batch axis
        if tuple(x.shape) == expected:
            hint = "; this is a single example without its batch axis: use x[None] (or x[:1])"
        elif tuple(x.shape) + (1,) == expected:
            hint = ("; this is a single image without its batch and channel axes: use "
                    "x[None, ..., None]")
        elif len(got) == 3 and len(expected) == 3 and got == (expected[2],) + expected[:2]:
            hint = "; channels-first? use x.transpose(0, 2, 3, 1) (tinynet is channels-last)"
            single = False
        elif int(np.prod(got)) == int(np.prod(expected)):
            hint, single = f"; reshape it with x.reshape({(-1,) + expected})", False
        elif x.size == int(np.prod(expected)) and (
                x.ndim == 1 or (x.ndim == 2 and len(expected) == 1 and x.shape[0] == x.shape[1])):
            # one example: flattened, or a square image given to an MLP
            hint = (f"; if this is a single example of {x.size} values, use "
                    f"x.reshape({(1,) + expected})")
        else:
            single = False
        # an example without its batch axis is shown as it was given, (8, 8, 1): read as a batch,
        # it printed as (None, 8, 1), a shape the user never wrote
        given = (f"an array of shape {tuple(x.shape)}" if single or x.ndim == 1
                 else fmt_shape(got))
        raise ValueError(f"{where}: model '{model_name}' expects input of shape "
                         f"{fmt_shape(expected)}, got {given}{hint}")
    with np.errstate(over="ignore"):  # values too large for float32: named just below
        cast = backend.asarray(x, dtype=dtype)
    # the backend's compiled check where it has one (numba: a pass over the bits, with no
    # temporary the size of x: np.isfinite's is 47 MB for MNIST's 60,000 float32 images)
    check = backend.fused("all_finite", cast)
    if not (check([cast]) if check is not None else bool(backend.xp().isfinite(cast).all())):
        if np.dtype(x.dtype).kind == "f" and bool(backend.get_array_module(x).isfinite(x).all()):
            raise ValueError(f"{where}: x holds values too large for {np.dtype(dtype).name} "
                             f"(largest magnitude {float(abs(x).max()):.3g}; "
                             f"{np.dtype(dtype).name} holds up to {np.finfo(dtype).max:.3g}): "
                             "scale the inputs")
        raise ValueError(f"{where}: x contains NaN or infinite values")
    return cast


def looks_unscaled(x):
    """Whether ``x`` looks like 0-255 pixel values (integers, the largest above 127 and at most
    255): a model trains badly on them, and tinynet says so once (Keras lets them pass). Small
    integer features (counts, categories 0-9) are not taken for pixels."""
    if np.dtype(x.dtype).kind not in "iuf" or x.ndim == 0:
        return False
    host = backend.to_numpy(x[:1000])
    if host.size == 0 or host.min() < 0 or not 127.0 < host.max() <= 255.0:
        return False
    return np.dtype(host.dtype).kind in "iu" or bool(np.array_equal(host, np.round(host)))


def targets(y, n, output_shape, output_name, dtype, where, loss_name="categorical_crossentropy"):
    """Check the labels against the model's output, the loss and the ``n`` inputs; return them on
    the device: one-hot (or probability) rows as floats, or integer class labels for the sparse
    cross-entropy (shape ``(N,)``; ``(N, 1)`` is accepted, as in Keras)."""
    y = as_numeric_array(y, "y", where)
    if y.ndim == 0 or y.shape[0] != n:
        raise ValueError(f"{where}: x has {n} examples but y has "
                         f"{y.shape[0] if y.ndim else 'none (a scalar)'}")
    classes = output_shape[-1]
    labels_shape = tuple(output_shape[:-1])
    integral = np.dtype(y.dtype).kind in "biu" or (
        y.ndim <= 2 and tuple(y.shape[1:]) in (labels_shape, labels_shape + (1,))
        and bool(np.array_equal(backend.to_numpy(y), np.round(backend.to_numpy(y)))))
    if loss_name == "sparse_categorical_crossentropy":
        shape = tuple(y.shape[1:])
        if shape not in (labels_shape, labels_shape + (1,)):
            hint = (" (one-hot labels? use loss='categorical_crossentropy')"
                    if shape == tuple(output_shape) else "")
            raise ValueError(f"{where}: sparse_categorical_crossentropy takes one class number per "
                             f"example, y of shape {fmt_shape(labels_shape)}; got "
                             f"{fmt_shape(shape)}{hint}")
        y_host = backend.to_numpy(y)
        if not np.isfinite(y_host).all():
            raise ValueError(f"{where}: y contains NaN or infinite values")
        if not integral and not np.array_equal(y_host, np.round(y_host)):
            raise ValueError(f"{where}: sparse_categorical_crossentropy takes integer class "
                             "numbers; y holds fractions")
        if y_host.size and y_host.min() < 0:
            raise ValueError(f"{where}: y holds the class number {int(y_host.min())}; class "
                             f"numbers run from 0 to {classes - 1} (the model's output "
                             f"'{output_name}' has {classes} units)")
        if y_host.size and y_host.max() >= classes:
            raise ValueError(f"{where}: y holds class numbers up to {int(y_host.max())} but the "
                             f"model's output '{output_name}' has {classes} units (classes 0 to "
                             f"{classes - 1}); give the last layer {int(y_host.max()) + 1} units")
        return backend.asarray(y.reshape((n,) + labels_shape), dtype=np.int64)
    if loss_name == "categorical_crossentropy" and integral and tuple(y.shape[1:]) in (
            labels_shape, labels_shape + (1,)) and tuple(y.shape[1:]) != tuple(output_shape):
        raise ValueError(f"{where}: y holds integer labels of shape {tuple(y.shape)} but "
                         f"categorical_crossentropy needs one-hot labels of shape "
                         f"{fmt_shape(output_shape)}; use tinynet.utils.to_categorical(y, "
                         f"{classes}), or loss='sparse_categorical_crossentropy'")
    if loss_name in ("binary_crossentropy", "mean_squared_error", "mean_absolute_error") and \
            tuple(y.shape[1:]) + (1,) == tuple(output_shape):
        # one target per unit without the last axis of 1: (N,) for one output unit, (N, H, W)
        # for one unit per pixel, as Keras accepts them
        y = y.reshape((n,) + tuple(output_shape))
    if tuple(y.shape[1:]) != tuple(output_shape):
        hint = ""
        if y.ndim == len(output_shape) + 1 and y.shape[-1] != classes:
            hint = (f": y has {y.shape[-1]} classes and the last layer {classes} units; give "
                    f"the last layer {y.shape[-1]} units (or check the labels)")
        raise ValueError(f"{where}: y has shape {fmt_shape(y.shape[1:])} but the model's output "
                         f"'{output_name}' is {fmt_shape(output_shape)}{hint}")
    y_host = backend.to_numpy(y)
    if not np.isfinite(y_host).all():
        raise ValueError(f"{where}: y contains NaN or infinite values")
    if loss_name == "categorical_crossentropy" and (
            y_host.min() < 0 or y_host.max() > 1 or
            not np.allclose(y_host.sum(axis=-1), 1.0, atol=1e-3)):
        raise ValueError(f"{where}: y must be one-hot (or probability) rows: values in [0, 1] "
                         "summing to 1 per example")
    if loss_name == "binary_crossentropy" and (y_host.min() < 0 or y_host.max() > 1):
        raise ValueError(f"{where}: binary_crossentropy takes targets in [0, 1]")
    return backend.asarray(y, dtype=dtype)


def unit_labels(y, output_shape, where, metric="binary_accuracy"):
    """``binary_accuracy`` (and a regression's errors, ``"mae"``, ``"mse"``) compares each output
    unit with a label of its own: ``y`` must hold one per unit (class numbers for several units
    cannot be compared so)."""
    if y.size != y.shape[0] * int(np.prod(output_shape)):
        raise ValueError(f"{where}: {metric} compares each output unit with its own label, "
                         f"so the labels need the outputs' shape {fmt_shape(output_shape)}, got "
                         f"{fmt_shape(tuple(y.shape[1:]))}; for class numbers use "
                         "metrics=['accuracy']")


def sample_weights(sample_weight, class_weight, y_host, n, where, output_shape=None,
                   output_name=None, loss_name=None):
    """Per-example weights (N,) from ``sample_weight`` or ``class_weight`` (a dict from class
    number to weight, applied by each example's class; 1 for a class it does not name, as in
    Keras), or ``None`` when neither is given. Not both: Keras refuses the pair. ``y`` rows are
    read as one-hot when they have the output's shape ``output_shape`` (without the batch axis).
    A key of ``class_weight`` that is not a class of the output (``output_name``, trained with
    ``loss_name``) is refused: Keras ignores it, and the weights the user meant weigh nothing."""
    if sample_weight is not None and class_weight is not None:
        raise ValueError(f"{where}: give sample_weight or class_weight, not both (Keras refuses "
                         "the pair too); for both, fold the class weights into the sample "
                         "weights: sample_weight * np.array([class_weight.get(c, 1.0) for c in "
                         "class_numbers]), class_numbers being y (or y.argmax(-1) for one-hot y)")
    w = None
    if sample_weight is not None:
        w = sample_weight
        if not isinstance(w, (int, float, np.number)):  # (a number: the shape's message below)
            w = as_numeric_array(w, "sample_weight", where)  # (strings: a TypeError)
        w = np.asarray(backend.to_numpy(w), dtype=np.float64)
        if w.shape == (n, 1):  # a column, as Keras takes it: the same weights
            w = w.reshape(n)
        if w.shape != (n,):
            raise ValueError(f"{where}: sample_weight must be {n} finite non-negative numbers, one "
                             f"per example, got shape {w.shape}")
        bad = np.flatnonzero(~(np.isfinite(w) & (w >= 0)))
        if bad.size:
            raise ValueError(f"{where}: sample_weight must be finite and non-negative (a weight "
                             f"multiplies an example's loss); example {bad[0]} has {w[bad[0]]:g}"
                             + (f", and {bad.size - 1} other example(s) too" if bad.size > 1
                                else ""))
    if class_weight is not None:
        if not isinstance(class_weight, dict):
            raise TypeError(f"{where}: class_weight must be a dict {{class number: weight}}")
        one_hot = output_shape is None or tuple(y_host.shape[1:]) == tuple(output_shape)
        if y_host.ndim == 2 and y_host.shape[1] > 1 and one_hot:
            labels = y_host.argmax(axis=-1)             # one-hot rows
        elif y_host.size == n:
            # class numbers, (N,) or (N, 1); rounded, as Keras does (a smoothed 0.95 is class 1)
            labels = np.round(y_host.reshape(n)).astype(np.int64)
        else:
            raise ValueError(f"{where}: class_weight needs one label per example; with a label "
                             f"per position (y of shape {tuple(y_host.shape)}), weight the "
                             "examples with sample_weight instead")
        bad = {c: v for c, v in class_weight.items() if not _finite_non_negative(v)}
        if bad:
            raise ValueError(f"{where}: class_weight must give each class a finite number >= 0; "
                             f"got {bad}")
        _check_classes(class_weight, where, output_shape, output_name, loss_name)
        # a class the dict does not name weighs 1, as in Keras
        w = np.array([float(class_weight.get(int(c), 1.0)) for c in labels], dtype=np.float64)
    return w


def _check_classes(class_weight, where, output_shape, output_name, loss_name):
    """Refuse a key of ``class_weight`` that names no class of the output (Keras ignores it, and
    the weight meant for a class weighs nothing): a key that is not a whole number (``"0"``,
    ``1.5``), or a class number outside the output's classes, ``0`` to ``units - 1`` (``0`` and
    ``1`` for one unit trained with a binary cross-entropy; under another loss, a regression's or
    one's own, its rounded targets are the classes). A class absent from the data is fine: it
    weighs no example here, and may elsewhere."""
    units = output_shape[-1] if output_shape else None
    # one unit: classes 0 and 1 under a binary cross-entropy; under any other loss (a regression,
    # a loss of one's own) its rounded targets are the classes, and no number is out of range
    binary = units == 1 and loss_name == "binary_crossentropy"
    classes = None if units is None or (units == 1 and not binary) else max(units, 2)
    if classes is None:
        span = output = ""
    else:
        span = f"0 to {classes - 1}" if units > 1 else "0 and 1"
        output = (f"the model's output{f' {output_name!r}' if output_name else ''} has "
                  + (f"{units} units" if units > 1 else "one unit (two classes)"))
    for key in class_weight:
        if isinstance(key, (float, np.floating)) and float(key).is_integer():
            number = int(key)  # 2.0: the class 2, as the dict looks it up
        elif isinstance(key, (int, np.integer, bool, np.bool_)):
            number = int(key)
        else:
            fix = ""
            if isinstance(key, str) and key.strip().lstrip("-").isdigit():
                fix = (f"; write {int(key)}, not {key!r} "
                       "({int(k): w for k, w in class_weight.items()} converts the keys)")
            raise ValueError(f"{where}: class_weight has the key {key!r} ({type(key).__name__}), "
                             "which is not a class number: its keys are the integer class "
                             f"numbers{f' {span} ({output})' if span else ''}, each example "
                             f"weighted by its class's weight{fix}")
        if classes is not None and not 0 <= number < classes:
            raise ValueError(f"{where}: class_weight has the key {key!r}, but {output}: its "
                             f"classes are {span}, so a weight for class {number} would weigh "
                             "no example (Keras ignores such a key silently); give the weights "
                             f"of classes {span}")


def steps(value, batch_size, n, where):
    """How many of the ``n`` examples ``steps`` batches cover (all of them for ``None``): Keras's
    ``steps`` of ``evaluate`` and ``predict``, which stop after that many batches."""
    if value is None:
        return n
    if not _positive_int(value):
        raise ValueError(f"{where}: steps must be a positive integer (a number of batches) or "
                         f"None for all the data, got {value!r}")
    return min(n, int(value) * batch_size)


def _finite_non_negative(value):
    if isinstance(value, (bool, str)) or not isinstance(value, (int, float, np.number)):
        return False
    return bool(np.isfinite(value)) and value >= 0


def _positive_int(value):
    """Whether ``value`` is an integer >= 1 (a bool is not)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


def batch_size(value, name="batch_size"):
    """A positive batch size (Keras's default 32 for ``None``); larger than the data is one batch."""
    if value is None:
        return 32
    if not _positive_int(value):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def epochs(epochs, initial_epoch):
    """``(epochs, initial_epoch)`` as ints: whole numbers >= 0 (a float such as 2.0 or ``None``
    stopped deep inside the loop)."""
    for name, value in (("epochs", epochs), ("initial_epoch", initial_epoch)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"fit: {name} must be a whole number >= 0, got {value!r} (fit trains "
                             f"the epochs initial_epoch .. epochs - 1, counted from 0)")
    return int(epochs), int(initial_epoch)


def verbose(value, where):
    """Keras's ``verbose`` as an int: 0 (silent), 1 or ``"auto"`` (a progress bar), 2 (a line of
    text an epoch, no bar); ``None``, a bool and any other whole number as Keras takes them
    (``None`` and numbers other than 1 and 2 show nothing, ``True`` is 1). A string other than
    ``"auto"`` or a fraction is refused (taken silently before, it showed nothing)."""
    if isinstance(value, str) and value == "auto":
        return 1
    if value is None:
        return 0
    if isinstance(value, (bool, np.bool_, int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    raise ValueError(f"{where}: verbose={value!r}; give 0 (silent), 1 or 'auto' (a progress "
                     "bar) or 2 (a line of text an epoch, no bar)")


def validation_freq(value):
    """Keras's ``validation_freq``: an int ``k >= 1`` (validate after every k-th epoch), or the
    epochs after which to validate, counted from 1 (returned as a tuple)."""
    if isinstance(value, (list, tuple, range)):
        if all(map(_positive_int, value)):
            return tuple(int(e) for e in value)
    elif _positive_int(value):
        return int(value)
    raise ValueError(f"validation_freq must be an integer >= 1 (validate every that many epochs) "
                     f"or a list of epochs counted from 1, got {value!r}")


def validation(x, y, sample_weight, validation_data, validation_split, prepare):
    """``(x, y, sample_weight, validation)`` from ``fit``'s arguments, ``validation`` being
    ``(x_val, y_val, sample_weight_val or None)`` or ``None``. ``validation_split`` holds out the
    *last* fraction of the data and of its weights (before shuffling), as Keras does;
    ``validation_data`` is ``(x_val, y_val)`` or ``(x_val, y_val, sample_weight_val)``, checked by
    ``prepare(x, y, where)``, and takes precedence over ``validation_split``, as in Keras."""
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError("validation_data must be (x_val, y_val) or (x_val, y_val, "
                             "sample_weight_val)")
        vx, vy = prepare(validation_data[0], validation_data[1], "fit (validation_data)")
        vw = validation_data[2] if len(validation_data) == 3 else None
        return x, y, sample_weight, (vx, vy, vw)
    if validation_split is not None and (
            isinstance(validation_split, (bool, np.bool_)) or
            not isinstance(validation_split, (int, float, np.integer, np.floating))):
        raise TypeError(f"fit: validation_split must be a number in (0, 1), the fraction of the "
                        f"data held out for validation, like 0.2; got {validation_split!r} "
                        f"({type(validation_split).__name__})")
    if validation_split:
        if not 0.0 < validation_split < 1.0:
            raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
        split = int(x.shape[0] * (1.0 - validation_split))
        if split == 0 or split == x.shape[0]:
            raise ValueError(f"validation_split={validation_split} leaves no training or no "
                             f"validation example out of {x.shape[0]}")
        if sample_weight is None:
            train_w = val_w = None
        else:
            train_w, val_w = sample_weight[:split], sample_weight[split:]
        return x[:split], y[:split], train_w, (x[split:], y[split:], val_w)
    return x, y, sample_weight, None


def _user_stacklevel():
    """The ``stacklevel`` that makes a warning point at the user's line (the first frame outside
    tinynet), whichever tinynet functions lie between it and the ``warnings.warn`` call."""
    frame, level = sys._getframe(2), 2  # the caller of the function that warns
    while frame is not None and frame.f_globals.get("__name__", "").startswith("tinynet"):
        frame, level = frame.f_back, level + 1
    return level


def warn_if_accuracy_of_a_regression(model, y):
    """Warn when an accuracy on one output unit (``"accuracy"`` or ``binary_accuracy`` of a
    sigmoid or regression output) is given targets that are not 0/1 labels and either lie outside
    [0, 1] or train a squared or absolute error: a regression's targets. The accuracy cuts outputs
    and targets at 0.5 and counts the matches, a number that looks like a score and says nothing of
    the fit (0.72 to 1.00 on house prices of 20 ± 5 whose error stayed at 392; Keras 3 compares
    each target with the cut output: about 0). Returns whether it warned."""
    units = [name for name, kind in model.metric_kinds.items() if kind == "binary_accuracy"
             or (kind == "accuracy" and model.graph.output.output_shape[-1] == 1)]
    if not units:
        return False
    y = backend.to_numpy(y)
    if not y.size or np.isin(y, (0, 1)).all():
        return False
    low, high = float(y.min()), float(y.max())
    if 0 <= low and high <= 1 and type(model.loss).name not in ("mean_squared_error",
                                                                   "mean_absolute_error"):
        return False  # soft labels of a classifier (README: the accuracy cuts them at 0.5)
    warnings.warn(f"model '{model.name}': the metric {units[0]!r} on targets that are not 0/1 "
                  f"labels (from {low:.4g} to {high:.4g}): an accuracy on one output unit cuts "
                  "the outputs and the targets at 0.5 and counts the matches, which scores two "
                  "classes, not a regression (Keras 3 compares each target with the cut output "
                  "and reports about 0); judge a regression by its loss, or compile it with "
                  "metrics=['mae'] (its mean absolute error)", UserWarning,
                  stacklevel=_user_stacklevel())
    return True


def _rescales_first(model):
    """Whether a Rescaling comes before the model's first weights (after reshaping layers,
    inside a model used as its first layer too): the model scales its pixels itself."""
    if not getattr(model, "built", False):
        return False
    for layer in model.graph.order[1:]:
        if type(layer).__name__ == "Rescaling":
            return True
        inner = getattr(layer, "model", None)
        if inner is not None and hasattr(inner, "graph") and _rescales_first(inner):
            return True  # inside a model used as a layer
        if layer.params or len(layer.inbound or []) != 1:
            return False
    return False


def warn_if_unscaled(model, x, predicting=False, validation=False):
    """Warn when ``x`` looks like 0-255 pixels and the model does not rescale them itself (Keras
    lets them pass: the model trains to a fraction of its accuracy, or, trained on pixels in
    [0, 1], predicts from saturated units). Returns whether it warned."""
    if not hasattr(x, "dtype") or not looks_unscaled(x):
        return False
    model._maybe_build(np.asarray(x[:1]))
    if _rescales_first(model):
        return False
    if validation:  # the training inputs passed: scaled, or warned about already
        advice = ("scale them as the training inputs are (x_val / 255.0), or the validation "
                  "scores measure the model on inputs it never saw the like of")
    elif predicting:
        advice = ("if the model was trained on inputs scaled to [0, 1], it predicts nonsense "
                  "from these: scale them as the training data was (x / 255.0)")
    else:
        advice = ("networks train far better on inputs scaled to [0, 1]: divide them by 255 "
                  "(x / 255.0), or start the model with layers.Rescaling(1 / 255)")
    inputs = "the validation_data inputs" if validation else "the inputs"
    warnings.warn(f"model '{model.name}': {inputs} look like 0-255 pixel values; {advice}",
                  UserWarning, stacklevel=_user_stacklevel())
    return True


def _passes_values_on(layer):
    """A layer of tinynet's that outputs its input's values (rearranged by Reshape and Flatten,
    scaled by Dropout in training only): a sigmoid's probabilities stay probabilities; a
    softmax's rows stay rows where the output's last axis is the softmax's (checked in
    :func:`warn_if_probabilities_without_softmax`)."""
    kind = type(layer)
    return (kind.__module__.startswith("tinynet.layers") and len(layer.inbound or ()) == 1
            and (kind.__name__ in ("Dropout", "Reshape", "Flatten")
                 or (kind.__name__ == "Activation" and layer.activation_name == "linear")))


def _source_of_output(output):
    """The last layer before ``output`` that changes values (``output`` itself, unless it only
    passes values on: a softmax followed by Dropout still gives probabilities)."""
    while _passes_values_on(output):
        output = output.inbound[0].layer
    return output


def _dropout_after(final, output):
    """The Dropout (of a non-zero rate) closest to ``final`` among the layers that pass
    ``output``'s values on to it (:func:`_source_of_output`), or None."""
    layer = final
    while layer is not output:
        if type(layer).__name__ == "Dropout" and layer.rate > 0:
            return layer
        layer = layer.inbound[0].layer
    return None


def _softmax_over_one(model):
    """The layers of ``model`` (inside a model used as a layer too) whose softmax runs over a last
    axis of one value: its output is 1.0 whatever its input."""
    found = []
    for layer in model.graph.order[1:]:
        inner = getattr(layer, "model", None)
        if inner is not None and getattr(inner, "graph", None) is not None:
            found += _softmax_over_one(inner)
        elif getattr(layer, "activation_name", None) == "softmax" and \
                isinstance(layer.output_shape, tuple) and layer.output_shape[-1:] == (1,):
            found.append(layer)
    return found


def warn_if_softmax_over_one_value(model):
    """Warn when a softmax runs over a last axis of size 1 (``Dense(1, activation="softmax")``),
    whatever the loss: a softmax makes the values of its axis sum to 1, so one value is always
    1.0, and nothing before it can learn (Keras lets it pass; with a binary cross-entropy the
    loss stays at its first value). Returns whether it warned."""
    layers = _softmax_over_one(model) if model.built else []
    for layer in layers:
        warnings.warn(f"model '{model.name}': the softmax of '{layer.name}' runs over a last axis "
                      f"of one value (its output is {fmt_shape(layer.output_shape)}): a softmax "
                      "makes the values of its last axis sum to 1, so its output is always 1.0 "
                      "and training cannot change it. For one output unit use "
                      "activation='sigmoid' (two classes, with binary_crossentropy) or None (a "
                      "regression); for K classes give the layer K units", UserWarning,
                      stacklevel=_user_stacklevel())
    return bool(layers)


def warn_if_probabilities_without_softmax(model):
    """Warn when a loss on probabilities follows a last layer that gives none (Keras lets it pass,
    and the model trains to a fraction of its accuracy)."""
    if not model.built or getattr(model.loss, "from_logits", True):
        return
    final = model.graph.output
    output = _source_of_output(final)
    last = "the last layer" if output is final else "the layer that computes its outputs"
    kind = type(model.loss).name  # the class's name: a user may rename the loss itself
    if kind in ("categorical_crossentropy", "sparse_categorical_crossentropy") \
            and output.activation_name == "softmax" \
            and final.output_shape[-1] != output.output_shape[-1]:  # rows regrouped by Reshape
        warnings.warn(f"model '{model.name}': {kind} reads rows of the last axis, "
                      f"{final.output_shape[-1]} value(s) after '{final.name}', but the softmax of "
                      f"'{output.name}' makes rows of {output.output_shape[-1]} sum to 1: the "
                      "loss would not read probabilities; keep the softmax's axis last",
                      UserWarning, stacklevel=_user_stacklevel())
    elif kind in ("categorical_crossentropy", "sparse_categorical_crossentropy") \
            and output.activation_name != "softmax" and output.output_shape[-1] > 1 \
            and not hasattr(output, "model"):  # a nested model's own output layer is inside it
        warnings.warn(f"model '{model.name}': {kind} expects probabilities, but {last} "
                      f"'{output.name}' has no softmax (activation {output.activation_name!r}); add "
                      f"activation='softmax' to it, or use {type(model.loss).__name__}"
                      "(from_logits=True)", UserWarning, stacklevel=_user_stacklevel())
    dropped, before = _dropout_after(final, output), output
    while dropped is None and hasattr(before, "model"):  # a model used as the last layer
        inner = before.model.graph.output
        before = _source_of_output(inner)
        dropped = _dropout_after(inner, before)
    activated = before
    while hasattr(activated, "model"):  # (Dropout after a model whose last layer has a softmax)
        activated = _source_of_output(activated.model.graph.output)
    if dropped is not None and activated.activation_name in ("softmax", "sigmoid"):
        nan = (" (and a row whose values are all dropped has no probabilities at all: a NaN "
               "loss)" if activated.activation_name == "softmax" else "")
        warnings.warn(f"model '{model.name}': Dropout '{dropped.name}' comes after the "
                      f"{activated.activation_name} of '{activated.name}', which makes the model's "
                      "outputs: in training it sets some probabilities to 0 and scales the others "
                      f"by 1 / (1 - rate), so the loss does not read the model's probabilities{nan}"
                      f"; put the Dropout before '{before.name}'", UserWarning,
                      stacklevel=_user_stacklevel())
    if kind == "binary_crossentropy" and output.activation_name != "sigmoid" and \
            output not in _softmax_over_one(model):  # (that warning says to use a sigmoid)
        warnings.warn(f"model '{model.name}': binary_crossentropy expects probabilities, but "
                      f"{last} '{output.name}' has no sigmoid; add activation='sigmoid', or "
                      "use BinaryCrossentropy(from_logits=True)", UserWarning,
                      stacklevel=_user_stacklevel())


def warn_if_logits_loss_after_activation(model):
    """Warn when a loss on logits (``from_logits=True``) follows a last layer whose softmax (or
    sigmoid) already made probabilities of them. Keras on TensorFlow warns too, and computes the
    loss from that activation's logits, as if ``from_logits=False``; tinynet does the same (see
    ``training.fused_loss``), where applying the softmax a second time would train on a wrong
    loss (as Keras's JAX and PyTorch backends do)."""
    loss = model.loss
    if not model.built or not getattr(loss, "from_logits", False):
        return
    output = model.graph.output
    activation = getattr(loss, "fuses_with", None)
    if activation is not None and output.activation_name == activation:
        computed = (f"as Keras on TensorFlow does, the loss is computed from the {activation}'s "
                    "logits (the same as from_logits=False)" if losses.fused_activation(loss)
                    else f"your loss receives these probabilities as its logits (it writes its "
                    f"own per_example and gradient, so it is not computed from the "
                    f"{activation}'s logits): a {activation} is applied twice")
        warnings.warn(f"model '{model.name}': {type(loss).__name__}(from_logits=True) expects "
                      f"logits, but the last layer '{output.name}' applies a {activation}, so "
                      f"its outputs are probabilities; {computed}. Remove the {activation} "
                      "(activation=None) to output logits, or drop from_logits=True",
                      UserWarning, stacklevel=_user_stacklevel())
