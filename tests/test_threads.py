"""tinynet's thread policy (threads.py): what "auto" changes in the process, and that "keep"
(``TINYNET_THREADS=keep`` or ``set_thread_policy("keep")``) changes nothing."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from tinynet import threads

ADAPT_TO_LOAD = threads.adapt_to_load  # conftest replaces it by a no-op for the other tests
OMP_VARIABLES = ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")


@pytest.fixture
def blas_calls(monkeypatch):
    """A fresh policy state, no thread variable in the environment, and a recorder of the
    OpenBLAS thread counts that tinynet would set."""
    for name in OMP_VARIABLES + ("TINYNET_THREADS",):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(threads._state, "policy", None)
    monkeypatch.setitem(threads._state, "cores_shared", False)
    calls = []
    monkeypatch.setattr(threads, "set_blas_threads", calls.append)
    return calls


@pytest.mark.parametrize("cpus,env,policy,expected", [
    (2, {}, None, [1]),                                # small machine: BLAS leaves the cores
    (4, {}, "auto", [1]),
    (16, {}, None, []),                                # a large machine keeps BLAS's threads
    (2, {"OPENBLAS_NUM_THREADS": "2"}, None, []),      # the user's choice wins
    (2, {"OMP_NUM_THREADS": "2"}, None, []),
    (2, {}, "keep", []),                               # the switch
    (2, {"TINYNET_THREADS": "keep"}, None, []),
    (2, {"TINYNET_THREADS": "KEEP"}, None, []),
])
def test_share_cores_puts_blas_on_one_thread_only_under_auto(blas_calls, monkeypatch, cpus, env,
                                                              policy, expected):
    monkeypatch.setattr(threads, "usable_cpus", lambda: cpus)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    if policy:
        threads.set_thread_policy(policy)
    threads.share_cores()
    threads.share_cores()  # once per process
    assert blas_calls == expected


@pytest.mark.parametrize("env,policy,expected", [
    ({}, None, str(threads.SPIN_TURNS)),
    ({}, "keep", None),
    ({"OMP_WAIT_POLICY": "active"}, None, None),
    ({"GOMP_SPINCOUNT": "5"}, None, "5"),
])
def test_openmp_spinning_is_limited_only_under_auto(blas_calls, monkeypatch, env, policy, expected):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    if policy:
        threads.set_thread_policy(policy)
    threads.configure_openmp()
    assert os.environ.get("GOMP_SPINCOUNT") == expected


def test_a_bad_policy_is_refused_with_the_valid_names(blas_calls, monkeypatch):
    with pytest.raises(ValueError, match="auto, keep.*'fast'"):
        threads.set_thread_policy("fast")
    monkeypatch.setenv("TINYNET_THREADS", "1")
    with pytest.raises(ValueError, match="TINYNET_THREADS must be one of auto, keep"):
        threads.thread_policy()


CHILD = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    from tinynet import backend, layers, sysinfo, threads
    backend.set_backend("numba")
    before = threads.blas_threads()
    conv = layers.Conv2D(4, 3, activation="relu")
    conv.forward(np.ones((2, 8, 8, 1), np.float32))  # a parallel numba kernel
    print(json.dumps({"before": before, "after": threads.blas_threads(),
                      "gomp": os.environ.get("GOMP_SPINCOUNT"), "cpus": sysinfo.usable_cpus()}))
""")


@pytest.mark.parametrize("policy", ["auto", "keep"])
def test_a_process_running_the_numba_kernels(policy):
    """End to end, in a fresh process on this (2-core) machine: "auto" limits OpenMP's spinning
    and puts OpenBLAS on one thread once a convolution has run; "keep" leaves both alone."""
    pytest.importorskip("numba")
    env = {k: v for k, v in os.environ.items() if k not in OMP_VARIABLES}
    env["TINYNET_THREADS"] = policy
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    if not got["before"]:
        pytest.skip("NumPy here does not use OpenBLAS")
    # NumPy's OpenBLAS, loaded before the kernels ran (numba loads SciPy's too, unused by them)
    after = {path: got["after"][path] for path in got["before"]}
    if policy == "keep":
        assert got["gomp"] is None and after == got["before"]
    else:
        assert got["gomp"] == str(threads.SPIN_TURNS)
        assert after == ({path: 1 for path in after} if got["cpus"] <= 4 else got["before"])


