"""The fast kernels against the NumPy reference (``tinynet.kernels.numpy_ref``).

Each kernel of the numba backend (and of the CuPy backend, where a GPU is there) must give the
reference's numbers on random shapes, strides, paddings and odd sizes: float32 within 1e-5 and
float64 within 1e-12, relative to the largest magnitude of the reference result (a sum computed
in another order differs by rounding only). Max-pooling must pick the same element as the
reference, including on ties (TensorFlow's rule: the first maximum in row-major order).
"""
import contextlib
import functools
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinynet import backend
from tinynet.kernels import numpy_ref

TOL = {np.float32: 1e-5, np.float64: 1e-12}


def _kernels(name):
    """(kernels module, to_device, to_host) for a backend, or skip saying why it cannot run."""
    if name == "numba":
        try:
            _, mod = backend._load("numba")
        except backend.BackendError as e:
            pytest.skip(f"numba is not installed ({e})")
        return mod, (lambda a: a), (lambda a: a)
    try:
        import cupy
    except ImportError:
        pytest.skip("CuPy is not installed")
    try:
        _, mod = backend._load("cupy")
    except backend.BackendError as e:
        pytest.skip(f"no CUDA GPU ({e})")
    return mod, cupy.asarray, cupy.asnumpy


@pytest.fixture(params=["numba", "cupy"])
def fast(request):
    return _kernels(request.param)


def assert_close(got, ref, dtype, scale=None):
    """Max |got - ref| at most TOL[dtype] times ``scale``: by default max |ref| (1 when ref is all
    zeros); for a sum, the largest sum of the terms' magnitudes (see check_conv_against_reference)."""
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.shape == ref.shape and got.dtype == ref.dtype, (got.shape, got.dtype, ref.shape, ref.dtype)
    if scale is None:
        scale = float(np.abs(ref).max(initial=0.0)) or 1.0
    err = float(np.abs(got.astype(np.float64) - ref).max(initial=0.0))
    assert err <= TOL[dtype] * scale, f"max error {err:.3g} > {TOL[dtype]:g} x {scale:.3g}"


def winners(saved):
    """The pooling's winners in what a one-step forward saved: numba's ``(x, arg, won)``, or
    the reference's ``(conv_saved, y, arg)`` (the CuPy backend runs the reference's steps)."""
    return saved[2] if isinstance(saved[0], tuple) else saved[1]


def conv_pads(h, w, kh, kw, sh, sw, padding):
    """The (top, bottom, left, right) padding Keras uses (as Conv2D computes it)."""
    from tinynet.shapes import padding_amounts
    _, top, bottom = padding_amounts(h, kh, sh, padding)
    _, left, right = padding_amounts(w, kw, sw, padding)
    return (top, bottom, left, right)


# (N, H, W, C, F, kh, kw, sh, sw, pads): the report's layers, odd sizes, asymmetric and large
# padding, strides, 1x1 kernels, kernels larger than the image, batches that do not fill groups
CONV_CASES = [
    (5, 28, 28, 1, 9, 5, 5, 1, 1, (2, 2, 2, 2)),     # cnn_digits l1
    (3, 14, 14, 9, 9, 5, 5, 1, 1, (2, 2, 2, 2)),     # cnn_digits l2
    (13, 7, 7, 9, 16, 3, 3, 1, 1, (1, 1, 1, 1)),     # cnn_digits l3, 13 images: a ragged last group
    (2, 28, 28, 1, 9, 7, 7, 1, 1, (3, 3, 3, 3)),     # cnn_fashion_3 l1
    (3, 9, 10, 3, 5, 3, 3, 1, 1, (0, 0, 0, 0)),      # valid
    (2, 8, 7, 2, 3, 4, 2, 1, 1, (1, 2, 0, 1)),       # even kernel, asymmetric "same" padding
    (2, 5, 6, 3, 2, 1, 1, 1, 1, (0, 0, 0, 0)),       # 1x1
    (2, 4, 5, 2, 3, 1, 1, 1, 1, (1, 1, 2, 2)),       # padding larger than the kernel
    (1, 3, 3, 2, 2, 7, 7, 1, 1, (3, 3, 3, 3)),       # kernel larger than the image
    (1, 1, 1, 1, 1, 1, 1, 1, 1, (0, 0, 0, 0)),       # one pixel
    (3, 9, 10, 3, 5, 5, 5, 2, 2, (2, 2, 2, 2)),      # strided (im2col path)
    (2, 7, 8, 2, 3, 3, 2, 2, 3, (0, 1, 0, 0)),
    (4, 6, 6, 32, 4, 3, 3, 1, 1, (1, 1, 1, 1)),      # many channels
    (2, 9, 17, 3, 16, 3, 3, 1, 1, (1, 1, 1, 1)),     # 16 filters, rows of 17 positions
    # one input channel (dL/dx several rows a pass): odd rows, a row longer than a pass,
    # padding larger than the kernel, a kernel larger than the image, and (with AVX-512, 4 rows
    # a pass) a last pass three rows past the image (9 rows) and two past the grid's padding
    (3, 7, 37, 1, 4, 4, 2, 1, 1, (1, 2, 0, 1)),
    (3, 9, 9, 1, 3, 3, 3, 1, 1, (1, 1, 1, 1)),
    (13, 7, 7, 1, 4, 3, 3, 1, 1, (1, 1, 1, 1)),  # groups of 4, 4, 4 and 1 images
    (2, 4, 5, 1, 3, 1, 1, 1, 1, (1, 1, 2, 2)),
    (2, 3, 3, 1, 2, 7, 7, 1, 1, (3, 3, 3, 3)),
]


def check_conv_against_reference(fast, x, kernel, bias, strides, pads, relu, dout_rng):
    """Forward and all three gradients of ``fast``'s convolution equal the reference's;
    returns what the backend needs for further checks: (dout, output, saved, reference grads)."""
    K, dev, host = fast
    dtype = x.dtype.type  # the scalar type (np.float32), as assert_close expects
    ref, saved = numpy_ref.conv2d_forward(x, kernel, bias, strides, pads, relu=relu)
    got, got_saved = K.conv2d_forward(dev(x), dev(kernel), dev(bias), strides, pads, relu=relu)
    # A sum computed in another order differs by rounding relative to its terms' magnitudes, not
    # to its result (x w + b can cancel to almost 0): the same sums of |terms| give the scale.
    bound, bound_saved = numpy_ref.conv2d_forward(np.abs(x), np.abs(kernel),
                                                  None if bias is None else np.abs(bias), strides, pads)
    assert_close(host(got), ref, dtype, scale=float(bound.max(initial=0.0)) or 1.0)
    dout = dout_rng.standard_normal(ref.shape).astype(dtype)
    refs = numpy_ref.conv2d_backward(dout, saved, kernel, strides, pads,
                                     relu_output=ref if relu else None)
    gots = K.conv2d_backward(dev(dout), got_saved, dev(kernel), strides, pads,
                             relu_output=got if relu else None)
    bounds = numpy_ref.conv2d_backward(np.abs(dout), bound_saved, np.abs(kernel), strides, pads,
                                       relu_output=ref if relu else None)
    for g, rf, b in zip(gots, refs, bounds):
        assert_close(host(g), rf, dtype, scale=float(b.max(initial=0.0)) or 1.0)
    return dout, got, got_saved, refs


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "x".join(map(str, c[:7])) + f"s{c[7]}{c[8]}p" + "".join(map(str, c[9])))
def test_conv2d_forward_and_backward_equal_the_reference(fast, case, relu, dtype):
    K, dev, host = fast
    n, h, w, c, f, kh, kw, sh, sw, pads = case
    r = np.random.default_rng(hash(case) % 2**32)
    x = r.standard_normal((n, h, w, c)).astype(dtype)
    kernel = r.standard_normal((kh, kw, c, f)).astype(dtype)
    bias = r.standard_normal(f).astype(dtype)
    dout, got, got_saved, refs = check_conv_against_reference(fast, x, kernel, bias, (sh, sw), pads,
                                                              relu, r)
    # without dL/dx (the first layer of a model needs none)
    dx, dk, db = K.conv2d_backward(dev(dout), got_saved, dev(kernel), (sh, sw), pads,
                                   relu_output=got if relu else None, need_dx=False)
    assert dx is None
    assert_close(host(dk), refs[1], dtype)
    assert_close(host(db), refs[2], dtype)


def test_conv2d_without_bias(fast):
    K, dev, host = fast
    r = np.random.default_rng(5)
    x = r.standard_normal((3, 8, 8, 2))
    kernel = r.standard_normal((3, 3, 2, 4))
    ref, _ = numpy_ref.conv2d_forward(x, kernel, None, (1, 1), (1, 1, 1, 1))
    got, _ = K.conv2d_forward(dev(x), dev(kernel), None, (1, 1), (1, 1, 1, 1))
    assert_close(host(got), ref, np.float64)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 5), h=st.integers(1, 12), w=st.integers(1, 12), c=st.integers(1, 4),
       f=st.integers(1, 5), kh=st.integers(1, 5), kw=st.integers(1, 5), sh=st.integers(1, 3),
       sw=st.integers(1, 3), padding=st.sampled_from(["valid", "same"]), relu=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**31))
def test_conv2d_random_shapes(fast, n, h, w, c, f, kh, kw, sh, sw, padding, relu, dtype, seed):
    K, dev, host = fast
    if padding == "valid" and (kh > h or kw > w):
        return
    pads = conv_pads(h, w, kh, kw, sh, sw, padding)
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, h, w, c)).astype(dtype)
    kernel = r.standard_normal((kh, kw, c, f)).astype(dtype)
    bias = r.standard_normal(f).astype(dtype)
    check_conv_against_reference(fast, x, kernel, bias, (sh, sw), pads, relu, r)


