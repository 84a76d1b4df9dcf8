"""MNIST and Fashion-MNIST loaders: IDX parsing, data directory, checksums, download.

The two data sets are distributed as four gzip-compressed files in the *IDX* format
(http://yann.lecun.com/exdb/mnist/), a tiny binary format for n-dimensional arrays::

    offset  size        content
    0       2 bytes     0x00 0x00
    2       1 byte      element type; 0x08 = unsigned byte (the only one used here)
    3       1 byte      number of dimensions d (3 for images, 1 for labels)
    4       4*d bytes   the d sizes, big-endian unsigned 32-bit integers
    4+4d    ...         the elements, C order (last index fastest), one byte each

So ``train-images-idx3-ubyte`` starts ``00 00 08 03 | 00 00 ea 60 | 00 00 00 1c | 00 00 00 1c``:
60000 images of 28 x 28 pixels, and must be exactly 16 + 60000 * 28 * 28 bytes long.

``load_mnist()`` and ``load_fashion_mnist()`` return, like ``keras.datasets``,
``(x_train, y_train), (x_test, y_test)`` as uint8 arrays of shapes (60000, 28, 28), (60000,),
(10000, 28, 28) and (10000,).

Where the files are looked for (the first that applies):

1. the ``data_dir`` argument,
2. the ``TINYNET_DATA`` environment variable,
3. a user cache directory: ``$XDG_CACHE_HOME/tinynet`` or ``~/.cache/tinynet``.

Inside it, MNIST lives in ``mnist/<name>.gz`` and Fashion-MNIST in ``fashion-mnist/<name>.gz``
(an uncompressed ``<name>`` is accepted too). For Fashion-MNIST, Debian's
``/usr/share/datasets/fashion-mnist`` (package ``dataset-fashion-mnist``) is also searched.

Every file is checked against the SHA-256 of its *uncompressed* contents (gzip headers differ
between mirrors; the contents do not). Missing files are downloaded from public mirrors, tried in
order, into a temporary file in the target directory, verified, then renamed into place, so an
interrupted or corrupted download never leaves a half-written file behind.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np

__all__ = [
    "FASHION_CLASSES",
    "DownloadError",
    "MNIST_FILES",
    "load_mnist",
    "load_fashion_mnist",
    "read_idx",
    "write_idx",
    "resolve_data_dir",
    "user_cache_dir",
]

#: The ten Fashion-MNIST classes, indexed by label.
FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]

#: The four file names shared by both data sets (without the ``.gz`` suffix).
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

# SHA-256 of the *uncompressed* files (see shared/data/README.md; verified against the
# files' widely quoted MD5 sums).
_SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}

# Public mirrors, tried in order; each base URL + "<name>.gz" is a file.
_MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",  # the original home; plain HTTP (checksums guard integrity)
    ),
    "fashion-mnist": (
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    ),
}

# Extra read-only places searched for a data set's files (after the data directory).
_SYSTEM_DIRS = {
    "mnist": (),
    "fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),),
}

_IMAGE_SHAPE = (28, 28)
_NUM_CLASSES = 10
_UBYTE = 0x08
_TIMEOUT_S = 30


class DataNotFoundError(FileNotFoundError):
    """A data set's files are neither in the data folder nor downloadable: the message says
    where to put them."""


class DownloadError(OSError):
    """No mirror delivered a verified copy of a file.

    ``unreachable`` is true when every attempt failed before any HTTP answer (no network),
    in which case trying the remaining files is pointless.
    """

    def __init__(self, message: str, unreachable: bool = False):
        super().__init__(message)
        self.unreachable = unreachable


# --------------------------------------------------------------------------------------------
# IDX format
# --------------------------------------------------------------------------------------------


def _maybe_gunzip(data: bytes, name: str) -> bytes:
    """Decompress ``data`` if it starts with the gzip magic ``1f 8b``; otherwise return it."""
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{name}: corrupt or truncated gzip data ({exc})") from exc


def read_idx(path_or_bytes, name: str | None = None) -> np.ndarray:
    """Parse an IDX file of unsigned bytes into a read-only ``uint8`` array.

    ``path_or_bytes`` is a path (``str`` / ``os.PathLike``) or the file's contents (``bytes``,
    ``bytearray``, ``memoryview``); gzip-compressed data is recognised by its magic bytes and
    decompressed, whatever the file is called. ``name`` is used in error messages (default: the
    path, or ``"<bytes>"``).

    The header is checked strictly: two zero bytes, element type 0x08 (unsigned byte), at least
    one dimension, and a total length of exactly ``4 + 4 * ndim + prod(dims)`` bytes. Any
    violation raises ``ValueError`` naming the file and what was expected.
    The pixels are not copied: the array is a view on the decompressed bytes (``np.frombuffer``).
    """
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data = bytes(path_or_bytes)
        name = name or "<bytes>"
    else:
        name = name or str(path_or_bytes)
        with open(path_or_bytes, "rb") as fh:
            data = fh.read()
    data = _maybe_gunzip(data, name)

    if len(data) < 4:
        raise ValueError(f"{name}: too short for an IDX header ({len(data)} bytes, expected at least 4)")
    zero0, zero1, dtype_code, ndim = data[0], data[1], data[2], data[3]
    if zero0 != 0 or zero1 != 0:
        raise ValueError(
            f"{name}: bad IDX magic number 0x{data[:4].hex()}: expected 0x0000080N "
            f"(0x00000803 for images, 0x00000801 for labels)"
        )
    if dtype_code != _UBYTE:
        raise ValueError(
            f"{name}: IDX element type 0x{dtype_code:02x} is not supported: expected 0x08 (unsigned byte)"
        )
    if ndim == 0:
        raise ValueError(f"{name}: IDX header declares 0 dimensions: expected at least 1")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise ValueError(
            f"{name}: truncated IDX header: {ndim} dimensions need {header_len} header bytes, "
            f"the file has {len(data)}"
        )
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    # in Python's integers: dimensions up to 2**32 - 1 overflow int64 (a negative length)
    expected_len = header_len + math.prod(dims)
    if len(data) != expected_len:
        what = "truncated" if len(data) < expected_len else "has trailing bytes"
        raise ValueError(
            f"{name}: IDX file {what}: header declares shape {dims}, so expected "
            f"{expected_len} bytes, got {len(data)}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(dims)


def write_idx(path, array) -> None:
    """Write a ``uint8`` array as an IDX file (gzip-compressed if ``path`` ends in ``.gz``).

    The inverse of :func:`read_idx`; mainly for tests and for building small fixtures.
    Raises ``ValueError`` for arrays that are not uint8 or have 0 or more than 255 dimensions.
    """
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"write_idx: only uint8 arrays can be written, got dtype {array.dtype}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"write_idx: array must have 1 to 255 dimensions, got {array.ndim}")
    if any(d >= 2**32 for d in array.shape):
        raise ValueError(f"write_idx: every dimension must be < 2**32, got shape {array.shape}")
    header = bytes([0, 0, _UBYTE, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(array).tobytes()
    path = Path(path)
    if path.suffix == ".gz":
        payload = gzip.compress(payload, compresslevel=6)
    path.write_bytes(payload)


# --------------------------------------------------------------------------------------------
# Data directory
# --------------------------------------------------------------------------------------------


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/tinynet`` if ``XDG_CACHE_HOME`` is set, else ``~/.cache/tinynet``."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "tinynet"


def resolve_data_dir(data_dir=None) -> Path:
    """The data directory: ``data_dir`` if given, else ``$TINYNET_DATA``, else :func:`user_cache_dir`.

    The path is made absolute (``~`` expanded) but need not exist yet.
    """
    if data_dir is None:
        data_dir = os.environ.get("TINYNET_DATA") or None
    if data_dir is None:
        return user_cache_dir().absolute()
    return Path(data_dir).expanduser().absolute()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _find_file(dataset: str, name: str, root: Path) -> Path | None:
    """First existing ``<dir>/<name>.gz`` or ``<dir>/<name>`` in the data dir, then system dirs."""
    for directory in (root / dataset, *_SYSTEM_DIRS[dataset]):
        for candidate in (directory / f"{name}.gz", directory / name):
            if candidate.is_file():
                return candidate
    return None


def _fetch(url: str, dest) -> None:
    """Download ``url`` into the file ``dest`` (overwritten), with a tqdm progress bar.

    This is the only function that touches the network; tests replace it with a fake.
    Raises ``OSError`` (``urllib.error.URLError`` is one) on any network failure.
    """
    from .sysinfo import progress_bar
    tqdm = progress_bar()

    request = urllib.request.Request(url, headers={"User-Agent": "tinynet (python urllib)"})
    with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response, open(dest, "wb") as out:
        total = response.headers.get("Content-Length")
        total = int(total) if total and total.isdigit() else None
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=url.rsplit("/", 1)[-1],
                  leave=False) as bar:
            while True:
                chunk = response.read(1 << 16)
                if not chunk:
                    break
                out.write(chunk)
                bar.update(len(chunk))


def _download(dataset: str, name: str, target_dir: Path) -> Path:
    """Fetch ``<name>.gz`` from the mirrors into ``target_dir``, verified, atomically.

    Each mirror is tried in turn: the bytes go to a temporary file in ``target_dir``; when its
    uncompressed contents have the expected SHA-256 it is renamed to ``<name>.gz`` (an atomic
    ``os.replace`` on the same file system), otherwise it is deleted and the next mirror tried.
    Returns the final path; raises :class:`DownloadError` listing every attempt when all fail.
    """
    expected = _SHA256[dataset][name]
    final = target_dir / f"{name}.gz"
    # the folders mkdir creates, the data's own first (a mistyped TINYNET_DATA created them all)
    created = [d for d in (target_dir, *target_dir.parents) if not d.exists()]
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create the data directory {target_dir}: {exc}") from exc
    if not os.access(target_dir, os.W_OK):
        raise DownloadError(f"the data directory {target_dir} is not writable")
    failures = []
    unreachable = True  # stays true while no mirror has answered at all
    try:
        for base in _MIRRORS[dataset]:
            url = base + f"{name}.gz"
            fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=target_dir)
            os.close(fd)
            tmp = Path(tmp_name)
            try:  # whatever happens (even KeyboardInterrupt), the temporary file goes away
                try:
                    _fetch(url, tmp)
                    data = _maybe_gunzip(tmp.read_bytes(), url)
                except (OSError, ValueError) as exc:
                    failures.append(f"{url}: {exc}")
                    no_answer = isinstance(exc, (urllib.error.URLError, TimeoutError)) and not isinstance(
                        exc, urllib.error.HTTPError
                    )
                    unreachable = unreachable and no_answer
                    continue
                unreachable = False
                actual = _sha256(data)
                if actual != expected:
                    failures.append(f"{url}: SHA-256 mismatch (expected {expected}, got {actual})")
                    continue
                os.replace(tmp, final)
                return final
            finally:
                tmp.unlink(missing_ok=True)
    finally:
        for made in created:  # leave the file system as we found it (rmdir fails if a file landed)
            try:
                made.rmdir()
            except OSError:
                break
    raise DownloadError(
        f"could not download {dataset}/{name}.gz from any mirror:\n  " + "\n  ".join(failures),
        unreachable=unreachable,
    )


def _read_verified(dataset: str, name: str, path: Path) -> np.ndarray:
    """Read ``path``, check the SHA-256 of its uncompressed contents, parse it as IDX."""
    data = _maybe_gunzip(path.read_bytes(), str(path))
    expected = _SHA256[dataset][name]
    actual = _sha256(data)
    if actual != expected:
        raise ValueError(
            f"{path}: SHA-256 of the uncompressed contents does not match: expected {expected}, "
            f"got {actual}. The file is corrupt or not the official {dataset} {name}; delete it "
            f"to have it downloaded again."
        )
    return read_idx(data, name=str(path))


def _read_dataset(dataset: str, root: str, download: bool):
    """Locate (downloading what is missing), verify and decode one data set.

    Not cached in memory: decoding MNIST takes about 0.3 s, and a cache would hold its 55 MB of
    pixels for the rest of the process (besides the caller's float copy), as Keras does not."""
    root_path = Path(root)
    target_dir = root_path / dataset
    paths = {name: _find_file(dataset, name, root_path) for name in MNIST_FILES}
    missing = [name for name, p in paths.items() if p is None]
    if missing:
        errors = []
        if download:
            for name in missing:
                try:
                    paths[name] = _download(dataset, name, target_dir)
                except OSError as exc:
                    errors.append(str(exc))
                    if getattr(exc, "unreachable", False):
                        errors.append("(no mirror could be reached: network unavailable? "
                                      "the remaining files were not tried)")
                        break
        still_missing = [name for name in MNIST_FILES if paths[name] is None]
        if still_missing:
            files = "\n".join(f"  {target_dir / (n + '.gz')}" for n in still_missing)
            reason = ("downloading failed:\n" + "\n".join(errors)) if download else "download=False"
            raise DataNotFoundError(
                f"{dataset}: missing data files and {reason}\n"
                f"Put these files (gzip-compressed IDX, from {_MIRRORS[dataset][0]}) in {target_dir}:\n"
                f"{files}\n"
                f"or point the TINYNET_DATA environment variable (or the data_dir argument) at a "
                f"directory that has {dataset}/<name>.gz."
            )

    arrays = {name: _read_verified(dataset, name, path) for name, path in paths.items()}
    out = []
    for split in ("train", "t10k"):
        images_name, labels_name = f"{split}-images-idx3-ubyte", f"{split}-labels-idx1-ubyte"
        x, y = arrays[images_name], arrays[labels_name]
        if x.ndim != 3 or x.shape[1:] != _IMAGE_SHAPE:
            raise ValueError(f"{paths[images_name]}: expected images of shape (n, 28, 28), got {x.shape}")
        if y.ndim != 1 or len(y) != len(x):
            raise ValueError(
                f"{paths[labels_name]}: expected labels of shape ({len(x)},) to match "
                f"{paths[images_name]}, got {y.shape}"
            )
        if len(y) and int(y.max()) >= _NUM_CLASSES:
            raise ValueError(f"{paths[labels_name]}: labels must be 0-9, found {int(y.max())}")
        out.append((x, y))
    return tuple(out)


def _load(dataset: str, data_dir, download: bool):
    where = "load_mnist" if dataset == "mnist" else "load_fashion_mnist"
    if data_dir is not None:
        try:
            os.fspath(data_dir)
        except TypeError:
            raise TypeError(f"{where}: data_dir must be a folder's path (a str or a pathlib.Path), "
                            f"got {data_dir!r} ({type(data_dir).__name__})") from None
    root = resolve_data_dir(data_dir)
    if root.exists() and not root.is_dir():
        given = (f"data_dir={str(data_dir)!r}" if data_dir is not None else
                 f"the environment variable TINYNET_DATA={os.environ.get('TINYNET_DATA')!r}")
        raise NotADirectoryError(
            f"{where}: {given} is a file, not a folder: the data directory is the folder that "
            f"holds (or will hold) {dataset}/<name>.gz; give that folder, e.g. "
            f"{str(root.parent)!r}, or leave data_dir out for the cache folder"
        )
    (x_train, y_train), (x_test, y_test) = _read_dataset(dataset, str(root), bool(download))
    # writable arrays of their own, as keras.datasets gives (read_idx's are read-only views of
    # the decompressed bytes, which are freed with them)
    return (x_train.copy(), y_train.copy()), (x_test.copy(), y_test.copy())


def load_mnist(data_dir=None, download: bool = True):
    """Load MNIST handwritten digits: ``(x_train, y_train), (x_test, y_test)``.

    ``x_*`` are ``uint8`` arrays of shape ``(n, 28, 28)`` with pixel values 0-255 (0 is the
    background), ``y_*`` are ``uint8`` labels 0-9; n is 60000 for training and 10000 for test.
    ``data_dir`` overrides ``$TINYNET_DATA`` and the user cache dir (see the module docstring);
    files missing there are downloaded unless ``download=False``. Each call reads the files again
    (about 0.3 s) and returns fresh arrays: nothing is kept in memory once the caller drops them.
    """
    return _load("mnist", data_dir, download)


def load_fashion_mnist(data_dir=None, download: bool = True):
    """Load Zalando's Fashion-MNIST: ``(x_train, y_train), (x_test, y_test)``.

    Same shapes and dtypes as :func:`load_mnist`; label ``k`` is the garment
    ``FASHION_CLASSES[k]``. Besides the data directory, Debian's
    ``/usr/share/datasets/fashion-mnist`` is searched.
    """
    return _load("fashion-mnist", data_dir, download)


class _KerasDataset:
    """``tinynet.datasets.mnist.load_data()``: a loader under Keras's name, with Keras's return."""

    def __init__(self, loader, name):
        self._loader, self._name = loader, name

    def load_data(self, path=None):
        """``(x_train, y_train), (x_test, y_test)`` as uint8 arrays, like ``keras.datasets``.

        Keras's ``path`` names its cache file; tinynet's files are found by the rule of
        :func:`resolve_data_dir` (``TINYNET_DATA``, else the user cache), so ``path`` is ignored.
        """
        return self._loader()

    def __repr__(self):
        return f"<tinynet.datasets.{self._name}: load_data() -> (x_train, y_train), (x_test, y_test)>"


mnist = _KerasDataset(load_mnist, "mnist")
fashion_mnist = _KerasDataset(load_fashion_mnist, "fashion_mnist")


def __getattr__(name):
    from .names import missing
    raise missing("tinynet.datasets", name, "data set", ['mnist', 'fashion_mnist', 'load_mnist', 'load_fashion_mnist'])
