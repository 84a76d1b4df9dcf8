"""tinynet's thread policy: how the numba backend shares a small machine's cores with BLAS.

numba's parallel loops run on OpenMP threads; NumPy's matrix products (the Dense layers) on
OpenBLAS's own threads. Both kinds wait for work by spinning on a core, and on a small machine
they take the cores from each other, or from other processes, in whole scheduler time slices.
Measured on this project's 2-core machine, idle, seconds per epoch:

  digits CNN     OpenMP threads spinning 1.6, sleeping at once 1.9, spinning 1000 turns 1.6
  residual CNN   OpenBLAS on 2 threads 4.6 (20 with long-spinning OpenMP threads), on 1: 2.4
  MLP            (no numba kernel, only BLAS) OpenBLAS on 2 threads 0.55, on 1: 0.80

and with other jobs on the machine, long-spinning OpenMP threads made the digits CNN's epoch
24-36 s instead of 5-10 s. Hence the ``"auto"`` policy of the numba backend:

* :func:`configure_openmp`, when the backend is selected: OpenMP threads spin only
  :data:`SPIN_TURNS` turns before they sleep (unless ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` is
  set);
* :func:`share_cores`, before the first parallel kernel runs: on a machine of at most 4 cores,
  OpenBLAS runs on one thread (unless ``OPENBLAS_NUM_THREADS`` or ``OMP_NUM_THREADS`` is set). An
  MLP, which runs no parallel kernel, keeps BLAS's threads while the cores are free;
* :func:`adapt_to_load`, every two seconds of ``fit``, ``evaluate`` and ``predict`` (the first
  time a quarter second into each) on the numba backend (the numpy backend, the reference, never
  changes them): as many threads as the cores that other processes leave free (at least one),
  for numba's kernels and for BLAS; :func:`after_fit` gives the count back at their end. On a
  shared machine a parallel loop or a BLAS product on more threads than free cores waits, at
  every step, for the thread the scheduler put aside: measured on the 2-core machine with other
  jobs running (load average 7), one MLP training step took 63-100 ms with OpenBLAS on 2
  threads and 5.5 ms on 1; on a later host, beside two busy processes, the residual CNN's
  predict ran 19,000-19,200 images/s on 2 threads in two rounds of three (29,600 in the third)
  and 24,800-25,600 on 1. Kernels called by hand run on numba's count;
* :func:`keep_workers_apart`, before each parallel kernel (:func:`before_kernels`) while numba
  runs more than one thread: numba's worker threads may run on every CPU but the main
  thread's. Beside busy processes the scheduler can otherwise leave both threads on one core
  for the life of the process, where a kernel on two threads runs slower than on one.

These settings are process-wide, hence the ``"keep"`` policy, which changes nothing.
OpenBLAS's float32 products round differently on 1 and 2 threads (x @ W for a batch of 128 and
a 784x256 kernel: up to 3e-5 apart, about 1e-7 relative), so under "auto" a Dense layer's
float32 numbers can depend on whether a convolution ran earlier in the same process, and, through
:func:`adapt_to_load`, on what else the machine was running; "keep", or ``OPENBLAS_NUM_THREADS``,
fixes BLAS's count and with it those numbers, bit for bit. numba's kernels give the same numbers
on any number of threads (they cut a batch into groups that do not depend on it). A count set with
``numba.set_num_threads(n)`` (or ``NUMBA_NUM_THREADS``) is the most :func:`adapt_to_load` uses.
"""
import ctypes
import os
import sys
import threading
import time

from .sysinfo import usable_cpus

POLICIES = ("auto", "keep")
_state = {"policy": None, "cores_shared": False, "sample": None, "threads": None, "soon": True,
          "numba_threads": None, "ceiling": None,
          "placed": {"key": None, "checked": 0.0, "found": None, "workers": []}}


