"""Compute, in tinynet and in Keras, the differences between the two that the README quotes.

Run from the project's root with a Python that has TensorFlow/Keras 3 (``pip install -e
".[keras]"``; NOT needed by the test suite)::

    python tests/keras_reference/differences.py                 # prints the table
    python tests/keras_reference/differences.py --out tests/keras_reference/DIFFERENCES.md

Each figure comes from a small seeded setup computed in both frameworks: the same weights (a
tinynet model copied to Keras with ``tinynet.interop.to_keras``), the same data, both in float64
(tinynet's ``floatx`` and Keras's ``keras.config.floatx()`` set to ``"float64"``, so that what is
left is the difference in the formula, not float32 rounding), tinynet on its NumPy backend. The
table has a row per figure: tinynet's and Keras's numbers, their difference and the setup.
``tests/test_keras_differences.py`` runs the same functions and asserts the direction and the
size of each difference.

The figures (README, "Keras compatibility"):

* rounding of Keras 3.15's constants under floatx float64 (``ops.cast`` of a Python float goes
  through float32): Adam's ``beta_1`` and ``beta_2`` (in the bias corrections only: the moving
  averages use the exact ``1 - beta``), Adagrad's ``initial_accumulator_value``, SGD's
  ``momentum``, ``Rescaling``'s ``scale``; RMSprop, Adadelta and plain SGD agree exactly;
* an accuracy of logits on one unit (tinynet: a logit above 0 is class 1; Keras: above 0.5);
* an accuracy on one unit with soft labels (tinynet cuts the label at 0.5 as well; Keras compares
  the cut output with the label itself);
* a softmax followed by a linear ``Activation``, ``Dropout`` or ``Reshape`` under the
  cross-entropy (tinynet: the clipped probabilities; Keras on TensorFlow: the softmax's logits
  when the same tensor reaches the loss);
* targets whose rows do not sum exactly to 1 (tinynet's gradient ``softmax(z) * sum(y) - y``,
  TensorFlow's ``softmax(z) - y``).
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # this checkout's tinynet, also under a Python that lacks it
import tinynet  # noqa: E402
from tinynet import backend, layers, losses, optimizers, sysinfo  # noqa: E402
from tinynet.interop import to_keras  # noqa: E402

N_WEIGHTS = 1000  # the optimizers' weights: one vector
N_STEPS = 2


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

@contextlib.contextmanager
def float64():
    """Both frameworks in float64 (tinynet's floatx and backend, Keras's floatx), restored after."""
    saved_keras, saved_backend = keras.config.floatx(), backend.get_backend()
    keras.config.set_floatx("float64")
    backend.set_backend("numpy")
    try:
        with backend.floatx_scope("float64"):
            yield
    finally:
        keras.config.set_floatx(saved_keras)
        backend.set_backend(saved_backend)


def g(x, digits=2):
    """A number as the table writes it: ``digits`` significant digits, 0 as ``0``."""
    return "0" if x == 0 else f"{x:.{digits}g}"


def row(claim, tinynet_, keras_, difference, setup, **numbers):
    """One line of the table, and the numbers behind it (for the test)."""
    return {"claim": claim, "tinynet": tinynet_, "keras": keras_,
            "difference": difference, "setup": setup, **numbers}


def flat(weights):
    """A list of arrays as one vector."""
    return np.concatenate([np.ravel(w) for w in weights])


def keras_evaluate(kmodel, loss, x, y, metrics=()):
    """Keras's ``evaluate`` of an uncompiled Keras model: ``[loss, *metrics]``."""
    kmodel.compile(optimizer="sgd", loss=loss, metrics=list(metrics))
    out = kmodel.evaluate(x, y, batch_size=32, verbose=0)
    return out if isinstance(out, list) else [out]


# ---------------------------------------------------------------------------------------------
# (a) Keras's constants rounded to float32 under floatx float64
# ---------------------------------------------------------------------------------------------

OPTIMIZER_SETUP = (f"{N_WEIGHTS:,} weights and gradients ~ N(0, 1) (seed 0), {N_STEPS} steps "
                   "of `apply_gradients`, float64")


