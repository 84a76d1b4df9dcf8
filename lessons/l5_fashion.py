# %% [markdown]
# # Lesson 5 — CNNs for Fashion-MNIST
#
# Fashion-MNIST has the shape of MNIST (28x28 grey images, 10 classes, 60,000 + 10,000) but holds
# clothes: T-shirts, trousers, pullovers, dresses, coats, sandals, shirts, sneakers, bags and ankle
# boots. In the practical work the digits CNN scored about 89% there, against about 99% on
# digits (lesson 4 has this run's figures). It tries three models on them:
#
# - **model 1**: one convolution of 32 3x3 filters, a pooling and a Dense layer of 100 units:
#   628,630 weights, almost all in the Dense layer ($14 \cdot 14 \cdot 32 = 6272$ inputs times
#   100);
# - **model 2**: two small convolutions (8 of 5x5, 16 of 3x3) with poolings, Dense 16: 14,106;
# - **model 3**: ResNet's idea: a 7x7 convolution and its pooling, then a block whose output is
#   $F(x) + x$ (two convolutions $F$ whose result is added to their own input), a pooling, a 3x3
#   convolution of 18 filters and its pooling, dropout and Dense 32: 10,244.
#
# The skip connection gives the gradient a path around $F$: since $\partial(F(x) + x)/\partial x
# = \partial F/\partial x + I$, what reaches the block's output also reaches its input unchanged,
# whatever $F$ does to it.

# %%
import numpy as np

from tinynet import Model, backend, layers, metrics, optimizers, plots

try:
    from lessons import common, practical_work
except ImportError:  # run as `python lessons/l5_fashion.py`, or opened as a notebook in lessons/
    import common
    import practical_work

args = common.options("l5_fashion")
section = common.Section("5. Fashion-MNIST CNNs", "l5_fashion")

fashion = common.load("fashion", args)
x_train, x_test = common.images(fashion.x_train), common.images(fashion.x_test)
y_train, y_test = common.one_hot(fashion.y_train), common.one_hot(fashion.y_test)
names = fashion.class_names
print(fashion.sizes)

# %% [markdown]
# ## The three models

# %%
def model_1():
    x = layers.Input((28, 28, 1), name="l0")
    y = layers.Conv2D(32, 3, padding="same", activation="relu", name="l1")(x)
    y = layers.MaxPooling2D(2, name="l1_mp")(y)
    y = layers.Flatten(name="flat")(y)
    y = layers.Dense(100, activation="relu", name="l6")(y)
    y = layers.Dense(10, activation="softmax", name="l5")(y)
    return Model(x, y, name="CNN-fashion-1")


def model_2():
    x = layers.Input((28, 28, 1), name="l0")
    y = layers.Conv2D(8, 5, padding="same", activation="relu", name="l1")(x)
    y = layers.MaxPooling2D(2, name="l1_mp")(y)
    y = layers.Conv2D(16, 3, padding="same", activation="relu", name="l2")(y)
    y = layers.MaxPooling2D(2, name="l2_mp")(y)
    y = layers.Flatten(name="flat")(y)
    y = layers.Dense(16, activation="relu", name="l6")(y)
    y = layers.Dense(10, activation="softmax", name="l5")(y)
    return Model(x, y, name="CNN-fashion-2")


def model_3():
    x = layers.Input((28, 28, 1), name="l0")
    y = layers.Conv2D(9, 7, padding="same", activation="relu", name="l1")(x)
    p = layers.MaxPooling2D(2, name="l1_mp")(y)
    f = layers.Conv2D(9, 5, padding="same", activation="relu", name="l2")(p)      # F(p) ...
    f = layers.Conv2D(9, 3, padding="same", activation="relu", name="l2_2")(f)
    y = layers.Add(name="add")([f, p])                                             # ... + p
    y = layers.MaxPooling2D(2, name="l2_ap")(y)
    y = layers.Conv2D(18, 3, padding="same", activation="relu", name="l3")(y)
    y = layers.MaxPooling2D(2, name="l3_mp")(y)
    y = layers.Dropout(0.3)(y)
    y = layers.Flatten(name="flat")(y)
    y = layers.Dense(32, activation="relu", name="l5")(y)
    y = layers.Dense(10, activation="softmax", name="l7")(y)
    return Model(x, y, name="CNN-fashion-3")


BUILDERS = {"model 1": (model_1, "cnn_fashion_1"), "model 2": (model_2, "cnn_fashion_2"),
            "model 3": (model_3, "cnn_fashion_3")}

# %% [markdown]
# ## Training
#
# Model 3 is the headline model: it is trained with every seed of the run. Model 1 is also
# scored on its own training images at the end, to measure its overfitting.

