# %% [markdown]
# # Lesson 4 — The practical work's hyper-parameter grids
#
# The practical work tried a few settings of each model and kept the best: the MLP on raw pixels
# (hidden units, dropout), the MLP on HOG features (cell size, hidden units), the digits CNN (the
# hidden Dense layers) and the CNNs for Fashion-MNIST (the digits CNN, then a residual model).
# This lesson reruns its four tables. The loop below goes over a table of settings, but its body
# is the whole recipe: build, compile, fit, evaluate.
#
# The first row of each digits table and the last Fashion row (the headline models) are trained
# with every seed of the run (`--seeds`), to show how much the score moves from one seed to
# another (the seed sets the initial weights, the order of the batches and the dropout masks):
# the error bars of the pictures. Compare that spread with the differences between rows before
# calling one row better than another.

# %%
import numpy as np

from tinynet import backend, layers, metrics, optimizers, plots

try:
    from lessons import common, drawing, practical_work
except ImportError:  # run as `python lessons/l4_grids.py`, or opened as a notebook in lessons/
    import common
    import drawing
    import practical_work

args = common.options("l4_grids")
section = common.Section("4. Hyper-parameter grids", "l4_grids")

# %% [markdown]
# ## The data, in every form the rows read
#
# HOG features for 4, 7 and 2 pixels per cell (392, 128 and 1,568 features: 8 orientations,
# 1x1-cell blocks), pixels for the MLPs, images for the CNNs, one-hot labels.

# %%
data = {name: common.load(name, args) for name in ("mnist", "fashion")}


def prepare(dataset, kind):
    d = data[dataset]
    if kind == "pixels":
        return common.pixels(d.x_train), common.pixels(d.x_test)
    if kind == "images":
        return common.images(d.x_train), common.images(d.x_test)
    ppc = int(kind[3:])                     # "hog4" -> 4 pixels per cell
    return common.hog(d.x_train, ppc), common.hog(d.x_test, ppc)


# %% [markdown]
# ## The grids

# %%
results = {}   # row key -> list of runs (one per seed)
for grid_name, rows in practical_work.GRIDS.items():
    print(f"\n===== {grid_name} =====")
    for row in rows:
        x_train, x_test = prepare(row.dataset, row.inputs)
        y_train, y_test = common.one_hot(data[row.dataset].y_train), common.one_hot(data[row.dataset].y_test)
        row_seeds = common.seeds(args) if row.key in practical_work.HEADLINE else [args.seed]
        results[row.key] = []
        for seed in row_seeds:
            backend.set_seed(seed + row.seed_offset)
            layers.reset_names()   # default layer names start again (dropout, not dropout_7)
            model = row.build()
            if seed == args.seed:
                print(f"\n--- {row.key}: {row.label}")
                model.summary()
            model.compile(optimizer=optimizers.RMSprop(), loss="categorical_crossentropy",
                          metrics=["accuracy"])
            with common.Timer() as t:
                history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
                                    validation_data=(x_test, y_test), verbose=2)
            loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
            print(f"{row.key}, seed {seed + row.seed_offset}: Test score: {loss:.4f} "
                  f"Test accuracy: {accuracy:.4f}")
            results[row.key].append(dict(model=model, history=history, loss=loss, accuracy=accuracy,
                                         seconds=t.seconds, compiled=t.compiled,
                                         predicted=model.predict(x_test).argmax(axis=1)))

# %% [markdown]
# ## The tables, the curves and the confusion matrices
#
# For each row: the loss and accuracy after each epoch (training, and on the test set used as
# validation data, as the practical work did), the confusion matrix of the test set (first
# seed), tinynet's score (mean ± standard deviation when several seeds ran) and the practical
# work's.

# %%
SHORT = {"MLP on raw pixels": "mlp_raw", "MLP on HOG features": "mlp_hog", "MNIST digits CNN": "cnn",
         "Fashion-MNIST CNN": "cnn_f"}   # file names of the grid's pictures
best_rows = {}
for grid_name, rows in practical_work.GRIDS.items():
    table = []
    for row in rows:
        runs = results[row.key]
        first = runs[0]
        curves = plots.plot_history(first["history"], args.out / f"{row.key}_loss.png",
                                    title=f"{row.key}: {row.label}", size=(760, 300))
        cm = metrics.confusion_matrix(data[row.dataset].y_test, first["predicted"], 10)
        matrix = plots.plot_confusion_matrix(cm, data[row.dataset].class_names,
                                             args.out / f"{row.key}_cm.png", title=row.key,
                                             size=(460, 430))
        section.pictures += [curves.name, matrix.name]
        table.append([row.label, common.img(curves, "loss"), common.img(matrix, "confusion"),
                      common.mean_std([r["accuracy"] for r in runs]) + f" (loss {common.mean_std([r['loss'] for r in runs], percent=False)})",
                      common.score(*row.report), f"{first['model'].count_params():,}",
                      common.runs_duration(runs)])
    section.table(grid_name, ["Hyper-parameters", "Loss", "Confusion matrix", "tinynet: test accuracy",
                              "Practical work", "Weights", "Training"], table)
    bars = drawing.accuracy_bars([r.key for r in rows], [[x["accuracy"] for x in results[r.key]] for r in rows],
                                 args.out / f"grid_{SHORT[grid_name]}_accuracy.png", f"{grid_name}: test accuracy",
                                 reference=[r.report[1] for r in rows])
    section.picture(bars)
    # The row the practical work names best after each grid has, in every table, its lowest test loss: the same rule here.
    ours = min(rows, key=lambda r: np.mean([x["loss"] for x in results[r.key]]))
    theirs = min(rows, key=lambda r: r.report[0])
    best_rows[grid_name] = (ours, theirs)
    diagram = plots.plot_model(results[ours.key][0]["model"], args.out / f"grid_{SHORT[grid_name]}_best_model.png",
                               title=f"best here: {ours.key}")
    section.picture(diagram, caption=f"Lowest test loss in this run: `{ours.key}` ({ours.label}); the "
                                     f"practical work's best: `{theirs.key}`.")

