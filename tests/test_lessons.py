"""The lessons: every page runs in --quick mode on the real data (all of them in this process,
through ``python -m lessons``'s ``main``, so numba compiles once), prints its scores, writes its
pictures and its part of REPORT.md; lesson 0's comparisons hold; the exercise checker passes the
reference solutions and fails wrong ones; a page also runs alone, as a module, as a script and
(with the notebooks extra) as a notebook.
"""
import contextlib
import importlib.util
import inspect
import io
import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from lessons import __main__ as runner
from lessons import check, common, practical_work

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("TINYNET_DATA", REPO.parent / "shared" / "data")).resolve()
HAVE_DATA = (DATA_DIR / "mnist").is_dir() and (DATA_DIR / "fashion-mnist").is_dir()
needs_data = pytest.mark.skipif(not HAVE_DATA, reason=f"real data not found in {DATA_DIR} (set TINYNET_DATA)")
PAGES = sorted(REPO.glob("lessons/l[0-9]_*.py"))

# --quick trains on 6,000 images for one epoch: the MLPs reach 0.85-0.95 test accuracy, the CNNs
# are only starting (0.2-0.8). Chance is 0.10; with 1,000 test images its standard deviation is 0.01.
ABOVE_CHANCE = 0.15


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    if not HAVE_DATA:
        pytest.skip(f"real data not found in {DATA_DIR} (set TINYNET_DATA)")
    out = tmp_path_factory.mktemp("lessons_out")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        pages = runner.main(["--quick", "--seeds", "2", "--out", str(out), "--data", str(DATA_DIR)])
    text = printed.getvalue()
    by_lesson = dict(re.findall(r"######## (l\d_\w+) ########\n(.*?)######## \1:", text, re.S))
    return out, pages, text, by_lesson


def accuracies(text):
    return [float(v) for v in re.findall(r"Test score: [\d.]+ Test accuracy: ([\d.]+)", text)]


def is_png_not_blank(path):
    image = imread(str(path))
    return image.ndim == 3 and image.shape[0] > 50 and image.shape[1] > 50 and image[..., :3].var() > 0


# ---- the pages themselves --------------------------------------------------------------------
def test_every_lesson_is_a_page_with_the_model_code_in_view():
    assert [p.stem for p in PAGES] == list(common.LESSONS)
    for page in PAGES:
        source = page.read_text()
        assert source.startswith("# %% [markdown]\n# # Lesson"), f"{page.name} must open with a title cell"
        assert source.count("# %% [markdown]") >= 3 and len(re.findall(r"^# %%$", source, re.M)) >= 3, page.name
        assert "$$" in source or "$" in source, f"{page.name} states no maths"
        assert "def main(" not in source, f"{page.name} hides its code in a function run at the end"
    for name in ("l1_rmsprop", "l3_shallow_deep", "l4_grids", "l5_fashion"):
        source = (REPO / "lessons" / f"{name}.py").read_text()
        for call in (".compile(", ".fit(", ".evaluate(", ".summary()"):
            assert call in source, f"{name} does not call {call} itself"
    helpers = (REPO / "lessons" / "common.py").read_text() + (REPO / "lessons" / "drawing.py").read_text()
    for call in (".compile(", ".fit(", ".evaluate("):
        assert call not in helpers, f"a helper trains models ({call}): that belongs in the lessons"


def test_no_machine_paths_in_the_lessons():
    for path in list((REPO / "lessons").rglob("*.py")) + list((REPO / "lessons").rglob("*.md")):
        assert "/work/" not in path.read_text(), path


# ---- the quick run of every lesson -----------------------------------------------------------
@needs_data
def test_every_lesson_runs_and_prints_its_scores(quick_run):
    _, pages, _, by_lesson = quick_run
    assert list(pages) == list(common.LESSONS) == list(by_lesson)
    for lesson, text in by_lesson.items():
        if lesson in ("l0_backprop", "l2_complexity"):   # no training: summaries and counts
            assert 'Model: "' in text
            continue
        values = accuracies(text)
        assert values, f"{lesson} printed no 'Test score: ... Test accuracy: ...' line"
        assert max(values) > 0.6, (lesson, values)
        assert 'Model: "' in text, f"{lesson} printed no model summary"
    # epsilon=1.0 makes RMSprop plain gradient descent with a tiny step: the one run allowed near chance
    slow = pages["l1_rmsprop"]["results"].pop("epsilon=1.0")
    assert slow[0] > pages["l1_rmsprop"]["results"]["defaults"][0]
    for label, (loss, accuracy, *_) in pages["l1_rmsprop"]["results"].items():
        assert accuracy > 0.5, label
    for key, runs in pages["l4_grids"]["results"].items():
        assert all(r["accuracy"] > ABOVE_CHANCE for r in runs), key