@pytest.fixture
def adapting(monkeypatch, blas_calls):
    """adapt_to_load with a fake clock and fake /proc counters; returns (numba calls, set_load)."""
    monkeypatch.setattr(threads, "adapt_to_load", ADAPT_TO_LOAD)
    monkeypatch.setitem(threads._state, "sample", None)
    monkeypatch.setitem(threads._state, "threads", None)
    monkeypatch.setitem(threads._state, "numba_threads", None)
    monkeypatch.setitem(threads._state, "ceiling", None)
    monkeypatch.setitem(threads._state, "soon", True)
    monkeypatch.setattr(threads, "usable_cpus", lambda: 2)
    ticks_per_s = os.sysconf("SC_CLK_TCK")
    clock = {"t": 100.0, "busy": 0, "mine": 0}
    monkeypatch.setattr(threads.time, "monotonic", lambda: clock["t"])
    monkeypatch.setattr(threads, "_cpu_ticks", lambda: (clock["busy"], clock["mine"]))
    numba_calls = []
    numba = pytest.importorskip("numba")
    monkeypatch.setattr(numba, "set_num_threads", numba_calls.append)

    def one_second(others, mine=1.0, seconds=threads.WINDOW_S):
        clock["t"] += seconds
        clock["busy"] += int((others + mine) * ticks_per_s * seconds)
        clock["mine"] += int(mine * ticks_per_s * seconds)

    return numba_calls, one_second


def test_others_busy_cores_is_the_machines_busy_time_less_this_processs(adapting):
    _, one_second = adapting
    assert threads.others_busy_cores() is None  # the first call only takes a sample
    one_second(others=1.5, mine=0.5)
    assert threads.others_busy_cores() == pytest.approx(1.5, abs=0.02)


@pytest.mark.parametrize("others,expected", [(0.1, 2), (0.7, 2), (0.8, 1), (1.4, 1), (3.0, 1)])
def test_adapt_to_load_uses_the_cores_others_leave_free(adapting, blas_calls, others, expected):
    numba_calls, one_second = adapting
    threads.adapt_to_load()
    one_second(others)
    threads.adapt_to_load()
    assert numba_calls == [expected] and blas_calls == [expected]
    one_second(others)
    threads.adapt_to_load()
    assert numba_calls == [expected]  # unchanged load: nothing set again


def test_adapt_to_load_measures_again_only_after_its_window(adapting, blas_calls):
    """The first decision comes after FIRST_WINDOW_S (a whole WINDOW_S on too many threads
    was half an epoch beside busy processes), the later ones after WINDOW_S each."""
    numba_calls, one_second = adapting
    threads.adapt_to_load()
    one_second(1.5, seconds=threads.FIRST_WINDOW_S / 2)
    threads.adapt_to_load()  # too soon even for the first decision
    assert numba_calls == []
    one_second(1.5, seconds=threads.WINDOW_S / 4 - threads.FIRST_WINDOW_S / 2)
    threads.adapt_to_load()  # a quarter of the later windows is enough for the first decision
    assert numba_calls == [1]
    one_second(0.1, seconds=threads.WINDOW_S / 4)
    threads.adapt_to_load()  # too soon: a short window would be noise
    assert numba_calls == [1]
    one_second(0.1)
    threads.adapt_to_load()
    assert numba_calls == [1, 2]


def test_each_fit_decides_soon_again_after_after_fit_gave_numba_its_threads_back(adapting,
                                                                               monkeypatch):
    """after_fit puts numba's threads back to their most; the next fit, beside busy processes,
    must not run a whole WINDOW_S on them before it decides again."""
    numba_calls, one_second = adapting
    numba = pytest.importorskip("numba")
    threads.adapt_to_load()
    one_second(1.5)
    threads.adapt_to_load()  # a decision: 1 thread
    monkeypatch.setattr(numba, "get_num_threads", lambda: numba_calls[-1])
    threads.after_fit()  # the fit ends: numba back to its ceiling
    assert numba_calls == [1, 2]
    monkeypatch.setattr(numba, "get_num_threads", lambda: numba_calls[-1])
    one_second(1.5, seconds=threads.WINDOW_S / 4)  # the next fit, a little later
    threads.adapt_to_load()
    assert numba_calls == [1, 2, 1]


