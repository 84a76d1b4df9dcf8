"""A student's own losses, optimizers, metrics and layers: each computes what it was written to
compute, or is refused with the reason (found by trying to extend tinynet as the docs tell)."""
import json
import re
import warnings

import numpy as np
import pytest

import tinynet
from tinynet import layers, losses, metrics, optimizers
from tinynet.layers import Layer
from tinynet.model import Model


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


def test_keras_metric_objects_and_loss_values_work_in_a_loop_of_ones_own():
    """A custom training loop's metric (``update_state``/``result``/``reset_state``: they were
    bare AttributeErrors) and ``loss_fn(y, p).numpy()``; the numbers are Keras 3.15's (its
    weighted mean over the batches: sum(w * hit) / sum(w))."""
    y = np.array([0, 1, 2, 1])
    p = np.eye(3)[[0, 2, 2, 1]] * 0.8 + 0.05  # arg-max right for examples 0, 2 and 3
    for acc, labels in ((metrics.SparseCategoricalAccuracy(), y),
                        (metrics.CategoricalAccuracy(), np.eye(3)[y])):
        assert float(acc.result()) == 0.0
        acc.update_state(labels, p)
        assert acc.result().numpy() == 0.75
        acc.update_state(labels[:2], p[:2], sample_weight=[2, 0])  # one right, weighing 2
        assert float(acc.result()) == pytest.approx(5 / 6, rel=1e-15)
        acc.reset_state()
        assert float(acc.result()) == 0.0
        assert acc(labels, p) == 0.75 and acc(labels[:1], p[:1]) == 0.8  # Keras's metric(y, p)
    binary = metrics.BinaryAccuracy()
    binary.update_state(np.array([[1], [0], [1]]), np.array([[0.7], [0.6], [0.2]]))
    assert float(binary.result()) == pytest.approx(1 / 3, rel=1e-15)
    with pytest.raises(TypeError, match="Keras's Accuracy counts outputs equal to their labels"):
        metrics.Accuracy().update_state([1, 2, 3, 4], [0, 2, 3, 4])  # (Keras: 0.75)
    assert json.loads(json.dumps({"acc": acc.result()})) == {"acc": 0.8}  # a float, as before
    loss = losses.SparseCategoricalCrossentropy()(y, p)
    total = loss
    total += loss  # a number, not an array changed in place
    assert round(loss, 3) == round(float(loss), 3) and total == 2 * loss != loss
    q = p / p.sum(axis=1, keepdims=True)  # (rows of 0.95: scaled to sum to 1, as Keras)
    assert loss.numpy() == pytest.approx(-np.log(q[np.arange(4), y]).mean(), rel=1e-12)


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


class Multiply(layers.Layer):
    """y = a * b for two inputs, as the Layer docstring says a layer of several inputs is written."""

    def build(self, input_shape):
        super().build(input_shape[0])
        self.input_shape = list(input_shape)

    def _forward(self, xs, training, fused=None):
        self._xs = xs
        return xs[0] * xs[1]

    def _backward(self, dz, need_input_grad=True, fused_output=None):
        return [dz * self._xs[1], dz * self._xs[0]]


def test_a_layer_of_several_inputs_gets_them_all_or_is_refused_when_built():
    """A layer that kept one input shape got only its first input (a batch of 3 predicted as 4
    rows of the first input's product with itself): refused as the graph is built, with the fix."""
    tinynet.backend.set_floatx("float64")
    class OneShape(Multiply):
        def build(self, input_shape):
            layers.Layer.build(self, input_shape[0])

    inp = tinynet.Input((4,))
    with pytest.raises(ValueError, match=r"receives 2 inputs but its build\(\) kept one input "
                                         r"shape.*self.input_shape = input_shape"):
        OneShape()([layers.Dense(4)(inp), layers.Dense(4)(inp)])
    a, b = layers.Dense(4, name="a")(inp), layers.Dense(4, name="b")(inp)
    model = tinynet.Model(inp, Multiply()([a, b]))
    x = np.random.default_rng(0).random((3, 4))
    expected = model.forward(x, until="a") * model.forward(x, until="b")
    np.testing.assert_array_equal(model.predict(x), expected)
    model.compile("sgd", "mse")
    errors = tinynet.gradcheck.check_model(model, x, np.ones((3, 4)))
    assert max(errors.values()) < 1e-6


def test_a_layer_of_ones_own_is_checked_where_it_goes_wrong():
    """Each mistake named at the layer that makes it (they failed in the next layer, or with a
    bare TypeError): a build without super().build(), an output that is not the declared shape."""
    class NoSuper(layers.Layer):
        def build(self, input_shape):
            self.w = 1

    with pytest.raises(ValueError, match=r"\(NoSuper\): its build\(\) must end with "
                                         r"super\(\).build\(input_shape\)"):
        tinynet.Sequential([tinynet.Input((4,)), NoSuper()])

    class FirstTwo(layers.Layer):  # keeps the default compute_output_shape: wrong here
        def _forward(self, x, training, fused=None):
            return x[:, :2]

    model = tinynet.Sequential([tinynet.Input((4,)), FirstTwo(), layers.Dense(3)])
    with pytest.raises(ValueError, match=r"\(FirstTwo\) returned shape \(None, 2\) for a batch "
                                         r"of 2, but its compute_output_shape says \(None, 4\)"):
        model.predict(np.ones((2, 4)))

    class FirstTwoImages(layers.Layer):  # the batch axis cut: predict returned 2 rows for 5
        def _forward(self, x, training, fused=None):
            return x[:2]

    with pytest.raises(ValueError, match=r"returned shape \(None, 4\) for a batch of 2, but its "
                                         r"compute_output_shape says \(None, 4\) for a batch of 5"):
        tinynet.Sequential([tinynet.Input((4,)), FirstTwoImages()]).predict(np.ones((5, 4)))


