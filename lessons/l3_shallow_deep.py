# %% [markdown]
# # Lesson 3 — Shallow and deep networks: weights against accuracy
#
# The two MLPs of lesson 2 are shallow (one hidden Dense layer) and hold more than 100,000
# weights; the CNN is deep (three convolutions, three poolings, two Dense layers) and holds 7,465.
# A Dense layer spends a weight on every input-unit pair; a convolution reuses one small kernel
# at every position of the image, so depth costs few weights. This lesson trains the three on
# MNIST, compares weights and test accuracy, counts which digits each confuses, and then looks
# inside: what the MLP's first layer has learnt, and, for one test digit, every layer of the CNN
# forward (its activations) and backward (the gradient of the loss), before and after training.
#
# Each model is trained with every seed of the run (`--seeds`, three in the committed report),
# from new initial weights each time; the tables give the mean and the standard deviation.

# %%
import numpy as np

from tinynet import backend, layers, metrics, optimizers, report_models

try:
    from lessons import common, drawing, practical_work
except ImportError:  # run as `python lessons/l3_shallow_deep.py`, or opened as a notebook in lessons/
    import common
    import drawing
    import practical_work

args = common.options("l3_shallow_deep")
section = common.Section("3. Shallow and deep networks", "l3_shallow_deep")

# %% [markdown]
# ## The data, in the three forms the models read
#
# Pixels scaled to [0, 1], as 784-vectors for the MLP and 28x28x1 images for the CNN; HOG
# features (8 orientations, 4x4-pixel cells: 392 per image) computed from the raw images, and
# timed, because the practical work counts them in its training time.

# %%
digits = common.load("mnist", args)
with common.Timer() as hog_time:
    hog_train, hog_test = common.hog(digits.x_train, 4, cache=False), common.hog(digits.x_test, 4, cache=False)
inputs = {"pixels": (common.pixels(digits.x_train), common.pixels(digits.x_test)),
          "hog4": (hog_train, hog_test),
          "images": (common.images(digits.x_train), common.images(digits.x_test))}
y_train, y_test = common.one_hot(digits.y_train), common.one_hot(digits.y_test)
print(f"{digits.sizes}; HOG features {hog_train.shape[1]} per image, computed in {hog_time.seconds:.1f} s")

# %% [markdown]
# ## A helper to look inside: every layer forward, then backward
#
# For one image, run the layers one by one with their own `forward`, keeping every output; then
# start from the gradient of the cross-entropy with respect to the output probabilities,
# $\partial L/\partial p = -y/p$, and hand it backwards through each layer's `backward`, which
# returns the gradient with respect to that layer's input, that is, the previous layer's output.
# For the output layer the picture shows $\partial L/\partial z = p - y$, the gradient at its
# logits (lesson 0): $-y/p$ stays near $-1$ even when the answer is right, $p - y$ goes to 0.

