"""Pictures of training: curves, confusion matrices, model diagrams, filters, feature maps, HOG.

Every function draws one figure with matplotlib's Agg canvas (no window, no display needed, no
global pyplot state), saves it at ``path`` in the format its extension names (PNG, or PDF, SVG,
...) and returns the path. A PNG is exactly ``size = (width, height)`` pixels (no "tight"
cropping), so pictures line up in a report:

    from tinynet import plots
    plots.plot_history(history, "out/loss.png")
    plots.plot_confusion_matrix(cm, [str(d) for d in range(10)], "out/cm.png", title="MLP raw")
    plots.plot_model(model, "out/model.png")           # boxes and arrows, skip connections too
"""
import math
import textwrap
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from . import backend, metrics
from .layers.base import InputLayer

DPI = 100

__all__ = ["plot_history", "plot_histories", "plot_confusion_matrix", "plot_model",
           "plot_misclassified", "plot_conv_filters", "plot_feature_maps",
           "plot_hog", "plot_rmsprop_paths", "plot_bars", "plot_f1_scores"]


# ---- figure plumbing ------------------------------------------------------------------------
def _figure(size, dpi=DPI, layout="constrained"):
    """A figure of ``size = (width, height)`` pixels on an Agg canvas."""
    width, height = (int(v) for v in size)
    if width <= 0 or height <= 0:
        raise ValueError(f"size must be (width, height) in positive pixels, got {size!r}")
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, layout=layout)
    FigureCanvasAgg(fig)
    return fig


# the extensions saved in their own format (matplotlib's raw pixel dumps and LaTeX's pgf are not)
PICTURE_FORMATS = ("png", "pdf", "svg", "svgz", "eps", "ps", "jpg", "jpeg", "tif", "tiff", "webp",
                   "gif", "avif")


def _save(fig, path):
    """Save in the picture format the file name's extension names (.pdf, .svg, .jpg, ...), else
    as a PNG (no extension, or a dot inside the name: "lr_0.001", "cnn.digits"), at the
    figure's size (no bbox_inches="tight"). matplotlib's pixel dumps (.raw, .rgba) and LaTeX's
    .pgf are refused: they are not pictures."""
    path = Path(path)
    kind = path.suffix.lower().lstrip(".")
    writable = fig.canvas.get_supported_filetypes()
    if kind in writable and kind not in PICTURE_FORMATS:  # .raw, .rgba, .pgf: not a picture
        raise ValueError(f"cannot save a picture as {path.name}: .{kind} is not a picture format "
                         f"tinynet writes; name the file .png (a web page, a notebook), .pdf or "
                         f".svg (a printed report), or one of {', '.join(PICTURE_FORMATS)}")
    kind = kind if kind in PICTURE_FORMATS and kind in writable else "png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=fig.dpi, format=kind)
    return path


def _wrap(title, width_px, fontsize=12):
    """Break a long title into lines that fit the figure's width (about 0.6 em per character)."""
    return textwrap.fill(str(title), width=max(20, int(width_px / (0.6 * fontsize * DPI / 72))))


def _history_dict(history, where="plot_history", label=None):
    """``History`` objects and plain ``{"loss": [...], ...}`` dicts alike; ``where`` (the calling
    function) and ``label`` (the run's name in ``plot_histories``) go into the error messages."""
    h = getattr(history, "history", history)
    run = "" if label is None else f" of run {label!r}"
    if isinstance(h, dict) and not any(len(v) for v in h.values() if hasattr(v, "__len__")):
        what = "History" if h is not history else "history"
        raise ValueError(f"{where}: the {what}{run} has no epochs to plot: fit finished no "
                         "epoch (epochs=0, initial_epoch equal to epochs, or Ctrl-C in the "
                         "first epoch) or was never called; plot the History that fit returns "
                         "after at least one epoch")
    if not isinstance(h, dict) or "loss" not in h:
        got = (f"a dict with the keys {sorted(map(str, h))}" if isinstance(h, dict)
               else type(history).__name__)
        raise ValueError(f"{where} needs a History (what fit returns) or a dict with at least "
                         f"'loss'{run}, got {got}")
    return h


def _as_grayscale(image):
    """One image as a 2-D array: (H, W), (H, W, 1) or a flat square vector (784 -> 28 x 28)."""
    a = np.asarray(backend.to_numpy(image), dtype=np.float64)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim == 1:
        side = int(round(math.sqrt(a.size)))
        if side * side != a.size:
            raise ValueError(f"cannot show a vector of {a.size} values as a square image")
        a = a.reshape(side, side)
    if a.ndim != 2:
        raise ValueError(f"expected one grayscale image (H, W) or (H, W, 1), got shape {a.shape}")
    return a