def test_a_layer_whose_passes_do_not_take_the_model_s_arguments_is_refused_when_made():
    """``_backward(self, g)`` failed at the first training step with "_backward() takes 2
    positional arguments but 3 were given" (a new user's trial): refused when the layer is made,
    with the signatures the model calls."""
    class OneArgument(layers.Layer):
        def _forward(self, x, training, fused=None):
            return 2 * x

        def _backward(self, g):
            return 2 * g

    with pytest.raises(TypeError, match=r"OneArgument._backward\(self, g\): a layer's passes are "
                                        r"called as _backward\(self, dz, need_input_grad=True, "
                                        r"fused_output=None\)"):
        OneArgument()

    class NoTraining(layers.Layer):
        def _forward(self, x):
            return x

    with pytest.raises(TypeError, match=r"NoTraining._forward\(self, x\): .* _forward\(self, x, "
                                        r"training, fused=None\)"):
        NoTraining()

    class FusesRelu(layers.Layer):  # its kernel applies the ReLU: it is also given fused=
        fused_activations = ("relu",)

        def _forward(self, x, training):
            return x

    with pytest.raises(TypeError, match=r"and fused="):
        FusesRelu()

    class Flexible(layers.Layer):  # what takes the calls is fine, *args included
        def _forward(self, x, *args, **kwargs):
            return 3 * x

        def _backward(self, dz, *args, **kwargs):
            return 3 * dz

    layer = Flexible()
    layer.build((2,))
    y = layer.forward(np.ones((1, 2)), training=True)
    np.testing.assert_array_equal(layer.backward(np.ones_like(y)), [[3.0, 3.0]])

    class Static(layers.Layer):  # static methods take no self (a review: they were refused)
        _forward = staticmethod(lambda x, training: 2 * x)
        _backward = staticmethod(lambda dz, need_input_grad=True: 2 * dz)

    layer = Static()
    layer.build((2,))
    y = layer.forward(np.ones((1, 2)), training=True)
    np.testing.assert_array_equal(layer.backward(np.ones_like(y)), [[2.0, 2.0]])

    class OwnPasses(layers.Layer):  # writes forward and backward itself: calls what it likes
        def forward(self, x, training=False, activate=True):
            return self._forward(x)

        def _forward(self, x):
            return x

    OwnPasses()

    class NotAMethod(layers.Layer):
        _backward = None

    with pytest.raises(TypeError, match=r"NotAMethod._backward is None, not a method: write it as "
                                        r"_backward\(self, dz, need_input_grad=True"):
        NotAMethod()


def test_add_weight_creates_a_trained_weight_with_its_gradient_slot():
    class Scale(layers.Layer):
        def build(self, input_shape):
            self.a = self.add_weight(shape=(1,), initializer="ones")
            super().build(input_shape)

        def _forward(self, x, training, fused=None):
            self._x = x
            return self.a * x

        def _backward(self, dz, need_input_grad=True, fused_output=None):
            self.grads[0] = (dz * self._x).sum(keepdims=True).reshape(1)
            return self.a * dz

    tinynet.backend.set_floatx("float64")
    layer = Scale()
    x = np.random.default_rng(0).random((3, 5))
    assert max(tinynet.gradcheck.check_layer(layer, x).values()) < 1e-8
    assert layer.params[0] is layer.a and len(layer.grads) == 1 and float(layer.a[0]) == 1.0
    model = tinynet.Sequential([tinynet.Input((5,)), Scale()])
    model.compile(tinynet.optimizers.SGD(0.1), "mse")
    model.fit(x, 3 * x, epochs=200, verbose=0)  # learns a = 3
    assert float(model.layers[-1].a[0]) == pytest.approx(3.0, abs=1e-6)
    with pytest.raises(ValueError, match="trainable=False"):
        Scale().add_weight(shape=(2,), trainable=False)


def test_keras_style_losses_and_optimizers_are_refused_when_made():
    """A Keras 3 Loss with call() and an Optimizer with update_step were accepted by compile,
    then fit stopped on an empty NotImplementedError."""
    class Hinge(losses.Loss):
        def call(self, y_true, y_pred):
            return np.maximum(0, 1 - y_true * y_pred).mean(axis=-1)

    with pytest.raises(TypeError, match=r"Hinge: a loss writes per_example.*per_example and "
                                        r"gradient missing.*call\(y_true, y_pred\) is not enough"):
        Hinge()

    class KerasSGD(optimizers.Optimizer):
        def update_step(self, gradient, variable, learning_rate):
            variable -= learning_rate * gradient

    with pytest.raises(TypeError, match=r"KerasSGD: an optimizer writes update\(self, theta, g, "
                                        r"state\).*update_step"):
        KerasSGD(0.01)


class MyMSE(losses.Loss):
    def per_example(self, y_true, y_pred):
        return ((y_true - y_pred) ** 2).mean(axis=-1)

    def gradient(self, y_true, y_pred):
        return 2 * (y_pred - y_true) / y_pred.size


class PlainSGD(optimizers.Optimizer):
    def __init__(self, learning_rate=0.01, **kwargs):
        super().__init__(learning_rate, **kwargs)

    def update(self, theta, g, state):
        theta -= self._learning_rate * g


