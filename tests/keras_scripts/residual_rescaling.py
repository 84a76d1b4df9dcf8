# A small functional residual network on raw uint8 pixels, scaled inside the model by
# Rescaling, with a skip connection (Add), GlobalAveragePooling2D and categorical labels.
import numpy as np

import tinynet as keras
from tinynet import layers

(x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
x_train, y_train = x_train[:6000, :, :, None], y_train[:6000]
x_test, y_test = x_test[:2000, :, :, None], y_test[:2000]

inputs = keras.Input(shape=(28, 28, 1))
x = layers.Rescaling(1.0 / 255)(inputs)
x = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
x = layers.MaxPooling2D(2)(x)
shortcut = x
x = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
x = layers.Conv2D(16, 3, padding="same")(x)
x = layers.Add()([x, shortcut])
x = layers.ReLU()(x)
x = layers.GlobalAveragePooling2D()(x)
outputs = layers.Dense(10, activation="softmax")(x)
model = keras.Model(inputs, outputs, name="small_resnet")
model.summary()

model.compile(optimizer=keras.optimizers.Adam(learning_rate=3e-3),
              loss="sparse_categorical_crossentropy", metrics=["acc"])
history = model.fit(x_train, y_train, batch_size=64, epochs=1, validation_split=0.1)
test_loss, test_acc = model.evaluate(x_test, y_test, verbose=0)
print("test accuracy:", test_acc, "history keys:", sorted(history.history))
