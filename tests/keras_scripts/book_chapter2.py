# The style of a well-known deep-learning book's first example: the dataset module imported by
# name, a Sequential without an input shape (built by its first batch), integer labels.
from tinynet import layers
from tinynet.datasets import mnist
import tinynet as keras

(train_images, train_labels), (test_images, test_labels) = mnist.load_data()
train_images, train_labels = train_images[:6000], train_labels[:6000]
test_images, test_labels = test_images[:2000], test_labels[:2000]

model = keras.Sequential([
    layers.Dense(512, activation="relu"),
    layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

train_images = train_images.reshape((6000, 28 * 28))
train_images = train_images.astype("float32") / 255
test_images = test_images.reshape((2000, 28 * 28))
test_images = test_images.astype("float32") / 255

model.fit(train_images, train_labels, epochs=1, batch_size=128)
test_loss, test_acc = model.evaluate(test_images, test_labels)
print(f"test_acc: {test_acc}")
