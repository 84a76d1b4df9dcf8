"""The parameter arena: all the weights of a model in one flat buffer, and their gradients in another.

Each layer holds its weights as arrays of their own shapes (a ``Dense`` kernel ``(in, units)``, its
bias ``(units,)``). Once a model is built (when it is made, for a functional model or a
``Sequential`` that knows its input shape; else on its first data), those arrays become *views*
into one contiguous buffer per float type (a model used as a layer brings its own), laid end to
end in the order of ``model.params``::

    weights    [ kernel of layer 1 | bias of layer 1 | kernel of layer 2 | bias of layer 2 ]
    gradients  [ dL/dkernel 1      | dL/dbias 1      | dL/dkernel 2      | dL/dbias 2      ]

``layer.kernel`` is still an array of shape ``(in, units)``, only it lives inside the arena; and
``layer.grads[i] = g``, as every layer's backward writes it, copies ``g`` into its view of the
gradient buffer. The optimizer keeps its state the same way, one flat buffer per slot (RMSprop's
``s``, Adam's ``m`` and ``v``, ...), whose views are each parameter's state.

Why: the optimizer's update, the undo snapshot and the finiteness check of a training step treat
every number alike (element by element, with the same hyper-parameters), so they can run once over
the flat buffers instead of once per parameter array: one call per step instead of one per
parameter, fewer Python calls, and a layout a GPU likes (one kernel launch over one block of
memory, issue 14). The per-parameter ``Optimizer.apply_gradients`` stays the readable reference;
the flat step gives the same numbers, bit for bit (tests/test_arena.py).

The arena is built as soon as the model is (a functional model when it is made, a ``Sequential``
when it knows its input shape), so a reference to ``layer.kernel`` taken from then on follows
training, as a reference to a Keras variable does. A model made of some of another model's
layers (``Model(model.input, layer.output)``, to see a hidden layer, or a new head on a trained
base) leaves their weights in the first model's buffer: its arena, made when it trains, takes
the run they fill there. Assigning to a weight (``layer.kernel = w``, ``layer.params[0] = w``,
``set_weights``) copies the values into it. Adding a layer, or using the model as a layer of
another, changes ``model.params``: the arena notices that they are no longer its views and is
rebuilt around them. The weights of a model used as a layer keep that model's buffer (one more group;
references to them stay valid), as do runs of another model's buffer; the model's own weights
are copied into one new buffer, so references taken before ``model.add`` are to the arrays it
replaced.
"""
import operator
import weakref

import numpy as np

from .backend import get_array_module

ENABLED = True  # False: every step takes the per-parameter path (the reference), for comparisons
# every arena's own weight buffer, by id, while it lives: a model whose layers are already part of
# another model's buffer (Model(model.input, layer.output)) takes them where they lie
_BUFFERS = weakref.WeakValueDictionary()


class GradientViews(list):
    """A layer's ``grads`` once its model has an arena: ``grads[i] = g`` copies ``g`` into the
    i-th view of the arena's gradient buffer (and ``grads[i]`` is that view). A gradient of
    another shape is kept as it is, so that the optimizer reports the mismatch as it would."""

    def __init__(self, views, current):
        super().__init__([None] * len(views))
        self.views = views
        for i, g in enumerate(current):
            if g is not None:
                self[i] = g

    def __setitem__(self, i, g):
        if isinstance(i, slice):
            for j, gj in zip(range(*i.indices(len(self))), list(g)):
                self[j] = gj
            return
        view = self.views[i]
        if g is not None and getattr(g, "shape", None) == view.shape and \
                get_array_module(g) is get_array_module(view):
            if g is not view:
                view[...] = g
            g = view
        super().__setitem__(i, g)


