"""Numerical gradient checking: compare a layer's (or model's) backward pass with central differences.

For a scalar objective ``L(θ)`` the central difference

    dL/dθ_i ≈ (L(θ + h e_i) - L(θ - h e_i)) / (2h)

has an error of order ``h²``; in float64 with ``h = 1e-6`` it agrees with a correct analytic
gradient to about 1e-9. The objective is ``L = sum(y ⊙ G)`` for a fixed random ``G`` (so every
output element matters), or the model's compiled loss when labels are given.

The error reported for each array is the worst absolute difference scaled by the largest
gradient of that array: ``max_i |a_i - n_i| / max_i max(|a_i|, |n_i|)``. Run in float64
(``backend.set_floatx("float64")`` before building): float32 cannot resolve the differences (a
correct layer reports 1e-2 up to about 1 there; the checks warn).

Kinks: a ReLU at exactly 0 and a max-pooling window with tied values have no derivative, and a
central difference across them is wrong for a correct backward pass. Check on random inputs
and non-zero biases: on real images, blank regions put whole windows at a kink (zero biases,
ReLUs at 0, pooling ties), and a correct CNN then reports errors of 0.3-0.5.
"""
import math
import numbers
import warnings

import numpy as np

from . import backend
from . import training as training_
from .layers.base import Layer


def relative_error(analytic, numeric):
    """``max_i |a_i - n_i| / max_i max(|a_i|, |n_i|)`` of two arrays of one shape (0 when both
    are all zeros)."""
    a, n = backend.to_numpy(analytic).astype(np.float64), np.asarray(numeric, dtype=np.float64)
    if a.shape != n.shape:  # broadcast, they would compare entries that do not correspond
        raise ValueError(f"relative_error: the analytic gradient has shape {a.shape} and the "
                         f"numerical one {n.shape}; the two shapes differ, so their entries do "
                         "not correspond: compare arrays of one shape (numeric.reshape("
                         "analytic.shape) if they hold the same entries in the same order)")
    scale = max(np.abs(a).max(initial=0.0), np.abs(n).max(initial=0.0))
    return 0.0 if scale == 0 else float(np.abs(a - n).max() / scale)


def _numeric(f, array, h, entries, rng):
    """Central differences of ``f()`` with respect to the entries of ``array``, changed in place
    one at a time (through its own indices: a view or a non-contiguous array is changed itself,
    never a copy)."""
    size = int(np.prod(array.shape))
    idx = np.arange(size) if entries is None or entries >= size else \
        rng.choice(size, size=entries, replace=False)
    grad = np.zeros(size)
    for i in idx:
        at = np.unravel_index(int(i), array.shape)
        old = array[at].item()
        array[at] = old + h
        f_plus = f()
        array[at] = old - h
        f_minus = f()
        array[at] = old
        grad[i] = (f_plus - f_minus) / (2 * h)
    return grad, idx


def _compare(name, analytic, f, array, h, entries, rng, out):
    numeric, idx = _numeric(f, array, h, entries, rng)
    a = backend.to_numpy(analytic).reshape(-1)[idx]
    out[name] = relative_error(a, numeric[idx])


def _warn_if_float32(dtype, what):
    if np.dtype(dtype) != np.float64:
        warnings.warn(f"gradcheck: {what} computes in {np.dtype(dtype).name}, whose rounding makes "
                      "central differences wrong by 1e-2 or more even for a correct backward "
                      "pass; build it after backend.set_floatx('float64')", UserWarning,
                      stacklevel=3)


def _filled(layer, grads):
    """The layer's weight gradients, copied, or an error naming one its backward left unset."""
    for name, g in zip(layer.param_names(), grads):
        if g is None:
            raise ValueError(f"layer '{layer.name}': backward() left the gradient of its "
                             f"{name!r} unset; _backward must fill self.grads (in the order of "
                             "self.params) with dL/d(each weight)")
    return [g.copy() for g in grads]


def _check_arguments(where, h, entries):
    """``h`` a finite step > 0 and ``entries`` None or a whole number >= 1, else an error saying
    why (``entries=0`` would check nothing and report 0.0, a perfect score, for every array)."""
    if isinstance(h, bool) or not isinstance(h, numbers.Real) or not math.isfinite(h) or h <= 0:
        raise ValueError(f"{where}: h, the step of the central differences, must be a finite "
                         f"number > 0, got {h!r}; the default 1e-6 suits float64")
    if entries is not None and (isinstance(entries, bool) or
                                not isinstance(entries, numbers.Integral) or entries < 1):
        raise ValueError(f"{where}: entries must be a whole number >= 1 (how many randomly "
                         f"chosen entries of each array to check) or None (all of them), got "
                         f"{entries!r}" + (": with 0 nothing would be checked and every error "
                                           "would read 0.0" if entries == 0 else ""))


def _require_finite(where, what, array):
    if not bool(backend.get_array_module(array).isfinite(array).all()):
        raise ValueError(f"{where}: {what} contains NaN or infinite values (fit refuses them "
                         "too): every difference, and so every error, would be NaN; check on "
                         "finite values, e.g. x = np.random.default_rng(0).standard_normal("
                         "shape)")


def _seeded(fn, seed):
    """Run ``fn`` with a generator seeded with ``seed`` (the same dropout mask every call)."""
    with backend.generator(np.random.default_rng(seed)):
        return fn()


