"""CuPy versions of the kernels: one CUDA thread per output element, no atomics.

The matrix product is tinynet's own too (:func:`matmul`, a tiled kernel): CuPy refuses to call
cuBLAS while a stream is being captured into a CUDA graph (``tinynet.replay``), and a kernel of
one's own is the same in both. So the GPU computes every product of a step the same way, eager
or replayed.

Each kernel is the reference's loop turned inside out: instead of looping over the window and
moving whole arrays (several kernel launches), one thread computes one element of the result by
looping over the window itself. ``col2im`` and ``maxpool_backward`` *gather* (each input pixel
sums the patches that cover it), so they are deterministic. The convolution is computed directly
(:func:`conv2d_forward`, :func:`conv2d_backward`): the same sums as the reference's im2col and
product, without writing the im2col matrix (for the digits CNN's second layer, 225 numbers for
each of the batch's 25,088 pixels). Functions without a CUDA version here are the reference
ones, which run on CuPy arrays as they are.
"""
import cupy as cp
import numpy as np

from ..shapes import output_size
from . import checks, numpy_ref

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

_POOL_FORWARD = (
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

_POOL_BACKWARD = (
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


def _two_widths(params, out, body, name):
    """An elementwise kernel in two versions: ``"long long"`` indices, and 32-bit ``"int"`` ones
    for arrays of fewer than 2**31 elements (a 64-bit division takes several times a 32-bit
    one's instructions, and these kernels decode an index into (n, h, w, c) with four)."""
    return {width: cp.ElementwiseKernel(params, out, body.replace("long long", width),
                                        f"{name}_{width.replace(' ', '')}")
            for width in ("long long", "int")}


def _width(*arrays_or_sizes):
    """The index type for arrays (or element counts) of this size: see :func:`_two_widths`."""
    size = max(a if isinstance(a, int) else a.size for a in arrays_or_sizes)
    return "int" if size < 2 ** 31 else "long long"


_pool_forward = _two_widths(*_POOL_FORWARD)
_pool_backward = _two_widths(*_POOL_BACKWARD)


def _ints(*values):
    return [np.int32(v) for v in values]


# C = A @ B for A (M, K) and B (K, N) given with any strides (a transposed view is just other
# strides), C (M, N) contiguous. A block of 16 x 16 threads computes a tile of BM = 64 rows by
# BN = 16 * TN columns of C: each thread TM = 4 rows (ty, ty + 16, ...) by TN columns (tx,
# tx + 16, ...). The block walks K in slices of BK = 16: it copies A's (BM, BK) slice and B's
# (BK, BN) slice into shared memory (the copying threads follow whichever index of A or B is
# contiguous in memory, so that a warp reads consecutive addresses), then every thread adds its
# TM x TN products for each k of the slice, in order. A long K (a convolution's dL/dW sums over
# every pixel of the batch: K = N*OH*OW) is split among gridDim.z blocks, each writing its own
# partial C, and _matmul_sum adds the parts up. No atomics: the same sums in the same order on
# every run.
_MATMUL_SOURCE = r"""
template <typename T, int TN>
__device__ void matmul_tile(const T* A, const T* B, T* C, int M, int N, int K,
                            long long sam, long long sak, long long sbk, long long sbn,
                            int kchunk) {
    const int BM = 64, BK = 16, BN = 16 * TN, TM = 4;
    __shared__ T As[BK][BM + 1];  // + 1: threads that write down a column hit different banks
    __shared__ T Bs[BK][BN + 1];
    const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 16 + tx;
    const int m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;  // (x: up to 2^31 - 1 tiles of rows)
    const int k_begin = blockIdx.z * kchunk;
    const int k_end = min(K, k_begin + kchunk);
    T acc[TM][TN];
    for (int i = 0; i < TM; ++i)
        for (int j = 0; j < TN; ++j) acc[i][j] = 0;
    for (int k0 = k_begin; k0 < k_end; k0 += BK) {
        for (int e = tid; e < BK * BM; e += 256) {
            const int kk = sak == 1 ? e % BK : e / BM;   // the contiguous index varies fastest
            const int mm = sak == 1 ? e / BK : e % BM;
            const int m = m0 + mm, k = k0 + kk;
            As[kk][mm] = (m < M && k < k_end) ? A[m * sam + k * sak] : (T)0;
        }
        for (int e = tid; e < BK * BN; e += 256) {
            const int kk = sbn == 1 ? e / BN : e % BK;
            const int nn = sbn == 1 ? e % BN : e / BK;
            const int n = n0 + nn, k = k0 + kk;
            Bs[kk][nn] = (n < N && k < k_end) ? B[k * sbk + n * sbn] : (T)0;
        }
        __syncthreads();
        for (int kk = 0; kk < BK; ++kk) {
            T a[TM], b[TN];
            for (int i = 0; i < TM; ++i) a[i] = As[kk][ty + 16 * i];
            for (int j = 0; j < TN; ++j) b[j] = Bs[kk][tx + 16 * j];
            for (int i = 0; i < TM; ++i)
                for (int j = 0; j < TN; ++j) acc[i][j] += a[i] * b[j];
        }
        __syncthreads();
    }
    C += (long long)blockIdx.z * M * N;  // this block's part of K: its own partial C
    for (int i = 0; i < TM; ++i)
        for (int j = 0; j < TN; ++j) {
            const int m = m0 + ty + 16 * i, n = n0 + tx + 16 * j;
            if (m < M && n < N) C[(long long)m * N + n] = acc[i][j];
        }
}
"""
_MATMUL_ENTRY = r"""
extern "C" __global__ void tinynet_matmul_{name}_{tn}(
        const {t}* A, const {t}* B, {t}* C, int M, int N, int K, long long sam, long long sak,
        long long sbk, long long sbn, int kchunk) {{
    matmul_tile<{t}, {tn}>(A, B, C, M, N, K, sam, sak, sbk, sbn, kchunk);
}}
"""
_FLOATS = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}  # their CUDA names
_matmul_module = cp.RawModule(code=_MATMUL_SOURCE + "".join(
    _MATMUL_ENTRY.format(name=str(dtype), t=t, tn=tn)
    for dtype, t in _FLOATS.items() for tn in (1, 4)))

_matmul_sum = cp.ReductionKernel(  # C = the sum of the partial Cs (over axis 0)
    "T part", "T c", "part", "a + b", "c = a", "0", "tinynet_matmul_sum")


def _matmul_split(m, n, k, tn):
    """How many parts of K (and K's length in each): enough blocks to fill the GPU (about 264,
    two per multiprocessor of an H100), each part at least 32 long. A block's slices of K run
    one after the other, each waiting for its loads from memory: a small product of one or two
    tiles (a Dense layer's, batch 128) over K = 144 took 17 us in 9 slices."""
    blocks = -(-m // 64) * -(-n // (16 * tn))
    parts = max(1, min(-(-264 // blocks), k // 32))
    chunk = -(-k // parts)
    chunk = -(-chunk // 16) * 16
    return -(-k // chunk), chunk


def matmul(a, b):
    """``a @ b`` for 2-D arrays on the GPU with tinynet's own tiled kernel (see the comment
    above ``_MATMUL_SOURCE``); any strides (``x.T`` is not copied). Not CuPy's product: that one
    calls cuBLAS, which CuPy refuses inside a CUDA graph's capture. Other inputs (NumPy arrays,
    integer or mixed dtypes): ``a @ b``."""
    if not (isinstance(a, cp.ndarray) and isinstance(b, cp.ndarray) and a.ndim == b.ndim == 2
            and a.dtype == b.dtype and a.dtype in _FLOATS and a.shape[1] == b.shape[0]):
        return a @ b
    (m, k), n = a.shape, b.shape[1]
    if m == 0 or n == 0 or k == 0:
        return cp.zeros((m, n), dtype=a.dtype)
    tn = 1 if n <= 16 else 4
    parts, chunk = _matmul_split(m, n, k, tn)
    out = cp.empty((parts, m, n), dtype=a.dtype)
    size = a.dtype.itemsize
    kernel = _matmul_module.get_function(f"tinynet_matmul_{a.dtype}_{tn}")
    kernel((-(-m // 64), -(-n // (16 * tn)), parts), (16, 16),
           (a, b, out, np.int32(m), np.int32(n), np.int32(k),
            np.int64(a.strides[0] // size), np.int64(a.strides[1] // size),
            np.int64(b.strides[0] // size), np.int64(b.strides[1] // size), np.int32(chunk)))
    return out[0] if parts == 1 else _matmul_sum(out, axis=0)


def im2col(x, kh, kw, sh, sw, pads):
    kh, kw, sh, sw = checks.ints(kh, kw, sh, sw)
    checks.check_images(x, "im2col")
    pads = checks.check_window(kh, kw, sh, sw, pads, "im2col")
    x = cp.ascontiguousarray(x)
    n, h, w, c = x.shape
    oh, ow = checks.out_hw(h, w, kh, kw, sh, sw, pads, "im2col")
    cols = cp.empty((n * oh * ow, kh * kw * c), dtype=x.dtype)
    _im2col(x, *_ints(h, w, c, oh, ow, kh, kw, sh, sw, pads[0], pads[2]), cols)
    return cols


def col2im(cols, x_shape, kh, kw, sh, sw, pads):
    kh, kw, sh, sw = checks.ints(kh, kw, sh, sw)
    (n, h, w, c), pads, (oh, ow) = checks.check_col2im(cols, x_shape, kh, kw, sh, sw, pads,
                                                       "col2im")
    dx = cp.empty((n, h, w, c), dtype=cols.dtype)
    _col2im(cp.ascontiguousarray(cols), *_ints(h, w, c, oh, ow, kh, kw, sh, sw, pads[0], pads[2]),
            dx)
    return dx


# The small steps of a training step, one CUDA thread per row of the (N, K) logits (numba_cpu's
# loops, line for line): the softmax cross-entropy, about 15 CuPy operations and their launches
# otherwise, and the accuracy's hits, about 5.
_ROWS_SOURCE = r"""
template <typename T>
__device__ void softmax_xent_row(const T* y, const T* z, T* per_example, T* grad, int n, int k) {
    const int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= n) return;
    y += (long long)r * k; z += (long long)r * k; grad += (long long)r * k;
    T top = z[0];  // NaN stays NaN through every line below, as in the reference
    for (int j = 1; j < k; ++j) if (z[j] > top) top = z[j];
    double total = 0.0;  // the shift in z's own type (as the reference), the rest in double
    for (int j = 0; j < k; ++j) total += exp((double)(z[j] - top));
    const double log_total = log(total);
    double loss = 0.0, labels = 0.0;
    for (int j = 0; j < k; ++j) {
        loss -= (double)y[j] * ((double)(z[j] - top) - log_total);  // -sum_k y_k log p_k
        labels += (double)y[j];
    }
    per_example[r] = (T)loss;
    for (int j = 0; j < k; ++j)  // (p sum_k y_k - y) / N
        grad[j] = (T)((exp((double)(z[j] - top)) / total * labels - (double)y[j]) / n);
}

template <typename T>
__device__ int row_argmax(const T* a, int k) {  // NumPy's rule: the first maximum, or first NaN
    if (isnan(a[0])) return 0;
    int best = 0;
    T top = a[0];
    for (int j = 1; j < k; ++j) {
        if (isnan(a[j])) return j;
        if (a[j] > top) { best = j; top = a[j]; }
    }
    return best;
}
"""
_ROWS_ENTRY = r"""
extern "C" __global__ void tinynet_softmax_xent_{name}(const {t}* y, const {t}* z,
        {t}* per_example, {t}* grad, int n, int k) {{
    softmax_xent_row<{t}>(y, z, per_example, grad, n, k);
}}
extern "C" __global__ void tinynet_argmax_hits_{name}(const {t}* y, const {t}* out,
        double* right, int n, int k) {{
    const int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r < n)
        right[r] = row_argmax<{t}>(out + (long long)r * k, k) ==
                   row_argmax<{t}>(y + (long long)r * k, k) ? 1.0 : 0.0;
}}
"""
_rows_module = cp.RawModule(code=_ROWS_SOURCE + "".join(
    _ROWS_ENTRY.format(name=str(dtype), t=t) for dtype, t in _FLOATS.items()))


def _rows(y, z):
    """``(y, z)`` contiguous when both are CuPy arrays of one float type and one (N, K) shape,
    N and K at least 1; else ``None`` (the readable lines run)."""
    if not (isinstance(z, cp.ndarray) and isinstance(y, cp.ndarray) and z.ndim == 2
            and z.dtype in _FLOATS and y.dtype == z.dtype and y.shape == z.shape
            and z.size):
        return None
    return cp.ascontiguousarray(y), cp.ascontiguousarray(z)


def softmax_cross_entropy(y_true, logits):
    """``losses.softmax_cross_entropy`` (``(per-example losses, dL/dlogits)``) in one kernel, a
    thread per row: :func:`numba_cpu.softmax_cross_entropy`'s loops, the same numbers up to
    rounding. ``None`` for other arrays."""
    arrays = _rows(y_true, logits)
    if arrays is None:
        return None
    y, z = arrays
    n, k = z.shape
    per_example, grad = cp.empty(n, dtype=z.dtype), cp.empty_like(z)
    kernel = _rows_module.get_function(f"tinynet_softmax_xent_{z.dtype}")
    kernel((-(-n // 128),), (128,), (y, z, per_example, grad, np.int32(n), np.int32(k)))
    return per_example, grad


def argmax_hits(y, out):
    """``metrics.hits`` of a softmax output in one kernel: per example 1.0 where the arg-max of
    ``out`` (the first maximum, or the first NaN) is that of ``y``, else 0.0. ``None`` for other
    arrays."""
    arrays = _rows(y, out)
    if arrays is None:
        return None
    y, out = arrays
    n, k = out.shape
    right = cp.empty(n, dtype=np.float64)
    kernel = _rows_module.get_function(f"tinynet_argmax_hits_{out.dtype}")
    kernel((-(-n // 128),), (128,), (y, out, right, np.int32(n), np.int32(k)))
    return right


# The convolution computed directly: the reference's sums (kernels/numpy_ref.py: im2col, the
# product, col2im) in the same order, without the im2col matrix. With X = im2col(x), a row r =
# (n, oh, ow) of X holds the pixels x[n, oh*SH + kh - PT, ow*SW + kw - PL, c] for every tap
# (kh, kw, c) of the window, 0 where the window lies over the padding:
#   forward   z[r, f]     = sum over taps of X[r, tap] W[tap, f]  (+ b[f], then the ReLU)
#   dL/dW     dW[tap, f]  = sum over rows of X[r, tap] dz[r, f]   (a long sum: N*OH*OW rows)
#             db[f]       = sum over rows of dz[r, f]
#   dL/dx     dx[n, h, w, c] = sum over the windows (kh, kw) that cover pixel (h, w), and f, of
#                          dz[r, f] W[(kh, kw, c), f]
# with dz = dL/dz = dout * [y > 0] behind a fused ReLU (y the layer's output). The padding's
# zeros are multiplied as the reference multiplies them (0 * inf is NaN in both). Indices are
# 32-bit: the Python functions use these kernels only for arrays of fewer than 2**31 elements.
_CONV_SOURCE = r"""
template <typename T>
__device__ void conv_forward(const T* x, const T* w, const T* bias, T* z, int has_bias,
                             int relu, int N, int H, int W, int C, int OH, int OW, int KH,
                             int KW, int F, int SH, int SW, int PT, int PL) {
    // one thread per output z[n, oh, ow, f] (the grid covers them; i in 64 bits: the last
    // block's threads may lie past 2**31)
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)N * OH * OW * F) return;
    int t = (int)i;
    const int f = t % F; t /= F;
    const int ow = t % OW; t /= OW;
    const int oh = t % OH; const int n = t / OH;
    T acc = 0;
    for (int kh = 0; kh < KH; ++kh) {
        const int h = oh * SH + kh - PT;
        for (int kw = 0; kw < KW; ++kw) {
            const int v = ow * SW + kw - PL;
            const bool inside = h >= 0 && h < H && v >= 0 && v < W;
            const T* px = x + ((n * H + h) * W + v) * C;
            const T* pw = w + (kh * KW + kw) * C * F + f;
            for (int c = 0; c < C; ++c) acc += (inside ? px[c] : (T)0) * pw[c * F];
        }
    }
    if (has_bias) acc += bias[f];
    if (relu && acc < 0) acc = 0;  // max(z, 0): NaN stays NaN, as NumPy's maximum keeps it
    z[i] = acc;
}

// dL/dW and dL/db, part 1: block b sums its rows, [b*B, b*B + B), of X^T dz into parts[b] (the
// taps' KH*KW*C*F sums, then the F sums of db), R rows at a time: the block copies R rows of dz
// (through the ReLU) and each row's window corner into shared memory; a thread then takes an
// output (kh, kw, c, f), runs down those rows and adds their sum to parts[b][o]. Part 2
// (sum_parts) adds the blocks' parts in order.
template <typename T>
__device__ void conv_dw_parts(const T* x, const T* dout, const T* y, T* parts, int relu,
                              int N, int H, int W, int C, int OH, int OW, int KH, int KW, int F,
                              int SH, int SW, int PT, int PL, int B, int R) {
    extern __shared__ __align__(16) unsigned char tinynet_shared[];
    T* dz = reinterpret_cast<T*>(tinynet_shared);                     // [R][F]
    int* corner_n = reinterpret_cast<int*>(dz + R * F);               // [R] each
    int* corner_h = corner_n + R;
    int* corner_w = corner_h + R;
    const int taps = KH * KW * C * F;
    T* part = parts + (long long)blockIdx.x * (taps + F);
    const int first = blockIdx.x * B, end = min(first + B, N * OH * OW);
    for (int r0 = first; r0 < end; r0 += R) {
        const int rows = min(R, end - r0);
        __syncthreads();  // (every thread is done with the rows before)
        for (int e = threadIdx.x; e < rows * F; e += blockDim.x) {
            const int at = r0 * F + e;
            dz[e] = relu ? dout[at] * (T)(y[at] > 0) : dout[at];
        }
        for (int e = threadIdx.x; e < rows; e += blockDim.x) {
            int t = r0 + e;
            const int ow = t % OW; t /= OW;
            const int oh = t % OH;
            corner_n[e] = t / OH; corner_h[e] = oh * SH - PT; corner_w[e] = ow * SW - PL;
        }
        __syncthreads();
        for (int o = threadIdx.x; o < taps + F; o += blockDim.x) {
            T acc = 0;
            if (o < taps) {
                int t = o;
                const int f = t % F; t /= F;
                const int c = t % C; t /= C;
                const int kw = t % KW; const int kh = t / KW;
                for (int r = 0; r < rows; ++r) {
                    const int h = corner_h[r] + kh, v = corner_w[r] + kw;
                    const T pixel = (h >= 0 && h < H && v >= 0 && v < W)
                        ? x[((corner_n[r] * H + h) * W + v) * C + c] : (T)0;
                    acc += pixel * dz[r * F + f];
                }
            } else {
                for (int r = 0; r < rows; ++r) acc += dz[r * F + o - taps];
            }
            part[o] = r0 == first ? acc : part[o] + acc;  // (each o is this thread's alone)
        }
    }
}

// Part 2: out[o] = the sum over the blocks of parts[b][o], one block of 128 threads per output
// (each thread a stride of the blocks, then halves added in shared memory: a fixed order).
template <typename T>
__device__ void sum_parts(const T* parts, T* out, int blocks, int outputs) {
    __shared__ T s[128];
    const int o = blockIdx.x;
    T acc = 0;
    for (int b = threadIdx.x; b < blocks; b += 128) acc += parts[(long long)b * outputs + o];
    s[threadIdx.x] = acc;
    __syncthreads();
    for (int half = 64; half > 0; half /= 2) {
        if (threadIdx.x < half) s[threadIdx.x] += s[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[o] = s[0];
}

// dL/dx: one thread per pixel x[n, h, w, c] gathers from the windows that cover it.
template <typename T>
__device__ void conv_dx(const T* dout, const T* y, const T* w, T* dx, int relu, int N, int H,
                        int W, int C, int OH, int OW, int KH, int KW, int F, int SH, int SW,
                        int PT, int PL) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)N * H * W * C) return;
    int t = (int)i;
    const int c = t % C; t /= C;
    const int v = t % W; t /= W;
    const int h = t % H; const int n = t / H;
    T acc = 0;
    for (int kh = 0; kh < KH; ++kh) {
        const int a = h + PT - kh;
        if (a < 0 || a % SH != 0 || a / SH >= OH) continue;
        for (int kw = 0; kw < KW; ++kw) {
            const int b = v + PL - kw;
            if (b < 0 || b % SW != 0 || b / SW >= OW) continue;
            const int row = ((n * OH + a / SH) * OW + b / SW) * F;
            const T* pw = w + ((kh * KW + kw) * C + c) * F;
            T sum = 0;  // (dz W^T)[row, tap], then col2im's sum over the windows
            for (int f = 0; f < F; ++f) {
                const T g = relu ? dout[row + f] * (T)(y[row + f] > 0) : dout[row + f];
                sum += g * pw[f];
            }
            acc += sum;
        }
    }
    dx[i] = acc;
}
"""
_CONV_ENTRY = r"""
extern "C" __global__ void tinynet_conv_forward_{name}(const {t}* x, const {t}* w,
        const {t}* bias, {t}* z, int has_bias, int relu, int N, int H, int W, int C, int OH,
        int OW, int KH, int KW, int F, int SH, int SW, int PT, int PL) {{
    conv_forward<{t}>(x, w, bias, z, has_bias, relu, N, H, W, C, OH, OW, KH, KW, F, SH, SW, PT,
                      PL);
}}
extern "C" __global__ void tinynet_conv_dw_parts_{name}(const {t}* x, const {t}* dout,
        const {t}* y, {t}* parts, int relu, int N, int H, int W, int C, int OH, int OW, int KH,
        int KW, int F, int SH, int SW, int PT, int PL, int B, int R) {{
    conv_dw_parts<{t}>(x, dout, y, parts, relu, N, H, W, C, OH, OW, KH, KW, F, SH, SW, PT, PL,
                       B, R);
}}
extern "C" __global__ void tinynet_sum_parts_{name}(const {t}* parts, {t}* out, int blocks,
        int outputs) {{
    sum_parts<{t}>(parts, out, blocks, outputs);
}}
extern "C" __global__ void tinynet_conv_dx_{name}(const {t}* dout, const {t}* y, const {t}* w,
        {t}* dx, int relu, int N, int H, int W, int C, int OH, int OW, int KH, int KW, int F,
        int SH, int SW, int PT, int PL) {{
    conv_dx<{t}>(dout, y, w, dx, relu, N, H, W, C, OH, OW, KH, KW, F, SH, SW, PT, PL);
}}
"""
_conv_module = cp.RawModule(code=_CONV_SOURCE + "".join(
    _CONV_ENTRY.format(name=str(dtype), t=t) for dtype, t in _FLOATS.items()))


def _direct(x, kernel, strides, pads, bias=None, *arrays):
    """The kernels' sizes (:func:`_geometry`) when the direct kernels take this convolution:
    CuPy arrays of one float type, the image's and the kernel's channels equal, a bias of one
    number a filter, at least one filter and one tap, the input, the output and every array of
    fewer than 2**31 elements (their 32-bit indices). Else ``None``: the reference's steps run
    (im2col, the product, col2im)."""
    everything = (x, kernel) + tuple(a for a in (bias,) + arrays if a is not None)
    if not (all(isinstance(a, cp.ndarray) and a.dtype == x.dtype for a in everything)
            and x.dtype in _FLOATS and x.ndim == 4 and kernel.ndim == 4 and kernel.size
            and x.shape[3] == kernel.shape[2]
            and (bias is None or bias.shape == (kernel.shape[3],))):
        return None
    sizes = _geometry(x.shape, kernel.shape, strides, pads)
    n, oh, ow, f = int(sizes[0]), int(sizes[4]), int(sizes[5]), int(sizes[8])
    return sizes if _width(n * oh * ow * f, *everything) == "int" else None


def _launch(name, dtype, total, args, block=256, grid=None, shared_mem=0):
    _conv_module.get_function(f"tinynet_{name}_{dtype}")(
        (grid or max(1, -(-total // block)),), (block,), args, shared_mem=shared_mem)


def _geometry(x_shape, kernel_shape, strides, pads):
    """The kernels' int32 sizes: N, H, W, C, OH, OW, KH, KW, F, SH, SW, PT, PL."""
    n, h, w, c = x_shape
    kh, kw, _, f = kernel_shape
    sh, sw = strides
    oh = output_size(h, kh, sh, pads[0], pads[1])
    ow = output_size(w, kw, sw, pads[2], pads[3])
    return _ints(n, h, w, c, oh, ow, kh, kw, f, sh, sw, pads[0], pads[2])


def conv2d_forward(x, kernel, bias, strides, pads, relu=False):
    """:func:`numpy_ref.conv2d_forward` computed directly, one CUDA thread per output (see the
    comment above ``_CONV_SOURCE``). ``saved`` is ``(x, None)``: no im2col matrix."""
    strides, pads = checks.check_conv(x, kernel, bias, strides, pads, "conv2d_forward")
    checks.out_hw(x.shape[1], x.shape[2], *kernel.shape[:2], *strides, pads, "conv2d_forward")
    sizes = _direct(x, kernel, strides, pads, bias)
    if sizes is None:
        return numpy_ref.conv2d_forward(x, kernel, bias, strides, pads, relu=relu, unfold=im2col,
                                        product=matmul)
    x, kernel = cp.ascontiguousarray(x), cp.ascontiguousarray(kernel)
    n, oh, ow, f = int(sizes[0]), int(sizes[4]), int(sizes[5]), int(sizes[8])
    z = cp.empty((n, oh, ow, f), dtype=x.dtype)
    if z.size:
        _launch("conv_forward", x.dtype, z.size,
                (x, kernel, kernel if bias is None else cp.ascontiguousarray(bias), z,
                 np.int32(bias is not None), np.int32(bool(relu)), *sizes))
    return z, (x, None)


def _dw_rows(rows, filters, itemsize):
    """``(B, R)``: rows of X^T dz per block, B, for at most about 264 blocks (two per
    multiprocessor of an H100), at least 32 each (a multiple of 32); and rows at a time, R, at
    most 512 and the block's dz rows at most 32 KB of shared memory."""
    per_block = -(-rows // 264)
    per_block = max(32, -(-per_block // 32) * 32)
    return per_block, max(1, min(per_block, 512, 32768 // (filters * itemsize)))


def conv2d_backward(dout, saved, kernel, strides, pads, relu_output=None, need_dx=True):
    """:func:`numpy_ref.conv2d_backward` computed directly: dL/dW and dL/db in two kernels (the
    blocks' parts of the long sums over the rows, then their sum), dL/dx in one (a thread per
    pixel); ``dz = dout * [y > 0]`` inside them when ``relu_output`` (``y``) is given."""
    x = saved[0]
    strides, pads, _ = checks.check_conv_backward(dout, x, kernel, strides, pads, relu_output,
                                                  "conv2d_backward")
    sizes = _direct(x, kernel, strides, pads, None, dout, relu_output)
    if sizes is None or kernel.shape[3] * x.dtype.itemsize > 32768:
        # (more than 32 KB for one row of dz: the shared memory of dL/dW's blocks)
        return numpy_ref.conv2d_backward(dout, saved, kernel, strides, pads,
                                         relu_output=relu_output, need_dx=need_dx, unfold=im2col,
                                         fold=col2im, product=matmul)
    x, kernel, dout = (cp.ascontiguousarray(a) for a in (x, kernel, dout))
    relu = relu_output is not None
    y = cp.ascontiguousarray(relu_output) if relu else dout
    f, taps = kernel.shape[3], kernel.size
    rows = int(sizes[0]) * int(sizes[4]) * int(sizes[5])
    sums = cp.empty(taps + f, dtype=x.dtype)  # dL/dW's taps, then dL/db
    if rows == 0:
        sums.fill(0)
    else:
        per_block, at_a_time = _dw_rows(rows, f, x.dtype.itemsize)
        blocks = -(-rows // per_block)
        parts = cp.empty((blocks, taps + f), dtype=x.dtype)
        _launch("conv_dw_parts", x.dtype, 0, (x, dout, y, parts, np.int32(relu), *sizes,
                                              np.int32(per_block), np.int32(at_a_time)),
                grid=blocks, shared_mem=at_a_time * (f * x.dtype.itemsize + 12))
        _launch("sum_parts", x.dtype, 0, (parts, sums, np.int32(blocks), np.int32(taps + f)),
                block=128, grid=taps + f)
    dx = None
    if need_dx:
        dx = cp.empty(x.shape, dtype=x.dtype)
        if dx.size:
            _launch("conv_dx", x.dtype, dx.size, (dout, y, kernel, dx, np.int32(relu), *sizes))
    return dx, sums[:taps].reshape(kernel.shape), sums[taps:]


def maxpool_forward(x, ph, pw, sh, sw, pads):
    ph, pw, sh, sw = checks.ints(ph, pw, sh, sw)
    checks.check_images(x, "maxpool_forward")
    pads = checks.check_window(ph, pw, sh, sw, pads, "maxpool_forward")
    x = cp.ascontiguousarray(x)
    n, h, w, c = x.shape
    oh, ow = checks.out_hw(h, w, ph, pw, sh, sw, pads, "maxpool_forward")
    out = cp.empty((n, oh, ow, c), dtype=x.dtype)
    arg = cp.empty((n, oh, ow, c), dtype=cp.int32)
    _pool_forward[_width(x, out)](x, *_ints(h, w, c, oh, ow, ph, pw, sh, sw, pads[0], pads[2]),
                                  out, arg)
    return out, arg


def maxpool_backward(dout, arg, x_shape, ph, pw, sh, sw, pads):
    ph, pw, sh, sw = checks.ints(ph, pw, sh, sw)
    (n, h, w, c), pads = checks.check_pool_backward(dout, arg, x_shape, ph, pw, sh, sw, pads,
                                                    "maxpool_backward")
    oh, ow = dout.shape[1], dout.shape[2]
    dx = cp.empty((n, h, w, c), dtype=dout.dtype)
    _pool_backward[_width(dx, dout)](cp.ascontiguousarray(dout), cp.ascontiguousarray(arg),
                                     *_ints(h, w, c, oh, ow, ph, pw, sh, sw, pads[0], pads[2]),
                                     dx)
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


_UNUSED = {}


def _unused(like):
    """An array of ``like``'s shape for an output the kernel never writes (kept: no allocation
    and no zero-filling in every step)."""
    key = (like.shape, like.dtype.str, like.device.id)
    if key not in _UNUSED:
        _UNUSED[key] = cp.empty_like(like)
    return _UNUSED[key]


def rmsprop_update(theta, g, s, mean_grad, moment, lr, rho, eps, momentum, centered, keep=None):
    """``optimizers.RMSprop.update`` as one CUDA kernel (instead of about ten array operations).
    ``mean_grad`` and ``moment`` are ``None`` when ``centered`` / ``momentum`` are off; ``keep``
    as in ``numba_cpu.rmsprop_update`` (copied here before the kernel runs)."""
    arrays = {"weights": theta, "s": s, "mean_grad": mean_grad, "moment": moment}
    for name, buffer in (keep or {}).items():
        if arrays.get(name) is None:
            raise ValueError(f"rmsprop_update: cannot keep {name!r} (the update has no such array)")
        buffer[...] = arrays[name]
    if mean_grad is None or moment is None:  # a slot the options leave unused: never touched
        unused = _unused(theta)
        mean_grad = unused if mean_grad is None else mean_grad
        moment = unused if moment is None else moment
    t = theta.dtype.type
    _rmsprop(g, t(lr), t(rho), t(1 - rho), t(eps), t(momentum), bool(centered), theta, s,
             mean_grad, moment)
