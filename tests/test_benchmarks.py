"""The benchmark harness (benchmarks/): its report from a small made-up results.json, where it
writes by default, the PyTorch models' sizes and the busy-loop load generator. Nothing here times
anything: speed is measured by ``python -m benchmarks``, never asserted by a test."""
import json
import os
import time
from pathlib import Path

import pytest

from benchmarks import common
from benchmarks import __main__ as bench
from benchmarks.__main__ import (_without_paths, load_results, parse_args, rotated, summarise,
                                 write_report)
from benchmarks.worker import CONV_SHAPES, sgemm_shapes, warmup_size

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
REPORT_PARAMS = {"mlp_raw": 203_530, "mlp_features": 103_178, "cnn_digits": 7_465,
                 "cnn_fashion_3": 10_244}


def _epoch(seconds, rnd, position, load, steal_pct, n=60000, **extra):
    return dict({"n": n, "epoch_s": [seconds], "epoch_cpu_s": [seconds], "round": rnd,
                 "position": position, "first_steps_s": [3.0, 0.05, 0.04], "import_s": 0.2,
                 "conditions": {"load_before": [load, 1.0, 1.0], "load_after": [load + 0.5, 1.0, 1.0],
                                "steal_s_before": 10.0, "steal_s_after": 10.5,
                                "steal_pct": steal_pct, "busy_pct": 90.0, "seconds": seconds}},
                **extra)


def _kernel_rows(scale):
    rows = []
    for name, *_ in CONV_SHAPES:
        rows.append({"kernel": "conv forward (+relu)", "shape": name, "ms": 1.0, "gflops": 100 * scale})
        rows.append({"kernel": "conv backward (dx, dw, db)", "shape": name, "ms": 2.0, "gflops": 80 * scale})
    return {"rows": rows}


def _sgemm_rows(gflops):
    return {"rows": [{"kernel": "numpy float32 matmul", "shape": name, "m": m, "k": k, "n": n,
                      "ms": 1.0, "gflops": gflops} for name, m, k, n in sgemm_shapes()]}


def fake_results():
    """Two rounds of mlp_raw: numba 1.0 / 3.0 s, Keras 2.0 / 4.0 s, PyTorch 4.0 / 2.0 s; numpy
    once, on 20,000 images. Kernels: quiet 100/80 GFLOP/s against sgemm 150; loaded half."""
    epochs = {"mlp_raw": {
        "numba": [_epoch(1.0, 1, 0, 1.25, 0.5), _epoch(3.0, 2, 2, 3.0, 2.0)],
        "numpy": [_epoch(2.0, 1, 1, 1.5, 0.5, n=20000)],
        "keras": [_epoch(2.0, 1, 2, 1.5, 0.5), _epoch(4.0, 2, 0, 2.75, 1.0)],
        "torch": [_epoch(4.0, 1, 3, 1.75, 0.5, threads=1), _epoch(2.0, 2, 1, 2.5, 1.5, threads=1)],
    }}
    return {"format": 2, "started": "2026-12-01T00:00:00", "command": "python -m benchmarks --rounds 2",
            "quick": False, "rounds": 2, "total_s": 120.0, "models": ["mlp_raw"],
            "backends": ["numba", "numpy"], "unavailable": {}, "frameworks": ["tinynet", "keras", "torch"],
            "not_measured": {}, "torch_threads": None,
            "machine": {"cpu": "a CPU", "logical_cpus": 2, "usable_cpus": 2, "platform": "Linux",
                        "python": "3.11", "numpy": "2", "blas": "openblas", "numba": "0.6",
                        "numba_threads": 2, "env": {}, "load_average_before": [1.0, 1.0, 1.0],
                        "load_average_after": [2.0, 1.0, 1.0]},
            "epochs": epochs,
            "kernels": {"quiet": {"numba": _kernel_rows(1.0), "sgemm": _sgemm_rows(150.0),
                                  "sgemm_1thread": _sgemm_rows(100.0)},
                        "loaded": {"numba": _kernel_rows(0.5), "sgemm": _sgemm_rows(60.0),
                                   "sgemm_1thread": _sgemm_rows(50.0), "busy_loops": 2,
                                   "load_seconds": 60, "held_throughout": True}},
            "loaded_epochs": {"model": "mlp_raw", "busy_loops": 2, "held_throughout": True, "epochs": {
                "numba": _epoch(4.0, 0, 0, 3.0, 1.0), "keras": _epoch(5.0, 0, 1, 3.0, 1.0),
                "torch": _epoch(8.0, 0, 2, 3.0, 1.0)}}}