def test_a_model_compiled_with_ones_own_loss_and_optimizer_loads_with_custom_objects(tmp_path):
    r = np.random.default_rng(0)
    x, y = r.random((32, 4)), r.random((32, 2))
    model = tinynet.Sequential([tinynet.Input((4,)), layers.Dense(2)])
    model.compile(PlainSGD(0.05), MyMSE())
    model.fit(x, y, epochs=2, verbose=0)
    model.save(tmp_path / "own.keras")
    with pytest.raises(tinynet.io.ModelFileError,
                       match=r"a loss of its own, 'MyMSE'; pass load_model\(\.\.\., "
                             r"custom_objects=.*compile=False"):
        tinynet.load_model(tmp_path / "own.keras")
    loaded = tinynet.load_model(tmp_path / "own.keras",
                                custom_objects={"MyMSE": MyMSE, "PlainSGD": PlainSGD})
    assert type(loaded.loss) is MyMSE and type(loaded.optimizer) is PlainSGD
    assert loaded.optimizer.learning_rate == pytest.approx(0.05)
    # the same next step in both
    model.train_on_batch(x, y)
    loaded.train_on_batch(x, y)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


class MomentumSGD(optimizers.Optimizer):
    """v = beta v + g; theta -= lr v: an argument and a state array of its own."""

    def __init__(self, learning_rate=0.01, beta=0.9, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta = beta

    def update(self, theta, g, state):
        (v,) = state.arrays(theta, "v")
        v *= self.beta
        v += g
        theta -= self._learning_rate * v


class WeightedMSE(losses.Loss):
    def __init__(self, w=1.0, **kwargs):
        super().__init__(**kwargs)
        self.w = w

    def per_example(self, y_true, y_pred):
        return self.w * ((y_true - y_pred) ** 2).mean(axis=-1)

    def gradient(self, y_true, y_pred):
        return self.w * 2 * (y_pred - y_true) / y_pred.size


def test_save_refuses_what_would_load_changed_and_restores_what_is_complete(tmp_path):
    """A saved model of one's own loss and optimizer came back with their constructors'
    defaults (beta 0.9 for 0.3, w 1 for 5) and the momentum reset; a class named like tinynet's
    came back as tinynet's."""
    r = np.random.default_rng(0)
    x, y = r.random((32, 4)), r.random((32, 2))

    def trained(optimizer, loss):
        model = tinynet.Sequential([tinynet.Input((4,)), layers.Dense(2)])
        model.compile(optimizer, loss)
        model.fit(x, y, epochs=2, verbose=0)
        return model

    path = tmp_path / "m.keras"
    with pytest.raises(ValueError, match=r"MomentumSGD would not load as it is \(beta=0.3 would "
                                         r"load as 0.9\).*\{\*\*super\(\)._own_config\(\), "
                                         r"'beta': self.beta\}"):
        trained(MomentumSGD(0.05, beta=0.3), "mse").save(path)
    with pytest.raises(ValueError, match=r"WeightedMSE would not load as it is \(w=5.0 would load "
                                         r"as 1.0\).*\{\*\*super\(\).get_config\(\), 'w': self.w\}"):
        trained("sgd", WeightedMSE(5.0)).save(path)
    trained("sgd", WeightedMSE(1.0)).save(path)  # its default: loads as it is

    class Configured(MomentumSGD):
        def _own_config(self):
            return {"beta": self.beta}

    with pytest.raises(ValueError, match=r"keeps the state \['v'\] that its slot_names\(\)"):
        trained(Configured(0.05, beta=0.3), "mse").save(path)

    class SGD(optimizers.SGD):  # tinynet's name
        def update(self, theta, g, state):
            theta -= self._learning_rate * np.sign(g)

    with pytest.raises(ValueError, match="has the name of tinynet's SGD.*another name"):
        trained(SGD(), "mse").save(path)

    class Complete(Configured):
        def slot_names(self):
            return ("v",)

    class CompleteMSE(WeightedMSE):
        def get_config(self):
            return {**super().get_config(), "w": self.w}

    model = trained(Complete(0.05, beta=0.3), CompleteMSE(5.0))
    model.save(path)
    loaded = tinynet.load_model(path, custom_objects={"Complete": Complete,
                                                      "CompleteMSE": CompleteMSE})
    assert (loaded.optimizer.beta, loaded.loss.w) == (0.3, 5.0)
    model.train_on_batch(x, y)
    loaded.train_on_batch(x, y)  # the momentum restored: the same step
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_cross_entropy_subclass_on_logits_keeps_the_softmax_where_it_belongs(recwarn):
    """binary_accuracy of a (non-fused) cross-entropy subclass with from_logits=True thresholds
    the softmax of the logits; after a softmax layer it warns that the softmax is applied twice."""
    class Doubled(losses.CategoricalCrossentropy):
        def per_example(self, y_true, y_pred):
            return 2 * super().per_example(y_true, y_pred)

        def gradient(self, y_true, y_pred):
            return 2 * super().gradient(y_true, y_pred)

    tinynet.backend.set_floatx("float64")
    x, y = _data()
    model = tinynet.Sequential([tinynet.Input((8,)), layers.Dense(3)])
    model.compile("sgd", Doubled(from_logits=True), metrics=["binary_accuracy"])
    z = model.predict(x)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    expected = ((p > 0.5) == (y > 0.5)).mean()
    assert model.evaluate(x, y, verbose=0, return_dict=True)["binary_accuracy"] == \
        pytest.approx(expected)
    model = tinynet.Sequential([tinynet.Input((8,)), layers.Dense(3, activation="softmax")])
    with pytest.warns(UserWarning, match="a softmax is applied twice"):
        model.compile("sgd", Doubled(from_logits=True))


def test_what_a_subclass_writes_over_tinynets_own_is_run_or_refused():
    """Keras's call() over a built-in loss and update_step over a built-in optimizer were
    ignored (plain cross-entropy, plain Adam); apply_gradients of one's own was never called by
    fit; a metric subclass whose __init__ skipped super() was logged as the accuracy; a loss
    naming the activation it fuses with but without logits_loss stopped on a bare StopIteration."""
    class Keras(losses.CategoricalCrossentropy):
        def call(self, y_true, y_pred):
            return 0.0

    with pytest.raises(TypeError, match=r"call\(\) is written below them"):
        Keras()

    class KerasAdam(optimizers.Adam):
        def update_step(self, gradient, variable, learning_rate):
            pass

    with pytest.raises(TypeError, match=r"update_step \(Keras's\) would not run"):
        KerasAdam()

    calls = []

    class Counted(optimizers.SGD):
        def apply_gradients(self, grads_and_vars):
            calls.append(1)
            return super().apply_gradients(grads_and_vars)

    x, y = _data()
    model = tinynet.Sequential([tinynet.Input((8,)), layers.Dense(3, activation="softmax")])
    model.compile(Counted(), "categorical_crossentropy")
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    assert len(calls) == 2

    class Top3(metrics.SparseCategoricalAccuracy):
        def __init__(self, name="top3"):
            self.name = name

        def result(self):
            return 0.0

    with pytest.raises(TypeError, match="Top3 defines result"):
        Top3()

    class Unfused(losses.Loss):
        fuses_with = "softmax"

        def per_example(self, y_true, y_pred):
            return ((y_true - y_pred) ** 2).sum(axis=-1)

        def gradient(self, y_true, y_pred):
            return 2 * (y_pred - y_true) / len(y_pred)

    model = tinynet.Sequential([tinynet.Input((8,)), layers.Dense(3, activation="softmax")])
    model.compile("sgd", Unfused())
    p = model.predict(x)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(((y - p) ** 2).sum(axis=1).mean(),
                                                            rel=1e-5)


class BuiltScale(layers.Layer):
    """A weight made in build with add_weight: each build makes it anew."""

    def build(self, input_shape):
        self.a = self.add_weight(shape=(1,), initializer="ones")
        super().build(input_shape)

    def _forward(self, x, training, fused=None):
        return self.a * x


def test_add_weight_follows_keras_and_a_rebuilt_layer_keeps_one_weight():
    layer = BuiltScale()
    layer(np.ones((2, 5)))  # built on an array, then again in a model
    model = tinynet.Sequential([tinynet.Input((5,)), layer])
    assert len(layer.params) == 1 and model.count_params() == 1 and layer.params[0] is layer.a
    # Keras's fans for glorot_uniform: a vector's are its length; (3, 3, 2, 4): 18 and 36
    big = layers.Layer().add_weight(shape=(3, 3, 2, 40000))
    assert np.abs(big).max() == pytest.approx(np.sqrt(6 / (18 + 3 * 3 * 40000)), rel=1e-3)
    vector = layers.Layer().add_weight(shape=(100000,))
    assert np.abs(vector).max() == pytest.approx(np.sqrt(6 / 200000), rel=1e-3)
    with pytest.raises(TypeError, match="give the name by keyword"):
        layers.Layer().add_weight("w")  # Keras 2 put the name first


def test_what_save_accepts_and_refuses_of_a_subclass_of_tinynets_own(tmp_path):
    """Arguments passed on to tinynet's parent (its get_config returns them, or they are fixed,
    as a loss's reduction) are not refused; a get_config the constructor cannot take is; a state
    that shows only once training ran is refused by ModelCheckpoint with its way out."""
    x, y = _data()

    def compiled(optimizer, loss):
        model = tinynet.Sequential([tinynet.Input((8,)), layers.Dense(3, activation="softmax")])
        model.compile(optimizer, loss)
        return model

    class Focal(losses.CategoricalCrossentropy):
        def __init__(self, gamma=2.0, from_logits=False, label_smoothing=0.0, axis=-1,
                     reduction="sum_over_batch_size", name="focal", dtype=None):
            super().__init__(from_logits=from_logits, label_smoothing=label_smoothing, axis=axis,
                             reduction=reduction, name=name, dtype=dtype)
            self.gamma = gamma

        def get_config(self):
            return {**super().get_config(), "gamma": self.gamma}

    compiled("sgd", Focal()).save(tmp_path / "focal.keras")  # axis, reduction, dtype: fixed

    class Focal3(losses.CategoricalCrossentropy):
        def __init__(self, *, gamma=2.0, name="focal3"):
            super().__init__(name=name)
            self.gamma = gamma

        def get_config(self):
            return {**super().get_config(), "gamma": self.gamma}

    with pytest.raises(ValueError, match=r"Focal3 cannot be rebuilt from its get_config\(\) "
                                         r"\(TypeError: .*'from_logits'"):
        compiled("sgd", Focal3()).save(tmp_path / "focal3.keras")

    class KerasTwoSGD(optimizers.SGD):  # Keras 2's lr=: its config says learning_rate
        def __init__(self, lr=0.05, **kwargs):
            super().__init__(learning_rate=lr, **kwargs)

    with pytest.raises(ValueError, match=r"KerasTwoSGD cannot be rebuilt.*learning_rate"):
        compiled(KerasTwoSGD(), "categorical_crossentropy").save(tmp_path / "lr.keras")

    checkpoint = tinynet.callbacks.ModelCheckpoint(str(tmp_path / "ck.keras"))

    class Stateful(MomentumSGD):
        def _own_config(self):
            return {**super()._own_config(), "beta": self.beta}

    with pytest.raises(ValueError, match=r"ModelCheckpoint: .*keeps the state \['v'\].*"
                                         r"save_weights_only=True"):
        compiled(Stateful(), "categorical_crossentropy").fit(x, y, verbose=0,
                                                             callbacks=[checkpoint])


def test_a_layer_with_weights_made_in_init_keeps_them_when_built_again():
    """Keras's first subclassing example makes its weights in __init__: built on an array, then
    put in a model, it lost them (0 parameters, and fit trained nothing)."""
    class Linear(layers.Layer):
        def __init__(self):
            super().__init__()
            self.w = self.add_weight(shape=(4, 3))
            self.b = self.add_weight(shape=(3,), initializer="zeros")

        def compute_output_shape(self, input_shape):
            return (3,)

        def _forward(self, x, training, fused=None):
            self._x = x
            return x @ self.w + self.b

        def _backward(self, dz, need_input_grad=True, fused_output=None):
            self.grads[0], self.grads[1] = self._x.T @ dz, dz.sum(axis=0)
            return dz @ self.w.T

    r = np.random.default_rng(0)
    x, y = r.random((16, 4)), r.random((16, 3))
    linear = Linear()
    linear(x)
    model = tinynet.Sequential([tinynet.Input((4,)), linear])
    assert model.count_params() == 15
    model.compile(optimizers.SGD(0.1), "mse")
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=10, verbose=0)
    assert model.evaluate(x, y, verbose=0) < 0.9 * before


