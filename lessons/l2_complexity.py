# %% [markdown]
# # Lesson 2 — Model complexity: how many weights, and why
#
# The practical work compares three models on MNIST digits: an MLP on the raw pixels, the same
# MLP on HOG features, and a CNN. Here they are written out with tinynet's API, their summaries
# printed and their weights counted, layer by layer, against the practical work's numbers
# (203,530, 103,178 and 7,465). The later lessons train them; the same definitions are kept in
# `tinynet.report_models` so that those lessons can call them by name.
#
# The counts follow from the shapes alone:
#
# - a `Dense` layer of $u$ units on $n$ inputs has a weight per input-unit pair and a bias per
#   unit: $n u + u$;
# - a `Conv2D` layer of $F$ filters of $k_h \times k_w$ on $C$ channels has one
#   $k_h \times k_w \times C$ kernel per filter, shared by every position of the image, and a
#   bias per filter: $k_h k_w C F + F$;
# - `Dropout`, `Flatten` and `MaxPooling2D` have none.
#
# The output size of a convolution or a pooling along one axis of size $n$, with a window $k$,
# padding $p$ and stride $s$, is $\lfloor (n + 2p - k)/s \rfloor + 1$: `padding="same"` pads
# $p = (k - 1)/2$ for an odd $k$ (2 for a 5x5 kernel), which keeps 28 at stride 1, and a 2x2
# pooling of stride 2 halves it, rounding down (7 becomes 3). In general `"same"` gives
# $\lceil n/s \rceil$ windows, one starting at every $s$-th pixel: Keras pads
# $\max((\lceil n/s \rceil - 1)\,s + k - n,\ 0)$ zeros in all, half before the image (rounded
# down) and the rest after it: an odd total puts one more zero after than before (a 4x4 kernel
# at stride 1: 1 before, 2 after).

# %%
from tinynet import Model, Sequential, layers, plots, report_models

try:
    from lessons import common, practical_work
except ImportError:  # run as `python lessons/l2_complexity.py`, or opened as a notebook in lessons/
    import common
    import practical_work

args = common.options("l2_complexity")
section = common.Section("2. Model complexity", "l2_complexity")

# %% [markdown]
# ## The MLP on raw pixels
#
# The practical work names its first Dense layer "Input" and its last "Output". They are not the
# input layer (that is the 784 pixels): "Input" is the hidden layer of 256 units. The names are
# kept so that the summaries can be compared line by line with the practical work's.

# %%
layers.reset_names()   # default layer names start again (dropout, not dropout_7)
mlp_raw = Sequential([
    layers.Input((784,), name="input"),                     # the 784 pixels, scaled to [0, 1]
    layers.Dense(256, activation="relu", name="Input"),     # the hidden layer: 784 * 256 + 256
    layers.Dropout(0.25),
    layers.Dense(10, activation="softmax", name="Output"),  # 256 * 10 + 10
], name="MLP-raw")
mlp_raw.summary()

# %% [markdown]
# ## The MLP on HOG features
#
# A histogram of oriented gradients (HOG) describes each cell of $c \times c$ pixels by how its
# gradient is shared among 8 orientation bins over 0-180 degrees (unsigned: an edge and its
# reverse fall in the same bin), each cell's histogram normalised on its own (the practical
# work's blocks of one cell). With 4x4-pixel cells a 28x28 digit has 7x7 cells, hence
# $7 \cdot 7 \cdot 8 = 392$ features: half the pixels, so about half the weights in the first
# layer (the 256 biases do not halve).

# %%
features = practical_work.hog_length(4)
layers.reset_names()
mlp_hog = Sequential([
    layers.Input((features,), name="input"),
    layers.Dense(256, activation="relu", name="Input"),
    layers.Dropout(0.25),
    layers.Dense(10, activation="softmax", name="Output"),
], name="MLP-features")
mlp_hog.summary()

# %% [markdown]
# ## The CNN, with the functional API
#
# Three convolutions with `padding="same"`, each followed by a 2x2 max-pooling (28 -> 14 -> 7
# -> 3), then a flattening of the $3 \times 3 \times 16 = 144$ values, a Dense layer of 25 and the
# output. (The practical work's table says the third convolution is 3x3x18, its summary counts
# 1,312 weights = 3 * 3 * 9 * 16 + 16: 16 filters. The summary is followed here.)

