"""``python -m lessons.check [NAME ...] [--solutions | --dir FOLDER]``: check the exercises against tinynet.

Every exercise in ``lessons/exercises/`` is run on random inputs (several shapes and seeds) and
compared with tinynet's own implementation of the same thing: its ``Dense`` and
``MaxPooling2D`` layers' backward passes, its ``Conv2D`` shapes and weight counts, its
``RMSprop`` optimiser, its ``metrics``. One line per exercise:

    passed | FAILED: what differs, by how much, and a hint | not written | ERROR: the exception

The exit status is 0 only when every checked exercise passes. ``--solutions`` checks the
reference answers of ``lessons/exercises/solutions/`` instead (they must pass); ``--dir FOLDER``
checks copies of the exercise files kept in ``FOLDER``, outside the repository.
"""
import argparse
import importlib
import importlib.util
import itertools
import sys
import traceback
from pathlib import Path

import numpy as np

from tinynet import backend, layers, metrics, optimizers

EXERCISES = ("ex1_dense_backward", "ex2_conv_shapes", "ex3_rmsprop_step", "ex4_maxpool_backward",
             "ex5_confusion_f1")
TOLERANCE = 1e-10   # float64: the same formula computed two ways agrees to about 1e-15


class Mismatch(Exception):
    """An answer that differs from tinynet's: the message says what, by how much, and a hint."""


def _diagnosis(ours, theirs, start=None, batch=None):
    """What a wrong answer looks like next to tinynet's, when it is a simple change of it (the sign,
    a constant factor, the transpose, float32, NaN): a phrase, or "" when it is none of these.
    With ``start``, the changes ``answer - start`` are compared (an update step's direction)."""
    ours64, theirs64 = ours.astype(np.float64), theirs.astype(np.float64)
    if np.isnan(ours64).any() and not np.isnan(theirs64).any():
        return (f"it has NaN where tinynet's has {theirs64[np.isnan(ours64)].ravel()[0]:g}: a 0 / 0? "
                "(read again what the exercise says about a denominator of 0)")
    size = float(np.max(np.abs(theirs64), initial=0.0))
    if ours.dtype != np.float64 and np.allclose(ours64, theirs64, rtol=1e-5, atol=1e-6 * size):
        return (f"it is computed in {ours.dtype}: keep the inputs' float64 (no .astype(np.float32)), "
                "the checker compares to 1e-10")
    it = "its change from the input you were given" if start is not None else "it"
    if start is not None:
        ours64, theirs64 = ours64 - start, theirs64 - start
    scale = float(np.max(np.abs(theirs64), initial=0.0))
    if scale > 0 and np.allclose(ours64, -theirs64, rtol=1e-9, atol=1e-12 * scale):
        return f"{it} is minus tinynet's: check the sign"
    big = np.abs(theirs64) > 1e-6 * scale
    if scale > 0 and big.any():
        ratio = ours64[big] / theirs64[big]
        r = float(ratio[0])
        if np.allclose(ratio, r, rtol=1e-9) and np.allclose(ours64, r * theirs64, atol=1e-12 * scale):
            factor = f"{it} is tinynet's times {r:.6g}"
            if batch and (np.isclose(r, 1 / batch) or np.isclose(r, batch)):
                factor += f" ({'1 / ' if r < 1 else ''}N, N = {batch} the batch size: a sum or a mean?)"
            return factor
    if ours64.ndim == 2 and ours64.shape[0] == ours64.shape[1] and \
            np.allclose(ours64, theirs64.T, rtol=1e-9, atol=1e-12 * max(scale, 1e-300)):
        return "it is the transpose of tinynet's (rows and columns swapped)"
    return ""