def test_adapt_to_load_follows_the_load_down_and_up(adapting, blas_calls):
    numba_calls, one_second = adapting
    threads.adapt_to_load()
    for others in (1.2, 1.1, 0.1):
        one_second(others)
        threads.adapt_to_load()
    assert numba_calls == [1, 2] and blas_calls == [1, 2]


def test_adapt_to_load_changes_nothing_under_keep_or_a_users_blas_setting(adapting, blas_calls,
                                                                         monkeypatch):
    numba_calls, one_second = adapting
    threads.set_thread_policy("keep")
    threads.adapt_to_load()
    one_second(1.5)
    threads.adapt_to_load()
    assert numba_calls == [] and blas_calls == []
    threads.set_thread_policy("auto")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    threads.adapt_to_load()
    one_second(1.5)
    threads.adapt_to_load()
    assert numba_calls == [1] and blas_calls == []  # numba follows the load, BLAS is the user's


def test_blas_stays_on_one_thread_once_the_parallel_kernels_run(adapting, blas_calls,
                                                                monkeypatch):
    numba_calls, one_second = adapting
    monkeypatch.setitem(threads._state, "cores_shared", True)
    threads.adapt_to_load()
    one_second(0.0)
    threads.adapt_to_load()
    assert numba_calls == [2] and blas_calls == []


def test_adapt_to_load_stays_within_a_users_numba_set_num_threads(adapting, monkeypatch):
    """numba.set_num_threads(1) before fit was overridden: 42 of 235 batches ran on 2 threads
    (a review), and 2 stayed set after fit. The user's count is the most adapt_to_load uses;
    a count set later is taken as the new ceiling."""
    numba_calls, one_second = adapting
    numba = pytest.importorskip("numba")
    current = {"n": 1}  # the user's numba.set_num_threads(1)
    monkeypatch.setattr(numba, "get_num_threads", lambda: current["n"])
    monkeypatch.setattr(numba, "set_num_threads",
                        lambda n: (numba_calls.append(n), current.update(n=n)))
    threads.adapt_to_load()
    for others in (0.0, 0.0, 1.5, 0.0):
        one_second(others)
        threads.adapt_to_load()
    assert current["n"] == 1 and numba_calls in ([], [1])
    current["n"] = 2  # the user allows two again
    one_second(0.0)
    threads.adapt_to_load()
    one_second(1.5)
    threads.adapt_to_load()
    assert numba_calls[-1:] == [1] and current["n"] == 1  # the load still counts under it
    one_second(0.0)
    threads.adapt_to_load()
    assert current["n"] == 2


def test_the_users_thread_count_is_back_after_fit_and_stays_the_ceiling(adapting, monkeypatch):
    """A fit under load left numba on the 1 thread the load had chosen; the user then set 1
    (as the README advises) and the next fit, on a quiet machine, raised it to 2 (a review):
    the count tinynet set could not be told from the user's. fit now gives the count back."""
    numba_calls, one_second = adapting
    numba = pytest.importorskip("numba")
    current = {"n": 2}  # numba's own count
    monkeypatch.setattr(numba, "get_num_threads", lambda: current["n"])
    monkeypatch.setattr(numba, "set_num_threads",
                        lambda n: (numba_calls.append(n), current.update(n=n)))
    threads.adapt_to_load()
    one_second(1.5)  # busy: one thread
    threads.adapt_to_load()
    assert current["n"] == 1
    threads.after_fit()
    assert current["n"] == 2  # numba's own count, back
    current["n"] = 1  # the user's numba.set_num_threads(1)
    threads.adapt_to_load()
    one_second(0.0)  # quiet
    threads.adapt_to_load()
    assert current["n"] == 1
    threads.after_fit()
    assert current["n"] == 1


