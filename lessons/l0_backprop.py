# %% [markdown]
# # Lesson 0 — Backpropagation by hand
#
# Before the practical work's models, one training step of a tiny network written out in plain
# NumPy, line by line, and compared number for number with tinynet: the forward pass, the
# softmax cross-entropy, the chain rule back through every layer, and one RMSprop step. Then a
# convolution written with im2col, and the backward pass of max-pooling.
#
# Everything runs in float64, so that two correct computations of the same formula agree to the
# last few bits: each comparison prints its largest difference and asserts that it is below
# 1e-10 (against central differences, exact only to about 1e-10, the bounds are looser: 1e-8,
# and 1e-7 relative in `tinynet.gradcheck`; see there). Frameworks hide this part; here it is
# the whole lesson.
#
#     python -m lessons.l0_backprop          (no data needed, a few seconds; its picture goes
#                                             to lessons_out/, or to the folder of --out)

# %%
import numpy as np

from tinynet import Sequential, backend, gradcheck, layers, optimizers

try:
    from lessons import common, drawing
except ImportError:  # run as `python lessons/l0_backprop.py`, or opened as a notebook in lessons/
    import common
    import drawing

args = common.options("l0_backprop")
section = common.Section("0. Backpropagation by hand", "l0_backprop")
backend.set_floatx("float64")  # layers and optimizers built from now on compute in float64
rng = np.random.default_rng(0)
TOLERANCE = 1e-10
comparisons = []  # (what, largest difference, bound) for the report


def compare(what, ours, theirs, bound=TOLERANCE):
    """Print and record the largest difference between two arrays; stop if it is too large."""
    diff = float(np.max(np.abs(np.asarray(ours, dtype=np.float64) - np.asarray(theirs, dtype=np.float64))))
    print(f"{what:52s} max |difference| = {diff:.1e}  (must be < {bound:.0e})")
    comparisons.append((what, diff, bound))
    assert diff < bound, f"{what}: the two computations differ by {diff:.3e} (more than {bound:.0e})"


# %% [markdown]
# ## A two-layer network and a batch
#
# Four examples of six features, a hidden Dense layer of five ReLU units and a softmax output
# over three classes. A `Dense` (fully connected) layer computes each of its units from every
# one of its inputs; in Keras's layout its kernel is `(inputs, units)`. ReLU is $\max(z, 0)$,
# element by element:
#
# $$z_1 = x W_1 + b_1,\quad h = \max(z_1, 0),\quad z_2 = h W_2 + b_2,\quad
#   p = \mathrm{softmax}(z_2),\quad p_{nk} = \frac{e^{z_{2,nk}}}{\sum_j e^{z_{2,nj}}}$$
#
# The output layer's scores before the softmax, $z_2$, are called the *logits*; the softmax turns
# each row of them into probabilities that sum to 1.
#
# The loss is the categorical cross-entropy averaged over the batch of $N$ examples with one-hot
# targets $y$: $L = -\frac{1}{N}\sum_n \sum_k y_{nk} \log p_{nk}$.

# %%
N, D, H, K = 4, 6, 5, 3
x = rng.standard_normal((N, D))
labels = np.array([0, 2, 1, 2])
y = np.eye(K)[labels]
W1, b1 = 0.5 * rng.standard_normal((D, H)), 0.1 * rng.standard_normal(H)
W2, b2 = 0.5 * rng.standard_normal((H, K)), 0.1 * rng.standard_normal(K)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))  # subtracting the row's maximum changes nothing but avoids overflow
    return e / e.sum(axis=1, keepdims=True)


z1 = x @ W1 + b1
h = np.maximum(z1, 0.0)
z2 = h @ W2 + b2
p = softmax(z2)
loss = -np.sum(y * np.log(p)) / N
print(f"loss by hand: {loss:.6f}  (chance level for 3 classes: log 3 = {np.log(3):.6f})")