def optimizer_trajectories(name, keras_args=None, **args):
    """The weights after each of ``N_STEPS`` steps of tinynet's and Keras's optimizer ``name``
    made with ``args`` (Keras's with ``keras_args`` on top, e.g. a constant as ``np.float64``):
    ``(w0, [tinynet's w1, w2, ...], [Keras's w1, w2, ...])``."""
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal(N_WEIGHTS)
    grads = [rng.standard_normal(N_WEIGHTS) for _ in range(N_STEPS)]
    with float64():
        w, opt = w0.copy(), getattr(optimizers, name)(**args)
        ours = []
        for grad in grads:
            opt.apply_gradients([(grad.copy(), w)])
            ours.append(w.copy())
        var = keras.Variable(w0.copy(), dtype="float64")
        kopt = getattr(keras.optimizers, name)(**{**args, **(keras_args or {})})
        theirs = []
        for grad in grads:
            kopt.apply_gradients([(tf.constant(grad, dtype=tf.float64), var)])
            theirs.append(np.asarray(var.numpy(), dtype=np.float64))
    return w0, ours, theirs


def optimizer_gap(name, keras_args=None, **args):
    """How far Keras's weights are from tinynet's after each step: a dict with ``step`` and
    ``keras_step`` (each one's mean |w - w0| after each step), ``max`` (max |w_tinynet -
    w_keras| after each step) and ``rel`` (||w_tinynet - w_keras|| / ||w_tinynet - w0|| after
    each step)."""
    w0, ours, theirs = optimizer_trajectories(name, keras_args, **args)
    return {"step": [float(np.abs(a - w0).mean()) for a in ours],
            "keras_step": [float(np.abs(b - w0).mean()) for b in theirs],
            "max": [float(np.abs(a - b).max()) for a, b in zip(ours, theirs)],
            "rel": [float(np.linalg.norm(a - b) / np.linalg.norm(a - w0))
                    for a, b in zip(ours, theirs)]}


def _gap_cells(gap):
    moved = [", ".join(g(s, 6) for s in gap[key]) for key in ("step", "keras_step")]
    diff = "; ".join(f"step {k}: {g(m)} ({g(r)} of the move)"
                     for k, (m, r) in enumerate(zip(gap["max"], gap["rel"]), start=1))
    return moved, diff


def optimizer_rows():
    rows = []
    cases = [
        ("Adam at the default rate 0.001", "Adam", {}, {}),
        ("Adam at 0.02", "Adam", {"learning_rate": 0.02}, {}),
        ("Adam at 0.02, Keras given beta_1 = np.float64(0.9) (beta_2 rounded alone)", "Adam",
         {"learning_rate": 0.02}, {"beta_1": np.float64(0.9)}),
        ("Adam at 0.02, Keras given beta_2 = np.float64(0.999) (beta_1 rounded alone)", "Adam",
         {"learning_rate": 0.02}, {"beta_2": np.float64(0.999)}),
        ("Adam at 0.02, Keras given both betas as np.float64 (nothing rounded)", "Adam",
         {"learning_rate": 0.02}, {"beta_1": np.float64(0.9), "beta_2": np.float64(0.999)}),
        ("Adagrad at its default rate 0.001", "Adagrad", {}, {}),
        ("Adagrad, Keras given initial_accumulator_value = np.float64(0.1) (nothing rounded)",
         "Adagrad", {}, {"initial_accumulator_value": np.float64(0.1)}),
        ("SGD, momentum 0.9 (default rate 0.01), two steps", "SGD", {"momentum": 0.9}, {}),
        ("SGD, momentum 0.9, Keras given momentum = np.float64(0.9) (nothing rounded)",
         "SGD", {"momentum": 0.9}, {"momentum": np.float64(0.9)}),
        ("RMSprop (defaults)", "RMSprop", {}, {}),
        ("Adadelta (defaults)", "Adadelta", {}, {}),
        ("plain SGD (default rate 0.01)", "SGD", {}, {}),
    ]
    for claim, name, args, keras_args in cases:
        gap = optimizer_gap(name, keras_args, **args)
        moved, diff = _gap_cells(gap)
        kdesc = ", ".join(f"{k}={v!r}" for k, v in {**args, **keras_args}.items())
        setup = f"`{name}({kdesc})` in Keras; {OPTIMIZER_SETUP}"
        rows.append(row(claim, f"mean \\|w - w0\\| {moved[0]}",
                        f"mean \\|w - w0\\| {moved[1]}",
                        f"max \\|w_tinynet - w_keras\\| after {diff}", setup,
                        optimizer=name, args=args, keras_args=keras_args, gap=gap))
    return rows


