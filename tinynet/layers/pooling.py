"""MaxPooling2D: the largest value of each window.

Shapes: input ``x`` (N, H, W, C), output (N, OH, OW, C) with ``OH, OW`` from
:func:`tinynet.shapes.padding_amounts` (``"valid"`` keeps only whole windows: 7 -> 3 with pool 2).

    forward     y[n, i, j, c] = max over the window (i, j) of x[n, ., ., c]
    backward    dL/dx[n, h, w, c] = sum of dL/dy[n, i, j, c] over the windows (i, j) whose
                maximum is the pixel (h, w): each output gradient goes to its window's winner

On ties the first maximum in row-major order wins, as in TensorFlow; overlapping windows
(strides smaller than the pool) add their contributions. The backend's ``maxpool_forward`` /
``maxpool_backward`` kernels do the work (``kernels/numpy_ref.py`` is the readable version).
"""
from .. import backend
from ..shapes import pair
from .base import Layer
from .conv import check_padding, window_geometry


class MaxPooling2D(Layer):
    """Max over each ``pool_size`` window, moved by ``strides`` (default: the pool size)."""

    default_name = "max_pooling2d"

    def __init__(self, pool_size=2, strides=None, padding="valid", name=None):
        super().__init__(name=name)
        self.pool_size = pair(pool_size, "pool_size", f"layer '{self.name}'")
        self.strides = self.pool_size if strides is None else pair(strides, "strides",
                                                                     f"layer '{self.name}'")
        self.padding = check_padding(padding, self.name)

    def get_config(self):
        return {"name": self.name, "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": self.padding}

    def build(self, input_shape):
        _, self.pads = window_geometry(self, tuple(input_shape), self.pool_size, "pool")
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        (oh, ow), _ = window_geometry(self, tuple(input_shape), self.pool_size, "pool")
        return (oh, ow, input_shape[2])

    def _forward(self, x, training, fused=None):
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        self._x_shape = x.shape
        y, self._winner = backend.kernels().maxpool_forward(x, ph, pw, sh, sw, self.pads)
        return y

    def _backward(self, dz, need_input_grad=True, fused_output=None):
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        return backend.kernels().maxpool_backward(dz, self._winner, self._x_shape, ph, pw, sh, sw,
                                                  self.pads)