# %% [markdown]
# ## The backward pass: the chain rule, one layer at a time
#
# The softmax and the cross-entropy together have the simplest gradient of the whole network.
# For one example (the index $n$ dropped), $L = -\sum_k y_k \log p_k$, and differentiating the
# softmax gives $\partial p_k/\partial z_j = p_k (1 - p_j)$ for $k = j$, $-p_k p_j$ otherwise; so
# $\partial L/\partial z_j = -\sum_k (y_k/p_k)\, \partial p_k/\partial z_j = -y_j + p_j \sum_k y_k
# = p_j - y_j$, because the one-hot $y$ sums to 1. The mean over the batch divides by $N$:
#
# $$\frac{\partial L}{\partial z_2} = \frac{p - y}{N}$$
#
# Then each layer turns the gradient of its output into the gradients of its weights and of its
# input. Write $\delta = \partial L/\partial z$. For $z = xW + b$, that is $z_{nj} = \sum_i x_{ni}
# W_{ij} + b_j$, the chain rule sums over every $z_{nj}$ that a weight or an input feeds:
# $\partial L/\partial W_{ij} = \sum_n x_{ni} \delta_{nj}$, i.e. $x^\top \delta$; $\partial
# L/\partial b_j = \sum_n \delta_{nj}$; $\partial L/\partial x_{ni} = \sum_j \delta_{nj} W_{ij}$,
# i.e. $\delta W^\top$. ReLU lets the gradient through where its input was positive and stops it
# elsewhere.

# %%
dz2 = (p - y) / N
dW2 = h.T @ dz2
db2 = dz2.sum(axis=0)
dh = dz2 @ W2.T
dz1 = dh * (z1 > 0)          # ReLU: the gradient passes only where z1 > 0
dW1 = x.T @ dz1
db1 = dz1.sum(axis=0)
dx = dz1 @ W1.T
print("dL/dW2 by hand:\n", np.round(dW2, 4))

# %% [markdown]
# ## The same with tinynet's layers
#
# tinynet's `Dense` layers, given the same weights, run `forward` and then `backward`. The
# output layer's own `backward` applies the full Jacobian of the softmax to
# $\partial L/\partial p = -y/(Np)$; the result must be the short formula above.

# %%
dense1 = layers.Dense(H, activation="relu", name="hidden")
dense2 = layers.Dense(K, activation="softmax", name="output")
dense1.build((D,))
dense2.build((H,))
dense1.set_weights([W1, b1])
dense2.set_weights([W2, b2])

p_tinynet = dense2.forward(dense1.forward(x))
compare("forward: probabilities", p_tinynet, p)
dh_tinynet = dense2.backward(-y / (N * p_tinynet))   # dL/dp through the softmax's Jacobian
dx_tinynet = dense1.backward(dh_tinynet)
compare("backward: dL/dh (input of the output layer)", dh_tinynet, dh)
compare("backward: dL/dW2, dL/db2", np.concatenate([dense2.grads[0].ravel(), dense2.grads[1]]),
        np.concatenate([dW2.ravel(), db2]))
compare("backward: dL/dW1, dL/db1", np.concatenate([dense1.grads[0].ravel(), dense1.grads[1]]),
        np.concatenate([dW1.ravel(), db1]))
compare("backward: dL/dx", dx_tinynet, dx)

# %% [markdown]
# ## Checking the gradient without calculus
#
# A derivative is a limit: $\partial L/\partial w \approx (L(w + \varepsilon) - L(w -
# \varepsilon)) / 2\varepsilon$. This central difference has an error of order
# $\varepsilon^2$ from the third derivative (the curvature's terms cancel between the two sides;
# a one-sided difference keeps them, an error of order $\varepsilon$) and of order
# $10^{-16}/\varepsilon$ from rounding: with
# $\varepsilon = 10^{-6}$ here, it agrees with the exact gradient to about $10^{-10}$, not to the
# last bit, and the bound is $10^{-8}$. `tinynet.gradcheck` does the same for every weight of a
# model.

# %%
def loss_of(W1_, b1_, W2_, b2_):
    h_ = np.maximum(x @ W1_ + b1_, 0.0)
    return -np.sum(y * np.log(softmax(h_ @ W2_ + b2_))) / N


def numerical_gradient(f, array, eps=1e-6):
    """Central differences of f() with respect to every entry of ``array`` (changed in place)."""
    grad = np.zeros_like(array)
    for i in np.ndindex(array.shape):
        old = array[i]
        array[i] = old + eps
        up = f()
        array[i] = old - eps
        down = f()
        array[i] = old
        grad[i] = (up - down) / (2 * eps)
    return grad


numeric_dW1 = numerical_gradient(lambda: loss_of(W1, b1, W2, b2), W1)
compare("dL/dW1 by hand vs central differences", dW1, numeric_dW1, bound=1e-8)

