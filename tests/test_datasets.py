"""Tests of tinynet.datasets: IDX parsing, data directory, checksums, (mocked) downloads, real data.

No test touches the network: downloads go through ``datasets._fetch``, replaced here by fakes.
The real-data tests read the project's shared copy (``$TINYNET_DATA``, else ``../shared/data``
from the repository root) and are skipped when it is absent.
"""

import gzip
import hashlib
import os
import shutil
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinynet import datasets
from tinynet.datasets import FASHION_CLASSES, load_fashion_mnist, load_mnist, read_idx, write_idx

NAMES = datasets.MNIST_FILES
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def real_data_dir() -> Path:
    return Path(os.environ.get("TINYNET_DATA") or DEFAULT_DATA)


def _require_real(dataset):
    root = real_data_dir()
    missing = [n for n in NAMES if not (root / dataset / f"{n}.gz").is_file()]
    if missing:
        pytest.skip(f"real {dataset} data not found in {root / dataset} (set TINYNET_DATA); missing {missing}")
    return root


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if anything tries to download."""

    def fetch(url, dest):  # pragma: no cover - only runs on a bug
        raise AssertionError(f"unexpected download of {url}")

    monkeypatch.setattr(datasets, "_fetch", fetch)


# --------------------------------------------------------------------------------------------
# IDX format
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("shape", [(7,), (3, 28, 28), (2, 3, 4, 5)])
def test_idx_round_trip(tmp_path, suffix, shape):
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, size=shape, dtype=np.uint8)
    path = tmp_path / f"file-idx{suffix}"
    write_idx(path, array)
    raw = path.read_bytes()
    if suffix == ".gz":
        assert raw[:2] == b"\x1f\x8b"
        raw = gzip.decompress(raw)
    # header: 0 0 8 ndim, then big-endian sizes, then the bytes in C order
    assert raw[:4] == bytes([0, 0, 8, len(shape)])
    assert [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(len(shape))] == list(shape)
    assert len(raw) == 4 + 4 * len(shape) + array.size
    for source in (path, str(path), path.read_bytes()):
        back = read_idx(source)
        assert back.dtype == np.uint8 and back.shape == shape
        np.testing.assert_array_equal(back, array)


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.integers(0, 6), min_size=1, max_size=4), seed=st.integers(0, 2**32 - 1))
def test_idx_round_trip_property(shape, seed):
    array = np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)
    data = gzip.compress(bytes([0, 0, 8, len(shape)]) + np.array(shape, ">u4").tobytes() + array.tobytes())
    back = read_idx(data)
    assert back.shape == tuple(shape)
    np.testing.assert_array_equal(back, array)


def test_read_idx_detects_gzip_by_content_not_name(tmp_path):
    array = np.arange(10, dtype=np.uint8)
    path = tmp_path / "labels.gz"
    write_idx(path, array)
    renamed = tmp_path / "labels-without-suffix"
    path.rename(renamed)
    np.testing.assert_array_equal(read_idx(renamed), array)


def _write_raw(tmp_path, data: bytes, name="bad-idx3-ubyte"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _image_bytes(n=2, h=28, w=28):
    return bytes([0, 0, 8, 3]) + np.array([n, h, w], ">u4").tobytes() + bytes(n * h * w)


def test_corrupted_magic_names_file(tmp_path):
    data = bytearray(_image_bytes())
    data[0] = 0x12
    path = _write_raw(tmp_path, bytes(data))
    with pytest.raises(ValueError, match="magic") as info:
        read_idx(path)
    assert str(path) in str(info.value) and "0x00000803" in str(info.value)


def test_wrong_element_type_names_file(tmp_path):
    data = bytearray(_image_bytes())
    data[2] = 0x0D  # float32 IDX: not what MNIST uses
    path = _write_raw(tmp_path, bytes(data))
    with pytest.raises(ValueError, match=r"0x0d.*expected 0x08") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_truncated_file_names_file_and_sizes(tmp_path):
    path = _write_raw(tmp_path, _image_bytes()[:-1])
    with pytest.raises(ValueError, match="truncated") as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message and "(2, 28, 28)" in message
    assert str(16 + 2 * 28 * 28) in message and str(16 + 2 * 28 * 28 - 1) in message


def test_trailing_bytes_rejected(tmp_path):
    path = _write_raw(tmp_path, _image_bytes() + b"\x00")
    with pytest.raises(ValueError, match="trailing") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_wrong_dims_in_header(tmp_path):
    # header claims 28x27 images but the payload is 2 full 28x28 images
    data = bytes([0, 0, 8, 3]) + np.array([2, 28, 27], ">u4").tobytes() + bytes(2 * 28 * 28)
    path = _write_raw(tmp_path, data)
    with pytest.raises(ValueError, match=r"\(2, 28, 27\)") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_truncated_header_and_zero_dims(tmp_path):
    with pytest.raises(ValueError, match="header"):
        read_idx(_write_raw(tmp_path, bytes([0, 0, 8, 3, 0, 0]), "short"))
    with pytest.raises(ValueError, match="0 dimensions"):
        read_idx(_write_raw(tmp_path, bytes([0, 0, 8, 0]), "nodims"))
    with pytest.raises(ValueError, match="too short"):
        read_idx(b"\x00\x00", name="tiny")


def test_truncated_gzip_names_file(tmp_path):
    path = tmp_path / "images.gz"
    write_idx(path, np.zeros((5, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_write_idx_rejects_non_uint8(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.int16))
    with pytest.raises(ValueError, match="dimensions"):
        write_idx(tmp_path / "x", np.uint8(3))


# --------------------------------------------------------------------------------------------
# Data directory resolution
# --------------------------------------------------------------------------------------------


def test_data_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("TINYNET_DATA", str(tmp_path / "env"))
    assert datasets.resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert datasets.resolve_data_dir() == tmp_path / "env"
    monkeypatch.delenv("TINYNET_DATA")
    assert datasets.resolve_data_dir() == tmp_path / "xdg" / "tinynet"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert datasets.resolve_data_dir() == tmp_path / "home" / ".cache" / "tinynet"


def test_loader_uses_env_variable(tmp_path, monkeypatch, fake_mnist):
    root, arrays = fake_mnist
    monkeypatch.setenv("TINYNET_DATA", str(root))
    (x, y), (xt, yt) = load_mnist(download=False)
    np.testing.assert_array_equal(x, arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(yt, arrays["t10k-labels-idx1-ubyte"])


# --------------------------------------------------------------------------------------------
# A small fake "mnist" whose checksums are patched into the module: exercises the loader's
# checks and the download logic without the real files.
# --------------------------------------------------------------------------------------------


def _fake_arrays(seed=0, n_train=5, n_test=3):
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }


def _idx_bytes(array) -> bytes:
    return bytes([0, 0, 8, array.ndim]) + np.array(array.shape, ">u4").tobytes() + array.tobytes()


@pytest.fixture
def fake_server(monkeypatch):
    """Patch 'mnist' to a fake data set: returns (arrays, gz bytes per name, fetch log)."""
    arrays = _fake_arrays()
    payloads = {name: gzip.compress(_idx_bytes(a)) for name, a in arrays.items()}
    monkeypatch.setitem(
        datasets._SHA256, "mnist", {n: hashlib.sha256(_idx_bytes(a)).hexdigest() for n, a in arrays.items()}
    )
    mirrors = ("https://m1.example/", "https://m2.example/", "https://m3.example/")
    monkeypatch.setitem(datasets._MIRRORS, "mnist", mirrors)
    return arrays, payloads


@pytest.fixture
def fake_mnist(tmp_path, fake_server, no_network):
    """A data directory holding the fake MNIST files."""
    arrays, payloads = fake_server
    root = tmp_path / "data"
    (root / "mnist").mkdir(parents=True)
    for name, gz in payloads.items():
        (root / "mnist" / f"{name}.gz").write_bytes(gz)
    return root, arrays


def _all_files(directory: Path):
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*")) if directory.exists() else []


def test_fake_dataset_loads_and_copies_are_independent(fake_mnist):
    root, arrays = fake_mnist
    (x, y), (xt, yt) = load_mnist(root)
    assert x.shape == (5, 28, 28) and y.shape == (5,) and xt.shape == (3, 28, 28) and yt.shape == (3,)
    assert x.dtype == y.dtype == np.uint8
    np.testing.assert_array_equal(x, arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(y, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(xt, arrays["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(yt, arrays["t10k-labels-idx1-ubyte"])
    # writable, like keras.datasets, and modifying the result changes no later load
    x[:] = 0
    (x2, _), _ = load_mnist(root)
    np.testing.assert_array_equal(x2, arrays["train-images-idx3-ubyte"])


def test_uncompressed_files_accepted(fake_mnist):
    root, arrays = fake_mnist
    path = root / "mnist" / "t10k-labels-idx1-ubyte.gz"
    path.with_suffix("").write_bytes(gzip.decompress(path.read_bytes()))
    path.unlink()
    _, (_, yt) = load_mnist(root)
    np.testing.assert_array_equal(yt, arrays["t10k-labels-idx1-ubyte"])


def test_existing_file_with_wrong_checksum_is_an_error(fake_mnist):
    root, arrays = fake_mnist
    bad = arrays["train-labels-idx1-ubyte"].copy()
    bad[0] = (bad[0] + 1) % 10
    path = root / "mnist" / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(_idx_bytes(bad)))
    with pytest.raises(ValueError, match="SHA-256") as info:
        load_mnist(root)
    message = str(info.value)
    assert str(path) in message
    assert datasets._SHA256["mnist"]["train-labels-idx1-ubyte"] in message
    assert hashlib.sha256(_idx_bytes(bad)).hexdigest() in message


def test_label_count_mismatch_names_labels_file(fake_mnist, monkeypatch):
    root, arrays = fake_mnist
    labels = np.zeros(4, np.uint8)  # 4 labels for 5 images
    (root / "mnist" / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(labels)))
    sha = hashlib.sha256(_idx_bytes(labels)).hexdigest()
    monkeypatch.setitem(datasets._SHA256["mnist"], "train-labels-idx1-ubyte", sha)
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte.*\(5,\).*\(4,\)"):
        load_mnist(root)


def test_wrong_image_size_names_images_file(fake_mnist, monkeypatch):
    root, _ = fake_mnist
    images = np.zeros((5, 28, 27), np.uint8)
    (root / "mnist" / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(images)))
    sha = hashlib.sha256(_idx_bytes(images)).hexdigest()
    monkeypatch.setitem(datasets._SHA256["mnist"], "t10k-images-idx3-ubyte", sha)
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.*\(n, 28, 28\).*\(5, 28, 27\)"):
        load_mnist(root)


def test_label_out_of_range_names_labels_file(fake_mnist, monkeypatch):
    root, _ = fake_mnist
    labels = np.array([0, 1, 2, 10, 3], np.uint8)
    (root / "mnist" / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(labels)))
    sha = hashlib.sha256(_idx_bytes(labels)).hexdigest()
    monkeypatch.setitem(datasets._SHA256["mnist"], "train-labels-idx1-ubyte", sha)
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte.*0-9, found 10"):
        load_mnist(root)


def test_missing_files_without_download_lists_them(tmp_path, fake_server, no_network):
    root = tmp_path / "empty"
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(root, download=False)
    message = str(info.value)
    for name in NAMES:
        assert str(root / "mnist" / f"{name}.gz") in message
    assert "TINYNET_DATA" in message
    assert not root.exists()


def test_download_fills_missing_files_atomically(tmp_path, fake_server, monkeypatch):
    arrays, payloads = fake_server
    root = tmp_path / "cache"
    (root / "mnist").mkdir(parents=True)
    # one file already there: only the other three are fetched
    (root / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(payloads["t10k-labels-idx1-ubyte"])
    fetched = []

    def fetch(url, dest):
        fetched.append(url)
        assert Path(dest).parent == root / "mnist"  # temporary file in the target dir
        assert not Path(dest).name.endswith(".gz")  # never written under the final name
        Path(dest).write_bytes(payloads[url.rsplit("/", 1)[1][: -len(".gz")]])

    monkeypatch.setattr(datasets, "_fetch", fetch)
    (x, y), (xt, yt) = load_mnist(root)
    assert fetched == [f"https://m1.example/{n}.gz" for n in NAMES[:3]]
    np.testing.assert_array_equal(x, arrays["train-images-idx3-ubyte"])
    assert _all_files(root / "mnist") == sorted(f"{n}.gz" for n in NAMES)
    # a second load finds everything locally
    fetched.clear()
    load_mnist(root)
    assert fetched == []


def test_mirror_fallback_after_network_error_and_bad_checksum(tmp_path, fake_server, monkeypatch):
    arrays, payloads = fake_server
    root = tmp_path / "cache"
    attempts = []

    def fetch(url, dest):
        attempts.append(url.split("/")[2])
        name = url.rsplit("/", 1)[1][: -len(".gz")]
        if url.startswith("https://m1."):
            raise urllib.error.HTTPError(url, 503, "unavailable", None, None)
        if url.startswith("https://m2."):
            Path(dest).write_bytes(gzip.compress(b"not the right file"))
            return
        Path(dest).write_bytes(payloads[name])

    monkeypatch.setattr(datasets, "_fetch", fetch)
    (x, y), _ = load_mnist(root)
    np.testing.assert_array_equal(y, arrays["train-labels-idx1-ubyte"])
    assert attempts == ["m1.example", "m2.example", "m3.example"] * 4
    assert _all_files(root / "mnist") == sorted(f"{n}.gz" for n in NAMES)


def test_checksum_failure_leaves_nothing_behind(tmp_path, fake_server, monkeypatch):
    root = tmp_path / "cache"

    def fetch(url, dest):
        Path(dest).write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07"))  # valid IDX, wrong data

    monkeypatch.setattr(datasets, "_fetch", fetch)
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(root)
    message = str(info.value)
    assert "SHA-256 mismatch" in message
    assert datasets._SHA256["mnist"]["train-images-idx3-ubyte"] in message
    assert hashlib.sha256(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07").hexdigest() in message
    assert _all_files(root) == []  # no final file, no temporary file, no leftover directory


def test_checksum_failure_keeps_existing_directory_clean(tmp_path, fake_server, monkeypatch):
    root = tmp_path / "cache"
    (root / "mnist").mkdir(parents=True)
    (root / "mnist" / "notes.txt").write_text("user file")
    monkeypatch.setattr(datasets, "_fetch", lambda url, dest: Path(dest).write_bytes(b"garbage"))
    with pytest.raises(FileNotFoundError):
        load_mnist(root)
    assert _all_files(root / "mnist") == ["notes.txt"]


def test_interrupted_download_removes_partial_file(tmp_path, fake_server, monkeypatch):
    root = tmp_path / "cache"

    def fetch(url, dest):
        Path(dest).write_bytes(b"\x1f\x8b partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(datasets, "_fetch", fetch)
    with pytest.raises(KeyboardInterrupt):
        load_mnist(root)
    assert _all_files(root) == []


def test_no_network_error_lists_missing_files_and_directory(tmp_path, fake_server, monkeypatch):
    root = tmp_path / "offline"
    calls = []

    def fetch(url, dest):
        calls.append(url)
        raise urllib.error.URLError(OSError(-2, "Name or service not known"))

    monkeypatch.setattr(datasets, "_fetch", fetch)
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(root)
    message = str(info.value)
    assert f"in {root / 'mnist'}" in message
    for name in NAMES:
        assert str(root / "mnist" / f"{name}.gz") in message
    assert "Name or service not known" in message
    # with no mirror reachable at all, only the first file's mirrors are tried
    assert len(calls) == 3
    assert _all_files(root) == []
    # a mistyped data folder: the folders made for the download are taken away again, all of
    # them (only the data set's own was; the ones above it stayed behind), not those there before
    typo = tmp_path / "not_there" / "data"
    with pytest.raises(FileNotFoundError):
        load_mnist(typo)
    assert not (tmp_path / "not_there").exists() and tmp_path.exists()


def test_fashion_found_in_debian_system_dir(tmp_path, monkeypatch, no_network):
    arrays = _fake_arrays(seed=1)
    system = tmp_path / "usr-share-datasets-fashion-mnist"
    system.mkdir()
    for name, a in arrays.items():
        write_idx(system / f"{name}.gz", a)
    monkeypatch.setitem(datasets._SYSTEM_DIRS, "fashion-mnist", (system,))
    monkeypatch.setitem(
        datasets._SHA256, "fashion-mnist", {n: hashlib.sha256(_idx_bytes(a)).hexdigest() for n, a in arrays.items()}
    )
    (x, y), (xt, yt) = load_fashion_mnist(tmp_path / "empty-data-dir")
    np.testing.assert_array_equal(x, arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(yt, arrays["t10k-labels-idx1-ubyte"])


def test_real_fetch_function_with_file_url(tmp_path):
    """The real _fetch (urllib) against a file:// URL: copies the bytes exactly."""
    source = tmp_path / "src.bin"
    payload = os.urandom(200_000)
    source.write_bytes(payload)
    dest = tmp_path / "dest.part"
    datasets._fetch(source.as_uri(), dest)
    assert dest.read_bytes() == payload


