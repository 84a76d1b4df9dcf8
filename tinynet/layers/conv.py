"""Conv2D: a convolution is one matrix product over unfolded patches (im2col).

Shapes: input ``x`` (N, H, W, C); kernel ``W`` (KH, KW, C, F); bias ``b`` (F,); output (N, OH, OW, F)
with ``OH, OW`` from :func:`tinynet.shapes.padding_amounts`. With ``X = im2col(x)``, the matrix
of shape ``(N*OH*OW, KH*KW*C)`` whose row ``(n, oh, ow)`` is the patch under output pixel
``(oh, ow)``, and the kernel viewed as ``(KH*KW*C, F)``:

    forward     z = X W + b                              reshaped to (N, OH, OW, F)
    backward    dL/dW = X^T dz      (KH*KW*C, F), reshaped to the kernel's (KH, KW, C, F)
                dL/db = sum of dz over N, OH, OW   (F,)
                dL/dx = col2im(dz W^T)             (N, H, W, C): each patch's gradient added
                                                   back to the pixels it came from

where ``dz`` = dL/dz, the gradient of the output (N, OH, OW, F) viewed as (N*OH*OW, F) (through
the activation first: ``dz = dy ⊙ [y > 0]`` for a ReLU).

The work is done by the backend's ``conv2d_forward`` / ``conv2d_backward`` kernels: im2col and one
matrix product in the NumPy reference (``kernels/numpy_ref.py``, the code of the formulas above),
a compiled direct convolution with the numba backend, the same numbers either way. A Conv2D read
only by a MaxPooling2D runs with it as one step (:class:`tinynet.layers.pooling.PooledConv`).
"""
import numpy as np

from .. import backend
from ..shapes import fmt_shape, padding_amounts, pair
from .base import Layer, as_float, checked_gradient


def check_padding(padding, owner):
    if padding not in ("valid", "same"):
        raise ValueError(f"layer '{owner}': padding must be 'valid' or 'same', got {padding!r}")
    return padding


def window_geometry(layer, input_shape, window, what):
    """``(oh, ow), (top, bottom, left, right)`` of a window layer (Conv2D, MaxPooling2D) on images
    of ``input_shape`` (H, W, C), or an error naming the layer when the window does not fit."""
    if len(input_shape) != 3:
        raise ValueError(f"{type(layer).__name__} layer '{layer.name}' expects images (None, "
                         f"height, width, channels), got {fmt_shape(input_shape)}")
    h, w, _ = input_shape
    (kh, kw), (sh, sw) = window, layer.strides
    if layer.padding == "valid" and (kh > h or kw > w):
        raise ValueError(f"{type(layer).__name__} layer '{layer.name}': {what} {window} is larger "
                         f"than its input {fmt_shape(input_shape)} with padding='valid'; use "
                         f"padding='same' or a smaller {what}")
    oh, top, bottom = padding_amounts(h, kh, sh, layer.padding)
    ow, left, right = padding_amounts(w, kw, sw, layer.padding)
    return (oh, ow), (top, bottom, left, right)