def test_summary_medians_spreads_and_ratios():
    results = fake_results()
    row = summarise(results)["mlp_raw"]
    assert row["epoch_s"]["numba"] == 2.0 and row["epoch_s"]["keras"] == 3.0
    assert row["epoch_s"]["torch"] == 3.0
    assert row["epoch_s"]["numpy"] == pytest.approx(6.0)  # 2 s on 20,000 images -> 60,000
    assert row["spread"]["numba"]["min"] == 1.0 and row["spread"]["numba"]["max"] == 3.0
    assert row["numba_over_keras"] == pytest.approx(2.0 / 3.0)
    assert row["numba_over_torch"] == pytest.approx(2.0 / 3.0)
    # the same ratio within each round: 1/2 and 3/4 (Keras), 1/4 and 3/2 (PyTorch)
    assert sorted(row["numba_over_keras_by_round"]) == pytest.approx([0.5, 0.75])
    assert sorted(row["numba_over_torch_by_round"]) == pytest.approx([0.25, 1.5])
    assert row["numba_speedup_over_numpy"] == pytest.approx(3.0)
    k = results["kernel_summary"]
    assert k["quiet"]["forward"] == 100 and k["loaded"]["backward"] == 40
    # the slower kernel (80, loaded 40) against the faster sgemm (150, loaded 60)
    assert k["quiet"]["worst_sgemm_over_kernel"] == pytest.approx(150 / 80)
    assert k["quiet"]["within_target"] and k["loaded"]["within_target"]
    assert k["kept_under_load"]["forward"] == pytest.approx(0.5)
    assert k["kept_under_load"]["sgemm_square"] == pytest.approx(0.4)


