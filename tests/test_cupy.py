"""The CuPy backend: its CUDA kernels against the NumPy reference, gradients and training on the GPU.

Skipped, with the reason, where CuPy is not installed or no CUDA GPU is usable (CI has none).
"""
import numpy as np
import pytest

from tinynet import backend, gradcheck, report_models, utils
from tinynet.kernels import numpy_ref

try:
    backend._load("cupy")
    import cupy as cp
    from tinynet.kernels import cupy_gpu
    REASON = None
except backend.BackendError as e:  # not installed, or no GPU
    REASON = str(e)
except Exception as e:  # CuPy imports but its CUDA toolchain fails
    REASON = f"CuPy is unusable here: {e}"

pytestmark = pytest.mark.skipif(REASON is not None, reason=f"no CuPy GPU backend: {REASON}")

CASES = [  # (N, H, W, C, kh, kw, sh, sw, pads)
    (2, 7, 7, 1, 3, 3, 1, 1, (1, 1, 1, 1)),
    (3, 9, 8, 4, 5, 5, 2, 2, (2, 2, 2, 1)),
    (1, 8, 9, 3, 7, 7, 1, 2, (0, 0, 0, 0)),
    (2, 28, 28, 9, 5, 5, 1, 1, (2, 2, 2, 2)),
    (2, 5, 6, 2, 2, 3, 1, 2, (0, 1, 1, 1)),
]


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-6), (np.float64, 1e-13)])
@pytest.mark.parametrize("case", CASES)
def test_im2col_and_col2im_equal_the_reference(case, dtype, tol):
    n, h, w, c, kh, kw, sh, sw, pads = case
    x = np.random.default_rng(0).standard_normal((n, h, w, c)).astype(dtype)
    ref = numpy_ref.im2col(x, kh, kw, sh, sw, pads)
    got = cupy_gpu.im2col(cp.asarray(x), kh, kw, sh, sw, pads)
    np.testing.assert_array_equal(cp.asnumpy(got), ref)
    cols = np.random.default_rng(1).standard_normal(ref.shape).astype(dtype)
    ref_dx = numpy_ref.col2im(cols, x.shape, kh, kw, sh, sw, pads)
    got_dx = cupy_gpu.col2im(cp.asarray(cols), x.shape, kh, kw, sh, sw, pads)
    np.testing.assert_allclose(cp.asnumpy(got_dx), ref_dx, rtol=tol, atol=tol)


@pytest.mark.parametrize("case", CASES)
def test_maxpool_equals_the_reference_with_ties(case):
    n, h, w, c, ph, pw, sh, sw, pads = case
    # small integers make many ties: the first maximum (row-major) must win on both sides
    x = np.random.default_rng(2).integers(0, 3, size=(n, h, w, c)).astype(np.float32)
    ref_out, ref_arg = numpy_ref.maxpool_forward(x, ph, pw, sh, sw, pads)
    out, arg = cupy_gpu.maxpool_forward(cp.asarray(x), ph, pw, sh, sw, pads)
    np.testing.assert_array_equal(cp.asnumpy(out), ref_out)
    np.testing.assert_array_equal(cp.asnumpy(arg), ref_arg)
    dout = np.random.default_rng(3).standard_normal(ref_out.shape).astype(np.float32)
    ref_dx = numpy_ref.maxpool_backward(dout, ref_arg, x.shape, ph, pw, sh, sw, pads)
    dx = cupy_gpu.maxpool_backward(cp.asarray(dout), arg, x.shape, ph, pw, sh, sw, pads)
    np.testing.assert_allclose(cp.asnumpy(dx), ref_dx, rtol=1e-6, atol=1e-6)


def test_residual_model_gradients_on_the_gpu(float64):
    backend.set_backend("cupy")
    model = report_models.cnn_fashion_3()
    model.compile("rmsprop")
    x = np.random.default_rng(3).random((2, 28, 28, 1))
    errors = gradcheck.check_model(model, x, np.eye(10)[[1, 4]], entries=30)
    assert max(errors.values()) < 1e-6, errors