@needs_data
def test_headline_models_run_with_every_seed_and_seeds_differ(quick_run):
    _, pages, _, _ = quick_run
    l3, l4, l5 = pages["l3_shallow_deep"], pages["l4_grids"], pages["l5_fashion"]
    for name, runs in l3["results"].items():
        assert len(runs) == 2, name
        assert runs[0]["accuracy"] != runs[1]["accuracy"] or runs[0]["loss"] != runs[1]["loss"], name
    for key in practical_work.HEADLINE:
        assert len(l4["results"][key]) == 2, key
    assert len(l4["results"]["cnn_25"]) == 2 and len(l4["results"]["cnn_8"]) == 1
    assert len(l5["results"]["model 3"]) == 2 and len(l5["results"]["model 1"]) == 1
    # the same seed gives the same model in two lessons
    assert l3["results"]["MLP raw"][0]["loss"] == pytest.approx(l4["results"]["mlp_raw_256"][0]["loss"], abs=1e-6)


@needs_data
def test_every_lesson_writes_its_pictures(quick_run):
    out, pages, _, _ = quick_run
    for name, page in pages.items():
        assert page["section"].pictures, f"{name} wrote no picture"
        for picture in page["section"].pictures:
            assert (out / picture).is_file(), f"{name}: {picture} missing"
            assert is_png_not_blank(out / picture), f"{name}: {picture} is blank"
    for picture in ["rmsprop_paths.png", "rmsprop_mlp_test_loss.png", "hog_digit.png", "cnn_digits_model.png",
                    "shallow_deep_accuracy.png", "cnn_see_it_learn.png", "mlp_raw_templates.png",
                    "mlp_raw_256_loss.png", "mlp_hog_2_384_cm.png", "grid_cnn_accuracy.png",
                    "grid_cnn_f_best_model.png", "fashion_m3_f1.png", "fashion_m3_misclassified.png",
                    "fashion_model_3_model.png", "fashion_m3_add_maps.png"]:
        assert (out / picture).is_file(), picture


def table_cells(line):
    """The cells of a Markdown table row: split on | that are not escaped."""
    return re.split(r"(?<!\\)\|", line.strip().strip("|"))


@needs_data
def test_report_holds_every_section_and_well_formed_tables(quick_run):
    out, pages, _, _ = quick_run
    report = (out / "REPORT.md").read_text()
    for page in pages.values():
        section = page["section"]
        assert f"## {section.title}\n" in report
        for table in section.tables:
            assert f"#### {table}\n" in report, table
    assert "--quick" in report and "tinynet's choice (Keras's default batch is 32)" in report
    # every table: header, separator and rows have the same number of cells
    tables = re.findall(r"((?:^\|.*\|\n)+)", report, re.M)
    assert len(tables) >= 15
    for table in tables:
        widths = {len(table_cells(line)) for line in table.strip().splitlines()}
        assert len(widths) == 1, table[:300]
    assert "max \\|hand - tinynet\\|" in report
    grid_keys = re.findall(r"!\[loss\]\((\w+)_loss\.png\)", report)
    assert grid_keys == [r.key for rows in practical_work.GRIDS.values() for r in rows]
    assert "Score: 0.0662 Accuracy: 98.39%" in report and "Score: 0.2731 Accuracy: 90.27%" in report
    for name in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report):
        assert (out / name).is_file(), name
    assert "203,530 | 203,530" in report and "7,465 | 7,465" in report


def test_the_committed_report_is_a_full_run_with_its_pictures():
    folder = REPO / "lessons" / "report"
    report = (folder / "REPORT.md").read_text()
    assert "--quick" not in report and "--seeds 3" in report
    assert "the whole data sets (60,000 / 10,000)" in report
    for title in ("0. Backpropagation by hand", "1. RMSprop", "2. Model complexity",
                  "3. Shallow and deep networks", "4. Hyper-parameter grids", "5. Fashion-MNIST CNNs"):
        assert f"## {title}\n" in report, title
    linked = set(re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report))
    present = {p.name for p in folder.glob("*.png")}
    assert linked == present, (linked ^ present)   # every picture shown, none left over
    total = sum(p.stat().st_size for p in folder.iterdir())
    assert total < 6 * 2 ** 20, f"lessons/report/ holds {total / 2 ** 20:.1f} MB (at most 6)"
    for table in re.findall(r"((?:^\|.*\|\n)+)", report, re.M):
        assert len({len(table_cells(line)) for line in table.strip().splitlines()}) == 1, table[:200]


