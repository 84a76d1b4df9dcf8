"""Lesson 1 - RMSprop, the optimiser of every model in the practical work.

The report gives RMSprop as two equations, for a parameter vector theta with gradient g:

    (1)  s     = rho * s + (1 - rho) * g * g            running mean of the squared gradient
    (2)  theta = theta - eta * g / sqrt(s + eps)        each coordinate gets its own step size

Keras adds two options, ``momentum`` (accumulate the steps) and ``centered`` (divide by an
estimate of the gradient's variance, ``s - mean(g)**2``, instead of its second moment).

This lesson
  1. steps the equations by hand, in NumPy, on the Rosenbrock function, next to
     ``tinynet.optimizers.RMSprop``, and checks that both give the same path, for several
     settings of rho, momentum and centered; it draws the paths;
  2. trains the report's MLP on MNIST with a few of those settings and compares the curves.

    python -m lessons.l1_rmsprop [--quick] [--out DIR] [--epochs N]
"""
import numpy as np

from tinynet import optimizers, plots

from . import common
from .experiments import MLP_RAW

TITLE = "1. RMSprop"


# ---- a small problem: the Rosenbrock valley -------------------------------------------------
def rosenbrock(x, y):
    """J(x, y) = (1 - x)^2 + 100 (y - x^2)^2: a curved, narrow valley, minimum 0 at (1, 1)."""
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2


def rosenbrock_gradient(theta):
    x, y = theta
    return np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])


START = np.array([-1.8, 0.0])
LEARNING_RATE = 0.01
STEPS = 1500

SETTINGS = [  # (label, RMSprop arguments)
    ("rho=0.9 (default)", dict(rho=0.9)),
    ("rho=0.5", dict(rho=0.5)),
    ("rho=0.99", dict(rho=0.99)),
    ("momentum=0.9", dict(momentum=0.9)),
    ("centered", dict(centered=True)),
    ("centered, momentum=0.5", dict(centered=True, momentum=0.5)),
]


def rmsprop_by_hand(gradient, theta, learning_rate, steps, rho=0.9, momentum=0.0, epsilon=1e-7,
                    centered=False):
    """The report's equations (1) and (2), with Keras's momentum and centered options: the path."""
    theta = np.array(theta, dtype=np.float64)
    s = np.zeros_like(theta)           # running mean of g*g
    mean_g = np.zeros_like(theta)      # running mean of g (centered only)
    m = np.zeros_like(theta)           # accumulated step (momentum only)
    path = [theta.copy()]
    for _ in range(steps):
        g = gradient(theta)
        s = rho * s + (1 - rho) * g * g                              # (1)
        if centered:
            mean_g = rho * mean_g + (1 - rho) * g
            step = learning_rate * g / np.sqrt(s - mean_g * mean_g + epsilon)
        else:
            step = learning_rate * g / np.sqrt(s + epsilon)          # (2): eta g / sqrt(s + eps)
        if momentum > 0:
            m = momentum * m + step
            step = m
        theta = theta - step
        path.append(theta.copy())
    return np.array(path)


def rmsprop_tinynet(gradient, theta, learning_rate, steps, **settings):
    """The same path with ``tinynet.optimizers.RMSprop`` updating the array in place."""
    theta = np.array(theta, dtype=np.float64)
    optimizer = optimizers.RMSprop(learning_rate=learning_rate, **settings)
    path = [theta.copy()]
    for _ in range(steps):
        optimizer.apply_gradients([(gradient(theta), theta)])
        path.append(theta.copy())
    return np.array(path)