def test_training_on_the_gpu_matches_numpy(float64):
    """Same seed, same batches: the loss curves of the numpy and cupy backends agree to 1e-10."""
    x = np.random.default_rng(0).random((96, 28, 28, 1))
    y = utils.to_categorical(np.arange(96) % 10, 10)
    curves = {}
    for name in ("numpy", "cupy"):
        backend.set_backend(name)
        backend.set_seed(5)
        model = report_models.cnn_fashion_3()
        model.compile("rmsprop", metrics=["accuracy"])
        curves[name] = [model.train_on_batch(x[i:i + 32], y[i:i + 32])[0]
                        for _ in range(4) for i in range(0, 96, 32)]
        out = model.predict(x[:8])
        assert isinstance(out, np.ndarray)  # predictions come back to the host
        if name == "cupy":
            assert isinstance(model.get_layer("l1").kernel, cp.ndarray)  # weights live on the GPU
    np.testing.assert_allclose(curves["cupy"], curves["numpy"], rtol=1e-10)
    assert curves["numpy"][-1] < curves["numpy"][0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_convolution_runs_directly_and_falls_back_to_im2col_for_other_inputs(dtype):
    """CuPy images of the kernel's float type: the direct kernels (no im2col matrix is saved);
    a kernel of another float type than the images: the reference's steps (im2col and the
    product), the same numbers as NumPy's. (Their agreement with the reference on many shapes:
    tests/test_kernels.py, which runs every convolution test on the CuPy backend too.)"""
    r = np.random.default_rng(4)
    x, kernel = r.standard_normal((3, 9, 8, 2)).astype(dtype), r.standard_normal((3, 3, 2, 5))
    ref = numpy_ref.conv2d_forward(x, kernel.astype(dtype), None, (1, 1), (1, 1, 1, 1))[0]
    got, saved = cupy_gpu.conv2d_forward(cp.asarray(x), cp.asarray(kernel, dtype=dtype), None,
                                         (1, 1), (1, 1, 1, 1))
    assert saved[1] is None
    np.testing.assert_allclose(cp.asnumpy(got), ref, rtol=1e-5, atol=1e-5)
    other = np.float64 if dtype == np.float32 else np.float32
    got, saved = cupy_gpu.conv2d_forward(cp.asarray(x), cp.asarray(kernel, dtype=other), None,
                                         (1, 1), (1, 1, 1, 1))
    assert saved[1] is not None and saved[1].shape == (3 * 9 * 8, 3 * 3 * 2)
    ref = numpy_ref.conv2d_forward(x, kernel.astype(other), None, (1, 1), (1, 1, 1, 1))[0]
    np.testing.assert_allclose(cp.asnumpy(got), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kwargs", [{}, {"momentum": 0.9}, {"centered": True},
                                    {"momentum": 0.5, "centered": True, "rho": 0.7}])
def test_fused_rmsprop_kernel_equals_the_numpy_update(kwargs, dtype):
    """Bit for bit: each operation rounded on its own, in the reference's order (no fused
    multiply-adds), as the NumPy update and Keras's float32 step."""
    from tinynet import optimizers
    rng = np.random.default_rng(0)
    theta0 = rng.standard_normal((50, 70)).astype(dtype)
    grads = [rng.standard_normal((50, 70)).astype(dtype) for _ in range(5)]
    on_host, on_gpu = theta0.copy(), cp.asarray(theta0)
    cpu_opt, gpu_opt = optimizers.RMSprop(**kwargs), optimizers.RMSprop(**kwargs)
    for g in grads:
        cpu_opt.apply_gradients([(g, on_host)])
        gpu_opt.apply_gradients([(cp.asarray(g), on_gpu)])
    np.testing.assert_array_equal(cp.asnumpy(on_gpu), on_host)
    assert not np.allclose(on_host, theta0)


MATMUL_SHAPES = [  # (M, K, N, a transposed, b transposed): the products of the report's models
    (1, 1, 1, False, False), (3, 5, 2, False, False), (65, 17, 16, False, False),
    (64, 33, 17, True, False), (128, 784, 256, False, False),   # MLP forward (K split in parts)
    (784, 128, 256, True, False), (128, 256, 784, False, True),  # its dL/dW and dL/dx
    (25, 100352, 9, True, False),                                # a 5x5 conv's dL/dW: long K
    (100352, 25, 9, False, False), (6272, 16, 81, False, True),  # a conv forward; a dL/dcols
    (65535 * 64 + 1, 3, 2, False, False),  # more tiles of rows than a grid's y or z can count
]


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-13)])
@pytest.mark.parametrize("shape", MATMUL_SHAPES)
def test_tinynet_s_cuda_matrix_product_equals_numpy_s(shape, dtype, tol):
    m, k, n, a_t, b_t = shape
    g = np.random.default_rng(m + k + n)
    a = g.standard_normal((k, m) if a_t else (m, k)).astype(dtype)
    b = g.standard_normal((n, k) if b_t else (k, n)).astype(dtype)
    a, b = (a.T if a_t else a), (b.T if b_t else b)  # transposed views, as the layers pass them
    got = cupy_gpu.matmul(cp.asarray(a), cp.asarray(b))
    assert got.shape == (m, n) and got.dtype == dtype
    exact = a.astype(np.float64) @ b.astype(np.float64)
    bound = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)  # rounding's scale
    assert np.all(np.abs(cp.asnumpy(got) - exact) <= tol * bound)
    np.testing.assert_array_equal(cp.asnumpy(cupy_gpu.matmul(cp.asarray(a), cp.asarray(b))),
                                  cp.asnumpy(got))  # the same sums in the same order, every run

