"""One measurement in a fresh process: ``python -m benchmarks.worker '<json spec>'``.

Each measurement runs in its own process so that peak memory (``ru_maxrss``), numba's compile or
cache-loading time and the backend's state belong to that measurement alone. The result is printed
as one line ``RESULT {json}`` on stdout.

Tasks (``spec["task"]``):

* ``epochs``      train ``model`` on ``n`` images for 1 + ``repeats`` epochs (one ``fit`` call,
                  each epoch timed by a callback, as Keras's numbers are), then time ``predict`` on
                  the 10,000 test images.
* ``memory``      load all of MNIST as the model's input, then ``fit`` on all of it, stopping after
                  ``batches`` batches: the peak resident memory of training on the full data.
* ``kernels``     time each kernel (conv forward/backward, max-pool forward/backward, dense, and
                  conv + ReLU + max-pool as the models run it) at the report models' shapes, batch
                  128, float32: every kernel in turn, round after round, the median of the rounds
                  (each round: the median call, or the mean with ``"statistic": "mean"``).
* ``scaling``     seconds per epoch for several training-set sizes.
* ``batch_sweep`` training and inference throughput for several batch sizes.
* ``keras_epochs`` / ``torch_epochs``  the same measurement as ``epochs`` for the same model built
                  in Keras (``tests/keras_reference/keras_models.py``) or PyTorch
                  (``benchmarks/torch_models.py``), on the same inputs; run by any Python that has
                  the framework and NumPy (this checkout is on its path).
* ``sgemm``       NumPy's float32 matrix product (``a @ b``, BLAS sgemm) in GFLOP/s at the
                  convolutions' im2col shapes and at square sizes of the same work, in a process
                  that has not imported tinynet (BLAS with its own thread settings).

Every epoch measurement warms up first with one short ``fit`` on ``4 * batch`` images plus as many
as the last partial batch of the timed epochs holds (96 for 60,000 images at batch 128), so that
nothing is compiled or traced inside a timed epoch (Keras traces its step again for the smaller
last batch), then times ``repeats`` epochs of one ``fit`` call, each by a callback.
"""
import json
import sys
import time

import numpy as np

from . import common


def epoch_timer(base=None):
    """A callback recording the wall and CPU seconds of every epoch: a subclass of ``base``,
    tinynet's ``Callback`` by default, or Keras's (both call the same three hooks)."""
    if base is None:
        from tinynet.callbacks import Callback as base

    class EpochTimer(base):
        def on_train_begin(self, logs=None):
            self.wall, self.cpu = [], []

        def on_epoch_begin(self, epoch, logs=None):
            self._t = (time.perf_counter(), time.process_time())

        def on_epoch_end(self, epoch, logs=None):
            self.wall.append(time.perf_counter() - self._t[0])
            self.cpu.append(time.process_time() - self._t[1])

    return EpochTimer()


class _StopAfter:
    def __new__(cls, batches):
        from tinynet.callbacks import Callback

        class StopAfter(Callback):
            def on_batch_end(self, batch, logs=None):
                if batch + 1 >= batches:
                    self.model.stop_training = True

        return StopAfter()


def _setup(spec):
    t = time.perf_counter()
    from tinynet import backend
    backend.set_backend(spec["backend"])
    spec["_import_s"] = time.perf_counter() - t  # importing tinynet, numba and the kernels
    backend.set_floatx("float32")
    backend.set_seed(0)
    return backend


def _data(spec, n=None, test=False):
    (x, y), (xt, yt) = common.load_mnist(common.data_dir(spec.get("data")))
    n = len(x) if n is None else min(int(n), len(x))
    xin, note = common.model_inputs(spec["model"], x[:n])
    out = {"x": xin, "y": common.one_hot(y[:n]), "labels": y[:n].astype(np.int64), "note": note}
    if test:
        out["xt"], _ = common.model_inputs(spec["model"], xt)
    return out


def warmup_size(n, batch):
    """Images of the warm-up fit: four full batches and one as large as the timed epochs' last,
    partial batch (none when ``batch`` divides ``n``)."""
    return min(n, 4 * batch + n % batch)