def test_report_from_a_small_results_json(tmp_path):
    """results.json -> RESULTS.md: the medians with their ranges, the ratios, and one row per
    process with its load before -> after and its steal time."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "results.json").write_text(json.dumps(fake_results(), sort_keys=True))
    results = load_results(tmp_path / "in" / "results.json")
    write_report(results, tmp_path)
    text = (tmp_path / "RESULTS.md").read_text()
    table = [line for line in text.splitlines() if line.startswith("| mlp_raw |")][0]
    cells = [c.strip() for c in table.strip("|").split("|")]
    head = [line for line in text.splitlines() if line.startswith("| model | tinynet numba")][0]
    assert [c.strip() for c in head.strip("|").split("|")] == [
        "model", "tinynet numba", "tinynet numpy", "Keras", "PyTorch", "numba / Keras",
        "numba / PyTorch", "numba speed-up over numpy"]
    assert cells[1:] == ["2.00 (1.00–3.00)", "6.00 (6.00–6.00)", "3.00 (2.00–4.00)",
                         "3.00 (2.00–4.00)", "0.67x (0.50–0.75)", "0.67x (0.25–1.50)", "3.0x"]
    assert "| round | model | framework | images | timed epochs (s) | s per 60,000 | load | steal % | busy % |" in text
    # the per-process rows, in the order they ran: round 2 started with Keras
    assert "| 1 | mlp_raw | tinynet numba | 60000 | 1.00 | 1.00 | 1.25 → 1.75 | 0.5 | 90 |" in text
    assert "| 1 | mlp_raw | tinynet numpy | 20000 | 2.00 | 6.00 | 1.50 → 2.00 | 0.5 | 90 |" in text
    assert "| 2 | mlp_raw | Keras | 60000 | 4.00 | 4.00 | 2.75 → 3.25 | 1.0 | 90 |" in text
    assert "| 2 | mlp_raw | PyTorch | 60000 | 2.00 | 2.00 | 2.50 → 3.00 | 1.5 | 90 |" in text
    rows = [line for line in text.splitlines() if line.startswith("| 2 | mlp_raw |")]
    assert [r.split("|")[3].strip() for r in rows] == ["Keras", "PyTorch", "tinynet numba"]
    assert "Under load** the kernels keep 50% (forward) and 50% (backward)" in text
    assert "first run after installation" in text.lower()
    assert "- mlp_raw: numba / Keras 0.67x (target at most 0.5x: **not met**)" in text
    assert "- mlp_raw: numba / PyTorch 0.67x (target at most 1.0x: met)" in text
    assert ("- convolution kernels, quiet: on the worst shape, sgemm of the same work runs at 1.9x "
            "the slower kernel's GFLOP/s (target within 2x: met)") in text
    # one epoch per framework under the busy loops, against the interleaved medians
    assert "| tinynet numba | 4.00 | 2.00 | 50% | 3.00 → 3.50 | 1.0 |" in text
    assert "| Keras | 5.00 | 3.00 | 60% | 3.00 → 3.50 | 1.0 |" in text
    assert "Under load: numba / Keras 0.80x, numba / PyTorch 0.50x." in text
    # the epochs as GFLOP/s: forward and dL/dW of both Dense layers, dL/dx of the second only,
    # against the run's best sgemm (150 GFLOP/s); 0.5x Keras's 3 s is 1.5 s
    work = 2 * (2 * (784 * 256 + 256 * 10) + 256 * 10) * 60000 / 1e9
    assert (f"| mlp_raw | {work:.1f} | {work / 150:.2f} s | {work / 2:.0f} GFLOP/s "
            f"({work / 2 / 150:.0%}) | {work / 3:.0f} GFLOP/s ({work / 3 / 150:.0%}) | "
            f"{work / 3:.0f} GFLOP/s ({work / 3 / 150:.0%}) | {work / 1.5:.0f} GFLOP/s "
            f"({work / 1.5 / 150:.0%}) | 1.00x | {work / 1.5:.0f} GFLOP/s ({work / 1.5 / 150:.0%}) |"
            ) in text
    # PyTorch on one thread (--torch-threads 1) against one-thread sgemm's best (100)
    one = fake_results()
    one["torch_threads"] = 1
    write_report(one, tmp_path)
    row = [line for line in (tmp_path / "RESULTS.md").read_text().splitlines()
           if line.startswith(f"| mlp_raw | {work:.1f} |")][0]
    assert row.split("|")[6].strip() == f"{work / 3:.0f} GFLOP/s ({work / 3 / 100:.0%})"


def test_training_flops_count_each_layer_once_and_tinynet_s_own_work():
    """cnn_digits per example, by hand: l1 28x28 outputs x 5x5x1 x 9, l2 14x14 x 5x5x9 x 9,
    l3 7x7 x 3x3x9 x 16, Dense 144x25 and 25x10 multiply-adds; dL/dx for all but l1; tinynet's
    kernels compute l1's forward on a 30x30 grid, l2's on 16x16 and l3's on 8x8 (rows share their
    padding), and each convolution's backward (a max pooling reads each) from the winners of its
    14x14, 7x7 and 3x3 pooling windows."""
    l1, l2, l3, dense = 28 * 28 * 25 * 9, 14 * 14 * 225 * 9, 7 * 7 * 81 * 16, 144 * 25 + 25 * 10
    flops = common.training_flops("cnn_digits")
    assert flops["forward"] == flops["weights"] == 2 * (l1 + l2 + l3 + dense)
    assert flops["inputs"] == 2 * (l2 + l3 + dense)
    assert flops["total"] == 2 * (2 * (l1 + l2 + l3 + dense) + l2 + l3 + dense)
    g1, g2, g3 = 30 * 30 * 25 * 9, 16 * 16 * 225 * 9, 8 * 8 * 81 * 16
    w1, w2, w3 = 14 * 14 * 25 * 9, 7 * 7 * 225 * 9, 3 * 3 * 81 * 16
    assert flops["grid"] == 2 * ((g1 + g2 + g3 + dense) + (w1 + w2 + w3 + dense)
                                 + (w2 + w3 + dense))


def test_training_flops_of_the_residual_model_count_its_unpooled_convolutions_on_their_grids():
    """cnn_fashion_3: l2 (read by l2_2, not by a pooling) runs its backward on the grid, 16x16
    (5x5, padding 2); l1, l3 and l2_2 (run with its Add and the pooling l2_ap as one step) from
    their windows' winners."""
    flops = common.training_flops("cnn_fashion_3")
    g1, g2, g22, g3 = 31 * 31 * 49 * 9, 16 * 16 * 225 * 9, 15 * 15 * 81 * 9, 8 * 8 * 81 * 18
    w1, w22, w3 = 14 * 14 * 49 * 9, 7 * 7 * 81 * 9, 3 * 3 * 81 * 18
    dense = 162 * 32 + 32 * 10
    assert flops["grid"] == 2 * ((g1 + g2 + g22 + g3 + dense) + (w1 + g2 + w22 + w3 + dense)
                                 + (g2 + w22 + w3 + dense))


