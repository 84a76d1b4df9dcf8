"""Exercise 5: a confusion matrix and the F1 score of every class.

``y_true`` and ``y_pred`` are integer labels in ``range(num_classes)``. The confusion matrix
``cm`` has one row per true class and one column per predicted class: ``cm[i, j]`` counts the
examples of class ``i`` predicted as ``j``.

For class ``k``: precision = cm[k, k] / (column k's sum), recall = cm[k, k] / (row k's sum),
F1 = 2 * precision * recall / (precision + recall). Where a denominator is 0 the value is 0.
"""


def confusion_matrix(y_true, y_pred, num_classes):
    raise NotImplementedError("count the (true, predicted) pairs into a num_classes x num_classes array")


def f1_scores(cm):
    """One F1 score per class, from a confusion matrix, as a float array."""
    raise NotImplementedError("precision from the columns, recall from the rows, then F1")
