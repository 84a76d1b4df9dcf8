"""Exercise 1: the backward pass of a Dense layer (no activation).

Forward: ``z = x @ W + b`` with ``x`` of shape (N, n_in), ``W`` (n_in, units), ``b`` (units,).
Given ``grad_z = dL/dz`` of shape (N, units), return the gradients of the loss with respect to
the input, the kernel and the bias: ``(dx, dW, db)`` with the shapes of ``x``, ``W`` and ``b``.
Lesson 0 derives them.
"""


def dense_backward(x, W, b, grad_z):
    raise NotImplementedError("write dx, dW and db from x, W and grad_z")
