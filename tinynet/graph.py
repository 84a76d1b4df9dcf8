"""The graph of a model: its layers in order, and the two passes a student reads.

``forward`` feeds each layer the outputs of the layers it was called on, in topological order
(every layer after the layers it reads from). ``backward`` walks the same order in reverse,
handing each layer ``dL/d(its output)`` and collecting ``dL/d(its inputs)``. A tensor used by
several layers (the skip connection of a residual block) receives the *sum* of their gradients:
that is the chain rule for a variable with several consumers.

One optimisation changes how, never what, is computed: a Conv2D whose only reader is a
MaxPooling2D with windows that tile its output runs *with* that pooling, as one step
(:class:`~tinynet.layers.pooling.PooledConv`; the numba kernel never writes the convolution's
output, four times the pooled one for 2x2 windows), and so does the end of a residual block, a
Conv2D whose output only an Add reads, the Add read only by such a pooling (``pool(conv(x) +
r)``, a step of two inputs). The numbers are those of the layers run one after the other (the
weights' gradients up to the order of the additions). A forward pass asked to show a layer's
output (``until``, ``record``) runs every layer on its own.
"""
from collections.abc import MutableMapping

from .layers.base import InputLayer, Tensor
from .layers.conv import Conv2D
from .layers.merge import Add
from .layers.pooling import MaxPooling2D, PooledConv


def topological_order(output, keras_order=True):
    """Layers from the inputs to ``output``, each after all the layers it reads from, in Keras's
    order (``model.layers``, and so ``get_weights``, list the layers as a Keras model of the same
    graph does): by decreasing depth (the longest path to the output), ties in the order a
    depth-first walk back from the output first meets them. ``keras_order=False``: the walk's own
    order (each layer as soon as the layers it reads are done), tinynet's order before it took
    Keras's, in which older weights files list their arrays."""
    met, post_order, done = {}, [], set()  # met: the walk's first meeting, for the ties

    def visit(layer, path):
        if id(layer) in done:
            return
        if id(layer) in path:
            raise ValueError(f"the graph has a cycle through layer '{layer.name}'")
        met.setdefault(id(layer), len(met))
        path.add(id(layer))
        for t in layer.inbound:
            visit(t.layer, path)
        path.discard(id(layer))
        done.add(id(layer))
        post_order.append(layer)  # after all the layers it reads from

    visit(output.layer, set())
    if not keras_order:
        return post_order
    depth = {id(output.layer): 0}
    for layer in reversed(post_order):  # every layer before the layers it reads from
        for t in layer.inbound:
            depth[id(t.layer)] = max(depth.get(id(t.layer), 0), depth[id(layer)] + 1)
    return sorted(post_order, key=lambda layer: (-depth[id(layer)], met[id(layer)]))


def _runner(step):
    """The layer whose saved values a step's backward reads: the convolution of a fused
    convolution + pooling step, the layer itself otherwise."""
    return step.conv if isinstance(step, PooledConv) else step


