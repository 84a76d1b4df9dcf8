"""The Keras-style ``model.summary()`` table (the layout of the practical work's printouts)."""
from .layers.base import InputLayer
from .shapes import fmt_shape


def _row(fields, widths):
    line = ""
    for i, (text, width) in enumerate(zip(fields, widths)):
        cell = (" " if i == 0 else "") + str(text)
        line += cell[:width - 1].ljust(width)
    return line


def _is_chain(model):
    """True when every layer reads from one layer and is read by at most one (no 'Connected to')."""
    return all(len(layer.inbound) <= 1 for layer in model.graph.order) and \
        all(n <= 1 for n in model.graph.consumers.values())


def _trains(layer):
    """The summary's *Trainable* column: Y (training updates the layer's weights), N (frozen) or
    - (no weights), as Keras's ``show_trainable=True``."""
    if not layer.params:
        return "-"
    return "Y" if layer.trainable_weights else "N"


def _params_line(model):
    """Total, trainable and non-trainable parameter counts (frozen layers' are non-trainable)."""
    total = model.count_params()
    trained = sum(int(w.size) for w in model.trainable_weights)
    return [f"Total params: {total:,}", f"Trainable params: {trained:,}",
            f"Non-trainable params: {total - trained:,}"]


def format_summary(model, show_trainable=False):
    chain = _is_chain(model)
    if chain:
        widths = [29, 26, 10]
        header = ["Layer (type)", "Output Shape", "Param #"]
    else:
        widths = [32, 21, 12, 33]
        header = ["Layer (type)", "Output Shape", "Param #", "Connected to"]
    if show_trainable:  # the last column, as Keras's
        widths.append(11)
        header.append("Trainable")
    total_width = sum(widths)
    layers = model.layers  # a Sequential lists no input layer, like Keras
    lines = [f'Model: "{model.name}"', "_" * total_width, _row(header, widths), "=" * total_width]
    for i, layer in enumerate(layers):
        shape = fmt_shape(layer.output_shape)
        if isinstance(layer, InputLayer):
            shape = f"[{shape}]"
        fields = [f"{layer.name} ({getattr(layer, 'kind', type(layer).__name__)})", shape,
                  layer.count_params()]
        trains = [_trains(layer)] if show_trainable else []
        sources = [f"'{t.layer.name}[0][0]'" for t in layer.inbound]
        if chain:
            lines.append(_row(fields + trains, widths))
        else:
            first = "[" + sources[0] if sources else "[]"
            if len(sources) == 1:
                first += "]"
            elif len(sources) > 1:
                first += ","
            lines.append(_row(fields + [first] + trains, widths))
            for k, s in enumerate(sources[1:], start=2):
                end = "]" if k == len(sources) else ","
                lines.append(_row(["", "", "", " " + s + end] + [""] * show_trainable, widths))
        lines.append(" " * total_width)
    lines += ["=" * total_width] + _params_line(model) + ["_" * total_width]
    return "\n".join(lines)


def format_unbuilt_summary(model):
    """The table of a model not built yet (no input shape): each layer, ``?`` for its output shape
    and ``0 (unbuilt)`` parameters, as Keras 3 prints it; the sizes come with the first batch."""
    widths = [29, 26, 14]
    total_width = sum(widths)
    lines = [f'Model: "{model.name}"', "_" * total_width,
             _row(["Layer (type)", "Output Shape", "Param #"], widths), "=" * total_width]
    for layer in model.layers:
        kind = getattr(layer, "kind", type(layer).__name__)
        lines += [_row([f"{layer.name} ({kind})", "?", "0 (unbuilt)"], widths), " " * total_width]
    lines += ["=" * total_width, "Total params: 0", "Trainable params: 0",
              "Non-trainable params: 0", "_" * total_width]
    return "\n".join(lines)
