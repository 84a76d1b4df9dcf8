"""Train the same model from the same weights in tinynet and in Keras, step by step, and compare.

Run with a Python that has TensorFlow/Keras 3 and tinynet installed (``pip install -e ".[keras]"``)::

    python benchmarks/keras_trajectory.py [--data DIR] [--steps 300]

``--data`` is the folder holding ``mnist/`` (default, as in ``tinynet.datasets``: ``$TINYNET_DATA``,
else the user cache).

For the report's digits CNN (``report_models.cnn_digits``, 7,465 parameters) and its MLP on raw
pixels (``report_models.mlp_raw``, 203,530 parameters), in float32 and in float64:

* the tinynet model is built with a fixed seed and copied into Keras with
  ``tinynet.interop.to_keras``, so both start from the same weights;
* the MLP is built with ``Dropout(rate=0)``: the layer stays in both models (names and layer
  lists identical) but drops nothing, so both compute the same function (the CNN has no dropout);
* both train with RMSprop at Keras's defaults (learning rate 1e-3, rho 0.9, epsilon 1e-7) and
  categorical cross-entropy, one ``train_on_batch`` per step on the same batches of 128 MNIST
  training images in their stored order (no shuffling), pixels scaled to [0, 1];
* the loss each returns at every step (the loss of the batch before the update) is compared:
  ``rel[t] = |loss_tinynet[t] - loss_keras[t]| / |loss_keras[t]|``.

To know what float32 allows at all, each framework is also run against *itself* with every
nonzero initial weight moved by one unit in the last place: how many steps such a pair stays within 1e-4
is the float32 dynamics' own sensitivity, the floor under any float32 comparison.

Target: ``max_t rel[t] <= 1e-4`` in float32, and much tighter in float64. The script prints the
worst step of each run, writes ``benchmarks/keras_trajectory.json`` (every loss of both curves,
the relative differences, the final weights' largest relative difference, versions, machine) and
``benchmarks/keras_trajectory.png`` (both curves and the step-wise difference).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import tinynet  # noqa: E402
from tinynet import backend, optimizers, report_models, sysinfo  # noqa: E402
from tinynet.datasets import load_mnist  # noqa: E402
from tinynet.interop import to_keras  # noqa: E402

HERE = Path(__file__).resolve().parent
TARGET_FLOAT32 = 1e-4
FLOOR = 1e-17  # exact agreement (a difference of 0) is drawn here on the log scale
MODELS = {
    "cnn_digits": lambda: report_models.cnn_digits(),
    "mlp_raw": lambda: report_models.mlp_raw(dropout=0.0),
}


def _sync_keras_to_tinynet(tmodel, kmodel):
    """Give Keras tinynet's current weights and RMSprop state (the running mean ``s``)."""
    kmodel.set_weights(tmodel.get_weights())
    opt = kmodel.optimizer
    if not opt.built:
        opt.build(kmodel.trainable_variables)
    state = tmodel.optimizer.get_state(tmodel.params)  # per parameter, in slot_names() order
    s_at = tmodel.optimizer.slot_names().index("s")
    for velocity, param, slots in zip(opt._velocities, tmodel.params, state["slots"]):
        s = slots[s_at]
        velocity.assign(np.zeros(param.shape, param.dtype) if s is None else s)


