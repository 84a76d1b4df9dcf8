"""Shared helpers of the benchmarks: data, models, timing. The machine is described by
``tinynet.sysinfo`` and the data read by ``tinynet.datasets``, as everywhere else."""
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("mlp_raw", "mlp_features", "cnn_digits", "cnn_fashion_3")
# the names tests/keras_reference/keras_epoch_times.py uses for the same four models
KERAS_NAMES = {"mlp_raw": "mlp_raw", "mlp_features": "mlp_hog", "cnn_digits": "cnn_digits",
               "cnn_fashion_3": "cnn_fashion_residual"}
TRAIN_SIZE = 60_000


def data_dir(explicit=None):
    """The data folder by tinynet.datasets' rule: --data, else $TINYNET_DATA, else the user cache."""
    from tinynet import datasets
    return datasets.resolve_data_dir(explicit or None)


def load_mnist(folder):
    """((x_train, y_train), (x_test, y_test)) as uint8, checked by tinynet.datasets; never
    downloads during a measurement (a missing file is an error saying where to put it)."""
    from tinynet import datasets
    return datasets.load_mnist(folder, download=False)


def machine():
    """tinynet.sysinfo's description of the machine, as the committed results record it: the
    values of environment variables that name a folder (TINYNET_DATA, NUMBA_CACHE_DIR) are
    replaced by ``(a folder)``: where files lie on one machine is no property of its speed."""
    from tinynet import sysinfo

    info = sysinfo.machine()
    info["env"] = {k: ("(a folder)" if os.sep in v else v) for k, v in info["env"].items()}
    return info


def model_inputs(name, images):
    """The model's input for uint8 images (N, 28, 28): float32 pixels / 255, flat for the MLP,
    HOG features for mlp_features (tinynet.features; random 392-dim features if it is missing).
    Returns (array, note)."""
    if name == "mlp_raw":
        return (images.reshape(len(images), -1).astype(np.float32) / np.float32(255)), None
    if name == "mlp_features":
        try:
            from tinynet.features import hog_features
            return hog_features(images, progress=False), "HOG features (tinynet.features)"
        except Exception as e:  # noqa: BLE001
            r = np.random.default_rng(0)
            return (r.random((len(images), 392), dtype=np.float32),
                    f"random 392-dim features (tinynet.features unavailable: {e})")
    x = images.astype(np.float32)
    x /= np.float32(255)
    return x.reshape(len(images), 28, 28, 1), None


def build(name):
    from tinynet import report_models
    return getattr(report_models, name)()


def one_hot(labels):
    return np.eye(10, dtype=np.float32)[labels]


def median(values):
    return float(statistics.median(values))


def max_rss_mb():
    """Peak resident memory of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


class Timer:
    """Wall and CPU seconds of a block."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu
        return False


def log(*args):
    print(*args, file=sys.stderr, flush=True)
