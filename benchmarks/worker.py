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
* ``kernels``     time each kernel (conv forward/backward, max-pool forward/backward, dense) at the
                  report models' shapes, batch 128, float32.
* ``scaling``     seconds per epoch for several training-set sizes.
* ``batch_sweep`` training and inference throughput for several batch sizes.
"""
import json
import sys
import time

import numpy as np

from . import common


class _EpochTimer:
    """A tinynet callback recording wall and CPU seconds of every epoch."""

    def __new__(cls):
        from tinynet.callbacks import Callback

        class EpochTimer(Callback):
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
    out = {"x": xin, "y": common.one_hot(y[:n]), "note": note}
    if test:
        out["xt"], _ = common.model_inputs(spec["model"], xt)
    return out


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
    timer = _EpochTimer()
    repeats = int(spec.get("repeats", 3))
    model.fit(d["x"], d["y"], batch_size=spec.get("batch", 128), epochs=1 + repeats, verbose=0,
              callbacks=[timer], seed=0)
    n = len(d["x"])
    res = {"n": n, "batch": spec.get("batch", 128), "first_epoch_s": timer.wall[0],
           "epoch_s": timer.wall[1:], "epoch_cpu_s": timer.cpu[1:], "data_s": load_s,
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


def _median_ms(fn, repeats, min_time=0.2):
    fn()  # warm-up (and compilation)
    times = []
    t_end = time.perf_counter() + min_time
    while len(times) < repeats or (time.perf_counter() < t_end and len(times) < 20 * repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * common.median(times)


# the convolution and pooling layers of the report's CNNs: (name, H, C, F, k)
CONV_SHAPES = [("cnn_digits l1", 28, 1, 9, 5), ("cnn_digits l2", 14, 9, 9, 5),
               ("cnn_digits l3", 7, 9, 16, 3), ("cnn_fashion_3 l1", 28, 1, 9, 7),
               ("cnn_fashion_3 l2", 14, 9, 9, 5), ("cnn_fashion_3 l2_2", 14, 9, 9, 3),
               ("cnn_fashion_3 l3", 7, 9, 18, 3)]
POOL_SHAPES = [("pool 28x28x9", 28, 9), ("pool 14x14x9", 14, 9), ("pool 7x7x16", 7, 16)]
DENSE_SHAPES = [("dense 784->256", 784, 256), ("dense 392->256", 392, 256), ("dense 144->25", 144, 25)]


def task_kernels(spec):
    backend = _setup(spec)
    xp, K = backend.xp(), backend.kernels()
    sync = (lambda: xp.cuda.Stream.null.synchronize()) if backend.get_backend() == "cupy" else (lambda: None)
    repeats = int(spec.get("repeats", 7))
    batch = int(spec.get("batch", 128))
    r = np.random.default_rng(0)
    rows = []

    def timed(fn):
        def run():
            fn()
            sync()
        return _median_ms(run, repeats)

    for name, h, c, f, k in CONV_SHAPES:
        x = xp.asarray(r.random((batch, h, h, c), dtype=np.float32))
        w = xp.asarray(r.standard_normal((k, k, c, f)).astype(np.float32) * 0.1)
        b = xp.asarray(np.zeros(f, np.float32))
        p = (k - 1) // 2
        pads = (p, k - 1 - p, p, k - 1 - p)
        y, saved = K.conv2d_forward(x, w, b, (1, 1), pads, relu=True)
        dy = xp.asarray(r.standard_normal(y.shape).astype(np.float32))
        flops = 2 * batch * h * h * f * k * k * c
        fwd = timed(lambda: K.conv2d_forward(x, w, b, (1, 1), pads, relu=True))
        bwd = timed(lambda: K.conv2d_backward(dy, saved, w, (1, 1), pads, relu_output=y))
        rows.append({"kernel": "conv forward (+relu)", "shape": name, "ms": fwd,
                     "gflops": flops / fwd / 1e6})
        rows.append({"kernel": "conv backward (dx, dw, db)", "shape": name, "ms": bwd,
                     "gflops": 2 * flops / bwd / 1e6})
    for name, h, c in POOL_SHAPES:
        x = xp.asarray(r.random((batch, h, h, c), dtype=np.float32))
        out, arg = K.maxpool_forward(x, 2, 2, 2, 2, (0, 0, 0, 0))
        dout = xp.asarray(r.random(out.shape, dtype=np.float32))
        rows.append({"kernel": "max-pool forward", "shape": name,
                     "ms": timed(lambda: K.maxpool_forward(x, 2, 2, 2, 2, (0, 0, 0, 0)))})
        rows.append({"kernel": "max-pool backward", "shape": name,
                     "ms": timed(lambda: K.maxpool_backward(dout, arg, x.shape, 2, 2, 2, 2, (0, 0, 0, 0)))})
    from tinynet import layers
    for name, n_in, n_out in DENSE_SHAPES:
        layer = layers.Dense(n_out, activation="relu")
        x = xp.asarray(r.random((batch, n_in), dtype=np.float32))
        y = layer.forward(x, training=True)
        dy = xp.asarray(r.random(y.shape, dtype=np.float32))
        rows.append({"kernel": "dense forward (+relu)", "shape": name,
                     "ms": timed(lambda: layer.forward(x, training=True))})
        rows.append({"kernel": "dense backward", "shape": name, "ms": timed(lambda: layer.backward(dy))})
    return {"rows": rows, "batch": batch}


def task_scaling(spec):
    _setup(spec)
    d = _data(spec, max(spec["sizes"]))
    model = _compiled(common.build(spec["model"]))
    model.fit(d["x"][:1280], d["y"][:1280], batch_size=128, epochs=1, verbose=0, seed=0)  # warm-up
    out = []
    for n in spec["sizes"]:
        timer = _EpochTimer()
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
        timer = _EpochTimer()
        model.fit(d["x"], d["y"], batch_size=bs, epochs=1, verbose=0, callbacks=[timer], seed=0)
        xt = d["xt"][:spec["n"]]
        model.predict(xt[:bs], batch_size=bs)
        t = time.perf_counter()
        model.predict(xt, batch_size=bs)
        infer = time.perf_counter() - t
        out.append({"batch": bs, "train_images_per_s": len(d["x"]) / timer.wall[0],
                    "inference_images_per_s": len(xt) / infer})
    return {"points": out, "n": len(d["x"])}


TASKS = {"epochs": task_epochs, "memory": task_memory, "kernels": task_kernels,
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
