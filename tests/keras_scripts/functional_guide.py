# The style of Keras's training-and-evaluation guide: the functional API with named layers,
# optimizer, loss and metric given as objects, validation_data, History's keys.
import tinynet as keras
from tinynet import layers

inputs = keras.Input(shape=(784,), name="digits")
x = layers.Dense(64, activation="relu", name="dense_1")(inputs)
x = layers.Dense(64, activation="relu", name="dense_2")(x)
outputs = layers.Dense(10, activation="softmax", name="predictions")(x)
model = keras.Model(inputs=inputs, outputs=outputs)

(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
x_train = x_train[:7000].reshape(7000, 784).astype("float32") / 255
x_test = x_test[:2000].reshape(2000, 784).astype("float32") / 255
y_train = y_train[:7000].astype("float32")
y_test = y_test[:2000].astype("float32")
x_val, y_val = x_train[-1000:], y_train[-1000:]
x_train, y_train = x_train[:-1000], y_train[:-1000]

model.compile(
    optimizer=keras.optimizers.RMSprop(),
    loss=keras.losses.SparseCategoricalCrossentropy(),
    metrics=[keras.metrics.SparseCategoricalAccuracy()],
)
history = model.fit(x_train, y_train, batch_size=64, epochs=1, validation_data=(x_val, y_val))
print(sorted(history.history))
results = model.evaluate(x_test, y_test, batch_size=128)
print("test loss, test acc:", results)
predictions = model.predict(x_test[:3])
print("predictions shape:", predictions.shape)
