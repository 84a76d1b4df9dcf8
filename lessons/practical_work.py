"""The practical work's facts: its hyper-parameter grids, its scores, F1 values and weight counts.

Only numbers and settings live here (what the report says); the lessons build, train and score
the models. ``report`` is the practical work's (test loss, test accuracy), obtained with Keras.
Each row's ``build`` makes the model with ``tinynet.report_models`` (the models of lesson 2).
"""
from dataclasses import dataclass
from functools import partial

from tinynet import report_models as rm


@dataclass(frozen=True)
class Row:
    """One row of a table of the practical work."""

    key: str         # unique; also the prefix of the row's PNG files
    label: str       # the hyper-parameters, in words
    dataset: str     # "mnist" | "fashion"
    inputs: str      # "pixels" | "images" | "hog4" | "hog7" | "hog2" (pixels per cell)
    build: object    # () -> an uncompiled tinynet model
    report: tuple    # the practical work's (test loss, test accuracy)
    seed_offset: int = 0  # a row the report lists twice is run again with the next seed


def hog_length(pixels_per_cell, orientations=8):
    cells = 28 // pixels_per_cell
    return cells * cells * orientations


def _hog_row(key, ppc, hidden, report, seed_offset=0, note=""):
    return Row(key, f"HOG 8 orientations, {ppc}x{ppc} px/cell ({hog_length(ppc)} features); "
                    f"Dense {hidden}{note}", "mnist", f"hog{ppc}",
               partial(rm.mlp_features, features=hog_length(ppc), hidden=hidden), report,
               seed_offset)


_CONVS = "Conv2D 5x5x9, 5x5x9, 3x3x16, each + MaxPooling2D"
_RESIDUAL = ("Conv2D 7x7x9 + pool; [Conv2D 5x5x9, Conv2D 3x3x9] + skip; pool; Conv2D 3x3x18 + pool; "
             "Dropout 0.3")

GRIDS = {
    "MLP on raw pixels": [
        Row("mlp_raw_256", "Dense 256, Dropout 0.25", "mnist", "pixels",
            partial(rm.mlp_raw, hidden=256, dropout=0.25), (0.0662, 0.9839)),
        Row("mlp_raw_128", "Dense 128, Dropout 0.3", "mnist", "pixels",
            partial(rm.mlp_raw, hidden=128, dropout=0.3), (0.0841, 0.9786)),
        Row("mlp_raw_384", "Dense 384, Dropout 0.5", "mnist", "pixels",
            partial(rm.mlp_raw, hidden=384, dropout=0.5), (0.077, 0.9828)),
        Row("mlp_raw_300", "Dense 300, Dropout 0.5", "mnist", "pixels",
            partial(rm.mlp_raw, hidden=300, dropout=0.5), (0.0801, 0.9814)),
    ],
    "MLP on HOG features": [
        _hog_row("mlp_hog_4_256", 4, 256, (0.0613, 0.9827)),
        _hog_row("mlp_hog_7_256", 7, 256, (0.1008, 0.9666)),
        _hog_row("mlp_hog_4_128", 4, 128, (0.0622, 0.9820)),
        # The report lists this setting twice, with two scores (two runs): we run it again with
        # the next seed.
        _hog_row("mlp_hog_4_128_rerun", 4, 128, (0.0607, 0.9833), seed_offset=1,
                 note=" (listed twice: second run, next seed)"),
        _hog_row("mlp_hog_2_384", 2, 384, (0.0808, 0.9844)),
    ],
    "MNIST digits CNN": [
        Row("cnn_25", f"{_CONVS}; Dense 25", "mnist", "images", partial(rm.cnn_digits, hidden=25),
            (0.0465, 0.9867)),
        Row("cnn_8", f"{_CONVS}; Dense 8", "mnist", "images", partial(rm.cnn_digits, hidden=8),
            (0.0564, 0.9811)),
        Row("cnn_32", f"{_CONVS}; Dense 32", "mnist", "images", partial(rm.cnn_digits, hidden=32),
            (0.0379, 0.9892)),
        Row("cnn_16_8", f"{_CONVS}; Dense 16, Dropout 0.3, Dense 8", "mnist", "images",
            partial(rm.cnn_digits, hidden=(16, 8), dropout_hidden=0.3), (0.0451, 0.9856)),
    ],
    "Fashion-MNIST CNN": [
        Row("cnn_f_25", "digits CNN; Dense 25", "fashion", "images",
            partial(rm.cnn_digits, hidden=25), (0.3018, 0.8917)),
        Row("cnn_f_32", "digits CNN; Dense 32", "fashion", "images",
            partial(rm.cnn_digits, hidden=32), (0.2981, 0.8931)),
        Row("cnn_f_res_16", f"residual: {_RESIDUAL}; Dense 16", "fashion", "images",
            partial(rm.cnn_fashion_3, hidden=16), (0.2951, 0.8908)),
        Row("cnn_f_res_32", f"residual: {_RESIDUAL}; Dense 32", "fashion", "images",
            partial(rm.cnn_fashion_3, hidden=32), (0.2731, 0.9027)),
    ],
}

# The four headline models: the first row of the three digit grids and the residual model 3.
HEADLINE = ["mlp_raw_256", "mlp_hog_4_256", "cnn_25", "cnn_f_res_32"]

# Section 5: the three Fashion-MNIST models, with the report's (test loss, test accuracy).
FASHION_MODELS = {"model 1": (0.445, 0.918), "model 2": (0.2801, 0.903), "model 3": (0.2731, 0.9027)}

# The report's per-class F1 scores of model 3 on the Fashion-MNIST test set.
REPORT_F1 = [0.84, 0.98, 0.83, 0.90, 0.82, 0.97, 0.70, 0.96, 0.98, 0.96]

# The report's weight counts (section 2), layer by layer and in total.
REPORT_LAYER_PARAMS = {
    "mlp_raw": {"Input": 200_960, "Output": 2_570},
    "mlp_features": {"Input": 100_608, "Output": 2_570},
    "cnn_digits": {"l1": 234, "l2": 2_034, "l3": 1_312, "l4": 3_625, "l5": 260},
}
REPORT_TOTALS = dict(rm.REPORT_PARAMS)

# "On my laptop it took almost 15 minutes to train the MLP with HOG" (the report's conclusion),
# and about 2 minutes on a free cloud GPU.
REPORT_HOG_MINUTES_LAPTOP = 15
REPORT_HOG_MINUTES_GPU = 2
