"""Optimizers against their equations, evaluated by hand in the test for five steps."""
import numpy as np
import pytest

from tinynet import optimizers

GRADS = [np.random.default_rng(s).standard_normal((3, 4)) for s in range(5)]
THETA0 = np.random.default_rng(9).standard_normal((3, 4))


def run(opt):
    theta = THETA0.copy()
    trajectory = []
    for g in GRADS:
        opt.apply_gradients([(g, theta)])
        trajectory.append(theta.copy())
    return trajectory


def rmsprop_by_hand(lr=0.001, rho=0.9, momentum=0.0, eps=1e-7, centered=False):
    theta, s, mean_g, m = THETA0.copy(), np.zeros_like(THETA0), np.zeros_like(THETA0), np.zeros_like(THETA0)
    out = []
    for g in GRADS:
        s = rho * s + (1 - rho) * g * g                 # (1)  s = βs + (1-β) g⊙g
        if centered:
            mean_g = rho * mean_g + (1 - rho) * g
            step = lr * g / np.sqrt(s - mean_g ** 2 + eps)
        else:
            step = lr * g / np.sqrt(s + eps)            # (2)  θ = θ - η g ⊘ sqrt(s + ε)
        if momentum:
            m = momentum * m + step
            step = m
        theta = theta - step
        out.append(theta)
    return out


@pytest.mark.parametrize("kwargs", [
    {},
    {"momentum": 0.9},
    {"centered": True},
    {"momentum": 0.5, "centered": True},
    {"learning_rate": 0.01, "rho": 0.5, "epsilon": 1e-3},
])
def test_rmsprop_follows_equations_1_and_2(kwargs):
    got = run(optimizers.RMSprop(**kwargs))
    names = {"learning_rate": "lr", "epsilon": "eps"}
    expected = rmsprop_by_hand(**{names.get(k, k): v for k, v in kwargs.items()})
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


def test_rmsprop_first_step_size_is_about_lr_over_sqrt_one_minus_rho():
    """After one step s = (1-ρ) g², so every parameter moves by η/sqrt(1-ρ) ≈ 3.16 η: a known
    property of RMSprop that a bug in (1) or (2) would break."""
    theta = THETA0.copy()
    optimizers.RMSprop(learning_rate=0.01).apply_gradients([(GRADS[0], theta)])
    np.testing.assert_allclose(np.abs(THETA0 - theta), 0.01 / np.sqrt(0.1), rtol=1e-3)  # ε


def test_sgd_momentum_and_nesterov_by_hand():
    for nesterov in (False, True):
        theta, v = THETA0.copy(), np.zeros_like(THETA0)
        got = run(optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=nesterov))
        for g, a in zip(GRADS, got):
            v = 0.9 * v - 0.1 * g
            theta = theta + (0.9 * v - 0.1 * g if nesterov else v)
            np.testing.assert_allclose(a, theta, rtol=1e-13)
    got = run(optimizers.SGD(learning_rate=0.1))
    np.testing.assert_allclose(got[-1], THETA0 - 0.1 * sum(GRADS), rtol=1e-13)


def test_adam_by_hand():
    theta, m, v = THETA0.copy(), np.zeros_like(THETA0), np.zeros_like(THETA0)
    got = run(optimizers.Adam(learning_rate=0.01))
    for t, (g, a) in enumerate(zip(GRADS, got), start=1):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        m_hat, v_hat = m / (1 - 0.9 ** t), v / (1 - 0.999 ** t)
        # Keras folds the bias corrections into the step size: same maths, epsilon scaled
        theta = theta - 0.01 * m_hat / (np.sqrt(v_hat) + 1e-7 / np.sqrt(1 - 0.999 ** t))
        np.testing.assert_allclose(a, theta, rtol=1e-10)


def test_state_is_kept_per_parameter():
    a, b = THETA0.copy(), THETA0.copy()
    opt = optimizers.RMSprop()
    opt.apply_gradients([(GRADS[0], a), (GRADS[1], b)])
    single = THETA0.copy()
    optimizers.RMSprop().apply_gradients([(GRADS[1], single)])
    np.testing.assert_array_equal(b, single)


def test_float32_parameters_stay_float32_and_are_updated_in_place():
    theta = THETA0.astype(np.float32)
    ref = theta
    optimizers.RMSprop().apply_gradients([(GRADS[0], theta)])
    assert theta is ref and theta.dtype == np.float32
    assert not np.allclose(theta, THETA0.astype(np.float32))


def test_unknown_optimizer_name_lists_valid_ones():
    with pytest.raises(ValueError, match="unknown optimizer 'adagard'.*Adam, RMSprop, SGD, Adagrad"):
        optimizers.get("adagard")


def test_gradient_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match=r"\(3, 4\)"):
        optimizers.RMSprop().apply_gradients([(np.zeros((4, 3)), THETA0.copy())])
