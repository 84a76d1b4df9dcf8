"""The graph of a model: its layers in order, and the two passes a student reads.

``forward`` feeds each layer the outputs of the layers it was called on, in topological order
(every layer after the layers it reads from). ``backward`` walks the same order in reverse,
handing each layer ``dL/d(its output)`` and collecting ``dL/d(its inputs)``. A tensor used by
several layers (the skip connection of a residual block) receives the *sum* of their gradients:
that is the chain rule for a variable with several consumers.

One optimisation changes how, never what, is computed: a Conv2D whose only reader is a
MaxPooling2D with windows that tile its output runs *with* that pooling, as one kernel
(:meth:`Conv2D.forward_pooled`): the convolution's output, four times the pooled one for 2x2
windows, is then never stored, and the backward pass goes straight from the pooled gradient to
the convolution's. The numbers are those of the two layers run one after the other. A forward
pass asked to show a layer's output (``until``, ``record``) runs every layer on its own.
"""
from .layers.base import InputLayer, Tensor
from .layers.conv import Conv2D
from .layers.pooling import MaxPooling2D


def topological_order(output):
    """Layers from the inputs to ``output``, each after all the layers it reads from."""
    order, done = [], set()

    def visit(layer, path):
        if id(layer) in done:
            return
        if id(layer) in path:
            raise ValueError(f"the graph has a cycle through layer '{layer.name}'")
        path.add(id(layer))
        for t in layer.inbound:
            visit(t.layer, path)
        path.discard(id(layer))
        done.add(id(layer))
        order.append(layer)

    visit(output.layer, set())
    return order


def runs_with_pooling(conv, pool):
    """Whether ``conv`` and ``pool`` (its only reader) can run as one kernel: a Conv2D with a ReLU
    or no activation, then a MaxPooling2D whose windows tile the image (strides equal to the
    pool size, ``padding="valid"``), the report's ``MaxPooling2D(2)``."""
    return (isinstance(conv, Conv2D) and conv.activation in ("relu", "linear")
            and isinstance(pool, MaxPooling2D) and tuple(pool.strides) == tuple(pool.pool_size)
            and pool.padding == "valid")


class Graph:
    """One input tensor, one output tensor, and the layers between them."""

    def __init__(self, inputs, outputs):
        if not isinstance(inputs, Tensor) or not isinstance(inputs.layer, InputLayer):
            raise TypeError("Model(inputs, outputs): inputs must come from layers.Input(shape)")
        if not isinstance(outputs, Tensor):
            raise TypeError("Model(inputs, outputs): outputs must be the result of calling layers "
                            "on the input")
        self.order = topological_order(outputs)
        found = [layer for layer in self.order if isinstance(layer, InputLayer)]
        if found != [inputs.layer]:
            raise ValueError("the outputs do not depend on exactly the given input: "
                             f"they start from {[layer.name for layer in found]}")
        names = [layer.name for layer in self.order]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"layer names must be unique in a model (they key its saved file and "
                             f"get_layer); these appear more than once: {twice}")
        self.input, self.output = inputs.layer, outputs.layer
        self.consumers = {id(layer): 0 for layer in self.order}
        for layer in self.order:
            for t in layer.inbound:
                self.consumers[id(t.layer)] += 1
        # A layer's input gradient matters to training only when weights lie upstream of it.
        self.weights_upstream = {}
        for layer in self.order:
            self.weights_upstream[id(layer)] = any(
                bool(t.layer.params) or self.weights_upstream[id(t.layer)] for t in layer.inbound)
        # pooling -> the convolution it runs with (see the module doc)
        self.pooled_conv = {}
        for layer in self.order:
            if len(layer.inbound) == 1:
                conv = layer.inbound[0].layer
                if self.consumers[id(conv)] == 1 and runs_with_pooling(conv, layer):
                    self.pooled_conv[id(layer)] = conv
        self._skipped = {id(conv) for conv in self.pooled_conv.values()}
        self._fused_last = False  # whether the last forward pass ran them together

    def forward(self, x, training=False, until=None, logits=False, record=None):
        """The output for the batch ``x``; or the output of layer ``until`` (a name), or, with
        ``logits=True``, the output layer's pre-activation ``z`` (its softmax's logits). A dict
        given as ``record`` receives every layer's output, by layer name (to look inside)."""
        fuse = self._fused_last = until is None and record is None
        outputs = {}
        for layer in self.order:
            if fuse and id(layer) in self._skipped:
                continue  # computed by the pooling that reads it
            if fuse and id(layer) in self.pooled_conv:
                conv = self.pooled_conv[id(layer)]
                ins = [outputs[id(t.layer)] for t in conv.inbound] or [x]
                outputs[id(layer)] = conv.forward_pooled(ins[0], layer, training=training)
                continue
            ins = [outputs[id(t.layer)] for t in layer.inbound] or [x]
            activate = not (logits and layer is self.output)
            y = layer.forward(ins if isinstance(layer.input_shape, list) else ins[0],
                              training=training, activate=activate)
            if record is not None:
                record[layer.name] = y
            if layer.name == until:
                return y
            outputs[id(layer)] = y
        if until is not None:
            raise ValueError(f"no layer named {until!r}; layers: {[l.name for l in self.order]}")
        return outputs[id(self.output)]

    def backward(self, grad_output, need_input_grad=True, record=None):
        """Back-propagate ``grad_output`` = dL/d(output of the last forward) through every layer;
        fill each layer's ``grads``; return dL/d(input).

        Training needs only the weights' gradients: with ``need_input_grad=False`` the pass stops
        where no weight lies upstream (the layers between the input and the first weighted
        layers are skipped, and those layers compute no dL/d(their input)) and returns ``None``.
        The weights' gradients are the same numbers either way. A dict given as ``record``
        receives dL/d(output) of every layer the pass reaches, by layer name (the forward pass
        must then have recorded too, so that each layer ran on its own).
        """
        if record is not None and self._fused_last and self.pooled_conv:
            raise ValueError("backward(record=...) needs the forward pass to record as well "
                             "(model.forward(x, record={})): without it, each Conv2D and the "
                             "MaxPooling2D after it ran as one kernel, and the convolution's own "
                             "output and gradient were never formed")
        pending = {id(self.output): grad_output}
        for layer in reversed(self.order):
            g = pending.pop(id(layer), None)
            if g is None:
                continue
            if record is not None:
                record[layer.name] = g
            if layer is self.input:
                return g if need_input_grad else None
            step, backward = layer, layer.backward
            if self._fused_last and id(layer) in self.pooled_conv:
                step = self.pooled_conv[id(layer)]  # dL/d(pooled) -> dL/d(the conv's input)
                backward = step.backward_pooled
            wanted = need_input_grad or self.weights_upstream[id(step)]
            if not (wanted or step.params):
                continue
            dx = backward(g, need_input_grad=wanted)
            if not wanted:
                continue
            for t, d in zip(step.inbound, dx if isinstance(dx, list) else [dx]):
                key = id(t.layer)
                pending[key] = d if key not in pending else pending[key] + d  # several consumers: sum
        return None
