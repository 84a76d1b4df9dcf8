"""tinynet.plots: every function writes a PNG of the asked pixel size that is not blank."""
import numpy as np
import pytest
from matplotlib.image import imread

from tinynet import plots, report_models
from tinynet.callbacks import History

SIZE = (333, 217)  # odd sizes: the PNG must keep them exactly (no "tight" cropping)
SKIP_RGB = np.array([0xcc, 0x41, 0x25]) / 255.0  # the colour of skip connections in plot_model


def check_png(path, size):
    image = imread(str(path))
    assert image.shape[:2] == (size[1], size[0]), image.shape
    assert image[..., :3].var() > 0, "blank picture"
    return image


def digits(n=40, seed=0):
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    for i in range(n):
        r, c = rng.integers(4, 20, size=2)
        images[i, r:r + 8, c:c + 3] = 255  # a bar somewhere: gradients for HOG, ink for the grid
        images[i, r:r + 3, c:c + 8] = 200
    labels = rng.integers(0, 10, size=n)
    return images, labels


def history():
    h = History()
    for epoch, (l, a) in enumerate([(1.2, 0.6), (0.7, 0.8), (0.5, 0.85)]):
        h.on_epoch_end(epoch, {"loss": l, "accuracy": a, "val_loss": l + 0.1, "val_accuracy": a - 0.05})
    return h


def rosenbrock(x, y):
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2


def test_plot_history(tmp_path):
    path = plots.plot_history(history(), tmp_path / "h.png", title="run", size=SIZE)
    assert path == tmp_path / "h.png"
    check_png(path, SIZE)
    # a plain dict with one epoch and no validation works too
    check_png(plots.plot_history({"loss": [0.3], "accuracy": [0.9]}, tmp_path / "d.png", size=SIZE), SIZE)


def test_plot_history_refuses_what_is_not_a_history(tmp_path):
    with pytest.raises(ValueError, match="History"):
        plots.plot_history({"acc": [1]}, tmp_path / "x.png")


def test_plot_histories(tmp_path):
    path = plots.plot_histories({"a": history(), "b": history().history}, tmp_path / "hs.png",
                                key="val_loss", size=SIZE)
    check_png(path, SIZE)


def test_plot_confusion_matrix(tmp_path):
    cm = np.random.default_rng(1).integers(0, 500, size=(10, 10))
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
             "Bag", "Ankle boot"]
    path = plots.plot_confusion_matrix(cm, names, tmp_path / "sub" / "cm.png", title="t", size=SIZE)
    check_png(path, SIZE)
    check_png(plots.plot_confusion_matrix(cm, [str(d) for d in range(10)], tmp_path / "cm.png"),
             (600, 560))
    with pytest.raises(ValueError, match="class names"):
        plots.plot_confusion_matrix(cm, ["a", "b"], tmp_path / "bad.png")


def skip_pixels(image):
    return int((np.abs(image[..., :3] - SKIP_RGB).max(axis=-1) < 0.08).sum())


def test_plot_model_draws_the_skip_connection_of_the_residual_model(tmp_path):
    residual = plots.plot_model(report_models.cnn_fashion_3(), tmp_path / "res.png", size=(420, 700))
    chain = plots.plot_model(report_models.cnn_digits(), tmp_path / "cnn.png", size=(420, 700))
    mlp = plots.plot_model(report_models.mlp_raw(), tmp_path / "mlp.png", size=(420, 300))
    assert skip_pixels(check_png(residual, (420, 700))) > 200  # a visible, coloured arc
    assert skip_pixels(check_png(chain, (420, 700))) == 0
    assert skip_pixels(check_png(mlp, (420, 300))) == 0


def test_plot_model_default_size_grows_with_the_layers(tmp_path):
    small = imread(str(plots.plot_model(report_models.mlp_raw(), tmp_path / "a.png")))
    big = imread(str(plots.plot_model(report_models.cnn_fashion_3(), tmp_path / "b.png")))
    assert big.shape[0] > small.shape[0]


