"""Dense, Dropout, Flatten and Activation: each forward and backward next to its formulas."""
import math

import numpy as np

from .. import backend
from ..shapes import fmt_shape
from .base import Layer


class Dense(Layer):
    """Fully connected layer: ``z = x W + b`` then ``y = activation(z)``.

    Shapes (Keras's layouts): ``x`` (N, in), kernel ``W`` (in, units), bias ``b`` (units,),
    ``z`` and ``y`` (N, units). Backward, with ``dz = dL/dz`` of shape (N, units)::

        dL/dW = x^T dz   (in, units)      dL/db = sum_n dz   (units,)      dL/dx = dz W^T   (N, in)
    """

    default_name = "dense"
    makes_weights = True

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", *, name=None, **keras_options):
        super().__init__(name=name, activation=activation, **keras_options)
        if isinstance(units, (bool, np.bool_)) or not isinstance(units, (int, np.integer)) \
                or units <= 0:  # (a bool is an int to Python: Dense(True) built one unit)
            raise ValueError(f"Dense '{self.name}': units must be a positive integer, got {units!r}")
        self.units = int(units)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = self._check_initializers(f"Dense '{self.name}'",
                                                           kernel_initializer, bias_initializer)

    def get_config(self):
        return {"name": self.name, "units": self.units, "activation": self.activation_name,
                "use_bias": self.use_bias,
                "kernel_initializer": self.kernel_initializer}

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 1:
            hint = (" Put a Flatten() layer before it. (Keras would apply this Dense to the last "
                    "axis alone, the same weights at every position: tinynet does not implement "
                    "that; Flatten connects every value, a model with more weights.)"
                    if len(input_shape) > 1 else "")
            raise ValueError(f"Dense layer '{self.name}' expects input of shape (None, features), "
                             f"got {fmt_shape(input_shape)}.{hint}")
        fan_in = input_shape[0]
        self._create_kernel_and_bias((fan_in, self.units), fan_in, self.units)
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return (self.units,)

    def _forward(self, x, training, fused=None):
        self._x = x
        z = backend.matmul(x, self.kernel)  # x W
        if self.use_bias:
            z += self.bias
        return z

    def _backward(self, dz, need_input_grad=True, fused_output=None):
        self.grads[0] = backend.matmul(self._x.T, dz)
        if self.use_bias:
            self.grads[1] = dz.sum(axis=0)
        return backend.matmul(dz, self.kernel.T) if need_input_grad else None


