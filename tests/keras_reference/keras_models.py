"""The practical work's models built natively in Keras (Keras initialises them), with the report's
layer names: shared by tests/test_interop.py and keras_epoch_times.py. Needs TensorFlow/Keras 3."""
import keras
from keras import layers as kl


def keras_mlp(n_in, name, dropout=0.25):
    return keras.Sequential([
        keras.Input((n_in,), name="input"),
        kl.Dense(256, activation="relu", name="Input"),
        kl.Dropout(dropout, name="dropout"),
        kl.Dense(10, activation="softmax", name="Output"),
    ], name=name)


def keras_cnn_digits():
    inp = keras.Input((28, 28, 1), name="l0")
    x = kl.Conv2D(9, 5, padding="same", activation="relu", name="l1")(inp)
    x = kl.MaxPooling2D(2, name="l1_mp")(x)
    x = kl.Conv2D(9, 5, padding="same", activation="relu", name="l2")(x)
    x = kl.MaxPooling2D(2, name="l2_mp")(x)
    x = kl.Conv2D(16, 3, padding="same", activation="relu", name="l3")(x)
    x = kl.MaxPooling2D(2, name="l3_mp")(x)
    x = kl.Flatten(name="flat")(x)
    x = kl.Dense(25, activation="relu", name="l4")(x)
    out = kl.Dense(10, activation="softmax", name="l5")(x)
    return keras.Model(inp, out, name="CNN")


def keras_cnn_fashion_3():
    inp = keras.Input((28, 28, 1), name="l0")
    x = kl.Conv2D(9, 7, padding="same", activation="relu", name="l1")(inp)
    p = kl.MaxPooling2D(2, name="l1_mp")(x)
    x = kl.Conv2D(9, 5, padding="same", activation="relu", name="l2")(p)
    x = kl.Conv2D(9, 3, padding="same", activation="relu", name="l2_2")(x)
    x = kl.Add(name="add")([x, p])
    x = kl.MaxPooling2D(2, name="l2_ap")(x)
    x = kl.Conv2D(18, 3, padding="same", activation="relu", name="l3")(x)
    x = kl.MaxPooling2D(2, name="l3_mp")(x)
    x = kl.Dropout(0.3, name="dropout")(x)
    x = kl.Flatten(name="flat")(x)
    x = kl.Dense(32, activation="relu", name="l5")(x)
    out = kl.Dense(10, activation="softmax", name="l7")(x)
    return keras.Model(inp, out, name="CNN-fashion-3")


KERAS_BUILDERS = {
    "mlp_raw": lambda: keras_mlp(784, "MLP-raw"),
    "mlp_features": lambda: keras_mlp(392, "MLP-features"),
    "cnn_digits": keras_cnn_digits,
    "cnn_fashion_3": keras_cnn_fashion_3,
}
