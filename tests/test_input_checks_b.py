"""Checks of arguments a fuzz test of the public API found taken silently, or refused with a raw
Python error that named neither the argument nor the fix (the second batch of its findings).

Each test makes the call the fuzz test made and asserts the exception (or warning) and the part of
its message that says what was wrong; where the input was taken silently, also that the right
input still works.
"""
import gc
import os
import warnings

import numpy as np
import pytest

import tinynet as keras
from tinynet import backend, datasets, interop, layers
from tinynet.io import ModelFileError


def _mlp(units=3, activation="softmax", loss="sparse_categorical_crossentropy", metrics=None):
    model = keras.Sequential([keras.Input((4,)), layers.Dense(5, activation="relu"),
                              layers.Dense(units, activation=activation)])
    if loss is not None:
        model.compile("rmsprop", loss, metrics=metrics or [])
    return model


def _cnn():
    model = keras.Sequential([keras.Input((8, 8, 1)), layers.Conv2D(2, 3), layers.Flatten(),
                              layers.Dense(3, activation="softmax")])
    model.compile("rmsprop", "sparse_categorical_crossentropy")
    return model


X = np.random.default_rng(0).random((10, 4)).astype("float32")
Y = np.arange(10) % 3


# ---- 1. class_weight keys that name no class -------------------------------------------------
@pytest.mark.parametrize("class_weight, excerpt", [
    ({"0": 5.0, "1": 0.1, "2": 1.0}, r"class_weight has the key '0' \(str\), which is not a class "
                                     r"number.*write 0, not '0'"),
    ({0: 1.0, 1.5: 2.0, 2: 1.0}, r"class_weight has the key 1\.5 \(float\), which is not a class "
                                 r"number: its keys are the integer class numbers 0 to 2"),
    ({7: 5.0}, r"class_weight has the key 7, but the model's output 'out' has 3 units: its "
               r"classes are 0 to 2, so a weight for class 7 would weigh no example"),
    ({-1: 5.0}, r"class_weight has the key -1, but .* its classes are 0 to 2"),
])
def test_a_class_weight_key_that_names_no_class_is_refused(class_weight, excerpt):
    """Such keys were ignored: the loss was that of no class_weight at all."""
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="softmax",
                                                              name="out")])
    model.compile("rmsprop", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="fit: " + excerpt):
        model.fit(X, Y, class_weight=class_weight, verbose=0)
    with pytest.raises(ValueError, match="train_on_batch: " + excerpt):
        model.train_on_batch(X, Y, class_weight=class_weight)


def test_class_weight_of_one_unit_takes_classes_0_and_1_and_a_class_absent_from_the_data():
    binary = _mlp(1, "sigmoid", "binary_crossentropy")
    with pytest.raises(ValueError, match=r"has one unit \(two classes\): its classes are 0 and 1"):
        binary.fit(X, Y % 2, class_weight={0: 1.0, 2: 5.0}, verbose=0)
    w0 = binary.get_weights()
    losses = []
    for class_weight in ({False: 1.0, True: 3.0}, {0: 1.0, 1: 3.0}, None):  # (True is 1)
        binary.set_weights(w0)  # a batch's loss is taken before its step: at the same weights
        losses.append(binary.train_on_batch(X, Y % 2, class_weight=class_weight))
    assert losses[0] == losses[1] and abs(losses[0] - losses[2]) > 1e-3, losses
    model = _mlp()
    # a valid class that this data does not hold (class 2) weighs nothing here: taken
    no_two = np.array([0, 1] * 5)
    weighted = model.fit(X, no_two, class_weight={0: 1.0, 1: 1.0, 2: 9.0}, epochs=1, verbose=0,
                         shuffle=False)
    assert np.isfinite(weighted.history["loss"][0])
    model.fit(X, Y, class_weight={0.0: 1.0, 1.0: 2.0, 2.0: 1.0}, verbose=0)  # whole floats


class _Huber(keras.losses.Loss):
    """A regression loss of one's own (delta 1), mean over the batch."""
    name = "huber"

    def per_example(self, y_true, y_pred):
        e = np.abs(y_pred - y_true)
        return np.where(e < 1, 0.5 * e * e, e - 0.5).mean(axis=-1)

    def gradient(self, y_true, y_pred):
        return np.clip(y_pred - y_true, -1, 1) / y_pred.shape[0]


