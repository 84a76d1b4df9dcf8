"""numba versions of the kernels: the same functions, signatures and numbers as ``numpy_ref``.

Every public function here checks its arguments (shapes, dtypes, sizes) in Python, allocates the
outputs, and only then calls a compiled kernel, so a kernel never sees shapes it could index out
of bounds with. Compiled kernels are cached on disk (``cache=True``) and run over the batch in
parallel (``parallel=True``/``prange``) where that pays. Matrix products that are large enough
for BLAS (Dense layers, strided convolutions through im2col) stay in BLAS.

How the stride-1 convolution is computed (the case of every model of the practical work)
---------------------------------------------------------------------------------------------
The im2col matrices of these small convolutions are skinny ((25088, 225) @ (225, 9) for a batch of
128), so im2col + BLAS spends its time writing and reading the unfolded matrix (2-5 GFLOP/s
for the whole NumPy convolution here, against 50-110 GFLOP/s per core for the loops below).
Instead, a group of ``B`` images is copied into zero-padded *planes* (8 pixels x 8 channels at a
time, transposed in registers, where a row has them: :func:`_from_image`): pixel ``(h, w)`` of
channel ``c`` of image ``b`` sits at ``planes[c, b*HP*WP + (h + top)*WP + (w + left)]``. On this
flat grid a kernel tap ``(i, j)`` is a constant shift ``i*WP + j``, so for one output channel
``f``

    z[f, p] = b[f] + sum over taps (i, j, c) of  w[i, j, c, f] * planes[c, p + i*WP + j]

is a sum of shifted copies of contiguous vectors: SIMD code that keeps the sums of a few vectors
of positions for several filters in registers over all the taps, so that each value loaded
feeds several FMAs (:func:`_blocked_sums`). Output positions that fall in the padding columns
are computed and thrown away, and so are those of the padding rows between the images of a group
unless they hold a vector and each image's rows fill whole vectors (the sums then run image by
image and leave them out, see :func:`_conv_group`); neighbouring rows and images share their
zero padding (``WP = W + max(left, right)``, see :func:`_grid`), which keeps that waste small.
In the backward pass ``dL/dx`` is the same sum with the taps mirrored (a "full" convolution of
``dz`` with the kernel, input and output channels swapped: a full correlation with the kernel
turned by 180 degrees; for a one-channel input, whose one output plane would give each value
loaded one FMA, the rows of a pass share the input rows under them: :func:`_row_sums`), and
``dL/dw[i, j, c, f]`` is the dot product of ``planes[c]`` shifted by ``(i, j)`` with ``dz[f]`` on
the same grid (:func:`_tap_dots`). The sums are the
same as the reference's up to the order of the additions (float rounding only).

A stride-1 convolution read only by a max pooling with tiling windows (in the report's CNNs,
every convolution but the residual block's first) runs with it as one kernel,
:func:`conv2d_maxpool_forward`: each group's convolution is pooled while it is
still on its grid, in cache, so that only the pooled output and each window's winner reach memory
(a quarter of the convolution's output). 2x2 windows are compared 8 windows x 8 filters at a time
in vectors (:func:`_pooled_blocks`) where a row has at least 8 windows and there are at least 8
filters; one or two filters past a whole 8 are pooled one at a time (:func:`_pooled_column`).
At the end of a residual block, ``pool(relu(conv(x)) + r)``
(:func:`conv2d_add_maxpool_forward`), each group's ``relu(z)`` is written as NHWC images into a
buffer the size of the group, still in cache, and pooled from there with ``r`` added
(:func:`_add_maxpool`); each window keeps its winner's ``relu(z)``, the ReLU's backward.

Its backward pass works from the winners alone (:func:`_conv_pool_backward_s1`): the gradient
that max pooling passes back, ``dz``, is 0 everywhere but at one position of each window (and
only where the ReLU is on), so the dense loops above would multiply zeros three times in four.
A winner at ``(oh, ow)`` with gradient ``d`` adds ``d * x[oh + i, ow + j, c]`` to
``dL/dw[i, j, c, f]`` and ``d * w[i, j, c, f]`` to ``dL/dx[oh + i, ow + j, c]`` (in padded
coordinates): for each kernel row ``i``, ``KW*C`` floats that lie one after the other in an
NHWC image. Those rows are updated by hand-written vector code (LLVM IR)
(:func:`_vector_rows`), which keeps the running sums of ``dL/dw`` in registers over all of a
filter's winners; numba's own loops kept them in memory (a load and a store per FMA), which made
earlier versions of this idea slower than the dense loops.

An unpooled convolution can get a gradient that is mostly zeros too: one read by an ``Add`` whose
sum a max pooling reads, when they do not run as one step (a gradient at one position in four),
or one behind a ReLU that is off at most positions. :func:`conv2d_backward` counts the non-zero
gradients and, where listing every position costs less than the dense loops would spend on the
zeros (:func:`_winners_pay`), runs the same backward from the winners, each position a window of
one.
"""
import ctypes
import functools

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.core.extending import intrinsic

from . import checks, numpy_ref

# Threads: tinynet.backend applies the thread policy (tinynet/threads.py) when this backend is
# selected and before its kernels run; nothing here changes a process-wide setting.


@intrinsic
def _gettid(typingctx):
    """The operating system's id of the calling thread (Linux's ``gettid``), as an int64."""
    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(builder.module,
                                            ir.FunctionType(ir.IntType(32), []), "gettid")
        return builder.sext(builder.call(fn, []), ir.IntType(64))
    return types.int64(), codegen


@njit(parallel=True, cache=True)
def _thread_ids(out):
    for i in prange(64 * out.shape[0]):
        out[numba.get_thread_id()] = _gettid()


def thread_ids():
    """The operating system's ids of the threads a parallel loop runs on now, at numba's current
    thread count (under OpenMP, numba's default layer here, the calling thread's first: it is
    thread 0 of its team; other layers may leave it out). Linux, with a C library that has
    ``gettid`` (glibc 2.30 or later): elsewhere a RuntimeError, since the compiled call to a
    missing function would crash the process. OpenMP ends the threads a smaller team leaves
    out and starts new ones when the team grows again, so the ids hold until the count
    changes. What :func:`tinynet.threads.keep_workers_apart` gives ``os.sched_setaffinity``."""
    if not hasattr(ctypes.CDLL(None), "gettid"):
        raise RuntimeError("thread_ids needs the C library's gettid (Linux, glibc 2.30 or later)")
    out = np.zeros(numba.get_num_threads(), np.int64)
    _thread_ids(out)
    return list(dict.fromkeys(int(t) for t in out if t > 0))  # each once, in thread order


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
# 'contract' lets LLVM fuse a*b+c into one FMA; 'reassoc' lets it vectorise a reduction (a dot
# product is then summed in SIMD lanes). Neither assumes the absence of NaN or infinity.
_FMA = {"contract"}
_DOT = {"contract", "reassoc"}
# About how many grid positions (elements per channel) one group of images spans: small enough
# for the planes of one group to stay in the L1/L2 cache, large enough for long vector loops.
# Measured on the 2-core machine, 2 threads, alternating in one process (ms, fused conv + pool,
# forward / backward), with the loops before the register sums: 512 against 1024 gives
# cnn_digits l2 1.09-1.19 / 2.02-2.08 against 1.13-1.14 / 2.24-2.32, and l3 0.19 / 0.38-0.39
# against 0.26 / 0.42-0.45 (l1, 900 positions an image, has one image a group either way). With
# the register sums (c5d2fa4; 10 rounds, cnn_digits l2 and l3, cnn_fashion_3 l2_2, pooled and
# unpooled forward, dense backward): 1024 takes 0.975-1.031 of 512's time, no difference.
GROUP_ELEMENTS = 512
# Floats in one vector of the hand-written loops (LLVM IR, below): an AVX register of float32 (the
# float32 sums over taps and dots use WIDE_LANES, wider with AVX-512); the planes' rows are a
# whole number of vectors long. Vectors of a kernel row per pass of the
# winners' loops: 6 running sums and 6 weights fit in AVX2's 16 registers (in float32; float64
# vectors take two registers each, and so do float32 ones on x86 without AVX: LLVM then keeps
# some on the stack, which costs speed only).
LANES = 8


def _avx512():
    """Whether numba compiles for a CPU with AVX-512 (its 512-bit registers, 32 of them): the
    features numba itself targets, ``NUMBA_CPU_FEATURES`` when set (they are part of the key of
    numba's cache, so a cached kernel always matches the width chosen here)."""
    from numba import config
    from numba.core.codegen import get_host_cpu_features
    features = config.CPU_FEATURES if config.CPU_FEATURES is not None else get_host_cpu_features()
    return "+avx512f" in features.split(",")


# Floats in one vector of the float32 sums over taps and of dL/dw's dots (:func:`_block_sums`,
# :func:`_tap_dots`, :func:`_row_sums`): 16, a 512-bit register, where the CPU has AVX-512,
# else LANES. Their lengths stay whole numbers of LANES: a last vector of LANES ends them. On an
# AVX-512 machine here (2 threads, batch 128, alternating with the same kernels built without
# AVX-512, medians of 3 rounds): the report's forwards took 0.79-0.92 of the time (cnn_digits l1
# 0.39 against 0.45 ms, l2 0.57 against 0.68, cnn_fashion_3 l1 0.54 against 0.69), their
# backwards 0.87-1.05 (cnn_fashion_3 l3 0.31 against 0.36, cnn_digits l2 1.44 against 1.37).
WIDE_LANES = 16 if _avx512() else LANES
MAX_VECTORS = 6