def rescaling_row():
    """``Rescaling(1/255)`` applied to 255 in float64, in both frameworks."""
    x = np.array([[255.0]])
    with float64():
        ours = float(layers.Rescaling(1 / 255)(x)[0, 0])
        theirs = float(np.asarray(keras.layers.Rescaling(1 / 255, dtype="float64")(x))[0, 0])
    return row("`Rescaling(1/255)` turns 255 into",
               f"{ours:.10f}", f"{theirs:.10f}", g(theirs - ours),
               "a (1, 1) float64 input holding 255, each framework's layer called on it",
               ours=ours, theirs=theirs)


# ---------------------------------------------------------------------------------------------
# (b) accuracy of logits on one unit
# ---------------------------------------------------------------------------------------------

def logits_accuracy_row():
    """A logistic model's logits scored by ``metrics=["accuracy"]`` with
    ``BinaryCrossentropy(from_logits=True)``: tinynet counts a logit above 0 as class 1, Keras
    compares the logit with 0.5."""
    rng = np.random.default_rng(1)
    n = 400
    x = rng.standard_normal((n, 2))
    y = (x[:, 0] + x[:, 1] + rng.standard_normal(n) > 0).astype(np.float64)[:, None]
    with float64():
        model = tinynet.Sequential([layers.Input((2,)), layers.Dense(1)])
        model.layers[-1].set_weights([np.array([[0.5], [0.5]]), np.array([0.0])])
        model.compile(optimizer="sgd", loss=losses.BinaryCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        ours = model.evaluate(x, y, verbose=0)[1]
        logits = model.predict(x)
        theirs = keras_evaluate(to_keras(model), keras.losses.BinaryCrossentropy(from_logits=True),
                                x, y, metrics=["accuracy"])[1]
    true_accuracy = float(((logits > 0) == (y > 0.5)).mean())
    between = float(((logits > 0) & (logits <= 0.5)).mean())
    return row("`from_logits=True` on one unit, `metrics=[\"accuracy\"]`",
               f"{ours:.4f}", f"{theirs:.4f}",
               f"{ours - theirs:+.4f} (the logits' true accuracy: {true_accuracy:.4f}; "
               f"{between:.4f} of the logits lie in (0, 0.5])",
               f"{n} examples x ~ N(0, 1)^2 (seed 1), label 1 where x1 + x2 + N(0, 1) > 0; "
               "`Dense(1)` with kernel (0.5, 0.5), bias 0; `evaluate`",
               ours=float(ours), theirs=float(theirs), true_accuracy=true_accuracy)


# ---------------------------------------------------------------------------------------------
# (c) accuracy on one unit with soft labels
# ---------------------------------------------------------------------------------------------

def soft_label_accuracy_row():
    """``metrics=["accuracy"]`` on a sigmoid unit with labels drawn uniformly from [0, 1]."""
    rng = np.random.default_rng(2)
    n = 400
    y = rng.uniform(size=(n, 1))
    logit = np.log(y / (1 - y))[:, 0]
    x = np.column_stack([logit + rng.standard_normal(n), rng.standard_normal((n, 2))])
    with float64():
        model = tinynet.Sequential([layers.Input((3,)), layers.Dense(1, activation="sigmoid")])
        model.layers[-1].set_weights([np.array([[1.0], [0.0], [0.0]]), np.array([0.0])])
        model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy"])
        ours = model.evaluate(x, y, verbose=0)[1]
        theirs = keras_evaluate(to_keras(model), "binary_crossentropy", x, y,
                                metrics=["accuracy"])[1]
    return row("`\"accuracy\"` on one sigmoid unit, soft labels", f"{ours:.4f}", f"{theirs:.4f}",
               f"{ours - theirs:+.4f}",
               f"{n} labels y ~ U(0, 1) (seed 2); x = (logit(y) + N(0, 1), N(0, 1), N(0, 1)); "
               "`Dense(1, sigmoid)` with kernel (1, 0, 0), bias 0; `binary_crossentropy`; "
               "`evaluate`",
               ours=float(ours), theirs=float(theirs))


# ---------------------------------------------------------------------------------------------
# (d) a softmax followed by another layer, under the cross-entropy
# ---------------------------------------------------------------------------------------------

SATURATED_SCALE = 6.0


def saturated_softmax_rows():
    """The cross-entropy of a saturated softmax followed by a linear ``Activation``, a ``Dropout``
    (at inference) or a ``Reshape``: tinynet clips the probabilities at 1e-7 in all three; Keras
    takes the softmax's logits where the same tensor reaches the loss."""
    rng = np.random.default_rng(3)
    n, features, classes = 200, 4, 3
    x = rng.standard_normal((n, features))
    y = np.eye(classes)[rng.integers(0, classes, n)]
    kernel = rng.standard_normal((features, classes)) * SATURATED_SCALE
    rows = []
    for after in ("Activation(\"linear\")", "Dropout(0.5)", f"Reshape(({classes},))"):
        with float64():
            follower = {"A": layers.Activation("linear"), "D": layers.Dropout(0.5),
                        "R": layers.Reshape((classes,))}[after[0]]
            model = tinynet.Sequential([layers.Input((features,)),
                                        layers.Dense(classes, activation="softmax"), follower])
            model.layers[0].set_weights([kernel, np.zeros(classes)])
            with warnings.catch_warnings():  # tinynet's advice: put the Dropout before Dense
                warnings.simplefilter("ignore", UserWarning)
                model.compile(optimizer="sgd", loss="categorical_crossentropy")
            ours = float(model.evaluate(x, y, verbose=0))
            p_true = model.predict(x)[y > 0]
            theirs = float(keras_evaluate(to_keras(model), "categorical_crossentropy", x, y)[0])
        clipped = float((p_true < 1e-7).mean())
        rows.append(row(f"softmax then `{after}`, categorical cross-entropy (`evaluate`)",
                        f"{ours:.4f}", f"{theirs:.4f}",
                        f"{theirs - ours:+.2g} ({clipped:.2f} of the true classes' "
                        "probabilities below 1e-7)",
                        f"{n} examples x ~ N(0, 1)^{features} (seed 3), {classes} classes drawn "
                        f"uniformly; `Dense({classes}, softmax)` with kernel "
                        f"N(0, 1) x {SATURATED_SCALE:g}, bias 0",
                        after=after, ours=ours, theirs=theirs, clipped=clipped))
    return rows


# ---------------------------------------------------------------------------------------------
# (e) targets whose rows do not sum exactly to 1
# ---------------------------------------------------------------------------------------------

SOFT_EPOCHS = 30


def soft_targets_fit(normalise_in):
    """30 epochs of ``fit`` of a softmax regression on soft targets normalised in
    ``normalise_in`` (``np.float32``: rows sum to 1 +- 2e-7; ``np.float64``: to 1e-16), in both
    frameworks: a dict of the largest row-sum error, the weights' largest move (tinynet's and
    Keras's), their largest difference and ``rel``, the norm of their difference over that of
    tinynet's move, and the largest difference of the epochs' losses."""
    rng = np.random.default_rng(4)
    n, features, classes = 256, 20, 10
    x = rng.standard_normal((n, features))
    raw = rng.random((n, classes)).astype(normalise_in)
    y = (raw / raw.sum(axis=1, keepdims=True)).astype(np.float64)  # divided in normalise_in
    w0 = [rng.standard_normal((features, classes)) * 0.1, np.zeros(classes)]
    with float64():
        model = tinynet.Sequential([layers.Input((features,)),
                                    layers.Dense(classes, activation="softmax")])
        model.set_weights(w0)
        kmodel = to_keras(model)
        model.compile(optimizer=optimizers.SGD(0.1), loss="categorical_crossentropy")
        ours = model.fit(x, y, batch_size=32, epochs=SOFT_EPOCHS, shuffle=False,
                         verbose=0).history["loss"]
        kmodel.compile(optimizer=keras.optimizers.SGD(0.1), loss="categorical_crossentropy")
        theirs = kmodel.fit(x, y, batch_size=32, epochs=SOFT_EPOCHS, shuffle=False,
                            verbose=0).history["loss"]
        w_ours, w_theirs = model.get_weights(), kmodel.get_weights()
    return {"row_sum_error": float(np.abs(y.sum(axis=1) - 1).max()),
            "moved": max(float(np.abs(a - b).max()) for a, b in zip(w_ours, w0)),
            "keras_moved": max(float(np.abs(a - b).max()) for a, b in zip(w_theirs, w0)),
            "rel": float(np.linalg.norm(flat(w_ours) - flat(w_theirs))
                         / np.linalg.norm(flat(w_ours) - flat(w0))),
            "weights": max(float(np.abs(a - b).max()) for a, b in zip(w_ours, w_theirs)),
            "loss": float(np.abs(np.subtract(ours, theirs)).max()),
            "first_loss": (ours[0], theirs[0])}


def soft_targets_row():
    f32, f64 = soft_targets_fit(np.float32), soft_targets_fit(np.float64)
    return row("soft targets normalised in float32, `fit` (weights after 30 epochs)",
               f"moved by up to {g(f32['moved'])}", f"moved by up to {g(f32['keras_moved'])}",
               f"max \\|w_tinynet - w_keras\\| {g(f32['weights'])} "
               f"({g(f32['rel'])} of the move; the epochs' losses within {g(f32['loss'])}); "
               f"the same targets normalised in float64: {g(f64['weights'])}",
               f"256 examples x ~ N(0, 1)^20, targets U(0, 1)^10 (seed 4) divided by their row "
               f"sum in float32 (rows sum to 1 within {g(f32['row_sum_error'])}); "
               "`Dense(10, softmax)`, kernel N(0, 1) x 0.1; `SGD(0.1)`, batch 32, "
               "`shuffle=False`, 30 epochs, float64",
               f32=f32, f64=f64)


# ---------------------------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------------------------

def all_rows():
    return [*optimizer_rows(), rescaling_row(), logits_accuracy_row(), soft_label_accuracy_row(),
            *saturated_softmax_rows(), soft_targets_row()]


def table(rows):
    lines = ["| claim | tinynet | Keras | difference | setup |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append("| " + " | ".join(r[k] for k in ("claim", "tinynet", "keras", "difference",
                                                         "setup")) + " |")
    return "\n".join(lines)