def _compiled(model, optimizer="rmsprop"):
    from tinynet import optimizers
    model.compile(optimizers.RMSprop(), "categorical_crossentropy", ["accuracy"])
    return model


def task_epochs(spec):
    backend = _setup(spec)
    t0 = time.perf_counter()
    d = _data(spec, spec["n"], test=spec.get("inference", True))
    load_s = time.perf_counter() - t0
    model = _compiled(common.build(spec["model"]))
    # the first training step of a fresh process pays for loading (or compiling) the numba
    # kernels and starting the thread pool; the second step is an ordinary one
    steps = []
    for _ in range(3):
        t = time.perf_counter()
        model.train_on_batch(d["x"][:spec.get("batch", 128)], d["y"][:spec.get("batch", 128)])
        steps.append(time.perf_counter() - t)
    model = _compiled(common.build(spec["model"]))
    batch = spec.get("batch", 128)
    n = len(d["x"])
    w = warmup_size(n, batch)
    t = time.perf_counter()
    model.fit(d["x"][:w], d["y"][:w], batch_size=batch, epochs=1, verbose=0, seed=0)
    warmup_s = time.perf_counter() - t
    timer = epoch_timer()
    repeats = int(spec.get("repeats", 3))
    model.fit(d["x"], d["y"], batch_size=batch, epochs=repeats, verbose=0, callbacks=[timer], seed=0)
    res = {"n": n, "batch": batch, "warmup_images": w, "warmup_s": warmup_s,
           "epoch_s": timer.wall, "epoch_cpu_s": timer.cpu, "data_s": load_s,
           "note": d["note"], "backend": backend.get_backend(), "import_s": spec["_import_s"],
           "first_steps_s": steps}
    if spec.get("inference", True):
        xt = d["xt"]
        model.predict(xt[:1024], batch_size=128)
        times = []
        for _ in range(3):
            t = time.perf_counter()
            model.predict(xt, batch_size=128)
            times.append(time.perf_counter() - t)
        res["inference_images_per_s"] = len(xt) / common.median(times)
    res["max_rss_mb"] = common.max_rss_mb()
    return res


def task_memory(spec):
    _setup(spec)
    rss_start = common.current_rss_mb()
    d = _data(spec, None)
    model = _compiled(common.build(spec["model"]))
    rss_data = common.current_rss_mb()
    model.fit(d["x"], d["y"], batch_size=128, epochs=1, verbose=0, seed=0,
              callbacks=[_StopAfter(int(spec.get("batches", 40)))])
    return {"n": len(d["x"]), "rss_after_imports_mb": rss_start, "rss_with_data_mb": rss_data,
            "max_rss_mb": common.max_rss_mb(), "batches": int(spec.get("batches", 40))}


def _call_ms(fn, repeats, min_time=0.2, warm_up=True, statistic="median"):
    """Milliseconds one call of ``fn`` takes, over at least ``repeats`` calls and ``min_time``
    seconds: their median (a call slowed by another process is left out), or with ``statistic
    = "mean"`` the calls' total time over their number: the rate a stream of calls keeps, which
    is what the loaded measurements want (under load, the calls the scheduler preempts are the
    effect measured: measured here, NumPy's one-thread sgemm beside two busy loops, median 65,
    mean 43 GFLOP/s). A median stops after ``20 * repeats`` calls; a mean runs the whole
    ``min_time``: a few milliseconds of calls fall between two of the scheduler's time slices or
    not, by luck (measured here beside two busy loops: one-thread sgemm over 12 ms windows,
    medians of 127-141 GFLOP/s, as fast as alone; over 0.5 s, 98-109)."""
    if statistic not in ("median", "mean"):
        raise ValueError(f"statistic must be 'median' or 'mean', got {statistic!r}")
    if warm_up:
        fn()  # (and compilation)
    times = []
    t_end = time.perf_counter() + min_time
    most = 20 * repeats if statistic == "median" else float("inf")
    while len(times) < repeats or (time.perf_counter() < t_end and len(times) < most):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * (common.median(times) if statistic == "median" else sum(times) / len(times))


