"""The full-data accuracy targets: four of the practical work's models trained on all 60,000 images.

    python -m lessons.targets [--out DIR] [--backend B] [--seed N] [--only KEY ...] [--epochs N]

    model (row key)                         epochs   target test accuracy
    MLP raw, 256 hidden (mlp_raw_256)           10   >= 98.0%
    MLP on HOG, 256 hidden (mlp_hog_4_256)      10   >= 97.8%
    digits CNN, 25 hidden (cnn_25)              10   >= 98.4%
    residual Fashion CNN (cnn_f_res_32)         30   >= 87.0% after 10 epochs, >= 89.5% after 30

Training as in the lessons: RMSprop's defaults, batch 128 (tinynet's choice: the practical work
gives neither the batch size nor the epochs), the test set as validation data. The accuracy after
epoch e is the validation accuracy recorded after that epoch (the same computation as
``evaluate``); validation draws no random numbers, so the first 10 epochs of the 30-epoch run
are exactly a 10-epoch run. Writes ``targets.md`` and ``targets.json`` to --out.
"""
import json
import os

from tinynet import backend, optimizers, sysinfo

try:
    from lessons import common, practical_work
except ImportError:  # run as `python lessons/targets.py`
    import common
    import practical_work

TARGETS = {"mlp_raw_256": (10, [(10, 0.980)]), "mlp_hog_4_256": (10, [(10, 0.978)]),
           "cnn_25": (10, [(10, 0.984)]), "cnn_f_res_32": (30, [(10, 0.870), (30, 0.895)])}
ROWS = {r.key: r for rows in practical_work.GRIDS.values() for r in rows}


def inputs(row, args):
    data = common.load(row.dataset, args)
    if row.inputs == "pixels":
        x = common.pixels(data.x_train), common.pixels(data.x_test)
    elif row.inputs == "images":
        x = common.images(data.x_train), common.images(data.x_test)
    else:
        x = common.hog(data.x_train, int(row.inputs[3:])), common.hog(data.x_test, int(row.inputs[3:]))
    return x, (common.one_hot(data.y_train), common.one_hot(data.y_test))


def main(argv=None):
    parser = common.build_parser("python -m lessons.targets")
    parser.add_argument("--only", nargs="*", default=None, metavar="KEY",
                        help=f"rows to run (default: all four): {', '.join(TARGETS)}")
    parser.set_defaults(out="lessons_out/targets")
    args = parser.parse_args(argv)
    requested_epochs = args.epochs
    args = common.finish_args(args)
    if args.backend:
        backend.set_backend(args.backend)
    args.out.mkdir(parents=True, exist_ok=True)
    table, results = [], []
    load_before = os.getloadavg()
    for key, (epochs, checks) in TARGETS.items():
        if args.only and key not in args.only:
            continue
        if requested_epochs is not None:  # a shorter smoke run: the checks move to its last epoch
            epochs = requested_epochs
            checks = [(min(e, epochs), a) for e, a in checks]
        row = ROWS[key]
        (x_train, x_test), (y_train, y_test) = inputs(row, args)
        backend.set_seed(args.seed)
        model = row.build()
        model.compile(optimizer=optimizers.RMSprop(), loss="categorical_crossentropy", metrics=["accuracy"])
        with common.Timer() as t:
            history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=epochs,
                                validation_data=(x_test, y_test), verbose=2)
        loss, _ = model.evaluate(x_test, y_test, verbose=0)
        val = history.history["val_accuracy"]
        for after, minimum in checks:
            ok = val[after - 1] >= minimum
            table.append([key, row.label, after, f"{val[after - 1]:.2%}", f">= {minimum:.1%}",
                          "reached" if ok else "MISSED", common.duration(t.seconds * after / epochs, t.compiled)])
            results.append({"key": key, "epochs": after, "test_accuracy": val[after - 1],
                            "target": minimum, "reached": ok})
        results[-1].update(fit_seconds=t.seconds, epochs_run=epochs, test_loss=loss,
                           val_accuracy_per_epoch=val, val_loss_per_epoch=history.history["val_loss"])
        print(f"{key}: " + ", ".join(f"epoch {a}: {val[a - 1]:.2%} (target {m:.1%})" for a, m in checks)
              + f"; training {t.seconds:.0f} s")
    load_after = os.getloadavg()
    header = (f"Backend {backend.get_backend()}, {sysinfo.cpu_model()}, {sysinfo.usable_cpus()} CPU core(s); "
              f"batch {args.batch_size}, RMSprop defaults, seed {args.seed}, data "
              f"{'subset' if args.train_size else 'full (60,000 / 10,000)'}; load average "
              f"{load_before[0]:.1f} before, {load_after[0]:.1f} after (1 min; other work on the "
              "machine slows the timings).")
    markdown = common.md_table(["Row", "Model", "Epochs", "Test accuracy", "Target", "", "Training time"], table)
    (args.out / "targets.md").write_text(header + "\n\n" + markdown + "\n")
    (args.out / "targets.json").write_text(json.dumps({"settings": header, "results": results}, indent=1))
    print("\n" + header + "\n\n" + markdown)
    return results


if __name__ == "__main__":
    main()
