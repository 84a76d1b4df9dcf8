"""Layers: each has ``build``, ``forward``, ``backward``, ``params``/``grads`` and Keras weights.

Keras's names for the same layers (``MaxPool2D``, ``AvgPool2D``, ``GlobalAvgPool2D``) are aliases.
A Keras layer that tinynet does not have raises an error naming it and listing what tinynet has.
"""
from ..names import reset_names
from .base import Input, InputLayer, Layer, Tensor
from .conv import Conv2D
from .core import Activation, Dense, Dropout, Flatten, ReLU, Rescaling, Reshape, Softmax
from .merge import Add, Concatenate, add, concatenate
from .pooling import AveragePooling2D, GlobalAveragePooling2D, MaxPooling2D

MaxPool2D = MaxPooling2D
AvgPool2D = AveragePooling2D
GlobalAvgPool2D = GlobalAveragePooling2D
Convolution2D = Conv2D

__all__ = ["Input", "InputLayer", "Layer", "Tensor", "reset_names", "Conv2D", "Activation", "Dense",
           "Dropout", "Flatten", "ReLU", "Rescaling", "Reshape", "Softmax", "Add", "add",
           "Concatenate", "concatenate",
           "AveragePooling2D", "GlobalAveragePooling2D", "MaxPooling2D", "MaxPool2D", "AvgPool2D",
           "GlobalAvgPool2D", "Convolution2D"]


def __getattr__(name):
    from ..names import missing
    raise missing("tinynet.layers", name, "layer",
                  [n for n in __all__ if n not in ("Layer", "Tensor", "reset_names")])