@njit(cache=True)
def _whole_vectors(n):
    """``n`` rounded up to a whole number of vectors (LANES floats)."""
    return -(-n // LANES) * LANES


CACHE_LINE = 64  # bytes


@njit(cache=True)
def _whole_lines(n, itemsize):
    """``n`` floats of ``itemsize`` bytes rounded up to whole cache lines."""
    per_line = CACHE_LINE // itemsize
    return -(-n // per_line) * per_line


@njit(cache=True)
def _line_planes(rows, length, like):
    """Zeros ``(rows, length)`` of ``like``'s type, ``length`` rounded up to whole cache lines and
    the first row at a cache line's start (numba aligns its arrays to 32 bytes only): every row
    starts on a line. The dense backward reads dz's planes a vector of positions at a time from
    each row's first position on; loads that straddle two lines take two of the core's loads:
    the residual CNN's l2 backward (14x14x9, 5x5, batch 128) 1.18-1.19 ms against 1.25-1.29 on
    two threads, 2.22-2.28 against 2.33-2.40 on one."""
    per_line = CACHE_LINE // like.itemsize
    stride = _whole_lines(length, like.itemsize)
    buffer = np.zeros(rows * stride + per_line, like.dtype)
    skip = (CACHE_LINE - buffer.ctypes.data % CACHE_LINE) % CACHE_LINE // like.itemsize
    return buffer[skip:skip + rows * stride].reshape((rows, stride))

# ---------------------------------------------------------------------------------------------
# compiled building blocks
# ---------------------------------------------------------------------------------------------
@njit(cache=True, fastmath=_DOT)
def _vector_sum(v, n):
    """``v[0] + ... + v[n-1]`` in vectors of running sums (fastmath lets LLVM reassociate the
    additions): dL/db of the backward passes. One addition after the other waits for the one
    before (3-4 cycles a float): in the dense backward that made each position of dz wait, and
    in the winners' it was a quarter of the pooled backward of a first layer (28x28x1, 7x7,
    batch 128, every gradient non-zero, two threads: 0.56-0.60 ms with this sum against
    0.69)."""
    total = v.dtype.type(0)
    for q in range(n):
        total += v[q]
    return total


@njit(cache=True)
def _from_image(planes, base, wp, image, mask, relu):
    """``planes[c, base + h*wp + w] = image[h, w, c]`` for one NHWC image ``image`` (H, W, C),
    times ``[mask[h, w, c] > 0]`` when ``relu`` (ReLU's backward, ``mask`` its output, of the
    image's shape).

    Rows of at least 8 pixels with at least 8 channels go across in 8 x 8 blocks transposed in
    registers (:func:`_transposed_blocks`; a row's last block overlaps the one before it, and
    channels past the last whole 8 are copied one at a time). Measured alone, one thread, a
    batch of 128 with the mask: 28x28x9 0.41 ms against 0.55 one value at a time, 14x14x9 0.12
    against 0.18. Rows of 4 to 7 pixels with at least 8 channels take a block each too, its
    vectors past the row's pixels zeros (:data:`_narrow_block`), while the block's 8 positions
    stay in the planes: **those zeros are written past the row's end**, where a caller's planes
    hold the grid's padding (zeros already) or the pixels of a row written after this one (the
    callers copy images and rows in order). Measured in separate processes, alternating, one
    thread, batch 128, the median of four rounds: the dense backward with dL/dx of
    cnn_fashion_3 l3 (7x7x9, 3x3, 18 filters) 0.424 ms against 0.453, of cnn_digits l3 (16
    filters) 0.393 against 0.421 (alone, 7x7x18 with the mask: 49 us against 58-60; 7x7x9
    without it, x's planes, 31-32 against 25, but the whole backward gains); a training epoch
    the same within noise. Otherwise the longer of the two inner loops runs inside, as in
    :func:`_to_image`. (Those loops, run from the first channel the blocks leave, could copy
    the last channels too, or a function shared by both: with a start known only at run time
    they took 7x7x16 images 0.07-0.11 ms instead of 0.04-0.06, 14x14x1 0.06 instead of 0.015.)"""
    h_n, w_n, c_n = image.shape
    zero = image.dtype.type(0)
    done = 0  # rows copied in blocks
    if c_n >= LANES and w_n >= LANES // 2:  # 8 x 8 blocks, then the channels past the last 8
        alone = c_n - c_n % LANES
        flat_p, stride = planes.reshape(planes.size), planes.shape[1]
        flat_i, flat_m = image.reshape(image.size), mask.reshape(mask.size)
        for h in range(h_n):
            at = base + h * wp
            if w_n < LANES:  # a narrow row: one block, zeros past its pixels, within the planes
                if at + LANES > stride:
                    break  # (this row and the next ones: the loops below)
                for c in range(0, alone, LANES):
                    src, dst = h * w_n * c_n + c, c * stride + at
                    if relu:
                        _narrow_block_mask(flat_p, flat_i, flat_m, src, c_n, dst, stride, w_n)
                    else:
                        _narrow_block(flat_p, flat_i, flat_m, src, c_n, dst, stride, w_n)
            else:
                for wb in range(0, w_n, LANES):
                    w = min(wb, w_n - LANES)  # a row's last block overlaps the one before it
                    for c in range(0, alone, LANES):
                        src, dst = (h * w_n + w) * c_n + c, c * stride + at + w
                        if relu:
                            _copy_block_mask(flat_p, flat_i, flat_m, src, c_n, dst, stride)
                        else:
                            _copy_block(flat_p, flat_i, flat_m, src, c_n, dst, stride)
            row, mrow = image[h], mask[h]
            for c in range(alone, c_n):
                dst = planes[c, at:]
                if relu:
                    for w in range(w_n):
                        dst[w] = row[w, c] * (mrow[w, c] > zero)
                else:
                    for w in range(w_n):
                        dst[w] = row[w, c]
            done = h + 1
    for h in range(done, h_n):
        row, mrow, at = image[h], mask[h], base + h * wp
        if c_n > w_n:
            for w in range(w_n):
                for c in range(c_n):
                    v = row[w, c]
                    if relu:
                        v = v * (mrow[w, c] > zero)
                    planes[c, at + w] = v
        else:
            for c in range(c_n):
                dst = planes[c, at:]
                if relu:
                    for w in range(w_n):
                        dst[w] = row[w, c] * (mrow[w, c] > zero)
                else:
                    for w in range(w_n):
                        dst[w] = row[w, c]


@njit(cache=True)
def _to_image(image, planes, base, wp, relu):
    """``image[h, w, c] = planes[c, base + h*wp + w]``, through a ReLU when ``relu`` (NaN stays
    NaN): one NHWC image ``image`` (H, W, C) from the planes.

    In 8 x 8 blocks as in :func:`_from_image` where a row has at least 8 pixels and at least 8
    channels (measured alone, one thread, a batch of 128 through its ReLU: 28x28x9 0.29 ms
    against 0.33 one value at a time, 14x14x9 0.07 against 0.11), and, through a ReLU, with at
    least 8 channels and more than one row, where the rows have 4 to 7 pixels: every row but the
    last, each block then writing the next row's first pixels too, before that row writes them
    (128 images of 7x7x16, in cache: 29 us against 40; the whole forward of cnn_digits l3, batch
    128: 0.230-0.231 ms against 0.258-0.259 on one thread, 0.121-0.127 against 0.139-0.141 on
    two). In :func:`_from_image`, where those positions are the grid's padding, the same blocks,
    putting back what they covered, made the 7x7 backward slower (0.61 ms against 0.52); blocks
    whose vectors past the row are zeros, not loaded, made it faster (see there).
    Otherwise the longer of the two inner loops runs inside (measured before the blocks: rows of
    28 pixels, 9 filters, 0.36 ms channel by channel against 0.48 pixel by pixel; rows of 7
    pixels, 16 filters, 0.085 against 0.044 ms: the path such rows still take without a ReLU). A
    whole image a call: a call for each row made cnn_digits l1's forward 3-7% slower, and
    inlining the row's function (``inline="always"``) added 8 s to the first compilation."""
    h_n, w_n, c_n = image.shape
    zero = image.dtype.type(0)
    # through a ReLU, rows of fewer than 8 pixels (at least 4) go in blocks too, but the last: a
    # block of 8 pixels then runs into the next row's first pixels, which that row writes after
    # it (without the ReLU the loops below were as fast: 128 images of 7x7x9, 23 us either way)
    narrow = relu and 2 * w_n >= LANES and w_n < LANES and h_n > 1
    done = 0  # rows copied in blocks
    if (w_n >= LANES or narrow) and c_n >= LANES:  # 8 x 8 blocks, then channels past the 8s
        alone = c_n - c_n % LANES
        flat_p, stride = planes.reshape(planes.size), planes.shape[1]
        flat_i = image.reshape(image.size)
        done = h_n - 1 if narrow else h_n  # a narrow image's last row: as below
        for h in range(done):
            row, at = image[h], base + h * wp
            for wb in range(0, w_n, LANES):
                w = max(0, min(wb, w_n - LANES))  # a row's last block overlaps the one before
                for c in range(0, alone, LANES):
                    src, dst = c * stride + at + w, (h * w_n + w) * c_n + c
                    if relu:
                        _copy_block_relu(flat_i, flat_p, flat_p, src, stride, dst, c_n)
                    else:  # (the third array, a mask, is not read)
                        _copy_block(flat_i, flat_p, flat_p, src, stride, dst, c_n)
            for c in range(alone, c_n):
                src = planes[c, at:]
                if relu:
                    for w in range(w_n):
                        v = src[w]
                        row[w, c] = zero if v <= zero else v
                else:
                    for w in range(w_n):
                        row[w, c] = src[w]
    for h in range(done, h_n):
        row, at = image[h], base + h * wp
        if c_n > w_n:
            for w in range(w_n):
                for c in range(c_n):
                    v = planes[c, at + w]
                    if relu:
                        v = zero if v <= zero else v
                    row[w, c] = v
        else:
            for c in range(c_n):
                src = planes[c, at:]
                if relu:
                    for w in range(w_n):
                        v = src[w]
                        row[w, c] = zero if v <= zero else v
                else:
                    for w in range(w_n):
                        row[w, c] = src[w]


@njit(cache=True)
def _fill_planes(planes, x, n0, nb, top, left, hp, wp, start):
    """Copy images ``n0 .. n0+nb-1`` of ``x`` (N, H, W, C) into ``planes`` (C, ...): pixel
    ``(h, w)`` of image ``b`` goes to ``start + b*hp*wp + (h+top)*wp + (w+left)``."""
    size = hp * wp
    for b in range(nb):
        image = x[n0 + b]
        _from_image(planes, start + b * size + top * wp + left, wp, image, image, False)


@njit(cache=True)
def _conv_group(x, wts, pidx, offs, bias, top, left, hp, wp, tail, n0, nb, rows):
    """``acc[f, p]``: the stride-1 convolution (plus bias) of images ``n0 .. n0+nb-1`` of ``x``
    on their grid (see the module doc); ``wts[f, t]``, ``pidx[t]`` (the channel) and ``offs[t]``
    (the shift) describe tap ``t``. Only the first ``rows`` grid rows of each image, the output
    rows wanted, are sure to be computed: where an image's padding rows after them hold at least
    a vector of positions and its rows a whole number of wide vectors, the sums run image by
    image and leave the padding out (2 of 16 rows of the 14x14 images with 5x5 kernels), else
    over the group's positions in one run, the last image's padding rows left out (2 of 30 rows
    of cnn_digits l1, one image a group). An image whose rows end in a vector of LANES would end
    each of its runs in a pass of one vector, whose sums wait on each other: one run was faster
    there (one thread, the whole convolution: the 7x7 images of cnn_digits l3, 56 positions an
    image, 0.229-0.255 ms against 0.240-0.264; the 14x14 ones of cnn_fashion_3 l2_2, 210, 0.444-
    0.451 against 0.464-0.486), image by image where a run of whole wide vectors is left (the
    pooled l3, 48 positions: 0.224-0.248 against 0.279-0.280). Positions past those are
    computed, or not, and not used."""
    if rows > hp:  # what the planes' length below relies on
        raise ValueError("_conv_group: more output rows than the grid has")
    c_in = x.shape[3]
    f_out = wts.shape[0]
    size = hp * wp
    image = _whole_vectors(rows * wp)  # an image's positions, in whole vectors
    wide = WIDE_LANES if x.itemsize == 4 else LANES  # the sums' vectors (_block_sums)
    together = _whole_vectors((nb - 1) * size + rows * wp)
    length = max(together, (nb - 1) * size + image)  # acc's rows
    # each channel's plane: the group's whole images (also where a pooling leaves out the last
    # output rows: fewer rows than an image has), then the zeros its last taps read
    stride = max(_whole_vectors(nb * size), length) + tail
    planes = np.zeros(c_in * stride, x.dtype)
    _fill_planes(planes.reshape((c_in, stride)), x, n0, nb, top, left, hp, wp, 0)
    acc = np.empty(f_out * length, x.dtype)
    taps, flat_w = pidx * stride + offs, wts.reshape(wts.size)
    if nb > 1 and (hp - rows) * wp >= LANES and image % wide == 0:
        for b in range(nb):
            _blocked_sums(acc, planes, taps, flat_w, bias, length, b * size, image)
    else:
        _blocked_sums(acc, planes, taps, flat_w, bias, length, 0, together)
    return acc.reshape((f_out, length))


@njit(cache=True)
def _tail(offs):
    """How far past a grid position the taps read: the zero columns planes need at their end."""
    tail = 0
    for t in range(offs.shape[0]):
        tail = max(tail, offs[t] + 1)
    return tail


# The most filters past a whole 8 that the 2x2 pooling takes one at a time (_pooled_column)
# rather than in a block overlapping the one before, which computes 7 filters again for one: the
# report's first layers have 9 filters (cnn_digits l1's pooled forward, one thread: 0.62 ms
# against 0.72 with the overlapping block). With 11 and 12 filters (3 and 4 past 8) the two ways
# measured the same (0.76-0.79 against 0.78 ms, 0.80-0.84 against 0.83).
POOL_COLUMNS = 2


@njit(parallel=True, cache=True, fastmath=_FMA)
def _conv_forward_s1(x, wts, pidx, offs, bias, relu, top, left, hp, wp, group, ph, pw, out, arg,
                     res, won):
    """Stride-1 convolution of ``x`` (N, H, W, C), see the module doc, with its ReLU when
    ``relu``, and max pooling over ``(ph, pw)`` windows that tile the image.

    ``ph = pw = 1``: no pooling, ``out`` (N, OH, OW, F) receives the convolution (``arg`` is not
    used). Otherwise the pooling runs in the same pass: each group's convolution stays on its
    grid, in cache, and only the pooled ``out`` (N, OH//ph, OW//pw, F) and the winners ``arg``
    (``i*pw + j``, the first maximum of each window in row-major order, as in
    ``maxpool_forward``) are written. ``max(relu(z)) = relu(max(z))``, so the ReLU is applied to
    the winners only; a window with no positive value may then name another winner than the
    pooling of ReLU's output would (all its values are 0 after the ReLU): the gradient that
    reaches the convolution is 0 there either way (unless the incoming gradient is NaN or
    infinite: ``0 * NaN`` lands on another pixel, and training stops on it anyway).

    ``res`` not empty: a residual block's ``Add`` between the activation and the pooling, which
    then pools ``relu(z) + res`` (``res`` of the convolution's shape; any windows, 1x1 included),
    from the group's ``relu(z)`` written as NHWC images into a buffer of the group's size
    (:func:`_add_maxpool`); ``won`` (the pooled shape) receives each winner's ``relu(z)``, whose
    sign is the ReLU's backward (with no residual that is the pooled output itself, and ``won``
    is not written).
    """
    n_img = x.shape[0]
    _, po_n, qo_n, f_out = out.shape
    size = hp * wp
    tail = _tail(offs)
    zero = x.dtype.type(0)
    flat_out, flat_arg = out.reshape(out.size), arg.reshape(arg.size)
    if ph * po_n > hp or pw * qo_n > wp:  # what the unchecked loads of the pooling rely on
        raise ValueError("_conv_forward_s1: the pooling windows run past the grid")
    for g in prange((n_img + group - 1) // group):
        n0 = g * group
        nb = min(group, n_img - n0)
        acc = _conv_group(x, wts, pidx, offs, bias, top, left, hp, wp, tail, n0, nb, ph * po_n)
        if res.shape[0] > 0:  # the group's relu(z) as NHWC images (in cache), then the pooling
            z = np.empty((nb, ph * po_n, pw * qo_n, f_out), x.dtype)
            for b in range(nb):
                _to_image(z[b], acc, b * size, wp, relu)
            _add_maxpool(z, res[n0:n0 + nb], ph, pw, out[n0:n0 + nb], arg[n0:n0 + nb],
                         won[n0:n0 + nb])
            continue
        if ph == 1 and pw == 1:  # the convolution's output itself
            for b in range(nb):
                _to_image(out[n0 + b], acc, b * size, wp, relu)
            continue
        if ph == 2 and pw == 2 and qo_n >= LANES and f_out >= LANES:
            # 8 windows x 8 filters a block (_pooled_blocks); the last block of a row overlaps
            # the one before it (windows computed twice, the same both times), and so does the
            # last block of the filters, unless they end in at most POOL_COLUMNS filters past a
            # whole 8, pooled one at a time (_pooled_column)
            flat_acc, length = acc.reshape(acc.size), acc.shape[1]
            block_end = f_out if f_out % LANES > POOL_COLUMNS else f_out - f_out % LANES
            for b in range(nb):
                for po in range(po_n):
                    o_row = ((n0 + b) * po_n + po) * qo_n * f_out
                    a_row = b * size + po * 2 * wp
                    for qb in range(0, qo_n, LANES):
                        qo = min(qb, qo_n - LANES)
                        for fb in range(0, block_end, LANES):
                            f = min(fb, f_out - LANES)
                            if relu:
                                _pool_block_relu(flat_out, flat_arg, flat_acc,
                                                 f * length + a_row + 2 * qo, length, wp,
                                                 o_row + qo * f_out + f, f_out)
                            else:
                                _pool_block(flat_out, flat_arg, flat_acc,
                                            f * length + a_row + 2 * qo, length, wp,
                                            o_row + qo * f_out + f, f_out)
                        for f in range(block_end, f_out):
                            if relu:
                                _pool_column_relu(flat_out, flat_arg, flat_acc,
                                                  f * length + a_row + 2 * qo, wp,
                                                  o_row + qo * f_out + f, f_out)
                            else:
                                _pool_column(flat_out, flat_arg, flat_acc,
                                             f * length + a_row + 2 * qo, wp,
                                             o_row + qo * f_out + f, f_out)
            continue
        for f in range(f_out):
            for b in range(nb):
                for po in range(po_n):
                    window = acc[f, b * size + po * ph * wp:]
                    orow = out[n0 + b, po]
                    arow = arg[n0 + b, po]
                    if ph == 2 and pw == 2:  # the report's pooling: four candidates, no branch
                        r0 = window[:]
                        r1 = window[wp:]
                        for qo in range(qo_n):
                            best = r0[2 * qo]
                            k = 0
                            v = r0[2 * qo + 1]
                            k = 1 if v > best else k  # strictly greater: the first maximum wins
                            best = v if v > best else best
                            v = r1[2 * qo]
                            k = 2 if v > best else k
                            best = v if v > best else best
                            v = r1[2 * qo + 1]
                            k = 3 if v > best else k
                            best = v if v > best else best
                            if relu:
                                best = zero if best <= zero else best
                            orow[qo, f] = best
                            arow[qo, f] = k
                        continue
                    for qo in range(qo_n):
                        best = window[qo * pw]
                        k = 0
                        for i in range(ph):
                            for j in range(pw):
                                v = window[i * wp + qo * pw + j]
                                k = i * pw + j if v > best else k
                                best = v if v > best else best
                        if relu:
                            best = zero if best <= zero else best
                        orow[qo, f] = best
                        arow[qo, f] = k


@njit(cache=True)
def _add_maxpool(z, res, ph, pw, out, arg, won):
    """Max pooling of ``z + res`` over ``(ph, pw)`` windows that tile ``z`` (N, H, W, C): the
    pooled sums into ``out``, each window's winner into ``arg`` (``i*pw + j``, the first maximum
    in row-major order, as ``maxpool_forward``) and the winner's ``z`` into ``won``. ``res`` may
    have more rows and columns than ``z`` (those no window covers are not read). Channels
    innermost, in order: 2x2 windows of 14x14x9 images, batch 128, two threads (in a loop over
    the images, measured alone): 0.105 ms against 0.174 for NumPy's sum and then
    ``maxpool_forward``. The residual CNN's whole step (l2_2, 3x3, the Add, the pooling) takes
    0.43 ms against 0.50-0.56 for the convolution, NumPy's sum and ``maxpool_forward``, and took
    0.6 ms with the pooling on the convolution's grid, filters outermost (as the pooled kernel's
    loop for rows of fewer than 8 windows does)."""
    n_img, po_n, qo_n, c_n = out.shape
    for n in range(n_img):
        for po in range(po_n):
            o, g, w = out[n, po], arg[n, po], won[n, po]
            if ph == 2 and pw == 2:  # the report's pooling: four candidates, no branch (the
                # residual CNN's shape, batch 128, two threads: 85 us against 274 for the loop
                # over any window below)
                z0, z1, r0, r1 = z[n, 2 * po], z[n, 2 * po + 1], res[n, 2 * po], res[n, 2 * po + 1]
                for qo in range(qo_n):
                    for c in range(c_n):
                        v = z0[2 * qo, c]
                        best, kept, k = v + r0[2 * qo, c], v, 0
                        v = z0[2 * qo + 1, c]
                        s = v + r0[2 * qo + 1, c]
                        better = s > best  # strictly greater: the first maximum wins
                        k = 1 if better else k
                        kept = v if better else kept
                        best = s if better else best
                        v = z1[2 * qo, c]
                        s = v + r1[2 * qo, c]
                        better = s > best
                        k = 2 if better else k
                        kept = v if better else kept
                        best = s if better else best
                        v = z1[2 * qo + 1, c]
                        s = v + r1[2 * qo + 1, c]
                        better = s > best
                        k = 3 if better else k
                        kept = v if better else kept
                        best = s if better else best
                        o[qo, c], g[qo, c], w[qo, c] = best, k, kept
                continue
            for qo in range(qo_n):
                for c in range(c_n):
                    v = z[n, po * ph, qo * pw, c]
                    best, kept, k = v + res[n, po * ph, qo * pw, c], v, 0
                    for i in range(ph):
                        for j in range(pw):
                            v = z[n, po * ph + i, qo * pw + j, c]
                            s = v + res[n, po * ph + i, qo * pw + j, c]
                            better = s > best
                            k = i * pw + j if better else k
                            kept = v if better else kept
                            best = s if better else best
                    o[qo, c], g[qo, c], w[qo, c] = best, k, kept


@njit(cache=True)
def _pass_width(x):
    """Positions in each row of a pass of :func:`_row_sums` for ``x``'s float type: its
    ROW_VECTORS vectors of LANES (half as many in float64; float32 with AVX-512 computes the same
    positions in half as many vectors of WIDE_LANES)."""
    return LANES * max(1, ROW_VECTORS * 4 // x.itemsize)


@njit(cache=True)
def _dx_by_rows(x, need_dx, dx_wcol):
    """Whether the dense backward computes dL/dx by :func:`_rows_dx`: wanted, one input
    channel, and its column weights given."""
    return need_dx and x.shape[3] == 1 and dx_wcol.shape[0] > 0


@njit(cache=True)
def _pass_rows(kh):
    """Grid rows a pass of :func:`_rows_dx` computes for a kernel of ``kh`` rows: PASS_ROWS
    where the kernel has at least PASS_ROWS - 1 rows (what :func:`_row_sums` needs), else 2."""
    return PASS_ROWS if kh >= PASS_ROWS - 1 else 2


@njit(cache=True)
def _rows_reach(x, nb, size, left, wp, kh):
    """How far past the start of dz's grid the passes of a one-channel ``x``'s dL/dx
    (:func:`_rows_dx`, kernels of ``kh`` rows, ``rows`` grid rows a pass) write, and read past
    ``front``: the last pass starts no lower than image ``nb-1``'s last row of pixels, at column
    ``left`` plus whole passes, and ends ``rows - 1`` rows and a pass later: at most ``rows - 2``
    rows past the image's grid (``hp >= h + top``)."""
    chunk = _pass_width(x)
    return nb * size + (_pass_rows(kh) - 2) * wp + left + -(-x.shape[2] // chunk) * chunk


@njit(cache=True)
def _rows_dx(x, n0, nb, flat_d, dstride, dx_pidx, dx_offs, dx_wcol, top, left, hp, wp, dx):
    """dL/dx of a one-channel ``x`` (images ``n0 .. n0+nb-1``) by :func:`_row_sums`: the
    columns of taps are the last kernel row's mirrored taps (``t = ((kh-1)*kw + j)*F + f``:
    shift ``kw-1-j`` on filter ``f``'s plane), ``dx_wcol[c, m]`` their weights down the column
    (kernel row ``kh-1-m``). Only the rows of ``x`` are computed, :func:`_pass_rows` at a
    time."""
    _, h_in, w_in, _ = x.shape
    ncols, kh = dx_wcol.shape
    size = hp * wp
    chunk = _pass_width(x)
    rows = _pass_rows(kh)
    reach = _rows_reach(x, nb, size, left, wp, kh)
    ntaps = dx_pidx.shape[0]
    if ncols * kh != ntaps:
        raise ValueError("_rows_dx: the column weights do not match the tap tables")
    if not (rows == 2 or rows == 4) or kh < rows - 1:  # the passes compiled below
        raise ValueError("_rows_dx: passes of 2 or 4 rows, of kernels of at least rows - 1 rows")
    # where the last pass ends, counted from its own loops: within what _rows_reach allows
    last = ((nb - 1) * size + (h_in - 1 - (h_in - 1) % rows + top) * wp + left
            + (w_in - 1) // chunk * chunk)
    if h_in and w_in and last + (rows - 1) * wp + chunk > reach:
        raise ValueError("_rows_dx: the passes would run past dz's planes")
    cols = dx_pidx[ntaps - ncols:] * dstride + dx_offs[ntaps - ncols:]
    wflat = dx_wcol.reshape(dx_wcol.size)
    acc = np.empty(reach, x.dtype)
    for b in range(nb):
        for h in range(0, h_in, rows):  # a last pass past the last row computes pad rows
            for u in range(0, w_in, chunk):
                at = b * size + (h + top) * wp + left + u
                if rows == 4:
                    _four_rows(acc, flat_d, cols, wflat, kh, at, wp)
                else:
                    _pair_rows(acc, flat_d, cols, wflat, kh, at, wp)
    for b in range(nb):
        for h in range(h_in):
            src = acc[b * size + (h + top) * wp + left:]
            row = dx[n0 + b, h]
            for w in range(w_in):
                row[w, 0] = src[w]


@njit(cache=True, fastmath=_DOT)
def _conv_backward_group(x, n0, nb, dplanes, front, dx_wts, dx_pidx, dx_offs, dx_wcol, dw_pidx,
                         dw_offs, top, left, hp, wp, out_rows, need_dx, dx, part):
    """The part of the stride-1 backward that follows ``dz`` on the grid (``dplanes``, with
    ``front`` zeros before it; ``out_rows`` output rows an image): the group's ``dL/dw`` into
    ``part[f, t]`` (its row of the groups' partial sums: the caller passes ``part[g]``, so that
    this function is compiled once, not once for each integer type a parallel loop's index can
    have) and, when ``need_dx``, its images' ``dL/dx`` into ``dx`` (by :func:`_rows_dx` when
    ``x`` has one channel and ``dx_wcol`` its column weights).

    As in the forward pass (:func:`_conv_group`), where an image's padding rows hold at least a
    vector of positions and its rows whole wide vectors, the sums run image by image over its
    rows alone (2 of 16 rows of the 14x14 images with 5x5 kernels): dL/dw over the output rows
    (dz is 0 on the others; the runs start where the one run's vectors start, so each lane adds
    the same products in the same order and the sums are the same to the bit, but for a NaN or
    infinite pixel that only a zero gradient reaches), dL/dx over the input rows."""
    c_in = x.shape[3]
    f_out = dplanes.shape[0]
    size = hp * wp
    dstride = dplanes.shape[1]
    span = _whole_vectors(nb * size)  # the group's positions, in whole vectors
    wide = WIDE_LANES if x.itemsize == 4 else LANES  # the sums' vectors
    by_rows = _dx_by_rows(x, need_dx, dx_wcol)
    if out_rows > hp:  # what the runs of dL/dw's positions below rely on
        raise ValueError("_conv_backward_group: more output rows than the grid has")
    if dstride < front + (_whole_vectors(_rows_reach(x, nb, size, left, wp, dx_wcol.shape[1]))
                          if by_rows else span):
        # what the unchecked loads of _tap_dots and _row_sums rely on
        raise ValueError("_conv_backward_group: dz's planes are too short")
    xplanes = np.zeros((c_in, span + _tail(dw_offs)), x.dtype)
    _fill_planes(xplanes, x, n0, nb, top, left, hp, wp, 0)
    taps = dw_pidx * xplanes.shape[1] + dw_offs
    flat_x, flat_d = xplanes.reshape(xplanes.size), dplanes.reshape(dplanes.size)
    runs, run = 1, span  # dL/dw's positions: one run over the group, or image by image
    if (hp - out_rows) * wp >= LANES and out_rows * wp % wide == 0 and size % wide == 0:
        runs, run = nb, out_rows * wp
    done = 0  # filters done three at a time (DOT_FILTERS), then two, then one
    if DOT_FILTERS == 3:
        done = f_out - f_out % 3
        for f in range(0, done, 3):
            _dots3(part, flat_x, taps, flat_d, f, dstride, front, run, runs, size)
    for f in range(done, f_out - 1, 2):
        _dots2(part, flat_x, taps, flat_d, f, dstride, front, run, runs, size)
    if (f_out - done) % 2:
        _dots1(part, flat_x, taps, flat_d, f_out - 1, dstride, front, run, runs, size)
    if by_rows:  # one input channel: several rows a pass
        _rows_dx(x, n0, nb, flat_d, dstride, dx_pidx, dx_offs, dx_wcol, top, left, hp, wp, dx)
    elif need_dx:  # the mirrored taps over dz's grid
        acc = np.empty((c_in, span), x.dtype)
        flat_acc, dtaps = acc.reshape(acc.size), dx_pidx * dstride + dx_offs
        flat_w, no_bias = dx_wts.reshape(dx_wts.size), np.zeros(c_in, x.dtype)
        image = x.shape[1] * wp  # an image's rows on the grid
        if (hp - x.shape[1]) * wp >= LANES and image % wide == 0:
            for b in range(nb):
                _blocked_sums(flat_acc, flat_d, dtaps, flat_w, no_bias, span,
                              b * size + top * wp, image)
        else:
            _blocked_sums(flat_acc, flat_d, dtaps, flat_w, no_bias, span, 0, span)
        for b in range(nb):
            _to_image(dx[n0 + b], acc, b * size + top * wp + left, wp, False)


@njit(parallel=True, cache=True, fastmath=_DOT)
def _conv_backward_s1(dout, y, relu, x, dx_wts, dx_pidx, dx_offs, dx_wcol, dw_pidx, dw_offs,
                      top, left, hp, wp, front, group, need_dx, dx, part):
    """Backward of :func:`_conv_forward_s1` without pooling, see the module doc.

    ``dz`` (``dout``, or ``dout * [y > 0]`` when ``relu``, ``y`` the output) is laid on the grid
    with ``front`` zeros before it. Group ``g`` adds its ``dL/dw`` (tap-major, ``part[g, f,
    t]``) and ``dL/db`` (``part[g, f, ntaps]``); ``dx`` receives ``dL/dx`` when ``need_dx``.
    """
    n_img = x.shape[0]
    f_out = dout.shape[3]
    ntaps = dw_pidx.shape[0]
    size = hp * wp
    reach = _tail(dw_offs) - 1  # the farthest tap's shift: where dz's planes started before
    for g in prange((n_img + group - 1) // group):
        n0 = g * group
        nb = min(group, n_img - n0)
        # dz on the grid, each row a whole number of vectors long (the blocked sums of dL/dx),
        # and as far as the row passes of a one-channel dL/dx read
        length = _whole_vectors(nb * size)
        if _dx_by_rows(x, need_dx, dx_wcol):
            length = max(length, _whole_vectors(_rows_reach(x, nb, size, left, wp,
                                                            dx_wcol.shape[1])))
        dplanes = _line_planes(f_out, front + length, x)
        for b in range(nb):  # dz on the grid (relu_backward: dy * [y > 0])
            _from_image(dplanes, front + b * size, wp, dout[n0 + b], y[n0 + b], relu)
        # dL/db: each filter's dz summed on its plane, from the last ``reach`` zeros before it
        # (where the planes started before ``front`` was rounded up to whole cache lines: the
        # same sums, bit for bit) and over the same positions whether or not dL/dx makes the
        # planes longer (the sum's vector lanes, and with them its rounding, follow where it
        # starts and its length)
        summed = reach + _whole_vectors(nb * size)
        for f in range(f_out):
            part[g, f, ntaps] += _vector_sum(dplanes[f, front - reach:], summed)
        _conv_backward_group(x, n0, nb, dplanes, front, dx_wts, dx_pidx, dx_offs, dx_wcol,
                             dw_pidx, dw_offs, top, left, hp, wp, dout.shape[1], need_dx, dx,
                             part[g])


# ---------------------------------------------------------------------------------------------
# the backward of a pooled convolution, from the winners (see the module doc)
# ---------------------------------------------------------------------------------------------


def _ir_arrays_fit(floats, offs, ints):
    """The typing rule of the hand-written loops, which index raw memory: ``floats`` 1-D
    C-contiguous arrays of one float type, ``offs`` a 1-D C-contiguous int64 array (or None),
    ``ints`` 64-bit integers (anything else: numba reports that no version of the intrinsic
    fits)."""
    arrays = tuple(floats) + (() if offs is None else (offs,))
    return (all(isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C" for a in arrays)
            and isinstance(floats[0].dtype, types.Float)
            and all(a.dtype == floats[0].dtype for a in floats)
            and (offs is None or offs.dtype == types.int64)
            and all(i == types.int64 for i in ints))  # the code computes in 64-bit integers


def _ir_data(context, builder, signature, args, i):
    """In an intrinsic's codegen: the pointer to the first element of array argument ``i``."""
    return context.make_array(signature.args[i])(context, builder, args[i]).data


def _ir_length(context, builder, signature, args, i):
    """In an intrinsic's codegen: the number of elements of 1-D array argument ``i``."""
    return builder.extract_value(
        context.make_array(signature.args[i])(context, builder, args[i]).shape, 0)


def _ir_vector_at(builder, base, index, vec):
    """``&base[index]`` as a pointer to a vector of type ``vec`` (loads and stores through it
    are unaligned: ``align=4``)."""
    return builder.bitcast(builder.gep(base, [index], inbounds=True), vec.as_pointer())


def _ir_splat(builder, value, lanes=LANES):
    """A vector of ``lanes`` copies of the scalar ``value``."""
    v = ir.VectorType(value.type, lanes)
    one = builder.insert_element(ir.Constant(v, ir.Undefined), value,
                                 ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(one, ir.Constant(v, ir.Undefined),
                                  ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes))


def _ir_fma(builder, a, b, c):
    """``c + a*b``, which LLVM may fuse into one FMA (as fastmath={"contract"} elsewhere)."""
    return builder.fadd(c, builder.fmul(a, b, flags=("contract",)), flags=("contract",))


def _ir_running_sums(builder, acc, vec, count, unroll):
    """``unroll`` sets of ``count`` running sums (allocas, which LLVM turns into registers): the
    first set starts from the ``count`` vectors of ``acc``, the others from 0."""
    i64 = ir.IntType(64)
    sums = [[cgutils.alloca_once(builder, vec) for _ in range(count)] for _ in range(unroll)]
    for v in range(count):
        start = _ir_vector_at(builder, acc, ir.Constant(i64, v * LANES), vec)
        builder.store(builder.load(start, align=4), sums[0][v])
        for u in range(1, unroll):
            builder.store(ir.Constant(vec, [0.0] * LANES), sums[u][v])
    return sums


def _ir_store_sums(builder, sums, acc, vec):
    """The sets of :func:`_ir_running_sums` added up, into ``acc``."""
    for v in range(len(sums[0])):
        total = builder.load(sums[0][v])
        for u in range(1, len(sums)):
            total = builder.fadd(total, builder.load(sums[u][v]))
        builder.store(total, _ir_vector_at(builder, acc, ir.Constant(ir.IntType(64), v * LANES),
                                           vec), align=4)


def _ir_over_winners(builder, n, unroll, winner):
    """``winner(q, u)`` for ``q < n``, ``unroll`` winners a turn (``u``: which set of sums)."""
    i64 = ir.IntType(64)
    step = ir.Constant(i64, unroll)
    whole = builder.mul(builder.sdiv(n, step), step)
    with cgutils.for_range_slice(builder, ir.Constant(i64, 0), whole, step) as (q, _):
        for u in range(unroll):
            winner(builder.add(q, ir.Constant(i64, u)), u)
    with cgutils.for_range_slice(builder, whole, n, ir.Constant(i64, 1)) as (q, _):
        winner(q, 0)


def _vector_rows(nvec):
    """The loop over a filter's winners for one kernel row, in vectors of LANES floats, as
    LLVM IR: an intrinsic that numba compiles into the function that calls it.

    ``rows(x, dx, offs, dvals, n, rowoff, wrow, acc, valid, need_dx)`` does, for ``q < n``, with
    ``p = offs[q] + rowoff`` and ``d = dvals[q]``, over the row's ``k < nvec*LANES`` floats::

        acc[k] += d * x[p + k]                 (dL/dw: the row's running sums)
        dx[p + k] += d * wrow[k]               (dL/dx, when need_dx; for k < (nvec-1)*LANES + valid)

    The sums stay in registers for the whole loop (numba's own loops loaded and stored ``acc`` at
    every winner); with one or two vectors a row, several winners are summed at once, in sums of
    their own, so that each FMA does not wait for the previous one (4 cycles). Lanes past
    ``valid`` of the last vector compute garbage in ``acc`` (ignored by the caller) and leave
    ``dx`` as it was. With ``valid = LANES`` every lane is written: the caller passes it when
    ``wrow`` is 0 past the row and every ``d`` is finite, so that those lanes get ``dx + 0``
    (exact) without the masked store that keeping them costs (a slow instruction on AMD's
    CPUs: 1.4x the time of the whole backward of cnn_digits' l2). The caller guarantees that
    every ``p + nvec*LANES`` lies in ``x`` and ``dx``: the loads and stores are not
    bounds-checked.
    """
    unroll = max(1, 4 // nvec)

    @intrinsic
    def rows(typingctx, x, dx, offs, dvals, n, rowoff, wrow, acc, valid, need_dx):
        if not _ir_arrays_fit((x, dx, dvals, wrow, acc), offs, (n, rowoff, valid)):
            return None
        sig = types.void(x, dx, offs, dvals, n, rowoff, wrow, acc, valid, need_dx)

        def codegen(context, builder, signature, args):
            n_, rowoff_, valid_, need_dx_ = args[4], args[5], args[8], args[9]
            X, DX, OFFS, DVALS, W, ACC = (_ir_data(context, builder, signature, args, i)
                                          for i in (0, 1, 2, 3, 6, 7))
            vec = ir.VectorType(context.get_value_type(signature.args[0].dtype), LANES)
            i64 = ir.IntType(64)

            def at(base, index):
                return _ir_vector_at(builder, base, index, vec)

            def const(v):
                return ir.Constant(i64, v)

            sums = _ir_running_sums(builder, ACC, vec, nvec, unroll)
            weights = [builder.load(at(W, const(v * LANES)), align=4) for v in range(nvec)]
            # the lanes of the last vector that belong to the row
            keep = builder.icmp_signed("<", ir.Constant(ir.VectorType(i64, LANES),
                                                        list(range(LANES))),
                                       _ir_splat(builder, valid_))

            def winner(q, u, with_dx, masked):
                p = builder.add(builder.load(builder.gep(OFFS, [q], inbounds=True)), rowoff_)
                dvec = _ir_splat(builder, builder.load(builder.gep(DVALS, [q], inbounds=True)))
                for v in range(nvec):
                    k = builder.add(p, const(v * LANES))
                    xk = builder.load(at(X, k), align=4)
                    builder.store(_ir_fma(builder, xk, dvec, builder.load(sums[u][v])),
                                  sums[u][v])
                    if with_dx:
                        ptr = at(DX, k)
                        old = builder.load(ptr, align=4)
                        new = _ir_fma(builder, weights[v], dvec, old)
                        if masked and v == nvec - 1:
                            new = builder.select(keep, new, old)
                        builder.store(new, ptr, align=4)

            def loop(with_dx, masked=False):
                _ir_over_winners(builder, n_, unroll,
                                 lambda q, u: winner(q, u, with_dx, masked))

            with builder.if_else(need_dx_) as (with_dx, without_dx):
                with with_dx:
                    with builder.if_else(builder.icmp_signed("<", valid_, const(LANES))) as (
                            masked, whole_vectors):
                        with masked:
                            loop(True, masked=True)
                        with whole_vectors:
                            loop(True)
                with without_dx:
                    loop(False)
            _ir_store_sums(builder, sums, ACC, vec)
            return context.get_dummy_value()

        return sig, codegen

    return rows


_rows1, _rows2, _rows3, _rows4, _rows5, _rows6 = (_vector_rows(k) for k in range(1, 7))


@njit(cache=True)
def _winner_rows(nvec, x, dx, offs, dvals, n, rowoff, wrow, acc, valid, need_dx):
    """:func:`_vector_rows` for ``nvec`` (1 to MAX_VECTORS) vectors a row."""
    if nvec == 1:
        _rows1(x, dx, offs, dvals, n, rowoff, wrow, acc, valid, need_dx)
    elif nvec == 2:
        _rows2(x, dx, offs, dvals, n, rowoff, wrow, acc, valid, need_dx)
    elif nvec == 3:
        _rows3(x, dx, offs, dvals, n, rowoff, wrow, acc, valid, need_dx)
    elif nvec == 4:
        _rows4(x, dx, offs, dvals, n, rowoff, wrow, acc, valid, need_dx)
    elif nvec == 5:
        _rows5(x, dx, offs, dvals, n, rowoff, wrow, acc, valid, need_dx)
    else:
        _rows6(x, dx, offs, dvals, n, rowoff, wrow, acc, valid, need_dx)


def _patch_rows(nrows):
    """:func:`_vector_rows` for ``nrows`` kernel rows of one vector each, in one pass, dL/dw
    only: ``rows(x, offs, dvals, n, rowoff, rowstride, acc)`` does, for ``q < n``, ``r <
    nrows``, ``k < LANES``, ``acc[r*LANES + k] += dvals[q] * x[offs[q] + rowoff + r*rowstride +
    k]``. A first layer on one channel (grey images: a row of KW <= 8 floats) spends a pass per
    row otherwise, reading each winner's offset and gradient once a row: measured 1.1 ns a
    winner and row on one thread."""
    unroll = max(1, 4 // nrows)

    @intrinsic
    def rows(typingctx, x, offs, dvals, n, rowoff, rowstride, acc):
        if not _ir_arrays_fit((x, dvals, acc), offs, (n, rowoff, rowstride)):
            return None
        sig = types.void(x, offs, dvals, n, rowoff, rowstride, acc)

        def codegen(context, builder, signature, args):
            n_, rowoff_, rowstride_ = args[3], args[4], args[5]
            X, OFFS, DVALS, ACC = (_ir_data(context, builder, signature, args, i)
                                   for i in (0, 1, 2, 6))
            vec = ir.VectorType(context.get_value_type(signature.args[0].dtype), LANES)
            sums = _ir_running_sums(builder, ACC, vec, nrows, unroll)

            def winner(q, u):
                p = builder.add(builder.load(builder.gep(OFFS, [q], inbounds=True)), rowoff_)
                dvec = _ir_splat(builder, builder.load(builder.gep(DVALS, [q], inbounds=True)))
                for r in range(nrows):
                    xr = builder.load(_ir_vector_at(builder, X, p, vec), align=4)
                    builder.store(_ir_fma(builder, xr, dvec, builder.load(sums[u][r])),
                                  sums[u][r])
                    p = builder.add(p, rowstride_)

            _ir_over_winners(builder, n_, unroll, winner)
            _ir_store_sums(builder, sums, ACC, vec)
            return context.get_dummy_value()

        return sig, codegen

    return rows


_patch2, _patch3, _patch4, _patch5, _patch6, _patch7, _patch8 = (_patch_rows(k)
                                                                   for k in range(2, 9))


@njit(cache=True)
def _patch_winner_rows(nrows, x, offs, dvals, n, rowoff, rowstride, acc):
    """:func:`_patch_rows` for ``nrows`` (2 to LANES) rows."""
    if nrows == 2:
        _patch2(x, offs, dvals, n, rowoff, rowstride, acc)
    elif nrows == 3:
        _patch3(x, offs, dvals, n, rowoff, rowstride, acc)
    elif nrows == 4:
        _patch4(x, offs, dvals, n, rowoff, rowstride, acc)
    elif nrows == 5:
        _patch5(x, offs, dvals, n, rowoff, rowstride, acc)
    elif nrows == 6:
        _patch6(x, offs, dvals, n, rowoff, rowstride, acc)
    elif nrows == 7:
        _patch7(x, offs, dvals, n, rowoff, rowstride, acc)
    else:
        _patch8(x, offs, dvals, n, rowoff, rowstride, acc)


# ---------------------------------------------------------------------------------------------
# the sums over taps, in registers (LLVM IR)
# ---------------------------------------------------------------------------------------------
# Filters a pass computes at most, and the vectors of grid positions it computes for nf filters:
# in float32, enough running sums (nf * vectors, at least 8) that each FMA does not wait for the
# one before (4 cycles, two FMAs a cycle), few enough that they, the inputs of a tap and a weight
# fit in AVX2's 16 vector registers. With one filter the inputs are not kept: each is read by its
# FMA. A float64 vector takes two registers: half the vectors (one for 3 to 6 filters), which
# keeps them in registers at the cost of fewer independent sums.
MAX_BLOCK_FILTERS = 6
BLOCK_VECTORS = {1: 8, 2: 4, 3: 3, 4: 2, 5: 2, 6: 2}
# With AVX-512's 32 registers (float32 vectors of WIDE_LANES): the nf * vectors running sums, a
# tap's vectors of inputs and a weight take at most 22 (6 filters: 18 + 3 + 1).
# Against BLOCK_VECTORS at that width, alternating: cnn_digits l3's forward 0.124 against 0.147
# ms, cnn_fashion_3 l2_2's 0.275 against 0.31.
WIDE_BLOCK_VECTORS = {1: 8, 2: 6, 3: 4, 4: 3, 5: 3, 6: 3}


def _block_sums(nf):
    """The stride-1 convolution's sums over taps for ``nf`` filters, as LLVM IR: an intrinsic
    that numba compiles into the function that calls it.

    ``sums(acc, planes, taps, wts, bias, ntaps, f0, stride, start, length)`` does, for every
    ``start <= p < start + length`` (``length`` a multiple of LANES) and ``f0 <= f < f0 + nf``::

        acc[f*stride + p] = (sum over t < ntaps of wts[f*ntaps + t] * planes[taps[t] + p])
                            + bias[f]

    ``taps[t]``: where tap ``t`` starts in the flat ``planes`` (its channel's plane plus its
    shift on the grid). The bias is added last, as TensorFlow adds it: a sum that the bias
    cancels to within float32's rounding then rounds as Keras's does (with the bias first, one
    window of cnn_digits' l1 in the float32 Keras fixture, -2.7e-9 in exact arithmetic, came out
    +2.7e-9: its ReLU on, Keras's off). A pass computes ``BLOCK_VECTORS[nf]`` vectors of
    positions (half as many in float64; in float32 with AVX-512, ``WIDE_BLOCK_VECTORS[nf]``
    vectors of WIDE_LANES; then one at a time for the rest, the last one of LANES) with all
    their running sums in registers over all the taps: each tap loads its vectors of inputs and
    ``nf`` weights for ``nf`` FMAs a vector, and ``acc`` is written once. Each position's sum
    runs over the taps in the same order whatever the vectors' width: the numbers do not depend
    on it. The caller guarantees that ``taps[t] + start + length`` lies in ``planes`` and
    ``f*stride + start + length`` in ``acc``: the loads and stores are not bounds-checked
    (:func:`_blocked_sums` checks that ``length`` is a whole number of vectors).
    """
    @intrinsic
    def sums(typingctx, acc, planes, taps, wts, bias, ntaps, f0, stride, start, length):
        if not _ir_arrays_fit((acc, planes, wts, bias), taps, (ntaps, f0, stride, start, length)):
            return None
        sig = types.void(acc, planes, taps, wts, bias, ntaps, f0, stride, start, length)
        # a vector of float64 takes two registers: half the vectors
        nvec = max(1, BLOCK_VECTORS[nf] * 32 // acc.dtype.bitwidth)
        wide = LANES
        if acc.dtype.bitwidth == 32 and WIDE_LANES > LANES:
            wide, nvec = WIDE_LANES, WIDE_BLOCK_VECTORS[nf]

        def codegen(context, builder, signature, args):
            ntaps_, f0_, stride_, start_, length_ = args[5:10]
            ACC, X, TAPS, W, BIAS = (_ir_data(context, builder, signature, args, i)
                                     for i in range(5))
            ftype = context.get_value_type(signature.args[0].dtype)
            i64 = ir.IntType(64)

            def const(v):
                return ir.Constant(i64, v)

            filters = [builder.add(f0_, const(f)) for f in range(nf)]
            rows = [builder.mul(f, ntaps_) for f in filters]  # where each filter's weights start
            bias_of = [builder.load(builder.gep(BIAS, [f], inbounds=True)) for f in filters]

            def block(p, vectors, lanes):
                """positions p .. p + vectors*lanes - 1 of the nf filters"""
                vec = ir.VectorType(ftype, lanes)
                running = [[cgutils.alloca_once(builder, vec) for _ in range(nf)]
                           for _ in range(vectors)]
                for f in range(nf):
                    for v in range(vectors):
                        builder.store(ir.Constant(vec, [0.0] * lanes), running[v][f])
                with cgutils.for_range(builder, ntaps_) as loop:
                    t = loop.index
                    at = builder.add(builder.load(builder.gep(TAPS, [t], inbounds=True)), p)

                    def inputs(v):
                        return builder.load(_ir_vector_at(builder, X, builder.add(
                            at, const(v * lanes)), vec), align=4)

                    xs = [inputs(v) for v in range(vectors)] if nf > 1 else None
                    for f in range(nf):
                        w = _ir_splat(builder, builder.load(
                            builder.gep(W, [builder.add(rows[f], t)], inbounds=True)), lanes)
                        for v in range(vectors):
                            builder.store(_ir_fma(builder, xs[v] if xs else inputs(v), w,
                                                  builder.load(running[v][f])), running[v][f])
                for f in range(nf):
                    out = builder.add(builder.mul(filters[f], stride_), p)
                    bias = _ir_splat(builder, bias_of[f], lanes)
                    for v in range(vectors):
                        builder.store(builder.fadd(builder.load(running[v][f]), bias),
                                      _ir_vector_at(builder, ACC, builder.add(
                                          out, const(v * lanes)), vec), align=4)

            end = builder.add(start_, length_)
            step = const(nvec * wide)
            whole = builder.add(start_, builder.mul(builder.sdiv(length_, step), step))
            with cgutils.for_range_slice(builder, start_, whole, step) as (p, _):
                block(p, nvec, wide)
            # the rest one vector at a time: whole wide vectors, then at most one of LANES
            wide_end = whole
            if wide != LANES:
                rest = builder.sub(end, whole)
                wide_end = builder.add(whole, builder.mul(builder.sdiv(rest, const(wide)),
                                                          const(wide)))
                with cgutils.for_range_slice(builder, whole, wide_end, const(wide)) as (p, _):
                    block(p, 1, wide)
            with cgutils.for_range_slice(builder, wide_end, end, const(LANES)) as (p, _):
                block(p, 1, LANES)
            return context.get_dummy_value()

        return sig, codegen

    return sums


_sums1, _sums2, _sums3, _sums4, _sums5, _sums6 = (_block_sums(k) for k in range(1, 7))


@njit(cache=True)
def _blocked_sums(acc, planes, taps, wts, bias, stride, start, length):
    """:func:`_block_sums` for every filter (``bias.shape[0]`` of them), in passes of at most
    MAX_BLOCK_FILTERS filters of about the same size (9 filters: 4 and 5)."""
    if length % LANES or start < 0 or start + length > stride:
        raise ValueError("_blocked_sums: length must be a whole number of vectors within a row")
    f_out = bias.shape[0]
    ntaps = taps.shape[0]
    passes = -(-f_out // MAX_BLOCK_FILTERS)
    f0 = 0
    for k in range(passes):
        nf = (f_out - f0) // (passes - k)  # the filters left, shared among the passes left
        if nf == 1:
            _sums1(acc, planes, taps, wts, bias, ntaps, f0, stride, start, length)
        elif nf == 2:
            _sums2(acc, planes, taps, wts, bias, ntaps, f0, stride, start, length)
        elif nf == 3:
            _sums3(acc, planes, taps, wts, bias, ntaps, f0, stride, start, length)
        elif nf == 4:
            _sums4(acc, planes, taps, wts, bias, ntaps, f0, stride, start, length)
        elif nf == 5:
            _sums5(acc, planes, taps, wts, bias, ntaps, f0, stride, start, length)
        else:
            _sums6(acc, planes, taps, wts, bias, ntaps, f0, stride, start, length)
        f0 += nf


def _ir_transpose8(builder, rows):
    """The 8x8 transpose of eight vectors of LANES (8) values: ``out[i][k] = rows[k][i]``, in
    three rounds of shuffles (pairs of rows interleaved, then pairs of pairs, then the halves
    swapped), which x86 runs as unpack, shufps and vperm2f128 instructions."""
    i32 = ir.IntType(32)

    def shuffle(a, b, mask):
        return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(i32, LANES), mask))

    lo, hi = [0, 8, 1, 9, 4, 12, 5, 13], [2, 10, 3, 11, 6, 14, 7, 15]
    t = []
    for k in range(0, 8, 2):
        t += [shuffle(rows[k], rows[k + 1], lo), shuffle(rows[k], rows[k + 1], hi)]
    # t[0] = r0[0] r1[0] r0[1] r1[1] | r0[4] r1[4] r0[5] r1[5], t[1] the same from [2], [3] ...
    first, second = [0, 1, 8, 9, 4, 5, 12, 13], [2, 3, 10, 11, 6, 7, 14, 15]
    s = []
    for k in (0, 4):
        s += [shuffle(t[k], t[k + 2], first), shuffle(t[k], t[k + 2], second),
              shuffle(t[k + 1], t[k + 3], first), shuffle(t[k + 1], t[k + 3], second)]
    # s[i] (i < 4) holds values i and i + 4 of rows 0..3; s[4 + i] the same of rows 4..7
    low, high = [0, 1, 2, 3, 8, 9, 10, 11], [4, 5, 6, 7, 12, 13, 14, 15]
    return ([shuffle(s[i], s[i + 4], low) for i in range(4)]
            + [shuffle(s[i], s[i + 4], high) for i in range(4)])


def _ir_relu(builder, v):
    """``0 if v <= 0 else v`` (a NaN stays NaN)."""
    zeros = ir.Constant(v.type, [0.0] * LANES)
    return builder.select(builder.fcmp_ordered("<=", v, zeros), zeros, v)


def _ir_pool_windows(builder, ACC, top, wp, vec, relu):
    """``(best, k)``: the 2x2 max pooling of 8 windows of one filter's grid, as vectors (one lane
    a window): window ``k < 8`` covers columns ``2k, 2k+1`` from ``top`` in ``ACC`` and the same
    ``wp`` further. ``best`` its largest value (the first in the order top left, top right,
    bottom left, bottom right; through the ReLU when ``relu``), ``k`` (int32) its position in
    that order, as the scalar loop of :func:`_conv_forward_s1` finds them. The windows' columns
    are split into even and odd by shuffles and compared as vectors."""
    i32, i64 = ir.IntType(32), ir.IntType(64)
    ivec = ir.VectorType(i32, LANES)

    def columns(at):
        """the even and the odd columns of 16 values from ``at``: 8 windows' halves"""
        lo = builder.load(_ir_vector_at(builder, ACC, at, vec), align=4)
        hi = builder.load(_ir_vector_at(builder, ACC, builder.add(at, ir.Constant(i64, LANES)),
                                        vec), align=4)
        return [builder.shuffle_vector(lo, hi, ir.Constant(ivec, list(range(s, 16, 2))))
                for s in (0, 1)]

    best, *others = columns(top) + columns(builder.add(top, wp))
    k = ir.Constant(ivec, [0] * LANES)
    for index, v in enumerate(others, start=1):
        greater = builder.fcmp_ordered(">", v, best)  # the first maximum wins
        k = builder.select(greater, ir.Constant(ivec, [index] * LANES), k)
        best = builder.select(greater, v, best)
    return (_ir_relu(builder, best) if relu else best), k


def _ir_pool_arrays_fit(out, arg, acc, ints):
    """The typing rule of the pooling intrinsics: ``out`` and ``acc`` as :func:`_ir_arrays_fit`
    wants floats, the winners ``arg`` a 1-D C-contiguous int32 array, ``ints`` 64-bit integers."""
    return (_ir_arrays_fit((out, acc), None, ints) and isinstance(arg, types.Array)
            and arg.ndim == 1 and arg.layout == "C" and arg.dtype == types.int32)


def _pooled_blocks(relu):
    """2x2 max pooling of 8 windows x 8 filters of a convolution on its grid, into NHWC, as LLVM
    IR: an intrinsic that numba compiles into the function that calls it.

    ``pool(out, arg, acc, a0, astride, wp, o0, nch)``: filter ``c < 8``'s grid starts at ``a0 +
    c*astride`` in ``acc``, at the top left corner of the first window; window ``k < 8`` covers
    columns ``2k, 2k+1`` of that row and of the next (``wp`` further). Its largest value (through
    the ReLU when ``relu``) goes to ``out[o0 + k*nch + c]`` and its position to ``arg`` (int32),
    as :func:`_ir_pool_windows` finds them for each filter; the 8 x 8 results are transposed
    (:func:`_ir_transpose8`) so that each window's 8 filters are stored as one vector. The
    caller guarantees that every index lies in its array: nothing is bounds-checked.
    """
    @intrinsic
    def pool(typingctx, out, arg, acc, a0, astride, wp, o0, nch):
        if not _ir_pool_arrays_fit(out, arg, acc, (a0, astride, wp, o0, nch)):
            return None
        sig = types.void(out, arg, acc, a0, astride, wp, o0, nch)

        def codegen(context, builder, signature, args):
            a0_, astride_, wp_, o0_, nch_ = args[3:8]
            OUT, ARG, ACC = (_ir_data(context, builder, signature, args, i) for i in range(3))
            vec = ir.VectorType(context.get_value_type(signature.args[0].dtype), LANES)
            ivec = ir.VectorType(ir.IntType(32), LANES)
            i64 = ir.IntType(64)
            bests, winners = [], []
            for c in range(LANES):
                top = builder.add(a0_, builder.mul(ir.Constant(i64, c), astride_))
                best, k = _ir_pool_windows(builder, ACC, top, wp_, vec, relu)
                bests.append(best)
                winners.append(k)
            for k, (v, w) in enumerate(zip(_ir_transpose8(builder, bests),
                                           _ir_transpose8(builder, winners))):
                at = builder.add(o0_, builder.mul(ir.Constant(i64, k), nch_))
                builder.store(v, _ir_vector_at(builder, OUT, at, vec), align=4)
                builder.store(w, _ir_vector_at(builder, ARG, at, ivec), align=4)
            return context.get_dummy_value()

        return sig, codegen

    return pool


def _pooled_column(relu):
    """:func:`_pooled_blocks` for one filter: ``pool(out, arg, acc, a0, wp, o0, nch)`` pools the
    8 windows of the filter whose grid starts at ``a0`` (16 values from ``a0`` and 16 from ``a0 +
    wp``) into ``out[o0 + k*nch]`` and ``arg[o0 + k*nch]`` (``k < 8``), a value at a time (no
    transpose): for the filters past the last whole 8 (POOL_COLUMNS). The caller guarantees
    that every index lies in its array: nothing is bounds-checked."""
    @intrinsic
    def pool(typingctx, out, arg, acc, a0, wp, o0, nch):
        if not _ir_pool_arrays_fit(out, arg, acc, (a0, wp, o0, nch)):
            return None
        sig = types.void(out, arg, acc, a0, wp, o0, nch)

        def codegen(context, builder, signature, args):
            a0_, wp_, o0_, nch_ = args[3:7]
            OUT, ARG, ACC = (_ir_data(context, builder, signature, args, i) for i in range(3))
            vec = ir.VectorType(context.get_value_type(signature.args[0].dtype), LANES)
            i32, i64 = ir.IntType(32), ir.IntType(64)
            best, k = _ir_pool_windows(builder, ACC, a0_, wp_, vec, relu)
            for j in range(LANES):
                at = builder.add(o0_, builder.mul(ir.Constant(i64, j), nch_))
                lane = ir.Constant(i32, j)
                builder.store(builder.extract_element(best, lane),
                              builder.gep(OUT, [at], inbounds=True))
                builder.store(builder.extract_element(k, lane),
                              builder.gep(ARG, [at], inbounds=True))
            return context.get_dummy_value()

        return sig, codegen

    return pool


_pool_block, _pool_block_relu = _pooled_blocks(False), _pooled_blocks(True)
_pool_column, _pool_column_relu = _pooled_column(False), _pooled_column(True)


def _transposed_blocks(op, narrow=False):
    """An 8 x 8 block copied across, as LLVM IR: ``copy(dst, src, mask, s0, sstride, d0,
    dstride)`` loads the 8 vectors ``src[s0 + k*sstride :][:8]`` (``k < 8``), transposes them
    (:func:`_ir_transpose8`) and stores vector ``i`` at ``dst[d0 + i*dstride:]``: 8 pixels x 8
    channels of an NHWC image to 8 channel planes, or back. ``op``: None, ``"relu"`` (``0 if v <=
    0 else v``) or ``"mask"`` (ReLU's backward, ``v * [m > 0]``, ``m`` loaded from ``mask`` as
    ``v`` from ``src``). With ``narrow``, a last argument ``rows`` (4 to 8): only the vectors
    ``k < rows`` are loaded, the others are zeros (a row of fewer than 8 pixels; its stores still
    write 8 values, zeros past the row). The caller guarantees that every index lies in its
    array."""
    def codegen(context, builder, signature, args):
        s0_, sstride_, d0_, dstride_ = args[3:7]
        DST, SRC, MASK = (_ir_data(context, builder, signature, args, i) for i in range(3))
        vec = ir.VectorType(context.get_value_type(signature.args[0].dtype), LANES)
        i64 = ir.IntType(64)
        zeros = ir.Constant(vec, [0.0] * LANES)

        def row(k):
            """vector k, loaded, through ``op``"""
            at = builder.add(s0_, builder.mul(ir.Constant(i64, k), sstride_))
            v = builder.load(_ir_vector_at(builder, SRC, at, vec), align=4)
            if op == "relu":
                v = _ir_relu(builder, v)
            elif op == "mask":  # v * [m > 0]: a float 1 or 0, as the scalar loop multiplies
                m = builder.load(_ir_vector_at(builder, MASK, at, vec), align=4)
                on = builder.select(builder.fcmp_ordered(">", m, zeros),
                                    ir.Constant(vec, [1.0] * LANES), zeros)
                v = builder.fmul(v, on)
            return v

        rows = []
        for k in range(LANES):
            if not (narrow and k >= LANES // 2):
                rows.append(row(k))
                continue
            # a narrow row's vector k: loaded only where the row has pixel k, else zeros
            with builder.if_else(builder.icmp_signed("<", ir.Constant(i64, k),
                                                     args[7])) as (there, past):
                with there:
                    v = row(k)
                    loaded = builder.block
                with past:
                    skipped = builder.block
            merged = builder.phi(vec)
            merged.add_incoming(v, loaded)
            merged.add_incoming(zeros, skipped)
            rows.append(merged)
        for i, v in enumerate(_ir_transpose8(builder, rows)):
            at = builder.add(d0_, builder.mul(ir.Constant(i64, i), dstride_))
            builder.store(v, _ir_vector_at(builder, DST, at, vec), align=4)
        return context.get_dummy_value()

    def typed(dst, src, mask, *ints):
        if not _ir_arrays_fit((dst, src, mask), None, ints):
            return None
        return types.void(dst, src, mask, *ints), codegen

    if narrow:
        @intrinsic
        def copy(typingctx, dst, src, mask, s0, sstride, d0, dstride, rows):
            return typed(dst, src, mask, s0, sstride, d0, dstride, rows)
    else:
        @intrinsic
        def copy(typingctx, dst, src, mask, s0, sstride, d0, dstride):
            return typed(dst, src, mask, s0, sstride, d0, dstride)

    return copy


_copy_block, _copy_block_relu, _copy_block_mask = (_transposed_blocks(op)
                                                   for op in (None, "relu", "mask"))
_narrow_block, _narrow_block_mask = (_transposed_blocks(op, narrow=True) for op in (None, "mask"))


# Vectors of positions in each row of a pass of :func:`_row_sums` (float32; half as many in
# float64): with two rows a pass, 2 x 4 running sums, two weights and an input row's 4 vectors
# fill 14 of AVX2's 16 registers.
ROW_VECTORS = 4
# Grid rows a pass of a one-channel dL/dx computes (:func:`_row_sums`, kernels of at least 3
# rows): 4 where numba compiles for AVX-512, with 32 registers for the 4 x 2 running sums, four
# weights and an input row; else 2 (AVX2's 16 registers hold the sums of two rows). The same
# bits either way. Measured (AVX-512, batch 128, three alternating rounds, conv2d_backward with
# dL/dx): cnn_digits l1 (28x28x1, 5x5, 9 filters) 0.78-0.79 ms against 0.83-0.88 with passes of
# 2 rows on two threads, 1.54-1.55 against 1.63-1.67 on one (its dL/dx alone, one thread: 0.53
# against 0.66); cnn_fashion_3 l1 (7x7) 1.26-1.31 against 1.41-1.44 on two threads, 2.42-2.49
# against 2.72-2.74 on one. Passes of 6 rows (5x5) and 7 (7x7) were no faster than 4.
PASS_ROWS = 4 if WIDE_LANES > LANES else 2


def _row_sums(rows):
    """The sums of a convolution with one output plane (``dL/dx`` of a one-channel input: asked
    of a model's first layer only for the input's gradient, and of a one-channel convolution
    after it) over a pass of ``rows`` grid rows, as LLVM IR: an intrinsic that numba compiles
    into the function that calls it.

    ``row_sums(acc, planes, cols, wcol, kh, p, wp)`` does, for the ``ROW_VECTORS`` vectors of
    positions ``q`` from ``p + r*wp`` (row ``r < rows`` of the pass; half as many vectors in
    float64; in float32 with AVX-512 the same positions in vectors of WIDE_LANES)::

        acc[q] = sum over columns c < cols.shape[0] and m < kh of
                     wcol[c*kh + m] * planes[cols[c] + q + m*wp]

    a column being ``kh`` taps one grid row apart (a kernel column ``(j, f)``); ``kh`` must be at
    least ``rows - 1``. With one output plane, :func:`_block_sums` feeds each vector it loads to
    one FMA and waits on its loads. Here the input row that tap ``m`` reads for output row ``r``
    is the one tap ``m + 1`` reads for row ``r - 1``: the ``kh + rows - 1`` input rows under the
    pass are loaded once each and feed up to ``rows`` FMAs (a column: ``kh + rows - 1`` vector
    loads for each vector of positions and ``kh`` weights, for ``rows*kh`` FMAs a vector;
    against one load for one FMA). Each output row adds its column's taps in the order ``m = 0,
    1, ..`` and the columns in order, whatever ``rows`` is: passes of 2 and of 4 rows give the
    same sums, bit for bit. The caller guarantees that every ``q + cols[c] + m*wp`` lies in
    ``planes`` and every ``q`` in ``acc``: the loads and stores are not bounds-checked.

    What bounds it (AVX-512, one thread, cnn_digits l1's dL/dx: 28x28 images, 5x5, 9 filters,
    batch 128, the planes in cache): with 2 rows a pass, 0.61 ms, 73 GFLOP/s, about 20 cycles
    for a column's 20 FMAs (at the 2.6 GHz that sgemm's best implies). Its 12 vector loads
    mostly straddle two cache lines (the passes start at ``left``, the columns one position
    apart); at about one such load a cycle they account for most of it, and two passes at once,
    8 running sums instead of 4 (the FMAs' latency), were no faster. Nor were aligned loads with
    a permute (``vpermi2var``) forming each shifted vector: 0.88 ms against 0.59 (the permutes
    take the port of half the FMAs). Passes of 4 rows load 8 input rows (16 vectors) for a
    column's 40 FMAs, instead of 6 rows (12 vectors) for 20 (see ``PASS_ROWS`` for what they
    measured).
    """
    if rows < 2:
        raise ValueError("_row_sums: a pass has at least two rows")

    @intrinsic
    def row_sums(typingctx, acc, planes, cols, wcol, kh, p, wp):
        if not _ir_arrays_fit((acc, planes, wcol), cols, (kh, p, wp)):
            return None
        sig = types.void(acc, planes, cols, wcol, kh, p, wp)
        nvec = max(1, ROW_VECTORS * 32 // acc.dtype.bitwidth)  # as _pass_width counts them
        lanes = LANES
        if acc.dtype.bitwidth == 32 and WIDE_LANES > LANES:
            lanes, nvec = WIDE_LANES, nvec * LANES // WIDE_LANES  # the same positions, wider
            if nvec * lanes != ROW_VECTORS * LANES:  # what _pass_width tells the callers
                raise ValueError("_row_sums: ROW_VECTORS must fill whole wide vectors")

        def codegen(context, builder, signature, args):
            kh_, p_, wp_ = args[4:7]
            ACC, X, COLS, W = (_ir_data(context, builder, signature, args, i) for i in range(4))
            ncols = _ir_length(context, builder, signature, args, 2)
            vec = ir.VectorType(context.get_value_type(signature.args[0].dtype), lanes)
            i64 = ir.IntType(64)

            def const(v):
                return ir.Constant(i64, v)

            zeros = ir.Constant(vec, [0.0] * lanes)
            sums = [[cgutils.alloca_once_value(builder, zeros) for _ in range(nvec)]
                    for _ in range(rows)]
            # taps[r]: the weight that output row r takes from the input row loaded now, tap
            # m - r (taps[0] is loaded with the row; taps[r] is taps[r - 1] of the row before)
            taps = [cgutils.alloca_once(builder, vec) for _ in range(rows)]

            def add(row, xs, w):
                for v in range(nvec):
                    builder.store(_ir_fma(builder, xs[v], w, builder.load(sums[row][v])),
                                  sums[row][v])

            def shift_taps():  # the next input row: each row's tap moves one row down
                for r in range(rows - 1, 0, -1):
                    builder.store(builder.load(taps[r - 1]), taps[r])

            with cgutils.for_range(builder, ncols) as loop:
                c = loop.index
                start = builder.add(builder.load(builder.gep(COLS, [c], inbounds=True)), p_)
                c_kh = builder.mul(c, kh_)

                def inputs(m):  # the input row m rows below the pass's first row
                    at = builder.add(start, builder.mul(m, wp_))
                    return [builder.load(_ir_vector_at(builder, X, builder.add(
                        at, const(v * lanes)), vec), align=4) for v in range(nvec)]

                def load_tap(m):  # weight m of the column, for output row 0
                    shift_taps()
                    builder.store(_ir_splat(builder, builder.load(builder.gep(
                        W, [builder.add(c_kh, m)], inbounds=True)), lanes), taps[0])

                # input rows 0 .. rows-2: output rows 0 .. m (those whose first tap has come)
                for m in range(rows - 1):
                    xs = inputs(const(m))
                    load_tap(const(m))
                    for r in range(m + 1):
                        add(r, xs, builder.load(taps[r]))
                # input rows rows-1 .. kh-1: every output row
                with cgutils.for_range_slice(builder, const(rows - 1), kh_, const(1)) as (m, _):
                    xs = inputs(m)
                    load_tap(m)
                    for r in range(rows):
                        add(r, xs, builder.load(taps[r]))
                # input rows kh .. kh+rows-2: output rows e+1 .. rows-1 (those with taps left)
                for e in range(rows - 1):
                    xs = inputs(builder.add(kh_, const(e)))
                    shift_taps()
                    for r in range(e + 1, rows):
                        add(r, xs, builder.load(taps[r]))
            for r in range(rows):
                row = builder.add(p_, builder.mul(const(r), wp_))
                for v in range(nvec):
                    builder.store(builder.load(sums[r][v]), _ir_vector_at(
                        builder, ACC, builder.add(row, const(v * lanes)), vec), align=4)
            return context.get_dummy_value()

        return sig, codegen

    return row_sums


_pair_rows, _four_rows = _row_sums(2), _row_sums(4)


# Taps of one pass of the dL/dw sums for 2 and 1 filters: 2 x 6 (1 x 8) running sums, the
# filters' gradients and an input fill 15 (10) of AVX2's 16 vector registers (float32). Where
# numba compiles for AVX-512, with its 32 registers, passes take 3 filters (DOT_FILTERS) and 8
# taps: 24 sums, 3 gradients and an input (elsewhere only the tests run passes of 3). A vector
# of positions then loads 11 vectors for 24 FMAs instead of 8 for 12. Alternating with passes
# of 2 filters (two threads, batch 128): dL/dw of the 14x14x9 images with 5x5 kernels took
# 0.81-0.84 ms instead of 0.97-1.06 (with laying dz out), of 28x28x1 with 5x5 0.646 instead of
# 0.71-0.73; 9 taps a pass was no faster. Of a pass's 11 loads, the 8 of inputs straddle two
# cache lines (a tap's shift is seldom a whole line): hot, one thread, the residual CNN's l2 (a
# group's 225 taps x 9 filters), the dots ran 107-119 GFLOP/s, and 135 with every tap's shift
# made a whole line. Passes of 9 filters x 2 taps, 6 x 3 and 5 x 4 (fewer of the loads
# straddling) were no faster in the kernel (alternating, two rounds).
DOT_TAPS = {3: 8, 2: 6, 1: 8}
DOT_FILTERS = 3 if WIDE_LANES > LANES else 2


def _ir_sums_of_lanes(builder, vectors):
    """``[sum of the floats of v for v in vectors]``, added as a tree that serves several vectors
    with each vector addition: two vectors' halves are shuffled into one vector of half-length
    sums of both (lanes ``k`` and ``k + half`` of a segment added), until every lane holds the
    sum of one vector. 12 vectors of 16 floats take 4 levels of 6, 3, 2 and 1 additions (and
    twice as many shuffles) instead of 4 additions and 4 shuffles each; each vector's floats are
    added in the same order either way (halving it, as a tree of one)."""
    i32 = ir.IntType(32)
    lanes = vectors[0].type.count
    zeros = ir.Constant(vectors[0].type, [0.0] * lanes)
    level = [(v, [k]) for k, v in enumerate(vectors)]  # (vector, whose sums its segments hold)
    seg = lanes  # the floats of one vector's segment
    while seg > 1:
        if len(level) % 2:  # a vector of zeros beside the last one
            level.append((zeros, [None] * (lanes // seg)))
        half = seg // 2
        pairs, level = level, []
        for (a, held_a), (b, held_b) in zip(pairs[::2], pairs[1::2]):
            # output segment j: segment j of a, then (j - lanes/seg) of b, each halved
            m = lanes // seg
            low = [(0 if j < m else lanes) + (j % m) * seg + q for j in range(2 * m)
                   for q in range(half)]
            high = [i + half for i in low]
            pick = [builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(i32, lanes), idx))
                    for idx in (low, high)]
            level.append((builder.fadd(*pick), held_a + held_b))
        seg = half
    sums = [None] * len(vectors)
    for v, held in level:
        for lane, k in enumerate(held):
            if k is not None:
                sums[k] = builder.extract_element(v, ir.Constant(i32, lane))
    return sums


def _tap_dots(nf):
    """The sums of dL/dw for ``nf`` filters (1, 2 or 3), as LLVM IR: an intrinsic that numba
    compiles into the function that calls it.

    ``dots(out, planes, taps, d, f0, dstride, dstart, length, runs, period)`` does, for every
    tap ``t`` (of ``taps.shape[0]``) and ``f0 <= f < f0 + nf``::

        out[f, t] += sum over the positions p = r*period + q, r < runs, q < length,
                     of planes[taps[t] + p] * d[f*dstride + dstart + p]

    ``out`` is (F, ntaps + 1) (its last column, dL/db, is not touched), ``length`` a multiple of
    LANES: ``runs`` runs of ``length`` positions, one every ``period`` (one run: the positions
    below ``length``; an image's output rows in each of its runs: its padding rows, where ``d``
    is 0, left out). A pass takes ``DOT_TAPS[nf]`` taps (half as many in float64; one at a time
    for the rest) with their nf running sums of vectors (of WIDE_LANES in float32, and a last
    one of LANES where a run's length leaves it) in registers over all the positions: each
    vector of positions loads ``nf`` vectors of ``d`` and one of inputs a tap, for ``nf`` FMAs a
    tap; the sums' lanes are added up at the end of the pass (:func:`_ir_sums_of_lanes`). The
    caller guarantees that ``taps[t] + (runs-1)*period + length`` lies in ``planes`` and
    ``f*dstride + dstart + (runs-1)*period + length`` in ``d``: the loads are not
    bounds-checked.
    """
    @intrinsic
    def dots(typingctx, out, planes, taps, d, f0, dstride, dstart, length, runs, period):
        if not (_ir_arrays_fit((planes, d), taps, (f0, dstride, dstart, length, runs, period))
                and isinstance(out, types.Array) and out.ndim == 2 and out.layout == "C"
                and out.dtype == planes.dtype):
            return None
        sig = types.void(out, planes, taps, d, f0, dstride, dstart, length, runs, period)
        ntile = max(1, DOT_TAPS[nf] * 32 // planes.dtype.bitwidth)
        # float32 in vectors of WIDE_LANES where they are wider (the same taps a pass: 12
        # taps for 2 filters, 24 sums, were no faster)
        wide = WIDE_LANES if planes.dtype.bitwidth == 32 else LANES

        def codegen(context, builder, signature, args):
            f0_, dstride_, dstart_, length_, runs_, period_ = args[4:10]
            outs = context.make_array(signature.args[0])(context, builder, args[0])
            OUT = outs.data
            ostride = builder.extract_value(outs.shape, 1)
            X, TAPS, D = (_ir_data(context, builder, signature, args, i) for i in (1, 2, 3))
            ntaps = _ir_length(context, builder, signature, args, 2)
            ftype = context.get_value_type(signature.args[1].dtype)
            vec = ir.VectorType(ftype, wide)
            narrow = ir.VectorType(ftype, LANES)
            narrow_zeros = ir.Constant(narrow, [0.0] * LANES)
            i64 = ir.IntType(64)

            def const(v):
                return ir.Constant(i64, v)

            filters = [builder.add(f0_, const(f)) for f in range(nf)]
            drows = [builder.add(builder.mul(f, dstride_), dstart_) for f in filters]
            running = [[cgutils.alloca_once(builder, vec) for _ in range(nf)]
                       for _ in range(ntile)]
            zeros = ir.Constant(vec, [0.0] * wide)
            # the positions in whole wide vectors, then at most one vector of LANES
            wide_end = builder.mul(builder.sdiv(length_, const(wide)), const(wide))

            def tile(t, count):
                """taps t .. t + count - 1"""
                starts = [builder.load(builder.gep(TAPS, [builder.add(t, const(k))],
                                                   inbounds=True)) for k in range(count)]

                def accumulate(p, vtype, sums):
                    """sums[k][f] += the products at the vector of positions from p"""
                    ds = [builder.load(_ir_vector_at(builder, D, builder.add(row, p), vtype),
                                       align=4) for row in drows]
                    for k in range(count):
                        xv = builder.load(_ir_vector_at(builder, X, builder.add(starts[k], p),
                                                        vtype), align=4)
                        for f in range(nf):
                            builder.store(_ir_fma(builder, xv, ds[f],
                                                  builder.load(sums[k][f])), sums[k][f])

                for k in range(count):
                    for f in range(nf):
                        builder.store(zeros, running[k][f])
                with cgutils.for_range(builder, runs_) as run:
                    base = builder.mul(run.index, period_)
                    with cgutils.for_range_slice(builder, base, builder.add(base, wide_end),
                                                 const(wide)) as (p, _):
                        accumulate(p, vec, running)
                flat = _ir_sums_of_lanes(builder, [builder.load(running[k][f])
                                                   for k in range(count) for f in range(nf)])
                totals = [[cgutils.alloca_once_value(builder, flat[k * nf + f])
                           for f in range(nf)] for k in range(count)]
                if wide > LANES:  # the last LANES positions of each run, when they are left
                    with builder.if_then(builder.icmp_signed("<", wide_end, length_)):
                        last = [[cgutils.alloca_once_value(builder, narrow_zeros)
                                 for f in range(nf)] for k in range(count)]
                        with cgutils.for_range(builder, runs_) as run:
                            base = builder.mul(run.index, period_)
                            with cgutils.for_range_slice(builder, builder.add(base, wide_end),
                                                         builder.add(base, length_),
                                                         const(LANES)) as (p, _):
                                accumulate(p, narrow, last)
                        tail = _ir_sums_of_lanes(builder, [builder.load(last[k][f])
                                                           for k in range(count)
                                                           for f in range(nf)])
                        for k in range(count):
                            for f in range(nf):
                                builder.store(builder.fadd(builder.load(totals[k][f]),
                                                           tail[k * nf + f]), totals[k][f])
                totals = [[builder.load(totals[k][f]) for f in range(nf)] for k in range(count)]
                for k in range(count):
                    for f in range(nf):
                        at = builder.gep(OUT, [builder.add(builder.mul(filters[f], ostride),
                                                           builder.add(t, const(k)))],
                                         inbounds=True)
                        builder.store(builder.fadd(builder.load(at), totals[k][f]), at)

            step = const(ntile)
            whole = builder.mul(builder.sdiv(ntaps, step), step)
            with cgutils.for_range_slice(builder, const(0), whole, step) as (t, _):
                tile(t, ntile)
            with cgutils.for_range_slice(builder, whole, ntaps, const(1)) as (t, _):
                tile(t, 1)
            return context.get_dummy_value()

        return sig, codegen

    return dots


_dots1, _dots2, _dots3 = _tap_dots(1), _tap_dots(2), _tap_dots(3)


@njit(cache=True)
def _winners_one_by_one(dout, y, arg, relu, n0, nb, image, ph, pw, wpad, c_in, shift, offs,
                        dvals, counts):
    """Each filter ``f``'s windows with a non-zero gradient among images ``n0 .. n0+nb-1``, in
    their order (image by image, column by column: a filter's consecutive winners then lie in
    different image rows, so that their dL/dx rows do not overlap; a load that overlaps a store
    still in flight waits for it, measured 1.5x slower in row order): ``offs[f, :counts[f]]``
    where each winner's patch starts in the group's padded copies (``image`` elements an image,
    rows of ``wpad`` pixels of ``c_in`` channels; ``shift``: a window element's offset),
    ``dvals[f, :counts[f]]`` its gradient (through ReLU's backward, ``dy * [y > 0]``, when
    ``relu``). Windows of one position (``ph = pw = 1``) do not read ``arg``.

    Window by window, the filters innermost (contiguous reads), then each filter's list
    compacted in place (the count in a register: counting in memory while the windows came in
    made each write wait for the previous count, 2x slower), written always and kept when
    non-zero (no branch to mispredict). Windows of one position take their offsets from a table
    of bases (one store less a window and filter: the residual CNN's l2, 5x5x9, batch 128, two
    threads, with no non-zero gradient: 0.70 -> 0.51 ms; its l2_2 at 0.16 of them: 0.80 -> 0.62
    ms). :func:`_winners_by_planes` finds the same lists faster where the windows and filters
    fill 8 x 8 blocks."""
    _, po_n, qo_n, f_out = dout.shape
    zero = dout.dtype.type(0)
    one = ph * pw == 1
    bases = np.empty(nb * po_n * qo_n if one else 0, np.int64)
    p = 0  # every window, in the order the winners are listed
    for b in range(nb):
        at = b * image
        for qo in range(qo_n):
            for po in range(po_n):
                base = at + (po * ph * wpad + qo * pw) * c_in
                drow = dout[n0 + b, po, qo]
                yrow = y[n0 + b, po, qo]
                if one:  # a window of one position: its offset, the same for every filter
                    bases[p] = base
                    for f in range(f_out):
                        d = drow[f]
                        if relu:
                            d = d * (yrow[f] > zero)  # relu_backward: dy * [y > 0]
                        dvals[f, p] = d
                    p += 1
                    continue
                arow = arg[n0 + b, po, qo]
                for f in range(f_out):
                    d = drow[f]
                    if relu:
                        d = d * (yrow[f] > zero)
                    offs[f, p] = base + shift[arow[f]]
                    dvals[f, p] = d
                p += 1
    for f in range(f_out):
        of, dv = offs[f], dvals[f]
        k = 0
        if one:
            for q in range(p):
                d = dv[q]
                of[k] = bases[q]
                dv[k] = d
                k += d != zero
        else:
            for q in range(p):
                d = dv[q]
                of[k] = of[q]
                dv[k] = d
                k += d != zero
        counts[f] = k


@njit(cache=True)
def _window_planes(dout, y, arg, relu, n0, nb, one, dz):
    """Images ``n0 .. n0+nb-1``'s windows as planes, filter by window (image by image, row by
    row), in 8 x 8 blocks transposed in registers (:func:`_from_image`): their gradients
    (through ReLU's backward when ``relu``) into ``dz``, and their winners, returned (none for
    windows of one position, ``one``): the int32 winners go across as the float32 words they
    are, moved, never computed with."""
    _, po_n, qo_n, f_out = dout.shape
    count = po_n * qo_n  # windows an image
    winners = np.empty((f_out, nb * count if not one else 0), np.int32)
    arg_words, winner_words = arg.view(np.float32), winners.view(np.float32)
    for b in range(nb):
        _from_image(dz, b * count, qo_n, dout[n0 + b], y[n0 + b], relu)
        if not one:
            _from_image(winner_words, b * count, qo_n, arg_words[n0 + b], arg_words[n0 + b],
                        False)
    return winners


@njit(cache=True)
def _winners_by_planes(dout, y, arg, relu, n0, nb, image, ph, pw, wpad, c_in, shift, offs,
                       dvals, counts):
    """:func:`_winners_one_by_one`'s lists, the same numbers in the same order, for rows of at
    least 8 windows and at least 8 filters: the windows' gradients (through ReLU's backward) and
    winners are laid as planes, filter by window (:func:`_window_planes`); then each filter's
    list is one flat loop over its planes, through
    tables of the windows' order and of where their patches start. cnn_fashion_3's l1 backward
    (14 x 14 windows, 9 filters, its real gradients, batch 128): 0.81-0.82 ms against 0.94-0.99
    window by window on one thread, 0.41 against 0.45 on two (alternating processes). (Loops over
    the images, rows and columns instead of the tables took 3x as long as the flat loop.)"""
    _, po_n, qo_n, f_out = dout.shape
    zero = dout.dtype.type(0)
    one = ph * pw == 1
    count = po_n * qo_n  # windows an image
    dz = np.empty((f_out, nb * count), dout.dtype)
    winners = _window_planes(dout, y, arg, relu, n0, nb, one, dz)
    order = np.empty(nb * count, np.int64)  # the windows in the order of the lists: their place
    bases = np.empty(nb * count, np.int64)  # in the planes, where their patches start
    p = 0
    for b in range(nb):
        for qo in range(qo_n):
            for po in range(po_n):
                order[p] = (b * po_n + po) * qo_n + qo
                bases[p] = b * image + (po * ph * wpad + qo * pw) * c_in
                p += 1
    for f in range(f_out):
        of, dv, d_f, w_f = offs[f], dvals[f], dz[f], winners[f]
        k = 0
        if one:
            for j in range(p):
                d = d_f[order[j]]
                of[k] = bases[j]
                dv[k] = d
                k += d != zero
        else:
            for j in range(p):
                q = order[j]
                d = d_f[q]
                of[k] = bases[j] + shift[w_f[q]]
                dv[k] = d
                k += d != zero
        counts[f] = k


@njit(cache=True)
def _windows_by_planes(dout, y, arg, relu, n0, nb, image, ph, pw, wpad, c_in, shift, offs,
                       dvals, counts):
    """Without dL/dx, where :func:`_winners_by_planes` would run: each filter's list holds every
    window, in the planes' order (image by image, row by row), zero gradients included, so that
    ``dvals[f]`` is the filter's plane of gradients itself (through ReLU's backward, written
    there by :func:`_window_planes`) and ``offs[f, j]`` the patch of window ``j``'s winner, one
    pass with no branch. A zero gradient adds ``0 * x`` to dL/dw, which leaves the sums as they
    are (a sum that starts at +0 is never -0; an infinite or NaN pixel gives NaN, as in the
    reference's dense products); the winners' lists skip them, and were worth it only for
    mostly-zero gradients: the first layers of the report's CNNs get about 0.85 of them
    non-zero. Their l1 backward in training (batch 128, two threads, alternating processes):
    cnn_fashion_3 0.44-0.47 ms against 0.48-0.55 with the lists, cnn_digits 0.41-0.42 against
    0.44-0.49 (the lists' flat loop, a store wherever the count lands, and their column order,
    which only dL/dx's stores need, cost more than the FMAs of the zeros)."""
    _, po_n, qo_n, f_out = dout.shape
    count = po_n * qo_n  # windows an image
    one = ph * pw == 1
    winners = _window_planes(dout, y, arg, relu, n0, nb, one, dvals)
    bases = np.empty(nb * count, np.int64)  # where the windows' patches start, in plane order
    p = 0
    for b in range(nb):
        for po in range(po_n):
            for qo in range(qo_n):
                bases[p] = b * image + (po * ph * wpad + qo * pw) * c_in
                p += 1
    for f in range(f_out):
        of = offs[f]
        if one:
            of[:p] = bases
        else:
            w_f = winners[f]
            for j in range(p):
                of[j] = bases[j] + shift[w_f[j]]
        counts[f] = p


@njit(cache=True, fastmath=_FMA)
def _winners_group(dout, y, arg, relu, x, n0, nb, wpad, image, top, left, ph, pw, shift,
                   wrows, row, need_dx, dx, part, xpad, dxpad, offs, dvals, counts, acc):
    """Images ``n0 .. n0+nb-1`` (``xpad`` and ``dxpad`` zeros on entry): their padded NHWC
    copies in ``xpad`` (image ``b`` at ``b * image``), each filter's winners with a non-zero
    gradient, or every winner (:func:`_windows_by_planes`) (``offs``: where the patch starts
    in ``xpad``, ``dvals``: the gradient), then ``dL/dw`` into ``part[f, t]`` (``t = (i*KW +
    j)*C + c``, ``row = KW*C`` floats a kernel row), ``dL/db`` into ``part[f, ntaps]`` and, when
    ``need_dx``, ``dL/dx`` into ``dx``."""
    _, h_in, w_in, c_in = x.shape
    _, _, qo_n, f_out = dout.shape
    kh = wrows.shape[1]
    span = w_in * c_in
    zero = x.dtype.type(0)
    for b in range(nb):
        at = b * image
        xb = x[n0 + b].reshape(h_in, span)
        for h in range(h_in):
            dst = xpad[at + ((h + top) * wpad + left) * c_in:]
            src = xb[h]
            for k in range(span):
                dst[k] = src[k]
    # each filter's winners with a non-zero gradient, in the same order either way; without
    # dL/dx, from planes, every window of a pooling (windows of one position, the unpooled
    # backward's, are listed only where most gradients are 0: _winners_pay)
    if qo_n >= LANES and f_out >= LANES and not need_dx and ph * pw > 1:
        _windows_by_planes(dout, y, arg, relu, n0, nb, image, ph, pw, wpad, c_in, shift, offs,
                           dvals, counts)
    elif qo_n >= LANES and f_out >= LANES:
        _winners_by_planes(dout, y, arg, relu, n0, nb, image, ph, pw, wpad, c_in, shift, offs,
                           dvals, counts)
    else:
        _winners_one_by_one(dout, y, arg, relu, n0, nb, image, ph, pw, wpad, c_in, shift, offs,
                            dvals, counts)
    for f in range(f_out):
        part[f, kh * row] += _vector_sum(dvals[f], counts[f])  # dL/db (the zeros add nothing)
    for f in range(f_out):
        # the rows of dL/dw the loop below leaves (first of them: dw_from); dL/dx is theirs too
        dw_from = 0
        if row <= LANES:  # rows of one vector (one channel): dL/dw up to LANES rows a pass
            for i0 in range(0, kh - 1, LANES):  # (a last, lone row: below)
                nrows = min(LANES, kh - i0)
                acc[:] = zero
                _patch_winner_rows(nrows, xpad, offs[f], dvals[f], counts[f], i0 * wpad * c_in,
                                   wpad * c_in, acc)
                for r in range(nrows):
                    for k in range(row):
                        part[f, (i0 + r) * row + k] += acc[r * LANES + k]
                dw_from = i0 + nrows
        bias = part[f, kh * row]
        finite = bias - bias == zero  # inf or NaN among the filter's gradients: not finite
        # dL/dw of the rows from dw_from, dL/dx of every row (when asked): the same sums either way
        for i in range(0 if need_dx else dw_from, kh):
            for col in range(0, row, MAX_VECTORS * LANES):  # a long row in passes
                width = min(row - col, MAX_VECTORS * LANES)
                nvec = (width + LANES - 1) // LANES
                acc[:] = zero
                # dL/dx past the row: + 0 * d (wrows is 0 there), exact when d is finite
                valid = LANES if finite else width - (nvec - 1) * LANES
                _winner_rows(nvec, xpad, dxpad, offs[f], dvals[f], counts[f],
                             i * wpad * c_in + col, wrows[f, i, col:], acc, valid, need_dx)
                if i >= dw_from:
                    for k in range(width):
                        part[f, i * row + col + k] += acc[k]
    if need_dx:
        for b in range(nb):
            dxb = dx[n0 + b].reshape(h_in, span)
            for h in range(h_in):
                src = dxpad[b * image + ((h + top) * wpad + left) * c_in:]
                dst = dxb[h]
                for k in range(span):
                    dst[k] = src[k]


@njit(parallel=True, cache=True)
def _conv_pool_backward_s1(dout, y, arg, relu, x, kernel, top, left, hpad, wpad, ph, pw, group,
                           need_dx, dx, part):
    """Backward of :func:`_conv_forward_s1` with pooling, from the winners (see the module doc):
    ``dout`` (N, PO, QO, F) the gradient of the pooled output ``y``, ``arg`` each window's
    winner (``i*pw + j``). The images' padded copies are ``(hpad, wpad)`` (what the kernel rows
    of a window at the last output position reach). Group ``g`` of ``group`` images adds its
    ``dL/dw`` and ``dL/db`` to ``part[g]`` (as :func:`_conv_backward_s1`); ``dx`` receives
    ``dL/dx`` when ``need_dx``."""
    n_img, _, _, c_in = x.shape
    kh, kw, _, f_out = kernel.shape
    _, po_n, qo_n, _ = dout.shape
    row = kw * c_in
    width = _whole_vectors(row)
    # the weights as rows: wrows[f, i, j*C + c] = kernel[i, j, c, f], zero-padded to whole vectors
    wrows = np.zeros((f_out, kh, width), x.dtype)
    for i in range(kh):
        for j in range(kw):
            for c in range(c_in):
                for f in range(f_out):
                    wrows[f, i, j * c_in + c] = kernel[i, j, c, f]
    shift = np.empty(ph * pw, np.int64)  # window element k = i*pw + j -> its offset in an image
    for k in range(ph * pw):
        shift[k] = ((k // pw) * wpad + k % pw) * c_in
    image = hpad * wpad * c_in
    for g in prange((n_img + group - 1) // group):
        n0 = g * group
        nb = min(group, n_img - n0)
        # + one vector: the last row's loads run past its end (into zeros)
        xpad = np.zeros(nb * image + width, x.dtype)
        dxpad = np.zeros(nb * image + width if need_dx else 0, x.dtype)
        offs = np.empty((f_out, nb * po_n * qo_n), np.int64)
        dvals = np.empty((f_out, nb * po_n * qo_n), x.dtype)
        _winners_group(dout, y, arg, relu, x, n0, nb, wpad, image, top, left, ph, pw, shift,
                       wrows, row, need_dx, dx, part[g], xpad, dxpad, offs, dvals,
                       np.zeros(f_out, np.int64), np.zeros(max(width, LANES * LANES), x.dtype))


@njit(parallel=True, cache=True)
def _im2col(x, kh, kw, sh, sw, top, left, oh_n, ow_n, cols):
    n_img, h_in, w_in, c_in = x.shape
    zero = x.dtype.type(0)
    for n in prange(n_img):
        for oh in range(oh_n):
            for ow in range(ow_n):
                row = (n * oh_n + oh) * ow_n + ow
                for i in range(kh):
                    h = oh * sh + i - top
                    for j in range(kw):
                        w = ow * sw + j - left
                        col = (i * kw + j) * c_in
                        if 0 <= h < h_in and 0 <= w < w_in:
                            for c in range(c_in):
                                cols[row, col + c] = x[n, h, w, c]
                        else:
                            for c in range(c_in):
                                cols[row, col + c] = zero


@njit(parallel=True, cache=True)
def _col2im(cols, kh, kw, sh, sw, top, left, oh_n, ow_n, dx):
    # taps (i, j) outermost: every pixel sums its contributions in the reference's order
    n_img, h_in, w_in, c_in = dx.shape
    for n in prange(n_img):
        dx[n] = 0
        for i in range(kh):
            for j in range(kw):
                col = (i * kw + j) * c_in
                for oh in range(oh_n):
                    h = oh * sh + i - top
                    if h < 0 or h >= h_in:
                        continue
                    for ow in range(ow_n):
                        w = ow * sw + j - left
                        if 0 <= w < w_in:
                            row = (n * oh_n + oh) * ow_n + ow
                            for c in range(c_in):
                                dx[n, h, w, c] += cols[row, col + c]


@njit(parallel=True, cache=True)
def _maxpool_forward(x, ph, pw, sh, sw, top, left, out, arg):
    n_img, h_in, w_in, c_in = x.shape
    _, oh_n, ow_n, _ = out.shape
    neg = x.dtype.type(-np.inf)
    for n in prange(n_img):
        for oh in range(oh_n):
            for ow in range(ow_n):
                # window element (0, 0) first, then the others in row-major order, strictly
                # greater only: the first maximum wins (padding counts as -inf)
                for i in range(ph):
                    h = oh * sh + i - top
                    for j in range(pw):
                        w = ow * sw + j - left
                        k = i * pw + j
                        inside = 0 <= h < h_in and 0 <= w < w_in
                        if k == 0:
                            for c in range(c_in):
                                out[n, oh, ow, c] = x[n, h, w, c] if inside else neg
                                arg[n, oh, ow, c] = 0
                        elif inside:
                            for c in range(c_in):  # branch-free: vectorises over channels
                                v = x[n, h, w, c]
                                o = out[n, oh, ow, c]
                                better = v > o
                                out[n, oh, ow, c] = v if better else o
                                arg[n, oh, ow, c] = k if better else arg[n, oh, ow, c]


@njit(parallel=True, cache=True)
def _maxpool_forward_2x2(x, out, arg):
    # the report's pooling (2x2 windows, stride 2, no padding): the four candidates of each
    # channel in registers, compared in row-major order, strictly greater (first maximum wins)
    n_img = x.shape[0]
    _, oh_n, ow_n, c_in = out.shape
    for n in prange(n_img):
        for oh in range(oh_n):
            r0 = x[n, 2 * oh]
            r1 = x[n, 2 * oh + 1]
            o = out[n, oh]
            a = arg[n, oh]
            for ow in range(ow_n):
                for c in range(c_in):
                    best = r0[2 * ow, c]
                    k = 0
                    v = r0[2 * ow + 1, c]
                    if v > best:
                        best = v
                        k = 1
                    v = r1[2 * ow, c]
                    if v > best:
                        best = v
                        k = 2
                    v = r1[2 * ow + 1, c]
                    if v > best:
                        best = v
                        k = 3
                    o[ow, c] = best
                    a[ow, c] = k


@njit(parallel=True, cache=True)
def _maxpool_backward(dout, arg, ph, pw, sh, sw, top, left, dx):
    # window elements (i, j) outermost, like the reference: overlapping windows add up in its order
    n_img, h_in, w_in, c_in = dx.shape
    _, oh_n, ow_n, _ = dout.shape
    zero = dx.dtype.type(0)
    for n in prange(n_img):
        dx[n] = 0
        for i in range(ph):
            for j in range(pw):
                k = i * pw + j
                for oh in range(oh_n):
                    h = oh * sh + i - top
                    if h < 0 or h >= h_in:
                        continue
                    for ow in range(ow_n):
                        w = ow * sw + j - left
                        if 0 <= w < w_in:
                            for c in range(c_in):
                                g = dout[n, oh, ow, c] if arg[n, oh, ow, c] == k else zero
                                dx[n, h, w, c] += g


@njit(parallel=True, cache=True)
def _maxpool_backward_tiled(dout, arg, ph, pw, top, left, dx):
    # windows that tile the image (stride == pool): each pixel is in at most one window, so its
    # gradient is written, not added (no division per pixel: loop over windows and their cells)
    n_img, h_in, w_in, c_in = dx.shape
    _, oh_n, ow_n, _ = dout.shape
    zero = dx.dtype.type(0)
    for n in prange(n_img):
        dx[n] = 0  # pixels outside every window (an odd last row or column)
        for oh in range(oh_n):
            for i in range(ph):
                h = oh * ph + i - top
                if h < 0 or h >= h_in:
                    continue
                for ow in range(ow_n):
                    for j in range(pw):
                        w = ow * pw + j - left
                        if w < 0 or w >= w_in:
                            continue
                        k = i * pw + j
                        for c in range(c_in):
                            dx[n, h, w, c] = dout[n, oh, ow, c] if arg[n, oh, ow, c] == k else zero


# ---------------------------------------------------------------------------------------------
# checked entry points (the same functions as numpy_ref)
# ---------------------------------------------------------------------------------------------
def _require_float(what, *arrays):
    """The compiled kernels take NumPy float32/float64 arrays (the layers cast their inputs to
    floatx); anything else is refused rather than silently computed another way."""
    for a in arrays:
        if a is not None and not (isinstance(a, np.ndarray) and a.dtype in _FLOATS):
            kind = f"a {type(a).__module__}.{type(a).__name__}" if not isinstance(a, np.ndarray) \
                else f"dtype {a.dtype}"
            raise TypeError(f"{what}: the numba kernels take NumPy float32 or float64 arrays, got "
                            f"{kind}; cast with .astype('float32') (or use the numpy backend)")


matmul = numpy_ref.matmul  # NumPy's product (BLAS): nothing to compile


def im2col(x, kh, kw, sh, sw, pads):
    """Same as :func:`numpy_ref.im2col` (compiled, parallel over images)."""
    _require_float("im2col", x)
    kh, kw, sh, sw = checks.ints(kh, kw, sh, sw)
    checks.check_images(x, "im2col")
    pads = checks.check_window(kh, kw, sh, sw, pads, "im2col")
    n, h, w, c = x.shape
    oh, ow = checks.out_hw(h, w, kh, kw, sh, sw, pads, "im2col")
    cols = np.empty((n * oh * ow, kh * kw * c), dtype=x.dtype)
    _im2col(np.ascontiguousarray(x), kh, kw, sh, sw, pads[0], pads[2], oh, ow, cols)
    return cols


def col2im(cols, x_shape, kh, kw, sh, sw, pads):
    """Same as :func:`numpy_ref.col2im` (compiled; each pixel sums in the reference's order)."""
    _require_float("col2im", cols)
    kh, kw, sh, sw = checks.ints(kh, kw, sh, sw)
    (n, h, w, c), pads, (oh, ow) = checks.check_col2im(cols, x_shape, kh, kw, sh, sw, pads,
                                                       "col2im")
    cols = np.ascontiguousarray(cols).reshape(n * oh * ow, kh * kw * c)
    dx = np.empty((n, h, w, c), dtype=cols.dtype)
    _col2im(cols, kh, kw, sh, sw, pads[0], pads[2], oh, ow, dx)
    return dx


def maxpool_forward(x, ph, pw, sh, sw, pads):
    """Same as :func:`numpy_ref.maxpool_forward`, with the same tie rule (first maximum wins)."""
    _require_float("maxpool_forward", x)
    ph, pw, sh, sw = checks.ints(ph, pw, sh, sw)
    checks.check_images(x, "maxpool_forward")
    pads = checks.check_window(ph, pw, sh, sw, pads, "maxpool_forward")
    n, h, w, c = x.shape
    oh, ow = checks.out_hw(h, w, ph, pw, sh, sw, pads, "maxpool_forward")
    out = np.empty((n, oh, ow, c), dtype=x.dtype)
    arg = np.empty((n, oh, ow, c), dtype=np.int32)
    x = np.ascontiguousarray(x)
    if (ph, pw, sh, sw) == (2, 2, 2, 2) and not any(pads):
        _maxpool_forward_2x2(x, out, arg)
    else:
        _maxpool_forward(x, ph, pw, sh, sw, pads[0], pads[2], out, arg)
    return out, arg


def maxpool_backward(dout, arg, x_shape, ph, pw, sh, sw, pads):
    """Same as :func:`numpy_ref.maxpool_backward`."""
    _require_float("maxpool_backward", dout)
    ph, pw, sh, sw = checks.ints(ph, pw, sh, sw)
    (n, h, w, c), pads = checks.check_pool_backward(dout, arg, x_shape, ph, pw, sh, sw, pads,
                                                    "maxpool_backward")
    dout = np.ascontiguousarray(dout)
    arg = np.ascontiguousarray(arg, dtype=np.int32)
    dx = np.empty((n, h, w, c), dtype=dout.dtype)
    if (sh, sw) == (ph, pw):
        _maxpool_backward_tiled(dout, arg, ph, pw, pads[0], pads[2], dx)
    else:
        _maxpool_backward(dout, arg, ph, pw, sh, sw, pads[0], pads[2], dx)
    return dx


@functools.lru_cache(maxsize=256)
def _taps(kh, kw, c, wp, front=None):
    """Tap tables on a grid of row period ``wp``, tap ``t = (i*kw + j)*c + ch``: the plane
    ``pidx[t] = ch`` and shift ``offs[t] = i*wp + j`` (or ``front - i*wp - j``, the mirrored
    taps of dL/dx, when ``front`` is given). Cached: the same layer asks for them every batch."""
    i = np.arange(kh).reshape(-1, 1, 1)
    j = np.arange(kw).reshape(1, -1, 1)
    ch = np.arange(c).reshape(1, 1, -1)
    pidx = np.broadcast_to(ch, (kh, kw, c)).ravel().astype(np.int64)
    shift = np.broadcast_to(i * wp + j, (kh, kw, c)).ravel().astype(np.int64)
    offs = shift if front is None else front - shift
    pidx.flags.writeable = False
    offs.flags.writeable = False
    return pidx, offs


# The fewest groups a batch is cut into, where it has the images: enough for the threads of a
# laptop to share. Never the number of threads itself: the groups' partial sums of dL/dw are
# added in group order, so groups that do not depend on the thread count give the same numbers,
# bit for bit, on 1 thread or 16 (they did not for some batch sizes). With 4, the lessons'
# batches (128, its last one of 96, and 32) are cut as two threads cut them before.
MIN_GROUPS = 4


def _group_size(n, plane_size):
    """Images per group: about GROUP_ELEMENTS grid positions, fewer in a small batch (at least
    MIN_GROUPS groups where there are the images); the same whatever the thread count."""
    if n == 0:  # an empty batch: no group at all
        return 1
    per_group = max(1, GROUP_ELEMENTS // plane_size)
    return max(1, min(per_group, -(-n // MIN_GROUPS)))


# Images per group of the pooled backward: measured on the report's shapes (one thread, cnn_digits
# l1 / l2 / l3, ms): 1 image 1.89 / 1.78 / 0.55, 4 images 1.70 / 1.89 / 0.38, 8 images 1.78 /
# 1.92 / 0.38, 16 images 1.81 / 1.98 / 0.39. The padded copies of 8 images of l2 take 93 KB.
WINNERS_GROUP_IMAGES = 8


def _winners_group_size(n, image_size):
    """Images per group of :func:`_conv_pool_backward_s1`: WINNERS_GROUP_IMAGES, fewer for
    images of more than 128K elements (a group's copies stay under 1M elements each, or hold one
    image), fewer in a small batch (at least MIN_GROUPS groups where there are the images); never
    the thread count."""
    per_group = max(1, min(WINNERS_GROUP_IMAGES, (1 << 20) // max(image_size, 1)))
    return max(1, min(per_group, -(-n // MIN_GROUPS)))


def _grid(h, w, kh, kw, pads):
    """Period ``(hp, wp)`` of the flat grid for a stride-1 convolution (see the module doc).

    Consecutive rows (and images) share their zero padding: ``max(left, right)`` zero columns
    between two rows are enough, since a window that runs off the right end of a row reads the
    left padding of the next one. This shrinks the wasted positions (28x28 with 5x5: a 30x30
    grid instead of 32x32). Padding at least as large as the kernel falls back to the plain
    ``(h + top + bottom, w + left + right)`` grid.
    """
    top, bottom, left, right = pads
    oh, ow = h + top + bottom - kh + 1, w + left + right - kw + 1
    hp, wp = h + max(top, bottom), w + max(left, right)
    if oh > hp or ow > wp:
        hp, wp = h + top + bottom, w + left + right
    return hp, wp


def _forward_s1_args(x, kernel, bias, pads):
    """What the stride-1 forward kernels take besides ``x`` and the output: the kernel as tap
    weights ``wts[f, t]``, the tap tables, the bias, the grid and the group size."""
    kh, kw, c, f = kernel.shape
    n, h, w, _ = x.shape
    hp, wp = _grid(h, w, kh, kw, pads)
    pidx, offs = _taps(kh, kw, c, wp)
    wts = np.ascontiguousarray(kernel.reshape(kh * kw * c, f).T, dtype=x.dtype)
    b = np.zeros(f, x.dtype) if bias is None else np.ascontiguousarray(bias, dtype=x.dtype)
    return (wts, pidx, offs, b), (pads[0], pads[2], hp, wp, _group_size(n, hp * wp))


def _backward_s1_args(x, kernel, pads, need_dx):
    """What the stride-1 backward kernels take besides the gradient: the mirrored kernel and tap
    tables of dL/dx (and a one-channel input's kernel columns, for :func:`_rows_dx`), the
    tap tables of dL/dw, the grid, and the outputs ``dx`` and ``part``."""
    kh, kw, c, f = kernel.shape
    n, h, w, _ = x.shape
    hp, wp = _grid(h, w, kh, kw, pads)
    front = _whole_lines((kh - 1) * wp + kw - 1, x.itemsize)  # dz from a cache line's start
    dw_pidx, dw_offs = _taps(kh, kw, c, wp)           # dL/dw taps: t = (i*KW + j)*C + c
    dx_pidx, dx_offs = _taps(kh, kw, f, wp, front)    # dL/dx taps: t = (i*KW + j)*F + f
    dx_wts = np.ascontiguousarray(kernel.transpose(2, 0, 1, 3).reshape(c, kh * kw * f),
                                  dtype=x.dtype)
    # one channel: the kernel's columns (j, f), each from its last row up (_rows_dx)
    dx_wcol = (np.ascontiguousarray(kernel[::-1, :, 0, :].transpose(1, 2, 0).reshape(kw * f, kh),
                                    dtype=x.dtype) if c == 1 and need_dx
               else np.empty((0, 0), x.dtype))
    group = _group_size(n, hp * wp)
    part = np.zeros((-(-n // group), f, kh * kw * c + 1), dtype=x.dtype)
    dx = np.empty((n, h, w, c), x.dtype) if need_dx else np.empty((0, 0, 0, 0), x.dtype)
    return ((dx_wts, dx_pidx, dx_offs, dx_wcol, dw_pidx, dw_offs, pads[0], pads[2], hp, wp, front,
             group),
            dx, part)


# the winners' array of the kernels' calls without pooling (one type for every call: one compilation)
_NO_WINNERS = np.empty((0, 0, 0, 0), np.int32)


def _gradients(kernel, dx, part, need_dx):
    """``(dx, dkernel, dbias)`` from the groups' partial sums ``part[g, f, t]`` (``t = ntaps``:
    the bias)."""
    total = part.sum(axis=0)
    dkernel = np.ascontiguousarray(total[:, :-1].T).reshape(kernel.shape)
    return (dx if need_dx else None), dkernel, total[:, -1].copy()


def conv2d_forward(x, kernel, bias, strides, pads, relu=False):
    """Same as :func:`numpy_ref.conv2d_forward`: ``(out, saved)``.

    Stride 1 runs the compiled direct convolution (see the module doc); other strides use the
    compiled im2col and one BLAS product.
    """
    _require_float("conv2d_forward", x, kernel, bias)
    (sh, sw), pads = checks.check_conv(x, kernel, bias, strides, pads, "conv2d_forward")
    kh, kw, c, f = kernel.shape
    n, h, w, _ = x.shape
    oh, ow = checks.out_hw(h, w, kh, kw, sh, sw, pads, "conv2d_forward")
    dtype = np.result_type(x.dtype, kernel.dtype)
    x = np.ascontiguousarray(x, dtype=dtype)
    if (sh, sw) != (1, 1):
        cols = im2col(x, kh, kw, sh, sw, pads)
        z = cols @ kernel.reshape(-1, f).astype(dtype, copy=False)
        if bias is not None:
            z += bias
        if relu:
            np.maximum(z, 0, out=z)
        return z.reshape(n, oh, ow, f), (x, cols)
    (wts, pidx, offs, b), grid = _forward_s1_args(x, kernel, bias, pads)
    out = np.empty((n, oh, ow, f), dtype=dtype)
    _conv_forward_s1(x, wts, pidx, offs, b, bool(relu), *grid, 1, 1, out, _NO_WINNERS, out[:0],
                     out[:0])
    return out, (x, None)


def conv2d_backward(dout, saved, kernel, strides, pads, relu_output=None, need_dx=True):
    """Same as :func:`numpy_ref.conv2d_backward`: ``(dx, dkernel, dbias)``.

    At stride 1, from the non-zero gradients alone when they are few enough to pay
    (:func:`_winners_pay`; as :func:`conv2d_maxpool_backward`, a NaN or infinite input pixel then
    reaches ``dkernel`` only through a non-zero gradient), else by the dense loops."""
    x, cols = saved
    _require_float("conv2d_backward", dout, x, kernel, relu_output)
    (sh, sw), pads, _ = checks.check_conv_backward(dout, x, kernel, strides, pads, relu_output,
                                                   "conv2d_backward")
    kh, kw, c, f = kernel.shape
    n, h, w, _ = x.shape
    dtype = x.dtype
    dout = np.ascontiguousarray(dout, dtype=dtype)
    if (sh, sw) != (1, 1) or cols is not None:
        if relu_output is not None:
            dout = dout * (relu_output > 0)
        if cols is None:
            cols = im2col(x, kh, kw, sh, sw, pads)
        dz = dout.reshape(-1, f)
        dkernel = (cols.T @ dz).reshape(kernel.shape)
        dbias = dz.sum(axis=0)
        dx = None
        if need_dx:
            dx = col2im(dz @ kernel.reshape(-1, f).T.astype(dtype, copy=False), (n, h, w, c),
                        kh, kw, sh, sw, pads)
        return dx, dkernel, dbias
    y = dout if relu_output is None else np.ascontiguousarray(relu_output, dtype=dtype)
    x = np.ascontiguousarray(x)  # (the compiled copies into planes read whole rows)
    if _winners_pay(dout, y, relu_output is not None, kernel.shape, need_dx):
        # each output position a window of one: its own winner (arg: one row of zeros)
        return _backward_from_winners(dout, y, np.zeros((1, 1, 1, f), np.int32),
                                      relu_output is not None, x, kernel, pads, (1, 1), need_dx)
    args, dx, part = _backward_s1_args(x, kernel, pads, need_dx)
    _conv_backward_s1(dout, y, relu_output is not None, x, *args, bool(need_dx), dx, part)
    return _gradients(kernel, dx, part, need_dx)


@njit(cache=True)
def _count_nonzero_gradients(dout, y, relu, every):
    """How many gradients of every ``every``-th image of ``dout`` are not 0 (and, when ``relu``,
    lie where ``y > 0``), and how many were looked at (C-contiguous arrays)."""
    zero = dout.dtype.type(0)
    count = seen = 0
    for n in range(0, dout.shape[0], every):
        d, on = dout[n].reshape(-1), y[n].reshape(-1)
        for i in range(d.size):
            count += (d[i] != zero) & ((not relu) | (on[i] > zero))
        seen += d.size
    return count, seen


# What a window's share of the backward from the winners costs beyond its winners' rows (listing
# it, copying the images), and what a float of a winner's rows costs, in taps of the dense loops,
# with dL/dx and without: measured on the residual CNN's l2 and l2_2 (14x14x9 images, 5x5 and 3x3
# kernels, batch 128, two threads, each path forced at 0.1 to 0.9 of non-zero gradients).
# - An AVX2 machine (Zen 3), with dL/dx: the dense loops 0.0085 (l2) and 0.0097 (l2_2) ms a tap,
#   the winners' path 0.46 and 0.36 ms with no winner (54 and 38 taps) and 1.24 and 1.17 taps a
#   float of the rows; break-even at 0.57 and 0.35 of non-zero gradients. Without dL/dx the
#   window was taken to cost twice as many of the (twice as cheap) taps.
# - AVX-512 (a Xeon), whose dense dL/dw takes 3 filters a pass (DOT_FILTERS): with dL/dx the
#   dense loops 1.40 and 0.66 ms, the winners' path 0.43 + 2.45 d and 0.30 + 1.09 d ms at a share
#   d of non-zero gradients, break-even at 0.40 and 0.33; without dL/dx 0.82 and 0.40 ms against
#   0.22 + 1.12 d and 0.23 + 0.49 d, break-even at 0.54 and 0.35. The taps below put them at
#   0.44, 0.22, 0.54 and 0.24 (one pair of figures for both kernel sizes: between 0.22 and 0.33
#   l2_2's two paths measured within 3% of each other).
WINNERS_WINDOW_TAPS = {True: 45, False: 90} if WIDE_LANES == LANES else {True: 45, False: 50}
WINNERS_FLOAT_TAPS = {True: 1.2, False: 1.2} if WIDE_LANES == LANES else {True: 1.7, False: 1.35}
WINNERS_SAMPLE = 32768


def _winners_pay(dout, y, relu, kernel_shape, need_dx):
    """Whether the backward of an unpooled stride-1 convolution is faster from its non-zero
    gradients (:func:`_backward_from_winners`, each position a window of one) than by the dense
    loops over every position: when most gradients are 0, as in a convolution read by an ``Add``
    whose sum a max pooling reads (three in four are then 0), or behind a ReLU that is mostly off.

    Per output position and filter, the dense loops do ``kh*kw*c`` taps; the winners' path
    WINNERS_WINDOW_TAPS plus, for a non-zero gradient, WINNERS_FLOAT_TAPS for each float of its
    ``kh`` kernel rows in whole vectors, each measured with ``dL/dx`` and without (see
    WINNERS_WINDOW_TAPS). Run on its own (not as one step with its Add and pooling), the residual
    CNN's l2_2 (3x3x9) got 0.16 of non-zero gradients in training and gained a third from the
    winners (0.54 against 0.79 ms on an AVX2 machine); its l2 (5x5x9) gets about 0.6, at
    break-even on an AVX2 machine, and takes the dense loops with AVX-512 (measured at 0.55 of
    non-zero gradients: 1.41 against 1.77 ms)."""
    kh, kw, c, _ = kernel_shape
    window = WINNERS_WINDOW_TAPS[bool(need_dx)]
    if dout.size == 0 or window >= kh * kw * c:  # the dense loops win even with no winner
        return False
    # the share of non-zero gradients, from images spread over the batch (WINNERS_SAMPLE
    # gradients or more: counting them all took up to 0.2 ms, a tenth of the backward)
    every = max(1, len(dout) // -(-WINNERS_SAMPLE // (dout[0].size or 1)))
    count, seen = _count_nonzero_gradients(np.ascontiguousarray(dout), np.ascontiguousarray(y),
                                           relu, every)
    density = count / seen
    rows = kh * _whole_vectors(kw * c)
    return window + density * rows * WINNERS_FLOAT_TAPS[bool(need_dx)] < kh * kw * c


def conv2d_maxpool_forward(x, kernel, bias, strides, pads, pool_size, relu=False):
    """Same as :func:`numpy_ref.conv2d_maxpool_forward`: ``(pooled, saved)``.

    Stride 1 runs the convolution, the ReLU and the pooling in one compiled pass
    (:func:`_conv_forward_s1` with pooling): the convolution's output is never written out, only
    the pooled output and each window's winner. Other strides run the two kernels.
    """
    return _conv_pool_forward("conv2d_maxpool_forward", x, kernel, bias, strides, pads,
                              pool_size, None, relu)


def conv2d_add_maxpool_forward(x, kernel, bias, strides, pads, pool_size, residual, relu=False):
    """Same as :func:`numpy_ref.conv2d_add_maxpool_forward`: ``(pooled, saved)``, the pooling of
    ``relu(conv(x)) + residual`` in the one pass of :func:`conv2d_maxpool_forward` (neither the
    convolution's output nor the sum is written out)."""
    return _conv_pool_forward("conv2d_add_maxpool_forward", x, kernel, bias, strides, pads,
                              pool_size, residual, relu)


def _conv_pool_forward(what, x, kernel, bias, strides, pads, pool_size, residual, relu):
    arrays = (x, kernel, bias) if residual is None else (x, kernel, bias, residual)
    _require_float(what, *arrays)
    (sh, sw), pads = checks.check_conv(x, kernel, bias, strides, pads, what)
    kh, kw, c, f = kernel.shape
    n, h, w, _ = x.shape
    oh, ow = checks.out_hw(h, w, kh, kw, sh, sw, pads, what)
    ph, pw, po, qo = checks.pooled_hw(oh, ow, pool_size, what)
    if residual is not None:
        checks.check_residual(residual, (n, oh, ow, f), what)
    if (sh, sw) != (1, 1):  # the reference's steps (with no residual: no addition)
        return numpy_ref.conv2d_add_maxpool_forward(x, kernel, bias, strides, pads, pool_size,
                                                    residual, relu, conv=conv2d_forward,
                                                    pool=maxpool_forward)
    dtype = np.result_type(x.dtype, kernel.dtype)
    x = np.ascontiguousarray(x, dtype=dtype)
    (wts, pidx, offs, b), grid = _forward_s1_args(x, kernel, bias, pads)
    out = np.empty((n, po, qo, f), dtype=dtype)
    # 1x1 windows: the convolution itself, every window's winner its one element
    arg = (np.zeros if (ph, pw) == (1, 1) else np.empty)((n, po, qo, f), dtype=np.int32)
    if residual is None:
        res, won = out[:0], out  # each winner's relu(z): the pooled output itself
    else:
        res, won = np.ascontiguousarray(residual, dtype=dtype), np.empty_like(out)
    _conv_forward_s1(x, wts, pidx, offs, b, bool(relu), *grid, ph, pw, out, arg, res, won)
    return out, (x, arg, won)


def conv2d_maxpool_backward(dout, saved, kernel, strides, pads, pool_size, relu=False,
                            need_dx=True):
    """Same as :func:`numpy_ref.conv2d_maxpool_backward`: ``(dx, dkernel, dbias)``.

    Stride 1 runs from the windows' winners (see the module doc): the zero gradients of the other
    positions are skipped, so a NaN or infinite input pixel reaches ``dkernel`` only through a
    winner (the reference's dense products also add its ``0 * NaN``), and only through a
    non-zero gradient where the winners with one are listed (everywhere but without ``dx`` on
    rows of 8 windows of 2 positions or more, with 8 filters or more:
    :func:`_windows_by_planes`). A NaN input makes the loss NaN anyway."""
    if checks.pair(strides, "conv2d_maxpool_backward", "strides") != (1, 1):
        return numpy_ref.conv2d_maxpool_backward(dout, saved, kernel, strides, pads, pool_size,
                                                 relu, need_dx, conv_backward=conv2d_backward,
                                                 pool_backward=maxpool_backward)
    return _conv_pool_backward("conv2d_maxpool_backward", dout, saved, kernel, pads, pool_size,
                               relu, need_dx)[:3]


def conv2d_add_maxpool_backward(dout, saved, kernel, strides, pads, pool_size, relu=False,
                                need_dx=True):
    """Same as :func:`numpy_ref.conv2d_add_maxpool_backward`: ``(dx, dkernel, dbias,
    dresidual)``; the convolution's gradients from the winners, as
    :func:`conv2d_maxpool_backward`'s, and ``dresidual`` the pooling's backward."""
    if checks.pair(strides, "conv2d_add_maxpool_backward", "strides") != (1, 1):
        return numpy_ref.conv2d_add_maxpool_backward(dout, saved, kernel, strides, pads,
                                                     pool_size, relu, need_dx,
                                                     conv_backward=conv2d_backward,
                                                     pool_backward=maxpool_backward)
    return _conv_pool_backward("conv2d_add_maxpool_backward", dout, saved, kernel, pads,
                               pool_size, relu, need_dx, residual=True)


@njit(cache=True)
def _winners_in_range(winners, count):
    """Whether every winner (int32) lies in ``0 .. count-1``: the largest of them read as
    unsigned numbers (a negative one is then larger than any count), in one pass: 11 us for
    the 225,792 of cnn_fashion_3's l1 against 19 for NumPy's ``min()`` and ``max()``, which
    read them twice (hot; in training, from memory, the two took 48 us)."""
    unsigned = winners.view(np.uint32)
    largest = np.uint32(0)
    for i in range(unsigned.size):
        largest = max(largest, unsigned[i])
    return largest < np.uint32(count)


def _conv_pool_backward(what, dout, saved, kernel, pads, pool_size, relu, need_dx,
                        residual=False):
    """The stride-1 backward of :func:`_conv_pool_forward`: ``(dx, dkernel, dbias)``, and
    ``dL/d(residual)`` (the pooling's backward: each gradient to its window's winner) when
    ``residual``."""
    if not (isinstance(saved, tuple) and len(saved) == 3):
        raise ValueError(f"{what}: saved must be the second result of "
                         f"{what.replace('backward', 'forward')}")
    x, arg, won = saved
    _require_float(what, dout, x, kernel)
    _, pads = checks.check_conv(x, kernel, None, (1, 1), pads, what)
    kh, kw, _, f = kernel.shape
    oh, ow = checks.out_hw(x.shape[1], x.shape[2], kh, kw, 1, 1, pads, what)
    ph, pw, po, qo = checks.pooled_hw(oh, ow, pool_size, what)
    expected = (x.shape[0], po, qo, f)
    # saved by a forward pass with this kernel, padding and pool size? (else the compiled loop
    # would place gradients outside its grid)
    if (tuple(won.shape) != expected or tuple(arg.shape) != expected or arg.dtype != np.int32
            or won.dtype != x.dtype
            or not _winners_in_range(np.ascontiguousarray(arg).reshape(-1), ph * pw)):
        raise ValueError(f"{what}: what was saved (winners {tuple(arg.shape)}, their values "
                         f"{won.dtype} for {x.dtype} images) does not come from a forward pass "
                         f"with kernel {tuple(kernel.shape)}, pads {pads} and pool {(ph, pw)} "
                         f"(expected {expected}, values of the images' type)")
    checks.check_dout(dout, expected, what)
    grads = _backward_from_winners(dout, won, arg, relu, x, kernel, pads, (ph, pw), need_dx)
    if not residual:
        return grads
    return grads + (maxpool_backward(dout, arg, (x.shape[0], oh, ow, f), ph, pw, ph, pw,
                                     (0, 0, 0, 0)),)


def _backward_from_winners(dout, y, arg, relu, x, kernel, pads, pool_size, need_dx):
    """``(dx, dkernel, dbias)`` of a stride-1 convolution from the winners of its pooling
    windows (``arg``, of ``pool_size``; ``y``: the ReLU's output at each winner, read where
    ``relu``: the pooled output, unless a residual was added before the pooling), the gradients
    ``dout`` checked by the caller."""
    ph, pw = pool_size
    dout = np.ascontiguousarray(dout, dtype=x.dtype)
    kernel = np.ascontiguousarray(kernel, dtype=x.dtype)
    x, y, arg = (np.ascontiguousarray(a) for a in (x, y, arg))
    n, h, w, c = x.shape
    kh, kw, _, f = kernel.shape
    _, po, qo, _ = dout.shape
    top, left = pads[0], pads[2]
    # the padded image holds every kernel row of a window at the last pooled output position
    hpad, wpad = max(po * ph + kh - 1, h + top), max(qo * pw + kw - 1, w + left)
    group = _winners_group_size(n, hpad * wpad * c)
    part = np.zeros((-(-n // group), f, kh * kw * c + 1), dtype=x.dtype)
    dx = np.empty(x.shape, x.dtype) if need_dx else np.empty((0, 0, 0, 0), x.dtype)
    _conv_pool_backward_s1(dout, y, arg, bool(relu), x, kernel, top, left, hpad, wpad, ph, pw,
                           group, bool(need_dx), dx, part)
    return _gradients(kernel, dx, part, need_dx)


# ---------------------------------------------------------------------------------------------
# the small steps of a training step
# ---------------------------------------------------------------------------------------------
# Around the layers' big products, a step of the raw MLP (1.4 ms) spent about 0.15 ms in NumPy
# calls on small arrays, each a few microseconds of dispatch, temporaries and cache misses, the
# softmax cross-entropy on the (128, 10) logits and the accuracy among them. Each is one
# compiled pass here; each returns what the readable code it stands for returns, up to rounding
# (the tests compare them), or None where it leaves the arrays to that code.
@njit(cache=True, error_model="numpy")
def _softmax_cross_entropy(y, z, per_example, grad):
    n, k = z.shape
    e = np.empty(k)  # exp(z - max) of one row, in float64
    for r in range(n):
        top = z[r, 0]  # NaN stays NaN through every line below, as in the reference
        for j in range(1, k):
            if z[r, j] > top:
                top = z[r, j]
        total = 0.0
        for j in range(k):
            # the shift in z's own type, as the reference (it can overflow there: -inf, then NaN)
            e[j] = np.exp(float(z[r, j] - top))
            total += e[j]
        log_total = np.log(total)
        loss, labels = 0.0, 0.0
        for j in range(k):
            loss -= y[r, j] * (float(z[r, j] - top) - log_total)     # -sum_k y_k log p_k
            labels += y[r, j]
        per_example[r] = loss
        for j in range(k):
            grad[r, j] = (e[j] / total * labels - y[r, j]) / n         # (p sum_k y_k - y) / N


def softmax_cross_entropy(y_true, logits):
    """``losses.softmax_cross_entropy`` (``(per-example losses, dL/dlogits)``) for logits
    ``(N, K)`` and targets of the same shape and type, in one pass per row (about 10 NumPy calls
    and their temporaries otherwise: 11 against 48 us for (128, 10), measured on a Zen 3 host);
    the same numbers up to rounding (the sums add in another order; in float32, the logits
    shifted by their maximum as in the reference, the rest in float64, then rounded): the numba
    backend's training parts from the numpy backend's in the last digits. None for other arrays."""
    if not (isinstance(logits, np.ndarray) and logits.dtype in _FLOATS and logits.ndim == 2
            and isinstance(y_true, np.ndarray) and y_true.dtype == logits.dtype
            and y_true.shape == logits.shape and logits.shape[0] and logits.shape[1]):
        return None
    per_example = np.empty(logits.shape[0], dtype=logits.dtype)
    grad = np.empty_like(logits)
    _softmax_cross_entropy(y_true, logits, per_example, grad)
    return per_example, grad


@njit(cache=True)
def _argmax(a, r):
    best, top = 0, a[r, 0]
    if np.isnan(top):  # NumPy's rule: the first NaN is the maximum
        return 0
    for j in range(1, a.shape[1]):
        if np.isnan(a[r, j]):
            return j
        if a[r, j] > top:
            best, top = j, a[r, j]
    return best


@njit(cache=True)
def _argmax_hits(y, out, right):
    for r in range(out.shape[0]):
        right[r] = 1.0 if _argmax(out, r) == _argmax(y, r) else 0.0


def argmax_hits(y, out):
    """``metrics.hits`` of a softmax output: per example 1.0 where the arg-max of ``out`` (the
    first maximum, or the first NaN, as NumPy's ``argmax``) is that of ``y``, else 0.0; for
    ``out`` and ``y`` of one 2-D shape. None for other arrays."""
    if not (isinstance(out, np.ndarray) and out.dtype in _FLOATS and out.ndim == 2
            and isinstance(y, np.ndarray) and y.dtype in _FLOATS and y.shape == out.shape
            and out.shape[1]):
        return None
    right = np.empty(out.shape[0])
    _argmax_hits(y, out, right)
    return right


# ---------------------------------------------------------------------------------------------
# the training step's finiteness check
# ---------------------------------------------------------------------------------------------
# A float is NaN or infinite exactly when all the bits of its exponent are set: 0x7f800000 in a
# float32's 32 bits, 0x7ff0000000000000 in a float64's 64. Whether any element has them all set
# is an integer or-reduction, which LLVM vectorises (a float sum, the check on a GPU, adds
# one float after the other: 42 us for the raw MLP's 203,530 float32 weights against 15 here,
# and 23 for NumPy's isfinite(a).all(), measured).
_EXPONENT_BITS = {np.dtype(np.float32): (np.uint32, np.uint32(0x7f800000)),
                  np.dtype(np.float64): (np.uint64, np.uint64(0x7ff0000000000000))}


@njit(cache=True)
def _any_exponent_full(bits, exponent):
    found = False
    for i in range(bits.size):
        found |= (bits[i] & exponent) == exponent
    return found


def all_finite(arrays):
    """Whether every number in ``arrays`` is finite: :func:`numpy_ref.all_finite` as one
    integer pass over each array's bits (arrays that are not contiguous float32 or float64 go
    to the reference)."""
    for a in arrays:
        kind = _EXPONENT_BITS.get(a.dtype)
        if kind is None or not a.flags.c_contiguous:
            if not numpy_ref.all_finite([a]):
                return False
        elif a.size and _any_exponent_full(a.reshape(-1).view(kind[0]), kind[1]):
            return False
    return True


# ---------------------------------------------------------------------------------------------
# fused optimizer update
# ---------------------------------------------------------------------------------------------
# The operations of optimizers.RMSprop.update in its order, one element at a time, with no
# fastmath: each element is rounded exactly as the NumPy reference rounds it (bit-identical in
# float32 and float64). error_model="numpy" lets LLVM vectorise the division and the square root
# (no ZeroDivisionError checks); the plain case has a loop of its own, free of branches, and a
# second one that also keeps theta and s as they were (for an undo of the step) in the same pass.
# Both answer whether every theta and s they wrote is finite (|v| <= the largest float is false
# for NaN and the infinities): the training step's check, while the values are in registers
# (13 us more than the update alone, against 25-40 us for a second pass over the two arrays).
@njit(cache=True, error_model="numpy")
def _rmsprop_plain(theta, g, s, lr, rho, one_minus_rho, eps, old_theta, old_s, keep, largest):
    finite = True
    if keep:
        for i in range(theta.size):
            gi, ti, si = g[i], theta[i], s[i]
            old_theta[i], old_s[i] = ti, si
            si = si * rho + one_minus_rho * (gi * gi)                 # (1)
            s[i] = si
            ti = ti - lr * gi / np.sqrt(si + eps)                   # (2)
            theta[i] = ti
            finite &= (abs(ti) <= largest) & (abs(si) <= largest)
        return finite
    for i in range(theta.size):
        gi = g[i]
        si = s[i] * rho + one_minus_rho * (gi * gi)                   # (1)
        s[i] = si
        ti = theta[i] - lr * gi / np.sqrt(si + eps)                 # (2)
        theta[i] = ti
        finite &= (abs(ti) <= largest) & (abs(si) <= largest)
    return finite


@njit(cache=True, error_model="numpy")
def _rmsprop(theta, g, s, mean_grad, moment, lr, rho, one_minus_rho, eps, mu, centered):
    for i in range(theta.size):
        gi = g[i]
        si = s[i] * rho + one_minus_rho * (gi * gi)                   # (1)
        s[i] = si
        denominator = si + eps
        if centered:
            mi = mean_grad[i] * rho + one_minus_rho * gi
            mean_grad[i] = mi
            denominator = si - mi * mi + eps
        step = lr * gi / np.sqrt(denominator)                       # (2)
        if mu > 0:
            step = moment[i] * mu + step
            moment[i] = step
        theta[i] = theta[i] - step


KEPT = ("weights", "s", "mean_grad", "moment")  # what rmsprop_update can keep, in its order


def rmsprop_update(theta, g, s, mean_grad, moment, lr, rho, eps, momentum, centered, keep=None):
    """``optimizers.RMSprop.update`` as one compiled pass over the parameter, in place (instead of
    about ten NumPy operations with their temporaries); the same numbers as the reference.
    ``mean_grad`` and ``moment`` are ``None`` when ``centered`` / ``momentum`` are off.

    ``keep``: ``{name: buffer}``, ``name`` one of ``"weights"`` (θ), ``"s"``, ``"mean_grad"``,
    ``"moment"`` (those the update has): each buffer receives that array as it was before the
    update (for an undo of the step): plain RMSprop keeping ``theta`` and ``s`` in the same pass
    (a copy beforehand reads and writes each array once more: 85 against 125 us for the raw
    MLP's 203,530 float32 weights), the other cases by copies first.

    Returns, for plain RMSprop, whether every number of the updated ``theta`` and ``s`` is finite
    (no NaN, no infinity), found in the same pass; ``None`` in the other cases (not looked at)."""
    arrays = dict(zip(KEPT, (theta, s, mean_grad, moment)))
    keep = keep or {}
    if any(arrays.get(name) is None for name in keep):
        raise ValueError(f"rmsprop_update: cannot keep {sorted(n for n in keep if arrays.get(n) is None)}"
                         f" (it keeps {', '.join(n for n in KEPT if arrays[n] is not None)})")
    mean_grad = s if mean_grad is None else mean_grad  # never read nor written then
    moment = s if moment is None else moment
    _require_float("rmsprop_update", theta, g, s, mean_grad, moment, *keep.values())
    if not all(a.flags.c_contiguous and a.dtype == theta.dtype and a.size == theta.size
               for a in (theta, s, mean_grad, moment, *keep.values())):
        raise ValueError("rmsprop_update: the parameter, its state and the buffers that keep them "
                         "must be contiguous arrays of one size and type (updated in place)")
    t = theta.dtype.type
    g = np.ascontiguousarray(g, dtype=theta.dtype).reshape(-1)
    plain = not centered and momentum == 0
    in_pass = plain and set(keep) == {"weights", "s"}  # the case of every step but the first
    for name in () if in_pass else keep:  # the others are copied first
        keep[name][...] = arrays[name]
    if plain:
        old = [keep[n].reshape(-1) if in_pass else theta.reshape(-1) for n in ("weights", "s")]
        return bool(_rmsprop_plain(theta.reshape(-1), g, s.reshape(-1), t(lr), t(rho), t(1 - rho),
                                   t(eps), *old, in_pass, t(np.finfo(t).max)))
    _rmsprop(theta.reshape(-1), g, s.reshape(-1), mean_grad.reshape(-1), moment.reshape(-1),
             t(lr), t(rho), t(1 - rho), t(eps), t(momentum), bool(centered))
