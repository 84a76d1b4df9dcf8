"""What every lesson shares: the command line, the data, the train-evaluate-plot routine and the
REPORT.md writer. The lessons themselves only say *which* models to train and what to show.

Data preparation, as in the practical work:

* pixels scaled to [0, 1]; images ``(N, 28, 28, 1)`` for the CNNs, vectors ``(N, 784)`` for the MLP;
* HOG features (``tinynet.features.hog_features``) computed on the raw uint8 images;
* one-hot labels (``tinynet.utils.to_categorical``).

Training, as in the practical work: RMSprop with Keras's defaults, batch 128, categorical
cross-entropy, accuracy; the *test set* is the validation data (as the report's notebooks do),
so the curves' "validation" is the test score after each epoch. Nothing is tuned on it here: the
hyper-parameters are the report's.
"""
import argparse
import datetime
import functools
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinynet import backend, datasets, layers, metrics, optimizers, plots, utils

LESSONS = ("l1_rmsprop", "l2_complexity", "l3_shallow_deep", "l4_grids", "l5_fashion")

DEFAULT_EPOCHS = 10
QUICK_EPOCHS = 1
QUICK_TRAIN, QUICK_TEST = 6000, 1000
DIGITS = [str(d) for d in range(10)]


# ---- command line ---------------------------------------------------------------------------
def build_parser(prog, with_names=False):
    p = argparse.ArgumentParser(
        prog=prog, description="Reproduce the practical work's experiments with tinynet.")
    if with_names:
        p.add_argument("names", nargs="*", metavar="NAME",
                       help=f"lessons to run (default: all): {', '.join(LESSONS)}; "
                            "a prefix such as 'l4' is enough")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: the first {QUICK_TRAIN} training and {QUICK_TEST} test images, "
                        f"{QUICK_EPOCHS} epoch")
    p.add_argument("--out", default="lessons_out", help="folder for the PNGs (and REPORT.md)")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"training epochs (default {DEFAULT_EPOCHS}, {QUICK_EPOCHS} with --quick)")
    p.add_argument("--batch-size", type=int, default=128, help="mini-batch size (default 128)")
    p.add_argument("--backend", default=None, choices=("auto",) + backend.BACKENDS,
                   help="numpy | numba | cupy (default: $TINYNET_BACKEND, else the fastest)")
    p.add_argument("--seed", type=int, default=0, help="seed of initial weights, shuffling, dropout")
    p.add_argument("--train-size", type=int, default=None,
                   help="use the first N training images (default: all, or the --quick subset)")
    p.add_argument("--test-size", type=int, default=None,
                   help="use the first N test images (default: all, or the --quick subset)")
    p.add_argument("--data", default=None, help="data folder (default: $TINYNET_DATA, then the cache)")
    return p


def parse_args(argv=None, prog="python -m lessons", with_names=False):
    """Parse ``argv`` (a list of strings, or None for sys.argv) and fill in the defaults."""
    if isinstance(argv, argparse.Namespace):
        return argv
    args = build_parser(prog, with_names).parse_args(argv)
    return finish_args(args)


def finish_args(args):
    if args.epochs is None:
        args.epochs = QUICK_EPOCHS if args.quick else DEFAULT_EPOCHS
    if args.epochs < 1 or args.batch_size < 1:
        raise SystemExit("--epochs and --batch-size must be positive")
    if args.train_size is None and args.quick:
        args.train_size = QUICK_TRAIN
    if args.test_size is None and args.quick:
        args.test_size = QUICK_TEST
    return args


def setup(args):
    """Choose the backend and create the output folder; return it as a Path."""
    if args.backend:
        backend.set_backend(args.backend)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def run_standalone(main, module_name):
    """``python -m lessons.lN_xxx [options]``: run one lesson with the shared options."""
    args = parse_args(None, prog=f"python -m lessons.{module_name}")
    started = time.perf_counter()
    section = main(args)
    print(f"\n{section.title}: done in {time.perf_counter() - started:.1f} s; "
          f"pictures in {Path(args.out).resolve()}")