def test_plot_misclassified(tmp_path):
    images, labels = digits()
    predicted = labels.copy()
    predicted[::3] = (predicted[::3] + 1) % 10
    path = plots.plot_misclassified(images, labels, predicted, [str(d) for d in range(10)],
                                    tmp_path / "m.png", n=9, size=SIZE)
    check_png(path, SIZE)
    # one-hot predictions, flat images, and nothing wrong at all
    onehot = np.eye(10)[labels]
    check_png(plots.plot_misclassified(images.reshape(len(images), -1) / 255.0, labels, onehot,
                                      [str(d) for d in range(10)], tmp_path / "none.png", size=SIZE), SIZE)


def test_plot_conv_filters(tmp_path):
    model = report_models.cnn_fashion_3()
    check_png(plots.plot_conv_filters(model.get_layer("l1"), tmp_path / "f1.png", size=SIZE), SIZE)
    check_png(plots.plot_conv_filters(model.get_layer("l2"), tmp_path / "f2.png", size=SIZE), SIZE)
    with pytest.raises(ValueError, match="Conv2D"):
        plots.plot_conv_filters(model.get_layer("l5"), tmp_path / "x.png")


def test_layer_output_runs_the_graph_like_predict():
    model = report_models.cnn_fashion_3()
    images, _ = digits(3)
    x = images[..., None] / 255.0
    np.testing.assert_allclose(plots.layer_output(model, x, "l7"), model.predict(x), rtol=1e-5,
                               atol=1e-6)
    assert plots.layer_output(model, x[0], "add").shape == (1, 14, 14, 9)
    assert plots.layer_output(model, images[0], "l1").shape == (1, 28, 28, 9)  # no channel axis
    with pytest.raises(ValueError, match="no layer named"):
        plots.layer_output(model, x, "nope")


@pytest.mark.parametrize("layer", ["l1", "add", "l5"])
def test_plot_feature_maps(tmp_path, layer):
    model = report_models.cnn_fashion_3()
    images, _ = digits(1)
    path = plots.plot_feature_maps(model, images[0][..., None] / 255.0, layer, tmp_path / "fm.png",
                                   size=SIZE)
    check_png(path, SIZE)


def test_plot_feature_maps_of_an_mlp_on_features(tmp_path):
    model = report_models.mlp_features()
    x = np.random.default_rng(0).random(392)
    check_png(plots.plot_feature_maps(model, x, "Input", tmp_path / "fm.png", size=SIZE), SIZE)


def test_plot_hog(tmp_path):
    images, _ = digits(1)
    check_png(plots.plot_hog(images[0], tmp_path / "hog.png", size=SIZE), SIZE)
    check_png(plots.plot_hog(images[0], tmp_path / "hog4.png", pixels_per_cell=4, size=SIZE), SIZE)


def test_plot_rmsprop_paths(tmp_path):
    t = np.linspace(0, 1, 50)[:, None]
    paths = {"a": np.hstack([-1.5 + 2.5 * t, 2 - t]), "b": np.hstack([-1.5 + 2 * t, 2 - 1.5 * t])}
    check_png(plots.plot_rmsprop_paths(paths, tmp_path / "p.png", f=rosenbrock, minimum=(1, 1),
                                      size=SIZE), SIZE)
    check_png(plots.plot_rmsprop_paths(paths, tmp_path / "q.png", size=SIZE), SIZE)
    with pytest.raises(ValueError, match="steps, 2"):
        plots.plot_rmsprop_paths({"a": np.zeros((3, 3))}, tmp_path / "x.png")


def test_plot_bars_and_f1_scores(tmp_path):
    check_png(plots.plot_bars(["MLP", "CNN"], {"weights": [203530, 7465]}, tmp_path / "b.png",
                             log=True, size=SIZE), SIZE)
    check_png(plots.plot_f1_scores(np.linspace(0.5, 1, 10), list("abcdefghij"), tmp_path / "f.png",
                                  reference=np.linspace(0.6, 0.9, 10), size=SIZE), SIZE)


def test_size_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="size"):
        plots.plot_history(history(), tmp_path / "h.png", size=(0, 100))
