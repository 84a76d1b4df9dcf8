"""The arguments every backend's kernels check, in one place: shapes, windows, strides and pads.

The layers give the kernels consistent arguments; someone calling a kernel by hand
(``tinynet.backend.kernels().conv2d_backward(...)``) may not, and array code would then broadcast
or index its way to a wrong answer instead of failing (a ReLU output of one image applied to a
batch, a pool of 0 that copies its input, a kernel larger than the image giving an empty output).
Each function raises ``ValueError`` naming the kernel (``what``), what it was given and what it
expects; the NumPy reference and the compiled kernels call the same ones.
"""
from ..shapes import output_size


def ints(*values):
    """``values`` as Python ints (NumPy integers included); a float, a bool or a string is
    refused rather than truncated."""
    out = []
    for v in values:
        if isinstance(v, bool) or not hasattr(v, "__index__"):
            raise TypeError(f"expected whole numbers (window sizes, strides, pads), got {v!r}")
        out.append(int(v))
    return tuple(out)


def _sequence(value):
    """A tuple, a list or a 1-D array (not a string, not a number)."""
    return not isinstance(value, str) and hasattr(value, "__len__") and \
        getattr(value, "ndim", 1) == 1


def pair(value, what, name):
    """``(a, b)`` of ints from a pair given as a tuple, a list or an array of two (strides, a
    pool size)."""
    if not _sequence(value) or len(value) != 2:
        raise ValueError(f"{what}: {name} must be a pair (rows, columns), got {value!r}")
    return ints(*value)


def check_images(x, what):
    if x.ndim != 4:
        raise ValueError(f"{what}: expected images (N, H, W, C), got shape {tuple(x.shape)}")


def check_window(kh, kw, sh, sw, pads, what):
    """A window and its strides of at least 1, and 4 non-negative pads; returns the pads as a
    tuple of ints."""
    if not _sequence(pads) or len(pads) != 4:
        raise ValueError(f"{what}: pads must be 4 non-negative ints (top, bottom, left, right), "
                         f"got {pads!r}")
    pads = ints(*pads)
    if min(kh, kw, sh, sw) < 1:
        raise ValueError(f"{what}: window {(kh, kw)} and strides {(sh, sw)} must be positive")
    if min(pads) < 0:
        raise ValueError(f"{what}: pads must be 4 non-negative ints (top, bottom, left, right), "
                         f"got {pads}")
    return pads


def out_hw(h, w, kh, kw, sh, sw, pads, what):
    """The output's height and width; refuses a window that does not fit in the padded input
    (the output would be empty)."""
    oh = output_size(h, kh, sh, pads[0], pads[1])
    ow = output_size(w, kw, sw, pads[2], pads[3])
    if oh < 1 or ow < 1:
        raise ValueError(f"{what}: window {(kh, kw)} does not fit in the padded input "
                         f"{(h + pads[0] + pads[1], w + pads[2] + pads[3])}")
    return oh, ow


def check_conv(x, kernel, bias, strides, pads, what):
    """Images, a kernel ``(KH, KW, C, F)`` of their channels, a bias of ``F`` (or None), strides
    and pads: returns ``((sh, sw), pads)`` as ints."""
    check_images(x, what)
    if kernel.ndim != 4 or kernel.shape[2] != x.shape[3]:
        raise ValueError(f"{what}: kernel of shape {tuple(kernel.shape)} does not fit images "
                         f"{tuple(x.shape)} (expected (KH, KW, {x.shape[3]}, F))")
    if bias is not None and tuple(bias.shape) != (kernel.shape[3],):
        raise ValueError(f"{what}: bias of shape {tuple(bias.shape)} does not fit "
                         f"{kernel.shape[3]} filters")
    sh, sw = pair(strides, what, "strides")
    kh, kw = kernel.shape[:2]
    pads = check_window(kh, kw, sh, sw, pads, what)
    return (sh, sw), pads


