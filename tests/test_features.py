"""Tests of tinynet.features: HOG equal to skimage.feature.hog image by image, hand-computed
cases, argument validation and the on-disk cache."""

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

skimage_feature = pytest.importorskip("skimage.feature")

from tinynet import datasets, features  # noqa: E402
from tinynet.features import hog_feature_length, hog_features, hog_image  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ENGINES = ["numba", "numpy"] if features._HAVE_NUMBA else ["numpy"]
PARAMS = [  # (orientations, pixels_per_cell, cells_per_block)
    (8, (4, 4), (1, 1)),  # the report's setting: 392 features
    (8, (7, 7), (1, 1)),
    (8, (2, 2), (1, 1)),
    (9, (8, 8), (2, 2)),  # leftover pixels (28 = 3 * 8 + 4) and overlapping blocks
]


def skimage_hog(images, orientations, ppc, cpb):
    return np.stack(
        [
            skimage_feature.hog(im, orientations, ppc, cpb, block_norm="L2-Hys", feature_vector=True)
            for im in images
        ]
    )


@pytest.fixture(scope="module")
def real_images():
    """300 MNIST and 200 Fashion-MNIST images (fixed random choice), or skip."""
    root = Path(os.environ.get("TINYNET_DATA") or DEFAULT_DATA)
    try:
        (x, _), (xt, _) = datasets.load_mnist(root, download=False)
        (fx, _), _ = datasets.load_fashion_mnist(root, download=False)
    except FileNotFoundError as exc:
        pytest.skip(f"real MNIST / Fashion-MNIST not available in {root} (set TINYNET_DATA): {exc}")
    rng = np.random.default_rng(42)
    return np.concatenate(
        [x[rng.choice(len(x), 200, replace=False)], xt[:100], fx[rng.choice(len(fx), 200, replace=False)]]
    )


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Keep the default cache location (user cache dir) inside the test's tmp dir."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


# --------------------------------------------------------------------------------------------
# Agreement with skimage
# --------------------------------------------------------------------------------------------


def test_report_setting_has_392_features(real_images):
    f = hog_features(real_images[:10], cache=False, progress=False)
    assert f.shape == (10, 392) and f.dtype == np.float32
    assert hog_feature_length((28, 28)) == 392
    assert hog_feature_length((28, 28), 9, (8, 8), (2, 2)) == 2 * 2 * 2 * 2 * 9


@pytest.mark.parametrize("orientations,ppc,cpb", PARAMS)
def test_matches_skimage_on_real_images(real_images, orientations, ppc, cpb):
    expected = skimage_hog(real_images, orientations, ppc, cpb)
    got = hog_features(real_images, orientations, ppc, cpb, cache=False, progress=False)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    assert np.abs(got).max() > 0.2  # not trivially zero


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("orientations,ppc,cpb", PARAMS + [(7, (5, 3), (2, 3)), (6, (1, 1), (1, 1))])
def test_every_engine_matches_skimage(real_images, engine, orientations, ppc, cpb):
    """numba's uint8 lookup-table kernel, numba's float kernel and the NumPy path all agree."""
    images = real_images[::5]
    expected = skimage_hog(images, orientations, ppc, cpb)
    for batch in (images, images.astype(np.float64)):
        got = features._compute(batch, orientations, ppc, cpb, progress=False, engine=engine)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_float32_and_bool_and_channel_inputs_match_skimage(real_images):
    images = real_images[:40]
    as_float32 = images.astype(np.float32) / 255  # skimage takes gradients in float32 here
    np.testing.assert_allclose(
        hog_features(as_float32, cache=False, progress=False), skimage_hog(as_float32, 8, (4, 4), (1, 1)), atol=1e-6
    )
    as_bool = images > 127
    np.testing.assert_allclose(
        hog_features(as_bool, cache=False, progress=False), skimage_hog(as_bool, 8, (4, 4), (1, 1)), atol=1e-6
    )
    np.testing.assert_array_equal(
        hog_features(images[..., None], cache=False, progress=False), hog_features(images, cache=False, progress=False)
    )


@pytest.mark.parametrize("orientations,ppc,cpb", [(7, (5, 3), (2, 3)), (12, (6, 4), (3, 2)), (1, (4, 4), (1, 1))])
def test_matches_skimage_on_odd_shapes(orientations, ppc, cpb):
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(30, 23, 31), dtype=np.uint8)
    got = hog_features(images, orientations, ppc, cpb, cache=False, progress=False)
    np.testing.assert_allclose(got, skimage_hog(images, orientations, ppc, cpb), rtol=0, atol=1e-6)


def test_larger_than_one_chunk(monkeypatch, real_images):
    monkeypatch.setattr(features, "_CHUNK", 64)  # several chunks, the last one partial
    images = real_images[:150]
    got = hog_features(images, cache=False, progress=True)
    np.testing.assert_allclose(got, skimage_hog(images, 8, (4, 4), (1, 1)), atol=1e-6)