# %%
x = layers.Input((28, 28, 1), name="l0")
y = layers.Conv2D(9, 5, padding="same", activation="relu", name="l1")(x)
y = layers.MaxPooling2D(2, name="l1_mp")(y)
y = layers.Conv2D(9, 5, padding="same", activation="relu", name="l2")(y)
y = layers.MaxPooling2D(2, name="l2_mp")(y)
y = layers.Conv2D(16, 3, padding="same", activation="relu", name="l3")(y)
y = layers.MaxPooling2D(2, name="l3_mp")(y)
y = layers.Flatten(name="flat")(y)
y = layers.Dense(25, activation="relu", name="l4")(y)
y = layers.Dense(10, activation="softmax", name="l5")(y)
cnn = Model(x, y, name="CNN")
cnn.summary()

# %% [markdown]
# ## Counting, layer by layer

# %%
def formula(layer):
    """How a layer's weight count comes about, in numbers."""
    kind = type(layer).__name__
    if kind == "Dense":
        return f"{layer.input_shape[0]} x {layer.units} + {layer.units}"
    if kind == "Conv2D":
        kh, kw = layer.kernel_size
        return f"{kh} x {kw} x {layer.input_shape[2]} x {layer.filters} + {layer.filters}"
    return "0"


MODELS = {"mlp_raw": mlp_raw, "mlp_features": mlp_hog, "cnn_digits": cnn}
totals, per_layer = [], []
for key, model in MODELS.items():
    total, expected = model.count_params(), practical_work.REPORT_TOTALS[key]
    print(f"{model.name}: {total:,} weights, the practical work {expected:,}")
    assert total == expected, f"{model.name} has {total:,} weights, the practical work {expected:,}"
    same = getattr(report_models, key)()  # what the later lessons train
    assert [l.count_params() for l in same.layers] == [l.count_params() for l in model.layers], \
        f"tinynet.report_models.{key} differs from the model written here"
    # layers that compute (a functional model's layers list its InputLayer too: not counted)
    totals.append([model.name, sum(not isinstance(l, layers.InputLayer) for l in model.layers),
                   f"{total:,}", f"{expected:,}"])
    for name, count in practical_work.REPORT_LAYER_PARAMS[key].items():
        layer = model.get_layer(name)
        assert layer.count_params() == count, (model.name, name, layer.count_params(), count)
        what = "hidden layer" if name == "Input" else ("output layer" if name in ("Output", "l5") else "")
        per_layer.append([model.name, f"{name} ({type(layer).__name__}{', ' + what if what else ''})",
                          formula(layer), f"{layer.count_params():,}", f"{count:,}"])
section.text("""
The counts follow from the layer shapes: a Dense layer has a weight per input-unit pair plus a
bias per unit; a Conv2D layer has one kh x kw x channels kernel per filter plus its bias, shared
by all positions of the image; pooling, flattening and dropout have none. Every count below
equals the practical work's. The practical work's names are kept: its "Input" is the hidden
Dense layer of 256 units, not the input.""")
section.table("Weights per model", ["Model", "Layers", "tinynet", "Practical work"], totals)
section.table("Weights per layer", ["Model", "Layer", "Formula", "tinynet", "Practical work"], per_layer)

# %% [markdown]
# ## What the MLP on features reads, and the three models drawn
#
# The HOG picture draws, in each cell, one line per orientation bin, its length and colour that
# bin's share of the cell's normalised histogram (the line is drawn across the gradient, along
# the edge it comes from). A cell that only touches the stroke's fringe gets long lines too: each
# cell is normalised on its own. Smaller cells mean more cells, more features and more weights in
# the first Dense layer (2x2-pixel cells, the third size of lesson 4, give 1,568 features; lesson 4
# puts a Dense 384 on them, not the Dense 256 of this table).

# %%
digits = common.load("mnist", args)
hog_picture = plots.plot_hog(digits.x_test[0], args.out / "hog_digit.png", pixels_per_cell=[4, 7])
diagrams = [plots.plot_model(model, args.out / f"{key}_model.png") for key, model in MODELS.items()]
hog_rows = [[f"{c}x{c}", f"{28 // c} x {28 // c}", f"{practical_work.hog_length(c):,}",
             f"{practical_work.hog_length(c) * 256 + 256:,}"] for c in (4, 7, 2)]
section.table("HOG cell sizes", ["Pixels per cell", "Cells", "Features (8 orientations)",
                                 "Weights of a Dense 256 on them"], hog_rows)
section.picture(hog_picture, caption="What the MLP on features reads (8 orientations):")
section.picture(*diagrams, caption="The three models, drawn by `tinynet.plots.plot_model`:")