def run(name, dtype, x, y, steps, batch, seed, synced=False):
    """Train ``name`` in both frameworks for ``steps`` batches; return the two loss curves.

    ``synced``: before every step Keras gets tinynet's weights and optimizer state, so each step
    of the comparison starts from the same state (the differences cannot accumulate); the
    returned curve is tinynet's, and ``update_difference_lr`` is the largest difference between
    the weights after the step, in units of the learning rate.
    """
    backend.set_floatx(dtype)
    keras.config.set_floatx(dtype)  # train_on_batch casts the data to Keras's floatx
    backend.set_seed(seed)
    tmodel = MODELS[name]()
    kmodel = to_keras(tmodel)
    tmodel.compile(optimizers.RMSprop(), loss="categorical_crossentropy")
    kmodel.compile(optimizer=keras.optimizers.RMSprop(), loss="categorical_crossentropy")
    lr = tmodel.optimizer.learning_rate
    if name == "mlp_raw":
        x = x.reshape(len(x), -1)
    x, y = x.astype(dtype), y.astype(dtype)
    t_loss, k_loss, update_diff = [], [], []
    t_time = k_time = 0.0
    for step in range(steps):
        xb, yb = x[step * batch:(step + 1) * batch], y[step * batch:(step + 1) * batch]
        if synced:
            _sync_keras_to_tinynet(tmodel, kmodel)
        t0 = time.perf_counter()
        t_loss.append(float(tmodel.train_on_batch(xb, yb)))
        t1 = time.perf_counter()
        k_loss.append(float(kmodel.train_on_batch(xb, yb)))
        t2 = time.perf_counter()
        if synced:
            update_diff.append(max(float(np.max(np.abs(a - b))) / lr for a, b in
                                   zip(tmodel.get_weights(), kmodel.get_weights())))
        if step > 0:  # the first step compiles (numba, tf.function)
            t_time += t1 - t0
            k_time += t2 - t1
    t_loss, k_loss = np.array(t_loss), np.array(k_loss)
    rel = np.abs(t_loss - k_loss) / np.abs(k_loss)
    weight_rel = max(
        float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))
        for a, b in zip(tmodel.get_weights(), kmodel.get_weights()))
    worst = int(np.argmax(rel))
    above = np.flatnonzero(rel > TARGET_FLOAT32)
    return {
        "model": name, "dtype": dtype, "mode": "synced" if synced else "free",
        "params": int(tmodel.count_params()),
        "steps_within_1e-4": int(above[0]) if above.size else len(rel),
        "update_difference_lr": update_diff,
        "worst_update_difference_lr": max(update_diff) if update_diff else None,
        "tinynet_loss": t_loss.tolist(), "keras_loss": k_loss.tolist(), "relative_difference": rel.tolist(),
        "worst_relative_difference": float(rel[worst]), "worst_step": worst + 1,
        "median_relative_difference": float(np.median(rel)),
        "final_weights_max_relative_difference": weight_rel,
        "first_loss": float(k_loss[0]), "last_loss_keras": float(k_loss[-1]),
        "last_loss_tinynet": float(t_loss[-1]),
        "ms_per_step_tinynet": 1e3 * t_time / max(steps - 1, 1),
        "ms_per_step_keras": 1e3 * k_time / max(steps - 1, 1),
    }


def compare(curve, reference):
    """How ``curve`` departs from ``reference``, step by step: the relative differences, the
    worst (and its step, from 1), the median, and for how many steps it stays within 1e-4."""
    rel = np.abs(np.asarray(curve) - np.asarray(reference)) / np.abs(np.asarray(reference))
    above = np.flatnonzero(rel > TARGET_FLOAT32)
    return {"relative_difference": rel.tolist(), "worst": float(rel.max()),
            "worst_step": int(rel.argmax()) + 1, "median": float(np.median(rel)),
            "steps_within_1e-4": int(above[0]) if above.size else len(rel)}


def _print_both(name, what, stats):
    print(f"{name:10s} {what}: tinynet worst {stats['tinynet']['worst']:.2e} (within 1e-4 for "
          f"{stats['tinynet']['steps_within_1e-4']} steps), Keras worst "
          f"{stats['keras']['worst']:.2e} (within 1e-4 for "
          f"{stats['keras']['steps_within_1e-4']} steps)", flush=True)