# ---- lesson 0 and lesson 1: the numbers by hand ------------------------------------------------
@needs_data
def test_lesson_0_compares_every_step_below_its_bound(quick_run):
    _, pages, _, by_lesson = quick_run
    l0 = pages["l0_backprop"]
    what = [w for w, _, _ in l0["comparisons"]]
    assert len(what) == 14 and any("RMSprop" in w for w in what) and any("col2im" in w for w in what)
    assert all(diff < bound for _, diff, bound in l0["comparisons"])
    assert sum(bound == 1e-10 for _, _, bound in l0["comparisons"]) == 13
    assert by_lesson["l0_backprop"].count("max |difference|") == 14
    assert l0["ties"] >= 1, "the pooling example must hold a tie"
    with pytest.raises(AssertionError, match="differ by"):
        l0["compare"]("a wrong gradient", np.array([1.0]), np.array([1.0 + 1e-8]))


def run_page(name, args):
    """Run one page in this process with ``args`` (no data needed for l0 and l1's first part)."""
    return runner.run_lesson(name, common.parse_args(args))


def test_lesson_0_runs_without_data(tmp_path):
    page = run_page("l0_backprop", ["--out", str(tmp_path)])
    assert max(d for _, d, b in page["comparisons"] if b == 1e-10) < 1e-12
    from tinynet import backend
    assert backend.floatx() == "float32", "lesson 0 must restore the default float type"


@needs_data
def test_rmsprop_by_hand_follows_the_equations(quick_run):
    l1 = quick_run[1]["l1_rmsprop"]
    grad, start = l1["rosenbrock_gradient"], l1["START"]
    for settings in l1["SETTINGS"].values():
        hand = l1["rmsprop_by_hand"](grad, start, 0.005, 200, **settings)
        np.testing.assert_allclose(hand, l1["rmsprop_tinynet"](grad, start, 0.005, 200, **settings),
                                   rtol=1e-12, atol=1e-12)
    g = grad(start)   # one step from s = 0: s = (1 - rho) g^2
    step = l1["rmsprop_by_hand"](grad, start, 0.01, 1)
    np.testing.assert_allclose(step[1], start - 0.01 * g / np.sqrt(0.1 * g * g + 1e-7))


# ---- the discussion points are computed from the run ------------------------------------------
@needs_data
def test_discussion_points_are_the_runs_numbers(quick_run):
    out, pages, _, _ = quick_run
    report = (out / "REPORT.md").read_text()
    l5 = pages["l5_fashion"]
    val_loss = l5["results"]["model 1"][0]["history"].history["val_loss"]
    assert len(val_loss) == 1 and "With one epoch there is no curve to read" in report
    assert "lowest after epoch" not in report.split("## 5.")[1]  # one epoch has no lowest
    gap = l5["results"]["model 1"][0]["loss"] - l5["results"]["model 1"][0]["train_loss"]
    assert f"a gap of {gap:.4f}" in report
    loss = {name: np.mean([r["loss"] for r in runs]) for name, runs in l5["results"].items()}
    ranks = ["lowest", "second", "highest"]
    order = sorted(loss, key=loss.get)        # by the mean over the seeds (model 3 has two here)
    assert f"{loss['model 1']:.4f} against the practical\nwork's 0.445, is the {ranks[order.index('model 1')]}" in report
    assert f"Its test loss is the {ranks[order.index('model 3')]} of the three" in report
    hardest = pages["l5_fashion"]["names"][int(np.argmin(l5["f1"]["model 3"]))]
    assert f"**The hardest classes for model 3**: *{hardest}*" in report
    l3 = pages["l3_shallow_deep"]
    cm = l3["cnn_cm"].copy()
    np.fill_diagonal(cm, 0)
    t, p = np.unravel_index(np.argmax(cm), cm.shape)
    assert f"its most frequent\nmistake ({t} taken for {p}) happens {cm[t, p]} times" in report
    assert f"**The deep CNN has {l3['share']:.1%} of the MLP's weights.**" in report and 0.03 < l3["share"] < 0.04
    l4 = pages["l4_grids"]
    ours, theirs = l4["best_rows"]["MNIST digits CNN"]
    assert theirs.key == "cnn_32"   # the practical work keeps the row of lowest test loss
    means = {k: np.mean([r["loss"] for r in runs]) for k, runs in l4["results"].items() if k.startswith("cnn_") and not k.startswith("cnn_f")}
    assert ours.key == min(means, key=means.get)
    for key in practical_work.HEADLINE:   # the seeds' spread, as standard deviations
        acc, loss = ([r[m] for r in l4["results"][key]] for m in ("accuracy", "loss"))
        assert (f"`{key}` accuracy ± {100 * np.std(acc, ddof=1):.2f} points, test loss ± "
                f"{np.std(loss, ddof=1):.4f}") in report
    sigma = np.std([r["loss"] for r in l4["results"]["cnn_25"]], ddof=1)
    lead = sorted(means.values())[1] - min(means.values())
    assert (f"{lead:+.4f} (a lead under twice this table's seed spread, ± {sigma:.4f}: a tie)" in report) \
        == (lead < 2 * sigma)
    assert f"almost {practical_work.REPORT_HOG_MINUTES_LAPTOP} minutes" in report


