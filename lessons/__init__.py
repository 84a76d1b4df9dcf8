"""Runnable lessons that reproduce the practical work, one module per section of the report.

    python -m lessons [NAME ...] [--quick] [--out DIR] [--epochs N] [--batch-size N] [--backend B]

    l1_rmsprop        RMSprop's equations by hand next to tinynet's optimiser; paths and settings
    l2_complexity     the three models' weights, layer by layer, against the report's counts
    l3_shallow_deep   weights against accuracy: shallow MLPs and a deep CNN
    l4_grids          the report's four hyper-parameter tables, rerun
    l5_fashion        Fashion-MNIST models 1, 2 and 3 (residual): F1, errors, diagrams

Each lesson also runs alone: ``python -m lessons.l1_rmsprop --quick``. ``lessons.common`` holds
what they share (options, data, training, REPORT.md); ``lessons.experiments`` the report's models,
grids and scores.
"""