class Group:
    """The parameters of one float type (and one device): where each lies in the flat buffers.

    ``positions`` are the parameters' positions in ``model.params`` (the optimizer keys its
    per-parameter state by them); ``weights`` and ``gradients`` are the flat buffers, and
    ``weight_views`` / ``gradient_views`` their views of each parameter's shape."""

    def __init__(self, xp, dtype, positions, shapes, adopt=None):
        self.dtype, self.positions, self.shapes = np.dtype(dtype), positions, shapes
        self.offsets = np.cumsum([0] + [int(np.prod(s)) for s in shapes]).tolist()
        self.size = self.offsets[-1]
        self.adopted = adopt is not None
        if adopt is None:
            self.weights = xp.empty(self.size, dtype=self.dtype)
            self.weight_views = self.views(self.weights)
            try:
                _BUFFERS[id(self.weights)] = self.weights
            except TypeError:  # an array type without weak references: not tracked
                pass
        else:  # (buffer, the parameters that already are its views, end to end): kept as they are
            self.weights, self.weight_views = adopt[0], list(adopt[1])
        self.gradients = xp.zeros(self.size, dtype=self.dtype)
        self.gradient_views = self.views(self.gradients)

    def views(self, flat):
        """``flat`` (one number per parameter entry of this group) cut into the parameters' shapes."""
        return [flat[a:b].reshape(shape)
                for a, b, shape in zip(self.offsets, self.offsets[1:], self.shapes)]


class Arena:
    """The flat weight and gradient buffers of one model (one :class:`Group` per float type)."""

    def __init__(self, model):
        params = model.params
        holders = [h for layer in model.layers for h in layer.param_holders()]
        if len(holders) != len(params):
            raise RuntimeError(f"model '{model.name}': {len(params)} parameters but "
                               f"{len(holders)} holders")
        self.groups = []
        self.views = [None] * len(params)
        self.gradient_views = [None] * len(params)
        # parameters that already lie, in order, end to end in another model's flat buffer (the
        # whole arena of a model now used as a layer, or a run of it: a model made of some of a
        # model's layers, Model(model.input, layer.output)) stay there: no copy, references to
        # them stay the layers' weights, and both models train the same numbers. The model's own
        # earlier buffers are not kept: a Sequential grown layer by layer gets one buffer, not
        # one a layer (one update call each)
        taken = set()
        for positions, buffer in _runs_in_buffers(params, _own_buffers(model)):
            self._add(Group(get_array_module(buffer), buffer.dtype, positions,
                            [tuple(params[k].shape) for k in positions],
                            adopt=(buffer, [params[k] for k in positions])), params)
            taken.update(positions)
        by_kind = {}
        for k, p in enumerate(params):
            if k not in taken:
                by_kind.setdefault((get_array_module(p), np.dtype(p.dtype)), []).append(k)
        for (xp, dtype), positions in by_kind.items():
            group = Group(xp, dtype, positions, [tuple(params[k].shape) for k in positions])
            for k, w in zip(positions, group.weight_views):
                w[...] = params[k]
            self._add(group, params)
        # the layers hold the views from now on: params[i] and the attribute naming it (kernel)
        by_layer = {}
        for k, (layer, i) in enumerate(holders):
            by_layer.setdefault(id(layer), (layer, {}))[1][i] = k
        self.layers = []
        for layer, index in by_layer.values():
            layer.hold_params([self.views[index[i]] for i in range(len(layer.params))])
            self.layers.append((layer, [self.gradient_views[index[i]]
                                        for i in range(len(layer.params))]))
        self.install_gradients()

    def _add(self, group, params):
        for k, w, g in zip(group.positions, group.weight_views, group.gradient_views):
            self.views[k], self.gradient_views[k] = w, g
        self.groups.append(group)

    def __deepcopy__(self, memo):
        """A deep copy of a model gets no arena of this one: copied views are no longer views of
        the copied buffer (training the copy would move the buffer, not its layers' weights);
        ``Model.__deepcopy__`` builds the copy's own."""
        return None

    def __reduce__(self):
        """Pickled, likewise: an unpickled model gets no arena (its weights come back as arrays
        of their own, which an unpickled buffer would not hold: it trained that buffer, not its
        layers, and its loss stayed flat); ``Model.__setstate__`` builds its own."""
        return _no_arena, ()

    def install_gradients(self):
        """Give every layer a :class:`GradientViews` as ``grads`` (its present gradients copied in)."""
        for layer, views in self.layers:
            if not (isinstance(layer.grads, GradientViews) and layer.grads.views is views):
                layer.grads = GradientViews(views, list(layer.grads))

    def holds(self, params):
        """Whether ``params`` (``model.params``) are still exactly this arena's views."""
        return len(params) == len(self.views) and all(map(operator.is_, params, self.views))

    def has_gradients(self, grads):
        """Whether ``grads`` (``model.grads``) are this arena's gradient views: every layer has
        written its gradient into the flat buffer since the arena was built."""
        return len(grads) == len(self.gradient_views) and \
            all(map(operator.is_, grads, self.gradient_views))