def test_default_mirrors_are_https_or_known():
    for dataset, mirrors in datasets._MIRRORS.items():
        assert len(mirrors) >= 2, dataset  # fallbacks exist
        assert all(m.endswith("/") for m in mirrors)
    assert any("ossci-datasets" in m for m in datasets._MIRRORS["mnist"])
    assert any("cvdf-datasets/mnist" in m for m in datasets._MIRRORS["mnist"])
    assert any("zalandoresearch/fashion-mnist" in m for m in datasets._MIRRORS["fashion-mnist"])


def test_fashion_classes():
    assert FASHION_CLASSES == [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]


# --------------------------------------------------------------------------------------------
# The real data
# --------------------------------------------------------------------------------------------

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_real_mnist(no_network):
    root = _require_real("mnist")
    (x, y), (xt, yt) = load_mnist(root)
    assert x.shape == (60000, 28, 28) and y.shape == (60000,)
    assert xt.shape == (10000, 28, 28) and yt.shape == (10000,)
    assert x.dtype == y.dtype == xt.dtype == yt.dtype == np.uint8
    assert np.bincount(y, minlength=10).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(yt, minlength=10).tolist() == MNIST_TEST_COUNTS
    assert x.min() == 0 and x.max() == 255
    assert int(x.sum(dtype=np.int64)) == 1567298545 and int(xt.sum(dtype=np.int64)) == 264923200
    assert y[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]  # the famous first digits
    assert yt[:5].tolist() == [7, 2, 1, 0, 4]


