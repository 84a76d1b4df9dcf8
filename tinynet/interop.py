"""Copy models between tinynet and Keras 3: the same layers, names and weights, both ways.

    from tinynet.interop import from_keras, to_keras

    model = from_keras(keras_model)   # a tinynet Sequential or Model with the Keras weights
    keras_model = to_keras(model)     # a keras.Sequential or keras.Model with tinynet's weights

Both directions keep the model's name, every layer's name and configuration, and the weights
(tinynet stores them in Keras's layouts, so they are copied as they are). The two models then
compute the same function, up to float rounding: that is how tinynet is validated against Keras
(``tests/test_interop.py``, ``benchmarks/keras_trajectory.py``).

Supported layers: ``InputLayer``, ``Dense``, ``Conv2D``, ``MaxPooling2D``,
``AveragePooling2D``, ``GlobalAveragePooling2D``, ``Flatten``, ``Reshape``, ``Dropout``, ``Add``, ``Concatenate``,
``Rescaling``, ``ReLU``, ``Softmax`` and ``Activation``, with the activations ``linear``,
``relu``, ``sigmoid``, ``tanh`` and ``softmax``, in Sequential or functional models with one input
and one output. Anything else (another layer, a shared layer, a regularizer, ``channels_first``, a
dilation, a ``ReLU`` with ``max_value``, a ``Softmax`` over another axis than the last, ...) raises
:class:`InteropError` naming the layer and the option.

The dtype: ``from_keras`` builds the tinynet layers in the Keras model's dtype (float32 or
float64); ``to_keras`` gives every Keras layer the dtype of tinynet's weights. Only the
architecture and the weights are copied; the returned model is not compiled.

Keras is imported inside the functions, so tinynet itself never needs TensorFlow; install it
with ``pip install -e ".[keras]"``.
"""
from . import activations, backend
from . import layers as tl
from .model import Model, Sequential

SUPPORTED = ("InputLayer", "Dense", "Conv2D", "MaxPooling2D", "AveragePooling2D",
             "GlobalAveragePooling2D", "Flatten", "Reshape", "Dropout", "Add", "Concatenate",
             "Rescaling", "ReLU", "Softmax", "Activation")
MERGES = (tl.Add, tl.Concatenate)  # the layers of several inputs


class InteropError(ValueError):
    """A model that cannot be converted: an unsupported layer, option or graph shape."""


def _import_keras():
    """Keras 3, or an ImportError that says how to install it."""
    try:
        import keras
    except ImportError as e:
        raise ImportError(
            "tinynet.interop needs Keras 3 with TensorFlow, which do not import here "
            f"({e}); install them with `pip install -e \".[keras]\"` in the tinynet checkout "
            "(or `pip install tensorflow-cpu`)") from e
    major = int(str(keras.__version__).split(".")[0])
    if major < 3:
        raise ImportError(f"tinynet.interop needs Keras 3, found Keras {keras.__version__}; "
                          "upgrade with `pip install -e \".[keras]\"`")
    return keras


def _unsupported(layer, what=None, to="tinynet"):
    """The error for a layer (or one of its options) that cannot be converted ``to`` the other
    framework ("tinynet" from Keras, "Keras" from tinynet)."""
    kind = type(layer).__name__
    if what is None:
        if to == "Keras":
            return InteropError(
                f"layer '{layer.name}' ({kind}) cannot be converted to Keras: tinynet.interop "
                f"converts the layers {', '.join(SUPPORTED)}")
        return InteropError(f"Keras layer '{layer.name}' ({kind}) has no tinynet equivalent; "
                            f"tinynet.interop converts the layers {', '.join(SUPPORTED)}")
    return InteropError(f"layer '{layer.name}' ({kind}): {what} is not supported by tinynet")


# ================================================================================================
# Keras -> tinynet
# ================================================================================================

