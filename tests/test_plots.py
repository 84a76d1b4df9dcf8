"""tinynet.plots: every function writes a PNG of the asked pixel size, and draws the data it is given.

A PNG that is merely not blank would pass with a transposed confusion matrix or curves from the
wrong key, so each test also looks at what was drawn: the ``drawn`` fixture wraps matplotlib's
``Figure.savefig`` (the one call every plotting function ends with) to keep the figure it saves,
and the tests read the lines, images, bars and texts of its axes, and for the confusion matrix the
colours of the saved pixels themselves.
"""
import matplotlib.colors
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread
from matplotlib.patches import Rectangle

from tinynet import plots, report_models
from tinynet.callbacks import History
from tinynet.layers import Dense, Input
from tinynet.model import Sequential

SIZE = (333, 217)  # odd sizes: the PNG must keep them exactly (no "tight" cropping)
SKIP_RGB = np.array([0xcc, 0x41, 0x25]) / 255.0  # the colour of skip connections in plot_model


def check_png(path, size):
    image = imread(str(path))
    assert image.shape[:2] == (size[1], size[0]), image.shape
    assert image[..., :3].var() > 0, "blank picture"
    return image


@pytest.fixture
def drawn(monkeypatch):
    """The figures saved during the test, in order (they are still written to their PNGs)."""
    figures = []
    savefig = Figure.savefig

    def keep(fig, *args, **kwargs):
        figures.append(fig)
        return savefig(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    return figures


def data_axes(fig):
    """The axes that hold data (not colour bars), in creation order."""
    colorbar_axes = {id(im.colorbar.ax) for ax in fig.axes for im in ax.images if im.colorbar}
    return [ax for ax in fig.axes if id(ax) not in colorbar_axes]


def curves(ax):
    """{legend label: (x, y)} of the lines of an axis."""
    return {line.get_label(): (np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float))
            for line in ax.get_lines()}


