"""A Conv2D read only by a MaxPooling2D runs with it as one step (tinynet/graph.py, PooledConv),
and so does a Conv2D read only by an Add that only such a pooling reads (a residual block's end):
which layers the graph takes together, that such a pass gives the numbers of the two layers run one
by one, and what refuses to mix the two kinds of pass."""
import numpy as np
import pytest

from tinynet import backend, layers, report_models
from tinynet.layers.pooling import PooledConv
from tinynet.model import Model, Sequential


@pytest.fixture(params=["numpy", "numba", "cupy"])
def float64_backend(request):
    previous = backend.get_backend()
    try:
        backend.set_backend(request.param)
    except backend.BackendError as e:  # CuPy runs in benchmarks/gpu_session.sh, on a GPU
        pytest.skip(str(e))
    with backend.floatx_scope("float64"):
        yield request.param
    backend.set_backend(previous)


def fused_names(model):
    return sorted((s.conv.name, s.pool.name) for s in model.graph.steps()
                  if isinstance(s, PooledConv))


def test_the_report_models_fuse_each_convolution_with_its_pooling():
    assert fused_names(report_models.cnn_digits()) == [("l1", "l1_mp"), ("l2", "l2_mp"),
                                                       ("l3", "l3_mp")]
    # the residual model: l1's output is read by its pooling only (and the pooling by l2 and
    # the Add); l2_2's only by the Add, which only the pooling l2_ap reads
    model = report_models.cnn_fashion_3()
    assert fused_names(model) == [("l1", "l1_mp"), ("l2_2", "l2_ap"), ("l3", "l3_mp")]
    residual = [s for s in model.graph.steps() if getattr(s, "add", None) is not None]
    assert [s.add.name for s in residual] == ["add"]
    assert [t.layer.name for t in residual[0].inbound] == ["l2", "l1_mp"]


def _conv_pool(conv_kwargs=None, pool_kwargs=None, second_reader=False):
    x = layers.Input((8, 8, 2))
    c = layers.Conv2D(3, 3, padding="same", name="c", **{"activation": "relu", **(conv_kwargs or {})})(x)
    p = layers.MaxPooling2D(name="p", **{"pool_size": 2, **(pool_kwargs or {})})(c)
    y = layers.Flatten()(p)
    if second_reader:  # the convolution's output is also read by another layer
        y = layers.Add()([y, layers.Flatten()(layers.MaxPooling2D(2)(c))])
    return Model(x, layers.Dense(2)(y))


@pytest.mark.parametrize("conv_kwargs, pool_kwargs, second_reader, fused", [
    ({}, {}, False, True),
    ({"activation": None}, {}, False, True),
    ({"activation": "tanh"}, {}, False, False),        # the kernel knows ReLU only
    ({}, {"strides": 1}, False, False),                # overlapping windows
    ({}, {"padding": "same", "pool_size": 3}, False, False),
    ({}, {}, True, False),                             # the convolution's output is needed
])
def test_which_pairs_are_fused(conv_kwargs, pool_kwargs, second_reader, fused):
    model = _conv_pool(conv_kwargs, pool_kwargs, second_reader)
    assert (("c", "p") in fused_names(model)) == fused


def _residual(conv_kwargs=None, pool_kwargs=None, skip_first=False, third=False,
              reader=None, size=28):
    """``pool(c(s) + s)`` on ``size`` x ``size`` x 1 images, ``s`` a convolution of the input
    (``skip_first``: ``Add([s, c])``; ``third``: a third input to the Add; ``reader``: "add" or
    "c", whose output another layer reads too), then Flatten and Dense(10)."""
    x = layers.Input((size, size, 1))
    s = layers.Conv2D(4, 3, padding="same", activation="relu", name="s")(x)
    c = layers.Conv2D(4, 3, padding="same", name="c",
                      **{"activation": "relu", **(conv_kwargs or {})})(s)
    terms = [s, c] if skip_first else [c, s]
    if third:
        terms.append(layers.Conv2D(4, 1, name="t")(x))
    a = layers.Add(name="a")(terms)
    p = layers.MaxPooling2D(name="p", **{"pool_size": 2, **(pool_kwargs or {})})(a)
    y = layers.Flatten()(p)
    if reader is not None:  # another layer reads the Add's sum, or the convolution's output
        other = {"add": a, "c": c}[reader]
        y = layers.Add()([y, layers.Flatten()(layers.MaxPooling2D(2)(other))])
    return Model(x, layers.Dense(10)(y))


