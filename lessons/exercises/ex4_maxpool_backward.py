"""Exercise 4: the backward pass of max-pooling.

``x`` has shape (N, H, W, C); the pooling takes the maximum of each ``pool`` x ``pool`` window,
moved by ``pool`` ("valid": rows and columns left over at the end are dropped). ``grad_out`` has
the pooled shape (N, H // pool, W // pool, C). Return ``dx``, shaped like ``x``: each window's
output gradient goes to the element that was its maximum, and to the first one in row-major
order when several elements tie (as ``np.argmax`` chooses); all other elements get 0.
"""


def maxpool_backward(x, grad_out, pool=2):
    raise NotImplementedError("send each output gradient to the (first) maximum of its window")