def bar_heights(ax):
    return [patch.get_height() for patch in ax.patches if isinstance(patch, Rectangle)]


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
    with pytest.raises(ValueError, match=r"needs a History .* got a dict with the keys \['acc'\]"):
        plots.plot_history({"acc": [1]}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="needs a History .* got list"):
        plots.plot_history([0.5, 0.4], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_an_empty_history_has_no_epochs_to_plot(tmp_path):
    # it said the History, which it was, "needs a History"
    from tinynet import Sequential, layers
    model = Sequential([layers.Input((3,)), layers.Dense(2, activation="softmax")])
    model.compile("sgd")
    fitted = model.fit(np.zeros((4, 3)), np.eye(2)[[0, 1, 0, 1]], epochs=0, verbose=0)
    for empty in (fitted, History(), {}, {"loss": [], "val_loss": []}):
        with pytest.raises(ValueError, match=r"plot_history: the (History|history) has no epochs "
                                             r"to plot: fit finished no epoch \(epochs=0"):
            plots.plot_history(empty, tmp_path / "h.png")
    with pytest.raises(ValueError, match=r"plot_histories: the History of run 'b' has no epochs"):
        plots.plot_histories({"a": history(), "b": History()}, tmp_path / "hs.png")
    assert not list(tmp_path.iterdir())


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


def test_forward_until_a_layer_returns_that_layers_output():
    """model.forward(x, until=name) runs the graph as predict does and stops at that layer."""
    model = report_models.cnn_fashion_3()
    images, _ = digits(3)
    x = images[..., None] / 255.0
    np.testing.assert_allclose(model.forward(x, until="l7"), model.predict(x), rtol=1e-5, atol=1e-6)
    add = model.get_layer("add")
    by_hand = model.forward(x, until=add.inbound[0].layer.name) + model.forward(x, until=add.inbound[1].layer.name)
    np.testing.assert_allclose(model.forward(x, until="add"), by_hand, rtol=1e-6)
    assert model.forward(x[:1], until="l1").shape == (1, 28, 28, 9)
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        model.forward(x, until="nope")


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


# ---- what is drawn ----------------------------------------------------------------------------
def test_plot_history_draws_each_curve_from_its_own_key(tmp_path, drawn):
    h = history()
    plots.plot_history(h, tmp_path / "h.png")
    loss_ax, acc_ax = data_axes(drawn[-1])
    for ax, metric in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        lines = curves(ax)
        assert set(lines) == {"training", "validation"}
        for label, key in (("training", metric), ("validation", "val_" + metric)):
            x, y = lines[label]
            np.testing.assert_array_equal(x, np.arange(1, len(h.history[key]) + 1))  # epochs from 1
            np.testing.assert_array_equal(y, h.history[key])
    # one epoch, no validation: one training point per panel, and nothing invented
    plots.plot_history({"loss": [0.3], "accuracy": [0.9]}, tmp_path / "d.png")
    loss_ax, acc_ax = data_axes(drawn[-1])
    assert {k: v[1].tolist() for k, v in curves(loss_ax).items()} == {"training": [0.3]}
    assert {k: v[1].tolist() for k, v in curves(acc_ax).items()} == {"training": [0.9]}


def test_plot_histories_draws_the_asked_key_of_every_run(tmp_path, drawn):
    runs = {"short": {"loss": [3.0, 2.0], "val_loss": [3.5, 2.5]},
            "long": {"loss": [1.0, 0.8, 0.6, 0.5], "val_loss": [1.1, 0.9, 0.7, 0.65]}}
    for key in ("val_loss", "loss"):
        plots.plot_histories(runs, tmp_path / f"{key}.png", key=key)
        (ax,) = data_axes(drawn[-1])
        lines = curves(ax)
        assert set(lines) == set(runs)
        for label, run in runs.items():
            np.testing.assert_array_equal(lines[label][0], np.arange(1, len(run[key]) + 1))
            np.testing.assert_array_equal(lines[label][1], run[key])


def cell_colour(png, ax, row, col):
    """The colour of the PNG a quarter of a cell left of and above the centre of cell (row, col)
    of an ``imshow`` (away from the count written at the centre)."""
    x, y = ax.transData.transform((col - 0.25, row - 0.25))  # display pixels, origin bottom-left
    height = png.shape[0]
    return png[int(round(height - y)), int(round(x)), :3]


def test_plot_confusion_matrix_puts_true_classes_on_the_rows(tmp_path, drawn):
    # not symmetric: the true class 0 is mostly predicted as 2, nothing true is predicted as 0
    cm = np.array([[0, 1, 30, 0],
                   [0, 12, 0, 2],
                   [0, 5, 20, 0],
                   [0, 0, 7, 40]])
    names = ["zero", "one", "two", "three"]
    path = plots.plot_confusion_matrix(cm, names, tmp_path / "cm.png", size=(500, 460))
    (ax,) = data_axes(drawn[-1])
    (image,) = ax.images
    np.testing.assert_array_equal(np.asarray(image.get_array()), cm)  # cm[true, predicted], not cm.T
    assert ax.get_ylabel() == "true class" and ax.get_xlabel() == "predicted class"
    assert [t.get_text() for t in ax.get_yticklabels()] == names
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    # the count written in the cell at column j (x = j) and row i (y = i) is cm[i, j]
    counts = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    assert counts == {(i, j): str(cm[i, j]) for i in range(4) for j in range(4)}
    # the title's accuracy is the diagonal's share: (0 + 12 + 20 + 40) / 117
    assert f"{72 / 117:.2%}" in ax.get_title() and "117" in ax.get_title()
    # and the pixels: row i of the picture is drawn at height i, each cell in its count's colour
    png = imread(str(path))
    norm = matplotlib.colors.Normalize(vmin=cm.min(), vmax=cm.max())
    cmap = image.get_cmap()
    for i in range(4):
        for j in range(4):
            expected = np.asarray(cmap(norm(cm[i, j])))[:3]
            got = cell_colour(png, ax, i, j)
            assert np.abs(got - expected).max() < 0.02, (i, j, got, expected)
    # a picture of cm.T would differ: cell (0, 2) holds 30 and cell (2, 0) holds 0
    assert np.abs(cell_colour(png, ax, 0, 2) - cell_colour(png, ax, 2, 0)).max() > 0.3


def test_plot_misclassified_shows_the_wrong_predictions_in_order(tmp_path, drawn):
    images, labels = digits(30, seed=3)
    predicted = labels.copy()
    wrong = [2, 5, 11, 17, 29]
    predicted[wrong] = (labels[wrong] + 3) % 10
    names = [f"c{d}" for d in range(10)]
    plots.plot_misclassified(images, labels, np.eye(10)[predicted], names, tmp_path / "m.png", n=4)
    shown = [ax for ax in data_axes(drawn[-1]) if ax.images]
    assert len(shown) == 4  # the first n of the five mistakes
    for ax, k in zip(shown, wrong):
        np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), images[k])
        assert ax.get_title() == f"{names[labels[k]]}\n-> {names[predicted[k]]}"
    assert "5 of 30" in drawn[-1].get_suptitle()


