"""Losses: gradients against central differences (float64), sparse labels against one-hot ones,
Keras's names, functions and error messages. Keras's own numbers are in test_keras_fixtures.py."""
import numpy as np
import pytest

from tinynet import losses

RNG = np.random.default_rng(11)


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def numerical_gradient(loss, y_true, y_pred, h=1e-6):
    """Central differences of the batch-mean loss with respect to every entry of ``y_pred``."""
    grad = np.zeros_like(y_pred)
    for i in np.ndindex(*y_pred.shape):
        up, down = y_pred.copy(), y_pred.copy()
        up[i] += h
        down[i] -= h
        grad[i] = (float(loss(y_true, up)) - float(loss(y_true, down))) / (2 * h)
    return grad


def assert_gradient(loss, y_true, y_pred, rtol=1e-7):
    analytic = loss.gradient(y_true, y_pred)
    numeric = numerical_gradient(loss, y_true, y_pred)
    assert analytic.shape == y_pred.shape and analytic.dtype == np.float64
    scale = np.abs(numeric).max()
    assert scale > 0
    np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=rtol * scale)


# probabilities comfortably inside the clip [1e-7, 1 - 1e-7], and the labels they go with
LOGITS = RNG.standard_normal((4, 5)) * 1.5
PROBS = softmax(LOGITS)
LABELS = np.array([3, 0, 4, 1])
ONE_HOT = np.eye(5)[LABELS]
PIXEL_LOGITS = RNG.standard_normal((2, 3, 2, 4))
PIXEL_LABELS = RNG.integers(0, 4, size=(2, 3, 2))


# --------------------------------------------------------------------------------------------
# gradients against central differences
# --------------------------------------------------------------------------------------------

GRADIENT_CASES = {
    "cce_probs": (losses.CategoricalCrossentropy(), ONE_HOT, PROBS),
    "cce_probs_soft_unnormalised": (losses.CategoricalCrossentropy(),
                                    RNG.dirichlet(np.ones(5), size=4), PROBS * 1.7),
    "cce_logits": (losses.CategoricalCrossentropy(from_logits=True), ONE_HOT, LOGITS),
    "cce_label_smoothing": (losses.CategoricalCrossentropy(label_smoothing=0.1), ONE_HOT, PROBS),
    "cce_logits_per_pixel": (losses.CategoricalCrossentropy(from_logits=True),
                             np.eye(4)[PIXEL_LABELS], PIXEL_LOGITS),
    "scce_probs": (losses.SparseCategoricalCrossentropy(), LABELS, PROBS),
    "scce_probs_unnormalised": (losses.SparseCategoricalCrossentropy(), LABELS, PROBS * 0.6),
    "scce_logits_n1": (losses.SparseCategoricalCrossentropy(from_logits=True), LABELS[:, None],
                       LOGITS),
    "scce_logits_per_pixel": (losses.SparseCategoricalCrossentropy(from_logits=True),
                              PIXEL_LABELS, PIXEL_LOGITS),
    "scce_probs_per_pixel": (losses.SparseCategoricalCrossentropy(), PIXEL_LABELS,
                             softmax(PIXEL_LOGITS)),
    "bce_probs": (losses.BinaryCrossentropy(), RNG.random((4, 3)), RNG.uniform(0.05, 0.95, (4, 3))),
    "bce_probs_smoothing": (losses.BinaryCrossentropy(label_smoothing=0.2),
                            (RNG.random((4, 3)) < 0.5) * 1.0, RNG.uniform(0.05, 0.95, (4, 3))),
    "bce_logits": (losses.BinaryCrossentropy(from_logits=True), RNG.random((4, 3)),
                   RNG.standard_normal((4, 3)) * 4.0),
    "bce_labels_n_output_n1": (losses.BinaryCrossentropy(), (RNG.random(5) < 0.5) * 1.0,
                               RNG.uniform(0.05, 0.95, (5, 1))),
    "mse": (losses.MeanSquaredError(), RNG.standard_normal((4, 3)), RNG.standard_normal((4, 3))),
    "mse_4d": (losses.MeanSquaredError(), RNG.standard_normal((2, 3, 2, 2)),
               RNG.standard_normal((2, 3, 2, 2))),
    "mae": (losses.MeanAbsoluteError(), RNG.standard_normal((4, 3)), RNG.standard_normal((4, 3))),
}


