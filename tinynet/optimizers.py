"""Optimizers that update parameters in place: ``optimizer.apply_gradients(zip(grads, params))``.

Each keeps its state (running averages, momenta) per parameter, keyed by the parameter's
*position* in the list it is given (the model always gives its parameters in the same order), so
the state follows the model through a save, a load or a copy of its arrays. A parameter's state
arrays are created as zeros of its shape, dtype and device on first use. The updates follow
Keras 3 exactly.
"""
import numpy as np

from . import backend
from .backend import get_array_module


class ParamState(dict):
    """The state arrays of one parameter, by name (``"s"``, ``"moment"``, ...)."""

    def arrays(self, like, *names):
        """The state arrays ``names`` (zeros like ``like`` on first use), in that order."""
        for n in names:
            if n not in self:
                self[n] = get_array_module(like).zeros_like(like)
        return [self[n] for n in names]


class Optimizer:
    def __init__(self, learning_rate):
        self.learning_rate = float(learning_rate)
        self.iterations = 0
        self._slots = []  # ParamState of the i-th parameter given to apply_gradients

    def get_config(self):
        raise NotImplementedError

    def _param_state(self, i, param):
        while len(self._slots) <= i:
            self._slots.append(ParamState())
        state = self._slots[i]
        for name, a in state.items():
            if a.shape != param.shape:
                raise ValueError(f"{type(self).__name__}: parameter {i} has shape "
                                 f"{tuple(param.shape)} but its state {name!r} has shape "
                                 f"{tuple(a.shape)}: is this optimizer used for another model? "
                                 "Give each model its own optimizer")
        return state

    def apply_gradients(self, grads_and_params):
        for i, (g, p) in enumerate(grads_and_params):
            if g is None:
                continue
            if g.shape != p.shape:
                raise ValueError(f"gradient of shape {tuple(g.shape)} for a parameter of shape "
                                 f"{tuple(p.shape)}")
            self.update(p, g.astype(p.dtype, copy=False), self._param_state(i, p))
        self.iterations += 1

    def update(self, theta, g, state):
        """Update ``theta`` in place from its gradient ``g``; ``state`` is its :class:`ParamState`."""
        raise NotImplementedError

    def snapshot(self, params):
        """Copies of ``params`` and of their state, to undo a step with :meth:`restore`."""
        return (self.iterations, [p.copy() for p in params],
                [{n: a.copy() for n, a in state.items()} for state in self._slots])

    def restore(self, params, snap):
        """Put back the parameters and the state saved by :meth:`snapshot` (in place)."""
        self.iterations, saved_params, saved_slots = snap
        for p, saved in zip(params, saved_params):
            p[...] = saved
        del self._slots[len(saved_slots):]  # state created by the undone step
        for state, saved in zip(self._slots, saved_slots):
            for n in list(state):
                if n in saved:
                    state[n][...] = saved[n]
                else:
                    del state[n]

    # state as plain arrays, in the order of the parameters (for saving and loading)
    def get_state(self, params):
        names = self.slot_names()
        out = []
        for i, _ in enumerate(params):
            state = self._slots[i] if i < len(self._slots) else {}
            out.append([None if n not in state else np.asarray(backend.to_numpy(state[n]))
                        for n in names])
        return {"iterations": self.iterations, "slots": out}

    def set_state(self, params, state):
        self.iterations = int(state["iterations"])
        names = self.slot_names()
        self._slots = []
        for i, (p, arrays) in enumerate(zip(params, state["slots"])):
            slots = self._param_state(i, p)
            for n, a in zip(names, arrays):
                if a is not None:
                    slots[n] = get_array_module(p).asarray(a, dtype=p.dtype)

    def slot_names(self):
        return ()