def _keras_dtype(layer):
    """The dtype a Keras layer computes and stores its weights in; refuses mixed precision."""
    policy = layer.dtype_policy
    compute, variable = policy.compute_dtype, policy.variable_dtype
    if compute != variable:
        raise _unsupported(layer, f"the mixed-precision dtype policy '{policy.name}' "
                                  f"(compute {compute}, variables {variable})")
    if compute not in ("float16", "float32", "float64"):
        raise _unsupported(layer, f"dtype {compute}")
    return compute


def _keras_activation(layer, config):
    name = config.get("activation", "linear")
    if not isinstance(name, str) or name not in activations.ACTIVATIONS:
        raise _unsupported(layer, f"activation {name!r} (tinynet has "
                                  f"{', '.join(activations.ACTIVATIONS)})")
    return name


def _check_plain(layer, config, keys=("kernel_regularizer", "bias_regularizer",
                                      "activity_regularizer", "kernel_constraint",
                                      "bias_constraint")):
    """Refuse the options that change training (regularizers, constraints), quantized layers
    and LoRA: tinynet would silently train a different model."""
    for key in keys:
        value = config.get(key, getattr(layer, key, None))
        if value is not None:
            raise _unsupported(layer, f"{key}={value!r}")
    if getattr(layer, "activity_regularizer", None) is not None:
        raise _unsupported(layer, "activity_regularizer")
    if getattr(layer, "lora_enabled", False):
        raise _unsupported(layer, "LoRA")
    if getattr(layer, "quantization_mode", None):
        raise _unsupported(layer, f"quantization {layer.quantization_mode!r}")
    if config.get("data_format", "channels_last") != "channels_last":
        raise _unsupported(layer, f"data_format={config['data_format']!r} (tinynet is "
                                  "channels_last: (N, H, W, C))")


def _tinynet_layer(layer, keras):
    """A new, unconnected tinynet layer with the configuration of the Keras ``layer``, frozen
    when it is."""
    new = _new_tinynet_layer(layer, keras)
    new.trainable = bool(layer.trainable)
    return new


def _new_tinynet_layer(layer, keras):
    kl = keras.layers
    config = layer.get_config()
    kind = type(layer)
    name = layer.name
    if kind is kl.Dense:
        _check_plain(layer, config)
        return tl.Dense(config["units"], activation=_keras_activation(layer, config),
                        use_bias=config["use_bias"], name=name)
    if kind is kl.Conv2D:
        _check_plain(layer, config)
        if tuple(config["dilation_rate"]) != (1, 1):
            raise _unsupported(layer, f"dilation_rate={tuple(config['dilation_rate'])}")
        if config.get("groups", 1) != 1:
            raise _unsupported(layer, f"groups={config['groups']}")
        if config["padding"] not in ("valid", "same"):
            raise _unsupported(layer, f"padding={config['padding']!r}")
        return tl.Conv2D(config["filters"], tuple(config["kernel_size"]),
                         strides=tuple(config["strides"]), padding=config["padding"],
                         activation=_keras_activation(layer, config),
                         use_bias=config["use_bias"], name=name)
    if kind in (kl.MaxPooling2D, kl.AveragePooling2D):
        _check_plain(layer, config)
        strides = config["strides"]
        pooling = tl.MaxPooling2D if kind is kl.MaxPooling2D else tl.AveragePooling2D
        return pooling(tuple(config["pool_size"]), strides=None if strides is None else tuple(strides),
                       padding=config["padding"], name=name)
    if kind is kl.GlobalAveragePooling2D:
        _check_plain(layer, config)
        if config.get("keepdims"):
            raise _unsupported(layer, "keepdims=True (tinynet's GlobalAveragePooling2D gives "
                                      "(None, channels); a Reshape((1, 1, channels)) after it "
                                      "keeps the axes)")
        return tl.GlobalAveragePooling2D(name=name)
    if kind is kl.Flatten:
        _check_plain(layer, config)
        return tl.Flatten(name=name)
    if kind is kl.Reshape:
        _check_plain(layer, config)
        return tl.Reshape(tuple(config["target_shape"]), name=name)
    if kind is kl.Rescaling:
        _check_plain(layer, config)
        scale, offset = config["scale"], config["offset"]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                   for v in (scale, offset)):
            raise _unsupported(layer, f"scale={scale!r}, offset={offset!r} (tinynet's Rescaling "
                                      "takes one number for each, the same for every channel)")
        return tl.Rescaling(scale, offset, name=name)
    if kind is kl.ReLU:
        _check_plain(layer, config)
        for key, default in (("max_value", None), ("negative_slope", 0.0), ("threshold", 0.0)):
            if config.get(key, default) != default:
                raise _unsupported(layer, f"{key}={config[key]!r} (tinynet's ReLU is max(x, 0), "
                                          "Keras's ReLU with its default arguments)")
        return tl.ReLU(name=name)
    if kind is kl.Softmax:
        _check_plain(layer, config)
        axis = config.get("axis", -1)
        try:
            rank = len(layer.input.shape)  # with the batch axis
        except (AttributeError, ValueError):
            rank = None
        if axis != -1 and not (rank is not None and axis == rank - 1):
            raise _unsupported(layer, f"axis={axis!r} (tinynet's Softmax runs over the last "
                                      "axis, axis=-1)")
        return tl.Softmax(name=name)
    if kind is kl.Dropout:
        _check_plain(layer, config)
        if config.get("noise_shape") is not None:
            raise _unsupported(layer, f"noise_shape={config['noise_shape']!r}")
        return tl.Dropout(config["rate"], name=name)
    if kind is kl.Add:
        _check_plain(layer, config)
        return tl.Add(name=name)
    if kind is kl.Concatenate:
        _check_plain(layer, config)
        return tl.Concatenate(axis=config.get("axis", -1), name=name)
    if kind is kl.Activation:
        _check_plain(layer, config)
        return tl.Activation(_keras_activation(layer, config), name=name)
    raise _unsupported(layer)


