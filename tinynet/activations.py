"""Activation functions: each a forward map ``y = f(x)`` and its backward ``dL/dx`` from ``dL/dy``.

The backward pass needs only the saved output ``y``:

* relu:    y = max(x, 0),          dx = dy * [y > 0]  (0 at x = 0, as in TensorFlow)
* sigmoid: y = 1 / (1 + e^-x),     dx = dy * y (1 - y)
* tanh:    y = tanh x,             dx = dy * (1 - y^2)
* softmax: y_i = e^x_i / sum_j e^x_j (over the last axis),
           dx_i = y_i (dy_i - sum_j dy_j y_j)   (the full Jacobian, applied without forming it)
* linear:  y = x,                  dx = dy
"""
from .backend import get_array_module as _xp


def relu(x):
    return _xp(x).maximum(x, 0)


def relu_backward(dy, y):
    return dy * (y > 0)  # y > 0 exactly where x > 0


def sigmoid(x):
    xp = _xp(x)
    # 1/(1+e^-x) computed without overflow for large |x|: e^{-log(1+e^{-x})}
    return xp.exp(-xp.logaddexp(0, -x))


def sigmoid_backward(dy, y):
    return dy * y * (1 - y)


def tanh(x):
    return _xp(x).tanh(x)


def tanh_backward(dy, y):
    return dy * (1 - y * y)


def softmax(x):
    xp = _xp(x)
    e = xp.exp(x - x.max(axis=-1, keepdims=True))  # shifting by the max changes nothing but overflow
    return e / e.sum(axis=-1, keepdims=True)


def softmax_backward(dy, y):
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


def linear(x):
    return x


def linear_backward(dy, y):
    return dy


ACTIVATIONS = {
    "linear": (linear, linear_backward),
    "relu": (relu, relu_backward),
    "sigmoid": (sigmoid, sigmoid_backward),
    "tanh": (tanh, tanh_backward),
    "softmax": (softmax, softmax_backward),
}


def forward(name, z):
    """``y = f(z)`` for the activation called ``name``."""
    return ACTIVATIONS[name][0](z)


def backward(name, dy, y):
    """``dL/dz`` from ``dy = dL/dy`` and the saved output ``y`` of the activation ``name``."""
    return ACTIVATIONS[name][1](dy, y)


def get(name, owner=None):
    """Return the activation's name, validated; ``None`` means ``"linear"``. A function is taken
    by its name (``activation=tinynet.activations.relu``, as Keras allows)."""
    if name is None:
        return "linear"
    if callable(name) and getattr(name, "__name__", None) in ACTIVATIONS:
        return name.__name__
    if not isinstance(name, str) or name not in ACTIVATIONS:
        where = f" in layer '{owner}'" if owner else ""
        raise ValueError(f"unknown activation {name!r}{where}; valid names: {', '.join(ACTIVATIONS)}")
    return name



def __getattr__(name):
    from .names import missing
    raise missing("tinynet.activations", name, "activation", sorted(ACTIVATIONS))
