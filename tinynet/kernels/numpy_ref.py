"""Plain array versions of the hot loops: the readable reference every backend is checked against.

Written with array operations only, so the same code also runs on CuPy arrays (the CuPy backend
reuses what is fast enough on a GPU). Each loop runs over the *kernel window* (a handful of
positions), never over images or pixels.
"""
import importlib

import numpy as np

from . import checks


def get_array_module(*arrays):
    """The array library of ``arrays``: ``cupy`` when any of them is a CuPy array, else ``numpy``.

    The one place in tinynet that picks it (``tinynet.backend`` re-exports it), so that one
    function body serves NumPy and CuPy arrays alike (as Chainer's and CuPy's functions of the
    same name do). It lives here, with the reference kernels, so that no kernel imports the backend.
    """
    for a in arrays:
        if type(a).__module__.startswith("cupy"):
            return importlib.import_module("cupy")
    return np


def pad_images(x, pads, value=0.0):
    """Pad the two spatial axes of ``x`` (N, H, W, C) by ``pads = (top, bottom, left, right)``."""
    top, bottom, left, right = pads
    if not any(pads):
        return x
    xp = get_array_module(x)
    return xp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def im2col(x, kh, kw, sh, sw, pads):
    """Unfold every (kh, kw) patch of ``x`` into one row.

    ``x`` is ``(N, H, W, C)``; the result is ``(N*OH*OW, kh*kw*C)`` where row ``(n, oh, ow)``
    holds ``x_padded[n, oh*sh + i, ow*sw + j, c]`` at column ``(i*kw + j)*C + c``. A convolution
    is then one matrix product with the kernel reshaped to ``(kh*kw*C, F)``.
    """
    xp = get_array_module(x)
    kh, kw, sh, sw = checks.ints(kh, kw, sh, sw)
    checks.check_images(x, "im2col")
    pads = checks.check_window(kh, kw, sh, sw, pads, "im2col")
    n, h, w, c = x.shape
    oh, ow = checks.out_hw(h, w, kh, kw, sh, sw, pads, "im2col")
    xpad = pad_images(x, pads)
    cols = xp.empty((n, oh, ow, kh, kw, c), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i, j, :] = xpad[:, i:i + sh * oh:sh, j:j + sw * ow:sw, :]
    return cols.reshape(n * oh * ow, kh * kw * c)


