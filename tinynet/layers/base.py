"""The Layer base class, the symbolic tensors of the functional API, and ``Input``.

A layer turns an input batch into an output batch (``forward``) and, given the gradient of the
loss with respect to its output, returns the gradient with respect to its input and fills
``layer.grads`` with the gradients of its parameters (``backward``). Each layer writes its own
maths in ``_forward``/``_backward`` (the pre-activation ``z`` and its gradients); this class does
the rest, once for every layer:

* building on first use, checking shapes and casting integer input to the layer's float type;
* the activation: ``y = f(z)`` after ``_forward`` and ``dz = f'(z) ⊙ dy`` before ``_backward``.
  A layer whose kernel can apply its activation in the same pass over memory lists it in
  ``fused_activations`` (Conv2D: ``relu``); ``_forward`` then receives ``fused="relu"`` and
  returns ``y`` directly, and ``_backward`` receives that ``y`` to form ``dz`` itself. Same numbers;
* ``forward(x, activate=False)`` returns the pre-activation ``z`` (the *logits* of a softmax
  layer) and the following ``backward`` takes ``dL/dz``: this is how ``fit`` trains a softmax
  output with the fused softmax + cross-entropy of :mod:`tinynet.losses`;
* ``backward(..., need_input_grad=False)``: a layer whose input needs no gradient (it is the
  data) computes only its weights' gradients and returns ``None``.
"""
import math
from collections import defaultdict

import numpy as np

from .. import activations, backend
from ..shapes import fmt_shape

_name_counts = defaultdict(int)


def unique_name(prefix):
    """Keras-style default names: ``dense``, ``dense_1``, ``dense_2``, ..."""
    n = _name_counts[prefix]
    _name_counts[prefix] += 1
    return prefix if n == 0 else f"{prefix}_{n}"


def reset_names():
    """Start default layer names from scratch (like ``keras.backend.clear_session()``)."""
    _name_counts.clear()


def glorot_uniform(shape, fan_in, fan_out):
    """Keras's default kernel initialiser: U(-l, l) with ``l = sqrt(6 / (fan_in + fan_out))``."""
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    w = backend.rng().uniform(-limit, limit, size=shape)
    return backend.asarray(w.astype(backend.floatx()))


def zeros(shape):
    return backend.xp().zeros(shape, dtype=backend.floatx())


def as_float(x, dtype):
    """``x`` itself when it holds float32/float64 numbers, else ``x`` cast to ``dtype`` (integer
    pixels, booleans, float16), as Keras casts a layer's input to its compute type."""
    return x if x.dtype.kind == "f" and x.dtype.itemsize >= 4 else x.astype(dtype)


class Tensor:
    """A symbolic tensor of the functional API: a shape (batch axis ``None``) and the layer that
    produces it. The layer's ``inbound`` tensors say where its own inputs come from."""

    def __init__(self, shape, layer):
        self.shape = (None,) + tuple(shape)
        self.layer = layer

    def __repr__(self):
        return f"<Tensor shape={self.shape} from '{self.layer.name}'>"