# %% [markdown]
# ## One training step: RMSprop, equations (1) and (2)
#
# The practical work trains with RMSprop. For each weight array $\theta$ with gradient $g$, a
# running mean $s$ of the squared gradient (starting at zero) scales the step:
#
# $$s \leftarrow \rho s + (1 - \rho)\, g \odot g \qquad (1)$$
# $$\theta \leftarrow \theta - \eta\, g \oslash \sqrt{s + \epsilon} \qquad (2)$$
#
# ($\odot$ and $\oslash$ multiply and divide element by element), with Keras's defaults
# $\rho = 0.9$, $\epsilon = 10^{-7}$ and here $\eta = 0.01$. A whole
# tinynet model does forward, loss, backward and this update in `train_on_batch`.

# %%
eta, rho, eps = 0.01, 0.9, 1e-7
by_hand = []
for theta, g in [(W1, dW1), (b1, db1), (W2, dW2), (b2, db2)]:
    s = rho * 0.0 + (1 - rho) * (g * g)                # (1), from s = 0
    by_hand.append(theta - eta * g / np.sqrt(s + eps))  # (2)

model = Sequential([layers.Input((D,)), layers.Dense(H, activation="relu", name="hidden"),
                    layers.Dense(K, activation="softmax", name="output")], name="tiny")
model.set_weights([W1, b1, W2, b2])
model.compile(optimizer=optimizers.RMSprop(learning_rate=eta, rho=rho, epsilon=eps),
              loss="categorical_crossentropy")
model.summary()
errors = gradcheck.check_model(model, x, y)   # every weight and the input, by central differences
print("tinynet.gradcheck, worst relative error of dL/d(each weight array) and of dL/dx ('input'):",
      {k: f"{v:.1e}" for k, v in errors.items()})
assert max(errors.values()) < 1e-7, errors
step_loss = model.train_on_batch(x, y)
compare("train_on_batch: the loss", step_loss, loss)
compare("train_on_batch: the weights after one RMSprop step",
        np.concatenate([w.ravel() for w in model.get_weights()]),
        np.concatenate([w.ravel() for w in by_hand]))

# %% [markdown]
# ## A convolution by hand: im2col
#
# A `Conv2D` layer with $F$ filters of $k_h \times k_w$ over $C$ channels slides each filter
# over the image and takes a dot product at every position. (Mathematicians call this a
# cross-correlation: a convolution proper would flip the kernel first. Deep-learning frameworks,
# Keras and tinynet among them, do not flip it; a learned kernel does not care.) Unfold every $k_h \times k_w \times
# C$ patch into a row (im2col): the convolution becomes one matrix product with the kernel
# viewed as a $(k_h k_w C) \times F$ matrix. With padding $p$ and stride $s$, an input of size
# $n$ gives an output of size
#
# $$n_{out} = \left\lfloor \frac{n + 2p - k}{s} \right\rfloor + 1$$
#
# (`padding="same"` pads $p = (k-1)/2$ for odd $k$, so $n_{out} = n$ at stride 1). The backward
# pass is the same product transposed, and col2im adds each patch's gradient back to the pixels
# it came from; a pixel in several patches collects several contributions.

# %%
def im2col(x, kh, kw):
    """(N, H, W, C) -> (N * OH * OW, kh * kw * C): one row per output position (stride 1)."""
    n, height, width, c = x.shape
    oh, ow = height - kh + 1, width - kw + 1
    cols = np.empty((n, oh, ow, kh, kw, c))
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i, j, :] = x[:, i:i + oh, j:j + ow, :]
    return cols.reshape(n * oh * ow, kh * kw * c)


def col2im(dcols, x_shape, kh, kw):
    """The adjoint of im2col: add every row's entries back onto the pixels they were read from."""
    n, height, width, c = x_shape
    oh, ow = height - kh + 1, width - kw + 1
    dcols = dcols.reshape(n, oh, ow, kh, kw, c)
    dx = np.zeros(x_shape)
    for i in range(kh):
        for j in range(kw):
            dx[:, i:i + oh, j:j + ow, :] += dcols[:, :, :, i, j, :]
    return dx


images = rng.standard_normal((2, 7, 7, 2))
kernel, bias = rng.standard_normal((3, 3, 2, 4)), rng.standard_normal(4)
padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)))     # "same" for a 3x3 kernel
cols = im2col(padded, 3, 3)
out = (cols @ kernel.reshape(-1, 4) + bias).reshape(2, 7, 7, 4)

conv = layers.Conv2D(4, 3, padding="same", name="conv")
conv.build((7, 7, 2))
conv.set_weights([kernel, bias])
compare("Conv2D forward (im2col and one product)", conv.forward(images), out)