class RMSprop(Optimizer):
    """RMSprop as in the practical work's equations, with Keras's momentum and centered options.

    For each parameter ``θ`` with gradient ``g``:

        (1)  s = ρ s + (1 - ρ) g ⊙ g                      running mean of squared gradients
        (2)  θ = θ - η g ⊘ sqrt(s + ε)                    (ε inside the root, as in Keras)

    ``centered=True`` also tracks the mean gradient ``ḡ = ρ ḡ + (1 - ρ) g`` and divides by
    ``sqrt(s - ḡ² + ε)`` (an estimate of the variance instead of the raw second moment).
    ``momentum=μ > 0`` accumulates the step: ``m = μ m + η g ⊘ sqrt(...)``, ``θ = θ - m``.
    """

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-07, centered=False):
        super().__init__(learning_rate)
        if not 0.0 <= rho < 1.0:
            raise ValueError(f"RMSprop: rho must be in [0, 1), got {rho}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"RMSprop: momentum must be in [0, 1), got {momentum}")
        self.rho, self.momentum, self.epsilon = float(rho), float(momentum), float(epsilon)
        self.centered = bool(centered)

    def get_config(self):
        return {"class": "RMSprop", "learning_rate": self.learning_rate, "rho": self.rho,
                "momentum": self.momentum, "epsilon": self.epsilon, "centered": self.centered}

    def slot_names(self):
        return ("s", "mean_grad", "moment")

    def update(self, theta, g, state):
        rho, eta, eps = self.rho, self.learning_rate, self.epsilon
        fused = backend.fused("rmsprop_update", theta)
        if fused is not None:  # the backend runs the lines below as one kernel (the GPU's)
            fused(theta, g, *state.arrays(theta, "s", "mean_grad", "moment"), eta, rho, eps,
                  self.momentum, self.centered)
            return
        (s,) = state.arrays(theta, "s")
        s *= rho
        s += (1 - rho) * g * g                               # equation (1)
        denominator = s + eps
        if self.centered:
            (mean_grad,) = state.arrays(theta, "mean_grad")
            mean_grad *= rho
            mean_grad += (1 - rho) * g
            denominator = s - mean_grad * mean_grad + eps
        step = eta * g / get_array_module(g).sqrt(denominator)  # equation (2): η g ⊘ sqrt(s + ε)
        if self.momentum > 0:
            (moment,) = state.arrays(theta, "moment")
            moment *= self.momentum
            moment += step
            step = moment
        theta -= step


class SGD(Optimizer):
    """Gradient descent ``θ = θ - η g``; with momentum ``v = μ v - η g``, ``θ = θ + v``
    (Nesterov: ``θ = θ + μ v - η g``)."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False):
        super().__init__(learning_rate)
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def get_config(self):
        return {"class": "SGD", "learning_rate": self.learning_rate, "momentum": self.momentum,
                "nesterov": self.nesterov}

    def slot_names(self):
        return ("velocity",)

    def update(self, theta, g, state):
        eta = self.learning_rate
        if self.momentum == 0:
            theta -= eta * g
            return
        (v,) = state.arrays(theta, "velocity")
        v *= self.momentum
        v -= eta * g
        if self.nesterov:
            theta += self.momentum * v - eta * g
        else:
            theta += v


class Adam(Optimizer):
    """Adam: ``m = β1 m + (1-β1) g``, ``v = β2 v + (1-β2) g²``,
    ``θ = θ - α m / (sqrt(v) + ε)`` with ``α = η sqrt(1-β2^t) / (1-β1^t)`` (Keras's form)."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-07, amsgrad=False):
        super().__init__(learning_rate)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self.amsgrad = bool(amsgrad)

    def get_config(self):
        return {"class": "Adam", "learning_rate": self.learning_rate, "beta_1": self.beta_1,
                "beta_2": self.beta_2, "epsilon": self.epsilon, "amsgrad": self.amsgrad}

    def slot_names(self):
        return ("m", "v", "v_hat")

    def update(self, theta, g, state):
        xp = get_array_module(g)
        t = self.iterations + 1
        # a scalar of the parameters' dtype: float32 weights are updated in float32
        alpha = theta.dtype.type(self.learning_rate * np.sqrt(1 - self.beta_2 ** t)
                                 / (1 - self.beta_1 ** t))
        m, v = state.arrays(theta, "m", "v")
        m += (g - m) * (1 - self.beta_1)
        v += (g * g - v) * (1 - self.beta_2)
        if self.amsgrad:
            (v_hat,) = state.arrays(theta, "v_hat")
            xp.maximum(v_hat, v, out=v_hat)
            v = v_hat
        theta -= (m * alpha) / (xp.sqrt(v) + self.epsilon)


OPTIMIZERS = {"rmsprop": RMSprop, "sgd": SGD, "adam": Adam}


def get(optimizer):
    """An optimizer from a name (``"rmsprop"``, ``"sgd"``, ``"adam"``: defaults) or an instance."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in OPTIMIZERS:
        return OPTIMIZERS[optimizer.lower()]()
    raise ValueError(f"unknown optimizer {optimizer!r}; valid names: {', '.join(OPTIMIZERS)}")


def from_config(config):
    config = dict(config)
    name = config.pop("class")
    classes = {c.__name__: c for c in (RMSprop, SGD, Adam)}
    if name not in classes:
        raise ValueError(f"unknown optimizer class {name!r}; known: {', '.join(classes)}")
    cls = classes[name]
    return cls(**config)
