"""The merges of several inputs: Add (a residual block's sum) and Concatenate (side by side), with
Keras's functional shorthands ``add`` and ``concatenate``.

    Add          forward   y = x_1 + x_2 + ... + x_k          every x_i and y of shape (N, ...)
                 backward  dL/dx_i = dL/dy                    (the sum passes the gradient on)
    Concatenate  forward   y = [x_1 | x_2 | ... | x_k]        along one axis, the others equal
                 backward  dL/dx_i = the slice of dL/dy that x_i filled
"""
from ..kernels.numpy_ref import get_array_module
from ..shapes import fmt_shape
from .base import Layer, as_float


class _Merge(Layer):
    """What a merge of several inputs checks: a list of at least two, of the shapes it was built
    for (``input_shape``: their list), with one batch size."""

    def _check_shapes(self, input_shape):
        if not isinstance(input_shape, list) or len(input_shape) < 2:
            raise ValueError(f"{type(self).__name__} layer '{self.name}' needs a list of at least "
                             "two inputs")
        return [tuple(s) for s in input_shape]

    def _check_input(self, xs):
        kind = type(self).__name__
        if not isinstance(xs, (list, tuple)):
            raise TypeError(f"{kind} layer '{self.name}' takes a list of arrays")
        if not self.built:
            self.build([tuple(x.shape[1:]) for x in xs])
        shapes = [tuple(x.shape[1:]) for x in xs]
        if len(xs) != len(self.input_shape) or any(
                s != tuple(e) for s, e in zip(shapes, self.input_shape)):
            raise ValueError(f"{kind} layer '{self.name}' expects {len(self.input_shape)} inputs "
                             "of shapes " + ", ".join(fmt_shape(s) for s in self.input_shape)
                             + ", got " + ", ".join(fmt_shape(s) for s in shapes))
        if len({x.shape[0] for x in xs}) != 1:
            raise ValueError(f"{kind} layer '{self.name}': inputs have different batch sizes "
                             f"{[x.shape[0] for x in xs]}")
        return [as_float(x, self.dtype) for x in xs]


class Add(_Merge):
    """Element-wise sum of several inputs of the same shape (takes and returns lists)."""

    default_name = "add"

    def __init__(self, name=None, **keras_options):
        super().__init__(name=name, **keras_options)

    def build(self, input_shape):
        shapes = self._check_shapes(input_shape)
        if any(s != shapes[0] for s in shapes):
            raise ValueError(f"Add layer '{self.name}' needs inputs of one shape, got "
                             + ", ".join(fmt_shape(s) for s in shapes))
        super().build(shapes[0])
        self.input_shape = shapes

    def _forward(self, xs, training, fused=None):
        y = xs[0]
        for x in xs[1:]:
            y = y + x
        return y

    def _backward(self, dz, need_input_grad=True, fused_output=None):
        return [dz for _ in self.input_shape]


class Concatenate(_Merge):
    """Several inputs side by side along ``axis``, counted as in Keras with the batch axis first
    (-1, the default: the last, features or channels; 0, the batch, is refused); every other
    axis the same size in all of them. A (N, 7, 7, 16) and a (N, 7, 7, 8) input give
    (N, 7, 7, 24): the first 16 channels are the first input's."""

    default_name = "concatenate"

    def __init__(self, axis=-1, name=None, **keras_options):
        super().__init__(name=name, **keras_options)
        if isinstance(axis, bool) or not isinstance(axis, int) or axis == 0:
            raise ValueError(f"Concatenate layer '{self.name}': axis must be an axis of the "
                             "examples (-1, the last, or 1, 2, ... after the batch axis), got "
                             f"{axis!r}")
        self.axis = axis

    def get_config(self):
        return {"name": self.name, "axis": self.axis}

    def build(self, input_shape):
        shapes = self._check_shapes(input_shape)
        rank = len(shapes[0])
        at = self.axis - 1 if self.axis > 0 else rank + self.axis  # in one example's shape
        if any(len(s) != rank for s in shapes) or not 0 <= at < rank:
            raise ValueError(f"Concatenate layer '{self.name}': axis {self.axis} for inputs "
                             + ", ".join(fmt_shape(s) for s in shapes))
        if any(s[:at] + s[at + 1:] != shapes[0][:at] + shapes[0][at + 1:] for s in shapes):
            raise ValueError(f"Concatenate layer '{self.name}' joins along axis {self.axis}: its "
                             "inputs' other axes must be equal, got "
                             + ", ".join(fmt_shape(s) for s in shapes))
        self._at = at
        out = list(shapes[0])
        out[at] = sum(s[at] for s in shapes)
        super().build(tuple(out))
        self.input_shape = shapes

    def _forward(self, xs, training, fused=None):
        return get_array_module(xs[0]).concatenate(xs, axis=self._at + 1)

    def _backward(self, dz, need_input_grad=True, fused_output=None):
        xp, grads, start = get_array_module(dz), [], 0
        for shape in self.input_shape:
            width = shape[self._at]
            piece = (slice(None),) * (self._at + 1) + (slice(start, start + width),)
            grads.append(xp.ascontiguousarray(dz[piece]))
            start += width
        return grads


def add(inputs, **kwargs):
    """``Add(**kwargs)(inputs)``: Keras's shorthand for the merge, as in
    ``y = layers.add([x, shortcut])``."""
    return Add(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    """``Concatenate(axis, **kwargs)(inputs)``: Keras's shorthand, as in
    ``y = layers.concatenate([a, b])``."""
    return Concatenate(axis=axis, **kwargs)(inputs)