@pytest.mark.parametrize("kwargs, fused", [
    ({}, True),
    ({"skip_first": True}, True),                       # Add([s, c]): the same sum
    ({"conv_kwargs": {"activation": None}}, True),
    ({"conv_kwargs": {"activation": "tanh"}}, False),   # the kernel knows ReLU only
    ({"pool_kwargs": {"strides": 1}}, False),           # overlapping windows
    ({"third": True}, False),                           # an Add of three inputs
    ({"reader": "add"}, False),                         # the sum is needed
    ({"reader": "c"}, False),                           # the convolution's output is needed
])
def test_which_residual_block_ends_are_fused(kwargs, fused):
    model = _residual(**kwargs)
    assert (("c", "p") in fused_names(model)) == fused
    steps = model.graph.steps()
    if fused:  # one step in place of three, reading the Add's two inputs
        step = next(s for s in steps if isinstance(s, PooledConv) and s.conv.name == "c")
        assert step.add.name == "a" and [t.layer.name for t in step.inbound] == ["s", "s"]
        assert not {"c", "a"} & {s.name for s in steps}
    else:
        assert "a" in {s.name for s in steps}


@pytest.mark.parametrize("name", ["a", "p"])
def test_a_patched_add_or_pooling_runs_its_own_code(name):
    model = _residual()
    layer = model.get_layer(name)
    calls = []
    original = layer.forward
    layer.forward = lambda *a, **k: calls.append("patched") or original(*a, **k)
    model.predict(np.zeros((1, 28, 28, 1), np.float32), verbose=0)
    assert calls == ["patched"] and ("c", "p") not in fused_names(model)