# ---- exercises and their checker --------------------------------------------------------------
def test_checker_passes_the_reference_solutions(capsys):
    assert check.main(["--solutions"]) == 0
    printed = capsys.readouterr().out
    assert printed.count(" passed: ") == len(check.EXERCISES) and "5 of 5 exercises pass" in printed


def test_checker_says_which_exercises_are_not_written(capsys):
    assert check.main([]) == 1
    printed = capsys.readouterr().out
    assert printed.count(" not written: ") == len(check.EXERCISES)
    assert "//" not in printed and "floor(" not in printed  # the task, not its answer


def _solution(name):
    return importlib.import_module(f"lessons.exercises.solutions.{name}")


WRONG = {  # a plausible mistake per exercise
    "ex1_dense_backward": types.SimpleNamespace(
        dense_backward=lambda x, W, b, g: (g @ W.T, x.T @ g, g.mean(axis=0))),      # mean, not sum
    "ex2_conv_shapes": types.SimpleNamespace(
        conv_output_size=lambda n, k, s=1, padding="valid": (n - k) // s + 1,     # 'same' forgotten
        conv_params=lambda kh, kw, c, f: kh * kw * c * f + f),
    "ex3_rmsprop_step": types.SimpleNamespace(                                     # epsilon outside the root
        rmsprop_step=lambda t, g, s, learning_rate=0.001, rho=0.9, epsilon=1e-7: (
            t - learning_rate * g / (np.sqrt(rho * s + (1 - rho) * (g * g)) + epsilon), rho * s + (1 - rho) * (g * g))),
    "ex4_maxpool_backward": types.SimpleNamespace(                                 # spreads over ties
        maxpool_backward=lambda x, go, pool=2: np.where(
            x == np.repeat(np.repeat(x.reshape(x.shape[0], x.shape[1] // pool, pool, x.shape[2] // pool, pool,
                                               x.shape[3]).max(axis=(2, 4)), pool, 1), pool, 2),
            np.repeat(np.repeat(go, pool, 1), pool, 2), 0.0) if x.shape[1] % pool == 0 and x.shape[2] % pool == 0
        else np.zeros_like(x)),
    "ex5_confusion_f1": types.SimpleNamespace(                                     # rows and columns swapped
        confusion_matrix=lambda yt, yp, k: _solution("ex5_confusion_f1").confusion_matrix(yp, yt, k),
        f1_scores=lambda cm: _solution("ex5_confusion_f1").f1_scores(cm)),
}


@pytest.mark.parametrize("name", check.EXERCISES)
def test_checker_fails_a_wrong_answer_with_a_hint(name):
    status, detail = check.check(name, WRONG[name])
    assert status == "failed", detail
    assert "Hint:" in detail
    if name == "ex4_maxpool_backward":  # where, not only how much (it read like a rounding error)
        assert re.search(r"at index \(\d+, \d+, \d+, \d+\) \(yours .*, tinynet's 0\); \d+ of "
                         r"\d+ entries differ", detail), detail
    assert check.check(name, _solution(name))[0] == "passed"


def test_checker_reports_an_exception_and_a_changed_input():
    broken = types.SimpleNamespace(dense_backward=lambda x, W, b, g: (g @ W, x.T @ g, g.sum(0)))
    status, detail = check.check("ex1_dense_backward", broken)
    assert status in ("error", "failed") and detail

    def in_place(theta, g, s, learning_rate=0.001, rho=0.9, epsilon=1e-7):
        s = rho * s + (1 - rho) * (g * g)
        theta -= learning_rate * g / np.sqrt(s + epsilon)
        return theta, s
    status, detail = check.check("ex3_rmsprop_step", types.SimpleNamespace(rmsprop_step=in_place))
    assert status == "failed" and "changed the theta" in detail


def _f1_without_zero_rule(cm, nan=None):
    cm = np.asarray(cm, dtype=float)
    with np.errstate(all="ignore"):
        p, r = np.diag(cm) / cm.sum(axis=0), np.diag(cm) / cm.sum(axis=1)
        f1 = 2 * p * r / (p + r)
    return f1 if nan is None else np.nan_to_num(f1, nan=nan)


