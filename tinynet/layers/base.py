"""The Layer base class, the symbolic tensors of the functional API, and ``Input``.

A layer turns an input batch into an output batch (``forward``) and, given the gradient of the
loss with respect to its output, returns the gradient with respect to its input and fills
``layer.grads`` with the gradients of its parameters (``backward``). Each layer writes its own
maths in ``_forward``/``_backward`` (the pre-activation ``z`` and its gradients); this class does
the rest, once for every layer:

* building on first use, checking shapes and casting integer input to the layer's float type;
* the activation: ``y = f(z)`` after ``_forward``, and before ``_backward`` the gradient through
  it, ``dz = f'(z) ⊙ dy`` for the element-wise ones, with ``f'`` written from the saved output
  ``y`` (``[y > 0]``, ``y (1 - y)``, ``1 - y²``: ``z`` is not kept), and the full Jacobian
  product for softmax.
  A layer whose kernel can apply its activation in the same pass over memory lists it in
  ``fused_activations`` (Conv2D: ``relu``); ``_forward`` then receives ``fused="relu"`` and
  returns ``y`` directly, and ``_backward`` receives that ``y`` to form ``dz`` itself. Same numbers;
* ``forward(x, activate=False)`` returns the pre-activation ``z`` (the *logits* of a softmax
  layer) and the following ``backward`` takes ``dL/dz``: this is how ``fit`` trains a softmax
  output with the fused softmax + cross-entropy of :mod:`tinynet.losses`;
* ``backward(..., need_input_grad=False)``: a layer whose input needs no gradient (it is the
  data) computes only its weights' gradients and returns ``None``.
"""
import inspect
import math
import warnings

import numpy as np

from .. import activations, backend
from ..checks import not_numbers
from ..names import reserve, unique_name, unknown_argument, written_over
from ..shapes import fmt_shape

# Kernel initialisers as Keras 3 defines them (keras/src/initializers/random_initializers.py),
# from the kernel's fan_in and fan_out (a convolution's count every position of its window):
# uniform U(-l, l) with l = sqrt(3 * scale / fan), or a truncated normal of std sqrt(scale / fan):
#   glorot_uniform (Keras's default), glorot_normal  scale 1, fan = (fan_in + fan_out) / 2
#   he_uniform, he_normal                            scale 2, fan = fan_in
#   lecun_uniform, lecun_normal                      scale 1, fan = fan_in
# The truncated normal draws N(0, s^2) and draws again every value beyond two s, which leaves a
# standard deviation of 0.8796 s: Keras takes s = sqrt(scale / fan) / 0.8796 so that the kernel's
# own standard deviation is sqrt(scale / fan). random_normal is N(0, 0.05^2), not truncated, and
# random_uniform U(-0.05, 0.05) (Keras 2 scripts call them "normal" and "uniform").
INITIALIZERS = ("glorot_uniform", "he_uniform", "lecun_uniform", "glorot_normal", "he_normal",
                "lecun_normal", "random_normal", "random_uniform", "zeros")
# Keras's other names for two of them (Keras 2 scripts' kernel_initializer="uniform")
INITIALIZER_ALIASES = {"uniform": "random_uniform", "normal": "random_normal"}
TRUNCATED_STD = 0.87962566103423978  # the standard deviation of N(0, 1) cut at -2 and 2


def initial_kernel(shape, fan_in, fan_out, initializer="glorot_uniform"):
    """A kernel of ``shape`` drawn from tinynet's generator as ``initializer`` says."""
    if initializer == "zeros":
        return zeros(shape)
    if initializer.endswith("_uniform"):
        limit = {"glorot_uniform": math.sqrt(6.0 / (fan_in + fan_out)),
                 "he_uniform": math.sqrt(6.0 / fan_in),
                 "lecun_uniform": math.sqrt(3.0 / fan_in),
                 "random_uniform": 0.05}[initializer]
        w = backend.rng().uniform(-limit, limit, size=shape)
    elif initializer == "random_normal":
        w = backend.rng().normal(0.0, 0.05, size=shape)
    else:
        std = {"glorot_normal": math.sqrt(2.0 / (fan_in + fan_out)),
               "he_normal": math.sqrt(2.0 / fan_in),
               "lecun_normal": math.sqrt(1.0 / fan_in)}[initializer]
        w = truncated_normal(shape, std / TRUNCATED_STD)
    return backend.asarray(w.astype(backend.floatx()))


# what a Keras initializer's get_config holds when it draws as tinynet's of the same name
_INITIALIZER_DEFAULTS = {"seed": None, "input_axes": None, "output_axes": None, "mean": 0.0,
                         "stddev": 0.05, "minval": -0.05, "maxval": 0.05}


def _initializer_name(value):
    """Keras's names of an initializer, as tinynet's: ``"glorot_uniform"`` itself, its class name
    ``"GlorotUniform"``, or a get_config's ``{"class_name": "GlorotUniform", "config": {...}}``
    with Keras's default settings (anything else is returned as given, for the caller to
    refuse with the names it knows)."""
    if isinstance(value, dict) and isinstance(value.get("class_name"), str):
        config = value.get("config") or {}
        if any(config.get(k, d) != d for k, d in _INITIALIZER_DEFAULTS.items()) or \
                set(config) - set(_INITIALIZER_DEFAULTS):
            return value
        value = value["class_name"]
    if isinstance(value, str) and value[:1].isupper():  # "GlorotUniform" -> "glorot_uniform"
        value = "".join("_" + c.lower() if c.isupper() else c for c in value).lstrip("_")
    return INITIALIZER_ALIASES.get(value, value) if isinstance(value, str) else value


def truncated_normal(shape, s):
    """N(0, s^2) values cut at two ``s``: every value beyond is drawn again (as Keras does)."""
    w = backend.rng().normal(0.0, s, size=shape)
    outside = np.abs(w) > 2 * s
    while outside.any():
        w[outside] = backend.rng().normal(0.0, s, size=int(outside.sum()))
        outside = np.abs(w) > 2 * s
    return w


