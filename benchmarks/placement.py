"""Why a numba kernel on two threads beside busy processes runs at one of two speeds (issue 13).

Beside one busy loop per CPU, cnn_digits l1's dense backward with dL/dx (batch 128, float32) on
numba's two OpenMP threads runs, for a whole process, either about as fast as on a quiet machine
between the scheduler's interruptions, or slower than on one thread. This times it process after
process, in turn:

* ``two threads``: as tinynet runs a kernel called by hand: numba's worker kept off the CPU
  of the main thread (:func:`tinynet.threads.keep_workers_apart`), ``GOMP_SPINCOUNT`` as
  :func:`tinynet.threads.configure_openmp` sets it;
* ``two threads, not placed``: the same spinning, the threads where the scheduler puts them
  (``TINYNET_THREADS=keep``, which changes no thread setting, and ``GOMP_SPINCOUNT`` set by hand):
  tinynet before 2026-12-05;
* ``two threads, bound``: each OpenMP thread bound to a core of its own
  (``OMP_PROC_BIND=spread OMP_PLACES=cores``; tinynet then leaves the placing to OpenMP);
* ``one thread``: ``NUMBA_NUM_THREADS=1``, what ``fit`` runs the kernels on when other processes
  hold the CPUs (:func:`tinynet.threads.adapt_to_load`).

Each process times calls for ``--seconds`` and reports their mean (the rate a stream of calls
keeps, as the benchmark's loaded figures) and the median call; ``--out FILE`` also writes the
table, with the commit, the machine and the load, as Markdown (the committed run:
benchmarks/placement.md)::

    python -m benchmarks.placement [--rounds 4] [--seconds 1.5] [--busy-loops N] [--out FILE]

Every tenth call, each process also reads from /proc the CPU each of its threads last ran on,
and reports how often numba's worker thread had last run on the main thread's CPU. On 2026-12-05
(six rounds, before the placing) the slow processes had it there in every sample, the fast ones
in none, and bound threads were fast in every process: the slow mode is the two threads sharing
one core while the busy loops share the other (counted in runnable tasks the load is balanced,
and the scheduler leaves it so; bound, the threads cannot share a core). Binding pins the master
thread, Python's own, to the first core, and every process started after it inherits that one
core: tinynet keeps the worker off the main thread's CPU instead and leaves that one free.
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np

from tinynet import threads

from . import common

SETTINGS = {"two threads": {},
            "two threads, not placed": {"TINYNET_THREADS": "keep",
                                        "GOMP_SPINCOUNT": str(threads.SPIN_TURNS)},
            "two threads, bound": {"OMP_PROC_BIND": "spread", "OMP_PLACES": "cores"},
            "one thread": {"NUMBA_NUM_THREADS": "1"}}


def time_one(seconds):
    """In this process: cnn_digits l1's backward with dL/dx, called for ``seconds``; returns
    ``{"mean_ms", "median_ms", "gflops"}`` (GFLOP/s of the mean call, twice the forward's work)."""
    from tinynet import backend
    backend.set_backend("numba")
    K = backend.kernels()
    r = np.random.default_rng(0)
    x = r.random((128, 28, 28, 1), dtype=np.float32)
    w = (r.standard_normal((5, 5, 1, 9)) * 0.1).astype(np.float32)
    pads = (2, 2, 2, 2)
    y, saved = K.conv2d_forward(x, w, np.zeros(9, np.float32), (1, 1), pads, relu=True)
    dy = r.standard_normal(y.shape).astype(np.float32)

    def call():
        K.conv2d_backward(dy, saved, w, (1, 1), pads, relu_output=y)

    call()
    times, cpus = [], []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
        if len(times) % 10 == 0:
            cpus.append(_thread_cpus())
    mean = float(np.mean(times))
    flops = 2 * 2 * 128 * 28 * 28 * 9 * 5 * 5
    return {"mean_ms": 1e3 * mean, "median_ms": 1e3 * float(np.median(times)),
            "gflops": flops / mean / 1e9, "calls": len(times), "same_cpu": _same_cpu(cpus)}


def _thread_cpus():
    """``{thread id: (CPU it last ran on, its CPU ticks)}`` of this process's threads, from
    /proc (Linux; empty elsewhere)."""
    out = {}
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            # after the name: state is field 3, utime 14, stime 15, processor 39 (1-based)
            out[int(tid)] = (int(fields[36]), int(fields[11]) + int(fields[12]))
    except OSError:
        return {}
    return out


def _same_cpu(samples):
    """The share of ``samples`` (:func:`_thread_cpus`, taken between calls from the main thread)
    in which the busiest other thread, numba's worker, had last run on the main thread's CPU:
    near 1 when the two share a core, near 0 when each has its own. None without /proc or a
    second busy thread."""
    main = threading.get_native_id()
    if not samples or main not in samples[-1]:
        return None
    others = {t: ticks for t, (_, ticks) in samples[-1].items() if t != main}
    if not others or max(others.values()) == 0:
        return None
    worker = max(others, key=others.get)
    pairs = [(s[main][0], s[worker][0]) for s in samples if main in s and worker in s]
    return sum(a == b for a, b in pairs) / len(pairs) if pairs else None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=4, help="processes of each setting (default 4)")
    ap.add_argument("--seconds", type=float, default=1.5, help="seconds of calls a process")
    ap.add_argument("--busy-loops", type=int, default=None,
                    help="busy-loop processes (default: one per usable CPU)")
    ap.add_argument("--out", default=None, help="also write the table as Markdown to this file")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a measuring process
    args = ap.parse_args(argv)
    if args.one:
        print("RESULT " + json.dumps(time_one(args.seconds)))
        return
    count = args.busy_loops or common.machine().get("usable_cpus") or os.cpu_count() or 1
    per_process = args.seconds + 15  # with numba's start and the kernels' loading
    loops = common.start_busy_loops(count, args.rounds * len(SETTINGS) * per_process + 5)
    rows, started = [], common.conditions()
    try:
        time.sleep(0.5)
        for rnd in range(1, args.rounds + 1):
            for name, env in SETTINGS.items():
                e = dict(os.environ, **env)
                e.setdefault("PYTHONPATH", str(common.ROOT))
                done = subprocess.run([sys.executable, "-m", "benchmarks.placement", "--one",
                                       "--seconds", str(args.seconds)], capture_output=True,
                                      text=True, env=e, cwd=common.ROOT)
                result = [json.loads(line[7:]) for line in done.stdout.splitlines()
                          if line.startswith("RESULT ")]
                if not result:
                    sys.exit(f"benchmarks.placement: a measuring process failed:\n"
                             f"{common.scrub(done.stderr)[-2000:]}")
                rows.append(dict(result[0], round=rnd, setting=name))
                common.log(f"round {rnd}, {name}: mean {rows[-1]['mean_ms']:.2f} ms "
                           f"(median call {rows[-1]['median_ms']:.2f})")
    finally:
        held = common.stop_busy_loops(loops)
    load = (started["load"], common.conditions()["load"])
    lines = [f"cnn_digits l1's backward with dL/dx (batch 128, float32) beside {count} busy "
             f"loop(s) ({'they ran throughout' if held == count else 'some had stopped'}), "
             f"{args.rounds} round(s) of one process per setting, {args.seconds:g} s of calls "
             f"each; {common.machine().get('cpu', '')}; tinynet {common.commit()}, "
             f"{time.strftime('%Y-%m-%d')}; load average (1, 5, 15 min) before {load[0]}, "
             f"after {load[1]}. Written by `python -m benchmarks.placement` "
             "(its docstring says what each setting is).", "",
             "| setting | mean call, each process (ms) | median call, each process (ms) | "
             "GFLOP/s of the mean | numba's worker on the main thread's CPU (share of samples) |",
             "|---|---|---|---|---|"]
    for name in SETTINGS:
        mine = [r for r in rows if r["setting"] == name]
        lines.append(f"| {name} | " + ", ".join(f"{r['mean_ms']:.2f}" for r in mine) + " | "
                     + ", ".join(f"{r['median_ms']:.2f}" for r in mine) + " | "
                     + ", ".join(f"{r['gflops']:.0f}" for r in mine) + " | "
                     + ", ".join("–" if r.get("same_cpu") is None or name == "one thread"
                                 else f"{r['same_cpu']:.2f}" for r in mine) + " |")
    print("\n" + "\n".join(lines))
    if args.out:
        with open(args.out, "w") as f:
            f.write("# Two numba threads beside busy processes: where the scheduler puts them\n\n"
                    + "\n".join(lines) + "\n")
        common.log(f"written to {args.out}")


if __name__ == "__main__":
    main()