# the convolution and pooling layers of the report's CNNs: (name, H, C, F, k)
CONV_SHAPES = [("cnn_digits l1", 28, 1, 9, 5), ("cnn_digits l2", 14, 9, 9, 5),
               ("cnn_digits l3", 7, 9, 16, 3), ("cnn_fashion_3 l1", 28, 1, 9, 7),
               ("cnn_fashion_3 l2", 14, 9, 9, 5), ("cnn_fashion_3 l2_2", 14, 9, 9, 3),
               ("cnn_fashion_3 l3", 7, 9, 18, 3)]
POOL_SHAPES = [("pool 28x28x9", 28, 9), ("pool 14x14x9", 14, 9), ("pool 7x7x16", 7, 16)]
# the convolutions followed by MaxPooling2D(2) in the models, which the graph runs with their
# pooling as one kernel (conv2d_maxpool_forward / backward)
POOLED_CONVS = ("cnn_digits l1", "cnn_digits l2", "cnn_digits l3", "cnn_fashion_3 l1",
                "cnn_fashion_3 l3")
# the end of the residual block, pool(relu(conv(x)) + r), which the graph runs as one step
# (conv2d_add_maxpool_forward / backward)
RESIDUAL_CONVS = ("cnn_fashion_3 l2_2",)
DENSE_SHAPES = [("dense 784->256", 784, 256), ("dense 392->256", 392, 256), ("dense 144->25", 144, 25)]