# ---- data -----------------------------------------------------------------------------------
@dataclass
class Data:
    """One data set as uint8 images and integer labels (possibly a subset), with class names."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list

    @property
    def sizes(self):
        return f"{len(self.x_train):,} train / {len(self.x_test):,} test"


DATASETS = {"mnist": (datasets.load_mnist, DIGITS),
            "fashion": (datasets.load_fashion_mnist, list(datasets.FASHION_CLASSES))}


def load(name, args):
    """``"mnist"`` or ``"fashion"``, cut to ``--train-size`` / ``--test-size``."""
    return _load(name, args.train_size, args.test_size, args.data)


@functools.lru_cache(maxsize=2)
def _load(name, train_size, test_size, data_dir):
    loader, class_names = DATASETS[name]
    (x_train, y_train), (x_test, y_test) = loader(data_dir)
    x_train, y_train = x_train[:train_size], y_train[:train_size].astype(np.int64)
    x_test, y_test = x_test[:test_size], y_test[:test_size].astype(np.int64)
    return Data(name, x_train, y_train, x_test, y_test, class_names)


# What a model reads: pixels (N, 784), images (N, 28, 28, 1) or HOG features.
PIXELS = ("pixels",)
IMAGES = ("images",)


def hog_inputs(orientations=8, pixels_per_cell=4):
    return ("hog", orientations, pixels_per_cell)


def describe_inputs(inputs):
    if inputs[0] == "hog":
        return f"HOG ({inputs[1]} orientations, {inputs[2]}x{inputs[2]} px/cell)"
    return {"pixels": "784 pixels", "images": "28x28x1 images"}[inputs[0]]


_PREPARED = {}  # a few prepared inputs, newest last (HOG of 60,000 images takes a few seconds)


def prepare(data, inputs):
    """``(x_train, x_test)`` for a representation: scaled pixels, images or HOG features."""
    key = (data.name, len(data.x_train), len(data.x_test), inputs)
    if key not in _PREPARED:
        while len(_PREPARED) >= 3:
            _PREPARED.pop(next(iter(_PREPARED)))
        _PREPARED[key] = _prepare(data, inputs)
    return _PREPARED[key]


def _prepare(data, inputs):
    kind = inputs[0]
    if kind in ("pixels", "images"):
        shape = (-1, 784) if kind == "pixels" else (-1, 28, 28, 1)
        return tuple((x.astype(np.float32) / np.float32(255.0)).reshape(shape)
                     for x in (data.x_train, data.x_test))
    if kind == "hog":
        from tinynet.features import hog_features
        _, orientations, ppc = inputs
        return tuple(hog_features(x, orientations=orientations, pixels_per_cell=(ppc, ppc),
                                  cells_per_block=(1, 1)) for x in (data.x_train, data.x_test))
    raise ValueError(f"unknown inputs {inputs!r}")


# ---- the experiments ------------------------------------------------------------------------
@dataclass(frozen=True)
class Experiment:
    """One row of the report: a model on a data set, and what the report got with it."""

    key: str                     # unique, also the PNG file prefix
    label: str                   # the hyper-parameters, in words (table's first column)
    dataset: str                 # "mnist" | "fashion"
    inputs: tuple                # PIXELS | IMAGES | hog_inputs(...)
    build: object                # () -> an uncompiled tinynet model
    report: tuple = None         # the report's (test loss, test accuracy), if it has one
    optimizer: tuple = ()        # RMSprop arguments other than the defaults, as (name, value) pairs
    seed_offset: int = 0         # a repeated row of the report is run with another seed


@dataclass
class Run:
    """A trained model and its test results."""

    experiment: Experiment
    model: object
    history: object
    loss: float
    accuracy: float
    y_true: np.ndarray
    y_pred: np.ndarray
    seconds: float
    data: Data
    x_test: np.ndarray
    cached: bool = False
    pictures: dict = field(default_factory=dict)

    @property
    def params(self):
        return self.model.count_params()

    @property
    def confusion(self):
        return metrics.confusion_matrix(self.y_true, self.y_pred, len(self.data.class_names))


_RUNS = {}  # in-process cache: lessons that train the same model on the same data share the run


def _run_key(exp, args):
    return (exp.key, exp.dataset, exp.inputs, exp.optimizer, exp.seed_offset, args.epochs,
            args.batch_size, args.seed, args.train_size, args.test_size, args.data,
            backend.get_backend())


def train(exp, args):
    """Build, compile (RMSprop), fit with the test set as validation, evaluate: a :class:`Run`.

    Prints the model summary, the progress bars and ``Test score: ... Test accuracy: ...``.
    A run already made in this process with the same settings is reused (and said so).
    """
    data = load(exp.dataset, args)
    key = _run_key(exp, args)
    print(f"\n=== {exp.key}: {exp.label} | {describe_inputs(exp.inputs)} | {data.name} "
          f"{data.sizes} | {args.epochs} epoch(s), batch {args.batch_size}, "
          f"backend {backend.get_backend()}")
    if key in _RUNS:
        run = _RUNS[key]
        run.model.summary()
        print(f"(trained earlier in this session: reusing the run, {run.seconds:.1f} s of training)")
        print(f"Test score: {run.loss:.4f} Test accuracy: {run.accuracy:.4f}")
        return Run(**{**run.__dict__, "cached": True, "pictures": {}})
    x_train, x_test = prepare(data, exp.inputs)
    y_train = utils.to_categorical(data.y_train, 10)
    y_test = utils.to_categorical(data.y_test, 10)

    backend.set_seed(args.seed + exp.seed_offset)
    layers.reset_names()
    model = exp.build()
    model.summary()
    model.compile(optimizers.RMSprop(**dict(exp.optimizer)), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    started = time.perf_counter()
    history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
                        validation_data=(x_test, y_test), verbose=1)
    seconds = time.perf_counter() - started
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=256)
    y_pred = model.predict(x_test, batch_size=256).argmax(axis=1)
    print(f"Test score: {loss:.4f} Test accuracy: {accuracy:.4f}")
    run = Run(exp, model, history, float(loss), float(accuracy), data.y_test, y_pred, seconds,
              data, x_test)
    _RUNS[key] = run
    return run


def plot_run(run, out):
    """The loss/accuracy curves and the confusion matrix of a run: ``{"loss": name, "cm": name}``."""
    exp = run.experiment
    title = f"{exp.key}: {exp.label}"
    run.pictures["loss"] = plots.plot_history(run.history, out / f"{exp.key}_loss.png", title=title).name
    run.pictures["cm"] = plots.plot_confusion_matrix(run.confusion, run.data.class_names,
                                                     out / f"{exp.key}_cm.png", title=exp.key).name
    return run.pictures


def train_and_plot(exp, args, out):
    run = train(exp, args)
    plot_run(run, out)
    return run


def forget_runs():
    """Drop the in-process cache of trained runs (and prepared inputs)."""
    _RUNS.clear()
    _PREPARED.clear()


# ---- numbers in words -----------------------------------------------------------------------
def score(loss, accuracy):
    """The report's way of writing a result: ``Score: 0.0662 Accuracy: 98.39%``."""
    return f"Score: {loss:.4f} Accuracy: {accuracy:.2%}"


