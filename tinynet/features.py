"""Histogram of Oriented Gradients (HOG) features for whole stacks of images, cached on disk.

``hog_features(images)`` returns one row per image, equal (to float32 precision) to
``skimage.feature.hog(image, orientations, pixels_per_cell, cells_per_block,
block_norm="L2-Hys", feature_vector=True)`` called image by image, but computed for the whole
stack at once: all 70,000 MNIST images in about 0.2 s on a 2-core machine where skimage takes
about 22 s (``benchmarks/bench_hog.py``), and a few hundredths of a second the second time
thanks to an on-disk cache.

The algorithm (Dalal & Triggs 2005, as scikit-image implements it)
----------------------------------------------------------------
For an image ``I`` of ``H x W`` pixels:

1. **Gradients** by centred differences, zero on the border rows / columns::

       g_row[r, c] = I[r + 1, c] - I[r - 1, c]      (0 for r = 0 and r = H - 1)
       g_col[r, c] = I[r, c + 1] - I[r, c - 1]      (0 for c = 0 and c = W - 1)

   (computed in float64 for integer images, float32 for float32 / float16 images, like skimage).

2. **Magnitude and unsigned orientation** of each pixel's gradient::

       m = hypot(g_col, g_row)
       theta = degrees(arctan2(g_row, g_col)) mod 180        in [0, 180)

3. **Cell histograms.** The image is cut into ``H // ppc_r`` by ``W // ppc_c`` cells (leftover
   rows / columns at the bottom / right are ignored). With ``n`` orientation bins, bin ``i``
   covers ``edge[i] <= theta < edge[i + 1]``, ``edge[k] = float32(180 / n * k)`` (skimage keeps the
   edges in single precision), and a cell's bin ``i`` is the *sum* of the magnitudes of its
   pixels whose angle falls in the bin: hard binning, no interpolation between bins or cells.
   One detail of skimage's implementation is reproduced exactly: the sum is accumulated in
   single precision (a C ``float``), pixel by pixel in row-major order within the cell, each
   partial sum rounded to float32.

4. **Block normalisation (L2-Hys).** Blocks of ``cpb_r x cpb_c`` cells slide over the cell grid
   with a stride of one cell. Each block's concatenated histograms ``v`` are normalised as::

       v = v / sqrt(||v||^2 + eps^2)          eps = 1e-5
       v = minimum(v, 0.2)                    clip ("hysteresis")
       v = v / sqrt(||v||^2 + eps^2)          renormalise

5. The feature vector is the normalised blocks in the order
   ``(block_row, block_col, cell_row_in_block, cell_col_in_block, orientation)``, flattened:
   ``n_blocks_r * n_blocks_c * cpb_r * cpb_c * n`` numbers. With the report's setting
   (8 orientations, 4x4-pixel cells, 1x1-cell blocks) a 28x28 image gives 7 * 7 * 8 = 392.

Steps 1-2 use NumPy on whole chunks of images with exactly skimage's expressions, so the
transcendental functions (``hypot``, ``arctan2``) round identically and every pixel lands in
the same bin. For uint8 images (MNIST) a gradient component can only be an integer in
[-255, 255], so those expressions are evaluated once on all 511 x 511 possible pairs and a numba
kernel, parallel over images, does steps 1-4 with table look-ups. Other dtypes go through NumPy
for steps 1-2 and a numba kernel for 3-4; without numba, vectorised NumPy does everything.
All paths give the same bits; against skimage the difference is float32 rounding: < 6e-8
for uint8 images, up to about 3e-7 for float images (pixels / 255, measured on 300 MNIST
digits; skimage computes those in float64).

Note that the defaults here are the report's (8, (4, 4), (1, 1)), not skimage's
(9, (8, 8), (3, 3)). Only ``block_norm="L2-Hys"`` without ``transform_sqrt`` is implemented.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np

from .io import write_atomic
from .shapes import pair

try:  # numba is optional: without it the (slower) vectorised NumPy path is used
    import numba

    _HAVE_NUMBA = True
except ImportError:  # pragma: no cover - numba is installed in the project's environments
    numba = None
    _HAVE_NUMBA = False

__all__ = ["hog_features", "hog_image", "hog_feature_length", "features_cache_dir"]

_EPS = 1e-5  # skimage's epsilon in _hog_normalize_block
_EPS2 = _EPS**2  # as skimage writes it: eps**2 (1.0000000000000002e-10)
_CLIP = 0.2  # L2-Hys clipping threshold
_CHUNK = 4096  # images per chunk: keeps the float64 temporaries (~25 MB each) in cache-friendly sizes
_MIN_CACHE_IMAGES = 1000  # smaller stacks are computed in milliseconds; not worth a file
_CACHE_VERSION = "hog-v1"  # bump when the numbers produced change


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _check_params(orientations, pixels_per_cell, cells_per_block):
    if (
        isinstance(orientations, (bool, np.bool_))
        or not isinstance(orientations, (int, np.integer))
        or orientations < 1
    ):
        raise ValueError(f"orientations must be a positive integer, got {orientations!r}")
    return (int(orientations), pair(pixels_per_cell, "pixels_per_cell", "hog_features"),
            pair(cells_per_block, "cells_per_block", "hog_features"))


def _grid(height: int, width: int, ppc, cpb):
    """Cells and blocks along each axis; ``ValueError`` when not even one block fits."""
    n_cells = (height // ppc[0], width // ppc[1])
    n_blocks = (n_cells[0] - cpb[0] + 1, n_cells[1] - cpb[1] + 1)
    if n_blocks[0] < 1 or n_blocks[1] < 1:
        raise ValueError(
            f"images of {height}x{width} pixels are too small for pixels_per_cell={ppc} and "
            f"cells_per_block={cpb}: a block needs at least {cpb[0] * ppc[0]}x{cpb[1] * ppc[1]} pixels"
        )
    return n_cells, n_blocks


def _as_stack(images) -> np.ndarray:
    """Validate and return images as an (N, H, W) array (a view when possible)."""
    images = np.asarray(images)
    if images.dtype.kind not in "biuf":
        raise TypeError(f"images must be a numeric array (bool, integer or float), got dtype {images.dtype}")
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3:
        hint = " (for a single image use images[None] or hog_image)" if images.ndim == 2 else ""
        raise ValueError(f"images must have shape (N, H, W) or (N, H, W, 1), got {images.shape}{hint}")
    if images.dtype.kind == "f" and not np.isfinite(images).all():
        raise ValueError("images contain NaN or infinite values")
    return images


def hog_feature_length(image_shape, orientations=8, pixels_per_cell=(4, 4), cells_per_block=(1, 1)) -> int:
    """Number of HOG features for one image of shape ``(H, W)`` (392 for MNIST with the defaults)."""
    orientations, ppc, cpb = _check_params(orientations, pixels_per_cell, cells_per_block)
    height, width = image_shape[:2]
    _, n_blocks = _grid(height, width, ppc, cpb)
    return n_blocks[0] * n_blocks[1] * cpb[0] * cpb[1] * orientations


# --------------------------------------------------------------------------------------------
# Steps 1-2: gradients, magnitude, orientation (NumPy, skimage's exact expressions)
# --------------------------------------------------------------------------------------------


def _bin_edges(orientations: int) -> np.ndarray:
    """Bin edges ``float32(180 / n * k)``, k = 0..n, as float64 (skimage stores them as C floats)."""
    return ((180.0 / orientations) * np.arange(orientations + 1, dtype=np.float64)).astype(np.float32).astype(
        np.float64
    )


def _magnitude_orientation(chunk: np.ndarray):
    """Gradient magnitude and unsigned orientation in degrees [0, 180) of a (n, H, W) chunk.

    The gradient is taken in skimage's working precision (float32 for float16/float32 images,
    float64 otherwise), then promoted to float64 like skimage does before ``hypot``/``arctan2``.
    """
    work = np.float32 if chunk.dtype in (np.float16, np.float32) else np.float64
    x = chunk.astype(work, copy=False)
    g_row = np.zeros(x.shape, dtype=work)
    g_col = np.zeros(x.shape, dtype=work)
    np.subtract(x[:, 2:, :], x[:, :-2, :], out=g_row[:, 1:-1, :])
    np.subtract(x[:, :, 2:], x[:, :, :-2], out=g_col[:, :, 1:-1])
    g_row = g_row.astype(np.float64, copy=False)
    g_col = g_col.astype(np.float64, copy=False)
    magnitude = np.hypot(g_col, g_row)
    # Same operations, in the same order, as skimage: arctan2(...) * (180 / pi) % 180.
    orientation = np.arctan2(g_row, g_col)
    orientation *= 180 / np.pi
    np.remainder(orientation, 180, out=orientation)
    return magnitude, orientation


# --------------------------------------------------------------------------------------------
# Steps 3-4: cell histograms and L2-Hys block normalisation
# --------------------------------------------------------------------------------------------


def _histograms_numpy(magnitude, orientation, edges, ppc, n_cells):
    """Cell histograms (n, cells_r, cells_c, bins), float32-accumulated like skimage, in NumPy.

    Loops over the pixel offsets inside a cell (row-major, as skimage does) and handles all cells
    of all images at once; adding 0 for a pixel outside a bin leaves a float32 sum unchanged, so
    the one-hot product reproduces skimage's skip-and-accumulate exactly.
    """
    n_bins = len(edges) - 1
    (pr, pc), (ncr, ncc) = ppc, n_cells
    bins = np.searchsorted(edges, orientation, side="right") - 1  # edges[b] <= theta < edges[b+1]
    hist = np.zeros((magnitude.shape[0], ncr, ncc, n_bins), dtype=np.float32)
    ids = np.arange(n_bins)
    for dr in range(pr):  # pixel offsets inside a cell, row-major as in skimage
        for dc in range(pc):
            m = magnitude[:, dr : dr + ncr * pr : pr, dc : dc + ncc * pc : pc]
            b = bins[:, dr : dr + ncr * pr : pr, dc : dc + ncc * pc : pc]
            contribution = np.where(b[..., None] == ids, m[..., None], 0.0)
            hist = (hist + contribution).astype(np.float32)  # float64 add, float32 round: C's float +=
    return hist


def _normalize_numpy(hist, cpb, n_blocks):
    """L2-Hys normalisation of every block of every image; returns (n, features) float32."""
    n = hist.shape[0]
    h = hist.astype(np.float64)
    # blocks[i, br, bc, :, :, :] = h[i, br:br+cpb_r, bc:bc+cpb_c, :]
    blocks = np.lib.stride_tricks.sliding_window_view(h, cpb, axis=(1, 2))  # (n, nbr, nbc, bins, cr, cc)
    blocks = blocks.transpose(0, 1, 2, 4, 5, 3)  # (n, nbr, nbc, cr, cc, bins)
    axes = (3, 4, 5)
    out = blocks / np.sqrt(np.sum(blocks**2, axis=axes, keepdims=True) + _EPS**2)
    out = np.minimum(out, _CLIP)
    out = out / np.sqrt(np.sum(out**2, axis=axes, keepdims=True) + _EPS**2)
    return out.reshape(n, -1).astype(np.float32)


def _uint8_lookup_tables(edges):
    """Magnitude and bin of every possible gradient of a uint8 image, computed once by NumPy.

    A uint8 image's centred differences are integers in [-255, 255], so there are only
    511 * 511 possible ``(g_row, g_col)`` pairs. Evaluating skimage's expressions on all of them
    (with the same NumPy ufuncs) gives bit-identical magnitudes and bins to computing them pixel
    by pixel, and the kernel then only reads bytes and looks values up. Index:
    ``(g_row + 255) * 511 + (g_col + 255)``; bin ``n_bins`` means "in no bin" (theta rounded to 180).
    """
    g = np.arange(-255, 256, dtype=np.float64)
    g_row, g_col = np.meshgrid(g, g, indexing="ij")
    magnitude = np.hypot(g_col, g_row)
    orientation = np.arctan2(g_row, g_col) * (180 / np.pi) % 180
    bins = np.searchsorted(edges, orientation, side="right") - 1
    return magnitude.ravel(), bins.astype(np.int32).ravel()


if _HAVE_NUMBA:

    @numba.njit(cache=True, inline="always")
    def _find_bin(theta, edges, n_bins):  # pragma: no cover - compiled
        """Index b with edges[b] <= theta < edges[b + 1], or n_bins if there is none."""
        b = min(max(int(theta * (n_bins / 180.0)), 0), n_bins - 1)  # first guess, then exact
        while b > 0 and theta < edges[b]:
            b -= 1
        while b < n_bins and theta >= edges[b + 1]:
            b += 1
        if b < n_bins and not theta >= edges[b]:
            b = n_bins
        return b

    @numba.njit(cache=True)
    def _l2hys_numba(hist, br, bc, out_row):  # pragma: no cover - compiled
        """Step 4 for one image: L2-Hys-normalise every block of ``hist`` into ``out_row``."""
        ncr, ncc, n_bins = hist.shape
        block = np.empty((br, bc, n_bins), dtype=np.float64)
        k = 0
        for r0 in range(ncr - br + 1):
            for c0 in range(ncc - bc + 1):
                ss = 0.0
                for u in range(br):
                    for v in range(bc):
                        for o in range(n_bins):
                            x = np.float64(hist[r0 + u, c0 + v, o])
                            block[u, v, o] = x
                            ss += x * x
                norm = np.sqrt(ss + _EPS2)
                ss = 0.0
                for u in range(br):
                    for v in range(bc):
                        for o in range(n_bins):
                            x = min(block[u, v, o] / norm, _CLIP)
                            block[u, v, o] = x
                            ss += x * x
                norm = np.sqrt(ss + _EPS2)
                for u in range(br):
                    for v in range(bc):
                        for o in range(n_bins):
                            out_row[k] = block[u, v, o] / norm
                            k += 1

    @numba.njit(parallel=True, cache=True)
    def _hog_numba(magnitude, orientation, edges, pr, pc, ncr, ncc, br, bc, out):  # pragma: no cover
        """Steps 3-4 from precomputed magnitudes / orientations, in parallel over images.

        Per-bin float32 running sums over each cell's pixels in row-major order (the float64
        sum is rounded to float32 when stored, exactly C's ``float += double``), then L2-Hys.
        """
        n_bins = edges.shape[0] - 1
        for i in numba.prange(magnitude.shape[0]):
            hist = np.zeros((ncr, ncc, n_bins), dtype=np.float32)
            for cr in range(ncr):
                for cc in range(ncc):
                    for dr in range(pr):
                        r = cr * pr + dr
                        for dc in range(pc):
                            c = cc * pc + dc
                            b = _find_bin(orientation[i, r, c], edges, n_bins)
                            if b < n_bins:
                                hist[cr, cc, b] = hist[cr, cc, b] + magnitude[i, r, c]
            _l2hys_numba(hist, br, bc, out[i])

    @numba.njit(parallel=True, cache=True)
    def _hog_uint8_numba(images, lut_magnitude, lut_bin, n_bins, pr, pc, ncr, ncc, br, bc, out):  # pragma: no cover
        """Steps 1-4 for uint8 images, gradients looked up in :func:`_uint8_lookup_tables`."""
        height, width = images.shape[1], images.shape[2]
        for i in numba.prange(images.shape[0]):
            hist = np.zeros((ncr, ncc, n_bins), dtype=np.float32)
            for cr in range(ncr):
                for cc in range(ncc):
                    for dr in range(pr):
                        r = cr * pr + dr
                        for dc in range(pc):
                            c = cc * pc + dc
                            g_row = 0
                            if 0 < r < height - 1:
                                g_row = np.int32(images[i, r + 1, c]) - np.int32(images[i, r - 1, c])
                            g_col = 0
                            if 0 < c < width - 1:
                                g_col = np.int32(images[i, r, c + 1]) - np.int32(images[i, r, c - 1])
                            idx = (g_row + 255) * 511 + (g_col + 255)
                            b = lut_bin[idx]
                            if b < n_bins:
                                hist[cr, cc, b] = hist[cr, cc, b] + lut_magnitude[idx]
            _l2hys_numba(hist, br, bc, out[i])


def _hog_chunk(chunk, orientations, ppc, cpb, engine, lut=None):
    """HOG rows (float32) of one (n, H, W) chunk.

    ``engine`` is "numba" (fused kernel; ``lut`` from :func:`_uint8_lookup_tables` for uint8
    chunks) or "numpy" (vectorised reference path).
    """
    n_cells, n_blocks = _grid(chunk.shape[1], chunk.shape[2], ppc, cpb)
    edges = _bin_edges(orientations)
    n_features = n_blocks[0] * n_blocks[1] * cpb[0] * cpb[1] * orientations
    geometry = (ppc[0], ppc[1], n_cells[0], n_cells[1], cpb[0], cpb[1])
    if engine == "numba" and lut is not None:
        out = np.empty((chunk.shape[0], n_features), dtype=np.float32)
        _hog_uint8_numba(np.ascontiguousarray(chunk), lut[0], lut[1], orientations, *geometry, out)
        return out
    magnitude, orientation = _magnitude_orientation(chunk)
    if engine == "numba":
        out = np.empty((chunk.shape[0], n_features), dtype=np.float32)
        _hog_numba(magnitude, orientation, edges, *geometry, out)
        return out
    hist = _histograms_numpy(magnitude, orientation, edges, ppc, n_cells)
    return _normalize_numpy(hist, cpb, n_blocks)


def _compute(images, orientations, ppc, cpb, progress, engine=None):
    """HOG of a validated (N, H, W) stack, chunk by chunk with an optional tqdm bar."""
    engine = engine or ("numba" if _HAVE_NUMBA else "numpy")
    if engine not in ("numba", "numpy"):
        raise ValueError(f"engine must be 'numba' or 'numpy', got {engine!r}")
    if engine == "numba" and not _HAVE_NUMBA:
        raise ValueError("engine='numba' requested but numba is not installed")
    n = images.shape[0]
    n_features = hog_feature_length(images.shape[1:], orientations, ppc, cpb)
    out = np.empty((n, n_features), dtype=np.float32)
    if images.dtype == np.bool_:
        images = images.view(np.uint8)  # same values 0/1, same gradients
    lut = None
    if engine == "numba" and images.dtype == np.uint8:
        lut = _uint8_lookup_tables(_bin_edges(orientations))
    starts = range(0, n, _CHUNK)
    if progress and n > _CHUNK:
        from .sysinfo import progress_bar

        bar = progress_bar()(total=n, unit="img", desc="HOG features", leave=False)
    else:
        bar = None
    try:
        for s in starts:
            chunk = images[s : s + _CHUNK]
            out[s : s + len(chunk)] = _hog_chunk(chunk, orientations, ppc, cpb, engine, lut)
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    return out


# --------------------------------------------------------------------------------------------
# Disk cache
# --------------------------------------------------------------------------------------------


def _writable_dir(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK)


def features_cache_dir(cache=True) -> Path | None:
    """Directory for cached features, or ``None`` when caching is off / impossible.

    ``cache`` is ``True`` (the default location), ``False``/``None`` (no cache) or a path.
    The default location is ``<user cache dir>/features``, i.e. ``$XDG_CACHE_HOME/tinynet/features``
    or ``~/.cache/tinynet/features`` -- the same cache directory that holds downloaded data sets
    by default. It is deliberately *not* under ``$TINYNET_DATA``, which often points at a shared,
    read-only copy of the data that derived files should not clutter.
    """
    from .datasets import user_cache_dir

    if cache is False or cache is None:
        return None
    if cache is not True:
        return Path(cache).expanduser()
    candidate = user_cache_dir() / "features"
    return candidate if _writable_dir(candidate) else None


def _cache_key(images, orientations, ppc, cpb) -> str:
    """sha1 over the algorithm version, the parameters, the images' dtype, shape and bytes."""
    h = hashlib.sha1()
    h.update(f"{_CACHE_VERSION}|{orientations}|{ppc}|{cpb}|{images.dtype.str}|{images.shape}|".encode())
    h.update(np.ascontiguousarray(images).data)
    return h.hexdigest()