def test_class_weight_of_a_one_unit_regression_takes_its_rounded_targets_as_classes():
    """Under a loss of one's own, as under mse, a one-unit output's classes are its targets'
    values (Keras weighs the examples of class 3: a review found {3: 100.0} refused as outside
    0 and 1, the binary cross-entropy's classes)."""
    model = _mlp(1, None, _Huber())
    targets = (np.arange(10) % 5).astype(np.float32).reshape(-1, 1)
    w0 = model.get_weights()
    plain = model.train_on_batch(X, targets)
    model.set_weights(w0)
    weighted = model.train_on_batch(X, targets, class_weight={3: 100.0})
    assert weighted > plain * 1.5, (plain, weighted)


# ---- 2. input_shape= on a layer that is not the first -----------------------------------------
def test_input_shape_on_a_later_layer_that_contradicts_its_input_is_refused():
    """It was ignored: the model took 4 features where the student wrote 7."""
    with pytest.raises(ValueError, match=r"layer 'late' \(Dense\) was given the input shape \(7,\) "
                                         r"\(input_shape= or input_dim=\), "
                                         r"but its input is the model's Input .* of shape "
                                         r"\(None, 4\).*remove input_shape from this layer"):
        keras.Sequential([keras.Input((4,)), layers.Dense(3, input_shape=(7,), name="late")])
    with pytest.raises(ValueError, match=r"was given the input shape \(7,\)"):  # Keras 2's form
        keras.Sequential([keras.Input((4,)), layers.Dense(3, input_dim=7)])
    with pytest.raises(ValueError, match=r"its input is the output of 'first', of shape "
                                         r"\(None, 3\)"):
        keras.Sequential([layers.Dense(3, input_shape=(4,), name="first"),
                          layers.Dense(2, input_shape=(4,))])


def test_input_shape_that_contradicts_a_functional_layer_s_input_is_refused():
    """A review found it ignored in the functional API, as it had been in a Sequential."""
    with pytest.raises(ValueError, match=r"layer 'wrong' \(Dense\) was given the input shape "
                                         r"\(7,\) .* called on a tensor of shape \(None, 10\)"):
        layers.Dense(4, input_shape=(7,), name="wrong")(layers.Input((10,)))
    out = layers.Dense(4, input_shape=(10,))(layers.Input((10,)))  # agreeing: taken
    assert out.shape == (None, 4)
    inner = keras.Sequential([keras.Input((6,)), layers.Dense(2)])  # a model as a layer: its own
    assert keras.Sequential([keras.Input((6,)), inner]).output_shape == (None, 2)


def test_input_shape_on_a_later_layer_that_agrees_is_ignored_with_a_warning():
    with pytest.warns(UserWarning, match=r"its input shape \(4,\) \(input_shape= or input_dim=\) is "
                                         r"ignored: the layer is not the "
                                         r"model's first"):
        model = keras.Sequential([keras.Input((4,)), layers.Dense(3, input_shape=(4,))])
    assert model.input_shape == (None, 4)
    with pytest.warns(UserWarning, match=r"input shape \(5,\) .* is ignored"):  # not built yet
        keras.Sequential([layers.Dense(3), layers.Dense(2, input_shape=(5,))])


