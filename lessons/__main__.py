"""``python -m lessons [NAME ...] [options]``: run lessons (all by default), each page from top
to bottom in this process, and write REPORT.md into --out with the PNGs beside it.

``python -m lessons --notebooks DIR [NAME ...] [options]`` instead writes each lesson as an
executed Jupyter notebook into DIR (needs the ``notebooks`` extra: jupytext and nbclient).
"""
import runpy
import sys
import time

from tinynet import backend, datasets

from . import common


def resolve(names):
    """Lesson module names from full names or unambiguous prefixes ('l4', 'l4_grids', 'grids')."""
    if not names:
        return list(common.LESSONS)
    chosen = []
    for name in names:
        matches = [m for m in common.LESSONS if m == name or m.startswith(name) or
                   m.split("_", 1)[1] == name]
        if len(matches) != 1:
            raise SystemExit(f"unknown or ambiguous lesson {name!r}; choose from "
                             f"{', '.join(common.LESSONS)}")
        if matches[0] not in chosen:
            chosen.append(matches[0])
    return chosen


def run_lesson(name, args):
    """Run one page with ``args``; return its variables (``section`` among them)."""
    backend.set_floatx("float32")
    common.use_args(args)
    try:
        return runpy.run_module(f"lessons.{name}", run_name=f"lessons.{name}")
    finally:
        common.use_args(None)


def main(argv=None):
    parser = common.build_parser("python -m lessons", with_names=True)
    parser.add_argument("--notebooks", metavar="DIR", default=None,
                        help="write the lessons as executed .ipynb notebooks into DIR instead "
                             "(needs `pip install -e \".[notebooks]\"`)")
    raw = sys.argv[1:] if argv is None else list(argv)
    args = common.finish_args(parser.parse_args(raw))
    names = resolve(args.names)
    if args.notebooks:
        from .notebooks import write_notebooks
        lesson_argv = [a for a in raw if a not in names and a not in args.names]
        write_notebooks(names, args.notebooks, _without_option(lesson_argv, "--notebooks"))
        return {}
    started = time.perf_counter()
    commit = common.source_commit()
    pages = {}
    for name in names:
        print(f"\n######## {name} ########")
        lesson_started = time.perf_counter()
        try:
            pages[name] = run_lesson(name, args)
        except datasets.DataNotFoundError as e:  # no data set: its message says where to put it
            raise SystemExit(f"lesson {name} needs the data sets: {e}") from None
        print(f"######## {name}: {time.perf_counter() - lesson_started:.1f} s")
    command = "python -m lessons " + " ".join(raw)
    report = common.write_report([p["section"] for p in pages.values()], args, args.out,
                                 time.perf_counter() - started, command.strip(), commit)
    print(f"\nAll done in {time.perf_counter() - started:.1f} s: {report}")
    return pages


def _without_option(argv, option):
    """``argv`` without ``option`` and its value."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == option:
            skip = True
        elif not a.startswith(option + "="):
            out.append(a)
    return out


if __name__ == "__main__":
    main()
