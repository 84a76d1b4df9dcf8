# The style of many blog tutorials: model.add with input_shape on the first Conv2D, he_uniform
# kernels, SGD with momentum, validation_data, EarlyStopping, evaluate returning (loss, acc).
import numpy as np

import tinynet as keras
from tinynet.callbacks import EarlyStopping
from tinynet.layers import Conv2D, Dense, Flatten, MaxPool2D
from tinynet.models import Sequential
from tinynet.optimizers import SGD
from tinynet.utils import to_categorical

(trainX, trainY), (testX, testY) = keras.datasets.mnist.load_data()
trainX, trainY, testX, testY = trainX[:6000], trainY[:6000], testX[:2000], testY[:2000]
trainX = trainX.reshape((trainX.shape[0], 28, 28, 1)).astype("float32") / 255.0
testX = testX.reshape((testX.shape[0], 28, 28, 1)).astype("float32") / 255.0
trainY = to_categorical(trainY)
testY = to_categorical(testY)

model = Sequential()
model.add(Conv2D(16, (3, 3), activation="relu", kernel_initializer="he_uniform",
                 input_shape=(28, 28, 1)))
model.add(MaxPool2D((2, 2)))
model.add(Flatten())
model.add(Dense(64, activation="relu", kernel_initializer="he_uniform"))
model.add(Dense(10, activation="softmax"))
opt = SGD(learning_rate=0.01, momentum=0.9)
model.compile(optimizer=opt, loss="categorical_crossentropy", metrics=["accuracy"])

history = model.fit(trainX, trainY, epochs=1, batch_size=32, validation_data=(testX, testY),
                    verbose=0, callbacks=[EarlyStopping(monitor="val_loss", patience=2)])
_, acc = model.evaluate(testX, testY, verbose=0)
print("> %.3f" % (acc * 100.0))
print("history:", {k: np.round(v, 4).tolist() for k, v in history.history.items()})