def _grid(n, aspect=1.0):
    """(rows, cols) for n panels, about square (cols / rows ~ aspect)."""
    cols = max(1, math.ceil(math.sqrt(n * aspect)))
    return math.ceil(n / cols), cols


_WORDS = {"loss": "training loss", "val_loss": "validation loss", "accuracy": "training accuracy",
          "val_accuracy": "validation accuracy"}


def _words(key):
    """A history key in words: ``val_loss`` -> ``validation loss``."""
    return _WORDS.get(key, str(key).replace("_", " "))


def _names(class_names, k, where):
    """``k`` class names as strings (a list, or a dict keyed 0..k-1; ``None``: the numbers)."""
    names = metrics.class_names_list(class_names, where)
    if names is None:
        return [str(i) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"{where}: {len(names)} class names for {k} classes (class i is named "
                         "by item i of class_names)")
    return names


def _accuracy_key(h, history=None):
    """The accuracy's key in a history: one of Keras's names (``accuracy``, ``acc``,
    ``categorical_accuracy``, ...), else the name the model's metric was given
    (``CategoricalAccuracy(name="acc_test")``); a model without an accuracy: its first metric
    (a regression's ``mae``)."""
    kinds = _metric_kinds(history)
    given = sorted(kinds, key=lambda name: _is_error(name, kinds))
    errors = [key for key in h if _is_error(key, kinds)]
    return next((name for name in (*metrics.ACCURACY_NAMES, *given, *errors) if name in h),
                "accuracy")


def _metric_kinds(history):
    """The metrics' kinds of the model a History came from (``{}`` for a history's dict)."""
    return getattr(getattr(history, "model", None), "metric_kinds", None) or {}


def _is_error(name, kinds):
    """Whether the logged metric ``name`` is a regression's error (``mae``, ``MSE``, ...), by
    the model's kinds or, for a history's dict, by Keras's names."""
    return kinds.get(name) in metrics.ERROR_NAMES.values() or \
        metrics.METRIC_ALIASES.get(name, name) in metrics.ERROR_NAMES


# ---- training curves ------------------------------------------------------------------------
def _epochs_of(history, h, key, where="plot_history"):
    """The epochs (counted from 1, as fit prints them) at which ``h[key]`` was recorded: a History
    knows them (``fit(initial_epoch=)`` starts later, and ``validation_freq`` validates some
    epochs only); a plain dict's values are taken as epochs 1, 2, ..."""
    values = h[key]
    at = getattr(history, "recorded_at", {}).get(key)
    if at is not None and len(at) == len(values):  # (lists edited since: the fallbacks below)
        return np.asarray(at) + 1
    epochs = list(getattr(history, "epoch", None) or range(len(h.get("loss", values))))
    if len(values) == len(epochs):
        return np.asarray(epochs) + 1
    if len(values) == len(h.get("loss", ())):
        return np.arange(1, len(values) + 1)
    raise ValueError(f"{where}: {key} has {len(values)} values for {len(epochs)} epochs, and "
                     f"{'a dict' if at is None else 'the History, edited since,'} does not say at "
                     "which epochs they were measured (fit's validation_freq); plot tinynet's "
                     "History as fit returns it, which records them")


def plot_history(history, path, title=None, size=(900, 360)):
    """Training and validation loss (left) and accuracy (right, under whichever of Keras's
    names it was compiled: ``accuracy``, ``acc``, ``sparse_categorical_accuracy``, ...; a
    regression's ``mae`` or ``mse`` when it has no accuracy) per epoch, the epochs numbered from
    1 as ``fit`` prints them."""
    h = _history_dict(history)
    fig = _figure(size)
    axes = fig.subplots(1, 2)
    accuracy = _accuracy_key(h, history)
    epochs = {key: _epochs_of(history, h, key) for key in
              ("loss", "val_loss", accuracy, "val_" + accuracy) if key in h and len(h[key])}
    shown = [e for at in epochs.values() for e in at]
    errors = _is_error(accuracy, _metric_kinds(history))
    for ax, metric, label in zip(axes, ("loss", accuracy), ("loss", accuracy if errors else
                                                               "accuracy")):
        ax.set_xlim(min(shown, default=1) - 0.5, max(shown, default=1) + 0.5)
        for key, name, style in ((metric, "training", "o-"), ("val_" + metric, "validation", "s--")):
            if key in epochs:
                ax.plot(epochs[key], np.asarray(h[key], dtype=np.float64), style, label=name,
                        markersize=4)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_title(label)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
        else:
            ax.text(0.5, 0.5, f"no {label} recorded", ha="center", va="center", transform=ax.transAxes)
        ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(_wrap(title, size[0]))
    return _save(fig, path)


