# %% [markdown]
# # Lesson 1 — RMSprop, the optimiser of every model in the practical work
#
# Gradient descent moves each weight against its gradient, by a learning rate $\eta$ times the
# gradient. When some directions are steep and others flat, one learning rate is too large for
# the first and too small for the second. RMSprop keeps, for every weight, a running mean $s$ of
# its squared gradient $g$ and divides the step by its square root, so a coordinate's step is
# $\eta$ times its gradient over the gradient's recent RMS: of the order of $\eta$ whatever the
# scale of that gradient:
#
# $$s \leftarrow \rho\, s + (1 - \rho)\, g \odot g \qquad (1)$$
# $$\theta \leftarrow \theta - \eta\, g \oslash \sqrt{s + \epsilon} \qquad (2)$$
#
# ($\odot$ and $\oslash$: element by element.) Keras's
# `RMSprop(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-07, centered=False)` has five
# settings: the learning rate $\eta$; $\rho$, how long the mean remembers past
# gradients; `momentum`, which accumulates the steps ($m \leftarrow \mu m + \text{step}$,
# $\theta \leftarrow \theta - m$); $\epsilon$, which keeps the division finite; and `centered`,
# which divides by the square root of an estimate of the gradient's variance,
# $\sqrt{s - \bar g^2 + \epsilon}$ (with $\bar g$ the running mean of $g$), instead of
# $\sqrt{s + \epsilon}$.
#
# The lesson first steps the equations by hand on a two-dimensional valley, next to tinynet's
# optimiser, then trains the practical work's MLP with several settings.

# %%
import numpy as np

from tinynet import backend, layers, optimizers, plots
from tinynet import report_models

try:
    from lessons import common, drawing
except ImportError:  # run as `python lessons/l1_rmsprop.py`, or opened as a notebook in lessons/
    import common
    import drawing

args = common.options("l1_rmsprop")
section = common.Section("1. RMSprop", "l1_rmsprop")

# %% [markdown]
# ## Equations (1) and (2) by hand, on the Rosenbrock valley
#
# $J(\theta_1, \theta_2) = (1 - \theta_1)^2 + 100\,(\theta_2 - \theta_1^2)^2$ is a curved,
# narrow valley with its minimum 0 at (1, 1): its walls are a hundred times steeper than its
# floor, the situation RMSprop is made for.

# %%
def rosenbrock(t1, t2):
    return (1 - t1) ** 2 + 100 * (t2 - t1 * t1) ** 2


def rosenbrock_gradient(theta):
    t1, t2 = theta
    return np.array([-2 * (1 - t1) - 400 * t1 * (t2 - t1 * t1), 200 * (t2 - t1 * t1)])


def rmsprop_by_hand(gradient, theta, learning_rate, steps, rho=0.9, momentum=0.0, epsilon=1e-7,
                    centered=False):
    """Equations (1) and (2), with Keras's momentum and centered options: the path of theta."""
    theta = np.array(theta, dtype=np.float64)
    s = np.zeros_like(theta)        # running mean of g * g          (1)
    mean_g = np.zeros_like(theta)   # running mean of g              (centered only)
    m = np.zeros_like(theta)        # accumulated step               (momentum only)
    path = [theta.copy()]
    for _ in range(steps):
        g = gradient(theta)
        s = rho * s + (1 - rho) * (g * g)                                   # (1)
        if centered:
            mean_g = rho * mean_g + (1 - rho) * g
            step = learning_rate * g / np.sqrt(s - mean_g * mean_g + epsilon)
        else:
            step = learning_rate * g / np.sqrt(s + epsilon)                 # (2)
        if momentum > 0:
            m = momentum * m + step
            step = m
        theta = theta - step
        path.append(theta.copy())
    return np.array(path)


def rmsprop_tinynet(gradient, theta, learning_rate, steps, **settings):
    """The same path, with tinynet.optimizers.RMSprop updating theta in place."""
    theta = np.array(theta, dtype=np.float64)
    optimizer = optimizers.RMSprop(learning_rate=learning_rate, **settings)
    path = [theta.copy()]
    for _ in range(steps):
        optimizer.apply_gradients([(gradient(theta), theta)])
        path.append(theta.copy())
    return np.array(path)


START, LEARNING_RATE, STEPS = np.array([-1.8, 0.0]), 0.01, 1500
SETTINGS = {"rho=0.9 (default)": dict(rho=0.9), "rho=0.5": dict(rho=0.5), "rho=0.99": dict(rho=0.99),
            "momentum=0.9": dict(momentum=0.9), "centered": dict(centered=True),
            "centered, momentum=0.5": dict(centered=True, momentum=0.5)}
