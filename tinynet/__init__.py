"""tinynet: a small, readable deep-learning framework on NumPy that reproduces a Keras practical work.

    from tinynet import Sequential, Model, layers, optimizers
"""
from . import backend, callbacks, layers, losses, optimizers, utils
from .model import Model, Sequential, load_model
from .training import NonFiniteLossError

__version__ = "0.1.0"

__all__ = ["backend", "callbacks", "layers", "losses", "optimizers", "utils", "load_model", "Model",
           "Sequential", "NonFiniteLossError", "__version__"]