def _input_shape(input_layer):
    """The shape (without the batch axis) of a Keras InputLayer, all dimensions known."""
    config = input_layer.get_config()
    shape = tuple(config["batch_shape"][1:])
    if any(d is None for d in shape):
        raise _unsupported(input_layer, f"an input of shape {(None,) + shape} with unknown "
                                        "dimensions (tinynet needs every dimension but the batch)")
    if config.get("sparse") or config.get("ragged"):
        raise _unsupported(input_layer, "a sparse or ragged input")
    dtype = str(config.get("dtype") or "float32")
    if "float" not in dtype:  # an integer: Keras casts the data to it, 0.7 becomes 0
        raise _unsupported(input_layer, f"an input of dtype {dtype}, to which Keras casts the "
                                        "data (tinynet's models take floats)")
    return shape


def _single(tensors, what, model):
    tensors = list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]
    if len(tensors) != 1:
        raise InteropError(f"Keras model '{model.name}' has {len(tensors)} {what}s; tinynet "
                           f"models have exactly one {what}")
    return tensors[0]


def _copy_weights(src_layer, dst_layer, dtype):
    import numpy as np
    weights = [np.asarray(w, dtype=dtype) for w in src_layer.get_weights()]
    dst_layer.set_weights(weights)


def _qualified(obj):
    """The class of ``obj`` with its module, ``keras.src.models.sequential.Sequential``: Keras
    and tinynet both have a Sequential, and the bare name said nothing of which was given."""
    kind = type(obj)
    module = kind.__module__
    return kind.__qualname__ if module in (None, "builtins") else f"{module}.{kind.__qualname__}"


