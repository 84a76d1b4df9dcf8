"""The practical work's models, built with tinynet, with the report's layer names.

Each function returns an uncompiled model whose ``count_params()`` equals the report's count:

    mlp_raw()            203,530   784 -> Dense(256, relu) -> Dropout(0.25) -> Dense(10, softmax)
    mlp_features()       103,178   392 HOG features -> same MLP
    cnn_digits()           7,465   3 x (Conv2D same + MaxPooling2D) -> Flatten -> Dense(25) -> Dense(10)
    cnn_fashion_1()      628,630   Conv2D(32, 3) -> pool -> Dense(100) -> Dense(10)
    cnn_fashion_2()       14,106   Conv2D(8, 5) -> pool -> Conv2D(16, 3) -> pool -> Dense(16) -> Dense(10)
    cnn_fashion_3()       10,244   residual: Conv2D(9, 7) -> pool -> [Conv2D(9, 5) -> Conv2D(9, 3)] + skip
                                   -> pool -> Conv2D(18, 3) -> pool -> Dropout(0.3) -> Dense(32) -> Dense(10)
"""
from . import layers
from .model import Model, Sequential


def mlp_raw(hidden=256, dropout=0.25, inputs=784, name="MLP-raw"):
    """MLP on the 784 raw pixels (scaled to [0, 1])."""
    return Sequential([
        layers.Input((inputs,), name="input"),
        layers.Dense(hidden, activation="relu", name="Input"),
        layers.Dropout(dropout),
        layers.Dense(10, activation="softmax", name="Output"),
    ], name=name)


def mlp_features(features=392, hidden=256, dropout=0.25, name="MLP-features"):
    """MLP on HOG features (392 of them for 8 orientations and 4x4-pixel cells)."""
    return mlp_raw(hidden=hidden, dropout=dropout, inputs=features, name=name)


def cnn_digits(hidden=25, dropout_hidden=None, name="CNN"):
    """The digits CNN. ``hidden`` is an int (one Dense layer) or a pair such as ``(16, 8)``;
    ``dropout_hidden`` puts a Dropout between the two hidden layers (the report's 16-0.3-8 variant)."""
    x = layers.Input((28, 28, 1), name="l0")
    y = layers.Conv2D(9, 5, padding="same", activation="relu", name="l1")(x)
    y = layers.MaxPooling2D(2, name="l1_mp")(y)
    y = layers.Conv2D(9, 5, padding="same", activation="relu", name="l2")(y)
    y = layers.MaxPooling2D(2, name="l2_mp")(y)
    y = layers.Conv2D(16, 3, padding="same", activation="relu", name="l3")(y)
    y = layers.MaxPooling2D(2, name="l3_mp")(y)
    y = layers.Flatten(name="flat")(y)
    sizes = (hidden,) if isinstance(hidden, int) else tuple(hidden)
    for i, units in enumerate(sizes):
        if i > 0 and dropout_hidden:
            y = layers.Dropout(dropout_hidden)(y)
        y = layers.Dense(units, activation="relu", name="l4" if i == 0 else f"l4_{i}")(y)
    y = layers.Dense(10, activation="softmax", name="l5")(y)
    return Model(x, y, name=name)


def cnn_fashion_1(name="CNN-fashion-1"):
    x = layers.Input((28, 28, 1), name="l0")
    y = layers.Conv2D(32, 3, padding="same", activation="relu", name="l1")(x)
    y = layers.MaxPooling2D(2, name="l1_mp")(y)
    y = layers.Flatten(name="flat")(y)
    y = layers.Dense(100, activation="relu", name="l6")(y)
    y = layers.Dense(10, activation="softmax", name="l5")(y)
    return Model(x, y, name=name)


def cnn_fashion_2(name="CNN-fashion-2"):
    x = layers.Input((28, 28, 1), name="l0")
    y = layers.Conv2D(8, 5, padding="same", activation="relu", name="l1")(x)
    y = layers.MaxPooling2D(2, name="l1_mp")(y)
    y = layers.Conv2D(16, 3, padding="same", activation="relu", name="l2")(y)
    y = layers.MaxPooling2D(2, name="l2_mp")(y)
    y = layers.Flatten(name="flat")(y)
    y = layers.Dense(16, activation="relu", name="l6")(y)
    y = layers.Dense(10, activation="softmax", name="l5")(y)
    return Model(x, y, name=name)


def cnn_fashion_3(hidden=32, dropout=0.3, name="CNN-fashion-3"):
    """The residual model: ``l2_2(l2(p)) + p`` where ``p`` is the first pooled feature map."""
    x = layers.Input((28, 28, 1), name="l0")
    y = layers.Conv2D(9, 7, padding="same", activation="relu", name="l1")(x)
    p = layers.MaxPooling2D(2, name="l1_mp")(y)
    y = layers.Conv2D(9, 5, padding="same", activation="relu", name="l2")(p)
    y = layers.Conv2D(9, 3, padding="same", activation="relu", name="l2_2")(y)
    y = layers.Add(name="add")([y, p])
    y = layers.MaxPooling2D(2, name="l2_ap")(y)
    y = layers.Conv2D(18, 3, padding="same", activation="relu", name="l3")(y)
    y = layers.MaxPooling2D(2, name="l3_mp")(y)
    y = layers.Dropout(dropout)(y)
    y = layers.Flatten(name="flat")(y)
    y = layers.Dense(hidden, activation="relu", name="l5")(y)
    y = layers.Dense(10, activation="softmax", name="l7")(y)
    return Model(x, y, name=name)


REPORT_PARAMS = {"mlp_raw": 203_530, "mlp_features": 103_178, "cnn_digits": 7_465,
                 "cnn_fashion_1": 628_630, "cnn_fashion_2": 14_106, "cnn_fashion_3": 10_244}