def _largest_difference(ours, theirs, what, hint, start=None, batch=None):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    if ours.shape != theirs.shape:
        raise Mismatch(f"{what} has shape {ours.shape}, expected {theirs.shape}. Hint: {hint}")
    diff = float(np.max(np.abs(ours.astype(np.float64) - theirs.astype(np.float64)), initial=0.0))
    if not diff <= TOLERANCE:   # also catches NaN
        why = _diagnosis(ours, theirs, start, batch)
        nan_ours, nan_theirs = np.isnan(ours), np.isnan(theirs)
        if (nan_ours != nan_theirs).any():   # a difference of NaN says nothing: say where
            where = int((nan_ours & ~nan_theirs).sum())
            found = (f"NaN in {where} of {ours.size} entries where tinynet's has a number"
                     if where else f"a number in {int((nan_theirs & ~nan_ours).sum())} of "
                                   f"{ours.size} entries where tinynet's has NaN")
        else:
            gaps = np.abs(ours.astype(np.float64) - theirs.astype(np.float64))
            at = np.unravel_index(int(np.argmax(gaps)), gaps.shape)
            found = (f"largest difference from tinynet's {diff:.3g}"
                     + (f", at index {tuple(int(i) for i in at)} (yours {float(ours[at]):.4g}, "
                        f"tinynet's {float(theirs[at]):.4g}); {int((gaps > TOLERANCE).sum())} of "
                        f"{gaps.size} entries differ" if gaps.ndim else ""))
        raise Mismatch(f"{what}: {found}" + (f"; {why}" if why else "") + f". Hint: {hint}")
    return diff


def _returned(got, names, call, expected=None):
    """The arrays an exercise returns, as NumPy arrays: ``names`` says how many and in which
    order. A missing ``return``, a single array or a tuple of another length is a Mismatch that
    says what came back (rather than Python's "cannot unpack"); so are the right arrays in
    another order, when tinynet's (``expected``, in the order of ``names``) are given."""
    wanted = f"return the tuple ({', '.join(names)})"
    if got is None:
        raise Mismatch(f"{call} returned None: a missing `return`? Hint: {wanted}")
    if not isinstance(got, (tuple, list)) or len(got) != len(names):
        what = (f"{len(got)} values" if isinstance(got, (tuple, list))
                else f"one array of shape {np.shape(got)}" if isinstance(got, np.ndarray)
                else f"a {type(got).__name__}")
        raise Mismatch(f"{call} returned {what}. Hint: {wanted}")
    got = [np.asarray(g) for g in got]

    def matches(order):
        return all(g.shape == np.shape(expected[k]) and np.allclose(g, expected[k])
                   for g, k in zip(got, order))
    if expected is not None and not matches(range(len(names))):  # (equal arrays: either order)
        for order in itertools.permutations(range(len(names))):
            if matches(order):
                raise Mismatch(f"{call} returned the right arrays in the order "
                               f"({', '.join(names[k] for k in order)}). Hint: {wanted}")
    return got


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
        dx, dW, db = _returned(module.dense_backward(x.copy(), W.copy(), b.copy(), grad_z.copy()),
                               ("dx", "dW", "db"), "dense_backward", (dx_ref, dW_ref, db_ref))
        worst = max(worst,
                    _largest_difference(dW, dW_ref, "dW", "dW[i, j] sums x[n, i] * grad_z[n, j] "
                                        "over the batch (lesson 0): the shape of W, (n_in, units)",
                                        batch=n),
                    _largest_difference(db, db_ref, "db", "db sums grad_z over the batch axis "
                                        "(axis 0)", batch=n),
                    _largest_difference(dx, dx_ref, "dx", "dx[n, i] sums grad_z[n, j] * W[i, j] "
                                        "over the units j (lesson 0): the shape of x, (N, n_in)",
                                        batch=n))
    return f"max |difference| {worst:.1e} over 3 shapes"


def _size_hint(got, expected, padding):
    """What a wrong output size of ex2 suggests, without the formula."""
    if padding == "same":
        return ("'same' pads the image so that the windows, one every stride pixels, start at "
                "every stride-th pixel of it: count those starts (the docstring says how Keras "
                "rounds)")
    if isinstance(got, (int, np.integer, float, np.floating)) and got == expected - 1:
        return "one window short: is the window that starts at the first pixel counted?"
    if isinstance(got, (int, np.integer, float, np.floating)) and got == expected + 1:
        return ("one window too many: the last window must lie whole inside the image (a size "
                "rounds down)")
    return ("'valid' adds no padding: a window starts at pixel 0, the next stride pixels further, "
            "and the last one must end inside the image; count the starts (a size rounds down)")


