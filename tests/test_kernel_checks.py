"""Every backend's kernels refuse inconsistent arguments with the same message
(tinynet/kernels/checks.py), where array code would broadcast or index its way to a wrong answer:
the NumPy reference used to return one for each case below."""
import numpy as np
import pytest

from tinynet import backend
from tinynet.kernels import numpy_ref


def _numba():
    try:
        return backend._load("numba")[1]
    except backend.BackendError as e:
        pytest.skip(f"numba is not installed ({e})")


def _cuda_on_cpu():
    """The CuPy backend's module with its CUDA kernels compiled for the CPU
    (tests/cuda_on_cpu.py): its Python checks run as on a GPU."""
    import cuda_on_cpu
    if cuda_on_cpu.unavailable() is not None:
        pytest.skip(str(cuda_on_cpu.unavailable()))
    return cuda_on_cpu.load_cupy_gpu()


@pytest.fixture(params=["numpy", "numba", "cupy (CUDA kernels run on the CPU)"])
def K(request):
    return {"numpy": lambda: numpy_ref, "numba": _numba}.get(request.param, _cuda_on_cpu)()


R = np.random.default_rng(0)
X = R.random((2, 8, 8, 3))
KERNEL = R.standard_normal((3, 3, 3, 4))
VALID = (0, 0, 0, 0)


def test_a_relu_output_of_another_shape_is_refused(K):
    """A ReLU output of one image would be broadcast over the batch: dL/dkernel off by 18 on the
    reference, silently."""
    y, saved = K.conv2d_forward(X, KERNEL, None, (1, 1), VALID, relu=True)
    with pytest.raises(ValueError, match=r"relu output \(1, 6, 6, 4\) does not match the "
                                         r"gradient \(2, 6, 6, 4\)"):
        K.conv2d_backward(np.ones_like(y), saved, KERNEL, (1, 1), VALID, relu_output=y[:1])


def test_a_gradient_of_another_shape_is_refused(K):
    y, saved = K.conv2d_forward(X, KERNEL, None, (1, 1), VALID)
    with pytest.raises(ValueError, match=r"gradient of shape \(2, 6, 6, 3\) does not match the "
                                         r"output \(2, 6, 6, 4\)"):
        K.conv2d_backward(np.ones((2, 6, 6, 3)), saved, KERNEL, (1, 1), VALID)


def test_a_pool_of_zero_is_refused(K):
    """The reference copied its input through a pool of 0 x 0."""
    with pytest.raises(ValueError, match=r"window \(0, 0\) and strides \(1, 1\) must be positive"):
        K.maxpool_forward(X, 0, 0, 1, 1, VALID)


def test_a_kernel_larger_than_the_image_is_refused(K):
    """The reference returned an empty (2, 0, 0, 4) output."""
    with pytest.raises(ValueError, match=r"window \(3, 3\) does not fit in the padded input "
                                         r"\(2, 2\)"):
        K.conv2d_forward(X[:, :2, :2], KERNEL, None, (1, 1), VALID)


def test_a_pooling_backward_for_other_images_is_refused(K):
    out, arg = K.maxpool_forward(X, 2, 2, 2, 2, VALID)
    with pytest.raises(ValueError, match=r"must both be \(2, 5, 5, 3\) for input \(2, 10, 10, 3\)"):
        K.maxpool_backward(out, arg, (2, 10, 10, 3), 2, 2, 2, 2, VALID)


def test_strides_must_be_a_pair_and_sizes_whole_numbers(K):
    with pytest.raises(ValueError, match=r"conv2d_forward: strides must be a pair \(rows, "
                                         r"columns\), got 1"):
        K.conv2d_forward(X, KERNEL, None, 1, VALID)
    with pytest.raises(TypeError, match=r"whole numbers .* got 2\.5"):
        K.maxpool_forward(X, 2.5, 2, 2, 2, VALID)
    with pytest.raises(ValueError, match=r"pads must be 4 non-negative ints"):
        K.maxpool_forward(X, 2, 2, 2, 2, (0, 0))


def test_sizes_given_as_lists_and_arrays_are_taken(K):
    """As the kernels took them before the shared checks (a review found arrays refused)."""
    ref, _ = numpy_ref.conv2d_forward(X, KERNEL, None, (1, 1), VALID)
    got, _ = K.conv2d_forward(X, KERNEL, None, np.array([1, 1]), np.zeros(4, int))
    np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-12, atol=1e-12)
    a, _ = K.maxpool_forward(X, np.int64(2), 2, 2, 2, [0, 0, 0, 0])
    b, _ = K.conv2d_maxpool_forward(X, KERNEL, None, [1, 1], list(VALID), np.array([2, 2]))
    assert a.shape == (2, 4, 4, 3) and b.shape == (2, 3, 3, 4)


def test_a_bias_and_a_kernel_that_do_not_fit_are_refused(K):
    with pytest.raises(ValueError, match=r"bias of shape \(3,\) does not fit 4 filters"):
        K.conv2d_forward(X, KERNEL, np.zeros(3), (1, 1), VALID)
    with pytest.raises(ValueError, match=r"kernel of shape \(3, 3, 2, 4\) does not fit images"):
        K.conv2d_forward(X, KERNEL[:, :, :2], None, (1, 1), VALID)


def test_cols_of_other_images_are_refused(K):
    cols = K.im2col(X, 3, 3, 1, 1, VALID)
    with pytest.raises(ValueError, match=r"cols of shape \(72, 27\) do not match images "
                                         r"\(2, 9, 9, 3\)"):
        K.col2im(cols, (2, 9, 9, 3), 3, 3, 1, 1, VALID)


def test_a_pool_larger_than_the_convolution_s_output_is_refused(K):
    with pytest.raises(ValueError, match=r"conv2d_maxpool_forward: pool \(7, 7\) does not fit "
                                         r"the convolution's output \(6, 6\)"):
        K.conv2d_maxpool_forward(X, KERNEL, None, (1, 1), VALID, (7, 7), relu=True)
