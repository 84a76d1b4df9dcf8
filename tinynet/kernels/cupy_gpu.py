"""CuPy versions of the kernels: one CUDA thread per output element, no atomics.

Each kernel is the reference's loop turned inside out: instead of looping over the window and
moving whole arrays (several kernel launches), one thread computes one element of the result by
looping over the window itself. ``col2im`` and ``maxpool_backward`` *gather* (each input pixel
sums the patches that cover it), so they are deterministic. Functions without a CUDA version here
are the reference ones, which run on CuPy arrays as they are.
"""
import cupy as cp
import numpy as np

from ..shapes import output_size
from . import numpy_ref

_DECODE_NHWC = """
    long long t = i;
    const int c = t % C; t /= C;
    const int w = t % W; t /= W;
    const int h = t % H; const long long n = t / H;
"""

_im2col = cp.ElementwiseKernel(
    "raw T x, int32 H, int32 W, int32 C, int32 OH, int32 OW, int32 KH, int32 KW, "
    "int32 SH, int32 SW, int32 PT, int32 PL",
    "T col",
    """
    long long t = i;
    const int c = t % C; t /= C;
    const int kw = t % KW; t /= KW;
    const int kh = t % KH; t /= KH;
    const int ow = t % OW; t /= OW;
    const int oh = t % OH; const long long n = t / OH;
    const int h = oh * SH + kh - PT, w = ow * SW + kw - PL;
    col = (h >= 0 && h < H && w >= 0 && w < W) ? x[((n * H + h) * W + w) * C + c] : (T)0;
    """,
    "tinynet_im2col")

_col2im = cp.ElementwiseKernel(
    "raw T cols, int32 H, int32 W, int32 C, int32 OH, int32 OW, int32 KH, int32 KW, "
    "int32 SH, int32 SW, int32 PT, int32 PL",
    "T dx",
    _DECODE_NHWC + """
    T acc = 0;
    for (int kh = 0; kh < KH; ++kh) {
        const int a = h + PT - kh;
        if (a < 0 || a % SH != 0 || a / SH >= OH) continue;
        const int oh = a / SH;
        for (int kw = 0; kw < KW; ++kw) {
            const int b = w + PL - kw;
            if (b < 0 || b % SW != 0 || b / SW >= OW) continue;
            const int ow = b / SW;
            acc += cols[(((n * OH + oh) * OW + ow) * KH * KW + kh * KW + kw) * C + c];
        }
    }
    dx = acc;
    """,
    "tinynet_col2im")

_pool_forward = cp.ElementwiseKernel(
    "raw T x, int32 H, int32 W, int32 C, int32 OH, int32 OW, int32 PH, int32 PW, "
    "int32 SH, int32 SW, int32 PT, int32 PL",
    "T out, int32 arg",
    """
    long long t = i;
    const int c = t % C; t /= C;
    const int ow = t % OW; t /= OW;
    const int oh = t % OH; const long long n = t / OH;
    T best = log((T)0); int where = -1;  // -inf; padding counts as -inf: it never wins
    for (int ph = 0; ph < PH; ++ph) {
        const int h = oh * SH + ph - PT;
        if (h < 0 || h >= H) continue;
        for (int pw = 0; pw < PW; ++pw) {
            const int w = ow * SW + pw - PL;
            if (w < 0 || w >= W) continue;
            const T v = x[((n * H + h) * W + w) * C + c];
            if (where < 0 || v > best) { best = v; where = ph * PW + pw; }  // first max wins ties
        }
    }
    out = best; arg = where < 0 ? 0 : where;  // a window of padding only: -inf at index 0
    """,
    "tinynet_maxpool_forward")

_pool_backward = cp.ElementwiseKernel(
    "raw T dout, raw int32 arg, int32 H, int32 W, int32 C, int32 OH, int32 OW, int32 PH, "
    "int32 PW, int32 SH, int32 SW, int32 PT, int32 PL",
    "T dx",
    _DECODE_NHWC + """
    T acc = 0;
    for (int ph = 0; ph < PH; ++ph) {
        const int a = h + PT - ph;
        if (a < 0 || a % SH != 0 || a / SH >= OH) continue;
        const int oh = a / SH;
        for (int pw = 0; pw < PW; ++pw) {
            const int b = w + PL - pw;
            if (b < 0 || b % SW != 0 || b / SW >= OW) continue;
            const long long o = ((n * OH + oh) * OW + b / SW) * C + c;
            if (arg[o] == ph * PW + pw) acc += dout[o];
        }
    }
    dx = acc;
    """,
    "tinynet_maxpool_backward")


def _ints(*values):
    return [np.int32(v) for v in values]


def im2col(x, kh, kw, sh, sw, pads):
    x = cp.ascontiguousarray(x)
    n, h, w, c = x.shape
    oh = output_size(h, kh, sh, pads[0], pads[1])
    ow = output_size(w, kw, sw, pads[2], pads[3])
    cols = cp.empty((n * oh * ow, kh * kw * c), dtype=x.dtype)
    _im2col(x, *_ints(h, w, c, oh, ow, kh, kw, sh, sw, pads[0], pads[2]), cols)
    return cols


def col2im(cols, x_shape, kh, kw, sh, sw, pads):
    n, h, w, c = x_shape
    oh = output_size(h, kh, sh, pads[0], pads[1])
    ow = output_size(w, kw, sw, pads[2], pads[3])
    dx = cp.empty((n, h, w, c), dtype=cols.dtype)
    _col2im(cp.ascontiguousarray(cols), *_ints(h, w, c, oh, ow, kh, kw, sh, sw, pads[0], pads[2]),
            dx)
    return dx