def test_a_residual_step_reading_the_model_input_skips_its_dx_not_the_skip_gradient(
        float64_backend, monkeypatch):
    """``pool(c(x) + s(x))``: in training (no dL/dx of the model's input) the one step computes no
    dL/dx for its convolution, whose input is the data, but still hands the skip connection its
    gradient: ``s`` gets the weights' gradients of the layer-by-layer pass."""
    x = layers.Input((8, 8, 1))
    s = layers.Conv2D(2, 3, padding="same", name="s")(x)
    c = layers.Conv2D(2, 3, padding="same", activation="relu", name="c")(x)
    p = layers.MaxPooling2D(2, name="p")(layers.Add(name="a")([c, s]))
    model = Model(x, layers.Dense(3)(layers.Flatten()(p)))
    kernels = backend.kernels()
    asked = []
    original = kernels.conv2d_add_maxpool_backward
    monkeypatch.setattr(kernels, "conv2d_add_maxpool_backward",
                        lambda *a, **k: asked.append(k["need_dx"]) or original(*a, **k))
    r = np.random.default_rng(2)
    images, dy = (backend.asarray(r.standard_normal(s)) for s in ((4, 8, 8, 1), (4, 3)))
    model.graph.forward(images, training=True)
    assert model.graph.backward(dy, need_input_grad=False) is None
    assert asked == [False] and ("c", "p") in fused_names(model)
    fused = [backend.to_numpy(g) for g in model.grads]
    model.graph.forward(images, training=True, record={})
    model.graph.backward(dy, record={})
    for g, h in zip(fused, model.grads):
        np.testing.assert_allclose(g, backend.to_numpy(h), rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("name", ["cnn_digits", "cnn_fashion_3", "residual_linear",
                                  "residual_odd"])
def test_fused_passes_give_the_layer_by_layer_numbers(float64_backend, name):
    """The same output, weight gradients and input gradient as running every layer on its own
    (which ``record=`` does), float64, on both CPU backends (dropout included): the residual
    CNN's block end (l2_2, its Add, l2_ap) fused, one with Add([skip, conv]) and no ReLU, and
    one on 27x27 images (the pooling leaves the last row and column out)."""
    model = {"residual_linear": lambda: _residual(conv_kwargs={"activation": None},
                                                  skip_first=True),
             "residual_odd": lambda: _residual(size=27)}.get(
        name, getattr(report_models, name, None))()
    r = np.random.default_rng(3)
    x = backend.asarray(r.random((5,) + model.input_shape[1:]))
    for layer in model.layers:  # non-zero biases, so that a bias gradient error shows
        if layer.params and len(layer.params) > 1:
            layer.params[1][...] = backend.asarray(r.standard_normal(layer.params[1].shape) * 0.1)
    dy = backend.asarray(r.standard_normal((5, 10)))
    host = backend.to_numpy

    backend.set_seed(1)  # the same dropout masks in both passes
    y_fused = host(model.graph.forward(x, training=True))
    dx_fused = host(model.graph.backward(dy))
    grads_fused = [host(g) for g in model.grads]
    assert fused_names(model)

    backend.set_seed(1)
    y_plain = host(model.graph.forward(x, training=True, record={}))
    dx_plain = host(model.graph.backward(dy, record={}))

    np.testing.assert_allclose(y_fused, y_plain, rtol=0, atol=1e-14)
    np.testing.assert_allclose(dx_fused, dx_plain, rtol=0, atol=1e-12)
    for g, h in zip(grads_fused, model.grads):
        np.testing.assert_allclose(g, host(h), rtol=1e-11, atol=1e-12)


def test_recording_gradients_needs_a_recorded_forward_pass():
    model = report_models.cnn_digits()
    x = np.zeros((2, 28, 28, 1), np.float32)
    y = model.forward(x)
    with pytest.raises(ValueError, match=r"forward pass to record as well"):
        model.backward(np.ones_like(y), record={})
    y = model.forward(x, record={})
    grads = {}
    model.backward(np.ones_like(y), record=grads)
    assert "l1" in grads and grads["l1"].shape == (2, 28, 28, 9)


def test_recording_gradients_needs_nothing_more_where_no_layers_run_together():
    model = report_models.mlp_raw()
    y = model.forward(np.zeros((2, 784), np.float32))
    grads = {}
    model.backward(np.ones_like(y), record=grads)
    assert sorted(grads) == sorted(layer.name for layer in model.graph.order)


def test_backward_refuses_a_forward_pass_that_stopped_at_a_layer():
    model = report_models.cnn_digits()
    x = np.zeros((2, 28, 28, 1), np.float32)
    y = model.forward(x)
    model.forward(x, until="l2")  # a look at the feature maps: the model's state is now partial
    with pytest.raises(ValueError, match=r"none to go back through: the last one stopped at a "
                                         r"layer .* call forward\(x\) first"):
        model.backward(np.ones_like(y))
    model.forward(x)
    assert model.backward(np.ones_like(y)).shape == x.shape


@pytest.mark.parametrize("name", ["cnn_digits", "cnn_fashion_3"])
def test_backward_refuses_to_mix_its_pass_with_one_that_ran_since(name):
    """forward(x), then anything that runs the layers on other data of the same size (a layer
    called directly, predict, evaluate), then backward: the gradients mixed the two passes'
    saved values (weights' gradients off by 1.0 against TensorFlow's in a helper's test), with
    no error. The pass backward needs is marked; a mix is refused, the plain order still works
    and gives the same gradients as before."""
    model = getattr(report_models, name)()
    model.compile()
    rng = np.random.default_rng(0)
    x, other = rng.random((2, 2, 28, 28, 1)).astype(np.float32)
    y = model.forward(x)
    g = rng.standard_normal(y.shape).astype(np.float32)
    dx = model.backward(g)
    expected = [grad.copy() for grad in model.grads]
    conv = next(layer for layer in model.layers if layer.name == "l2")
    pool_input = model.forward(other, until=conv.inbound[0].layer.name)
    for between in (lambda: conv(pool_input), lambda: model.predict(other),
                    lambda: model.evaluate(other, np.eye(10)[[1, 2]], verbose=0)):
        model.forward(x)
        between()
        with pytest.raises(ValueError, match=r"(layer\(s\) \['l2.*'\] ran again since|none to "
                                             r"go back through).*forward"):
            model.backward(g)
    model.forward(x)
    np.testing.assert_array_equal(model.backward(g), dx)
    for got, want in zip(model.grads, expected):
        np.testing.assert_array_equal(got, want)


def test_a_layers_own_backward_refuses_after_a_pass_that_ran_it_with_another():
    model = report_models.cnn_digits()
    model.forward(np.zeros((2, 28, 28, 1), np.float32))
    for name in ("l1", "l1_mp"):
        with pytest.raises(RuntimeError, match=r"backward\(\) needs a forward pass through this "):
            model.get_layer(name).backward(np.zeros((2, 28, 28, 9), np.float32))


def test_a_conv2d_subclass_or_a_patched_layer_runs_its_own_code():
    calls = []

    class LoggingConv(layers.Conv2D):
        def _forward(self, x, training, fused=None):
            calls.append(self.name)
            return super()._forward(x, training, fused)

    model = Sequential([layers.Input((8, 8, 1)), LoggingConv(2, 3, activation="relu", name="c"),
                        layers.MaxPooling2D(2)])
    model.predict(np.zeros((1, 8, 8, 1), np.float32), verbose=0)
    assert calls == ["c"] and not fused_names(model)

    model = _conv_pool()
    conv = model.get_layer("c")
    original = conv.forward
    conv.forward = lambda *a, **k: calls.append("patched") or original(*a, **k)
    model.predict(np.zeros((1, 8, 8, 2), np.float32), verbose=0)
    assert calls[-1] == "patched" and not fused_names(model)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_values_pass_as_through_the_two_layers(float64_backend, value):
    """NaN and infinities in the images reach the pooled output as through Conv2D then
    MaxPooling2D (NaN first in a window wins; later, it loses every comparison)."""
    model = _conv_pool()
    r = np.random.default_rng(0)
    x = r.standard_normal((3, 8, 8, 2))
    x[0, 2, 3, 1] = x[1, 0, 0, 0] = x[2, 7, 7, 1] = value
    x = backend.asarray(x)
    with np.errstate(invalid="ignore"):  # inf - inf in the Dense layer after: NaN, as meant
        fused = model.graph.forward(x)  # (Model.forward refuses such input: the graph's own pass)
        plain = model.graph.forward(x, record={})
    np.testing.assert_array_equal(backend.to_numpy(fused), backend.to_numpy(plain))


def test_the_steps_are_kept_between_passes_and_follow_a_change_to_a_layer():
    """The graph builds its steps once and keeps them while every fusion still fits: a change made
    to a layer between two passes (an activation the kernel does not know, a patched forward, a
    new name) is seen at the next pass."""
    model = report_models.cnn_fashion_3()
    first = model.graph.steps()
    assert model.graph.steps() is first  # nothing changed: the same steps
    model.get_layer("l3").activation = "tanh"
    assert ("l3", "l3_mp") not in fused_names(model)
    assert [("l1", "l1_mp"), ("l2_2", "l2_ap")] == fused_names(model)
    model.get_layer("l3").activation = "relu"
    assert ("l3", "l3_mp") in fused_names(model)
    pool = model.get_layer("l2_ap")
    original = pool.forward
    pool.forward = lambda *a, **k: original(*a, **k)
    assert ("l2_2", "l2_ap") not in fused_names(model)
    names = [s.name for s in model.graph.steps()]
    assert "add" in names and "l2_2" in names  # run one by one again
    del pool.forward
    steps = model.graph.steps()
    model.get_layer("l1_mp").name = "first_pool"  # a kept step takes its pooling's new name
    assert model.graph.steps() is steps and "first_pool" in [s.name for s in steps]
