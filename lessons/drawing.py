"""Pictures that only the lessons draw (the general ones are in ``tinynet.plots``): curves of
several runs, accuracy bars with the spread over seeds, weight templates, and the "see it learn"
panel of activations and gradients. Each function saves one PNG and returns its path."""
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

WORDS = {"loss": "training loss", "val_loss": "test loss", "accuracy": "training accuracy",
         "val_accuracy": "test accuracy"}


def _figure(width, height):
    fig = Figure(figsize=(width / 100, height / 100), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def curves(histories, key, path, title):
    """One metric of several runs per epoch (markers, so a one-epoch run shows as a dot)."""
    fig = _figure(700, 400)
    ax = fig.subplots()
    longest = 1
    for label, history in histories.items():
        values = history.history[key]
        longest = max(longest, len(values))
        ax.plot(np.arange(1, len(values) + 1), values, "o-", markersize=4, label=label)
    ax.set_xlim(0.5, longest + 0.5)
    ax.xaxis.get_major_locator().set_params(integer=True)
    every = np.concatenate([np.asarray(h.history[key], dtype=np.float64) for h in histories.values()])
    if every.min() > 0 and every.max() > 5 * every.min():   # one run far above the others: log scale
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(WORDS.get(key, key) + (" (log scale)" if ax.get_yscale() == "log" else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title(title)
    return _save(fig, path)


def accuracy_bars(labels, ours, path, title, reference=None, reference_label="practical work"):
    """Test accuracy per model: tinynet's mean with the seeds' standard deviation as an error bar
    (``ours`` holds one list of accuracies per label), and a marker for the practical work's."""
    fig = _figure(max(520, 95 * len(labels) + 160), 460)
    ax = fig.subplots()
    x = np.arange(len(labels))
    means = np.array([np.mean(v) for v in ours])
    errors = np.array([np.std(v, ddof=1) if len(v) > 1 else 0.0 for v in ours])
    ax.bar(x, 100 * means, 0.6, yerr=100 * errors, capsize=5, color="#6fa8dc",
           label="tinynet (error bar: std over seeds)")
    if reference is not None:
        ax.plot(x, [100 * r for r in reference], "D", color="#cc0000", markersize=7,
                label=reference_label)
    low = min(list(100 * means) + [100 * r for r in (reference or [])])
    ax.set_ylim(max(0.0, low - 3.0), 100.0)
    for xi, m, e, v in zip(x, means, errors, ours):
        ax.text(xi, 100 * (m + e) + 0.15, f"{m:.2%}" + (f"\n{len(v)} seeds" if len(v) > 1 else ""),
                ha="center", va="bottom", fontsize="x-small")
    ax.set_xticks(x)
    ax.set_xticklabels(labels, fontsize="small", rotation=20 if len(labels) > 4 else 0,
                       ha="right" if len(labels) > 4 else "center")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)  # below: no bar hidden
    ax.set_title(title)
    return _save(fig, path)


def templates(kernel, path, title, count=32):
    """The first ``count`` columns of a Dense kernel on 784 pixels, each as a 28x28 image on its
    own symmetric colour scale (red: the pixel pushes the unit up, blue: down)."""
    kernel = np.asarray(kernel, dtype=np.float64)
    count = min(count, kernel.shape[1])
    cols = 8
    rows = -(-count // cols)
    fig = _figure(cols * 90 + 20, rows * 95 + 50)
    axes = np.array(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax in axes:
        ax.axis("off")
    for unit in range(count):
        w = kernel[:, unit].reshape(28, 28)
        limit = float(np.abs(w).max()) or 1.0
        axes[unit].imshow(w, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        axes[unit].set_title(f"unit {unit}", fontsize=7)
    fig.suptitle(title, fontsize="medium")
    return _save(fig, path)


def _mosaic(a):
    """A layer's output for one image as one 2-D picture: channels tiled in a grid, vectors as
    a near-square block of cells (unused cells left blank)."""
    if a.ndim == 3:
        h, w, c = a.shape
        cols = int(np.ceil(np.sqrt(c)))
        rows = -(-c // cols)
        canvas = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan)
        for k in range(c):
            r, q = divmod(k, cols)
            canvas[r * (h + 1):r * (h + 1) + h, q * (w + 1):q * (w + 1) + w] = a[:, :, k]
        return canvas
    flat = a.ravel()
    cols = int(np.ceil(np.sqrt(flat.size)))
    canvas = np.full(cols * (-(-flat.size // cols)), np.nan)
    canvas[:flat.size] = flat
    return canvas.reshape(-1, cols)


def see_it_learn(image, stages, path, title):
    """For one image: every layer's activation (forward) and dL/d activation (backward), at each
    stage (``{"at initialisation": (names, activations, gradients), "after training": ...}``).
    Each panel has its own colour scale; its title gives the RMS of the values, so that growing
    and shrinking gradients read as numbers. A last panel plots those RMS values per layer."""
    names = next(iter(stages.values()))[0]
    n = len(names)
    rows = 2 * len(stages)
    fig = _figure(130 * (n + 1) + 260, 150 * rows + 60)
    grid = fig.add_gridspec(rows, n + 2, width_ratios=[1] * (n + 1) + [2.2])
    ax_img = fig.add_subplot(grid[:, 0])
    ax_img.imshow(np.asarray(image).reshape(28, 28), cmap="gray_r")
    ax_img.set_title("input")
    ax_img.axis("off")
    ax_rms = fig.add_subplot(grid[:, n + 1])
    row = 0
    for stage, (_, activations, gradients) in stages.items():
        for kind, arrays, cmap in (("activation", activations, "viridis"),
                                   ("dL/d activation", gradients, "RdBu_r")):
            for j, (name, a) in enumerate(zip(names, arrays)):
                ax = fig.add_subplot(grid[row, j + 1])
                a = np.asarray(a, dtype=np.float64)[0]
                picture = _mosaic(a)
                if cmap == "RdBu_r":
                    limit = float(np.nanmax(np.abs(picture))) or 1.0
                    ax.imshow(picture, cmap=cmap, vmin=-limit, vmax=limit, interpolation="nearest")
                else:
                    ax.imshow(picture, cmap=cmap, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                rms = float(np.sqrt(np.mean(a * a)))
                shown = name.split(":")[0] if kind == "activation" else name
                ax.set_title(f"{shown}\nrms {rms:.1e}", fontsize=7)
                if j == 0:
                    ax.set_ylabel(f"{stage}\n{kind}", fontsize=8)
            if kind != "activation":
                rms = [float(np.sqrt(np.mean(np.asarray(g, dtype=np.float64) ** 2))) for g in gradients]
                ax_rms.semilogy(range(n), rms, "o-", label=f"{stage}")
            row += 1
    ax_rms.set_xticks(range(n))
    ax_rms.set_xticklabels(names, rotation=60, fontsize=7)
    ax_rms.set_ylabel("RMS of dL/d activation")
    ax_rms.set_xlabel("layer (input side on the left)")
    ax_rms.grid(alpha=0.3, which="both")
    ax_rms.legend(fontsize="small")
    ax_rms.set_title("gradient size per layer", fontsize="small")
    fig.suptitle(title, fontsize="medium")
    return _save(fig, path)


def number_grids(arrays, path, title):
    """Small 2-D arrays side by side, every entry written in its cell (``arrays``: title -> array)."""
    fig = _figure(230 * len(arrays) + 20, 290)
    for ax, (name, a) in zip(np.atleast_1d(fig.subplots(1, len(arrays))), arrays.items()):
        a = np.asarray(a, dtype=np.float64)
        ax.imshow(a, cmap="Blues", vmin=min(0.0, a.min()), vmax=max(a.max(), 1e-12))
        for (i, j), v in np.ndenumerate(a):
            ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=11,
                    color="white" if v > 0.6 * a.max() > 0 else "black")
        ax.set_xticks(np.arange(-0.5, a.shape[1]), minor=True)
        ax.set_yticks(np.arange(-0.5, a.shape[0]), minor=True)
        ax.grid(which="minor", color="#666666", linewidth=0.6)
        ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
        ax.set_title(name, fontsize="small")
    fig.suptitle(title, fontsize="medium")
    return _save(fig, path)