class Conv2D(Layer):
    """2-D convolution (cross-correlation, like every framework) over ``(N, H, W, C)`` images.

    ``F = filters`` kernels of ``kernel_size`` ``(KH, KW)`` slide over the image ``strides``
    pixels at a time; each output pixel is one patch times the kernel, plus the bias:

        z[n, i, j, f] = b[f] + Σ_{u, v, c} x_pad[n, i·SH + u, j·SW + v, c] · W[u, v, c, f]

    then ``y = activation(z)``. Shapes: ``x`` (N, H, W, C) -> ``y`` (N, OH, OW, F); kernel
    (KH, KW, C, F), bias (F,). ``padding="valid"``: whole windows only, ``OH = (H - KH) // SH +
    1``; ``"same"``: zeros around the image, ``OH = ceil(H / SH)`` (28x28 stays 28x28 at stride 1).
    The backward pass and the im2col matrix product are in this module's docstring.
    """

    default_name = "conv2d"
    makes_weights = True
    fused_activations = ("relu",)  # the kernels apply max(z, 0) in the same pass

    # Keras's order of arguments: one given by position means what it means in Keras
    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", *, name=None,
                 **keras_options):
        super().__init__(name=name, activation=activation, data_format=data_format,
                         dilation_rate=dilation_rate, groups=groups, **keras_options)
        if isinstance(filters, (bool, np.bool_)) or not isinstance(filters, (int, np.integer)) \
                or filters <= 0:
            raise ValueError(f"Conv2D '{self.name}': filters must be a positive integer, got {filters!r}")
        self.filters = int(filters)
        self.kernel_size = pair(kernel_size, "kernel_size", f"layer '{self.name}'")
        self.strides = pair(strides, "strides", f"layer '{self.name}'")
        self.padding = check_padding(padding.lower() if isinstance(padding, str) else padding,
                                     self.name)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = self._check_initializers(f"Conv2D '{self.name}'",
                                                           kernel_initializer, bias_initializer)

    def get_config(self):
        return {"name": self.name, "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding,
                "activation": self.activation_name, "use_bias": self.use_bias,
                "kernel_initializer": self.kernel_initializer}

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        _, self.pads = window_geometry(self, input_shape, self.kernel_size, "kernel")
        kh, kw = self.kernel_size
        c = input_shape[2]
        self._create_kernel_and_bias((kh, kw, c, self.filters), kh * kw * c, kh * kw * self.filters)
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        (oh, ow), _ = window_geometry(self, tuple(input_shape), self.kernel_size, "kernel")
        return (oh, ow, self.filters)

    def _forward(self, x, training, fused=None):
        # z = im2col(x) W + b, reshaped to (N, OH, OW, F): the NumPy reference writes exactly
        # that (kernels/numpy_ref.py, conv2d_forward); numba computes the same sums in place
        bias = self.bias if self.use_bias else None
        self._kernels = backend.kernels()  # the backward pass reads what these kernels saved
        z, self._saved = self._kernels.conv2d_forward(x, self.kernel, bias, self.strides,
                                                          self.pads, relu=fused == "relu")
        return z

    def _backward(self, dz, need_input_grad=True, fused_output=None):
        # dW = im2col(x)^T dz, db = the sum of dz over N, OH, OW, dx = col2im(dz W^T)
        dx, dkernel, dbias = self._kernels.conv2d_backward(
            dz, self._saved, self.kernel, self.strides, self.pads, relu_output=fused_output,
            need_dx=need_input_grad)
        return self._gradients(dx, dkernel, dbias)

    def _gradients(self, dx, dkernel, dbias):
        self.grads[0] = dkernel
        if self.use_bias:
            self.grads[1] = dbias
        return dx

    # ---- run with the max pooling that reads it (see pooling.PooledConv) ---------------------
    def forward_pooled(self, x, pool, training=False, add=None, residual=None):
        """``pool(self(x))`` in one step, for a MaxPooling2D ``pool`` whose windows tile this
        layer's output: ``y[n, i, j, f] = max over window (i, j) of a(z[n, ., ., f])``, ``a`` this
        layer's activation (ReLU or none). At stride 1 the numba kernel computes it without
        writing ``z`` out:
        it keeps the pooled output and each window's winner. The gradient reaches ``z`` at the
        winners only (times ``[a(z) > 0]`` for the ReLU; the rest of ``dz`` is 0), and the numba
        backward pass of a stride-1 convolution computes from the winners alone.

        With the ``Add`` layer ``add`` of a residual block between the two (``residual``: its
        other input, of this layer's output shape), the step is ``pool(add([self(x),
        residual]))``: the windows' candidates are ``a(z) + residual``, and the backward also
        gives dL/d(residual), the pooling's gradient (an addition passes it on to both terms)."""
        x = self._check_input(x)
        if not pool.built:
            pool.build(self.output_shape)
        for layer in (self, pool) + ((add,) if add is not None else ()):
            # none of the layers' own passes ran: their backward would refuse
            layer._y = layer._pass = None
        if add is not None:
            residual = as_float(residual, self.dtype)
            if tuple(residual.shape) != (x.shape[0],) + tuple(self.output_shape):
                raise ValueError(f"layer '{add.name}' adds the output of '{self.name}', "
                                 f"{fmt_shape(self.output_shape)}, and an input of shape "
                                 f"{fmt_shape(residual.shape[1:])} for a batch of "
                                 f"{residual.shape[0]} (against {x.shape[0]}): they must match")
        bias = self.bias if self.use_bias else None
        self._pool, self._residual = pool.pool_size, add is not None
        self._kernels = backend.kernels()
        relu = self.activation_name == "relu"
        if add is None:
            y, self._saved = self._kernels.conv2d_maxpool_forward(
                x, self.kernel, bias, self.strides, self.pads, self._pool, relu=relu)
        else:
            y, self._saved = self._kernels.conv2d_add_maxpool_forward(
                x, self.kernel, bias, self.strides, self.pads, self._pool, residual, relu=relu)
        self._pooled = y
        return y

    def backward_pooled(self, dy, need_input_grad=True):
        """dL/d(input) from ``dy`` = dL/d(the pooled output of :meth:`forward_pooled`); with a
        residual, ``[dL/d(input), dL/d(residual)]``."""
        dy = checked_gradient(dy, self._pooled, f"layer '{self.name}' with its max pooling")
        args = (dy, self._saved, self.kernel, self.strides, self.pads, self._pool)
        relu = self.activation_name == "relu"
        if not self._residual:
            return self._gradients(*self._kernels.conv2d_maxpool_backward(
                *args, relu=relu, need_dx=need_input_grad))
        dx, dkernel, dbias, dresidual = self._kernels.conv2d_add_maxpool_backward(
            *args, relu=relu, need_dx=need_input_grad)
        return [self._gradients(dx, dkernel, dbias), dresidual]
