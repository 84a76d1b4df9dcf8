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
        s = rho * s + (1 - rho) * (g * g)               # (1)  s = βs + (1-β) g⊙g
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


def test_another_weight_at_a_weights_place_is_refused_not_given_its_state():
    """The state is kept by place in the list given: a second layer of the same shape stepped
    with the list of the first took over its running averages (0.0246 off Keras in four Adam
    steps), silently; the place's weight is checked now, and ``None`` keeps a place."""
    a, b = THETA0.copy(), THETA0.copy()
    opt = optimizers.Adam(0.01)
    opt.apply_gradients([(GRADS[0], a)])
    with pytest.raises(ValueError, match=r"weight 0 of the list given \(shape \(3, 4\)\) is not "
                                         r"the weight it updated at that place before"):
        opt.apply_gradients([(GRADS[1], b)])
    np.testing.assert_array_equal(b, THETA0)  # refused before any change
    opt.apply_gradients([(None, a), (GRADS[1], b)])  # b at its own place: a fresh state
    alone = THETA0.copy()
    optimizers.Adam(0.01).apply_gradients([(GRADS[1], alone)])
    assert opt.iterations == 2
    # Adam's bias correction reads the step count (2 here, 1 alone): compare with the formula
    m, v = 0.1 * GRADS[1], 0.001 * GRADS[1] ** 2
    step = 0.01 * (m / (1 - 0.9 ** 2)) / (np.sqrt(v / (1 - 0.999 ** 2)) + 1e-7)
    np.testing.assert_allclose(b, THETA0 - step, rtol=1e-6)


def test_keras_3_build_and_apply_take_the_weights_once():
    a, b = THETA0.copy(), THETA0.copy() + 1
    by_pairs, by_apply = optimizers.RMSprop(0.01), optimizers.RMSprop(0.01)
    ref_a, ref_b = a.copy(), b.copy()
    by_apply.build([a, b])
    for g in GRADS[:3]:
        by_pairs.apply_gradients([(g, ref_a), (2 * g, ref_b)])
        by_apply.apply([g, 2 * g])  # the weights given to build
    np.testing.assert_array_equal(a, ref_a)
    np.testing.assert_array_equal(b, ref_b)
    by_apply.apply([GRADS[3], GRADS[4]], [a, b])
    with pytest.raises(TypeError, match=r"give the weights as well, apply\(grads, weights\)"):
        optimizers.SGD().apply([GRADS[0]])
    with pytest.raises(ValueError, match="1 gradients for 2 weights"):  # (zip would cut them)
        by_apply.apply([GRADS[0]])
    with pytest.raises(TypeError, match=r"takes \(gradient, weight\) pairs, zip\(grads, weights\), "
                                        "got an element of type ndarray"):
        optimizers.SGD().apply_gradients(GRADS[:2])


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


def test_adagrad_by_hand():
    theta, a = THETA0.copy(), np.full_like(THETA0, 0.5)
    got = run(optimizers.Adagrad(learning_rate=0.05, initial_accumulator_value=0.5, epsilon=1e-4))
    for g, b in zip(GRADS, got):
        a = a + g * g                                    # the sum of squared gradients so far
        theta = theta - 0.05 * g / np.sqrt(a + 1e-4)
        np.testing.assert_allclose(b, theta, rtol=1e-13)


def test_adagrad_first_step_uses_the_initial_accumulator():
    """With a = 0.1 + g² after one step, a gradient of 1 moves θ by η / sqrt(1.1 + ε): a bug
    that starts the accumulator at zero moves it by η."""
    theta = np.zeros(3)
    optimizers.Adagrad(learning_rate=0.1).apply_gradients([(np.ones(3), theta)])
    np.testing.assert_allclose(theta, -0.1 / np.sqrt(1.1 + 1e-7), rtol=1e-14)


