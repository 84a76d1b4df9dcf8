"""Exercises: write the key pieces of a network yourself, then check them.

    ex1_dense_backward.py     the backward pass of a Dense layer
    ex2_conv_shapes.py        a convolution's output size and its number of weights
    ex3_rmsprop_step.py       one RMSprop step, equations (1) and (2)
    ex4_maxpool_backward.py   where max-pooling sends the gradient (with ties)
    ex5_confusion_f1.py       a confusion matrix and the F1 score of every class

Each function raises ``NotImplementedError`` until you write it. Then run

    python -m lessons.check               # your answers, against tinynet on random inputs
    python -m lessons.check ex3           # only one exercise
    python -m lessons.check --solutions   # the reference answers in exercises/solutions/
    python -m lessons.check --dir my_answers   # your copies of these files, kept in my_answers/

One line per exercise says whether it passed, or how far it is from tinynet and a hint.
"""
