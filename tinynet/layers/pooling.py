"""Pooling layers: MaxPooling2D (the largest value of each window), AveragePooling2D (their
mean) and GlobalAveragePooling2D (the mean of each channel over the whole image).

MaxPooling2D, the practical work's; shapes: input ``x`` (N, H, W, C), output (N, OH, OW, C) with ``OH, OW`` from
:func:`tinynet.shapes.padding_amounts` (``"valid"`` keeps only whole windows: 7 -> 3 with pool 2).

    forward     y[n, i, j, c] = max over the window (i, j) of x[n, ., ., c]
    backward    dL/dx[n, h, w, c] = sum of dL/dy[n, i, j, c] over the windows (i, j) whose
                maximum is the pixel (h, w): each output gradient goes to its window's winner

On ties the first maximum in row-major order wins, as in TensorFlow; overlapping windows
(strides smaller than the pool) add their contributions. The backend's ``maxpool_forward`` /
``maxpool_backward`` kernels do the work (``kernels/numpy_ref.py`` is the readable version).
:class:`PooledConv` is a Conv2D and the MaxPooling2D that alone reads it, run as one step (with
the Add of a residual block between them, where there is one).
"""
from .. import backend
from ..shapes import pair
from .base import Layer
from .conv import Conv2D, check_padding, window_geometry
from .merge import Add


class _Pooling2D(Layer):
    """What the window poolings share: ``pool_size``, ``strides`` (default: the pool size) and
    ``padding``, and the output size of :func:`tinynet.shapes.padding_amounts`."""

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, name=None,
                 **keras_options):  # Keras's order: data_format, then name
        super().__init__(name=name, data_format=data_format, **keras_options)
        self.pool_size = pair(pool_size, "pool_size", f"layer '{self.name}'")
        self.strides = self.pool_size if strides is None else pair(strides, "strides",
                                                                     f"layer '{self.name}'")
        self.padding = check_padding(padding.lower() if isinstance(padding, str) else padding,
                                     self.name)

    def get_config(self):
        return {"name": self.name, "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": self.padding}

    def build(self, input_shape):
        _, self.pads = window_geometry(self, tuple(input_shape), self.pool_size, "pool")
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        (oh, ow), _ = window_geometry(self, tuple(input_shape), self.pool_size, "pool")
        return (oh, ow, input_shape[2])


class MaxPooling2D(_Pooling2D):
    """Max over each ``pool_size`` window, moved by ``strides`` (default: the pool size).

    ``y[n, i, j, c]`` = the largest ``x[n, h, w, c]`` in window ``(i, j)``, channel by channel:
    (N, H, W, C) -> (N, OH, OW, C), ``OH = H // 2`` for the default 2x2 windows. Backward: each
    ``dL/dy[n, i, j, c]`` goes to its window's winner (the first maximum in row-major order, as
    in TensorFlow), the other pixels of the window get 0. No weights.
    """

    default_name = "max_pooling2d"

    def _forward(self, x, training, fused=None):
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        self._x_shape = x.shape
        y, self._winner = backend.kernels().maxpool_forward(x, ph, pw, sh, sw, self.pads)
        return y

    def _backward(self, dz, need_input_grad=True, fused_output=None):
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        return backend.kernels().maxpool_backward(dz, self._winner, self._x_shape, ph, pw, sh, sw,
                                                  self.pads)


class AveragePooling2D(_Pooling2D):
    """The mean of each ``pool_size`` window, moved by ``strides`` (default: the pool size).

    With ``padding="same"`` the windows at the border average only the pixels they cover (the
    padding is not counted), as in Keras. Backward: each output gradient is shared equally by the
    pixels of its window, ``dL/dx[p] = sum over windows w containing p of dL/dy[w] / count[w]``.
    Written with plain array operations (one loop over the window's offsets): it is not one of
    the practical work's layers, so it has no compiled kernel.
    """

    default_name = "average_pooling2d"

    def _windows(self):
        """The slices of the padded image that hold the (i, j)-th pixel of every window."""
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        oh, ow, _ = self.output_shape
        return [(slice(None), slice(i, i + sh * oh, sh), slice(j, j + sw * ow, sw))
                for i in range(ph) for j in range(pw)]

    def _pad(self, a):
        top, bottom, left, right = self.pads
        return backend.get_array_module(a).pad(a, ((0, 0), (top, bottom), (left, right), (0, 0)))

    def _forward(self, x, training, fused=None):
        xp = backend.get_array_module(x)
        covered = self._pad(xp.ones((1,) + x.shape[1:3] + (1,), dtype=x.dtype))  # 1 on real pixels
        xpad = self._pad(x)
        total = sum(xpad[s] for s in self._windows())
        self._count = sum(covered[s] for s in self._windows())  # pixels in each window, (1, OH, OW, 1)
        return total / self._count

    def _backward(self, dz, need_input_grad=True, fused_output=None):
        xp = backend.get_array_module(dz)
        h, w, c = self.input_shape
        top, bottom, left, right = self.pads
        dxpad = xp.zeros((dz.shape[0], h + top + bottom, w + left + right, c), dtype=dz.dtype)
        share = dz / self._count
        for s in self._windows():
            dxpad[s] += share
        return dxpad[:, top:top + h, left:left + w, :]


