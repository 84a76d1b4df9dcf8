"""Seconds per training epoch of the report's models on the GPU (CuPy) and the CPU (numba), side by side.

Run on a machine with an NVIDIA GPU: ``python -m benchmarks.gpu_epochs [--epochs 3]``.
Real MNIST (60,000 images, batch 128, float32, RMSprop); one ``fit`` call, each epoch timed by a
callback; the median of the epochs after the first (which pays CUDA/numba compilation and the
CUDA graph's recording). Backends: ``cupy`` (each step replayed as a CUDA graph,
``tinynet.replay``), ``cupy-eager`` (the same kernels launched one by one:
``TINYNET_CUDA_GRAPHS=0``) and ``numba`` (this machine's CPU). Then inference: images per second
of ``predict`` on the 10,000 test images, batch 1024. Prints one JSON document.
"""
import argparse
import json
import os
import statistics
import time
import warnings

from tinynet import backend, report_models, utils
from tinynet.callbacks import Callback
from tinynet.datasets import load_mnist

from . import common

MODELS = {"mlp_raw": (report_models.mlp_raw, "flat"), "cnn_digits": (report_models.cnn_digits, "img"),
          "cnn_fashion_3": (report_models.cnn_fashion_3, "img")}


class EpochTimer(Callback):
    """Wall time of each epoch, from its first batch to its end (the data is already prepared)."""

    def __init__(self):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):  # logs were read from the device: it has finished
        self.times.append(time.perf_counter() - self.start)


def _select(name):
    """Set the backend for ``name`` (``cupy-eager``: CuPy without the CUDA graphs)."""
    os.environ["TINYNET_CUDA_GRAPHS"] = "0" if name == "cupy-eager" else "1"
    backend.set_backend(name.split("-")[0])


def epoch_times(backend_name, build, x, y, epochs):
    _select(backend_name)
    backend.set_seed(0)
    model = build()
    model.compile("rmsprop", metrics=["accuracy"])
    timer = EpochTimer()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, batch_size=128, epochs=epochs + 1, verbose=0, callbacks=[timer])
    return {"warmup_s": timer.times[0], "median_s": statistics.median(timer.times[1:]),
            "runs_s": timer.times[1:], "last_epoch": {k: v[-1] for k, v in history.history.items()},
            "warnings": sorted({str(w.message)[:300] for w in caught})}, model


def inference(backend_name, model, x, repeats=5):
    """Images per second of ``model.predict(x, batch_size=1024)`` (median of ``repeats``, after
    one call that warms up)."""
    _select(backend_name)
    model.predict(x, batch_size=1024, verbose=0)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict(x, batch_size=1024, verbose=0)  # returns NumPy: the GPU has finished
        times.append(time.perf_counter() - start)
    result = {"images": int(x.shape[0]), "median_s": statistics.median(times),
              "images_per_s": x.shape[0] / statistics.median(times)}
    if backend.get_backend() == "cupy":  # the forward passes alone, the images on the GPU already
        import cupy
        xd = backend.asarray(x, dtype=model.dtype)
        times = []
        for _ in range(repeats + 1):
            cupy.cuda.Device().synchronize()
            start = time.perf_counter()
            for i in range(0, x.shape[0], 1024):
                model.graph.forward(xd[i:i + 1024])
            cupy.cuda.Device().synchronize()
            times.append(time.perf_counter() - start)
        result["forward_only_images_per_s"] = x.shape[0] / statistics.median(times[1:])
    return result


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--backends", default="cupy,cupy-eager,numba")
    p.add_argument("--models", default=",".join(MODELS))
    args = p.parse_args()
    (x_train, y_train), (x_test, _) = load_mnist()
    data = {"img": x_train[:, :, :, None] / 255.0, "flat": x_train.reshape(-1, 784) / 255.0}
    y = utils.to_categorical(y_train, 10)
    result = {"machine": common.machine(), "models": {}, "inference": {}}
    try:
        import cupy
        result["gpu"] = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
        result["cupy"] = cupy.__version__
    except Exception as e:
        result["gpu"] = f"none ({e})"
    for name in args.models.split(","):
        build, kind = MODELS[name]
        result["models"][name] = {}
        for b in args.backends.split(","):
            times, model = epoch_times(b, build, data[kind], y, args.epochs)
            result["models"][name][b] = times
            if name == "cnn_digits":
                result["inference"][b] = inference(b, model, x_test[:, :, :, None] / 255.0)
        print(name, json.dumps(result["models"][name]), flush=True)
    print("inference", json.dumps(result["inference"]), flush=True)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
