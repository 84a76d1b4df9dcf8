"""``python -m lessons [NAME ...]``: run lessons (all by default) and write REPORT.md into --out."""
import importlib
import sys
import time

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


def main(argv=None):
    args = common.parse_args(argv, prog="python -m lessons", with_names=True)
    out = common.setup(args)
    started = time.perf_counter()
    sections = []
    for name in resolve(args.names):
        module = importlib.import_module(f"lessons.{name}")
        print(f"\n######## {module.TITLE} ({name}) ########")
        lesson_started = time.perf_counter()
        sections.append(module.main(args))
        print(f"######## {name}: {time.perf_counter() - lesson_started:.1f} s")
    report = common.write_report(sections, args, out, time.perf_counter() - started)
    print(f"\nAll done in {time.perf_counter() - started:.1f} s: {report.resolve()}")
    return sections


if __name__ == "__main__":
    main(sys.argv[1:])