def header(seconds):
    from benchmarks.common import commit  # the checkout's commit, as the benchmarks record it

    return (f"# tinynet and Keras: the differences the README quotes\n\n"
            f"`python tests/keras_reference/differences.py --out "
            f"tests/keras_reference/DIFFERENCES.md` on {datetime.date.today().isoformat()}: "
            f"tinynet {commit() or '(not a git checkout)'} (NumPy backend), Keras "
            f"{keras.__version__}, TensorFlow {tf.__version__} (CPU), NumPy {np.__version__}, "
            f"on {sysinfo.describe_machine()}; {seconds:.0f} s. Both frameworks in float64 "
            f"(Keras's floatx too), the same weights (tinynet's model copied with "
            f"`tinynet.interop.to_keras`). `max |w_tinynet - w_keras|` is the largest "
            f"difference of a weight, `of the move` that difference's norm over the norm of "
            f"the weights' move (||w_tinynet - w_keras|| / ||w_tinynet - w0||). The script's "
            f"docstring explains each case.\n\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the table (Markdown) to this file too")
    args = parser.parse_args(argv)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already started (imported by another module first)
        pass
    start = time.perf_counter()
    text = table(all_rows())
    seconds = time.perf_counter() - start
    print(text)
    print(f"\n{seconds:.1f} s, Keras {keras.__version__}, TensorFlow {tf.__version__}, "
          f"NumPy {np.__version__}, Python {platform.python_version()}, {sysinfo.cpu_model()}")
    if args.out:
        args.out.write_text(header(seconds) + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
