"""A model used as one layer of another, as Keras allows: ``Sequential([model, layers.Softmax()])``.

    forward     y = model(x)           the inner model's graph, run as one step of the outer one
    backward    dL/dx = model.backward(dL/dy), filling the inner layers' gradients

Its weights are the inner model's arrays themselves, so training the outer model trains the inner.
"""
from ..checks import fits
from .base import Layer


class NestedModel(Layer):
    """A model used as one layer of another (``Sequential([model, layers.Softmax()])``): its
    forward and backward are the inner model's graph passes; its weights are the inner model's."""

    def __init__(self, model):
        if not model.built:
            raise ValueError(f"model '{model.name}' is used as a layer before it is built: give it "
                             "an input shape first (layers.Input, or input_shape= on its first "
                             "layer)")
        if getattr(model, "used_as_layer", False):
            raise ValueError(f"model '{model.name}' is already used as a layer; tinynet does not "
                             "share layers (their saved inputs would be overwritten): build a "
                             "second model")
        super().__init__(name=model.name)
        model.used_as_layer = True
        self.model = model
        self.requested_input_shape = model.graph.input.input_shape  # first in a Sequential
        self._user_input_shape = False

    @property
    def kind(self):
        return type(self.model).__name__

    def __getattr__(self, name):
        """What a layer does not have, the inner model answers (``outer.layers[0].layers``,
        ``.get_layer(...)``, ``.summary()``), as Keras lists the model itself among the layers."""
        if name.startswith("__") or name == "model":  # (copying and unpickling ask for these)
            raise AttributeError(name)
        attribute = getattr(type(self), name, None)
        if isinstance(attribute, property):  # a layer's property that failed: its own error
            return attribute.__get__(self, type(self))
        return getattr(self.model, name)

    @property
    def activation_name(self):
        """The inner model's output activation: a softmax inside is trained on its logits too."""
        return self.model.graph.output.activation_name

    @Layer.activation.setter
    def activation(self, value):  # Layer.__init__ sets it; the inner output layer holds it
        pass

    @property
    def trainable(self):
        """The inner model's ``trainable``; setting it sets the inner model's (and so its layers')."""
        return self.model.trainable

    @trainable.setter
    def trainable(self, value):
        model = self.__dict__.get("model")
        if model is not None:  # (Layer.__init__ sets it before the model is there: not passed on)
            model.trainable = value

    @property
    def trainable_weights(self):
        """The inner weights whose own layer trains (Keras lists them so in the outer model)."""
        return [p for (holder, _), p in zip(self.param_holders(), self.params) if holder.trainable]

    @property
    def non_trainable_weights(self):
        return [p for (holder, _), p in zip(self.param_holders(), self.params)
                if not holder.trainable]

    trainable_variables = trainable_weights
    non_trainable_variables = non_trainable_weights

    @property
    def params(self):
        """The inner model's parameter arrays, as they are now (its arena may replace them)."""
        return self.model.params

    @params.setter
    def params(self, value):  # Layer.__init__ sets it; the inner layers hold the parameters
        pass

    def param_holders(self):
        return [h for layer in self.model.layers for h in layer.param_holders()]

    @property
    def grads(self):
        """The inner layers' gradients, as they are (the outer model decides which train)."""
        return [g for layer in self.model.layers for g in layer.grads]

    @grads.setter
    def grads(self, value):  # Layer.__init__ sets it; the inner layers hold the gradients
        pass

    def build(self, input_shape):
        expected = self.model.graph.input.input_shape
        if not fits(tuple(input_shape), expected):  # (a last axis of 1 missing or extra: reshaped)
            raise ValueError(f"model '{self.model.name}' used as a layer expects input of shape "
                             f"{(None,) + expected}, got {(None,) + tuple(input_shape)}")
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return self.model.graph.output.output_shape

    def forward(self, x, training=False, activate=True):
        """The inner model's output, or its output layer's pre-activation with ``activate=False``."""
        self._pass = None
        x = self._check_input(x)
        x = x.reshape((x.shape[0],) + self.model.graph.input.input_shape)  # (see build)
        y = self.model.graph.forward(x, training=training, logits=not activate)
        self._inner_pass = self.model.graph._pass  # the inner model run on its own since: refused
        return y

    def backward(self, grad_output, need_input_grad=True):
        if self.model.graph._pass is not getattr(self, "_inner_pass", None):
            raise ValueError(f"backward() goes back through the model's last forward pass, but "
                             f"model '{self.model.name}', used as a layer in it, ran again since "
                             "on its own: what its layers kept is no longer that pass's; run the "
                             "outer model's forward pass again, then backward()")
        dx = self.model.graph.backward(grad_output, need_input_grad=need_input_grad)
        return None if dx is None else dx.reshape((dx.shape[0],) + self.input_shape)