class Dropout(Layer):
    """Inverted dropout: in training each input is kept with probability ``1 - rate`` and scaled
    by ``1 / (1 - rate)`` (so the expected output equals the input); at inference the identity.

    Forward ``y = x * m`` with ``m = [r >= t] / (1 - rate)``, ``r`` 32 random bits drawn for
    each value (``y`` has the shape of ``x``) and ``t = rate * 2**32`` rounded: ``P(r < t) =
    rate`` to within 2**-33 (for a rate above ``1 - 2**-33``, one value in 2**32 is kept).
    A float64 uniform for each value instead, ``u >= rate``, takes twice the random draws: 86
    against 43 us for a (128, 256) batch.
    Backward ``dx = dy * m``. The random bits are drawn on the host from tinynet's seeded
    generator, so every backend drops the same units; the mask is computed where ``x`` lives.
    """

    default_name = "dropout"

    def __init__(self, rate, noise_shape=None, seed=None, *, name=None, **keras_options):
        super().__init__(name=name, noise_shape=noise_shape, **keras_options)
        if seed is not None:
            raise ValueError(f"Dropout '{self.name}': a seed per layer is not implemented in "
                             "tinynet; seed every mask at once with tinynet.utils.set_random_seed "
                             "or fit(..., seed=...)")
        if not isinstance(rate, (int, float, np.integer, np.floating)) or not (0.0 <= float(rate) < 1.0):
            raise ValueError(f"Dropout '{self.name}': rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)

    def get_config(self):
        return {"name": self.name, "rate": self.rate}

    def _forward(self, x, training, fused=None):
        if not training or self.rate == 0.0:
            self._mask = None
            return x
        threshold = min(round(self.rate * 2**32), 2**32 - 1)  # P(r < threshold) = rate
        keep = backend.get_array_module(x).asarray(random_bits(x.shape)) >= threshold
        self._mask = keep.astype(x.dtype) / x.dtype.type(1.0 - self.rate)
        return x * self._mask

    def _backward(self, dz, need_input_grad=True, fused_output=None):
        return dz if self._mask is None else dz * self._mask


_draw_hook = None  # set by tinynet.replay around the steps it runs (see random_bits)


def random_bits(shape):
    """Uniform random uint32 numbers of ``shape`` from tinynet's generator: each 64-bit draw of
    its bit generator gives two. (:mod:`tinynet.replay` notes the shapes a step draws; while it
    records a step as a CUDA graph, this is the device buffer it refills before each replay.)"""
    if _draw_hook is not None:
        return _draw_hook(shape)
    return host_random_bits(shape)


def host_random_bits(shape):
    """:func:`random_bits`, always from tinynet's generator on the host."""
    size = math.prod(shape)
    draws = backend.rng().bit_generator.random_raw((size + 1) // 2)
    return draws.view(np.uint32)[:size].reshape(shape)


class Flatten(Layer):
    """Reshape each example to one vector: ``(N, H, W, C) -> (N, H*W*C)`` (row-major, like Keras)."""

    default_name = "flatten"

    def __init__(self, data_format=None, *, name=None, **keras_options):
        super().__init__(name=name, data_format=data_format, **keras_options)

    def compute_output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def _forward(self, x, training, fused=None):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def _backward(self, dz, need_input_grad=True, fused_output=None):
        return dz.reshape(self._shape)


class Activation(Layer):
    """An activation as a layer of its own: ``Activation("softmax")``.

    ``y = f(x)`` element-wise (softmax: over the last axis), the output of the input's shape;
    backward ``dL/dx = f'(x) ⊙ dL/dy`` written from ``y`` (see :mod:`tinynet.activations`), and
    the Jacobian product ``y ⊙ (dy - Σ_j dy_j y_j)`` for the softmax. No weights.
    """

    default_name = "activation"

    def __init__(self, activation, name=None, **keras_options):
        super().__init__(name=name, activation=activation, **keras_options)

    def get_config(self):
        return {"name": self.name, "activation": self.activation_name}

    def _forward(self, x, training, fused=None):
        return x  # z = x; the base class applies y = f(z), and the gradient through f backward

    def _backward(self, dz, need_input_grad=True, fused_output=None):
        return dz


class Softmax(Activation):
    """``softmax`` over the last axis as a layer (Keras's ``layers.Softmax()``):
    ``y_i = e^x_i / Σ_j e^x_j``, the input's shape; backward
    ``dL/dx = y ⊙ (dy - Σ_j dy_j y_j)``."""

    default_name = "softmax"

    def __init__(self, axis=-1, name=None, **keras_options):
        if axis not in (-1,):
            raise ValueError(f"Softmax: axis={axis!r} is not implemented in tinynet; the softmax "
                             "runs over the last axis (axis=-1)")
        super().__init__("softmax", name=name, **keras_options)

    def get_config(self):
        return {"name": self.name}


class ReLU(Activation):
    """``max(x, 0)`` as a layer (Keras's ``layers.ReLU()`` with its default arguments): the
    input's shape; backward ``dL/dx = dL/dy ⊙ [y > 0]``."""

    default_name = "re_lu"

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, name=None,
                 **keras_options):
        if max_value is not None or negative_slope != 0.0 or threshold != 0.0:
            raise ValueError("ReLU: max_value, negative_slope and threshold are not implemented "
                             "in tinynet; ReLU() is max(x, 0)")
        super().__init__("relu", name=name, **keras_options)

    def get_config(self):
        return {"name": self.name}


class Reshape(Layer):
    """Give each example a new shape with the same number of values, row-major like NumPy:
    ``Reshape((28, 28, 1))`` turns ``(N, 784)`` into ``(N, 28, 28, 1)``; one ``-1`` is inferred.
    Backward reshapes the gradient back: ``dx = dy.reshape(x.shape)``."""

    default_name = "reshape"

    def __init__(self, target_shape, name=None, **keras_options):
        super().__init__(name=name, **keras_options)
        target = (target_shape,) if isinstance(target_shape, (int, np.integer)) else tuple(target_shape)
        if not target or sum(d == -1 for d in target) > 1 or any(
                isinstance(d, (bool, np.bool_)) or not isinstance(d, (int, np.integer))
                or (d <= 0 and d != -1) for d in target):
            raise ValueError(f"Reshape '{self.name}': target_shape must be positive integers "
                             f"(at most one -1), without the batch axis, got {target_shape!r}")
        self.target_shape = tuple(int(d) for d in target)

    def get_config(self):
        return {"name": self.name, "target_shape": list(self.target_shape)}

    def compute_output_shape(self, input_shape):
        size = int(np.prod(input_shape))
        known = int(np.prod([d for d in self.target_shape if d != -1]))
        shape = tuple(size // known if d == -1 else d for d in self.target_shape)
        if int(np.prod(shape)) != size:
            raise ValueError(f"Reshape '{self.name}': cannot reshape {fmt_shape(input_shape)} "
                             f"({size} values per example) into {fmt_shape(self.target_shape)}")
        return shape

    def _forward(self, x, training, fused=None):
        return x.reshape((x.shape[0],) + self.output_shape)

    def _backward(self, dz, need_input_grad=True, fused_output=None):
        return dz.reshape((dz.shape[0],) + self.input_shape)


class Rescaling(Layer):
    """``y = x * scale + offset`` (Keras's ``layers.Rescaling(1 / 255)``: pixels to [0, 1] inside
    the model), the input's shape; backward ``dx = dy * scale``."""

    default_name = "rescaling"

    def __init__(self, scale, offset=0.0, name=None, **keras_options):
        super().__init__(name=name, **keras_options)
        if not isinstance(scale, (int, float, np.integer, np.floating)) or \
                not isinstance(offset, (int, float, np.integer, np.floating)):
            raise ValueError(f"Rescaling '{self.name}': scale and offset must be numbers, got "
                             f"{scale!r} and {offset!r}")
        self.scale, self.offset = float(scale), float(offset)

    def get_config(self):
        return {"name": self.name, "scale": self.scale, "offset": self.offset}

    def _forward(self, x, training, fused=None):
        return x * x.dtype.type(self.scale) + x.dtype.type(self.offset)

    def _backward(self, dz, need_input_grad=True, fused_output=None):
        return dz * dz.dtype.type(self.scale)