def test_a_list_given_to_a_layer_of_one_input_is_named_and_leaves_it_usable():
    flatten, a = layers.Flatten(), np.ones((2, 4))
    with pytest.raises(ValueError, match=r"\(Flatten\) takes one array \(N, \.\.\.\), got a list of 2"):
        flatten([a, a])
    assert flatten(a).shape == (2, 4)
    assert tinynet.utils.to_categorical([], 3).shape == (0, 3)


@pytest.mark.parametrize("built_on_an_array_first", [False, True])
def test_weights_kept_in_a_list_are_the_ones_trained(built_on_an_array_first):
    """The model moves its weights into one flat buffer and rebinds the attributes holding them:
    weights kept in a list stayed the old arrays, so fit trained the buffer and the layer kept
    computing with its initial weights (no error, the loss never moved)."""
    class AffineList(layers.Layer):  # y = a x + b, its two weights in a list
        def build(self, input_shape):
            self.ws = [self.add_weight(shape=(1,), initializer="ones") for _ in range(2)]
            super().build(input_shape)

        def _forward(self, x, training, fused=None):
            self._x = x
            return self.ws[0] * x + self.ws[1]

        def _backward(self, dz, need_input_grad=True, fused_output=None):
            self.grads[0] = (dz * self._x).sum(keepdims=True).reshape(1)
            self.grads[1] = dz.sum(keepdims=True).reshape(1)
            return self.ws[0] * dz

    x = np.random.default_rng(0).random((8, 3))
    layer = AffineList()
    if built_on_an_array_first:
        layer(x)
    model = tinynet.Sequential([tinynet.Input((3,)), layer])
    assert [id(p) for p in layer.params] == [id(w) for w in layer.ws]
    model.compile(optimizers.SGD(0.1), "mse")
    model.fit(x, 2 * x + 1, epochs=300, verbose=0)
    np.testing.assert_allclose([float(w[0]) for w in layer.ws], [2, 1], atol=0.05)