# %% [markdown]
# ## Where this run falls behind the practical work
#
# Most rows land within a few tenths of a point of the practical work's accuracy; some fall
# further behind. One suspect is the batch size: the practical work does not say for how many
# epochs it trained, nor on batches of what size, and Keras's default batch of 32 makes four
# times more optimizer steps per epoch than batches of 128, each on a noisier gradient. An
# experiment tells whether it matters: on each data set, the row furthest behind, trained again
# from the same seed on batches four times smaller, for as many epochs. (It cannot tell the
# number of steps from the noise: the two change together; a run at batch 128 for four times
# as many epochs would.)

# %%
rows_by_key = {row.key: row for rows in practical_work.GRIDS.values() for row in rows}
gap = {key: row.report[1] - np.mean([x["accuracy"] for x in results[key]])
       for key, row in rows_by_key.items()}
behind = sorted((key for key in gap if gap[key] > 0.005), key=gap.get, reverse=True)
small_batch = max(1, args.batch_size // 4)
again = {}  # row key -> (test loss, test accuracy) on the smaller batches
for dataset in ("mnist", "fashion"):
    worst = next((rows_by_key[k] for k in behind if rows_by_key[k].dataset == dataset), None)
    if worst is None:
        continue
    x_train, x_test = prepare(worst.dataset, worst.inputs)
    y_train, y_test = common.one_hot(data[dataset].y_train), common.one_hot(data[dataset].y_test)
    backend.set_seed(args.seed + worst.seed_offset)
    layers.reset_names()
    model = worst.build()
    model.compile(optimizer=optimizers.RMSprop(), loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=small_batch, epochs=args.epochs,
              validation_data=(x_test, y_test), verbose=2)
    again[worst.key] = model.evaluate(x_test, y_test, verbose=0)
    print(f"{worst.key}, batches of {small_batch}: Test score: {again[worst.key][0]:.4f} "
          f"Test accuracy: {again[worst.key][1]:.4f}")


def experiment(key):
    """One sentence on a row trained again on smaller batches."""
    loss, accuracy = again[key]
    # against the same seed at the run's batch size (the gap itself is the mean over the seeds)
    ours, theirs = results[key][0]["accuracy"], rows_by_key[key].report[1]
    if theirs <= ours:
        return (f"`{key}` reaches {accuracy:.2%} against {ours:.2%}, this seed having already "
                f"reached the practical work's {theirs:.2%} at batches of {args.batch_size}")
    closed = (accuracy - ours) / (theirs - ours)
    share = ("most of" if closed >= 2 / 3 else "part of" if closed >= 1 / 3 else
             "little of" if closed > 0 else "none of")
    return (f"`{key}` reaches {accuracy:.2%} against {ours:.2%} (test loss {loss:.4f} against "
            f"{results[key][0]['loss']:.4f}), {100 * abs(theirs - accuracy):.2f} points "
            f"{'below' if theirs > accuracy else 'above'} the practical work's {theirs:.2%}: the "
            f"smaller batches account for {share} its gap")


if behind:
    listed = "; ".join(f"`{k}` {np.mean([x['accuracy'] for x in results[k]]):.2%} against "
                       f"{rows_by_key[k].report[1]:.2%} ({100 * gap[k]:.2f} points behind)" for k in behind)
    falling = [k for k in behind
               if int(np.argmin(results[k][0]["history"].history["val_loss"])) == args.epochs - 1]
    falling = ("all of them" if len(falling) == len(behind) else
               ", ".join(f"`{k}`" for k in falling) if falling else "none of them")
    section.text(f"""
**Where this run falls behind.** {len(behind)} row(s) score more than half a point below the
practical work: {listed}.""" + ("" if args.epochs < 2 else f""" The test loss was still at its
lowest after the last epoch (first seed) for {falling}.""") + f""" Trained again from the same
seed (the first) on batches of {small_batch} instead of {args.batch_size} ({args.batch_size // small_batch}
times more steps in {args.epochs} epoch(s)), the row furthest behind on each data set:
{"; ".join(experiment(k) for k in again)} (one seed each; compare with the seed spreads below).""")
else:
    section.text("""
**No row scores more than half a point below the practical work** in this run.""")

# %% [markdown]
# ## Choosing the best row on the test set
#
# The practical work picks each grid's best row by its test score, the same test set that then
# reports the score. The test set has then been used to choose, and its score is no longer an
# unbiased estimate for the chosen model: with enough rows, one wins by luck. The clean recipe
# holds out part of the training data (`validation_split=0.1` in `fit`), chooses on it, and
# looks at the test set once, at the end. How much luck is there? Two measures: the headline
# rows give the spread over $S$ seeds, $\sigma = \sqrt{\sum_s (a_s - \bar a)^2 / (S - 1)}$; and a
# test accuracy $a$ measured on $n$ images is itself uncertain by about $\sqrt{a(1 - a)/n}$
# (a binomial count): 0.14 points at 98% on 10,000 images.

# %%
spread = {}  # headline row -> (sigma of its accuracy, sigma of its test loss) over the seeds
for key in practical_work.HEADLINE:
    if len(results[key]) > 1:
        spread[key] = (np.std([r["accuracy"] for r in results[key]], ddof=1),
                       np.std([r["loss"] for r in results[key]], ddof=1))
sentences, leads = [], []
for grid_name, (ours, theirs) in best_rows.items():
    rows = practical_work.GRIDS[grid_name]
    accuracy = {r.key: np.mean([x["accuracy"] for x in results[r.key]]) for r in rows}
    mean_loss = {r.key: np.mean([x["loss"] for x in results[r.key]]) for r in rows}
    runner_up = sorted(mean_loss, key=mean_loss.get)[1]
    lead = mean_loss[runner_up] - mean_loss[ours.key]
    leads.append(lead)
    sigma = next((spread[r.key][1] for r in rows if r.key in spread), None)  # the grid's headline row
    tie = (f" (a lead under twice this table's seed spread, ± {sigma:.4f}: a tie)"
           if sigma is not None and lead < 2 * sigma else "")
    top = max(accuracy, key=accuracy.get)
    agree = "the same row as" if ours.key == theirs.key else "not the row chosen by"
    sentences.append(f"*{grid_name}*: lowest test loss here `{ours.key}` ({mean_loss[ours.key]:.4f}, "
                     f"{accuracy[ours.key]:.2%}; next `{runner_up}`, {lead:+.4f}{tie}), "
                     f"{agree} the practical work (`{theirs.key}`)"
                     + (f"; {common.ahead_in_accuracy(top, accuracy[top], accuracy[ours.key])}"
                        if top != ours.key else ""))
if spread:
    noise = "; ".join(f"`{k}` accuracy ± {100 * a:.2f} points, test loss ± {l:.4f}"
                      for k, (a, l) in spread.items())
    conclusion = (f"From the seeds alone (the standard deviation σ over {len(results[next(iter(spread))])} "
                  f"seeds), the scores move by: {noise}. A lead smaller than about twice that says "
                  "nothing about the hyper-parameters.")
    twice = [r for r in practical_work.GRIDS["MLP on HOG features"] if r.key.endswith("_rerun")]
    if twice and twice[0].key[:-len("_rerun")] in results:
        rerun, first = twice[0], twice[0].key[:-len("_rerun")]
        ours_first, ours_again = results[first][0]["loss"], results[rerun.key][0]["loss"]
        report_first = next(r for r in practical_work.GRIDS["MLP on HOG features"] if r.key == first).report[0]
        moved = abs(ours_again - ours_first)
        conclusion += (f" The practical work itself trained one setting twice (`{first}`): test "
                       f"losses {report_first:.4f} and {rerun.report[0]:.4f}; here, with the next "
                       f"seed, {ours_first:.4f} and {ours_again:.4f}, a difference of {moved:.4f}, "
                       f"larger than {sum(moved > x for x in leads)} of the {len(leads)} leads above.")
else:
    conclusion = ("This run used one seed, so it cannot say how much of a lead is luck: run with "
                  "`--seeds 3` to see the spread.")
n_test = len(data["mnist"].y_test)
best_digit = max(np.mean([x["accuracy"] for x in runs]) for k, runs in results.items() if not k.startswith("cnn_f"))
binomial = np.sqrt(best_digit * (1 - best_digit) / n_test)
conclusion += (f" And a test accuracy of {best_digit:.2%} on {n_test:,} images is uncertain by about "
               f"{100 * binomial:.2f} points from the choice of test images alone.")
section.text(f"""
**The best row is chosen on the test set**, as in the practical work. After each grid it names
a best row, and in every table that row has the lowest test loss (not always the highest
accuracy: in its HOG table, 2x2-pixel cells score 98.44% but it names 4x4 cells and 128 units,
98.33%, loss 0.0607); the same rule here. (The models of lessons 2 and 3 are those the practical
work describes before its grids, among them `mlp_hog_4_256` and `cnn_25`, with 103,178 and
7,465 weights: not always the rows it names best afterwards.) {". ".join(sentences)}.
{conclusion} To choose fairly, hold out a validation set from the training images, choose on
it, and report the test score of the chosen row only.""")
