# The style of Keras's guide to writing one's own callbacks: a callback that counts every hook and
# reads self.params, one that keeps each batch's loss, one that sets the learning rate from a
# table at the start of each epoch, one that stops at the lowest loss and puts back the best
# weights, with ModelCheckpoint every few batches and evaluate(return_dict=True) at the end.
import os
import shutil
import tempfile

import numpy as np
import tinynet as keras
from tinynet import layers

(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
x_train = x_train[:6000].reshape(-1, 784).astype("float32") / 255
x_test = x_test[:2000].reshape(-1, 784).astype("float32") / 255
y_train, y_test = y_train[:6000], y_test[:2000]


class CountHooks(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.calls = {}
        self.seen_params = None

    def _count(self, name):
        self.calls[name] = self.calls.get(name, 0) + 1

    def on_train_begin(self, logs=None):
        self.seen_params = dict(self.params)
        self._count("train_begin")

    def on_epoch_begin(self, epoch, logs=None):
        self._count("epoch_begin")

    def on_train_batch_end(self, batch, logs=None):
        self._count("train_batch_end")

    def on_test_begin(self, logs=None):
        self._count("test_begin")

    def on_epoch_end(self, epoch, logs=None):
        self._count("epoch_end")

    def on_train_end(self, logs=None):
        self._count("train_end")


class BatchLosses(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(logs["loss"])


class RateTable(keras.callbacks.Callback):
    """Set the learning rate at the start of each epoch from a table of (epoch, rate)."""

    def __init__(self, table):
        super().__init__()
        self.table = table

    def on_epoch_begin(self, epoch, logs=None):
        for start, rate in self.table:
            if epoch == start:
                self.model.optimizer.learning_rate = rate
                print(f"epoch {epoch}: learning rate {rate}")


class StopAtLowestLoss(keras.callbacks.Callback):
    """Stop when the loss has not gone down for `patience` epochs; keep the best weights."""

    def __init__(self, patience=0):
        super().__init__()
        self.patience = patience

    def on_train_begin(self, logs=None):
        self.wait, self.best, self.best_weights = 0, np.inf, None

    def on_epoch_end(self, epoch, logs=None):
        if logs["loss"] < self.best:
            self.best, self.wait = logs["loss"], 0
            self.best_weights = self.model.get_weights()
        else:
            self.wait += 1
            if self.wait > self.patience:
                self.model.stop_training = True
                self.model.set_weights(self.best_weights)


model = keras.Sequential([
    keras.Input(shape=(784,)),
    layers.Dense(64, activation="relu"),
    layers.Dense(10, activation="softmax"),
])
model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=1e-3),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])

hooks, batch_losses = CountHooks(), BatchLosses()
folder = tempfile.mkdtemp()
try:
    checkpoint = keras.callbacks.ModelCheckpoint(os.path.join(folder, "ck-{epoch}-{batch}.keras"),
                                                 save_freq=40)
    history = model.fit(x_train, y_train, batch_size=64, epochs=3, verbose=0,
                        validation_split=0.1,
                        callbacks=[hooks, batch_losses, RateTable([(0, 2e-3), (2, 5e-4)]),
                                   StopAtLowestLoss(patience=1), checkpoint])
    saved = sorted(os.listdir(folder))
finally:
    shutil.rmtree(folder)

steps = hooks.seen_params["steps"]  # 5400 training images in batches of 64: 85
assert hooks.seen_params["epochs"] == 3 and steps == 85, hooks.seen_params
assert hooks.calls == {"train_begin": 1, "epoch_begin": 3, "train_batch_end": 3 * steps,
                       "test_begin": 3, "epoch_end": 3, "train_end": 1}, hooks.calls
assert len(batch_losses.losses) == 3 * steps
# every 40 batches, counted across the epochs' 85: {batch} from 1 within its epoch
assert saved == ["ck-1-40.keras", "ck-1-80.keras", "ck-2-35.keras", "ck-2-75.keras",
                 "ck-3-30.keras", "ck-3-70.keras"], saved
print("history:", sorted(history.history), "first batch loss", round(batch_losses.losses[0], 3))

results = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
print("Test:", {k: round(v, 4) for k, v in sorted(results.items())})
test_acc = results["accuracy"]
