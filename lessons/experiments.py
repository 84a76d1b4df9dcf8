"""The practical work's experiments: its models, its hyper-parameter grids and its own scores.

Every lesson takes its rows from here, so that a model trained by one lesson (the 256-unit MLP,
the 25-unit CNN, the residual Fashion CNN) is the same experiment, with the same key, in the
others, and is trained once per session. ``report`` is the report's (test loss, test accuracy)
obtained with Keras.
"""
from functools import partial

from tinynet import report_models as rm

from .common import IMAGES, PIXELS, Experiment, hog_inputs

# ---- MLP on the raw pixels: hidden units and dropout ----------------------------------------
MLP_RAW = [
    Experiment("mlp_raw_256", "Dense 256 (relu), Dropout 0.25", "mnist", PIXELS,
               partial(rm.mlp_raw, hidden=256, dropout=0.25), (0.0662, 0.9839)),
    Experiment("mlp_raw_128", "Dense 128 (relu), Dropout 0.3", "mnist", PIXELS,
               partial(rm.mlp_raw, hidden=128, dropout=0.3), (0.0841, 0.9786)),
    Experiment("mlp_raw_384", "Dense 384 (relu), Dropout 0.5", "mnist", PIXELS,
               partial(rm.mlp_raw, hidden=384, dropout=0.5), (0.077, 0.9828)),
    Experiment("mlp_raw_300", "Dense 300 (relu), Dropout 0.5", "mnist", PIXELS,
               partial(rm.mlp_raw, hidden=300, dropout=0.5), (0.0801, 0.9814)),
]


# ---- MLP on HOG features: cell size and hidden units (8 orientations, 1x1-cell blocks) -----
def _hog_features(pixels_per_cell, orientations=8):
    cells = 28 // pixels_per_cell
    return cells * cells * orientations


def _mlp_hog(key, ppc, hidden, report, seed_offset=0, note=""):
    return Experiment(key, f"8 orientations, {ppc}x{ppc} px/cell ({_hog_features(ppc)} features), "
                           f"Dense {hidden}{note}", "mnist", hog_inputs(8, ppc),
                      partial(rm.mlp_features, features=_hog_features(ppc), hidden=hidden),
                      report, seed_offset=seed_offset)


MLP_HOG = [
    _mlp_hog("mlp_hog_4_256", 4, 256, (0.0613, 0.9827)),
    _mlp_hog("mlp_hog_7_256", 7, 256, (0.1008, 0.9666)),
    _mlp_hog("mlp_hog_4_128", 4, 128, (0.0622, 0.9820)),
    # The report lists this setting twice, with two scores: two runs. We run it again, new seed.
    _mlp_hog("mlp_hog_4_128_rerun", 4, 128, (0.0607, 0.9833), seed_offset=1,
             note=" (listed twice in the report: second run, another seed)"),
    _mlp_hog("mlp_hog_2_384", 2, 384, (0.0808, 0.9844)),
]

# ---- the digits CNN: three Conv2D + MaxPooling2D, then the hidden Dense layer(s) ------------
_CONVS = "Conv2D 5x5x9, 5x5x9, 3x3x16 + MaxPooling2D each"
CNN_DIGITS = [
    Experiment("cnn_25", f"{_CONVS}; Dense 25", "mnist", IMAGES,
               partial(rm.cnn_digits, hidden=25), (0.0465, 0.9867)),
    Experiment("cnn_8", f"{_CONVS}; Dense 8", "mnist", IMAGES,
               partial(rm.cnn_digits, hidden=8), (0.0564, 0.9811)),
    Experiment("cnn_32", f"{_CONVS}; Dense 32", "mnist", IMAGES,
               partial(rm.cnn_digits, hidden=32), (0.0379, 0.9892)),
    Experiment("cnn_16_8", f"{_CONVS}; Dense 16, Dropout 0.3, Dense 8", "mnist", IMAGES,
               partial(rm.cnn_digits, hidden=(16, 8), dropout_hidden=0.3), (0.0451, 0.9856)),
]

# ---- Fashion-MNIST: the digits CNN, then the residual model 3 -------------------------------
_RESIDUAL = ("Conv2D 7x7x9 + pool; [Conv2D 5x5x9, Conv2D 3x3x9] + skip; pool; Conv2D 3x3x18 + "
             "pool; Dropout 0.3")
CNN_FASHION = [
    Experiment("cnn_f_25", f"digits CNN ({_CONVS}); Dense 25", "fashion", IMAGES,
               partial(rm.cnn_digits, hidden=25), (0.3018, 0.8917)),
    Experiment("cnn_f_32", f"digits CNN ({_CONVS}); Dense 32", "fashion", IMAGES,
               partial(rm.cnn_digits, hidden=32), (0.2981, 0.8931)),
    Experiment("cnn_f_res_16", f"residual: {_RESIDUAL}; Dense 16", "fashion", IMAGES,
               partial(rm.cnn_fashion_3, hidden=16), (0.2951, 0.8908)),
    Experiment("cnn_f_res_32", f"residual: {_RESIDUAL}; Dense 32", "fashion", IMAGES,
               partial(rm.cnn_fashion_3, hidden=32), (0.2731, 0.9027)),
]

# ---- section 5: the three Fashion models ----------------------------------------------------
FASHION_MODELS = [
    Experiment("fashion_m1", "model 1: Conv2D 3x3x32 + pool; Dense 100", "fashion", IMAGES,
               rm.cnn_fashion_1, (0.445, 0.918)),
    Experiment("fashion_m2", "model 2: Conv2D 5x5x8 + pool, Conv2D 3x3x16 + pool; Dense 16",
               "fashion", IMAGES, rm.cnn_fashion_2, (0.2801, 0.903)),
    CNN_FASHION[3],  # model 3, the residual one, is the last row of the Fashion grid
]

# The report's per-class F1 scores of model 3 on the Fashion-MNIST test set.
REPORT_F1 = [0.84, 0.98, 0.83, 0.90, 0.82, 0.97, 0.70, 0.96, 0.98, 0.96]

# The report's parameter counts, layer by layer (section 2), keyed by the layer names.
REPORT_LAYER_PARAMS = {
    "mlp_raw": {"Input": 200_960, "Output": 2_570},
    "mlp_features": {"Input": 100_608, "Output": 2_570},
    "cnn_digits": {"l1": 234, "l2": 2_034, "l3": 1_312, "l4": 3_625, "l5": 260},
}
REPORT_TOTALS = dict(rm.REPORT_PARAMS)
