"""Dense, Dropout, Flatten and Activation: each forward and backward next to its formulas."""
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

    def __init__(self, units, activation=None, use_bias=True, name=None):
        super().__init__(name=name, activation=activation)
        if not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"Dense '{self.name}': units must be a positive integer, got {units!r}")
        self.units = int(units)
        self.use_bias = bool(use_bias)

    def get_config(self):
        return {"name": self.name, "units": self.units, "activation": self.activation,
                "use_bias": self.use_bias}

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 1:
            hint = " Put a Flatten() layer before it." if len(input_shape) > 1 else ""
            raise ValueError(f"Dense layer '{self.name}' expects input of shape (None, features), "
                             f"got {fmt_shape(input_shape)}.{hint}")
        fan_in = input_shape[0]
        self._create_kernel_and_bias((fan_in, self.units), fan_in, self.units)
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return (self.units,)

    def _forward(self, x, training, fused=None):
        self._x = x
        z = x @ self.kernel
        if self.use_bias:
            z += self.bias
        return z

    def _backward(self, dz, need_input_grad=True, fused_output=None):
        self.grads[0] = self._x.T @ dz
        if self.use_bias:
            self.grads[1] = dz.sum(axis=0)
        return dz @ self.kernel.T if need_input_grad else None


class Dropout(Layer):
    """Inverted dropout: in training each input is kept with probability ``1 - rate`` and scaled
    by ``1 / (1 - rate)`` (so the expected output equals the input); at inference the identity.

    Forward ``y = x * m`` with ``m = [u >= rate] / (1 - rate)``, ``u ~ U(0, 1)``; backward ``dx = dy * m``.
    The mask is drawn on the host from tinynet's seeded generator, so every backend drops the same units.
    """

    default_name = "dropout"

    def __init__(self, rate, name=None):
        super().__init__(name=name)
        if not isinstance(rate, (int, float, np.integer, np.floating)) or not (0.0 <= float(rate) < 1.0):
            raise ValueError(f"Dropout '{self.name}': rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)

    def get_config(self):
        return {"name": self.name, "rate": self.rate}

    def _forward(self, x, training, fused=None):
        if not training or self.rate == 0.0:
            self._mask = None
            return x
        keep = backend.rng().random(x.shape) >= self.rate
        mask = keep.astype(x.dtype) / x.dtype.type(1.0 - self.rate)
        self._mask = backend.xp().asarray(mask)
        return x * self._mask

    def _backward(self, dz, need_input_grad=True, fused_output=None):
        return dz if self._mask is None else dz * self._mask


class Flatten(Layer):
    """Reshape each example to one vector: ``(N, H, W, C) -> (N, H*W*C)`` (row-major, like Keras)."""

    default_name = "flatten"

    def compute_output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def _forward(self, x, training, fused=None):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def _backward(self, dz, need_input_grad=True, fused_output=None):
        return dz.reshape(self._shape)


class Activation(Layer):
    """An activation as a layer of its own: ``Activation("softmax")``."""

    default_name = "activation"

    def __init__(self, activation, name=None):
        super().__init__(name=name, activation=activation)

    def get_config(self):
        return {"name": self.name, "activation": self.activation}

    def _forward(self, x, training, fused=None):
        return x  # z = x; the base class applies y = f(z) and dz = f'(z) dy

    def _backward(self, dz, need_input_grad=True, fused_output=None):
        return dz
