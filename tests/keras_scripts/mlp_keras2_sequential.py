# A Keras 2 era MLP (the style of the old keras/examples/mnist_mlp.py): Sequential with
# input_shape= on the first layer, one-hot labels, RMSprop, validation_split.
import numpy as np

import tinynet as keras
from tinynet.layers import Dense, Dropout
from tinynet.models import Sequential
from tinynet.optimizers import RMSprop

batch_size = 128
num_classes = 10
epochs = 1

(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
x_train, y_train, x_test, y_test = x_train[:6000], y_train[:6000], x_test[:2000], y_test[:2000]
x_train = x_train.reshape(6000, 784).astype("float32") / 255
x_test = x_test.reshape(2000, 784).astype("float32") / 255
y_train = keras.utils.to_categorical(y_train, num_classes)
y_test = keras.utils.to_categorical(y_test, num_classes)

model = Sequential()
model.add(Dense(512, activation="relu", input_shape=(784,)))
model.add(Dropout(0.2))
model.add(Dense(512, activation="relu"))
model.add(Dropout(0.2))
model.add(Dense(num_classes, activation="softmax"))
model.summary()

model.compile(loss="categorical_crossentropy", optimizer=RMSprop(learning_rate=0.001), metrics=["accuracy"])
history = model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=1,
                    validation_split=0.1)
score = model.evaluate(x_test, y_test, verbose=0)
print("Test loss:", score[0])
print("Test accuracy:", score[1])