# ---- 3. a softmax over one unit, verbose, a bool as a count ----------------------------------
@pytest.mark.parametrize("loss", ["mse", "binary_crossentropy", "mae"])
def test_a_softmax_over_one_unit_warns_at_compile_whatever_the_loss(loss):
    """Its output is 1.0 whatever the input: training changed nothing, and with "mse" no warning
    came (with binary_crossentropy only "no sigmoid", which did not say why)."""
    model = _mlp(1, "softmax", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.compile("rmsprop", loss)
    texts = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(texts) == 1, texts  # one warning for the one mistake
    assert "runs over a last axis of one value" in texts[0]
    assert "its output is always 1.0" in texts[0] and "activation='sigmoid'" in texts[0]
    np.testing.assert_array_equal(model.predict(X), 1.0)  # what the warning says


def test_a_softmax_layer_after_one_unit_warns_too():
    model = keras.Sequential([keras.Input((4,)), layers.Dense(1), layers.Softmax(name="sm")])
    with pytest.warns(UserWarning, match="the softmax of 'sm' runs over a last axis of one value"):
        model.compile("sgd", "mse")


@pytest.mark.parametrize("verbose", ["x", "1", 2.5])
def test_verbose_is_a_whole_number_or_auto(verbose):
    model = _mlp()
    for call, run in (("fit", lambda: model.fit(X, Y, verbose=verbose)),
                      ("evaluate", lambda: model.evaluate(X, Y, verbose=verbose)),
                      ("predict", lambda: model.predict(X, verbose=verbose))):
        with pytest.raises(ValueError, match=rf"{call}: verbose={verbose!r}; give 0 \(silent\), "
                                             r"1 or 'auto'"):
            run()


def test_verbose_shows_what_keras_shows(capsys):
    """0, None and numbers other than 1 and 2 are silent, as in Keras (None, 5 and -1 were
    refused for a while); 1, 1.0, True and 'auto' a bar, 2 a line an epoch."""
    model = _mlp()
    for quiet in (0, None, False, 5, -1, 0.0):
        model.fit(X, Y, verbose=quiet)
        model.evaluate(X, Y, verbose=quiet)
        assert capsys.readouterr().out == "", quiet
    for bar in (1, 1.0, True, "auto", np.int64(1)):
        assert model.fit(X, Y, verbose=bar).params["verbose"] == 1
        assert "loss:" in capsys.readouterr().out  # (not a terminal: the bar's last line)
    assert model.fit(X, Y, verbose=2).params["verbose"] == 2
    assert "loss:" in capsys.readouterr().out


@pytest.mark.parametrize("make, excerpt", [
    (lambda: layers.Dense(True), "units must be a positive integer, got True"),
    (lambda: layers.Conv2D(True, 3), "filters must be a positive integer, got True"),
    (lambda: layers.Dense(3, input_shape=(True,)), "input_shape must be positive integers"),
    (lambda: keras.Input((True,)), "Input shape must be a tuple of positive integers"),
])
def test_a_bool_is_not_a_count(make, excerpt):
    """Dense(True) built a layer of one unit."""
    with pytest.raises(ValueError, match=excerpt):
        make()


# ---- 4. raw Python errors replaced ----------------------------------------------------------
def test_a_name_that_is_not_a_string_is_refused():
    """'int' object has no attribute 'rpartition'."""
    with pytest.raises(TypeError, match=r"Dense: name must be a string, like name='output', got "
                                        r"3 \(int\)"):
        layers.Dense(3, name=3)
    with pytest.raises(TypeError, match=r"Sequential: name must be a string"):
        keras.Sequential(name=3)


def test_validation_split_must_be_a_number():
    """'<' not supported between instances of 'float' and 'str'."""
    with pytest.raises(TypeError, match=r"fit: validation_split must be a number in \(0, 1\).* "
                                        r"got '0\.2' \(str\)"):
        _mlp().fit(X, Y, validation_split="0.2", verbose=0)


@pytest.mark.parametrize("values", [np.array(["a"] * 4), np.ones(4) * 1j])
def test_arrays_of_strings_or_complex_numbers_are_refused_where_numbers_are_expected(values):
    """Strings gave NumPy's "could not convert string to float" without context; complex numbers
    lost their imaginary part silently (the model's inputs refused them already)."""
    dtype = str(values.dtype)
    with pytest.raises(TypeError, match=rf"fit: sample_weight has dtype {dtype}, which cannot be "
                                        r"used as numbers"):
        _mlp().fit(X, Y, sample_weight=np.resize(values, 10), verbose=0)
    model = _mlp()
    weights = model.get_weights()
    with pytest.raises(TypeError, match=rf"layer '.*': set_weights: weights\[0\] has dtype "
                                        rf"{dtype}, which cannot be used as numbers"):
        model.set_weights([np.resize(values, (4, 5))] + weights[1:])
    for a, b in zip(model.get_weights(), weights):  # nothing was changed
        np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match=rf"layer 'd' \(Dense\): x has dtype {dtype}, which "
                                        r"cannot be used as numbers"):
        layers.Dense(3, name="d").forward(values.reshape(1, 4))


def test_complex_numbers_get_the_advice_to_take_real_parts():
    with pytest.raises(TypeError, match=r"tinynet computes in real numbers: give the real parts "
                                        r"\(\.real\)"):
        layers.Dense(3).forward(np.ones((2, 4)) * 1j)


