"""Run the Keras-style scripts of this folder on tinynet, and on Keras where it is installed.

Each script is written as a Keras user writes one, with ``tinynet`` where the original says
``keras`` or ``tensorflow.keras``: that one change is the whole port. Run on Keras, the imports
are turned back (``import tinynet as keras`` -> ``import keras``, ``from tinynet...`` ->
``from keras...``) and Keras's MNIST loaders read the same local files as tinynet's (no download).

    python tests/keras_scripts/run.py            # tinynet only
    python tests/keras_scripts/run.py --keras    # both, and a table of their test accuracies
    python tests/keras_scripts/run.py --keras --out tests/keras_scripts/RESULTS.md   # its table

The data folder follows tinynet's rule (``TINYNET_DATA``, else the user cache).
"""
import argparse
import contextlib
import io
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = sorted(p for p in HERE.glob("*.py") if p.name != "run.py" and not p.name.startswith("_"))
RESULT_NAMES = ("test_acc", "acc", "score", "results")  # how the scripts name their test accuracy


def as_keras(source):
    """The script as its Keras original: tinynet's imports turned back into Keras's."""
    source = source.replace("import tinynet as keras", "import keras")
    return re.sub(r"\bfrom tinynet(\.|\s)", r"from keras\1", source)


def _patch_keras_datasets():
    """Keras's loaders download from the internet; point them at tinynet's local files."""
    import keras
    from tinynet import datasets
    keras.datasets.mnist.load_data = lambda path=None: datasets.load_mnist()
    keras.datasets.fashion_mnist.load_data = lambda path=None: datasets.load_fashion_mnist()


def test_accuracy(namespace):
    """The test accuracy the script computed, under the name it gave it."""
    for name in RESULT_NAMES:
        if name in namespace:
            value = namespace[name]
            return float(value[1] if isinstance(value, (list, tuple)) else value)
    raise LookupError(f"the script defines none of {RESULT_NAMES}")


def run(path, framework="tinynet", quiet=True):
    """Execute one script; return ``(test accuracy, seconds, printed output)``."""
    source = Path(path).read_text()
    if framework == "keras":
        _patch_keras_datasets()
        source = as_keras(source)
    else:
        from tinynet import backend, layers
        backend.set_seed(0)
        layers.reset_names()
    out = io.StringIO()
    namespace = {"__name__": "__main__", "__file__": str(path)}
    start = time.perf_counter()
    with contextlib.redirect_stdout(out) if quiet else contextlib.nullcontext(), \
            contextlib.redirect_stderr(io.StringIO()) if quiet else contextlib.nullcontext():
        exec(compile(source, str(path), "exec"), namespace)  # noqa: S102  (our own scripts)
    return test_accuracy(namespace), time.perf_counter() - start, out.getvalue()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keras", action="store_true", help="also run each script on Keras")
    parser.add_argument("--out", help="write the table (Markdown) to this file too: in place "
                        "of the table it holds, its text around it kept (RESULTS.md's header, "
                        "written by hand: update its date and host), else as a new file")
    args = parser.parse_args(argv)
    frameworks = ["tinynet"] + (["keras"] if args.keras else [])
    rows = ["| script | " + " | ".join(f"{f} test accuracy | {f} s" for f in frameworks) + " |",
            "|---|" + "---:|---:|" * len(frameworks)]
    failed = 0
    print("\n".join(rows), flush=True)  # the header, then each row as its scripts finish
    for path in SCRIPTS:
        cells = []
        for framework in frameworks:
            try:
                acc, seconds, _ = run(path, framework)
                cells += [f"{acc:.4f}", f"{seconds:.1f}"]
            except Exception as e:  # noqa: BLE001  (reported in the table)
                failed += framework == "tinynet"
                cells += [f"fails: {type(e).__name__}: {str(e)[:80]}", ""]
        rows.append(f"| {path.name} | " + " | ".join(cells) + " |")
        print(rows[-1], flush=True)
    table = "\n".join(rows)
    if args.out:
        out = Path(args.out)
        out.write_text(with_table(out.read_text() if out.exists() else "", table))
    return 1 if failed else 0


def with_table(text, table):
    """``text`` with its first table of the scripts (the lines from one that starts with
    ``| script |`` to the next blank line, or the end) replaced by ``table``; ``table`` alone
    when ``text`` has none."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("| script |")]
    if not starts:
        return table + "\n"
    i = starts[0]
    j = next((k for k in range(i, len(lines)) if not lines[k].strip()), len(lines))
    return "\n".join(lines[:i] + table.splitlines() + lines[j:]) + "\n"


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parents[1]))
    sys.exit(main())