def check_conv_shapes(module):
    cases = [(28, 5, 1, "same"), (28, 5, 1, "valid"), (28, 3, 2, "valid"), (28, 3, 2, "same"),
             (7, 2, 2, "valid"), (14, 7, 3, "valid"), (15, 4, 2, "same"), (9, 9, 1, "valid"),
             (11, 3, 3, "valid"), (10, 3, 4, "same")]  # the last two: round() is not floor/ceil
    for n, k, s, padding in cases:
        conv = layers.Conv2D(4, k, strides=s, padding=padding)
        conv.build((n, n, 1))
        expected = conv.output_shape[0]
        got = module.conv_output_size(n, k, s, padding)
        if isinstance(got, np.ndarray) and got.ndim == 0:  # np.array(28), np.floor(...) of an array
            got = got.item()
        if not isinstance(got, (int, np.integer, float, np.floating)) or not float(got).is_integer():
            raise Mismatch(f"conv_output_size({n}, {k}, {s}, {padding!r}) returned {got!r}: a "
                           "size counts pixels, a whole number. Hint: round down with // (or "
                           "math.floor), up with math.ceil")
        if got != expected:
            raise Mismatch(f"conv_output_size({n}, {k}, {s}, {padding!r}) = {got}, tinynet's Conv2D "
                           f"gives {expected}. Hint: " + _size_hint(got, expected, padding))
    for kh, kw, c, f in [(5, 5, 1, 9), (5, 5, 9, 9), (3, 3, 9, 16), (7, 7, 1, 9), (3, 5, 4, 2)]:
        conv = layers.Conv2D(f, (kh, kw))
        conv.build((12, 12, c))
        got, expected = module.conv_params(kh, kw, c, f), conv.count_params()
        if got != expected:
            hint = (f"{expected - got} short, one for each of the {f} filters: what does a filter "
                    "have besides its kernel?" if expected - got == f else
                    f"a filter's kernel covers a {kh}x{kw} window of every one of the {c} input "
                    "channels")
            raise Mismatch(f"conv_params({kh}, {kw}, {c}, {f}) = {got}, tinynet counts {expected}. "
                           f"Hint: {hint}")
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
            before = [a.copy() for a in given]
            ours, s = _returned(module.rmsprop_step(*given, **settings), ("theta", "s"),
                                "rmsprop_step")
            for name, a, b in zip(("theta", "g", "s"), given, before):
                if not np.array_equal(a, b):
                    raise Mismatch(f"rmsprop_step changed the {name} array it was given. Hint: "
                                   f"compute the new values into new arrays instead of using -=, "
                                   "+= or *= on the inputs")
            optimizer.apply_gradients([(g, reference)])
            s_ref = optimizer.get_state([reference])["slots"][0][0]
            where = f"after step {step + 1} with {settings or 'the defaults'}"
            if (np.shape(ours) == np.shape(s) == s_ref.shape and np.allclose(ours, s_ref)
                    and np.allclose(s, reference)):
                raise Mismatch(f"rmsprop_step's first value is the new s and its second the new "
                               f"theta ({where}). Hint: return them in the order (theta, s)")
            _largest_difference(s, s_ref, f"the s you return {where}",
                                "equation (1): the new s = rho * s + (1 - rho) * (g * g), rho weighing "
                                "the old s; return it with theta")
            worst = max(worst, _largest_difference(
                ours, reference, f"theta {where}", "equation (2) with the new s, and epsilon inside "
                "the square root: theta - learning_rate * g / sqrt(s + epsilon)", start=before[0]))
    return f"max |difference| {worst:.1e} over 3 settings x 5 steps"


def check_maxpool_backward(module):
    for seed, (shape, pool, low) in enumerate([((1, 4, 4, 1), 2, 0), ((2, 6, 6, 3), 2, 0), ((2, 7, 5, 2), 2, 0),
                                               ((1, 9, 9, 2), 3, 0), ((2, 6, 6, 3), 2, -3)]):
        rng = np.random.default_rng(seed)
        # small integers: many ties; the last input is all negative (a running maximum started at 0 fails it)
        x = rng.integers(low, low + 3, size=shape).astype(np.float64)
        pooling = _float64_layer(layers.MaxPooling2D(pool), shape[1:])
        out = pooling.forward(backend.asarray(x))
        grad_out = rng.standard_normal(out.shape)
        expected = backend.to_numpy(pooling.backward(backend.asarray(grad_out)))
        got = module.maxpool_backward(x.copy(), grad_out.copy(), pool)
        _largest_difference(got, expected, f"dx for input {shape}{' (all negative)' if low < 0 else ''}, pool {pool}",
                            "one window's gradient goes to one element only, the first maximum in "
                            "row-major order (np.argmax of the flattened window), whatever the sign "
                            "of x; leftover rows and columns get 0")
    return "5 inputs with ties (one all negative), equal to tinynet's MaxPooling2D"