def plot_histories(histories, path, key="val_loss", title=None, size=(700, 420)):
    """One metric (``"val_loss"``, ``"loss"``, ``"val_accuracy"``, ...) of several runs on one axis.

    ``histories`` maps a label to a ``History`` (or its dict).
    """
    fig = _figure(size)
    ax = fig.subplots()
    shown = []
    for label, history in histories.items():
        h = _history_dict(history, "plot_histories", label)
        values = h.get(key)
        if values is not None and len(values):
            epochs = _epochs_of(history, h, key, "plot_histories")
            shown += list(epochs)
            ax.plot(epochs, np.asarray(values, dtype=np.float64), "o-", label=str(label),
                    markersize=4)
    ax.set_xlim(min(shown, default=1) - 0.5, max(shown, default=1) + 0.5)
    ax.set_xlabel("epoch")
    ax.set_ylabel(_words(key))
    ax.grid(alpha=0.3)
    ax.xaxis.get_major_locator().set_params(integer=True)
    if ax.lines:
        ax.legend(fontsize="small")
    ax.set_title(title or _words(key))
    return _save(fig, path)


# ---- confusion matrix -----------------------------------------------------------------------
def plot_confusion_matrix(cm, class_names, path, title=None, size=(600, 560)):
    """Heat map of a confusion matrix (rows: true class, columns: predicted) with the counts, and
    the accuracy in the title; a matrix of fractions (normalised by row, by column or in all) is
    drawn with its values and no accuracy (it takes the counts). The colour scale starts at 0.
    ``class_names``: one per class (or ``None``: the class numbers)."""
    cm = np.asarray(backend.to_numpy(cm))
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.dtype.kind not in "biuf":
        raise ValueError(f"plot_confusion_matrix: a confusion matrix is a square array of "
                         f"numbers, got shape {cm.shape} and dtype {cm.dtype}")
    k = cm.shape[0]
    names = _names(class_names, k, "plot_confusion_matrix")
    # counts: an integer matrix (confusion_matrix's), or whole numbers; fractions: floats up to
    # 1 whose rows, columns or whole sum to 1 (to 0.02: rounded values; the rows of a class never
    # seen, 0 or NaN, left out); anything else: values
    filled = np.nan_to_num(cm.astype(np.float64))
    rows, cols = filled.sum(axis=1), filled.sum(axis=0)
    fractions = cm.dtype.kind == "f" and bool(filled.max(initial=0) <= 1 + 1e-9 and (
        np.allclose(rows[rows > 0], 1, atol=0.02) or np.allclose(cols[cols > 0], 1, atol=0.02)
        or np.isclose(filled.sum(), 1, atol=0.02)))
    counts = cm.dtype.kind in "biu" or (not fractions and bool(
        np.all(np.isfinite(cm)) and np.all(cm == np.round(cm))))
    fig = _figure(size)
    ax = fig.subplots()
    image = ax.imshow(cm, cmap="Blues", interpolation="nearest", vmin=0)
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label("number of examples" if counts else "fraction" if fractions else "value")
    cell_pt = min(size) * 0.55 / k * 72 / DPI  # a cell's side in points
    widest = max(1, len(str(int(np.nanmax(cm)))) if counts else 4)
    fontsize = max(4.0, min(11.0, cell_pt / (0.65 * widest)))
    threshold = np.nanmax(cm) / 2.0 if cm.size and np.isfinite(cm).any() else 0
    for i in range(k):
        for j in range(k):
            value = cm[i, j]
            text = f"{int(value):d}" if counts else f"{value:.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=fontsize,
                    color="white" if value > threshold else "black")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xticklabels(names, rotation=45 if max(len(n) for n in names) > 2 else 0, ha="right"
                       if max(len(n) for n in names) > 2 else "center", fontsize="small")
    ax.set_yticklabels(names, fontsize="small")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if counts:
        total = int(cm.sum())
        accuracy = np.trace(cm) / total if total else 0.0
        heading = f"{title + ' - ' if title else ''}accuracy {accuracy:.2%} of {total:,}"
    else:
        heading = f"{title + ' - ' if title else ''}{'fractions' if fractions else 'values'}"
    ax.set_title(_wrap(heading, size[0], 10))
    return _save(fig, path)


# ---- model diagram --------------------------------------------------------------------------
_COLOURS = {"InputLayer": "#ffffff", "Conv2D": "#cfe2f3", "MaxPooling2D": "#d9ead3",
            "Dense": "#fce5cd", "Dropout": "#eeeeee", "Flatten": "#fff2cc", "Add": "#f4cccc",
            "Activation": "#ead1dc"}


def _shape_text(shape):
    if isinstance(shape, list):
        return ", ".join(_shape_text(s) for s in shape)
    return str((None,) + tuple(shape))