@pytest.mark.parametrize("run", ["predict", "evaluate"])
def test_evaluate_and_predict_run_on_the_free_cores_as_fit_does(monkeypatch, run):
    """On the numba backend, predict and evaluate ask adapt_to_load before each batch and give
    the thread count back at their end (after_fit), as fit does; the numpy backend, the
    reference, never (beside two busy processes, predict on numba's two threads was up to a
    quarter slower than on the one free core)."""
    pytest.importorskip("numba")
    import numpy as np
    from tinynet import Sequential, backend, layers
    calls = []
    monkeypatch.setattr(threads, "adapt_to_load", lambda: calls.append("adapt"))
    monkeypatch.setattr(threads, "after_fit", lambda: calls.append("back"))
    x, y = np.ones((5, 3), np.float32), np.eye(2, dtype=np.float32)[[0, 1, 0, 1, 0]]
    for name, expected in (("numba", ["adapt"] * 3 + ["back"]), ("numpy", [])):
        backend.set_backend(name)
        model = Sequential([layers.Input((3,)), layers.Dense(2, activation="softmax")])
        model.compile("rmsprop", "categorical_crossentropy")
        calls.clear()
        if run == "predict":
            model.predict(x, batch_size=2)
        else:
            model.evaluate(x, y, batch_size=2, verbose=0)
        assert calls == expected, name


def _numba_on_openmp():
    """numba, where its parallel loops run on OpenMP threads (the layer keep_workers_apart is
    measured on); skips the test otherwise."""
    numba = pytest.importorskip("numba")
    from tinynet.kernels import numba_cpu
    if not sys.platform.startswith("linux"):
        pytest.skip("thread ids need Linux")
    try:
        numba_cpu.thread_ids()  # runs a parallel loop: the layer is chosen
    except RuntimeError as e:
        pytest.skip(str(e))
    if numba.threading_layer() != "omp":
        pytest.skip(f"numba runs on its {numba.threading_layer()} layer here, not OpenMP")
    return numba, numba_cpu


def test_thread_ids_are_the_caller_then_the_workers_of_the_current_team():
    """numba_cpu.thread_ids: the calling thread first, one id for each thread numba runs now,
    each a thread of this process."""
    import threading
    numba, numba_cpu = _numba_on_openmp()
    ids = numba_cpu.thread_ids()
    assert ids[0] == threading.get_native_id()
    assert len(ids) == len(set(ids)) == numba.get_num_threads()
    assert {str(t) for t in ids} <= set(os.listdir("/proc/self/task"))
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        assert numba_cpu.thread_ids() == [threading.get_native_id()]
    finally:
        numba.set_num_threads(before)


@pytest.fixture
def placing(monkeypatch, blas_calls):
    """keep_workers_apart with fake numba threads (the caller, 11 and 12: 12 has ended), CPUs
    and clock; returns (affinities set, fake state)."""
    import threading
    numba = pytest.importorskip("numba")
    from tinynet.kernels import numba_cpu
    for name in ("OMP_PROC_BIND", "OMP_PLACES", "GOMP_CPU_AFFINITY", "KMP_AFFINITY"):
        monkeypatch.delenv(name, raising=False)
    fake = {"t": 100.0, "cpu": 0, "allowed": {0, 1, 2}, "threads": 3, "found": 0,
            "ids": [threading.get_native_id(), 11, 12]}
    monkeypatch.setitem(threads._state, "placed",
                        {"key": None, "checked": 0.0, "found": None, "workers": []})
    monkeypatch.setitem(threads._state, "cores_shared", True)  # share_cores: done
    monkeypatch.setattr(threads.time, "monotonic", lambda: fake["t"])
    monkeypatch.setattr(numba, "get_num_threads", lambda: fake["threads"])

    def thread_ids():
        fake["found"] += 1
        return list(fake["ids"])

    monkeypatch.setattr(numba_cpu, "thread_ids", thread_ids)
    monkeypatch.setattr(threads, "_sched_getcpu", lambda: fake["cpu"])
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: set(fake["allowed"]),
                        raising=False)
    settings = []

    def set_affinity(tid, cpus):
        if tid == 12:
            raise ProcessLookupError(3, "No such process")
        settings.append((tid, set(cpus)))

    monkeypatch.setattr(threads.os, "sched_setaffinity", set_affinity, raising=False)
    return settings, fake


def test_workers_are_kept_off_the_main_threads_cpu_and_follow_it(placing):
    settings, fake = placing
    threads.before_kernels()  # the first kernel: placed at once (12 has ended: skipped)
    assert settings == [(11, {1, 2})] and fake["found"] == 1
    fake["cpu"] = 2
    threads.before_kernels()  # the main thread moved to CPU 2: the worker follows
    assert settings[1:] == [(11, {0, 1})]
    assert fake["found"] == 2  # found again after one of them had gone