dout = rng.standard_normal(out.shape)                        # some dL/d(output)
dkernel = (cols.T @ dout.reshape(-1, 4)).reshape(kernel.shape)
dbias = dout.sum(axis=(0, 1, 2))
dimages = col2im(dout.reshape(-1, 4) @ kernel.reshape(-1, 4).T, padded.shape, 3, 3)[:, 1:-1, 1:-1, :]
dimages_tinynet = conv.backward(dout)
compare("Conv2D backward: dL/dkernel", conv.grads[0], dkernel)
compare("Conv2D backward: dL/dbias", conv.grads[1], dbias)
compare("Conv2D backward: dL/dinput (col2im)", dimages_tinynet, dimages)
for n, k, padding, stride in [(28, 5, "same", 1), (28, 3, "valid", 1), (7, 2, "valid", 2),
                              (14, 5, "valid", 1)]:
    pad = (k - 1) // 2 if padding == "same" else 0
    size = (n + 2 * pad - k) // stride + 1                     # the formula above
    sized = layers.Conv2D(1, k, strides=stride, padding=padding)
    sized.build((n, n, 1))
    print(f"input {n}, kernel {k}, padding {pad} ({padding}), stride {stride}: output {size}, "
          f"tinynet's Conv2D: {sized.output_shape[0]}")
    assert size == sized.output_shape[0]

# %% [markdown]
# ## Max-pooling's backward pass: where the gradient goes
#
# A 2x2 max-pooling keeps the largest value of each window. Only that element influenced the
# output, so the whole gradient of the output goes to it and the other three get zero. When
# several elements share the maximum (a tie, common after a ReLU, which makes many zeros),
# TensorFlow and tinynet give it to the first of them in row-major order, as `np.argmax` does.
# The input below has small integer values, so that ties happen.

# %%
grid = rng.integers(0, 3, size=(1, 4, 4, 1)).astype(np.float64)
dpooled = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
dgrid = np.zeros_like(grid)
pooled = np.zeros((1, 2, 2, 1))
for r in range(2):
    for c in range(2):
        window = grid[0, 2 * r:2 * r + 2, 2 * c:2 * c + 2, 0]
        first = np.argmax(window)                      # the first maximum, row-major: the tie rule
        i, j = divmod(first, 2)
        pooled[0, r, c, 0] = window[i, j]
        dgrid[0, 2 * r + i, 2 * c + j, 0] = dpooled[0, r, c, 0]
print("input:\n", grid[0, :, :, 0], "\ngradient of the pooled output:\n", dpooled[0, :, :, 0],
      "\nwhere it goes:\n", dgrid[0, :, :, 0])

pool = layers.MaxPooling2D(2, name="pool")
pool.build((4, 4, 1))
compare("MaxPooling2D forward", pool.forward(grid), pooled)
compare("MaxPooling2D backward (first maximum on ties)", pool.backward(dpooled), dgrid)
ties = sum(int((grid[0, 2 * r:2 * r + 2, 2 * c:2 * c + 2, 0] == pooled[0, r, c, 0]).sum() > 1)
           for r in range(2) for c in range(2))
print(f"{ties} of the 4 windows hold a tie")
routing = drawing.number_grids({"input (4x4)": grid[0, :, :, 0], "pooled output (2x2)": pooled[0, :, :, 0],
                                "dL/d output": dpooled[0, :, :, 0], "dL/d input: where it goes": dgrid[0, :, :, 0]},
                               args.out / "maxpool_backward.png",
                               "2x2 max-pooling: each window's gradient goes to its first maximum")

# %% [markdown]
# ## Summary

# %%
backend.set_floatx("float32")  # back to the default for the lessons that follow
worst = max(d for _, d, b in comparisons if b == TOLERANCE)
central = max(d for _, d, b in comparisons if b != TOLERANCE)
section.text(f"""
One training step of a 6-5-3 network, written in NumPy and compared with tinynet's `Dense`
layers, its model (`train_on_batch` with RMSprop) and central differences; then a convolution
by im2col against `Conv2D`, and max-pooling's backward pass (with {ties} tied window(s) of 4)
against `MaxPooling2D`. All in float64. The computations that follow the same formulas agree to
{worst:.1e} at worst; central differences agree to {central:.1e}, as their truncation and
rounding errors predict (about 1e-10 for a step of 1e-6).""")
section.table("Hand-written NumPy against tinynet", ["Quantity", "max |hand - tinynet|", "Bound"],
              [[what, f"{diff:.1e}", f"{bound:.0e}"] for what, diff, bound in comparisons])
section.picture(routing, caption="Max-pooling's backward pass on the lesson's example (ties go to the "
                                 "first maximum in reading order):")
