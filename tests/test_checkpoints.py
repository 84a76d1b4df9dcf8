"""Checkpoints you can trust: resuming, atomic saves, Ctrl-C, and files that are not models.

* Resuming: train 2 epochs, ``save``, ``tinynet.load_model``, ``fit(..., epochs=4,
  initial_epoch=model.epoch)`` gives bit-for-bit the weights of 4 epochs in one go (float64, the same
  seed, ``shuffle=False``), for every optimizer state (RMSprop's ``s``, centred mean, momentum;
  Adam's moments and step count; SGD's velocity). Shuffling and dropout draw from tinynet's random
  generator, whose state is *not* in the checkpoint: a resumed run repeats the straight one only
  when that state is carried over by hand (``backend.rng().bit_generator.state``), as tested here.
* Atomic saves: a process killed (SIGKILL) in the middle of a save, while writing or just before
  the rename, leaves the previous checkpoint intact and loadable, and no file at all when there was
  none before. The save is slowed by patching, inside the child process, the function it is in.
* Ctrl-C (SIGINT) during ``fit`` stops at the end of the current batch: the weights are exactly
  those of a model trained for the number of batches that finished, ``fit`` returns the history so
  far, and the previous SIGINT handler is back; a second Ctrl-C aborts with KeyboardInterrupt.
* ``load_model`` of a truncated, corrupted, newer-version or non-tinynet file raises
  ``tinynet.io.ModelFileError`` naming the file and the problem, never a half-loaded model.
"""
import copy
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import tinynet
from tinynet import backend, layers, optimizers
from tinynet.io import ModelFileError

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("float64")  # conftest.py: float64, then restored


def dataset(n=40, shape=(6, 6, 2), classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n,) + shape)
    return x, tinynet.utils.to_categorical(rng.integers(0, classes, n), classes)


def cnn(optimizer, dropout=0.0, seed=0):
    backend.set_seed(seed)
    model = tinynet.Sequential([
        layers.Input((6, 6, 2)), layers.Conv2D(3, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(), layers.Flatten(), layers.Dropout(dropout),
        layers.Dense(3, activation="softmax")])
    model.compile(optimizer, metrics=["accuracy"])
    return model


def residual_mlp(optimizer, dropout=0.0, seed=0):
    backend.set_seed(seed)
    inp = layers.Input((6, 6, 2))
    h = layers.Dense(8, activation="tanh")(layers.Flatten()(inp))
    h = layers.Add()([h, layers.Dense(8, activation="relu")(layers.Dropout(dropout)(h))])
    model = tinynet.Model(inp, layers.Dense(3, activation="softmax")(h))
    model.compile(optimizer, metrics=["accuracy"])
    return model


OPTIMIZERS = {
    "rmsprop": lambda: optimizers.RMSprop(learning_rate=0.01),
    "rmsprop-centered-momentum": lambda: optimizers.RMSprop(0.01, momentum=0.9, centered=True),
    "adam": lambda: optimizers.Adam(learning_rate=0.01),
    "sgd-nesterov": lambda: optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
}


def assert_same_weights(a, b):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


# ---- resuming -------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", [cnn, residual_mlp], ids=["cnn", "residual-mlp"])
@pytest.mark.parametrize("opt", OPTIMIZERS)
def test_resume_from_a_checkpoint_equals_training_straight_through(tmp_path, arch, opt):
    x, y = dataset()
    fit = dict(batch_size=16, verbose=0, shuffle=False, validation_split=0.2)
    straight = arch(OPTIMIZERS[opt]())
    h_straight = straight.fit(x, y, epochs=4, **fit)

    first = arch(OPTIMIZERS[opt]())
    h_first = first.fit(x, y, epochs=2, **fit)
    first.save(tmp_path / "ckpt.npz")
    resumed = tinynet.load_model(tmp_path / "ckpt.npz")
    assert resumed.epoch == 2
    h_rest = resumed.fit(x, y, epochs=4, initial_epoch=resumed.epoch, **fit)

    assert_same_weights(resumed.get_weights(), straight.get_weights())
    assert h_rest.epoch == [2, 3] and resumed.epoch == 4
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert h_first.history[key] + h_rest.history[key] == h_straight.history[key]
    assert resumed.optimizer.iterations == straight.optimizer.iterations == 4 * 2


def test_resume_without_the_optimizer_state_would_differ(tmp_path):
    # the control for the test above: the optimizer's state does change the result
    x, y = dataset()
    straight = cnn(OPTIMIZERS["rmsprop-centered-momentum"]())
    straight.fit(x, y, batch_size=16, epochs=4, verbose=0, shuffle=False)
    first = cnn(OPTIMIZERS["rmsprop-centered-momentum"]())
    first.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
    fresh = cnn(OPTIMIZERS["rmsprop-centered-momentum"]())
    fresh.set_weights(first.get_weights())
    fresh.fit(x, y, batch_size=16, epochs=4, initial_epoch=2, verbose=0, shuffle=False)
    diff = max(np.abs(a - b).max() for a, b in zip(fresh.get_weights(), straight.get_weights()))
    assert diff > 1e-4


@pytest.mark.parametrize("arch", [cnn, residual_mlp], ids=["cnn", "residual-mlp"])
def test_resume_with_shuffle_and_dropout_given_the_generator_state(tmp_path, arch):
    # The generator state is not in the checkpoint; carried over by hand, the resumed run is exact.
    x, y = dataset()
    fit = dict(batch_size=16, verbose=0, shuffle=True)
    straight = arch(optimizers.RMSprop(0.01, momentum=0.5), dropout=0.3)
    straight.fit(x, y, epochs=4, **fit)

    first = arch(optimizers.RMSprop(0.01, momentum=0.5), dropout=0.3)
    first.fit(x, y, epochs=2, **fit)
    first.save(tmp_path / "ckpt.npz")
    state = copy.deepcopy(backend.rng().bit_generator.state)
    backend.set_seed(12345)  # what a fresh process would have
    resumed = tinynet.load_model(tmp_path / "ckpt.npz")
    backend.rng().bit_generator.state = state
    resumed.fit(x, y, epochs=4, initial_epoch=resumed.epoch, **fit)
    assert_same_weights(resumed.get_weights(), straight.get_weights())


def test_checkpoint_holds_weights_optimizer_state_compile_settings_and_epoch(tmp_path):
    x, y = dataset()
    model = residual_mlp(optimizers.RMSprop(0.02, rho=0.8, momentum=0.7, epsilon=1e-6, centered=True))
    model.fit(x, y, batch_size=16, epochs=3, verbose=0, shuffle=False)
    model.save(tmp_path / "m.npz")
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]  # one file, no leftovers
    loaded = tinynet.load_model(tmp_path / "m.npz")

    assert type(loaded) is tinynet.Model and loaded.name == model.name
    assert [l.name for l in loaded.layers] == [l.name for l in model.layers]
    assert_same_weights(loaded.get_weights(), model.get_weights())
    assert loaded.epoch == 3
    assert loaded.metrics == ["accuracy"] and loaded.loss.from_logits is False
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.iterations == model.optimizer.iterations == 9
    mine, theirs = (m.optimizer.get_state(m.params) for m in (model, loaded))
    assert len(mine["slots"]) == len(model.params) == 6
    for a, b in zip(mine["slots"], theirs["slots"]):
        assert [s is None for s in a] == [s is None for s in b] == [False, False, False]  # s, ḡ, m
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)
            assert np.abs(u).max() > 0
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.evaluate(x, y) == model.evaluate(x, y)