paths, path_rows = {}, []
for label, settings in SETTINGS.items():
    hand = rmsprop_by_hand(rosenbrock_gradient, START, LEARNING_RATE, STEPS, **settings)
    ours = rmsprop_tinynet(rosenbrock_gradient, START, LEARNING_RATE, STEPS, **settings)
    diff = float(np.abs(hand - ours).max())
    print(f"{label:24s} by hand vs tinynet: max |difference| over {STEPS} steps = {diff:.1e}; "
          f"end ({ours[-1][0]:+.4f}, {ours[-1][1]:+.4f}), J = {rosenbrock(*ours[-1]):.2e}")
    assert diff <= 1e-9, f"RMSprop by hand and tinynet's differ for {label} by {diff}"
    paths[label] = ours
    near = np.flatnonzero(np.hypot(ours[:, 0] - 1, ours[:, 1] - 1) < 0.05)
    path_rows.append([label, f"{diff:.1e}", f"({ours[-1][0]:.3f}, {ours[-1][1]:.3f})",
                      f"{rosenbrock(*ours[-1]):.1e}", str(near[0]) if near.size else "never"])

# The size of the steps of the default setting, per coordinate, in units of the learning rate.
# s starts at 0 and RMSprop has no bias correction: the first step is g / sqrt((1 - rho) g*g + eps),
# about 1 / sqrt(1 - rho) = 3.16 learning rates for rho = 0.9 wherever |g| is well above
# sqrt(eps / (1 - rho)), 1e-3 here (the gradients of this run are).
default = paths["rho=0.9 (default)"]
steps_eta = np.abs(np.diff(default, axis=0)) / LEARNING_RATE
# on the valley's floor once the wall term 100 (t2 - t1^2)^2 is below the floor term (1 - t1)^2
on_floor = np.flatnonzero(100 * (default[:, 1] - default[:, 0] ** 2) ** 2 < (1 - default[:, 0]) ** 2)
reached = [row[0] for row in path_rows if row[-1] != "never"]
floor_step = int(on_floor[0]) if on_floor.size else STEPS
crossings = int(np.sum(np.diff(np.sign(default[floor_step:, 1] - default[floor_step:, 0] ** 2)) != 0))

picture = plots.plot_rmsprop_paths(
    paths, args.out / "rmsprop_paths.png", f=rosenbrock, xlim=(-2.0, 2.0), ylim=(-1.0, 3.0),
    minimum=(1.0, 1.0), title=f"RMSprop on the Rosenbrock valley, learning rate {LEARNING_RATE}, "
                              f"{STEPS} steps")
section.text(f"""
Equations (1) and (2) stepped by hand in NumPy next to `tinynet.optimizers.RMSprop`, from
({START[0]:g}, {START[1]:g}) with learning rate {LEARNING_RATE}, {STEPS} steps, in float64: the
two paths agree to {max(float(r[1]) for r in path_rows):.1e} for every setting. Because each
coordinate's step is divided by its own running RMS, the steps have the order of the learning
rate in both directions, steep or flat: with the defaults the first step is
{steps_eta[0].max():.2f} learning rates long ($1/\\sqrt{{1 - \\rho}}$: $s$ starts at 0), and
from step 100 on the median step is {np.median(steps_eta[100:]):.2f} of them per coordinate.
The path reaches the valley's floor after {floor_step} steps and then creeps along it at that
pace, zig-zagging across it (it crosses the floor's line $\\theta_2 = \\theta_1^2$ at
{crossings} of its {STEPS - floor_step} next steps): after {STEPS} steps the defaults are at
({default[-1][0]:.3f}, {default[-1][1]:.3f}), and
{f"{len(reached)} of {len(path_rows)} settings ({'; '.join(f'`{r}`' for r in reached)})" if reached else "no setting"}
came within 0.05 of the minimum (1, 1).""")
section.table("RMSprop by hand against tinynet on the valley",
              ["Setting", "max |hand - tinynet|", "End point", "J(end)", "First step within 0.05 of (1, 1)"],
              path_rows)
section.picture(picture)

# %% [markdown]
# ## The settings on the practical work's MLP
#
# The MLP on raw pixels (Dense 256 with ReLU, Dropout 0.25, Dense 10 with softmax) trained on
# MNIST with the defaults and then with one setting changed at a time. Each run starts from the
# same initial weights (same seed), so only the optimiser differs.
#
# An MLP (multi-layer perceptron) is a stack of Dense layers, the network of lesson 0 made
# larger: here the 784 pixels of a 28x28 digit, 256 hidden ReLU units and 10 outputs.
# `Dropout(0.25)` sets each hidden unit to 0 with probability 0.25 at each training step (and
# scales the others by 1/0.75), so that no unit can count on another; it does nothing at test
# time. `fit` takes the training images, shuffled, in mini-batches of `--batch-size` (128), one
# RMSprop step per batch; an *epoch* is one pass over all of them. After each epoch it scores the test images
# (`validation_data`): that is the "test loss" below.

