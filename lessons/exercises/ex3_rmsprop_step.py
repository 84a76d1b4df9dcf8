"""Exercise 3: one RMSprop step (the practical work's equations 1 and 2, Keras's defaults).

    s     <- rho * s + (1 - rho) * (g * g)                   (1)
    theta <- theta - learning_rate * g / sqrt(s + epsilon)   (2)

``theta``, ``g`` and ``s`` are arrays of one shape. Return the new ``(theta, s)``; do not change
the arrays you are given.
"""


def rmsprop_step(theta, g, s, learning_rate=0.001, rho=0.9, epsilon=1e-7):
    raise NotImplementedError("apply equation (1), then equation (2)")
