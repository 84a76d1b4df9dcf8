"""Exercise 2: the shapes of a convolution.

A square input of ``n`` x ``n`` pixels, a square kernel of ``kernel`` x ``kernel``, a
``stride``, and ``padding`` either "valid" (no padding) or "same" (pad so that the output is
``ceil(n / stride)``, as Keras does).
"""


def conv_output_size(n, kernel, stride=1, padding="valid"):
    """The output's height (= width) of a Conv2D or a pooling on an n x n input."""
    raise NotImplementedError("write the output size: how many windows fit in the image")


def conv_params(kernel_h, kernel_w, channels, filters):
    """The number of weights of a Conv2D layer, bias included."""
    raise NotImplementedError("count the kernel's entries and the biases")