# %%
def forward_backward(model, image, label):
    """Names, outputs and dL/d(output) of every layer of a chain model, for one image."""
    chain = [layer for layer in model.layers if not isinstance(layer, layers.InputLayer)]
    a = backend.asarray(image[None], dtype=backend.floatx())
    outputs = []
    for layer in chain:
        a = layer.forward(a, training=False)
        outputs.append(a)
    p = outputs[-1]
    y = backend.asarray(common.one_hot(np.array([label])), dtype=p.dtype)
    g = -y / p                          # dL/dp, handed to the last layer's backward (its softmax, then its Dense)
    gradients = [p - y]                 # shown for the output: dL/dz = p - y (lesson 0), what flows back
    for layer in reversed(chain[1:]):
        g = layer.backward(g)           # dL/d(input of this layer) = dL/d(output of the one before)
        gradients.insert(0, g)
    # The model's own passes give the same numbers: forward up to a named layer, and backward.
    middle = chain[len(chain) // 2]
    assert np.allclose(backend.to_numpy(model.forward(image[None], until=middle.name)),
                       backend.to_numpy(outputs[len(chain) // 2]), rtol=1e-5, atol=1e-6)
    names = [layer.name for layer in chain[:-1]] + [f"{chain[-1].name}: p - y"]
    return (names, [backend.to_numpy(o) for o in outputs],
            [backend.to_numpy(g) for g in gradients])


# %% [markdown]
# ## Training the three models

# %%
MODELS = {  # label: (how to build it, what it reads)
    "MLP raw": (report_models.mlp_raw, "pixels"),
    "MLP on HOG": (report_models.mlp_features, "hog4"),
    "CNN": (report_models.cnn_digits, "images"),
}
image, label = inputs["images"][1][0], int(digits.y_test[0])   # the first test digit
results = {name: [] for name in MODELS}   # one dict per seed
for name, (build, kind) in MODELS.items():
    x_train, x_test = inputs[kind]
    for seed in common.seeds(args):
        backend.set_seed(seed)
        layers.reset_names()   # default layer names start again (dropout, not dropout_7)
        model = build()
        if seed == args.seed:
            model.summary()
        model.compile(optimizer=optimizers.RMSprop(), loss="categorical_crossentropy",
                      metrics=["accuracy"])
        if name == "CNN" and seed == args.seed:
            before = forward_backward(model, image, label)
        with common.Timer() as t:
            history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
                                validation_data=(x_test, y_test), verbose=2)
        loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
        predicted = model.predict(x_test).argmax(axis=1)
        print(f"{name}, seed {seed}: Test score: {loss:.4f} Test accuracy: {accuracy:.4f} "
              f"({t.seconds:.1f} s)")
        results[name].append(dict(model=model, loss=loss, accuracy=accuracy, seconds=t.seconds,
                                  compiled=t.compiled,
                                  predicted=predicted, history=history))
        if name == "CNN" and seed == args.seed:
            after = forward_backward(model, image, label)

# %% [markdown]
# ## Weights against accuracy

# %%
REPORT = {"MLP raw": "mlp_raw_256", "MLP on HOG": "mlp_hog_4_256", "CNN": "cnn_25"}
report_rows = {r.key: r for grid in practical_work.GRIDS.values() for r in grid}
rows = []
for name, runs in results.items():
    model = runs[0]["model"]
    weighted = sum(1 for layer in model.layers if layer.count_params() > 0)
    rows.append([name, weighted, f"{model.count_params():,}",
                 common.mean_std([r["accuracy"] for r in runs]),
                 common.mean_std([r["loss"] for r in runs], percent=False),
                 f"{report_rows[REPORT[name]].report[1]:.2%}"])
section.table("Weights and accuracy", ["Model", "Layers with weights", "Weights",
                                       f"Test accuracy (tinynet, {args.seeds} seed(s))",
                                       "Test loss (tinynet)", "Test accuracy (practical work)"], rows)
mlp, cnn = results["MLP raw"], results["CNN"]
share = cnn[0]["model"].count_params() / mlp[0]["model"].count_params()
cnn_acc, mlp_acc = np.mean([r["accuracy"] for r in cnn]), np.mean([r["accuracy"] for r in mlp])
verdict = ("higher than" if cnn_acc > mlp_acc else
           "not (yet) higher than")   # a --quick run stops the CNN long before it converges
why, enough = (("can do better", "the CNN's 7,465 are enough") if cnn_acc > mlp_acc else
               ("can do better, with more training than this run had",
                f"the practical work's CNN reached {report_rows['cnn_25'].report[1]:.2%} with "
                "its 7,465"))
section.text(f"""
**The deep CNN has {share:.1%} of the MLP's weights.** In this run its mean test accuracy is
{cnn_acc:.2%}, {verdict} the MLP's {mlp_acc:.2%} ({100 * (cnn_acc - mlp_acc):+.2f} points); the
practical work had {report_rows['cnn_25'].report[1]:.2%} against {report_rows['mlp_raw_256'].report[1]:.2%}.
Why fewer weights {why}: the MLP's first layer gives every one of its 256 units
its own weight for every pixel (784 x 256 = 200,704 weights), and nothing in it knows that
neighbouring pixels belong together or that a stroke means the same thing anywhere in the image.
A convolution looks at small neighbourhoods and reuses the same small kernel (5x5; 3x3 in the
third) at every position, so its few weights are trained by every patch of every image; the
poolings then make the features
tolerant to small shifts. Depth lets the later convolutions combine strokes into parts of
digits. Fewer weights, each used at every position: {enough}.""")
accuracy_picture = drawing.accuracy_bars(
    list(results), [[r["accuracy"] for r in runs] for runs in results.values()],
    args.out / "shallow_deep_accuracy.png", "MNIST test accuracy: shallow MLPs and the deep CNN",
    reference=[report_rows[REPORT[n]].report[1] for n in results])
section.picture(accuracy_picture)

# %% [markdown]
# ## Which digits are confused with which
#
# The confusion matrix counts, for every true digit (row), how often each digit was predicted
# (column). Its largest entries off the diagonal are the model's typical mistakes.

# %%
def top_confusions(cm, names, count=5):
    off = cm.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")[:count]   # ties: the first in reading order
    return [(names[i], names[j], int(off[i, j])) for i, j in zip(*np.unravel_index(order, off.shape))
            if off[i, j] > 0]


confusion_rows, top_pairs = [], {}
for name, runs in results.items():
    cm = metrics.confusion_matrix(digits.y_test, runs[0]["predicted"], 10)
    pairs = top_confusions(cm, common.DIGITS)
    top_pairs[name] = {frozenset((t, p)) for t, p, _ in pairs}
    confusion_rows.append([name, int(cm.sum() - np.trace(cm)),
                           ", ".join(f"{t} taken for {p} ({n})" for t, p, n in pairs)])
    print(f"{name}: most frequent mistakes: {confusion_rows[-1][2]}")
section.table("Most frequent mistakes (first seed)", ["Model", "Test images wrong",
                                                      "True digit taken for (times)"], confusion_rows)
shared = set.intersection(*top_pairs.values())
cnn_cm = metrics.confusion_matrix(digits.y_test, results["CNN"][0]["predicted"], 10)
first_pair = top_confusions(cnn_cm, common.DIGITS, 1)
section.text(f"""
The practical work saw no frequent confusion. Counted here, the CNN gets
{int(cnn_cm.sum() - np.trace(cnn_cm))} of {int(cnn_cm.sum()):,} test digits wrong; its most frequent
mistake ({first_pair[0][0]} taken for {first_pair[0][1]}) happens {first_pair[0][2]} times. Pairs among
the five most frequent mistakes of all three models (either way round):
{", ".join(" and ".join(sorted(p)) for p in shared) + ": digits that share strokes" if shared else "none"}.""")

# %% [markdown]
# ## Training time
#
# The practical work's author waited almost 15 minutes for the MLP on HOG features on a laptop,
# and about 2 minutes on a free cloud GPU. Here are tinynet's times on this machine.

# %%
time_rows = [[name, common.runs_duration(runs), common.runs_duration(runs, args.epochs, digits=2)]
             for name, runs in results.items()]
time_rows.append(["HOG features of all images (not cached)",
                  common.duration(hog_time.seconds, hog_time.compiled), "-"])
section.table("Training time on this machine", ["Model", f"fit, {args.epochs} epoch(s)", "per epoch"],
              time_rows)
hog_total = np.mean([r["seconds"] for r in results["MLP on HOG"]]) + hog_time.seconds
section.text(f"""
The MLP on HOG features, features included, took {common.duration(hog_total, hog_time.compiled or any(r["compiled"] for r in results["MLP on HOG"]))} here, against
almost {practical_work.REPORT_HOG_MINUTES_LAPTOP} minutes on the practical work's laptop and about
{practical_work.REPORT_HOG_MINUTES_GPU} minutes on a cloud GPU (its number of epochs is not known,
so this is an order of magnitude, not a benchmark).""")

# %% [markdown]
# ## Inside the models
#
# The first Dense layer of the MLP has one weight per pixel for each of its 256 units: drawn as
# 28x28 images, they are the templates the units match the digit against (red pixels push the
# unit up, blue ones down). Then, for the first test digit, every layer of the CNN: its output
# (forward) and the gradient of the loss with respect to that output (backward), at
# initialisation and after training. The right panel follows the size of the gradient from the
# output back to the first layer.

# %%
template_picture = drawing.templates(
    mlp[0]["model"].get_layer("Input").get_weights()[0], args.out / "mlp_raw_templates.png",
    "MLP on raw pixels: the first 32 units' weights as 28x28 templates (each on its own scale)")
learn_picture = drawing.see_it_learn(
    image, {"at initialisation": before, "after training": after}, args.out / "cnn_see_it_learn.png",
    f"The CNN on a test digit (a {label}): outputs and dL/d output of every layer")
rms_before = [float(np.sqrt(np.mean(g ** 2))) for g in before[2]]
rms_after = [float(np.sqrt(np.mean(g ** 2))) for g in after[2]]
p_before, p_after = float(before[1][-1][0, label]), float(after[1][-1][0, label])
section.picture(template_picture, caption="What the MLP's first layer learnt:")
section.picture(learn_picture, caption="See it learn: the CNN on one test digit, forward and backward:")
section.text(f"""
At initialisation the CNN gives the true digit ({label}) a probability of {p_before:.2f}; after
training, {f"{p_after:.2f}" if p_after < 0.99 else f"1 - {1 - p_after:.1e}" if p_after < 1 else "1 to float32's precision"}.
The gradient at the output, p - y, shrinks accordingly (its RMS goes from {rms_before[-1]:.2e} to
{rms_after[-1]:.2e}){": a digit the model already gets right teaches it almost nothing" if p_after > 0.99 else ""}. On its way back to the first convolution the gradient is multiplied by
each layer's weights and masked by each ReLU and pooling: it arrives at `{before[0][0]}`'s output
with an RMS of {rms_before[0]:.2e} at initialisation ({rms_before[0] / rms_before[-1]:.1e} times
the output's) and {rms_after[0]:.2e} after training ({rms_after[0] / rms_after[-1]:.1e} times).
A pooling layer passes each window's gradient to one element of four, which is why the gradient
pictures of the layers before a pooling look sparse.""")
