# The style of Keras's optimizer and callback documentation: a learning-rate schedule given to the
# optimizer (it decays every step), LearningRateScheduler with the documentation's
# `scheduler(epoch, lr)`, and a LambdaCallback that prints each epoch's loss.
import math

import tinynet as keras
from tinynet import layers

(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
x_train = x_train[:6000].reshape(-1, 784).astype("float32") / 255
x_test = x_test[:2000].reshape(-1, 784).astype("float32") / 255
y_train, y_test = y_train[:6000], y_test[:2000]

lr_schedule = keras.optimizers.schedules.ExponentialDecay(
    initial_learning_rate=1e-2, decay_steps=100, decay_rate=0.9)
optimizer = keras.optimizers.SGD(learning_rate=lr_schedule, momentum=0.9)

model = keras.Sequential([
    keras.Input(shape=(784,)),
    layers.Dense(64, activation="relu"),
    layers.Dense(10, activation="softmax"),
])
model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, batch_size=64, epochs=2, verbose=0,
          callbacks=[keras.callbacks.LambdaCallback(
              on_epoch_end=lambda epoch, logs: print(f"epoch {epoch}: loss {logs['loss']:.4f}"))])
print("learning rate after", int(optimizer.iterations), "steps:", float(optimizer.learning_rate))


def scheduler(epoch, lr):
    if epoch < 1:
        return lr
    return lr * math.exp(-0.1)


plain = keras.Sequential([
    keras.Input(shape=(784,)),
    layers.Dense(64, activation="relu"),
    layers.Dense(10, activation="softmax"),
])
plain.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
history = plain.fit(x_train, y_train, epochs=2, verbose=0,
                    callbacks=[keras.callbacks.LearningRateScheduler(scheduler, verbose=1)])
print("learning rates:", [round(v, 5) for v in history.history["learning_rate"]])

score = model.evaluate(x_test, y_test, verbose=0)
print("Test loss:", score[0])
print("Test accuracy:", score[1])