def from_keras(keras_model):
    """The tinynet equivalent of a Keras 3 ``Sequential`` or functional ``Model``, with its weights.

    Layer names, the model's name, the configuration of every layer and the weights are kept;
    the tinynet model is built in the Keras model's dtype and is not compiled. Raises
    :class:`InteropError` naming the layer for anything tinynet cannot represent exactly.
    """
    keras = _import_keras()
    if not isinstance(keras_model, keras.Model):
        hint = ("; it is a tinynet model already (to_keras converts the other way)"
                if isinstance(keras_model, Model) else "")
        raise TypeError(f"from_keras expects a keras.Model, got {_qualified(keras_model)}{hint}")
    try:
        inputs = keras_model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise InteropError(f"Keras model '{keras_model.name}' is not built: give it an input "
                           "shape (keras.Input(shape) as its first layer) before converting it")
    input_tensor = _single(inputs, "input", keras_model)
    output_tensor = _single(keras_model.outputs, "output", keras_model)
    input_layer = input_tensor._keras_history[0]

    dtypes = {_keras_dtype(layer) for layer in keras_model.layers if layer.weights}
    dtypes = dtypes or {_keras_dtype(keras_model)}
    if len(dtypes) != 1:
        raise InteropError(f"Keras model '{keras_model.name}' mixes the dtypes "
                           f"{sorted(dtypes)}; tinynet builds a model in one dtype")
    (dtype,) = dtypes

    previous = backend.floatx()
    backend.set_floatx(dtype)  # the new layers create their weights in the Keras dtype
    try:
        if isinstance(keras_model, keras.Sequential):
            model = _from_keras_sequential(keras_model, input_layer, keras)
        else:
            model = _from_keras_functional(keras_model, input_layer, output_tensor, keras)
    finally:
        backend.set_floatx(previous)
    if not keras_model.trainable:  # Keras trains none of its layers then (their flags kept)
        model._trainable = False
    return model


def _from_keras_sequential(keras_model, input_layer, keras):
    stack = [tl.Input(_input_shape(input_layer), name=input_layer.name)]
    pairs = []
    for layer in keras_model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        new = _tinynet_layer(layer, keras)
        stack.append(new)
        pairs.append((layer, new))
    try:
        model = Sequential(stack, name=keras_model.name)
    except (ValueError, TypeError) as e:
        raise InteropError(f"Keras model '{keras_model.name}' cannot be rebuilt in tinynet: {e}") from e
    for layer, new in pairs:
        _copy_weights(layer, new, backend.floatx())
    return model


def _from_keras_functional(keras_model, input_layer, output_tensor, keras):
    """Walk the Keras graph back from the output, rebuilding each layer once in tinynet."""
    made = {}       # id(keras layer) -> its tinynet symbolic output
    entered = {}    # id(keras layer) -> the index of the Keras node (call) that uses it
    pairs = []
    x = tl.Input(_input_shape(input_layer), name=input_layer.name)
    made[id(input_layer)] = x

    def visit(tensor):
        layer, node_index, tensor_index = tensor._keras_history
        if entered.setdefault(id(layer), node_index) != node_index:
            raise _unsupported(layer, "a layer called more than once (shared weights)")
        if id(layer) in made:
            return made[id(layer)]
        if isinstance(layer, keras.layers.InputLayer):
            raise InteropError(f"Keras model '{keras_model.name}' reads from a second input "
                               f"'{layer.name}'; tinynet models have exactly one input")
        if tensor_index != 0:
            raise _unsupported(layer, "a layer with several outputs")
        new = _tinynet_layer(layer, keras)  # checks the layer before its inputs: clearer errors
        node = layer._inbound_nodes[node_index]
        ins = [visit(t) for t in node.input_tensors]
        args = ins if isinstance(new, MERGES) else _single_input(layer, ins)
        try:
            out = new(args)
        except (ValueError, TypeError) as e:
            raise InteropError(f"layer '{layer.name}' ({type(layer).__name__}) cannot be "
                               f"rebuilt in tinynet: {e}") from e
        made[id(layer)] = out
        pairs.append((layer, new))
        return out

    y = visit(output_tensor)
    model = Model(x, y, name=keras_model.name)
    for layer, new in pairs:
        _copy_weights(layer, new, backend.floatx())
    return model


def _single_input(layer, ins):
    if len(ins) != 1:
        raise _unsupported(layer, f"{len(ins)} inputs")
    return ins[0]


# ================================================================================================
# tinynet -> Keras
# ================================================================================================