def duration(seconds):
    return f"{seconds:.1f} s" if seconds < 600 else f"{seconds / 60:.1f} min"


def report_score(exp):
    return score(*exp.report) if exp.report else "-"


# ---- REPORT.md ------------------------------------------------------------------------------
@dataclass
class Section:
    """A lesson's part of REPORT.md: markdown blocks in order, and the names of its tables."""

    title: str
    lesson: str
    blocks: list = field(default_factory=list)
    tables: list = field(default_factory=list)
    pictures: list = field(default_factory=list)
    runs: list = field(default_factory=list)

    def text(self, markdown):
        self.blocks.append(markdown.strip())

    def table(self, name, headers, rows):
        self.tables.append(name)
        self.blocks.append(f"#### {name}\n\n" + md_table(headers, rows))

    def picture(self, name, caption=""):
        self.pictures.append(str(name))
        self.blocks.append(img(name, caption))


def md_table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" :---: " for _ in headers) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in row) + " |")
    return "\n".join(lines)


def img(name, alt=""):
    name = Path(name).name
    return f"![{alt or name}]({name})"


def grid_table(section, name, runs):
    """The report's table for a hyper-parameter grid, with tinynet's figures and the report's scores."""
    rows = [[r.experiment.label, img(r.pictures["loss"], "loss"), img(r.pictures["cm"], "confusion"),
             score(r.loss, r.accuracy), report_score(r.experiment), f"{r.params:,}",
             duration(r.seconds)] for r in runs]
    section.table(name, ["Hyper-parameters", "Loss", "Confusion matrix", "tinynet", "Report",
                         "Params", "Training"], rows)
    for r in runs:
        section.pictures += [r.pictures["loss"], r.pictures["cm"]]
        section.runs.append(r)


def machine():
    cpus = os.cpu_count()
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    return f"{platform.machine()}, {cpus} CPU core(s), Python {platform.python_version()}, {platform.system()}"


def write_report(sections, args, out, seconds):
    """REPORT.md in ``out``: a header with the settings, then every lesson's section."""
    subset = (f"the first {args.train_size or 'all'} training and {args.test_size or 'all'} test images"
              if (args.train_size or args.test_size) else "the whole data sets (60,000 / 10,000)")
    head = [
        "# Practical Work 04 with tinynet",
        "",
        "The practical work's experiments, rerun with tinynet; each table holds tinynet's own "
        "curves, confusion matrices and scores, with the report's scores (Keras) beside them.",
        "",
        f"- Generated: {datetime.datetime.now().isoformat(timespec='seconds')} by "
        f"`python -m lessons {' '.join(sys.argv[1:]) if sys.argv[0].endswith('__main__.py') else ''}`".rstrip(),
        f"- Data: {subset}{' (--quick smoke run: scores are not comparable with the report)' if args.quick else ''}",
        f"- Training: RMSprop (Keras defaults unless stated), batch {args.batch_size}, "
        f"{args.epochs} epoch(s), categorical cross-entropy, seed {args.seed}",
        "- Validation data: the test set (as in the report's notebooks); "
        "\"Score\" is the test loss, \"Accuracy\" the test accuracy after the last epoch",
        f"- Backend: {backend.get_backend()}; machine: {machine()}; total time {seconds:.0f} s",
        "",
    ]
    body = []
    for s in sections:
        body += [f"## {s.title}", ""]
        for block in s.blocks:
            body += [block, ""]
    path = out / "REPORT.md"
    path.write_text("\n".join(head + body))
    return path