# %%
results = {}
for name, (build, report_key) in BUILDERS.items():
    results[name] = []
    for seed in (common.seeds(args) if name == "model 3" else [args.seed]):
        backend.set_seed(seed)
        layers.reset_names()   # default layer names start again (dropout, not dropout_7)
        model = build()
        assert model.count_params() == practical_work.REPORT_TOTALS[report_key], model.count_params()
        if seed == args.seed:
            model.summary()
        model.compile(optimizer=optimizers.RMSprop(), loss="categorical_crossentropy",
                      metrics=["accuracy"])
        with common.Timer() as t:
            history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
                                validation_data=(x_test, y_test), verbose=2)
        loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
        print(f"{name}, seed {seed}: Test score: {loss:.4f} Test accuracy: {accuracy:.4f}")
        run = dict(model=model, history=history, loss=loss, accuracy=accuracy, seconds=t.seconds,
                   compiled=t.compiled,
                   predicted=model.predict(x_test).argmax(axis=1))
        if name == "model 1":
            run["train_loss"], run["train_accuracy"] = model.evaluate(x_train, y_train, verbose=0)
        results[name].append(run)

still_falling = [name for name, runs in results.items()
                 if int(np.argmin(runs[0]["history"].history["val_loss"])) == args.epochs - 1]
rows = []
for name, runs in results.items():
    rows.append([name, f"{runs[0]['model'].count_params():,}",
                 common.mean_std([r["accuracy"] for r in runs]) + f" (loss {common.mean_std([r['loss'] for r in runs], percent=False)})",
                 common.score(*practical_work.FASHION_MODELS[name]),
                 common.runs_duration(runs)])
section.table("Models 1, 2 and 3", ["Model", "Weights", "tinynet: test accuracy",
                                     "Practical work", "Training"], rows)
by_loss = sorted(results, key=lambda k: np.mean([r["loss"] for r in results[k]]))
rank = ["lowest", "second", "highest"][by_loss.index("model 3")] if len(by_loss) == 3 else None
section.text(f"""
Model 3 reaches {np.mean([r['accuracy'] for r in results['model 3']]):.2%} here against the practical
work's 90.27%, whose number of epochs and batch size are not known (here {args.epochs} epoch(s)
of batches of {args.batch_size}; Keras's default batch of 32 makes four times more steps per
epoch). Its test loss is the {rank} of the three in this run, where the practical work had it
lowest.""" + ("" if args.epochs < 2 else f""" The test loss was still at its lowest after the last
epoch (first seed) for {", ".join(still_falling)}: more epochs might help {"them" if len(still_falling) > 1
else "it"}.""" if still_falling else " No model's test loss was still at its lowest after the last epoch."))
for name, runs in results.items():
    key = name.replace(" ", "_")
    section.picture(plots.plot_history(runs[0]["history"], args.out / f"fashion_{key}_loss.png",
                                       title=f"Fashion-MNIST {name}", size=(760, 300)))

# %% [markdown]
# ## Does model 1 overfit?
#
# The practical work found model 1's test loss (0.445) high for its accuracy (91.8%). A model
# with many weights (627,300 in model 1's Dense layer) can learn the training images
# themselves: it *overfits*, and then its test loss stops falling, or rises, while its training
# loss keeps falling. This run's curves say whether model 1 does.