def zeros(shape):
    return backend.xp().zeros(shape, dtype=backend.floatx())


def as_float(x, dtype):
    """``x`` itself when it already holds ``dtype`` numbers, else ``x`` cast to ``dtype`` (integer
    pixels, booleans, float16, and NumPy's default float64 given to a float32 layer), as Keras
    casts a layer's input to its compute type: a float32 layer computes in float32 whatever it
    is given."""
    return x if x.dtype == dtype else x.astype(dtype)


def checked_gradient(g, y, who):
    """``g`` = dL/dy as an array of ``y``'s float type, checked: it must have the shape of the
    output ``y`` of the last forward pass (a gradient of another shape would be broadcast, or
    fail inside NumPy) and hold real numbers."""
    if not hasattr(g, "shape") or not hasattr(g, "dtype"):
        g = backend.get_array_module(y).asarray(g)
    if tuple(g.shape) != tuple(y.shape):
        raise ValueError(f"{who}: backward() got a gradient of shape {tuple(g.shape)}, but the "
                         f"last forward pass gave an output of shape {tuple(y.shape)}; "
                         "dL/d(output) has the output's shape")
    if g.dtype.kind not in "fiub":
        raise TypeError(f"{who}: backward() expects a gradient of real numbers, got dtype "
                        f"{g.dtype}")
    return as_float(g, y.dtype)


class Tensor:
    """A symbolic tensor of the functional API: a shape (batch axis ``None``) and the layer that
    produces it. The layer's ``inbound`` tensors say where its own inputs come from."""

    def __init__(self, shape, layer):
        self.shape = (None,) + tuple(shape)
        self.layer = layer

    @property
    def dtype(self):
        """The float type of its values, by name, as Keras's ``"float32"``."""
        return np.dtype(getattr(self.layer, "dtype", None) or backend.floatx()).name

    @property
    def name(self):
        """The producing layer's name (an ``Input``'s: the key of ``{name: x}`` in ``fit``)."""
        return self.layer.name

    def __repr__(self):
        return f"<Tensor shape={self.shape} from '{self.layer.name}'>"


def _copy_into(param, value, what):
    """``param[...] = value`` for an assignment to a parameter, shape checked."""
    shape = tuple(value.shape) if hasattr(value, "shape") else np.shape(value)
    dtype = value.dtype if hasattr(value, "dtype") else np.asarray(value).dtype
    if np.dtype(dtype).kind not in "biuf":
        raise not_numbers(dtype, "the array assigned", what)
    if shape != tuple(param.shape):
        raise ValueError(f"{what} has shape {tuple(param.shape)}; the array assigned has shape "
                         f"{shape} (to change a layer's shape, make a new layer)")
    param[...] = value


class Params(list):
    """A layer's ``params``: ``params[i] = w`` copies ``w`` into the i-th parameter, which stays
    the array its layer's attribute (``kernel``), the optimizer and the model's flat buffer hold."""

    def __init__(self, arrays, owner):
        super().__init__(arrays)
        self.owner = owner  # the layer (its name is read when a message needs it)

    def __setitem__(self, i, value):
        if isinstance(i, slice):
            indices, values = range(*i.indices(len(self))), list(value)
            if len(indices) != len(values):
                raise ValueError(f"layer '{self.owner.name}': {len(values)} arrays for "
                                 f"{len(indices)} parameters")
            for j, v in zip(indices, values):
                self[j] = v
            return
        _copy_into(self[i], value, f"layer '{self.owner.name}': params[{i}]")

# Keras's arguments for what tinynet does not implement, taken at their default values (code
# written from a layer's get_config passes them all): dilation, grouped convolutions,
# regularisers, constraints, LoRA, noise shapes, sparse inputs.
KERAS_DEFAULTS = {"dilation_rate": 1, "groups": 1, "kernel_regularizer": None,
                  "bias_regularizer": None, "activity_regularizer": None,
                  "kernel_constraint": None, "bias_constraint": None, "lora_rank": None,
                  "lora_alpha": None, "quantization_config": None, "noise_shape": None,
                  "sparse": False, "ragged": False, "optional": False}


def _is_default(value, default):
    """``value`` asks for Keras's default (``None`` too: not given)."""
    if value is None or default is None or isinstance(default, bool):
        return value is None or value is default
    values = value if isinstance(value, (list, tuple)) else (value,)
    return len(values) > 0 and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                   and v == default for v in values)


_PASSES_CHECKED = set()  # the layer classes whose _forward and _backward take the model's calls


def _check_passes(layer):
    """Refuse a layer whose ``_forward`` or ``_backward`` cannot take the arguments that
    :meth:`Layer.forward` and :meth:`Layer.backward` give them (it failed at the first backward
    pass with "_backward() takes 2 positional arguments but 3 were given"). A class that writes
    its own ``forward`` or ``backward`` calls what it likes."""
    cls = type(layer)
    fused = bool(cls.fused_activations)  # its kernel applies an activation: also given that
    for name, public, given, keyword, written in (
            ("_forward", "forward", ("x", "training"), "fused",
             "_forward(self, x, training, fused=None)"),
            ("_backward", "backward", ("dz", "need_input_grad"), "fused_output",
             "_backward(self, dz, need_input_grad=True, fused_output=None)")):
        if getattr(cls, public) is not getattr(Layer, public):
            continue
        method = getattr(layer, name)  # bound: a staticmethod takes no self
        if not callable(method):
            raise TypeError(f"{cls.__name__}.{name} is {method!r}, not a method: write it as "
                            f"{written}")
        try:
            signature = inspect.signature(method)
        except ValueError:  # (no signature to read: a builtin)
            continue
        try:
            signature.bind(*given, **({keyword: None} if fused else {}))
        except TypeError:
            shown = inspect.signature(getattr(cls, name))  # (with self, as it is written)
            raise TypeError(f"{cls.__name__}.{name}{shown}: a layer's passes are called as "
                            f"{written} (the model gives {', '.join(given)}, in that order"
                            f"{f', and {keyword}=' if fused else ''}); "
                            f"write {name} with these parameters") from None


