"""Lesson 4 - The report's hyper-parameter grids, rerun with tinynet.

Four tables, as in the report: the MLP on raw pixels (hidden units, dropout), the MLP on HOG
features (cell size, hidden units), the digits CNN (hidden Dense layers) and the Fashion-MNIST
CNNs (the digits CNN, then the residual model). Every row is trained, its loss curves and
confusion matrix drawn, and its test score written next to the report's; the best model of each
grid is drawn as a diagram.

    python -m lessons.l4_grids [--quick] [--out DIR] [--epochs N]
"""
from tinynet import plots

from . import common
from .experiments import CNN_DIGITS, CNN_FASHION, MLP_HOG, MLP_RAW

TITLE = "4. Hyper-parameter grids"

GRIDS = [  # (table name, rows, file name of the best model's diagram)
    ("MLP on raw pixels", MLP_RAW, "mlp_raw_best_model.png"),
    ("MLP on HOG features", MLP_HOG, "mlp_hog_best_model.png"),
    ("MNIST digits CNN", CNN_DIGITS, "cnn_best_model.png"),
    ("Fashion-MNIST CNN", CNN_FASHION, "cnn_f_best_model.png"),
]

NOTES = {
    "MNIST digits CNN": "The report's table calls the third convolution 3x3x18, but its model "
                        "summary (1,312 weights in `l3`) has 16 filters: we follow the summary.",
    "MLP on HOG features": "HOG features have 8 orientations and 1x1-cell blocks; 4, 7 and 2 "
                           "pixels per cell give 392, 128 and 1,568 features.",
}


def main(args=None):
    args = common.parse_args(args, prog="python -m lessons.l4_grids")
    out = common.setup(args)
    section = common.Section(TITLE, "l4_grids")
    for name, grid, diagram in GRIDS:
        runs = [common.train_and_plot(exp, args, out) for exp in grid]
        best = max(runs, key=lambda r: r.accuracy)
        print(f"\n{name}: best {best.experiment.key} ({best.experiment.label}), "
              f"{common.score(best.loss, best.accuracy)}")
        common.grid_table(section, name, runs)
        if name in NOTES:
            section.text(NOTES[name])
        picture = plots.plot_model(best.model, out / diagram, title=f"best: {best.experiment.key}")
        section.text(f"Best in tinynet's run: `{best.experiment.key}` ({best.experiment.label}), "
                     f"{common.score(best.loss, best.accuracy)}.")
        section.picture(picture.name, f"{name}: best model")
    return section


if __name__ == "__main__":
    common.run_standalone(main, "l4_grids")
