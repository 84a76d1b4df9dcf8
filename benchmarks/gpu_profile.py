"""Where a training step's time goes on the GPU: parts of the step replayed as CUDA graphs.

Run on a machine with an NVIDIA GPU: ``python -m benchmarks.gpu_profile``. For each report model
(float32, batch 128, RMSprop), the GPU time of one replay (CUDA events around 200 replays) of:
the forward pass with the loss, that plus the backward pass, and the whole step of ``fit``
(:class:`tinynet.replay.GraphStep`: also the update, the NaN guard and the sums); the host's
time per replayed step (``GraphStep.step``: the batch's gather, the checks, the launch), and an
eager step's. Then where an eager step's GPU time goes, call by call (:class:`OpTimer`): the
forward pass, the backward pass and the update; each of the backend's kernels; and the CUDA
kernels inside them (the product, im2col, col2im, the pooling). Then tinynet's CUDA matrix
product against CuPy's (cuBLAS) on the digits CNN's products. Prints a table, then one JSON
document.
"""
import json
import statistics
import time

import numpy as np

from tinynet import backend, replay, training, utils
from tinynet.layers import core

from .gpu_epochs import MODELS

SHAPES = {"flat": (784,), "img": (28, 28, 1)}  # an example of gpu_epochs.MODELS' two kinds
# (M, K, N, a transposed, b transposed): the digits CNN's products, batch 128
PRODUCTS = [(100352, 25, 9, False, False), (25, 100352, 9, True, False),
            (25088, 225, 9, False, False), (225, 25088, 9, True, False),
            (25088, 9, 225, False, True), (6272, 81, 16, False, False),
            (81, 6272, 16, True, False), (6272, 16, 81, False, True), (128, 144, 25, False, False),
            (128, 784, 256, False, False), (784, 128, 256, True, False)]


def gpu_ms(cp, fn, repeats=200):
    """Milliseconds of GPU time per call of ``fn`` (events around ``repeats`` calls, after 3)."""
    for _ in range(3):
        fn()
    stream = cp.cuda.get_current_stream()
    start = stream.record()
    for _ in range(repeats):
        fn()
    end = stream.record()
    end.synchronize()
    return cp.cuda.get_elapsed_time(start, end) / repeats


def recorded(cp, fn):
    """``fn`` recorded as a CUDA graph (after two eager runs, in a pool of its own): its launch."""
    pool, stream = cp.cuda.MemoryPool(), cp.cuda.get_current_stream()
    with cp.cuda.using_allocator(pool.malloc):
        fn()
        fn()
        stream.synchronize()
        stream.begin_capture()
        fn()
        graph = stream.end_capture()
    return lambda: graph.launch(stream), pool


def profile_model(cp, build, shape):
    backend.set_seed(0)
    model = build()
    model.compile("rmsprop", metrics=["accuracy"])
    g = np.random.default_rng(0)
    x = backend.asarray(g.random((128 * 8,) + shape), dtype=np.float32)
    y = backend.asarray(utils.to_categorical(g.integers(0, 10, x.shape[0]), 10), dtype=np.float32)
    static = training.StaticStep(model, x, y, 128)
    step = replay.GraphStep(model, static)
    idx = [backend.asarray(np.arange(i * 128, (i + 1) * 128)) for i in range(8)]
    out = {}
    with step.stream:
        step.begin_epoch()
        for i in range(6):  # the eager steps, then the recording (see replay.GraphStep)
            step.step(x, y, idx[i])
            if step.graph is not None or step.off is not None:
                break
        assert step.graph is not None, step.off
        out["step_ms"] = gpu_ms(cp, lambda: step.graph.launch(step.stream))
        step.stream.synchronize()
        start = time.perf_counter()
        for i in range(200):
            step.step(x, y, idx[i % 8])
        host = (time.perf_counter() - start) / 200
        step.stream.synchronize()
        out["host_ms_per_replayed_step"] = 1e3 * host
        out["wall_ms_per_replayed_step"] = 1e3 * (time.perf_counter() - start) / 200
        # the parts, each recorded on its own (Dropout's bits: one fixed buffer per draw)
        bits, pools = {}, []

        def fixed_bits(shape):
            if tuple(shape) not in bits:  # (made by the eager runs, before the capture)
                bits[tuple(shape)] = cp.zeros(shape, dtype=np.uint32)
            return bits[tuple(shape)]
        core._draw_hook = fixed_bits
        try:
            def forward():
                return training.loss_and_gradient(model, static.x, static.y, training=True)

            def forward_backward():
                model.graph.backward(forward()[2], need_input_grad=False)
            for name, fn in (("forward_and_loss_ms", forward),
                             ("forward_backward_ms", forward_backward)):
                launch, pool = recorded(cp, fn)
                pools.append(pool)  # (the graph's memory: kept while it may run)
                out[name] = gpu_ms(cp, launch)
        finally:
            core._draw_hook = None
        # an eager step (the same kernels, launched one by one), host clock with the GPU waited for
        times = []
        for i in range(20):
            step.stream.synchronize()
            start = time.perf_counter()
            static.run()
            step.stream.synchronize()
            times.append(time.perf_counter() - start)
        out["eager_step_ms"] = 1e3 * statistics.median(times[5:])
    out["eager_us_by_call"] = op_times(cp, model, static)
    return out


_SPIN = r"""
__device__ unsigned long long nanoseconds() {  // the GPU's global timer
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}
extern "C" __global__ void tinynet_spin(long long ns) {
    const unsigned long long start = nanoseconds();
    while (nanoseconds() - start < (unsigned long long)ns) {}
}
"""


