"""Time Keras on the practical work's four models: seconds per training epoch and inference speed.

Run with a Python that has TensorFlow/Keras 3 (``pip install -e ".[keras]"``; scikit-image for
the HOG features)::

    python tests/keras_reference/keras_epoch_times.py [--data DIR] [--out FILE]

``--data`` is the folder holding ``mnist/``, found and read as ``tinynet.datasets`` does (the
argument, else ``$TINYNET_DATA``, else the user cache); the machine is described by
``tinynet.sysinfo`` (through ``benchmarks/common.py``). tinynet is imported from this checkout.

Settings as in the report: MNIST (60,000 training images), batch 128, RMSprop with Keras's
defaults, categorical cross-entropy, float32, ``verbose=0``. Each model trains one warm-up epoch
and then three timed epochs in the same ``fit`` call (a callback times each epoch); the median of
the three is reported. Inference: ``predict`` on the 10,000 test images at batch 128, one warm-up
call, then the median of three, as images per second.

The models (their parameter counts are checked against the report's ``model.summary()``):

* ``mlp_raw``       784 -> Dense 256 relu -> Dropout 0.25 -> Dense 10 softmax        203,530
* ``mlp_hog``       HOG (8 orientations, 4x4 pixels per cell, 1x1 cells per block; 392 features)
                    -> Dense 256 relu -> Dropout 0.25 -> Dense 10 softmax            103,178
* ``cnn_digits``    Conv 9@5x5, pool, Conv 9@5x5, pool, Conv 16@3x3, pool, Flatten,
                    Dense 25 relu, Dense 10 softmax                                    7,465
* ``cnn_fashion_residual`` (report's Fashion model 3): Conv 9@7x7, pool, Conv 9@5x5,
                    Conv 9@3x3, Add with the pooled input, pool, Conv 18@3x3, pool,
                    Dropout 0.3, Flatten, Dense 32 relu, Dense 10 softmax             10,244

Convolutions use ``padding="same"`` and relu; pooling is 2x2 ("valid"). The JSON printed and
written to ``benchmarks/keras_times.json`` holds the numbers, the machine and the versions.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
from keras_models import KERAS_BUILDERS  # noqa: E402  (beside this script)

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # this checkout's tinynet, also under a Python that lacks it
from tinynet import datasets  # noqa: E402
from benchmarks.common import machine as describe_machine  # noqa: E402  (tinynet.sysinfo's)

DEFAULT_OUT = ROOT / "benchmarks" / "keras_times.json"
BATCH = 128
EXPECTED_PARAMS = {"mlp_raw": 203_530, "mlp_hog": 103_178, "cnn_digits": 7_465,
                   "cnn_fashion_residual": 10_244}


def hog_features(images: np.ndarray) -> np.ndarray:
    from skimage.feature import hog

    return np.stack([
        hog(img, orientations=8, pixels_per_cell=(4, 4), cells_per_block=(1, 1))
        for img in images
    ]).astype("float32")


class EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._t0)


def time_model(model, x_train, y_train, x_test, timed_epochs=3):
    model.compile(optimizer=keras.optimizers.RMSprop(), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    timer = EpochTimer()
    hist = model.fit(x_train, y_train, batch_size=BATCH, epochs=1 + timed_epochs, verbose=0,
                     callbacks=[timer])
    epoch_times = timer.times[1:]
    model.predict(x_test, batch_size=BATCH, verbose=0)  # warm-up
    pred_times = []
    for _ in range(3):
        t0 = time.perf_counter()
        model.predict(x_test, batch_size=BATCH, verbose=0)
        pred_times.append(time.perf_counter() - t0)
    return {
        "params": int(model.count_params()),
        "epoch_seconds_median": statistics.median(epoch_times),
        "epoch_seconds": epoch_times,
        "epoch_seconds_min": min(epoch_times),
        "warmup_epoch_seconds": timer.times[0],
        "train_images_per_second": len(x_train) / statistics.median(epoch_times),
        "inference_images_per_second": len(x_test) / statistics.median(pred_times),
        "inference_seconds_10k": statistics.median(pred_times),
        "final_train_loss": float(hist.history["loss"][-1]),
        "final_train_accuracy": float(hist.history["accuracy"][-1]),
    }


def machine(load_before):
    """tinynet.sysinfo's description (as benchmarks/ records it), with the load average before
    and after the run and the devices TensorFlow sees."""
    info = describe_machine()
    info.pop("load_average", None)
    info["load_average_1_5_15_before"] = [round(v, 2) for v in load_before]
    info["load_average_1_5_15_after"] = [round(v, 2) for v in os.getloadavg()]
    info["tf_devices"] = [d.device_type for d in tf.config.list_logical_devices()]
    return info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None,
                    help="folder holding mnist/ (default: $TINYNET_DATA, else the user cache)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--random-hog", action="store_true",
                    help="use random 392-dim features instead of computing HOG (timing is the same)")
    ap.add_argument("--models", nargs="*", default=list(EXPECTED_PARAMS))
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up)")
    args = ap.parse_args(argv)
    load_before = os.getloadavg()

    keras.config.set_floatx("float32")
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = datasets.load_mnist(args.data)
    y_train_1h = np.eye(10, dtype="float32")[y_train]
    img_train = (x_train.astype("float32") / 255.0)[..., None]
    img_test = (x_test.astype("float32") / 255.0)[..., None]

    results = {}
    notes = {}
    for name in args.models:
        if name == "mlp_raw":
            model, xtr, xte = KERAS_BUILDERS["mlp_raw"](), img_train.reshape(-1, 784), img_test.reshape(-1, 784)
        elif name == "mlp_hog":
            t0 = time.perf_counter()
            if args.random_hog:
                rng = np.random.default_rng(0)
                xtr = rng.random((len(x_train), 392), dtype=np.float32)
                xte = rng.random((len(x_test), 392), dtype=np.float32)
                notes["mlp_hog"] = "random 392-dim features (--random-hog)"
            else:
                xtr, xte = hog_features(x_train), hog_features(x_test)
                notes["mlp_hog"] = (f"skimage HOG of all 70,000 images took "
                                    f"{time.perf_counter() - t0:.1f} s (not part of the epoch time)")
            assert xtr.shape[1] == 392, xtr.shape
            model = KERAS_BUILDERS["mlp_features"]()
        elif name == "cnn_digits":
            model, xtr, xte = KERAS_BUILDERS["cnn_digits"](), img_train, img_test
        elif name == "cnn_fashion_residual":
            model, xtr, xte = KERAS_BUILDERS["cnn_fashion_3"](), img_train, img_test
        else:
            raise SystemExit(f"unknown model {name!r}")
        if model.count_params() != EXPECTED_PARAMS[name]:
            raise SystemExit(f"{name}: {model.count_params()} parameters, the report has "
                             f"{EXPECTED_PARAMS[name]}")
        results[name] = time_model(model, xtr, y_train_1h, xte, args.epochs)
        print(f"{name}: {results[name]['epoch_seconds_median']:.2f} s/epoch", file=sys.stderr)

    report = {
        "what": "Keras seconds per training epoch (60,000 MNIST images, batch 128, RMSprop defaults, "
                f"categorical cross-entropy, float32, verbose=0; median of {args.epochs} epochs after "
                "1 warm-up) "
                "and inference throughput (predict on 10,000 images, batch 128, median of 3)",
        "batch_size": BATCH,
        "models": results,
        "notes": notes,
        "versions": {"keras": keras.__version__, "tensorflow": tf.__version__,
                     "numpy": np.__version__, "python": platform.python_version()},
        "machine": machine(load_before),
    }
    text = json.dumps(report, indent=2, sort_keys=True)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
