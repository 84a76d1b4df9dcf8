# The style of TensorFlow's "beginner" quickstart: a Flatten with input_shape, a Dense without
# softmax trained with from_logits=True, and a probability model wrapped around it with Softmax.
import numpy as np

import tinynet as keras

mnist = keras.datasets.mnist
(x_train, y_train), (x_test, y_test) = mnist.load_data()
x_train, y_train, x_test, y_test = x_train[:6000], y_train[:6000], x_test[:2000], y_test[:2000]
x_train, x_test = x_train / 255.0, x_test / 255.0

model = keras.models.Sequential([
    keras.layers.Flatten(input_shape=(28, 28)),
    keras.layers.Dense(128, activation="relu"),
    keras.layers.Dropout(0.2),
    keras.layers.Dense(10),
])
predictions = model(x_train[:1]).numpy()
loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
print("initial loss:", float(np.mean(loss_fn(y_train[:1], predictions))))

model.compile(optimizer="adam", loss=loss_fn, metrics=["accuracy"])
model.fit(x_train, y_train, epochs=1)
test_loss, test_acc = model.evaluate(x_test, y_test, verbose=2)

probability_model = keras.Sequential([model, keras.layers.Softmax()])
probabilities = np.asarray(probability_model(x_test[:5]))
print("row sums:", probabilities.sum(axis=1))
