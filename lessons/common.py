"""What the lessons share that is not their subject: the options, loading and scaling the data,
and writing REPORT.md. Models are built, compiled, trained and evaluated in the lessons themselves.

A lesson is a page that runs from top to bottom. Its first code cell calls :func:`options`,
which reads the command line (``python -m lessons.l5_fashion --quick``), the options given by
the runner (``python -m lessons l5_fashion --quick``), or, where there are none (a notebook, an
editor's Run button, ``python l5_fashion.py``), the environment variable ``TINYNET_LESSON_ARGS``
(for example ``--quick``; empty or unset means the full run).
"""
import argparse
import base64
import datetime
import os
import re
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinynet import backend, datasets, sysinfo, utils

LESSONS = ("l0_backprop", "l1_rmsprop", "l2_complexity", "l3_shallow_deep", "l4_grids",
           "l5_fashion")

DEFAULT_EPOCHS = 10
QUICK_EPOCHS = 1
QUICK_TRAIN, QUICK_TEST = 6000, 1000
DIGITS = [str(d) for d in range(10)]
FASHION = list(datasets.FASHION_CLASSES)


# ---- options --------------------------------------------------------------------------------
def build_parser(prog, with_names=False):
    p = argparse.ArgumentParser(
        prog=prog, description="Reproduce the practical work's experiments with tinynet.")
    if with_names:
        p.add_argument("names", nargs="*", metavar="NAME",
                       help=f"lessons to run (default: all): {', '.join(LESSONS)}; "
                            "a prefix such as 'l4' is enough")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: the first {QUICK_TRAIN} training and {QUICK_TEST} test "
                        f"images, {QUICK_EPOCHS} epoch, one seed")
    p.add_argument("--out", default="lessons_out", help="folder for the PNGs (and REPORT.md)")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"training epochs (default {DEFAULT_EPOCHS}, {QUICK_EPOCHS} with --quick)")
    p.add_argument("--batch-size", type=int, default=128,
                   help="mini-batch size (default 128, tinynet's choice: the practical work does "
                        "not say; Keras's default is 32)")
    p.add_argument("--backend", default=None, choices=("auto",) + backend.BACKENDS,
                   help="numpy | numba | cupy (default: $TINYNET_BACKEND, else the fastest)")
    p.add_argument("--seed", type=int, default=0, help="first seed (initial weights, shuffling, dropout)")
    p.add_argument("--seeds", type=int, default=None,
                   help="how many seeds the four headline models are trained with "
                        "(default 1; the committed report used 3)")
    p.add_argument("--train-size", type=int, default=None,
                   help="use the first N training images (default: all, or the --quick subset)")
    p.add_argument("--test-size", type=int, default=None,
                   help="use the first N test images (default: all, or the --quick subset)")
    p.add_argument("--data", default=None, help="data folder (default: $TINYNET_DATA, then the cache)")
    return p


def finish_args(args):
    """Fill in the defaults that depend on --quick and check the numbers."""
    if args.epochs is None:
        args.epochs = QUICK_EPOCHS if args.quick else DEFAULT_EPOCHS
    if args.seeds is None:
        args.seeds = 1
    if args.epochs < 1 or args.batch_size < 1 or args.seeds < 1:
        raise SystemExit("--epochs, --batch-size and --seeds must be positive integers")
    if args.train_size is None and args.quick:
        args.train_size = QUICK_TRAIN
    if args.test_size is None and args.quick:
        args.test_size = QUICK_TEST
    args.out = Path(args.out)
    return args


def parse_args(argv=None, prog="python -m lessons", with_names=False):
    return finish_args(build_parser(prog, with_names).parse_args(argv))


_GIVEN = {"args": None}  # set by the runner (python -m lessons) for the pages it runs


def use_args(args):
    """The runner hands its options to the pages it runs next (``None`` to stop)."""
    _GIVEN["args"] = args


def options(lesson):
    """The options of this run of ``lesson``: the runner's, else the command line's, else (in a
    notebook, whose command line is the kernel's, or a page run without options)
    ``TINYNET_LESSON_ARGS``. Chooses the backend, creates ``--out`` and returns them."""
    args = _GIVEN["args"]
    if args is None:
        argv = [] if "ipykernel" in sys.modules else sys.argv[1:]
        if not argv:
            argv = shlex.split(os.environ.get("TINYNET_LESSON_ARGS", ""))
        args = parse_args(argv, prog=f"python -m lessons.{lesson}")
    if args.backend:
        backend.set_backend(args.backend)
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def seeds(args):
    """The seeds of the headline models: ``--seed``, ``--seed + 1``, ... (``--seeds`` of them)."""
    return [args.seed + k for k in range(args.seeds)]


