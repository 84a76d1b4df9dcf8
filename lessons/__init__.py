"""The lessons: one page per section of the practical work, plus lesson 0 (backprop by hand).

Each page is a percent-format script (``# %% [markdown]`` cells with the maths, ``# %%`` code
cells): read it top to bottom, run it, or open it as a notebook (jupytext, VS Code, PyCharm).

    python -m lessons [NAME ...] [--quick] [--out DIR] [--epochs N] [--seeds N] [--backend B]
    python -m lessons.l5_fashion --quick         (or: python lessons/l5_fashion.py --quick)
    python -m lessons --notebooks DIR --quick    (executed .ipynb files; the "notebooks" extra)
    python -m lessons.check [--solutions]        (the exercises in lessons/exercises/)

    l0_backprop       one training step by hand in NumPy, a convolution by im2col, max-pooling's
                      backward pass, each compared with tinynet to 1e-10 in float64
    l1_rmsprop        RMSprop's equations by hand next to tinynet's optimiser; its settings
    l2_complexity     the three models written out and their weights counted, layer by layer
    l3_shallow_deep   weights against accuracy; confused digits; the CNN seen learning
    l4_grids          the practical work's four hyper-parameter tables, rerun
    l5_fashion        Fashion-MNIST models 1, 2 and 3 (residual): overfitting, F1, hardest classes

``common`` loads and scales the data and writes REPORT.md; ``drawing`` holds the pictures only
the lessons draw; ``practical_work`` the practical work's settings and numbers.
"""