def _runs_in_buffers(params, own=()):
    """``[(positions, flat)]``: runs of consecutive parameters that are, in order and end to end,
    the views of ``flat``: the whole of one flat buffer (the arena of a model used as a layer),
    or part of another arena's buffer (a model of some of its layers). Buffers whose ids are in
    ``own`` (the model's own arena's) are not taken."""
    runs, k = [], 0
    while k < len(params):
        buffer = getattr(params[k], "base", None)
        if buffer is None or buffer.ndim != 1 or id(buffer) in own:
            k += 1
            continue
        start = end = k
        offset = first = _offset(params[k], buffer)
        while end < len(params) and getattr(params[end], "base", None) is buffer and \
                params[end].flags.c_contiguous and _offset(params[end], buffer) == offset:
            offset += params[end].size
            end += 1
        whole = first == 0 and offset == buffer.size
        if end > start and (whole or _BUFFERS.get(id(buffer)) is buffer):
            runs.append((list(range(start, end)), buffer if whole else buffer[first:offset]))
        k = max(end, k + 1)
    return runs


def _offset(view, buffer):
    """Where ``view`` starts in ``buffer``, in elements (numpy or cupy arrays)."""
    start = view.data.ptr if hasattr(view.data, "ptr") else view.__array_interface__["data"][0]
    base = buffer.data.ptr if hasattr(buffer.data, "ptr") else buffer.__array_interface__["data"][0]
    return (start - base) // buffer.itemsize


def _no_arena():
    return None


def of(model):
    """The arena of ``model`` (``None`` when it has no weights, or with :data:`ENABLED` off):
    built on first use, rebuilt when ``model.params`` are no longer its views (a layer added, a
    parameter array replaced)."""
    if not ENABLED or not model.built:
        return None
    params = model.params
    if not params:
        return None
    arena = getattr(model, "_arena", None)
    if arena is None or not arena.holds(params):
        arena = model._arena = Arena(model)
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None and hasattr(optimizer, "_forget_places"):
            optimizer._forget_places()  # the same weights at the same places, in new arrays
    return arena


def as_built(model):
    """The arena a model gets as it is built (see the module doc), except a model whose weights
    all lie in other models' buffers already (a model of some of another's layers, made to look
    at a hidden layer): its arena, and the gradient buffer that comes with it, waits until it
    trains (``compile`` or a step call :func:`of`), so that a model made to predict takes no
    memory and keeps no other model's buffer alive."""
    params = model.params if model.built else []
    runs = _runs_in_buffers(params, _own_buffers(model))  # (its own: a popped layer's rebuild)
    if params and sum(len(run) for run, _ in runs) == len(params):
        return None
    return of(model)


def _own_buffers(model):
    """Ids of the buffers ``model``'s arena made (not those it took from other models)."""
    own = getattr(model, "_arena", None)
    return {id(g.weights) for g in own.groups if not g.adopted} if own is not None else set()


def for_step(model, grads=None):
    """The arena of ``model`` with every gradient of the last backward pass in its flat buffer,
    ready for a flat optimizer step; ``None`` when there is none, or while some gradient is
    missing (a layer that back-propagation has not reached): take the per-parameter path then.
    ``grads``: ``model.grads``, where the caller has them."""
    arena = of(model)
    if arena is None:
        return None
    if not arena.has_gradients(model.grads if grads is None else grads):
        arena.install_gradients()  # a layer's grads list was replaced: copy what it holds
        if not arena.has_gradients(model.grads):
            return None
    return arena