# ---- data -----------------------------------------------------------------------------------
@dataclass
class Data:
    """One data set as uint8 images ``(N, 28, 28)`` and integer labels, with its class names."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list

    @property
    def sizes(self):
        return f"{len(self.x_train):,} training and {len(self.x_test):,} test images"


_LOADED = {}


def load(name, args):
    """``"mnist"`` or ``"fashion"``, cut to ``--train-size`` / ``--test-size`` (kept in memory)."""
    key = (name, args.train_size, args.test_size, args.data)
    if key not in _LOADED:
        loader, class_names = {"mnist": (datasets.load_mnist, DIGITS),
                               "fashion": (datasets.load_fashion_mnist, FASHION)}[name]
        (x_train, y_train), (x_test, y_test) = loader(args.data)
        _LOADED[key] = Data(name, x_train[:args.train_size], y_train[:args.train_size].astype(np.int64),
                            x_test[:args.test_size], y_test[:args.test_size].astype(np.int64),
                            class_names)
    return _LOADED[key]


def pixels(images):
    """uint8 images ``(N, 28, 28)`` -> float32 vectors ``(N, 784)`` in [0, 1] (for the MLPs)."""
    return (images.astype(np.float32) / np.float32(255.0)).reshape(len(images), -1)


def images(images):
    """uint8 images ``(N, 28, 28)`` -> float32 ``(N, 28, 28, 1)`` in [0, 1] (for the CNNs)."""
    return (images.astype(np.float32) / np.float32(255.0)).reshape(len(images), 28, 28, 1)


def hog(images, pixels_per_cell, orientations=8, cache=True):
    """HOG features of uint8 images, one row per image (1x1-cell blocks, as the practical work).
    ``cache=False`` computes them again instead of reading tinynet's feature cache."""
    from tinynet.features import hog_features
    return hog_features(images, orientations=orientations,
                        pixels_per_cell=(pixels_per_cell, pixels_per_cell), cells_per_block=(1, 1),
                        cache=cache, progress=False)


def one_hot(labels):
    return utils.to_categorical(labels, 10)


# ---- numbers in words -----------------------------------------------------------------------
def score(loss, accuracy):
    """The practical work's way of writing a result: ``Score: 0.0662 Accuracy: 98.39%``."""
    return f"Score: {loss:.4f} Accuracy: {accuracy:.2%}"


def mean_std(values, percent=True):
    """``98.07% ± 0.08`` (points) for several values, the value alone for one."""
    values = np.asarray(values, dtype=np.float64)
    if percent:
        text = f"{values.mean():.2%}"
        return text if len(values) == 1 else f"{text} ± {100 * values.std(ddof=1):.2f}"
    text = f"{values.mean():.4f}"
    return text if len(values) == 1 else f"{text} ± {values.std(ddof=1):.4f}"


def duration(seconds, compiled=False, digits=1):
    """``12.3 s`` (or minutes); ``compiled``: the time includes numba compiling tinynet's kernels,
    which a first run after installation does (later runs load them from numba's cache)."""
    text = f"{seconds:.{digits}f} s" if seconds < 600 else f"{seconds / 60:.1f} min"
    return f"{text} (with compiling the kernels, once)" if compiled else text


def runs_duration(runs, per=1, digits=1):
    """:func:`duration` of the runs' mean ``seconds`` (divided by ``per``, e.g. the epochs),
    marked as including compilation where one of the runs compiled."""
    return duration(np.mean([r["seconds"] for r in runs]) / per,
                    any(r["compiled"] for r in runs), digits)


def ahead_in_accuracy(name, accuracy, than):
    """How the best accuracy ``accuracy`` (of row ``name``) compares with ``than``, in points; the
    same where both show as the same percentage (a mean of 0.98559999 and one of 0.9856 are
    both 98.56% in the tables) or their gap as 0.00 points."""
    if f"{accuracy:.2%}" == f"{than:.2%}" or f"{100 * (accuracy - than):.2f}" == "0.00":
        return f"`{name}` has the same accuracy, {accuracy:.2%}"
    return f"the highest accuracy is `{name}`'s, {100 * (accuracy - than):.2f} points higher"


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``, and ``t.compiled``: whether numba compiled
    one of tinynet's kernels meanwhile (its time is then part of ``t.seconds``)."""

    def __enter__(self):
        self.compilations = backend.compilations()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.started
        self.compiled = backend.compilations() > self.compilations