def check_layer(layer, x, training=False, h=1e-6, entries=None, seed=0):
    """Worst relative error of ``layer``'s gradients: ``{"input": e, "kernel": e, "bias": e}``
    (a weight by the attribute that holds it, else ``"w0"``, ``"w1"``, ...).

    ``x`` is an input batch (a list of them for ``Add``), of finite numbers; ``entries`` (>= 1)
    limits how many randomly chosen elements of each array are checked (default: all), ``h`` is
    the step of the differences (> 0). The inputs are copied in the
    layer's float type (the differences are taken on what the layer computes with), and a
    backward pass that changes the gradient it is given, which in a model can be another
    branch's as well (``Add`` passes one array to all its inputs), is refused.
    """
    if not isinstance(layer, Layer):
        model = hasattr(layer, "graph") and hasattr(layer, "layers")
        raise TypeError(f"check_layer: layer must be a tinynet layer object, such as "
                        f"layers.Dense(3), got {layer!r} (a {type(layer).__name__})" +
                        ("; for a whole model use gradcheck.check_model(model, x)" if model
                         else ""))
    _check_arguments("check_layer", h, entries)
    given = x if isinstance(x, list) else [x]
    for k, xi in enumerate(given):  # before the layer sees them
        xi = backend.to_numpy(xi)
        if xi.dtype.kind in "fc":
            _require_finite("check_layer", "x" if len(given) == 1 else f"x[{k}]", xi)
    rng = np.random.default_rng(seed)
    _seeded(lambda: layer.forward(x, training=training), seed)  # builds it: its float type
    _warn_if_float32(layer.dtype, f"layer '{layer.name}'")
    xs = [backend.asarray(xi, dtype=layer.dtype).copy() for xi in given]
    x = xs if isinstance(x, list) else xs[0]
    y = _seeded(lambda: layer.forward(x, training=training), seed)
    G = backend.asarray(rng.standard_normal(y.shape), dtype=y.dtype)

    def objective():
        return float((_seeded(lambda: layer.forward(x, training=training), seed) * G).sum())

    _seeded(lambda: layer.forward(x, training=training), seed)
    given = G.copy()
    dx = layer.backward(given)
    if not bool((given == G).all()):
        raise ValueError(f"layer '{layer.name}': backward() changed the gradient it was given, "
                         "dL/d(output), in place; in a model that array can be another layer's "
                         "too (Add passes one array to every input), whose gradients it then "
                         "corrupts: compute a new array (dz = dy * mask, not dy[mask] = 0)")
    dxs = dx if isinstance(dx, list) else [dx]
    grads = _filled(layer, layer.grads)
    out = {}
    for k, (xi, dxi) in enumerate(zip(xs, dxs)):
        _compare("input" if len(xs) == 1 else f"input_{k}", dxi, objective, xi, h, entries, rng, out)
    for name, p, g in zip(layer.param_names(), layer.params, grads):
        _compare(name, g, objective, p, h, entries, rng, out)
    return out


def check_model(model, x, y=None, h=1e-6, entries=None, seed=0, training=False):
    """Worst relative error of every parameter array of ``model`` and of its input.

    Without ``y`` the objective is ``sum(output ⊙ G)``; with one-hot ``y`` it is the compiled loss
    (through the fused softmax + cross-entropy when the model ends in a softmax, as in ``fit``).
    Keys are ``"input"`` and ``"<layer name>/<parameter>"``, the parameter named as the layer
    holds it (``"dense/kernel"``, ``"dense/bias"``; see ``Layer.param_names``). ``x`` is checked
    as ``fit`` checks it (its shape, NaN, infinity), and a ``Sequential`` without an ``Input`` is
    built on it; ``h`` and ``entries`` as in :func:`check_layer`.
    """
    if isinstance(model, Layer) or not hasattr(model, "_prepare_x"):
        raise TypeError(f"check_model: model must be a tinynet model (Sequential or Model), "
                        f"got {model!r} (a {type(model).__name__})" +
                        ("; for a layer use gradcheck.check_layer(layer, x)"
                         if isinstance(model, Layer) else ""))
    _check_arguments("check_model", h, entries)
    rng = np.random.default_rng(seed)
    if y is not None:
        model._require_compiled("check_model with labels (the compiled loss is the objective)")
    # fit's checks of x (its shape, NaN, infinity); a Sequential without an Input is built on it
    x = model._prepare_x(x, "check_model").copy()
    _warn_if_float32(model.dtype, f"model '{model.name}'")

    if y is None:
        out_val = _seeded(lambda: model.graph.forward(x, training=training), seed)
        G = backend.asarray(rng.standard_normal(out_val.shape))

        def objective():
            return float((_seeded(lambda: model.graph.forward(x, training=training), seed) * G).sum())
        dx = model.graph.backward(G)
    else:
        y = backend.asarray(y, dtype=model.dtype)
        _require_finite("check_model", "y", y)

        def loss_and_gradient():
            return _seeded(lambda: training_.loss_and_gradient(model, x, y, training), seed)

        def objective():
            return float(loss_and_gradient()[1].mean())
        dx = model.graph.backward(loss_and_gradient()[2])
    results = {}
    analytic = {f"{layer.name}/{name}": g for layer in model.graph.order
                for name, g in zip(layer.param_names(), _filled(layer, layer.grads))}
    _compare("input", dx, objective, x, h, entries, rng, results)
    for layer in model.graph.order:
        for name, p in zip(layer.param_names(), layer.params):
            name = f"{layer.name}/{name}"
            _compare(name, analytic[name], objective, p, h, entries, rng, results)
    return results
