"""Numerical gradient checking: compare a layer's (or model's) backward pass with central differences.

For a scalar objective ``L(θ)`` the central difference

    dL/dθ_i ≈ (L(θ + h e_i) - L(θ - h e_i)) / (2h)

has an error of order ``h²``; in float64 with ``h = 1e-6`` it agrees with a correct analytic
gradient to about 1e-9. The objective is ``L = sum(y ⊙ G)`` for a fixed random ``G`` (so every
output element matters), or the model's compiled loss when labels are given.

The error reported for each array is the worst absolute difference scaled by the largest
gradient of that array: ``max_i |a_i - n_i| / max_i max(|a_i|, |n_i|)``. Run in float64
(``backend.set_floatx("float64")`` before building): float32 cannot resolve the differences.
"""
import numpy as np

from . import backend
from . import training as training_


def relative_error(analytic, numeric):
    a, n = backend.to_numpy(analytic).astype(np.float64), np.asarray(numeric, dtype=np.float64)
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


def _seeded(fn, seed):
    """Run ``fn`` with a generator seeded with ``seed`` (the same dropout mask every call)."""
    with backend.generator(np.random.default_rng(seed)):
        return fn()


def check_layer(layer, x, training=False, h=1e-6, entries=None, seed=0):
    """Worst relative error of ``layer``'s gradients: ``{"input": e, "kernel"/"w0": e, ...}``.

    ``x`` is an input batch (a list of them for ``Add``); ``entries`` limits how many randomly
    chosen elements of each array are checked (default: all).
    """
    rng = np.random.default_rng(seed)
    xs = x if isinstance(x, list) else [x]
    y = _seeded(lambda: layer.forward(x, training=training), seed)
    G = backend.asarray(rng.standard_normal(y.shape))

    def objective():
        return float((_seeded(lambda: layer.forward(x, training=training), seed) * G).sum())

    _seeded(lambda: layer.forward(x, training=training), seed)
    dx = layer.backward(G)
    dxs = dx if isinstance(dx, list) else [dx]
    grads = [g.copy() for g in layer.grads]
    out = {}
    for k, (xi, dxi) in enumerate(zip(xs, dxs)):
        _compare("input" if len(xs) == 1 else f"input_{k}", dxi, objective, xi, h, entries, rng, out)
    for k, (p, g) in enumerate(zip(layer.params, grads)):
        _compare(f"w{k}", g, objective, p, h, entries, rng, out)
    return out


def check_model(model, x, y=None, h=1e-6, entries=None, seed=0, training=False):
    """Worst relative error of every parameter array of ``model`` and of its input.

    Without ``y`` the objective is ``sum(output ⊙ G)``; with one-hot ``y`` it is the compiled loss
    (through the fused softmax + cross-entropy when the model ends in a softmax, as in ``fit``).
    Keys are ``"input"`` and ``"<layer name>/<parameter>"``, the parameter named as the layer
    holds it (``"dense/kernel"``, ``"dense/bias"``; see ``Layer.param_names``).
    """
    rng = np.random.default_rng(seed)
    if y is not None:
        model._require_compiled("check_model with labels (the compiled loss is the objective)")
    x = backend.asarray(x, dtype=model.dtype)

    if y is None:
        out_val = _seeded(lambda: model.graph.forward(x, training=training), seed)
        G = backend.asarray(rng.standard_normal(out_val.shape))

        def objective():
            return float((_seeded(lambda: model.graph.forward(x, training=training), seed) * G).sum())
        dx = model.graph.backward(G)
    else:
        y = backend.asarray(y, dtype=model.dtype)

        def loss_and_gradient():
            return _seeded(lambda: training_.loss_and_gradient(model, x, y, training), seed)

        def objective():
            return float(loss_and_gradient()[1].mean())
        dx = model.graph.backward(loss_and_gradient()[2])
    results = {}
    analytic = {f"{layer.name}/{name}": g.copy() for layer in model.graph.order
                for name, g in zip(layer.param_names(), layer.grads)}
    _compare("input", dx, objective, x, h, entries, rng, results)
    for layer in model.graph.order:
        for name, p in zip(layer.param_names(), layer.params):
            name = f"{layer.name}/{name}"
            _compare(name, analytic[name], objective, p, h, entries, rng, results)
    return results
