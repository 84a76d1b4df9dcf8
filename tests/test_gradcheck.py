"""Numerical gradient checks of every layer, the activations, the loss and a whole residual model.

Each check compares the analytic backward pass with central differences in float64; the worst
relative error (see tinynet.gradcheck) must stay below 1e-6; below 1e-7 for the layers Keras
scripts bring (Softmax, ReLU, Reshape, Rescaling, AveragePooling2D, GlobalAveragePooling2D,
activations given as functions).
"""
import numpy as np
import pytest

from tinynet import activations, backend, gradcheck, layers, losses, report_models

TOL = 1e-6


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def assert_small(errors):
    worst = max(errors.values())
    assert worst < TOL, errors


CONV_CASES = [  # (H, W, C, filters, kernel, stride, padding)
    (7, 7, 1, 2, 1, 1, "valid"),
    (8, 8, 3, 2, 3, 1, "same"),
    (9, 8, 2, 3, 3, 2, "same"),
    (9, 9, 2, 2, 3, 2, "valid"),
    (8, 7, 1, 4, 5, 1, "same"),
    (10, 9, 3, 2, 5, 2, "valid"),
    (7, 8, 2, 2, 7, 1, "same"),
    (9, 9, 1, 3, 7, 2, "same"),
    (7, 7, 4, 2, 7, 1, "valid"),
    (6, 6, 5, 3, 3, 1, "same"),
    (8, 8, 16, 2, 3, 2, "same"),
]


@pytest.mark.parametrize("h,w,c,f,k,s,pad", CONV_CASES)
def test_conv2d_gradients(float64, h, w, c, f, k, s, pad):
    layer = layers.Conv2D(f, k, strides=s, padding=pad, activation="linear")
    x = randn(2, h, w, c)
    layer.build((h, w, c))
    layer.set_weights([randn(k, k, c, f, seed=1), randn(f, seed=2)])  # non-zero bias
    assert_small(gradcheck.check_layer(layer, x, entries=150))


def test_conv2d_with_relu_and_rectangular_kernel(float64):
    layer = layers.Conv2D(3, (3, 5), strides=(2, 1), padding="same", activation="relu")
    assert_small(gradcheck.check_layer(layer, randn(2, 9, 8, 2), entries=150))


POOL_CASES = [  # (H, W, pool, strides, padding)
    (7, 7, 2, None, "valid"),
    (9, 8, 3, None, "valid"),
    (7, 9, 3, 2, "valid"),
    (8, 8, 2, 1, "valid"),
    (7, 7, 2, None, "same"),
    (9, 7, 3, 2, "same"),
    (6, 7, (2, 3), (1, 2), "valid"),
]


@pytest.mark.parametrize("h,w,pool,strides,pad", POOL_CASES)
def test_maxpool_gradients(float64, h, w, pool, strides, pad):
    layer = layers.MaxPooling2D(pool, strides=strides, padding=pad)
    assert_small(gradcheck.check_layer(layer, randn(2, h, w, 3)))


@pytest.mark.parametrize("activation", ["linear", "relu", "sigmoid", "tanh", "softmax"])
def test_dense_gradients(float64, activation):
    layer = layers.Dense(5, activation=activation)
    layer.build((7,))
    layer.set_weights([randn(7, 5, seed=1), randn(5, seed=2)])
    assert_small(gradcheck.check_layer(layer, randn(4, 7)))


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "softmax"])
def test_activation_layer_gradients(float64, activation):
    assert_small(gradcheck.check_layer(layers.Activation(activation), randn(3, 6) * 2))


def test_add_gradients(float64):
    layer = layers.Add()
    errors = gradcheck.check_layer(layer, [randn(2, 4, 4, 3, seed=1), randn(2, 4, 4, 3, seed=2),
                                          randn(2, 4, 4, 3, seed=3)])
    assert set(errors) == {"input_0", "input_1", "input_2"}
    assert_small(errors)


def test_concatenate_gradients(float64):
    for axis, shapes in ((-1, [(2, 4, 4, 3), (2, 4, 4, 1), (2, 4, 4, 2)]), (2, [(2, 3, 5), (2, 3, 2)])):
        errors = gradcheck.check_layer(layers.Concatenate(axis=axis),
                                       [randn(*shape, seed=k) for k, shape in enumerate(shapes)])
        assert set(errors) == {f"input_{k}" for k in range(len(shapes))}
        assert_small(errors)


def test_flatten_gradients(float64):
    assert_small(gradcheck.check_layer(layers.Flatten(), randn(2, 3, 4, 5)))


def test_dropout_gradients_in_training_with_a_fixed_mask(float64):
    layer = layers.Dropout(0.4)
    x = randn(3, 50)
    errors = gradcheck.check_layer(layer, x, training=True)
    assert_small(errors)
    backend.set_seed(0)
    y = layer.forward(x, training=True)
    dropped = np.mean(y == 0)
    assert 0.2 < dropped < 0.6  # it really dropped units, about 40%
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / 0.6)  # inverted dropout scaling


