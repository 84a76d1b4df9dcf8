"""The lessons: every one runs with --quick on the real data, prints its test scores, writes its
pictures, and the runner writes REPORT.md with every table.

All lessons run once, in this process (so numba compiles once), through ``python -m lessons``'s
``main``; the tests then read what they printed and wrote.
"""
import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from lessons import __main__ as runner
from lessons import common, l1_rmsprop

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("TINYNET_DATA", REPO.parent / "shared" / "data"))
needs_data = pytest.mark.skipif(not (DATA_DIR / "mnist").is_dir() or
                                not (DATA_DIR / "fashion-mnist").is_dir(),
                                reason=f"real data not found in {DATA_DIR} (set TINYNET_DATA)")

# --quick trains on 6,000 images for one epoch: the small CNNs are only starting to learn (the
# 8-unit bottleneck of cnn_8 is at about 0.24), the MLPs are at 0.85-0.95. Chance is 0.10; with
# 1,000 test images its standard deviation is 0.01.
ABOVE_CHANCE = 0.15
BEST_OF_A_LESSON = 0.5

TABLES = {
    "l1_rmsprop": ["RMSprop by hand vs tinynet", "RMSprop settings on the MLP"],
    "l2_complexity": ["Weights per model", "Weights per layer"],
    "l3_shallow_deep": ["Weights and accuracy"],
    "l4_grids": ["MLP on raw pixels", "MLP on HOG features", "MNIST digits CNN", "Fashion-MNIST CNN"],
    "l5_fashion": ["Models 1, 2 and 3", "F1 per class"],
}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    if not (DATA_DIR / "mnist").is_dir() or not (DATA_DIR / "fashion-mnist").is_dir():
        pytest.skip(f"real data not found in {DATA_DIR} (set TINYNET_DATA)")
    out = tmp_path_factory.mktemp("lessons_out")
    common.forget_runs()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        sections = runner.main(["--quick", "--out", str(out), "--data", str(DATA_DIR)])
    common.forget_runs()
    text = printed.getvalue()
    by_lesson = dict(re.findall(r"######## .*? \((l\d_\w+)\) ########\n(.*?)######## \1:", text, re.S))
    return out, sections, text, by_lesson


def accuracies(text):
    return [float(v) for v in re.findall(r"^Test score: [\d.]+ Test accuracy: ([\d.]+)$", text, re.M)]


def is_png_not_blank(path):
    image = imread(str(path))
    return image.ndim == 3 and image.shape[0] > 50 and image.shape[1] > 50 and image[..., :3].var() > 0


@needs_data
def test_every_lesson_runs_and_prints_test_scores_above_chance(quick_run):
    _, sections, _, by_lesson = quick_run
    assert [s.lesson for s in sections] == list(common.LESSONS)
    assert sorted(by_lesson) == sorted(common.LESSONS)
    for lesson, text in by_lesson.items():
        values = accuracies(text)
        assert values, f"{lesson} printed no 'Test score: ... Test accuracy: ...' line"
        assert min(values) > ABOVE_CHANCE, (lesson, values)
        assert max(values) > BEST_OF_A_LESSON, (lesson, values)
        assert 'Model: "' in text, f"{lesson} printed no model summary"


@needs_data
def test_every_lesson_writes_its_pictures(quick_run):
    out, sections, _, _ = quick_run
    for section in sections:
        names = set(section.pictures)
        for run in section.runs:
            names.update(run.pictures.values())
        assert names, f"{section.lesson} wrote no picture"
        for name in names:
            assert (out / name).is_file(), f"{section.lesson}: {name} missing"
            assert is_png_not_blank(out / name), f"{section.lesson}: {name} is blank"
    expected = ["rmsprop_paths.png", "rmsprop_mlp_val_loss.png", "hog_digit.png", "cnn_digits_model.png",
                "shallow_deep_weights.png", "cnn_l1_filters.png", "mlp_raw_256_loss.png",
                "mlp_hog_2_384_cm.png", "cnn_16_8_loss.png", "cnn_f_res_16_cm.png",
                "cnn_f_best_model.png", "fashion_m1_loss.png", "fashion_m3_f1.png",
                "fashion_m3_misclassified.png", "cnn_f_res_32_model.png", "fashion_m3_add_maps.png"]
    for name in expected:
        assert (out / name).is_file(), name