def test_plot_conv_filters_draws_each_kernel_slice(tmp_path, drawn):
    model = report_models.cnn_fashion_3()
    for name in ("l1", "l2"):
        kernel = model.get_layer(name).get_weights()[0]
        plots.plot_conv_filters(model.get_layer(name), tmp_path / f"{name}.png")
        panels = [ax for ax in data_axes(drawn[-1]) if ax.images]
        kh, kw, channels, filters = kernel.shape
        assert len(panels) == min(channels, 16) * filters
        if channels == 1:  # a grid of filters, in order
            pictures = [kernel[:, :, 0, f] for f in range(filters)]
        else:  # a (channel x filter) table, row by row
            pictures = [kernel[:, :, c, f] for c in range(channels) for f in range(filters)]
        for ax, expected in zip(panels, pictures):
            (image,) = ax.images
            np.testing.assert_allclose(np.asarray(image.get_array()), expected, rtol=1e-6)
            limit = np.abs(expected).max()
            assert image.norm.vmin == -limit and image.norm.vmax == limit  # its own centred scale


def conv_same_relu(image, kernel, bias):
    """A 'same' stride-1 convolution with ReLU of one (H, W, C) image, written out directly."""
    kh, kw, _, _ = kernel.shape
    top, left = (kh - 1) // 2, (kw - 1) // 2
    h, w = image.shape[:2]
    padded = np.pad(image, ((top, kh - 1 - top), (left, kw - 1 - left), (0, 0)))
    out = np.zeros((h, w, kernel.shape[-1])) + bias
    for a in range(kh):
        for b in range(kw):
            out += padded[a:a + h, b:b + w, :] @ kernel[a, b]
    return np.maximum(out, 0.0)


def test_plot_feature_maps_shows_the_layer_output(tmp_path, drawn, float64):
    model = report_models.cnn_digits()
    images, _ = digits(1, seed=4)
    x = images[0][..., None] / 255.0
    kernel, bias = model.get_layer("l1").get_weights()
    expected = conv_same_relu(x, kernel, bias)
    plots.plot_feature_maps(model, x, "l1", tmp_path / "fm.png")
    panels = [ax for ax in data_axes(drawn[-1]) if ax.images]
    assert len(panels) == 1 + 9
    np.testing.assert_array_equal(np.asarray(panels[0].images[0].get_array()), x[..., 0])
    for c, ax in enumerate(panels[1:]):
        np.testing.assert_allclose(np.asarray(ax.images[0].get_array()), expected[:, :, c],
                                   rtol=1e-10, atol=1e-12)