def test_adadelta_by_hand():
    theta, s, d = THETA0.copy(), np.zeros_like(THETA0), np.zeros_like(THETA0)
    got = run(optimizers.Adadelta(learning_rate=1.0, rho=0.9, epsilon=1e-6))
    for g, b in zip(GRADS, got):
        s = 0.9 * s + 0.1 * g * g
        delta = -np.sqrt(d + 1e-6) / np.sqrt(s + 1e-6) * g
        d = 0.9 * d + 0.1 * delta * delta
        theta = theta + delta
        np.testing.assert_allclose(b, theta, rtol=1e-12)


# --------------------------------------------------------------------------------------------
# clipping and weight decay (before every optimizer's own update, as in Keras)
# --------------------------------------------------------------------------------------------

def sgd_step(grads, **kwargs):
    """The gradients as SGD(learning_rate=1) applied them to parameters at zero (read exactly)."""
    params = [np.zeros_like(g) for g in grads]
    optimizers.SGD(learning_rate=1.0, **kwargs).apply_gradients(zip(grads, params))
    return [-p for p in params]


def test_clipnorm_clips_each_gradient_to_that_norm():
    big, small = GRADS[0] * 10, GRADS[1] * 0.01     # norms about 35 and 0.035
    used = sgd_step([big, small], clipnorm=1.0)
    assert np.linalg.norm(used[0]) == pytest.approx(1.0, rel=1e-14)
    np.testing.assert_allclose(used[0], big / np.linalg.norm(big), rtol=1e-13)  # same direction
    np.testing.assert_allclose(used[1], small, rtol=1e-13)                      # under: unchanged
    zero = sgd_step([np.zeros_like(THETA0)], clipnorm=1.0)
    np.testing.assert_array_equal(zero[0], 0.0)                                 # no 0 / 0


def test_global_clipnorm_scales_all_gradients_together():
    grads = [GRADS[0] * 10, GRADS[1] * 0.01]
    total = np.sqrt(sum((g * g).sum() for g in grads))
    used = sgd_step(grads, global_clipnorm=2.0)
    assert np.sqrt(sum((u * u).sum() for u in used)) == pytest.approx(2.0, rel=1e-14)
    for u, g in zip(used, grads):
        np.testing.assert_allclose(u, g * 2.0 / total, rtol=1e-13)  # the small one shrinks too
    unchanged = sgd_step([GRADS[1] * 0.01], global_clipnorm=2.0)
    np.testing.assert_allclose(unchanged[0], GRADS[1] * 0.01, rtol=1e-13)


def test_global_clipnorm_of_an_infinite_gradient_is_nan_as_in_keras():
    """Not a silent zero step: the training loop sees the NaN and stops with a message."""
    g = GRADS[0].copy()
    g[0, 0] = np.inf
    params = [THETA0.copy(), THETA0.copy()]
    with np.errstate(invalid="ignore"):
        optimizers.SGD(global_clipnorm=1.0).apply_gradients(zip([g, GRADS[1]], params))
    assert np.isnan(params[0]).all() and np.isnan(params[1]).all()


def test_clipvalue_clips_each_entry():
    used = sgd_step([GRADS[0]], clipvalue=0.5)
    np.testing.assert_array_equal(used[0], np.clip(GRADS[0], -0.5, 0.5))
    assert (np.abs(GRADS[0]) > 0.5).any() and (np.abs(GRADS[0]) < 0.5).any()


@pytest.mark.parametrize("kwargs", [{"clipnorm": 0.1}, {"global_clipnorm": 0.1}, {"clipvalue": 0.1}])
def test_clipping_leaves_the_callers_gradients_alone(kwargs):
    g = GRADS[0].copy()
    optimizers.RMSprop(**kwargs).apply_gradients([(g, THETA0.copy())])
    np.testing.assert_array_equal(g, GRADS[0])


def test_clipping_comes_before_the_optimizers_own_update():
    """Adam after clipnorm is Adam on the clipped gradients."""
    clipped = [g * 0.5 / max(np.linalg.norm(g), 0.5) for g in GRADS]
    theta, reference = THETA0.copy(), THETA0.copy()
    opt, ref = optimizers.Adam(learning_rate=0.01, clipnorm=0.5), optimizers.Adam(learning_rate=0.01)
    for g, c in zip(GRADS, clipped):
        opt.apply_gradients([(g, theta)])
        ref.apply_gradients([(c, reference)])
    np.testing.assert_allclose(theta, reference, rtol=1e-13)


