"""Classification metrics: accuracy, confusion matrix, per-class precision / recall / F1; and the
two errors of a regression that ``compile(metrics=...)`` also takes (:func:`errors`).

All functions take *integer class labels* ``0 .. num_classes - 1``. For convenience, a 2-D array
of shape ``(N, K)`` with ``K > 1`` -- one-hot targets or predicted probabilities / logits, as
``model.predict`` returns them -- is turned into labels by ``argmax`` along its last axis; a
column ``(N, 1)`` is read as labels. Float arrays holding whole numbers (``3.0``) are accepted as
labels; other floats are an error, which for the ``(N, 1)`` probabilities of one sigmoid unit says
to threshold them: ``(p > 0.5).astype(int).ravel()``. Empty inputs are an error.

Definitions, for a class ``k`` with the confusion matrix ``C`` (rows: true class, columns:
predicted class)::

    tp_k      = C[k, k]                         correctly predicted as k
    support_k = sum_j C[k, j]                   how many samples truly are k
    predicted = sum_i C[i, k]                   how many samples were predicted as k
    precision_k = tp_k / predicted_k            of those predicted k, the fraction that are k
    recall_k    = tp_k / support_k              of those that are k, the fraction found
    f1_k        = 2 tp_k / (support_k + predicted_k)   harmonic mean of precision and recall

A ratio whose denominator is zero is 0 (scikit-learn's default ``zero_division`` behaviour,
without its warning). The macro average is the plain mean over classes; the weighted average
weighs each class by its support.
"""

from __future__ import annotations

import numpy as np

from .backend import eager_scalar, fused, to_numpy
from .losses import mean_absolute_error, mean_squared_error  # Keras's metric functions too

__all__ = [
    "accuracy",
    "confusion_matrix",
    "precision_recall_f1",
    "f1_scores",
    "classification_report",
]


def _to_labels(y, name: str, where: str = "metrics") -> np.ndarray:
    """Integer labels (int64, shape (N,)) from labels, one-hot rows or probability rows."""
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numeric labels, got dtype {y.dtype}")
    column = y.ndim == 2 and y.shape[1] == 1
    if column:
        y = y[:, 0]
    elif y.ndim == 2:
        if y.shape[1] == 0:
            raise ValueError(f"{name} has shape {y.shape}: one-hot / probability rows need at least 1 column")
        return np.argmax(y, axis=1).astype(np.int64)
    if y.ndim != 1:
        raise ValueError(
            f"{name} must be labels of shape (N,) or one-hot / probabilities of shape (N, K), got shape {y.shape}"
        )
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            bad = int(np.flatnonzero(~np.isfinite(y) | (y != np.round(y)))[0])
            probabilities = bool(np.all((y >= 0) & (y <= 1)))
            fix = "(p > 0.5).astype(int).ravel()" if column else "(p > 0.5).astype(int)"
            if column and probabilities:
                advice = (f"{name} has shape ({y.shape[0]}, 1): the output of one sigmoid unit, the "
                          f"probability of class 1? Threshold it at 0.5 for labels 0 and 1, "
                          f"passing {fix} as {name}")
            elif probabilities:
                advice = (f"probabilities of class 1 (one sigmoid unit)? Threshold them at 0.5 for "
                          f"labels 0 and 1, passing {fix} as {name}; rows of K class "
                          "probabilities are passed as a 2-D (N, K) array to have them argmax-ed")
            else:
                advice = ("pass rows of K class probabilities or scores as a 2-D (N, K) array to "
                          "have them argmax-ed")
            raise ValueError(
                f"{where}: {name} must hold integer class labels, got {y[bad].item()!r} at index {bad}; "
                f"{advice}"
            )
    return y.astype(np.int64)


def _num_classes_of(y) -> int | None:
    y = np.asarray(y)
    return int(y.shape[1]) if y.ndim == 2 and y.shape[1] > 1 else None


