"""Conv2D by im2col: a convolution is one matrix product over unfolded patches.

The layer states the maths; the work is done by the backend's ``conv2d_forward`` /
``conv2d_backward`` kernels (``tinynet.kernels``): im2col and one matrix product in the NumPy
reference, a compiled direct convolution with the numba backend.
"""
import numpy as np

from .. import backend
from .base import Layer, fmt_shape


def pair(value, what, owner):
    """Keras accepts ``3`` or ``(3, 3)``: return a pair of positive ints or raise naming the layer."""
    message = f"layer '{owner}': {what} must be a positive int or a pair of them, got {value!r}"
    try:
        v = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    except TypeError:
        raise ValueError(message) from None
    if len(v) != 2 or not all(isinstance(a, (int, np.integer)) and a > 0 for a in v):
        raise ValueError(message)
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
        self._create_kernel_and_bias((kh, kw, c, self.filters), kh * kw * c, kh * kw * self.filters)
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

    def forward(self, x, training=False):
        """As :meth:`Layer.forward`; a ``relu`` activation is applied by the kernel in the same pass
        as the convolution: ``max(z, 0)``, the same numbers, one pass over memory fewer."""
        if self.activation != "relu":
            return super().forward(x, training)
        self._check_input(x)
        self._y = self._convolve(x, relu=True)
        return self._y

    def backward(self, grad_output, need_input_grad=True):
        """As :meth:`Layer.backward`; with ``relu`` the kernel takes ``dz = dy [y > 0]`` itself."""
        if self.activation != "relu":
            return super().backward(grad_output, need_input_grad)
        return self._gradients(grad_output, need_input_grad, relu_output=self._y)

    def _forward(self, x, training):
        return self._convolve(x, relu=False)

    def _backward(self, dz, need_input_grad=True):
        return self._gradients(dz, need_input_grad)

    def _convolve(self, x, relu):
        bias = self.bias if self.use_bias else None
        z, self._saved = backend.kernels().conv2d_forward(x, self.kernel, bias, self.strides,
                                                          self.pads, relu=relu)
        return z

    def _gradients(self, dy, need_input_grad, relu_output=None):
        dx, dkernel, dbias = backend.kernels().conv2d_backward(
            dy, self._saved, self.kernel, self.strides, self.pads, relu_output=relu_output,
            need_dx=need_input_grad)
        self.grads[0] = dkernel
        if self.use_bias:
            self.grads[1] = dbias
        return dx