def _keras_layer(layer, keras, dtype):
    """A new Keras layer with the configuration and name of the tinynet ``layer``."""
    kl = keras.layers
    kind = type(layer)
    name = layer.name
    if kind is tl.Dense:
        return kl.Dense(layer.units, activation=layer.activation_name, use_bias=layer.use_bias,
                        name=name, dtype=dtype)
    if kind is tl.Conv2D:
        return kl.Conv2D(layer.filters, layer.kernel_size, strides=layer.strides,
                         padding=layer.padding, activation=layer.activation_name,
                         use_bias=layer.use_bias, name=name, dtype=dtype)
    if kind is tl.MaxPooling2D:
        return kl.MaxPooling2D(layer.pool_size, strides=layer.strides, padding=layer.padding,
                               name=name, dtype=dtype)
    if kind is tl.AveragePooling2D:
        return kl.AveragePooling2D(layer.pool_size, strides=layer.strides, padding=layer.padding,
                                   name=name, dtype=dtype)
    if kind is tl.GlobalAveragePooling2D:
        return kl.GlobalAveragePooling2D(name=name, dtype=dtype)
    if kind is tl.Flatten:
        return kl.Flatten(name=name, dtype=dtype)
    if kind is tl.Reshape:
        return kl.Reshape(layer.target_shape, name=name, dtype=dtype)
    if kind is tl.Dropout:
        return kl.Dropout(layer.rate, name=name, dtype=dtype)
    if kind is tl.Add:
        return kl.Add(name=name, dtype=dtype)
    if kind is tl.Concatenate:
        return kl.Concatenate(axis=layer.axis, name=name, dtype=dtype)
    if kind is tl.Rescaling:
        return kl.Rescaling(layer.scale, offset=layer.offset, name=name, dtype=dtype)
    if kind is tl.ReLU:  # tinynet's ReLU has Keras's default arguments only: max(x, 0)
        return kl.ReLU(name=name, dtype=dtype)
    if kind is tl.Softmax:  # over the last axis, the only one tinynet's Softmax takes
        return kl.Softmax(axis=-1, name=name, dtype=dtype)
    if kind is tl.Activation:
        return kl.Activation(layer.activation_name, name=name, dtype=dtype)
    raise _unsupported(layer, to="Keras")


def to_keras(model):
    """The Keras 3 equivalent of a tinynet ``Sequential`` or functional ``Model``, with its weights.

    The Keras model has the same name, layer names, layer configurations and weights, in the
    dtype of tinynet's weights; it is not compiled. Needs TensorFlow/Keras (imported here only):
    ``pip install -e ".[keras]"``.
    """
    if not isinstance(model, Model):
        hint = ("; it is a Keras model already (from_keras converts the other way)"
                if type(model).__module__.split(".")[0] in ("keras", "tf_keras", "tensorflow")
                else "")
        raise TypeError(f"to_keras expects a tinynet Sequential or Model, got "
                        f"{_qualified(model)}{hint}")
    keras = _import_keras()
    model._require_built("the architecture to convert")
    dtype = model.dtype.name  # its weights' (or, without weights, its layers' float type)

    input_layer = model.graph.input
    x = keras.Input(shape=input_layer.input_shape, name=input_layer.name, dtype=dtype)
    pairs = []
    if isinstance(model, Sequential):
        stack = []
        for layer in model.layers:
            new = _keras_layer(layer, keras, dtype)
            stack.append(new)
            pairs.append((layer, new))
        kmodel = keras.Sequential([x] + stack, name=model.name)
    else:
        tensors = {id(input_layer): x}
        for layer in model.layers:
            if isinstance(layer, tl.InputLayer):
                continue
            new = _keras_layer(layer, keras, dtype)
            ins = [tensors[id(t.layer)] for t in layer.inbound]
            tensors[id(layer)] = new(ins if isinstance(layer, MERGES) else ins[0])
            pairs.append((layer, new))
        kmodel = keras.Model(x, tensors[id(model.graph.output)], name=model.name)
    for layer, new in pairs:
        new.set_weights(layer.get_weights())
        new.trainable = layer.trainable
    if not model.trainable:  # every layer frozen, in Keras as in tinynet
        kmodel.trainable = False
    return kmodel


__all__ = ["from_keras", "to_keras", "InteropError", "SUPPORTED"]