def check_confusion_f1(module):
    for seed, (n, k) in enumerate([(50, 3), (200, 10), (30, 6), (40, 5), (25, 7)]):
        rng = np.random.default_rng(seed)
        y_true = rng.integers(0, k, n)
        y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, k - 1, n))  # class k-1 rarely predicted
        if k == 5:  # class 0 never predicted (a column of 0s), class 4 never present (a row of 0s)
            y_true, y_pred = rng.integers(0, k - 1, n), rng.integers(1, k, n)
        if k == 7:  # classes 5 and 6 in neither: the size comes from num_classes, not from the labels
            y_true, y_pred = rng.integers(0, 5, n), rng.integers(0, 5, n)
        cm = np.asarray(module.confusion_matrix(y_true.copy(), y_pred.copy(), k))
        expected = metrics.confusion_matrix(y_true, y_pred, k)
        if cm.shape == expected.shape and expected.max() > 1 and np.array_equal(cm, expected > 0):
            raise Mismatch("the confusion matrix holds 1 where tinynet's counts up to "
                           f"{expected.max()}: each (true, predicted) pair is counted once. Hint: "
                           "cm[y_true, y_pred] += 1 with index arrays adds 1 once per distinct "
                           "pair (NumPy writes a repeated index once); use np.add.at(cm, (y_true, "
                           "y_pred), 1) or a loop over the samples")
        _largest_difference(cm, expected, "the confusion matrix",
                            "num_classes x num_classes (a class may be in neither list), rows "
                            "the true classes, columns the predicted ones")
        _largest_difference(module.f1_scores(expected), metrics.f1_scores(y_true, y_pred, k),
                            "the F1 scores", "precision = cm[k, k] / column sum, recall = "
                            "cm[k, k] / row sum, F1 = 2PR / (P + R), and 0 where a sum is 0")
    return ("5 label sets (a class never predicted, one never present, two in neither), equal to "
            "tinynet.metrics")


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
        frames = traceback.extract_tb(e.__traceback__)
        own = getattr(module, "__file__", None)
        # the student's line: the last frame in the exercise's file (else the last frame of all)
        where = next((f for f in reversed(frames) if own and f.filename == own), frames[-1])
        line = f": {where.line}" if where.line else ""
        return "error", (f"{type(e).__name__}: {e} (line {where.lineno} of "
                         f"{where.filename.split('/')[-1]}{line})")


def _load_error(e, name):
    """``ERROR`` detail for an exercise file that does not even load (a syntax error, a misspelt
    import): the exception and the student's line, so that the other exercises still run."""
    if isinstance(e, SyntaxError):
        line = f": {e.text.strip()}" if e.text else ""
        return (f"{type(e).__name__}: {e.msg} (line {e.lineno} of "
                f"{Path(e.filename or name).name}{line})")
    frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename.endswith(f"{name}.py")]
    where = (f" (line {frames[-1].lineno} of {name}.py: {frames[-1].line})" if frames else
             f" (while loading {name}.py)")
    return f"{type(e).__name__}: {e}{where}"


def _from_folder(folder, name):
    """The exercise ``name`` from ``folder/name.py`` (a copy kept outside the repository)."""
    path = Path(folder) / f"{name}.py"
    if not path.is_file():
        raise NotImplementedError(f"there is no {path}: copy lessons/exercises/{name}.py there")
    spec = importlib.util.spec_from_file_location(f"exercise_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    parser.add_argument("--dir", metavar="FOLDER",
                        help="check the answers in FOLDER (copies of lessons/exercises/*.py that "
                             "you keep elsewhere) instead of lessons/exercises/")
    args = parser.parse_args(argv)
    if args.dir and args.solutions:
        parser.error("--dir and --solutions both say where the answers are: give one of them")
    package = "lessons.exercises.solutions" if args.solutions else "lessons.exercises"
    results = []
    for name in resolve(args.names):
        try:
            module = (_from_folder(args.dir, name) if args.dir
                      else importlib.import_module(f"{package}.{name}"))
            status, detail = check(name, module)
        except NotImplementedError as e:
            status, detail = "not written", str(e)
        except Exception as e:  # noqa: BLE001  (the file does not load: say why, check the others)
            status, detail = "error", _load_error(e, name)
        results.append(status)
        print(f"{name:22s} {status.upper() if status in ('failed', 'error') else status}: {detail}")
    passed = results.count("passed")
    folder = args.dir or package.replace(".", "/")
    print(f"\n{passed} of {len(results)} exercises pass" +
          ("" if passed == len(results) else
           f" ({folder}/: write or fix the others, then run this again)"))
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
