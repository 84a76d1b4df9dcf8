#!/usr/bin/env bash
# The whole GPU check in one command, for a session that is lent a GPU machine: run it there from
# the repository root, with MNIST carried in (the machine has no network; its image already holds
# CuPy, numba, scikit-image, matplotlib, tqdm and pytest):
#
#     bash benchmarks/gpu_session.sh            # results under $OUT (else ./gpu_out)
#
# 1. the CuPy tests: kernels (the matrix product too) against the NumPy reference, the fused
#    RMSprop, gradient checks, numpy/cupy training parity, the replayed CUDA graph step against the
#    eager one (tests/test_cupy.py, tests/test_replay.py), and, in the other files, the flat
#    (arena) training step against the per-parameter one and a convolution run with its pooling
#    against the two layers (tests/test_kernels.py, tests/test_backends.py, tests/test_arena.py,
#    tests/test_fusion.py);
# 2. the Keras fixtures on the cupy backend (TINYNET_BACKEND=cupy);
# 3. seconds per epoch of the report's models, CuPy with and without CUDA graphs and numba on the
#    same machine, and the digits CNN's inference (benchmarks/gpu_epochs.py), as JSON;
# 4. where a step's GPU time goes: its parts replayed, and tinynet's matrix product against
#    cuBLAS (benchmarks/gpu_profile.py), as JSON.
# Each step writes its log under the output folder and the script goes on after a failure; the
# exit status is that of the first failed step. Put the figures in benchmarks/RESULTS.md (the
# section below the "Kept" marker), with the device named, and the JSON in benchmarks/.
#
# Environment: TINYNET_DATA (default ./.devdata, a copy of ../shared/data/mnist kept out of git),
# GPU_EPOCHS (default 3), GPU_BACKENDS (default cupy,cupy-eager,numba), GPU_MODELS (default all
# of gpu_epochs.MODELS: mlp_raw,cnn_digits,cnn_fashion_3).
#
# How long, on an H200 lease (2026-12-04): about 2 minutes with GPU_BACKENDS=cupy,cupy-eager (the
# tests 75 s, the epochs 30 s, the profile 5 s), plus 30-90 s for the machine to start; numba adds
# its first compilation (40-55 s there) and its epochs (cnn_fashion_3 took 20 s an epoch there).
# To carry the data: mkdir .devdata && cp -r ../shared/data/mnist .devdata/, ignore it
# (echo /.devdata/ >> .git/info/exclude), and name .devdata in the call's carry.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu_out}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
export TINYNET_DATA="${TINYNET_DATA:-$PWD/.devdata}"
status=0

step() {  # step NAME COMMAND...: run, log to $out/NAME.log, remember the first failure
    local name=$1
    shift
    echo "== $name: $*"
    local start=$SECONDS
    "$@" >"$out/$name.log" 2>&1
    local rc=$?
    tail -n 3 "$out/$name.log"
    echo "== $name: exit $rc in $((SECONDS - start)) s"
    if [ "$rc" -ne 0 ] && [ "$status" -eq 0 ]; then status=$rc; fi
}

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1
  python3 -c "import platform, numpy, numba; print(platform.python_version(), 'numpy', numpy.__version__, 'numba', numba.__version__)"
  python3 -c "import cupy; print('cupy', cupy.__version__)" 2>&1
  nproc; } >"$out/device.txt"
cat "$out/device.txt"

step cupy_tests python3 -m pytest -q -rs tests/test_cupy.py tests/test_replay.py
step cupy_in_other_tests python3 -m pytest -q -rs tests/test_kernels.py tests/test_backends.py \
    tests/test_arena.py tests/test_fusion.py -k cupy
step keras_fixtures_on_cupy env TINYNET_BACKEND=cupy python3 -m pytest -q tests/test_keras_fixtures.py
step gpu_epochs python3 -m benchmarks.gpu_epochs --epochs "${GPU_EPOCHS:-3}" \
    --backends "${GPU_BACKENDS:-cupy,cupy-eager,numba}" \
    --models "${GPU_MODELS:-mlp_raw,cnn_digits,cnn_fashion_3}"
step gpu_profile python3 -m benchmarks.gpu_profile
# each JSON document is the end of its log, from its first line that is exactly "{"
sed -n '/^{$/,$p' "$out/gpu_epochs.log" >"$out/gpu_epochs.json"
sed -n '/^{$/,$p' "$out/gpu_profile.log" >"$out/gpu_profile.json"
exit $status
