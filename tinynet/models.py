"""Keras's ``keras.models``: the model classes and ``load_model``, under the names Keras gives them."""
from .model import Model, Sequential, load_model

__all__ = ["Model", "Sequential", "load_model"]


def __getattr__(name):
    from .names import missing
    raise missing("tinynet.models", name, "name", __all__)
