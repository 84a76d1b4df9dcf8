"""Input checks of gradcheck, the metric objects, the optimizers and the callbacks: each mistake
found by fuzzing the public API is refused when it is made, with a message that names it (it
used to pass silently, report a perfect score, or fail later with another part's error)."""
import csv
import os

import numpy as np
import pytest

import tinynet
from tinynet import backend, callbacks, gradcheck, layers, metrics, optimizers


def small_model():
    model = tinynet.Sequential([layers.Input((4,)), layers.Dense(5, activation="relu"),
                                layers.Dense(3, activation="softmax")])
    model.compile("rmsprop", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def data(n=10):
    x = np.random.default_rng(0).random((n, 4)).astype("float32")
    return x, np.arange(n) % 3


def fit(model, cbs, epochs=2, **kwargs):
    x, y = data()
    return model.fit(x, y, epochs=epochs, verbose=0, callbacks=cbs, **kwargs)


# ---- gradcheck ----------------------------------------------------------------------------------
def float64_model():
    model = tinynet.Sequential([layers.Input((4,)), layers.Dense(3, activation="tanh")])
    return model, np.random.default_rng(0).standard_normal((2, 4))


@pytest.mark.parametrize("entries, detail", [(0, "nothing would be checked"), (-3, "got -3"),
                                             (2.5, "got 2.5"), (True, "got True")])
def test_gradcheck_refuses_entries_that_are_not_a_count_of_one_or_more(float64, entries, detail):
    # entries=0 returned 0.0 for every array, a perfect score for a check of nothing
    model, x = float64_model()
    with pytest.raises(ValueError, match=f"check_model: entries must be a whole number >= 1"
                                         f".*{detail}"):
        gradcheck.check_model(model, x, entries=entries)
    with pytest.raises(ValueError, match=f"check_layer: entries must be a whole number >= 1"
                                         f".*{detail}"):
        gradcheck.check_layer(layers.Dense(3), x, entries=entries)


@pytest.mark.parametrize("h", [0, 0.0, -1e-6, float("nan"), "a"])
def test_gradcheck_refuses_a_step_that_is_not_positive(float64, h):
    model, x = float64_model()
    with pytest.raises(ValueError, match="check_model: h, the step of the central differences, "
                                         "must be a finite number > 0"):
        gradcheck.check_model(model, x, h=h)
    with pytest.raises(ValueError, match="check_layer: h, the step"):
        gradcheck.check_layer(layers.Dense(3), x, h=h)


def test_gradcheck_builds_a_sequential_without_input_from_x(float64):
    model = tinynet.Sequential([layers.Dense(2, activation="tanh", name="d")])
    x = np.random.default_rng(0).standard_normal((3, 4))
    errors = gradcheck.check_model(model, x)  # was AttributeError: 'NoneType' ... 'forward'
    assert set(errors) == {"input", "d/kernel", "d/bias"}
    assert max(errors.values()) < 1e-7
    assert model.input_shape == (None, 4)


def test_gradcheck_refuses_what_is_not_a_layer_or_a_model(float64):
    x = np.random.default_rng(0).standard_normal((2, 4))
    with pytest.raises(TypeError, match=r"check_layer: layer must be a tinynet layer object.*"
                                        r"got 'dense' \(a str\)"):
        gradcheck.check_layer("dense", x)
    model, x = float64_model()
    with pytest.raises(TypeError, match="for a whole model use gradcheck.check_model"):
        gradcheck.check_layer(model, x)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_gradcheck_refuses_inputs_with_nan_or_infinity(float64, bad):
    # every error came back NaN
    model, x = float64_model()
    x[1, 2] = bad
    with pytest.raises(ValueError, match="check_model: x contains NaN or infinite values"):
        gradcheck.check_model(model, x)
    with pytest.raises(ValueError, match="check_layer: x contains NaN or infinite values"):
        gradcheck.check_layer(layers.Dense(3), x)
    model.compile("sgd", "mse")
    y = np.zeros((2, 3))
    y[0, 0] = bad
    with pytest.raises(ValueError, match="check_model: y contains NaN or infinite values"):
        gradcheck.check_model(model, np.ones((2, 4)), y)


@pytest.mark.parametrize("a, b", [(np.array([[1.0], [2.0], [3.0]]), np.array([1.0, 2.0, 3.0])),
                                  (np.zeros(3), np.zeros(4))])
def test_relative_error_refuses_arrays_of_different_shapes(a, b):
    # they were broadcast: 0.667 for the same three numbers, 0.0 for 3 against 4 entries
    with pytest.raises(ValueError, match=rf"{a.shape}.*{b.shape}; the two shapes differ".replace(
            "(", r"\(").replace(")", r"\)")):
        gradcheck.relative_error(a, b)
    assert gradcheck.relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.2])) == \
        pytest.approx(0.2 / 2.2)