def compare_paths(out, section):
    rows, paths = [], {}
    for label, settings in SETTINGS:
        hand = rmsprop_by_hand(rosenbrock_gradient, START, LEARNING_RATE, STEPS, **settings)
        ours = rmsprop_tinynet(rosenbrock_gradient, START, LEARNING_RATE, STEPS, **settings)
        diff = float(np.abs(hand - ours).max())
        agree = diff <= 1e-9 * max(1.0, float(np.abs(hand).max()))
        end = ours[-1]
        print(f"{label:24s} by hand and tinynet.optimizers.RMSprop "
              f"{'agree' if agree else 'DISAGREE'}: max |difference| over {STEPS} steps = {diff:.1e}; "
              f"end ({end[0]:+.4f}, {end[1]:+.4f}), J = {rosenbrock(*end):.2e}")
        if not agree:
            raise AssertionError(f"RMSprop by hand and tinynet differ for {label}: {diff}")
        paths[label] = ours
        rows.append([label, f"{diff:.1e}", f"({end[0]:.4f}, {end[1]:.4f})", f"{rosenbrock(*end):.2e}"])
    picture = plots.plot_rmsprop_paths(
        paths, out / "rmsprop_paths.png", f=rosenbrock, xlim=(-2.0, 2.0), ylim=(-1.0, 3.0),
        minimum=(1.0, 1.0),
        title=f"RMSprop on Rosenbrock from ({START[0]:g}, {START[1]:g}), eta={LEARNING_RATE}, {STEPS} steps")
    exact = all(row[1] == f"{0.0:.1e}" for row in rows)
    start = f"({START[0]:g}, {START[1]:g})"
    section.text(f"""
Equations (1) and (2) stepped by hand in NumPy, next to `tinynet.optimizers.RMSprop`, on the
Rosenbrock function J(x, y) = (1 - x)² + 100 (y - x²)², from {start} with learning rate
{LEARNING_RATE}, {STEPS} steps, float64. The two paths are
{"identical, to the last bit," if exact else "equal to rounding"} for every setting.
RMSprop divides each coordinate's gradient by its own running RMS, so the steps have about the
size of the learning rate in both directions, however steep the valley's walls: the path drops
into the valley, then follows it. A larger rho averages over more past gradients (smoother, slower
to adapt); momentum accumulates steps (faster along the valley, with overshoot); centered divides
by the variance of the gradient instead of its second moment (larger steps while the gradient is
steady).""")
    section.table("RMSprop by hand vs tinynet", ["Setting", "max |hand - tinynet|", "End point",
                                                 "J(end)"], rows)
    section.picture(picture.name, "RMSprop paths")


TRAINING = [  # the report's MLP with a few RMSprop settings (row 1 is the grid's first run)
    ("defaults (rho 0.9)", ()),
    ("rho 0.5", (("rho", 0.5),)),
    ("momentum 0.9", (("momentum", 0.9),)),
    ("centered", (("centered", True),)),
]


def train_settings(args, out, section):
    from dataclasses import replace
    base = MLP_RAW[0]
    runs = {}
    for label, options in TRAINING:
        exp = base if not options else replace(
            base, key=f"{base.key}_{'_'.join(f'{k}{v}' for k, v in options)}".lower(),
            label=f"{base.label}; RMSprop {label}", optimizer=options, report=None)
        run = common.train(exp, args)
        runs[label] = run
    curves = plots.plot_histories({k: r.history for k, r in runs.items()}, out / "rmsprop_mlp_val_loss.png",
                                  key="val_loss", title="MLP raw: test loss per epoch by RMSprop setting")
    rows = [[label, common.score(r.loss, r.accuracy), common.duration(r.seconds)]
            for label, r in runs.items()]
    section.text("The report's MLP on raw pixels (Dense 256, Dropout 0.25) trained with several "
                 "RMSprop settings (learning rate 0.001 each time):")
    section.table("RMSprop settings on the MLP", ["RMSprop", "tinynet", "Training"], rows)
    section.picture(curves.name, "test loss per epoch")
    section.runs += list(runs.values())


def main(args=None):
    args = common.parse_args(args, prog="python -m lessons.l1_rmsprop")
    out = common.setup(args)
    section = common.Section(TITLE, "l1_rmsprop")
    compare_paths(out, section)
    train_settings(args, out, section)
    return section


if __name__ == "__main__":
    common.run_standalone(main, "l1_rmsprop")