class Layer:
    """Base class. Subclasses set ``default_name`` and write ``build``, ``_forward``, ``_backward``.

    A layer of one's own (``tinynet.gradcheck.check_layer(layer, x)`` then checks its backward)::

        class Scale(Layer):                      # y = a * x, one trained weight a
            def build(self, input_shape):        # input_shape: one example's, no batch axis
                self.a = self.add_weight(shape=(1,), initializer="ones")  # in params and grads
                super().build(input_shape)       # records input_shape and output_shape
            def compute_output_shape(self, input_shape):
                return input_shape               # (no batch axis); the default keeps the shape
            def _forward(self, x, training, fused=None):
                self._x = x                      # what _backward needs
                return self.a * x                # a new array: never change x in place
            def _backward(self, dz, need_input_grad=True, fused_output=None):
                self.grads[0] = (dz * self._x).sum(keepdims=True).reshape(1)  # dL/da
                return self.a * dz               # dL/dx; never change dz in place

    A layer of several inputs receives the list of their shapes in ``build`` and keeps it as
    ``self.input_shape`` (as :class:`~tinynet.layers.merge.Add` does, after ``super().build`` of
    its output's shape); ``_forward`` then gets the list of arrays and ``_backward`` returns a
    list of one gradient for each, in the order of the inputs (the model refuses fewer).
    """

    default_name = "layer"
    fused_activations = ()  # activations the layer's kernel applies itself (see the module doc)

    def __new__(cls, *args, **kwargs):
        # Keras's custom layers write only call() and leave the gradient to automatic
        # differentiation, which tinynet does not have: such a layer is refused as it is made
        # (it failed later with a bare NotImplementedError from deep inside the forward pass)
        if written_over(cls, "call", "_forward", "forward"):
            raise TypeError(
                f"{cls.__name__}: a custom layer with a call() method (Keras's way, its gradient "
                "found by automatic differentiation) is not implemented in tinynet, where every "
                "layer writes both of its passes: subclass tinynet.layers.Layer and write "
                "_forward(self, x, training, fused=None), which returns the output, and "
                "_backward(self, dz, need_input_grad=True, fused_output=None), which returns "
                "dL/dx from dz = dL/d(output) (Flatten in tinynet/layers/core.py is a short "
                "example; Dense shows a layer with weights, made in build() into self.params, "
                "their gradients written into self.grads; tinynet.gradcheck checks your "
                "backward). An elementwise function may already be layers.Activation(...) or "
                "layers.Rescaling(...)")
        layer = super().__new__(cls)
        if cls not in _PASSES_CHECKED:
            _check_passes(layer)
            _PASSES_CHECKED.add(cls)
        return layer

    def __init__(self, name=None, activation=None, **keras_options):
        if name is not None:
            reserve(name, type(self).__name__)  # default names will not take it
        self.name = name if name is not None else unique_name(self.default_name)
        self.activation = activation  # checked by the property below
        self.requested_input_shape = self._keras_options(keras_options)
        self._user_input_shape = True  # (a model used as a layer sets its own: not the user's)
        self.built = False
        self.input_shape = None
        self.output_shape = None
        self.dtype = None
        self.params = []
        self.grads = []
        self.inbound = None  # symbolic input tensors, once the layer is part of a graph
        self._y = None  # the output of the last forward pass: what backward goes back through
        self._pass = None  # the model's forward pass that last ran this layer (graph.Graph.forward)

    # ---- configuration ---------------------------------------------------------------------
    def _keras_options(self, options):
        """Keras's arguments common to all layers. ``input_shape=(28, 28, 1)`` / ``input_dim=784``
        (Keras 2 style) give a Sequential model its input; the rest are accepted where tinynet
        does what they ask, and refused with the reason where it does not. Returns the shape."""
        shape = None
        if options.get("input_shape") is not None:
            shape = options.pop("input_shape")
            shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        if options.get("input_dim") is not None:
            shape = (options.pop("input_dim"),)
        if options.get("batch_input_shape") is not None:
            shape = tuple(options.pop("batch_input_shape"))[1:]
        for key in ("input_shape", "input_dim", "batch_input_shape"):
            options.pop(key, None)
        where = f"{type(self).__name__} '{self.name}'"
        if options.get("data_format") not in (None, "channels_last"):
            value = options["data_format"]
            if value == "channels_first":
                raise ValueError(f"{where}: data_format='channels_first' is not supported: "
                                 "tinynet is channels-last only (images (N, H, W, C)); transpose "
                                 "channels-first images with x.transpose(0, 2, 3, 1)")
            raise ValueError(f"{where}: data_format={value!r} is not a data format (Keras's "
                             "'channels_last', the only one tinynet has, or 'channels_first'); "
                             "given by position? It comes after padding, in Keras's order: give "
                             "the other arguments by keyword (activation='relu', name='...')")
        options.pop("data_format", None)
        if "data_format" in inspect.signature(type(self).__init__).parameters:
            self.data_format = "channels_last"  # what Keras's image layers answer, resolved
        dtype = options.pop("dtype", None)
        if isinstance(dtype, dict):  # a Keras get_config's DTypePolicy: {"config": {"name": ...}}
            dtype = (dtype.get("config") or {}).get("name", dtype)
        try:
            known = dtype is None or np.dtype(dtype).kind in "biuf"
        except (TypeError, ValueError):  # Keras's mixed-precision policies ("mixed_float16")
            known = False
        if not known:
            raise ValueError(f"{where}: dtype={dtype!r} is not implemented in tinynet (no "
                             f"mixed precision); every layer computes in "
                             f"tinynet.backend.floatx(), now {backend.floatx()!r}")
        if dtype is not None and np.dtype(dtype).name != backend.floatx():
            raise ValueError(f"{where}: dtype={dtype!r} per layer is not supported; tinynet sets "
                             f"the float type of every layer with tinynet.backend.set_floatx"
                             f"({np.dtype(dtype).name!r}) (now {backend.floatx()!r})")
        self.trainable = options.pop("trainable", True)  # checked by the property below
        for key, default in KERAS_DEFAULTS.items():  # at Keras's default, they ask for nothing
            if key in options and _is_default(options[key], default):
                del options[key]
        if options:
            name = next(iter(options))
            accepted = [p for p in inspect.signature(type(self).__init__).parameters
                        if p not in ("self", "keras_options", "kwargs", "data_format")
                        and p not in KERAS_DEFAULTS]
            only = (f"only its default, {name}={KERAS_DEFAULTS[name]!r}, is accepted; "
                    if name in KERAS_DEFAULTS else "")
            raise unknown_argument(where, name, f"{only}{type(self).__name__} takes "
                                   f"{', '.join(accepted)}, and input_shape, input_dim, dtype, "
                                   "data_format='channels_last'")
        if shape is not None and None in shape:
            raise ValueError(f"{where}: input_shape={shape}: input_shape leaves the batch axis "
                             "out, and a size known only at run time (None) is not implemented "
                             "in tinynet, whose layers are built for one size: give every size "
                             "but the batch's, like (28, 28, 1)")
        if shape is not None and (not shape or any(
                isinstance(d, (bool, np.bool_)) or not isinstance(d, (int, np.integer)) or d <= 0
                for d in shape)):
            raise ValueError(f"{where}: input_shape must be positive integers without the batch "
                             f"axis, like (28, 28, 1), got {shape}")
        return None if shape is None else tuple(int(d) for d in shape)

    @property
    def trainable(self):
        """Whether training updates this layer's weights (Keras's ``trainable``; ``True`` unless
        set). A *frozen* layer (``trainable = False``, or ``trainable=False`` when it is made)
        keeps its weights through ``fit`` and ``train_on_batch``: the optimizer skips them and
        keeps no state for them, while the gradient still flows through the layer to the layers
        before it (``dL/dx`` needs the weights, not their gradient). Setting it takes effect at
        the next training step (Keras reads it when ``fit`` first runs after ``compile``, and asks
        to ``compile`` again after a change, which tinynet does not need)."""
        return getattr(self, "_trainable", True)

    @trainable.setter
    def trainable(self, value):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{type(self).__name__} '{self.name}': trainable must be True or "
                            f"False, got {value!r}")
        self._trainable = bool(value)

    @property
    def activation(self):
        """The activation function ``f`` of ``y = f(z)``, as in Keras (``tinynet.activations.relu``;
        ``linear`` for none): ``layer.activation(z)`` applies it. Set it by name, as tinynet's or
        Keras's function, or None; checked when set (an unknown name failed only when the layer
        next ran)."""
        return activations.get(self.activation_name)

    @activation.setter
    def activation(self, value):
        self._activation = activations.name_of(value, owner=self.name)

    @property
    def activation_name(self):
        """The activation's name (``"relu"``; ``"linear"`` for none): what the fused kernels and
        the fused losses look for."""
        return self._activation

    # ---- Keras's views of the weights: the arrays themselves -----------------------------------
    @property
    def weights(self):
        """Keras's ``layer.weights``: the layer's weight arrays themselves (not copies, unlike
        ``get_weights()``), in Keras's order (kernel, bias); ``[]`` before the layer is built.
        Writing into them (``w[...] = ...``) changes the layer. Building a model moves its
        weights into one flat buffer (:mod:`tinynet.arena`): arrays taken from a layer before it
        joins a model are no longer the layer's after."""
        return list(self.params)

    @property
    def trainable_weights(self):
        """Keras's ``trainable_weights``: the ``weights`` that training updates (all of them, or
        none for a frozen layer, see :attr:`trainable`)."""
        return self.weights if self.trainable else []

    @property
    def non_trainable_weights(self):
        """Keras's ``non_trainable_weights``: the ``weights`` of a frozen layer (else ``[]``)."""
        return [] if self.trainable else self.weights

    trainable_variables = trainable_weights  # Keras 3's other names for the same lists
    non_trainable_variables = non_trainable_weights

    def get_config(self):
        """Constructor arguments (JSON-able) that rebuild this layer."""
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        """The layer ``get_config`` describes (Keras's ``from_config``): ``cls(**config)``; a
        Keras layer's configuration too, where it asks for what tinynet has."""
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} '{self.name}'>"

    # ---- shapes and building ---------------------------------------------------------------
    def build(self, input_shape):
        """Create the parameters for inputs of ``input_shape`` (no batch axis); set output_shape.
        Subclasses with weights or padding compute them first, then call this."""
        self.input_shape = tuple(input_shape)
        self.output_shape = tuple(self.compute_output_shape(self.input_shape))
        self.dtype = np.dtype(self.params[0].dtype if self.params else backend.floatx())
        self.built = True

    def compute_output_shape(self, input_shape):
        """The output shape (no batch axis) for ``input_shape``; no side effect."""
        return tuple(input_shape)

    def _check_input(self, x):
        """Build on first use; refuse inputs whose shape differs from the built one; cast integer
        (or float16) input to the layer's float type, as Keras does. Return the input to use."""
        if (isinstance(x, (list, tuple)) and len(x) > 1
                and all(hasattr(a, "shape") and hasattr(a, "dtype") for a in x)
                and (isinstance(self.input_shape, list) or not self.built)):
            return self._check_inputs(list(x))
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            raise TypeError(f"layer '{self.name}' expects an array, got {type(x).__name__}")
        if np.dtype(x.dtype).kind not in "biuf":  # (cast, strings failed inside NumPy and
            # complex numbers lost their imaginary part): the model's check, for the layer
            raise not_numbers(x.dtype, "x", f"layer '{self.name}' ({type(self).__name__})")
        if x.ndim < 1:
            raise ValueError(f"layer '{self.name}' expects a batch (N, ...), got a scalar")
        if not self.built:
            self._build_checked(tuple(x.shape[1:]))
        elif isinstance(self.input_shape, list):
            raise ValueError(f"layer '{self.name}' ({type(self).__name__}) takes a list of "
                             f"{len(self.input_shape)} inputs, got one array")
        elif tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"layer '{self.name}' ({type(self).__name__}) expects input of shape "
                f"{fmt_shape(self.input_shape)}, got {fmt_shape(x.shape[1:])}")
        return as_float(x, self.dtype)

    def _check_inputs(self, xs):
        """:meth:`_check_input` for a layer of several inputs (``input_shape`` a list)."""
        who = f"layer '{self.name}' ({type(self).__name__})"
        shapes = [tuple(x.shape[1:]) for x in xs]
        for i, x in enumerate(xs):
            if np.dtype(x.dtype).kind not in "biuf":
                raise not_numbers(x.dtype, f"x[{i}]", who)
        if not self.built:
            made = list(self.params), list(self.grads)  # (weights made in __init__)
            try:
                self._build_checked(shapes, several=True)
            except (TypeError, ValueError):  # a layer of one input, given a list
                self.built, self.input_shape, self.output_shape = False, None, None
                self.params, self.grads = made  # not what the failed build made
                if type(self).__module__.startswith("tinynet."):
                    raise ValueError(f"{who} takes one array (N, ...), got a list of "
                                     f"{len(xs)} arrays") from None
                raise
        if shapes != [tuple(s) for s in self.input_shape]:
            raise ValueError(f"{who} expects inputs of "
                             + ", ".join(fmt_shape(s) for s in self.input_shape) + ", got "
                             + ", ".join(fmt_shape(s) for s in shapes))
        if len({x.shape[0] for x in xs}) > 1:
            raise ValueError(f"{who}: its inputs have different batch sizes "
                             f"{[x.shape[0] for x in xs]}")
        return [as_float(x, self.dtype) for x in xs]

    def _build_checked(self, shapes, several=False):
        """``build(shapes)``, then :meth:`_check_built`; keeps how many weights the build made
        (appended with ``add_weight``, or all of ``params`` when it made the list anew)."""
        before = list(self.params)
        self.build(shapes)
        n = len(before)
        appended = len(self.params) >= n and all(a is b for a, b in zip(self.params, before))
        self._weights_of_build = len(self.params) - n if appended else len(self.params)
        self._check_built(shapes, several)

    def _build_again(self, shapes, built_for, several=False):
        """Build a built layer for other inputs (another image size, or the float type of the
        model it joins) and keep its weights, as Keras keeps them: a Conv2D built for 5x5 images
        runs on 9x9 ones with the same kernel (cast to the new float type). Inputs its weights do
        not fit (another number of channels or features) are refused, as Keras refuses them, and
        the layer is left as it was; so is a failed build. (Building anew gave new random
        weights: weights set or loaded were lost without a word.)"""
        before = dict(self.__dict__)  # every attribute, as it was: the weights among them
        kept = [np.array(backend.to_numpy(p)) for p in self.params]
        made = getattr(self, "_weights_of_build", 0)  # the build makes these again: without
        if made:  # them in params, add_weight's new arrays replace them (instead of joining them)
            self.params = list(self.params)[:len(self.params) - made]
            self.grads = list(self.grads)[:len(self.params)]
        try:
            self._build_checked(shapes, several)
            if made and len(self.params) == len(kept) - made:  # a build that made nothing this
                self.params, self.grads = before["params"], before["grads"]  # time keeps them
                self._weights_of_build = made
                if shapes != built_for:  # do they fit the new inputs? a pass on ones says,
                    self._try_on_ones(shapes, built_for)  # as Keras's symbolic call does
            needed = [tuple(p.shape) for p in self.params]
            if len(needed) != len(kept):  # add_weight in build adds weights at each build
                raise ValueError(
                    f"layer '{self.name}' ({type(self).__name__}) was built for inputs of shape "
                    f"{fmt_shape(built_for)}; building it again for {fmt_shape(shapes)} made "
                    f"{len(needed)} weight arrays where it had {len(kept)} (its build adds "
                    "weights each time it runs): use a new layer for these inputs")
            if needed != [w.shape for w in kept]:
                raise ValueError(
                    f"layer '{self.name}' ({type(self).__name__}) was built for inputs of shape "
                    f"{fmt_shape(built_for)}, with weights of shapes {[w.shape for w in kept]}; "
                    f"inputs of shape {fmt_shape(shapes)} need weights of shapes {needed}. "
                    "Keras refuses such a call too: use a new layer for these inputs")
        except Exception:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise
        floatx = np.dtype(backend.floatx())
        if any(p.dtype != floatx for p in self.params):  # made in __init__, say: cast, and
            self.hold_params([backend.xp().asarray(p, dtype=floatx) for p in self.params])
            self.dtype = floatx  # the attributes that hold them follow
        for p, w in zip(self.params, kept):
            p[...] = backend.xp().asarray(w, dtype=p.dtype)

    def _try_on_ones(self, shapes, built_for):
        """Run the layer on one example of ones of ``shapes`` (the backend's arrays; ones, not
        zeros, which a norm or a log would divide by or refuse), quietly; refuse the inputs if
        it fails."""
        xp = backend.xp()
        ones = ([xp.ones((1,) + tuple(s), self.dtype) for s in shapes]
                if isinstance(shapes, list) else xp.ones((1,) + tuple(shapes), self.dtype))
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                self._forward(ones, False)
        except Exception as e:  # noqa: BLE001  (whatever a layer of one's own raises)
            raise ValueError(
                f"layer '{self.name}' ({type(self).__name__}) was built for inputs of shape "
                f"{fmt_shape(built_for)} and its build() keeps the weights it made then; on "
                f"inputs of shape {fmt_shape(shapes)} it fails ({type(e).__name__}: {e}). Keras "
                "refuses such a call too: use a new layer for these inputs") from None

    def _check_built(self, shapes, several=False):
        """What a layer of one's own can get wrong in ``build``, named: no ``super().build(...)``,
        a layer of several inputs that kept one shape."""
        who = f"layer '{self.name}' ({type(self).__name__})"
        if self.output_shape is None or not self.built:
            raise ValueError(f"{who}: its build() must end with super().build(input_shape), which "
                             "records the input and output shapes (compute_output_shape)")
        if several and not isinstance(self.input_shape, list):
            raise ValueError(f"{who} receives {len(shapes)} inputs but its build() kept one input "
                             f"shape, {fmt_shape(self.input_shape)}: a layer of several inputs "
                             "keeps the list of their shapes, self.input_shape = input_shape, "
                             "after super().build(its output's shape), as layers.Add does")

    # ---- parameters ------------------------------------------------------------------------
    def get_weights(self):
        """The parameters as NumPy arrays, in Keras order (kernel, bias)."""
        return [backend.to_numpy(p).copy() for p in self.params]

    def set_weights(self, weights):
        """Copy ``weights`` (Keras layout and order) into the parameters, in place."""
        weights = list(weights)
        if len(weights) != len(self.params):
            raise ValueError(f"layer '{self.name}' has {len(self.params)} weight arrays, "
                             f"got {len(weights)}")
        for i, (p, w) in enumerate(zip(self.params, weights)):
            w = np.asarray(backend.to_numpy(w))
            if w.dtype.kind not in "biuf":  # (a string failed inside NumPy; a complex number
                raise not_numbers(w.dtype, f"weights[{i}]",  # lost its imaginary part)
                                  f"layer '{self.name}': set_weights")
            if w.shape != p.shape:
                raise ValueError(f"layer '{self.name}': weight of shape {tuple(p.shape)} cannot be "
                                 f"set from an array of shape {w.shape}")
            p[...] = backend.xp().asarray(w, dtype=p.dtype)

    def param_holders(self):
        """``(layer, i)`` for each array of ``params``: the layer whose ``params[i]`` it is (this
        one; a model used as a layer answers for its inner layers)."""
        return [(self, i) for i in range(len(self.params))]

    def param_names(self):
        """A name for each array of ``params``: the attribute that holds it (``kernel``,
        ``bias``), else ``w<i>``; a model used as a layer prefixes its inner layer's name."""
        names = []
        for holder, k in self.param_holders():
            name = next(iter(holder._attributes_holding(holder.params[k])), f"w{k}")
            names.append(name if holder is self else f"{holder.name}.{name}")
        return names

    def _attributes_holding(self, array):
        """The names of this layer's attributes that are ``array`` itself (``kernel``, ``bias``)."""
        return [key for key, value in vars(self).items() if value is array and key != "params"]

    def hold_params(self, arrays):
        """Hold ``arrays`` (same shapes, values already copied in) as the parameters from now on:
        ``params[i]`` and whatever attribute holds it (``kernel``, ``bias``; an item of a list,
        tuple or dict attribute) are rebound to them. The model's arena makes them views of its
        flat buffer this way (:mod:`tinynet.arena`)."""
        new = {id(old): a for old, a in zip(self.params, arrays)}
        for key, value in list(vars(self).items()):
            if key in ("params", "grads"):
                continue
            if id(value) in new:
                object.__setattr__(self, key, new[id(value)])
            elif isinstance(value, list) and any(id(v) in new for v in value):
                value[:] = [new.get(id(v), v) for v in value]
            elif isinstance(value, tuple) and any(id(v) in new for v in value):
                items = [new.get(id(v), v) for v in value]
                object.__setattr__(self, key, value._make(items) if hasattr(value, "_make")
                                   else tuple(items))
            elif isinstance(value, dict) and any(id(v) in new for v in value.values()):
                for k, v in list(value.items()):
                    value[k] = new.get(id(v), v)
        for i, a in enumerate(arrays):
            list.__setitem__(self.params, i, a)

    def __setattr__(self, name, value):
        # ``layer.kernel = w`` copies w into the kernel: the kernel stays the array that
        # ``params``, the forward pass, the optimizer and the model's flat buffer all hold
        # (rebinding the attribute alone would train one array and run another)
        params = self.__dict__.get("params")
        if params and name != "params" and not name.startswith("_"):  # kernel, bias: public names
            current = self.__dict__.get(name)
            if current is not None and current is not value and any(current is p for p in params):
                _copy_into(current, value, f"layer '{self.name}': {name}")
                return
        if name == "params" and type(value) is list:
            value = Params(value, self)
        object.__setattr__(self, name, value)

    @staticmethod
    def _check_initializers(owner, kernel_initializer, bias_initializer):
        kernel_initializer = _initializer_name(kernel_initializer)
        bias_initializer = _initializer_name(bias_initializer)
        if kernel_initializer not in INITIALIZERS:
            raise ValueError(f"{owner}: kernel_initializer={kernel_initializer!r} is not "
                             f"implemented in tinynet; choose one of {', '.join(INITIALIZERS)}")
        if bias_initializer != "zeros":
            raise ValueError(f"{owner}: bias_initializer={bias_initializer!r} is not implemented "
                             "in tinynet; biases start at zero ('zeros')")
        return kernel_initializer

    def _create_kernel_and_bias(self, shape, fan_in, fan_out):
        """A kernel of ``shape`` (Glorot-uniform by default, as in Keras) and, with ``use_bias``, a
        zero bias with one entry per output unit (the last axis); ``params`` in Keras's order."""
        self.params = []  # a layer built again gets new arrays (not copies into the old ones)
        self.kernel = initial_kernel(shape, fan_in, fan_out,
                                     getattr(self, "kernel_initializer", "glorot_uniform"))
        self.params = [self.kernel]
        if self.use_bias:
            self.bias = zeros((shape[-1],))
            self.params.append(self.bias)
        self.grads = [None] * len(self.params)

    def add_weight(self, shape=None, initializer="glorot_uniform", dtype=None, trainable=True,
                   name=None, **keras_options):
        """Keras's ``add_weight``: a new weight array of ``shape``, appended to ``params`` (with
        a place in ``grads``, which ``_backward`` fills) and returned; keep it as an attribute
        (``self.w = self.add_weight(...)``). ``initializer``: ``"zeros"``, ``"ones"`` or one of
        the kernel initialisers, with Keras's fans: a vector's are its length, a kernel's
        (..., in, out) are ``in`` and ``out`` times the size of its window (the leading axes)."""
        owner = f"{type(self).__name__} '{self.name}': add_weight"
        if not trainable:
            raise ValueError(f"{owner}(trainable=False): weights that do not train are not "
                             "implemented in tinynet; keep a constant array as an attribute")
        if dtype is not None and np.dtype(dtype).name != backend.floatx():
            raise ValueError(f"{owner}(dtype={dtype!r}): a layer's weights are in "
                             f"tinynet.backend.floatx() ({backend.floatx()!r})")
        unknown = [k for k in keras_options if keras_options[k] is not None
                   and k not in ("regularizer", "constraint", "autocast", "aggregation")]
        if unknown or keras_options.get("regularizer") or keras_options.get("constraint"):
            raise ValueError(f"{owner}: {(unknown or ['regularizer/constraint'])[0]} is not "
                             "implemented in tinynet (it takes shape, initializer, dtype, name)")
        if isinstance(shape, str):
            raise TypeError(f"{owner}: its first argument is the shape (Keras 3's order); give "
                            f"the name by keyword: add_weight(shape=..., name={shape!r})")
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape or ())
        if initializer == "ones":
            w = backend.xp().ones(shape, dtype=backend.floatx())
        elif initializer in INITIALIZERS:
            # Keras's fans: a vector's are its length; a kernel (..., in, out) counts every
            # position of its window (the leading axes) in both, as Conv2D's
            window = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
            fan_in = int(shape[0]) if len(shape) == 1 else int(shape[-2]) * window if shape else 1
            fan_out = int(shape[-1]) * window if shape else 1
            w = initial_kernel(shape, fan_in, fan_out, initializer)
        else:
            raise ValueError(f"{owner}: initializer={initializer!r} is not implemented in "
                             f"tinynet; choose 'ones' or one of {', '.join(INITIALIZERS)}")
        self.params = list(self.params) + [w]
        self.grads = list(self.grads) + [None] * (len(self.params) - len(self.grads))
        return w

    makes_weights = False  # Dense, Conv2D: the weights are made when the layer is built

    def count_params(self):
        """The number of weights (every entry of every weight array); for a layer that makes
        weights, refused before it is built, as Keras refuses it: their shapes follow its input's
        (a Dense(3) unbuilt answered 0)."""
        if not self.built and self.makes_weights:
            raise ValueError(f"count_params: layer '{self.name}' is not built yet, so it has no "
                             "weights to count: their shapes follow its input's; build it with "
                             "layer.build(input_shape), or use it in a model with an Input first")
        return int(sum(int(np.prod(p.shape)) for p in self.params))

    # ---- the two passes --------------------------------------------------------------------
    def forward(self, x, training=False, activate=True):
        """The output ``y = f(z)`` for the batch ``x`` (or ``z`` itself with ``activate=False``);
        keeps what ``backward`` needs."""
        self._pass = None  # a pass of its own: no longer the one a model recorded
        x = self._check_input(x)
        self._activated = activate
        self._fused = activate and self.activation_name in self.fused_activations
        if self._fused:
            self._y = self._forward(x, training, fused=self.activation_name)
        else:
            z = self._forward(x, training)
            self._y = activations.forward(self.activation_name, z) if activate else z
        n = (x[0] if isinstance(x, list) else x).shape[0]
        if getattr(self._y, "shape", None) != (n,) + self.output_shape:
            got = (f"shape {fmt_shape(self._y.shape[1:])} for a batch of "
                   f"{self._y.shape[0] if self._y.ndim else 'none'}" if hasattr(self._y, "shape")
                   else f"a {type(self._y).__name__}")
            raise ValueError(
                f"layer '{self.name}' ({type(self).__name__}) returned {got}, but its "
                f"compute_output_shape says {fmt_shape(self.output_shape)} for a batch of {n}: "
                "_forward returns one array of what compute_output_shape gives (without the "
                "batch axis) for each example")
        return self._y

    def backward(self, grad_output, need_input_grad=True):
        """dL/d(input) given ``grad_output`` = dL/d(output) of the last ``forward``; fills ``grads``.

        With ``need_input_grad=False`` a layer with weights fills ``self.grads`` only and returns
        ``None``: the model asks this of the first weighted layers, whose input is the data, and
        so saves their largest product (``dz @ W.T``, or the col2im of a convolution).
        """
        if self._y is None:
            raise RuntimeError(
                f"layer '{self.name}': backward() needs a forward pass through this layer first "
                "(a model's own forward pass may have run it together with the layer before or "
                "after it, as one step: go back through the model then, model.backward(...))")
        grad_output = self._check_gradient(grad_output)
        if self._fused:
            return self._backward(grad_output, need_input_grad, fused_output=self._y)
        dz = (activations.backward(self.activation_name, grad_output, self._y) if self._activated
              else grad_output)
        return self._backward(dz, need_input_grad)

    def _check_gradient(self, g):
        return checked_gradient(g, self._y, f"layer '{self.name}' ({type(self).__name__})")

    def _forward(self, x, training, fused=None):
        raise NotImplementedError

    def _backward(self, dz, need_input_grad=True, fused_output=None):
        raise NotImplementedError

    # ---- functional API --------------------------------------------------------------------
    @property
    def output(self):
        """The symbolic tensor this layer produces in its graph (Keras's ``layer.output``)."""
        if self.inbound is None:
            raise AttributeError(f"layer '{self.name}' is not connected to a graph yet, so it has "
                                 "no output tensor: call it on layers.Input(...) first")
        return Tensor(self.output_shape, self)

    @property
    def input(self):
        """The symbolic tensor(s) this layer reads (Keras's ``layer.input``)."""
        if self.inbound is None:
            raise AttributeError(f"layer '{self.name}' is not connected to a graph yet, so it has "
                                 "no input tensor")
        return self.inbound[0] if len(self.inbound) == 1 else list(self.inbound)

    def __call__(self, inputs, training=False):
        symbolic = inputs if isinstance(inputs, list) else [inputs]
        if all(isinstance(t, Tensor) for t in symbolic):
            if self.inbound is not None:
                raise ValueError(f"layer '{self.name}' is already used in a graph; tinynet does "
                                 "not share layers (one layer, and its weights, called at two "
                                 "places, as Keras's shared layers): create a new layer, which "
                                 "has weights of its own")
            shapes = [tuple(t.shape[1:]) for t in symbolic]
            wanted = shapes if isinstance(inputs, list) else shapes[0]
            asked = (self.requested_input_shape if getattr(self, "_user_input_shape", False)
                     else None)
            if asked is not None and not isinstance(inputs, list) and tuple(asked) != wanted:
                # (a Sequential says so first, for a layer after its first; the functional API
                # ignored it silently: the model took 10 features where the student wrote 7)
                raise ValueError(f"layer '{self.name}' ({type(self).__name__}) was given the "
                                 f"input shape {tuple(asked)} (input_shape= or input_dim=), but "
                                 f"it is called on a tensor of shape {fmt_shape(wanted)}: a layer "
                                 "takes the shape of what it is called on; remove input_shape "
                                 "from this layer, or change the Input")
            built_for = (list(map(tuple, self.input_shape)) if isinstance(self.input_shape, list)
                         else self.input_shape)
            several = isinstance(inputs, list) and len(shapes) > 1
            if not self.built:
                self._build_checked(wanted, several)
            elif built_for != wanted or self.dtype != np.dtype(backend.floatx()):
                self._build_again(wanted, built_for, several)
            # else: built for these inputs (and float type) already, called on arrays or popped
            # from a model: as in Keras, it keeps its weights (building again made new ones)
            self.inbound = symbolic
            return Tensor(self.output_shape, self)
        if any(isinstance(t, Tensor) for t in symbolic):
            raise TypeError(f"layer '{self.name}': cannot mix symbolic tensors and arrays")
        return backend.eager(backend.apart_from(self.forward(inputs, training=training), *symbolic))