# ---- metric objects -----------------------------------------------------------------------------
PROBS = np.eye(3)[[0, 2, 2, 1]] * 0.8 + 0.05


def test_sparse_accuracy_refuses_class_numbers_out_of_range():
    # it reported 0.0, silently, where fit refuses the labels
    m = metrics.SparseCategoricalAccuracy()
    with pytest.raises(ValueError, match=r"y_true holds class numbers up to 7 but y_pred \(4, 3\) "
                                         r"has 3 classes \(0 to 2\)"):
        m.update_state(np.array([0, 1, 7, 1]), PROBS)
    with pytest.raises(ValueError, match="class number -1; class numbers run from 0 to 2"):
        m.update_state(np.array([0, -1, 2, 1]), PROBS)
    m.update_state(np.array([0, 1, 2, 1]), PROBS)  # in range: counted, the failed calls were not
    assert float(m.result()) == pytest.approx(0.75)


def test_categorical_accuracy_refuses_one_hot_rows_of_another_width():
    # "cannot reshape array of size 12 into shape (4,)"
    m = metrics.CategoricalAccuracy()
    with pytest.raises(ValueError, match=r"y_true \(4, 3\) does not match y_pred \(4, 4\): one-hot "
                                         r"rows of 3 classes for predictions of 4"):
        m.update_state(np.eye(3)[[0, 1, 2, 1]], np.eye(4)[[0, 2, 2, 1]])


def test_metric_refuses_sample_weights_not_one_per_example():
    # a NumPy broadcast error
    m = metrics.SparseCategoricalAccuracy()
    y = np.array([0, 1, 2, 1])
    with pytest.raises(ValueError, match=r"sample_weight has shape \(2,\) for 4 examples; give one "
                                         r"weight per example, shape \(4,\)"):
        m.update_state(y, PROBS, sample_weight=np.ones(2))
    m.update_state(y, PROBS, sample_weight=np.array([1.0, 1.0, 2.0, 0.0]))  # hits 1, 0, 1, 1
    assert float(m.result()) == pytest.approx(3 / 4)
    m.reset_state()
    m.update_state(y, PROBS, sample_weight=2.0)  # one number for all, as Keras takes it
    assert float(m.result()) == pytest.approx(0.75)


# ---- optimizers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("make, message", [
    (lambda: optimizers.RMSprop(epsilon=-1),
     r"RMSprop: epsilon must be a finite number >= 0.*got -1"),
    (lambda: optimizers.Adam(beta_1=1.0), r"Adam: beta_1 must be in \[0, 1\).*got 1.0"),
    (lambda: optimizers.Adam(beta_2=2.0), r"Adam: beta_2 must be in \[0, 1\).*got 2.0"),
    (lambda: optimizers.Adam(beta_1=-1), r"Adam: beta_1 must be in \[0, 1\).*got -1"),
    (lambda: optimizers.Adam(epsilon=float("nan")), r"Adam: epsilon must be a finite number"),
    (lambda: optimizers.Adagrad(epsilon=-1e-7), r"Adagrad: epsilon must be a finite number"),
    (lambda: optimizers.Adadelta(epsilon="small"), r"Adadelta: epsilon must be a finite number"),
])
def test_optimizers_refuse_betas_outside_0_1_and_negative_epsilon_when_made(make, message):
    # accepted, and fit then blamed the learning rate (NonFiniteLossError)
    with pytest.raises(ValueError, match=message):
        make()


