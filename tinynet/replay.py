"""A training step captured once as a CUDA graph and replayed for every batch (CuPy backend).

On a GPU a step of the report's models is many small kernel launches, each a few microseconds
of work, and Python decides every one of them: the GPU waits on Python most of the time (4 ms a
step for the digits CNN on an H200, eagerly). CUDA can *record*
the kernels of one step as a graph (stream capture) and launch the whole graph again with one
call. For that the step must be the same every time:

* **the same memory.** Each batch is copied into the same input buffers (``x`` and ``y`` of
  :class:`tinynet.training.StaticStep`), the weights, gradients and optimizer state are the
  model's flat buffers (:mod:`tinynet.arena`), and every array the step makes comes from a
  memory pool of the graph's own, which nothing else allocates from.
* **nothing read back.** A step that reads a number on the host (``float(loss)``, ``if
  any(...)``) waits for the GPU and cannot be recorded. So the NaN guard runs on the device: the
  step snapshots the weights and the state, updates them, checks that the loss and the updated
  numbers are finite, and puts the snapshot back if not; a flag on the device remembers the
  first batch that failed, and the training loop reads it whenever it reads the running loss
  (for the progress bar, the callbacks, the end of the epoch). The loss and the accuracy are
  summed on the device too.
* **no library calls CuPy refuses while capturing** (cuBLAS, host-to-device copies): the matrix
  products are tinynet's own kernel (``kernels/cupy_gpu.py``), and Dropout's random bits are
  drawn on the host, as on every backend, and copied into buffers of their own before each
  replay (from page-locked memory, without waiting for the GPU). Those buffers lie outside the
  graph's pool: the graph reuses its pool's blocks within a step, and a block written before
  the replay could be written over by an earlier kernel of the step.
* **the same hyper-parameters.** A kernel's arguments are recorded with it: when the learning
  rate (a schedule, a callback), a Dropout rate or Rescaling's factors (in a model used as a
  layer too) or the model's buffers change, the step is captured again (and no longer, for this
  ``fit``, when that happens every step). A model with frozen weights trains eagerly
  (:func:`unusable`), and a layer frozen during the ``fit`` ends the replay.

The first batches run as ordinary steps (three, after an optimizer's first: see
:class:`GraphStep`), then the step is captured and every later full batch is one graph launch. Where a step cannot be captured,
training goes on step by step and says why, once. ``TINYNET_CUDA_GRAPHS=0`` turns replay off.
The numbers are those of the eager step: the same kernels in the same order
(tests/test_replay.py compares a fit whose steps are replayed with an eager one).
"""
import os
import warnings
import weakref

import numpy as np

from . import arena, backend, checks
from .layers import core
from .layers.nested import NestedModel

# a step recorded again this soon after the last recording (in replays) counts as changing from
# one step to the next (a learning-rate schedule of every step): after THRASH such, no more graphs
SOON, THRASH = 20, 3
_POOLS = weakref.WeakKeyDictionary()  # model -> the memory pool of its graphs (see GraphStep)


def enabled():
    """Whether ``fit`` replays its steps as CUDA graphs on the CuPy backend."""
    return os.environ.get("TINYNET_CUDA_GRAPHS", "1") != "0"


def _leaves(layers):
    """The layers, each model used as a layer replaced by its own layers (at any depth)."""
    for layer in layers:
        if isinstance(layer, NestedModel):
            yield from _leaves(layer.model.layers)
        else:
            yield layer


# the numbers of a layer that its kernels take as arguments (recorded with them): Dropout's rate,
# Rescaling's factors
RECORDED = ("rate", "scale", "offset")


def settings(model):
    """What a recorded step depends on besides its buffers: which weights are frozen, each
    layer's :data:`RECORDED` numbers (inside a model used as a layer too), the optimizer's
    learning rate for this step and its other hyper-parameters."""
    optimizer = model.optimizer
    return (tuple(model._frozen()),
            tuple(tuple(getattr(layer, name, None) for name in RECORDED)
                  for layer in _leaves(model.layers)),
            optimizer._learning_rate, repr(sorted(optimizer.get_config().items())))


