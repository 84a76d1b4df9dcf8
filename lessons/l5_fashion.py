"""Lesson 5 - CNNs for Fashion-MNIST: the report's models 1, 2 and 3 (the residual one).

Model 1 has one wide convolution and a 100-unit Dense layer (628,630 weights); model 2 two small
convolutions (14,106); model 3 borrows ResNet's idea, ``x -> F(x) + x``: two convolutions whose
output is added to their input, before two more poolings (10,244). Each is trained and scored
like the report; model 3 also gets per-class F1 scores next to the report's, its confusion
matrix, the test images it gets wrong, its diagram with the skip connection, its first-layer
filters and the feature maps of its residual block.

    python -m lessons.l5_fashion [--quick] [--out DIR] [--epochs N]
"""
from tinynet import metrics, plots

from . import common
from .experiments import FASHION_MODELS, REPORT_F1

TITLE = "5. Fashion-MNIST CNNs"


def main(args=None):
    args = common.parse_args(args, prog="python -m lessons.l5_fashion")
    out = common.setup(args)
    section = common.Section(TITLE, "l5_fashion")
    runs = [common.train_and_plot(exp, args, out) for exp in FASHION_MODELS]
    common.grid_table(section, "Models 1, 2 and 3", runs)

    names = runs[0].data.class_names
    f1 = {r.experiment.key: metrics.f1_scores(r.y_true, r.y_pred, len(names)) for r in runs}
    third = runs[-1]
    print(f"\nModel 3 ({third.experiment.key}) on the Fashion-MNIST test set:")
    print(metrics.classification_report(third.y_true, third.y_pred, len(names), class_names=names))
    for name, ours, theirs in zip(names, f1[third.experiment.key], REPORT_F1):
        print(f'F1-score for class "{name}": {ours:.2f} (report: {theirs:.2f})')
    rows = [[name] + [f"{f1[r.experiment.key][i]:.2f}" for r in runs] + [f"{REPORT_F1[i]:.2f}"]
            for i, name in enumerate(names)]
    rows.append(["macro average"] + [f"{f1[r.experiment.key].mean():.2f}" for r in runs]
                + [f"{sum(REPORT_F1) / len(REPORT_F1):.2f}"])
    section.table("F1 per class", ["Class"] + [f"tinynet model {i + 1}" for i in range(len(runs))]
                  + ["report model 3"], rows)
    bars = plots.plot_f1_scores(f1[third.experiment.key], names, out / "fashion_m3_f1.png",
                                reference=REPORT_F1, reference_label="report (Keras)",
                                title="Model 3: F1 per class")
    section.picture(bars.name, "F1 per class")
    worst = names[int(f1[third.experiment.key].argmin())]
    section.text(f"The hardest class for model 3 is *{worst}*; the confusion matrix shows which "
                 "classes it is taken for:")
    section.picture(third.pictures["cm"], "model 3 confusion matrix")

    wrong = plots.plot_misclassified(third.data.x_test, third.y_true, third.y_pred, names,
                                     out / "fashion_m3_misclassified.png", n=25)
    diagrams = [plots.plot_model(r.model, out / f"{r.experiment.key}_model.png") for r in runs]
    filters = plots.plot_conv_filters(third.model.get_layer("l1"), out / "fashion_m3_l1_filters.png")
    block = plots.plot_feature_maps(third.model, third.x_test[0], "add", out / "fashion_m3_add_maps.png")
    section.text("Test images model 3 gets wrong (true class, then prediction):")
    section.picture(wrong.name, "misclassified")
    section.text("The three models; the arc on the right of model 3 is its skip connection:")
    section.blocks.append(" ".join(common.img(d.name, d.stem) for d in diagrams))
    section.pictures += [d.name for d in diagrams]
    section.text("Model 3's first convolution (nine 7x7 kernels) and the output of its residual "
                 "block (`add` = `l2_2(l2(p)) + p`) for the first test image:")
    section.blocks.append(f"{common.img(filters.name, 'filters')} {common.img(block.name, 'add maps')}")
    section.pictures += [filters.name, block.name]
    return section


if __name__ == "__main__":
    common.run_standalone(main, "l5_fashion")