@pytest.mark.parametrize("from_logits", [True, False])
def test_categorical_crossentropy_gradient(float64, from_logits):
    rng = np.random.default_rng(0)
    y_true = np.eye(5)[rng.integers(0, 5, size=4)]
    z = rng.standard_normal((4, 5))
    pred = z if from_logits else np.exp(z) / np.exp(z).sum(axis=1, keepdims=True) * 1.3
    loss = losses.CategoricalCrossentropy(from_logits=from_logits)
    analytic = loss.gradient(y_true, pred)
    numeric = np.zeros_like(pred)
    for i in np.ndindex(pred.shape):
        p, m = pred.copy(), pred.copy()
        p[i] += 1e-6
        m[i] -= 1e-6
        numeric[i] = (loss(y_true, p) - loss(y_true, m)) / 2e-6
    assert gradcheck.relative_error(analytic, numeric) < TOL


def test_gradcheck_detects_a_wrong_backward(float64):
    """The checker itself must fail on a subtly wrong gradient (a 1% error in dL/dW)."""
    layer = layers.Dense(3)
    x = randn(4, 5)
    layer.build((5,))
    original = layer._backward

    def wrong(dz, need_input_grad=True):
        dx = original(dz, need_input_grad)
        layer.grads[0] = layer.grads[0] * 1.01
        return dx

    layer._backward = wrong
    errors = gradcheck.check_layer(layer, x)
    assert errors["kernel"] > 1e-3  # named by the attribute that holds it (it was "w0")
    assert errors["input"] < TOL


def test_residual_fashion_model_gradients(float64):
    """Report model 3 as a whole: every parameter and the input, through the skip connection."""
    model = report_models.cnn_fashion_3()
    model.compile("rmsprop", "categorical_crossentropy")
    for layer in model.layers:  # non-zero biases, so their gradients are tested too
        if len(layer.params) == 2:
            layer.params[1][...] = randn(*layer.params[1].shape, seed=5) * 0.1
    x = np.random.default_rng(3).random((2, 28, 28, 1))
    y = np.eye(10)[[3, 7]]
    errors = gradcheck.check_model(model, x, y, entries=40)
    assert "add/kernel" not in errors and "l2_2/bias" in errors and "input" in errors
    assert len(errors) == 1 + len(model.params)   # every array under a name of its own
    assert_small(errors)
    assert_small(gradcheck.check_model(model, x, entries=40))  # sum(output * G): the softmax Jacobian


# --------------------------------------------------------------------------------------------
# the layers Keras scripts bring (issue 11): held to 1e-7
# --------------------------------------------------------------------------------------------

NEW_TOL = 1e-7


def assert_below(errors, tol=NEW_TOL):
    assert errors and max(errors.values()) < tol, errors


def away_from_zero(x, margin=1e-2):
    """``x`` with no entry within ``margin`` of 0, where relu's kink would spoil the differences."""
    return np.where(np.abs(x) < margin, np.copysign(margin, x) + x, x)


@pytest.mark.parametrize("shape", [(3, 6), (2, 3, 4, 5)])
def test_softmax_layer_gradients(float64, shape):
    errors = gradcheck.check_layer(layers.Softmax(), randn(*shape) * 2)
    assert set(errors) == {"input"}
    assert_below(errors)


@pytest.mark.parametrize("shape", [(3, 6), (2, 3, 3, 4)])
def test_relu_layer_gradients(float64, shape):
    x = away_from_zero(randn(*shape))
    assert (x > 0).any() and (x < 0).any()  # both sides of the kink
    assert_below(gradcheck.check_layer(layers.ReLU(), x))


@pytest.mark.parametrize("name", ["linear", "relu", "sigmoid", "tanh", "softmax"])
def test_activation_given_as_a_function_gradients(float64, name):
    layer = layers.Activation(getattr(activations, name))
    assert layer.activation is getattr(activations, name) and layer.activation_name == name
    assert_below(gradcheck.check_layer(layer, away_from_zero(randn(3, 6) * 2)))


def test_dense_with_an_activation_function_gradients(float64):
    layer = layers.Dense(5, activation=activations.tanh)
    layer.build((7,))
    layer.set_weights([randn(7, 5, seed=1), randn(5, seed=2)])
    errors = gradcheck.check_layer(layer, randn(4, 7))
    assert set(errors) == {"input", "kernel", "bias"}
    assert_below(errors)


@pytest.mark.parametrize("shape,target", [
    ((12,), (3, 4)),
    ((2, 3, 4), (-1, 4)),
    ((24,), (2, -1, 3)),
    ((3, 3, 2), (-1,)),
    ((4, 5, 6), (6, -1)),
])
def test_reshape_gradients(float64, shape, target):
    layer = layers.Reshape(target)
    x = randn(2, *shape)
    y = layer.forward(x)
    np.testing.assert_array_equal(y, x.reshape((2,) + layer.output_shape))  # row-major, like Keras
    assert_below(gradcheck.check_layer(layer, x))