@pytest.mark.parametrize("case", GRADIENT_CASES)
def test_gradient_matches_central_differences(case):
    loss, y_true, y_pred = GRADIENT_CASES[case]
    assert_gradient(loss, y_true, y_pred)


@pytest.mark.parametrize("loss", [losses.CategoricalCrossentropy(),
                                  losses.SparseCategoricalCrossentropy(),
                                  losses.BinaryCrossentropy()])
def test_no_gradient_where_the_clip_is_active(loss):
    """A probability below 1e-7 is clipped: the clipped value does not change with it (Keras's
    clip), so its gradient is zero -- except through the categorical loss's renormalisation
    ``p / sum(p)``, which every entry of the row goes into."""
    p = PROBS.copy()
    p[0] = [2e-8, 0.5, 0.2, 0.3 - 3e-8, 1e-8]   # label 3 of row 0 is inside, 0 and 4 are clipped
    y = LABELS if isinstance(loss, losses.SparseCategoricalCrossentropy) else ONE_HOT
    g = loss.gradient(y, p)
    if not isinstance(loss, losses.CategoricalCrossentropy):
        assert g[0, 0] == 0.0 and g[0, 4] == 0.0
    assert np.all(g[0, 1:4] != 0.0)
    np.testing.assert_allclose(g, numerical_gradient(loss, y, p, h=1e-9), rtol=1e-5, atol=1e-9)


def test_fused_functions_are_the_loss_and_gradient_from_logits():
    per, grad = losses.sparse_softmax_cross_entropy(LABELS, LOGITS)
    np.testing.assert_allclose(per, -np.log(PROBS[np.arange(4), LABELS]), rtol=1e-13)
    np.testing.assert_allclose(grad, (PROBS - ONE_HOT) / 4, rtol=1e-13, atol=1e-17)
    y = RNG.random((4, 3))
    z = RNG.standard_normal((4, 3)) * 3
    per, grad = losses.sigmoid_cross_entropy(y, z)
    s = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(per, (-y * np.log(s) - (1 - y) * np.log(1 - s)).mean(axis=1),
                               rtol=1e-12)
    np.testing.assert_allclose(grad, (s - y) / y.size, rtol=1e-12, atol=1e-17)


def test_logits_loss_is_the_from_logits_loss_of_the_same_targets():
    """What ``fit`` trains a softmax (sigmoid) output on: the loss's own targets, smoothing too."""
    for loss, y, z in [(losses.CategoricalCrossentropy(label_smoothing=0.3), ONE_HOT, LOGITS),
                       (losses.SparseCategoricalCrossentropy(), LABELS[:, None], LOGITS),
                       (losses.BinaryCrossentropy(label_smoothing=0.1), (RNG.random((4, 3)) < 0.5) * 1.0,
                        RNG.standard_normal((4, 3)))]:
        config = loss.get_config()
        config["from_logits"] = True
        on_logits = losses.from_config(config)
        per, grad = loss.logits_loss(y, z)
        np.testing.assert_allclose(per, on_logits.per_example(y, z), rtol=1e-14)
        np.testing.assert_allclose(grad, on_logits.gradient(y, z), rtol=1e-14)
    assert losses.CategoricalCrossentropy.fuses_with == "softmax"
    assert losses.SparseCategoricalCrossentropy.fuses_with == "softmax"
    assert losses.BinaryCrossentropy.fuses_with == "sigmoid"
    assert losses.MeanSquaredError.fuses_with is None