# %%
m1 = results["model 1"][0]
val_loss, train_loss = m1["history"].history["val_loss"], m1["history"].history["loss"]
lowest = int(np.argmin(val_loss)) + 1
rise = val_loss[-1] - val_loss[lowest - 1]
# how much the test loss moves from one epoch to the next over the second half of the run: a rise
# no larger than that is the curve's own jitter, a plateau rather than a turn
jitter = float(np.median(np.abs(np.diff(val_loss[len(val_loss) // 2:])))) if len(val_loss) >= 6 else None
if len(val_loss) < 2:
    curve = "With one epoch there is no curve to read (the full run has 10)."
elif jitter is None and lowest < len(val_loss):
    curve = (f"Its test loss is lowest after epoch {lowest} ({val_loss[lowest - 1]:.4f}) and "
             f"{val_loss[-1]:.4f} after the last, epoch {len(val_loss)}: too few epochs to tell a "
             "turn from the curve's jitter.")
elif lowest == len(val_loss):
    curve = (f"Its test loss is still falling after the last epoch, {len(val_loss)} "
             f"({val_loss[-1]:.4f}): no sign of overfitting yet in the curve.")
else:
    curve = (f"Its test loss is lowest after epoch {lowest} ({val_loss[lowest - 1]:.4f}) and "
             f"{val_loss[-1]:.4f} after the last, epoch {len(val_loss)}: "
             + (f"up by {rise:.4f}, no more than twice what it moves from one epoch to the next (median "
                f"{jitter:.4f} over the second half), so a plateau rather than a clear rise"
                if rise <= 2 * jitter else
                f"up by {rise:.4f}, more than twice its epoch-to-epoch jitter ({jitter:.4f}): "
                "it has turned")
             + f", while the training loss went from {train_loss[0]:.4f} to {train_loss[-1]:.4f}.")
m1_rank = by_loss.index("model 1")  # by the mean test loss over the seeds, as model 3's rank above
section.text(f"""
**Model 1 in this run.** {curve} At the end, scored as the test images are (by `evaluate`, with
the final weights; the loss `fit` logs is instead the mean over the epoch's batches while the
weights still change), its loss is {m1['train_loss']:.4f} on the training images and
{m1['loss']:.4f} on the test images, a gap of {m1['loss'] - m1['train_loss']:.4f} (accuracy
{m1['train_accuracy']:.2%} against {m1['accuracy']:.2%}): {"it fits its training images clearly "
"better than new ones, the first mark of overfitting" if m1['loss'] > 1.2 * m1['train_loss'] else
"hardly better on its training images than on new ones: little overfitting so far"}. Its test loss, {np.mean([r['loss'] for r in results['model 1']]):.4f} against the practical
work's 0.445, is the {["lowest", "second", "highest"][m1_rank]} of the three models here.
Stopping at the lowest test loss would choose the epoch on the test set; a held-out validation
split and `tinynet.callbacks.EarlyStopping` do it properly.""")

# %% [markdown]
# ## Model 3, class by class
#
# For each class, precision is the share of the images predicted as that class that really are
# of it, recall the share of the images of that class that are found, and F1 their harmonic
# mean, $F_1 = 2PR/(P + R)$. The confusion matrix says what each class is taken for.

# %%
third = results["model 3"][0]
f1 = {name: metrics.f1_scores(fashion.y_test, runs[0]["predicted"], 10) for name, runs in results.items()}
f1_seeds = np.array([metrics.f1_scores(fashion.y_test, r["predicted"], 10) for r in results["model 3"]])
print(metrics.classification_report(fashion.y_test, third["predicted"], 10, class_names=names))
several = len(f1_seeds) > 1  # a column over the seeds only when there are several
rows = [[n] + [f"{f1[m][i]:.2f}" for m in results] +
        ([f"{f1_seeds[:, i].mean():.2f} ± {f1_seeds[:, i].std(ddof=1):.2f}"] if several else []) +
        [f"{practical_work.REPORT_F1[i]:.2f}"] for i, n in enumerate(names)]
section.table("F1 per class", ["Class", "model 1", "model 2",
                               "model 3 (first seed)" if several else "model 3"] +
              ([f"model 3, {len(f1_seeds)} seed(s)"] if several else []) +  # (as in the report)
              ["practical work, model 3"], rows)
cm = metrics.confusion_matrix(fashion.y_test, third["predicted"], 10)
hardest = np.argsort(f1["model 3"], kind="stable")[:3]
taken = []
for k in hardest:
    row = cm[k].copy()
    row[k] = 0
    top = np.argsort(-row, kind="stable")[:2]
    taken.append(f"*{names[k]}* (F1 {f1['model 3'][k]:.2f}: {cm[k].sum() - cm[k, k]} of its "
                 f"{cm[k].sum()} images wrong, and {cm[:, k].sum() - cm[k, k]} images of other "
                 f"classes taken for it) is taken for {names[top[0]]} {row[top[0]]} times and for "
                 f"{names[top[1]]} {row[top[1]]} times")
section.text(f"""
**The hardest classes for model 3**: {"; ".join(taken)}. Shirts, T-shirts, pullovers and coats
are all upper-body garments with sleeves, and at 28x28 pixels in grey what tells them apart
(a collar, buttons, the fabric) is hardly visible; trousers, bags, sandals and boots have shapes
of their own. The practical work's hardest class was Shirt (F1 0.70);
{"here too" if names[hardest[0]] == "Shirt" else "here it is " + names[hardest[0]]}.""")
section.picture(plots.plot_f1_scores(f1["model 3"], names, args.out / "fashion_m3_f1.png",
                                     reference=practical_work.REPORT_F1,
                                     reference_label="practical work", title="Model 3: F1 per class"),
                plots.plot_confusion_matrix(cm, names, args.out / "fashion_m3_cm.png", title="model 3"))
section.picture(plots.plot_misclassified(fashion.x_test, fashion.y_test, third["predicted"], names,
                                         args.out / "fashion_m3_misclassified.png", n=24),
                caption="Test images model 3 gets wrong (true class, then the prediction):")

# %% [markdown]
# ## Inside model 3
#
# Its diagram with the skip connection, the nine 7x7 kernels of its first convolution, and what
# its residual block (`add` = `l2_2(l2(p)) + p`) makes of the first test image.

# %%
diagrams = [plots.plot_model(runs[0]["model"], args.out / f"fashion_{name.replace(' ', '_')}_model.png")
            for name, runs in results.items()]
section.picture(*diagrams, caption="The three models; the red arc of model 3 is its skip connection:")
section.picture(plots.plot_conv_filters(third["model"].get_layer("l1"), args.out / "fashion_m3_l1_filters.png",
                                        title="Model 3, l1: nine 7x7 kernels, each on its own colour scale"),
                plots.plot_feature_maps(third["model"], x_test[0], "add", args.out / "fashion_m3_add_maps.png"),
                caption="Model 3's first convolution and the output of its residual block for a test image:")
