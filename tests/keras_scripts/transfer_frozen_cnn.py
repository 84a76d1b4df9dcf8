# The style of the old Keras example on transfer learning with MNIST: a small CNN learns the
# digits 0-4, then its feature layers are frozen (layer.trainable = False) and only its classifier
# is trained again, on the digits 5-9. Lists of layers joined into one Sequential, "adam" by name.
import numpy as np

import tinynet as keras
from tinynet import layers

num_classes = 5
(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
x_train, y_train, x_test, y_test = x_train[:12000], y_train[:12000], x_test[:4000], y_test[:4000]
x_train = x_train.reshape(-1, 28, 28, 1).astype("float32") / 255
x_test = x_test.reshape(-1, 28, 28, 1).astype("float32") / 255

# the digits 0-4, and the digits 5-9 as classes 0-4
lower_train, lower_test = y_train < 5, y_test < 5
x_lower, y_lower = x_train[lower_train], keras.utils.to_categorical(y_train[lower_train], 5)
x_upper, y_upper = x_train[~lower_train], keras.utils.to_categorical(y_train[~lower_train] - 5, 5)
x_upper_test = x_test[~lower_test]
y_upper_test = keras.utils.to_categorical(y_test[~lower_test] - 5, 5)

feature_layers = [
    layers.Conv2D(8, (3, 3), padding="valid", input_shape=(28, 28, 1)),
    layers.Activation("relu"),
    layers.MaxPooling2D(pool_size=(2, 2)),
    layers.Conv2D(16, (3, 3)),
    layers.Activation("relu"),
    layers.MaxPooling2D(pool_size=(2, 2)),
    layers.Flatten(),
]
classification_layers = [
    layers.Dense(32),
    layers.Activation("relu"),
    layers.Dropout(0.25),
    layers.Dense(num_classes),
    layers.Activation("softmax"),
]
model = keras.Sequential(feature_layers + classification_layers)


def train_model(model, x, y, epochs=1):
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(x, y, batch_size=128, epochs=epochs, verbose=1)


train_model(model, x_lower, y_lower)
print("digits 0-4, test accuracy:",
      model.evaluate(x_test[lower_test],
                     keras.utils.to_categorical(y_test[lower_test], 5), verbose=0)[1])

# freeze the feature layers and train the classifier alone on the new task
for layer in feature_layers:
    layer.trainable = False
model.summary()
features_before = [w.copy() for layer in feature_layers for w in layer.get_weights()]
print("trainable weights:", len(model.trainable_weights),
      "non-trainable:", len(model.non_trainable_weights))
train_model(model, x_upper, y_upper, epochs=2)
features_after = [w for layer in feature_layers for w in layer.get_weights()]
assert all(np.array_equal(a, b) for a, b in zip(features_before, features_after))
assert len(model.trainable_weights) == 4 and len(model.non_trainable_weights) == 4

score = model.evaluate(x_upper_test, y_upper_test, verbose=0)
print("digits 5-9 with frozen features, test loss:", score[0])
print("digits 5-9 with frozen features, test accuracy:", score[1])