def test_hog_image_is_skimages_visualisation(real_images):
    picture = hog_image(real_images[0])
    _, expected = skimage_feature.hog(real_images[0], 8, (4, 4), (1, 1), visualize=True)
    assert picture.shape == (28, 28)
    np.testing.assert_array_equal(picture, expected)
    np.testing.assert_array_equal(hog_image(real_images[0][..., None]), expected)


# --------------------------------------------------------------------------------------------
# Hand-computed cases (orientation convention, binning, normalisation)
# --------------------------------------------------------------------------------------------


def _single(image, orientations=4, ppc=(8, 8), cpb=(1, 1), engine=None):
    return features._compute(np.asarray(image)[None], orientations, ppc, cpb, progress=False, engine=engine)[0]


@pytest.mark.parametrize("engine", ENGINES)
def test_hand_computed_edges(engine):
    # 4 bins: [0, 45), [45, 90), [90, 135), [135, 180) degrees of arctan2(g_row, g_col)
    vertical = np.zeros((8, 8), np.uint8)
    vertical[:, 4:] = 100  # g_col = 100 at columns 3 and 4 of every row: theta = 0 -> bin 0
    np.testing.assert_allclose(_single(vertical, engine=engine), [1, 0, 0, 0], atol=1e-12)
    horizontal = vertical.T.copy()  # g_row = 100: theta = 90 degrees -> bin 2
    np.testing.assert_allclose(_single(horizontal, engine=engine), [0, 0, 1, 0], atol=1e-12)
    falling = vertical[:, ::-1].copy()  # g_col = -100: theta = 180 mod 180 = 0 -> bin 0 (unsigned)
    np.testing.assert_allclose(_single(falling, engine=engine), [1, 0, 0, 0], atol=1e-12)
    # flat image: no gradient, so 0 / sqrt(0 + eps^2) = 0 everywhere
    np.testing.assert_array_equal(_single(np.full((8, 8), 77, np.uint8), engine=engine), np.zeros(4))


@pytest.mark.parametrize("engine", ENGINES)
def test_two_cells_in_one_block(engine):
    # Two 8x8 cells side by side in one (1, 2) block; left: vertical edge of 16 pixels x 100
    # (bin 0 = 1600), right: flat. Block vector (1600, 0, 0, 0 | 0, 0, 0, 0) -> e_0.
    image = np.zeros((8, 16), np.uint8)
    image[:, 3] = 100  # a thin line: g_col = +100 at col 2, -100 at col 4 (both theta 0)
    expected = np.zeros(8)
    expected[0] = 1.0
    np.testing.assert_allclose(_single(image, cpb=(1, 2), engine=engine), expected, atol=1e-12)
    # with (1, 1) blocks each cell is normalised on its own: left e_0, right all zero
    np.testing.assert_allclose(_single(image, cpb=(1, 1), engine=engine), expected, atol=1e-12)


def test_l2hys_clipping_by_hand():
    # v = (2, 0, 1, 0) / sqrt(5) = (0.894, 0, 0.447, 0) -> clip at 0.2 -> (0.2, 0, 0.2, 0)
    # -> renormalise -> (1/sqrt 2, 0, 1/sqrt 2, 0)
    hist = np.array([2.0, 0.0, 1.0, 0.0], np.float32).reshape(1, 1, 1, 4)
    r = 1 / np.sqrt(2)
    np.testing.assert_allclose(features._normalize_numpy(hist, (1, 1), (1, 1))[0], [r, 0, r, 0], atol=1e-7)
    # 30 equal bins: each 1/sqrt(30) = 0.18 < 0.2, so nothing is clipped
    flat = np.ones((1, 1, 1, 30), np.float32)
    np.testing.assert_allclose(features._normalize_numpy(flat, (1, 1), (1, 1))[0], np.full(30, 30**-0.5), atol=1e-7)
    if features._HAVE_NUMBA:
        out = np.empty(4, np.float32)
        features._l2hys_numba(hist[0], 1, 1, out)
        np.testing.assert_allclose(out, [r, 0, r, 0], atol=1e-7)


def test_bin_edges_are_single_precision():
    # skimage compares angles with float32 edges: 180/7 = 25.714285714285715 becomes 25.714285...(float32)
    edges = features._bin_edges(7)
    assert edges[1] == float(np.float32(180 / 7)) and edges[1] != 180 / 7
    assert edges[0] == 0 and edges[-1] == 180 and len(edges) == 8


def test_leftover_pixels_are_ignored():
    # 10x10 with 4x4 cells: cells cover rows/cols 0-7; row 7's gradient reads row 8, not row 9
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (1, 10, 10), dtype=np.uint8)
    base = hog_features(image, cache=False, progress=False)
    changed = image.copy()
    changed[0, 9, :] = 255 - changed[0, 9, :]
    np.testing.assert_array_equal(hog_features(changed, cache=False, progress=False), base)
    changed[0, 8, :] = 255 - changed[0, 8, :]
    assert not np.array_equal(hog_features(changed, cache=False, progress=False), base)


