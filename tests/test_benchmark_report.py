"""The benchmark report (benchmarks/__main__.py): RESULTS.md is a pure function of results.json
plus the hand-written sections kept below the marker."""
import shutil
from pathlib import Path

from benchmarks.__main__ import KEPT_MARKER, in_run_order, load_results, summarise, write_report

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def test_the_committed_report_is_regenerated_from_its_json(tmp_path):
    """--report-only on the committed results.json writes the committed RESULTS.md, GPU section
    (kept below the marker) included: the table and the JSON cannot drift apart."""
    shutil.copy(BENCH / "RESULTS.md", tmp_path / "RESULTS.md")
    results = load_results(BENCH / "results.json")
    summarise(results)
    write_report(results, tmp_path)
    text = (tmp_path / "RESULTS.md").read_text()
    assert text == (BENCH / "RESULTS.md").read_text()
    assert text.count(KEPT_MARKER) == 1 and "NVIDIA H100" in text.split(KEPT_MARKER)[1]


def test_run_order_is_restored_only_for_model_and_backend_keys():
    groups = [["mlp_raw", "cnn_digits"], ["numpy", "numba"]]
    sorted_json = {"epochs": {"cnn_digits": {"numba": 1, "numpy": 2}, "mlp_raw": {"numba": 3}},
                   "versions": {"numpy": "2", "keras": "3"}}
    got = in_run_order(sorted_json, groups)
    assert list(got["epochs"]) == ["mlp_raw", "cnn_digits"]
    assert list(got["epochs"]["cnn_digits"]) == ["numpy", "numba"]
    assert list(got["versions"]) == ["numpy", "keras"]  # not a backend dict: left alone


def test_keras_target_is_judged_against_the_faster_keras():
    """Where TensorFlow leaves oneDNN off, Keras is measured as installed and with oneDNN on; a
    0.5x target met against the slow configuration only is not met."""
    from benchmarks.__main__ import targets

    def entry(seconds):
        return [{"n": 60000, "epoch_s": [seconds], "round": 1}]

    results = {"epochs": {"cnn_digits": {"numba": entry(2.0), "keras": entry(8.0),
                                         "keras_onednn": entry(3.0)},
                          "mlp_raw": {"numba": entry(1.0), "keras": entry(3.0),
                                      "keras_onednn": entry(2.5)}}}
    summary = summarise(results)
    assert summary["cnn_digits"]["numba_over_keras"] == 0.25
    assert abs(summary["cnn_digits"]["numba_over_keras_onednn"] - 2 / 3) < 1e-12
    lines = [line for line in targets(results, summary) if "Keras" in line]
    assert lines == ["- cnn_digits: numba / Keras 0.25x as installed, 0.67x with oneDNN on "
                     "(target at most 0.5x against the faster: **not met**)",
                     "- mlp_raw: numba / Keras 0.33x as installed, 0.40x with oneDNN on "
                     "(target at most 0.5x against the faster: met)"]


def test_the_machine_names_its_widest_vector_extension():
    """The numba kernels' speed follows the vector extension (16 or 32 vector registers), so the
    report names it: the widest flag counts, and a line that only mentions it does not."""
    from tinynet.sysinfo import simd_extension
    zen4 = "processor\t: 0\nflags\t\t: fpu sse2 avx fma avx2 avx512f avx512bw\nbugs\t\t: avx\n"
    zen3 = "processor\t: 0\nflags\t\t: fpu sse2 avx fma avx2\n"
    assert simd_extension(zen4) == "AVX-512"
    assert simd_extension(zen3) == "AVX2"
    assert simd_extension("processor\t: 0\nflags\t\t: fpu sse2\nbugs\t\t: avx2 avx512f\n") is None
    assert simd_extension("") is None


def test_keras_is_measured_twice_only_where_onednn_can_be_asked_for(monkeypatch):
    """Keras with oneDNN on is a second series only where TensorFlow leaves oneDNN off by default
    and turns it on when asked; a build without oneDNN (off either way) gets one Keras series,
    not a second one labelled "oneDNN on" that measures the same thing."""
    import benchmarks.__main__ as bench
    for default, when_asked, expected in [(True, True, True), (False, True, False),
                                          (False, False, None), (None, None, None)]:
        monkeypatch.setattr(bench, "_onednn_on",
                            lambda python, asked, d=default, a=when_asked: a if asked else d)
        assert bench.onednn_by_default("python") is expected


def test_keras_target_uses_the_keras_figure_there_is():
    """Keras as installed failed in every round but Keras with oneDNN ran: the target is still
    judged, against the one that ran."""
    from benchmarks.__main__ import targets
    results = {"epochs": {"cnn_digits": {
        "numba": [{"n": 60000, "epoch_s": [2.0], "round": 1}],
        "keras": [{"error": "failed", "round": 1}],
        "keras_onednn": [{"n": 60000, "epoch_s": [5.0], "round": 1}]}}}
    summary = summarise(results)
    lines = [line for line in targets(results, summary) if "Keras" in line]
    assert lines == ["- cnn_digits: numba / Keras with oneDNN on 0.40x (target at most 0.5x: met)"]