def test_a_layer_built_again_keeps_weights_kept_in_params_or_private_attributes():
    """Built on an array, then put in a model: weights kept only in params were dropped (0 left,
    predict failed); a private attribute's new weight sat beside the old one, which the gradients
    went to (the layer never trained)."""
    x = np.random.default_rng(0).random((8, 3))

    class InParams(layers.Layer):
        def build(self, input_shape):
            self.params = [np.ones((1,)), np.zeros((1,))]
            self.grads = [None, None]
            super().build(input_shape)

        def _forward(self, x, training, fused=None):
            return self.params[0] * x + self.params[1]

    layer = InParams()
    layer(x)
    model = tinynet.Sequential([tinynet.Input((3,)), layer])
    assert model.count_params() == 2 and model.predict(x).shape == (8, 3)

    class Private(layers.Layer):
        def build(self, input_shape):
            self._a = self.add_weight(shape=(1,), initializer="ones")
            super().build(input_shape)

        def _forward(self, x, training, fused=None):
            self._x = x
            return self._a * x

        def _backward(self, dz, need_input_grad=True, fused_output=None):
            self.grads[0] = (dz * self._x).sum(keepdims=True).reshape(1)
            return self._a * dz

    layer = Private()
    layer(x)
    model = tinynet.Sequential([tinynet.Input((3,)), layer])
    assert len(layer.params) == 1 and layer.params[0] is layer._a
    model.compile(optimizers.SGD(0.1), "mse")
    model.fit(x, 3 * x, epochs=200, verbose=0)
    assert float(layer._a[0]) == pytest.approx(3.0, abs=1e-3)


