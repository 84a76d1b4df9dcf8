"""Seconds per training epoch of the report's models on the GPU (CuPy) and the CPU (numba), side by side.

Run on a machine with an NVIDIA GPU: ``python -m benchmarks.gpu_epochs [--epochs 3]``.
Real MNIST (60,000 images, batch 128, float32, RMSprop); one ``fit`` call, each epoch timed by a
callback; the median of the epochs after the first (which pays CUDA/numba compilation).
Prints one JSON document.
"""
import argparse
import json
import statistics
import time

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


def epoch_times(backend_name, build, x, y, epochs):
    backend.set_backend(backend_name)
    backend.set_seed(0)
    model = build()
    model.compile("rmsprop", metrics=["accuracy"])
    timer = EpochTimer()
    model.fit(x, y, batch_size=128, epochs=epochs + 1, verbose=0, callbacks=[timer])
    return {"warmup_s": timer.times[0], "median_s": statistics.median(timer.times[1:]),
            "runs_s": timer.times[1:]}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--backends", default="cupy,numba")
    args = p.parse_args()
    (x_train, y_train), _ = load_mnist()
    data = {"img": x_train[:, :, :, None] / 255.0, "flat": x_train.reshape(-1, 784) / 255.0}
    y = utils.to_categorical(y_train, 10)
    result = {"machine": common.machine(), "models": {}}
    try:
        import cupy
        result["gpu"] = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    except Exception as e:
        result["gpu"] = f"none ({e})"
    for name, (build, kind) in MODELS.items():
        result["models"][name] = {b: epoch_times(b, build, data[kind], y, args.epochs)
                                  for b in args.backends.split(",")}
        print(name, json.dumps(result["models"][name]), flush=True)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