def _rmsprop(t, g, s, learning_rate=0.001, rho=0.9, epsilon=1e-7, sign=-1, keep_s=False, swap=False):
    new_s = (1 - rho) * s + rho * (g * g) if swap else rho * s + (1 - rho) * (g * g)
    return t + sign * learning_rate * g / np.sqrt(new_s + epsilon), (s if keep_s else new_s)


def _in_place_g(t, g, s, learning_rate=0.001, rho=0.9, epsilon=1e-7):
    s = rho * s + (1 - rho) * (g * g)
    g /= np.sqrt(s + epsilon)
    return t - learning_rate * g, s


MISTAKES = [  # (exercise, a plausible mistake, what the verdict must say about it)
    ("ex1_dense_backward", dict(dense_backward=lambda x, W, b, g: (-(g @ W.T), -(x.T @ g), -g.sum(0))),
     "it is minus tinynet's: check the sign"),
    ("ex1_dense_backward", dict(dense_backward=lambda x, W, b, g: (g @ W.T, x.T @ g / len(x), g.sum(0))),
     "times 0.2 (1 / N, N = 5 the batch size"),
    ("ex1_dense_backward", dict(dense_backward=lambda x, W, b, g: ((g @ W.T).astype(np.float32), x.T @ g,
                                                                  g.sum(0))),
     "computed in float32"),
    ("ex2_conv_shapes", dict(conv_output_size=lambda n, k, s=1, p="valid": -(-n // s) if p == "same"
                             else round((n - k) / s) + 1, conv_params=lambda kh, kw, c, f: (kh * kw * c + 1) * f),
     "conv_output_size(11, 3, 3, 'valid') = 4"),
    ("ex2_conv_shapes", dict(conv_output_size=lambda n, k, s=1, p="valid": n / s if p == "same"
                             else (n - k) // s + 1, conv_params=lambda kh, kw, c, f: (kh * kw * c + 1) * f),
     "returned 7.5: a size counts pixels, a whole number"),
    ("ex2_conv_shapes", dict(conv_output_size=lambda n, k, s=1, p="valid": -(-n // s) if p == "same"
                             else (n - k) // s, conv_params=lambda kh, kw, c, f: (kh * kw * c + 1) * f),
     "one window short"),
    ("ex2_conv_shapes", dict(conv_output_size=lambda n, k, s=1, p="valid": -(-n // s) if p == "same"
                             else (n - k) // s + 1, conv_params=lambda kh, kw, c, f: kh * kw * c * f),
     "9 short, one for each of the 9 filters"),
    ("ex3_rmsprop_step", dict(rmsprop_step=lambda *a, **k: _rmsprop(*a, **k)[::-1]),
     "first value is the new s and its second the new theta"),
    ("ex3_rmsprop_step", dict(rmsprop_step=lambda *a, **k: _rmsprop(*a, **k, sign=+1)),
     "its change from the input you were given is minus tinynet's: check the sign"),
    ("ex3_rmsprop_step", dict(rmsprop_step=lambda *a, **k: tuple(v.astype(np.float32) for v in _rmsprop(*a, **k))),
     "computed in float32"),
    ("ex3_rmsprop_step", dict(rmsprop_step=lambda *a, **k: _rmsprop(*a, **k, keep_s=True)),
     "the s you return after step 1"),
    ("ex3_rmsprop_step", dict(rmsprop_step=lambda *a, **k: _rmsprop(*a, **k, swap=True)),
     "the s you return after step 1"),
    ("ex3_rmsprop_step", dict(rmsprop_step=_in_place_g), "changed the g array"),
    ("ex5_confusion_f1", dict(confusion_matrix=lambda t, p, k: _solution("ex5_confusion_f1").confusion_matrix(t, p, k).T,
                              f1_scores=lambda cm: _solution("ex5_confusion_f1").f1_scores(cm)),
     "it is the transpose of tinynet's"),
    ("ex5_confusion_f1", dict(confusion_matrix=lambda t, p, k: _solution("ex5_confusion_f1").confusion_matrix(t, p, k),
                              f1_scores=_f1_without_zero_rule), "it has NaN where tinynet's has 0"),
    ("ex5_confusion_f1", dict(confusion_matrix=lambda t, p, k: _solution("ex5_confusion_f1").confusion_matrix(t, p, k),
                              f1_scores=lambda cm: _f1_without_zero_rule(cm, nan=1.0)),
     "the F1 scores: largest difference from tinynet's 1"),
    ("ex5_confusion_f1", dict(confusion_matrix=lambda t, p, k: _solution("ex5_confusion_f1").confusion_matrix(t, p, k),
                              f1_scores=lambda cm: _solution("ex5_confusion_f1").f1_scores(cm) * np.r_[np.nan, np.ones(len(cm) - 1)]),
     "NaN in 1 of 3 entries where tinynet's has a number"),
]


@pytest.mark.parametrize("name,answer,says", MISTAKES, ids=[f"{m[0][:3]}-{i}" for i, m in enumerate(MISTAKES)])
def test_checker_names_the_mistake(name, answer, says):
    status, detail = check.check(name, types.SimpleNamespace(**answer))
    assert status == "failed" and says in detail and "Hint:" in detail, detail


def test_checker_accepts_a_whole_size_given_as_a_float():
    import math
    floats = types.SimpleNamespace(   # np.floor / math.ceil style: right values, float type
        conv_output_size=lambda n, k, s=1, p="valid": float(math.ceil(n / s)) if p == "same"
        else np.floor((n - k) / s) + 1, conv_params=lambda kh, kw, c, f: (kh * kw * c + 1) * f)
    assert check.check("ex2_conv_shapes", floats)[0] == "passed"


def test_checker_checks_answers_kept_in_another_folder_and_shows_their_failing_line(tmp_path, capsys):
    for name in check.EXERCISES:
        (tmp_path / f"{name}.py").write_text(inspect.getsource(_solution(name)))
    assert check.main(["--dir", str(tmp_path)]) == 0
    assert "5 of 5 exercises pass" in capsys.readouterr().out
    (tmp_path / "ex1_dense_backward.py").write_text(
        "import numpy as np\n\n\ndef dense_backward(x, W, b, grad_z):\n"
        "    return grad_z @ W.T, x.T @ grad_z, np.sum(grad_z, axis=(0, 1, 2))\n")
    (tmp_path / "ex2_conv_shapes.py").unlink()
    assert check.main(["ex1", "ex2", "--dir", str(tmp_path)]) == 1
    printed = capsys.readouterr().out
    assert "line 5 of ex1_dense_backward.py: return grad_z @ W.T" in printed   # the student's line
    assert f"not written: there is no {tmp_path / 'ex2_conv_shapes.py'}" in printed


def test_checker_goes_on_after_a_file_that_does_not_load(tmp_path, capsys):
    for name in check.EXERCISES:
        (tmp_path / f"{name}.py").write_text(inspect.getsource(_solution(name)))
    (tmp_path / "ex1_dense_backward.py").write_text("def dense_backward(x, W, b, grad_z)\n    pass\n")
    (tmp_path / "ex2_conv_shapes.py").write_text("import numpyy\n")
    assert check.main(["--dir", str(tmp_path)]) == 1
    printed = capsys.readouterr().out
    assert "ERROR: SyntaxError: expected ':' (line 1 of ex1_dense_backward.py: def dense_backward" \
        in printed
    assert "ERROR: ModuleNotFoundError: No module named 'numpyy' (line 1 of ex2_conv_shapes.py" \
        in printed
    assert printed.count(" passed: ") == 3 and "3 of 5 exercises pass" in printed


SHAPE_MISTAKES = [  # what came back instead of the tuple the exercise asks for
    ("ex1_dense_backward", dict(dense_backward=lambda x, W, b, g: None),
     "dense_backward returned None: a missing `return`? Hint: return the tuple (dx, dW, db)"),
    ("ex1_dense_backward", dict(dense_backward=lambda x, W, b, g: (g @ W.T, x.T @ g)),
     "dense_backward returned 2 values. Hint: return the tuple (dx, dW, db)"),
    ("ex3_rmsprop_step", dict(rmsprop_step=lambda *a, **k: _rmsprop(*a, **k)[0]),
     "rmsprop_step returned one array of shape (3, 4). Hint: return the tuple (theta, s)"),
    ("ex1_dense_backward", dict(dense_backward=lambda x, W, b, g: (x.T @ g, g @ W.T, g.sum(0))),
     "dense_backward returned the right arrays in the order (dW, dx, db). Hint: return the tuple "
     "(dx, dW, db)"),
]


@pytest.mark.parametrize("name,answer,says", SHAPE_MISTAKES,
                         ids=["none", "two", "one-array", "swapped"])
def test_checker_says_what_came_back_instead_of_the_tuple(name, answer, says):
    status, detail = check.check(name, types.SimpleNamespace(**answer))
    assert status == "failed" and says in detail, detail


def test_the_order_check_passes_right_arrays_in_the_right_order_when_two_are_equal():
    """dx and dW can be the same array (a square case): the order given is then not a swap."""
    a, b = np.eye(3), np.ones(3)
    assert len(check._returned((a, a.copy(), b), ("dx", "dW", "db"), "f", (a, a, b))) == 3
    with pytest.raises(check.Mismatch, match=r"in the order \(db, d[xW], d[xW]\)"):
        check._returned((b, a, a), ("dx", "dW", "db"), "f", (a, a, b))


def test_checker_accepts_lists_and_zero_dimensional_arrays():
    lists = types.SimpleNamespace(rmsprop_step=lambda *a, **k: [v.tolist() for v in _rmsprop(*a, **k)])
    assert check.check("ex3_rmsprop_step", lists)[0] == "passed"
    solution = _solution("ex2_conv_shapes")
    arrays = types.SimpleNamespace(conv_output_size=lambda *a: np.array(solution.conv_output_size(*a)),
                                   conv_params=solution.conv_params)
    assert check.check("ex2_conv_shapes", arrays)[0] == "passed"


def test_checker_explains_a_confusion_matrix_filled_with_fancy_indexing():
    def once_per_pair(y_true, y_pred, k):
        cm = np.zeros((k, k), int)
        cm[y_true, y_pred] += 1   # a repeated (true, predicted) pair adds 1 once
        return cm
    answer = types.SimpleNamespace(confusion_matrix=once_per_pair,
                                   f1_scores=_solution("ex5_confusion_f1").f1_scores)
    status, detail = check.check("ex5_confusion_f1", answer)
    assert status == "failed" and "each (true, predicted) pair is counted once" in detail \
        and "np.add.at" in detail, detail


def test_check_runs_as_a_module():
    done = subprocess.run([sys.executable, "-m", "lessons.check", "--solutions"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    done = subprocess.run([sys.executable, "-m", "lessons.check", "ex2"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "ex2_conv_shapes" in done.stdout and "ex1" not in done.stdout


# ---- a page runs alone: as a module, as a script, as a notebook -------------------------------
def _env():
    return dict(os.environ, TINYNET_DATA=str(DATA_DIR), MPLBACKEND="Agg")


def test_a_page_runs_as_a_script_without_the_runner(tmp_path):
    done = subprocess.run([sys.executable, "lessons/l0_backprop.py", "--out", str(tmp_path)], cwd=REPO,
                          env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("max |difference|") == 14
    assert not (tmp_path / "REPORT.md").exists()  # only the runner writes the report
    # the page's summary and table are shown where it runs (they were only in the report)
    assert "#### Hand-written NumPy against tinynet" in done.stdout
    assert "| forward: probabilities |" in done.stdout


@needs_data
def test_a_page_runs_as_a_module(tmp_path):
    done = subprocess.run([sys.executable, "-m", "lessons.l2_complexity", "--quick", "--out", str(tmp_path)],
                          cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert 'Model: "CNN"' in done.stdout and "CNN: 7,465 weights, the practical work 7,465" in done.stdout
    assert (tmp_path / "cnn_digits_model.png").is_file() and (tmp_path / "hog_digit.png").is_file()


@pytest.mark.skipif(importlib.util.find_spec("jupytext") is None or importlib.util.find_spec("nbclient") is None,
                    reason="the notebooks extra is not installed (pip install -e \".[notebooks]\"): "
                           "jupytext and nbclient are needed to write executed notebooks")
def test_lessons_as_executed_notebooks(tmp_path):
    done = subprocess.run([sys.executable, "-m", "lessons", "--notebooks", str(tmp_path), "l0"], cwd=REPO,
                          env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    notebook = json.loads((tmp_path / "l0_backprop.ipynb").read_text())
    source = (REPO / "lessons" / "l0_backprop.py").read_text()
    assert len(notebook["cells"]) == source.count("# %%")
    printed = "".join("".join(o.get("text", "")) for c in notebook["cells"] for o in c.get("outputs", []))
    assert printed.count("max |difference|") == 14
    outputs = [o for c in notebook["cells"] for o in c.get("outputs", [])]
    assert not any(o.get("output_type") == "error" for o in outputs)
    assert "IProgress not found" not in printed and "execute_result" not in \
        {o["output_type"] for o in outputs}  # no tqdm warning, no stray Out[] of compare()
    # the summary's table and picture are shown in the notebook, the picture embedded
    shown = "".join("".join(o["data"].get("text/markdown", "")) for o in outputs
                    if o["output_type"] == "display_data")
    assert "#### Hand-written NumPy against tinynet" in shown
    assert "![maxpool_backward](data:image/png;base64," in shown


# ---- options ----------------------------------------------------------------------------------
def test_lesson_names_resolve():
    assert runner.resolve([]) == list(common.LESSONS)
    assert runner.resolve(["l4", "fashion", "l1_rmsprop", "l0"]) == ["l4_grids", "l5_fashion", "l1_rmsprop",
                                                                   "l0_backprop"]
    with pytest.raises(SystemExit):
        runner.resolve(["l9"])


def test_quick_defaults_and_seeds():
    args = common.parse_args(["--quick"])
    assert (args.epochs, args.batch_size, args.train_size, args.test_size, args.seeds) == (1, 128, 6000, 1000, 1)
    args = common.parse_args(["--seeds", "3", "--seed", "5"])
    assert (args.epochs, args.train_size, args.test_size, str(args.out)) == (10, None, None, "lessons_out")
    assert common.seeds(args) == [5, 6, 7]
    with pytest.raises(SystemExit):
        common.parse_args(["--seeds", "0"])
    assert common.mean_std([0.98, 0.99, 1.0]) == "99.00% ± 1.00"
    assert common.mean_std([0.5]) == "50.00%"


def test_markdown_cells_are_escaped():
    table = common.md_table(["max |a - b|", "x"], [["1 | 2", "y\nz"]])
    assert all(len(table_cells(line)) == 2 for line in table.splitlines())


def test_a_missing_data_set_stops_the_runner_with_its_message(tmp_path, monkeypatch):
    """Without the data (and no network) the runner printed a traceback part-way through."""
    from tinynet import datasets

    def missing(*args, **kwargs):
        raise datasets.DataNotFoundError("mnist: missing data files; put them in FOLDER")

    monkeypatch.setattr(datasets, "load_mnist", missing)
    monkeypatch.setattr(datasets.mnist, "load_data", missing, raising=False)
    with pytest.raises(SystemExit, match="lesson l2_complexity needs the data sets: mnist: "
                                         "missing data files; put them in FOLDER"):
        runner.main(["l2", "--quick", "--out", str(tmp_path)])


def test_a_shown_block_embeds_its_pictures_for_a_notebook(tmp_path):
    picture = tmp_path / "curve.png"
    picture.write_bytes(b"\x89PNG fake")
    markdown = f"| a | {common.img(picture, 'loss')} |"
    assert markdown == "| a | ![loss](curve.png) |"
    assert common._embedded(markdown) == "| a | ![loss](data:image/png;base64,iVBORyBmYWtl) |"
    assert common._embedded("![x](elsewhere.png)") == "![x](elsewhere.png)"  # unknown: as it is


def test_a_page_without_options_takes_them_from_the_environment(monkeypatch, tmp_path):
    # an editor's Run button or `python l5_fashion.py` gives no options: TINYNET_LESSON_ARGS does
    monkeypatch.setattr(common, "_GIVEN", {"args": None})
    monkeypatch.chdir(tmp_path)  # (the full run's default --out is created where it runs)
    monkeypatch.setattr(sys, "argv", ["l5_fashion.py"])
    monkeypatch.setenv("TINYNET_LESSON_ARGS", f"--quick --out {tmp_path / 'env'}")
    args = common.options("l5_fashion")
    assert (args.epochs, args.train_size, args.out) == (1, 6000, tmp_path / "env")
    # options on the command line win over the environment
    monkeypatch.setattr(sys, "argv", ["l5_fashion.py", "--epochs", "3", "--out", str(tmp_path / "cli")])
    args = common.options("l5_fashion")
    assert (args.epochs, args.train_size, args.out) == (3, None, tmp_path / "cli")
    # neither: the full run
    monkeypatch.setattr(sys, "argv", ["l5_fashion.py"])
    monkeypatch.delenv("TINYNET_LESSON_ARGS")
    assert common.options("l5_fashion").epochs == 10


def test_a_time_that_includes_compiling_says_so_and_a_tie_is_a_tie(monkeypatch):
    # a first run after installation compiles numba's kernels inside the first fit: lesson 4's
    # table showed 11.5 s for one row against 0.1-0.3 s for the others, as its training time
    counts = iter([3, 7, 7, 7])
    monkeypatch.setattr(common.backend, "compilations", lambda: next(counts))
    with common.Timer() as first:
        pass
    with common.Timer() as second:
        pass
    assert (first.compiled, second.compiled) == (True, False)
    assert common.duration(11.5, first.compiled) == "11.5 s (with compiling the kernels, once)"
    assert common.duration(0.0912, second.compiled, digits=2) == "0.09 s"
    # lesson 4 wrote "the highest accuracy is `cnn_32`'s, 0.00 points higher" of two rows that
    # both show 98.56% (means over seeds of 0.98559999... and 0.9856)
    assert common.ahead_in_accuracy("cnn_32", 0.9856, 0.9855999999) == \
        "`cnn_32` has the same accuracy, 98.56%"
    assert common.ahead_in_accuracy("a", 29570 / 30000, 29569 / 30000) == \
        "`a` has the same accuracy, 98.57%"  # one image of 30,000 apart: 98.57% and 98.56%
    assert common.ahead_in_accuracy("mlp_hog_2_384", 0.9850, 0.9826) == \
        "the highest accuracy is `mlp_hog_2_384`'s, 0.24 points higher"