def test_binary_cross_entropy_from_logits_is_stable_at_extreme_logits():
    """log(1 + exp(40)) overflows nothing: the loss of a confident wrong answer is |z|, and the
    gradient of a confident right one is tiny but exact (no 1 - 1 cancellation)."""
    z = np.array([[40.0, -40.0, 800.0, -800.0]])
    right = np.array([[1.0, 0.0, 1.0, 0.0]])
    loss = losses.BinaryCrossentropy(from_logits=True)
    np.testing.assert_allclose(loss.per_unit(1.0 - right, z), [[40.0, 40.0, 800.0, 800.0]],
                               rtol=1e-15)
    np.testing.assert_allclose(loss.per_unit(right, z), [[np.exp(-40.0), np.exp(-40.0), 0.0, 0.0]],
                               rtol=1e-12)
    g = loss.gradient(right, z) * 4
    np.testing.assert_allclose(g, [[-np.exp(-40.0), np.exp(-40.0), 0.0, 0.0]], rtol=1e-12)
    np.testing.assert_allclose(loss.gradient(1.0 - right, z) * 4, [[1.0, -1.0, 1.0, -1.0]],
                               rtol=1e-15)


# --------------------------------------------------------------------------------------------
# sparse labels against one-hot labels
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("shape", ["n", "n1", "float"])
def test_sparse_labels_give_the_one_hot_numbers(from_logits, shape):
    labels = {"n": LABELS, "n1": LABELS[:, None], "float": LABELS.astype(np.float32)}[shape]
    y_pred = LOGITS if from_logits else PROBS
    sparse = losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    dense = losses.CategoricalCrossentropy(from_logits=from_logits)
    np.testing.assert_allclose(sparse.per_example(labels, y_pred), dense.per_example(ONE_HOT, y_pred),
                               rtol=1e-14)
    assert float(sparse(labels, y_pred)) == pytest.approx(float(dense(ONE_HOT, y_pred)), rel=1e-14)
    np.testing.assert_allclose(sparse.gradient(labels, y_pred), dense.gradient(ONE_HOT, y_pred),
                               rtol=1e-12, atol=1e-16)


@pytest.mark.parametrize("from_logits", [False, True])
def test_sparse_labels_per_pixel_give_the_one_hot_numbers(from_logits):
    y_pred = PIXEL_LOGITS if from_logits else softmax(PIXEL_LOGITS)
    sparse = losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    dense = losses.CategoricalCrossentropy(from_logits=from_logits)
    one_hot = np.eye(4)[PIXEL_LABELS]
    for labels in (PIXEL_LABELS, PIXEL_LABELS[..., None]):
        per = sparse.per_example(labels, y_pred)
        assert per.shape == (2,)
        np.testing.assert_allclose(per, dense.per_example(one_hot, y_pred), rtol=1e-14)
        np.testing.assert_allclose(sparse.gradient(labels, y_pred), dense.gradient(one_hot, y_pred),
                                   rtol=1e-12, atol=1e-16)
    per, grad = losses.sparse_softmax_cross_entropy(PIXEL_LABELS, PIXEL_LOGITS)
    per_dense, grad_dense = losses.softmax_cross_entropy(one_hot, PIXEL_LOGITS)
    np.testing.assert_allclose(per, per_dense, rtol=1e-14)
    np.testing.assert_allclose(grad, grad_dense, rtol=1e-14, atol=1e-18)


def test_sparse_from_probabilities_follows_keras_where_rows_do_not_sum_to_one():
    """Keras's sparse loss clips without renormalising, then takes the log-softmax of log(c):
    ``L = log(sum c) - log c_t``; the categorical one renormalises first. Both are
    ``-log(p_t / sum p)`` for a row inside the clip, but they differ once the clip acts."""
    p = np.array([[0.2, 0.3, 0.1], [1e-9, 0.5, 0.5 - 1e-9]])
    labels = np.array([1, 2])
    got = losses.SparseCategoricalCrossentropy().per_example(labels, p)
    c = np.clip(p, 1e-7, 1 - 1e-7)
    np.testing.assert_allclose(got, np.log(c.sum(axis=1)) - np.log(c[[0, 1], labels]), rtol=1e-14)
    np.testing.assert_allclose(got[0], -np.log(0.3 / 0.6), rtol=1e-14)
    dense = losses.CategoricalCrossentropy().per_example(np.eye(3)[labels], p)
    assert got[0] == pytest.approx(dense[0], rel=1e-14)
    assert abs(got[1] - dense[1]) > 5e-8  # the clipped 1e-9 counts as 1e-7 in sum c


