"""Honest training on the real data: the report's CNN learns MNIST digits."""
import numpy as np

from tinynet import backend, report_models, utils
from tinynet.datasets import load_mnist


def test_report_cnn_learns_mnist_digits(data_dir):
    """5,000 training images, 2 epochs of RMSprop (batch 32, Keras's default): >= 90% on 2,000
    test images the model never saw (Keras reaches about the same with this budget)."""
    (x_train, y_train), (x_test, y_test) = load_mnist(data_dir)
    x = x_train[:5000, :, :, None] / 255.0
    xt = x_test[:2000, :, :, None] / 255.0
    backend.set_seed(0)
    model = report_models.cnn_digits()
    model.compile("rmsprop", "categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, utils.to_categorical(y_train[:5000], 10), batch_size=32, epochs=2,
                        verbose=0)
    loss, accuracy = model.evaluate(xt, utils.to_categorical(y_test[:2000], 10))
    assert history.history["loss"][1] < history.history["loss"][0]
    assert accuracy >= 0.90, accuracy
    assert loss < 0.4
    predicted = model.predict(xt).argmax(axis=1)
    assert np.mean(predicted == y_test[:2000]) == accuracy