def col2im(cols, x_shape, kh, kw, sh, sw, pads):
    """Adjoint of :func:`im2col`: add every row's patch back to the pixels it came from.

    Where patches overlap (stride smaller than the kernel) the contributions are summed, which is
    exactly the gradient of ``im2col`` with respect to ``x``.
    """
    xp = get_array_module(cols)
    kh, kw, sh, sw = checks.ints(kh, kw, sh, sw)
    (n, h, w, c), pads, (oh, ow) = checks.check_col2im(cols, x_shape, kh, kw, sh, sw, pads,
                                                       "col2im")
    top, bottom, left, right = pads
    cols = cols.reshape(n, oh, ow, kh, kw, c)
    dx = xp.zeros((n, h + top + bottom, w + left + right, c), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            dx[:, i:i + sh * oh:sh, j:j + sw * ow:sw, :] += cols[:, :, :, i, j, :]
    return dx[:, top:top + h, left:left + w, :]


def maxpool_forward(x, ph, pw, sh, sw, pads):
    """Max over each (ph, pw) window; also return which window element won.

    Returns ``(out, arg)``: ``out`` is ``(N, OH, OW, C)``; ``arg`` (int32, same shape) is the
    row-major index ``i*pw + j`` of the *first* maximum of each window, so that on ties the whole
    gradient goes to one element, as in TensorFlow. Padding (``padding="same"``) uses ``-inf``.
    """
    xp = get_array_module(x)
    ph, pw, sh, sw = checks.ints(ph, pw, sh, sw)
    checks.check_images(x, "maxpool_forward")
    pads = checks.check_window(ph, pw, sh, sw, pads, "maxpool_forward")
    n, h, w, c = x.shape
    oh, ow = checks.out_hw(h, w, ph, pw, sh, sw, pads, "maxpool_forward")
    xpad = pad_images(x, pads, value=-np.inf)
    out = xpad[:, 0:sh * oh:sh, 0:sw * ow:sw, :].copy()
    arg = xp.zeros(out.shape, dtype=np.int32)
    for i in range(ph):
        for j in range(pw):
            if i == 0 and j == 0:
                continue
            window = xpad[:, i:i + sh * oh:sh, j:j + sw * ow:sw, :]
            better = window > out  # strictly greater: the first maximum keeps its place
            out = xp.where(better, window, out)
            arg = xp.where(better, np.int32(i * pw + j), arg)
    return out, arg


def maxpool_backward(dout, arg, x_shape, ph, pw, sh, sw, pads):
    """Route each output gradient to the element that won its window (``arg``); sum overlaps."""
    xp = get_array_module(dout)
    ph, pw, sh, sw = checks.ints(ph, pw, sh, sw)
    (n, h, w, c), pads = checks.check_pool_backward(dout, arg, x_shape, ph, pw, sh, sw, pads,
                                                    "maxpool_backward")
    top, bottom, left, right = pads
    oh, ow = dout.shape[1], dout.shape[2]
    dx = xp.zeros((n, h + top + bottom, w + left + right, c), dtype=dout.dtype)
    for i in range(ph):
        for j in range(pw):
            dx[:, i:i + sh * oh:sh, j:j + sw * ow:sw, :] += xp.where(arg == i * pw + j, dout, 0)
    return dx[:, top:top + h, left:left + w, :]


def matmul(a, b):
    """The matrix product ``a @ b`` of two 2-D arrays, ``(M, K) @ (K, N) -> (M, N)``: NumPy's (BLAS
    on the CPU). Every product of a training step goes through a backend's ``matmul``: on a GPU
    it is tinynet's own CUDA kernel (``kernels/cupy_gpu.py``), which a CUDA graph can hold."""
    return a @ b


def conv2d_forward(x, kernel, bias, strides, pads, relu=False, unfold=im2col, product=matmul):
    """Convolution of ``x`` (N, H, W, C) with ``kernel`` (KH, KW, C, F) by im2col and one product.

    ``z = im2col(x) W + b`` with ``W`` the kernel viewed as ``(KH*KW*C, F)``, reshaped to
    ``(N, OH, OW, F)``; with ``relu=True`` the result is ``max(z, 0)`` (the activation applied in
    the same pass). ``bias`` may be ``None``. Returns ``(out, saved)``: ``saved`` is what
    :func:`conv2d_backward` needs (here the input and its im2col matrix). ``unfold`` is the
    im2col to use and ``product`` the matrix product (the CuPy backend passes its CUDA ones).
    """
    xp = get_array_module(x)
    (sh, sw), pads = checks.check_conv(x, kernel, bias, strides, pads, "conv2d_forward")
    kh, kw, _, f = kernel.shape
    n, h, w, _ = x.shape
    oh, ow = checks.out_hw(h, w, kh, kw, sh, sw, pads, "conv2d_forward")
    cols = unfold(x, kh, kw, sh, sw, pads)
    z = product(cols, kernel.reshape(-1, f))
    if bias is not None:
        z += bias
    if relu:
        xp.maximum(z, 0, out=z)
    return z.reshape(n, oh, ow, f), (x, cols)


def conv2d_backward(dout, saved, kernel, strides, pads, relu_output=None, need_dx=True,
                    unfold=im2col, fold=col2im, product=matmul):
    """Gradients of :func:`conv2d_forward`: ``(dx, dkernel, dbias)``.

    With ``dz = dout`` (or ``dout * [y > 0]`` when ``relu_output=y`` was fused) viewed as
    ``(N*OH*OW, F)`` and ``X = im2col(x)``::

        dkernel = X^T dz      dbias = sum of dz over the rows      dx = col2im(dz W^T)

    ``dx`` is ``None`` when ``need_dx`` is false (the input of the first layer needs no gradient).
    """
    x, cols = saved
    (sh, sw), pads, _ = checks.check_conv_backward(dout, x, kernel, strides, pads, relu_output,
                                                   "conv2d_backward")
    kh, kw, _, f = kernel.shape
    if cols is None:
        cols = unfold(x, kh, kw, sh, sw, pads)
    if relu_output is not None:
        dout = dout * (relu_output > 0)
    dz = dout.reshape(-1, f)
    dkernel = product(cols.T, dz).reshape(kernel.shape)
    dbias = dz.sum(axis=0)
    dx = fold(product(dz, kernel.reshape(-1, f).T), x.shape, kh, kw, sh, sw, pads) \
        if need_dx else None
    return dx, dkernel, dbias


def conv2d_maxpool_forward(x, kernel, bias, strides, pads, pool_size, relu=False,
                           conv=conv2d_forward, pool=maxpool_forward):
    """A convolution (with its ReLU when ``relu``) followed by max pooling over ``pool_size``
    windows that tile its output (strides equal to the pool, no padding): ``(pooled, saved)``.

    The model runs a Conv2D whose only reader is such a MaxPooling2D as this one step. Here it is
    just the two kernels one after the other (``conv`` and ``pool``, which a backend may pass);
    a compiled version computes it in one pass, without writing the convolution's output, which
    is ``ph*pw`` times larger than the pooled one.
    """
    what = "conv2d_maxpool_forward"  # (its checks under its own name, then the shared steps)
    strides, pads = checks.check_conv(x, kernel, bias, strides, pads, what)
    checks.pooled_hw(*checks.out_hw(x.shape[1], x.shape[2], *kernel.shape[:2], *strides, pads,
                                    what), pool_size, what)
    return conv2d_add_maxpool_forward(x, kernel, bias, strides, pads, pool_size, None, relu,
                                      conv, pool)


def conv2d_maxpool_backward(dout, saved, kernel, strides, pads, pool_size, relu=False,
                            need_dx=True, conv_backward=conv2d_backward,
                            pool_backward=maxpool_backward):
    """Gradients of :func:`conv2d_maxpool_forward`: ``(dx, dkernel, dbias)``: the pooling's
    backward (each gradient to its window's winner), then the convolution's."""
    checks.pooled_hw(*saved[1].shape[1:3], pool_size, "conv2d_maxpool_backward")
    return conv2d_add_maxpool_backward(dout, saved, kernel, strides, pads, pool_size, relu,
                                       need_dx, conv_backward, pool_backward)[:3]


def conv2d_add_maxpool_forward(x, kernel, bias, strides, pads, pool_size, residual, relu=False,
                               conv=conv2d_forward, pool=maxpool_forward):
    """The end of a residual block as one step: ``pooled = maxpool(a(conv(x)) + residual)``,
    ``a`` the ReLU when ``relu``, ``residual`` of the convolution's output shape (the skip
    connection, taken in the convolution's float type), the pooling as in
    :func:`conv2d_maxpool_forward` (``residual=None``: that function, no addition). Returns
    ``(pooled, saved)``.

    The model runs a Conv2D read only by an ``Add`` of two inputs, itself read only by such a
    MaxPooling2D, as this one step; here it is the three operations one after the other."""
    y, conv_saved = conv(x, kernel, bias, strides, pads, relu=relu)
    if residual is not None:
        checks.check_residual(residual, y.shape, "conv2d_add_maxpool_forward")
        y_plus = y + residual.astype(y.dtype, copy=False)
    ph, pw, _, _ = checks.pooled_hw(y.shape[1], y.shape[2], pool_size,
                                    "conv2d_add_maxpool_forward")
    out, arg = pool(y if residual is None else y_plus, ph, pw, ph, pw, (0, 0, 0, 0))
    return out, (conv_saved, y, arg)


def conv2d_add_maxpool_backward(dout, saved, kernel, strides, pads, pool_size, relu=False,
                                need_dx=True, conv_backward=conv2d_backward,
                                pool_backward=maxpool_backward):
    """Gradients of :func:`conv2d_add_maxpool_forward`: ``(dx, dkernel, dbias, dresidual)``.
    The pooling's backward gives ``ds`` = dL/d(the sum), each gradient at its window's winner;
    an addition passes its gradient to both terms, so ``dresidual = ds``, and the convolution's
    backward runs on ``ds`` (through the ReLU: ``ds * [y > 0]``)."""
    conv_saved, y, arg = saved
    ph, pw, _, _ = checks.pooled_hw(y.shape[1], y.shape[2], pool_size,
                                    "conv2d_add_maxpool_backward")
    ds = pool_backward(dout, arg, y.shape, ph, pw, ph, pw, (0, 0, 0, 0))
    dx, dkernel, dbias = conv_backward(ds, conv_saved, kernel, strides, pads,
                                       relu_output=y if relu else None, need_dx=need_dx)
    return dx, dkernel, dbias, ds


def all_finite(arrays):
    """Whether every number in ``arrays`` is finite (no NaN, no infinity): the training step's
    guard, run on the updated weights and the optimizer's state after every batch."""
    return all(bool(np.isfinite(a).all()) for a in arrays)