class Layer:
    """Base class. Subclasses set ``default_name`` and write ``build``, ``_forward``, ``_backward``."""

    default_name = "layer"
    fused_activations = ()  # activations the layer's kernel applies itself (see the module doc)

    def __init__(self, name=None, activation=None):
        self.name = name if name is not None else unique_name(self.default_name)
        self.activation = activations.get(activation, owner=self.name)
        self.built = False
        self.input_shape = None
        self.output_shape = None
        self.dtype = None
        self.params = []
        self.grads = []
        self.inbound = None  # symbolic input tensors, once the layer is part of a graph

    # ---- configuration ---------------------------------------------------------------------
    def get_config(self):
        """Constructor arguments (JSON-able) that rebuild this layer."""
        return {"name": self.name}

    def __repr__(self):
        return f"<{type(self).__name__} '{self.name}'>"

    # ---- shapes and building ---------------------------------------------------------------
    def build(self, input_shape):
        """Create the parameters for inputs of ``input_shape`` (no batch axis); set output_shape.
        Subclasses with weights or padding compute them first, then call this."""
        self.input_shape = tuple(input_shape)
        self.output_shape = tuple(self.compute_output_shape(self.input_shape))
        self.dtype = np.dtype(self.params[0].dtype if self.params else backend.floatx())
        self.built = True

    def compute_output_shape(self, input_shape):
        """The output shape (no batch axis) for ``input_shape``; no side effect."""
        return tuple(input_shape)

    def _check_input(self, x):
        """Build on first use; refuse inputs whose shape differs from the built one; cast integer
        (or float16) input to the layer's float type, as Keras does. Return the input to use."""
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            raise TypeError(f"layer '{self.name}' expects an array, got {type(x).__name__}")
        if x.ndim < 1:
            raise ValueError(f"layer '{self.name}' expects a batch (N, ...), got a scalar")
        if not self.built:
            self.build(tuple(x.shape[1:]))
        elif tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"layer '{self.name}' ({type(self).__name__}) expects input of shape "
                f"{fmt_shape(self.input_shape)}, got {fmt_shape(x.shape[1:])}")
        return as_float(x, self.dtype)

    # ---- parameters ------------------------------------------------------------------------
    def get_weights(self):
        """The parameters as NumPy arrays, in Keras order (kernel, bias)."""
        return [backend.to_numpy(p).copy() for p in self.params]

    def set_weights(self, weights):
        """Copy ``weights`` (Keras layout and order) into the parameters, in place."""
        weights = list(weights)
        if len(weights) != len(self.params):
            raise ValueError(f"layer '{self.name}' has {len(self.params)} weight arrays, "
                             f"got {len(weights)}")
        for p, w in zip(self.params, weights):
            w = np.asarray(backend.to_numpy(w))
            if w.shape != p.shape:
                raise ValueError(f"layer '{self.name}': weight of shape {tuple(p.shape)} cannot be "
                                 f"set from an array of shape {w.shape}")
            p[...] = backend.xp().asarray(w, dtype=p.dtype)

    def _create_kernel_and_bias(self, shape, fan_in, fan_out):
        """Keras's defaults: a Glorot-uniform kernel of ``shape`` and, with ``use_bias``, a zero
        bias with one entry per output unit (the last axis); ``params`` in Keras's order."""
        self.kernel = glorot_uniform(shape, fan_in, fan_out)
        self.params = [self.kernel]
        if self.use_bias:
            self.bias = zeros((shape[-1],))
            self.params.append(self.bias)
        self.grads = [None] * len(self.params)

    def count_params(self):
        return int(sum(int(np.prod(p.shape)) for p in self.params))

    # ---- the two passes --------------------------------------------------------------------
    def forward(self, x, training=False, activate=True):
        """The output ``y = f(z)`` for the batch ``x`` (or ``z`` itself with ``activate=False``);
        keeps what ``backward`` needs."""
        x = self._check_input(x)
        self._activated = activate
        self._fused = activate and self.activation in self.fused_activations
        if self._fused:
            self._y = self._forward(x, training, fused=self.activation)
        else:
            z = self._forward(x, training)
            self._y = activations.forward(self.activation, z) if activate else z
        return self._y

    def backward(self, grad_output, need_input_grad=True):
        """dL/d(input) given ``grad_output`` = dL/d(output) of the last ``forward``; fills ``grads``.

        With ``need_input_grad=False`` a layer with weights fills ``self.grads`` only and returns
        ``None``: the model asks this of the first weighted layers, whose input is the data, and
        so saves their largest product (``dz @ W.T``, or the col2im of a convolution).
        """
        if self._fused:
            return self._backward(grad_output, need_input_grad, fused_output=self._y)
        dz = (activations.backward(self.activation, grad_output, self._y) if self._activated
              else grad_output)
        return self._backward(dz, need_input_grad)

    def _forward(self, x, training, fused=None):
        raise NotImplementedError

    def _backward(self, dz, need_input_grad=True, fused_output=None):
        raise NotImplementedError

    # ---- functional API --------------------------------------------------------------------
    def __call__(self, inputs, training=False):
        symbolic = inputs if isinstance(inputs, list) else [inputs]
        if all(isinstance(t, Tensor) for t in symbolic):
            if self.inbound is not None:
                raise ValueError(f"layer '{self.name}' is already used in a graph; tinynet does "
                                 "not share layers: create a new layer")
            shapes = [t.shape[1:] for t in symbolic]
            self.build(shapes if isinstance(inputs, list) else shapes[0])
            self.inbound = symbolic
            return Tensor(self.output_shape, self)
        if any(isinstance(t, Tensor) for t in symbolic):
            raise TypeError(f"layer '{self.name}': cannot mix symbolic tensors and arrays")
        return self.forward(inputs, training=training)


class InputLayer(Layer):
    """The entry of a functional model: holds the input shape, passes data through unchanged."""

    default_name = "input_layer"

    def __init__(self, shape, name=None):
        super().__init__(name=name)
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        if not shape or any((not isinstance(d, (int, np.integer))) or d <= 0 for d in shape):
            raise ValueError(f"Input shape must be a tuple of positive integers (without the "
                             f"batch axis), got {shape}")
        self.build(tuple(int(d) for d in shape))

    def get_config(self):
        return {"name": self.name, "shape": list(self.input_shape)}

    def _forward(self, x, training, fused=None):
        return x

    def _backward(self, dz, need_input_grad=True, fused_output=None):
        return dz


def Input(shape, name=None):
    """Start a functional graph: ``x = Input((28, 28, 1))`` (shape without the batch axis)."""
    layer = InputLayer(shape, name=name)
    layer.inbound = []
    return Tensor(layer.output_shape, layer)