def test_default_output_is_a_folder_of_its_own():
    """A first `python -m benchmarks` must not overwrite the committed benchmarks/RESULTS.md."""
    out = parse_args([]).out
    assert out == common.DEFAULT_OUT
    assert out.resolve() != BENCH.resolve() and BENCH.resolve() not in out.resolve().parents
    assert parse_args(["--out", "benchmarks"]).out == Path("benchmarks")
    ignored = (BENCH.parent / ".gitignore").read_text().split()
    assert f"/{out.name}/" in ignored


def test_the_recorded_commit_is_dirty_only_for_changed_code(tmp_path):
    """A run's provenance says ``+ uncommitted changes`` when tinynet/ or the benchmark's code
    differ from the commit, not when only an earlier run's outputs do (a second run before the
    first one is committed measured the same code)."""
    import shutil
    import subprocess
    if shutil.which("git") is None:
        pytest.skip("git is not installed")

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True,
                       env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})

    (tmp_path / "tinynet").mkdir()
    (tmp_path / "benchmarks").mkdir()
    files = {"tinynet/layers.py": "x = 1\n", "benchmarks/worker.py": "y = 1\n",
             "benchmarks/RESULTS.md": "# old\n", "benchmarks/results.json": "{}\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "base")
    head = common.commit(tmp_path)
    assert head and "uncommitted" not in head
    (tmp_path / "benchmarks/RESULTS.md").write_text("# new run\n")
    (tmp_path / "benchmarks/results.json").write_text('{"new": 1}\n')
    assert common.commit(tmp_path) == head
    for name in ("benchmarks/worker.py", "tinynet/layers.py"):
        (tmp_path / name).write_text("changed = 2\n")
        assert common.commit(tmp_path) == head + " + uncommitted changes"
        git("checkout", "--", name)


def test_recorded_command_line_names_no_machine_path():
    assert _without_paths(["--out", "benchmarks", "--rounds", "3"]) == ["--out", "benchmarks", "--rounds", "3"]
    assert _without_paths(["--out", "/" + "home/me/x", "--keras-python", "/opt/py/bin/python",
                           "--data=/data"]) == ["--out", "...", "--keras-python", "...", "--data=..."]


def test_interleaving_order_and_warmup():
    assert [rotated(["tinynet", "keras", "torch"], r) for r in range(4)] == [
        ["tinynet", "keras", "torch"], ["keras", "torch", "tinynet"],
        ["torch", "tinynet", "keras"], ["tinynet", "keras", "torch"]]
    assert warmup_size(60000, 128) == 4 * 128 + 96  # covers the last, partial batch
    assert warmup_size(6400, 128) == 4 * 128
    assert warmup_size(300, 128) == 300


def _round(scale_numba, sgemm, load, scale_one=None):
    """One interleaved round's four worker results: the kernels at ``scale_numba`` of 100
    (forward) and 80 (backward) GFLOP/s (on one thread at ``scale_one``, by default half as
    fast), sgemm at ``sgemm`` (two-thirds of it on one thread)."""
    cond = {"load_before": [load, 1.0, 1.0], "load_after": [load + 0.5, 1.0, 1.0], "seconds": 10.0,
            "steal_pct": load}
    kernels = {}
    for key, scale in (("numba", scale_numba), ("numba_1thread", scale_one or scale_numba / 2)):
        kernels[key] = _kernel_rows(scale)
        for row in kernels[key]["rows"]:  # the same work each round: the time follows the speed
            row["ms"] = row["ms"] / scale
    fast, one = _sgemm_rows(sgemm), _sgemm_rows(sgemm * 2 / 3)
    for rows, g in ((fast, sgemm), (one, sgemm * 2 / 3)):
        for row in rows["rows"]:
            row["ms"] = 150.0 / g
    return {key: dict(res, conditions=dict(cond))
            for key, res in (("numba", kernels["numba"]), ("numba_1thread", kernels["numba_1thread"]),
                             ("sgemm", fast), ("sgemm_1thread", one))}


def test_kernels_and_sgemm_interleaved_round_by_round(monkeypatch):
    # the workers run one after the other, round after round, the order rotated
    calls = []

    def fake_worker(spec, env=None, **kw):
        key = ("numba" if spec["task"] == "kernels" else "sgemm") + ("_1thread" if env else "")
        calls.append(key)
        assert env in (None, {"NUMBA_NUM_THREADS": "1"} if key == "numba_1thread" else bench.ONE_THREAD)
        return _round(1.0, 150.0, 1.0)[key]
    monkeypatch.setattr(bench, "run_worker", fake_worker)
    bench.interleaved_kernels(repeats=3, rounds=3)
    assert calls == ["numba", "numba_1thread", "sgemm", "sgemm_1thread",
                     "numba_1thread", "sgemm", "sgemm_1thread", "numba",
                     "sgemm", "sgemm_1thread", "numba", "numba_1thread"]
    # three rounds: a slow spell for both in round 2, sgemm alone fast in round 3
    rounds = [_round(1.0, 150.0, 1.0), _round(0.5, 75.0, 2.0), _round(1.0, 300.0, 3.0)]
    cond = {key: bench.merged_rounds([r[key] for r in rounds] + [{"error": "died"}])
            for key in rounds[0]}
    fwd = next(r for r in cond["numba"]["rows"] if r["kernel"] == "conv forward (+relu)")
    assert fwd["rounds_ms"] == [1.0, 2.0, 1.0] and fwd["ms"] == 1.0
    assert fwd["rounds_gflops"] == [100.0, 50.0, 100.0] and fwd["gflops"] == pytest.approx(100.0)
    assert cond["numba"]["interleaved_rounds"] == 3  # the failed round left out
    assert cond["sgemm"]["conditions"]["load_before"][0] == 1.0
    assert cond["sgemm"]["conditions"]["load_after"][0] == 3.5  # the last round's end
    assert cond["sgemm"]["conditions"]["steal_pct"] == pytest.approx(2.0)
    k = bench.kernel_summary({"kernels": {"quiet": cond}})["quiet"]
    # medians: kernels 100/80, sgemm 150 -> 1.875x; each round alone: 1.875, 1.875, 3.75
    assert k["worst_sgemm_over_kernel"] == pytest.approx(150 / 80)
    assert k["worst_by_round"] == pytest.approx([1.875, 1.875, 3.75])
    assert "(each round alone, its own worst shape: 1.9x–3.8x, over 3 rounds)" in bench._round_range(k)
    # figures of one process each (no rounds): no range
    single = bench.kernel_summary({"kernels": {"quiet": rounds[0]}})["quiet"]
    assert "worst_by_round" not in single and bench._round_range(single) == ""
    # failed rounds: each round alone only where all three were measured (round i: everything
    # i + 1 times faster, the same ratio 1.875); the kernels failed in round 1, sgemm in round 3
    rounds = [_round(i + 1.0, 150.0 * (i + 1), 1.0) for i in range(4)]
    failed = {("numba", 1), ("sgemm", 3), ("sgemm_1thread", 3), ("numba_1thread", 3)}
    cond = {key: bench.merged_rounds([{"error": "died"} if (key, i) in failed else r[key]
                                      for i, r in enumerate(rounds)])
            for key in rounds[0]}
    assert cond["numba"]["kept_rounds"] == [0, 2, 3] and cond["sgemm"]["kept_rounds"] == [0, 1, 2]
    k = bench.kernel_summary({"kernels": {"quiet": cond}})["quiet"]
    assert k["worst_by_round"] == pytest.approx([1.875, 1.875])  # rounds 0 and 2
    # rows that do not line up are refused, not merged
    shuffled = dict(rounds[1]["numba"], rows=rounds[1]["numba"]["rows"][::-1])
    with pytest.raises(ValueError, match="different rows"):
        bench.merged_rounds([rounds[0]["numba"], shuffled])


def test_the_kernels_ratio_takes_the_faster_of_their_two_thread_counts(tmp_path):
    # under load the kernels on numba's two threads run at 0.2 of 100 / 80 GFLOP/s, on one
    # thread at 0.6 (what fit runs them on then): the ratio is sgemm's best (150) over 48
    loaded = {key: bench.merged_rounds([r[key] for r in (_round(0.2, 150.0, 3.0, scale_one=0.6),)])
              for key in ("numba", "numba_1thread", "sgemm", "sgemm_1thread")}
    k = bench.kernel_summary({"kernels": {"loaded": loaded}})["loaded"]
    assert k["forward"] == pytest.approx(20) and k["forward_1thread"] == pytest.approx(60)
    assert k["backward"] == pytest.approx(16) and k["backward_1thread"] == pytest.approx(48)
    assert k["worst_sgemm_over_kernel"] == pytest.approx(150 / 48)
    assert k["worst_by_round"] == pytest.approx([150 / 48])
    # the one-thread run slower (quiet): the two-thread figures decide
    quiet = {key: bench.merged_rounds([r[key]]) for key, r in
             ((key, _round(1.0, 150.0, 1.0, scale_one=0.6)) for key in loaded)}
    both = bench.kernel_summary({"kernels": {"quiet": quiet, "loaded": loaded}})
    assert both["quiet"]["worst_sgemm_over_kernel"] == pytest.approx(150 / 80)
    assert both["kept_under_load"]["forward"] == pytest.approx(0.2)
    assert both["kept_under_load"]["forward_1thread"] == pytest.approx(1.0)
    # without a one-thread run (results of earlier runs): the kernels on numba's threads alone
    loaded.pop("numba_1thread")
    assert bench.kernel_summary({"kernels": {"loaded": loaded}})["loaded"][
        "worst_sgemm_over_kernel"] == pytest.approx(150 / 16)
    # the report's table has the one-thread columns, and says what they are
    results = fake_results()
    results["kernels"] = {"quiet": quiet, "loaded": dict(loaded, numba_1thread=quiet["numba_1thread"])}
    (tmp_path / "results.json").write_text(json.dumps(results))
    write_report(load_results(tmp_path / "results.json"), tmp_path)
    text = (tmp_path / "RESULTS.md").read_text()
    head = next(line for line in text.splitlines() if line.startswith("| shape | fwd quiet"))
    assert "| fwd 1 thread quiet | bwd 1 thread quiet |" in head
    assert "`NUMBA_NUM_THREADS=1`: what tinynet's `fit` runs them on" in text
    assert "(on one thread 60 and 48)" in text


def test_the_report_says_how_the_kernels_were_measured(tmp_path):
    rounds = [_round(1.0, 150.0, 1.0), _round(0.5, 75.0, 2.0), _round(1.0, 300.0, 3.0)]
    results = fake_results()
    results["kernels"]["quiet"] = {key: bench.merged_rounds([r[key] for r in rounds])
                                   for key in rounds[0]}
    for res in results["kernels"]["loaded"].values():
        if isinstance(res, dict):
            res["statistic"] = "mean"
    (tmp_path / "results.json").write_text(json.dumps(results))
    write_report(load_results(tmp_path / "results.json"), tmp_path)
    text = (tmp_path / "RESULTS.md").read_text()
    assert ("convolution kernels, quiet: on the worst shape, sgemm of the same work runs at 1.9x "
            "the slower kernel's GFLOP/s (each kernel the faster of its runs on numba's threads and "
            "on one) (each round alone, its own worst shape: 1.9x–3.8x, over 3 rounds)") in text
    assert "The four run interleaved, each in a process of its own" in text
    assert "the worst shape's ratio is also given for each round alone" in text
    assert "loaded ones from the mean" in text and "loaded: mean)" in text
    assert "each over at least" not in text  # runs that did not record their windows
    # 2 loops on 2 CPUs: numba's 2 threads are 2 of 4 runnable threads (1/2), one thread 1 of 3
    assert ("each of a process's t threads is one of 2 + t runnable threads sharing the 2 CPUs "
            "and gets 2/(2 + t) of one: at its fair share a kernel keeps 50% of its quiet speed "
            "on 2 threads, 67% on 1.") in text
    for res in results["kernels"]["loaded"].values():
        if isinstance(res, dict):
            res["mean_over_s"] = 0.2
    (tmp_path / "results.json").write_text(json.dumps(results))
    write_report(load_results(tmp_path / "results.json"), tmp_path)
    assert "median leaves them out), each over at least 0.2 s of calls" in (
        tmp_path / "RESULTS.md").read_text()
    # interleaved, but no round in which all three were measured: no per-round claim
    for key in ("sgemm", "sgemm_1thread"):
        results["kernels"]["quiet"][key] = bench.merged_rounds(
            [{"error": "died"}, {"error": "died"}, rounds[2][key]])
    results["kernels"]["quiet"]["numba"] = bench.merged_rounds(
        [rounds[0]["numba"], rounds[1]["numba"], {"error": "died"}])
    results["kernels"].pop("loaded")
    (tmp_path / "results.json").write_text(json.dumps(results))
    write_report(load_results(tmp_path / "results.json"), tmp_path)
    text = (tmp_path / "RESULTS.md").read_text()
    assert "The four run interleaved" in text and "each round alone" not in text
    # one process each, medians (the committed runs before the interleaving): said as such
    write_report(load_results(tmp_path / "results.json") | {"kernels": fake_results()["kernels"]},
                 tmp_path)
    text = (tmp_path / "RESULTS.md").read_text()
    assert "in a separate process at the same im2col shape" in text
    assert "interleaved, each" not in text and "from the mean" not in text


def test_a_call_s_time_is_the_median_call_or_the_mean(monkeypatch):
    from types import SimpleNamespace

    from benchmarks import worker
    clock = [0.0]
    monkeypatch.setattr(worker, "time", SimpleNamespace(perf_counter=lambda: clock[0]))

    def calls(*ms):  # a function whose calls take these milliseconds, then 1 ms each
        left = list(ms)

        def fn():
            clock[0] += (left.pop(0) if left else 1.0) / 1e3
        return fn
    # five calls, one of them preempted: the median leaves it out, the mean counts it
    assert worker._call_ms(calls(1, 1, 11, 1, 1), 5, min_time=0, warm_up=False) == pytest.approx(1.0)
    assert worker._call_ms(calls(1, 1, 11, 1, 1), 5, min_time=0, warm_up=False,
                           statistic="mean") == pytest.approx(3.0)
    # the warm-up call is not counted
    assert worker._call_ms(calls(50, 2, 2, 2), 3, min_time=0, statistic="mean") == pytest.approx(2.0)
    with pytest.raises(ValueError, match="median' or 'mean"):
        worker._call_ms(calls(), 3, statistic="average")
    # 1 ms calls, then one preempted for 50 ms after 100 calls (in 0.2 s of calls): the median
    # stops after 20 x 3 calls, before it; the mean runs the whole 0.2 s and counts it
    late = (1,) * 100 + (50,)
    clock[0] = 0.0
    assert worker._call_ms(calls(*late), 3, min_time=0.2, warm_up=False) == pytest.approx(1.0)
    assert clock[0] == pytest.approx(0.060)  # 60 calls of 1 ms, not the 0.2 s
    clock[0] = 0.0
    n = 100 + 1 + 50  # calls until the clock reaches 0.2 s
    assert worker._call_ms(calls(*late), 3, min_time=0.2, warm_up=False,
                           statistic="mean") == pytest.approx(200 / n, rel=0.01)


def test_torch_models_have_the_report_parameter_counts():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (the torch extra)")
    from benchmarks import torch_models

    for name, expected in REPORT_PARAMS.items():
        model = torch_models.build(name)
        assert torch_models.count_params(model) == expected == torch_models.EXPECTED_PARAMS[name]
        x = torch.zeros((2, 1, 28, 28)) if name.startswith("cnn") else torch.zeros((2, 784 if name == "mlp_raw" else 392))
        assert tuple(model(x).shape) == (2, 10)


def test_busy_loops_stop_by_themselves_and_when_asked():
    procs = common.start_busy_loops(2, 0.3)
    deadline = time.monotonic() + 20
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p.returncode for p in procs] == [0, 0]
    assert common.stop_busy_loops(procs) == 0  # nothing left to stop
    procs = common.start_busy_loops(1, 600)
    time.sleep(0.2)
    assert common.stop_busy_loops(procs) == 1
    assert procs[0].poll() is not None