def test_optimizers_keep_accepting_epsilon_zero_and_beta_zero():
    # Keras (and PyTorch) accept them: legitimate, if unwise
    assert optimizers.RMSprop(epsilon=0).epsilon == 0.0
    assert optimizers.Adam(beta_1=0.0, epsilon=0.0).beta_1 == 0.0
    assert optimizers.Adam(epsilon=None).epsilon == 1e-7  # Keras 2's default


@pytest.mark.parametrize("options", [{}, {"momentum": 0.5}, {"centered": True}])
def test_rmsprop_updates_a_non_contiguous_weight_on_the_numba_backend(options):
    # the fused kernel refused it: "rmsprop_update: ... must be contiguous arrays"
    pytest.importorskip("numba")
    backend.set_backend("numba")
    g = np.arange(9, dtype=np.float32).reshape(3, 3) - 4
    base = np.zeros((3, 6), np.float32)
    view, dense = base[:, ::2], np.zeros((3, 3), np.float32)
    a, b = optimizers.RMSprop(0.1, **options), optimizers.RMSprop(0.1, **options)
    for _ in range(3):
        a.apply_gradients(zip([g], [view]))
        b.apply_gradients(zip([g], [dense]))
    np.testing.assert_array_equal(base[:, ::2], dense)  # the same numbers, in the view itself
    assert not base[:, 1::2].any() and dense.any()


def test_rmsprop_updates_float16_weights_on_the_numba_backend_as_on_numpy():
    """numba's fused kernel refused them (a TypeError); the NumPy lines take them."""
    pytest.importorskip("numba")
    g = (np.arange(6, dtype=np.float16) - 2).reshape(2, 3)
    out = {}
    for name in ("numpy", "numba"):
        backend.set_backend(name)
        w, rms = np.ones((2, 3), np.float16), optimizers.RMSprop(0.1, momentum=0.5)
        for _ in range(3):
            rms.apply_gradients(zip([g], [w]))
        out[name] = w
    assert out["numpy"].dtype == np.float16 and (out["numpy"] != 1).any()
    np.testing.assert_array_equal(out["numba"], out["numpy"])


def test_apply_gradients_refuses_weights_that_are_not_float_arrays():
    sgd = optimizers.SGD(0.5)
    with pytest.raises(TypeError, match=r"SGD.apply_gradients: weight 0 has dtype int64; it must "
                                        r"be a float array"):
        sgd.apply_gradients(zip([np.ones(3)], [np.zeros(3, np.int64)]))
    with pytest.raises(TypeError, match=r"SGD.apply_gradients: weight 0 is a list, not an array"):
        sgd.apply_gradients(zip([np.ones(3)], [[0.0, 0.0, 0.0]]))
    w = np.zeros(3, np.float32)
    sgd.apply_gradients(zip([np.ones(3, np.float32)], [w]))
    np.testing.assert_array_equal(w, [-0.5, -0.5, -0.5])


# ---- callbacks ----------------------------------------------------------------------------------
@pytest.mark.parametrize("pattern, detail", [
    ("m_{epoch:xyz}.keras", "Invalid format specifier"),
    ("m_{epoch.keras", "expected '}' before end of string"),
    ("m_{}.keras", "a field {} without a name"),
    ("m_{val_loss:02d}.keras", "Unknown format code 'd'"),
])
def test_model_checkpoint_checks_its_file_pattern_when_made(tmp_path, pattern, detail):
    # a raw format error at the end of the first epoch
    with pytest.raises(ValueError, match=r"ModelCheckpoint: the filepath .* is not a pattern "
                                         r"str.format can fill \(" + detail.replace("{", r"\{")
                                         .replace("}", r"\}").replace("(", r"\(")):
        callbacks.ModelCheckpoint(str(tmp_path / pattern))
    callbacks.ModelCheckpoint(str(tmp_path / "m_{epoch:02d}-{val_loss:.4f}.keras"))  # fine


@pytest.mark.parametrize("separator", ["", ";;", None])
def test_csv_logger_refuses_a_separator_that_is_not_one_character(tmp_path, separator):
    # a csv TypeError at the end of the first epoch
    with pytest.raises(ValueError, match="CSVLogger: separator must be one character"):
        callbacks.CSVLogger(str(tmp_path / "log.csv"), separator=separator)