def test_a_built_layer_keeps_its_weights_in_a_model_built_for_its_shape():
    """As Keras: a layer called on arrays, then put in a model for the same input shape, keeps
    its weights (they were made again, or doubled by add_weight); a failed model build can be
    retried with other data."""
    dense = layers.Dense(3)
    dense(np.ones((2, 5)))
    kernel = dense.kernel.copy()
    tinynet.Sequential([tinynet.Input((5,)), dense])
    np.testing.assert_array_equal(dense.kernel, kernel)
    rescaling = layers.Rescaling(1 / 255)
    rescaling(np.zeros((2, 7)))
    model = tinynet.Sequential([tinynet.Input((4,)), rescaling])
    assert model.predict(np.full((1, 4), 255.0)).tolist() == [[1.0, 1.0, 1.0, 1.0]]
    tinynet.backend.set_floatx("float64")  # built in another float type: built again
    wide = layers.Dense(3)
    wide(np.ones((2, 5)))
    tinynet.backend.set_floatx("float32")
    assert tinynet.Sequential([tinynet.Input((5,)), wide]).predict(np.ones((1, 5))).dtype == np.float32
    retried = tinynet.Sequential([layers.Rescaling(1 / 255), layers.Dense(3)])
    with pytest.raises(ValueError, match="Flatten"):
        retried.predict(np.zeros((2, 4, 4)))
    assert retried.predict(np.zeros((2, 16))).shape == (2, 3)