def _lanes(edges):
    """Give each long edge (i -> j, j > i + 1) a lane so that overlapping ones do not share one."""
    lanes, busy = {}, []  # busy[lane] = list of (start, end) intervals
    for i, j in sorted(edges, key=lambda e: (e[1] - e[0], e[0])):
        for lane, spans in enumerate(busy):
            if all(j <= a or i >= b for a, b in spans):
                spans.append((i, j))
                lanes[(i, j)] = lane
                break
        else:
            busy.append([(i, j)])
            lanes[(i, j)] = len(busy) - 1
    return lanes, len(busy)


def _settings_text(layer):
    """What a layer does, in a few words: ``9 filters 5x5, stride 1, same, relu``."""
    kind = type(layer).__name__
    act = getattr(layer, "activation_name", None)
    act = f", {act}" if act not in (None, "linear") else ""
    if kind == "Conv2D":
        (kh, kw), (sh, sw) = layer.kernel_size, layer.strides
        stride = sh if sh == sw else f"{sh}x{sw}"
        return f"{layer.filters} filters {kh}x{kw}, stride {stride}, {layer.padding}{act}"
    if kind == "MaxPooling2D":
        (ph, pw), (sh, sw) = layer.pool_size, layer.strides
        return f"{ph}x{pw}, stride {sh if sh == sw else f'{sh}x{sw}'}, {layer.padding}"
    if kind == "Dense":
        return f"{layer.units} units{act}"
    if kind == "Dropout":
        return f"rate {layer.rate:g}"
    if kind == "Activation":
        return str(act).lstrip(", ")
    return ""


def plot_model(model, path, size=None, title=None, show_params=True):
    """A diagram of the model: one box per layer (name, type, output shape, parameters) from the
    input at the top to the output at the bottom, arrows along the data flow, and every
    connection that jumps over layers (the skip connection of a residual block) drawn as a
    coloured arc on the right into its ``Add`` box. No graphviz needed.
    """
    order = model.graph.order if getattr(model, "built", False) else []
    if not order:
        raise ValueError(f"model '{getattr(model, 'name', model)}' is not built: plot it after "
                         "giving it an input shape")
    n = len(order)
    index = {id(layer): i for i, layer in enumerate(order)}
    edges = [(index[id(t.layer)], i) for i, layer in enumerate(order) for t in (layer.inbound or [])]
    long_edges = [e for e in edges if e[1] - e[0] > 1]
    lanes, n_lanes = _lanes(long_edges)
    if size is None:
        size = (560 + 40 * n_lanes, 72 * n + 70)
    width_px, height_px = size
    fig = _figure(size, layout=None)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.axis("off")
    top_margin = 0.9
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.55, n - 0.45 + top_margin)

    box_left, box_right = 0.06, 0.72 - 0.04 * min(n_lanes, 3)
    box_h = 0.62
    row_px = height_px / (n + top_margin + 0.1)
    texts = []
    for layer in order:
        shape = _shape_text(layer.output_shape)
        line2 = f"output {shape}"
        if show_params and not isinstance(layer, InputLayer):
            line2 += f"   {layer.count_params():,} params"
        settings = _settings_text(layer)
        texts.append((f"{layer.name} ({type(layer).__name__}{': ' + settings if settings else ''})", line2))
    longest = max(max(len(a), len(b)) for a, b in texts)
    box_px = (box_right - box_left) * width_px
    fontsize = min(11.0, 0.25 * row_px * 72 / DPI, box_px / (0.62 * longest) * 72 / DPI)
    fontsize = max(fontsize, 3.0)

    def y_of(i):
        return n - 1 - i

    centre_x = (box_left + box_right) / 2
    for i, (layer, (line1, line2)) in enumerate(zip(order, texts)):
        y = y_of(i)
        colour = _COLOURS.get(type(layer).__name__, "#f3f3f3")
        ax.add_patch(FancyBboxPatch((box_left, y - box_h / 2), box_right - box_left, box_h,
                                    boxstyle="round,pad=0.0,rounding_size=0.02", linewidth=1.2,
                                    edgecolor="#333333", facecolor=colour, mutation_aspect=1.0))
        ax.text(centre_x, y + 0.12, line1, ha="center", va="center", fontsize=fontsize,
                fontweight="bold")
        ax.text(centre_x, y - 0.15, line2, ha="center", va="center", fontsize=fontsize * 0.9,
                family="monospace")
    arrow = dict(arrowstyle="-|>", color="#333333", lw=1.3, shrinkA=0, shrinkB=0)
    skip_colour = "#cc4125"
    for i, j in edges:
        if j - i == 1:
            ax.annotate("", xy=(centre_x, y_of(j) + box_h / 2), xytext=(centre_x, y_of(i) - box_h / 2),
                        arrowprops=arrow)
            continue
        lane_x = box_right + 0.06 + 0.06 * lanes[(i, j)]
        y0, y1 = y_of(i), y_of(j)
        ax.plot([box_right, lane_x, lane_x], [y0, y0, y1], color=skip_colour, lw=2.0,
                solid_capstyle="round")
        ax.annotate("", xy=(box_right, y1), xytext=(lane_x, y1),
                    arrowprops=dict(arrow, color=skip_colour, lw=2.0))
        ax.text(lane_x + 0.012, (y0 + y1) / 2, "skip", rotation=90, ha="left", va="center",
                color=skip_colour, fontsize=fontsize * 0.9, fontweight="bold")
    total = model.count_params() if hasattr(model, "count_params") else None
    heading = title or getattr(model, "name", "model")
    if total is not None:
        heading += f"  -  {total:,} parameters"
    ax.text(0.5, n - 0.45 + top_margin * 0.45, heading, ha="center", va="center",
            fontsize=min(13.0, fontsize * 1.2), fontweight="bold")
    return _save(fig, path)


