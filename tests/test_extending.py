"""A student's own losses, optimizers, metrics and layers: each computes what it was written to
compute, or is refused with the reason (found by trying to extend tinynet as the docs tell)."""
import numpy as np
import pytest

import tinynet
from tinynet import layers, losses, metrics, optimizers


def _data(n=64, features=8, classes=3):
    r = np.random.default_rng(0)
    x = r.random((n, features)).astype("float32")
    return x, np.eye(classes, dtype="float32")[r.integers(0, classes, n)]


class Focal(losses.CategoricalCrossentropy):
    """Focal loss (gamma 2) derived from the cross-entropy: per_example and gradient rewritten."""

    def per_example(self, y_true, y_pred):
        p = np.clip(y_pred, 1e-7, 1 - 1e-7)
        return -(y_true * (1 - p) ** 2 * np.log(p)).sum(axis=-1)

    def gradient(self, y_true, y_pred):
        p = np.clip(y_pred, 1e-7, 1 - 1e-7)
        return y_true * (2 * (1 - p) * np.log(p) - (1 - p) ** 2 / p) / len(p)


def test_a_loss_derived_from_the_cross_entropy_is_the_loss_it_writes():
    """Behind a softmax the cross-entropy trains on its fused logits loss: a subclass that
    rewrites per_example and gradient (not logits_loss) is computed as written."""
    tinynet.backend.set_floatx("float64")
    x, y = _data()
    model = tinynet.Sequential([tinynet.Input((8,)), layers.Dense(3, activation="softmax")])
    model.compile("sgd", Focal())
    p = model.predict(x)
    focal = Focal().per_example(y, p).mean()
    assert model.evaluate(x, y, verbose=0) == pytest.approx(focal, rel=1e-12)
    assert abs(focal - losses.CategoricalCrossentropy()(y, p)) > 0.1  # they do differ
    # and training follows its gradient: one SGD step on the Dense kernel, by hand
    w, b = (a.copy() for a in model.get_weights())
    model.train_on_batch(x, y)
    dz = Focal().gradient(y, p)
    dz = p * (dz - (dz * p).sum(axis=-1, keepdims=True))  # through the softmax's Jacobian
    np.testing.assert_allclose(model.get_weights()[0], w - 0.01 * x.T @ dz, rtol=1e-9, atol=1e-10)


class NormSGD(optimizers.Optimizer):
    """theta -= lr * g / ||g||: a step of length lr for each parameter (not element-wise)."""

    def __init__(self, learning_rate=0.1, **kwargs):
        super().__init__(learning_rate, **kwargs)

    def _own_config(self):
        return {}

    def update(self, theta, g, state):
        theta -= self._learning_rate * g / np.sqrt((g * g).sum())


def test_an_optimizer_of_ones_own_updates_each_parameter_as_written():
    """fit runs tinynet's own (element-wise) updates once over the flat buffer of all the
    weights; a subclass's own update runs once per parameter, as written."""
    x, y = _data()
    model = tinynet.Sequential([tinynet.Input((8,)), layers.Dense(4, activation="relu"),
                                layers.Dense(3, activation="softmax")])
    model.compile(NormSGD(0.1), "categorical_crossentropy")
    before = model.get_weights()
    model.train_on_batch(x, y)
    steps = [np.linalg.norm(b - a) for a, b in zip(before, model.get_weights())]
    np.testing.assert_allclose(steps, 0.1, rtol=1e-5)


def test_a_metric_of_ones_own_is_refused_not_logged_as_the_accuracy():
    class Top3(metrics.SparseCategoricalAccuracy):
        def update_state(self, y_true, y_pred, sample_weight=None):
            pass

        def result(self):
            return 0.0

    with pytest.raises(TypeError, match="Top3 defines update_state, result.*Callback"):
        Top3(name="top3")
    assert metrics.SparseCategoricalAccuracy(name="hits").name == "hits"  # renaming is fine


def test_a_loss_must_give_one_value_per_example():
    """A per_example of shape (N, 1) broadcast against the sample weights to (N, N): the loss
    reported was 14.3 for 0.5."""
    class Hinge(losses.Loss):
        def per_example(self, y_true, y_pred):
            return np.maximum(0, 1 - y_true * y_pred)  # (N, 1): one axis too many

        def gradient(self, y_true, y_pred):
            return np.where(1 - y_true * y_pred > 0, -y_true, 0) / y_pred.size

    x, _ = _data(40, 4)
    y = np.sign(np.random.default_rng(1).standard_normal((40, 1))).astype("float32")
    model = tinynet.Sequential([tinynet.Input((4,)), layers.Dense(1)])
    model.compile("sgd", Hinge())
    with pytest.raises(ValueError, match=r"Hinge.per_example returned shape \(40, 1\) for a "
                                         r"batch of 40.*shape \(N,\)"):
        model.evaluate(x, y, sample_weight=np.full(40, 0.5), batch_size=40, verbose=0)


def test_a_layer_class_of_ones_own_is_not_saved_as_tinynets_namesake(tmp_path):
    """A model file names its layers' classes: a subclass called Dense loaded back as tinynet's
    Dense (predictions 1.16 apart). Refused, with what to do instead."""
    class Dense(layers.Dense):
        def _forward(self, x, training, fused=None):
            return 2 * super()._forward(x, training)

    model = tinynet.Sequential([tinynet.Input((4,)), Dense(3)])
    with pytest.raises(ValueError, match=r"its class .*Dense is not one of tinynet's layers.*"
                                         r"save_weights"):
        model.save(tmp_path / "m.keras")
    assert not (tmp_path / "m.keras").exists()
    model.save_weights(tmp_path / "w.weights.h5")  # the way out works