def test_empty_stack():
    out = hog_features(np.zeros((0, 28, 28), np.uint8), cache=False, progress=False)
    assert out.shape == (0, 392) and out.dtype == np.float32


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"orientations": 0}, "orientations"),
        ({"orientations": 2.5}, "orientations"),
        ({"orientations": True}, "orientations"),
        ({"pixels_per_cell": (4, 0)}, "pixels_per_cell"),
        ({"pixels_per_cell": (4, 4, 4)}, "pixels_per_cell"),
        ({"pixels_per_cell": "44"}, "pixels_per_cell"),
        ({"cells_per_block": (-1, 1)}, "cells_per_block"),
        ({"pixels_per_cell": (29, 4)}, r"too small.*29x4"),
        ({"pixels_per_cell": (8, 8), "cells_per_block": (4, 1)}, r"at least 32x8"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        hog_features(np.zeros((2, 28, 28), np.uint8), cache=False, **kwargs)


def test_bad_images():
    with pytest.raises(ValueError, match=r"\(N, H, W\).*\(28, 28\).*images\[None\]"):
        hog_features(np.zeros((28, 28), np.uint8), cache=False)
    with pytest.raises(ValueError, match=r"\(2, 28, 28, 3\)"):
        hog_features(np.zeros((2, 28, 28, 3), np.uint8), cache=False)
    with pytest.raises(ValueError, match="NaN"):
        hog_features(np.full((2, 28, 28), np.nan), cache=False)
    with pytest.raises(TypeError, match="numeric"):
        hog_features(np.zeros((2, 28, 28), dtype=object), cache=False)
    with pytest.raises(ValueError, match="one image"):
        hog_image(np.zeros((2, 28, 28)))


def test_int_pixels_per_cell_is_square():
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    np.testing.assert_array_equal(
        hog_features(images, 8, 4, 1, cache=False), hog_features(images, 8, (4, 4), (1, 1), cache=False)
    )


# --------------------------------------------------------------------------------------------
# Disk cache
# --------------------------------------------------------------------------------------------


@pytest.fixture
def stack():
    n = features._MIN_CACHE_IMAGES
    return np.random.default_rng(7).integers(0, 256, (n, 12, 12), dtype=np.uint8)


def _files(directory):
    return sorted(p.name for p in Path(directory).iterdir()) if Path(directory).exists() else []


def test_cache_round_trip(tmp_path, stack, monkeypatch):
    first = hog_features(stack, cache=tmp_path, progress=False)
    files = _files(tmp_path)
    assert len(files) == 1 and files[0].endswith(".npy") and files[0].startswith("hog_o8_p4x4_c1x1_n1000_")
    np.testing.assert_array_equal(np.load(tmp_path / files[0]), first)

    def fail(*args, **kwargs):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(features, "_compute", fail)
    second = hog_features(stack, cache=tmp_path, progress=False)
    np.testing.assert_array_equal(second, first)
    assert second.dtype == np.float32
    monkeypatch.undo()

    # other parameters, or other pixels, are other entries
    hog_features(stack, 9, (4, 4), (2, 2), cache=tmp_path, progress=False)
    changed = stack.copy()
    changed[500, 5, 5] ^= 1
    third = hog_features(changed, cache=tmp_path, progress=False)
    assert len(_files(tmp_path)) == 3
    assert not np.array_equal(third[500], first[500])
    np.testing.assert_array_equal(third[:500], first[:500])


def test_default_cache_location_is_user_cache_dir(tmp_path, stack, monkeypatch):
    monkeypatch.setenv("TINYNET_DATA", str(tmp_path / "shared-data"))  # never written into
    hog_features(stack, progress=False)
    assert len(_files(tmp_path / "xdg" / "tinynet" / "features")) == 1
    assert not (tmp_path / "shared-data").exists()
    assert features.features_cache_dir(False) is None


def test_small_stacks_and_cache_false_write_nothing(tmp_path, stack):
    hog_features(stack[: features._MIN_CACHE_IMAGES - 1], cache=tmp_path, progress=False)
    hog_features(stack, cache=False, progress=False)
    assert _files(tmp_path) == []


def test_corrupt_cache_file_is_recomputed_and_replaced(tmp_path, stack):
    expected = hog_features(stack, cache=False, progress=False)
    hog_features(stack, cache=tmp_path, progress=False)
    (path,) = list(tmp_path.iterdir())
    path.write_bytes(path.read_bytes()[:100])  # truncated
    with pytest.warns(UserWarning, match="ignoring unreadable HOG cache"):
        again = hog_features(stack, cache=tmp_path, progress=False)
    np.testing.assert_array_equal(again, expected)
    np.testing.assert_array_equal(np.load(path), expected)  # rewritten whole
    assert _files(tmp_path) == [path.name]  # and no temporary file left


def test_failed_cache_write_leaves_no_temporary_file(tmp_path, stack, monkeypatch):
    def broken_save(fh, array, allow_pickle=False):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(features.np, "save", broken_save)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = hog_features(stack, cache=tmp_path, progress=False)
    assert any("could not write the HOG cache" in str(w.message) for w in caught)
    assert out.shape == (len(stack), 72)
    assert _files(tmp_path) == []