def test_real_fashion_mnist(no_network):
    root = _require_real("fashion-mnist")
    (x, y), (xt, yt) = load_fashion_mnist(root)
    assert x.shape == (60000, 28, 28) and xt.shape == (10000, 28, 28)
    assert x.dtype == y.dtype == np.uint8
    assert np.bincount(y, minlength=10).tolist() == [6000] * 10
    assert np.bincount(yt, minlength=10).tolist() == [1000] * 10
    assert int(x.sum(dtype=np.int64)) == 3431114169 and int(xt.sum(dtype=np.int64)) == 573469082
    assert FASHION_CLASSES[y[0]] == "Ankle boot" and FASHION_CLASSES[yt[0]] == "Ankle boot"


def test_real_mnist_via_mocked_download(tmp_path, monkeypatch):
    """Download path with the real checksums: the fake mirror serves the shared files."""
    source = _require_real("mnist") / "mnist"
    fetched = []

    def fetch(url, dest):
        fetched.append(url)
        shutil.copyfile(source / url.rsplit("/", 1)[1], dest)

    monkeypatch.setattr(datasets, "_fetch", fetch)
    root = tmp_path / "cache"
    (x, y), _ = load_mnist(root)
    assert len(fetched) == 4 and fetched[0].startswith(datasets._MIRRORS["mnist"][0])
    assert np.bincount(y, minlength=10).tolist() == MNIST_TRAIN_COUNTS
    assert _all_files(root / "mnist") == sorted(f"{n}.gz" for n in NAMES)
    for name in NAMES:
        assert (root / "mnist" / f"{name}.gz").read_bytes() == (source / f"{name}.gz").read_bytes()