class InputLayer(Layer):
    """The entry of a model: holds the input shape (no batch axis), passes data through unchanged.

    ``layers.Input(shape)`` makes one for the functional API; Keras scripts may also put
    ``layers.InputLayer(shape=...)`` (or Keras 2's ``input_shape=``) first in a ``Sequential``.
    """

    default_name = "input_layer"

    # Keras 3's order of arguments (an argument given by position means what it means there)
    def __init__(self, shape=None, batch_size=None, dtype=None, sparse=None, ragged=None,
                 batch_shape=None, input_tensor=None, optional=False, name=None, *,
                 input_shape=None, **keras_options):
        if keras_options.pop("trainable", True) is not True or keras_options:
            key = next(iter(keras_options), "trainable")
            raise unknown_argument("InputLayer", key, "InputLayer takes shape (or batch_shape), "
                                   "dtype and name")
        super().__init__(name=name)
        if sparse or ragged or input_tensor is not None or optional:
            what = ("sparse" if sparse else "ragged" if ragged else
                    "input_tensor" if input_tensor is not None else "optional")
            raise ValueError(f"InputLayer: {what}= is not implemented in tinynet (dense array "
                             "inputs only); give shape (and dtype, name)")
        if batch_shape is not None:
            if shape is not None or input_shape is not None:
                raise ValueError("InputLayer: give shape or batch_shape, not both")
            batch_shape = tuple(batch_shape)
            if len(batch_shape) < 2:
                raise ValueError(f"InputLayer: batch_shape has the batch axis first, (None, 28, "
                                 f"28, 1); got {batch_shape}")
            shape, batch_size = batch_shape[1:], batch_shape[0]
        if dtype is not None and np.dtype(dtype).kind not in "biuf":
            raise ValueError(f"Input: dtype={dtype!r} is not a numeric type; tinynet casts numeric "
                             "inputs (uint8 pixels, say) to its float type itself")
        shape = input_shape if shape is None else shape
        if shape is None:
            raise ValueError("InputLayer needs the shape of one example: InputLayer(shape=(28, 28, 1))")
        if batch_size is not None:
            raise ValueError("InputLayer: a fixed batch_size is not implemented in tinynet; every "
                             "model takes batches of any size")
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        if shape and None in shape:
            raise ValueError(f"Input shape {shape}: a size known only at run time (None) is not "
                             "implemented in tinynet, whose layers are built for one size; give "
                             "every size but the batch's, like (28, 28, 1), and resize the images "
                             "to it")
        if not shape or any(isinstance(d, (bool, np.bool_)) or not isinstance(d, (int, np.integer))
                            or d <= 0 for d in shape):
            raise ValueError(f"Input shape must be a tuple of positive integers (without the "
                             f"batch axis), got {shape}")
        self.build(tuple(int(d) for d in shape))
        self.inbound = []

    def get_config(self):
        return {"name": self.name, "shape": list(self.input_shape)}

    def _forward(self, x, training, fused=None):
        return x

    def _backward(self, dz, need_input_grad=True, fused_output=None):
        return dz



def Input(shape=None, batch_size=None, dtype=None, sparse=None, ragged=None, batch_shape=None,
          name=None, tensor=None, optional=False, **keras_options):
    """Start a functional graph: ``x = Input((28, 28, 1))`` (shape without the batch axis), or
    Keras's ``Input(batch_shape=(None, 28, 28, 1))``; Keras 3's order of arguments."""
    if keras_options:
        key = next(iter(keras_options))
        raise unknown_argument("Input", key, "Input takes shape (or batch_shape), name and dtype")
    return InputLayer(shape, batch_size=batch_size, dtype=dtype, sparse=sparse, ragged=ragged,
                      batch_shape=batch_shape, input_tensor=tensor, optional=optional,
                      name=name).output
