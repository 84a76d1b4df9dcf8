"""Benchmark: HOG features of all 70,000 MNIST images, tinynet vs scikit-image.

    python benchmarks/bench_hog.py [--repeats 5] [--sample 2000] [--data-dir DIR]

Times, with the report's setting (8 orientations, 4x4-pixel cells, 1x1-cell blocks):

* tinynet ``hog_features`` computing from scratch (``cache=False``), after a warm-up call on a
  few images that compiles (or loads from numba's cache) the kernels;
* tinynet's pure-NumPy path (what runs without numba);
* the first call with a cache (compute + atomic ``np.save``) and later calls (hash + ``np.load``),
  in a temporary cache directory;
* ``skimage.feature.hog`` image by image on a random sample, extrapolated to 70,000 images.

Prints medians over ``--repeats`` runs, and checks on the sample that both agree.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tinynet import datasets, features, sysinfo  # noqa: E402
from tinynet.features import hog_features  # noqa: E402

PARAMS = dict(orientations=8, pixels_per_cell=(4, 4), cells_per_block=(1, 1))


def timed(fn, repeats):
    """Run ``fn`` ``repeats`` times; return (median seconds, all times, last result)."""
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, result


def fmt(times):
    return ", ".join(f"{t:.3f}" for t in times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (default 5)")
    parser.add_argument("--sample", type=int, default=2000, help="images for the skimage timing (default 2000)")
    parser.add_argument("--data-dir", default=None, help="folder holding mnist/ (default, as in "
                        "tinynet.datasets: $TINYNET_DATA, else the user cache)")
    parser.add_argument("--skip-numpy", action="store_true", help="don't time the NumPy fallback path")
    args = parser.parse_args(argv)

    from skimage import __version__ as skimage_version
    from skimage.feature import hog

    (x_train, _), (x_test, _) = datasets.load_mnist(args.data_dir)
    images = np.concatenate([x_train, x_test])
    n = len(images)
    print(f"HOG of {n} MNIST images {images.shape[1:]}, {PARAMS}")
    print(f"numpy {np.__version__}, scikit-image {skimage_version}, numba "
          f"{features.numba.__version__ if features._HAVE_NUMBA else 'absent'}; {sysinfo.describe_machine()}\n")

    t0 = time.perf_counter()
    hog_features(images[:16], cache=False, progress=False, **PARAMS)
    print(f"warm-up on 16 images (numba compile or cache load): {time.perf_counter() - t0:.3f} s")

    rows = []
    med, times, ours = timed(lambda: hog_features(images, cache=False, progress=False, **PARAMS), args.repeats)
    rows.append(("tinynet, no cache", med, times))

    if not args.skip_numpy:
        o, ppc, cpb = PARAMS["orientations"], PARAMS["pixels_per_cell"], PARAMS["cells_per_block"]
        med_np, times_np, ours_np = timed(
            lambda: features._compute(images, o, ppc, cpb, progress=False, engine="numpy"), max(1, args.repeats // 2)
        )
        assert np.array_equal(ours_np, ours), "NumPy and numba paths disagree"
        rows.append(("tinynet, NumPy path (no numba)", med_np, times_np))

    with tempfile.TemporaryDirectory(prefix="tinynet-hog-cache-") as cache_dir:
        t0 = time.perf_counter()
        hog_features(images, cache=cache_dir, progress=False, **PARAMS)
        first = time.perf_counter() - t0
        rows.append(("tinynet, first call with cache (compute+save)", first, [first]))
        med_c, times_c, cached = timed(
            lambda: hog_features(images, cache=cache_dir, progress=False, **PARAMS), args.repeats
        )
        assert np.array_equal(cached, ours)
        rows.append(("tinynet, from cache (sha1 + np.load)", med_c, times_c))

    rng = np.random.default_rng(0)
    sample = images[rng.choice(n, size=min(args.sample, n), replace=False)]

    def skimage_run():
        return np.stack([hog(im, block_norm="L2-Hys", feature_vector=True, **PARAMS) for im in sample])

    med_sk, times_sk, reference = timed(skimage_run, max(1, min(3, args.repeats)))
    per_image = med_sk / len(sample)
    rows.append((f"skimage, image by image ({len(sample)} imgs)", med_sk, times_sk))
    rows.append((f"skimage, extrapolated to {n}", per_image * n, [per_image * n]))

    ours_sample = hog_features(sample, cache=False, progress=False, **PARAMS)
    err = float(np.abs(ours_sample - reference).max())

    width = max(len(r[0]) for r in rows)
    print(f"\n{'measurement':<{width}}  {'median s':>9}  runs (s)")
    for name, med_s, ts in rows:
        print(f"{name:<{width}}  {med_s:9.3f}  {fmt(ts)}")
    print(f"\nspeed-up vs skimage (extrapolated): no cache {per_image * n / med:.1f}x, "
          f"from cache {per_image * n / med_c:.0f}x")
    print(f"max |tinynet - skimage| on the sample: {err:.2e}")


if __name__ == "__main__":
    main()
