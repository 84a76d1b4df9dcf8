"""Shared helpers of the benchmarks: data, models, timing. The machine is described by
``tinynet.sysinfo`` and the data read by ``tinynet.datasets``, as everywhere else."""
import os
import resource
import statistics
import subprocess
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
# where ``python -m benchmarks`` writes by default: a folder of its own (git-ignored), so that a
# first run never overwrites the committed benchmarks/RESULTS.md; ``--out benchmarks`` updates that
DEFAULT_OUT = ROOT / "benchmarks_out"


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


def scrub(text):
    """``text`` (an error message, a traceback) without the places of this machine it names: the
    checkout, the interpreter's prefix, the data folder, the temporary folder and the home folder
    become ``<checkout>``, ``<python>``, ``<data>``, ``<tmp>`` and ``~``."""
    import tempfile
    places = [(str(ROOT), "<checkout>"), (sys.prefix, "<python>"), (sys.base_prefix, "<python>"),
              (os.environ.get("TINYNET_DATA", ""), "<data>"), (tempfile.gettempdir(), "<tmp>"),
              (os.path.expanduser("~"), "~")]
    for place, name in sorted(places, key=lambda p: -len(p[0])):
        if place and len(place) > 1:
            text = text.replace(place, name)
    return text


def commit(root=ROOT):
    """The checkout's commit (short hash), with ``+ uncommitted changes`` when the code measured
    (tinynet/, benchmarks/*.py) differs from it; None outside a git checkout. The benchmark's
    own outputs (RESULTS.md, results.json, the plots) do not count: a run after another one not
    yet committed measures the same code."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=root, timeout=30)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "tinynet",
                                "benchmarks/*.py"],
                               capture_output=True, text=True, cwd=root, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return head.stdout.strip() + (" + uncommitted changes" if dirty else "")


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


def training_flops(name):
    """Floating-point operations of one training example of report model ``name`` (a
    multiply-add counts two), as a dict: ``forward``; ``weights`` (dL/dW, the same products as
    the forward pass); ``inputs`` (dL/dx of every Conv2D and Dense layer but the first weighted
    one, whose dL/dx training never needs: Keras, PyTorch and tinynet all skip it); ``total``;
    and ``grid``: the total as tinynet's numba kernels compute it. Its stride-1 convolutions run
    on grids that include padding positions whose results are thrown away
    (tinynet.kernels.numba_cpu._grid); the backward pass of a stride-1 convolution that a max
    pooling alone reads (run with it as one step, with the Add of a residual block between them
    where there is one) computes only the windows' winners: one
    position in ``ph*pw`` (at most: fewer where the ReLU is off, which depends on the data and
    is not counted; nor are the lanes its vector code pads each kernel row with, to whole
    vectors of 8 floats). Only Conv2D and Dense layers are counted: biases, activations, pooling, the loss
    and the optimizer's update (about 9 operations a weight a batch) add about 1% (the CNNs) to
    2% (the MLPs)."""
    from tinynet import layers
    from tinynet.kernels.numba_cpu import _grid
    from tinynet.layers.pooling import PooledConv

    model = build(name)
    pooled = {step.conv.name: step.pool for step in model.graph.steps()
              if isinstance(step, PooledConv)}
    forward = dx = grid_forward = grid_backward = 0
    first = True
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            (h, w, _), (oh, ow, f) = layer.input_shape, layer.output_shape
            kh, kw, c, _ = layer.kernel.shape
            macs = oh * ow * kh * kw * c * f
            hp, wp = _grid(h, w, kh, kw, layer.pads)
            grid = hp * wp * kh * kw * c * f if tuple(layer.strides) == (1, 1) else macs
            pool = pooled.get(layer.name)
            # a pooled convolution's backward: the winners of the (oh//ph) x (ow//pw) windows
            back = ((oh // pool.pool_size[0]) * (ow // pool.pool_size[1]) * kh * kw * c * f
                    if pool is not None and tuple(layer.strides) == (1, 1) else grid)
        elif isinstance(layer, layers.Dense):
            macs = grid = back = layer.kernel.size
        else:
            continue
        forward, grid_forward = forward + macs, grid_forward + grid
        grid_backward += back  # dL/dW
        if not first:
            dx, grid_backward = dx + macs, grid_backward + back  # dL/dx
        first = False
    return {"forward": 2 * forward, "weights": 2 * forward, "inputs": 2 * dx,
            "total": 2 * (2 * forward + dx), "grid": 2 * (grid_forward + grid_backward)}


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


# --- the conditions a figure was measured under -----------------------------------------------
_STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def cpu_times():
    """The machine's cumulative CPU seconds by state (all CPUs together) from the first line of
    ``/proc/stat``: user, nice, system, idle, iowait, irq, softirq, steal; ``{}`` where there is no
    /proc/stat. Steal is the time the hypervisor gave this machine's CPUs to other guests."""
    try:
        with open("/proc/stat") as f:
            values = f.readline().split()[1:1 + len(_STAT_FIELDS)]
    except OSError:
        return {}
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return {k: int(v) / tick for k, v in zip(_STAT_FIELDS, values)}


def conditions():
    """A snapshot taken before and after each measurement: load average and CPU times."""
    load = [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None
    return {"time": time.time(), "load": load, "cpu": cpu_times()}


def between(before, after):
    """What happened on the machine between two ``conditions()`` snapshots: the load averages at
    both ends, the cumulative steal seconds at both ends, and over the interval the percentage of
    all CPU time that was stolen and that was busy (by any process, the measured one included)."""
    out = {"load_before": before["load"], "load_after": after["load"],
           "seconds": round(after["time"] - before["time"], 2)}
    b, a = before.get("cpu") or {}, after.get("cpu") or {}
    if b and a:
        delta = {k: a[k] - b[k] for k in a}
        total = sum(delta.values())
        out["steal_s_before"] = round(b["steal"], 2)
        out["steal_s_after"] = round(a["steal"], 2)
        if total > 0:
            out["steal_pct"] = round(100 * delta["steal"] / total, 2)
            out["busy_pct"] = round(100 * (total - delta["idle"] - delta["iowait"]) / total, 1)
    return out


# --- load generator ---------------------------------------------------------------------------
BUSY_LOOP = "import time\nend = time.monotonic() + {seconds!r}\nwhile time.monotonic() < end:\n    pass\n"


def start_busy_loops(count, seconds):
    """Start ``count`` processes that each keep one CPU busy with a pure-Python ``while`` loop and
    stop by themselves after ``seconds`` (so that none outlives the benchmark, even if it is killed);
    ``stop_busy_loops`` ends them earlier. Returns the ``Popen`` objects."""
    code = BUSY_LOOP.format(seconds=float(seconds))
    return [subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(int(count))]


def stop_busy_loops(procs, timeout=5.0):
    """End the given busy loops (those still running) and reap them; returns how many were still
    running, i.e. whether the load lasted the whole measurement."""
    alive = [p for p in procs if p.poll() is None]
    for p in alive:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return len(alive)
