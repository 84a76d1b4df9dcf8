"""``python -m lessons.check [NAME ...] [--solutions]``: check the exercises against tinynet.

Every exercise in ``lessons/exercises/`` is run on random inputs (several shapes and seeds) and
compared with tinynet's own implementation of the same thing: its ``Dense`` and
``MaxPooling2D`` layers' backward passes, its ``Conv2D`` shapes and weight counts, its
``RMSprop`` optimiser, its ``metrics``. One line per exercise:

    passed | FAILED: what differs, by how much, and a hint | not written yet | ERROR: the exception

The exit status is 0 only when every checked exercise passes. ``--solutions`` checks the
reference answers of ``lessons/exercises/solutions/`` instead (they must pass).
"""
import argparse
import importlib
import sys
import traceback

import numpy as np

from tinynet import backend, layers, metrics, optimizers

EXERCISES = ("ex1_dense_backward", "ex2_conv_shapes", "ex3_rmsprop_step", "ex4_maxpool_backward",
             "ex5_confusion_f1")
TOLERANCE = 1e-10   # float64: the same formula computed two ways agrees to about 1e-15


class Mismatch(Exception):
    """An answer that differs from tinynet's: the message says what, by how much, and a hint."""


def _largest_difference(ours, theirs, what, hint):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    if ours.shape != theirs.shape:
        raise Mismatch(f"{what} has shape {ours.shape}, expected {theirs.shape}. Hint: {hint}")
    diff = float(np.max(np.abs(ours.astype(np.float64) - theirs.astype(np.float64)), initial=0.0))
    if not diff <= TOLERANCE:   # also catches NaN
        raise Mismatch(f"{what} differs from tinynet's by up to {diff:.3g}. Hint: {hint}")
    return diff


def _float64_layer(layer, input_shape):
    """Build ``layer`` in float64 (and leave the default float type as it was)."""
    saved = backend.floatx()
    backend.set_floatx("float64")
    try:
        layer.build(input_shape)
    finally:
        backend.set_floatx(saved)
    return layer


# ---- one checker per exercise: run the answer on random inputs, compare with tinynet ---------
def check_dense_backward(module):
    worst = 0.0
    for seed, (n, n_in, units) in enumerate([(1, 3, 2), (5, 7, 4), (16, 20, 10)]):
        rng = np.random.default_rng(seed)
        x, W, b = rng.standard_normal((n, n_in)), rng.standard_normal((n_in, units)), rng.standard_normal(units)
        grad_z = rng.standard_normal((n, units))
        dense = _float64_layer(layers.Dense(units), (n_in,))
        dense.set_weights([W, b])
        dense.forward(backend.asarray(x))
        dx_ref = backend.to_numpy(dense.backward(backend.asarray(grad_z)))
        dW_ref, db_ref = (backend.to_numpy(g) for g in dense.grads)
        dx, dW, db = module.dense_backward(x.copy(), W.copy(), b.copy(), grad_z.copy())
        worst = max(worst, _largest_difference(dW, dW_ref, "dW", "dW = x.T @ grad_z, shape (n_in, units)"),
                    _largest_difference(db, db_ref, "db", "db sums grad_z over the batch axis (axis 0)"),
                    _largest_difference(dx, dx_ref, "dx", "dx = grad_z @ W.T, shape (N, n_in)"))
    return f"max |difference| {worst:.1e} over 3 shapes"


def check_conv_shapes(module):
    cases = [(28, 5, 1, "same"), (28, 5, 1, "valid"), (28, 3, 2, "valid"), (28, 3, 2, "same"),
             (7, 2, 2, "valid"), (14, 7, 3, "valid"), (15, 4, 2, "same"), (9, 9, 1, "valid")]
    for n, k, s, padding in cases:
        conv = layers.Conv2D(4, k, strides=s, padding=padding)
        conv.build((n, n, 1))
        expected = conv.output_shape[0]
        got = module.conv_output_size(n, k, s, padding)
        if got != expected:
            raise Mismatch(f"conv_output_size({n}, {k}, {s}, {padding!r}) = {got}, tinynet's Conv2D "
                           f"gives {expected}. Hint: " +
                           ("'same' pads so that the output is ceil(n / stride)" if padding == "same"
                            else "(n - kernel) // stride + 1: the last window must fit whole"))
    for kh, kw, c, f in [(5, 5, 1, 9), (5, 5, 9, 9), (3, 3, 9, 16), (7, 7, 1, 9), (3, 5, 4, 2)]:
        conv = layers.Conv2D(f, (kh, kw))
        conv.build((12, 12, c))
        if module.conv_params(kh, kw, c, f) != conv.count_params():
            raise Mismatch(f"conv_params({kh}, {kw}, {c}, {f}) = {module.conv_params(kh, kw, c, f)}, "
                           f"tinynet counts {conv.count_params()}. Hint: one kh*kw*channels kernel "
                           "per filter, and one bias per filter")
    return f"{len(cases)} output sizes and 5 weight counts equal tinynet's"