@pytest.mark.parametrize("call", ["fit", "evaluate", "predict"])
def test_callbacks_that_are_no_list_get_fits_message(call):
    """predict(X, callbacks=3): "'int' object is not iterable"."""
    model = _mlp()
    run = {"fit": lambda: model.fit(X, Y, callbacks=3, verbose=0),
           "evaluate": lambda: model.evaluate(X, Y, callbacks=3, verbose=0),
           "predict": lambda: model.predict(X, callbacks=3)}[call]
    with pytest.raises(TypeError, match=rf"{call}: callbacks must be tinynet.callbacks.Callback "
                                        r"objects \(one, or a list of them\), got 3"):
        run()


def test_summary_print_fn_must_be_callable():
    """'int' object is not callable."""
    with pytest.raises(TypeError, match=r"summary: print_fn must be a function .* got 3"):
        _mlp().summary(print_fn=3)
    lines = []
    _mlp().summary(print_fn=lines.append)
    assert "Total params" in lines[0]


@pytest.mark.parametrize("given, excerpt", [
    (lambda: layers.Dense(3), "got a single Dense layer"),
    (lambda: 3, r"got 3 \(int\)"),
])
def test_sequential_takes_a_list_of_layers(given, excerpt):
    """Sequential(layers.Dense(3)): "'Dense' object is not iterable"."""
    with pytest.raises(TypeError, match=rf"Sequential takes a list of layers, {excerpt}; give a "
                                        r"list, even of one layer"):
        keras.Sequential(given())


# ---- 5. seeds --------------------------------------------------------------------------------
@pytest.mark.parametrize("seed, error", [(-1, ValueError), ("a", TypeError), (1.5, TypeError),
                                         (True, TypeError)])
def test_a_seed_is_a_non_negative_integer(seed, error):
    """NumPy's own bit-generator errors, which named no argument, came out."""
    with pytest.raises(error, match=r"set_seed: a seed is a non-negative integer, like 42"):
        backend.set_seed(seed)
    with pytest.raises(error, match=r"fit: a seed is a non-negative integer"):
        _mlp().fit(X, Y, seed=seed, verbose=0)
    with pytest.raises(error, match=r"set_random_seed: a seed is a non-negative integer"):
        keras.utils.set_random_seed(seed)
    backend.set_seed(np.int64(3))  # NumPy's integers are integers


# ---- 6. saving and loading -------------------------------------------------------------------
@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_a_save_that_cannot_write_names_the_path_given_not_its_temporary_file():
    with pytest.raises(OSError) as info:
        _mlp().save("/proc/a.keras")
    assert "cannot write '/proc/a.keras'" in str(info.value)
    assert ".tinynet.tmp" not in str(info.value)


@pytest.mark.parametrize("call, where", [
    (lambda: _mlp().save(3), r"model\.save"),
    (lambda: keras.load_model(None), "load_model"),
    (lambda: _mlp().save_weights(3.5), r"model\.save_weights"),
    (lambda: _mlp().load_weights(None), r"model\.load_weights"),
])
def test_a_path_that_is_not_a_path_is_refused(call, where):
    """os.fspath's "expected str, bytes or os.PathLike object, not int"."""
    with pytest.raises(TypeError, match=rf"{where}: the path must be a str or an os\.PathLike"):
        call()