def test_csv_logger_names_a_missing_folder_before_training(tmp_path):
    path = tmp_path / "logs" / "run1" / "log.csv"
    model = small_model()
    before = model.get_weights()
    folder = str(path.parent)
    with pytest.raises(FileNotFoundError, match=rf"CSVLogger: cannot write .*the folder "
                                                rf"'{folder}' does not exist.*os.makedirs"):
        fit(model, [callbacks.CSVLogger(str(path))])
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # nothing ran
    os.makedirs(path.parent)
    fit(model, [callbacks.CSVLogger(str(path), separator=";")])
    with open(path, newline="") as f:
        assert next(csv.reader(f, delimiter=";")) == ["epoch", "accuracy", "loss",
                                                      "val_accuracy", "val_loss"]


@pytest.mark.parametrize("make", [
    lambda: callbacks.EarlyStopping(monitor="val_los"),
    lambda: callbacks.ReduceLROnPlateau(monitor="val_los"),
    lambda: callbacks.ModelCheckpoint("never.keras", monitor="val_los", save_best_only=True),
])
def test_a_misspelt_monitor_gets_the_closest_logged_name(make):
    # the advice was about mode ("pass mode='max'"), which then warned every epoch
    with pytest.raises(ValueError, match=r"monitor='val_los' is not a value the model logs \(it "
                                         r"logs loss, accuracy, val_loss, val_accuracy.*did you "
                                         r"mean monitor='val_loss'\?"):
        fit(small_model(), [make()], validation_split=0.2)


def test_a_misspelt_monitor_with_a_mode_is_named_in_the_warning():
    with pytest.warns(RuntimeWarning, match="'val_los' is not in the logs.*Did you mean "
                                            "monitor='val_loss'"):
        fit(small_model(), [callbacks.EarlyStopping(monitor="val_los", mode="min")],
            validation_split=0.2)


def test_callbacks_name_a_numeric_argument_that_is_not_a_number():
    # "could not convert string to float: 'a'"
    with pytest.raises(ValueError, match=r"EarlyStopping: min_delta must be a number .*got 'a'"):
        callbacks.EarlyStopping(monitor="loss", min_delta="a")
    with pytest.raises(ValueError, match=r"ReduceLROnPlateau: factor must be a number"):
        callbacks.ReduceLROnPlateau(factor="a")


def test_learning_rate_scheduler_names_itself_for_a_negative_rate():
    # "RMSprop: learning_rate must be ..." without the scheduler, the epoch or the function
    def my_schedule(epoch, lr):
        return lr - 0.01 * (epoch + 1)

    with pytest.raises(ValueError, match=r"LearningRateScheduler: the schedule my_schedule "
                                         r"returned -0.009.* at epoch 0 \(counted from 0\); a "
                                         r"learning rate must be a finite number >= 0"):
        fit(small_model(), [callbacks.LearningRateScheduler(my_schedule)])


# ---- learning-rate schedules --------------------------------------------------------------------
@pytest.mark.parametrize("make, message", [
    (lambda s: s.ExponentialDecay("a", decay_steps=1, decay_rate=0.9),
     r"ExponentialDecay: initial_learning_rate must be a number, got 'a'"),
    (lambda s: s.PiecewiseConstantDecay(["a"], [0.1, 0.2]),
     r"PiecewiseConstantDecay: boundaries\[0\] must be a number \(a step\), got 'a'"),
    (lambda s: s.CosineDecay(0.1, decay_steps=2, warmup_steps=-1, warmup_target=0.2),
     r"CosineDecay: warmup_steps must be a number >= 0"),
    (lambda s: s.CosineDecayRestarts(0.1, first_decay_steps=1, t_mul=0.0),
     r"CosineDecayRestarts: t_mul must be a number > 0"),
])
def test_schedules_refuse_arguments_that_are_not_numbers_of_their_range(make, message):
    # accepted: a raw "could not convert string to float" when an optimizer first read the rate,
    # a warm-up that silently never ran, a NaN rate from log(t_mul)
    with pytest.raises(ValueError, match=message):
        make(optimizers.schedules)
    s = optimizers.schedules.CosineDecay(0.1, decay_steps=4, warmup_steps=0)  # the defaults pass
    assert s.get_config()["warmup_steps"] == 0 and float(s(0)) == pytest.approx(0.1)