class OpTimer:
    """The GPU time of each call of some functions, within an eager step.

    Timing a call with CUDA events around it measures the Python that launches its kernels as
    well, when the GPU waits for them. So before each call a one-thread kernel spins for
    ``spin_ms`` on the stream: the call's kernels are all queued when the start event runs, and
    the events measure the kernels alone, one after the other as in a replayed graph. A call whose
    host time exceeds the spin is counted in ``late`` (its figure then includes waiting)."""

    def __init__(self, cp, spin_ms=2.0, skip=2):
        self.cp = cp
        self.spin = cp.RawKernel(_SPIN, "tinynet_spin")
        self.spin_ns, self.spin_s = np.int64(spin_ms * 1e6), spin_ms / 1e3
        self.calls = []  # (step, name, start event, end event)
        self.step, self.late, self.skip = 0, 0, skip  # (the first ``skip`` steps: warming up)

    def wrap(self, name, fn):
        cp = self.cp

        def timed(*args, **kwargs):
            stream = cp.cuda.get_current_stream()
            self.spin((1,), (1,), (self.spin_ns,))
            start = stream.record()
            began = time.perf_counter()
            result = fn(*args, **kwargs)
            self.late += self.step >= self.skip and time.perf_counter() - began > self.spin_s
            label = name(*args) if callable(name) else name
            self.calls.append((self.step, label, start, stream.record()))
            return result
        return timed

    def per_step(self):
        """``{name: [microseconds per step (the median over steps), calls per step]}``."""
        self.cp.cuda.get_current_stream().synchronize()
        sums = {}
        for step, name, start, end in self.calls:
            if step < self.skip:
                continue
            by_step = sums.setdefault(name, {})
            us, calls = by_step.get(step, (0.0, 0))
            by_step[step] = (us + 1e3 * self.cp.cuda.get_elapsed_time(start, end), calls + 1)
        return {name: [round(statistics.median(us for us, _ in by_step.values()), 1),
                       max(calls for _, calls in by_step.values())]
                for name, by_step in sorted(sums.items(), key=lambda kv: kv[0])}


def op_times(cp, model, static, steps=8):
    """Where an eager step's GPU time goes (see :class:`OpTimer`), in four passes, each a few
    steps of ``static.run()`` with some functions wrapped: "step" (the whole step), "parts" (the
    forward pass with the loss; the backward pass; the update), "kernels" (each of the backend's
    kernels, as the layers call them) and "cuda" (the CUDA kernels inside them: the product,
    im2col, col2im, the pooling, the direct convolution's)."""
    from tinynet.kernels import cupy_gpu
    registry = backend.kernels()
    leaves = ("matmul", "im2col", "col2im", "maxpool_forward", "maxpool_backward")
    result = {}
    for name in ("step", "parts", "kernels", "cuda"):
        timer, undo = OpTimer(cp, spin_ms=20.0 if name in ("step", "parts") else 3.0), []

        def patch(owner, attr, label):
            undo.append((owner, attr, owner.__dict__.get(attr)))
            setattr(owner, attr, timer.wrap(label, getattr(owner, attr)))
        run = timer.wrap("whole step", static.run) if name == "step" else static.run
        if name == "parts":
            patch(training, "loss_and_gradient", "forward and loss")
            patch(model.graph, "backward", "backward")
            patch(model.optimizer, "apply_flat", "update")
        elif name != "step":
            for kernel in list(vars(registry)):
                if name == "kernels" or kernel in leaves:
                    patch(registry, kernel, kernel)
            if name == "cuda":
                for leaf in leaves:
                    patch(cupy_gpu, leaf, leaf)
                patch(cupy_gpu, "_launch", lambda kernel, *rest: kernel)  # the direct convolution's
        try:
            for step in range(steps + 2):
                timer.step = step
                run()
        finally:
            for owner, attr, before in reversed(undo):
                if before is None:
                    delattr(owner, attr)  # (a method wrapped on the instance)
                else:
                    setattr(owner, attr, before)
        result[name] = timer.per_step()
        result[name + "_late_calls"] = timer.late
    return result


def profile_products(cp, cupy_gpu):
    rows = []
    for m, k, n, a_t, b_t in PRODUCTS:
        g = np.random.default_rng(m + k + n)
        a = cp.asarray(g.standard_normal((k, m) if a_t else (m, k)), dtype=np.float32)
        b = cp.asarray(g.standard_normal((n, k) if b_t else (k, n)), dtype=np.float32)
        a, b = (a.T if a_t else a), (b.T if b_t else b)
        shape = f"{m}x{k} @ {k}x{n}" + (" (a.T)" if a_t else "") + (" (b.T)" if b_t else "")
        rows.append({"shape": shape,
                     "tinynet_us": 1e3 * gpu_ms(cp, lambda: cupy_gpu.matmul(a, b), 50),
                     "cublas_us": 1e3 * gpu_ms(cp, lambda: a @ b, 50)})
    return rows


def main():
    import cupy as cp
    backend.set_backend("cupy")
    from tinynet.kernels import cupy_gpu
    result = {"gpu": cp.cuda.runtime.getDeviceProperties(0)["name"].decode(),
              "cupy": cp.__version__, "models": {}}
    for name, (build, kind) in MODELS.items():
        result["models"][name] = profile_model(cp, build, SHAPES[kind])
        print(name, {k: round(v, 3) if isinstance(v, float) else v
                     for k, v in result["models"][name].items()}, flush=True)
    result["products"] = profile_products(cp, cupy_gpu)
    for row in result["products"]:
        print(f"{row['shape']:32s} tinynet {row['tinynet_us']:8.1f} us   "
              f"cuBLAS {row['cublas_us']:8.1f} us")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