def task_kernels(spec):
    """Every kernel timed in ``rounds`` rounds (each round a median of a few calls of every kernel
    in turn; the figure: the median of the rounds), so that a slow spell of the shared machine
    falls in one round of many kernels rather than in every call of one."""
    from functools import partial

    backend = _setup(spec)
    xp, K = backend.xp(), backend.kernels()
    sync = (lambda: xp.cuda.Stream.null.synchronize()) if backend.get_backend() == "cupy" else (lambda: None)
    rounds = int(spec.get("rounds", 5))
    repeats = max(3, int(spec.get("repeats", 7)) // 2)
    statistic = spec.get("statistic", "median")
    batch = int(spec.get("batch", 128))
    r = np.random.default_rng(0)
    rows, measured = [], []

    def add(kernel, shape, fn, flops=None):
        row = {"kernel": kernel, "shape": shape}
        rows.append(row)
        measured.append((row, fn, flops))

    for name, h, c, f, k in CONV_SHAPES:
        x = xp.asarray(r.random((batch, h, h, c), dtype=np.float32))
        w = xp.asarray(r.standard_normal((k, k, c, f)).astype(np.float32) * 0.1)
        b = xp.asarray(np.zeros(f, np.float32))
        p = (k - 1) // 2
        pads = (p, k - 1 - p, p, k - 1 - p)
        y, saved = K.conv2d_forward(x, w, b, (1, 1), pads, relu=True)
        dy = xp.asarray(r.standard_normal(y.shape).astype(np.float32))
        flops = 2 * batch * h * h * f * k * k * c
        add("conv forward (+relu)", name, partial(K.conv2d_forward, x, w, b, (1, 1), pads,
                                                  relu=True), flops)
        add("conv backward (dx, dw, db)", name, partial(K.conv2d_backward, dy, saved, w, (1, 1),
                                                        pads, relu_output=y), 2 * flops)
        if name in POOLED_CONVS:  # the same convolution with its ReLU and 2x2 max pooling
            yp, saved = K.conv2d_maxpool_forward(x, w, b, (1, 1), pads, (2, 2), relu=True)
            dyp = xp.asarray(r.standard_normal(yp.shape).astype(np.float32))
            add("conv + relu + max-pool forward", name,
                partial(K.conv2d_maxpool_forward, x, w, b, (1, 1), pads, (2, 2), relu=True), flops)
            add("conv + relu + max-pool backward (dx, dw, db)", name,
                partial(K.conv2d_maxpool_backward, dyp, saved, w, (1, 1), pads, (2, 2), relu=True),
                2 * flops)
        if name in RESIDUAL_CONVS:  # with the skip connection added before the pooling
            res = xp.asarray(r.random(y.shape, dtype=np.float32))
            yp, saved = K.conv2d_add_maxpool_forward(x, w, b, (1, 1), pads, (2, 2), res,
                                                     relu=True)
            dyp = xp.asarray(r.standard_normal(yp.shape).astype(np.float32))
            add("conv + relu + add + max-pool forward", name,
                partial(K.conv2d_add_maxpool_forward, x, w, b, (1, 1), pads, (2, 2), res,
                        relu=True), flops)
            add("conv + relu + add + max-pool backward (dx, dw, db, dr)", name,
                partial(K.conv2d_add_maxpool_backward, dyp, saved, w, (1, 1), pads, (2, 2),
                        relu=True), 2 * flops)
    for name, h, c in POOL_SHAPES:
        x = xp.asarray(r.random((batch, h, h, c), dtype=np.float32))
        out, arg = K.maxpool_forward(x, 2, 2, 2, 2, (0, 0, 0, 0))
        dout = xp.asarray(r.random(out.shape, dtype=np.float32))
        add("max-pool forward", name, partial(K.maxpool_forward, x, 2, 2, 2, 2, (0, 0, 0, 0)))
        add("max-pool backward", name,
            partial(K.maxpool_backward, dout, arg, x.shape, 2, 2, 2, 2, (0, 0, 0, 0)))
    from tinynet import layers
    for name, n_in, n_out in DENSE_SHAPES:
        layer = layers.Dense(n_out, activation="relu")
        x = xp.asarray(r.random((batch, n_in), dtype=np.float32))
        y = layer.forward(x, training=True)
        dy = xp.asarray(r.random(y.shape, dtype=np.float32))
        add("dense forward (+relu)", name, partial(layer.forward, x, training=True))
        add("dense backward", name, partial(layer.backward, dy))

    def synced(fn):
        def run():
            fn()
            sync()
        return run

    per_round = [[] for _ in measured]
    window = 0.2 / rounds  # seconds of calls each kernel is timed over, at least, each round
    for rnd in range(rounds):
        for times, (row, fn, _) in zip(per_round, measured):
            times.append(_call_ms(synced(fn), repeats, min_time=window, warm_up=rnd == 0,
                                  statistic=statistic))
    for times, (row, _, flops) in zip(per_round, measured):
        row["ms"] = common.median(times)
        row["rounds_ms"] = times
        if flops:
            row["gflops"] = flops / row["ms"] / 1e6
    return {"rows": rows, "batch": batch, "rounds": rounds, "statistic": statistic,
            **({"mean_over_s": window} if statistic == "mean" else {})}


def task_scaling(spec):
    _setup(spec)
    d = _data(spec, max(spec["sizes"]))
    model = _compiled(common.build(spec["model"]))
    model.fit(d["x"][:1280], d["y"][:1280], batch_size=128, epochs=1, verbose=0, seed=0)  # warm-up
    out = []
    for n in spec["sizes"]:
        timer = epoch_timer()
        model.fit(d["x"][:n], d["y"][:n], batch_size=128, epochs=1, verbose=0, callbacks=[timer], seed=0)
        out.append({"n": n, "epoch_s": timer.wall[0], "epoch_cpu_s": timer.cpu[0]})
    return {"points": out}


def task_batch_sweep(spec):
    _setup(spec)
    d = _data(spec, spec["n"], test=True)
    out = []
    for bs in spec["batch_sizes"]:
        model = _compiled(common.build(spec["model"]))
        model.fit(d["x"][:2 * bs], d["y"][:2 * bs], batch_size=bs, epochs=1, verbose=0, seed=0)
        timer = epoch_timer()
        model.fit(d["x"], d["y"], batch_size=bs, epochs=1, verbose=0, callbacks=[timer], seed=0)
        xt = d["xt"][:spec["n"]]
        model.predict(xt[:bs], batch_size=bs)
        t = time.perf_counter()
        model.predict(xt, batch_size=bs)
        infer = time.perf_counter() - t
        out.append({"batch": bs, "train_images_per_s": len(d["x"]) / timer.wall[0],
                    "inference_images_per_s": len(xt) / infer})
    return {"points": out, "n": len(d["x"])}


def _onednn_on():
    """Whether this TensorFlow process runs its oneDNN kernels (None if it cannot be read)."""
    try:
        from tensorflow.python.util import _pywrap_util_port
        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return None


def task_keras_epochs(spec):
    """Keras (3, TensorFlow CPU) on the same inputs: the model of tests/keras_reference/keras_models.py,
    RMSprop with Keras's defaults, categorical cross-entropy on one-hot labels, as the report."""
    import os
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    t = time.perf_counter()
    import keras
    import tensorflow as tf
    sys.path.insert(0, str(common.ROOT / "tests" / "keras_reference"))
    from keras_models import KERAS_BUILDERS
    import_s = time.perf_counter() - t
    keras.config.set_floatx("float32")
    keras.utils.set_random_seed(0)
    d = _data(spec, spec["n"], test=spec.get("inference", True))
    model = KERAS_BUILDERS[spec["model"]]()
    model.compile(optimizer=keras.optimizers.RMSprop(), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    batch = spec.get("batch", 128)
    n = len(d["x"])
    w = warmup_size(n, batch)
    t = time.perf_counter()
    model.fit(d["x"][:w], d["y"][:w], batch_size=batch, epochs=1, verbose=0)
    warmup_s = time.perf_counter() - t

    timer = epoch_timer(keras.callbacks.Callback)
    hist = model.fit(d["x"], d["y"], batch_size=batch, epochs=int(spec.get("repeats", 3)),
                     verbose=0, callbacks=[timer])
    res = {"n": n, "batch": batch, "warmup_images": w, "warmup_s": warmup_s, "epoch_s": timer.wall,
           "epoch_cpu_s": timer.cpu, "note": d["note"], "import_s": import_s,
           "params": int(model.count_params()), "final_loss": float(hist.history["loss"][-1]),
           "versions": {"keras": keras.__version__, "tensorflow": tf.__version__,
                        "numpy": np.__version__, "onednn": _onednn_on()}}
    if spec.get("inference", True):
        xt = d["xt"]
        model.predict(xt, batch_size=batch, verbose=0)
        times = []
        for _ in range(3):
            t = time.perf_counter()
            model.predict(xt, batch_size=batch, verbose=0)
            times.append(time.perf_counter() - t)
        res["inference_images_per_s"] = len(xt) / common.median(times)
    res["max_rss_mb"] = common.max_rss_mb()
    return res


def task_torch_epochs(spec):
    """PyTorch (CPU) on the same inputs: benchmarks/torch_models.py, NCHW, logits with
    CrossEntropyLoss on integer labels, RMSprop with Keras's defaults (see torch_models.rmsprop),
    a shuffled epoch of ``batch``-sized slices as Keras's and tinynet's ``fit`` do, the running
    loss and accuracy kept as Keras's progress does."""
    t = time.perf_counter()
    import torch
    from . import torch_models
    import_s = time.perf_counter() - t
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    torch.manual_seed(0)
    d = _data(spec, spec["n"], test=spec.get("inference", True))

    def tensor(a):
        x = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
        return x.permute(0, 3, 1, 2).contiguous() if x.dim() == 4 else x  # NHWC -> NCHW

    x, y = tensor(d["x"]), torch.from_numpy(d["labels"])
    model = torch_models.build(spec["model"])
    opt = torch_models.rmsprop(model.parameters())
    loss_fn = torch.nn.CrossEntropyLoss()
    batch = spec.get("batch", 128)
    gen = torch.Generator().manual_seed(0)

    def epoch(x, y):
        model.train()
        n = len(x)
        order = torch.randperm(n, generator=gen)
        total, correct = torch.zeros(()), torch.zeros((), dtype=torch.int64)
        for i in range(0, n, batch):
            idx = order[i:i + batch]
            xb, yb = x[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            out = model(xb)
            loss = loss_fn(out, yb)
            loss.backward()
            opt.step()
            with torch.no_grad():
                total += loss.detach() * len(idx)
                correct += (out.argmax(1) == yb).sum()
        return float(total) / n

    n = len(x)
    w = warmup_size(n, batch)
    t = time.perf_counter()
    epoch(x[:w], y[:w])
    warmup_s = time.perf_counter() - t
    wall, cpu = [], []
    for _ in range(int(spec.get("repeats", 3))):
        t = (time.perf_counter(), time.process_time())
        loss = epoch(x, y)
        wall.append(time.perf_counter() - t[0])
        cpu.append(time.process_time() - t[1])
    res = {"n": n, "batch": batch, "warmup_images": w, "warmup_s": warmup_s, "epoch_s": wall,
           "epoch_cpu_s": cpu, "note": d["note"], "import_s": import_s,
           "params": torch_models.count_params(model), "final_loss": loss,
           "threads": torch.get_num_threads(),
           "versions": {"torch": torch.__version__, "numpy": np.__version__}}
    if spec.get("inference", True):
        xt = tensor(d["xt"])
        model.eval()

        def predict():
            with torch.inference_mode():
                return [model(xt[i:i + batch]) for i in range(0, len(xt), batch)]

        predict()
        times = []
        for _ in range(3):
            t = time.perf_counter()
            predict()
            times.append(time.perf_counter() - t)
        res["inference_images_per_s"] = len(xt) / common.median(times)
    res["max_rss_mb"] = common.max_rss_mb()
    return res


def sgemm_shapes(batch=128):
    """(name, m, k, n) of the products compared with the convolution kernels: for each convolution
    its im2col product (batch*H*W x k*k*C times k*k*C x F, the forward pass's work) and a square
    product of the same number of FLOPs; and one large square product (BLAS's best case)."""
    out, seen = [], set()
    for name, h, c, f, k in CONV_SHAPES:
        m, kk = batch * h * h, k * k * c
        out.append((f"{name} im2col", m, kk, f))
        side = max(16, int(round((m * kk * f) ** (1 / 3))))
        if side not in seen:
            seen.add(side)
            out.append((f"square {side} (as {name})", side, side, side))
    out.append(("square 1024", 1024, 1024, 1024))
    return out


def task_sgemm(spec):
    """NumPy's float32 matmul (BLAS sgemm) GFLOP/s; no tinynet import, so BLAS keeps the thread
    count it starts with."""
    r = np.random.default_rng(0)
    rows, window = [], 0.2  # seconds of calls each shape is timed over, at least
    statistic = spec.get("statistic", "median")
    for name, m, k, n in sgemm_shapes(int(spec.get("batch", 128))):
        a = r.random((m, k), dtype=np.float32)
        b = r.random((k, n), dtype=np.float32)
        ms = _call_ms(lambda: a @ b, int(spec.get("repeats", 7)), min_time=window,
                      statistic=statistic)
        rows.append({"kernel": "numpy float32 matmul", "shape": name, "m": m, "k": k, "n": n,
                     "ms": ms, "gflops": 2 * m * k * n / ms / 1e6})
    return {"rows": rows, "numpy": np.__version__, "statistic": statistic,
            **({"mean_over_s": window} if statistic == "mean" else {})}


TASKS = {"epochs": task_epochs, "keras_epochs": task_keras_epochs, "torch_epochs": task_torch_epochs,
         "sgemm": task_sgemm, "memory": task_memory, "kernels": task_kernels,
         "scaling": task_scaling, "batch_sweep": task_batch_sweep}


def main(argv=None):
    import os
    spec = json.loads((argv or sys.argv[1:])[0])
    load = os.getloadavg()[0]
    result = TASKS[spec["task"]](spec)
    result["load_1min"] = [round(load, 2), round(os.getloadavg()[0], 2)]
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