def conv2d_forward(x, kernel, bias, strides, pads, relu=False):
    """The reference convolution (im2col and one cuBLAS product) with the CUDA im2col."""
    return numpy_ref.conv2d_forward(x, kernel, bias, strides, pads, relu=relu, unfold=im2col)


def conv2d_backward(dout, saved, kernel, strides, pads, relu_output=None, need_dx=True):
    """The reference gradients with the CUDA im2col/col2im."""
    return numpy_ref.conv2d_backward(dout, saved, kernel, strides, pads, relu_output=relu_output,
                                     need_dx=need_dx, unfold=im2col, fold=col2im)


def maxpool_forward(x, ph, pw, sh, sw, pads):
    x = cp.ascontiguousarray(x)
    n, h, w, c = x.shape
    oh = output_size(h, ph, sh, pads[0], pads[1])
    ow = output_size(w, pw, sw, pads[2], pads[3])
    out = cp.empty((n, oh, ow, c), dtype=x.dtype)
    arg = cp.empty((n, oh, ow, c), dtype=cp.int32)
    _pool_forward(x, *_ints(h, w, c, oh, ow, ph, pw, sh, sw, pads[0], pads[2]), out, arg)
    return out, arg


def maxpool_backward(dout, arg, x_shape, ph, pw, sh, sw, pads):
    n, h, w, c = x_shape
    oh, ow = dout.shape[1], dout.shape[2]
    dx = cp.empty((n, h, w, c), dtype=dout.dtype)
    _pool_backward(cp.ascontiguousarray(dout), cp.ascontiguousarray(arg),
                   *_ints(h, w, c, oh, ow, ph, pw, sh, sw, pads[0], pads[2]), dx)
    return dx


# The operations of optimizers.RMSprop.update in its order, each rounded on its own (no fused
# multiply-adds: --fmad=false), with 1 - rho rounded once from Python's, as the reference's and
# Keras's: the same numbers (not yet run on a GPU).
_rmsprop = cp.ElementwiseKernel(
    "T g, T lr, T rho, T one_minus_rho, T eps, T mu, bool centered",
    "T theta, T s, T mean_grad, T moment",
    """
    s = rho * s + one_minus_rho * (g * g);                // (1)
    T denominator = s + eps;
    if (centered) {
        mean_grad = rho * mean_grad + one_minus_rho * g;
        denominator = s - mean_grad * mean_grad + eps;
    }
    T step = lr * g / sqrt(denominator);                  // (2)
    if (mu > 0) { moment = mu * moment + step; step = moment; }
    theta -= step;
    """,
    "tinynet_rmsprop", options=("--fmad=false",))


def conv2d_maxpool_forward(x, kernel, bias, strides, pads, pool_size, relu=False):
    """Same as :func:`numpy_ref.conv2d_maxpool_forward`: this module's convolution and pooling
    one after the other."""
    return numpy_ref.conv2d_maxpool_forward(x, kernel, bias, strides, pads, pool_size, relu,
                                            conv=conv2d_forward, pool=maxpool_forward)


def conv2d_maxpool_backward(dout, saved, kernel, strides, pads, pool_size, relu=False,
                            need_dx=True):
    """Same as :func:`numpy_ref.conv2d_maxpool_backward`, with this module's kernels."""
    return numpy_ref.conv2d_maxpool_backward(dout, saved, kernel, strides, pads, pool_size, relu,
                                             need_dx, conv_backward=conv2d_backward,
                                             pool_backward=maxpool_backward)


def conv2d_add_maxpool_forward(x, kernel, bias, strides, pads, pool_size, residual, relu=False):
    """Same as :func:`numpy_ref.conv2d_add_maxpool_forward`, with this module's kernels."""
    return numpy_ref.conv2d_add_maxpool_forward(x, kernel, bias, strides, pads, pool_size,
                                                residual, relu, conv=conv2d_forward,
                                                pool=maxpool_forward)


def conv2d_add_maxpool_backward(dout, saved, kernel, strides, pads, pool_size, relu=False,
                                need_dx=True):
    """Same as :func:`numpy_ref.conv2d_add_maxpool_backward`, with this module's kernels."""
    return numpy_ref.conv2d_add_maxpool_backward(dout, saved, kernel, strides, pads, pool_size,
                                                 relu, need_dx, conv_backward=conv2d_backward,
                                                 pool_backward=maxpool_backward)


def rmsprop_update(theta, g, s, mean_grad, moment, lr, rho, eps, momentum, centered, keep=None):
    """``optimizers.RMSprop.update`` as one CUDA kernel (instead of about ten array operations).
    ``mean_grad`` and ``moment`` are ``None`` when ``centered`` / ``momentum`` are off; ``keep``
    as in ``numba_cpu.rmsprop_update`` (copied here before the kernel runs)."""
    arrays = {"weights": theta, "s": s, "mean_grad": mean_grad, "moment": moment}
    for name, buffer in (keep or {}).items():
        if arrays.get(name) is None:
            raise ValueError(f"rmsprop_update: cannot keep {name!r} (the update has no such array)")
        buffer[...] = arrays[name]
    mean_grad = cp.zeros_like(theta) if mean_grad is None else mean_grad  # unused by the kernel
    moment = cp.zeros_like(theta) if moment is None else moment
    t = theta.dtype.type
    _rmsprop(g, t(lr), t(rho), t(1 - rho), t(eps), t(momentum), bool(centered), theta, s,
             mean_grad, moment)
