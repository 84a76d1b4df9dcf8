"""Tests of tinynet.metrics against small hand-computed cases."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinynet.metrics import accuracy, classification_report, confusion_matrix, f1_scores, precision_recall_f1

# A 3-class example worked by hand:
#   y_true = 0 0 0 1 1 2 2 2 2 2
#   y_pred = 0 1 0 1 2 2 2 0 2 1
Y_TRUE = [0, 0, 0, 1, 1, 2, 2, 2, 2, 2]
Y_PRED = [0, 1, 0, 1, 2, 2, 2, 0, 2, 1]
# rows = true class, columns = predicted class
CM = [
    [2, 1, 0],  # class 0: two right, one taken for 1
    [0, 1, 1],  # class 1: one right, one taken for 2
    [1, 1, 3],  # class 2: three right, one taken for 0, one for 1
]
# precision = tp / column sum: 2/3, 1/3, 3/4; recall = tp / row sum: 2/3, 1/2, 3/5
# f1 = 2 tp / (row sum + column sum): 4/6, 2/5, 6/9


def test_accuracy_by_hand():
    assert accuracy(Y_TRUE, Y_PRED) == pytest.approx(6 / 10)
    assert accuracy([1, 2, 3], [1, 2, 3]) == 1.0
    assert accuracy([1, 2, 3], [0, 0, 0]) == 0.0


def test_confusion_matrix_by_hand():
    cm = confusion_matrix(Y_TRUE, Y_PRED, 3)
    assert cm.dtype == np.int64 and cm.shape == (3, 3)
    np.testing.assert_array_equal(cm, CM)
    # rows are the true class: transposing the arguments transposes the matrix
    np.testing.assert_array_equal(confusion_matrix(Y_PRED, Y_TRUE, 3), np.transpose(CM))
    # unseen classes give zero rows / columns
    big = confusion_matrix(Y_TRUE, Y_PRED, 5)
    assert big.shape == (5, 5) and big[3:].sum() == 0 and big[:, 3:].sum() == 0
    np.testing.assert_array_equal(big[:3, :3], CM)


def test_precision_recall_f1_by_hand():
    precision, recall, f1 = precision_recall_f1(Y_TRUE, Y_PRED, 3)
    np.testing.assert_allclose(precision, [2 / 3, 1 / 3, 3 / 4])
    np.testing.assert_allclose(recall, [2 / 3, 1 / 2, 3 / 5])
    np.testing.assert_allclose(f1, [4 / 6, 2 / 5, 6 / 9])
    # F1 is the harmonic mean of precision and recall
    np.testing.assert_allclose(f1, 2 * precision * recall / (precision + recall))
    np.testing.assert_allclose(f1_scores(Y_TRUE, Y_PRED, 3), f1)


def test_zero_division_gives_zero():
    # class 2 is never predicted (precision 0/0) and class 3 never occurs (recall 0/0)
    y_true = [0, 1, 2, 2]
    y_pred = [0, 1, 0, 3]
    precision, recall, f1 = precision_recall_f1(y_true, y_pred, 4)
    np.testing.assert_allclose(precision, [1 / 2, 1, 0, 0])
    np.testing.assert_allclose(recall, [1, 1, 0, 0])
    np.testing.assert_allclose(f1, [2 / 3, 1, 0, 0])
    assert np.all(np.isfinite(precision)) and np.all(np.isfinite(f1))


def test_one_hot_and_probabilities_are_argmaxed():
    y_true_onehot = np.eye(3)[Y_TRUE]
    rng = np.random.default_rng(0)
    probs = rng.random((10, 3)) * 0.3
    probs[np.arange(10), Y_PRED] += 0.7  # argmax is Y_PRED
    probs /= probs.sum(axis=1, keepdims=True)
    assert accuracy(y_true_onehot, probs) == pytest.approx(0.6)
    np.testing.assert_array_equal(confusion_matrix(y_true_onehot, probs, 3), CM)
    # num_classes defaults to the width of the one-hot / probability rows
    assert confusion_matrix(Y_TRUE, np.eye(5)[Y_PRED]).shape == (5, 5)
    # (N, 1) columns are labels, not argmax-ed (which would make them all 0)
    np.testing.assert_array_equal(confusion_matrix(np.array(Y_TRUE)[:, None], Y_PRED, 3), CM)
    # whole-number floats are labels too
    np.testing.assert_array_equal(confusion_matrix(np.array(Y_TRUE, float), Y_PRED, 3), CM)


def test_num_classes_inferred_from_labels():
    np.testing.assert_array_equal(confusion_matrix(Y_TRUE, Y_PRED), CM)
    assert confusion_matrix([0, 4], [4, 4]).shape == (5, 5)


def test_errors():
    with pytest.raises(ValueError, match="different lengths: 3 and 2"):
        confusion_matrix([0, 1, 2], [0, 1], 3)
    with pytest.raises(ValueError, match="different lengths"):
        accuracy([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match=r"y_pred has label 3 at index 1, outside \[0, 2\]"):
        confusion_matrix([0, 1, 2], [0, 3, 1], 3)
    with pytest.raises(ValueError, match=r"y_true has label -1 at index 0"):
        precision_recall_f1([-1, 1], [0, 1], 3)
    with pytest.raises(ValueError, match="integer class labels.*0.5"):
        accuracy([0.5, 1.0], [0, 1])
    with pytest.raises(ValueError, match="shape"):
        accuracy(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="empty"):
        accuracy([], [])
    with pytest.raises(ValueError, match="num_classes"):
        confusion_matrix([0], [0], 0)
    with pytest.raises(ValueError, match="class_names has 2 names for 3 classes"):
        classification_report(Y_TRUE, Y_PRED, 3, class_names=["a", "b"])
    with pytest.raises(TypeError, match="numeric"):
        accuracy(["a"], ["a"])


def test_sigmoid_column_gets_the_threshold_advice_that_works():
    # (N, 1) probabilities of one sigmoid unit: the advice was to pass a 2-D (N, K) array to be
    # arg-maxed, which for K = 1 gives class 0 everywhere
    p = np.array([[0.9], [0.2], [0.7], [0.4]])
    y = [1, 0, 0, 0]
    with pytest.raises(ValueError) as info:
        confusion_matrix(y, p, 2)
    message = str(info.value)
    assert "confusion_matrix: y_pred must hold integer class labels, got 0.9 at index 0" in message
    assert "shape (4, 1)" in message and "sigmoid" in message and "argmax" not in message
    fix = "(p > 0.5).astype(int).ravel()"
    assert f"passing {fix} as y_pred" in message
    labels = eval(fix, {"p": p})  # the advice, as written, gives the right matrix
    np.testing.assert_array_equal(confusion_matrix(y, labels, 2), [[2, 1], [0, 1]])
    with pytest.raises(ValueError, match=r"f1_scores: y_true .*\(p > 0\.5\)\.astype\(int\)\.ravel"):
        f1_scores(p, y)
    # 1-D probabilities: threshold them too, or pass (N, K) rows; scores outside [0, 1]: rows
    with pytest.raises(ValueError, match=r"passing \(p > 0\.5\)\.astype\(int\) as y_pred;.*\(N, K\)"):
        accuracy(y, p.ravel())
    with pytest.raises(ValueError, match=r"got 2\.5 at index 1; pass rows of K class"):
        accuracy(y, [1.0, 2.5, 0.0, 0.0])


@pytest.mark.parametrize("fn", [confusion_matrix, f1_scores, precision_recall_f1,
                                classification_report])
def test_empty_labels_are_an_error_naming_the_function(fn):
    # f1_scores([], []) returned [0.]: a score of no predictions at all
    for args in (([], []), (np.zeros(0, int), np.zeros(0, int), 3), (np.zeros((0, 3)), [])):
        with pytest.raises(ValueError, match=rf"{fn.__name__}: y_true and y_pred are empty "
                                             r"\(0 examples\)"):
            fn(*args)


def test_classification_report_matches_sklearn_layout():
    # scikit-learn's documented example, whose output is reproduced character for character
    report = classification_report([0, 1, 2, 2, 2], [0, 0, 2, 2, 1], 3, class_names=["class 0", "class 1", "class 2"])
    expected = (
        "              precision    recall  f1-score   support\n"
        "\n"
        "     class 0       0.50      1.00      0.67         1\n"
        "     class 1       0.00      0.00      0.00         1\n"
        "     class 2       1.00      0.67      0.80         3\n"
        "\n"
        "    accuracy                           0.60         5\n"
        "   macro avg       0.50      0.56      0.49         5\n"
        "weighted avg       0.70      0.60      0.61         5\n"
    )
    assert report == expected


def test_classification_report_numbers_and_names():
    report = classification_report(Y_TRUE, Y_PRED, 3, class_names=["T-shirt/top", "Trouser", "Pullover"], digits=4)
    lines = report.splitlines()
    assert lines[2].split() == ["T-shirt/top", "0.6667", "0.6667", "0.6667", "3"]
    assert lines[3].split() == ["Trouser", "0.3333", "0.5000", "0.4000", "2"]
    assert lines[4].split() == ["Pullover", "0.7500", "0.6000", "0.6667", "5"]
    assert lines[6].split() == ["accuracy", "0.6000", "10"]
    # macro: plain means; weighted: by support 3, 2, 5
    macro_p = (2 / 3 + 1 / 3 + 3 / 4) / 3
    weighted_r = (3 * 2 / 3 + 2 * 1 / 2 + 5 * 3 / 5) / 10
    assert lines[7].split()[:3] == ["macro", "avg", f"{macro_p:.4f}"]
    assert lines[8].split()[:2] == ["weighted", "avg"] and lines[8].split()[3] == f"{weighted_r:.4f}"
    # weighted recall is the accuracy
    assert lines[8].split()[3] == "0.6000"


@settings(max_examples=100, deadline=None)
@given(
    k=st.integers(1, 6),
    pairs=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=60),
)
def test_against_naive_loops(k, pairs):
    y_true = [t % k for t, _ in pairs]
    y_pred = [p % k for _, p in pairs]
    cm = confusion_matrix(y_true, y_pred, k)
    naive = np.zeros((k, k), int)
    for t, p in zip(y_true, y_pred):
        naive[t, p] += 1
    np.testing.assert_array_equal(cm, naive)
    assert accuracy(y_true, y_pred) == pytest.approx(np.trace(naive) / len(pairs))
    precision, recall, f1 = precision_recall_f1(y_true, y_pred, k)
    for c in range(k):
        tp = sum(t == c and p == c for t, p in zip(y_true, y_pred))
        n_pred = sum(p == c for p in y_pred)
        n_true = sum(t == c for t in y_true)
        assert precision[c] == pytest.approx(tp / n_pred if n_pred else 0.0)
        assert recall[c] == pytest.approx(tp / n_true if n_true else 0.0)
        pr, rc = precision[c], recall[c]
        assert f1[c] == pytest.approx(2 * pr * rc / (pr + rc) if pr + rc else 0.0)


def test_classification_report_averages_the_classes_that_occur_as_scikit_learn():
    """Class 1 occurs in neither input: scikit-learn leaves it out (macro F1 1.00 for perfect
    predictions, where 0.67 was reported); naming every class (class_names, num_classes) keeps it,
    as scikit-learn's labels= does."""
    report = classification_report([0, 0, 2, 2], [0, 0, 2, 2])
    rows = [line.split() for line in report.splitlines() if line.strip()]
    assert [r[0] for r in rows[1:3]] == ["0", "2"]
    assert rows[4][:5] == ["macro", "avg", "1.00", "1.00", "1.00"]
    named = classification_report([0, 0, 2, 2], [0, 0, 2, 2], class_names=["a", "b", "c"])
    assert "   b       0.00      0.00      0.00         0" in named
    assert "macro avg       0.67      0.67      0.67" in named
    # ten names for labels that stop at 8: ten classes (it was "10 names for 9 classes")
    ten = classification_report([0, 8], [0, 8], class_names=[f"c{i}" for i in range(10)])
    assert "c9" in ten
    by_dict = classification_report([0, 1], [0, 1], class_names={0: "zero", 1: "one"})
    assert "zero" in by_dict and "one" in by_dict

    # one-hot rows say how many classes there are: every class has its row, as scikit-learn's
    onehot = classification_report(np.eye(4)[[0, 2]], np.eye(4)[[0, 2]])
    assert [line.split()[0] for line in onehot.splitlines()[2:6]] == ["0", "1", "2", "3"]
    with pytest.raises(ValueError, match="classification_report: class_names has 2 names for 3"):
        classification_report([0, 1, 2], [0, 1, 2], class_names=["a", "b"])


def test_classification_report_weighted_average_rounds_as_scikit_learn():
    # weighted F1 = (0.4 * 6 + 0.5 * 2 + 0 * 4) / 12 = 0.275 exactly; summed as support-weighted
    # fractions it is 0.275 (printed 0.28), scikit-learn's np.average gives 0.27499999999999997
    t = [2, 0, 2, 0, 0, 1, 0, 0, 2, 2, 0, 1]
    p = [0, 2, 1, 2, 3, 1, 1, 0, 2, 3, 3, 2]
    last = classification_report(t, p).splitlines()[-1].split()
    assert last == ["weighted", "avg", "0.39", "0.25", "0.27", "12"]
