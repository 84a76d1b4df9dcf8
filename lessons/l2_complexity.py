"""Lesson 2 - Model complexity: how many weights each of the report's three models has, and why.

    Dense(units) on n inputs:        n * units + units          (a weight per connection + biases)
    Conv2D(f, k x k) on c channels:  k * k * c * f + f          (one small kernel per filter, shared
                                                                  over every position of the image)
    Dropout, Flatten, MaxPooling2D:  0

The three models (MLP on raw pixels, MLP on HOG features, CNN) are built from
``tinynet.report_models``, their summaries printed, their counts compared, layer by layer, with
the report's (203,530 / 103,178 / 7,465), then trained and drawn.

    python -m lessons.l2_complexity [--quick] [--out DIR] [--epochs N]
"""
from tinynet import plots

from . import common
from .experiments import CNN_DIGITS, MLP_HOG, MLP_RAW, REPORT_LAYER_PARAMS, REPORT_TOTALS

TITLE = "2. Model complexity"

MODELS = [  # (report name, experiment)
    ("mlp_raw", MLP_RAW[0]),
    ("mlp_features", MLP_HOG[0]),
    ("cnn_digits", CNN_DIGITS[0]),
]


def formula(layer):
    """How a layer's parameter count comes about, in numbers."""
    kind = type(layer).__name__
    if kind == "Dense":
        n = layer.input_shape[0]
        return f"{n} x {layer.units} + {layer.units}"
    if kind == "Conv2D":
        kh, kw = layer.kernel_size
        return f"{kh} x {kw} x {layer.input_shape[2]} x {layer.filters} + {layer.filters}"
    return "0"


def main(args=None):
    args = common.parse_args(args, prog="python -m lessons.l2_complexity")
    out = common.setup(args)
    section = common.Section(TITLE, "l2_complexity")
    section.text("""
Parameter counts follow from the layer shapes alone: a Dense layer has a weight per
input-output pair plus a bias per unit; a Conv2D layer has one kh x kw x channels kernel per
filter plus its bias, shared across all positions of the image; pooling, flattening and dropout
have none. The MLP on HOG features is the raw MLP with 392 inputs (7 x 7 cells of 4 x 4 pixels,
8 orientations each) instead of 784, hence half the weights of its first layer.""")
    totals, layer_rows, runs = [], [], []
    for name, exp in MODELS:
        run = common.train(exp, args)
        model = run.model
        total = model.count_params()
        expected = REPORT_TOTALS[name]
        status = "equal" if total == expected else f"DIFFERENT ({total - expected:+,})"
        print(f"{name}: tinynet counts {total:,} weights, the report {expected:,}: {status}")
        totals.append([f"`{model.name}`", len(model.layers), f"{total:,}", f"{expected:,}", status,
                       common.score(run.loss, run.accuracy)])
        for layer_name, report_count in REPORT_LAYER_PARAMS[name].items():
            layer = model.get_layer(layer_name)
            layer_rows.append([f"`{model.name}`", f"{layer.name} ({type(layer).__name__})",
                               formula(layer), f"{layer.count_params():,}", f"{report_count:,}"])
        picture = plots.plot_model(model, out / f"{name}_model.png")
        section.pictures.append(picture.name)
        runs.append((name, run, picture))
        section.runs.append(run)
    section.table("Weights per model", ["Model", "Layers", "tinynet", "Report", "Check",
                                        "Test score (tinynet)"], totals)
    section.table("Weights per layer", ["Model", "Layer", "Formula", "tinynet", "Report"], layer_rows)

    # What the MLP on features reads: the HOG picture of a digit for the report's cell sizes.
    data = common.load("mnist", args)
    hog = plots.plot_hog(data.x_test[0], out / "hog_digit.png", orientations=8,
                         pixels_per_cell=(4, 7, 2))
    section.text("The MLP on features reads HOG descriptors: per cell, a histogram of 8 gradient "
                 "orientations. Fewer pixels per cell, more cells, more features (and more weights "
                 "in the first Dense layer):")
    section.picture(hog.name, "HOG of a test digit")
    section.text("The three models, drawn by `tinynet.plots.plot_model`:")
    section.blocks.append(" ".join(common.img(p.name, n) for n, _, p in runs))
    return section


if __name__ == "__main__":
    common.run_standalone(main, "l2_complexity")