def _prepare(y_true, y_pred, num_classes=None, where="metrics"):
    """Validated ``(t, p, num_classes)``: equal lengths, at least one example, labels within
    ``[0, num_classes)``; ``where`` (the public function's name) starts the error messages.

    ``num_classes=None`` takes it from a one-hot / probability input's width, else from the
    largest label + 1.
    """
    t = _to_labels(y_true, "y_true", where)
    p = _to_labels(y_pred, "y_pred", where)
    if t.shape[0] != p.shape[0]:
        raise ValueError(f"y_true and y_pred have different lengths: {t.shape[0]} and {p.shape[0]}")
    if t.shape[0] == 0:
        raise ValueError(f"{where}: y_true and y_pred are empty (0 examples): there are no "
                         "predictions to count or score; pass the labels of at least one example")
    if num_classes is None:
        widths = [w for w in (_num_classes_of(y_true), _num_classes_of(y_pred)) if w is not None]
        if widths:
            num_classes = max(widths)
        else:
            num_classes = int(max(t.max(initial=-1), p.max(initial=-1))) + 1
            num_classes = max(num_classes, 1)
    if isinstance(num_classes, (bool, np.bool_)) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    num_classes = int(num_classes)
    for labels, name in ((t, "y_true"), (p, "y_pred")):
        bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"{name} has label {labels[i]} at index {i}, outside [0, {num_classes - 1}] "
                f"for num_classes={num_classes} ({bad.size} such labels)"
            )
    return t, p, num_classes


