"""Keras's ``keras.models``: the model classes and ``load_model``, under the names Keras gives them."""
from .model import Model, Sequential, load_model

__all__ = ["Model", "Sequential", "load_model"]
