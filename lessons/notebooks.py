"""``python -m lessons --notebooks DIR [NAME ...] [options]``: the lessons as executed notebooks.

Each page ``lessons/<name>.py`` (percent format) is read with jupytext, run cell by cell in a
fresh Jupyter kernel with nbclient (from the repository root, so paths such as
``TINYNET_DATA=../shared/data`` mean what they mean on the command line), and written as
``DIR/<name>.ipynb`` with its outputs. The lesson options (``--quick``, ``--epochs``, ...) reach
the kernel through ``TINYNET_LESSON_ARGS``; the pictures go to ``DIR/<name>_files/`` unless
``--out`` is given. Needs the ``notebooks`` extra: ``pip install -e ".[notebooks]"``.
"""
import os
import shlex
import time
from pathlib import Path

LESSONS_DIR = Path(__file__).resolve().parent
ROOT = LESSONS_DIR.parent
MISSING = ("writing notebooks needs jupytext, nbclient and ipykernel, which do not import here "
           "({error}); install them with `pip install -e \".[notebooks]\"`")


def write_notebooks(names, out_dir, lesson_argv, timeout=1800):
    try:
        import jupytext
        import nbformat
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError
    except ImportError as e:
        raise SystemExit(MISSING.format(error=e)) from None
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names:
        argv = list(lesson_argv)
        if not any(a == "--out" or a.startswith("--out=") for a in argv):
            argv += ["--out", str(out_dir / f"{name}_files")]
        notebook = jupytext.read(LESSONS_DIR / f"{name}.py")
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                           "language": "python"}
        saved = os.environ.get("TINYNET_LESSON_ARGS")
        os.environ["TINYNET_LESSON_ARGS"] = shlex.join(argv)
        started = time.perf_counter()
        path = out_dir / f"{name}.ipynb"
        try:
            NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                           resources={"metadata": {"path": str(ROOT)}}).execute()
        except CellExecutionError as e:  # the notebook as far as it ran, and the error in brief
            nbformat.write(notebook, path)
            raise SystemExit(f"lesson {name} stopped at a cell with {e.ename}: {e.evalue}\n"
                             f"(the notebook up to that cell, with the whole traceback: {path})") \
                from None
        finally:
            if saved is None:
                os.environ.pop("TINYNET_LESSON_ARGS", None)
            else:
                os.environ["TINYNET_LESSON_ARGS"] = saved
        nbformat.write(notebook, path)
        print(f"{path}: {len(notebook.cells)} cells, executed in {time.perf_counter() - started:.1f} s")
        written.append(path)
    return written
