"""Dropout in training mode: which units it keeps, how it scales them, and that backward follows
the forward's mask.

The Keras fixtures check Dropout only at inference, where it is the identity, so a training-mode
Dropout that kept the wrong fraction, forgot the ``1 / (1 - rate)`` scale or drew a fresh mask in
backward would pass them. These tests look at training mode directly.

Statistics: each unit is kept independently with probability ``q = 1 - rate``, so over ``n``
units the kept fraction has mean ``q`` and standard deviation ``sqrt(q (1 - q) / n)`` (binomial).
The tolerance is 5 of those standard deviations: a correct layer falls outside it with probability
below 1e-6 (and the test seeds the generator, so a run is reproducible anyway), while the bugs
these tests are for (keeping ``rate`` instead of ``1 - rate``, one mask for the whole batch, the
same mask every call) move the statistic by hundreds of standard deviations.
"""
import numpy as np
import pytest

from tinynet import backend, layers

RATES = [0.1, 0.25, 0.5, 0.8]


def host(a):
    return np.asarray(backend.to_numpy(a))


def positive_input(shape, dtype, seed=0):
    """Values in [1, 2): no zero in the input, so a zero in the output is a dropped unit."""
    return (1.0 + np.random.default_rng(seed).random(shape)).astype(dtype)


def binomial_tolerance(q, n, sigmas=5.0):
    return sigmas * np.sqrt(q * (1.0 - q) / n)


@pytest.mark.parametrize("rate", RATES)
def test_dropout_keeps_the_fraction_one_minus_rate(rate):
    x = positive_input((400, 500), np.float64)
    layer = layers.Dropout(rate)
    y = host(layer.forward(backend.asarray(x), training=True))
    kept = float(np.mean(y != 0.0))
    q, n = 1.0 - rate, x.size
    tol = binomial_tolerance(q, n)  # 200 000 units: at rate 0.5, 5 sigma = 0.0056
    assert abs(kept - q) <= tol, f"kept {kept:.5f} of the units, expected {q} +- {tol:.5f}"


def test_dropout_s_random_bits_are_uniform_over_32_bits_and_follow_the_seed():
    """Each of the 32 bits of the numbers the mask compares is a fair coin (a mask built from 16
    or 31 of them would keep a rate rounded to that precision), for any size, odd ones too, and
    the same seed draws the same numbers."""
    from tinynet.layers.core import random_bits
    backend.set_seed(5)
    r = random_bits((999, 1001))
    assert r.shape == (999, 1001) and r.dtype == np.uint32
    ones = (r.reshape(-1, 1) >> np.arange(32, dtype=np.uint32)) & 1
    tol = binomial_tolerance(0.5, r.size)
    assert np.all(np.abs(ones.mean(axis=0) - 0.5) <= tol), ones.mean(axis=0)
    backend.set_seed(5)
    np.testing.assert_array_equal(random_bits((999, 1001)), r)
    assert not np.array_equal(random_bits((999, 1001)), r)


@pytest.mark.parametrize("rate", [0.25, 0.5])
def test_dropout_draws_each_unit_independently(rate):
    """Kept counts per example spread like Binomial(units, 1 - rate): a mask shared by the whole
    batch or one coin per example would not (its spread is 0 or ``units`` times too large)."""
    rows, units = 2000, 200
    x = positive_input((rows, units), np.float64, seed=1)
    y = host(layers.Dropout(rate).forward(backend.asarray(x), training=True))
    kept = (y != 0.0).sum(axis=1)
    q = 1.0 - rate
    expected_std = np.sqrt(units * q * (1 - q))
    # the sample std of 2000 draws is within ~1/sqrt(2 * 2000) = 1.6 % of the true one;
    # 10 % leaves 6 of those standard errors
    ratio = kept.std(ddof=1) / expected_std
    assert 0.9 < ratio < 1.1, f"kept counts per row have std {kept.std(ddof=1):.2f}, binomial {expected_std:.2f}"
    # and the columns are not one shared pattern: no two of the first 50 rows have the same mask
    masks = {tuple(row) for row in (y[:50] != 0.0)}
    assert len(masks) == 50


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rate", RATES)
def test_kept_units_are_scaled_by_one_over_one_minus_rate(rate, dtype):
    backend.set_floatx(np.dtype(dtype).name)
    x = positive_input((64, 300), dtype, seed=2)
    y = host(layers.Dropout(rate).forward(backend.asarray(x), training=True))
    assert y.dtype == dtype
    kept = y != 0.0
    assert kept.any() and not kept.all()
    expected = x[kept].astype(np.float64) / (1.0 - rate)
    # y = x * fl(1 / (1 - rate)): at most a few roundings of the dtype away from the exact value
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(y[kept], expected, rtol=4 * eps, atol=0)
    # dropped units are exactly zero (not merely small)
    assert np.all(y[~kept] == 0.0)
    # inverted dropout keeps the expectation: E[sum y] = sum x, and with y_i = x_i B_i / (1 - rate),
    # B_i ~ Bernoulli(1 - rate), Var[sum y] = rate / (1 - rate) * sum x_i^2
    x64 = x.astype(np.float64)
    std = np.sqrt(rate / (1.0 - rate) * np.sum(x64 ** 2))
    assert abs(y.astype(np.float64).sum() - x64.sum()) < 5 * std


