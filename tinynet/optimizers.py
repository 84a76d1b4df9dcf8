"""Optimizers that update parameters in place: ``optimizer.apply_gradients(zip(grads, params))``.

Each keeps its state (running averages, momenta) per parameter, created on first use with the
parameter's shape, dtype and device. The updates follow Keras 3 exactly.
"""
import numpy as np

from .kernels.numpy_ref import array_module


class Optimizer:
    def __init__(self, learning_rate):
        self.learning_rate = float(learning_rate)
        self.iterations = 0
        self._slots = {}  # id(param) -> dict of state arrays

    def get_config(self):
        raise NotImplementedError

    def _state(self, param, *names):
        """The state arrays of ``param`` (zeros on first use), in the order of ``names``."""
        slots = self._slots.setdefault(id(param), {"param": param})
        for n in names:
            if n not in slots:
                slots[n] = array_module(param).zeros_like(param)
        return [slots[n] for n in names]

    def apply_gradients(self, grads_and_params):
        for g, p in grads_and_params:
            if g is None:
                continue
            if g.shape != p.shape:
                raise ValueError(f"gradient of shape {tuple(g.shape)} for a parameter of shape "
                                 f"{tuple(p.shape)}")
            self.update(p, g.astype(p.dtype, copy=False))
        self.iterations += 1

    def update(self, param, grad):
        raise NotImplementedError

    def snapshot(self, params):
        """Copies of ``params`` and of their state, to undo a step with :meth:`restore`."""
        return (self.iterations, [p.copy() for p in params],
                {k: {n: a.copy() for n, a in slots.items() if n != "param"}
                 for k, slots in self._slots.items()})

    def restore(self, params, snap):
        """Put back the parameters and the state saved by :meth:`snapshot` (in place)."""
        self.iterations, saved_params, saved_slots = snap
        for p, saved in zip(params, saved_params):
            p[...] = saved
        for k in list(self._slots):
            if k not in saved_slots:
                del self._slots[k]  # state created by the undone step
                continue
            for n, a in saved_slots[k].items():
                self._slots[k][n][...] = a

    # state as plain arrays, in the order the parameters are given (for saving and loading)
    def get_state(self, params):
        names = self.slot_names()
        out = []
        for p in params:
            slots = self._slots.get(id(p), {})
            out.append([None if n not in slots else np.asarray(_host(slots[n])) for n in names])
        return {"iterations": self.iterations, "slots": out}

    def set_state(self, params, state):
        self.iterations = int(state["iterations"])
        names = self.slot_names()
        self._slots = {}
        for p, arrays in zip(params, state["slots"]):
            slots = self._slots.setdefault(id(p), {"param": p})
            for n, a in zip(names, arrays):
                if a is not None:
                    slots[n] = array_module(p).asarray(a, dtype=p.dtype)

    def slot_names(self):
        return ()


def _host(a):
    return a.get() if hasattr(a, "get") else a


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

    def update(self, theta, g):
        rho, eta, eps = self.rho, self.learning_rate, self.epsilon
        if array_module(theta) is not np:  # on the GPU these lines run fused as one CUDA kernel
            from .kernels.cupy_gpu import rmsprop_update
            rmsprop_update(theta, g, *self._state(theta, "s", "mean_grad", "moment"), eta, rho,
                           eps, self.momentum, self.centered)
            return
        (s,) = self._state(theta, "s")
        s *= rho
        s += (1 - rho) * g * g                               # equation (1)
        denominator = s + eps
        if self.centered:
            (mean_grad,) = self._state(theta, "mean_grad")
            mean_grad *= rho
            mean_grad += (1 - rho) * g
            denominator = s - mean_grad * mean_grad + eps
        step = eta * g / array_module(g).sqrt(denominator)  # equation (2): η g ⊘ sqrt(s + ε)
        if self.momentum > 0:
            (moment,) = self._state(theta, "moment")
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

    def update(self, theta, g):
        eta = self.learning_rate
        if self.momentum == 0:
            theta -= eta * g
            return
        (v,) = self._state(theta, "velocity")
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

    def update(self, theta, g):
        xp = array_module(g)
        t = self.iterations + 1
        alpha = self.learning_rate * np.sqrt(1 - self.beta_2 ** t) / (1 - self.beta_1 ** t)
        m, v = self._state(theta, "m", "v")
        m += (g - m) * (1 - self.beta_1)
        v += (g * g - v) * (1 - self.beta_2)
        if self.amsgrad:
            (v_hat,) = self._state(theta, "v_hat")
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