# ---- examples -------------------------------------------------------------------------------
def plot_misclassified(images, y_true, y_pred, class_names, path, n=25, size=None, title=None):
    """A grid of (up to) the first ``n`` test images whose prediction is wrong, each titled
    ``true -> predicted``. Labels are read as :mod:`tinynet.metrics` reads them: class numbers
    (also as a column), or one-hot / probability rows; ``class_names`` (one per class, or ``None``
    for the numbers) names them. Each image is drawn dark on light (``gray_r``), scaled from its
    own smallest to its largest value."""
    names = metrics.class_names_list(class_names, "plot_misclassified")
    y_true, y_pred, k = metrics._prepare(backend.to_numpy(y_true), backend.to_numpy(y_pred),
                                         None if names is None else len(names),
                                         "plot_misclassified")
    names = _names(names, k, "plot_misclassified")
    images = np.asarray(backend.to_numpy(images))
    if not (len(images) == len(y_true) == len(y_pred)):
        raise ValueError(f"{len(images)} images, {len(y_true)} true and {len(y_pred)} predicted labels")
    wrong = np.flatnonzero(y_true != y_pred)[:n]
    shown = max(len(wrong), 1)
    rows, cols = _grid(shown)
    if size is None:
        size = (110 * cols + 20, 125 * rows + 50)
    fig = _figure(size)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    fontsize = max(5.0, min(9.0, size[0] / cols / 13))  # ~12 characters per panel width
    for ax in axes:
        ax.axis("off")
    for ax, k in zip(axes, wrong):
        ax.imshow(_as_grayscale(images[k]), cmap="gray_r", interpolation="nearest")
        ax.set_title(f"{names[y_true[k]]}\n-> {names[y_pred[k]]}", fontsize=fontsize, color="#a61c00")
    total = int(np.sum(y_true != y_pred))
    if len(wrong) == 0:
        axes[0].text(0.5, 0.5, "no misclassified\nexamples" if total == 0 else f"n={n}:\nnone shown",
                     ha="center", va="center", transform=axes[0].transAxes)
    fig.suptitle(_wrap(title or f"misclassified: {total:,} of {len(y_true):,} (true -> predicted)",
                       size[0], 10), fontsize="medium")
    return _save(fig, path)


# ---- inside the network ---------------------------------------------------------------------
def _kernel_of(conv_layer):
    if hasattr(conv_layer, "get_weights"):
        weights = conv_layer.get_weights()
        if not weights or np.asarray(weights[0]).ndim != 4:
            raise ValueError(f"layer '{getattr(conv_layer, 'name', conv_layer)}' is not a Conv2D "
                             "layer with a (kh, kw, in, filters) kernel")
        return np.asarray(weights[0], dtype=np.float64), getattr(conv_layer, "name", "conv")
    kernel = np.asarray(conv_layer, dtype=np.float64)
    if kernel.ndim != 4:
        raise ValueError(f"expected a Conv2D layer or a (kh, kw, in, filters) kernel, got {kernel.shape}")
    return kernel, "conv"