def check_dout(dout, expected, what):
    """The gradient of an output has that output's shape."""
    if tuple(dout.shape) != tuple(expected):
        raise ValueError(f"{what}: gradient of shape {tuple(dout.shape)} does not match the "
                         f"output {tuple(expected)}")


def check_conv_backward(dout, x, kernel, strides, pads, relu_output, what):
    """The arguments of a convolution's backward pass: those of its forward pass, a gradient of
    its output's shape and, when given, the ReLU's output of that shape too. Returns ``((sh,
    sw), pads, (oh, ow))``."""
    strides, pads = check_conv(x, kernel, None, strides, pads, what)
    kh, kw, _, f = kernel.shape
    n, h, w, _ = x.shape
    oh, ow = out_hw(h, w, kh, kw, *strides, pads, what)
    check_dout(dout, (n, oh, ow, f), what)
    if relu_output is not None and tuple(relu_output.shape) != tuple(dout.shape):
        raise ValueError(f"{what}: relu output {tuple(relu_output.shape)} does not match the "
                         f"gradient {tuple(dout.shape)}")
    return strides, pads, (oh, ow)


def pooled_hw(oh, ow, pool_size, what):
    """A pool that tiles a convolution's ``(oh, ow)`` output: ``(ph, pw, oh // ph, ow // pw)``."""
    ph, pw = pair(pool_size, what, "pool_size")
    if min(ph, pw) < 1 or ph > oh or pw > ow:
        raise ValueError(f"{what}: pool {(ph, pw)} does not fit the convolution's output "
                         f"{(oh, ow)}")
    return ph, pw, oh // ph, ow // pw


def check_residual(residual, shape, what):
    """Refuse a residual that is not of the convolution's output ``shape``: the sum would
    broadcast it (a (N, H, W, 1) residual added to every filter) instead of failing."""
    if tuple(residual.shape) != tuple(shape):
        raise ValueError(f"{what}: the residual {tuple(residual.shape)} is added to the "
                         f"convolution's output, so it must have its shape {tuple(shape)}")


def _images_of(x_shape, kh, kw, sh, sw, pads, what):
    """The images' shape ``x_shape`` of a backward pass that has none to read it from, with its
    window: ``((n, h, w, c), pads, (oh, ow))`` as ints."""
    if len(x_shape) != 4:
        raise ValueError(f"{what}: x_shape must be the images' shape (N, H, W, C), got "
                         f"{tuple(x_shape)}")
    n, h, w, c = ints(*x_shape)
    pads = check_window(kh, kw, sh, sw, pads, what)
    return (n, h, w, c), pads, out_hw(h, w, kh, kw, sh, sw, pads, what)


def check_pool_backward(dout, arg, x_shape, ph, pw, sh, sw, pads, what):
    """A pooling's backward: the gradient and the winners both of the pooled shape of
    ``x_shape``. Returns ``(x_shape, pads)`` as ints."""
    (n, h, w, c), pads, (oh, ow) = _images_of(x_shape, ph, pw, sh, sw, pads, what)
    if tuple(dout.shape) != (n, oh, ow, c) or tuple(arg.shape) != (n, oh, ow, c):
        raise ValueError(f"{what}: gradient {tuple(dout.shape)} and argmax {tuple(arg.shape)} "
                         f"must both be {(n, oh, ow, c)} for input {(n, h, w, c)}")
    return (n, h, w, c), pads


def check_col2im(cols, x_shape, kh, kw, sh, sw, pads, what):
    """im2col's adjoint: ``cols`` of ``(N*OH*OW) x (KH*KW*C)`` values for images ``x_shape``.
    Returns ``(x_shape, pads, (oh, ow))`` as ints."""
    (n, h, w, c), pads, (oh, ow) = _images_of(x_shape, kh, kw, sh, sw, pads, what)
    if cols.size != n * oh * ow * kh * kw * c:
        raise ValueError(f"{what}: cols of shape {tuple(cols.shape)} do not match images "
                         f"{(n, h, w, c)} with window {(kh, kw)}")
    return (n, h, w, c), pads, (oh, ow)
