"""tinynet: a small, readable deep-learning framework on NumPy that reproduces a Keras practical work.

    from tinynet import Sequential, Model, layers, optimizers

It answers to Keras's names for everything it implements, so that a Keras script runs with its
import changed to ``import tinynet as keras``; a Keras name it does not implement raises an error
that says so and what tinynet has instead.
"""
from . import (activations, backend, callbacks, datasets, layers, losses, metrics, models,
               optimizers, utils)
from .layers import Input
from .model import Model, Sequential, load_model
from .training import NonFiniteLossError

__version__ = "0.1.0"

__all__ = ["activations", "backend", "callbacks", "datasets", "layers", "losses", "metrics", "models",
           "optimizers", "utils", "Input", "load_model", "Model", "Sequential",
           "NonFiniteLossError", "__version__"]


def __getattr__(name):
    import importlib
    import importlib.util
    if name.isidentifier() and not name.startswith("_") and \
            importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")  # tinynet.gradcheck, .interop, ...
    from .names import absent, missing
    advice = ""
    if name == "keras":  # TensorFlow's tutorials: tf.keras.layers.Dense(...)
        raise AttributeError("tinynet.keras: tinynet is itself the keras module: where TensorFlow's "
                             "tutorials write tf.keras.layers.Dense, write import tinynet as "
                             "keras and keras.layers.Dense")
    if name == "ops":  # Keras 3's keras.ops.softmax(x), ops.argmax, ...
        advice = ("write NumPy instead, np.argmax, np.exp, ...; tinynet's activations take "
                  "arrays, keras.activations.softmax(x)")
    if name in ("set_backend", "get_backend", "set_floatx", "floatx", "set_seed"):
        # tinynet's own settings, which live in tinynet.backend (not a Keras name at the top)
        raise absent(f"tinynet.{name}: it is in tinynet.backend: from tinynet import backend, "
                     f"then backend.{name}(...)", "tinynet", name)
    if name == "initializers":  # Keras's HeNormal() and the like
        from .layers.base import INITIALIZERS
        advice = ("give a layer its initializer by name instead, kernel_initializer='he_normal'; "
                  f"tinynet has {', '.join(INITIALIZERS)}")
    raise missing("tinynet", name, "name", __all__[:-2], advice)
