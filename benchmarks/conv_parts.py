"""Where a convolution kernel's time goes (issue 13).

The numba stride-1 convolution (tinynet/kernels/numba_cpu.py) spends its forward pass in two
kinds of work: the sums over taps (``_blocked_sums`` over the zero-padded planes: the FLOPs,
timed here with the allocation and filling of their planes) and the rest (pooling and writing
the NHWC output, the Python checks and tap tables). The first table
times, for the report CNNs' shapes (batch 128, float32, random inputs), the fused conv + ReLU +
max-pool forward as tinynet runs it and the same groups of images through the taps loops alone,
alternately, with the taps' GFLOP/s (counting the positions computed on the padded grid, the work
the loops really do).

The backward pass of a convolution read by a max pooling works from the pooling's winners (one
position of each window, where the ReLU is on). The second table sets it beside the dense path it
replaced: the same gradient laid on the convolution's whole output (three-quarters zeros and more,
``maxpool_backward``), then the dense backward (``conv2d_backward``); and counts the non-zero
winners (image, window, filter)::

    python -m benchmarks.conv_parts [--repeats 30]

On one thread (the kernels' parallel loops would split the groups over threads, the loops alone
here do not), the steadiest figures on a shared machine; the minimum over the repeats is printed.
A step of ``cnn_digits`` runs l1, l2 and l3 forward and backward (l1 without dL/dx).
"""
import argparse
import time

import numba
import numpy as np
from numba import njit

from tinynet.kernels import numba_cpu as K

# name, input (N, H, W, C), kernel (KH, KW, C, F), pads, dL/dx wanted
SHAPES = [("cnn_digits l1", (128, 28, 28, 1), (5, 5, 1, 9), (2, 2, 2, 2), False),
          ("cnn_digits l2", (128, 14, 14, 9), (5, 5, 9, 9), (2, 2, 2, 2), True),
          ("cnn_digits l3", (128, 7, 7, 9), (3, 3, 9, 16), (1, 1, 1, 1), True)]


@njit(cache=True)
def _forward_taps(x, wts, pidx, offs, bias, top, left, hp, wp, group, rows):
    """The forward's taps loops alone, group by group, as the kernel runs them (``rows``: the
    grid rows of each group's last image that its pooling reads)."""
    tail, checksum = K._tail(offs), 0.0
    for n0 in range(0, x.shape[0], group):
        acc = K._conv_group(x, wts, pidx, offs, bias, top, left, hp, wp, tail, n0,
                            min(group, x.shape[0] - n0), rows)
        checksum += acc[0, 0]
    return checksum


def _best(fns, repeats):
    """The minimum time of each of ``fns`` in milliseconds, calling them in turn (alternating, so
    that a change of the machine's load falls on all of them alike)."""
    times = [[] for _ in fns]
    for fn in fns:
        fn()
    for _ in range(repeats):
        for fn, kept in zip(fns, times):
            started = time.perf_counter()
            fn()
            kept.append(time.perf_counter() - started)
    return [min(kept) * 1e3 for kept in times]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="timed calls of each (min kept)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    numba.set_num_threads(1)
    rng = np.random.default_rng(0)
    print(f"one numba thread; milliseconds, minimum of {args.repeats} calls")
    forward, backward = [], []
    for name, x_shape, k_shape, pads, need_dx in SHAPES:
        x = rng.standard_normal(x_shape).astype(np.float32)
        kernel = (0.1 * rng.standard_normal(k_shape)).astype(np.float32)
        bias = np.zeros(k_shape[3], np.float32)
        out, saved = K.conv2d_maxpool_forward(x, kernel, bias, (1, 1), pads, (2, 2), relu=True)
        dout = rng.standard_normal(out.shape).astype(np.float32)
        (wts, pidx, offs, b), grid = K._forward_s1_args(x, kernel, bias, pads)
        top, left, hp, wp, group = grid
        # the dense path: the pooled gradient laid on its winners (times [y > 0]), zeros
        # elsewhere, then the dense backward of the convolution
        y, conv_saved = K.conv2d_forward(x, kernel, bias, (1, 1), pads, relu=True)
        relu_dout = dout * (out > 0)

        def dense():
            dz = K.maxpool_backward(relu_dout, saved[1], y.shape, 2, 2, 2, 2, (0, 0, 0, 0))
            return K.conv2d_backward(dz, conv_saved, kernel, (1, 1), pads, need_dx=need_dx)
        # multiply-adds on the padded grid: positions x taps x filters
        grid_macs = x_shape[0] * hp * wp * int(np.prod(k_shape))
        t_whole, t_taps = _best([
            lambda: K.conv2d_maxpool_forward(x, kernel, bias, (1, 1), pads, (2, 2), relu=True),
            lambda: _forward_taps(x, wts, pidx, offs, b, top, left, hp, wp, group,
                                  2 * out.shape[1])], args.repeats)
        forward.append(f"| {name} | {t_whole:.3f} | {t_taps:.3f} | {t_whole - t_taps:.3f} "
                       f"| {2 * grid_macs / (t_taps * 1e-3) / 1e9:.0f} |")
        t_whole, t_taps = _best([
            lambda: K.conv2d_maxpool_backward(dout, saved, kernel, (1, 1), pads, (2, 2), relu=True,
                                              need_dx=need_dx),
            dense], args.repeats)
        winners = int(np.count_nonzero(dout * (out > 0)))
        backward.append(f"| {name} | {'dL/dw, dL/dx' if need_dx else 'dL/dw'} | {t_whole:.3f} "
                        f"| {winners} | {t_whole * 1e6 / winners:.0f} | {t_taps:.3f} |")
    print("\nforward: convolution + ReLU + max pooling")
    print("| shape | kernel | taps loops | the rest | taps GFLOP/s |")
    print("|---|---:|---:|---:|---:|")
    print("\n".join(forward))
    print("\nbackward of the pooled convolution, from the winners; beside it the dense path: the "
          "gradient laid on the whole output, then the dense backward")
    print("| shape | gradients | kernel | non-zero winners | ns a winner | the dense path |")
    print("|---|---|---:|---:|---:|---:|")
    print("\n".join(backward))


if __name__ == "__main__":
    main()