def test_a_built_layer_joining_a_model_for_other_inputs_keeps_its_weights_or_is_refused():
    """A layer built (and its weights set) for one input shape, then connected for another, was
    built again with new random weights, without a word (a review: a Conv2D set to 0.1 everywhere
    predicted a mean of 0.845 on ones where Keras gives 1.573). As Keras: the weights stay when
    they fit (a Conv2D on larger images; a model of another float type: cast), and inputs they do
    not fit are refused, the layer left as it was."""
    conv = layers.Conv2D(3, 3)
    conv.build((5, 5, 2))
    conv.set_weights([np.full((3, 3, 2, 3), 0.1), np.zeros(3)])
    inputs = tinynet.Input((9, 9, 2))
    model = tinynet.Model(inputs, conv(inputs))
    assert model.output_shape == (None, 7, 7, 3)
    np.testing.assert_allclose(model.predict(np.ones((1, 9, 9, 2))), 1.8, rtol=1e-6)  # 18 x 0.1
    dense = layers.Dense(2)
    dense.build((4,))
    dense.set_weights([np.full((4, 2), 0.5), np.zeros(2)])
    with pytest.raises(ValueError, match=r"built for inputs of shape \(None, 4\).*\(None, 6\) "
                                         r"need weights of shapes \[\(6, 2\), \(2,\)\]"):
        tinynet.Model(inputs := tinynet.Input((6,)), dense(inputs))
    assert dense.input_shape == (4,) and dense.inbound is None
    model = tinynet.Sequential([tinynet.Input((4,)), dense])
    assert model.predict(np.ones((1, 4))).tolist() == [[2.0, 2.0]]
    tinynet.backend.set_floatx("float64")
    wide = layers.Dense(3)
    wide(np.ones((2, 5)))
    kernel = wide.kernel.copy()
    tinynet.backend.set_floatx("float32")
    tinynet.Sequential([tinynet.Input((5,)), wide])
    assert wide.kernel.dtype == np.float32
    np.testing.assert_array_equal(wide.kernel, kernel.astype(np.float32))

    scale = BuiltScale()  # add_weight in build: the weights it made are made again
    scale(np.ones((2, 5)))
    scale.a[...] = 3.0
    model = tinynet.Sequential([tinynet.Input((7,)), scale])  # (a review: refused, or a spare)
    assert len(scale.params) == 1 and scale.params[0] is scale.a
    assert model.predict(np.ones((1, 7))).tolist() == [[3.0] * 7]
    tinynet.backend.set_floatx("float64")
    scale = BuiltScale()
    scale(np.ones((2, 5)))
    tinynet.backend.set_floatx("float32")
    tinynet.Sequential([tinynet.Input((5,)), scale])  # another float type only: cast
    assert len(scale.params) == 1 and scale.a.dtype == np.float32

    class Guarded(layers.Layer):  # a build that makes its weight once (a review: refused)
        def build(self, input_shape):
            if not hasattr(self, "a"):
                self.a = self.add_weight(shape=(1,), initializer="ones")
            super().build(input_shape)

        def _forward(self, x, training, fused=None):
            return self.a * x

    guarded = Guarded()
    guarded(np.ones((2, 5)))
    guarded.a[...] = 4.0
    model = tinynet.Sequential([tinynet.Input((7,)), guarded])
    assert len(guarded.params) == 1 and model.predict(np.ones((1, 7))).tolist() == [[4.0] * 7]

    class GuardedKernel(layers.Layer):  # its kept weight does not fit other inputs: refused
        def build(self, input_shape):
            if not hasattr(self, "w"):
                self.w = self.add_weight(shape=(input_shape[-1], 3))
            super().build(input_shape)

        def compute_output_shape(self, input_shape):
            return (3,)

        def _forward(self, x, training, fused=None):
            return x @ self.w

    kernel = GuardedKernel()
    kernel(np.ones((2, 5)))
    with pytest.raises(ValueError, match=r"keeps the weights it made then; on inputs of shape "
                                         r"\(None, 7\) it fails"):
        tinynet.Sequential([tinynet.Input((7,)), kernel])  # (a review: a bare matmul error later)
    assert kernel.input_shape == (5,) and kernel.w.shape == (5, 3)

    class GuardedNorm(Guarded):  # fits any width; divides by the input's norm (a review:
        def _forward(self, x, training, fused=None):  # refused after a pass on zeros)
            return self.a * x / np.linalg.norm(x, axis=-1, keepdims=True)

    norm = GuardedNorm()
    norm(np.ones((2, 5)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = tinynet.Sequential([tinynet.Input((4,)), norm])
    assert model.predict(np.ones((1, 4))).tolist() == [[0.5] * 4]

    class MadeInInit(layers.Layer):  # Keras's first example: the weight made in __init__
        def __init__(self):
            super().__init__()
            self.a = self.add_weight(shape=(1,), initializer="ones")

        def _forward(self, x, training, fused=None):
            return self.a * x

    tinynet.backend.set_floatx("float64")
    made = MadeInInit()
    made(np.ones((2, 3)))
    tinynet.backend.set_floatx("float32")
    model = tinynet.Sequential([tinynet.Input((3,)), made])  # (mixed float64/float32 before)
    assert made.a.dtype == np.float32 and made.params[0] is made.a and model.dtype == np.float32

    class PerFeature(layers.Layer):  # as many weights as input features
        def build(self, input_shape):
            self.ws = [self.add_weight(shape=(1,)) for _ in range(input_shape[-1])]
            super().build(input_shape)

        def _forward(self, x, training, fused=None):
            return x

    each = PerFeature()
    each(np.ones((1, 2)))
    with pytest.raises(ValueError, match="made 3 weight arrays where it had 2"):
        tinynet.Sequential([tinynet.Input((3,)), each])
    assert len(each.params) == 2 and each.input_shape == (2,)


def test_a_failed_model_build_leaves_its_layers_unbuilt_for_a_retry():
    """A Sequential without an input shape, first given images of 3 channels it cannot take,
    then the right ones of 1 channel: its Conv2D, built for 3 channels by the failed build, is
    built for 1 (keeping weights for 3 channels would refuse the retry)."""
    model = tinynet.Sequential([layers.Conv2D(2, 3), layers.MaxPooling2D(3), layers.Flatten(),
                                layers.Dense(2)])
    with pytest.raises(ValueError, match="pool"):
        model.predict(np.zeros((2, 4, 4, 3)))
    assert not model.layers[0].built
    assert model.predict(np.zeros((2, 9, 9, 1))).shape == (2, 2)
    assert model.layers[0].kernel.shape == (3, 3, 1, 2)


def test_weights_in_a_namedtuple_stay_a_namedtuple_in_the_model():
    import collections
    Pair = collections.namedtuple("Pair", "scale shift")

    class Affine(layers.Layer):
        def build(self, input_shape):
            self.w = Pair(self.add_weight(shape=(1,), initializer="ones"),
                          self.add_weight(shape=(1,), initializer="zeros"))
            super().build(input_shape)

        def _forward(self, x, training, fused=None):
            return self.w.scale * x + self.w.shift

    layer = Affine()
    tinynet.Sequential([tinynet.Input((3,)), layer])
    assert isinstance(layer.w, Pair) and layer.w.scale is layer.params[0]


def test_save_accepts_what_changes_in_training_or_round_trips_through_json(tmp_path):
    """A counter an update sets, a tuple argument (a list once saved) and a NaN were refused."""
    class Counting(optimizers.Optimizer):
        def __init__(self, learning_rate=0.01, betas=(0.9, 0.99), floor=float("nan"), **kwargs):
            super().__init__(learning_rate, **kwargs)
            self.betas, self.floor, self.steps_done = tuple(betas), floor, 0

        def _own_config(self):
            return {"betas": self.betas, "floor": self.floor}

        def update(self, theta, g, state):
            self.steps_done += 1
            theta -= self._learning_rate * g

    x, y = _data()
    model = tinynet.Sequential([tinynet.Input((8,)), layers.Dense(3, activation="softmax")])
    model.compile(Counting(), "categorical_crossentropy")
    model.fit(x, y, verbose=0)
    model.save(tmp_path / "counting.keras")
    loaded = tinynet.load_model(tmp_path / "counting.keras", custom_objects={"Counting": Counting})
    assert list(loaded.optimizer.betas) == [0.9, 0.99]


def test_a_scheduled_subclass_of_a_builtin_optimizer_saves_after_steps(tmp_path):
    """Its learning rate reads the schedule's current step (it was compared with step 0's)."""
    class Logged(optimizers.Adam):
        pass

    x, y = _data()
    model = tinynet.Sequential([tinynet.Input((8,)), layers.Dense(3, activation="softmax")])
    model.compile(Logged(learning_rate=tinynet.optimizers.schedules.ExponentialDecay(1e-3, 10, 0.5)),
                  "categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=16, verbose=0,
              callbacks=[tinynet.callbacks.ModelCheckpoint(str(tmp_path / "ck.keras"))])
    loaded = tinynet.load_model(tmp_path / "ck.keras", custom_objects={"Logged": Logged})
    assert loaded.optimizer.learning_rate == pytest.approx(model.optimizer.learning_rate)


def test_the_layer_docstrings_example_runs_and_its_gradients_check():
    """The example a student copies from tinynet.layers.Layer's docstring."""
    import textwrap
    code = textwrap.dedent(layers.Layer.__doc__.split("::\n\n", 1)[1].split("\n\n")[0])
    namespace = {"Layer": layers.Layer}
    exec(code, namespace)  # noqa: S102 - the docstring's own code
    tinynet.backend.set_floatx("float64")
    x = np.random.default_rng(0).random((3, 4))
    assert max(tinynet.gradcheck.check_layer(namespace["Scale"](), x).values()) < 1e-8


@pytest.mark.parametrize("returned, says", [
    (lambda dz, xs: [dz * xs[1]], "returned 1 gradient(s)"),
    (lambda dz, xs: dz * xs[1], "returned 1 gradient(s)"),
    (lambda dz, xs: [dz * xs[1], None], "returned None for input 1"),
    (lambda dz, xs: (dz * xs[1], dz * xs[0]), None),   # a tuple is a list of gradients too
])
def test_a_layer_of_two_inputs_must_return_a_gradient_for_each(returned, says):
    """A custom two-input layer whose backward forgot one input's gradient trained without a
    word: the layers on that input never moved."""
    class Multiply(Layer):
        def build(self, input_shape):
            super().build(input_shape[0])
            self.input_shape = [tuple(s) for s in input_shape]

        def _forward(self, xs, training, fused=None):
            self._xs = xs
            return xs[0] * xs[1]

        def _backward(self, dz, need_input_grad=True, fused_output=None):
            return returned(dz, self._xs)

    x_in = layers.Input((6,))
    a = layers.Dense(6, activation="tanh", name="a")(x_in)
    b = layers.Dense(6, activation="tanh", name="b")(x_in)
    model = Model(x_in, layers.Dense(3, activation="softmax")(Multiply()([a, b])))
    model.compile(optimizers.SGD(0.1), "categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(40, 6))
    y = np.eye(3)[np.arange(40) % 3]
    before = model.get_layer("b").get_weights()[0].copy()
    if says is None:
        model.fit(x, y, epochs=1, verbose=0)
        assert np.abs(model.get_layer("b").get_weights()[0] - before).max() > 1e-4
        return
    with pytest.raises(ValueError, match=re.escape(f"has 2 input(s), and its backward {says}: "
                                                   "return dL/d(input) for each input")):
        model.fit(x, y, epochs=1, verbose=0)


def test_a_layer_may_leave_out_the_gradient_of_an_input_that_needs_none():
    """None for the model's own input (nothing before it trains) is an answer, as before."""
    class Gate(Layer):  # y = x * sigmoid(h)
        def build(self, input_shape):
            super().build(tuple(input_shape[0]))
            self.input_shape = [tuple(s) for s in input_shape]

        def _forward(self, xs, training, fused=None):
            self._x, self._s = xs[0], 1 / (1 + np.exp(-xs[1]))
            return self._x * self._s

        def _backward(self, dz, need_input_grad=True, fused_output=None):
            return [None, dz * self._x * self._s * (1 - self._s)]

    x_in = layers.Input((4,))
    hidden = layers.Dense(4, name="hidden")
    model = Model(x_in, layers.Dense(2, activation="softmax")(Gate()([x_in, hidden(x_in)])))
    model.compile(optimizers.SGD(0.5), "categorical_crossentropy")
    before = hidden.kernel.copy()
    model.fit(np.random.default_rng(0).random((16, 4)), np.eye(2)[np.arange(16) % 2], verbose=0)
    assert np.abs(hidden.kernel - before).max() > 1e-4
    # asked for dL/dx, the same None is refused, and the message says why
    x = np.random.default_rng(1).random((3, 4))
    model.forward(x)
    with pytest.raises(ValueError, match=r"returned None for input 0: .*dL/dx was asked for"):
        model.backward(np.ones((3, 2)))


def test_a_missing_gradient_before_a_trained_layer_says_they_would_not_train():
    class NoDx(BuiltScale):  # scales its input, and forgets dL/dx
        def _forward(self, x, training, fused=None):
            self._x = x
            return self.a * x

        def _backward(self, dz, need_input_grad=True, fused_output=None):
            self.grads[0] = (dz * self._x).sum(keepdims=True).reshape(1)
            return None

    model = tinynet.Sequential([layers.Input((4,)), layers.Dense(3, name="hidden"), NoDx()])
    model.forward(np.random.default_rng(0).random((2, 4)))
    with pytest.raises(ValueError, match="None for input 0: .*the layers before that input would "
                                         "not train"):
        model.backward(np.ones((2, 3)))


def test_a_weight_whose_gradient_the_backward_forgets_is_named_not_left_behind_silently():
    """A layer's _backward that returns dL/dx but never writes ``self.grads``: the weight did not
    train, without a word (Keras warns "Gradients do not exist for variables"); a frozen layer's
    weights need no gradient and give no warning."""
    class NoGrads(BuiltScale):
        def _backward(self, dz, need_input_grad=True, fused_output=None):
            return dz * self.a

    model = tinynet.Sequential([layers.Input((3,)), NoGrads(name="forgetful"), layers.Dense(2)])
    model.compile("sgd", "mse")
    x, y = np.ones((8, 3)), np.zeros((8, 2))
    with pytest.warns(UserWarning, match=r"no gradient for the weights of layer 'forgetful' "
                                         r"\(grads\[0\]\) after the backward pass: they do not train"):
        model.fit(x, y, epochs=2, verbose=0)
    model.get_layer("forgetful").trainable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.train_on_batch(x, y)