def test_plot_feature_maps_of_a_dense_layer_draws_one_bar_per_unit(tmp_path, drawn, float64):
    model = report_models.mlp_features()
    x = np.random.default_rng(5).random(392)
    kernel, bias = model.get_layer("Input").get_weights()
    expected = np.maximum(x @ kernel + bias, 0.0)
    plots.plot_feature_maps(model, x, "Input", tmp_path / "fm.png")
    bars = [ax for ax in data_axes(drawn[-1]) if ax.patches]
    (ax,) = bars
    np.testing.assert_allclose(bar_heights(ax), expected, rtol=1e-10, atol=1e-12)


def test_plot_bars_and_f1_scores_draw_the_values(tmp_path, drawn):
    values = {"weights": [203530, 7465], "layers": [3, 9]}
    plots.plot_bars(["MLP", "CNN"], values, tmp_path / "b.png", log=True)
    (ax,) = data_axes(drawn[-1])
    assert bar_heights(ax) == [203530, 7465, 3, 9]  # series by series
    assert ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["MLP", "CNN"]
    f1 = np.linspace(0.5, 1, 10)
    reference = np.linspace(0.6, 0.9, 10)
    plots.plot_f1_scores(f1, list("abcdefghij"), tmp_path / "f.png", reference=reference)
    (ax,) = data_axes(drawn[-1])
    np.testing.assert_allclose(bar_heights(ax), np.concatenate([f1, reference]), rtol=1e-15)


def test_plot_rmsprop_paths_draws_the_paths_and_the_function_along_them(tmp_path, drawn):
    t = np.linspace(0, 1, 20)[:, None]
    paths = {"a": np.hstack([-1.5 + 2.5 * t, 2 - t]), "b": np.hstack([-1.5 + 2 * t, 2 - 1.5 * t])}
    plots.plot_rmsprop_paths(paths, tmp_path / "p.png", f=rosenbrock, minimum=(1, 1))
    left, right = data_axes(drawn[-1])
    lines, along = curves(left), curves(right)
    for label, p in paths.items():
        np.testing.assert_array_equal(np.column_stack(lines[label]), p)
        np.testing.assert_array_equal(along[label][0], np.arange(len(p)))
        # on its log scale a value of 0 (path "a" ends on the minimum) is drawn at a tiny floor
        np.testing.assert_allclose(along[label][1], rosenbrock(p[:, 0], p[:, 1]), rtol=1e-15,
                                   atol=1e-9)
    np.testing.assert_array_equal(np.column_stack(lines["minimum"]), [[1, 1]])
    np.testing.assert_array_equal(np.column_stack(lines["start"]), paths["a"][:1])