def check_rmsprop_step(module):
    worst = 0.0
    for seed, settings in enumerate([{}, dict(learning_rate=0.01, rho=0.5), dict(rho=0.99, epsilon=1e-3)]):
        rng = np.random.default_rng(seed)
        theta = rng.standard_normal((3, 4))
        ours, s = theta.copy(), np.zeros_like(theta)
        reference = theta.copy()
        optimizer = optimizers.RMSprop(**settings)
        for step in range(5):
            g = rng.standard_normal(theta.shape) * 10.0 ** (step - 2)
            given = (ours.copy(), g.copy(), s.copy())
            before = given[0].copy()
            ours, s = module.rmsprop_step(*given, **settings)
            if not np.array_equal(given[0], before):
                raise Mismatch("rmsprop_step changed the theta array it was given. Hint: compute "
                               "theta - ... into a new array instead of using -=")
            optimizer.apply_gradients([(g, reference)])
            worst = max(worst, _largest_difference(
                ours, reference, f"theta after step {step + 1} with {settings or 'the defaults'}",
                "s is the running mean of g*g (equation 1) and epsilon goes inside the square "
                "root: g / sqrt(s + epsilon)"))
    return f"max |difference| {worst:.1e} over 3 settings x 5 steps"


def check_maxpool_backward(module):
    for seed, (shape, pool) in enumerate([((1, 4, 4, 1), 2), ((2, 6, 6, 3), 2), ((2, 7, 5, 2), 2),
                                          ((1, 9, 9, 2), 3)]):
        rng = np.random.default_rng(seed)
        x = rng.integers(0, 3, size=shape).astype(np.float64)   # small integers: many ties
        pooling = _float64_layer(layers.MaxPooling2D(pool), shape[1:])
        out = pooling.forward(backend.asarray(x))
        grad_out = rng.standard_normal(out.shape)
        expected = backend.to_numpy(pooling.backward(backend.asarray(grad_out)))
        got = module.maxpool_backward(x.copy(), grad_out.copy(), pool)
        _largest_difference(got, expected, f"dx for input {shape}, pool {pool}",
                            "one window's gradient goes to one element only, the first maximum in "
                            "row-major order (np.argmax of the flattened window); leftover rows "
                            "and columns get 0")
    return "4 shapes with ties, equal to tinynet's MaxPooling2D"


def check_confusion_f1(module):
    for seed, (n, k) in enumerate([(50, 3), (200, 10), (30, 6)]):
        rng = np.random.default_rng(seed)
        y_true = rng.integers(0, k, n)
        y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, k - 1, n))  # class k-1 rarely predicted
        cm = np.asarray(module.confusion_matrix(y_true.copy(), y_pred.copy(), k))
        expected = metrics.confusion_matrix(y_true, y_pred, k)
        _largest_difference(cm, expected, "the confusion matrix",
                            "rows are the true classes, columns the predicted ones")
        _largest_difference(module.f1_scores(expected), metrics.f1_scores(y_true, y_pred, k),
                            "the F1 scores", "precision = cm[k, k] / column sum, recall = "
                            "cm[k, k] / row sum, F1 = 2PR / (P + R), and 0 where a sum is 0")
    return "3 label sets, equal to tinynet.metrics"


CHECKERS = dict(zip(EXERCISES, (check_dense_backward, check_conv_shapes, check_rmsprop_step,
                                check_maxpool_backward, check_confusion_f1)))


def check(name, module):
    """``(status, detail)`` for one exercise: status is passed, failed, not written or error."""
    try:
        return "passed", CHECKERS[name](module)
    except NotImplementedError as e:
        return "not written", str(e) or "raises NotImplementedError"
    except Mismatch as e:
        return "failed", str(e)
    except Exception as e:  # noqa: BLE001  (a student's code can raise anything: report it)
        where = traceback.extract_tb(e.__traceback__)[-1]
        return "error", f"{type(e).__name__}: {e} (line {where.lineno} of {where.filename.split('/')[-1]})"


def resolve(names):
    if not names:
        return list(EXERCISES)
    chosen = []
    for name in names:
        matches = [e for e in EXERCISES if e == name or e.startswith(name)]
        if len(matches) != 1:
            raise SystemExit(f"unknown or ambiguous exercise {name!r}; choose from {', '.join(EXERCISES)}")
        chosen.append(matches[0])
    return chosen


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m lessons.check", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help="exercises to check (default: all); "
                                                                 "a prefix such as 'ex3' is enough")
    parser.add_argument("--solutions", action="store_true",
                        help="check the reference answers in lessons/exercises/solutions/")
    args = parser.parse_args(argv)
    package = "lessons.exercises.solutions" if args.solutions else "lessons.exercises"
    results = []
    for name in resolve(args.names):
        status, detail = check(name, importlib.import_module(f"{package}.{name}"))
        results.append(status)
        print(f"{name:22s} {status.upper() if status in ('failed', 'error') else status}: {detail}")
    passed = results.count("passed")
    print(f"\n{passed} of {len(results)} exercises pass" +
          ("" if passed == len(results) else
           f" ({package.replace('.', '/')}/: write or fix the others, then run this again)"))
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
