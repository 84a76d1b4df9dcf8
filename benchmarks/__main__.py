"""tinynet benchmarks: tinynet against Keras and PyTorch, interleaved in one run, and its kernels
against NumPy's sgemm on a quiet and on a loaded machine.

    python -m benchmarks [--quick] [--rounds N] [--epochs N] [--out DIR] [--models m1,m2]
                         [--backends numpy,numba[,cupy]] [--keras-python PATH] [--no-keras]
                         [--no-torch] [--torch-threads N] [--load-seconds S] [--busy-loops N]
                         [--loaded-model M]
                         [--no-cold-compile] [--skip PARTS] [--data DIR] [--report-only JSON]

What it measures (each measurement in a fresh process, ``benchmarks/worker.py``):

* seconds per training epoch of the report's four models (real MNIST, 60,000 images, batch 128,
  float32, RMSprop with Keras's defaults) in tinynet (numba backend, and the NumPy and CuPy
  backends where they run), Keras (when TensorFlow imports in this Python, or in the one given with
  ``--keras-python``) and PyTorch (when torch imports), **interleaved**: in each of ``--rounds``
  rounds, for each model, tinynet then Keras then PyTorch, the order rotated by one every round,
  so that the figures compared are measured seconds apart under the same load. Each process warms
  up on a few batches and one as small as the epoch's last partial batch (so Keras does not retrace
  inside a timed epoch), then times ``--epochs`` epochs. The figure is the median over the rounds,
  with its spread (min-max) and the ratios tinynet/Keras and tinynet/PyTorch; the load average and
  the CPU steal time (``/proc/stat``) are recorded before and after every measurement;
* the numba convolution kernels' GFLOP/s at the report models' shapes, on numba's threads and on
  one, next to NumPy's float32 matmul (sgemm) at the same shapes and work on BLAS's threads and on
  one (the ratio: the faster of each), first on the machine as it is, then again while the
  benchmark keeps every CPU busy with one pure-Python busy loop per CPU (stopped after the
  measurement, and by themselves after ``--load-seconds`` at the latest), and, under the same
  loops, one epoch of ``--loaded-model`` in each framework;
* the first training step with an empty numba cache (the first run after installation);
* the peak resident memory of training on all of MNIST;
* inference throughput, epoch time vs number of images, throughput vs batch size.

Writes ``RESULTS.md``, ``results.json`` and PNG charts into ``--out``: by default
``benchmarks_out/`` (git-ignored), never over the committed ``benchmarks/RESULTS.md`` unless asked
with ``--out benchmarks``.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import common

HERE = Path(__file__).resolve().parent
FRAMEWORK_NAMES = {"tinynet": "tinynet", "keras": "Keras", "torch": "PyTorch"}
SERIES_NAMES = {"numba": "tinynet numba", "numpy": "tinynet numpy", "cupy": "tinynet cupy",
                "keras": "Keras", "keras_onednn": "Keras, oneDNN on", "torch": "PyTorch",
                "torch_default": "PyTorch, default threads"}
# the other frameworks' series, in the order of the tables (after tinynet's backends)
OTHER_SERIES = ["keras", "keras_onednn", "torch", "torch_default"]
# TensorFlow's switch for its oneDNN kernels. Without it, TensorFlow on Linux turns them on only on
# CPUs with some instructions (AVX512_VNNI, AVX512_BF16, AVX_VNNI, AMX: not plain AVX-512 nor
# AVX2), and builds without oneDNN never do: the benchmark asks TensorFlow rather than guess.
ONEDNN_VAR = "TF_ENABLE_ONEDNN_OPTS"
ONEDNN_ON = {ONEDNN_VAR: "1"}
MEMORY_TARGET_MB = 450
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# numba's kernels on one thread: what tinynet's fit runs them on when other processes hold the
# CPUs (tinynet.threads.adapt_to_load)
ONE_NUMBA_THREAD = {"NUMBA_NUM_THREADS": "1"}
KERNEL_TARGET = 2.0  # the convolution kernels within 2x of sgemm's GFLOP/s


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="fewer images, epochs and repeats (to try the harness; not for figures)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="interleaved rounds of every framework on every model (default 3)")
    ap.add_argument("--epochs", type=int, default=None,
                    help="timed epochs per process (default 1: the rounds give the repeats)")
    ap.add_argument("--backends", default=None,
                    help="comma-separated subset of numpy,numba,cupy (default: all that run here)")
    ap.add_argument("--models", default=",".join(common.MODELS), help="comma-separated report models")
    ap.add_argument("--out", type=Path, default=common.DEFAULT_OUT,
                    help="folder for RESULTS.md, results.json, PNGs (default: benchmarks_out/; "
                         "`--out benchmarks` updates the committed results)")
    ap.add_argument("--data", default=None, help="data folder holding mnist/ (default, as in "
                                                  "tinynet.datasets: $TINYNET_DATA, else the user cache)")
    ap.add_argument("--keras-python", default=None,
                    help="a Python with TensorFlow/Keras 3 to measure Keras with (default: this one "
                         "when TensorFlow imports here)")
    ap.add_argument("--no-keras", action="store_true", help="do not measure Keras")
    ap.add_argument("--no-torch", action="store_true", help="do not measure PyTorch")
    ap.add_argument("--torch-threads", type=int, default=None,
                    help="torch.set_num_threads for PyTorch (default: PyTorch's own choice); when "
                         "given, PyTorch with its default threads is measured once more in the "
                         "first round, on fewer images")
    ap.add_argument("--load-seconds", type=float, default=None,
                    help="longest life of the busy loops of the loaded measurements "
                         "(default 480; 180 with --quick)")
    ap.add_argument("--loaded-model", default="cnn_digits",
                    help="the model trained for one epoch in each framework under the busy loops")
    ap.add_argument("--busy-loops", type=int, default=None,
                    help="busy-loop processes for the loaded measurement (default: one per usable CPU)")
    ap.add_argument("--no-cold-compile", action="store_true",
                    help="skip timing numba's compilation with an empty cache")
    ap.add_argument("--report-only", type=Path, default=None, metavar="RESULTS_JSON",
                    help="measure nothing: rewrite RESULTS.md and the charts from a results.json")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: kernels,loaded,epochs,"
                                               "variants,cold,memory,scaling,batch")
    return ap.parse_args(argv)


def _without_paths(argv):
    """The command line as recorded in results.json and RESULTS.md: the values of options that
    name a place on this machine (an interpreter, a data folder, an absolute output folder) are
    left out; a relative ``--out`` (``--out benchmarks``) is kept: it says what was updated."""
    out, hide = [], False
    for i, arg in enumerate(argv):
        if hide:
            out.append("...")
            hide = False
            continue
        name, eq, value = arg.partition("=")
        if name == "--out":
            value = value if eq else (argv[i + 1] if i + 1 < len(argv) else "")
            if not os.path.isabs(value):
                out.append(arg)
                continue
        if name in _PATH_OPTIONS or name == "--out":
            out.append(name + ("=..." if eq else ""))
            hide = not eq
        else:
            out.append(arg)
    return out


_PATH_OPTIONS = ("--keras-python", "--data", "--report-only")


def available_backends():
    """Backends that run here, with the reason for each one that does not."""
    out, why = [], {}
    code = ("import sys\nfrom tinynet import backend\ntry:\n    backend.set_backend(sys.argv[1])\n"
            "    print('OK')\nexcept Exception as e:\n    print('NO', e)\n")
    for name in ("numpy", "numba", "cupy"):
        done = subprocess.run([sys.executable, "-c", code, name], capture_output=True, text=True,
                              cwd=common.ROOT)
        line = (done.stdout.strip().splitlines() or ["NO " + done.stderr.strip()[-300:]])[-1]
        if line.startswith("OK"):
            out.append(name)
        else:
            why[name] = line[3:]
    return out, why


def imports(python, module):
    """None when ``module`` imports in ``python``, else the reason (the error's last line)."""
    try:
        done = subprocess.run([python, "-c", f"import {module}"], capture_output=True, text=True,
                              timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    if done.returncode == 0:
        return None
    return (done.stderr.strip().splitlines() or ["failed"])[-1]


def _onednn_on(python, asked):
    """Whether TensorFlow in ``python`` runs its oneDNN kernels, without ``TF_ENABLE_ONEDNN_OPTS``
    or (``asked``) with it set to 1: True/False, None when that cannot be read."""
    probe = "from benchmarks.worker import _onednn_on; print(_onednn_on())"  # the worker's answer
    env = {k: v for k, v in os.environ.items() if k != ONEDNN_VAR}
    env.update(ONEDNN_ON if asked else {}, TF_CPP_MIN_LOG_LEVEL="3")
    try:
        done = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=300,
                              env=env, cwd=common.ROOT)
    except (OSError, subprocess.TimeoutExpired):
        return None
    last = (done.stdout.strip().splitlines() or [""])[-1]
    return {"True": True, "False": False}.get(last)


def onednn_by_default(python):
    """Whether TensorFlow in ``python`` runs its oneDNN kernels without being asked: True, False
    when it runs them only when asked (then Keras is measured both ways), None when it cannot run
    them at all (a build without oneDNN) or that cannot be read."""
    default = _onednn_on(python, asked=False)
    if default is False and not _onednn_on(python, asked=True):
        return None
    return default


def run_worker(spec, env=None, timeout=1200, unset=(), python=None):
    """Run one measurement in a fresh process (with ``env`` added and the variables ``unset``
    removed); returns its result dict (or {"error": ...}), with the machine's conditions before
    and after it (``common.between``) under ``"conditions"``."""
    e = {k: v for k, v in os.environ.items() if k not in unset}
    e.update(env or {})
    e.setdefault("PYTHONPATH", "")
    e["PYTHONPATH"] = str(common.ROOT) + (os.pathsep + e["PYTHONPATH"] if e["PYTHONPATH"] else "")
    e.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    t = time.perf_counter()
    before = common.conditions()
    try:
        done = subprocess.run([python or sys.executable, "-m", "benchmarks.worker", json.dumps(spec)],
                              capture_output=True, text=True, env=e, cwd=common.ROOT,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s",
                "conditions": common.between(before, common.conditions())}
    cond = common.between(before, common.conditions())
    for line in done.stdout.splitlines()[::-1]:
        if line.startswith("RESULT "):
            res = json.loads(line[7:])
            res["process_s"] = time.perf_counter() - t
            res["conditions"] = cond
            return res
    return {"error": common.scrub(done.stderr or done.stdout)[-2000:], "conditions": cond}


# ---------------------------------------------------------------------------------------------
def plan(quick, series, model):
    """Images per timed epoch: all 60,000, except the NumPy backend's CNNs, which are slow (a
    minute per epoch: trained on fewer images and scaled), and everything with --quick."""
    cnn = model.startswith("cnn")
    if series == "torch_default":  # measured once, to show what PyTorch's default threads do here
        return 6400 if cnn else 20000
    if series == "numpy" and cnn:
        return 2560 if quick else 6400
    if quick:
        return 6400 if cnn else 20000
    return common.TRAIN_SIZE


def rotated(items, r):
    """``items`` rotated left by ``r``: round r of the interleaving starts with a different one."""
    if not items:
        return []
    r %= len(items)
    return list(items[r:]) + list(items[:r])


PARTIAL = "results.partial.json"


def checkpoint(args, results):
    """Write what has been measured so far to ``--out``/results.partial.json (removed at the end of
    a complete run): if a run must be stopped, ``--report-only`` on it writes the report of the
    parts that were measured."""
    if not getattr(args, "_t_start", None):
        return
    partial = dict(results, total_s=time.perf_counter() - args._t_start)
    partial["machine"] = dict(results["machine"],
                              load_average_after=[round(v, 2) for v in os.getloadavg()],
                              cpu_times_after=common.cpu_times())
    partial["partial"] = True
    (args.out / PARTIAL).write_text(json.dumps(partial, indent=1, sort_keys=True) + "\n")


def measure_epochs(args, models, backends, frameworks, keras_python, results):
    """The interleaved rounds: results["epochs"][model][series] = one entry per round."""
    epochs = args.epochs or 1
    results["epochs"] = {m: {} for m in models}
    results["order"] = []
    for r in range(args.rounds):
        order = rotated(frameworks, r)
        results["order"].append(order)
        checkpoint(args, results)
        for m in models:
            position = 0
            for fw in order:
                if fw == "tinynet":  # the NumPy backend, far slower, only in the first round
                    series = [b for b in backends if b != "numpy" or r == 0]
                elif fw == "torch" and args.torch_threads and r == 0:
                    series = ["torch", "torch_default"]
                elif fw == "keras" and results.get("keras_onednn_default") is False:
                    series = ["keras", "keras_onednn"]  # as installed, then with oneDNN on
                else:
                    series = [fw]
                for s in series:
                    n = plan(args.quick, s, m)
                    spec = {"model": m, "n": n, "repeats": epochs, "data": args.data}
                    python, env = None, ONEDNN_ON if s == "keras_onednn" else None
                    unset = [ONEDNN_VAR] if s == "keras" else []  # as installed
                    if fw == "tinynet":
                        spec.update(task="epochs", backend=s)
                    elif fw == "keras":
                        spec.update(task="keras_epochs")
                        python = keras_python
                    else:
                        spec.update(task="torch_epochs",
                                    threads=args.torch_threads if s == "torch" else None,
                                    inference=s == "torch")
                    common.log(f"round {r + 1}/{args.rounds}: {m} on {SERIES_NAMES[s]} "
                               f"({n} images, {epochs} timed epoch(s)) ...")
                    res = run_worker(spec, env=env, unset=unset, python=python)
                    res.update(round=r + 1, position=position)
                    position += 1
                    results["epochs"][m].setdefault(s, []).append(res)
                    fig = per_epoch(res)
                    common.log(f"    {fig:.2f} s/epoch" if fig else f"    failed: {res.get('error', '')[-300:]}")


def _fair_share(results):
    """The report's sentence on the share of a CPU a process gets beside the busy loops: with L
    loops on C CPUs, each of a process's t threads is one of L + t runnable threads on C CPUs and
    gets C / (L + t) of one (at most all of it)."""
    cpus = (results.get("machine") or {}).get("usable_cpus")
    loops = ((results.get("kernels") or {}).get("loaded") or {}).get("busy_loops")
    threads = (results.get("machine") or {}).get("numba_threads")
    if not (cpus and loops and threads):
        return ""
    shares = [(t, min(1.0, cpus / (loops + t))) for t in sorted({threads, 1}, reverse=True)]
    said = ", ".join(f"{100 * share:.0f}% of its quiet speed on {t} thread{'s' * (t > 1)}"
                     if i == 0 else f"{100 * share:.0f}% on {t}" for i, (t, share) in enumerate(shares))
    return (f"Beside {loops} busy loop(s) on {cpus} CPU(s), each of a process's t threads is one "
            f"of {loops} + t runnable threads sharing the {cpus} CPUs and gets {cpus}/({loops} + t) "
            f"of one: at its fair share a kernel keeps {said}. ")


def merged_rounds(results):
    """One result from the same worker's results of several rounds: the first successful round's,
    each row's ``ms`` the median of the successful rounds' (GFLOP/s from it; every round's kept
    in ``rounds_ms`` and ``rounds_gflops``, the rounds' numbers in ``kept_rounds``), the
    conditions from the first round's start to the last one's end."""
    kept = [i for i, r in enumerate(results) if "error" not in r]
    ok = [results[i] for i in kept]
    if not ok:
        return results[-1]
    out = dict(ok[0], interleaved_rounds=len(ok), kept_rounds=kept, rows=[])
    if len({len(r["rows"]) for r in ok}) != 1:
        raise ValueError("merged_rounds: the rounds measured different numbers of rows")
    for rows in zip(*(r["rows"] for r in ok)):
        if len({(r["kernel"], r["shape"]) for r in rows}) != 1:
            raise ValueError(f"merged_rounds: the rounds measured different rows: {rows}")
        row = {k: v for k, v in rows[0].items() if k not in ("rounds_ms", "ms", "gflops")}
        row["rounds_ms"] = [r["ms"] for r in rows]
        row["ms"] = common.median(row["rounds_ms"])
        if rows[0].get("gflops"):
            row["rounds_gflops"] = [r["gflops"] for r in rows]
            row["gflops"] = rows[0]["gflops"] * rows[0]["ms"] / row["ms"]
        out["rows"].append(row)
    first, last = ok[0].get("conditions") or {}, ok[-1].get("conditions") or {}
    steal = [r["conditions"]["steal_pct"] for r in ok if "steal_pct" in (r.get("conditions") or {})]
    out["conditions"] = dict(first, load_after=last.get("load_after"),
                             seconds=sum((r.get("conditions") or {}).get("seconds", 0) for r in ok),
                             **({"steal_pct": round(sum(steal) / len(steal), 2)} if steal else {}))
    return out


def interleaved_kernels(repeats, rounds, statistic="median"):
    """The numba kernels on numba's threads and on one, NumPy's sgemm with its default BLAS
    threads and with one, each in a process of its own (numba and BLAS keep the thread count they
    start with), one after the other, round after round (the order rotated): a slow spell of the
    shared machine falls on all four alike. ``{"numba": .., "numba_1thread": .., "sgemm": ..,
    "sgemm_1thread": ..}``, each merged over the rounds; each round's figure the median call or,
    with ``statistic="mean"``, the mean (worker._call_ms)."""
    common_spec = {"repeats": repeats, "statistic": statistic}
    kernels = dict(common_spec, task="kernels", backend="numba", rounds=1)
    workers = {"numba": (kernels, None), "numba_1thread": (kernels, ONE_NUMBA_THREAD),
               "sgemm": (dict(common_spec, task="sgemm"), None),
               "sgemm_1thread": (dict(common_spec, task="sgemm"), ONE_THREAD)}
    done = {key: [] for key in workers}
    for r in range(rounds):
        for key in rotated(list(workers), r):
            spec, env = workers[key]
            done[key].append(run_worker(spec, env=env))
    return {key: merged_rounds(res) for key, res in done.items()}


def measure_kernels(args, backends, results, frameworks=(), keras_python=None, models=()):
    """Kernel timings and sgemm, quiet, then with one busy loop per CPU; while the loops run,
    one epoch of one model in each framework too (``results["loaded_epochs"]``)."""
    repeats = 5 if args.quick else 9
    rounds = 3 if args.quick else 5
    kern = results["kernels"] = {"quiet": {}}
    for b in [b for b in ("numpy", "cupy") if b in backends]:
        common.log(f"kernels on {b} ...")
        kern["quiet"][b] = run_worker({"task": "kernels", "backend": b, "repeats": repeats})
    if "numba" in backends:
        common.log(f"numba kernels and numpy float32 matmul (sgemm), interleaved, {rounds} rounds ...")
        kern["quiet"].update(interleaved_kernels(repeats, rounds))
    else:
        common.log("numpy float32 matmul (sgemm) ...")
        kern["quiet"]["sgemm"] = run_worker({"task": "sgemm", "repeats": repeats})
        kern["quiet"]["sgemm_1thread"] = run_worker({"task": "sgemm", "repeats": repeats},
                                                    env=ONE_THREAD)
    if "loaded" in args.skip_set or "numba" not in backends:
        return
    count = args.busy_loops or common.machine().get("usable_cpus") or os.cpu_count() or 1
    seconds = args.load_seconds or (180 if args.quick else 480)
    common.log(f"kernels and sgemm again with {count} busy loop(s) (at most {seconds:.0f} s) ...")
    loops = common.start_busy_loops(count, seconds)
    try:
        time.sleep(2.0)  # let the loops reach the CPUs
        loaded = interleaved_kernels(repeats, rounds, statistic="mean")
        m = args.loaded_model if args.loaded_model in models else (models[0] if models else None)
        if m and "epochs" not in args.skip_set:
            results["loaded_epochs"] = {"model": m, "busy_loops": count, "epochs": {}}
            both = results.get("keras_onednn_default") is False
            for s in [{"tinynet": "numba"}.get(fw, fw) for fw in frameworks] + ["keras_onednn"] * (
                    both and "keras" in frameworks):
                spec = {"model": m, "n": plan(args.quick, s, m), "repeats": 1, "data": args.data,
                        "inference": False}
                if s == "numba":
                    spec.update(task="epochs", backend="numba")
                elif s.startswith("keras"):
                    spec.update(task="keras_epochs")
                else:
                    spec.update(task="torch_epochs", threads=args.torch_threads)
                common.log(f"under load: {m} on {SERIES_NAMES[s]} ...")
                res = run_worker(spec, env=ONEDNN_ON if s == "keras_onednn" else None,
                                 unset=[ONEDNN_VAR] if s == "keras" else (),
                                 python=keras_python if s.startswith("keras") else None)
                results["loaded_epochs"]["epochs"][s] = res
                common.log(f"    {fmt(per_epoch(res))} s/epoch")
    finally:
        still_running = common.stop_busy_loops(loops)
    loaded.update(busy_loops=count, load_seconds=seconds, held_throughout=still_running == count)
    if "loaded_epochs" in results:
        results["loaded_epochs"]["held_throughout"] = still_running == count
    kern["loaded"] = loaded


def measure(args):
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.skip_set = skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    avail, why = available_backends()
    backends = avail if args.backends is None else [
        b.strip() for b in args.backends.split(",") if b.strip()]
    for b in list(backends):
        if b not in avail:
            common.log(f"backend {b} does not run here: {why.get(b)}")
            backends.remove(b)
    backends = [b for b in ("numba", "numpy", "cupy") if b in backends]  # numba first: the figure
    not_measured = {}
    keras_python = args.keras_python or sys.executable
    if args.no_keras:
        not_measured["keras"] = "--no-keras"
    else:
        reason = imports(keras_python, "keras, tensorflow")
        if reason:
            not_measured["keras"] = (f"TensorFlow/Keras does not import ({reason}): install the "
                                     "keras extra, `pip install -e \".[keras]\"`, or pass --keras-python")
    if args.no_torch:
        not_measured["torch"] = "--no-torch"
    else:
        reason = imports(sys.executable, "torch")
        if reason:
            not_measured["torch"] = (f"PyTorch does not import ({reason}): install the torch extra, "
                                     "`pip install -e \".[torch]\"`")
    frameworks = ["tinynet"] + [f for f in ("keras", "torch") if f not in not_measured]
    # Keras is measured as installed and, where TensorFlow leaves oneDNN off, with it on as well
    onednn = onednn_by_default(keras_python) if "keras" in frameworks else None
    results = {"format": 2, "started": datetime.datetime.now().isoformat(timespec="seconds"),
               "command": "python -m benchmarks " + " ".join(_without_paths(sys.argv[1:])),
               "quick": args.quick, "rounds": args.rounds, "machine": common.machine(),
               "backends": backends, "unavailable": why, "models": models,
               "frameworks": frameworks, "not_measured": not_measured,
               "torch_threads": args.torch_threads, "commit": common.commit(),
               "keras_onednn_default": onednn}
    results["machine"]["load_average_before"] = results["machine"].pop("load_average")
    results["machine"]["cpu_times_before"] = common.cpu_times()
    t_start = args._t_start = time.perf_counter()

    if "kernels" not in skip:
        measure_kernels(args, backends, results, frameworks, keras_python, models)
        checkpoint(args, results)
    if "epochs" not in skip:
        measure_epochs(args, models, backends, frameworks, keras_python, results)
    checkpoint(args, results)

    # the numba epochs under other BLAS settings: without this environment's OpenBLAS tuning
    # variables, and with one BLAS thread (OpenBLAS's threads spin while they wait for work)
    blas_vars = [k for k in os.environ if k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")]
    variants = []
    if blas_vars:
        variants.append({"label": "without " + " and ".join(f"`{v}`" for v in blas_vars), "env": {},
                         "unset": blas_vars, "models": [m for m in models if m.startswith("mlp")]})
    if "OPENBLAS_NUM_THREADS" not in os.environ:
        variants.append({"label": "with `OPENBLAS_NUM_THREADS=1`", "env": {"OPENBLAS_NUM_THREADS": "1"},
                         "unset": [], "models": list(models)})
    if not args.quick and "epochs" not in skip and "variants" not in skip and "numba" in backends:
        results["variants"] = []
        for v in variants:
            v = dict(v, epochs={m: {} for m in v["models"]})
            for m in v["models"]:
                common.log(f"epochs {v['label']}: {m} on numba ...")
                v["epochs"][m]["numba"] = run_worker(
                    {"task": "epochs", "backend": "numba", "model": m, "n": plan(False, "numba", m),
                     "repeats": 1, "inference": False, "data": args.data},
                    env=v["env"], unset=v["unset"])
            results["variants"].append(v)

    checkpoint(args, results)
    # the first run after installation: numba compiling with an empty cache --------------------
    if "numba" in backends and not args.no_cold_compile and "cold" not in skip:
        results["cold_compile"] = {}
        for m in [m for m in ("cnn_fashion_3",) if m in models] or models[-1:]:
            with tempfile.TemporaryDirectory() as cache:
                common.log(f"numba compile with an empty cache: {m} ...")
                results["cold_compile"][m] = run_worker(
                    {"task": "epochs", "backend": "numba", "model": m, "n": 1280, "repeats": 1,
                     "inference": False, "data": args.data}, env={"NUMBA_CACHE_DIR": cache})

    # memory on all of MNIST ------------------------------------------------------------------
    checkpoint(args, results)
    if "memory" not in skip:
        results["memory"] = {m: {} for m in models}
        mem_models = models if not args.quick else [m for m in models if m == "cnn_digits"] or models[:1]
        for m in mem_models:
            for b in backends:
                common.log(f"memory: {m} on {b} ...")
                results["memory"][m][b] = run_worker({"task": "memory", "backend": b, "model": m,
                                                      "batches": 20 if args.quick else 40,
                                                      "data": args.data})

    # scaling ---------------------------------------------------------------------------------
    checkpoint(args, results)
    fast = [b for b in backends if b != "numpy"] or backends
    scale_model = "cnn_digits" if "cnn_digits" in models else models[0]
    if "scaling" not in skip:
        sizes = [5000, 10000, 20000] if args.quick else [5000, 10000, 20000, 40000, 60000]
        results["scaling"] = {"model": scale_model, "points": {}}
        for b in fast:
            common.log(f"scaling on {b} ...")
            results["scaling"]["points"][b] = run_worker(
                {"task": "scaling", "backend": b, "model": scale_model, "sizes": sizes, "data": args.data})
    if "batch" not in skip:
        results["batch_sweep"] = {"model": scale_model, "points": {}}
        for b in fast:
            common.log(f"batch-size sweep on {b} ...")
            results["batch_sweep"]["points"][b] = run_worker(
                {"task": "batch_sweep", "backend": b, "model": scale_model,
                 "n": 6144 if args.quick else 12288,
                 "batch_sizes": [32, 64, 128, 256, 512, 1024], "data": args.data})

    results["machine"]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    results["machine"]["cpu_times_after"] = common.cpu_times()
    results["total_s"] = time.perf_counter() - t_start
    return results


# ---------------------------------------------------------------------------------------------
def per_epoch(entry):
    """Seconds per 60,000-image epoch of one measurement (the median of its timed epochs, scaled
    when it trained on fewer images), or None when it failed."""
    if not entry or "error" in entry or not entry.get("epoch_s"):
        return None
    return common.median(entry["epoch_s"]) * common.TRAIN_SIZE / entry["n"]


def series_of(results):
    """The epoch series of this run in the order of the tables: tinynet's backends, Keras, PyTorch."""
    present = {s for per in (results.get("epochs") or {}).values() for s in per}
    return [s for s in list(results.get("backends", [])) + OTHER_SERIES
            if s in present]


def fastest_keras(epoch_s):
    """The faster of Keras's measured configurations (as installed, oneDNN on): seconds per
    epoch, or None. Issue 13's Keras target is judged against it."""
    times = [epoch_s.get(s) for s in ("keras", "keras_onednn") if epoch_s.get(s)]
    return min(times) if times else None


def _spread(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    out = {"median": common.median(values), "min": values[0], "max": values[-1], "n": len(values)}
    if len(values) >= 4:
        q = __import__("statistics").quantiles(values, n=4)
        out["q1"], out["q3"] = q[0], q[2]
    return out


def summarise(results):
    """Medians over the rounds, spreads, and the ratios, added to ``results["summary"]``: for each
    model ``epoch_s[series]`` (the median over rounds of each round's figure), ``spread[series]``
    (min, max, and the quartiles from 4 rounds on), ``numba_over_keras`` / ``numba_over_torch``
    (ratio of the medians) with ``..._by_round`` (the same ratio within each round), and
    ``numba_speedup_over_numpy``."""
    summary = {}
    for m, per_series in (results.get("epochs") or {}).items():
        row = {"epoch_s": {}, "spread": {}}
        by_round = {}
        for s, entries in per_series.items():
            figures = [per_epoch(e) for e in entries]
            by_round[s] = {e.get("round"): f for e, f in zip(entries, figures) if f is not None}
            sp = _spread(figures)
            row["epoch_s"][s] = sp and sp["median"]
            if sp:
                row["spread"][s] = sp
        s = row["epoch_s"]
        if s.get("numpy") and s.get("numba"):
            row["numba_speedup_over_numpy"] = s["numpy"] / s["numba"]
        for other in ("keras", "keras_onednn", "torch"):
            if s.get("numba") and s.get(other):
                row[f"numba_over_{other}"] = s["numba"] / s[other]
                paired = [by_round["numba"][r] / by_round[other][r]
                          for r in by_round["numba"] if r in by_round.get(other, {})]
                row[f"numba_over_{other}_by_round"] = paired
        first = [e for e in per_series.get("numba", []) if "error" not in e and e.get("first_steps_s")]
        if first:
            row["numba_first_step_overhead_s"] = common.median(
                [first_steps_excess(e["first_steps_s"]) for e in first])
            row["numba_import_s"] = common.median([e["import_s"] for e in first])
        summary[m] = row
    results["summary"] = summary
    results["kernel_summary"] = kernel_summary(results)
    return summary


def first_steps_excess(steps):
    """How much longer than the last of ``steps`` (a process's first training steps, seconds;
    the last an ordinary one) the others took together: the kernels' loading, or their
    compilation, which a later step can continue (the residual CNN's second step compiles the
    dense backward that its first step, from the winners, did not need)."""
    return sum(s - steps[-1] for s in steps[:-1])


def _gflops(rows, kernel, shape):
    for r in rows or []:
        if r["kernel"] == kernel and r["shape"] == shape:
            return r.get("gflops")
    return None


def kernel_table(kern):
    """Per convolution shape: the numba kernels' GFLOP/s (on numba's threads, and on one where
    measured) and sgemm's at the same im2col shape and at a square shape of the same work, from
    one condition's measurements (``{"numba": .., "numba_1thread": .., "sgemm": ..,
    "sgemm_1thread": ..}``)."""
    from .worker import CONV_SHAPES
    numba = (kern.get("numba") or {}).get("rows")
    numba_one = (kern.get("numba_1thread") or {}).get("rows")
    sgemm = (kern.get("sgemm") or {}).get("rows")
    one = (kern.get("sgemm_1thread") or {}).get("rows")
    if not numba or not sgemm:
        return []
    table = []
    for name, *_ in CONV_SHAPES:
        table.append({"shape": name,
                      "forward": _gflops(numba, "conv forward (+relu)", name),
                      "backward": _gflops(numba, "conv backward (dx, dw, db)", name),
                      "forward_1thread": (_gflops(numba_one, "conv forward (+relu)", name)
                                          if numba_one else None),
                      "backward_1thread": (_gflops(numba_one, "conv backward (dx, dw, db)", name)
                                           if numba_one else None),
                      "sgemm_im2col": _gflops(sgemm, "numpy float32 matmul", f"{name} im2col"),
                      "sgemm_square": _sgemm_square_for(sgemm, name),
                      "sgemm_square_1thread": _sgemm_square_for(one, name) if one else None})
    return table


def _sgemm_square_for(rows, conv_name):
    """sgemm's GFLOP/s on the square product of the same work as ``conv_name``'s forward pass."""
    from .worker import sgemm_shapes
    shapes = sgemm_shapes()
    m, k, n = next((m, k, n) for nm, m, k, n in shapes if nm == f"{conv_name} im2col")
    side = max(16, int(round((m * k * n) ** (1 / 3))))
    for r in rows:
        if r["shape"].startswith(f"square {side} "):
            return r.get("gflops")
    return None


def _faster(row, kernel):
    """A kernel's GFLOP/s in a row of :func:`kernel_table`: the faster of its two runs (numba's
    threads, one thread), as for sgemm."""
    return max(row[kernel], row.get(f"{kernel}_1thread") or 0)


def _worst_ratio(table):
    """The largest ratio, over the shapes of ``table`` (:func:`kernel_table`), of the faster of
    NumPy's two sgemm runs of the same work (its default threads, one thread) to the slower of
    the forward and backward kernels, each the faster of its own two runs (None without
    figures)."""
    return max((max(row["sgemm_square"], row.get("sgemm_square_1thread") or 0)
                / min(_faster(row, "forward"), _faster(row, "backward"))
                for row in table if row["sgemm_square"] and row["forward"] and row["backward"]),
               default=None)


def _each_round(cond):
    """One condition's measurements (``{"numba": .., "sgemm": .., ...}``, merged over interleaved
    rounds by :func:`merged_rounds`) split back into the rounds in which every one of them was
    measured: round ``i`` of each worker beside round ``i`` of the others. Empty where they were
    not interleaved."""
    parts = {key: cond.get(key) for key in ("numba", "numba_1thread", "sgemm", "sgemm_1thread")
             if (cond.get(key) or {}).get("rows")}
    if "numba" not in parts or "sgemm" not in parts \
            or any(part.get("kept_rounds") is None for part in parts.values()):
        return []
    common_rounds = sorted(set.intersection(*(set(p["kept_rounds"]) for p in parts.values())))
    return [{key: {"rows": [dict(row, gflops=row["rounds_gflops"][part["kept_rounds"].index(i)])
                            for row in part["rows"] if row.get("gflops")]}
             for key, part in parts.items()}
            for i in common_rounds]


def kernel_summary(results):
    """Medians over the convolution shapes of the kernels' and sgemm's GFLOP/s in each condition,
    how many times slower than sgemm the kernels are, and what each keeps of its quiet speed."""
    kern = results.get("kernels") or {}
    out = {}
    for cond in ("quiet", "loaded"):
        table = kernel_table(kern.get(cond) or {})
        if not table:
            continue
        med = {}
        for col in ("forward", "backward", "sgemm_im2col", "sgemm_square", "forward_1thread",
                    "backward_1thread"):
            vals = [row[col] for row in table if row[col]]
            med[col] = common.median(vals) if vals else None
        sg = (kern[cond].get("sgemm") or {}).get("rows") or []
        med["sgemm_1024"] = _gflops(sg, "numpy float32 matmul", "square 1024")
        one = (kern[cond].get("sgemm_1thread") or {}).get("rows") or []
        if one:
            vals = [row["sgemm_square_1thread"] for row in table if row["sgemm_square_1thread"]]
            med["sgemm_square_1thread"] = common.median(vals) if vals else None
            med["sgemm_1024_1thread"] = _gflops(one, "numpy float32 matmul", "square 1024")
        worst = _worst_ratio(table)
        med["worst_sgemm_over_kernel"] = worst
        by_round = [_worst_ratio(kernel_table(one)) for one in _each_round(kern[cond])]
        if by_round and None not in by_round:
            med["worst_by_round"] = by_round
        med["within_target"] = worst is not None and worst <= KERNEL_TARGET
        med["table"] = table
        out[cond] = med
    if "quiet" in out and "loaded" in out:
        for col in ("forward", "backward", "forward_1thread", "backward_1thread", "sgemm_im2col",
                    "sgemm_square", "sgemm_1024", "sgemm_square_1thread"):
            q, l = out["quiet"].get(col), out["loaded"].get(col)
            if q and l:
                out.setdefault("kept_under_load", {})[col] = l / q
    return out


def fmt(v, digits=2, unit=""):
    if v is None:
        return "–"
    return f"{v:.{digits}f}{unit}"


def _round_range(k):
    """`` (each round alone, its own worst shape: a–b, over n rounds)``: the range of the worst
    ratio over the interleaved rounds (empty without it). It can lie above the ratio of the
    medians: each round's worst shape carries that round's noise, which the medians smooth."""
    by_round = k.get("worst_by_round")
    if not by_round:
        return ""
    return (f" (each round alone, its own worst shape: {min(by_round):.1f}x–{max(by_round):.1f}x, over "
            f"{len(by_round)} round{'s' if len(by_round) > 1 else ''})")


def fmt_load(cond):
    if not cond or not cond.get("load_before"):
        return "–"
    b, a = cond["load_before"][0], (cond.get("load_after") or [None])[0]
    return f"{b:.2f} → {a:.2f}" if a is not None else f"{b:.2f}"


# RESULTS.md keeps, below this line, what was measured elsewhere (the GPU machine) and written by
# hand: a new run rewrites everything above it and carries the rest over unchanged.
KEPT_MARKER = "<!-- Kept by `python -m benchmarks`: measured on other machines, see each section. -->"


def kept_sections(path):
    """The hand-written tail of an existing RESULTS.md (from KEPT_MARKER on), or ``[]``."""
    if not path.exists():
        return []
    text = path.read_text()
    return text[text.index(KEPT_MARKER):].splitlines() if KEPT_MARKER in text else []


def in_run_order(obj, groups):
    """results.json is written with sorted keys: put each dict keyed only by model names (or
    only by backend names) back in the order they were measured in, so that --report-only
    writes the same RESULTS.md as the run did. ``groups``: the lists of names."""
    if isinstance(obj, list):
        return [in_run_order(v, groups) for v in obj]
    if not isinstance(obj, dict):
        return obj
    keys = list(obj)
    for names in groups:
        if keys and set(keys) <= set(names):
            keys = [k for k in names if k in obj]
    return {k: in_run_order(obj[k], groups) for k in keys}


def load_results(path):
    """A results.json, with its models and backends in the order of the run."""
    results = json.loads(Path(path).read_text())
    return in_run_order(results, [results["models"],
                                  list(results["backends"]) + OTHER_SERIES])


def _cond_line(entry):
    c = entry.get("conditions") or {}
    steal = f"{c['steal_pct']:.1f}" if c.get("steal_pct") is not None else "–"
    busy = f"{c['busy_pct']:.0f}" if c.get("busy_pct") is not None else "–"
    return fmt_load(c), steal, busy


KERAS_TARGET, TORCH_TARGET = 0.5, 1.0  # issue 13: numba at most 0.5x Keras, at most 1.0x PyTorch
TORCH_TARGET_MODELS = ("mlp_raw", "cnn_digits")  # "on the MLP and the CNN"


def targets(results, summary):
    """The issue's targets, each with this run's figure and whether it holds."""
    def verdict(ok):
        return "met" if ok else "**not met**"

    out = []
    for m, row in summary.items():
        r, r_onednn = row.get("numba_over_keras"), row.get("numba_over_keras_onednn")
        if r is not None and r_onednn is not None:  # against the faster Keras: the larger ratio
            out.append(f"- {m}: numba / Keras {r:.2f}x as installed, {r_onednn:.2f}x with oneDNN "
                       f"on (target at most {KERAS_TARGET}x against the faster: "
                       f"{verdict(max(r, r_onednn) <= KERAS_TARGET)})")
        elif r is not None or r_onednn is not None:
            r, which = (r, "Keras") if r is not None else (r_onednn, "Keras with oneDNN on")
            out.append(f"- {m}: numba / {which} {r:.2f}x (target at most {KERAS_TARGET}x: "
                       f"{verdict(r <= KERAS_TARGET)})")
        r = row.get("numba_over_torch")
        if r is not None and m in TORCH_TARGET_MODELS:
            out.append(f"- {m}: numba / PyTorch {r:.2f}x (target at most {TORCH_TARGET}x: "
                       f"{verdict(r <= TORCH_TARGET)})")
    for cond, k in (results.get("kernel_summary") or {}).items():
        if cond in ("quiet", "loaded") and k.get("worst_sgemm_over_kernel") is not None:
            out.append(f"- convolution kernels, {cond}: on the worst shape, sgemm of the same work "
                       f"runs at {k['worst_sgemm_over_kernel']:.1f}x the slower kernel's GFLOP/s"
                       + (" (each kernel the faster of its runs on numba's threads and on one)"
                          if k.get("forward_1thread") else "")
                       + f"{_round_range(k)} (target within "
                       f"{KERNEL_TARGET:.0f}x: {verdict(k['within_target'])})")
    for m, per in (results.get("memory") or {}).items():
        e = per.get("numba") or {}
        if m.startswith("cnn") and "max_rss_mb" in e:
            out.append(f"- peak memory training {m} on all of MNIST (numba): {e['max_rss_mb']:.0f} MB "
                       f"(target under {MEMORY_TARGET_MB} MB: {verdict(e['max_rss_mb'] < MEMORY_TARGET_MB)})")
    if not out:
        return []
    return ["## Issue 13's targets in this run", "",
            "Ratios of the medians over the interleaved rounds (details below)."] + [""] + out + [""]


def _best_sgemm(quiet, key):
    """The highest GFLOP/s of NumPy's sgemm over the shapes of one quiet sgemm measurement."""
    return max([r.get("gflops") or 0 for r in (quiet.get(key) or {}).get("rows") or []], default=0)


def arithmetic_section(results, summary):
    """What the epoch times mean in arithmetic: each framework's training epoch as GFLOP/s of the
    model's dense work (:func:`common.training_flops`), against the best GFLOP/s NumPy's sgemm
    reached on this machine in the same run (quiet, over all its shapes); and what tinynet's
    target (at most 0.5x Keras) asks of it."""
    quiet = (results.get("kernels") or {}).get("quiet") or {}
    best, best_one = _best_sgemm(quiet, "sgemm"), _best_sgemm(quiet, "sgemm_1thread")
    threads = results.get("torch_threads")
    rows = []
    for m, row in summary.items():
        epoch = row["epoch_s"]
        if not (best and epoch.get("numba") and fastest_keras(epoch)):
            continue
        flops = common.training_flops(m)
        work = flops["total"] * common.TRAIN_SIZE / 1e9  # GFLOP an epoch
        rows.append((m, work, flops["grid"] / flops["total"], KERAS_TARGET * fastest_keras(epoch),
                     {s: work / epoch[s] for s in ("numba", "keras", "keras_onednn", "torch")
                      if epoch.get(s)}))
    if not rows:
        return []
    # PyTorch on one thread is compared with one-thread sgemm (when measured)
    torch_best = best_one if threads == 1 and best_one else best

    def cell(rate, against):
        return "–" if rate is None else f"{rate:.0f} GFLOP/s ({rate / against:.0%})"

    one = f"PyTorch ({threads} thread{'s' if threads != 1 else ''})" if threads else "PyTorch"
    onednn = any("keras_onednn" in rate for *_, rate in rows)
    head = (["model", "GFLOP an epoch", "epoch at sgemm's best", "tinynet numba", "Keras"]
            + [SERIES_NAMES["keras_onednn"]] * onednn
            + [one, f"{KERAS_TARGET}x Keras needs", "tinynet's work", "the same on tinynet's work"])
    lines = ["## The epochs as arithmetic: how close each framework runs to the machine's speed", "",
             "A training epoch's dense work (the multiply-adds of every Conv2D and Dense layer: "
             "forward, dL/dW, and dL/dx of each layer but the first, which none of the three "
             "frameworks computes; `benchmarks/common.py: training_flops`) divided by the median "
             "epoch time above, as GFLOP/s and, in brackets, as a share of the best GFLOP/s "
             f"NumPy's float32 matrix product (sgemm) reached in this run's quiet measurements "
             f"({best:.0f} GFLOP/s"
             + (f"; PyTorch on one thread against sgemm's best on one, {best_one:.0f}" if
                torch_best is not best else "") + "). "
             "*Epoch at sgemm's best* is that work at that speed: a reference point for programs "
             "that compute every one of these multiply-adds, as Keras and PyTorch do, not a bound "
             "for every algorithm (Winograd's convolutions multiply less, and so does tinynet: "
             "below). *0.5x Keras needs*: the target's epoch "
             "(half the faster Keras's where two were measured), the whole step (layers, pooling, "
             "loss, optimizer and Python) at that share of sgemm's best. *tinynet's work*: the "
             "multiply-adds tinynet's numba kernels really do, relative to the dense work (its "
             "stride-1 convolutions also compute the padding positions of their flat grids; the "
             "backward pass of a convolution read by a max pooling computes the windows' winners "
             "only, one position in four, fewer where the ReLU is off, not counted: see "
             "tinynet/kernels/numba_cpu.py), and what the target then asks of them.", "",
             "| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for m, work, grid, target, rate in rows:
        need = work / target
        keras = [cell(rate.get("keras"), best)] + [cell(rate.get("keras_onednn"), best)] * onednn
        lines.append(f"| {m} | {work:.1f} | {work / best:.2f} s | {cell(rate.get('numba'), best)} | "
                     + " | ".join(keras) + f" | {cell(rate.get('torch'), torch_best)} | "
                     f"{cell(need, best)} | {grid:.2f}x | {cell(need * grid, best)} |")
    return lines + [""]


def write_report(results, out):
    summary = summarise(results)
    mach = results["machine"]
    backends = results["backends"]
    series = series_of(results)
    lines = [
        "# tinynet benchmarks",
        "",
        f"Generated by `{results['command']}` on {results['started']} in {results['total_s'] / 60:.1f} min"
        + (f" from tinynet commit {results['commit']}" if results.get("commit") else "")
        + (" (**--quick**: fewer images and epochs; not for comparison)" if results["quick"] else "")
        + (". **Partial**: the run was stopped; only the parts below were measured" if results.get("partial") else "")
        + ".",
        "",
        "## Machine",
        "",
        f"- CPU: {mach['cpu']}" + (f" ({mach['simd']})" if mach.get("simd") else "")
        + f", {mach['logical_cpus']} logical CPUs ({mach.get('usable_cpus')} usable); "
        f"{mach['platform']}",
        f"- Python {mach['python']}, NumPy {mach['numpy']} (BLAS: {mach['blas']}), numba {mach.get('numba')} "
        f"({mach.get('numba_threads')} threads)",
        "- Environment: " + (", ".join(f"`{k}={v}`" for k, v in mach["env"].items()) or "none of note"),
        f"- Load average (1, 5, 15 min) before the run: {mach['load_average_before']}, after: "
        f"{mach.get('load_average_after')}. The machine is shared: a load above the number of CPUs "
        "means other jobs ran at the same time and slowed the measurements; each figure below "
        "gives the load before and after it and the share of CPU time stolen by the hypervisor "
        "(`steal` in /proc/stat) while it ran.",
        f"- tinynet backends measured: {', '.join(backends)}"
        + "".join(f"; {b} not measured: {why}" for b, why in results.get("unavailable", {}).items()),
        "",
    ]
    for fw, why in (results.get("not_measured") or {}).items():
        lines.insert(-1, f"- {FRAMEWORK_NAMES[fw]} not measured: {why}")
    versions = {}
    for per in (results.get("epochs") or {}).values():
        for s in ("keras", "torch"):
            for e in per.get(s, []):
                versions.setdefault(s, e.get("versions"))
                if s == "torch" and e.get("threads"):
                    versions["torch_threads"] = e["threads"]
            for e in per.get("torch_default", []):
                if e.get("threads"):
                    versions["torch_default_threads"] = e["threads"]
    if versions.get("keras"):
        default = results.get("keras_onednn_default")
        lines.insert(-1, f"- Keras {versions['keras'].get('keras')} on TensorFlow "
                         f"{versions['keras'].get('tensorflow')} (CPU"
                         + {True: ", oneDNN on by default here", False: ", oneDNN off by default "
                            "here"}.get(default, "") + ")")
    if versions.get("torch"):
        lines.insert(-1, f"- PyTorch {versions['torch'].get('torch')} "
                         f"({versions.get('torch_threads')} thread(s)"
                         + (", set by --torch-threads" if results.get("torch_threads") else
                            ", its default") + ")")
    lines += targets(results, summary)
    # epochs ------------------------------------------------------------------------------------
    if results.get("epochs"):
        has = {s: s in series for s in ("keras", "keras_onednn", "torch")}
        head = ["model"] + [SERIES_NAMES[s] for s in series]
        if has["keras"]:
            head.append("numba / Keras")
        if has["keras_onednn"]:
            head.append("numba / Keras, oneDNN on")
        if has["torch"]:
            head.append("numba / PyTorch")
        if "numpy" in series:
            head.append("numba speed-up over numpy")
        lines += ["## Seconds per training epoch (60,000 MNIST images, batch 128, float32, RMSprop)", "",
                  f"Median over {results['rounds']} interleaved round(s), each round's figure the "
                  "median of its process's timed epochs; in brackets the lowest and highest round. "
                  "The ratios are the medians' ratio (below 1: tinynet is faster), in brackets the "
                  "range of the same ratio within each round.", "",
                  "| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
        for m, row in summary.items():
            cells = []
            for s in series:
                sp = row["spread"].get(s)
                cells.append("–" if not sp else f"{sp['median']:.2f} ({sp['min']:.2f}–{sp['max']:.2f})")
            for other in ("keras", "keras_onednn", "torch"):
                if has[other]:
                    r, rr = row.get(f"numba_over_{other}"), row.get(f"numba_over_{other}_by_round") or []
                    cells.append(fmt(r, 2, "x") + (f" ({min(rr):.2f}–{max(rr):.2f})" if len(rr) > 1 else ""))
            if "numpy" in series:
                cells.append(fmt(row.get("numba_speedup_over_numpy"), 1, "x"))
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines += ["", "Load while each figure was measured (one row per process, in the order they ran; "
                  "load: the 1-minute load average before → after; steal and busy: percent of all CPUs' "
                  "time during the process, busy counting every process, the measured one included):", "",
                  "| round | model | framework | images | timed epochs (s) | s per 60,000 | load | steal % | busy % |",
                  "|---:|---|---|---:|---|---:|---|---:|---:|"]
        rows = []
        for m, per in results["epochs"].items():
            for s, entries in per.items():
                for e in entries:
                    rows.append((e.get("round", 0), list(results["epochs"]).index(m), e.get("position", 0), m, s, e))
        for rnd, _, _, m, s, e in sorted(rows, key=lambda t: t[:3]):
            load, steal, busy = _cond_line(e)
            if "error" in e:
                lines.append(f"| {rnd} | {m} | {SERIES_NAMES[s]} | | **failed**: "
                             f"`{e['error'][-150:].strip().splitlines()[-1] if e['error'].strip() else ''}` "
                             f"| | {load} | {steal} | {busy} |")
                continue
            lines.append(f"| {rnd} | {m} | {SERIES_NAMES[s]} | {e['n']} | "
                         + ", ".join(f"{t:.2f}" for t in e["epoch_s"])
                         + f" | {per_epoch(e):.2f} | {load} | {steal} | {busy} |")
        lines += ["", "The same models in each framework, with the same parameter counts (203,530; "
                  "103,178; 7,465; 10,244): tinynet's `tinynet.report_models`, Keras's "
                  "`tests/keras_reference/keras_models.py`, PyTorch's `benchmarks/torch_models.py`. "
                  "mlp_features gets the same 392 HOG features per image in all three. Each process "
                  "first trains on 4 batches and one batch as small as the timed epoch's last one "
                  "(96 images for 60,000), so that no compilation or tracing falls in a timed epoch, "
                  "then times its epochs with a callback (PyTorch: around its epoch loop). PyTorch "
                  "runs NCHW (the channels-last images converted once, before timing), ends in "
                  "logits with `CrossEntropyLoss` on integer labels (tinynet fuses softmax and the "
                  "loss the same way), and uses `torch.optim.RMSprop(lr=0.001, alpha=0.9, eps=1e-07)`: "
                  "Keras's defaults, except that PyTorch adds epsilon outside the square root "
                  "(sqrt(s) + eps) where Keras and tinynet add it inside (sqrt(s + eps)); PyTorch has "
                  "no option for Keras's form, the two differ only while s is of the order of "
                  "epsilon, and cost the same."]
        if "numpy" in series:
            n_numpy = sorted({e["n"] for m, per in results["epochs"].items() if m.startswith("cnn")
                              for e in per.get("numpy", []) if "n" in e})
            slower = [row["numba_speedup_over_numpy"] for m, row in summary.items()
                      if m.startswith("cnn") and row.get("numba_speedup_over_numpy")]
            lines.append("The NumPy backend" + (
                f", {min(slower):.0f}-{max(slower):.0f} times slower than numba on the CNNs,"
                if slower else "") + " is measured in the first round only" + (f", and trains the CNNs on {', '.join(f'{n:,}' for n in n_numpy)} "
                                         "images, its time scaled to 60,000 (an epoch's time is linear "
                                         "in the number of images: see Scaling)" if n_numpy else "") + ".")
        if "keras_onednn" in series:
            lines.append("TensorFlow leaves its oneDNN kernels off by default on this CPU (on Linux "
                         "it turns them on by itself only on CPUs with AVX512_VNNI, AVX512_BF16, "
                         "AVX_VNNI or AMX); *Keras* is Keras as installed (without "
                         "`TF_ENABLE_ONEDNN_OPTS`), *Keras, oneDNN on* the same with "
                         "`TF_ENABLE_ONEDNN_OPTS=1`, "
                         "interleaved with the others in every round. Issue 13's targets are judged "
                         "against the faster of the two.")
        if "torch_default" in series:
            lines.append(f"PyTorch ran with {results.get('torch_threads')} thread(s) "
                         "(`--torch-threads`); *PyTorch, default threads* is PyTorch as installed "
                         f"({versions.get('torch_default_threads')} threads), measured in the first round "
                         "only, on " + " / ".join(sorted({f"{e['n']:,}" for per in results["epochs"].values()
                                                          for e in per.get("torch_default", []) if "n" in e}))
                         + " images, the time scaled to 60,000.")
        for v in results.get("variants") or []:
            lines += ["", f"tinynet numba measured once more **{v['label']}** (seconds per epoch, "
                      "one epoch after the warm-up; the ratio against the Keras median above):", ""]
            for m, per_backend in v["epochs"].items():
                e = per_backend.get("numba")
                t = per_epoch(e)
                k = fastest_keras(summary.get(m, {}).get("epoch_s", {}))
                keras = "the faster Keras" if "keras_onednn" in series else "Keras"
                lines.append(f"- {m}: {fmt(t)}" + (f" ({t / k:.2f}x {keras})" if t and k else "")
                             + f" [load {fmt_load((e or {}).get('conditions'))}]")
        lines += ["", "![epoch times](epochs.png)", ""]
        lines += arithmetic_section(results, summary)
        # inference
        lines += ["## Inference throughput (predict on the 10,000 test images, batch 128; images/s, "
                  "median over the rounds)", "",
                  "| model | " + " | ".join(SERIES_NAMES[s] for s in series) + " |",
                  "|---|" + "---:|" * len(series)]
        for m, per in results["epochs"].items():
            cells = []
            for s in series:
                vals = [e.get("inference_images_per_s") for e in per.get(s, []) if e.get("inference_images_per_s")]
                cells.append(fmt(common.median(vals), 0) if vals else "–")
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
    # first run -------------------------------------------------------------------------------
    cold = results.get("cold_compile") or {}
    if cold or any("numba_first_step_overhead_s" in r for r in summary.values()):
        lines += ["## First run after installation: numba compiling the kernels", "",
                  "The first training steps of the first tinynet process after installation "
                  "compile the numba kernels the model uses and store them in numba's on-disk "
                  "cache; later processes load them from there. Measured as what the first steps took beyond "
                  "a later step, in a fresh process with an empty cache "
                  "(`NUMBA_CACHE_DIR` pointing at a new folder), and in the epoch processes above "
                  "(cache filled).", ""]
        for m, e in cold.items():
            if "error" in e:
                lines.append(f"- **first run after installation** ({m}, every kernel): failed: "
                             f"`{e['error'][-200:]}`")
            elif e.get("first_steps_s"):
                steps = e["first_steps_s"]
                each = [s - steps[-1] for s in steps[:-1]]
                lines.append(f"- **first run after installation** ({m}, which uses every kernel "
                             f"an epoch needs): its first {len(steps) - 1} steps take "
                             f"{first_steps_excess(steps):.1f} s longer than a later one ("
                             + ", ".join(f"{x:.1f}" for x in each) + " s: a step compiles the "
                             f"paths it is the first to take) (load {fmt_load(e.get('conditions'))})")
        for m, row in summary.items():
            if "numba_first_step_overhead_s" in row:
                lines.append(f"- later runs, {m}: {row['numba_first_step_overhead_s']:.2f} s "
                             f"(loading the cached kernels; importing tinynet: "
                             f"{fmt(row.get('numba_import_s'))} s)")
        lines.append("")
    # memory --------------------------------------------------------------------------------
    if results.get("memory"):
        lines += [f"## Peak memory training on all of MNIST (resident set, MB; target for the CNN: "
                  f"under {MEMORY_TARGET_MB} MB)", "",
                  "A fresh process loads the 60,000 training images as the model's float32 input, "
                  "builds the model and trains it (stopped after a few dozen batches: the peak is "
                  "reached in the first batches). `after imports` is the interpreter with numpy, "
                  "numba and tinynet loaded.", "",
                  "| model | backend | after imports | with the data | peak | under 450 MB |",
                  "|---|---|---:|---:|---:|---|"]
        for m, per_backend in results["memory"].items():
            for b, e in per_backend.items():
                if "error" in e:
                    lines.append(f"| {m} | {b} | failed | | | |")
                else:
                    ok = "yes" if e["max_rss_mb"] < MEMORY_TARGET_MB else "**no**"
                    lines.append(f"| {m} | {b} | {e['rss_after_imports_mb']:.0f} | "
                                 f"{e['rss_with_data_mb']:.0f} | **{e['max_rss_mb']:.0f}** | {ok} |")
        lines.append("")
    # kernels against sgemm -----------------------------------------------------------------
    ksum = results.get("kernel_summary") or {}
    kern = results.get("kernels") or {}
    interleaved = bool(((kern.get("quiet") or {}).get("numba") or {}).get("interleaved_rounds"))
    by_round = any(k.get("worst_by_round") for k in ksum.values() if isinstance(k, dict))
    loaded_mean = any((res or {}).get("statistic") == "mean"
                      for res in (kern.get("loaded") or {}).values() if isinstance(res, dict))
    mean_over = [res["mean_over_s"] for res in (kern.get("loaded") or {}).values()
                 if isinstance(res, dict) and "mean_over_s" in res]
    one_thread = any(((kern.get(c) or {}).get("numba_1thread") or {}).get("rows")
                     for c in ("quiet", "loaded"))
    if ksum:
        lines += ["## Convolution kernels against NumPy's sgemm, quiet and loaded (GFLOP/s)", "",
                  "The numba convolution kernels (batch 128, float32, the report models' shapes; "
                  "backward computes dx, dw and db: twice the forward's FLOPs)"
                  + (" on numba's threads (its workers kept off the main thread's CPU, as tinynet "
                     "places them: `tinynet.threads.keep_workers_apart`) and on one "
                     "(`NUMBA_NUM_THREADS=1`: what tinynet's `fit` "
                     "runs them on when other processes hold the CPUs, `tinynet/threads.py`)"
                     if one_thread else "")
                  + " next to NumPy's float32 "
                  "matmul" + (" at" if interleaved else " in a separate process at")
                  + " the same im2col shape (batch·H·W × k·k·C times "
                  "k·k·C × F, the forward pass's work) and at a square shape of the same work, "
                  "with NumPy's default BLAS threads and with one (`OPENBLAS_NUM_THREADS=1`). "
                  + (f"The {'four' if one_thread else 'three'} run interleaved, each in a process "
                     "of its own: the kernels, " + ("the kernels on one thread, " if one_thread else "")
                     + "sgemm, sgemm on one thread, then again, round after round (the order "
                     "rotated); each figure is the median of its rounds" if interleaved else "")
                  + (", and the worst shape's ratio is also given for each round alone (each round's "
                     "worst shape carries that round's noise, which the medians smooth: the range can "
                     "lie above the figure). "
                     if interleaved and by_round else ". " if interleaved else "")
                  + "*Quiet*: without the benchmark's busy loops (other users' load as it was, see "
                  "the load below); *loaded*: measured again while the benchmark ran one "
                  "pure-Python busy loop per CPU, as a user's other programs would."
                  + (" Quiet figures come from the median call; loaded ones from the mean (the "
                     "calls' total time over their number: the rate a stream of calls keeps; under "
                     "load the calls that another process interrupts are what is measured, and a "
                     "median leaves them out)" if loaded_mean else "")
                  + (f", each over at least {min(mean_over):g} s of calls: many of the "
                     "scheduler's time slices (a few milliseconds of calls fall between two slices "
                     "or not, by luck)." if loaded_mean and mean_over else "." if loaded_mean
                     else ""), ""]
        conds = [c for c in ("quiet", "loaded") if c in ksum]
        head = ["shape"]
        cols = (("forward", "fwd"), ("backward", "bwd")) + (
            (("forward_1thread", "fwd 1 thread"), ("backward_1thread", "bwd 1 thread"))
            if one_thread else ()) + (
            ("sgemm_im2col", "sgemm im2col"), ("sgemm_square", "sgemm square"),
            ("sgemm_square_1thread", "sgemm square 1 thread"))
        for c in conds:
            head += [f"{name} {c}" for _, name in cols]
        lines += ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
        tables = {c: {r["shape"]: r for r in ksum[c]["table"]} for c in conds}
        for shape in tables[conds[0]]:
            cells = []
            for c in conds:
                r = tables[c].get(shape, {})
                cells += [fmt(r.get(col), 0) for col, _ in cols]
            lines.append(f"| {shape} | " + " | ".join(cells) + " |")
        lines.append("")
        for c in conds:
            k = ksum[c]
            cond = ""
            if c == "loaded":
                ld = kern.get("loaded", {})
                cond = (f" ({ld.get('busy_loops')} busy loop(s); they "
                        + ("ran throughout" if ld.get("held_throughout") else "**stopped before the end**")
                        + f"; load {fmt_load((ld.get('numba') or {}).get('conditions'))} during the kernels)")
            else:
                cond = f" (load {fmt_load(((kern.get('quiet') or {}).get('numba') or {}).get('conditions'))})"
            on_one = (f" (on one thread {fmt(k.get('forward_1thread'), 0)} and "
                      f"{fmt(k.get('backward_1thread'), 0)})" if k.get("forward_1thread") else "")
            lines.append(f"- **{c}**{cond}: medians over the shapes: forward {fmt(k['forward'], 0)}, "
                         f"backward {fmt(k['backward'], 0)}{on_one}, sgemm at the im2col shapes "
                         f"{fmt(k['sgemm_im2col'], 0)}, square sgemm of the same work "
                         f"{fmt(k['sgemm_square'], 0)}, square 1024 sgemm {fmt(k.get('sgemm_1024'), 0)} "
                         f"GFLOP/s (with one BLAS thread: square of the same work "
                         f"{fmt(k.get('sgemm_square_1thread'), 0)}, square 1024 "
                         f"{fmt(k.get('sgemm_1024_1thread'), 0)}). Worst shape: the faster of the two square "
                         f"sgemm runs of the same work does {fmt(k['worst_sgemm_over_kernel'], 1, 'x')} "
                         f"the slower kernel's GFLOP/s"
                         + (" (each kernel the faster of its two runs)" if on_one else "")
                         + f"{_round_range(k)} (target: within {KERNEL_TARGET:.0f}x: "
                         + ("met" if k["within_target"] else "**not met**") + ").")
        kept = ksum.get("kept_under_load")
        if kept:
            one = (f" ({100 * kept['forward_1thread']:.0f}% and "
                   f"{100 * kept['backward_1thread']:.0f}% on one thread)"
                   if kept.get("forward_1thread") and kept.get("backward_1thread") else "")
            lines.append(f"- **Under load** the kernels keep {100 * kept.get('forward', 0):.0f}% "
                         f"(forward) and {100 * kept.get('backward', 0):.0f}% (backward) of their "
                         f"quiet speed{one}; NumPy's sgemm of the same work keeps "
                         f"{100 * kept.get('sgemm_square_1thread', 0):.0f}% on one BLAS thread, and "
                         f"{100 * kept.get('sgemm_square', 0):.0f}% (square) and "
                         f"{100 * kept.get('sgemm_im2col', 0):.0f}% (im2col shapes) with NumPy's default "
                         f"threads, whose speed swings from shape to shape when other processes hold the "
                         f"CPUs (see the table). {_fair_share(results)}Much less than its fair "
                         f"share of the CPUs means a kernel's threads wait for each other (a "
                         f"parallel region finishes with its slowest thread).")
        lines.append("")
    le = results.get("loaded_epochs") or {}
    if le.get("epochs"):
        m = le["model"]
        quiet = (summary.get(m) or {}).get("epoch_s", {})
        lines += [f"## Training under load ({m}, one busy loop per CPU)", "",
                  f"One epoch of {m} in each framework while the benchmark's {le.get('busy_loops')} "
                  "busy loop(s) ran (they " + ("ran throughout" if le.get("held_throughout") else
                                               "**stopped before the end**")
                  + "), beside the median of the interleaved rounds above (no busy loops).", "",
                  "| framework | s per 60,000 under load | without the busy loops (median) | "
                  "kept of its speed | load | steal % |", "|---|---:|---:|---:|---|---:|"]
        loaded_s = {}
        # in the tables' order (results.json sorts its keys: the report reads the same from it)
        for s, e in sorted(le["epochs"].items(), key=lambda item: list(SERIES_NAMES).index(item[0])):
            t = per_epoch(e)
            loaded_s[s] = t
            q = quiet.get(s)
            load, steal, _ = _cond_line(e)
            lines.append(f"| {SERIES_NAMES[s]} | {fmt(t) if t else 'failed'} | {fmt(q)} | "
                         + (f"{100 * q / t:.0f}%" if t and q else "–") + f" | {load} | {steal} |")
        ratios = [f"numba / {SERIES_NAMES[o]} {loaded_s['numba'] / loaded_s[o]:.2f}x"
                  for o in ("keras", "keras_onednn", "torch")
                  if loaded_s.get("numba") and loaded_s.get(o)]
        if ratios:
            lines += ["", "Under load: " + ", ".join(ratios) + "."]
        lines.append("")
    if any("rows" in (kern.get("quiet") or {}).get(b, {}) for b in ("numba", "numpy", "cupy")):
        kb = [b for b in ("numba", "numpy", "cupy") if "rows" in kern["quiet"].get(b, {})]
        lb = ["numba"] if "rows" in (kern.get("loaded") or {}).get("numba", {}) else []
        lines += ["## Kernels (batch 128, float32; milliseconds per call, median"
                  + ("; loaded: mean)" if loaded_mean else ")"), "",
                  "GFLOP/s count a convolution's dense work (a backward pass: twice the forward's), "
                  "also for numba's backward of a convolution with its max pooling, which computes "
                  "only the windows' winners, a quarter of that work at most, less where the "
                  "ReLU is off (with these random inputs, at a third to a fifth of the winners).",
                  "",
                  "| kernel | shape | " + " | ".join(f"{b} quiet" for b in kb)
                  + "".join(f" | {b} loaded" for b in lb)
                  + (" | numba speed-up over numpy |" if {"numpy", "numba"} <= set(kb) else " |"),
                  "|---|---|" + "---:|" * (len(kb) + len(lb) + ({"numpy", "numba"} <= set(kb)))]
        rows = {}
        for b in kb:
            for r in kern["quiet"][b]["rows"]:
                rows.setdefault((r["kernel"], r["shape"]), {})[b] = r
        for b in lb:
            for r in kern["loaded"][b]["rows"]:
                rows.setdefault((r["kernel"], r["shape"]), {})[b + " loaded"] = r
        for (k, shape), per in rows.items():
            cells = []
            for b in kb + [b + " loaded" for b in lb]:
                r = per.get(b)
                cells.append("–" if r is None else f"{r['ms']:.3f}" +
                             (f" ({r['gflops']:.0f} GFLOP/s)" if r.get("gflops") else ""))
            if {"numpy", "numba"} <= set(kb):
                cells.append(f"{per['numpy']['ms'] / per['numba']['ms']:.1f}x"
                             if "numpy" in per and "numba" in per else "–")
            lines.append(f"| {k} | {shape} | " + " | ".join(cells) + " |")
        for b in ("numba", "numpy", "cupy", "sgemm", "sgemm_1thread"):
            for c in ("quiet", "loaded"):
                e = (kern.get(c) or {}).get(b)
                if isinstance(e, dict) and "error" in e:
                    lines.append(f"\n{b} ({c}): failed: `{e['error'][-300:]}`")
        lines += ["", "The dense rows time NumPy's BLAS (tinynet's Dense is the same code on both "
                  "CPU backends); in the numba process OpenBLAS runs on one thread once the "
                  "parallel kernels have run (see the thread policy in `tinynet/threads.py`).",
                  "", "![kernels](kernels.png)", ""]
    # scaling -------------------------------------------------------------------------------
    if results.get("scaling") or results.get("batch_sweep"):
        sc = results.get("scaling") or {}
        lines += [f"## Scaling ({sc.get('model', '')})", ""]
        for b, e in (sc.get("points") or {}).items():
            if "error" in e:
                lines.append(f"- {b}: failed: `{e['error'][-200:]}`")
                continue
            pts = ", ".join(f"{p['n']}: {p['epoch_s']:.2f} s" for p in e["points"])
            lines.append(f"- {b}, seconds for one epoch by number of images: {pts} "
                         f"(load {fmt_load(e.get('conditions'))})")
        bs = results.get("batch_sweep") or {}
        for b, e in (bs.get("points") or {}).items():
            if "error" in e:
                lines.append(f"- {b} batch sweep: failed: `{e['error'][-200:]}`")
                continue
            pts = ", ".join(f"{p['batch']}: {p['train_images_per_s']:.0f} / {p['inference_images_per_s']:.0f}"
                            for p in e["points"])
            lines.append(f"- {b}, images/s training / inference by batch size ({e['n']} images): {pts} "
                         f"(load {fmt_load(e.get('conditions'))})")
        lines += ["", "![scaling](scaling.png)", ""]
    lines += ["## Method", "",
              "- Every measurement runs in a fresh process (`python -m benchmarks.worker`); "
              "tinynet, Keras and PyTorch are interleaved: in each round, for each model, one "
              "process each, the frameworks' order rotated by one every round; the figures are "
              "medians over the rounds and every ratio is computed from numbers of this same run.",
              "- Epoch times are wall-clock seconds of whole epochs of a `fit` call, timed by a "
              "callback (PyTorch: its epoch loop), so data preparation is not counted.",
              "- Load and steal: `os.getloadavg()` and the `cpu` line of `/proc/stat`, read by the "
              "driver just before and just after each process (results.json keeps both readings, "
              "the cumulative steal seconds included).",
              "- Peak memory is `ru_maxrss` of the measuring process.",
              ""]
    lines += kept_sections(out / "RESULTS.md")
    (out / "RESULTS.md").write_text("\n".join(lines) + ("\n" if lines[-1] else ""))


def write_plots(results, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    colors = {"numpy": "#8c8c8c", "numba": "#1f77b4", "cupy": "#2ca02c", "keras": "#d62728",
              "keras_onednn": "#ff9896", "torch": "#ff7f0e", "torch_default": "#ffbb78"}
    summary = results.get("summary") or {}
    series = series_of(results)
    if summary and series:
        names = list(summary)
        fig, ax = plt.subplots(figsize=(8.5, 4.2), dpi=100)
        width = 0.8 / len(series)
        for i, s in enumerate(series):
            sps = [summary[m]["spread"].get(s) for m in names]
            xs = np.arange(len(names)) + (i - (len(series) - 1) / 2) * width
            heights = [sp["median"] if sp else 0 for sp in sps]
            err = np.array([[sp["median"] - sp["min"], sp["max"] - sp["median"]] if sp else [0, 0]
                            for sp in sps]).T
            bars = ax.bar(xs, heights, width, yerr=err, capsize=2, label=SERIES_NAMES[s],
                          color=colors.get(s))
            for bar, v in zip(bars, heights):
                if v:
                    ax.annotate(f"{v:.1f}" if v >= 1 else f"{v:.2f}",
                                (bar.get_x() + bar.get_width() / 2, v), ha="center", va="bottom",
                                fontsize=7)
        ax.set_yscale("log")
        ax.set_xticks(np.arange(len(names)), names)
        ax.set_ylabel("seconds per epoch (60,000 images, log scale)")
        ax.set_title("Training epoch time, batch 128, float32: median and range over rounds")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "epochs.png")
        plt.close(fig)
    ksum = results.get("kernel_summary") or {}
    if ksum.get("quiet"):
        shapes = [r["shape"] for r in ksum["quiet"]["table"]]
        cols = [(c, col) for c in ("quiet", "loaded") if c in ksum
                for col in ("forward", "backward", "sgemm_square", "sgemm_square_1thread")]
        fig, ax = plt.subplots(figsize=(11, 4.5), dpi=90)
        width = 0.8 / len(cols)
        for i, (c, col) in enumerate(cols):
            table = {r["shape"]: r for r in ksum[c]["table"]}
            vals = [table.get(s, {}).get(col) or 0 for s in shapes]
            ax.bar(np.arange(len(shapes)) + (i - (len(cols) - 1) / 2) * width, vals, width,
                   label={"forward": "conv forward", "backward": "conv backward",
                          "sgemm_square": "sgemm, same work",
                          "sgemm_square_1thread": "sgemm, same work, 1 thread"}[col] + f" ({c})",
                   color={"forward": "#1f77b4", "backward": "#17becf", "sgemm_square": "#8c8c8c",
                          "sgemm_square_1thread": "#c7c7c7"}[col],
                   alpha=1.0 if c == "quiet" else 0.45, hatch=None if c == "quiet" else "//")
        ax.set_xticks(np.arange(len(shapes)), shapes, rotation=30, fontsize=7, ha="right")
        ax.set_ylabel("GFLOP/s")
        ax.set_title("numba convolution kernels vs NumPy sgemm (same work), quiet and with a busy loop per CPU")
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        fig.savefig(out / "kernels.png")
        plt.close(fig)
    sc, bs = results.get("scaling") or {}, results.get("batch_sweep") or {}
    if sc.get("points") or bs.get("points"):
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4), dpi=90)
        for b, e in (sc.get("points") or {}).items():
            if "points" in e:
                n = [p["n"] for p in e["points"]]
                a1.plot(n, [p["epoch_s"] for p in e["points"]], "o-", label=b, color=colors.get(b))
        a1.set_xscale("log")
        a1.set_yscale("log")
        a1.set_xlabel("training images in the epoch (log)")
        a1.set_ylabel("seconds (log)")
        a1.set_title(f"Epoch time vs data size ({sc.get('model', '')})")
        a1.legend(fontsize=8)
        a1.grid(alpha=0.3)
        for b, e in (bs.get("points") or {}).items():
            if "points" in e:
                x = [p["batch"] for p in e["points"]]
                a2.plot(x, [p["train_images_per_s"] for p in e["points"]], "o-", color=colors.get(b),
                        label=f"{b} training")
                a2.plot(x, [p["inference_images_per_s"] for p in e["points"]], "s--",
                        color=colors.get(b), label=f"{b} inference")
        a2.set_xscale("log", base=2)
        a2.set_yscale("log")
        a2.set_xlabel("batch size")
        a2.set_ylabel("images per second (log)")
        a2.set_title(f"Throughput vs batch size ({bs.get('model', '')})")
        a2.legend(fontsize=8)
        a2.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "scaling.png")
        plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        results = load_results(args.report_only)
    else:
        results = measure(args)
    summarise(results)
    (args.out / "results.json").write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    if not args.report_only and (args.out / PARTIAL).exists():
        (args.out / PARTIAL).unlink()
    write_report(results, args.out)
    write_plots(results, args.out)
    print((args.out / "RESULTS.md").read_text())
    common.log(f"written to {args.out}/ (RESULTS.md, results.json, PNGs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