# %%
digits = common.load("mnist", args)
x_train, x_test = common.pixels(digits.x_train), common.pixels(digits.x_test)
y_train, y_test = common.one_hot(digits.y_train), common.one_hot(digits.y_test)
print(digits.sizes)

TRAINING = {"defaults": {}, "learning_rate=0.01": dict(learning_rate=0.01),
            "rho=0.5": dict(rho=0.5), "rho=0.99": dict(rho=0.99),
            "momentum=0.9": dict(momentum=0.9), "epsilon=1.0": dict(epsilon=1.0),
            "centered": dict(centered=True)}
histories, results = {}, {}
for label, settings in TRAINING.items():
    backend.set_seed(args.seed)
    layers.reset_names()   # default layer names start again (dropout, not dropout_7)
    model = report_models.mlp_raw()
    if label == "defaults":
        model.summary()
    model.compile(optimizer=optimizers.RMSprop(**settings), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    with common.Timer() as t:
        history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
                            validation_data=(x_test, y_test), verbose=2)
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"RMSprop {label}: Test score: {loss:.4f} Test accuracy: {accuracy:.4f}")
    histories[label], results[label] = history, (loss, accuracy, t.seconds, t.compiled)

# %% [markdown]
# ## What each setting does, in this run's numbers

# %%
base_loss, base_accuracy = results["defaults"][:2]
rows, sentences = [], []
for label, (loss, accuracy, seconds, compiled) in results.items():
    h = histories[label].history
    best = int(np.argmin(h["val_loss"])) + 1
    rows.append([label, common.score(loss, accuracy), f"{loss - base_loss:+.4f}",
                 f"{h['loss'][0]:.4f}", f"{best} of {len(h['val_loss'])}", common.duration(seconds, compiled)])
    if label != "defaults":
        sentences.append(f"{label}: test loss {loss:.4f} ({loss - base_loss:+.4f} against the "
                         f"defaults), accuracy {accuracy:.2%} ({100 * (accuracy - base_accuracy):+.2f} points)")
ranked = sorted(results, key=lambda k: results[k][0])
section.table("RMSprop settings on the MLP", ["RMSprop", "Test", "Test loss - defaults'",
                                               "Training loss, epoch 1", "Lowest test loss at epoch",
                                               "Training"], rows)
lowest = {k: int(np.argmin(histories[k].history["val_loss"])) + 1 for k in ("learning_rate=0.01", "defaults")}
lowest_epochs = "" if args.epochs < 2 else (  # with one epoch there is no "lowest" to speak of
    f"; its test loss is lowest after epoch {lowest['learning_rate=0.01']} and "
    f"{results['learning_rate=0.01'][0]:.4f} after the last (defaults: lowest after epoch "
    f"{lowest['defaults']}, {base_loss:.4f} after the last)")
chance = (", about the 10% of guessing among ten digits: it has hardly moved from its initial "
          "weights" if results["epsilon=1.0"][1] < 0.2 else "")
fast, slow = (histories[k].history["loss"][0] for k in ("learning_rate=0.01", "defaults"))
first_epoch = ("but learns no faster over the first epoch" if fast > 0.9 * slow else
               "and learns faster over the first epoch")
curves = drawing.curves(histories, "val_loss", args.out / "rmsprop_mlp_test_loss.png",
                        "MLP on raw pixels: test loss after each epoch, by RMSprop setting")
section.text(f"""
The practical work's MLP on raw pixels with RMSprop's defaults reaches a test loss of
{base_loss:.4f} ({base_accuracy:.2%}). With one setting changed at a time:
{"; ".join(sentences)}. The lowest test loss of this run comes with *{ranked[0]}*, the highest
with *{ranked[-1]}*. A learning rate ten times larger takes steps ten times larger
{first_epoch}: its training loss over epoch 1 is {fast:.4f} (defaults:
{slow:.4f}){lowest_epochs}. epsilon=1.0 makes
$\\sqrt{{s + \\epsilon}} \\approx 1$ for these small gradients, so RMSprop becomes plain
gradient descent with a step of 0.001 times the gradient: {results['epsilon=1.0'][1]:.2%} after
{args.epochs} epoch(s){chance}.""")
section.picture(curves)