# ---- REPORT.md ------------------------------------------------------------------------------
def cell(value):
    """A Markdown table cell: ``|`` escaped (it would end the cell), line breaks removed."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def md_table(headers, rows):
    lines = ["| " + " | ".join(cell(h) for h in headers) + " |",
             "|" + "|".join(" :---: " for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


_PICTURE_PATHS = {}  # a picture's file name -> its path, for showing it in a notebook


def img(path, alt=""):
    """A picture in Markdown, by file name (REPORT.md sits in the pictures' folder)."""
    name = Path(path).name
    _PICTURE_PATHS[name] = Path(path)
    return f"![{alt or name}]({name})"


def in_notebook():
    """Whether the page runs in a Jupyter kernel (opened as a notebook, or ``--notebooks``)."""
    return "ipykernel" in sys.modules


def _embedded(markdown):
    """``markdown`` with its pictures (``![alt](name.png)``) embedded as data, so that a notebook
    shows them wherever it is opened."""
    def embed(match):
        path = _PICTURE_PATHS.get(match.group(2))
        if path is None or not path.is_file():
            return match.group(0)
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f"![{match.group(1)}](data:image/png;base64,{data})"
    return re.sub(r"!\[([^]]*)\]\(([^)\s]+\.png)\)", embed, markdown)


def show(markdown):
    """Show a block of the report where the page runs: rendered in a notebook (tables, maths,
    pictures), as Markdown text in a terminal."""
    if in_notebook():  # (a front end that shows no Markdown, a console, gets the text)
        from IPython.display import display
        display({"text/markdown": _embedded(markdown), "text/plain": markdown}, raw=True)
    else:
        print(f"\n{markdown}")


@dataclass
class Section:
    """A lesson's part of REPORT.md: Markdown blocks in order, its tables and pictures by name."""

    title: str
    lesson: str
    blocks: list = field(default_factory=list)
    tables: list = field(default_factory=list)
    pictures: list = field(default_factory=list)

    def text(self, markdown):
        self.blocks.append(markdown.strip())
        show(self.blocks[-1])

    def table(self, name, headers, rows):
        self.tables.append(name)
        self.blocks.append(f"#### {name}\n\n" + md_table(headers, rows))
        show(self.blocks[-1])

    def picture(self, *paths, caption=""):
        """One line of pictures (PNG paths), with an optional caption above."""
        if caption:
            self.blocks.append(caption.strip())
        self.pictures += [Path(p).name for p in paths]
        self.blocks.append(" ".join(img(p, Path(p).stem) for p in paths))
        if in_notebook():
            show(((caption.strip() + "\n\n") if caption else "") + self.blocks[-1])
            return
        if caption:
            show(caption.strip())
        for p in paths:  # say where it is: a page run on its own leaves no report to look in
            print(f"picture: {p}")


def describe_run(args):
    first = lambda size: f"the first {size:,}" if size else "all the"  # noqa: E731
    subset = (f"{first(args.train_size)} training and {first(args.test_size)} test images"
              if (args.train_size or args.test_size) else "the whole data sets (60,000 / 10,000)")
    cores = sysinfo.usable_cpus()
    return [
        f"- Data: {subset}" + (" (a `--quick` smoke run: the scores are not comparable with the "
                               "practical work's)" if args.quick else ""),
        f"- Training: RMSprop (Keras's defaults unless stated), categorical cross-entropy, batch "
        f"{args.batch_size} and {args.epochs} epoch(s). The practical work gives neither a batch "
        "size nor a number of epochs: these are tinynet's choice (Keras's default batch is 32).",
        (f"- Seeds: {', '.join(map(str, seeds(args)))} for the four headline models (mean ± "
         f"standard deviation over the seeds), {args.seed} for the others"
         if len(seeds(args)) > 1 else f"- Seed: {args.seed} for every model (one run each; "
                                      "`--seeds 3` gives the spread over seeds)"),
        "- Validation data: the test set, as in the practical work's notebooks. \"Score\" is the test "
        "loss and \"Accuracy\" the test accuracy after the last epoch.",
        f"- Backend: {backend.get_backend()}; machine: {sysinfo.cpu_model()}, {cores} CPU core(s) "
        "shared with other work, so times are indicative",
    ]


def source_commit():
    """The git commit of the code that runs (``None`` outside a git checkout)."""
    import subprocess
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).resolve().parent,
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def write_report(sections, args, out, seconds, command, commit=None):
    """REPORT.md in ``out``: a header with the settings, then every lesson's section."""
    head = [
        "# Practical Work 04 with tinynet",
        "",
        "The practical work's experiments rerun with tinynet. Each lesson in `lessons/` is the page "
        "that produced its section: the models are built, compiled, trained and evaluated there. "
        "Every number in the text below is computed from this run. A rerun can differ in the "
        "last digits: float32 sums round differently on another machine and, for the MLPs, with "
        "the number of threads BLAS runs on, which tinynet fits to the machine's load (README, "
        "Conventions); the seed spreads below show how much more a seed moves them.",
        "",
        f"- Generated {datetime.date.today().isoformat()} by `{command}` in {duration(seconds)}"
        + (f", tinynet at commit {commit}" if commit else ""),
        *describe_run(args),
        "",
    ]
    body = []
    for s in sections:
        body += [f"## {s.title}", ""]
        for block in s.blocks:
            body += [block, ""]
    path = Path(out) / "REPORT.md"
    path.write_text("\n".join(head + body))
    return path