def test_plot_hog_shows_the_image_and_one_panel_per_cell_size(tmp_path, drawn):
    from tinynet.features import hog_feature_length

    images, _ = digits(1, seed=6)
    plots.plot_hog(images[0], tmp_path / "hog.png", pixels_per_cell=(4, (7, 7), 2))
    panels = [ax for ax in data_axes(drawn[-1]) if ax.get_label() != "<colorbar>"]
    assert len(panels) == 4
    np.testing.assert_array_equal(np.asarray(panels[0].images[0].get_array()), images[0])
    for ax, cell in zip(panels[1:], (4, 7, 2)):
        n = hog_feature_length((28, 28), 8, (cell, cell), (1, 1))
        assert n == (28 // cell) ** 2 * 8
        assert ax.get_title().startswith(f"{cell}x{cell} px/cell: ") and ax.get_title().endswith(f"= {n} features")
        assert np.asarray(ax.images[0].get_array()).shape == (28, 28)  # the faded digit under the lines
        (lines,) = ax.collections
        assert 0 < len(lines.get_segments()) <= n  # one line per non-negligible orientation bin
    keys = [ax for ax in drawn[-1].axes if ax.get_label() == "<colorbar>"]
    assert len(keys) == 1 and keys[0].get_ylabel() == "bin value / largest bin"


def test_plot_model_writes_every_layer_with_its_shape_and_parameters(tmp_path, drawn):
    model = report_models.cnn_fashion_3()
    plots.plot_model(model, tmp_path / "m.png")
    (ax,) = drawn[-1].axes
    texts = [t.get_text() for t in ax.texts]
    for layer in model.layers:
        name_line = f"{layer.name} ({type(layer).__name__}"
        assert any(t.startswith(name_line) for t in texts), name_line
        shape_lines = [t for t in texts if t.startswith(f"output {(None,) + tuple(layer.output_shape)}")]
        assert shape_lines, layer.name
    assert any(f"{model.count_params():,} parameters" in t for t in texts)
    assert model.count_params() == 10_244  # the report's count
    assert sum(t == "skip" for t in texts) == 1  # the one residual connection
    # what each layer does: kernel sizes, strides, padding, activations, dropout rate
    for line in ("l1 (Conv2D: 9 filters 7x7, stride 1, same, relu)", "l1_mp (MaxPooling2D: 2x2, stride 2, valid)",
                 "l5 (Dense: 32 units, relu)", "l7 (Dense: 10 units, softmax)"):
        assert line in texts, line
    assert any(t.endswith("(Dropout: rate 0.3)") for t in texts)


def test_words_integers_and_keys_a_reader_needs(tmp_path, drawn):
    plots.plot_histories({"a": {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]}}, tmp_path / "h.png")
    (ax,) = data_axes(drawn[-1])
    assert ax.get_ylabel() == "validation loss"  # in words, not val_loss
    plots.plot_bars(["MLP", "CNN"], {"weights": [203_530, 7_465]}, tmp_path / "b.png", log=True)
    (ax,) = data_axes(drawn[-1])
    assert [t.get_text() for t in ax.texts] == ["203,530", "7,465"]  # not 2.035e+05
    plots.plot_bars(["a", "b"], {"x": [0.5, 0.25], "y": [0.75, None]}, tmp_path / "c.png")
    (ax,) = data_axes(drawn[-1])
    legend = ax.get_legend()
    assert legend is not None and legend.get_bbox_to_anchor().y1 < ax.get_window_extent().y0 + 1  # below the bars
    plots.plot_confusion_matrix(np.array([[5, 1], [2, 7]]), ["a", "b"], tmp_path / "cm.png")
    keys = [im.colorbar for ax in drawn[-1].axes for im in ax.images if im.colorbar]
    assert len(keys) == 1 and keys[0].ax.get_ylabel() == "number of examples"


def test_plot_history_places_each_value_at_its_epoch(tmp_path, drawn):
    """validation_freq=3 validates epochs 3 and 6 (they were drawn at 1 and 2, below the
    training curve); initial_epoch=6 trains epochs 7-9; 'acc' is Keras's other accuracy name."""
    h = History()
    for epoch in range(6):
        logs = {"loss": 1.0 / (epoch + 1), "acc": 0.5 + 0.05 * epoch}
        if (epoch + 1) % 3 == 0:
            logs.update(val_loss=2.0 / (epoch + 1), val_acc=0.4 + 0.05 * epoch)
        h.on_epoch_end(epoch, logs)
    plots.plot_history(h, tmp_path / "h.png")
    loss_ax, acc_ax = data_axes(drawn[-1])
    np.testing.assert_array_equal(curves(loss_ax)["validation"][0], [3, 6])
    np.testing.assert_allclose(curves(loss_ax)["validation"][1], [2 / 3, 2 / 6])
    np.testing.assert_allclose(curves(acc_ax)["training"][1], [0.5 + 0.05 * e for e in range(6)])
    np.testing.assert_array_equal(curves(acc_ax)["validation"][0], [3, 6])
    later = History()
    for epoch in (6, 7, 8):
        later.on_epoch_end(epoch, {"loss": np.float32(0.1 * epoch)})
    plots.plot_history(later, tmp_path / "later.png")
    np.testing.assert_array_equal(curves(data_axes(drawn[-1])[0])["training"][0], [7, 8, 9])
    with pytest.raises(ValueError, match="val_loss has 2 values for 6 epochs.*plot tinynet's History"):
        plots.plot_history(dict(h.history), tmp_path / "dict.png")
    plots.plot_history({"loss": np.array([1.0, 0.5]), "accuracy": np.array([0.5, 0.8])},
                       tmp_path / "arrays.png")  # arrays: a bare "truth value ... ambiguous"
    np.testing.assert_allclose(curves(data_axes(drawn[-1])[1])["training"][1], [0.5, 0.8])


