"""The CuPy backend's own CUDA kernels, run on the CPU (tests/cuda_on_cpu.py), against the NumPy
reference: the direct convolution, the matrix product, im2col and col2im, the pooling, the loss
and accuracy rows.

The same checks as tests/test_kernels.py and tests/test_cupy.py make on a GPU, for a CI without
one: the kernels' indices, bounds and sums, and where NaN and infinities land. Skipped, with the
reason, where the CUDA source cannot run on the CPU (no g++; see cuda_on_cpu.unavailable).
"""
import inspect

import numpy as np
import pytest

import cuda_on_cpu
import test_kernels
from test_cupy import MATMUL_SHAPES
from test_kernels import check_conv_against_reference
from tinynet.kernels import numpy_ref

# Every test of test_kernels.py that takes its ``fast`` kernels, collected here again: the
# fixture is this module's (the CUDA kernels on the CPU) instead of numba's and CuPy's
COLLECTED_AGAIN = [name for name, test in vars(test_kernels).items()
                   if name.startswith("test_") and callable(test)
                   and "fast" in inspect.signature(test).parameters]
globals().update({name: getattr(test_kernels, name) for name in COLLECTED_AGAIN})

UNAVAILABLE = cuda_on_cpu.unavailable()
pytestmark = pytest.mark.skipif(UNAVAILABLE is not None, reason=str(UNAVAILABLE))


def same(a):
    return a


@pytest.fixture(scope="module")
def fast():
    """test_kernels' triple for the CUDA kernels run on the CPU: ``(cupy_gpu loaded with NumPy
    for CuPy, to the device, to the host)``."""
    return cuda_on_cpu.load_cupy_gpu(), same, same


def test_the_direct_convolution_saves_no_im2col_matrix(fast):
    """The direct kernels ran (test_kernels' checks would pass on the im2col fallback too)."""
    K = fast[0]
    r = np.random.default_rng(1)
    for dtype in (np.float32, np.float64):
        x, kernel = r.standard_normal((2, 6, 5, 3)).astype(dtype), r.standard_normal((3, 3, 3, 4))
        _, saved = K.conv2d_forward(x, kernel.astype(dtype), None, (1, 1), (1, 1, 1, 1))
        assert saved[1] is None


def test_the_direct_convolution_sums_more_rows_than_a_block_takes(fast):
    """dL/dW's long sum (a batch of 128 digits: 100,352 rows, in 262 blocks' parts, then their
    sum) and a bias: the digits CNN's first layer, float64 against the reference."""
    K = fast[0]
    r = np.random.default_rng(7)
    x, kernel = r.standard_normal((128, 28, 28, 1)), r.standard_normal((5, 5, 1, 9))
    bias = r.standard_normal(9)
    ref, saved = numpy_ref.conv2d_forward(x, kernel, bias, (1, 1), (2, 2, 2, 2), relu=True)
    got, got_saved = K.conv2d_forward(x, kernel, bias, (1, 1), (2, 2, 2, 2), relu=True)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    dout = r.standard_normal(ref.shape)
    refs = numpy_ref.conv2d_backward(dout, saved, kernel, (1, 1), (2, 2, 2, 2), relu_output=ref,
                                     need_dx=False)
    gots = K.conv2d_backward(dout, got_saved, kernel, (1, 1), (2, 2, 2, 2), relu_output=got,
                             need_dx=False)
    assert K._dw_rows(128 * 28 * 28, 9, 8) == (384, 384)  # (262 blocks, the last one partial)
    for g, rf in zip(gots[1:], refs[1:]):
        np.testing.assert_allclose(g, rf, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_block_with_more_rows_than_its_shared_memory_holds_takes_them_in_turns(fast, dtype):
    """300 filters: 13 rows of dz fill the 32 KB of shared memory in float64 (27 in float32), so
    each block of 32 rows sums its rows in three (two) turns; dL/dW, dL/db and dL/dx against the
    reference, the ReLU's mask and a bias included."""
    K = fast[0]
    r = np.random.default_rng(8)
    x = r.standard_normal((2, 9, 9, 3)).astype(dtype)
    kernel = r.standard_normal((3, 3, 3, 300)).astype(dtype)
    bias = r.standard_normal(300).astype(dtype)
    per_block, at_a_time = K._dw_rows(2 * 9 * 9, 300, np.dtype(dtype).itemsize)
    assert per_block == 32 and at_a_time == (13 if dtype == np.float64 else 27)
    check_conv_against_reference(fast, x, kernel, bias, (1, 1), (1, 1, 1, 1), True, r)


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-13)])
@pytest.mark.parametrize("shape", [s for s in MATMUL_SHAPES if s[0] * s[1] < 10 ** 6]
                         + [(128, 144, 25, False, False), (144, 128, 25, True, False),
                            (128, 25, 144, False, True), (25, 25088, 9, True, False)])
def test_the_matrix_product_equals_numpy_s(fast, shape, dtype, tol):
    """The tiled product with any strides (transposed views, not copied) and K split into parts
    (the MLP's and the Dense layers' products, a convolution's dL/dW), against NumPy's."""
    K = fast[0]
    m, k, n, a_t, b_t = shape
    r = np.random.default_rng(m * 7 + k * 3 + n)
    a = r.standard_normal((k, m) if a_t else (m, k)).astype(dtype)
    b = r.standard_normal((n, k) if b_t else (k, n)).astype(dtype)
    a, b = (a.T if a_t else a), (b.T if b_t else b)
    got = K.matmul(a, b)
    assert got.shape == (m, n) and got.dtype == dtype
    scale = float((np.abs(a) @ np.abs(b)).max())  # a sum's rounding: relative to its terms
    assert np.abs(got - a.astype(np.float64) @ b).max() <= tol * scale


def test_the_cuda_source_compiles_with_nvidia_s_compiler(fast):
    """The same source through NVRTC, the compiler CuPy calls on a GPU (its dialect: what g++
    accepts and NVRTC refuses fails here), for the H100/H200's architecture: the raw kernels as
    they are, and each elementwise kernel's operation inside the emulation's loop (CuPy wraps it
    in its own, with its headers); skipped where NVRTC is not installed (``pip install -e
    ".[cuda-check]"``, as CI does)."""
    library = cuda_on_cpu.nvrtc()
    if library is None:
        pytest.skip("NVRTC is not installed (pip install -e \".[cuda-check]\")")
    K = fast[0]
    for dtype in (np.float32, np.float64):  # each elementwise kernel run once: its source made
        x = np.random.default_rng(0).standard_normal((2, 6, 6, 3)).astype(dtype)
        K.col2im(K.im2col(x, 3, 3, 1, 1, (1, 1, 1, 1)), x.shape, 3, 3, 1, 1, (1, 1, 1, 1))
        out, arg = K.maxpool_forward(x, 2, 2, 2, 2, (0, 0, 0, 0))
        K.maxpool_backward(out, arg, x.shape, 2, 2, 2, 2, (0, 0, 0, 0))
    for kernels in (K._pool_forward, K._pool_backward):  # the 64-bit versions too (only arrays
        for version in kernels.values():                # of 2**31 elements run them)
            version._library("float")
    raw = [c for c in cuda_on_cpu.SOURCES if not c.lstrip().startswith('extern "C"')]
    elementwise = [c for c in cuda_on_cpu.SOURCES if "using T = " in c]
    assert len(raw) >= 3 and len(elementwise) >= 10  # (product, rows, convolution; 6 kernels)
    for code in raw + elementwise:
        assert cuda_on_cpu.nvrtc_log(library, code) is None, cuda_on_cpu.nvrtc_log(library, code)