def test_loading_a_truncated_file_closes_it(tmp_path):
    path = tmp_path / "a.keras"
    _mlp().save(path)
    whole = path.read_bytes()
    path.write_bytes(whole[:len(whole) // 2])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for load in (lambda: keras.load_model(path), lambda: _mlp().load_weights(path)):
            with pytest.raises(ModelFileError, match="is not a readable tinynet"):
                load()
        gc.collect()  # (an unclosed file warns when it is collected)
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == []


def test_a_garbage_file_is_refused_without_numpys_advice_to_load_it_unsafely(tmp_path):
    path = tmp_path / "garbage.keras"
    path.write_bytes(b"garbage" * 10)
    for load, what in ((lambda: keras.load_model(path), "model"),
                       (lambda: _mlp().load_weights(path), "weights")):
        with pytest.raises(ModelFileError) as info:
            load()
        assert f"is not a readable tinynet {what} file" in str(info.value)
        assert "neither an .npz archive" in str(info.value)
        assert "allow_pickle" not in str(info.value) and "unsafe" not in str(info.value)


# ---- 7. messages that misled -----------------------------------------------------------------
def test_an_unknown_backend_from_the_environment_names_the_variable(monkeypatch):
    monkeypatch.setenv("TINYNET_BACKEND", "nonsense")
    monkeypatch.setitem(backend._state, "name", None)  # as in a fresh process
    with pytest.raises(ValueError, match=r"the environment variable TINYNET_BACKEND='nonsense' "
                                         r"chose the backend: unknown backend 'nonsense'"):
        keras.Sequential([keras.Input((4,)), layers.Dense(3)]).predict(X)


def test_another_setting_s_error_is_not_blamed_on_tinynet_backend(monkeypatch):
    """A bad TINYNET_THREADS, met while the backend loads, was reported as TINYNET_BACKEND='auto'
    having chosen the backend, with the advice to change TINYNET_BACKEND (unset)."""
    from tinynet import threads
    monkeypatch.delenv("TINYNET_BACKEND", raising=False)
    monkeypatch.setenv("TINYNET_THREADS", "bogus")
    monkeypatch.setitem(threads._state, "policy", None)
    monkeypatch.setitem(backend._state, "name", None)
    monkeypatch.setattr(backend, "_registry", {})  # as in a fresh process: numba loads again
    with pytest.raises(ValueError) as info:
        backend.get_backend()
    monkeypatch.delenv("TINYNET_THREADS")  # before the fixtures' teardown reads the policy
    assert "TINYNET_THREADS must be one of" in str(info.value)
    assert "TINYNET_BACKEND" not in str(info.value)


def test_an_unusable_cupy_from_the_environment_names_the_variable(monkeypatch):
    try:
        backend._load("cupy")
        pytest.skip("CuPy runs here")
    except backend.BackendError:
        pass
    monkeypatch.setenv("TINYNET_BACKEND", "cupy")
    monkeypatch.setitem(backend._state, "name", None)
    with pytest.raises(backend.BackendError, match=r"TINYNET_BACKEND='cupy' chose the backend: "
                                                   r"backend 'cupy'.*unset it"):
        backend.get_backend()


def test_interop_names_the_module_of_the_class_given(monkeypatch):
    class Sequential:  # what a Keras model looks like to to_keras
        pass
    Sequential.__module__, Sequential.__qualname__ = "keras.src.models.sequential", "Sequential"
    with pytest.raises(TypeError, match=r"to_keras expects a tinynet Sequential or Model, got "
                                        r"keras\.src\.models\.sequential\.Sequential; it is a "
                                        r"Keras model already"):
        interop.to_keras(Sequential())

    class FakeKeras:  # from_keras imports Keras first: its Model class is all it reads here
        class Model:
            pass
    monkeypatch.setattr(interop, "_import_keras", lambda: FakeKeras)
    with pytest.raises(TypeError, match=r"from_keras expects a keras\.Model, got "
                                        r"tinynet\.model\.Sequential; it is a tinynet model"):
        interop.from_keras(_mlp())


def test_interop_names_keras_own_class():
    keras_lib = pytest.importorskip("keras")
    model = keras_lib.Sequential([keras_lib.Input((4,)), keras_lib.layers.Dense(2)])
    with pytest.raises(TypeError, match=r"to_keras expects a tinynet Sequential or Model, got "
                                        r"keras\.src\..*Sequential; it is a Keras model"):
        interop.to_keras(model)
    with pytest.raises(TypeError, match=r"from_keras expects a keras\.Model, got "
                                        r"tinynet\.model\.Sequential"):
        interop.from_keras(_mlp())


@pytest.mark.parametrize("shape, hint", [((8, 8, 1), r"single example without its batch axis"),
                                         ((8, 8), r"single image without its batch and channel")])
def test_a_single_image_is_shown_with_the_shape_given(shape, hint):
    """It was shown as a batch: "got (None, 8, 1)" for an image of (8, 8, 1)."""
    with pytest.raises(ValueError, match=rf"expects input of shape \(None, 8, 8, 1\), got an "
                                         rf"array of shape {re_shape(shape)}; this is a {hint}"):
        _cnn().predict(np.ones(shape))


def test_a_single_vector_is_shown_with_the_shape_given():
    """"got (None,)" for a vector of (4,)."""
    with pytest.raises(ValueError, match=r"expects input of shape \(None, 4\), got an array of "
                                         r"shape \(4,\); this is a single example"):
        _mlp().predict(np.ones(4))
    with pytest.raises(ValueError, match=r"expects input of shape \(None, 4\), got \(None, 5\)"):
        _mlp().predict(np.ones((2, 5)))  # a batch: as before


def re_shape(shape):
    return str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")


def test_test_on_batch_errors_say_test_on_batch():
    model = _mlp()
    with pytest.raises(ValueError, match=r"^test_on_batch: y holds class numbers up to 7"):
        model.test_on_batch(X, Y + 5)
    with pytest.raises(ValueError, match=r"^test_on_batch: x has 10 examples but y has 3"):
        model.test_on_batch(X, Y[:3])
    p = model.predict(X).astype(np.float64)  # the loss from the probabilities, by hand
    by_hand = -np.mean(np.log(np.clip(p[np.arange(len(Y)), Y], 1e-7, 1)))
    assert model.test_on_batch(X, Y) == pytest.approx(by_hand, rel=1e-5)


def test_predict_on_batch_errors_say_predict_on_batch():
    with pytest.raises(ValueError, match=r"^predict_on_batch: model .* expects input of shape "
                                         r"\(None, 4\)"):
        _mlp().predict_on_batch(np.ones((2, 5)))


def test_set_weights_on_an_unbuilt_model_says_it_is_not_built():
    """"has 0 weight arrays, got 1"."""
    model = keras.Sequential([layers.Dense(3)])
    with pytest.raises(ValueError, match=r"is not built yet, so its layers have no weights yet.*"
                                         r"give it an input shape"):
        model.set_weights([np.ones((4, 3)), np.zeros(3)])


def test_read_idx_of_huge_dimensions_says_truncated_with_the_size_in_full():
    """int64 overflowed: "has trailing bytes ... expected -8589934579 bytes"."""
    with pytest.raises(ValueError, match=r"IDX file truncated: header declares shape "
                                         r"\(4294967295, 4294967295\), so expected "
                                         r"18446744065119617037 bytes"):
        datasets.read_idx(b"\x00\x00\x08\x02" + b"\xff" * 8 + b"\x00")


def test_a_data_dir_that_is_a_file_is_named_so(tmp_path, monkeypatch):
    """It said to put the files in <the file>/mnist."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    with pytest.raises(NotADirectoryError, match=r"load_mnist: data_dir=.*notes\.txt' is a file, "
                                                 r"not a folder"):
        datasets.load_mnist(a_file, download=False)
    monkeypatch.setenv("TINYNET_DATA", str(a_file))
    with pytest.raises(NotADirectoryError, match=r"load_fashion_mnist: the environment variable "
                                                 r"TINYNET_DATA=.* is a file, not a folder"):
        datasets.load_fashion_mnist(download=False)
    with pytest.raises(TypeError, match=r"load_mnist: data_dir must be a folder's path"):
        datasets.load_mnist(3, download=False)


def test_a_callback_s_path_and_a_global_seed_say_what_they_take():
    """Review of the fuzz fixes: os.fspath's and NumPy's own errors came out here."""
    for make in (lambda: keras.callbacks.ModelCheckpoint(3), lambda: keras.callbacks.CSVLogger(3)):
        with pytest.raises(TypeError, match=r"the path must be a str or an os.PathLike"):
            make()
    with pytest.raises(ValueError, match=r"set_random_seed: NumPy's global generator takes seeds "
                                         r"below 2\*\*32"):
        keras.utils.set_random_seed(2 ** 32)


def test_the_numba_backend_checks_that_x_is_finite_without_a_temporary_the_size_of_x():
    """fit's check that x is finite runs the backend's compiled all_finite on numba: no boolean
    array as large as x (np.isfinite's was 47 MB for MNIST's 60,000 images, and its first fit
    in a process spent up to 0.36 s touching it), and the same answer at the last pixel."""
    pytest.importorskip("numba")
    import tracemalloc
    from tinynet import checks
    backend.set_backend("numba")
    x = np.random.default_rng(0).random((2000, 28, 28, 1), dtype=np.float32)  # 6.3 MB
    checks.inputs(x[:2], (28, 28, 1), np.float32, "m", "fit")  # the kernel loaded
    tracemalloc.start()
    try:
        checks.inputs(x, (28, 28, 1), np.float32, "m", "fit")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < x.size // 16  # np.isfinite(x) alone holds x.size bytes
    x[-1, -1, -1, 0] = np.inf
    with pytest.raises(ValueError, match="fit: x contains NaN or infinite values"):
        checks.inputs(x, (28, 28, 1), np.float32, "m", "fit")