def set_thread_policy(policy):
    """``"auto"`` (the default): tune OpenMP's spinning and OpenBLAS's thread count for small
    machines, as measured above; ``"keep"``: change no process-wide thread setting.

    The ``TINYNET_THREADS`` environment variable gives the default. Choose before the first
    training step: OpenMP reads its settings once, when numba starts its threads.
    """
    policy = str(policy).lower()
    if policy not in POLICIES:
        raise ValueError(f"thread policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    _state["policy"] = policy


def thread_policy():
    """The active thread policy: the one set, else ``TINYNET_THREADS``, else ``"auto"``."""
    if _state["policy"] is None:
        env = os.environ.get("TINYNET_THREADS", "auto")
        if env.lower() not in POLICIES:
            raise ValueError(f"TINYNET_THREADS must be one of {', '.join(POLICIES)}, got {env!r}")
        set_thread_policy(env)
    return _state["policy"]


# How long an OpenMP thread spins, waiting for the next parallel loop, before it sleeps (libgomp
# waits 300,000 turns by default, where the long spinning above came from). Between two of a
# step's kernels the Python of the layers runs: a thread that fell asleep there is woken for the
# next kernel, which costs more than the spinning. On the Intel AVX-512 host of later sessions
# 10,000 turns lasted 100-200 us (a tiny parallel call after a gap of 100 us took 1.9 us, after
# 200 us 33 us: the wake-up), shorter than a step's longest gaps (the Dense layers and the loss
# between the forward pass's last convolution and the backward's first; the optimizer between
# two steps). Epochs there, s per 60,000 images (12,800-image epochs, medians of 3 interleaved
# rounds; beside busy processes fit runs on the cores they leave free, see adapt_to_load):
#
#     turns     residual CNN: idle / 1 busy / 2 busy     digits CNN: idle / 1 busy / 2 busy
#     10,000                  2.33 / 4.01 / 6.06                     1.58 / 2.71 / 3.72
#     30,000                  2.20 / 3.97 / 6.24                     1.52 / 2.68 / 3.97
#
# (beside two, 4 more rounds of the digits CNN: 4.00 with 10,000 turns, 3.75 with 30,000:
# noise). 100,000 turns made the digits CNN's epoch beside one busy process 5.1 s in one round of
# two (2.6 in the other). Kernels called by hand keep numba's thread count: beside two busy
# processes, on two threads, they ran at the same speed with 10,000 and 30,000 turns in two
# rounds of three and 2-4x slower with 30,000 in the third (predict did too, until it ran on
# the free cores as fit does: see the module doc; then 24,000-26,000 images/s with 30,000 turns,
# 22,900-27,400 with 10,000).
# Earlier (training steps, ms): cnn_digits idle 3.43 with 1000 turns, 3.23 with 3000, 3.02 with
# 10,000, 2.91 with 30,000; beside one busy process 4.68, 4.66, 4.83, 4.97.
SPIN_TURNS = 30_000


def configure_openmp():
    """Under "auto", make OpenMP threads sleep after :data:`SPIN_TURNS` spins
    (``GOMP_SPINCOUNT``) unless the user set OpenMP's waiting policy. Must run before numba
    starts its threads."""
    if (thread_policy() == "auto"
            and "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ):
        os.environ["GOMP_SPINCOUNT"] = str(SPIN_TURNS)


def share_cores():
    """The first time (later calls do nothing), under "auto", on a machine of at most 4 cores and
    unless ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS`` is set: put OpenBLAS on one thread so that
    its spinning workers leave the cores to the parallel kernels."""
    if _state["cores_shared"]:
        return
    _state["cores_shared"] = True
    if (thread_policy() == "auto" and usable_cpus() <= 4
            and not any(v in os.environ for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"))):
        set_blas_threads(1)


def _libc_sched_getcpu():
    """The C library's ``sched_getcpu`` (the CPU the calling thread runs on; about 0.1 us a call
    here), or None where this C library (or system) has none."""
    try:
        fn = ctypes.CDLL(None).sched_getcpu
    except (OSError, AttributeError, TypeError):
        return None
    fn.restype, fn.argtypes = ctypes.c_int, []
    return fn


_sched_getcpu = _libc_sched_getcpu()


def _user_binds_threads():
    """Whether the user asked OpenMP (or Intel's) to bind threads to CPUs themselves."""
    bind = os.environ.get("OMP_PROC_BIND", "false").strip().lower()
    return bind not in ("", "false") or any(
        v in os.environ for v in ("OMP_PLACES", "GOMP_CPU_AFFINITY", "KMP_AFFINITY"))


def keep_workers_apart():
    """Under "auto", on Linux, while numba runs on more than one thread: let numba's worker
    threads run on every CPU this process may use but the one the calling thread (Python's)
    runs on now; when that thread moves, or numba's thread count changes, they follow at the
    next call. Returns ``{worker id: CPUs}`` as set (empty where nothing was set).

    A parallel loop ends when its slowest thread does. Beside other busy processes, the
    scheduler can put both of a 2-core machine's numba threads on one core and the other
    processes on the other (counted in runnable tasks, that is balanced), and leave them there:
    each thread then waits for the other's time slices, and a kernel on two threads runs slower
    than on one. ``python -m benchmarks.placement`` measures it (cnn_digits l1's backward with
    dL/dx, batch 128, process after process beside two busy loops; its committed run is
    benchmarks/placement.md). The main thread itself is left free (binding it, as
    ``OMP_PROC_BIND`` does, would pin every process it starts to its core too).

    Cost: before every kernel a look at the calling thread's CPU (``sched_getcpu``) and the
    clock, about 0.4 us; every :data:`WINDOW_S` seconds, or when that CPU has changed, numba's
    thread count too; the workers' ids are found again (a parallel loop,
    :func:`tinynet.kernels.numba_cpu.thread_ids`) when the calling thread or the count has
    changed, or a worker has ended. Nothing is done under "keep", where the user binds
    threads themselves (``OMP_PROC_BIND`` other than false, ``OMP_PLACES``,
    ``GOMP_CPU_AFFINITY``, ``KMP_AFFINITY``), where the process may use one CPU, or without
    ``sched_getcpu``, ``gettid`` and ``sched_setaffinity`` (other systems, older C libraries)."""
    if _sched_getcpu is None or not hasattr(os, "sched_setaffinity"):
        return {}
    here, caller, now = _sched_getcpu(), threading.get_native_id(), time.monotonic()
    last = _state["placed"]
    if last["key"] is not None and last["key"][:2] == (caller, here) and \
            now - last["checked"] < WINDOW_S:
        return {}  # decided for this thread on this CPU a moment ago
    last["checked"] = now
    numba = sys.modules.get("numba")
    count = numba.get_num_threads() if numba is not None else 1
    key = (caller, here, count)
    if key == last["key"]:
        return {}
    last["key"] = key
    if count < 2 or thread_policy() != "auto" or _user_binds_threads():
        return {}
    allowed = os.sched_getaffinity(0)
    if len(allowed) < 2 or here not in allowed:
        return {}
    if last["found"] != (caller, count):
        from .kernels import numba_cpu
        try:
            last["workers"] = [t for t in numba_cpu.thread_ids() if t != caller]
        except RuntimeError:  # no gettid in this C library: no ids to place
            return {}
        last["found"] = (caller, count)
    cpus = allowed - {here}
    placed = {}
    for tid in last["workers"]:
        try:
            os.sched_setaffinity(tid, cpus)
        except OSError:  # ended, or not this process's to place: find them again next call
            last["found"] = last["key"] = None
            continue
        placed[tid] = cpus
    return placed


def before_kernels():
    """What the numba backend runs before each of its parallel kernels: :func:`share_cores` (the
    first time) and :func:`keep_workers_apart`."""
    share_cores()
    keep_workers_apart()


def _openblas_functions(suffix):
    """``{library path: its openblas_<suffix> C function}`` for every OpenBLAS library loaded in
    this process (NumPy's, SciPy's), found through /proc/self/maps: empty on systems without it."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower() and ".so" in line}
    except OSError:
        return {}
    found = {}
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas_", "openblas_"):
            fn = getattr(lib, f"{prefix}{suffix}64_", None) or getattr(lib, prefix + suffix, None)
            if fn is not None:
                found[path] = fn
                break
    return found


def set_blas_threads(n):
    """Set the number of threads of every OpenBLAS library loaded in this process; return how
    many were set (0 where none is found). Like starting Python with ``OPENBLAS_NUM_THREADS=n``."""
    functions = _openblas_functions("set_num_threads")
    for fn in functions.values():
        fn.argtypes = [ctypes.c_int]
        fn.restype = None
        fn(int(n))
    return len(functions)


def blas_threads():
    """``{library path: its thread count}`` for every OpenBLAS library loaded in this process.

    numba loads SciPy's OpenBLAS when it first compiles or loads a function; tinynet's kernels
    do not call it (their matrix products are NumPy's), so the policy above sets NumPy's."""
    functions = _openblas_functions("get_num_threads")
    for fn in functions.values():
        fn.restype = ctypes.c_int
    return {path: int(fn()) for path, fn in functions.items()}


def _cpu_ticks():
    """``(ticks busy on every CPU, ticks this process ran)`` from /proc, or None elsewhere.
    Busy counts user, nice, system, irq, softirq and steal (a hypervisor's other guests)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:9]]
        with open("/proc/self/stat") as f:
            mine = f.read().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return user + nice + system + irq + softirq + steal, int(mine[11]) + int(mine[12])


def others_busy_cores():
    """How many cores other processes kept busy since the previous call (None on the first call,
    or where /proc is not there)."""
    now, ticks = time.monotonic(), _cpu_ticks()
    previous, _state["sample"] = _state["sample"], (now, ticks)
    if previous is None or ticks is None or previous[1] is None or now - previous[0] < 0.05:
        return None
    elapsed = (now - previous[0]) * os.sysconf("SC_CLK_TCK")
    others = (ticks[0] - previous[1][0]) - (ticks[1] - previous[1][1])
    return max(0.0, others / elapsed)


WINDOW_S = 2.0  # the load is measured over at least this long: shorter windows are noise
# except the first decision of each fit, which comes sooner (after_fit puts numba's threads back
# to their most): a whole WINDOW_S on more threads than the free cores was half of a 4 s epoch
# beside busy processes (cnn_digits, 469 batches of 128, interleaved processes, medians of 3:
# beside two busy processes 8.1 ms a step against 8.8 with the first decision after WINDOW_S;
# beside one, 6.3 against 6.2)
FIRST_WINDOW_S = 0.25


def after_fit():
    """After ``fit`` (and ``evaluate``, ``predict``; inside ``fit``, its validation): give numba
    back the thread count it had before :func:`adapt_to_load` changed it (the user's, or
    numba's own), so that it stays the ceiling of the next run even when the user sets it again
    to the count the load had chosen; the next run decides again soon."""
    numba = sys.modules.get("numba")
    if numba is not None and _state["ceiling"] is not None and \
            _state["numba_threads"] is not None:
        if numba.get_num_threads() == _state["numba_threads"]:  # untouched since: put back
            numba.set_num_threads(_state["ceiling"])
        _state["numba_threads"] = None  # what numba has now is the user's
    _state["soon"] = True  # the next fit starts on numba's threads: decide again soon


def adapt_to_load():
    """Under "auto": run numba's kernels and BLAS on the cores that other processes leave free
    (at least one; BLAS stays on one thread once the parallel kernels run on a small machine).
    Cheap to call at every step: it measures again only when :data:`WINDOW_S` have passed
    (:data:`FIRST_WINDOW_S` for its first decision in a fit); a core counts as taken when others
    kept it at least three-quarters busy."""
    if thread_policy() != "auto":
        return
    sample = _state["sample"]
    window = FIRST_WINDOW_S if _state["soon"] else WINDOW_S
    if sample is not None and time.monotonic() - sample[0] < window:
        return
    others = others_busy_cores()
    if others is None:
        return
    _state["soon"] = False
    wanted = max(1, usable_cpus() - int(others + 0.25))
    numba = sys.modules.get("numba")
    if numba is not None:
        # a count other than the one set here last is the user's (numba.set_num_threads) or
        # numba's own: the most threads the kernels may have (it was overridden by the load)
        current = numba.get_num_threads()
        if current != _state["numba_threads"]:
            _state["ceiling"] = current
        count = min(wanted, _state["ceiling"], numba.config.NUMBA_NUM_THREADS)
        if count != _state["numba_threads"]:
            numba.set_num_threads(count)
            _state["numba_threads"] = count
    if wanted == _state["threads"]:
        return
    _state["threads"] = wanted
    if not (_state["cores_shared"] and usable_cpus() <= 4) and \
            not any(v in os.environ for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")):
        set_blas_threads(wanted)