def _safe_divide(num, den) -> np.ndarray:
    """num / den elementwise, 0 where den == 0."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def accuracy(y_true, y_pred) -> float:
    """Fraction of samples whose predicted label equals the true label, in [0, 1].

    Labels, one-hot rows or probability rows (argmax-ed). Empty inputs are an error.
    """
    t = _to_labels(y_true, "y_true", "accuracy")
    p = _to_labels(y_pred, "y_pred", "accuracy")
    if t.shape[0] != p.shape[0]:
        raise ValueError(f"y_true and y_pred have different lengths: {t.shape[0]} and {p.shape[0]}")
    if t.shape[0] == 0:
        raise ValueError("accuracy of an empty set of predictions is undefined")
    return float(np.mean(t == p))


def confusion_matrix(y_true, y_pred, num_classes=None) -> np.ndarray:
    """``C[i, j]`` = number of samples of true class ``i`` predicted as class ``j`` (int64).

    Rows are the true class, columns the predicted class (like scikit-learn), so the diagonal
    holds the correct predictions, ``C.sum(axis=1)`` the support of each class and
    ``C.sum(axis=0)`` how often each class was predicted. Empty inputs are an error.
    """
    return _confusion(*_prepare(y_true, y_pred, num_classes, "confusion_matrix"))


def _confusion(t, p, k):
    """The confusion matrix of validated labels ``t``, ``p`` of ``k`` classes."""
    # Each (true, predicted) pair gets one integer code t*k + p; counting codes fills the matrix.
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k).astype(np.int64)


def precision_recall_f1(y_true, y_pred, num_classes=None):
    """Per-class ``(precision, recall, f1)``: three float64 arrays of length ``num_classes``.

    A class never predicted has precision 0; a class absent from ``y_true`` has recall 0; F1 is
    0 when both are 0 (see the module docstring for the formulas). Empty inputs are an error.
    """
    return _precision_recall_f1(*_prepare(y_true, y_pred, num_classes, "precision_recall_f1"))


def _precision_recall_f1(t, p, k):
    cm = _confusion(t, p, k)
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = _safe_divide(tp, predicted)
    recall = _safe_divide(tp, support)
    f1 = _safe_divide(2 * tp, support + predicted)
    return precision, recall, f1


def f1_scores(y_true, y_pred, num_classes=None) -> np.ndarray:
    """Per-class F1 scores (float64 array of length ``num_classes``); ``.mean()`` is macro-F1
    over classes 0 to ``num_classes - 1`` (a class in neither input counts 0; the macro average
    of :func:`classification_report` leaves such classes out when it is given plain labels and
    neither ``num_classes`` nor ``class_names``, as scikit-learn's). Empty inputs
    are an error (the F1 of no predictions is undefined)."""
    return _precision_recall_f1(*_prepare(y_true, y_pred, num_classes, "f1_scores"))[2]


def class_names_list(class_names, where):
    """``class_names`` as a list of strings, class ``i`` named by item ``i``: a sequence, or a
    dict ``{0: "T-shirt/top", 1: ...}`` keyed by every class number from 0; ``None`` stays
    ``None``."""
    if class_names is None:
        return None
    if isinstance(class_names, dict):
        keys = sorted(class_names)
        if keys != list(range(len(keys))):
            raise ValueError(f"{where}: class_names as a dict is keyed by the class numbers 0, "
                             f"1, ..., got the keys {keys[:12]}")
        return [str(class_names[i]) for i in keys]
    if isinstance(class_names, str) or not hasattr(class_names, "__iter__"):
        raise TypeError(f"{where}: class_names is a list of names, one per class (class i named "
                        f"by item i), got {type(class_names).__name__}")
    return [str(n) for n in class_names]


def classification_report(y_true, y_pred, num_classes=None, class_names=None, digits=2) -> str:
    """A text table like scikit-learn's ``classification_report``.

    One row per class (precision, recall, f1-score, support), then accuracy, the macro average
    and the support-weighted average. For ``y_true = [0, 1, 2, 2, 2]``,
    ``y_pred = [0, 0, 2, 2, 1]`` (scikit-learn's documentation example, same output)::

                      precision    recall  f1-score   support

                   0       0.50      1.00      0.67         1
                   1       0.00      0.00      0.00         1
                   2       1.00      0.67      0.80         3

            accuracy                           0.60         5
           macro avg       0.50      0.56      0.49         5
        weighted avg       0.70      0.60      0.61         5

    ``class_names`` (one name per class, class ``i`` named ``class_names[i]``) replaces the
    numeric row labels. As scikit-learn's, the rows and the macro average are those of the
    classes that occur in ``y_true`` or ``y_pred``, unless ``num_classes`` or ``class_names``
    says how many classes there are (scikit-learn's ``labels=``): every class then has its row,
    and one that never occurs counts 0 in the macro average.
    """
    names = class_names_list(class_names, "classification_report")
    t, p, k = _prepare(y_true, y_pred, num_classes, "classification_report")
    if names is None:
        names = [str(i) for i in range(k)]
    elif len(names) < k or (num_classes is not None and len(names) != k):
        raise ValueError(f"classification_report: class_names has {len(names)} names for {k} "
                         "classes")
    elif len(names) > k:  # named classes that the labels do not reach
        k = len(names)
    if isinstance(digits, bool) or not isinstance(digits, (int, np.integer)) or digits < 0:
        raise ValueError(f"digits must be a non-negative integer, got {digits!r}")
    precision, recall, f1 = _precision_recall_f1(t, p, k)
    support = np.bincount(t, minlength=k)
    total = int(support.sum())
    acc = float(np.mean(t == p)) if total else 0.0

    def weighted(values):  # by support, as scikit-learn's np.average (the same rounding)
        return float(np.average(values, weights=support)) if total else 0.0
    widths = [_num_classes_of(y) for y in (y_true, y_pred)]
    if num_classes is None and class_names is None and not any(widths):
        # labels, not one-hot rows: the classes that occur, as scikit-learn's
        rows = np.flatnonzero(support + np.bincount(p, minlength=k))
    else:
        rows = np.arange(k)
    class_names = [names[i] for i in rows]
    precision_rows, recall_rows, f1_rows = precision[rows], recall[rows], f1[rows]

    headers = ["precision", "recall", "f1-score", "support"]
    width = max(max(len(n) for n in class_names), len("weighted avg"), digits)
    head_fmt = "{:>{width}s} " + " {:>9}" * len(headers)
    row_fmt = "{:>{width}s} " + " {:>9.{digits}f}" * 3 + " {:>9}\n"
    lines = head_fmt.format("", *headers, width=width) + "\n\n"
    for name, i in zip(class_names, rows):
        lines += row_fmt.format(name, precision[i], recall[i], f1[i], int(support[i]), width=width, digits=digits)
    lines += "\n"
    acc_fmt = "{:>{width}s} " + " {:>9}" * 2 + " {:>9.{digits}f}" + " {:>9}\n"
    lines += acc_fmt.format("accuracy", "", "", acc, total, width=width, digits=digits)
    lines += row_fmt.format("macro avg", precision_rows.mean(), recall_rows.mean(), f1_rows.mean(),
                            total, width=width, digits=digits)
    lines += row_fmt.format(
        "weighted avg",
        weighted(precision),
        weighted(recall),
        weighted(f1),
        total,
        width=width,
        digits=digits,
    )
    return lines


# ---- Keras's metric objects, for compile(metrics=[...]) ----------------------------------------
# Keras's names of the accuracy, the one metric tinynet's models compute; each is logged under the
# name the user gave, as Keras does
ACCURACY_NAMES = ("accuracy", "acc", "categorical_accuracy", "sparse_categorical_accuracy",
                  "binary_accuracy")

def hits(y, out, logits=False, binary=False):
    """Per example, the fraction of its predictions that are right: the arg-max class of a softmax
    output (``y`` one-hot or class numbers), or, with ``binary`` (Keras's ``binary_accuracy``, and
    its ``accuracy`` for one output unit), each unit's ``out > 0.5`` (``> 0`` on a sigmoid's
    logits)."""
    if binary or out.shape[-1] == 1:
        y = y.reshape(out.shape)  # one label per unit (checks.unit_labels)
        right = (out > (0 if logits else 0.5)) == (y > 0.5)
    else:
        kernel = fused("argmax_hits", out)  # these lines, compiled (numba, 2-D outputs)
        right = kernel(y, out) if kernel is not None else None
        if right is not None:
            return right
        predicted = out.argmax(axis=-1)
        right = predicted == (y.argmax(axis=-1) if y.shape == out.shape
                              else y.reshape(predicted.shape))
    return right.reshape(right.shape[0], -1).mean(axis=1)


# Keras's names of the two regression errors tinynet computes -> the error
ERROR_NAMES = {"mae": "mae", "mean_absolute_error": "mae", "mse": "mse",
               "mean_squared_error": "mse"}
# the other strings Keras takes for the metrics tinynet has (its classes' names, "MAE") -> the name
# above (the metric is still logged under the string given, as Keras logs it)
METRIC_ALIASES = {"MAE": "mae", "MSE": "mse", "MeanAbsoluteError": "mean_absolute_error",
                  "MeanSquaredError": "mean_squared_error", "Accuracy": "accuracy",
                  "BinaryAccuracy": "binary_accuracy",
                  "CategoricalAccuracy": "categorical_accuracy",
                  "SparseCategoricalAccuracy": "sparse_categorical_accuracy"}


# Keras 3 metrics tinynet does not implement (names as compile(metrics=...) takes them)
KERAS_ONLY = (
    "AUC", "Precision", "Recall", "F1Score", "FBetaScore", "R2Score", "IoU", "MeanIoU",
    "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy", "RootMeanSquaredError",
    "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError", "CosineSimilarity",
    "LogCoshError", "KLDivergence", "Poisson", "Hinge", "SquaredHinge", "CategoricalHinge",
    "BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
    "auc", "precision", "recall", "f1_score", "fbeta_score", "r2_score", "iou", "mean_iou",
    "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "hinge", "squared_hinge",
    "categorical_hinge", "kl_divergence", "kld", "log_cosh", "logcosh",
    "mean_absolute_percentage_error", "mape", "mean_squared_logarithmic_error", "msle", "poisson",
    "cosine_similarity", "root_mean_squared_error", "binary_crossentropy",
    "categorical_crossentropy", "sparse_categorical_crossentropy",
)


def errors(y, out, kind):
    """Per example, the mean over its output units of ``|out - y|`` (``kind="mae"``, Keras's
    ``mean_absolute_error`` metric) or ``(out - y)²`` (``"mse"``): shape ``(N,)``, ``y`` holding
    one target per output unit. Their mean over the examples is the metric."""
    d = out - y.reshape(out.shape)
    e = abs(d) if kind == "mae" else d * d
    return e.reshape(e.shape[0], -1).mean(axis=1)


class _AccuracyMetric:
    """A Keras metric object: given to ``compile`` (``metrics=[SparseCategoricalAccuracy()]``)
    it names the accuracy the model computes (the arg-max class, or ``> 0.5`` for one unit); in
    a training loop of one's own, ``update_state(y_true, y_pred)`` adds a batch's hits,
    ``result()`` is the accuracy of all the batches since ``reset_state()`` (each example
    weighted by its ``sample_weight``, as Keras's mean: ``sum(w * hit) / sum(w)``)."""

    default_name = "accuracy"
    binary = False

    def __new__(cls, *args, **kwargs):  # whatever the subclass's __init__ does
        own = [m for m in ("update_state", "result", "reset_state", "reset_states")
               if any(m in vars(k) for k in cls.__mro__ if k.__module__ != __name__)]
        if own:
            raise TypeError(f"{cls.__name__} defines {', '.join(own)}: a metric of one's "
                            "own is not implemented in tinynet, whose models compute the "
                            "accuracy themselves (this object only names it) and would log the "
                            "accuracy under your metric's name; compute your metric in a "
                            "Callback's on_epoch_end (logs['val_top3'] = ..., which History "
                            "records), or with tinynet.metrics' functions after predict")
        return super().__new__(cls)

    def __init__(self, name=None, dtype=None):
        self.name = name or self.default_name
        self.reset_state()

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add the hits of one batch: ``y_pred`` the model's outputs (N, classes), ``y_true``
        one-hot rows or class numbers (for ``BinaryAccuracy``, one 0/1 label per unit)."""
        y_true, y_pred = np.asarray(to_numpy(y_true)), np.asarray(to_numpy(y_pred))
        if y_pred.ndim == 0 or y_true.size == 0 or len(y_true) != len(y_pred):
            raise ValueError(f"{type(self).__name__}.update_state: y_true {y_true.shape} and "
                             f"y_pred {y_pred.shape} must hold the same examples (N, ...)")
        right = self._per_example(y_true, y_pred)
        w = np.ones(len(right)) if sample_weight is None else \
            self._weights(sample_weight, len(right))
        self._total += float((w * right).sum())
        self._count += float(w.sum())

    def _weights(self, sample_weight, n):
        """One weight per example, (n,), from ``sample_weight``: n numbers, or one for all."""
        w = np.asarray(to_numpy(sample_weight), dtype=float)
        if w.size not in (1, n) or (w.size == n and w.ndim > 1 and w.shape != (n, 1)):
            raise ValueError(f"{type(self).__name__}.update_state: sample_weight has shape "
                             f"{w.shape} for {n} examples; give one weight per example, shape "
                             f"({n},), or one number for all of them")
        return np.broadcast_to(w.reshape(-1), (n,))

    def _per_example(self, y_true, y_pred):
        self._check_labels(y_true, y_pred)
        return hits(y_true, y_pred, binary=self.binary)

    def _check_labels(self, y_true, y_pred):
        """Labels that ``hits`` can compare with ``y_pred``, else an error naming the shapes: one
        label per unit (``binary``, or a single output unit), one-hot rows of ``y_pred``'s
        shape, or class numbers in ``[0, classes)``, one per example (``(N,)`` or ``(N, 1)``),
        as fit checks them."""
        where = f"{type(self).__name__}.update_state"
        if self.binary or y_pred.shape[-1] == 1:
            if y_true.size != y_pred.size:
                raise ValueError(f"{where}: y_true {y_true.shape} needs one 0/1 label per "
                                 f"output unit of y_pred {y_pred.shape}")
            return
        classes = y_pred.shape[-1]
        if y_true.shape == y_pred.shape:  # one-hot rows
            return
        if y_true.shape not in (y_pred.shape[:-1], y_pred.shape[:-1] + (1,)):
            hint = (f": one-hot rows of {y_true.shape[-1]} classes for predictions of "
                    f"{classes}" if y_true.shape[:-1] == y_pred.shape[:-1] else "")
            raise ValueError(f"{where}: y_true {y_true.shape} does not match y_pred "
                             f"{y_pred.shape}{hint}; y_true must be one-hot rows of y_pred's "
                             f"shape {y_pred.shape} or class numbers, one per example, of shape "
                             f"{y_pred.shape[:-1]}")
        if y_true.size == 0:
            return
        if y_true.dtype.kind not in "biuf":
            raise TypeError(f"{where}: y_true must hold class numbers, got dtype {y_true.dtype}")
        if y_true.dtype.kind == "f" and not (np.isfinite(y_true).all() and
                                             np.array_equal(y_true, np.round(y_true))):
            raise ValueError(f"{where}: y_true of shape {y_true.shape} must hold whole class "
                             f"numbers 0 to {classes - 1}; it holds fractions (or NaN)")
        low, high = y_true.min(), y_true.max()
        if low < 0:
            raise ValueError(f"{where}: y_true holds the class number {int(low)}; class "
                             f"numbers run from 0 to {classes - 1} (y_pred {y_pred.shape} has "
                             f"{classes} classes)")
        if high >= classes:
            raise ValueError(f"{where}: y_true holds class numbers up to {int(high)} but y_pred "
                             f"{y_pred.shape} has {classes} classes (0 to {classes - 1}); give "
                             f"the model's last layer {int(high) + 1} units, or check the labels")

    def result(self):
        """The accuracy since the last ``reset_state`` (0 before any batch, as Keras)."""
        return eager_scalar(self._total / self._count if self._count else 0.0)

    def reset_state(self):
        self._total, self._count = 0.0, 0.0

    def __call__(self, y_true, y_pred, sample_weight=None):
        """Keras's ``metric(y_true, y_pred)``: ``update_state``, then the ``result()`` so far."""
        self.update_state(y_true, y_pred, sample_weight)
        return self.result()

    reset_states = reset_state  # Keras 2's name

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"


class Accuracy(_AccuracyMetric):
    default_name = "accuracy"

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Refused: Keras's ``Accuracy`` counts outputs *equal* to their labels, where tinynet's
        names the arg-max accuracy (README, "What differs on purpose"); either reading would
        surprise someone here."""
        raise TypeError("Accuracy.update_state: Keras's Accuracy counts outputs equal to their "
                        "labels, tinynet's Accuracy() names the arg-max accuracy; in a loop of "
                        "one's own use SparseCategoricalAccuracy() (class numbers), "
                        "CategoricalAccuracy() (one-hot rows) or BinaryAccuracy(), or Keras's "
                        "count itself: np.mean(y_true == y_pred)")


class CategoricalAccuracy(_AccuracyMetric):
    default_name = "categorical_accuracy"


class SparseCategoricalAccuracy(_AccuracyMetric):
    default_name = "sparse_categorical_accuracy"


class BinaryAccuracy(_AccuracyMetric):
    default_name = "binary_accuracy"
    binary = True

    def __init__(self, name=None, dtype=None, threshold=0.5):
        if threshold != 0.5:
            raise ValueError(f"BinaryAccuracy: threshold={threshold!r} is not implemented in "
                             "tinynet, whose binary accuracy counts an output > 0.5 as class 1 "
                             "(a logit > 0 with from_logits=True); leave threshold at 0.5")
        super().__init__(name, dtype)


class _ErrorMetric(_AccuracyMetric):
    """A regression's error as a Keras metric object: ``compile(metrics=[MeanAbsoluteError()])``
    logs it; ``update_state``/``result`` give the mean of :func:`errors` over the batches."""

    kind = "mae"

    def _per_example(self, y_true, y_pred):
        if y_true.size != y_pred.size:
            raise ValueError(f"{type(self).__name__}.update_state: y_true {y_true.shape} needs "
                             f"one target per output, y_pred {y_pred.shape}")
        return errors(y_true, y_pred, self.kind)


class MeanAbsoluteError(_ErrorMetric):
    """Keras's ``MeanAbsoluteError`` metric: the mean over examples and outputs of ``|p - y|``."""

    default_name = "mean_absolute_error"
    kind = "mae"


class MeanSquaredError(_ErrorMetric):
    """Keras's ``MeanSquaredError`` metric: the mean over examples and outputs of ``(p - y)²``."""

    default_name = "mean_squared_error"
    kind = "mse"


__all__ += ["Accuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy", "BinaryAccuracy",
            "MeanAbsoluteError", "MeanSquaredError", "errors", "mean_absolute_error",
            "mean_squared_error"]


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    from .names import absent
    raise absent(f"tinynet.metrics has no {name}: it is a Keras metric tinynet does not "
                 "implement; compile(metrics=...) takes the accuracy under Keras's names "
                 f"({', '.join(ACCURACY_NAMES)}) or as Accuracy(), CategoricalAccuracy(), "
                 "SparseCategoricalAccuracy(), BinaryAccuracy(), and a regression's errors "
                 "('mae', 'mse', MeanAbsoluteError(), MeanSquaredError()); tinynet.metrics also "
                 "has confusion_matrix, f1_scores and classification_report for labels",
                 __name__, name)