def one_ulp_sensitivity(name, x, y, steps, batch, seed):
    """How long does a float32 run stay within 1e-4 of *itself* when every nonzero initial weight
    moves by one unit in the last place (``np.nextafter`` towards +inf)? For tinynet and for Keras:
    two runs of the same framework, same batches, initial weights one ulp apart. This is the
    sensitivity of the float32 training dynamics, the floor under any float32 comparison."""
    backend.set_floatx("float32")
    keras.config.set_floatx("float32")
    backend.set_seed(seed)
    base = MODELS[name]()
    weights = base.get_weights()
    # Zeros stay zero: the next float after 0 is a denormal (1.4e-45), and a zero bias made
    # positive turns on the ReLU of every blank window of the image (z = 0 exactly there), a
    # change of the function rather than of its rounding (TensorFlow flushes denormals to zero).
    nudged = [np.where(w != 0, np.nextafter(w, np.float32(np.inf)), w) for w in weights]
    if name == "mlp_raw":
        x = x.reshape(len(x), -1)
    x, y = x.astype("float32"), y.astype("float32")
    curves = {}
    for fw in ("tinynet", "keras"):
        losses = []
        for w in (weights, nudged):
            if fw == "tinynet":
                backend.set_seed(seed)
                model = MODELS[name]()
                model.set_weights(w)
                model.compile(optimizers.RMSprop(), loss="categorical_crossentropy")
            else:
                model = to_keras(base)
                model.set_weights(w)
                model.compile(optimizer=keras.optimizers.RMSprop(), loss="categorical_crossentropy")
            losses.append(np.array([float(model.train_on_batch(x[t * batch:(t + 1) * batch],
                                                               y[t * batch:(t + 1) * batch]))
                                    for t in range(steps)]))
        curves[fw] = compare(losses[1], losses[0])
    return curves




def drift_by_seed(name, x, y, steps, batch, seeds):
    """For other initial weights (seeds): how many steps each framework's float32 run stays
    within 1e-4 of the float64 trajectory (Keras's float64 curve; tinynet's agrees to ~1e-15)."""
    out = {}
    for seed in seeds:
        exact = np.asarray(run(name, "float64", x, y, steps, batch, seed)["keras_loss"])
        r32 = run(name, "float32", x, y, steps, batch, seed)
        pairs = {"tinynet": (r32["tinynet_loss"], exact), "keras": (r32["keras_loss"], exact),
                 "tinynet_vs_keras": (r32["tinynet_loss"], r32["keras_loss"])}
        out[seed] = {}
        for key, (curve, reference) in pairs.items():
            stats = compare(curve, reference)
            out[seed][key] = {k: stats[k] for k in ("steps_within_1e-4", "worst")}
        print(f"{name:10s} seed {seed}: float32 within 1e-4 of float64 for "
              f"{out[seed]['tinynet']['steps_within_1e-4']} steps (tinynet), "
              f"{out[seed]['keras']['steps_within_1e-4']} (Keras); tinynet vs Keras float32 "
              f"{out[seed]['tinynet_vs_keras']['steps_within_1e-4']}", flush=True)
    return out


