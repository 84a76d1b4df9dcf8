"""The full-data accuracy targets: four of the report's models trained on all 60,000 images.

    python -m lessons.targets [--out DIR] [--backend B] [--only KEY ...]

    model (experiment key)            epochs   target test accuracy
    MLP raw, 256 hidden (mlp_raw_256)     10   >= 98.0%
    MLP on HOG, 256 hidden (mlp_hog_4_256) 10  >= 97.8%
    digits CNN, 25 hidden (cnn_25)        10   >= 98.4%
    residual Fashion CNN (cnn_f_res_32)   30   >= 87.0% after 10 epochs, >= 89.5% after 30

Training as in the lessons: RMSprop defaults, batch 128, the test set as validation data. The
test accuracy after epoch e is the validation accuracy recorded after that epoch (the model in
inference mode on the whole test set, the same computation as ``evaluate``); validation draws no
random numbers, so the first 10 epochs of the 30-epoch run are exactly a 10-epoch run.
Writes ``targets.md`` and ``targets.json`` (and each run's curves and confusion matrix) to --out.
"""
import json
import os
import time

from tinynet import backend

from . import common
from .experiments import CNN_DIGITS, CNN_FASHION, MLP_HOG, MLP_RAW

TARGETS = [  # (experiment, epochs, [(after epoch, minimum test accuracy), ...])
    (MLP_RAW[0], 10, [(10, 0.980)]),
    (MLP_HOG[0], 10, [(10, 0.978)]),
    (CNN_DIGITS[0], 10, [(10, 0.984)]),
    (CNN_FASHION[3], 30, [(10, 0.870), (30, 0.895)]),
]


def main(argv=None):
    parser = common.build_parser("python -m lessons.targets")
    parser.add_argument("--only", nargs="*", default=None, metavar="KEY",
                        help="experiment keys to run (default: all four)")
    parser.set_defaults(out="lessons_out/targets")
    args = parser.parse_args(argv)
    requested_epochs = args.epochs
    args = common.finish_args(args)
    out = common.setup(args)
    rows, results = [], []
    load_before = os.getloadavg()
    for exp, epochs, checks in TARGETS:
        if args.only and exp.key not in args.only:
            continue
        if requested_epochs is not None:  # a shorter smoke run: scale the checks down
            epochs = requested_epochs
            checks = [(min(e, epochs), a) for e, a in checks]
        run_args = replace_args(args, epochs=epochs)
        started = time.perf_counter()
        run = common.train(exp, run_args)
        common.plot_run(run, out)
        total = time.perf_counter() - started
        val = run.history.history["val_accuracy"]
        for after, minimum in checks:
            reached = val[after - 1]
            ok = reached >= minimum
            rows.append([exp.key, exp.label, after, f"{reached:.2%}", f">= {minimum:.1%}",
                         "reached" if ok else "MISSED", common.duration(run.seconds * after / epochs)])
            results.append({"key": exp.key, "epochs": after, "test_accuracy": reached,
                            "target": minimum, "reached": ok})
        results[-1].update(fit_seconds=run.seconds, total_seconds=total, epochs_run=epochs,
                           test_loss=run.loss, val_accuracy_per_epoch=val,
                           val_loss_per_epoch=run.history.history["val_loss"])
        print(f"{exp.key}: " + ", ".join(f"epoch {a}: {val[a - 1]:.2%} (target {m:.1%})"
                                          for a, m in checks)
              + f"; training {run.seconds:.0f} s ({run.seconds / epochs:.1f} s per epoch)")
    table = common.md_table(["Experiment", "Model", "Epochs", "Test accuracy", "Target", "",
                             "Training time"], rows)
    load_after = os.getloadavg()
    header = (f"Backend {backend.get_backend()}, {common.machine()}; batch {args.batch_size}, "
              f"RMSprop defaults, seed {args.seed}, data "
              f"{'subset' if args.train_size else 'full (60,000 / 10,000)'}; load average "
              f"{load_before[0]:.1f} before, {load_after[0]:.1f} after (1 min; other work on the "
              "machine slows the timings).")
    (out / "targets.md").write_text(header + "\n\n" + table + "\n")
    (out / "targets.json").write_text(json.dumps({"settings": header, "results": results}, indent=1))
    print("\n" + header + "\n\n" + table)
    return results


def replace_args(args, **changes):
    copy = type(args)(**vars(args))
    for k, v in changes.items():
        setattr(copy, k, v)
    return copy


if __name__ == "__main__":
    main()
