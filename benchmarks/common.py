"""Shared helpers of the benchmarks: data, models, timing, machine description."""
import gzip
import os
import platform
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
    """--data, else $TINYNET_DATA, else ../shared/data next to the repository."""
    if explicit:
        return Path(explicit)
    if os.environ.get("TINYNET_DATA"):
        return Path(os.environ["TINYNET_DATA"])
    return ROOT.parent / "shared" / "data"


def _read_idx(path):
    raw = gzip.open(path, "rb").read() if str(path).endswith(".gz") else Path(path).read_bytes()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_mnist(folder):
    """((x_train, y_train), (x_test, y_test)) as uint8, with tinynet.datasets when it is there."""
    try:
        from tinynet import datasets
        return datasets.load_mnist(folder, download=False)
    except Exception:  # datasets missing or refusing: read the IDX files directly
        d = Path(folder) / "mnist"
        return ((_read_idx(d / "train-images-idx3-ubyte.gz"), _read_idx(d / "train-labels-idx1-ubyte.gz")),
                (_read_idx(d / "t10k-images-idx3-ubyte.gz"), _read_idx(d / "t10k-labels-idx1-ubyte.gz")))


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


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_description():
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')}".strip()
    except Exception:  # noqa: BLE001
        return "unknown"


def machine():
    """What the numbers were measured on."""
    info = {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas_description(),
        "env": {k: v for k, v in sorted(os.environ.items())
                if k.startswith(("OPENBLAS_", "OMP_", "GOMP_", "NUMBA_", "MKL_", "TINYNET_"))},
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }
    try:
        import numba
        info["numba"] = numba.__version__
        info["numba_threads"] = numba.get_num_threads()
    except ImportError:
        info["numba"] = None
    return info


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