@needs_data
def test_report_holds_every_table_with_the_reports_scores_beside(quick_run):
    out, sections, _, _ = quick_run
    report = (out / "REPORT.md").read_text()
    for section in sections:
        assert f"## {section.title}" in report
        assert section.tables == TABLES[section.lesson]
        for table in section.tables:
            assert f"#### {table}\n" in report, table
    # the four grid tables: header, then one row per experiment of the report
    grid_rows = re.findall(r"^\| (.+?) \| !\[loss\]\((\w+)_loss\.png\) \| !\[confusion\]\(\w+_cm\.png\) "
                           r"\| Score: [\d.]+ Accuracy: [\d.]+% \| (Score: [\d.]+ Accuracy: [\d.]+%) \|",
                           report, re.M)
    keys = [key for _, key, _ in grid_rows]
    assert keys[:17] == ["mlp_raw_256", "mlp_raw_128", "mlp_raw_384", "mlp_raw_300",
                         "mlp_hog_4_256", "mlp_hog_7_256", "mlp_hog_4_128", "mlp_hog_4_128_rerun",
                         "mlp_hog_2_384", "cnn_25", "cnn_8", "cnn_32", "cnn_16_8",
                         "cnn_f_25", "cnn_f_32", "cnn_f_res_16", "cnn_f_res_32"]
    assert keys[17:] == ["fashion_m1", "fashion_m2", "cnn_f_res_32"]
    assert grid_rows[0][2] == "Score: 0.0662 Accuracy: 98.39%"
    assert grid_rows[16][2] == "Score: 0.2731 Accuracy: 90.27%"
    # every picture the report shows is there, beside it
    for name in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report):
        assert (out / name).is_file(), name
    assert "203,530 | 203,530 | equal" in report and "7,465 | 7,465 | equal" in report
    assert "--quick" in report


@needs_data
def test_rmsprop_by_hand_and_tinynet_agree(quick_run):
    _, _, _, by_lesson = quick_run
    lines = [l for l in by_lesson["l1_rmsprop"].splitlines() if "by hand and tinynet" in l]
    assert len(lines) == len(l1_rmsprop.SETTINGS)
    assert all(" agree" in l for l in lines)


def test_rmsprop_by_hand_follows_the_equations():
    for _, settings in l1_rmsprop.SETTINGS:
        hand = l1_rmsprop.rmsprop_by_hand(l1_rmsprop.rosenbrock_gradient, l1_rmsprop.START, 0.005,
                                          200, **settings)
        ours = l1_rmsprop.rmsprop_tinynet(l1_rmsprop.rosenbrock_gradient, l1_rmsprop.START, 0.005,
                                          200, **settings)
        np.testing.assert_allclose(hand, ours, rtol=1e-12, atol=1e-12)
    # one step from s = 0: s = (1 - rho) g^2, so the step is eta g / sqrt((1 - rho) g^2 + eps)
    g = l1_rmsprop.rosenbrock_gradient(l1_rmsprop.START)
    step = l1_rmsprop.rmsprop_by_hand(l1_rmsprop.rosenbrock_gradient, l1_rmsprop.START, 0.01, 1)
    np.testing.assert_allclose(step[1], l1_rmsprop.START - 0.01 * g / np.sqrt(0.1 * g * g + 1e-7))


def test_lesson_names_resolve():
    assert runner.resolve([]) == list(common.LESSONS)
    assert runner.resolve(["l4", "fashion", "l1_rmsprop"]) == ["l4_grids", "l5_fashion", "l1_rmsprop"]
    with pytest.raises(SystemExit):
        runner.resolve(["l9"])


def test_quick_defaults():
    args = common.parse_args(["--quick"])
    assert (args.epochs, args.batch_size, args.train_size, args.test_size) == (1, 128, 6000, 1000)
    args = common.parse_args([])
    assert (args.epochs, args.train_size, args.test_size, args.out) == (10, None, None, "lessons_out")


@needs_data
def test_a_lesson_runs_alone_as_a_script(tmp_path):
    env = dict(os.environ, TINYNET_DATA=str(DATA_DIR), MPLBACKEND="Agg")
    done = subprocess.run([sys.executable, "-m", "lessons.l2_complexity", "--quick", "--out",
                           str(tmp_path)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert 'Model: "CNN"' in done.stdout
    assert accuracies(done.stdout) and min(accuracies(done.stdout)) > ABOVE_CHANCE
    assert (tmp_path / "cnn_digits_model.png").is_file() and (tmp_path / "hog_digit.png").is_file()
    assert not (tmp_path / "REPORT.md").exists()  # only the runner writes the report
