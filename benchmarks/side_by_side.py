"""The report's four models trained in Keras and in tinynet, side by side, against the report.

Run with a Python that has TensorFlow/Keras 3 and tinynet installed (long: 20-40 minutes on two
cores; try ``--quick`` first; ``pip install -e ".[keras]"`` installs TensorFlow)::

    python benchmarks/side_by_side.py [--data DIR] [--seeds 0 1 2] [--quick]

``--data`` is the folder holding ``mnist/`` and ``fashion-mnist/`` (default, as in
``tinynet.datasets``: ``$TINYNET_DATA``, else the user cache).

For each model, with the report's hyper-parameters (RMSprop with Keras's defaults, batch 128,
10 epochs, categorical cross-entropy, shuffling every epoch, the report's dropout):

    mlp_raw        MNIST, 784 raw pixels / 255 -> Dense 256 relu -> Dropout 0.25 -> Dense 10 softmax
    mlp_hog        MNIST, HOG features (tinynet.features.hog_features: 8 orientations, 4x4-pixel
                   cells, 1x1 blocks; 392 features) -> the same MLP
    cnn_digits     MNIST, the report's digits CNN (25 hidden units)
    cnn_fashion_3  Fashion-MNIST, the report's residual CNN

each seed builds the tinynet model with ``backend.set_seed(seed)`` and copies it into Keras with
``tinynet.interop.to_keras``: both frameworks start from the same initial weights; each then draws
its own shuffling and dropout masks from its own seeded generator (``fit(seed=seed)`` in tinynet,
``keras.utils.set_random_seed(seed)`` in Keras). After training, both are evaluated on the
10,000 test images. Seconds per epoch are the median over epochs 2..N (epoch 1 includes numba's
and TensorFlow's compilation) of ``fit`` with ``verbose=0``, timed by a callback.

Writes ``benchmarks/side_by_side.json`` (every run: test loss and accuracy, per-epoch training
loss and time, load average) and ``benchmarks/side_by_side.md`` (the table, with the report's own
numbers). Results are written after every run; ``--resume`` skips the runs already in the JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import tinynet  # noqa: E402
from tinynet import backend, callbacks, optimizers, report_models, sysinfo  # noqa: E402
from tinynet.datasets import load_fashion_mnist, load_mnist  # noqa: E402
from tinynet.features import hog_features  # noqa: E402
from tinynet.interop import to_keras  # noqa: E402

HERE = Path(__file__).resolve().parent
MODELS = {
    "mlp_raw": ("MLP, raw pixels", "MNIST", report_models.mlp_raw),
    "mlp_hog": ("MLP, HOG features", "MNIST", report_models.mlp_features),
    "cnn_digits": ("CNN (25 hidden)", "MNIST", report_models.cnn_digits),
    "cnn_fashion_3": ("Residual CNN", "Fashion-MNIST", report_models.cnn_fashion_3),
}
# the practical work's report: test accuracy (%) and test loss
REPORT = {
    "mlp_raw": (98.39, 0.0662),
    "mlp_hog": (98.27, 0.0613),
    "cnn_digits": (98.67, 0.0465),
    "cnn_fashion_3": (90.27, 0.2731),
}
FRAMEWORKS = ("keras", "tinynet")


# ---- data ---------------------------------------------------------------------------------------
def load_data(data_dir, quick):
    """Inputs per model: {name: (x_train, y_train, x_test, y_test)} as float32 / one-hot."""
    (mx, my), (mtx, mty) = load_mnist(data_dir)
    (fx, fy), (ftx, fty) = load_fashion_mnist(data_dir)
    if quick:
        mx, my, fx, fy = mx[:10000], my[:10000], fx[:10000], fy[:10000]
    onehot = np.eye(10, dtype=np.float32)
    images = lambda a: (a.astype(np.float32) / 255.0)[..., None]  # noqa: E731
    t0 = time.perf_counter()
    hog_train = hog_features(mx, orientations=8, pixels_per_cell=(4, 4), cells_per_block=(1, 1),
                             progress=False)
    hog_test = hog_features(mtx, orientations=8, pixels_per_cell=(4, 4), cells_per_block=(1, 1),
                             progress=False)
    print(f"HOG features {hog_train.shape[1]} per image ({time.perf_counter() - t0:.1f} s, cached "
          "after the first time)", flush=True)
    return {
        "mlp_raw": (images(mx).reshape(len(mx), -1), onehot[my], images(mtx).reshape(len(mtx), -1),
                    onehot[mty]),
        "mlp_hog": (hog_train, onehot[my], hog_test, onehot[mty]),
        "cnn_digits": (images(mx), onehot[my], images(mtx), onehot[mty]),
        "cnn_fashion_3": (images(fx), onehot[fy], images(ftx), onehot[fty]),
    }


# ---- one training run ---------------------------------------------------------------------------
class _TinyTimer(callbacks.Callback):
    def __init__(self):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._t0)


class _KerasTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._t0)


def build(name, seed):
    backend.set_seed(seed)
    return MODELS[name][2]()


def train(framework, name, seed, data, epochs, batch):
    x, y, xt, yt = data
    load_before = os.getloadavg()
    model = build(name, seed)
    if framework == "tinynet":
        model.compile(optimizers.RMSprop(), loss="categorical_crossentropy", metrics=["accuracy"])
        timer = _TinyTimer()
        hist = model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, callbacks=[timer],
                         seed=seed)
        loss, acc = model.evaluate(xt, yt, batch_size=1000, verbose=0)
        train_loss = hist.history["loss"]
    else:
        kmodel = to_keras(model)  # the same initial weights as tinynet's run with this seed
        kmodel.compile(optimizer=keras.optimizers.RMSprop(), loss="categorical_crossentropy",
                       metrics=["accuracy"])
        keras.utils.set_random_seed(seed)
        timer = _KerasTimer()
        hist = kmodel.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, callbacks=[timer],
                          shuffle=True)
        loss, acc = kmodel.evaluate(xt, yt, batch_size=1000, verbose=0)
        train_loss = [float(v) for v in hist.history["loss"]]
    times = timer.times
    steady = times[1:] if len(times) > 1 else times
    return {
        "framework": framework, "model": name, "seed": seed, "epochs": epochs,
        "test_loss": float(loss), "test_accuracy": float(acc),
        "train_loss_per_epoch": [float(v) for v in train_loss],
        "epoch_seconds": times, "seconds_per_epoch": statistics.median(steady),
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "backend": backend.get_backend() if framework == "tinynet" else "tensorflow-cpu",
    }


# ---- summary ------------------------------------------------------------------------------------
def _stats(values):
    values = [float(v) for v in values]
    return {"mean": statistics.fmean(values), "median": statistics.median(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "n": len(values)}


def summarise(runs):
    table = {}
    for name in MODELS:
        for fw in FRAMEWORKS:
            rs = [r for r in runs if r["model"] == name and r["framework"] == fw]
            if not rs:
                continue
            table.setdefault(name, {})[fw] = {
                "test_accuracy": _stats([100 * r["test_accuracy"] for r in rs]),
                "test_loss": _stats([r["test_loss"] for r in rs]),
                "seconds_per_epoch": _stats([r["seconds_per_epoch"] for r in rs]),
                "fastest_epoch_seconds": min(min(r["epoch_seconds"][1:] or r["epoch_seconds"])
                                             for r in rs),
                "seeds": [r["seed"] for r in rs],
            }
    return table


def _time_cell(entry):
    """Seconds per epoch: the median over seeds (robust to a busy machine) and the fastest epoch
    of all the runs (the closest to the speed on an idle machine)."""
    if not entry:
        return "–"
    s = entry["seconds_per_epoch"]
    return f"{s['median']:.1f} (fastest {entry['fastest_epoch_seconds']:.1f})"


def markdown(table, meta):
    lines = [
        "# The report's models in Keras and in tinynet",
        "",
        f"{meta['settings']}. Test accuracy and loss on the 10,000 test images: mean ± standard "
        f"deviation over seeds {meta['seeds']} (min–max in brackets); seconds per epoch: median "
        "over epochs 2..N of each run, then the median over seeds (and the fastest single epoch "
        "of epochs 2..N over all seeds). Same initial "
        "weights in both frameworks for a given seed (copied with `tinynet.interop.to_keras`); "
        "shuffling and dropout drawn by each framework.",
        "",
        "| Model | Data | Report acc. / loss | Keras acc. (%) | Keras loss | tinynet acc. (%) "
        "| tinynet loss | s/epoch Keras | s/epoch tinynet |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(s, fmt):
        if s is None:
            return "–"
        text = f"{s['mean']:{fmt}} ± {s['std']:{fmt}}"
        return text + (f" [{s['min']:{fmt}}–{s['max']:{fmt}}]" if s["n"] > 1 else "")

    for name, (title, dataset, _) in MODELS.items():
        if name not in table:
            continue
        k, t = table[name].get("keras"), table[name].get("tinynet")
        ra, rl = REPORT[name]
        row = [title, dataset, f"{ra:.2f}% / {rl:.4f}",
               cell(k and k["test_accuracy"], ".2f"), cell(k and k["test_loss"], ".4f"),
               cell(t and t["test_accuracy"], ".2f"), cell(t and t["test_loss"], ".4f"),
               _time_cell(k), _time_cell(t)]
        lines.append("| " + " | ".join(row) + " |")
    load = meta.get("load_average_1min_range")
    note = meta["machine_note"]
    if load:
        # the run itself keeps about as many threads busy as there are cores
        busy = load[1] > meta.get("cpus", 2) + 1
        note += (f" The 1-minute load average was between {load[0]:.1f} and {load[1]:.1f} "
                 "(before and after each run, in the JSON): "
                 + ("other jobs shared the machine, so the times are only indicative."
                    if busy else "no other job ran, so the times can be compared."))
    lines += ["", note, "",
              f"Versions: {meta['versions']}. tinynet backend: {meta['tinynet_backend']}; "
              f"tinynet commit: {meta['commit']}.", ""]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="folder holding mnist/ and fashion-mnist/ "
                                                  "(default: $TINYNET_DATA, else the user cache)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--frameworks", nargs="+", default=list(FRAMEWORKS), choices=FRAMEWORKS)
    ap.add_argument("--quick", action="store_true",
                    help="a smoke test: 1 epoch on 10,000 training images, seed 0, outputs in "
                         "the temporary folder")
    ap.add_argument("--resume", action="store_true", help="skip the runs already in the JSON")
    ap.add_argument("--out", default=None, help="path prefix of the .json and .md outputs")
    ap.add_argument("--summarise", action="store_true",
                    help="only rewrite the .md and the summary from the runs in the JSON")
    args = ap.parse_args(argv)
    if args.quick:
        args.epochs, args.seeds = 1, args.seeds[:1]
    out = Path(args.out or (Path(tempfile.gettempdir()) / "side_by_side_quick" if args.quick
                            else HERE / "side_by_side"))
    keras.config.set_floatx("float32")
    backend.set_floatx("float32")

    import subprocess
    commit = os.environ.get("TINYNET_COMMIT")  # set when tinynet runs from an exported snapshot
    try:
        commit = commit or subprocess.run(["git", "-C", str(Path(tinynet.__file__).parent), "rev-parse",
                                 "--short", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    meta = {
        "settings": (f"RMSprop (Keras defaults), batch {args.batch}, {args.epochs} epochs, "
                     "categorical cross-entropy, float32"
                     + (" — QUICK smoke test: 1 epoch on 10,000 training images" if args.quick else "")),
        "seeds": args.seeds,
        "tinynet_backend": backend.get_backend(),
        "commit": commit,
        "versions": (f"tinynet {tinynet.__version__}, Keras {keras.__version__}, TensorFlow "
                     f"{tf.__version__}, NumPy {np.__version__}, Python {sys.version.split()[0]}"),
        "machine_note": f"Machine: {sysinfo.describe_machine()}.",
        "cpus": sysinfo.usable_cpus(),
    }
    runs = []
    json_path = out.with_suffix(".json")
    if args.resume and json_path.is_file():
        runs = json.loads(json_path.read_text())["runs"]

    def save():
        table = summarise(runs)
        commits = {fw: sorted({r.get("tinynet_commit", "unknown") for r in runs
                               if r["framework"] == fw}) for fw in FRAMEWORKS}
        meta["commit"] = (f"{', '.join(commits['tinynet']) or '–'} (tinynet runs); Keras runs "
                          "(tinynet builds their initial weights): "
                          f"{', '.join(commits['keras']) or '–'}")
        loads = [v for r in runs for v in (r["load_average_before"][0], r["load_average_after"][0])]
        if loads:
            meta["load_average_1min_range"] = [min(loads), max(loads)]
        json_path.write_text(json.dumps({"meta": meta, "report": REPORT, "summary": table,
                                         "runs": runs}, indent=1))
        out.with_suffix(".md").write_text(markdown(table, meta))

    if args.summarise:
        saved = json.loads(json_path.read_text())
        runs = saved["runs"]
        meta.update({k: saved["meta"][k] for k in ("settings", "seeds", "versions",
                                                   "machine_note", "tinynet_backend", "cpus")
                     if k in saved["meta"]})
        save()
        print(out.with_suffix(".md").read_text())
        return 0
    data = load_data(args.data, args.quick)

    for name in args.models:
        for seed in args.seeds:
            for fw in args.frameworks:
                if any(r["model"] == name and r["seed"] == seed and r["framework"] == fw
                       and r["epochs"] == args.epochs for r in runs):
                    continue
                t0 = time.perf_counter()
                r = train(fw, name, seed, data[name], args.epochs, args.batch)
                r["tinynet_commit"] = commit
                runs.append(r)
                save()
                print(f"{name:13s} {fw:7s} seed {seed}: test accuracy {100 * r['test_accuracy']:.2f}% "
                      f"loss {r['test_loss']:.4f}; {r['seconds_per_epoch']:.2f} s/epoch "
                      f"[{time.perf_counter() - t0:.0f} s, load {r['load_average_after'][0]:.1f}]",
                      flush=True)
    save()
    print(out.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