# --------------------------------------------------------------------------------------------
# numbers, shapes and dtypes
# --------------------------------------------------------------------------------------------

def test_mean_absolute_error_by_hand():
    """|p - y| averaged over every unit, its gradient sign(p - y) / M (0 where p = y)."""
    y, p = np.array([[1.0, 2.0], [0.0, -1.0]]), np.array([[1.5, 1.25], [0.0, 1.0]])
    assert float(losses.MeanAbsoluteError()(y, p)) == pytest.approx((0.5 + 0.75 + 0 + 2) / 4)
    np.testing.assert_array_equal(losses.MeanAbsoluteError().gradient(y, p),
                                  [[0.25, -0.25], [0.0, 0.25]])
    np.testing.assert_allclose(losses.mae(y, p), [0.625, 1.0])
    assert losses.mae is losses.mean_absolute_error


def test_mean_squared_error_and_binary_cross_entropy_by_hand():
    y = np.array([[0.0, 1.0], [1.0, 1.0]])
    p = np.array([[0.5, 0.25], [1.0, 0.75]])
    assert float(losses.MeanSquaredError()(y, p)) == pytest.approx((0.25 + 0.5625 + 0 + 0.0625) / 4)
    np.testing.assert_allclose(losses.mse(y, p), [(0.25 + 0.5625) / 2, 0.0625 / 2])
    bce = losses.binary_crossentropy(y, p)
    # p = 1.0 is clipped to 1 - 1e-7: its loss is -log(1 - 1e-7), not 0
    np.testing.assert_allclose(bce, [(np.log(2) + np.log(4)) / 2,
                                     (-np.log(1 - 1e-7) - np.log(0.75)) / 2], rtol=1e-12)
    assert float(losses.BinaryCrossentropy()(y, p)) == pytest.approx(bce.mean(), rel=1e-14)


def test_label_smoothing_moves_the_targets_towards_uniform():
    smoothed = ONE_HOT * 0.8 + 0.2 / 5
    np.testing.assert_allclose(losses.CategoricalCrossentropy(label_smoothing=0.2).per_example(ONE_HOT, PROBS),
                               -(smoothed * np.log(PROBS)).sum(axis=1), rtol=1e-13)
    y = np.array([[0.0, 1.0]])
    p = np.array([[0.3, 0.6]])
    t = y * 0.9 + 0.05
    np.testing.assert_allclose(losses.binary_crossentropy(y, p, label_smoothing=0.1),
                               (-(t * np.log(p) + (1 - t) * np.log(1 - p))).mean(axis=1), rtol=1e-13)


def test_functions_return_the_loss_per_position_as_keras():
    assert losses.categorical_crossentropy(ONE_HOT, PROBS).shape == (4,)
    assert losses.sparse_categorical_crossentropy(LABELS, LOGITS, from_logits=True).shape == (4,)
    assert losses.sparse_categorical_crossentropy(PIXEL_LABELS, PIXEL_LOGITS, True).shape == (2, 3, 2)
    assert losses.categorical_crossentropy(np.eye(4)[PIXEL_LABELS], PIXEL_LOGITS, True).shape == (2, 3, 2)
    assert losses.binary_crossentropy(np.ones((4, 3)), np.full((4, 3), 0.5)).shape == (4,)
    assert losses.mse is losses.mean_squared_error
    # Keras expands (N,) labels against an (N, 1) output: one loss per example
    np.testing.assert_allclose(losses.mse(np.array([1.0, 2.0]), np.array([[0.0], [0.0]])), [1.0, 4.0])
    np.testing.assert_allclose(losses.mse(np.array([[1.0], [2.0]]), np.array([0.0, 0.0])), [1.0, 4.0])
    np.testing.assert_allclose(losses.sparse_categorical_crossentropy(LABELS, PROBS),
                               -np.log(PROBS[np.arange(4), LABELS]), rtol=1e-14)


def test_lists_are_accepted_like_arrays():
    assert float(losses.MeanSquaredError()([[1.0, 2.0]], [[0.0, 0.0]])) == pytest.approx(2.5)
    np.testing.assert_allclose(losses.sparse_categorical_crossentropy([0, 1], [[0.5, 0.5], [0.25, 0.75]]),
                               [np.log(2), -np.log(0.75)], rtol=1e-14)