def test_workers_are_found_again_when_numbas_thread_count_changes(placing, monkeypatch):
    settings, fake = placing
    monkeypatch.setattr(threads.os, "sched_setaffinity",
                        lambda tid, cpus: settings.append((tid, set(cpus))))
    assert threads.keep_workers_apart() == {11: {1, 2}, 12: {1, 2}}
    fake["threads"] = 2
    fake["ids"] = fake["ids"][:1] + [13]  # OpenMP started a new team's worker
    fake["t"] += threads.WINDOW_S / 2
    assert threads.keep_workers_apart() == {}  # same CPU within the window: the clock only
    assert fake["found"] == 1
    fake["t"] += threads.WINDOW_S / 2
    assert threads.keep_workers_apart() == {13: {1, 2}}  # the count is looked at again
    assert fake["found"] == 2
    fake["t"] += threads.WINDOW_S
    assert threads.keep_workers_apart() == {}  # nothing changed: nothing set again
    fake["threads"], fake["cpu"] = 1, 1  # one thread runs (adapt_to_load under load)
    assert threads.keep_workers_apart() == {}
    assert len(settings) == 3 and fake["found"] == 2


@pytest.mark.parametrize("change", ["keep", "OMP_PROC_BIND", "OMP_PLACES", "GOMP_CPU_AFFINITY",
                                    "one cpu", "no gettid"])
def test_workers_are_left_alone_under_keep_a_users_binding_or_one_cpu(placing, monkeypatch,
                                                                      change):
    settings, fake = placing
    if change == "keep":
        threads.set_thread_policy("keep")
    elif change == "one cpu":
        fake["allowed"] = {3}
    elif change == "no gettid":
        from tinynet.kernels import numba_cpu

        def no_gettid():
            fake["found"] += 1
            raise RuntimeError("thread_ids needs the C library's gettid")

        monkeypatch.setattr(numba_cpu, "thread_ids", no_gettid)
    else:
        monkeypatch.setenv(change, {"OMP_PROC_BIND": "spread", "OMP_PLACES": "cores"}.get(
            change, "0 1"))
    assert threads.keep_workers_apart() == {}
    assert settings == [] and fake["found"] == (1 if change == "no gettid" else 0)


def test_omp_proc_bind_false_is_no_binding(placing, monkeypatch):
    settings, _ = placing
    monkeypatch.setenv("OMP_PROC_BIND", "false")
    assert threads.keep_workers_apart() == {11: {1, 2}}


CHILD_PLACED = textwrap.dedent("""
    import json, os, threading
    import numpy as np
    from tinynet import backend, layers, threads
    from tinynet.kernels import numba_cpu
    backend.set_backend("numba")
    allowed = sorted(os.sched_getaffinity(0))
    conv, x = layers.Conv2D(4, 3, activation="relu"), np.ones((2, 8, 8, 1), np.float32)
    seen = []
    for cpu in (allowed[0], allowed[1]):  # as if the main thread ran there, then moved
        threads._sched_getcpu = lambda: cpu
        conv.forward(x)  # a parallel numba kernel
        main, *workers = numba_cpu.thread_ids()
        seen.append({"main": sorted(os.sched_getaffinity(main)),
                     "workers": [sorted(os.sched_getaffinity(t)) for t in workers]})
    print(json.dumps({"allowed": allowed, "seen": seen}))
""")


@pytest.mark.parametrize("policy", ["auto", "keep"])
def test_a_process_keeps_its_numba_workers_off_the_main_threads_cpu(policy):
    """End to end, in a fresh process (the CPU the main thread reports is chosen by the test):
    under "auto" numba's worker may run on every CPU but the main thread's, and follows it when
    it moves; the main thread keeps every CPU; "keep" places nothing."""
    _numba_on_openmp()
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs at least 2 usable CPUs")
    env = {k: v for k, v in os.environ.items() if k not in OMP_VARIABLES + (
        "OMP_PROC_BIND", "OMP_PLACES", "GOMP_CPU_AFFINITY", "KMP_AFFINITY")}
    env.update(TINYNET_THREADS=policy, NUMBA_NUM_THREADS="2")
    done = subprocess.run([sys.executable, "-c", CHILD_PLACED], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    allowed = set(got["allowed"])
    for cpu, seen in zip(got["allowed"][:2], got["seen"]):
        assert set(seen["main"]) == allowed and len(seen["workers"]) == 1
        assert set(seen["workers"][0]) == (allowed if policy == "keep" else allowed - {cpu})