def test_sequential_checkpoint_reloads_as_sequential_and_float32_stays_float32(tmp_path):
    backend.set_floatx("float32")
    x, y = dataset()
    model = cnn(optimizers.Adam(0.01))
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    model.save(tmp_path / "m.npz")
    loaded = tinynet.load_model(tmp_path / "m.npz")
    assert type(loaded) is tinynet.Sequential
    assert [l.name for l in loaded.layers] == [l.name for l in model.layers]
    assert all(w.dtype == np.float32 for w in loaded.get_weights())
    assert_same_weights(loaded.get_weights(), model.get_weights())
    assert loaded.optimizer.iterations == 3


def test_uncompiled_model_round_trips_without_optimizer(tmp_path):
    backend.set_seed(0)
    model = tinynet.Sequential([layers.Input((3,)), layers.Dense(2)])
    model.save(tmp_path / "m.npz")
    loaded = tinynet.load_model(tmp_path / "m.npz")
    assert loaded.optimizer is None and loaded.epoch == 0
    assert_same_weights(loaded.get_weights(), model.get_weights())


# ---- child processes ------------------------------------------------------------------------------
def spawn(tmp_path, code, *args):
    """Start ``code`` in a fresh Python (numpy backend, unbuffered) with ``args`` as sys.argv[1:]."""
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(code))
    env = dict(os.environ, TINYNET_BACKEND="numpy", PYTHONUNBUFFERED="1",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, str(script), *map(str, args)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for(path, proc, timeout=60.0):
    """Wait until ``path`` exists (the child reached the point to interrupt); fail if it died."""
    end = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None:
            pytest.fail(f"child exited early ({proc.returncode}):\n{proc.stdout.read()}")
        if time.monotonic() > end:
            proc.kill()
            pytest.fail(f"child never reached {path}")
        time.sleep(0.01)


CHILD_COMMON = """
import os, signal, sys, time
import numpy as np
import tinynet
from tinynet import backend, layers, optimizers

backend.set_floatx("float64")

def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 8))
    return x, tinynet.utils.to_categorical(rng.integers(0, 3, 40), 3)

def model(width=16):
    backend.set_seed(0)
    m = tinynet.Sequential([layers.Input((8,)), layers.Dense(width, activation="relu"),
                            layers.Dense(3, activation="softmax")])
    m.compile(optimizers.RMSprop(0.01, momentum=0.5, centered=True), metrics=["accuracy"])
    return m
"""

KILL_CHILD = CHILD_COMMON + """
path, marker, stage, slow_call = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
calls = {"n": 0}

def pause_here():
    open(marker, "w").close()
    time.sleep(120)  # killed here

if stage == "writing":      # the data is half written into the file being saved
    real_savez = np.savez
    def slow_savez(f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] != slow_call:
            return real_savez(f, *args, **kwargs)
        import io
        buf = io.BytesIO()
        real_savez(buf, *args, **kwargs)
        data = buf.getvalue()
        f.write(data[:len(data) // 2])
        f.flush()
        os.fsync(f.fileno())
        pause_here()
    np.savez = slow_savez
else:                       # the file is complete, the rename has not happened yet
    real_replace = os.replace
    def slow_replace(src, dst, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == slow_call:
            pause_here()
        return real_replace(src, dst, *args, **kwargs)
    os.replace = slow_replace

x, y = data()
m = model()
m.fit(x, y, batch_size=16, epochs=3, verbose=0, shuffle=False,
      callbacks=[tinynet.callbacks.ModelCheckpoint(path)])
print("the save was not interrupted")
"""


@pytest.mark.parametrize("slow_call", [1, 2], ids=["first-save", "second-save"])
@pytest.mark.parametrize("stage", ["writing", "renaming"])
def test_sigkill_during_a_save_leaves_the_previous_checkpoint_intact(tmp_path, stage, slow_call):
    ckpt_dir = tmp_path / "ckpt"
    ckpt_dir.mkdir()
    path, marker = ckpt_dir / "model.npz", tmp_path / "marker"
    proc = spawn(tmp_path, KILL_CHILD, path, marker, stage, slow_call)
    try:
        wait_for(marker, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    others = [p for p in os.listdir(ckpt_dir) if p != "model.npz"]
    assert len(others) == 1  # the interrupted save wrote to a temporary file, never to the target
    assert others[0].startswith(f".model.npz.{proc.pid}.")
    # a temporary file of a process that still runs is not touched by another save
    alive = ckpt_dir / f".model.npz.{os.getpid()}.x.tinynet.tmp"
    alive.touch()
    if slow_call == 1:
        assert not path.exists()  # no checkpoint before: none now, rather than a broken one
        exec_globals = {}
        exec(CHILD_COMMON, exec_globals)
        exec_globals["model"]().save(path)
        # the next save removes the dead process's leftover
        assert sorted(os.listdir(ckpt_dir)) == sorted(["model.npz", alive.name])
        return
    loaded = tinynet.load_model(path)  # the checkpoint of epoch 1, complete
    loaded.save(ckpt_dir / "other.npz")  # another target: the leftover is not its own
    assert len(os.listdir(ckpt_dir)) == 4
    loaded.save(path)  # the next save of this target removes the dead process's leftover
    assert sorted(os.listdir(ckpt_dir)) == sorted(["model.npz", "other.npz", alive.name])
    loaded = tinynet.load_model(path)
    assert loaded.epoch == 1
    # the same training, one epoch, in this process, on the child's backend (the numba one's
    # fused loss rounds differently)
    backend.set_backend("numpy")
    exec_globals = {}
    exec(CHILD_COMMON, exec_globals)
    x, y = exec_globals["data"]()
    reference = exec_globals["model"]()
    reference.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    assert_same_weights(loaded.get_weights(), reference.get_weights())
    assert loaded.optimizer.iterations == 3


SIGINT_CHILD = CHILD_COMMON + """
import json
# as in an interactive Python (a child of a background job inherits SIGINT ignored)
signal.signal(signal.SIGINT, signal.default_int_handler)
marker, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]

class Pause(tinynet.callbacks.Callback):
    # mode "batch": at the 7th batch, announce it and wait there until the signal arrived
    # mode "epoch2": the same at the 7th batch of the second epoch, with a ModelCheckpoint
    # mode "twice": the same as "batch", then announce again and wait for the second Ctrl-C
    def __init__(self):
        self.n = 0
    def on_train_begin(self, logs=None):
        if mode == "anytime":
            open(marker, "w").close()
    def on_batch_end(self, batch, logs=None):
        self.n += 1
        if mode != "anytime" and self.n == (17 if mode == "epoch2" else 7):
            open(marker, "w").close()
            end = time.monotonic() + 60
            while not self.model.stop_training and time.monotonic() < end:
                time.sleep(0.005)
            if mode == "twice":
                open(marker + "2", "w").close()
                time.sleep(60)

x, y = data()
width = 256 if mode == "anytime" else 16
m = model(width)
result = {}
try:
    checkpoint = tinynet.callbacks.ModelCheckpoint(marker + "-ck-{epoch:02d}.npz")
    history = m.fit(x, y, batch_size=4, epochs=100000 if mode == "anytime" else 5, verbose=0,
                    shuffle=False, callbacks=[Pause()] + ([checkpoint] if mode == "epoch2" else []))
    result["history"] = history.history
    result["epochs"] = history.epoch
except KeyboardInterrupt:
    result["aborted"] = True
result["handler_restored"] = signal.getsignal(signal.SIGINT) is signal.default_int_handler
result["iterations"] = m.optimizer.iterations
result["epoch"] = m.epoch
steps = m.optimizer.iterations
reference = model(width)
for s in range(steps):  # the same batches, one train_on_batch each
    b = s % 10
    reference.train_on_batch(x[4 * b:4 * b + 4], y[4 * b:4 * b + 4])
np.savez(out, weights=np.concatenate([w.ravel() for w in m.get_weights()]),
         reference=np.concatenate([w.ravel() for w in reference.get_weights()]))
with open(out + ".json", "w") as f:
    json.dump(result, f)
print("child done")
"""


def run_sigint_child(tmp_path, mode, delays):
    marker, out = tmp_path / "marker", tmp_path / "out.npz"
    proc = spawn(tmp_path, SIGINT_CHILD, marker, out, mode)
    try:
        for k, delay in enumerate(delays):
            wait_for(str(marker) + ("2" if k else ""), proc)
            time.sleep(delay)
            proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    with np.load(out) as d:
        arrays = {k: d[k] for k in d.files}
    with open(str(out) + ".json") as f:
        return json.load(f), arrays, output


def test_ctrl_c_stops_at_the_end_of_the_current_batch(tmp_path):
    result, arrays, output = run_sigint_child(tmp_path, "batch", [0.0])
    assert "Interrupted" in output
    assert result["iterations"] == 7  # 10 batches per epoch: stopped after batch 7 of epoch 1
    np.testing.assert_array_equal(arrays["weights"], arrays["reference"])
    # the interrupted epoch did not happen: not in the history, not counted (as Keras, where the
    # KeyboardInterrupt ends fit before the epoch's end), and the message says so
    assert result["epochs"] == [] and result["history"] == {} and result["epoch"] == 0
    assert "Epoch 1 interrupted after 28 of 40 examples" in output
    assert result["handler_restored"]


def test_ctrl_c_keeps_the_checkpoint_of_the_last_whole_epoch(tmp_path):
    # a checkpoint of a half-trained epoch, saved as a whole one, made a resumed fit train its
    # batches twice (a review: 22 steps for 20)
    result, arrays, output = run_sigint_child(tmp_path, "epoch2", [0.0])
    assert result["iterations"] == 17 and result["epochs"] == [0] and result["epoch"] == 1
    assert sorted(p.name for p in tmp_path.glob("marker-ck-*")) == ["marker-ck-01.npz"]
    saved = tinynet.load_model(tmp_path / "marker-ck-01.npz")
    assert saved.epoch == 1 and saved.optimizer.iterations == 10


def test_ctrl_c_at_any_moment_keeps_the_weights_of_the_last_finished_batch(tmp_path):
    # the signal lands wherever fit is (forward, backward, optimizer step, ...): the weights must
    # still be those after a whole number of batches, the number the optimizer counted
    result, arrays, _ = run_sigint_child(tmp_path, "anytime", [0.3])
    assert result["iterations"] >= 1
    np.testing.assert_array_equal(arrays["weights"], arrays["reference"])
    assert len(result["epochs"]) == result["iterations"] // 10  # whole epochs only
    assert result["handler_restored"]


def test_second_ctrl_c_aborts_with_keyboard_interrupt(tmp_path):
    result, arrays, output = run_sigint_child(tmp_path, "twice", [0.0, 0.0])
    assert result.get("aborted") is True
    assert result["iterations"] == 7
    np.testing.assert_array_equal(arrays["weights"], arrays["reference"])
    assert result["handler_restored"]


def test_fit_in_a_thread_does_not_touch_signal_handlers():
    import threading
    x, y = dataset(8, (3,))
    backend.set_seed(0)
    model = tinynet.Sequential([layers.Input((3,)), layers.Dense(3, activation="softmax")])
    model.compile("sgd")
    before = signal.getsignal(signal.SIGINT)
    histories = []
    t = threading.Thread(target=lambda: histories.append(model.fit(x, y, epochs=2, verbose=0)))
    t.start()
    t.join()
    assert len(histories) == 1 and histories[0].epoch == [0, 1]
    assert signal.getsignal(signal.SIGINT) is before


# ---- files that are not loadable models -----------------------------------------------------------
@pytest.fixture
def saved(tmp_path):
    """A small compiled and trained model saved to disk: (path, file bytes, arrays, header)."""
    x, y = dataset(8, (3,))
    backend.set_seed(0)
    model = tinynet.Sequential([layers.Input((3,)), layers.Dense(2, activation="tanh"),
                                layers.Dense(3, activation="softmax")])
    model.compile(optimizers.RMSprop(momentum=0.5, centered=True))
    model.fit(x, y, epochs=1, verbose=0, shuffle=False)
    path = tmp_path / "good.npz"
    model.save(path)
    with np.load(path) as d:
        arrays = {k: d[k] for k in d.files}
    header = json.loads(arrays["header"].tobytes().decode())
    return path, path.read_bytes(), arrays, header, model


def write_npz(path, arrays, header=None, changes=None):
    """Save ``arrays`` as an .npz, with ``header`` (a dict) as the JSON header if given and the
    arrays in ``changes`` replaced (or removed, for ``None``)."""
    arrays = dict(arrays)
    if header is not None:
        arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    for k, v in (changes or {}).items():
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def edit_header(header, fn):
    h = copy.deepcopy(header)
    fn(h)
    return h


def _bad_files():
    """(id, writer(tmp_path, saved) -> path, message excerpt)."""
    def raw(data):
        def w(tmp, s):
            p = tmp / "bad.npz"
            p.write_bytes(data(s[1]) if callable(data) else data)
            return p
        return w

    def header(fn):
        return lambda tmp, s: write_npz(tmp / "bad.npz", s[2], edit_header(s[3], fn))

    def arrays(**changes):
        return lambda tmp, s: write_npz(tmp / "bad.npz", s[2], None, changes)

    def npy(tmp, s):
        p = tmp / "bad.npy"
        np.save(p, np.arange(3.0))
        return p

    def pickled(tmp, s):
        import pickle
        p = tmp / "bad.pkl"
        p.write_bytes(pickle.dumps({"weights": [1, 2]}))
        return p

    def keras_archive(tmp, s):  # the members of Keras 3's .keras files
        import zipfile
        p = tmp / "model.keras"
        with zipfile.ZipFile(p, "w") as archive:
            for name in ("metadata.json", "config.json", "model.weights.h5"):
                archive.writestr(name, "{}")
        return p

    def set_(path, value):
        def fn(h):
            d = h
            for k in path[:-1]:
                d = d[k]
            d[path[-1]] = value
        return fn

    def drop(key):
        return lambda h: h.pop(key)

    return [
        ("empty-file", raw(b""), "not a readable tinynet model file"),
        ("text-file", raw(b"hello, this is not a model\n"), "not a readable tinynet model file"),
        ("truncated-half", raw(lambda b: b[:len(b) // 2]), "not a readable tinynet model file"),
        ("truncated-last-byte", raw(lambda b: b[:-1]), "not a readable tinynet model file"),
        ("pickle", pickled, "not a readable tinynet model file"),
        ("npz-without-header", arrays(header=None), "not a tinynet model (no header)"),
        ("keras-archive", keras_archive, "a Keras model file (Keras 3's .keras archive), not a "
         "tinynet model file"),
        ("hdf5-file", raw(b"\x89HDF\r\n\x1a\n" + bytes(100)), "is an HDF5 file, as Keras writes"),
        ("other-format", header(set_(["format"], "keras-v3")), "is not a tinynet model file"),
        ("newer-version", header(set_(["version"], 99)), "newer tinynet (format version 99"),
        ("header-not-json", arrays(header=np.frombuffer(b"{not json", np.uint8)),
         "model header is corrupted"),
        ("header-not-utf8", arrays(header=np.frombuffer(b"\xff\xfe\x00", np.uint8)),
         "model header is corrupted"),
        ("unknown-layer-class", header(lambda h: h["architecture"]["layers"][1].update(
            {"class": "Dense9"})), "unknown layer class 'Dense9'"),
        ("missing-weight", arrays(weight_1=None), "weight 'weight_1' is missing"),
        ("weight-wrong-shape", arrays(weight_0=np.zeros((5, 5))), "weight of shape (3, 2)"),
        ("architecture-disagrees-with-weights",
         header(lambda h: h["architecture"]["layers"][1]["config"].update(units=4)),
         "weight of shape (3, 4)"),
        # the header's structure is wrong: a clear ModelFileError is expected
        ("npy-file", npy, "not a readable tinynet model file"),
        ("header-is-a-list", arrays(header=np.frombuffer(b"[1, 2]", np.uint8)), "header"),
        ("version-is-a-string", header(set_(["version"], "2")), "version"),
        ("no-architecture", header(drop("architecture")), "architecture"),
        ("unknown-layer-argument",
         header(lambda h: h["architecture"]["layers"][1]["config"].update(kernel_initializer="x")),
         "kernel_initializer"),
        ("unknown-inbound-layer", header(lambda h: h["architecture"]["layers"][2].update(
            inbound=["nowhere"])), "nowhere"),
        ("unknown-optimizer", header(set_(["compile", "optimizer", "class"], "Adagrad")), "Adagrad"),
        ("missing-optimizer-slot", arrays(slot_0_0=None), "slot_0_0"),
        ("optimizer-slot-wrong-shape", arrays(slot_0_0=np.zeros(7)), "slot"),
    ]


BAD_FILES = _bad_files()


@pytest.mark.parametrize("make, excerpt", [pytest.param(make, excerpt, id=name)
                                            for name, make, excerpt in BAD_FILES])
def test_unloadable_file_gives_model_file_error_naming_file_and_problem(tmp_path, saved, make,
                                                                        excerpt):
    path = make(tmp_path, saved)
    with pytest.raises(ModelFileError) as info:
        tinynet.load_model(path)
    message = str(info.value)
    assert str(path) in message
    assert excerpt in message


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_keras_model_file_is_named_and_its_conversion_shown(tmp_path, suffix):
    keras = pytest.importorskip("keras", reason="the [keras] extra is not installed")
    k = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu"),
                          keras.layers.Dense(2, activation="softmax")])
    path = str(tmp_path / f"keras_model{suffix}")
    k.save(path)
    with pytest.raises(ModelFileError, match="not a tinynet model file") as info:
        tinynet.models.load_model(path)
    advice = f"tinynet.interop.from_keras(keras.models.load_model({path!r}))"
    assert advice in str(info.value)
    from tinynet import interop  # noqa: F401 (the advice's name)
    model = eval(advice, {"tinynet": tinynet, "keras": keras})  # the advice works as written
    x = np.random.default_rng(0).random((5, 4)).astype("float32")
    np.testing.assert_allclose(model.predict(x), k.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    weights = str(tmp_path / "keras.weights.h5")
    k.save_weights(weights)
    with pytest.raises(ModelFileError, match=r"not a tinynet weights file.*set_weights"):
        model.load_weights(weights)


def test_load_weights_reads_a_whole_models_file_as_keras_3_reads_a_keras_file(tmp_path):
    """Keras's common pattern: ModelCheckpoint("best.keras", save_best_only=True), then
    model.load_weights("best.keras"): tinynet refused a whole model's file there."""
    def build(seed):
        backend.set_seed(seed)
        x = layers.Input((5,))
        a = layers.Dense(4, activation="relu", name="a")(x)
        b = layers.Dense(4, name="b")(x)  # a branch: the order of the weights matters
        model = tinynet.Model(x, layers.Dense(2, activation="softmax")(layers.Add()([a, b])))
        model.compile(optimizers.Adam(0.01))
        return model
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((20, 5)), np.eye(2)[rng.integers(0, 2, 20)]
    trained = build(0)
    trained.fit(x, y, epochs=2, verbose=0,
                callbacks=[tinynet.callbacks.ModelCheckpoint(tmp_path / "best.keras")])
    fresh = build(1)
    assert not np.array_equal(fresh.predict(x), trained.predict(x))
    fresh.load_weights(tmp_path / "best.keras")
    np.testing.assert_array_equal(fresh.predict(x), trained.predict(x))
    other = tinynet.Sequential([layers.Input((5,)), layers.Dense(2)])
    with pytest.raises(ValueError, match=r"holds 6 weight arrays, model '.*' has 2"):
        other.load_weights(tmp_path / "best.keras")


def test_the_wrong_file_for_load_model_or_load_weights_says_which_call_reads_it(tmp_path):
    """load_model of a weights file said only "not a tinynet model file"; load_weights of a .npy
    array failed with a bare TypeError (a context manager), and of a missing file with a
    ValueError where load_model raises FileNotFoundError."""
    model = tinynet.Sequential([layers.Input((3,)), layers.Dense(2)])
    model.save_weights(tmp_path / "w.weights.npz")
    with pytest.raises(ModelFileError, match=r"holds weights alone.*model\.load_weights\(path\)"):
        tinynet.load_model(tmp_path / "w.weights.npz")
    np.save(tmp_path / "a.npy", np.zeros(3))
    with pytest.raises(ModelFileError, match=r"a single NumPy array.*model\.set_weights"):
        model.load_weights(tmp_path / "a.npy")
    with pytest.raises(FileNotFoundError, match="no weights file at"):
        model.load_weights(tmp_path / "missing.weights.npz")


@pytest.mark.parametrize("kind", ["weights", "model"])
def test_load_weights_puts_back_the_optimizer_state_where_keras_3_does(tmp_path, kind):
    """Rolling a model back within one process: trained 3 epochs, load_weights of the file of
    epoch 2, then epochs 3 and 4. tinynet kept the optimizer state of epoch 3 (Adam's moments
    and step count: 0.01 away from a straight run); Keras 3 puts back the file's, as here: the
    same weights as 4 epochs in one go, bit for bit. It skips, with a warning, an optimizer that
    has taken no step (Keras: not built) or of another kind; a model without one says nothing."""
    x, y = dataset(32, (6, 6, 2))
    fit = dict(batch_size=8, verbose=0, shuffle=False)
    straight = cnn(optimizers.Adam(0.01))
    straight.fit(x, y, epochs=4, **fit)
    first = cnn(optimizers.Adam(0.01))
    first.fit(x, y, epochs=2, **fit)
    first.optimizer.learning_rate = 0.005  # as ReduceLROnPlateau would: saved with the state
    path = tmp_path / ("e2.weights.npz" if kind == "weights" else "e2.keras")
    first.save_weights(path) if kind == "weights" else first.save(path)
    first.optimizer.learning_rate = 0.01
    first.fit(x, y, epochs=3, initial_epoch=2, **fit)  # the epoch to undo
    first.optimizer.learning_rate = 0.02
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first.load_weights(path)
    assert first.optimizer.iterations == 8 and first.optimizer.learning_rate == 0.005
    first.optimizer.learning_rate = 0.01
    first.fit(x, y, epochs=4, initial_epoch=2, **fit)
    assert_same_weights(first.get_weights(), straight.get_weights())
    unbuilt = cnn(optimizers.Adam(0.01))
    with pytest.warns(UserWarning, match=r"not the optimizer's state: this model's optimizer has "
                                         r"taken no step yet \(Keras skips it too\)"):
        unbuilt.load_weights(path)
    assert unbuilt.optimizer.iterations == 0
    other = cnn(optimizers.SGD(0.1, momentum=0.9))
    other.fit(x, y, epochs=1, **fit)
    with pytest.warns(UserWarning, match="the file's optimizer is Adam, this model's SGD"):
        other.load_weights(path)
    assert other.optimizer.iterations == 4
    assert_same_weights(other.get_weights(), unbuilt.get_weights())  # the weights: loaded
    bare = cnn(optimizers.Adam(0.01))
    bare.optimizer = None  # not compiled: the weights alone, in silence (as Keras)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bare.load_weights(path)


def test_load_weights_keeps_a_state_it_cannot_put_back_whole_and_reads_model_files_quietly(
        tmp_path):
    """A review of the restore: an optimizer of one's own without slot_names() (its momentum in
    no file) had its state wiped and its step count set back, silently (0.166 off a straight run
    where keeping it gave 0.039); SGD() into SGD(momentum=0.9) and Adam into Adam(amsgrad=True)
    too (Keras compares the numbers of variables and skips). A model file's state is read
    without building its classes (an own schedule: restored, where it said "holds none"), and
    its model's compile warnings are not the user's."""
    x, y = dataset(32, (6, 6, 2))
    fit = dict(batch_size=8, verbose=0, shuffle=False)

    class Momentum(optimizers.Optimizer):  # update() only: the minimal one of the docs
        def __init__(self, learning_rate=0.01, **kwargs):
            super().__init__(learning_rate, **kwargs)

        def update(self, theta, g, state):
            (v,) = state.arrays(theta, "v")
            v *= 0.9
            v += g
            theta -= self._learning_rate * v

    for make_file, make_model, why in (
            (lambda: Momentum(), lambda: Momentum(),
             r"keeps the state \['v'\], which its slot_names\(\) does not list"),
            (lambda: optimizers.SGD(0.1), lambda: optimizers.SGD(0.1, momentum=0.9),
             "keeps other slots"),
            (lambda: optimizers.Adam(0.01), lambda: optimizers.Adam(0.01, amsgrad=True),
             "keeps other slots")):
        first = cnn(make_file())
        first.fit(x, y, epochs=1, **fit)
        first.save_weights(tmp_path / "w.weights.npz")
        model = cnn(make_model())
        model.fit(x, y, epochs=2, **fit)
        kept = model.optimizer.get_state(model.params)
        held = [dict(state) for state in model.optimizer._slots]
        with pytest.warns(UserWarning, match=why):
            model.load_weights(tmp_path / "w.weights.npz")
        assert model.optimizer.iterations == kept["iterations"] == 8
        for mine, before in zip(model.optimizer._slots, held):
            assert sorted(mine) == sorted(before)
            for name in mine:
                np.testing.assert_array_equal(mine[name], before[name])

    class Halve(optimizers.schedules.LearningRateSchedule):
        def __init__(self, rate):
            self.rate = rate

        def __call__(self, step):
            return self.rate / (1 + step)

        def get_config(self):
            return {"rate": self.rate}

    def sigmoid_cce():  # a compile warning in the file's model
        model = cnn(optimizers.Adam(Halve(0.01)))
        model.compile(optimizers.Adam(Halve(0.01)), "binary_crossentropy")
        return model
    saved = sigmoid_cce()
    saved.fit(x, y, epochs=2, **fit)
    saved.save(tmp_path / "ck.keras")
    model = cnn(optimizers.Adam(Halve(0.01)))
    model.fit(x, y, epochs=3, **fit)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing of the file's model, nothing of the state
        model.load_weights(tmp_path / "ck.keras")
    assert model.optimizer.iterations == 8
    assert_same_weights([a for row in model.optimizer.get_state(model.params)["slots"]
                         for a in row],
                        [a for row in saved.optimizer.get_state(saved.params)["slots"]
                         for a in row])


def test_load_weights_of_a_damaged_model_file_says_so(tmp_path):
    import zipfile
    model = cnn(optimizers.Adam(0.01))
    x, y = dataset(16, (6, 6, 2))
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "whole.keras")
    with zipfile.ZipFile(tmp_path / "whole.keras") as source, \
            zipfile.ZipFile(tmp_path / "damaged.keras", "w") as target:
        for item in source.infolist():
            if item.filename != "slot_1_0.npy":  # one of the optimizer's arrays lost
                target.writestr(item, source.read(item.filename))
    with pytest.raises(ModelFileError, match="optimizer slot 'slot_1_0' is missing"):
        model.load_weights(tmp_path / "damaged.keras")


def test_load_weights_of_a_branchy_models_file_puts_each_slot_on_its_weight(tmp_path):
    """A model file lists its optimizer's slots in its architecture's order (Keras's); read in
    the graph's walking order, a model whose branches are walked otherwise got Adam's moments of
    two same-shaped layers swapped, silently (a review: 0.069 off a straight run)."""
    def build():
        backend.set_seed(0)
        inp = layers.Input((5,))
        b = layers.Dense(4, name="b")(inp)
        a = layers.Dense(4, name="a2")(layers.Dense(4, name="a1")(inp))
        model = tinynet.Model(inp, layers.Dense(2, activation="softmax")(layers.Add()([b, a])))
        model.compile(optimizers.Adam(0.01))
        return model
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((32, 5)), np.eye(2)[rng.integers(0, 2, 32)]
    fit = dict(batch_size=8, verbose=0, shuffle=False)
    straight = build()
    straight.fit(x, y, epochs=3, **fit)
    model = build()
    model.fit(x, y, epochs=1, **fit)
    model.save(tmp_path / "ck.keras")
    model.fit(x, y, epochs=2, initial_epoch=1, **fit)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.load_weights(tmp_path / "ck.keras")
    loaded = tinynet.load_model(tmp_path / "ck.keras")
    for mine, theirs in zip(model.optimizer.get_state(model.params)["slots"],
                            loaded.optimizer.get_state(loaded.params)["slots"]):
        assert_same_weights(mine, theirs)
    model.fit(x, y, epochs=3, initial_epoch=1, **fit)
    assert_same_weights(model.get_weights(), straight.get_weights())


@pytest.mark.parametrize("name", ["my_model", "model.ckpt", "model.weights"])
def test_a_model_file_name_without_a_model_extension_is_refused_as_keras_does(tmp_path, name):
    model = tinynet.Sequential([layers.Input((3,)), layers.Dense(2)])
    with pytest.raises(ValueError, match=r"needs one of the extensions \.keras, \.h5, .*\.npz.*"
                                         rf"model\.save\('.*{name}\.keras'\)"):
        model.save(tmp_path / name)
    with pytest.raises(ValueError, match=r"ModelCheckpoint\('ckpt\.keras'\)"):
        tinynet.callbacks.ModelCheckpoint("ckpt")  # at once, not after the first epoch
    tinynet.callbacks.ModelCheckpoint("weights", save_weights_only=True)  # save_weights's file
    assert os.listdir(tmp_path) == []
    for suffix in (".keras", ".h5", ".npz"):  # tinynet's own format under each
        model.save(tmp_path / f"m{suffix}")
        loaded = tinynet.load_model(tmp_path / f"m{suffix}")
        assert_same_weights(loaded.get_weights(), model.get_weights())


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model file at .*nothing.npz"):
        tinynet.load_model(tmp_path / "nothing.npz")


def test_saving_into_a_missing_folder_names_the_folder_and_writes_nothing(tmp_path):
    """As Keras's model.save("....keras"): FileNotFoundError, not a folder made silently; the
    message names the folder to make (os.listdir's own error named the folder as if it were the
    file)."""
    model = tinynet.Sequential([layers.Input((3,)), layers.Dense(2)])
    missing = tmp_path / "runs" / "today"
    for save in (lambda: model.save(missing / "m.keras"),
                 lambda: model.save_weights(missing / "m.weights.h5")):
        with pytest.raises(FileNotFoundError, match=r"the folder .*today' does not exist; "
                                                    r"make it first \(os\.makedirs"):
            save()
    assert os.listdir(tmp_path) == []
    (tmp_path / "afile").write_text("")  # a file where the folder should be: not "make it"
    with pytest.raises(NotADirectoryError, match=r"afile' is a file, not a folder"):
        model.save(tmp_path / "afile" / "sub" / "m.keras")


def test_model_file_error_is_a_value_error():
    assert issubclass(ModelFileError, ValueError)


def test_truncation_at_every_length_is_detected(tmp_path, saved):
    _, data, _, _, _ = saved
    path = tmp_path / "cut.npz"
    for n in range(0, len(data), 19):
        path.write_bytes(data[:n])
        with pytest.raises(ModelFileError):
            tinynet.load_model(path)


def _check_flipped_bytes(tmp_path, saved, positions):
    """Flip each byte at ``positions`` in turn; return the positions whose file still loaded
    (after checking that such a model is the saved one, weights and optimizer state)."""
    _, data, _, _, model = saved
    path = tmp_path / "flip.npz"
    loaded_fine = []
    for pos in positions:
        b = bytearray(data)
        b[pos] ^= 0xFF
        path.write_bytes(bytes(b))
        try:
            loaded = tinynet.load_model(path)
        except ModelFileError:
            continue
        # a flip in a field the format does not check (a timestamp, a zip64 extra field)
        assert_same_weights(loaded.get_weights(), model.get_weights())
        a, c = (m.optimizer.get_state(m.params) for m in (model, loaded))
        assert a["iterations"] == c["iterations"]
        for s, t in zip(a["slots"], c["slots"]):
            for u, v in zip(s, t):
                np.testing.assert_array_equal(u, v)
        loaded_fine.append(pos)
    return loaded_fine


def _layout(path, data):
    """(start of the zip's central directory, [(start, end) of each member's stored content])."""
    import struct
    import zipfile
    contents = []
    with zipfile.ZipFile(path) as z:
        for i in z.infolist():
            n, m = struct.unpack("<HH", data[i.header_offset + 26:i.header_offset + 30])
            start = i.header_offset + 30 + n + m
            contents.append((start, start + i.compress_size))
    return max(end for _, end in contents), contents


def test_corrupted_bytes_in_the_members_are_detected_or_harmless(tmp_path, saved):
    # one byte in 7 of the members (every array, the header): the CRC-32 catches changed content
    end, contents = _layout(saved[0], saved[1])
    positions = range(1, end, 7)
    loaded_fine = _check_flipped_bytes(tmp_path, saved, positions)
    assert not [p for p in loaded_fine if any(a <= p < b for a, b in contents)]
    assert len(loaded_fine) < len(positions) // 2


def test_corrupted_bytes_in_the_zip_directory_are_detected_or_harmless(tmp_path, saved):
    end, _ = _layout(saved[0], saved[1])
    _check_flipped_bytes(tmp_path, saved, range(end, len(saved[1])))


def test_a_failed_load_leaves_the_existing_model_file_untouched(tmp_path, saved):
    path, data, _, _, _ = saved
    bad = tmp_path / "bad.npz"
    bad.write_bytes(data[:100])
    with pytest.raises(ModelFileError):
        tinynet.load_model(bad)
    assert path.read_bytes() == data


def test_resume_with_shuffling_and_dropout_repeats_a_straight_run(tmp_path, float64):
    """With fit(seed=s), epoch k's shuffle and dropout masks depend on (s, k) only: resuming from a
    checkpoint with the same seed gives bit-identical weights to an uninterrupted run."""
    from tinynet import report_models
    rng = np.random.default_rng(0)
    x, y = rng.random((24, 28, 28, 1)), tinynet.utils.to_categorical(np.arange(24) % 10, 10)

    def fresh():
        tinynet.backend.set_seed(11)
        model = report_models.cnn_fashion_3()  # has a Dropout(0.3)
        model.compile("rmsprop")
        return model

    straight = fresh()
    straight.fit(x, y, batch_size=8, epochs=4, verbose=0, seed=5)
    first = fresh()
    first.fit(x, y, batch_size=8, epochs=2, verbose=0, seed=5)
    first.save(tmp_path / "ckpt.npz")
    tinynet.backend.set_seed(999)  # whatever happened in between
    resumed = tinynet.load_model(tmp_path / "ckpt.npz")
    resumed.fit(x, y, batch_size=8, epochs=4, initial_epoch=resumed.epoch, verbose=0, seed=5)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    other = fresh()
    other.fit(x, y, batch_size=8, epochs=4, verbose=0, seed=6)
    assert not np.array_equal(other.get_weights()[0], straight.get_weights()[0])


# ---- Keras's arguments of save / load_model / save_weights / load_weights -------------------------
# tinynet.io takes them (they gave "unexpected keyword argument" before); the public methods in
# model.py forward them (the last test checks that when they do).
from tinynet import io as tio  # noqa: E402

CLASSES = {"Model": tinynet.Model, "Sequential": tinynet.Sequential}


def trained_cnn(seed=0):
    x, y = dataset()
    model = cnn(optimizers.RMSprop(0.01, momentum=0.5), seed=seed)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
    return model


def test_save_overwrite_false_refuses_an_existing_file_and_keeps_it(tmp_path):
    path = tmp_path / "m.keras"
    first, second = trained_cnn(seed=0), trained_cnn(seed=1)
    tio.save_model(first, path, overwrite=False)  # nothing there yet: written
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match=r"already exists and overwrite=False keeps it.*"
                                              r"overwrite=True"):
        tio.save_model(second, path, overwrite=False)
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["m.keras"]
    assert_same_weights(tinynet.load_model(path).get_weights(), first.get_weights())
    tio.save_model(second, path, overwrite=True)  # Keras's default: replaced
    assert_same_weights(tinynet.load_model(path).get_weights(), second.get_weights())
    with pytest.raises(FileExistsError):
        tio.save_weights(first.get_weights(), tmp_path / "m.keras", overwrite=False)
    tio.save_weights(first.get_weights(), tmp_path / "w.npz", overwrite=False)
    assert len(tio.load_weights(tmp_path / "w.npz")) == 4


def test_save_include_optimizer_false_writes_an_uncompiled_model(tmp_path):
    model = trained_cnn()
    tio.save_model(model, tmp_path / "full.npz")
    tio.save_model(model, tmp_path / "bare.npz", include_optimizer=False)
    with np.load(tmp_path / "bare.npz") as data:
        assert not [k for k in data.files if k.startswith("slot_")]
    with np.load(tmp_path / "full.npz") as data:
        assert len([k for k in data.files if k.startswith("slot_")]) == 2 * 4  # s and momentum
    bare = tinynet.load_model(tmp_path / "bare.npz")
    assert bare.optimizer is None and bare.epoch == 2  # as Keras's .h5 saved so: not compiled
    assert_same_weights(bare.get_weights(), model.get_weights())
    x, y = dataset()
    np.testing.assert_array_equal(bare.predict(x), model.predict(x))
    with pytest.raises(tinynet.model.NotCompiledError):
        bare.evaluate(x, y)


def test_load_model_compile_false_skips_the_compile_settings(tmp_path):
    model = trained_cnn()
    tio.save_model(model, tmp_path / "m.npz")
    loaded = tio.load_model(tmp_path / "m.npz", CLASSES, compile=False)
    assert loaded.optimizer is None and loaded.epoch == 2
    assert_same_weights(loaded.get_weights(), model.get_weights())
    x, y = dataset()
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    again = tio.load_model(tmp_path / "m.npz", CLASSES, compile=True, custom_objects={},
                           safe_mode=False)  # accepted, and change nothing
    assert again.optimizer.iterations == 6
    with pytest.raises(TypeError, match="compile must be True or False, got 'no'"):
        tio.load_model(tmp_path / "m.npz", CLASSES, compile="no")
    with pytest.raises(TypeError, match="custom_objects must be a dict"):
        tio.load_model(tmp_path / "m.npz", CLASSES, custom_objects=[cnn])


def test_save_arguments_tinynet_does_not_have_are_named(tmp_path):
    model = trained_cnn()
    with pytest.raises(TypeError, match=r"model.save: Keras's argument options= is not "
                                        r"implemented in tinynet; model.save takes path, "
                                        r"overwrite=True, zipped=None, include_optimizer=True"):
        tio.save_model(model, tmp_path / "m.keras", options=None)
    with pytest.raises(ValueError, match="zipped=False .* not implemented"):
        tio.save_model(model, tmp_path / "m.keras", zipped=False)
    with pytest.raises(TypeError, match="overwrite must be True or False, got 'yes'"):
        tio.save_model(model, tmp_path / "m.keras", overwrite="yes")
    with pytest.raises(ValueError, match="max_shard_size=1.0"):
        tio.save_weights(model.get_weights(), tmp_path / "w.npz", max_shard_size=1.0)
    assert os.listdir(tmp_path) == []
    with pytest.warns(UserWarning, match="save_format='h5' is ignored"):
        tio.save_model(model, tmp_path / "m.h5", save_format="h5")
    tio.save_model(model, tmp_path / "z.keras", zipped=True)
    assert_same_weights(tinynet.load_model(tmp_path / "m.h5").get_weights(), model.get_weights())


def _two_dense(out, seed):
    backend.set_seed(seed)
    return tinynet.Sequential([layers.Input((4,)), layers.Dense(8, name="hidden"),
                               layers.Dense(out, name=f"head{out}")])


def test_load_weights_skip_mismatch_keeps_the_mismatched_layer_and_loads_the_others(tmp_path):
    source, target = _two_dense(3, seed=0), _two_dense(5, seed=1)
    tio.save_weights(source.get_weights(), tmp_path / "w.npz")
    before = target.get_weights()
    with pytest.raises(ValueError, match=r"layer 'head5' has weights of shapes \[\(8, 5\), "
                                         r"\(5,\)\].*\[\(8, 3\), \(3,\)\].*nothing was loaded.*"
                                         r"skip_mismatch=True"):
        tio.load_weights_into(target, tmp_path / "w.npz")
    assert_same_weights(target.get_weights(), before)  # not even the matching first layer
    with pytest.warns(UserWarning, match=r"layer 'head5' keeps its weights"):
        tio.load_weights_into(target, tmp_path / "w.npz", skip_mismatch=True)
    assert_same_weights(target.get_layer("hidden").get_weights(),
                        source.get_layer("hidden").get_weights())
    assert_same_weights(target.get_layer("head5").get_weights(), before[2:])
    fewer = tinynet.Sequential([layers.Input((4,)), layers.Dense(8, name="only")])
    with pytest.raises(ValueError, match=r"holds 4 weight arrays, model '.*' has 2.*cannot match"):
        tio.load_weights_into(fewer, tmp_path / "w.npz", skip_mismatch=True)
    with pytest.raises(TypeError, match="Keras's argument by_name= is not implemented"):
        tio.load_weights_into(target, tmp_path / "w.npz", by_name=True)


def test_the_public_methods_take_keras_arguments(tmp_path):
    model = trained_cnn()
    model.save(tmp_path / "m.keras", include_optimizer=False)
    with pytest.raises(FileExistsError):
        model.save(tmp_path / "m.keras", overwrite=False)
    assert tinynet.load_model(tmp_path / "m.keras").optimizer is None
    model.save(tmp_path / "m.keras", overwrite=True)
    assert tinynet.load_model(tmp_path / "m.keras", compile=False).optimizer is None
    assert tinynet.models.load_model(tmp_path / "m.keras").optimizer is not None
    model.save_weights(tmp_path / "w.npz", overwrite=True)
    other = trained_cnn(seed=3)
    other.load_weights(tmp_path / "w.npz", skip_mismatch=True)
    assert_same_weights(other.get_weights(), model.get_weights())


def _branchy():
    """A graph whose layers tinynet's graph walk and Keras's order list differently:
    walk c, a, b; Keras a, c, b."""
    x = layers.Input((6,))
    c = layers.Dense(4, name="c")(x)
    b = layers.Dense(4, name="b")(layers.Dense(5, name="a")(x))
    return tinynet.Model(x, layers.Dense(3, activation="softmax", name="out")(
        layers.Add(name="add")([c, b])))


def test_files_written_in_tinynet_s_earlier_layer_order_load_onto_the_right_layers(tmp_path):
    """Before tinynet took Keras's layer order, model files and weights files listed a branchy
    graph's arrays in its graph walk's order: loading them in the new order put them on other
    layers of the same shapes, silently. A model file places them by its own layer list; a
    weights file says which order it is in (older ones: the walk's)."""
    from tinynet.graph import topological_order
    backend.set_seed(0)
    model = _branchy()
    model.compile(tinynet.optimizers.Adam(learning_rate=0.01), "categorical_crossentropy")
    r = np.random.default_rng(0)
    x, y = r.standard_normal((8, 6)), np.eye(3)[np.arange(8) % 3]
    model.train_on_batch(x, y)
    walk = [layer for layer in topological_order(model.graph.output.output, keras_order=False)
            if layer.params]
    assert [layer.name for layer in walk] != [layer.name for layer in model.layers if layer.params]
    # a weights file as tinynet wrote it then: the walk's order, no "order" in its header
    old = {f"weight_{i}": w for i, w in enumerate(w for layer in walk for w in layer.get_weights())}
    old["header"] = np.frombuffer(json.dumps({"format": "tinynet-model-weights", "version": 1,
                                              "count": len(old)}).encode(), dtype=np.uint8)
    np.savez(tmp_path / "old.npz", **old)
    backend.set_seed(5)
    again = _branchy()  # built anew: other initial weights, other default names
    again.load_weights(tmp_path / "old.npz")
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
    model.save_weights(tmp_path / "new.npz")
    backend.set_seed(6)
    again = _branchy()
    again.load_weights(tmp_path / "new.npz")
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
    # a model file in the walk's order (its layer list and arrays both), resumed exactly
    model.save(tmp_path / "m.keras")
    with np.load(tmp_path / "m.keras") as data:
        arrays = dict(data)
    header = json.loads(arrays["header"].tobytes().decode())
    by_name = {spec["config"]["name"]: spec for spec in header["architecture"]["layers"]}
    names = [layer.name for layer in topological_order(model.graph.output.output,
                                                       keras_order=False)]
    header["architecture"]["layers"] = [by_name[n] for n in names]
    position = {id(p): k for k, p in enumerate(model.params)}
    walk_params = [p for layer in walk for p in layer.params]
    for k, p in enumerate(walk_params):  # the arrays and the optimizer's slots, in the walk's order
        arrays[f"weight_{k}"] = data_k = model.get_weights()[position[id(p)]]
        assert data_k.shape == p.shape
    slots = header["compile"]["slots"]
    header["compile"]["slots"] = [slots[position[id(p)]] for p in walk_params]
    saved_slots = {key: arrays.pop(key) for key in [k for k in arrays if k.startswith("slot_")]}
    for k, p in enumerate(walk_params):
        for j in header["compile"]["slots"][k]:
            arrays[f"slot_{k}_{j}"] = saved_slots[f"slot_{position[id(p)]}_{j}"]
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(tmp_path / "walk.npz", **arrays)
    os.replace(tmp_path / "walk.npz", tmp_path / "walk.keras")
    back = tinynet.load_model(tmp_path / "walk.keras")
    backend.set_seed(7)
    again = _branchy()  # load_weights from that model file: placed by its layer list too
    again.load_weights(tmp_path / "walk.keras")
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
    for m in (model, back):
        m.train_on_batch(x, y)
    for a, b in zip(model.get_weights(), back.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600)])
