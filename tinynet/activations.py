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
    """``max(x, 0)``, element-wise; the output has the shape of ``x``."""
    return _xp(x).maximum(x, 0)


def relu_backward(dy, y):
    """dL/dx = ``dy ⊙ [y > 0]`` from dL/dy and the output ``y = relu(x)`` (same shapes)."""
    return dy * (y > 0)  # y > 0 exactly where x > 0


def sigmoid(x):
    """``σ(x) = 1 / (1 + e^-x)``, element-wise, in (0, 1); the shape of ``x``."""
    xp = _xp(x)
    # 1/(1+e^-x) computed without overflow for large |x|: e^{-log(1+e^{-x})}
    return xp.exp(-xp.logaddexp(0, -x))


def sigmoid_backward(dy, y):
    """dL/dx = ``dy ⊙ y (1 - y)`` from dL/dy and the output ``y = σ(x)`` (same shapes)."""
    return dy * y * (1 - y)


def tanh(x):
    """``tanh x``, element-wise, in (-1, 1); the shape of ``x``."""
    return _xp(x).tanh(x)


def tanh_backward(dy, y):
    """dL/dx = ``dy ⊙ (1 - y²)`` from dL/dy and the output ``y = tanh x`` (same shapes)."""
    return dy * (1 - y * y)


def softmax(x):
    """``y_i = e^x_i / Σ_j e^x_j`` over the last axis (each row of (N, K) logits becomes K
    probabilities that sum to 1); the shape of ``x``."""
    xp = _xp(x)
    e = xp.exp(x - x.max(axis=-1, keepdims=True))  # shifting by the max changes nothing but overflow
    return e / e.sum(axis=-1, keepdims=True)


def softmax_backward(dy, y):
    """dL/dx = ``y ⊙ (dy - Σ_j dy_j y_j)`` over the last axis: the softmax's Jacobian
    ``∂y_i/∂x_k = y_i ([i = k] - y_k)`` applied to ``dy`` without forming it (same shapes)."""
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


def linear(x):
    """The identity, ``y = x`` (a Dense layer without an activation)."""
    return x


def linear_backward(dy, y):
    """dL/dx = ``dy``."""
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


# Keras 3 activations tinynet does not implement (names as ``activation=`` takes them)
KERAS_ONLY = ("elu", "selu", "gelu", "silu", "swish", "leaky_relu", "relu6", "softplus",
              "softsign", "exponential", "hard_sigmoid", "hard_silu", "hard_swish", "mish",
              "log_softmax", "celu", "glu", "hard_tanh", "hard_shrink", "soft_shrink",
              "tanh_shrink", "squareplus", "sparse_plus", "sparsemax", "log_sigmoid",
              "threshold", "sparse_sigmoid")


def get(identifier):
    """The activation function of ``identifier`` (a name, tinynet's or Keras's function, or None
    for ``linear``), as Keras's ``keras.activations.get``: ``get("relu") is relu``. Keras's own
    function gives tinynet's of the same name (which computes on NumPy arrays)."""
    return ACTIVATIONS[name_of(identifier)][0]


def name_of(name, owner=None):
    """Return the activation's name, validated; ``None`` means ``"linear"``. One of tinynet's
    functions, or Keras's or TensorFlow's of the same name, is taken by its name
    (``activation=tinynet.activations.relu`` or ``keras.activations.relu``, as Keras allows); a
    function of one's own is refused, even named ``relu``: tinynet would run its own ``relu``
    instead, and it needs each activation's derivative, written by hand."""
    where = f" in layer '{owner}'" if owner else ""
    if name is None:
        return "linear"
    if callable(name) and not isinstance(name, str):
        known = getattr(name, "__name__", None)
        module = getattr(name, "__module__", None) or ""
        if known in ACTIVATIONS and (name is ACTIVATIONS[known][0]
                                     or module.split(".")[0] in ("keras", "tensorflow", "tf_keras")):
            return known
        raise ValueError(f"activation={name!r}{where}: tinynet takes an activation by name "
                         f"({', '.join(ACTIVATIONS)}), or as tinynet's or Keras's function of that "
                         "name, not a function of one's own: the backward pass needs its "
                         "derivative, which tinynet writes by hand for each. For another one, "
                         "write a layer with its _forward and _backward (see tinynet.layers.base.Layer)")
    if not isinstance(name, str) or name not in ACTIVATIONS:
        what = ("is a Keras activation that tinynet does not implement" if name in KERAS_ONLY
                else "is unknown")
        raise ValueError(f"activation {name!r}{where} {what}; tinynet's: "
                         f"{', '.join(ACTIVATIONS)} (another one is a layer of one's own, with its "
                         "_forward and _backward: see tinynet.layers.base.Layer)")
    return name



def __getattr__(name):
    from .names import missing
    raise missing("tinynet.activations", name, "activation", sorted(ACTIVATIONS))
