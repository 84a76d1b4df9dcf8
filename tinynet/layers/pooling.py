"""MaxPooling2D."""
from .. import backend
from .base import Layer, fmt_shape
from .conv import check_padding, padding_amounts, pair


class MaxPooling2D(Layer):
    """Max over each ``pool_size`` window, moved by ``strides`` (default: the pool size).

    ``"valid"`` keeps only whole windows (floor: 7 -> 3 with pool 2). Backward sends each output
    gradient to the element that was the maximum of its window; on ties, to the first one in
    row-major order, as TensorFlow does. Overlapping windows add their contributions.
    """

    default_name = "max_pooling2d"

    def __init__(self, pool_size=2, strides=None, padding="valid", name=None):
        super().__init__(name=name)
        self.pool_size = pair(pool_size, "pool_size", self.name)
        self.strides = self.pool_size if strides is None else pair(strides, "strides", self.name)
        self.padding = check_padding(padding, self.name)

    def get_config(self):
        return {"name": self.name, "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": self.padding}

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"MaxPooling2D layer '{self.name}' expects images (None, height, "
                             f"width, channels), got {fmt_shape(input_shape)}")
        h, w, c = input_shape
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        if self.padding == "valid" and (ph > h or pw > w):
            raise ValueError(f"MaxPooling2D layer '{self.name}': pool {self.pool_size} is larger "
                             f"than its input {fmt_shape(input_shape)} with padding='valid'")
        oh, top, bottom = padding_amounts(h, ph, sh, self.padding)
        ow, left, right = padding_amounts(w, pw, sw, self.padding)
        self.pads = (top, bottom, left, right)
        return (oh, ow, c)

    def _forward(self, x, training):
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        self._x_shape = x.shape
        out, self._arg = backend.kernels().maxpool_forward(x, ph, pw, sh, sw, self.pads)
        return out

    def _backward(self, dz, need_input_grad=True):
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        return backend.kernels().maxpool_backward(dz, self._arg, self._x_shape, ph, pw, sh, sw,
                                                  self.pads)