def test_plot_misclassified_reads_labels_as_the_metrics_do(tmp_path, drawn):
    """A column of class numbers was arg-maxed (every label 0: 'no misclassified examples'), and
    1-D probabilities truncated to class 0; class names fewer than the classes were an IndexError."""
    images = np.random.default_rng(0).random((4, 28, 28))
    plots.plot_misclassified(images, np.array([[0], [1], [0], [1]]), np.array([[1], [1], [0], [0]]),
                             ["zero", "one"], tmp_path / "m.png")
    titles = [ax.get_title() for ax in drawn[-1].axes if ax.get_title()]
    assert titles == ["zero\n-> one", "one\n-> zero"]
    with pytest.raises(ValueError, match="y_pred must hold integer class labels, got 0.2"):
        plots.plot_misclassified(images, [0, 1, 0, 1], [0.2, 0.9, 0.7, 0.1], ["a", "b"],
                                 tmp_path / "p.png")
    with pytest.raises(ValueError, match=r"y_true has label 2 at index 3, outside \[0, 1\]"):
        plots.plot_misclassified(images, [0, 1, 0, 2], [0, 1, 0, 1], ["a", "b"], tmp_path / "n.png")
    plots.plot_misclassified(images, [0, 1, 0, 1], [1, 1, 0, 0], {0: "zero", 1: "one"},
                             tmp_path / "d.png")
    assert [ax.get_title() for ax in drawn[-1].axes if ax.get_title()][0] == "zero\n-> one"


def test_plot_confusion_matrix_of_fractions_has_no_accuracy_and_starts_at_zero(tmp_path, drawn):
    """A row-normalised matrix was titled 'accuracy 70.00% of 2' (the counts give 86.4%), its
    colour bar 'number of examples', and its smallest cell drawn white as if it were 0."""
    cm = np.array([[90, 10], [5, 5]])
    plots.plot_confusion_matrix(cm / cm.sum(axis=1, keepdims=True), ["a", "b"], tmp_path / "f.png")
    ax = data_axes(drawn[-1])[0]
    assert "accuracy" not in ax.get_title() and "fractions" in ax.get_title()
    assert ax.images[0].get_clim()[0] == 0
    assert ax.images[0].colorbar.ax.get_ylabel() == "fraction"
    assert sorted(t.get_text() for t in ax.texts) == ["0.10", "0.50", "0.50", "0.90"]
    plots.plot_confusion_matrix(cm.astype(float), None, tmp_path / "c.png")  # counts as floats
    ax = data_axes(drawn[-1])[0]
    assert ax.get_title() == "accuracy 86.36% of 110"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1"]