def test_a_saved_file_has_the_permissions_of_any_new_file(tmp_path, umask, mode):
    """Written through a temporary file (mkstemp: 0600), it was readable by its owner alone;
    Keras's files, like any new file, get 0666 minus the umask of the moment; a file saved over
    keeps its own."""
    model = tinynet.Sequential([layers.Input((4,)), layers.Dense(2)])
    previous = os.umask(umask)
    try:
        model.save(tmp_path / "m.keras")
        model.save_weights(tmp_path / "w.npz")
    finally:
        os.umask(previous)
    for name in ("m.keras", "w.npz"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode
    os.chmod(tmp_path / "m.keras", 0o640)
    model.save(tmp_path / "m.keras")
    assert (tmp_path / "m.keras").stat().st_mode & 0o777 == 0o640


def test_a_model_whose_layers_were_renamed_alike_is_refused_before_saving(tmp_path):
    """Its passes do not mind (they key the layers themselves), but its file keys them by name:
    it was written, and then could not be loaded."""
    model = tinynet.Sequential([layers.Input((4,)), layers.Dense(3, name="a"),
                                layers.Dense(2, name="b")])
    model.get_layer("a").name = "b"
    with pytest.raises(ValueError, match=r"several layers named \['b'\].*rename them apart"):
        model.save(tmp_path / "m.keras")
    assert not (tmp_path / "m.keras").exists()