def test_conditions_and_steal():
    before = common.conditions()
    after = dict(before, time=before["time"] + 1.0)
    if before["cpu"]:
        after["cpu"] = dict(before["cpu"], steal=before["cpu"]["steal"] + 0.5,
                            idle=before["cpu"]["idle"] + 1.0, user=before["cpu"]["user"] + 0.5)
    got = common.between(before, after)
    assert got["load_before"] == before["load"] and got["seconds"] == 1.0
    if before["cpu"]:
        assert got["steal_pct"] == pytest.approx(25.0) and got["busy_pct"] == pytest.approx(50.0)


def test_error_messages_are_recorded_without_machine_paths():
    import os
    import sys
    text = f'File "{common.ROOT}/tinynet/x.py", line 1\n  {sys.prefix}/lib/python3/site.py {os.path.expanduser("~")}/y'
    got = common.scrub(text)
    assert str(common.ROOT) not in got and sys.prefix not in got
    assert "<checkout>/tinynet/x.py" in got and "<python>/lib/python3/site.py" in got


@pytest.mark.parametrize("name", ["RESULTS.md", "results.json"])
def test_committed_results_name_no_machine_path(name):
    import sys
    text = (BENCH / name).read_text()
    for place in {str(common.ROOT), sys.prefix, "/work/", "/home/", ".venv"}:
        assert place not in text, place