def _find(results, name, dtype, mode="free"):
    return next(r for r in results
                if r["model"] == name and r["dtype"] == dtype and r["mode"] == mode)


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in MODELS if any(r["model"] == n for r in results)]
    fig, axes = plt.subplots(2, len(names), figsize=(12, 8), sharex=True, squeeze=False)
    for col, name in enumerate(names):
        top, bottom = axes[0, col], axes[1, col]
        r32 = _find(results, name, "float32")
        steps = np.arange(1, len(r32["keras_loss"]) + 1)
        top.plot(steps, r32["keras_loss"], color="tab:red", lw=2.5, alpha=0.6, label="Keras")
        top.plot(steps, r32["tinynet_loss"], color="black", lw=0.8, ls="--", label="tinynet")
        top.set_yscale("log")
        top.set_title(f"{name} ({r32['params']:,} parameters), float32")
        top.set_ylabel("training loss of the batch")
        top.legend()
        series = [
            (_find(results, name, "float32", "synced")["relative_difference"], "tab:purple",
             "tinynet vs Keras, float32, synced each step"),
            (r32["relative_difference"], "tab:blue", "tinynet vs Keras, float32"),
            (_find(results, name, "float64")["relative_difference"], "tab:green",
             "tinynet vs Keras, float64"),
        ]
        for values, color, label in series:
            rel = np.maximum(np.asarray(values), FLOOR)
            bottom.semilogy(steps, rel, color=color, ls="none", marker=".", ms=2.5,
                            label=f"{label}: worst {max(values):.1e}")
        for fw, color in (("tinynet", "black"), ("keras", "tab:orange")):
            values = r32.get(f"{fw}_float32_vs_float64")
            if values:
                bottom.semilogy(steps, np.maximum(np.asarray(values), FLOOR), color=color, lw=0.7,
                                ls="--", label=f"{'Keras' if fw == 'keras' else fw} float32 vs "
                                                f"float64: worst {max(values):.1e}")
        for fw, color in (("tinynet", "tab:gray"), ("keras", "tab:brown")):
            values = r32.get(f"{fw}_one_ulp")
            if values:
                bottom.semilogy(steps, np.maximum(np.asarray(values), FLOOR), color=color, lw=0.7,
                                label=f"{'Keras' if fw == 'keras' else fw} vs itself, initial "
                                      f"weights 1 ulp apart: worst {max(values):.1e}")
        bottom.axhline(TARGET_FLOAT32, color="tab:red", ls=":", lw=1, label="1e-4")
        bottom.set_xlabel("step (batch of 128)")
        bottom.set_ylabel(f"relative difference of the loss\n(0 drawn at {FLOOR:g})")
        bottom.set_ylim(FLOOR / 3, 1)
        bottom.legend(fontsize=7, loc="lower right")
    fig.suptitle("Same initial weights, same batches, RMSprop defaults: tinynet vs Keras, "
                 "step by step")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None,
                    help="folder holding mnist/ (default: $TINYNET_DATA, else the user cache)")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(HERE / "keras_trajectory"),
                    help="path prefix of the .json and .png outputs")
    ap.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--drift-seeds", type=int, default=5,
                    help="also run float32 against float64 from this many initial weights (seeds "
                         "seed+1 ...), free-running, to see how often each framework drifts")
    args = ap.parse_args(argv)

    (x_train, y_train), _ = load_mnist(args.data)
    n = args.steps * args.batch
    if n > len(x_train):
        raise SystemExit(f"--steps {args.steps} x --batch {args.batch} needs more than the "
                         f"{len(x_train)} training images (one pass, no shuffling)")
    x = (x_train[:n].astype(np.float64) / 255.0)[..., None]
    y = np.eye(10)[y_train[:n]]
    load_before = os.getloadavg()
    results = []
    for dtype, synced in (("float32", False), ("float32", True), ("float64", False)):
        for name in args.models:
            t0 = time.perf_counter()
            r = run(name, dtype, x, y, args.steps, args.batch, args.seed, synced=synced)
            results.append(r)
            extra = ""
            if synced:
                extra = (f"; weights after each step differ by at most "
                         f"{r['worst_update_difference_lr']:.1e} x learning rate")
            print(f"{name:10s} {dtype} {r['mode']:6s}: worst relative step difference "
                  f"{r['worst_relative_difference']:.2e} (step {r['worst_step']}), median "
                  f"{r['median_relative_difference']:.1e}; loss {r['first_loss']:.4f} -> "
                  f"{r['last_loss_keras']:.4f} (Keras) / {r['last_loss_tinynet']:.4f} (tinynet); "
                  f"final weights differ by {r['final_weights_max_relative_difference']:.1e}; "
                  f"{r['ms_per_step_tinynet']:.1f} / {r['ms_per_step_keras']:.1f} ms per step "
                  f"{extra} [{time.perf_counter() - t0:.0f} s]", flush=True)

    # Which float32 curve stays on the exact one? Both float64 curves agree to ~1e-15, so the
    # Keras float64 curve serves as the exact trajectory for both free-running float32 runs.
    drift = {}
    for name in args.models:
        exact = np.asarray(_find(results, name, "float64")["keras_loss"])
        r32 = _find(results, name, "float32")
        drift[name] = {}
        for fw in ("tinynet", "keras"):
            drift[name][fw] = compare(r32[f"{fw}_loss"], exact)
            r32[f"{fw}_float32_vs_float64"] = drift[name][fw].pop("relative_difference")
        _print_both(name, "float32 vs the float64 trajectory", drift[name])

    # And how long does each framework stay within 1e-4 of itself, from weights one ulp apart?
    ulp = {}
    for name in args.models:
        curves = one_ulp_sensitivity(name, x, y, args.steps, args.batch, args.seed)
        r32 = _find(results, name, "float32")
        ulp[name] = {}
        for fw, c in curves.items():
            r32[f"{fw}_one_ulp"] = c.pop("relative_difference")
            ulp[name][fw] = c
        _print_both(name, "float32 vs itself from weights 1 ulp apart", ulp[name])

    seeds = list(range(args.seed + 1, args.seed + args.drift_seeds))
    by_seed = {name: drift_by_seed(name, x, y, args.steps, args.batch, seeds)
               for name in args.models} if seeds else {}
    backend.set_floatx("float32")  # run() left the last dtype it trained in
    keras.config.set_floatx("float32")

    worst = {f"{r['model']}/{r['dtype']}/{r['mode']}": r["worst_relative_difference"]
             for r in results}
    ok_synced = all(r["worst_relative_difference"] <= TARGET_FLOAT32
                    for r in results if r["dtype"] == "float32" and r["mode"] == "synced")
    ok_free = all(r["worst_relative_difference"] <= TARGET_FLOAT32
                  for r in results if r["dtype"] == "float32" and r["mode"] == "free")
    summary = {
        "what": "loss of each train_on_batch step, tinynet vs Keras, same initial weights "
                "(copied with tinynet.interop.to_keras) and the same batches",
        "settings": {"steps": args.steps, "batch_size": args.batch, "seed": args.seed,
                     "data": "MNIST training images in stored order, /255, no shuffling",
                     "optimizer": "RMSprop(learning_rate=0.001, rho=0.9, epsilon=1e-07) in both",
                     "loss": "categorical_crossentropy",
                     "dropout": "mlp_raw built with Dropout(rate=0) in both (layer kept, drops "
                                "nothing); cnn_digits has no dropout",
                     "tinynet_backend": backend.get_backend()},
        "modes": {"free": "both models train on their own from the same initial weights",
                  "synced": "before every step Keras is given tinynet's weights and RMSprop "
                            "state, so each step starts from the same state"},
        "target": {"float32_worst_relative_difference": TARGET_FLOAT32,
                   "met_float32_synced": ok_synced, "met_float32_free_running": ok_free},
        "worst": worst,
        "float32_vs_float64_trajectory": drift,
        "float32_one_ulp_sensitivity": ulp,
        "float32_vs_float64_by_seed": by_seed,
        "versions": {"tinynet": tinynet.__version__, "keras": keras.__version__,
                     "tensorflow": tf.__version__, "numpy": np.__version__,
                     "python": sys.version.split()[0]},
        "machine": {"description": sysinfo.describe_machine(), "platform": platform.platform(),
                    "usable_cpus": sysinfo.usable_cpus(),
                    "load_average_before": load_before, "load_average_after": os.getloadavg(),
                    "note": "a machine shared with other jobs: the ms-per-step numbers are "
                            "indicative only"},
        "runs": results,
    }
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(summary, indent=1))
    plot(results, out.with_suffix(".png"))
    print(f"float32, <= {TARGET_FLOAT32:g} at every step: synced each step "
          f"{'met' if ok_synced else 'NOT met'}; free-running {'met' if ok_free else 'NOT met'}")
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.png')} "
          f"({out.with_suffix('.png').stat().st_size // 1024} KB)")
    return 0 if ok_synced else 1


if __name__ == "__main__":
    sys.exit(main())
