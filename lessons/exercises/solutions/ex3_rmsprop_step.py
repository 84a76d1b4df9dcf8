"""Reference answer to exercise 3."""
import numpy as np


def rmsprop_step(theta, g, s, learning_rate=0.001, rho=0.9, epsilon=1e-7):
    s = rho * s + (1 - rho) * (g * g)
    theta = theta - learning_rate * g / np.sqrt(s + epsilon)
    return theta, s