@pytest.mark.parametrize("rate", [0.3, 0.6])
def test_backward_uses_the_mask_of_the_forward(rate, float64):
    x = positive_input((50, 4, 4, 3), np.float64, seed=3)
    g = np.random.default_rng(4).standard_normal(x.shape)
    layer = layers.Dropout(rate)
    y = host(layer.forward(backend.asarray(x), training=True))
    dx = host(layer.backward(backend.asarray(g)))
    kept = y != 0.0
    # dL/dx = dL/dy * mask: the same units, the same scale
    np.testing.assert_array_equal(dx != 0.0, kept)
    np.testing.assert_allclose(dx[kept], g[kept] / (1.0 - rate), rtol=4e-16, atol=0)
    # dy/dx is y / x unit by unit
    np.testing.assert_allclose(dx, g * (y / x), rtol=1e-15, atol=0)


def test_each_forward_draws_a_new_mask_and_backward_follows_the_latest(float64):
    x = positive_input((100, 100), np.float64, seed=5)
    g = np.ones_like(x)
    layer = layers.Dropout(0.5)
    first = host(layer.forward(backend.asarray(x), training=True)) != 0.0
    second = host(layer.forward(backend.asarray(x), training=True)) != 0.0
    # two independent masks at rate 0.5 agree on about half the units (here 10 000 units:
    # 0.5 +- 5 * 0.005), a reused mask on all of them
    agree = float(np.mean(first == second))
    assert abs(agree - 0.5) < 0.025, agree
    dx = host(layer.backward(backend.asarray(g)))
    np.testing.assert_array_equal(dx != 0.0, second)


def test_dropout_is_the_identity_at_inference_and_at_rate_zero(float64):
    x = positive_input((20, 30), np.float64, seed=6)
    g = np.random.default_rng(7).standard_normal(x.shape)
    for layer, training in ((layers.Dropout(0.5), False), (layers.Dropout(0.0), True)):
        y = host(layer.forward(backend.asarray(x), training=training))
        np.testing.assert_array_equal(y, x)
        np.testing.assert_array_equal(host(layer.backward(backend.asarray(g))), g)
    # an inference call after a training call does not reuse the training mask
    layer = layers.Dropout(0.5)
    layer.forward(backend.asarray(x), training=True)
    np.testing.assert_array_equal(host(layer.forward(backend.asarray(x), training=False)), x)
    np.testing.assert_array_equal(host(layer.backward(backend.asarray(g))), g)


def test_an_activation_set_after_creation_is_checked_when_set():
    """layer.activation = "gelu" was taken and failed with a bare KeyError at the next predict;
    a valid name set later is used."""
    dense = layers.Dense(3)
    with pytest.raises(ValueError, match=r"activation 'gelu' in layer 'dense.*' is a Keras "
                                         r"activation that tinynet does not implement; "
                                         r"tinynet's: linear, relu"):
        dense.activation = "gelu"
    assert dense.activation_name == "linear"  # unchanged
    dense.activation = "relu"
    x = np.random.default_rng(0).standard_normal((5, 4))
    y = dense(x)
    np.testing.assert_allclose(y, np.maximum(x @ dense.kernel + dense.bias, 0), rtol=1e-6, atol=1e-6)
    assert dense.activation_name == "relu"