def unusable(model, weights):
    """Why ``fit`` cannot replay ``model``'s step as a CUDA graph, or ``None`` when it can."""
    if backend.get_backend() != "cupy":
        return "not the CuPy backend"
    if not enabled():
        return "TINYNET_CUDA_GRAPHS=0"
    if weights is not None:
        return "sample or class weights"
    if not arena.ENABLED or not model.params:
        return "no flat buffers of weights (tinynet.arena)"
    if any(model._frozen()):
        return "frozen weights"
    optimizer = model.optimizer
    if not optimizer.replayable or type(optimizer).__module__ != "tinynet.optimizers":
        return (f"{type(optimizer).__name__}'s update depends on the step's number "
                "(only tinynet's optimizers whose steps differ by their learning rate alone "
                "replay)")
    own = [type(o).__name__ for o in [*_leaves(model.layers), model.loss]
           if not type(o).__module__.startswith("tinynet.")]
    if own:
        return f"{', '.join(own)} not tinynet's own (it may read values back, or keep state)"
    return None


class GraphStep:
    """The step of one ``fit``, as a CUDA graph replayed for every full batch (see the module
    doc). ``static``: the :class:`tinynet.training.StaticStep` to record, which holds the
    batch's buffers and the sums; ``step(x, y, idx)`` trains on ``x[idx], y[idx]``.

    Before each recording three steps on the fixed buffers run eagerly (after an optimizer's
    first step, which is ``train_step``: see ``StaticStep.fixed``): the first in CuPy's own
    memory (what a step makes to keep, the optimizer's state and the undo buffers, lives there),
    the next two in the graph's pool, so that the recording finds there the memory the step
    takes. That pool belongs to the model (``_POOLS``), not to this object: arrays of it (the
    layers' saved inputs) outlive a ``fit``, and a pool that goes frees its memory under them;
    :meth:`close` gives back its unused blocks when ``fit`` ends."""

    def __init__(self, model, static):
        import cupy
        self.cp = cupy
        self.model = model
        self.static = static
        self.stream = cupy.cuda.Stream(non_blocking=True)  # capture needs a stream of its own
        if model not in _POOLS:  # the graph's memory: nothing else allocates there
            _POOLS[model] = cupy.cuda.MemoryPool()
        self.pool = _POOLS[model]
        self.graph = self.key = None
        self.eager_runs = self.replays = self.thrash = self.captures = 0
        self.off = None  # why replay stopped in this fit, once it has
        self.draws, self.staging, self.slot = [], [[], []], 0
        self.copied = [None, None]  # events: the copies from each staging slot are done

    def begin_epoch(self):
        """Zero the sums; wait for work queued on CuPy's default stream (the data prepared for
        ``fit``), which this stream does not wait for by itself."""
        self.cp.cuda.Device().synchronize()
        self.static.reset()

    def end_epoch(self):
        """Wait for the epoch's steps: what follows (validation, callbacks) runs on CuPy's
        default stream, which does not wait for this one by itself."""
        self.stream.synchronize()

    def step(self, x, y, idx):
        cp = self.cp
        cp.take(x, idx, axis=0, out=self.static.x)
        cp.take(y, idx, axis=0, out=self.static.y)
        if self.graph is not None:
            key = self._key()
            if _same(key, self.key):
                self._stage_draws()
                self.graph.launch(self.stream)
                self.model.optimizer.iterations += 1
                self.replays += 1
                return
            self.graph = self.key = None  # recorded again, after three eager steps
            self.eager_runs = 0
            if self.replays < SOON:
                self.thrash += 1
                if self.thrash >= THRASH:
                    self._stop(f"it changed {THRASH} times within {SOON} steps of being "
                               "recorded (a learning rate that changes at every step?)")
        fixed = self.off is None and self.static.fixed()  # (else train_step: no recording)
        shapes = []  # the random bits this step draws (Dropout), in order
        core._draw_hook = lambda shape: shapes.append(tuple(shape)) or core.host_random_bits(shape)
        try:
            if fixed and self.eager_runs > 0:
                with cp.cuda.using_allocator(self.pool.malloc):
                    self.static.run()
            else:
                self.static.run()
        finally:
            core._draw_hook = None
        if fixed:
            self.eager_runs += 1
            if self.eager_runs >= 3:
                self._capture(shapes)

    def close(self):
        """The end of ``fit``: drop the graph and give the pool's unused blocks back to CUDA
        (those the layers' saved arrays hold stay)."""
        self.graph = self.key = None
        self.pool.free_all_blocks()

    def _key(self):
        """What the recorded kernels depend on besides the buffers' contents: the buffers
        themselves (compared as objects, :func:`_same`) and the :func:`settings`."""
        model, optimizer = self.model, self.model.optimizer
        optimizer._begin_step()  # a schedule's learning rate for this step
        flat_arena = arena.of(model)
        flats = optimizer.flat_states(flat_arena) if flat_arena is not None else None
        buffers = () if flats is None else tuple(
            [g.weights for g in flat_arena.groups] + [g.gradients for g in flat_arena.groups]
            + [flat[n] for flat in flats for n in flat])
        return (flat_arena,) + buffers, settings(model)

    def _capture(self, shapes):
        """Record the step (``shapes``: those of the random bits it draws)."""
        if self.static.failure() is not None:  # (an eager step failed: the loop stops soon)
            return
        if not self.static.fixed():
            self._stop("its step cannot run on fixed buffers now (a frozen weight?)")
            return
        optimizer = self.model.optimizer
        key, iterations = self._key(), optimizer.iterations
        # the random bits' buffers, made before the capture and outside the graph's pool: a
        # block of that pool may serve the graph earlier in the step (freed, then taken again),
        # and the copies into these buffers happen before each replay
        self.draws = [self.cp.empty(shape, dtype=np.uint32) for shape in shapes]
        self.drawn = 0
        core._draw_hook = self._draw
        self.stream.synchronize()
        error = graph = None
        try:
            with self.cp.cuda.using_allocator(self.pool.malloc):
                self.stream.begin_capture()
                try:
                    self.static.run()  # recorded, not run
                except Exception as e:  # noqa: BLE001 (reported below, and training goes on)
                    error = e
                finally:  # (a KeyboardInterrupt too: the stream leaves capture mode)
                    try:
                        graph = self.stream.end_capture()
                    except Exception as e:  # noqa: BLE001
                        error = error or e
        finally:
            core._draw_hook = None
            optimizer.iterations = iterations
        if error is None and self.drawn != len(self.draws):
            error = RuntimeError("the step drew fewer random bits than the step before")
        if error is not None:
            self._stop(f"{type(error).__name__}: {error}")
            return
        self.graph, self.key, self.replays = graph, key, 0
        self.captures += 1
        pinned = self.cp.cuda.alloc_pinned_memory
        self.staging = [[np.frombuffer(pinned(buf.nbytes), np.uint32, buf.size).reshape(buf.shape)
                         for buf in self.draws] for _ in range(2)]
        self.copied = [None, None]

    def _draw(self, shape):
        """During a capture: Dropout's random bits, a buffer refilled before every replay."""
        if self.drawn >= len(self.draws) or self.draws[self.drawn].shape != tuple(shape):
            raise RuntimeError(f"the step drew random bits of shape {tuple(shape)}, which the "
                               "step before did not draw at this point")
        self.drawn += 1
        return self.draws[self.drawn - 1]

    def _stage_draws(self):
        """Draw this step's random bits on the host, as an eager step would (the same numbers in
        the same order), and queue their copies into the graph's buffers. Two page-locked
        staging areas take turns: the host fills one while the GPU may still copy the other."""
        if not self.draws:
            return
        slot, self.slot = self.slot, 1 - self.slot
        if self.copied[slot] is not None:
            self.copied[slot].synchronize()
        for buf, host in zip(self.draws, self.staging[slot]):
            host[...] = core.host_random_bits(buf.shape)
            buf.set(host, stream=self.stream)
        self.copied[slot] = self.stream.record()

    def _stop(self, why):
        self.graph = self.key = None
        self.off = why
        warnings.warn(f"tinynet: the training step of model '{self.model.name}' is not replayed "
                      f"as a CUDA graph ({why}); it runs kernel by kernel, slower",
                      stacklevel=checks._user_stacklevel())


def _same(key, other):
    """Whether two keys of :meth:`GraphStep._key` are the same: the same buffer objects (``is``:
    an array's ``==`` compares its numbers) and equal settings."""
    (objects, settings), (other_objects, other_settings) = key, other
    return settings == other_settings and len(objects) == len(other_objects) and \
        all(a is b for a, b in zip(objects, other_objects))