def _cache_path(directory: Path, images, orientations, ppc, cpb) -> Path:
    key = _cache_key(images, orientations, ppc, cpb)
    return directory / (
        f"hog_o{orientations}_p{ppc[0]}x{ppc[1]}_c{cpb[0]}x{cpb[1]}_n{images.shape[0]}_{key[:20]}.npy"
    )


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def hog_features(
    images,
    orientations=8,
    pixels_per_cell=(4, 4),
    cells_per_block=(1, 1),
    cache=True,
    progress=True,
):
    """HOG features of a stack of grayscale images, one float32 row per image.

    Parameters
    ----------
    images : array (N, H, W) or (N, H, W, 1)
        Any numeric dtype (MNIST's uint8 0-255 as is: don't rescale, HOG is scale-invariant
        up to L2-Hys's epsilon, but skimage's numbers are defined on the values given).
    orientations : int
        Number of orientation bins over [0, 180) degrees.
    pixels_per_cell, cells_per_block : int or (int, int)
        Cell size in pixels and block size in cells. Leftover pixels at the bottom / right that
        do not fill a cell are ignored, as in skimage.
    cache : bool or path
        ``True``: look up / store the result in :func:`features_cache_dir` (``~/.cache/tinynet/
        features``; one ``.npy`` file per (parameters, images) pair, named by a sha1 of both);
        a path: use that directory; ``False``: always compute. Stacks of fewer than 1000 images
        are never cached (computing them takes milliseconds).
    progress : bool
        Show a tqdm progress bar while computing large stacks.

    Returns
    -------
    features : float32 array (N, F)
        Row ``i`` equals ``skimage.feature.hog(images[i], orientations, pixels_per_cell,
        cells_per_block, block_norm="L2-Hys", feature_vector=True)`` to 6e-8 (uint8) or 3e-7 (floats);
        ``F = n_blocks_r * n_blocks_c * cpb_r * cpb_c * orientations`` (392 for 28x28 images with
        the defaults, which are the report's setting, not skimage's).
    """
    orientations, ppc, cpb = _check_params(orientations, pixels_per_cell, cells_per_block)
    images = _as_stack(images)
    hog_feature_length(images.shape[1:], orientations, ppc, cpb)  # validates the geometry early

    directory = features_cache_dir(cache) if images.shape[0] >= _MIN_CACHE_IMAGES else None
    path = None
    if directory is not None:
        path = _cache_path(directory, images, orientations, ppc, cpb)
        if path.is_file():
            try:
                cached = np.load(path, allow_pickle=False)
                n_features = hog_feature_length(images.shape[1:], orientations, ppc, cpb)
                if cached.shape == (images.shape[0], n_features) and cached.dtype == np.float32:
                    return cached
                warnings.warn(f"ignoring HOG cache file {path}: unexpected shape/dtype", stacklevel=2)
            except (OSError, ValueError) as exc:
                warnings.warn(f"ignoring unreadable HOG cache file {path}: {exc}", stacklevel=2)

    features = _compute(images, orientations, ppc, cpb, progress)

    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, lambda f: np.save(f, features, allow_pickle=False))
        except OSError as exc:
            warnings.warn(f"could not write the HOG cache file {path}: {exc}", stacklevel=2)
    return features


def hog_image(image, orientations=8, pixels_per_cell=(4, 4), cells_per_block=(1, 1)):
    """skimage's HOG visualisation of one (H, W) or (H, W, 1) image, as a float (H, W) array.

    For each cell and bin, a line segment through the cell centre, perpendicular to the bin's
    middle angle, with intensity equal to the (unnormalised) histogram value. Drawn by skimage.
    """
    from skimage.feature import hog

    orientations, ppc, cpb = _check_params(orientations, pixels_per_cell, cells_per_block)
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim != 2:
        raise ValueError(f"hog_image takes one image of shape (H, W) or (H, W, 1), got {image.shape}")
    _grid(image.shape[0], image.shape[1], ppc, cpb)
    _, picture = hog(
        image,
        orientations=orientations,
        pixels_per_cell=ppc,
        cells_per_block=cpb,
        block_norm="L2-Hys",
        visualize=True,
        feature_vector=True,
    )
    return picture