def plot_conv_filters(conv_layer, path, size=None, title=None, max_channels=16):
    """The kernels of a Conv2D layer, one small image per filter, each on its own symmetric
    colour scale (blue negative, red positive; one strong filter would make the others look
    blank on a shared scale), its largest |weight| under it. A first layer (one input channel) is drawn as a grid of
    filters; deeper layers as a (channel x filter) table, up to ``max_channels`` channels."""
    kernel, name = _kernel_of(conv_layer)
    kh, kw, channels, filters = kernel.shape
    if channels == 1:
        rows, cols = _grid(filters, aspect=1.6)
        cells = [(f // cols, f % cols, kernel[:, :, 0, f], f"{f}\n±{np.abs(kernel[:, :, 0, f]).max():.2g}")
                 for f in range(filters)]
    else:  # rows: input channels; columns: filters (each cell on its own scale, not labelled)
        rows, cols = min(channels, max_channels), filters
        cells = [(c, f, kernel[:, :, c, f], f"filter {f}" if c == 0 else None)
                 for c in range(rows) for f in range(filters)]
    if size is None:
        size = (min(1600, 70 * cols + 60), min(1600, 75 * rows + 60))
    fig = _figure(size)
    axes = np.array(fig.subplots(rows, cols, squeeze=False))
    fontsize = max(4.0, min(9.0, size[0] / cols / 5 * 72 / DPI))
    for ax in axes.ravel():
        ax.axis("off")
    for r, c, k, label in cells:
        ax = axes[r, c]
        limit = float(np.abs(k).max()) or 1.0
        ax.imshow(k, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        if label is not None:
            ax.set_title(label, fontsize=fontsize)
    if channels > 1:
        for c in range(rows):
            axes[c, 0].text(-0.15, 0.5, f"in {c}", transform=axes[c, 0].transAxes, ha="right",
                            va="center", fontsize=fontsize)
    heading = title or (f"{name}: {filters} filters of {kh}x{kw}x{channels}"
                        + (f" (rows: input channels, the first {rows} of {channels})"
                           if rows < channels else " (rows: input channels)" if channels > 1 else "")
                        + ", each on its own scale (red positive, blue negative"
                        + (", the largest |weight| under it)" if channels == 1 else ")"))
    fig.suptitle(_wrap(heading, size[0], 10), fontsize="medium")
    return _save(fig, path)


def _one_image(model, image):
    """``image`` as a batch of one for ``model`` (the channel axis added when it is missing)."""
    expected = tuple(model.input_shape[1:])
    x = np.asarray(backend.to_numpy(image))
    if x.size != int(np.prod(expected)):
        raise ValueError(f"plot_feature_maps: give one image of shape {expected}, got an array of "
                         f"shape {x.shape}")
    return x.reshape((1,) + expected)


def plot_feature_maps(model, image, layer_name, path, size=None, max_maps=32, title=None):
    """The input image and what layer ``layer_name`` makes of it: one panel per channel for
    image-shaped outputs (Conv2D, MaxPooling2D, Add), a bar per unit for vectors (Dense)."""
    out = backend.to_numpy(model.forward(_one_image(model, image), until=layer_name))[0]
    picture = _input_picture(image)
    kind = type(model.get_layer(layer_name)).__name__
    if out.ndim == 3:
        maps = min(out.shape[-1], max_maps)
        rows, cols = _grid(maps + 1, aspect=1.6)
        if size is None:
            size = (min(1600, 95 * cols + 40), min(1400, 100 * rows + 60))
        fig = _figure(size)
        axes = np.array(fig.subplots(rows, cols, squeeze=False)).ravel()
        fontsize = max(4.0, min(9.0, size[0] / cols / 9 * 72 / DPI))
        for ax in axes:
            ax.axis("off")
        axes[0].imshow(picture, cmap="gray_r", interpolation="nearest")
        axes[0].set_title("input", fontsize=fontsize)
        for c in range(maps):
            axes[c + 1].imshow(out[:, :, c], cmap="viridis", interpolation="nearest")
            axes[c + 1].set_title(f"channel {c}", fontsize=fontsize)
        heading = f"{layer_name} ({kind}): output {_shape_text(out.shape)}"
        if maps < out.shape[-1]:
            heading += f", first {maps} channels"
    else:
        flat = out.ravel()
        if size is None:
            size = (900, 360)
        fig = _figure(size)
        ax_img, ax_bar = fig.subplots(1, 2, width_ratios=[1, 3])
        ax_img.imshow(picture, cmap="gray_r", interpolation="nearest")
        ax_img.set_title("input")
        ax_img.axis("off")
        ax_bar.bar(np.arange(flat.size), flat, color="#3d85c6")
        ax_bar.set_xlabel("unit")
        ax_bar.set_ylabel("activation")
        ax_bar.grid(alpha=0.3, axis="y")
        heading = f"{layer_name} ({kind}): output {_shape_text(out.shape)}"
    fig.suptitle(_wrap(title or heading, size[0], 10), fontsize="medium")
    return _save(fig, path)


def _input_picture(image):
    """The input as a picture: the image itself, or a (non-square) feature vector as a strip."""
    a = np.squeeze(np.asarray(backend.to_numpy(image), dtype=np.float64))
    try:
        return _as_grayscale(a)
    except ValueError:
        return a.reshape(1, -1) if a.ndim <= 1 else a.reshape(a.shape[0], -1)


# ---- HOG ------------------------------------------------------------------------------------
def plot_hog(image, path, orientations=8, pixels_per_cell=(4, (7, 7), 2), size=None, title=None):
    """A digit and its HOG descriptor(s), drawn large over the faded digit: in each cell one line
    per orientation bin, along the edge (across the gradient), its length and colour the bin's
    value; a colour bar and the title say so. ``pixels_per_cell`` is one cell size (int or pair)
    or a list of them, one panel each (the report compares 4, 7 and 2 pixels per cell)."""
    from matplotlib.collections import LineCollection

    from .features import hog_features

    picture = _as_grayscale(image)
    if isinstance(pixels_per_cell, (int, np.integer)) or (
            isinstance(pixels_per_cell, tuple) and len(pixels_per_cell) == 2
            and all(isinstance(v, (int, np.integer)) for v in pixels_per_cell)):
        cells = [pixels_per_cell]
    else:
        cells = list(pixels_per_cell)
    cells = [(c, c) if isinstance(c, (int, np.integer)) else tuple(c) for c in cells]
    panels = 1 + len(cells)
    if size is None:
        size = (330 * panels + 80, 400)
    fig = _figure(size)
    axes = np.atleast_1d(fig.subplots(1, panels))
    axes[0].imshow(picture, cmap="gray_r", interpolation="nearest")
    axes[0].set_title("image", fontsize="small")
    angles = np.pi * (np.arange(orientations) + 0.5) / orientations   # the bins' mid-orientations
    height, width = picture.shape
    lines = None
    for ax, ppc in zip(axes[1:], cells):
        rows, cols = height // ppc[0], width // ppc[1]
        values = hog_features(picture[None], orientations=orientations, pixels_per_cell=ppc,
                              cells_per_block=(1, 1), cache=False, progress=False)[0]
        values = np.asarray(values, dtype=np.float64).reshape(rows, cols, orientations)
        top = values.max() or 1.0
        segments, strength = [], []
        for (r, c, b), v in np.ndenumerate(values):
            if v > 0.02 * top:
                cy, cx = (r + 0.5) * ppc[0] - 0.5, (c + 0.5) * ppc[1] - 0.5
                half = 0.48 * min(ppc) * v / top
                dx, dy = half * np.sin(angles[b]), -half * np.cos(angles[b])  # along the edge
                segments.append([(cx - dx, cy - dy), (cx + dx, cy + dy)])
                strength.append(v / top)
        ax.imshow(picture, cmap="gray_r", alpha=0.25, interpolation="nearest")
        lines = LineCollection(segments, array=np.asarray(strength), cmap="plasma", clim=(0, 1),
                               linewidths=1.5)
        ax.add_collection(lines)
        for k in range(1, rows):
            ax.axhline(k * ppc[0] - 0.5, color="#bbbbbb", lw=0.4)
        for k in range(1, cols):
            ax.axvline(k * ppc[1] - 0.5, color="#bbbbbb", lw=0.4)
        ax.set_title(f"{ppc[0]}x{ppc[1]} px/cell: {rows}x{cols} cells x {orientations} = "
                     f"{values.size} features", fontsize="small")
    for ax in axes:
        ax.set_xlim(-0.5, width - 0.5)
        ax.set_ylim(height - 0.5, -0.5)
        ax.set_xticks([])
        ax.set_yticks([])
    if lines is not None:
        fig.colorbar(lines, ax=axes[1:].tolist(), shrink=0.8, label="bin value / largest bin")
    fig.suptitle(_wrap(title or f"HOG, {orientations} orientations: in each cell one line per "
                                "orientation bin, along the edge; longer and brighter = a larger "
                                "value of the bin in its cell's normalised histogram (not the "
                                "edge's strength: each cell is normalised on its own)",
                       size[0], 10), fontsize="medium")
    return _save(fig, path)


# ---- optimiser paths ------------------------------------------------------------------------
def plot_rmsprop_paths(paths, path, f=None, xlim=None, ylim=None, minimum=None, title=None,
                       size=(1100, 460)):
    """Optimiser trajectories on a 2-D function.

    ``paths`` maps a label (an optimiser setting) to a ``(steps + 1, 2)`` array of points. With
    ``f(x, y)`` (vectorised), the left panel shows its contour lines under the paths and the
    right panel ``f`` along each path, step by step (log scale). ``minimum=(x, y)`` is starred.
    """
    arrays = {str(k): np.asarray(v, dtype=np.float64) for k, v in paths.items()}
    if not arrays or any(a.ndim != 2 or a.shape[1] != 2 for a in arrays.values()):
        raise ValueError("paths must map labels to (steps, 2) arrays of points")
    every = np.concatenate(list(arrays.values()))
    if xlim is None or ylim is None:
        lo, hi = every.min(axis=0), every.max(axis=0)
        pad = 0.1 * np.maximum(hi - lo, 1e-3)
        xlim = xlim or (lo[0] - pad[0], hi[0] + pad[0])
        ylim = ylim or (lo[1] - pad[1], hi[1] + pad[1])
    fig = _figure(size)
    if f is not None:
        ax, ax_f = fig.subplots(1, 2, width_ratios=[1.2, 1])
    else:
        ax, ax_f = fig.subplots(), None
    if f is not None:
        gx, gy = np.meshgrid(np.linspace(*xlim, 300), np.linspace(*ylim, 300))
        gz = np.asarray(f(gx, gy), dtype=np.float64)
        low = max(float(gz.min()), 1e-3)
        levels = np.geomspace(low, float(gz.max()), 20) if gz.max() > low else 10
        ax.contour(gx, gy, np.maximum(gz, low), levels=levels, cmap="Greys", linewidths=0.7)
    for label, a in arrays.items():
        line, = ax.plot(a[:, 0], a[:, 1], "-", lw=1.6, label=label)
        ax.plot(a[-1, 0], a[-1, 1], "o", color=line.get_color(), markersize=5)
        if ax_f is not None:
            values = np.asarray(f(a[:, 0], a[:, 1]), dtype=np.float64)
            ax_f.semilogy(np.arange(len(values)), np.maximum(values, 1e-12), lw=1.4, label=label,
                          color=line.get_color())
    start = every[0]
    ax.plot(start[0], start[1], "ks", markersize=6, label="start")
    if minimum is not None:
        ax.plot(minimum[0], minimum[1], "*", color="gold", markeredgecolor="k", markersize=14,
                label="minimum")
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xlabel(r"$\theta_1$")
    ax.set_ylabel(r"$\theta_2$")
    ax.legend(fontsize="x-small", loc="best")
    ax.set_title("paths")
    if ax_f is not None:
        ax_f.set_xlabel("step")
        ax_f.set_ylabel(r"$J(\theta)$")
        ax_f.grid(alpha=0.3, which="both")
        ax_f.set_title("loss along the path")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


# ---- comparisons ----------------------------------------------------------------------------
def plot_bars(labels, series, path, title=None, ylabel=None, log=False, size=(800, 420),
              value_format=None):
    """Grouped bars: ``series`` maps a legend label to one value per entry of ``labels``
    (``None`` for a missing value). Each bar is annotated with its value (``value_format``, by
    default whole numbers as ``203,530`` and others with 4 significant digits); the legend goes
    below the axes, where it hides no bar."""
    labels = [str(v) for v in labels]
    series = {str(k): list(v) for k, v in series.items()}
    fig = _figure(size)
    ax = fig.subplots()
    x = np.arange(len(labels))
    width = 0.8 / max(1, len(series))
    for s, (name, values) in enumerate(series.items()):
        positions = x - 0.4 + width * (s + 0.5)
        heights = [np.nan if v is None else float(v) for v in values]
        bars = ax.bar(positions, heights, width, label=name)
        for bar, v in zip(bars, values):
            if v is not None:
                text = (value_format.format(v) if value_format else
                        f"{v:,.0f}" if float(v).is_integer() else f"{v:,.4g}")
                ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            ha="center", va="bottom", fontsize="x-small")
    ax.set_xticks(x)
    ax.set_xticklabels(labels, fontsize="small")
    if log:
        ax.set_yscale("log")
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis="y")
    if len(series) > 1:
        ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=len(series))
    if title:
        ax.set_title(title)
    return _save(fig, path)


def plot_f1_scores(f1, class_names, path, reference=None, reference_label="report",
                   title=None, size=(900, 420)):
    """Per-class F1 scores as bars, next to reference scores (the report's) when given."""
    f1 = np.asarray(backend.to_numpy(f1), dtype=np.float64).ravel()
    class_names = _names(class_names, f1.size, "plot_f1_scores")
    if reference is not None and len(reference) != f1.size:
        raise ValueError(f"plot_f1_scores: {len(reference)} reference scores for {f1.size} classes")
    series = {"tinynet": [float(v) for v in f1]}
    if reference is not None:
        series[reference_label] = [None if v is None else float(v) for v in reference]
    return plot_bars(class_names, series, path, title=title or "F1 score per class",
                     ylabel="F1", size=size, value_format="{:.2f}")