def test_nothing_is_kept_in_memory_once_the_arrays_are_dropped(tmp_path):
    """A script converts the uint8 images to floats and drops them; the loader must not keep
    its own copy for the rest of the process (an in-memory cache held MNIST's 55 MB of pixels,
    which put the CNN's peak memory over issue 13's 450 MB)."""
    import tracemalloc
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (2000, 28, 28), dtype=np.uint8),
              "train-labels-idx1-ubyte": rng.integers(0, 10, 2000, dtype=np.uint8),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (500, 28, 28), dtype=np.uint8),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, 500, dtype=np.uint8)}
    (root / "mnist").mkdir(parents=True)
    for name, a in arrays.items():
        (root / "mnist" / f"{name}.gz").write_bytes(gzip.compress(_idx_bytes(a)))
    hashes = {name: hashlib.sha256(_idx_bytes(a)).hexdigest() for name, a in arrays.items()}
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(datasets._SHA256, "mnist", hashes)
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            (x, y), (xt, yt) = load_mnist(root, download=False)
            np.testing.assert_array_equal(x, arrays["train-images-idx3-ubyte"])
            held = tracemalloc.get_traced_memory()[0] - before
            del x, y, xt, yt
            left = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    pixels = 2500 * 28 * 28
    assert held >= pixels  # what the caller holds is traced
    assert left < pixels // 10  # and gone with it