def _key(step):
    """The layer whose output a step of a pass produces: the layer itself, or for a
    :class:`PooledConv` its pooling layer (the one the next layers read)."""
    return step.pool if isinstance(step, PooledConv) else step


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
        # the dicts of the passes are keyed by the layers themselves, not by their names (which
        # a user may change): see _key
        self.consumers = {layer: 0 for layer in self.order}  # readers of each output
        for layer in self.order:
            for t in layer.inbound:
                self.consumers[t.layer] += 1
        # Whether weights lie at or before a layer's output: a layer's input gradient matters to
        # training only when weights lie before its input.
        self.weights_before = {}
        for layer in self.order:
            self.weights_before[layer] = bool(layer.params) or any(
                self.weights_before[t.layer] for t in layer.inbound)
        self._last_steps = None  # the steps of the last complete forward pass
        self._pass = None  # that pass's mark, which its layers carry (see forward)
        # Where the structure allows a Conv2D to run with its pooling (and an Add between them):
        # (conv, pool, add), a pooling's candidates in the order of its Add's inputs (see
        # steps). Whether each one may is decided at every pass (PooledConv.fits), the steps
        # built again only when that answer changes.
        self._fusible = []
        for layer in self.order:
            before = layer.inbound[0].layer if len(layer.inbound) == 1 else None
            if before is None or self.consumers[before] != 1 or type(layer) is not MaxPooling2D:
                continue
            if type(before) is Conv2D:
                self._fusible.append((before, layer, None))
            elif type(before) is Add:
                self._fusible += [(t.layer, layer, before) for t in before.inbound
                                  if type(t.layer) is Conv2D and self.consumers[t.layer] == 1]
        self._plan = (None, None)  # (which of _fusible fit, the steps built for that)

    def _trained_before(self, frozen):
        """:attr:`weights_before` with the layers whose ids are in ``frozen`` counted as having
        no weights: whether weights that train lie at or before each layer's output."""
        before = {}
        for layer in self.order:
            before[layer] = (bool(layer.params) and id(layer) not in frozen) or any(
                before[t.layer] for t in layer.inbound)
        return before

    def steps(self):
        """The steps of a plain forward pass: the layers in order, each Conv2D read only by a
        MaxPooling2D that tiles it taken with that pooling as one :class:`PooledConv`, and so is
        a Conv2D read only by an Add of two inputs that only such a pooling reads (the end of a
        residual block), the step then taking the Add's place (decided at each pass: a layer
        changed on the object since is run on its own)."""
        fit = tuple(PooledConv.fits(*candidate) for candidate in self._fusible)
        if self._plan[0] == fit:
            return self._plan[1]
        fused = {}  # each pooling's step: the first of its candidates that fits
        for (conv, pool, add), ok in zip(self._fusible, fit):
            if ok and pool not in fused:
                fused[pool] = PooledConv(conv, pool, add=add)
        steps = []
        for layer in self.order:
            step = fused.get(layer)
            if step is None:
                steps.append(layer)
            elif step.add is None:  # in the convolution's place
                steps[steps.index(step.conv)] = step
            else:  # after both of the Add's inputs, as the Add was
                steps.remove(step.conv)
                steps[steps.index(step.add)] = step
        self._plan = (fit, steps)
        return steps

    def forward(self, x, training=False, until=None, logits=False, record=None, keep=True):
        """The output for the batch ``x``; or the output of layer ``until`` (a name), or, with
        ``logits=True``, the output layer's pre-activation ``z`` (its softmax's logits). A dict
        given as ``record`` receives every layer's output, by layer name (to look inside).

        A complete pass is the one ``backward`` goes back through: each layer keeps what its
        backward needs, and is marked with the pass, so that ``backward`` can refuse to mix
        passes (a layer run again since, on other data). ``keep=False`` (``predict``,
        ``evaluate``) leaves no pass to go back through."""
        _check_record(record, "forward", "output")
        steps = self.order if until is not None or record is not None else self.steps()
        self._last_steps = self._pass = None  # set again once this pass is complete
        outputs = {}
        for layer in steps:
            ins = [outputs[t.layer] for t in layer.inbound] or [x]
            activate = not (logits and layer is self.output)
            y = layer.forward(ins if isinstance(layer.input_shape, list) else ins[0],
                              training=training, activate=activate)
            if record is not None:
                record[layer.name] = y
            if layer.name == until:
                return y
            outputs[_key(layer)] = y
        if until is not None:
            raise ValueError(f"no layer named {until!r}; layers: {[l.name for l in self.order]}")
        if keep:
            self._pass = object()
            for step in steps:
                _runner(step)._pass = self._pass
            self._last_steps = steps
        return outputs[self.output]

    def backward(self, grad_output, need_input_grad=True, record=None, frozen=()):
        """Back-propagate ``grad_output`` = dL/d(output of the last forward) through every layer;
        fill each layer's ``grads``; return dL/d(input).

        Training needs only the weights' gradients: with ``need_input_grad=False`` the pass stops
        where no weight lies upstream (the layers between the input and the first weighted
        layers are skipped, and those layers compute no dL/d(their input)) and returns ``None``.
        The layers whose ids are in ``frozen`` count as having no weights there: the pass stops
        before a frozen base, which training does not change (their ``grads`` are left as they
        were). The weights' gradients are the same numbers either way. A dict given as
        ``record`` receives dL/d(output) of every layer the pass reaches, by layer name (the
        forward pass must then have recorded too, so that each layer ran on its own).
        """
        _check_record(record, "backward", "dL/d(output)")
        steps = self._last_steps
        if steps is None:
            raise ValueError("backward() goes back through the model's last forward pass, and "
                             "there is none to go back through: the last one stopped at a layer "
                             "(forward(x, until=...)) or was predict's or evaluate's, which keep "
                             "none; call forward(x) first")
        ran_since = [_runner(step).name for step in steps if getattr(_runner(step), "_pass", None)
                     is not self._pass]
        if ran_since:
            raise ValueError(f"backward() goes back through the model's last forward pass, but "
                             f"layer(s) {ran_since} ran again since (called on other data, "
                             "directly or through another model): what they kept is no longer "
                             "that pass's, and the gradients would be wrong; run the model's "
                             "forward pass again, then backward()")
        if record is not None and any(isinstance(step, PooledConv) for step in steps):
            raise ValueError("backward(record=...) needs the forward pass to record as well "
                             "(model.forward(x, record={})): without it, each Conv2D and the "
                             "MaxPooling2D after it ran as one step, and the convolution's own "
                             "output and gradient were never formed")
        before = self.weights_before if not frozen else self._trained_before(frozen)
        pending = {self.output: grad_output}
        for layer in reversed(steps):
            g = pending.pop(_key(layer), None)
            if g is None:
                continue
            if record is not None:
                record[layer.name] = g
            if layer is self.input:
                return g if need_input_grad else None
            wanted = need_input_grad or any(before[t.layer] for t in layer.inbound)
            if not (wanted or (layer.params and id(_runner(layer)) not in frozen)):
                continue
            first = wanted
            if isinstance(layer, PooledConv) and layer.add is not None:
                # it always gives dL/d(residual) (the pooling's backward, cheap); dL/d(its
                # convolution's input) only where that is wanted
                first = need_input_grad or before[layer.inbound[0].layer]
            dx = layer.backward(g, need_input_grad=first)
            if not wanted:
                continue
            grads = list(dx) if isinstance(dx, (list, tuple)) else [dx]
            # None is an answer only for an input whose gradient nothing needs (the model's input)
            missing = [i for i, (t, d) in enumerate(zip(layer.inbound, grads)) if d is None
                       and (need_input_grad or before[t.layer])]
            if len(grads) != len(layer.inbound) or missing:
                raise ValueError(
                    f"layer '{layer.name}' ({type(layer).__name__}) has {len(layer.inbound)} "
                    f"input(s), and its backward returned "
                    + (f"{len(grads)} gradient(s)" if len(grads) != len(layer.inbound) else
                       f"None for input {missing[0]}")
                    + ": return dL/d(input) for each input, a list in the order of the inputs "
                    "(a single array for one input), None only for an input that needs none "
                    "(the model's input, unless dL/dx is asked for); "
                    + ("without it, the layers before that input would not train"
                       if len(grads) != len(layer.inbound)
                       or before[layer.inbound[missing[0]].layer]
                       else "dL/dx was asked for (backward with need_input_grad)"))
            for t, d in zip(layer.inbound, grads):
                if d is None:
                    continue
                key = t.layer
                # several consumers: the sum of their gradients (popped first: NumPy then adds
                # in place into the array nothing else holds, as it does with any temporary)
                pending[key] = d if key not in pending else pending.pop(key) + d
        return None


def _check_record(record, where, what):
    """``record`` is None or a dict (or another mutable mapping) that receives each layer's
    ``what`` under its name."""
    if record is not None and not isinstance(record, MutableMapping):
        raise TypeError(f"{where}: record= takes a dict, which receives each layer's {what} under "
                        f"the layer's name (outputs = {{}}; model.{where}(..., record=outputs)), "
                        f"got {type(record).__name__}")
