"""Callbacks: hooks that ``fit`` calls at the end of each batch and epoch (Keras's names)."""


class Callback:
    """Base class. ``self.model`` is set by ``fit``; set ``model.stop_training = True`` to stop."""

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass


class History(Callback):
    """What ``fit`` returns: ``history.history["loss"]``, ``["val_accuracy"]``, ... per epoch."""

    def __init__(self):
        self.history = {}
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)
