"""Layers: each has ``build``, ``forward``, ``backward``, ``params``/``grads`` and Keras weights."""
from .base import Input, InputLayer, Layer, Tensor, reset_names
from .conv import Conv2D
from .core import Activation, Dense, Dropout, Flatten
from .merge import Add
from .pooling import MaxPooling2D

__all__ = ["Input", "InputLayer", "Layer", "Tensor", "reset_names", "Conv2D", "Activation", "Dense",
           "Dropout", "Flatten", "Add", "MaxPooling2D"]
