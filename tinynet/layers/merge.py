"""Add (and Keras's functional shorthand ``add``): the merge of a residual block.

    forward     y = x_1 + x_2 + ... + x_k          every x_i and y of shape (N, ...)
    backward    dL/dx_i = dL/dy                    for every i (the sum passes the gradient on)
"""
from ..shapes import fmt_shape
from .base import Layer, as_float


class Add(Layer):
    """Element-wise sum of several inputs of the same shape (takes and returns lists)."""

    default_name = "add"

    def __init__(self, name=None, **keras_options):
        super().__init__(name=name, **keras_options)

    def build(self, input_shape):
        if not isinstance(input_shape, list) or len(input_shape) < 2:
            raise ValueError(f"Add layer '{self.name}' needs a list of at least two inputs")
        shapes = [tuple(s) for s in input_shape]
        if any(s != shapes[0] for s in shapes):
            raise ValueError(f"Add layer '{self.name}' needs inputs of one shape, got "
                             + ", ".join(fmt_shape(s) for s in shapes))
        super().build(shapes[0])
        self.input_shape = shapes

    def _check_input(self, xs):
        if not isinstance(xs, (list, tuple)):
            raise TypeError(f"Add layer '{self.name}' takes a list of arrays")
        if not self.built:
            self.build([tuple(x.shape[1:]) for x in xs])
        shapes = [tuple(x.shape[1:]) for x in xs]
        if len(xs) != len(self.input_shape) or any(s != self.output_shape for s in shapes):
            raise ValueError(f"Add layer '{self.name}' expects {len(self.input_shape)} inputs of "
                             f"shape {fmt_shape(self.output_shape)}, got "
                             + ", ".join(fmt_shape(s) for s in shapes))
        if len({x.shape[0] for x in xs}) != 1:
            raise ValueError(f"Add layer '{self.name}': inputs have different batch sizes "
                             f"{[x.shape[0] for x in xs]}")
        return [as_float(x, self.dtype) for x in xs]

    def _forward(self, xs, training, fused=None):
        y = xs[0]
        for x in xs[1:]:
            y = y + x
        return y

    def _backward(self, dz, need_input_grad=True, fused_output=None):
        return [dz for _ in self.input_shape]


def add(inputs, **kwargs):
    """``Add(**kwargs)(inputs)``: Keras's shorthand for the merge, as in
    ``y = layers.add([x, shortcut])``."""
    return Add(**kwargs)(inputs)