# (N, H, W, C, F, kh, kw, strides, pads, pool): a convolution and the max pooling that reads it,
# run as one step (Conv2D.forward_pooled): the report's pairs, odd sizes (the last row and column
# are dropped), non-square windows, 1x1 windows (the convolution itself), a strided convolution
POOL_CASES = [
    (5, 28, 28, 1, 9, 5, 5, (1, 1), (2, 2, 2, 2), (2, 2)),     # cnn_digits l1 + l1_mp
    (3, 14, 14, 9, 9, 5, 5, (1, 1), (2, 2, 2, 2), (2, 2)),     # cnn_digits l2 + l2_mp
    (13, 7, 7, 9, 16, 3, 3, (1, 1), (1, 1, 1, 1), (2, 2)),     # cnn_digits l3: 7 -> 3
    (2, 28, 28, 1, 9, 7, 7, (1, 1), (3, 3, 3, 3), (2, 2)),     # cnn_fashion_3 l1 + l1_mp
    (3, 9, 11, 2, 3, 3, 3, (1, 1), (0, 0, 0, 0), (3, 2)),
    (2, 5, 6, 2, 3, 2, 2, (1, 1), (0, 1, 0, 1), (1, 1)),
    (2, 9, 10, 3, 4, 3, 3, (2, 2), (1, 1, 1, 1), (2, 2)),      # strided: the two kernels
    # the numba backward's kernel rows (KW*C floats) in vectors of 8, at most 6 a pass: 60
    # floats (a pass of 6 vectors and one of 2, the last half used), 48 (whole vectors), and
    # one-row kernels
    (3, 6, 7, 20, 3, 3, 3, (1, 1), (1, 1, 1, 1), (2, 2)),
    (2, 8, 8, 16, 5, 3, 3, (1, 1), (1, 1, 1, 1), (2, 2)),
    (3, 8, 9, 5, 4, 1, 3, (1, 1), (0, 0, 1, 1), (2, 2)),
    # one channel (rows of one vector, dL/dw in passes of up to 8 rows): 9 rows, 8 and a lone one
    (2, 12, 10, 1, 3, 9, 3, (1, 1), (4, 4, 1, 1), (2, 2)),
    # rows of 10 windows and 9 filters (the numba kernel's 8 x 8 blocks, and the 9th filter
    # alone) in groups of 3, 3, 3 and 1 images; 11 filters (a block overlapping the one before)
    (10, 6, 20, 1, 9, 3, 3, (1, 1), (1, 1, 1, 1), (2, 2)),
    (4, 6, 20, 1, 11, 3, 3, (1, 1), (1, 1, 1, 1), (2, 2)),
]


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: "x".join(map(str, c[:7])) + f"s{c[7][0]}pool{c[9][0]}{c[9][1]}")
def test_conv2d_maxpool_equals_the_reference(fast, case, relu):
    """float64: the pooled output and the three gradients of the one-step kernel equal the
    reference's (the convolution, then the pooling)."""
    K, dev, host = fast
    n, h, w, c, f, kh, kw, strides, pads, pool = case
    r = np.random.default_rng(sum(map(hash, case[:7])) % 2**32)
    x, kernel, bias = (r.standard_normal(s) for s in ((n, h, w, c), (kh, kw, c, f), (f,)))
    ref, saved = numpy_ref.conv2d_maxpool_forward(x, kernel, bias, strides, pads, pool, relu)
    got, got_saved = K.conv2d_maxpool_forward(dev(x), dev(kernel), dev(bias), strides, pads, pool,
                                              relu)
    assert_close(host(got), ref, np.float64)
    dout = r.standard_normal(ref.shape)
    refs = numpy_ref.conv2d_maxpool_backward(dout, saved, kernel, strides, pads, pool, relu)
    gots = K.conv2d_maxpool_backward(dev(dout), got_saved, dev(kernel), strides, pads, pool, relu)
    for g, rf in zip(gots, refs):
        assert_close(host(g), rf, np.float64)
    dx, dk, db = K.conv2d_maxpool_backward(dev(dout), got_saved, dev(kernel), strides, pads, pool,
                                           relu, need_dx=False)
    assert dx is None
    assert_close(host(dk), refs[1], np.float64)
    assert_close(host(db), refs[2], np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("relu", [False, True])
def test_conv2d_maxpool_ties_and_non_finite_windows_as_the_two_kernels(fast, relu, dtype):
    """Tied windows and NaN (first in its window or later) through the one-step kernel on
    cnn_digits l1's shape (rows of 14 windows, 9 filters: the numba kernel pools 8 windows x 8
    filters at a time, a row's last block overlapping the one before, then the 9th filter
    alone): the pooled output is the backend's convolution then max pooling's, and so are the
    winners (the first maximum of a window wins; a NaN wins only as its window's first value).
    With the ReLU the winners are compared where the output is positive only: the one-step
    kernel applies it after the pooling (see ``conv2d_maxpool_forward``)."""
    K, dev, host = fast
    r = np.random.default_rng(11)
    x = r.integers(-2, 3, (3, 28, 28, 1)).astype(dtype)  # few values: many ties
    # each NaN pixel a 5x5 patch of NaN outputs: windows with NaN first, and after a number
    x[0, 0, 0, 0] = x[1, 4, 17, 0] = x[2, 27, 27, 0] = np.nan
    x[0, 10, 21, 0], x[2, 6, 3, 0] = np.inf, -np.inf
    kernel = np.zeros((5, 5, 1, 9), dtype)
    kernel[2, 2, 0, :] = np.arange(9) - 4   # each filter a multiple of the image (filter 4: none)
    kernel[1, 3, 0, ::2] = 0.5              # some mix in a neighbour
    with np.errstate(invalid="ignore"):
        got, saved = K.conv2d_maxpool_forward(dev(x), dev(kernel), None, (1, 1),
                                              (2, 2, 2, 2), (2, 2), relu)
        arg = winners(saved)
        z = K.conv2d_forward(dev(x), dev(kernel), None, (1, 1), (2, 2, 2, 2), relu=relu)[0]
        want, want_arg = K.maxpool_forward(z, 2, 2, 2, 2, (0, 0, 0, 0))
    got, arg, want, want_arg = (host(a) for a in (got, arg, want, want_arg))
    assert np.isnan(want).any()  # (an infinite pixel under a zero tap gives NaN too)
    bits = f"u{got.dtype.itemsize}"
    np.testing.assert_array_equal(got.view(bits), want.view(bits))  # bit for bit, NaN too
    compared = np.ones(got.shape, bool) if not relu else got > 0
    np.testing.assert_array_equal(arg[compared], want_arg[compared])


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("case", POOL_CASES[:4], ids=lambda c: "x".join(map(str, c[:7])))
def test_conv2d_maxpool_float32_gives_the_two_kernels_numbers(fast, case, relu):
    """float32: the one-step kernel's pooled output is bit for bit the backend's own convolution
    then pooling (the same sums, compared in the same order), and its gradients are theirs up
    to the order of the bias sum. (Against the NumPy reference, float32 rounding could let another
    element of a nearly tied window win.)"""
    K, dev, host = fast
    n, h, w, c, f, kh, kw, strides, pads, pool = case
    r = np.random.default_rng(7)
    x, kernel, bias = (r.standard_normal(s).astype(np.float32)
                       for s in ((n, h, w, c), (kh, kw, c, f), (f,)))
    x, kernel, bias = dev(x), dev(kernel), dev(bias)
    y, conv_saved = K.conv2d_forward(x, kernel, bias, strides, pads, relu=relu)
    two, arg = K.maxpool_forward(y, *pool, *pool, (0, 0, 0, 0))
    one, saved = K.conv2d_maxpool_forward(x, kernel, bias, strides, pads, pool, relu)
    assert np.array_equal(host(one), host(two))
    dout = dev(r.standard_normal(one.shape).astype(np.float32))
    dy = K.maxpool_backward(dout, arg, y.shape, *pool, *pool, (0, 0, 0, 0))
    refs = K.conv2d_backward(dy, conv_saved, kernel, strides, pads,
                             relu_output=y if relu else None)
    gots = K.conv2d_maxpool_backward(dout, saved, kernel, strides, pads, pool, relu)
    for g, rf in zip(gots, refs):
        assert_close(host(g), host(rf), np.float32)


# the end of a residual block as one step: the report's (cnn_fashion_3's l2_2, add, l2_ap), odd
# sizes, other windows, a strided convolution (the three kernels), more filters than 8
ADD_POOL_CASES = [
    (3, 14, 14, 9, 9, 3, 3, (1, 1), (1, 1, 1, 1), (2, 2)),
    (13, 7, 7, 9, 16, 3, 3, (1, 1), (1, 1, 1, 1), (2, 2)),
    (3, 9, 11, 2, 3, 3, 3, (1, 1), (0, 0, 0, 0), (3, 2)),
    (2, 5, 6, 2, 3, 2, 2, (1, 1), (0, 1, 0, 1), (1, 1)),
    (2, 9, 10, 3, 4, 3, 3, (2, 2), (1, 1, 1, 1), (2, 2)),
    (10, 6, 20, 1, 9, 3, 3, (1, 1), (1, 1, 1, 1), (2, 2)),
]


def _conv_output_shape(case):
    n, h, w, _, f, kh, kw, (sh, sw), (top, bottom, left, right), _ = case
    return (n, (h + top + bottom - kh) // sh + 1, (w + left + right - kw) // sw + 1, f)


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("case", ADD_POOL_CASES, ids=lambda c: "x".join(map(str, c[:7])) + f"s{c[7][0]}pool{c[9][0]}{c[9][1]}")
def test_conv2d_add_maxpool_equals_the_reference(fast, case, relu):
    """float64: ``pool(conv(x) + residual)`` as one step gives the reference's pooled output and
    its four gradients (the kernel's, the bias's, dL/dx and dL/d(residual)); without dL/dx, the
    others unchanged."""
    K, dev, host = fast
    n, h, w, c, f, kh, kw, strides, pads, pool = case
    r = np.random.default_rng(sum(map(hash, case[:7])) % 2**32)
    x, kernel, bias = (r.standard_normal(s) for s in ((n, h, w, c), (kh, kw, c, f), (f,)))
    residual = r.standard_normal(_conv_output_shape(case))
    ref, saved = numpy_ref.conv2d_add_maxpool_forward(x, kernel, bias, strides, pads, pool,
                                                      residual, relu)
    got, got_saved = K.conv2d_add_maxpool_forward(dev(x), dev(kernel), dev(bias), strides, pads,
                                                  pool, dev(residual), relu)
    assert_close(host(got), ref, np.float64)
    dout = r.standard_normal(ref.shape)
    refs = numpy_ref.conv2d_add_maxpool_backward(dout, saved, kernel, strides, pads, pool, relu)
    gots = K.conv2d_add_maxpool_backward(dev(dout), got_saved, dev(kernel), strides, pads, pool,
                                         relu)
    assert len(gots) == 4
    for g, rf in zip(gots, refs):
        assert_close(host(g), rf, np.float64)
    assert np.count_nonzero(refs[3]) == dout.size  # each pooled gradient at its window's winner
    dx, dk, db, dres = K.conv2d_add_maxpool_backward(dev(dout), got_saved, dev(kernel), strides,
                                                     pads, pool, relu, need_dx=False)
    assert dx is None
    for g, rf in zip((dk, db, dres), refs[1:]):
        assert_close(host(g), rf, np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("relu", [False, True])
def test_conv2d_add_maxpool_gives_the_three_kernels_numbers_ties_and_nan_included(fast, relu,
                                                                                  dtype):
    """On the residual CNN's shape, with few distinct values (many tied windows), NaN and
    infinities in the images and the residual: the one-step forward is bit for bit the backend's
    convolution, sum and max pooling (its winners too: the first maximum of a window wins, a
    NaN only as its window's first value), and the backward's gradients are those of the
    pooling's backward and the convolution's (float32 within its tolerance)."""
    K, dev, host = fast
    r = np.random.default_rng(5)
    x = r.integers(-2, 3, (4, 14, 14, 9)).astype(dtype)
    x[0, 0, 0, 0] = x[1, 5, 8, 3] = np.nan
    x[2, 9, 2, 1] = np.inf
    kernel = r.integers(-1, 2, (3, 3, 9, 9)).astype(dtype)
    residual = r.integers(-2, 3, (4, 14, 14, 9)).astype(dtype)
    residual[3, 6, 7, 4] = np.nan
    residual[3, 0, 13, 2] = -np.inf
    pads = (1, 1, 1, 1)
    with np.errstate(invalid="ignore"):
        got, saved = K.conv2d_add_maxpool_forward(dev(x), dev(kernel), None, (1, 1), pads, (2, 2),
                                                  dev(residual), relu)
        z, conv_saved = K.conv2d_forward(dev(x), dev(kernel), None, (1, 1), pads, relu=relu)
        want, want_arg = K.maxpool_forward(z + dev(residual), 2, 2, 2, 2, (0, 0, 0, 0))
    got, want, arg, want_arg = (host(a) for a in (got, want, winners(saved), want_arg))
    assert np.isnan(want).any() and (want_arg > 0).any()
    bits = f"u{got.dtype.itemsize}"
    np.testing.assert_array_equal(got.view(bits), want.view(bits))
    np.testing.assert_array_equal(arg, want_arg)
    # the backward, on finite images (NaN makes the loss NaN anyway)
    x, residual = (np.where(np.isfinite(a), a, 0).astype(dtype) for a in (x, residual))
    got, saved = K.conv2d_add_maxpool_forward(dev(x), dev(kernel), None, (1, 1), pads, (2, 2),
                                              dev(residual), relu)
    z, conv_saved = K.conv2d_forward(dev(x), dev(kernel), None, (1, 1), pads, relu=relu)
    _, arg = K.maxpool_forward(z + dev(residual), 2, 2, 2, 2, (0, 0, 0, 0))
    dout = dev(r.standard_normal(got.shape).astype(dtype))
    ds = K.maxpool_backward(dout, arg, z.shape, 2, 2, 2, 2, (0, 0, 0, 0))
    wants = K.conv2d_backward(ds, conv_saved, dev(kernel), (1, 1), pads,
                              relu_output=z if relu else None) + (ds,)
    gots = K.conv2d_add_maxpool_backward(dout, saved, dev(kernel), (1, 1), pads, (2, 2), relu)
    for g, wt in zip(gots, wants):
        assert_close(host(g), host(wt), dtype)
    np.testing.assert_array_equal(host(gots[3]), host(ds))  # the same winners, the same numbers


def test_conv2d_add_maxpool_backward_keeps_a_float64_gradient_to_the_residual():
    """float32 images, a float64 gradient: dL/d(residual) is the float64 gradient at the
    winners, as the reference's pooling backward gives it, not rounded to the images' type
    (the convolution's gradients are computed in it)."""
    K = _kernels("numba")[0]
    r = np.random.default_rng(11)
    x = r.standard_normal((3, 14, 14, 9)).astype(np.float32)
    kernel = r.standard_normal((3, 3, 9, 9)).astype(np.float32)
    residual = r.standard_normal((3, 14, 14, 9)).astype(np.float32)
    y, saved = K.conv2d_add_maxpool_forward(x, kernel, None, (1, 1), (1, 1, 1, 1), (2, 2),
                                            residual, True)
    dout = r.standard_normal(y.shape)  # float64, not representable in float32
    dres = K.conv2d_add_maxpool_backward(dout, saved, kernel, (1, 1), (1, 1, 1, 1), (2, 2),
                                         True)[3]
    want = numpy_ref.maxpool_backward(dout, saved[1], (3, 14, 14, 9), 2, 2, 2, 2, (0, 0, 0, 0))
    assert dres.dtype == np.float64
    np.testing.assert_array_equal(dres, want)


@pytest.mark.parametrize("name", ["numpy", "numba"])
def test_conv2d_add_maxpool_refuses_a_residual_of_another_shape(name):
    """One channel would broadcast over the four filters: refused, not added to each."""
    K = numpy_ref if name == "numpy" else _kernels("numba")[0]
    x, kernel = np.zeros((2, 6, 6, 1)), np.zeros((3, 3, 1, 4))
    with pytest.raises(ValueError, match=r"conv2d_add_maxpool_forward: the residual \(2, 6, 6, "
                                         r"1\) .* must have its shape \(2, 6, 6, 4\)"):
        K.conv2d_add_maxpool_forward(x, kernel, None, (1, 1), (1, 1, 1, 1), (2, 2),
                                     np.zeros((2, 6, 6, 1)))


@pytest.mark.parametrize("change", ["pool", "pads", "kernel", "saved", "won"])
def test_conv2d_maxpool_backward_refuses_what_another_forward_pass_saved(change):
    """A backward call whose pool size, padding or kernel differ from the forward pass's would
    place gradients outside the compiled loop's grid, and winners' values of another float type
    than the images' are no forward pass's either: refused with the reason."""
    K, _, _ = _kernels("numba")
    r = np.random.default_rng(0)
    x, kernel = r.standard_normal((4, 12, 12, 1)), r.standard_normal((3, 3, 1, 2))
    out, saved = K.conv2d_maxpool_forward(x, kernel, None, (1, 1), (1, 1, 1, 1), (2, 2))
    args = {"saved": saved, "kernel": kernel, "pads": (1, 1, 1, 1), "pool": (2, 2)}
    key, value = {"pool": ("pool", (3, 3)), "pads": ("pads", (0, 0, 0, 0)),
                  "kernel": ("kernel", r.standard_normal((5, 5, 1, 2))),
                  "saved": ("saved", (x, None)),
                  "won": ("saved", (x, saved[1], saved[2].astype(np.float32)))}[change]
    args[key] = value
    with pytest.raises(ValueError, match=r"conv2d_maxpool_backward: (what was saved|saved must)"):
        K.conv2d_maxpool_backward(np.ones_like(out), args["saved"], args["kernel"], (1, 1),
                                  args["pads"], args["pool"])


@pytest.mark.parametrize("pool", [(2, 2), (1, 1)])
@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("winner", [-1, 4, 2 ** 31 - 1])
def test_conv2d_maxpool_backward_refuses_a_winner_outside_its_window(winner, residual, pool):
    """Winners of the right shape but naming no position of their window (saved arrays changed
    by hand) would make the compiled loop read outside the image: refused, whichever window
    holds the bad one (here the last image's last window)."""
    K, _, _ = _kernels("numba")
    r = np.random.default_rng(0)
    x, kernel = r.standard_normal((9, 12, 12, 3)), r.standard_normal((3, 3, 3, 8))
    name = "conv2d_add_maxpool" if residual else "conv2d_maxpool"
    extra = (r.standard_normal((9, 12, 12, 8)),) if residual else ()
    out, saved = getattr(K, f"{name}_forward")(x, kernel, None, (1, 1), (1, 1, 1, 1), pool,
                                               *extra, relu=True)
    arg = saved[1].copy()
    arg[-1, -1, -1, -1] = winner
    backward = getattr(K, f"{name}_backward")
    backward(np.ones_like(out), saved, kernel, (1, 1), (1, 1, 1, 1), pool, relu=True)  # fine
    with pytest.raises(ValueError, match=rf"{name}_backward: what was saved"):
        backward(np.ones_like(out), (saved[0], arg, saved[2]), kernel, (1, 1), (1, 1, 1, 1),
                 pool, relu=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("case", [POOL_CASES[i] for i in (0, 1, 2, 3, 7)],
                         ids=lambda c: "x".join(map(str, c[:7])))
def test_conv2d_maxpool_backward_keeps_a_non_finite_gradient_in_its_winner_s_patch(
        fast, case, relu, dtype):
    """An infinite pooled gradient makes dL/dx non-finite under its winner's patch only, as in the
    reference: the numba backward updates dL/dx in whole vectors of 8 floats, and the lanes past a
    kernel row (45 floats for l2) must be left as they were (0 * inf would put NaN next to the
    patch). The winner is in the first column of windows, so that pixels of the image lie past
    its rows."""
    K, dev, host = fast
    n, h, w, c, f, kh, kw, strides, pads, pool = case
    r = np.random.default_rng(3)
    x, kernel = r.standard_normal((n, h, w, c)), r.standard_normal((kh, kw, c, f))
    out, saved = numpy_ref.conv2d_maxpool_forward(x, kernel, None, strides, pads, pool, relu)
    _, got_saved = K.conv2d_maxpool_forward(dev(x.astype(dtype)), dev(kernel.astype(dtype)),
                                            None, strides, pads, pool, relu)
    dout = np.ones(out.shape)
    dout[n - 1, out.shape[1] // 2, 0, 1 % f] = np.inf
    # the reference with the backend's winners (in float32 a nearly tied window, or one with no
    # positive value under the ReLU, may have another winner than the float64 reference's)
    ref_saved = (saved[0], saved[1], host(winners(got_saved)))
    with np.errstate(invalid="ignore"):  # inf - inf in the reference's products: NaN, wanted
        ref = numpy_ref.conv2d_maxpool_backward(dout, ref_saved, kernel, strides, pads, pool,
                                                relu)[0]
    got = host(K.conv2d_maxpool_backward(dev(dout.astype(dtype)), got_saved,
                                         dev(kernel.astype(dtype)), strides, pads, pool, relu)[0])
    finite = np.isfinite(ref)
    assert 0 < (~finite).sum() <= kh * kw * c  # the patch of one winner
    np.testing.assert_array_equal(np.isfinite(got), finite)
    assert_close(got[finite], ref[finite].astype(dtype), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", [1, 3])  # one channel: dL/dx several rows a pass
def test_conv2d_non_finite_values_land_where_the_reference_puts_them(fast, c, dtype):
    """NaN and infinities through the unpooled stride-1 convolution with its ReLU and its dense
    backward (every gradient non-zero), at the same positions as the reference's: NaN and
    infinite pixels make NaN and infinite outputs (the ReLU keeps NaN); an infinite gradient
    where the ReLU is off gives NaN (``inf * 0``), one where it is on infinities: through the
    numba kernels' moves between NHWC rows and per-filter planes, and their sums on the grid.
    (The backward runs on finite images: on its grid, the numba dL/dw also multiplies pixels
    by the zeros of the padding positions, so that an infinite pixel gives NaN in more of dL/dw
    than in the reference's.)"""
    K, dev, host = fast
    r = np.random.default_rng(5)
    n, h, w, f, k = 2, 9, 17, 12, 3
    pads = (1, 1, 1, 1)
    x, kernel = r.standard_normal((n, h, w, c)), r.standard_normal((k, k, c, f))
    bad = x.copy()
    bad[0, 4, 3, c // 2] = np.nan
    bad[1, 8, 16, c - 1] = np.inf  # in the last row and column
    with np.errstate(invalid="ignore"):
        ref = numpy_ref.conv2d_forward(bad, kernel, None, (1, 1), pads, relu=True)[0]
        got = host(K.conv2d_forward(dev(bad.astype(dtype)), dev(kernel.astype(dtype)), None,
                                    (1, 1), pads, relu=True)[0])
    assert np.isnan(ref).any() and np.isinf(ref).any()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(ref))

    ref, saved = numpy_ref.conv2d_forward(x, kernel, None, (1, 1), pads, relu=True)
    got, got_saved = K.conv2d_forward(dev(x.astype(dtype)), dev(kernel.astype(dtype)), None,
                                      (1, 1), pads, relu=True)
    z = numpy_ref.conv2d_forward(x, kernel, None, (1, 1), pads)[0]  # before the ReLU
    dout = np.ones(ref.shape)
    dout[(1, *np.argwhere(z[1] < -0.1)[0])] = np.inf    # ReLU off: inf * 0 = NaN
    dout[(0, *np.argwhere(z[0] > 0.1)[-1])] = -np.inf   # on: infinities
    with np.errstate(invalid="ignore"):
        refs = numpy_ref.conv2d_backward(dout, saved, kernel, (1, 1), pads, relu_output=ref)
        gots = K.conv2d_backward(dev(dout.astype(dtype)), got_saved, dev(kernel.astype(dtype)),
                                 (1, 1), pads, relu_output=got)
    assert np.isnan(refs[0]).any() and np.isinf(refs[0]).any()
    for g, rf in zip(gots, refs):
        g = host(g)
        np.testing.assert_array_equal(np.isnan(g), np.isnan(rf))
        np.testing.assert_array_equal(np.isinf(g), np.isinf(rf))


STRIDE1_CASES = [c for c in CONV_CASES if c[7:9] == (1, 1)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("need_dx", [True, False])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("case", STRIDE1_CASES, ids=lambda c: "x".join(map(str, c[:7])) + "p" + "".join(map(str, c[9])))
def test_conv2d_backward_from_the_non_zero_gradients_equals_the_reference(case, relu, need_dx,
                                                                          dtype, monkeypatch):
    """numba's unpooled stride-1 backward from the non-zero gradients alone (each position a
    window of one, numba_cpu._backward_from_winners), taken when most gradients are 0
    (numba_cpu._winners_pay): forced here on every shape, then the dense loops, both against
    the reference, on a gradient four in five zeros."""
    pytest.importorskip("numba")
    from tinynet.kernels import numba_cpu
    n, h, w, c, f, kh, kw, _, _, pads = case
    r = np.random.default_rng(hash(case) % 2**32)
    x, kernel = r.standard_normal((n, h, w, c)).astype(dtype), r.standard_normal((kh, kw, c, f)).astype(dtype)
    ref, saved = numpy_ref.conv2d_forward(x, kernel, None, (1, 1), pads, relu=relu)
    got, got_saved = numba_cpu.conv2d_forward(x, kernel, None, (1, 1), pads, relu=relu)
    dout = (r.standard_normal(ref.shape) * (r.random(ref.shape) < 0.2)).astype(dtype)
    refs = numpy_ref.conv2d_backward(dout, saved, kernel, (1, 1), pads,
                                     relu_output=ref if relu else None, need_dx=need_dx)
    bounds = numpy_ref.conv2d_backward(np.abs(dout), numpy_ref.conv2d_forward(
        np.abs(x), np.abs(kernel), None, (1, 1), pads)[1], np.abs(kernel), (1, 1), pads,
        relu_output=ref if relu else None, need_dx=need_dx)
    taken = []
    for forced in (True, False):
        monkeypatch.setattr(numba_cpu, "_winners_pay", lambda *a, forced=forced: taken.append(forced) or forced)
        gots = numba_cpu.conv2d_backward(dout, got_saved, kernel, (1, 1), pads,
                                         relu_output=got if relu else None, need_dx=need_dx)
        assert (gots[0] is None) == (not need_dx)
        for g, rf, b in zip(gots, refs, bounds):
            if rf is not None:
                assert_close(g, rf, dtype, scale=float(b.max(initial=0.0)) or 1.0)
    assert taken == [True, False]


def test_the_backward_from_the_winners_is_taken_where_it_pays():
    """The rule against the residual CNN's block (batch 128, 14x14x9): its l2_2 (3x3) gets a
    gradient that is 0 in three windows of four (the Add's sum is max-pooled) and takes the
    winners' path, as does its l2 (5x5) with the ReLU on at 30% of a dense gradient (at 80% it
    takes the dense loops; in training it gets about 60%, near its break-even on an AVX2
    machine, above it with AVX-512); a dense gradient without ReLU, or a one-channel 5x5 kernel
    (25 taps a position, fewer than a window's listing costs), takes the dense loops, as does a
    batch whose first images alone have sparse gradients."""
    pytest.importorskip("numba")
    from tinynet.kernels import numba_cpu
    r = np.random.default_rng(0)
    shape = (128, 14, 14, 9)
    on = (r.random(shape) < 0.6).astype(np.float32)
    dense = r.standard_normal(shape).astype(np.float32)
    pooled = dense * (r.integers(0, 4, shape) == 0)  # one position in four: the window's winner
    assert numba_cpu._winners_pay(pooled, on, True, (3, 3, 9, 9), True)
    assert numba_cpu._winners_pay(dense, (r.random(shape) < 0.3).astype(np.float32), True,
                                  (5, 5, 9, 9), True)
    assert not numba_cpu._winners_pay(dense, (r.random(shape) < 0.8).astype(np.float32), True,
                                      (5, 5, 9, 9), True)
    assert not numba_cpu._winners_pay(dense, on, False, (5, 5, 9, 9), True)
    assert not numba_cpu._winners_pay(dense, on, False, (3, 3, 9, 9), False)
    assert not numba_cpu._winners_pay(pooled[..., :1], on[..., :1], True, (5, 5, 1, 9), False)
    # counted on images spread over the batch: sparse first images do not decide for all
    mixed = np.concatenate([pooled[:24], dense[24:]])
    assert not numba_cpu._winners_pay(mixed, on, False, (3, 3, 9, 9), True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("case", [STRIDE1_CASES[i] for i in (1, 3, 5, 10)], ids=lambda c: "x".join(map(str, c[:7])))
def test_conv2d_backward_from_the_winners_keeps_a_non_finite_gradient_in_its_patch(
        case, relu, dtype, monkeypatch):
    """As for the pooled backward: an infinite gradient at one position makes dL/dx non-finite
    under its patch only, as in the reference (the vectors of 8 floats past a kernel row are
    left as they were)."""
    pytest.importorskip("numba")
    from tinynet.kernels import numba_cpu
    monkeypatch.setattr(numba_cpu, "_winners_pay", lambda *a: True)
    n, h, w, c, f, kh, kw, _, _, pads = case
    r = np.random.default_rng(3)
    x, kernel = r.standard_normal((n, h, w, c)), r.standard_normal((kh, kw, c, f))
    out, saved = numpy_ref.conv2d_forward(x, kernel, None, (1, 1), pads, relu=relu)
    got_out, got_saved = numba_cpu.conv2d_forward(x.astype(dtype), kernel.astype(dtype), None,
                                                  (1, 1), pads, relu=relu)
    on = (got_out > 0) if relu else np.ones(out.shape, bool)
    dout = np.ones(out.shape)
    where = tuple(np.argwhere(on)[len(np.argwhere(on)) // 2])  # a position the ReLU lets through
    dout[where] = np.inf
    with np.errstate(invalid="ignore"):  # inf - inf in the reference's products: NaN, wanted
        ref = numpy_ref.conv2d_backward(dout, saved, kernel, (1, 1), pads,
                                        relu_output=got_out.astype(np.float64) if relu else None)[0]
    got = numba_cpu.conv2d_backward(dout.astype(dtype), got_saved, kernel.astype(dtype), (1, 1),
                                    pads, relu_output=got_out if relu else None)[0]
    finite = np.isfinite(ref)
    assert 0 < (~finite).sum() <= kh * kw * c  # the patch of one position
    np.testing.assert_array_equal(np.isfinite(got), finite)
    assert_close(got[finite], ref[finite].astype(dtype), dtype)


def test_conv2d_maxpool_refuses_a_pool_larger_than_the_output():
    K, _, _ = _kernels("numba")
    x, kernel = np.zeros((1, 3, 3, 1), np.float32), np.zeros((3, 3, 1, 1), np.float32)
    with pytest.raises(ValueError, match=r"pool \(2, 2\) does not fit the convolution's output \(1, 1\)"):
        K.conv2d_maxpool_forward(x, kernel, None, (1, 1), (0, 0, 0, 0), (2, 2))


# (N, H, W, C, kh, kw, sh, sw, pads)
WINDOW_CASES = [
    (3, 28, 28, 9, 2, 2, 2, 2, (0, 0, 0, 0)),      # the report's pooling
    (2, 7, 7, 16, 2, 2, 2, 2, (0, 0, 0, 0)),       # odd size: the last row/column is dropped
    (2, 5, 6, 3, 2, 2, 1, 1, (0, 1, 0, 1)),        # overlapping windows, "same"
    (2, 9, 10, 2, 3, 3, 2, 2, (1, 1, 1, 1)),
    (2, 7, 8, 1, 3, 3, 3, 3, (1, 1, 0, 1)),        # tiling windows with padding
    (1, 9, 9, 2, 2, 2, 3, 3, (0, 0, 0, 0)),        # stride larger than the window (gaps)
    (2, 3, 3, 2, 3, 3, 1, 1, (1, 1, 1, 1)),
    (1, 1, 1, 1, 1, 1, 1, 1, (0, 0, 0, 0)),
    (2, 4, 4, 3, 2, 2, 2, 2, (2, 2, 2, 2)),        # whole windows of padding
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", WINDOW_CASES)
def test_im2col_and_col2im_equal_the_reference(fast, case, dtype):
    K, dev, host = fast
    n, h, w, c, kh, kw, sh, sw, pads = case
    r = np.random.default_rng(7)
    x = r.standard_normal((n, h, w, c)).astype(dtype)
    ref = numpy_ref.im2col(x, kh, kw, sh, sw, pads)
    np.testing.assert_array_equal(host(K.im2col(dev(x), kh, kw, sh, sw, pads)), ref)
    cols = r.standard_normal(ref.shape).astype(dtype)
    ref_dx = numpy_ref.col2im(cols, x.shape, kh, kw, sh, sw, pads)
    assert_close(host(K.col2im(dev(cols), x.shape, kh, kw, sh, sw, pads)), ref_dx, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("values", ["ties", "normal", "negative"])
@pytest.mark.parametrize("case", WINDOW_CASES)
def test_maxpool_equals_the_reference(fast, case, values, dtype):
    K, dev, host = fast
    n, h, w, c, ph, pw, sh, sw, pads = case
    r = np.random.default_rng(11)
    if values == "ties":  # small integers: many windows have several maxima
        x = r.integers(0, 3, size=(n, h, w, c)).astype(dtype)
    elif values == "negative":  # all below zero: padding (-inf) must never win
        x = -np.abs(r.standard_normal((n, h, w, c))).astype(dtype) - 1
    else:
        x = r.standard_normal((n, h, w, c)).astype(dtype)
    ref_out, ref_arg = numpy_ref.maxpool_forward(x, ph, pw, sh, sw, pads)
    out, arg = K.maxpool_forward(dev(x), ph, pw, sh, sw, pads)
    np.testing.assert_array_equal(host(out), ref_out)
    np.testing.assert_array_equal(host(arg), ref_arg)
    dout = r.standard_normal(ref_out.shape).astype(dtype)
    ref_dx = numpy_ref.maxpool_backward(dout, ref_arg, x.shape, ph, pw, sh, sw, pads)
    dx = K.maxpool_backward(dev(dout), arg, x.shape, ph, pw, sh, sw, pads)
    assert_close(host(dx), ref_dx, dtype)


def test_maxpool_ties_go_to_the_first_maximum(fast):
    K, dev, host = fast
    x = np.zeros((1, 2, 2, 1))          # four equal values: the gradient goes to (0, 0) only
    out, arg = K.maxpool_forward(dev(x), 2, 2, 2, 2, (0, 0, 0, 0))
    dx = K.maxpool_backward(dev(np.ones((1, 1, 1, 1))), arg, x.shape, 2, 2, 2, 2, (0, 0, 0, 0))
    np.testing.assert_array_equal(host(dx)[0, :, :, 0], [[1.0, 0.0], [0.0, 0.0]])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 4), h=st.integers(1, 11), w=st.integers(1, 11), c=st.integers(1, 5),
       ph=st.integers(1, 4), pw=st.integers(1, 4), sh=st.integers(1, 4), sw=st.integers(1, 4),
       padding=st.sampled_from(["valid", "same"]), levels=st.integers(2, 6),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**31))
def test_maxpool_random_shapes(fast, n, h, w, c, ph, pw, sh, sw, padding, levels, dtype, seed):
    K, dev, host = fast
    if padding == "valid" and (ph > h or pw > w):
        return
    pads = conv_pads(h, w, ph, pw, sh, sw, padding)
    x = np.random.default_rng(seed).integers(-levels, levels, size=(n, h, w, c)).astype(dtype)
    ref_out, ref_arg = numpy_ref.maxpool_forward(x, ph, pw, sh, sw, pads)
    out, arg = K.maxpool_forward(dev(x), ph, pw, sh, sw, pads)
    np.testing.assert_array_equal(host(out), ref_out)
    np.testing.assert_array_equal(host(arg), ref_arg)
    dout = np.random.default_rng(seed + 1).standard_normal(ref_out.shape).astype(dtype)
    ref_dx = numpy_ref.maxpool_backward(dout, ref_arg, x.shape, ph, pw, sh, sw, pads)
    assert_close(host(K.maxpool_backward(dev(dout), arg, x.shape, ph, pw, sh, sw, pads)),
                 ref_dx, dtype)


def test_numba_kernels_accept_views_and_mixed_float_types_and_refuse_others():
    K, _, _ = _kernels("numba")
    r = np.random.default_rng(3)
    x = r.standard_normal((4, 9, 9, 6))[:, ::2, 1:, ::2]       # a strided view
    kernel = r.standard_normal((3, 3, 3, 2)).astype(np.float32)  # float32 kernel, float64 x
    ref, _ = numpy_ref.conv2d_forward(x, kernel, None, (1, 1), (1, 1, 1, 1))
    got, _ = K.conv2d_forward(x, kernel, None, (1, 1), (1, 1, 1, 1))
    assert_close(got, ref, np.float64)
    with pytest.raises(TypeError, match=r"maxpool_forward.*float32 or float64.*float16"):
        K.maxpool_forward(x.astype(np.float16), 2, 2, 2, 2, (0, 0, 0, 0))  # never a silent fallback


@pytest.mark.parametrize("relu", [False, True])
def test_numba_conv2d_backward_accepts_views_in_what_it_was_given(relu):
    """``saved`` and the gradient as views (a hand-built ``saved``, or one from another
    backend): the dense backward copies the images into its planes 8 pixels x 8 channels at a
    time, which needs them contiguous (a review: numba refused to compile it)."""
    K, _, _ = _kernels("numba")
    r = np.random.default_rng(4)
    x = r.standard_normal((3, 10, 20, 18))[:, :, ::2, ::2]           # (3, 10, 10, 9), strided
    kernel = r.standard_normal((3, 3, 9, 10))
    y, saved = numpy_ref.conv2d_forward(np.ascontiguousarray(x), kernel, None, (1, 1),
                                        (1, 1, 1, 1), relu=relu)
    dy = r.standard_normal((3, 10, 20, 10))[:, :, ::2]                # (3, 10, 10, 10), strided
    want = numpy_ref.conv2d_backward(dy, saved, kernel, (1, 1), (1, 1, 1, 1),
                                     relu_output=y if relu else None)
    got = K.conv2d_backward(dy, (x, None), kernel, (1, 1), (1, 1, 1, 1),
                            relu_output=y[:, ::-1][:, ::-1] if relu else None)
    for g, w in zip(got, want):
        assert_close(g, w, np.float64)


@pytest.mark.parametrize("call", [
    lambda K: K.conv2d_forward(np.zeros((2, 5, 5)), np.zeros((3, 3, 1, 2)), None, (1, 1), (0,) * 4),
    lambda K: K.conv2d_forward(np.zeros((2, 5, 5, 3)), np.zeros((3, 3, 2, 2)), None, (1, 1), (0,) * 4),
    lambda K: K.conv2d_forward(np.zeros((2, 5, 5, 2)), np.zeros((3, 3, 2, 2)), np.zeros(3), (1, 1), (0,) * 4),
    lambda K: K.conv2d_forward(np.zeros((2, 2, 2, 2)), np.zeros((3, 3, 2, 2)), None, (1, 1), (0,) * 4),
    lambda K: K.conv2d_forward(np.zeros((2, 5, 5, 2)), np.zeros((3, 3, 2, 2)), None, (0, 1), (0,) * 4),
    lambda K: K.conv2d_forward(np.zeros((2, 5, 5, 2)), np.zeros((3, 3, 2, 2)), None, (1, 1), (0, 0, -1, 0)),
    lambda K: K.conv2d_backward(np.zeros((2, 4, 4, 2)), (np.zeros((2, 5, 5, 2)), None),
                                np.zeros((3, 3, 2, 2)), (1, 1), (0,) * 4),
    lambda K: K.maxpool_forward(np.zeros((1, 1, 2, 1)), 2, 2, 2, 2, (0,) * 4),
    lambda K: K.maxpool_backward(np.zeros((1, 2, 2, 1)), np.zeros((1, 2, 2, 1), np.int32),
                                 (1, 7, 7, 1), 2, 2, 2, 2, (0,) * 4),
    lambda K: K.col2im(np.zeros((10, 9)), (1, 4, 4, 1), 3, 3, 1, 1, (0,) * 4),
])
def test_numba_kernels_refuse_shapes_that_do_not_fit(call):
    K, _, _ = _kernels("numba")
    with pytest.raises(ValueError):
        call(K)


RMSPROP_OPTIONS = [{}, {"momentum": 0.9}, {"centered": True}, {"momentum": 0.5, "centered": True},
                   {"learning_rate": 0.01, "rho": 0.5, "epsilon": 1e-3}]


def _rmsprop_trajectory(options, dtype, steps=6):
    from tinynet import optimizers
    r = np.random.default_rng(7)
    params = [r.standard_normal((37, 19)).astype(dtype), r.standard_normal(19).astype(dtype)]
    opt = optimizers.RMSprop(**options)
    for _ in range(steps):
        grads = [(r.standard_normal(p.shape) * 10.0 ** r.integers(-4, 2)).astype(dtype)
                 for p in params]
        opt.apply_gradients(zip(grads, params))
    state = opt.get_state(params)["slots"]
    return params, state


@pytest.mark.parametrize("options", RMSPROP_OPTIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_rmsprop_gives_the_readable_updates_numbers(options, dtype, monkeypatch):
    """The numba backend's one-pass RMSprop against the reference lines of optimizers.RMSprop
    (the report's equations 1 and 2): bit for bit in float64 and float32, state included."""
    pytest.importorskip("numba")
    backend.set_backend("numpy")
    assert backend.fused("rmsprop_update", np.zeros(1)) is None  # the reference runs its own lines
    ref_params, ref_state = _rmsprop_trajectory(options, dtype)
    backend.set_backend("numba")
    from tinynet.kernels import numba_cpu
    calls = []
    real = numba_cpu.rmsprop_update
    monkeypatch.setattr(numba_cpu, "rmsprop_update", lambda *a: calls.append(1) or real(*a))
    backend._registry.pop("numba", None)  # rebuild the registry entry around the spy
    backend.set_backend("numba")
    params, state = _rmsprop_trajectory(options, dtype)
    backend._registry.pop("numba", None)
    assert len(calls) == 6 * 2  # every update of every parameter went through the fused kernel
    for a, b in zip(params, ref_params):
        np.testing.assert_array_equal(a, b)
    for s, t in zip(state, ref_state):
        for u, v in zip(s, t):
            assert (u is None) == (v is None)
            if u is not None:
                np.testing.assert_array_equal(u, v)


def _not_finite_values(dtype):
    """NaNs (quiet, signalling, negative, with a payload), the infinities, as ``dtype``."""
    bits = {np.float32: (np.uint32, [0x7fc00000, 0x7f800001, 0xffc00000, 0x7fc0beef, 0x7f800000,
                                     0xff800000]),
            np.float64: (np.uint64, [0x7ff8000000000000, 0x7ff0000000000001, 0xfff8000000000000,
                                     0x7ff800000000beef, 0x7ff0000000000000, 0xfff0000000000000])}
    kind, values = bits[dtype]
    return np.array(values, dtype=kind).view(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("filters", list(range(1, 14)) + [18, 32])  # passes of 1 to 6 filters
def test_blocked_sums_equal_their_formula(filters, dtype):
    """The sums over taps that the numba convolutions run (hand-written vector code) against
    their formula ``acc[f, p] = sum_t wts[f, t] * planes[taps[t] + p] + bias[f]`` in NumPy (from
    position 0 and from a later one), for
    every filter count a pass takes (1 to 6 filters, each with its own number of vectors a pass)
    and lengths that are whole passes, a pass and some vectors, or less than one pass; the
    positions past ``length`` in each row of ``acc`` are left as they were."""
    pytest.importorskip("numba")
    from tinynet.kernels import numba_cpu
    r = np.random.default_rng(filters)
    lanes = numba_cpu.LANES
    for length in (lanes, 2 * lanes, 7 * lanes, 8 * lanes, 9 * lanes, 25 * lanes):
        ntaps = int(r.integers(1, 30))
        planes = r.standard_normal(3 * length + 40).astype(dtype)
        taps = r.integers(0, planes.size - length + 1, ntaps).astype(np.int64)
        wts = r.standard_normal((filters, ntaps)).astype(dtype)
        bias = r.standard_normal(filters).astype(dtype)
        stride = length + 5
        acc = np.full(filters * stride, np.nan, dtype)
        numba_cpu._blocked_sums(acc, planes, taps, wts.ravel(), bias, stride, 0, length)
        shifted = planes[taps[:, None] + np.arange(length)]                  # (ntaps, length)
        want = bias[:, None] + wts.astype(np.float64) @ shifted.astype(np.float64)
        got = acc.reshape(filters, stride)
        scale = float((np.abs(bias)[:, None] + np.abs(wts) @ np.abs(shifted)).max())
        assert_close(got[:, :length], want.astype(dtype), dtype, scale=scale)
        assert np.isnan(got[:, length:]).all(), "written past the row's length"
        # from a first position on (the forward's sums image by image): the same sums there,
        # nothing written before it or past it
        start = 3  # not a whole vector: an image's grid need not start on one
        acc = np.full(filters * (stride + start), np.nan, dtype)
        numba_cpu._blocked_sums(acc, planes, taps - start, wts.ravel(), bias, stride + start,
                                start, length)
        got = acc.reshape(filters, stride + start)
        assert_close(got[:, start:start + length], want.astype(dtype), dtype, scale=scale)
        assert np.isnan(got[:, :start]).all() and np.isnan(got[:, start + length:]).all()
    # a length that is not a whole number of vectors would write past the row: refused
    with pytest.raises(ValueError, match="whole number of vectors"):
        numba_cpu._blocked_sums(acc, planes, taps, wts.ravel(), bias, stride, 0, length - 1)


def test_a_group_s_sums_image_by_image_or_in_one_run_give_the_same_numbers():
    """The forward's sums skip each image's padding rows (image by image) where they hold a
    vector of positions, else run over the whole group: both give the reference's output rows,
    and a group asked for more rows than its grid has is refused (its planes would be short)."""
    pytest.importorskip("numba")
    from tinynet.kernels import numba_cpu
    r = np.random.default_rng(3)
    x = r.standard_normal((3, 14, 14, 2)).astype(np.float32)
    kernel = r.standard_normal((5, 5, 2, 3)).astype(np.float32)
    bias = r.standard_normal(3).astype(np.float32)
    (wts, pidx, offs, b), (top, left, hp, wp, _) = numba_cpu._forward_s1_args(
        x, kernel, bias, (2, 2, 2, 2))
    tail = numba_cpu._tail(offs)
    ref, _ = numpy_ref.conv2d_forward(x, kernel, bias, (1, 1), (2, 2, 2, 2))
    for rows in (14, hp):  # 2 padding rows of 16 positions skipped, or none (one run)
        acc = numba_cpu._conv_group(x, wts, pidx, offs, b, top, left, hp, wp, tail, 0, 3, rows)
        got = np.stack([acc[:, i * hp * wp:i * hp * wp + 14 * wp].reshape(3, 14, wp)[:, :, :14]
                        for i in range(3)]).transpose(0, 2, 3, 1)
        assert_close(got, ref, np.float32, scale=float(np.abs(ref).max()))
    with pytest.raises(ValueError, match="more output rows than the grid"):
        numba_cpu._conv_group(x, wts, pidx, offs, b, top, left, hp, wp, tail, 0, 3, hp + 1)


def _special_values(r, shape, dtype):
    """Random values of ``shape`` with every kind of float among them: +-0, +-inf and NaN."""
    a = r.standard_normal(shape).astype(dtype)
    flat = a.reshape(-1)
    flat[r.choice(flat.size, size=min(flat.size, 40), replace=False)] = np.resize(
        np.array([0.0, -0.0, np.inf, -np.inf, np.nan], dtype), min(flat.size, 40))
    return a


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("h, w", [(3, 3), (1, 4), (3, 4), (2, 5), (3, 6), (4, 7), (3, 8), (3, 9),
                                  (3, 15), (3, 16), (3, 17)])
@pytest.mark.parametrize("c", [1, 7, 8, 9, 16, 17])
def test_images_to_planes_and_back_copy_every_value_and_nothing_else(c, h, w, dtype):
    """numba_cpu._from_image / _to_image (8 pixels x 8 channels a block, transposed in
    registers, where a row has at least 8 of each; a row's last block overlapping the one
    before it, the channels past the last whole 8 one at a time; rows of 4 to 7 pixels too: in
    _from_image a block a row, zeros past the row's pixels, where it fits in the planes; in
    _to_image through a ReLU, but the last, their blocks running into the next row): each value
    where it belongs, bit for bit with the scalar formulas (ReLU's backward ``v * [m > 0]``,
    ReLU ``0 if v <= 0 else v``: -0, inf and NaN included), and no other element of the
    destination touched, but for _from_image's zeros after a narrow row (the grid's padding,
    or the next row's pixels, written after them)."""
    pytest.importorskip("numba")
    from tinynet.kernels import numba_cpu
    r = np.random.default_rng(c * 100 + w + 10000 * h)
    wp, base, sentinel = w + 3, 5, dtype(1234.5)
    image, mask = _special_values(r, (h, w, c), dtype), _special_values(r, (h, w, c), dtype)
    at = base + np.arange(h)[:, None] * wp + np.arange(w)[None, :]  # (h, w) -> plane position
    bits = np.uint32 if dtype == np.float32 else np.uint64
    for relu in (False, True):
        planes = np.full((c, base + h * wp + 7), sentinel, dtype)
        numba_cpu._from_image(planes, base, wp, image, mask, relu)
        want = np.full_like(planes, sentinel)
        if 4 <= w < 8 and c >= 8:  # the narrow rows' zeros, in the channels of whole blocks
            for row in range(h):
                start = base + row * wp
                if start + 8 <= planes.shape[1]:
                    want[:c - c % 8, start + w:start + 8] = 0
        with np.errstate(invalid="ignore"):
            want[:, at] = (image * (mask > 0) if relu else image).transpose(2, 0, 1)
        np.testing.assert_array_equal(planes.view(bits), want.view(bits))
        room = np.full((h + 1, w, c), sentinel, dtype)  # a row after the image: not written
        back = room[:h]
        planes = np.full_like(want, 999.0)  # where the planes hold no pixel: other values
        planes[:, at] = want[:, at]
        numba_cpu._to_image(back, planes, base, wp, relu)
        src = want[:, at].transpose(1, 2, 0)
        with np.errstate(invalid="ignore"):
            expected = np.where(src <= 0, dtype(0), src) if relu else src
        np.testing.assert_array_equal(back.view(bits), expected.view(bits))
        assert (room[h] == sentinel).all(), "written past the image"
        # planes that end at the last pixel: a narrow last row is copied without its block
        short = np.full((c, base + (h - 1) * wp + w), sentinel, dtype)
        numba_cpu._from_image(short, base, wp, image, mask, relu)
        np.testing.assert_array_equal(short.view(bits), want[:, :short.shape[1]].view(bits))


def _windows_case(seed, filters, windows, c_in, pool, dtype):
    """Pooled windows for the listing tests: gradients and pooled outputs with special values
    (-0, NaN, inf), 0.3 of the gradients 0, random winners (one row of zeros for windows of one
    position), and the padded copies' geometry: ``(dout, y, arg, wpad, image, shift)``."""
    r = np.random.default_rng(seed)
    (n, po, qo), (ph, pw) = windows, pool
    dout = _special_values(r, (n, po, qo, filters), dtype)
    dout[r.random(dout.shape) < 0.3] = 0  # windows without a gradient
    y = _special_values(r, dout.shape, dtype)
    arg = (np.zeros((1, 1, 1, filters), np.int32) if pool == (1, 1)
           else r.integers(0, ph * pw, dout.shape).astype(np.int32))
    wpad = qo * pw + 2
    image = (po * ph + 2) * wpad * c_in
    shift = np.array([((k // pw) * wpad + k % pw) * c_in for k in range(ph * pw)], np.int64)
    return dout, y, arg, wpad, image, shift


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pool", [(2, 2), (1, 1)])
@pytest.mark.parametrize("filters", [8, 9, 17])
def test_winners_listed_from_planes_as_one_by_one(filters, pool, dtype):
    """numba_cpu._winners_by_planes (the windows' gradients and winners transposed to planes,
    then a flat loop a filter) lists the same winners as _winners_one_by_one, in the same order,
    bit for bit: each filter's patch offsets and non-zero gradients (ReLU's backward applied or
    not; -0 left out, NaN and inf kept), for groups of one and several images, windows of one
    position (arg not read) and of four."""
    pytest.importorskip("numba")
    from tinynet.kernels import numba_cpu
    n, po, qo, c_in = 4, 3, 10, 2
    ph, pw = pool
    dout, y, arg, wpad, image, shift = _windows_case(filters, filters, (n, po, qo), c_in, pool,
                                                     dtype)
    bits = np.uint32 if dtype == np.float32 else np.uint64
    for relu in (False, True):
        for n0, nb in ((1, 1), (0, n)):
            lists = []
            for listing in (numba_cpu._winners_by_planes, numba_cpu._winners_one_by_one):
                offs = np.full((filters, nb * po * qo), -7, np.int64)
                dvals = np.full((filters, nb * po * qo), 99, dtype)
                counts = np.zeros(filters, np.int64)
                listing(dout, y, arg, relu, n0, nb, image, ph, pw, wpad, c_in, shift, offs,
                        dvals, counts)
                lists.append([(offs[f, :k].copy(), dvals[f, :k].view(bits).copy())
                              for f, k in enumerate(counts)])
            planes, one_by_one = lists
            assert sum(len(o) for o, _ in one_by_one) > 0
            for (o1, d1), (o2, d2) in zip(planes, one_by_one):
                np.testing.assert_array_equal(o1, o2)
                np.testing.assert_array_equal(d1, d2)


def test_unpooled_backward_from_mostly_zero_gradients_skips_them_without_dx_too():
    """The unpooled backward from its non-zero gradients (each position a window of one, chosen
    where most gradients are 0) skips the zeros also without dL/dx, where the pooled backward
    of rows of 8 windows takes every winner: an infinite pixel that only zero gradients reach
    leaves dL/dw finite, and the rest is the reference's."""
    pytest.importorskip("numba")
    from tinynet.kernels import numba_cpu as K
    r = np.random.default_rng(4)
    x = r.standard_normal((2, 12, 12, 3))
    kernel = r.standard_normal((5, 5, 3, 8))
    y, saved = K.conv2d_forward(x, kernel, None, (1, 1), (2, 2, 2, 2))
    dout = np.zeros(y.shape)
    dout[1, 3:5, 2:9] = r.standard_normal((2, 7, 8))  # image 1 alone, 112 of 2304
    assert K._winners_pay(dout, dout, False, kernel.shape, False)
    ref = numpy_ref.conv2d_backward(dout, saved, kernel, (1, 1), (2, 2, 2, 2), need_dx=False)
    x[0, 5, 5, 1] = np.inf
    _, dk, db = K.conv2d_backward(dout, (x, None), kernel, (1, 1), (2, 2, 2, 2), need_dx=False)
    assert np.isfinite(dk).all()
    assert_close(dk, ref[1], np.float64)
    assert_close(db, ref[2], np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pool", [(2, 2), (1, 1)])
def test_windows_listed_from_planes_take_every_winner_in_plane_order(pool, dtype):
    """numba_cpu._windows_by_planes (the pooled backward without dL/dx) lists every window of
    each filter, zero gradients included, image by image and row by row: its winner's patch
    (where the window starts, plus the winner's offset ``shift[arg]``) and its gradient through
    ReLU's backward (``dy * [y > 0]``) or not, bit for bit (-0, NaN and inf as they come)."""
    pytest.importorskip("numba")
    from tinynet.kernels import numba_cpu
    n, po, qo, c_in, filters = 4, 3, 10, 2, 9
    (ph, pw), one = pool, pool == (1, 1)
    dout, y, arg, wpad, image, shift = _windows_case(3, filters, (n, po, qo), c_in, pool, dtype)
    bits = np.uint32 if dtype == np.float32 else np.uint64
    b, i, j = np.meshgrid(np.arange(n), np.arange(po), np.arange(qo), indexing="ij")
    starts = b * image + (i * ph * wpad + j * pw) * c_in  # (n, po, qo): each window's patch
    for relu in (False, True):
        for n0, nb in ((1, 1), (0, n)):
            offs = np.full((filters, nb * po * qo), -7, np.int64)
            dvals = np.full((filters, nb * po * qo), 99, dtype)
            counts = np.zeros(filters, np.int64)
            numba_cpu._windows_by_planes(dout, y, arg, relu, n0, nb, image, ph, pw, wpad, c_in,
                                         shift, offs, dvals, counts)
            assert (counts == nb * po * qo).all()
            d = dout[n0:n0 + nb]
            with np.errstate(invalid="ignore"):  # relu_backward: dy * [y > 0] (-0, NaN for inf)
                want_d = d * (y[n0:n0 + nb] > 0).astype(dtype) if relu else d
            want_offs = starts[:nb, ..., None] + (np.zeros(filters, np.int64) if one
                                                  else shift[arg[n0:n0 + nb]])
            for f in range(filters):
                np.testing.assert_array_equal(offs[f], want_offs[..., f].ravel())
                np.testing.assert_array_equal(dvals[f].view(bits),
                                              np.ascontiguousarray(want_d[..., f]).ravel().view(bits))


NARROW_SCRIPT = """
import sys
import numpy as np
from tinynet.kernels import numba_cpu as K
r = np.random.default_rng(5)
out = {"lanes": np.array(K.WIDE_LANES)}
# the dense loops, where the builds of 8 and 16 lanes differ (_winners_pay's costs depend on the
# kind of machine: left to choose, the two builds could take different paths)
K._winners_pay = lambda *args: False
# the report's one- and nine-channel shapes: lengths that end on a vector of LANES and on whole
# wide vectors, the row passes' dL/dx of one channel (4 rows a pass with AVX-512, 2 without)
# and the blocked sums' dL/dx of nine
for i, (n, h, c, f, k) in enumerate([(3, 28, 1, 9, 5), (5, 14, 9, 9, 5), (4, 7, 9, 16, 3)]):
    x = r.standard_normal((n, h, h, c)).astype(np.float32)
    w = r.standard_normal((k, k, c, f)).astype(np.float32)
    b = r.standard_normal(f).astype(np.float32)
    p = (k - 1) // 2
    pads = (p, k - 1 - p, p, k - 1 - p)
    y, saved = K.conv2d_forward(x, w, b, (1, 1), pads, relu=True)
    d = r.standard_normal(y.shape).astype(np.float32)
    dx, dw, db = K.conv2d_backward(d, saved, w, (1, 1), pads, relu_output=y)
    out.update({f"y{i}": y, f"dx{i}": dx, f"dw{i}": dw, f"db{i}": db})
np.savez(sys.argv[1], **out)
"""


def test_the_kernels_give_the_same_numbers_with_vectors_of_8_as_of_16(tmp_path):
    """Where numba compiles for AVX-512 the float32 sums run in vectors of 16 (WIDE_LANES): the
    same kernels compiled without it (NUMBA_CPU_FEATURES, in a subprocess) run the vectors of 8
    that the other tests cannot reach on this machine. The forward and dL/dx sum each position
    over the taps in the same order at either width: bit for bit the same; dL/dw's dot
    products add their lanes up in another order: within float32's rounding."""
    pytest.importorskip("numba")
    import subprocess
    import sys
    from pathlib import Path
    from numba import config
    from numba.core.codegen import get_host_cpu_features
    from tinynet.kernels import numba_cpu
    if numba_cpu.WIDE_LANES == numba_cpu.LANES:
        pytest.skip("no AVX-512 here: the kernels run in vectors of LANES only, which the other "
                    "tests cover")
    # what numba compiles for (as numba_cpu._avx512 reads it), AVX-512 taken out
    target = config.CPU_FEATURES if config.CPU_FEATURES is not None else get_host_cpu_features()
    features = ",".join("-" + f[1:] if f[1:].startswith("avx512") else f
                        for f in target.split(","))
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, NUMBA_CPU_FEATURES=features,
               PYTHONPATH=str(repo) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", NARROW_SCRIPT, str(tmp_path / "narrow.npz")],
                          env=env, cwd=repo, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    narrow = dict(np.load(tmp_path / "narrow.npz"))
    assert int(narrow.pop("lanes")) == numba_cpu.LANES
    here = str(tmp_path / "wide.npz")
    done = subprocess.run([sys.executable, "-c", NARROW_SCRIPT, here], env=dict(
        env, NUMBA_CPU_FEATURES=target), cwd=repo, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    wide = dict(np.load(here))
    assert int(wide.pop("lanes")) == numba_cpu.WIDE_LANES
    for name in narrow:
        if name.startswith(("y", "dx")):
            np.testing.assert_array_equal(wide[name], narrow[name], err_msg=name)
        else:
            np.testing.assert_allclose(wide[name], narrow[name], rtol=1e-5,
                                       atol=1e-5 * float(np.abs(narrow[name]).max()),
                                       err_msg=name)


@functools.lru_cache(maxsize=None)
def _row_sums_caller(rows):
    """A compiled function that calls the intrinsic ``_pair_rows`` (``rows`` 2) or
    ``_four_rows`` (4) (an intrinsic runs only inside compiled code)."""
    from numba import njit
    from tinynet.kernels import numba_cpu
    row_sums = {2: numba_cpu._pair_rows, 4: numba_cpu._four_rows}[rows]

    @njit
    def call(acc, planes, cols, wcol, kh, p, wp):
        row_sums(acc, planes, cols, wcol, kh, p, wp)
    return call


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows, kh", [(2, 1), (2, 2), (2, 3), (2, 5), (2, 7),
                                      (4, 3), (4, 4), (4, 5), (4, 7)])
def test_row_sums_equal_their_formula(rows, kh, dtype):
    """The row sums of a one-channel dL/dx (hand-written vector code, passes of two and of four
    rows) against their formula ``acc[q] = sum_c sum_m wcol[c*kh + m] * planes[cols[c] + q +
    m*wp]`` for the vectors of positions from ``p + r*wp`` (``r < rows``), rows longer and
    shorter than a pass's vectors (then the rows overlap, with the same values); nothing else of
    ``acc`` is written. Passes of four rows give the same bits as passes of two."""
    pytest.importorskip("numba")
    from tinynet.kernels import numba_cpu
    call = _row_sums_caller(rows)
    r = np.random.default_rng(kh + 10 * rows)
    width = numba_cpu.LANES * max(1, numba_cpu.ROW_VECTORS * 4 // np.dtype(dtype).itemsize)
    for wp in (width + 9, width, width - 3, 5):
        ncols = int(r.integers(1, 12))
        planes = r.standard_normal(4000).astype(dtype)
        reach = (kh + rows - 1) * wp + width  # past a column's start (and p): more than a pass reads
        cols = r.integers(0, planes.size - 60 - reach, ncols).astype(np.int64)
        wcol = r.standard_normal(ncols * kh).astype(dtype)
        p = int(r.integers(0, 60))
        acc = np.full(p + (rows - 1) * wp + width + 20, np.nan, dtype)
        call(acc, planes, cols, wcol, kh, p, wp)
        q = (p + wp * np.arange(rows)[:, None] + np.arange(width)).ravel()
        taps = (cols[:, None] + np.arange(kh) * wp).ravel()                 # (ncols*kh,)
        shifted = planes[taps[:, None] + q].astype(np.float64)               # (taps, positions)
        want = wcol.astype(np.float64) @ shifted
        scale = float((np.abs(wcol.astype(np.float64)) @ np.abs(shifted)).max())
        assert_close(acc[q], want.astype(dtype), dtype, scale=scale)
        untouched = np.ones(acc.size, bool)
        untouched[q] = False
        assert np.isnan(acc[untouched]).all(), "written outside the pass's rows"
        if rows == 4:  # the same sums as two passes of two rows
            pairs = np.full_like(acc, np.nan)
            _row_sums_caller(2)(pairs, planes, cols, wcol, kh, p, wp)
            _row_sums_caller(2)(pairs, planes, cols, wcol, kh, p + 2 * wp, wp)
            assert pairs[q].tobytes() == acc[q].tobytes()


@functools.lru_cache(maxsize=None)
def _tap_dots_caller(nf):
    """A compiled function that calls the intrinsic ``_dots1``, ``_dots2`` or ``_dots3`` (an
    intrinsic runs only inside compiled code)."""
    from numba import njit
    from tinynet.kernels import numba_cpu
    dots = {1: numba_cpu._dots1, 2: numba_cpu._dots2, 3: numba_cpu._dots3}[nf]

    @njit
    def call(out, planes, taps, d, f0, dstride, dstart, length, runs, period):
        dots(out, planes, taps, d, f0, dstride, dstart, length, runs, period)
    return call


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ntaps", [1, 3, 4, 5, 6, 7, 8, 9, 13, 16, 17, 25])  # whole passes, and not
def test_tap_dots_equal_their_formula(ntaps, dtype):
    """The dL/dw sums of the numba convolutions' backward (hand-written vector code, one to three
    filters a pass, a few taps a pass and then one at a time) against their formula ``out[f, t]
    += sum_p planes[taps[t] + p] * d[f*dstride + dstart + p]`` over the positions ``p = r*period
    + q`` (``r < runs``, ``q < length``), for tap counts that are whole passes or leave taps
    over, in both float types, in one run and in runs with gaps between them (where ``d`` is NaN:
    read, it would show); the last column of ``out`` (dL/db) and the other filters' rows are left
    as they were."""
    pytest.importorskip("numba")
    from tinynet.kernels import numba_cpu
    r = np.random.default_rng(ntaps)
    lanes = numba_cpu.LANES
    for length, runs, period in ((lanes, 1, 0), (9 * lanes, 1, 0), (64 * lanes, 1, 0),
                                 (lanes, 3, 3 * lanes), (9 * lanes, 2, 11 * lanes + 3),
                                 (32 * lanes, 3, 34 * lanes)):
        positions = (np.arange(runs)[:, None] * period + np.arange(length)).ravel()
        reach = positions[-1] + 1
        planes = r.standard_normal(2 * reach + 30).astype(dtype)
        taps = r.integers(0, planes.size - reach + 1, ntaps).astype(np.int64)
        filters, dstart = 5, 7
        dstride = dstart + reach + 3
        d = np.full((filters, dstride), np.nan, dtype)
        d[:, dstart + positions] = r.standard_normal((filters, positions.size))
        d = d.reshape(-1)
        shifted = planes[taps[:, None] + positions].astype(np.float64)   # (ntaps, positions)
        rows = d.reshape(filters, dstride)[:, dstart + positions].astype(np.float64)
        for nf in (1, 2, 3):
            start = r.standard_normal((filters, ntaps + 1)).astype(dtype)
            out = start.copy()
            _tap_dots_caller(nf)(out, planes, taps, d, 2, dstride, dstart, length, runs,
                                 period)  # from filter 2
            want = start.astype(np.float64).copy()
            want[2:2 + nf, :ntaps] += rows[2:2 + nf] @ shifted.T
            scale = float((np.abs(rows[2:2 + nf]) @ np.abs(shifted.T)).max() + np.abs(start).max())
            assert_close(out, want.astype(dtype), dtype, scale=scale)
            kept = np.ones_like(out, dtype=bool)
            kept[2:2 + nf, :ntaps] = False
            np.testing.assert_array_equal(out[kept], start[kept])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tap_dots_in_runs_add_what_one_run_adds_over_zeros_bit_for_bit(dtype):
    """What lets the unpooled backward leave each image's padding rows out: runs of whole wide
    vectors, one every ``period`` (a whole number of wide vectors too), give the same sums, bit
    for bit, as one run over every position when the gradients between the runs are 0 (each
    lane adds the same products in the same order; the ones left out are x * 0)."""
    pytest.importorskip("numba")
    from tinynet.kernels import numba_cpu
    wide = numba_cpu.WIDE_LANES if dtype == np.float32 else numba_cpu.LANES
    r = np.random.default_rng(8)
    ntaps, filters, dstart = 25, 5, 7
    for runs, length, period in ((2, 14 * wide, 16 * wide), (5, 3 * wide, 4 * wide)):
        positions = (np.arange(runs)[:, None] * period + np.arange(length)).ravel()
        span = runs * period
        planes = r.standard_normal(span + 40).astype(dtype)
        taps = r.integers(0, 40, ntaps).astype(np.int64)
        d = np.zeros((filters, dstart + span + 3), dtype)
        d[:, dstart + positions] = r.standard_normal((filters, positions.size))
        d = d.reshape(-1)
        for nf in (1, 2, 3):
            start = r.standard_normal((filters, ntaps + 1)).astype(dtype)
            got, want = start.copy(), start.copy()
            _tap_dots_caller(nf)(got, planes, taps, d, 1, d.size // filters, dstart, length,
                                 runs, period)
            _tap_dots_caller(nf)(want, planes, taps, d, 1, d.size // filters, dstart, span, 1, 0)
            bits = f"u{dtype().itemsize}"
            np.testing.assert_array_equal(got.view(bits), want.view(bits))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_line_planes_are_zeros_whose_rows_each_start_on_a_cache_line(dtype):
    """The dense backward's planes of dz: numba aligns a new array to 32 bytes only (half of
    them started mid-line); each row here starts on a 64-byte line, its length rounded up to
    whole lines, whatever the size asked for."""
    pytest.importorskip("numba")
    from tinynet.kernels import numba_cpu
    like = np.zeros(1, dtype)
    per_line = 64 // like.itemsize
    for rows, length in [(1, 1), (3, 50), (9, 412), (2, per_line), (5, per_line + 1)] * 8:
        planes = numba_cpu._line_planes(rows, length, like)
        assert planes.dtype == dtype and planes.shape[0] == rows
        assert planes.shape[1] == -(-length // per_line) * per_line
        assert not planes.any() and planes.flags.c_contiguous
        assert all(planes[r].ctypes.data % 64 == 0 for r in range(rows))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(5, 14, 14, 9, 9, 5), (3, 28, 28, 1, 9, 5), (4, 7, 7, 9, 18, 3)])
def test_dense_backward_gives_dw_and_db_the_same_bits_with_or_without_dx(shape, dtype):
    """The dense loops of the unpooled stride-1 backward sum dL/dw and dL/db over the same
    positions, in the same order, whether or not they also compute dL/dx (whose planes of dz
    are longer for a one-channel input). Every gradient is non-zero here (no ReLU): with one,
    whether the winners' path pays differs with and without dL/dx (_winners_pay), and the two
    paths add in different orders."""
    pytest.importorskip("numba")
    from tinynet.kernels import numba_cpu as K
    n, h, w, c, f, k = shape
    r = np.random.default_rng(k * c)
    x = r.standard_normal((n, h, w, c)).astype(dtype)
    kernel = (r.standard_normal((k, k, c, f)) * 0.2).astype(dtype)
    pads = ((k - 1) // 2,) * 4
    y, saved = K.conv2d_forward(x, kernel, np.zeros(f, dtype), (1, 1), pads)
    dy = r.standard_normal(y.shape).astype(dtype)
    with_dx = K.conv2d_backward(dy, saved, kernel, (1, 1), pads, need_dx=True)
    without = K.conv2d_backward(dy, saved, kernel, (1, 1), pads, need_dx=False)
    bits = f"u{x.itemsize}"
    for a, b in zip(with_dx[1:], without[1:]):
        np.testing.assert_array_equal(a.view(bits), b.view(bits))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [1, 7, 8, 9, 31, 64, 1000])  # shorter than a vector, tails
def test_all_finite_finds_each_nan_and_infinity_wherever_it_lies(size, dtype):
    """The numba check (an integer pass over the bits) against the reference (NumPy's isfinite):
    every kind of NaN and infinity at the first, a middle and the last position; the largest
    finite numbers, subnormals and -0 are finite."""
    pytest.importorskip("numba")
    from tinynet.kernels import numba_cpu
    info = np.finfo(dtype)
    finite = np.resize(np.array([info.max, -info.max, info.tiny / 4, -0.0, 1.0, info.tiny],
                                dtype=dtype), size)
    other = np.ones(3, dtype)
    assert numba_cpu.all_finite([other, finite]) and numpy_ref.all_finite([other, finite])
    for bad in _not_finite_values(dtype):
        for at in {0, size // 2, size - 1}:
            a = finite.copy()
            a[at] = bad
            assert not numpy_ref.all_finite([other, a])
            assert not numba_cpu.all_finite([other, a]), (bad, at)
            assert not numba_cpu.all_finite([a.reshape(1, -1)[:, ::-1], other])  # a view: reference


def test_all_finite_of_no_array_or_empty_ones_is_true():
    pytest.importorskip("numba")
    from tinynet.kernels import numba_cpu
    for check in (numba_cpu.all_finite, numpy_ref.all_finite):
        assert check([]) and check([np.zeros(0, np.float32), np.zeros((0, 3))])


@pytest.mark.parametrize("options", [{"momentum": 0.0, "centered": False}, {"momentum": 0.9, "centered": False},
                                     {"momentum": 0.0, "centered": True}, {"momentum": 0.5, "centered": True}])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_rmsprop_keeps_what_it_updates_as_it_was(options, dtype):
    """``keep``: the kernel writes each array as it was before the step into its buffer (for the
    training step's undo), in the same pass, and updates exactly as without it."""
    pytest.importorskip("numba")
    from tinynet.kernels import numba_cpu
    r = np.random.default_rng(5)
    size = 1001  # not a whole number of vectors
    theta, g, s, mean_grad, moment = (r.standard_normal(size).astype(dtype) for _ in range(5))
    s = np.abs(s) + 1
    mean_grad = mean_grad * 0.1 if options["centered"] else None
    moment = moment if options["momentum"] else None
    arrays = {"weights": theta, "s": s, "mean_grad": mean_grad, "moment": moment}
    arrays = {n: a for n, a in arrays.items() if a is not None}
    before = {n: a.copy() for n, a in arrays.items()}
    plain = {n: a.copy() for n, a in arrays.items()}
    hyper = (0.01, 0.9, 1e-7, options["momentum"], options["centered"])
    numba_cpu.rmsprop_update(plain["weights"], g, plain["s"], plain.get("mean_grad"),
                             plain.get("moment"), *hyper)
    for names in (list(arrays), ["weights"], ["s"]):  # all, or some (a slot the step creates)
        for n, a in arrays.items():
            a[...] = before[n]
        keep = {n: np.full(size, np.nan, dtype) for n in names}
        numba_cpu.rmsprop_update(theta, g, s, mean_grad, moment, *hyper, keep)
        for n in names:
            np.testing.assert_array_equal(keep[n], before[n])
        for n, a in arrays.items():
            np.testing.assert_array_equal(a, plain[n])
    if mean_grad is None:
        with pytest.raises(ValueError, match=r"cannot keep \['mean_grad'\]"):
            numba_cpu.rmsprop_update(theta, g, s, None, moment, *hyper,
                                     {"mean_grad": np.zeros(size, dtype)})


@pytest.mark.parametrize("keep", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_rmsprop_says_whether_what_it_wrote_is_finite(keep, dtype):
    """Plain RMSprop's pass answers the training step's check: True while every updated weight
    and s is finite; False for each NaN and infinity, coming in through a weight, s or a
    gradient, or made by the update (a gradient whose square overflows makes s infinite), at the
    first, a middle and the last place; None (not looked at) for the centered or momentum forms."""
    pytest.importorskip("numba")
    from tinynet.kernels import numba_cpu
    r = np.random.default_rng(2)
    size = 1001
    start = [r.standard_normal(size).astype(dtype), r.standard_normal(size).astype(dtype),
             (np.abs(r.standard_normal(size)) + 1).astype(dtype)]  # theta, g, s

    def update(theta, g, s, **options):
        buffers = {"weights": np.empty_like(theta), "s": np.empty_like(s)} if keep else None
        hyper = (0.01, 0.9, 1e-7, options.get("momentum", 0.0), options.get("centered", False))
        extra = (theta.copy(), None) if options.get("centered") else (None, None)
        return numba_cpu.rmsprop_update(theta, g, s, *extra, *hyper, buffers)

    assert update(*(a.copy() for a in start)) is True
    big = np.sqrt(np.finfo(dtype).max) * 4  # finite, but its square is not
    for which, bad in [(0, np.nan), (0, np.inf), (1, np.nan), (1, -np.inf), (1, big),
                       (2, np.nan), (2, np.inf)]:
        for at in (0, size // 2, size - 1):
            arrays = [a.copy() for a in start]
            arrays[which][at] = bad
            with np.errstate(all="ignore"):
                assert update(*arrays) is False, (which, bad, at)
    assert update(*(a.copy() for a in start), centered=True) is None
    assert update(*(a.copy() for a in start), momentum=0.9) is None


@contextlib.contextmanager
def _numba_threads(count):
    """numba's kernels on ``count`` threads inside the block, its count before after it."""
    import numba
    before = numba.get_num_threads()
    numba.set_num_threads(count)
    try:
        yield
    finally:
        numba.set_num_threads(before)


@pytest.mark.parametrize("n", [3, 20, 50])  # batches the thread count cut otherwise
@pytest.mark.parametrize("case", ["l3"])  # several images a group (l1's and l2's hold one)
@pytest.mark.parametrize("pooled", [True, False])
def test_numba_convolution_gradients_do_not_depend_on_the_thread_count(n, case, pooled):
    """The images were cut into groups by the thread count, and the groups' partial sums of
    dL/dw added in that order: float64 weights trained with one seed differed on 1 and 2 threads
    (a review: 2,155 of cnn_digits' 7,465 weights after a few batches of 20 images)."""
    numba = pytest.importorskip("numba")
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba runs one thread here (NUMBA_NUM_THREADS=1)")
    from tinynet.kernels import numba_cpu
    rng = np.random.default_rng(0)
    size, c, f, k = {"l1": (28, 1, 9, 5), "l3": (7, 9, 16, 3)}[case]
    x = rng.standard_normal((n, size, size, c))
    kernel = rng.standard_normal((k, k, c, f))
    pads = ((k - 1) // 2,) * 4
    if pooled:
        out, saved = numba_cpu.conv2d_maxpool_forward(x, kernel, np.zeros(f), (1, 1), pads,
                                                      (2, 2), relu=True)
    else:  # unpooled: the dense loops, or the winners' where most gradients are 0
        out, saved = numba_cpu.conv2d_forward(x, kernel, np.zeros(f), (1, 1), pads, relu=True)
    dout = rng.standard_normal(out.shape)
    results = []
    for count in (1, 2):
        with _numba_threads(count):
            if pooled:
                results.append(numba_cpu.conv2d_maxpool_backward(dout, saved, kernel, (1, 1),
                                                                 pads, (2, 2), relu=True))
            else:
                results.append(numba_cpu.conv2d_backward(dout, saved, kernel, (1, 1), pads,
                                                         relu_output=out))
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("c", [1, 2])  # dL/dx by rows (one channel), by the mirrored taps
def test_numba_dense_conv_backward_on_one_thread_matches_the_reference_with_a_smaller_last_group(c):
    """The dense backward's groups on one thread, one after the other, the last one smaller
    than the others (13x13 images: 196 grid positions an image, not a whole number of vectors,
    so the sums round a group's positions up into what lies past its last image)."""
    pytest.importorskip("numba")
    from tinynet.kernels import numba_cpu
    rng = np.random.default_rng(1)
    n, size, f, k = 5, 13, 4, 3
    pads = (1, 1, 1, 1)
    hp, wp = numba_cpu._grid(size, size, k, k, pads)
    group = numba_cpu._group_size(n, hp * wp)
    assert 1 < group and n % group and (hp * wp) % numba_cpu.LANES  # what the test is about
    x = rng.standard_normal((n, size, size, c))
    kernel = rng.standard_normal((k, k, c, f))
    y = rng.standard_normal((n, size, size, f)) + 1  # ReLU on at most positions: the dense loops
    dout = rng.standard_normal((n, size, size, f))
    assert not numba_cpu._winners_pay(dout, y, True, kernel.shape, True)
    with _numba_threads(1):  # one thread: every group after the one before it, in turn
        got = numba_cpu.conv2d_backward(dout, (x, None), kernel, (1, 1), pads, relu_output=y)
    want = numpy_ref.conv2d_backward(dout, (x, None), kernel, (1, 1), pads, relu_output=y)
    for name, a, b in zip(("dx", "dkernel", "dbias"), got, want):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10, err_msg=name)


def test_a_subclass_s_own_rmsprop_update_is_not_replaced_by_the_fused_kernel():
    """An RMSprop subclass that writes its own ``update`` runs it on the numba backend too (the
    fused kernel computes the reference's lines, not the subclass's)."""
    pytest.importorskip("numba")
    from tinynet import optimizers

    class Halved(optimizers.RMSprop):
        def update(self, theta, g, state):
            super().update(theta, g * theta.dtype.type(0.5), state)

    backend.set_backend("numba")
    theta = np.ones(5, np.float32)
    Halved(learning_rate=0.1).apply_gradients([(np.ones(5, np.float32), theta)])
    reference = np.ones(5, np.float32)
    backend.set_backend("numpy")
    optimizers.RMSprop(learning_rate=0.1).apply_gradients([(np.full(5, 0.5, np.float32),
                                                            reference)])
    backend.set_backend("numba")
    np.testing.assert_array_equal(theta, reference)


def test_an_rmsprop_update_set_on_the_class_or_the_object_is_run_on_numba_too(monkeypatch):
    """The fused kernel computes RMSprop's own lines: an ``update`` set on the class or on one
    optimizer runs instead, as on the NumPy backend (a review: numba ran the kernel anyway)."""
    pytest.importorskip("numba")
    from tinynet import optimizers
    results = {}
    for name in ("numpy", "numba"):
        backend.set_backend(name)
        theta = np.ones(4, np.float32)
        optimizer = optimizers.RMSprop(0.1)
        optimizer.update = lambda t, g, s: None  # an object's own: nothing moves
        optimizer.apply_gradients([(np.ones(4, np.float32), theta)])
        results[name, "object"] = theta.copy()
        original = optimizers.RMSprop.update

        def halved(self, t, g, s):
            original(self, t, g, s)
            t *= t.dtype.type(0.5)
        monkeypatch.setattr(optimizers.RMSprop, "update", halved)
        theta = np.ones(4, np.float32)
        optimizers.RMSprop(0.1).apply_gradients([(np.ones(4, np.float32), theta)])
        results[name, "class"] = theta.copy()
        monkeypatch.undo()
    backend.set_backend("numba")
    np.testing.assert_array_equal(results["numba", "object"], np.ones(4))
    np.testing.assert_array_equal(results["numba", "class"], results["numpy", "class"])
    assert results["numpy", "class"][0] < 0.5


def _readable(fn, *args):
    """``fn``'s own NumPy lines: run on the numpy backend, which has no compiled version."""
    backend.set_backend("numpy")
    assert backend.fused("softmax_cross_entropy", np.zeros(1)) is None
    return fn(*args)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, k", [(1, 1), (1, 2), (7, 3), (128, 10), (33, 100), (300, 100)])
def test_fused_softmax_cross_entropy_gives_the_readable_lines_numbers(fast, n, k, dtype):
    """The numba kernel (a loop per row) and the CUDA one (a thread per row) against
    losses.softmax_cross_entropy's lines, on logits small and large (up to 300: the shift by each
    row's maximum keeps exp from overflowing), for one-hot, soft (rows summing to 1) and
    unnormalised targets (the gradient's factor sum_k y_k)."""
    from tinynet import losses
    K, dev, host = fast
    r = np.random.default_rng(n * k)
    z = (r.normal(size=(n, k)) * r.choice([1.0, 30.0, 300.0], size=(n, 1))).astype(dtype)
    targets = {"one-hot": np.eye(k, dtype=dtype)[r.integers(0, k, n)],
               "soft": r.dirichlet(np.ones(k), n).astype(dtype),
               "unnormalised": (2 * r.random((n, k))).astype(dtype)}
    tol = TOL[dtype]
    for name, y in targets.items():
        ref_loss, ref_grad = _readable(losses.softmax_cross_entropy, y, z)
        loss, grad = (host(a) for a in K.softmax_cross_entropy(dev(y), dev(z)))
        assert loss.dtype == grad.dtype == dtype and loss.shape == (n,) and grad.shape == (n, k)
        np.testing.assert_allclose(loss, ref_loss, rtol=tol, atol=tol * np.abs(ref_loss).max(),
                                   err_msg=name)
        np.testing.assert_allclose(grad, ref_grad, rtol=tol, atol=tol * np.abs(ref_grad).max(),
                                   err_msg=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_softmax_cross_entropy_is_nan_where_the_reference_is(fast, dtype):
    """A NaN or an infinite logit makes its row's loss NaN in both (inf - inf; 0 * -inf for a
    class with no target weight); the other rows keep their numbers."""
    from tinynet import losses
    K, dev, host = fast
    z = np.tile(np.array([1.0, -2.0, 0.5, 3.0], dtype), (8, 1))
    y = np.eye(4, dtype=dtype)[[0, 1, 2, 3, 0, 1, 2, 0]]
    z[0, 0], z[2, 3], z[3, 1], z[5, 2] = np.nan, np.inf, -np.inf, np.nan
    big = np.finfo(dtype).max / 1.5
    z[7] = [big, -big, 0, 0]  # finite, but shifted by the maximum in z's type: -inf, then NaN
    with np.errstate(invalid="ignore"):  # inf - inf and 0 * -inf: NaN, as the test wants
        ref_loss, ref_grad = _readable(losses.softmax_cross_entropy, y, z)
    loss, grad = (host(a) for a in K.softmax_cross_entropy(dev(y), dev(z)))
    np.testing.assert_array_equal(np.isnan(loss), np.isnan(ref_loss))
    np.testing.assert_array_equal(np.isnan(grad), np.isnan(ref_grad))
    assert np.isnan(loss).tolist() == [True, False, True, True, False, True, False, True]
    np.testing.assert_allclose(loss[[1, 4, 6]], ref_loss[[1, 4, 6]], rtol=TOL[dtype])


def test_training_on_numba_runs_the_fused_loss_and_accuracy(monkeypatch):
    """A step on the numba backend goes through the two kernels (were their names lost from
    ``backend.FUSED``, the readable lines would run and every comparison above still pass)."""
    pytest.importorskip("numba")
    from tinynet import layers, optimizers
    from tinynet.kernels import numba_cpu
    from tinynet.model import Sequential
    calls = []
    for name in ("softmax_cross_entropy", "argmax_hits"):
        real = getattr(numba_cpu, name)
        monkeypatch.setattr(numba_cpu, name,
                            lambda *a, _real=real, _name=name: calls.append(_name) or _real(*a))
    backend._registry.pop("numba", None)  # rebuilt around the spies
    try:
        backend.set_backend("numba")
        model = Sequential([layers.Input((4,)), layers.Dense(3, activation="softmax")])
        model.compile(optimizers.RMSprop(), "categorical_crossentropy", ["accuracy"])
        r = np.random.default_rng(0)
        model.train_on_batch(r.random((8, 4), dtype=np.float32),
                             np.eye(3, dtype=np.float32)[r.integers(0, 3, 8)])
    finally:
        backend._registry.pop("numba", None)
    assert calls == ["softmax_cross_entropy", "argmax_hits"]


def test_dense_products_leave_blas_its_threads_on_numba(monkeypatch):
    """Dense's product goes through the backend's ``matmul`` (NumPy's on the CPU), which must not
    run numba's thread policy: that puts OpenBLAS on one thread for numba's own kernels, and an
    MLP, all BLAS, then ran 20% slower and rounded differently (seen when ``matmul`` came in)."""
    pytest.importorskip("numba")
    from tinynet import layers, optimizers, threads
    from tinynet.model import Sequential
    calls = []
    monkeypatch.setattr(threads, "share_cores", lambda: calls.append("policy"))
    backend._registry.pop("numba", None)  # rebuilt around the spy
    try:
        backend.set_backend("numba")
        r = np.random.default_rng(0)
        mlp = Sequential([layers.Input((4,)), layers.Dense(3, activation="softmax")])
        mlp.compile(optimizers.RMSprop(), "categorical_crossentropy")
        mlp.train_on_batch(r.random((8, 4), dtype=np.float32),
                           np.eye(3, dtype=np.float32)[r.integers(0, 3, 8)])
        assert calls == []
        cnn = Sequential([layers.Input((6, 6, 1)), layers.Conv2D(2, 3), layers.Flatten(),
                          layers.Dense(3, activation="softmax")])
        cnn.compile(optimizers.RMSprop(), "categorical_crossentropy")
        cnn.train_on_batch(r.random((8, 6, 6, 1), dtype=np.float32),
                           np.eye(3, dtype=np.float32)[r.integers(0, 3, 8)])
        assert calls  # (numba's convolution runs the policy)
    finally:
        backend._registry.pop("numba", None)


def test_fused_softmax_cross_entropy_leaves_other_arrays_to_the_readable_lines():
    """Logits (N, H, W, K) or targets of another type are not the kernel's: it says so (None),
    and the loss on the numba backend then gives the readable lines' numbers."""
    pytest.importorskip("numba")
    from tinynet import losses
    from tinynet.kernels import numba_cpu
    r = np.random.default_rng(3)
    z4 = r.normal(size=(2, 3, 3, 5))
    y4 = np.eye(5)[r.integers(0, 5, (2, 3, 3))]
    assert numba_cpu.softmax_cross_entropy(y4, z4) is None
    assert numba_cpu.softmax_cross_entropy(y4[:, 0, 0].astype(np.float32), z4[:, 0, 0]) is None
    ref = _readable(losses.softmax_cross_entropy, y4, z4)
    backend.set_backend("numba")
    got = losses.softmax_cross_entropy(y4, z4)
    for a, b in zip(got, ref):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_argmax_hits_counts_numpy_s_arg_max(fast, dtype):
    """The numba and CUDA accuracies against metrics.hits's lines: a tie goes to the first
    maximum, a NaN is the maximum (the first one), as NumPy's argmax decides; targets may be
    soft."""
    from tinynet import metrics
    K, dev, host = fast

    def argmax_hits(y, out):
        right = K.argmax_hits(dev(y), dev(out))
        return None if right is None else host(right)
    nan, inf = np.nan, np.inf
    out = np.array([[0.1, 0.7, 0.2], [0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [nan, 0.9, 0.1],
                    [0.9, nan, nan], [0.2, 0.3, nan], [-inf, -inf, -inf], [1.0, inf, 2.0],
                    [0.3, 0.3, 0.3]], dtype)
    y = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0],
                  [0, 0.6, 0.4], [0, 0, 1]], dtype)
    ref = _readable(metrics.hits, y, out, True)
    got = argmax_hits(y, out)
    np.testing.assert_array_equal(got, ref)
    assert got.tolist() == [1, 1, 0, 1, 1, 1, 1, 1, 0] and got.dtype == np.float64
    r = np.random.default_rng(0)
    out = r.integers(0, 4, (500, 6)).astype(dtype)  # many ties
    y = np.eye(6, dtype=dtype)[r.integers(0, 6, 500)]
    np.testing.assert_array_equal(argmax_hits(y, out), _readable(metrics.hits, y, out))
    assert argmax_hits(np.arange(9.0), out[:9]) is None  # class numbers: the lines


@pytest.mark.parametrize("kind", ["forward", "add_pool", "pool", "pool_no_dx"])
def test_numba_convolutions_on_one_thread_match_the_reference_with_a_smaller_last_group(kind):
    """The forward (a residual block's too) and the pooled backward, their groups on one thread
    one after the other: a batch of 10 images ends in a group of one after groups of three.
    16x16 images give the pooled backward 8 windows a row, where it lists the winners from
    planes."""
    pytest.importorskip("numba")
    from tinynet.kernels import numba_cpu
    rng = np.random.default_rng(2)
    n, c, f, k = 10, 2, 9, 3
    size = 12 if kind in ("forward", "add_pool") else 16
    pads, pool = (1, 1, 1, 1), (2, 2)
    hp, wp = numba_cpu._grid(size, size, k, k, pads)
    group = (numba_cpu._group_size(n, hp * wp) if kind in ("forward", "add_pool")
             else numba_cpu._winners_group_size(n, (size + 2) ** 2 * c))
    assert group > 1 and n % group == 1  # what the test is about
    x = rng.standard_normal((n, size, size, c))
    kernel = rng.standard_normal((k, k, c, f))
    bias = rng.standard_normal(f)
    residual = rng.standard_normal((n, size, size, f))
    results = []
    with _numba_threads(1):
        for module in (numba_cpu, numpy_ref):
            if kind == "forward":
                results.append(module.conv2d_forward(x, kernel, bias, (1, 1), pads, relu=True)[:1])
            elif kind == "add_pool":
                results.append(module.conv2d_add_maxpool_forward(x, kernel, bias, (1, 1), pads,
                                                                 pool, residual, relu=True)[:1])
            else:
                out, saved = module.conv2d_maxpool_forward(x, kernel, bias, (1, 1), pads, pool,
                                                           relu=True)
                dout = np.random.default_rng(3).standard_normal(out.shape)
                got = module.conv2d_maxpool_backward(dout, saved, kernel, (1, 1), pads, pool,
                                                     relu=True, need_dx=kind == "pool")
                results.append([a for a in got if a is not None])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def test_numba_kernels_can_be_cached_on_disk():
    """Every compiled kernel is stored in numba's on-disk cache, so that a later process loads it
    instead of compiling it again (a first training step waits 30 s or more for the
    compilation). numba refuses to cache a function whose code holds a pointer of this process
    ("dynamic globals"): a version of the backward that read numba's thread count inside (not
    kept) was compiled again by every process. The kernels used below, and any other compiled
    in this process, are checked."""
    pytest.importorskip("numba")
    from numba.core.registry import CPUDispatcher

    from tinynet.kernels import numba_cpu
    rng = np.random.default_rng(0)
    for c, pool in ((1, False), (3, False), (3, True)):
        x = rng.standard_normal((4, 10, 10, c)).astype(np.float32)
        kernel = rng.standard_normal((3, 3, c, 8)).astype(np.float32)
        bias, pads = np.zeros(8, np.float32), (1, 1, 1, 1)
        if pool:
            out, saved = numba_cpu.conv2d_maxpool_forward(x, kernel, bias, (1, 1), pads, (2, 2),
                                                          relu=True)
            numba_cpu.conv2d_maxpool_backward(np.ones_like(out), saved, kernel, (1, 1), pads,
                                              (2, 2), relu=True)
        else:
            out, saved = numba_cpu.conv2d_forward(x, kernel, bias, (1, 1), pads, relu=True)
            numba_cpu.conv2d_backward(np.ones_like(out), saved, kernel, (1, 1), pads,
                                      relu_output=out)
    compiled = {name: fn for name, fn in vars(numba_cpu).items()
                if isinstance(fn, CPUDispatcher) and fn.overloads}
    assert {"_conv_forward_s1", "_conv_backward_s1", "_conv_pool_backward_s1"} <= set(compiled)
    uncachable = sorted(name for name, fn in compiled.items()
                        if any(cres.library.has_dynamic_globals for cres in fn.overloads.values()))
    assert uncachable == []


def test_no_parallel_kernel_leaves_its_prange_loop_but_at_its_end():
    """numba runs a ``prange`` loop serially, with a warning at compilation only, when its body
    can leave it other than at its end (a ``raise``, an ``assert``, a ``return`` or a ``break``
    in the loop itself): a check raising inside the loop of a version of the backward (not
    kept) ran it on one thread of two. Read from the source: every ``prange`` loop of the numba
    backend."""
    import ast
    import inspect

    from tinynet.kernels import numba_cpu

    def exits(statements, in_loop):
        """The statements among ``statements`` (and those nested in them) that leave the loop
        (a ``break`` of an inner loop leaves only that loop)."""
        for node in statements:
            if isinstance(node, (ast.Raise, ast.Assert, ast.Return)) \
                    or (isinstance(node, ast.Break) and not in_loop):
                yield f"line {node.lineno}: {type(node).__name__}"
            inner = in_loop or isinstance(node, (ast.For, ast.While))
            for field in ("body", "orelse", "handlers", "finalbody"):
                yield from exits(getattr(node, field, []), inner)

    tree = ast.parse(inspect.getsource(numba_cpu))
    loops = [node for node in ast.walk(tree)
             if isinstance(node, ast.For) and isinstance(node.iter, ast.Call)
             and getattr(node.iter.func, "id", None) == "prange"]
    assert len(loops) >= 5  # the convolutions', pooling's, im2col's, ...
    assert [e for loop in loops for e in exits(loop.body, False)] == []