@pytest.mark.parametrize("scale,offset,pixels", [
    (1 / 255, 0.0, True),
    (1 / 127.5, -1.0, True),
    (2.5, 0.3, False),
    (-0.75, 1.25, False),
])
def test_rescaling_gradients(float64, scale, offset, pixels):
    rng = np.random.default_rng(4)
    x = rng.integers(0, 256, size=(2, 5, 4, 3)).astype(np.float64) if pixels else randn(2, 5, 4, 3)
    layer = layers.Rescaling(scale, offset)
    np.testing.assert_allclose(layer.forward(x), x * scale + offset, rtol=1e-15, atol=1e-15)
    # the layer is linear, so central differences have no truncation error at any step; a step
    # of 1e-4 (not 1e-6) keeps the rounding of sum(y * G) (y ~ 1, dy/dx = 1/255) well below 1e-7
    assert_below(gradcheck.check_layer(layer, x, h=1e-4))


AVG_POOL_CASES = [  # (H, W, pool, strides, padding)
    (7, 7, 2, None, "valid"),
    (7, 7, 2, None, "same"),
    (5, 6, 2, 1, "valid"),
    (5, 6, 2, 1, "same"),
    (9, 10, 2, 2, "same"),
    (10, 11, 3, None, "valid"),
    (7, 8, 3, None, "same"),
    (7, 7, 3, 1, "valid"),
    (7, 9, 3, 1, "same"),
    (9, 10, 3, 2, "valid"),
    (9, 10, 3, 2, "same"),
    (2, 3, 3, 2, "same"),          # the window is larger than the image
    (10, 9, 2, 3, "same"),         # strides larger than the pool
    (7, 8, (2, 3), (1, 2), "same"),
]


@pytest.mark.parametrize("h,w,pool,strides,pad", AVG_POOL_CASES)
def test_average_pooling_gradients(float64, h, w, pool, strides, pad):
    layer = layers.AveragePooling2D(pool, strides=strides, padding=pad)
    errors = gradcheck.check_layer(layer, randn(2, h, w, 3))
    assert set(errors) == {"input"}
    assert_below(errors)


@pytest.mark.parametrize("shape", [(2, 5, 6, 3), (3, 1, 1, 4), (2, 7, 7, 16)])
def test_global_average_pooling_gradients(float64, shape):
    layer = layers.GlobalAveragePooling2D()
    x = randn(*shape)
    np.testing.assert_allclose(layer.forward(x), x.mean(axis=(1, 2)), rtol=1e-14)
    assert_below(gradcheck.check_layer(layer, x))


class _InPlaceReLU(layers.Layer):
    """A student's ReLU whose backward writes into the gradient it is given."""

    def _forward(self, x, training, fused=None):
        self._x = x
        return np.maximum(x, 0)

    def _backward(self, dz, need_input_grad=True, fused_output=None):
        dz[self._x <= 0] = 0  # the bug: dz may be another branch's gradient as well
        return dz


class _NoGrads(layers.Dense):
    """A layer whose backward forgets to fill self.grads."""

    def _backward(self, dz, need_input_grad=True, fused_output=None):
        return dz @ self.kernel.T


def test_gradcheck_refuses_what_it_cannot_check_and_checks_what_the_layer_computes(float64):
    """A helper's findings: a backward that changes its incoming gradient in place passed
    check_layer (4e-11) and gave wrong gradients in a residual model; a correct Add given the
    same array twice reported 0.5, a float64 layer given float32 or integer input 0.02-1.0 (the
    caller's array was perturbed before the layer cast it); a float32 layer reported 0.02-0.8
    without a word; a backward that left self.grads unset ended in a bare AttributeError."""
    x = randn(3, 5)
    with pytest.raises(ValueError, match=r"changed the gradient it was given.*in place.*"
                                         r"dz = dy \* mask"):
        gradcheck.check_layer(_InPlaceReLU(), x)
    assert_small(gradcheck.check_layer(layers.Add(), [x, x]))
    dense = layers.Dense(4, activation="tanh")
    assert_small(gradcheck.check_layer(dense, x.astype(np.float32)))
    integers = np.random.default_rng(1).integers(-3, 4, (3, 5))
    assert_small(gradcheck.check_layer(layers.Dense(4, activation="tanh"), integers))
    assert integers.dtype.kind == "i"  # the caller's array is left alone
    with pytest.raises(ValueError, match=r"left the gradient of its 'kernel' unset; _backward "
                                         r"must fill self.grads"):
        gradcheck.check_layer(_NoGrads(2), x)
    backend.set_floatx("float32")
    with pytest.warns(UserWarning, match=r"computes in float32.*set_floatx\('float64'\)"):
        gradcheck.check_layer(layers.Dense(2), x)