@pytest.mark.parametrize("loss, y_true", [
    (losses.CategoricalCrossentropy(), ONE_HOT),
    (losses.CategoricalCrossentropy(from_logits=True), ONE_HOT),
    (losses.SparseCategoricalCrossentropy(), LABELS.astype(np.uint8)),
    (losses.SparseCategoricalCrossentropy(from_logits=True), LABELS),
    (losses.BinaryCrossentropy(), ONE_HOT),
    (losses.BinaryCrossentropy(from_logits=True), ONE_HOT.astype(np.int64)),
    (losses.MeanSquaredError(), ONE_HOT),
    (losses.MeanAbsoluteError(), ONE_HOT),
])
def test_float32_predictions_give_float32_losses_and_gradients(loss, y_true):
    y_pred = (LOGITS if loss.from_logits else PROBS).astype(np.float32)
    assert loss.per_example(y_true, y_pred).dtype == np.float32
    assert loss.gradient(y_true, y_pred).dtype == np.float32
    np.testing.assert_allclose(loss.gradient(y_true, y_pred),
                               loss.gradient(y_true, y_pred.astype(np.float64)), rtol=2e-5, atol=1e-7)


def test_sample_weight_weights_each_example_like_keras():
    per = losses.CategoricalCrossentropy().per_example(ONE_HOT, PROBS)
    w = np.array([1.0, 0.0, 2.0, 0.5])
    got = losses.CategoricalCrossentropy()(ONE_HOT, PROBS, sample_weight=w)
    assert float(got) == pytest.approx((per * w).sum() / 4, rel=1e-14)  # Keras: sum(w l) / N
    with pytest.raises(ValueError, match="3 entries for 4 examples"):
        losses.CategoricalCrossentropy()(ONE_HOT, PROBS, sample_weight=w[:3])


# --------------------------------------------------------------------------------------------
# names: get, configs, functions
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, cls", [
    ("categorical_crossentropy", losses.CategoricalCrossentropy),
    ("CategoricalCrossentropy", losses.CategoricalCrossentropy),
    ("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy),
    ("SparseCategoricalCrossentropy", losses.SparseCategoricalCrossentropy),
    ("binary_crossentropy", losses.BinaryCrossentropy),
    ("bce", losses.BinaryCrossentropy),
    ("mse", losses.MeanSquaredError),
    ("MSE", losses.MeanSquaredError),
    ("mean_squared_error", losses.MeanSquaredError),
    ("mae", losses.MeanAbsoluteError),
    ("MAE", losses.MeanAbsoluteError),
    ("mean_absolute_error", losses.MeanAbsoluteError),
    ("MeanAbsoluteError", losses.MeanAbsoluteError),
])
def test_get_by_keras_name(name, cls):
    loss = losses.get(name)
    assert type(loss) is cls and not loss.from_logits


def test_get_functions_classes_instances_and_configs():
    assert type(losses.get(losses.sparse_categorical_crossentropy)) is losses.SparseCategoricalCrossentropy
    assert type(losses.get(losses.categorical_crossentropy)) is losses.CategoricalCrossentropy
    assert type(losses.get(losses.binary_crossentropy)) is losses.BinaryCrossentropy
    assert type(losses.get(losses.mse)) is losses.MeanSquaredError
    assert type(losses.get(losses.mae)) is losses.MeanAbsoluteError
    assert type(losses.get(losses.BinaryCrossentropy)) is losses.BinaryCrossentropy
    loss = losses.SparseCategoricalCrossentropy(from_logits=True)
    assert losses.get(loss) is loss
    assert losses.get(loss.get_config()).from_logits is True


@pytest.mark.parametrize("loss", [
    losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
    losses.SparseCategoricalCrossentropy(from_logits=True, name="xent"),
    losses.BinaryCrossentropy(label_smoothing=0.05),
    losses.MeanSquaredError(),
    losses.MeanAbsoluteError(),
])
def test_config_round_trip(loss):
    again = losses.from_config(loss.get_config())
    assert type(again) is type(loss) and again.get_config() == loss.get_config()
    assert again.name == loss.name and again.from_logits == loss.from_logits


