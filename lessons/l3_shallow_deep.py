"""Lesson 3 - Shallow and deep networks: weights against accuracy.

The two MLPs are shallow (one hidden Dense layer) and hold more than 100,000 weights; the CNN
is deep (three convolutions, three poolings, two Dense layers) and holds about 7,500. Dense
layers spend a weight on every input-output pair; a convolution reuses one small kernel over the
whole image. This lesson trains the three and puts weights and test accuracy side by side, then
shows what the deep model's first layer has learnt.

    python -m lessons.l3_shallow_deep [--quick] [--out DIR] [--epochs N]
"""
from tinynet import plots

from . import common
from .experiments import CNN_DIGITS, MLP_HOG, MLP_RAW

TITLE = "3. Shallow and deep networks"

MODELS = [("MLP raw (shallow)", MLP_RAW[0]), ("MLP on HOG (shallow)", MLP_HOG[0]),
          ("CNN (deep)", CNN_DIGITS[0])]


def depth(model):
    """Layers with weights, from input to output: the depth of the network."""
    return sum(1 for layer in model.layers if layer.count_params() > 0)


def main(args=None):
    args = common.parse_args(args, prog="python -m lessons.l3_shallow_deep")
    out = common.setup(args)
    section = common.Section(TITLE, "l3_shallow_deep")
    runs = [(label, common.train(exp, args)) for label, exp in MODELS]
    rows = []
    for label, run in runs:
        rows.append([label, depth(run.model), f"{run.params:,}", f"{run.accuracy:.2%}",
                     f"{run.experiment.report[1]:.2%}"])
        print(f"{label:22s} {depth(run.model)} weighted layers, {run.params:>8,} weights, "
              f"test accuracy {run.accuracy:.2%}")
        section.runs.append(run)
    section.table("Weights and accuracy", ["Model", "Weighted layers", "Weights",
                                           "Test accuracy (tinynet)", "Test accuracy (report)"],
                  rows)
    labels = [label.split(" (")[0] for label, _ in runs]
    weights = plots.plot_bars(labels, {"weights": [r.params for _, r in runs]},
                              out / "shallow_deep_weights.png", log=True, ylabel="weights (log scale)",
                              title="Weights", size=(560, 400))
    accuracy = plots.plot_bars(labels, {"tinynet": [r.accuracy for _, r in runs],
                                        "report": [r.experiment.report[1] for _, r in runs]},
                               out / "shallow_deep_accuracy.png", ylabel="test accuracy",
                               title="Test accuracy", size=(560, 400), value_format="{:.2%}")
    cnn = runs[-1][1]
    filters = plots.plot_conv_filters(cnn.model.get_layer("l1"), out / "cnn_l1_filters.png")
    maps = plots.plot_feature_maps(cnn.model, cnn.x_test[0], "l1", out / "cnn_l1_maps.png")
    deeper = plots.plot_feature_maps(cnn.model, cnn.x_test[0], "l3", out / "cnn_l3_maps.png")
    mlp = runs[0][1]
    verdict = "at least matches" if cnn.accuracy >= mlp.accuracy else "stays below"
    section.text(f"""
The deep CNN has {cnn.params / mlp.params:.1%} of the raw MLP's weights; in this run its test
accuracy ({cnn.accuracy:.2%}) {verdict} the MLP's ({mlp.accuracy:.2%}). In the report, with
full training, the CNN is the best of the three ({cnn.experiment.report[1]:.2%} against
{mlp.experiment.report[1]:.2%}): a convolution reuses one small kernel over the whole image, so
depth buys accuracy at a much lower price in weights than a wide Dense layer.""")
    section.blocks.append(f"{common.img(weights.name, 'weights')} {common.img(accuracy.name, 'accuracy')}")
    section.text("What the CNN's first convolution learnt (its nine 5x5 kernels), and the feature "
                 "maps it and the third convolution produce for a test digit:")
    section.blocks.append(f"{common.img(filters.name, 'filters')} {common.img(maps.name, 'l1 maps')} "
                          f"{common.img(deeper.name, 'l3 maps')}")
    section.pictures += [p.name for p in (weights, accuracy, filters, maps, deeper)]
    return section


if __name__ == "__main__":
    common.run_standalone(main, "l3_shallow_deep")