def test_the_under_load_table_lists_the_frameworks_in_the_tables_order(tmp_path):
    """The run measures Keras with oneDNN last, under load; results.json sorts its keys: the
    report written by the run and the one regenerated from its JSON must list the same rows in the
    same order (they differed: the committed report could not be regenerated)."""
    results = fake_results()
    results["loaded_epochs"]["epochs"] = {  # the order of a run: tinynet, Keras, PyTorch, oneDNN
        "numba": _epoch(4.0, 0, 0, 3.0, 1.0), "keras": _epoch(5.0, 0, 1, 3.0, 1.0),
        "torch": _epoch(8.0, 0, 2, 3.0, 1.0), "keras_onednn": _epoch(6.0, 0, 3, 3.0, 1.0)}
    write_report(results, tmp_path)
    text = (tmp_path / "RESULTS.md").read_text()
    start = text.index("| framework | s per 60,000 under load")
    rows = [line.split("|")[1].strip() for line in text[start:].splitlines()[2:6]]
    assert rows == ["tinynet numba", "Keras", "Keras, oneDNN on", "PyTorch"]


def test_the_first_run_after_installation_counts_every_step_that_compiled(tmp_path):
    """A step after the first can compile a path the first did not take (the residual CNN's
    second step compiles the dense backward): the compilation's cost is what all the first
    steps took beyond an ordinary one, not the first step's alone."""
    results = fake_results()
    results["cold_compile"] = {"cnn_fashion_3": {"first_steps_s": [3.0, 2.0, 0.5]}}
    write_report(results, tmp_path)
    text = (tmp_path / "RESULTS.md").read_text()
    assert "its first 2 steps take 4.0 s longer than a later one (2.5, 1.5 s" in text


def test_placement_counts_the_samples_where_the_worker_shared_the_main_thread_s_cpu():
    """benchmarks.placement's reading of /proc samples: the busiest other thread is numba's
    worker (a thread that never ran, such as a timer's, is not), and the share of samples in
    which it had last run on the main thread's CPU is what the README's two speeds rest on."""
    import threading

    from benchmarks.placement import _same_cpu, _thread_cpus
    main = threading.get_native_id()
    idle, worker = main + 1, main + 2
    samples = [{main: (0, 10), worker: (c, 50), idle: (0, 0)} for c in (0, 0, 1, 0)]
    assert _same_cpu(samples) == 0.75
    assert _same_cpu([{main: (1, 10), worker: (0, 50)}]) == 0.0
    assert _same_cpu([{main: (0, 10), idle: (0, 0)}]) is None  # no second busy thread
    assert _same_cpu([]) is None
    if os.path.isdir("/proc/self/task"):  # this process's own threads, as the script reads them
        cpus = _thread_cpus()
        assert main in cpus and all(c >= 0 and ticks >= 0 for c, ticks in cpus.values())