def test_unknown_and_unimplemented_losses_say_what_tinynet_has():
    with pytest.raises(ValueError, match="'huber' is a Keras loss that tinynet does not implement"
                                         ".*sparse_categorical_crossentropy.*mean_squared_error"):
        losses.get("huber")
    for name in ("kl_divergence", "hinge", "mape", "Huber"):
        with pytest.raises(ValueError, match="does not implement"):
            losses.get(name)
    with pytest.raises(ValueError, match="unknown loss 'categorical_cross_entropy'.*"
                                         "categorical_crossentropy"):
        losses.get("categorical_cross_entropy")
    with pytest.raises(ValueError, match="a function is not enough: a loss of one.s own subclasses"):
        losses.get(lambda y_true, y_pred: 0.0)
    with pytest.raises(ValueError, match="cannot interpret 3 as a loss"):
        losses.get(3)
    with pytest.raises(AttributeError, match="'KLDivergence'.*not implemented in tinynet"):
        losses.KLDivergence  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'Nonsense'"):
        losses.Nonsense  # noqa: B018


def test_unimplemented_keras_arguments_are_named():
    with pytest.raises(ValueError, match="reduction='sum' is not implemented"):
        losses.CategoricalCrossentropy(reduction="sum")
    with pytest.raises(ValueError, match="ignore_class=0 is not implemented"):
        losses.SparseCategoricalCrossentropy(ignore_class=0)
    with pytest.raises(ValueError, match="axis=1 is not implemented.*channels-last"):
        losses.BinaryCrossentropy(axis=1)
    with pytest.raises(ValueError, match="label_smoothing must be in \\[0, 1\\]"):
        losses.CategoricalCrossentropy(label_smoothing=1.5)
    with pytest.raises(TypeError):
        losses.MeanSquaredError(from_logits=True)   # Keras's MSE has no from_logits either


# --------------------------------------------------------------------------------------------
# wrong labels
# --------------------------------------------------------------------------------------------

def test_sparse_labels_out_of_range_or_not_integers():
    loss = losses.SparseCategoricalCrossentropy()
    with pytest.raises(ValueError, match=r"integer class indices in \[0, 5\).*found 5"):
        loss(np.array([0, 1, 5, 2]), PROBS)
    with pytest.raises(ValueError, match="found -1"):
        loss.gradient(np.array([0, -1, 2, 2]), PROBS)
    with pytest.raises(ValueError, match="found 1.5"):
        losses.sparse_softmax_cross_entropy(np.array([0.0, 1.5, 2.0, 2.0]), LOGITS)
    with pytest.raises(ValueError, match="found nan"):
        loss(np.array([0.0, np.nan, 2.0, 2.0]), PROBS)


def test_one_hot_labels_given_to_the_sparse_loss_say_so():
    with pytest.raises(ValueError, match=r"y_true has shape \(4, 5\).*shape \(4,\).*one-hot.*"
                                         "categorical_crossentropy"):
        losses.SparseCategoricalCrossentropy()(ONE_HOT, PROBS)
    with pytest.raises(ValueError, match=r"shape \(3,\) but y_pred has shape \(4, 5\)"):
        losses.SparseCategoricalCrossentropy()(LABELS[:3], PROBS)


def test_class_indices_given_to_the_categorical_loss_say_so():
    for labels in (LABELS, LABELS[:, None]):
        with pytest.raises(ValueError, match="class indices.*sparse_categorical_crossentropy.*"
                                             r"to_categorical\(y, 5\)"):
            losses.CategoricalCrossentropy()(labels, PROBS)


def test_mismatched_shapes_are_named():
    with pytest.raises(ValueError, match=r"mean_squared_error: y_true has shape \(4, 2\) but y_pred "
                                         r"has shape \(4, 3\)"):
        losses.MeanSquaredError().gradient(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"binary_crossentropy: y_true has shape \(5,\)"):
        losses.BinaryCrossentropy()(np.zeros(5), np.full((5, 2), 0.5))