class GlobalAveragePooling2D(Layer):
    """The mean of each channel over the whole image: ``(N, H, W, C) -> (N, C)``,
    ``y[n, c] = mean over h, w of x[n, h, w, c]``; backward ``dx[n, h, w, c] = dy[n, c] / (H W)``."""

    default_name = "global_average_pooling2d"

    def __init__(self, data_format=None, keepdims=False, *, name=None, **keras_options):
        super().__init__(name=name, data_format=data_format, **keras_options)
        if keepdims:
            raise ValueError(f"GlobalAveragePooling2D '{self.name}': keepdims=True is not "
                             "implemented in tinynet; add Reshape((1, 1, C)) after it")

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"GlobalAveragePooling2D layer '{self.name}' expects images (None, "
                             f"height, width, channels), got {(None,) + tuple(input_shape)}")
        return (input_shape[2],)

    def _forward(self, x, training, fused=None):
        return x.mean(axis=(1, 2))

    def _backward(self, dz, need_input_grad=True, fused_output=None):
        h, w, _ = self.input_shape
        xp = backend.get_array_module(dz)
        return xp.broadcast_to((dz / dz.dtype.type(h * w))[:, None, None, :],
                               (dz.shape[0], h, w, dz.shape[1])).copy()


def _untouched(layer):
    """Whether no pass of ``layer`` was replaced on the object itself (a patched forward runs)."""
    own = vars(layer)
    return not ("forward" in own or "backward" in own or "_forward" in own or "_backward" in own)


class PooledConv:
    """A Conv2D and the MaxPooling2D that alone reads it, as one step of a model's graph; or, at
    the end of a residual block, a Conv2D read only by an ``Add`` of two inputs that only the
    MaxPooling2D reads (``add``): ``pool(conv(x) + r)``.

    To the graph it is one more layer: its inputs are the convolution's (and the Add's other
    input ``r``), its output (and name) the pooling's, its weights the convolution's. It runs
    :meth:`Conv2D.forward_pooled` and :meth:`Conv2D.backward_pooled`, which give the numbers of
    the layers run one after the other while the compiled kernel never writes the convolution's
    output (nor the sum), ``ph*pw`` times the pooled one (the graph builds the step where
    :meth:`fits` says it may).
    """

    def __init__(self, conv, pool, add=None):
        self.conv, self.pool, self.add = conv, pool, add
        self.inbound = list(conv.inbound)
        if add is not None:  # the skip connection: the Add's input that is not the convolution
            self.inbound += [t for t in add.inbound if t.layer is not conv]

    @staticmethod
    def fits(conv, pool, add=None):
        """Whether ``pool`` can run with ``conv`` (and ``add`` between them): exactly a Conv2D
        (not a subclass, nothing replaced on the object) with a ReLU or no activation, then
        exactly a MaxPooling2D whose windows tile the image (strides equal to the pool size,
        ``padding="valid"``), as the report's ``MaxPooling2D(2)``; ``add`` exactly an Add of the
        convolution and one other input. (That each layer has no other reader is the graph's to
        check.)"""
        return (type(conv) is Conv2D and type(pool) is MaxPooling2D  # (the cheap test first)
                and conv.activation_name in conv.fused_activations + ("linear",)
                and tuple(pool.strides) == tuple(pool.pool_size) and pool.padding == "valid"
                and (add is None or (type(add) is Add and add.activation_name == "linear"
                                     and len(add.inbound) == 2
                                     and [t.layer for t in add.inbound].count(conv) == 1))
                and all(_untouched(layer) for layer in (conv, pool, add) if layer is not None))

    @property
    def name(self):  # (the graph keeps a step from one pass to the next: a renamed pooling)
        return self.pool.name

    @property
    def params(self):
        return self.conv.params

    @property
    def input_shape(self):
        if self.add is None:
            return self.conv.input_shape
        return [self.conv.input_shape, self.conv.output_shape]

    def forward(self, x, training=False, activate=True):
        if self.add is None:
            return self.conv.forward_pooled(x, self.pool, training=training)
        x, residual = x
        return self.conv.forward_pooled(x, self.pool, training=training, add=self.add,
                                        residual=residual)

    def backward(self, grad_output, need_input_grad=True):
        return self.conv.backward_pooled(grad_output, need_input_grad=need_input_grad)
