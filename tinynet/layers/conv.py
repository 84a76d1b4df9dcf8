"""Conv2D by im2col: a convolution is one matrix product over unfolded patches."""
import numpy as np

from .. import backend
from .base import Layer, fmt_shape, glorot_uniform, zeros


def pair(value, what, owner):
    """Keras accepts ``3`` or ``(3, 3)``: return a pair of positive ints or raise naming the layer."""
    v = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(v) != 2 or not all(isinstance(a, (int, np.integer)) and a > 0 for a in v):
        raise ValueError(f"layer '{owner}': {what} must be a positive int or a pair of them, got {value!r}")
    return int(v[0]), int(v[1])


def padding_amounts(size, window, stride, padding):
    """Output size and (before, after) padding along one axis, as Keras/TensorFlow compute them.

    ``"valid"``: no padding, ``out = floor((size - window) / stride) + 1``.
    ``"same"``: ``out = ceil(size / stride)`` and the padding needed for it,
    ``max((out - 1) * stride + window - size, 0)``, is split with the extra row at the end.
    """
    if padding == "valid":
        return (size - window) // stride + 1, 0, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return out, total // 2, total - total // 2


def check_padding(padding, owner):
    if padding not in ("valid", "same"):
        raise ValueError(f"layer '{owner}': padding must be 'valid' or 'same', got {padding!r}")
    return padding


class Conv2D(Layer):
    """2-D convolution (cross-correlation, like every framework) over ``(N, H, W, C)`` images.

    With ``X = im2col(x)`` of shape ``(N*OH*OW, KH*KW*C)`` and the kernel ``W`` of shape
    ``(KH, KW, C, F)`` viewed as ``(KH*KW*C, F)``:

        z = X W + b                                  (reshaped to (N, OH, OW, F))
        dL/dW = X^T dz      dL/db = sum dz           dL/dx = col2im(dz W^T)
    """

    default_name = "conv2d"

    def __init__(self, filters, kernel_size, strides=1, padding="valid", activation=None,
                 use_bias=True, name=None):
        super().__init__(name=name, activation=activation)
        if not isinstance(filters, (int, np.integer)) or filters <= 0:
            raise ValueError(f"Conv2D '{self.name}': filters must be a positive integer, got {filters!r}")
        self.filters = int(filters)
        self.kernel_size = pair(kernel_size, "kernel_size", self.name)
        self.strides = pair(strides, "strides", self.name)
        self.padding = check_padding(padding, self.name)
        self.use_bias = bool(use_bias)

    def get_config(self):
        return {"name": self.name, "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding,
                "activation": self.activation, "use_bias": self.use_bias}

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 3:
            raise ValueError(f"Conv2D layer '{self.name}' expects images (None, height, width, "
                             f"channels), got {fmt_shape(input_shape)}")
        kh, kw = self.kernel_size
        c = input_shape[2]
        self.kernel = glorot_uniform((kh, kw, c, self.filters), kh * kw * c, kh * kw * self.filters)
        self.params = [self.kernel]
        if self.use_bias:
            self.bias = zeros((self.filters,))
            self.params.append(self.bias)
        self.grads = [None] * len(self.params)
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        h, w, _ = input_shape
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        if self.padding == "valid" and (kh > h or kw > w):
            raise ValueError(f"Conv2D layer '{self.name}': kernel {self.kernel_size} is larger than "
                             f"its input {fmt_shape(input_shape)} with padding='valid'; use "
                             "padding='same' or a smaller kernel")
        oh, top, bottom = padding_amounts(h, kh, sh, self.padding)
        ow, left, right = padding_amounts(w, kw, sw, self.padding)
        self.pads = (top, bottom, left, right)
        return (oh, ow, self.filters)

    def _forward(self, x, training):
        K = backend.kernels()
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        self._x_shape = x.shape
        self._cols = K.im2col(x, kh, kw, sh, sw, self.pads)
        z = self._cols @ self.kernel.reshape(-1, self.filters)
        if self.use_bias:
            z += self.bias
        return z.reshape((x.shape[0],) + self.output_shape)

    def _backward(self, dz):
        K = backend.kernels()
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        dz = dz.reshape(-1, self.filters)
        self.grads[0] = (self._cols.T @ dz).reshape(self.kernel.shape)
        if self.use_bias:
            self.grads[1] = dz.sum(axis=0)
        dcols = dz @ self.kernel.reshape(-1, self.filters).T
        return K.col2im(dcols, self._x_shape, kh, kw, sh, sw, self.pads)