def test_plot_histories_and_an_edited_history_place_values_at_their_epochs(tmp_path, drawn):
    """plot_histories drew validation_freq's values at epochs 1, 2; a History whose lists were
    joined with another run's stopped on matplotlib's 'x and y must have same first dimension'."""
    model = Sequential([Input((4,)), Dense(3, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy")
    r = np.random.default_rng(0)
    x, y = r.random((40, 4)), np.eye(3)[r.integers(0, 3, 40)]
    h = model.fit(x, y, epochs=4, validation_split=0.25, validation_freq=2, verbose=0)
    plots.plot_histories({"run": h}, tmp_path / "v.png", key="val_loss")
    np.testing.assert_array_equal(curves(data_axes(drawn[-1])[0])["run"][0], [2, 4])
    later = model.fit(x, y, epochs=6, initial_epoch=4, verbose=0)
    for key in later.history:
        later.history[key] = h.history["loss"] + later.history[key]  # two runs joined by hand
    plots.plot_history(later, tmp_path / "joined.png")
    np.testing.assert_array_equal(curves(data_axes(drawn[-1])[0])["training"][0], [1, 2, 3, 4, 5, 6])


def test_plot_confusion_matrix_of_zeros_and_ones_as_floats_is_fractions(tmp_path, drawn):
    """A perfect classifier's row-normalised matrix holds only 0 and 1: not counts."""
    plots.plot_confusion_matrix(np.eye(2), ["a", "b"], tmp_path / "eye.png")
    ax = data_axes(drawn[-1])[0]
    assert "fractions" in ax.get_title() and "1.00" in [t.get_text() for t in ax.texts]


def test_plot_confusion_matrix_tells_counts_fractions_and_other_values_apart(tmp_path, drawn):
    for cm, title in ((np.array([[1.0, 1.0], [0.0, 1.0]]), "accuracy 66.67% of 3"),
                      (np.array([[0.5, 0.5], [0.25, 0.75]]), "fractions"),
                      (np.array([[0.9, 0.1], [np.nan, np.nan]]), "fractions"),  # a class never seen
                      (np.array([[5.0, np.nan], [1.0, 3.0]]), "values")):
        plots.plot_confusion_matrix(cm, ["a", "b"], tmp_path / "cm.png")
        assert data_axes(drawn[-1])[0].get_title() == title


def test_an_integer_count_matrix_is_counts_and_rounded_fractions_are_fractions(tmp_path, drawn):
    plots.plot_confusion_matrix(np.array([[1, 0], [0, 1]]), ["a", "b"], tmp_path / "i.png")
    assert data_axes(drawn[-1])[0].get_title() == "accuracy 100.00% of 2"
    plots.plot_confusion_matrix(np.array([[0.33, 0.66], [0.5, 0.49]]), ["a", "b"], tmp_path / "r.png")
    assert data_axes(drawn[-1])[0].get_title() == "fractions"


def test_a_picture_is_saved_in_the_format_its_name_asks_for(tmp_path):
    signatures = {"p.png": b"\x89PNG", "p.pdf": b"%PDF", "p.svg": b"<?xml", "p.gif": b"GIF8",
                  "lr_0.001": b"\x89PNG",
                  "no_extension": b"\x89PNG", "cnn.digits": b"\x89PNG"}
    for name, start in signatures.items():
        path = plots.plot_history(history(), tmp_path / name)
        assert path == tmp_path / name and path.read_bytes().startswith(start), name
    for name in ("mlp.raw", "h.rgba", "h.pgf"):  # matplotlib writes them, but not as pictures
        with pytest.raises(ValueError, match=rf"cannot save a picture as {name}: "):
            plots.plot_history(history(), tmp_path / name)


def test_plot_history_finds_an_accuracy_logged_under_the_name_it_was_given(tmp_path, drawn):
    from tinynet import metrics as metrics_mod
    model = Sequential([Input((4,)), Dense(3, activation="softmax")])
    model.compile("rmsprop", "sparse_categorical_crossentropy",
                  metrics=[metrics_mod.SparseCategoricalAccuracy(name="acc_test")])
    x = np.random.default_rng(0).normal(size=(40, 4))
    h = model.fit(x, np.arange(40) % 3, epochs=3, validation_split=0.25, verbose=0)
    plots.plot_history(h, tmp_path / "named.png")
    _, acc_ax = data_axes(drawn[-1])
    lines = curves(acc_ax)
    np.testing.assert_array_equal(lines["training"][1], h.history["acc_test"])
    np.testing.assert_array_equal(lines["validation"][1], h.history["val_acc_test"])