def test_weight_decay_shrinks_the_weights_before_the_update():
    theta = THETA0.copy()
    optimizers.SGD(learning_rate=0.1, weight_decay=0.5).apply_gradients([(GRADS[0], theta)])
    np.testing.assert_allclose(theta, THETA0 - 0.1 * 0.5 * THETA0 - 0.1 * GRADS[0], rtol=1e-14)


@pytest.mark.parametrize("opt", [
    optimizers.RMSprop(clipnorm=0.5), optimizers.Adam(global_clipnorm=0.5),
    optimizers.SGD(momentum=0.9, clipvalue=0.1, weight_decay=0.01), optimizers.Adagrad(),
    optimizers.Adadelta(learning_rate=1.0),
])
def test_float32_parameters_stay_float32_with_every_option(opt):
    theta = THETA0.astype(np.float32)
    ref = THETA0.copy()
    opt64 = optimizers.from_config(opt.get_config())
    for g in GRADS:
        opt.apply_gradients([(g.astype(np.float32), theta)])
        opt64.apply_gradients([(g, ref)])
        assert theta.dtype == np.float32
        for state in opt._slots:
            assert all(a.dtype == np.float32 for a in state.values())
    np.testing.assert_allclose(theta, ref, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Keras's arguments and names
# --------------------------------------------------------------------------------------------

def test_lr_is_keras_2s_name_for_learning_rate():
    assert run(optimizers.SGD(lr=0.1))[-1].tolist() == run(optimizers.SGD(learning_rate=0.1))[-1].tolist()
    opt = optimizers.Adagrad(lr=0.05)
    assert opt.learning_rate == 0.05 and opt.lr == 0.05
    opt.lr = 0.01
    assert opt.learning_rate == 0.01
    with pytest.raises(TypeError, match="learning rate once.*learning_rate=0.1.*lr=0.2"):
        optimizers.Adam(learning_rate=0.1, lr=0.2)


def test_keras_2_spellings_that_mean_the_default_are_accepted():
    opt = optimizers.RMSprop(lr=0.001, rho=0.9, epsilon=None, decay=0.0)   # Keras 2's signature
    assert opt.epsilon == 1e-7 and opt.learning_rate == 0.001
    assert optimizers.Adam(use_ema=False, ema_momentum=0.99, weight_decay=None).get_config() == \
        optimizers.Adam().get_config()


@pytest.mark.parametrize("kwargs, match", [
    ({"decay": 1e-6}, r"decay=1e-06 .*Keras 2's learning-rate decay.*InverseTimeDecay\(η, "
                      r"decay_steps=1, decay_rate=1e-06\)"),
    ({"use_ema": True}, "use_ema=True is a Keras argument that tinynet does not implement"),
    ({"momentum": 0.9}, "momentum=0.9 is not an argument of this optimizer; tinynet's Adam takes "
                        "learning_rate, beta_1, beta_2, epsilon, amsgrad, lr, clipnorm, clipvalue, "
                        "global_clipnorm, weight_decay, name"),
    ({"learning_rate": lambda step: 0.1}, "learning_rate must be a number or a learning-rate "
                                          "schedule.*subclass of LearningRateSchedule"),
])
def test_arguments_tinynet_does_not_have_are_named(kwargs, match):
    with pytest.raises(TypeError, match=match):
        optimizers.Adam(**kwargs)


def test_bad_clipping_arguments():
    with pytest.raises(ValueError, match="at most one of clipnorm, clipvalue and global_clipnorm"):
        optimizers.SGD(clipnorm=1.0, clipvalue=0.5)
    with pytest.raises(ValueError, match="clipnorm must be a positive number"):
        optimizers.SGD(clipnorm=-1.0)
    with pytest.raises(ValueError, match="weight_decay must be >= 0"):
        optimizers.SGD(weight_decay=-0.1)


@pytest.mark.parametrize("name, cls", [
    ("adam", optimizers.Adam), ("Adam", optimizers.Adam), ("rmsprop", optimizers.RMSprop),
    ("RMSprop", optimizers.RMSprop), ("SGD", optimizers.SGD), ("sgd", optimizers.SGD),
    ("adagrad", optimizers.Adagrad), ("Adagrad", optimizers.Adagrad),
    ("adadelta", optimizers.Adadelta), ("ADADELTA", optimizers.Adadelta),
])
def test_get_by_name_in_any_case(name, cls):
    opt = optimizers.get(name)
    assert type(opt) is cls
    assert opt.get_config() == cls().get_config()   # Keras's defaults


def test_get_classes_instances_and_configs():
    assert type(optimizers.get(optimizers.Adadelta)) is optimizers.Adadelta
    opt = optimizers.Adam(learning_rate=0.01)
    assert optimizers.get(opt) is opt
    assert optimizers.get({"class_name": "Adagrad", "config": {"learning_rate": 0.2}}).learning_rate == 0.2
    assert optimizers.get(opt.get_config()).get_config() == opt.get_config()


def test_keras_optimizers_tinynet_does_not_have_say_so():
    with pytest.raises(ValueError, match="'nadam' is a Keras optimizer that tinynet does not "
                                         "implement; tinynet has Adam, RMSprop, SGD, Adagrad"):
        optimizers.get("nadam")
    with pytest.raises(AttributeError, match="'AdamW'.*not implemented in tinynet.*Adadelta"):
        optimizers.AdamW  # noqa: B018
    with pytest.raises(ValueError, match="cannot interpret 0.1 as an optimizer"):
        optimizers.get(0.1)


@pytest.mark.parametrize("opt", [
    optimizers.RMSprop(learning_rate=0.01, rho=0.8, momentum=0.5, epsilon=1e-6, centered=True,
                       clipnorm=2.0, name="mine"),
    optimizers.SGD(lr=0.1, momentum=0.9, nesterov=True, global_clipnorm=5.0),
    optimizers.Adam(beta_1=0.8, beta_2=0.99, amsgrad=True, clipvalue=0.25, weight_decay=0.004),
    optimizers.Adagrad(learning_rate=0.05, initial_accumulator_value=0.3, epsilon=1e-5, clipnorm=1.0),
    optimizers.Adadelta(learning_rate=1.0, rho=0.9, epsilon=1e-6, clipvalue=0.5),
])
def test_config_round_trip_keeps_every_argument(opt):
    again = optimizers.from_config(opt.get_config())
    assert type(again) is type(opt) and again.get_config() == opt.get_config()
    np.testing.assert_array_equal(run(again)[-1], run(opt)[-1])


def test_configs_saved_before_clipping_existed_still_load():
    old = {"class": "RMSprop", "learning_rate": 0.01, "rho": 0.9, "momentum": 0.0,
           "epsilon": 1e-07, "centered": False}
    opt = optimizers.from_config(old)
    assert opt.clipnorm is None and opt.weight_decay is None and opt.learning_rate == 0.01


@pytest.mark.parametrize("cls", [optimizers.Adagrad, optimizers.Adadelta])
def test_new_optimizers_resume_from_their_saved_state(cls):
    """get_state/set_state (what model files hold) continue the trajectory exactly, Adagrad's
    accumulator included (it does not start again from initial_accumulator_value)."""
    straight = cls(learning_rate=0.1)
    theta = THETA0.copy()
    for g in GRADS:
        straight.apply_gradients([(g, theta)])
    first = cls(learning_rate=0.1)
    resumed = THETA0.copy()
    for g in GRADS[:2]:
        first.apply_gradients([(g, resumed)])
    second = cls(learning_rate=0.1)
    second.set_state([resumed], first.get_state([resumed]))
    for g in GRADS[2:]:
        second.apply_gradients([(g, resumed)])
    np.testing.assert_array_equal(resumed, theta)


def test_an_undone_first_adagrad_step_is_redone_from_the_initial_accumulator():
    opt = optimizers.Adagrad(learning_rate=0.1)
    theta = THETA0.copy()
    saved = opt.snapshot([theta])
    opt.apply_gradients([(GRADS[0], theta)])
    opt.restore([theta], saved)
    np.testing.assert_array_equal(theta, THETA0)
    opt.apply_gradients([(GRADS[1], theta)])
    fresh = THETA0.copy()
    optimizers.Adagrad(learning_rate=0.1).apply_gradients([(GRADS[1], fresh)])
    np.testing.assert_array_equal(theta, fresh)


def test_one_optimizer_compiled_into_two_models_is_refused():
    """Its state is per weight of its model: a second model silently shared Adam's moments and
    step count (iterations 4 after one 2-step epoch of each); Keras refuses too."""
    import tinynet
    opt = optimizers.Adam()
    first = tinynet.Sequential([tinynet.Input((4,)), tinynet.layers.Dense(2)])
    first.compile(opt, "mse")
    first.compile(opt, "mse")  # the same model again: fine
    second = tinynet.Sequential([tinynet.Input((4,)), tinynet.layers.Dense(2)])
    with pytest.raises(ValueError, match=r"this Adam already trains model '.*'.* its own "
                                         r"optimizer"):
        second.compile(opt, "mse")
    # not refused: a copy of it; an optimizer its first model no longer uses; one whose compile
    # failed (it trains nothing)
    import copy
    second.compile(copy.deepcopy(opt), "mse")
    first.compile(optimizers.Adam(), "mse")
    second.compile(opt, "mse")
    third = tinynet.Sequential([tinynet.Input((4,)), tinynet.layers.Dense(2)])
    spare = optimizers.SGD()
    with pytest.raises(ValueError, match="unknown loss"):
        first.compile(spare, "no such loss")
    assert first.optimizer is not spare and first.loss is not None  # a failed compile: no change
    third.compile(spare, "mse")
    # an optimizer that trained a model carries that model's state: not for another one, even
    # once freed, nor a copy of it
    third.train_on_batch(np.ones((2, 4)), np.ones((2, 2)))
    third.compile(optimizers.SGD(), "mse")
    for used in (spare, copy.deepcopy(spare)):
        with pytest.raises(ValueError, match=r"holds the state of another model's training \(1 "
                                             r"step:"):
            first.compile(used, "mse")
    twin = copy.deepcopy(third)  # a model's copy keeps its optimizer, state and all
    twin.compile(twin.optimizer, "mse")


def test_an_optimizer_stepped_by_hand_on_a_models_weights_compiles_into_that_model():
    """Steps written by hand (``apply_gradients(zip(model.grads, model.params))``), then ``fit``
    with the same optimizer: accepted as Keras does (it was refused as "another model's
    training"), and the same numbers as three steps of train_on_batch."""
    import tinynet
    from tinynet import backend
    backend.set_floatx("float64")  # restored by conftest
    x, y = np.random.default_rng(0).standard_normal((8, 4)), np.zeros((8, 2))
    models = []
    for by_hand in (True, False):
        backend.set_seed(1)
        model = tinynet.Sequential([tinynet.Input((4,)), tinynet.layers.Dense(2)])
        opt = optimizers.Adam(0.01)
        if by_hand:
            for _ in range(2):
                out = model.forward(x, training=True)
                model.backward(2 * (out - y) / out.size)  # d mean((out - y)^2) / d out
                opt.apply_gradients(zip(model.grads, model.params))
            model.compile(opt, "mse")
            model.train_on_batch(x, y)
        else:
            model.compile(opt, "mse")
            for _ in range(3):
                model.train_on_batch(x, y)
        models.append(model)
    assert models[0].optimizer.iterations == 3
    for a, b in zip(models[0].get_weights(), models[1].get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-15)


def test_the_learning_rate_answers_keras_variable_methods_and_is_checked_when_set():
    import tinynet
    opt = optimizers.RMSprop(learning_rate=0.1)
    model = tinynet.Sequential([tinynet.Input((2,)), tinynet.layers.Dense(1, use_bias=False)])
    model.compile(opt, "mse")
    opt.learning_rate.assign(0.5)  # Keras 3's way; the step uses it
    assert opt.learning_rate == 0.5 and opt.learning_rate.numpy() == 0.5
    w = model.get_weights()[0].copy()
    model.train_on_batch(np.ones((1, 2)), np.zeros((1, 1)))
    g = 2 * (np.ones((1, 2)) @ w).item()  # d(mse)/dw for each weight (the input is all ones)
    # RMSprop's first step: s = 0.1 g^2, so the step is 0.5 * g / sqrt(0.1 g^2 + 1e-7)
    step = 0.5 * g / np.sqrt(0.1 * g * g + 1e-7)
    np.testing.assert_allclose(model.get_weights()[0], w - step, rtol=1e-5)
    for bad, kind in ((np.array([0.1]), TypeError), (None, TypeError), ("0.1", TypeError),
                      (float("nan"), ValueError), (-0.1, ValueError)):
        with pytest.raises(kind, match="learning_rate must be a"):
            opt.learning_rate = bad
    assert opt.learning_rate == 0.5


def test_steps_by_hand_on_another_list_than_fits_are_refused_by_fit_not_garbled():
    """Adam stepped by hand on ``model.trainable_weights`` (a layer frozen: the list is shifted
    against ``model.params``), then ``fit``: each weight took the state of the one at its place
    in the other list (0.10 off Keras, silently); fit refuses now, as compile does with a fresh
    optimizer. After ``model.add`` (new arrays, the same weights at the same places), a step by
    hand on ``model.params`` is taken (a first version refused it)."""
    import tinynet
    rng = np.random.default_rng(0)
    x, y = rng.random((32, 5)), np.eye(5)[np.arange(32) % 5]
    model = tinynet.Sequential([tinynet.Input((5,))] + [tinynet.layers.Dense(5) for _ in range(3)])
    model.layers[0].trainable = False
    for compiled_first in (True, False):
        opt = optimizers.Adam(0.05)
        if compiled_first:
            model.compile(opt, "mse")
        out = model.forward(x, training=True)
        model.backward((out - y) / 32)
        frozen = model._frozen()
        opt.apply_gradients(zip([g for g, f in zip(model.grads, frozen) if not f],
                                model.trainable_weights))
        with pytest.raises(ValueError, match="not the weight it updated at that place before"
                           if compiled_first else "stepped on this model's weights, but given in "
                                                  "another list than model.params"):
            if compiled_first:
                model.fit(x, y, verbose=0)
            else:
                model.compile(opt, "mse")
    model.layers[0].trainable = True
    model.compile(optimizers.Adam(0.05), "mse")
    model.fit(x, y, verbose=0)
    model.add(tinynet.layers.Dense(5))
    out = model.forward(x, training=True)
    model.backward((out - y) / 32)
    model.optimizer.apply_gradients(zip(model.grads, model.params))
    model.fit(x, y, verbose=0)
    assert model.optimizer.iterations == 3


def test_places_without_a_state_and_a_model_whose_layers_changed_are_not_refused(monkeypatch):
    """A second review: ``build(model.trainable_weights)`` with a layer frozen, then compile and
    fit (Keras accepts it; no state was made, so none is taken over), and, on the per-parameter
    reference path (no arena), fit after ``pop()`` and ``add()`` (the flat path accepted it)."""
    import tinynet
    from tinynet import arena
    x, y = np.random.default_rng(0).random((16, 5)), np.zeros((16, 3))
    model = tinynet.Sequential([tinynet.Input((5,)), tinynet.layers.Dense(4),
                                tinynet.layers.Dense(3)])
    model.layers[0].trainable = False
    opt = optimizers.Adam()
    opt.build(model.trainable_weights)
    model.compile(opt, "mse")
    model.fit(x, y, verbose=0)
    monkeypatch.setattr(arena, "ENABLED", False)
    model = tinynet.Sequential([tinynet.Input((5,)), tinynet.layers.Dense(4),
                                tinynet.layers.Dense(3)])
    model.compile("adam", "mse")
    model.fit(x, y, verbose=0)
    popped = model.pop()  # (kept alive: its weights' weak references too)
    model.add(tinynet.layers.Dense(3))
    model.fit(x, y, verbose=0)
    assert model.optimizer.iterations == 2 and popped.kernel.shape == (4, 3)
