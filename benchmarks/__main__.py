"""tinynet benchmarks: numpy vs numba vs cupy, per kernel and per training epoch, against Keras.

    python -m benchmarks [--quick] [--backends numpy,numba[,cupy]] [--models m1,m2] [--out DIR]
                         [--keras-python PATH] [--no-cold-compile] [--data DIR]

Measures, on every backend that runs here (cupy only where CuPy imports and sees a GPU):

* each kernel at the report models' shapes (batch 128, float32): conv forward/backward, max-pool
  forward/backward, dense forward/backward -- median of several calls after a warm-up;
* seconds per training epoch of the report's four models (real MNIST, batch 128, float32,
  RMSprop): one ``fit`` call of 1 warm-up + N timed epochs, each timed by a callback, median;
  the slow NumPy backend trains the CNNs on fewer images and the time is scaled to 60,000
  images (an epoch's time is linear in the number of images: see the scaling plot);
* inference throughput (``predict`` on the 10,000 test images, batch 128);
* the first epoch's extra time (numba loading its cached kernels, or compiling them with an
  empty cache), and the peak resident memory of training on all of MNIST;
* epoch time vs number of images, and throughput vs batch size.

Every measurement runs in a fresh process (``benchmarks/worker.py``). Keras's numbers come from
running ``tests/keras_reference/keras_epoch_times.py`` in the same run when TensorFlow imports
here or ``--keras-python`` names an interpreter that has it; otherwise from
``benchmarks/keras_times.json`` (measured earlier on the same machine), which the report says.

Writes ``RESULTS.md``, ``results.json`` and PNG charts into ``--out`` (default: ``benchmarks/``).
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
KERAS_SCRIPT = common.ROOT / "tests" / "keras_reference" / "keras_epoch_times.py"
KERAS_JSON = HERE / "keras_times.json"


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer images and repeats (a few minutes)")
    ap.add_argument("--backends", default=None,
                    help="comma-separated subset of numpy,numba,cupy (default: all that run here)")
    ap.add_argument("--models", default=",".join(common.MODELS), help="comma-separated report models")
    ap.add_argument("--out", type=Path, default=HERE, help="folder for RESULTS.md, results.json, PNGs")
    ap.add_argument("--data", default=None, help="data folder holding mnist/ (default, as in "
                                                  "tinynet.datasets: $TINYNET_DATA, else the user cache)")
    ap.add_argument("--keras-python", default=None,
                    help="a Python with TensorFlow: measure Keras in this run with it")
    ap.add_argument("--no-keras-run", action="store_true",
                    help="never run Keras; use benchmarks/keras_times.json")
    ap.add_argument("--no-cold-compile", action="store_true",
                    help="skip timing numba's compilation with an empty cache")
    ap.add_argument("--report-only", type=Path, default=None, metavar="RESULTS_JSON",
                    help="measure nothing: rewrite RESULTS.md and the charts from a results.json")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: kernels,epochs,"
                                               "variants,memory,scaling,batch")
    return ap.parse_args(argv)


def _without_paths(argv):
    """The command line as recorded in results.json and RESULTS.md: the values of options that
    name a place on this machine (an interpreter, a data or output folder) are left out."""
    out, hide = [], False
    for arg in argv:
        if hide:
            out.append("...")
            hide = False
            continue
        name, eq, _ = arg.partition("=")
        if name in _PATH_OPTIONS:
            out.append(name + ("=..." if eq else ""))
            hide = not eq
        else:
            out.append(arg)
    return out


_PATH_OPTIONS = ("--keras-python", "--data", "--out", "--report-only")


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


def run_worker(spec, env=None, timeout=1200, unset=()):
    """Run one measurement in a fresh process (with ``env`` added and the variables ``unset``
    removed); returns its result dict (or {"error": ...})."""
    e = {k: v for k, v in os.environ.items() if k not in unset}
    e.update(env or {})
    e.setdefault("PYTHONPATH", "")
    e["PYTHONPATH"] = str(common.ROOT) + (os.pathsep + e["PYTHONPATH"] if e["PYTHONPATH"] else "")
    t = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "benchmarks.worker", json.dumps(spec)],
                              capture_output=True, text=True, env=e, cwd=common.ROOT,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    for line in done.stdout.splitlines()[::-1]:
        if line.startswith("RESULT "):
            res = json.loads(line[7:])
            res["process_s"] = time.perf_counter() - t
            return res
    return {"error": (done.stderr or done.stdout)[-2000:]}


def tensorflow_here():
    done = subprocess.run([sys.executable, "-c", "import tensorflow"], capture_output=True)
    return done.returncode == 0


def run_keras(python, out_dir, models, data):
    """Keras's epoch times measured now with ``python`` (the reference script), or None."""
    target = out_dir / f"keras_times_{'_'.join(models)}.json"
    names = [common.KERAS_NAMES[m] for m in models]
    cmd = [python, str(KERAS_SCRIPT), "--out", str(target), "--random-hog", "--models", *names]
    if data:
        cmd += ["--data", str(data)]
    common.log("keras:", " ".join(cmd))
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=common.ROOT, timeout=1800)
    if done.returncode != 0 or not target.exists():
        common.log("keras run failed:", done.stderr[-1500:])
        return None
    result = json.loads(target.read_text())
    target.unlink()
    return result


# ---------------------------------------------------------------------------------------------
def plan(quick, backend, model):
    """(number of images, timed epochs) for an epoch measurement: everything on 60,000 images
    except the NumPy backend's CNNs, which are slow (a minute per epoch) and are scaled."""
    cnn = model.startswith("cnn")
    if backend == "numpy" and cnn:
        return (2560, 2) if quick else (6400, 2)
    if quick:
        return (12800, 2) if cnn else (30000, 2)
    return 60000, 3


def measure(args):
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    avail, why = available_backends()
    backends = avail if args.backends is None else [
        b.strip() for b in args.backends.split(",") if b.strip()]
    for b in list(backends):
        if b not in avail:
            common.log(f"backend {b} does not run here: {why.get(b)}")
            backends.remove(b)
    results = {"started": datetime.datetime.now().isoformat(timespec="seconds"),
               "command": "python -m benchmarks " + " ".join(_without_paths(sys.argv[1:])),
               "quick": args.quick, "machine": common.machine(), "backends": backends,
               "unavailable": why, "models": models}
    results["machine"]["load_average_before"] = results["machine"].pop("load_average")
    t_start = time.perf_counter()

    # kernels -----------------------------------------------------------------------------------
    if "kernels" not in skip:
        results["kernels"] = {}
        for b in backends:
            common.log(f"kernels on {b} ...")
            results["kernels"][b] = run_worker({"task": "kernels", "backend": b, "data": args.data,
                                                "repeats": 5 if args.quick else 9})

    # epochs: backends (and Keras, when it runs here) interleaved per model, so that the numbers
    # compared are measured minutes apart at most, under the same load -------------------------
    keras_python = args.keras_python or (sys.executable if tensorflow_here() else None)
    keras_runs = {}
    if "epochs" not in skip:
        results["epochs"] = {m: {} for m in models}
        for m in models:
            for b in backends:
                n, reps = plan(args.quick, b, m)
                common.log(f"epochs: {m} on {b} ({n} images, 1 + {reps} epochs) ...")
                results["epochs"][m][b] = run_worker({"task": "epochs", "backend": b, "model": m,
                                                      "n": n, "repeats": reps, "data": args.data})
            if keras_python and not args.no_keras_run:
                keras_runs[m] = run_keras(keras_python, args.out, [m], args.data)

    # the same epochs under other BLAS settings: without this environment's OpenBLAS tuning
    # variables (they slow BLAS down), and with one BLAS thread (OpenBLAS's threads spin while
    # they wait for work, which is costly when other processes share the cores)
    blas_vars = [k for k in os.environ if k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")]
    variants = []
    if blas_vars:
        variants.append({"label": "without " + " and ".join(f"`{v}`" for v in blas_vars), "env": {},
                         "unset": blas_vars, "models": [m for m in models if m.startswith("mlp")]})
    if "OPENBLAS_NUM_THREADS" not in os.environ:
        variants.append({"label": "with `OPENBLAS_NUM_THREADS=1`", "env": {"OPENBLAS_NUM_THREADS": "1"},
                         "unset": [], "models": list(models)})
    if not args.quick and "epochs" not in skip and "variants" not in skip:
        results["variants"] = []
        for v in variants:
            v = dict(v, epochs={m: {} for m in v["models"]})
            for m in v["models"]:
                for b in [b for b in backends if b in ("numpy", "numba")]:
                    if b == "numpy" and m.startswith("cnn"):
                        continue  # minutes per epoch, and BLAS is not what limits it
                    n, reps = plan(args.quick, b, m)
                    common.log(f"epochs with {v['label']}: {m} on {b} ...")
                    v["epochs"][m][b] = run_worker(
                        {"task": "epochs", "backend": b, "model": m, "n": n, "repeats": reps,
                         "inference": False, "data": args.data}, env=v["env"], unset=v["unset"])
            results["variants"].append(v)

    # numba compiling with an empty cache -----------------------------------------------------
    if "numba" in backends and not args.quick and not args.no_cold_compile and "epochs" not in skip:
        results["cold_compile"] = {}
        for m in [m for m in ("cnn_fashion_3",) if m in models]:  # it uses every kernel
            with tempfile.TemporaryDirectory() as cache:
                common.log(f"numba compile with an empty cache: {m} ...")
                results["cold_compile"][m] = run_worker(
                    {"task": "epochs", "backend": "numba", "model": m, "n": 2560, "repeats": 2,
                     "inference": False, "data": args.data}, env={"NUMBA_CACHE_DIR": cache})

    # memory on all of MNIST ------------------------------------------------------------------
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
    fast = [b for b in backends if b != "numpy"] or backends
    scale_model = "cnn_digits" if "cnn_digits" in models else models[0]
    if "scaling" not in skip:
        sizes = [5000, 10000, 20000] if args.quick else [5000, 10000, 20000, 40000, 60000]
        results["scaling"] = {"model": scale_model, "points": {}}
        for b in fast:
            common.log(f"scaling on {b} ...")
            results["scaling"]["points"][b] = run_worker(
                {"task": "scaling", "backend": b, "model": scale_model, "sizes": sizes, "data": args.data})
        if "numpy" in backends:
            results["scaling"]["points"]["numpy"] = run_worker(
                {"task": "scaling", "backend": "numpy", "model": scale_model,
                 "sizes": [1280, 2560] if args.quick else [2560, 5000, 10000], "data": args.data})
    if "batch" not in skip:
        results["batch_sweep"] = {"model": scale_model, "points": {}}
        for b in fast:
            common.log(f"batch-size sweep on {b} ...")
            results["batch_sweep"]["points"][b] = run_worker(
                {"task": "batch_sweep", "backend": b, "model": scale_model,
                 "n": 6144 if args.quick else 12288,
                 "batch_sizes": [32, 64, 128, 256, 512, 1024], "data": args.data})

    # Keras -----------------------------------------------------------------------------------
    keras, source = None, None
    if keras_runs and all(keras_runs.values()):
        keras = dict(next(iter(keras_runs.values())))
        keras["models"] = {k: v for run in keras_runs.values() for k, v in run["models"].items()}
        keras["machine"]["load_average_1_5_15_before"] = [
            run["machine"]["load_average_1_5_15_before"] for run in keras_runs.values()]
        keras["machine"]["load_average_1_5_15_after"] = [
            run["machine"]["load_average_1_5_15_after"] for run in keras_runs.values()]
        source = ("measured in this run, each model right after tinynet's runs of it "
                  "(tests/keras_reference/keras_epoch_times.py --random-hog, run by the Python "
                  "given with --keras-python or this one)")
    if keras is None and KERAS_JSON.exists():
        keras = json.loads(KERAS_JSON.read_text())
        source = ("benchmarks/keras_times.json, measured earlier on this machine by "
                  "tests/keras_reference/keras_epoch_times.py (not in this run)")
    results["keras"] = {"source": source, "data": keras}
    results["machine"]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    results["total_s"] = time.perf_counter() - t_start
    return results


# ---------------------------------------------------------------------------------------------
def per_epoch(entry):
    """Seconds per 60,000-image epoch (median of the timed epochs, scaled when fewer images)."""
    if not entry or "error" in entry or not entry.get("epoch_s"):
        return None
    return common.median(entry["epoch_s"]) * common.TRAIN_SIZE / entry["n"]


def keras_epoch(results, model):
    k = (results.get("keras") or {}).get("data") or {}
    m = k.get("models", {}).get(common.KERAS_NAMES[model])
    return m and m.get("epoch_seconds_median")


def keras_inference(results, model):
    k = (results.get("keras") or {}).get("data") or {}
    m = k.get("models", {}).get(common.KERAS_NAMES[model])
    return m and m.get("inference_images_per_second")


def fmt(v, digits=2, unit=""):
    if v is None:
        return "–"
    return f"{v:.{digits}f}{unit}"


def summarise(results):
    """Ratios computed within the run, added to ``results["summary"]``."""
    summary = {}
    for m, per_backend in (results.get("epochs") or {}).items():
        s = {b: per_epoch(e) for b, e in per_backend.items()}
        s["keras"] = keras_epoch(results, m)
        row = {"epoch_s": s}
        if s.get("numpy") and s.get("numba"):
            row["numba_speedup_over_numpy"] = s["numpy"] / s["numba"]
        for b in ("numba", "cupy"):
            if s.get(b) and s.get("keras"):
                row[f"{b}_over_keras"] = s[b] / s["keras"]
        nb = per_backend.get("numba")
        if nb and "error" not in nb:
            if nb.get("first_steps_s"):
                row["numba_first_step_overhead_s"] = nb["first_steps_s"][0] - min(nb["first_steps_s"][1:])
                row["numba_import_s"] = nb.get("import_s")
        summary[m] = row
    results["summary"] = summary
    return summary


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
    return in_run_order(results, [results["models"], results["backends"]])


def write_report(results, out):
    summary = summarise(results)
    mach = results["machine"]
    backends = results["backends"]
    lines = [
        "# tinynet benchmarks",
        "",
        f"Generated by `{results['command']}` on {results['started']} in {results['total_s'] / 60:.1f} min"
        + (" (**--quick**: fewer images and repeats)" if results["quick"] else "") + ".",
        "",
        "## Machine",
        "",
        f"- CPU: {mach['cpu']}, {mach['logical_cpus']} logical CPUs ({mach.get('usable_cpus')} usable); "
        f"{mach['platform']}",
        f"- Python {mach['python']}, NumPy {mach['numpy']} (BLAS: {mach['blas']}), numba {mach.get('numba')} "
        f"({mach.get('numba_threads')} threads)",
        f"- Environment: " + (", ".join(f"`{k}={v}`" for k, v in mach["env"].items()) or "none of note"),
        f"- Load average (1, 5, 15 min) before: {mach['load_average_before']}, after: "
        f"{mach.get('load_average_after')}. The machine is shared: a load above the number of CPUs "
        "means other jobs ran at the same time and slowed every measurement (CPU seconds are "
        "given beside wall seconds to show it).",
        f"- Backends measured: {', '.join(backends)}"
        + "".join(f"; {b} not measured: {why}" for b, why in results.get("unavailable", {}).items()),
        "",
    ]
    # epochs ------------------------------------------------------------------------------------
    if results.get("epochs"):
        ks = results.get("keras") or {}
        lines += ["## Seconds per training epoch (60,000 MNIST images, batch 128, float32, RMSprop)", "",
                  "| model | " + " | ".join(backends) + " | Keras | numba speed-up over numpy | "
                  "numba / Keras |" + (" cupy / Keras |" if "cupy" in backends else ""),
                  "|---|" + "---:|" * (len(backends) + 3 + ("cupy" in backends))]
        for m, row in summary.items():
            s = row["epoch_s"]
            cells = [fmt(s.get(b)) for b in backends] + [fmt(s.get("keras"))]
            cells.append(fmt(row.get("numba_speedup_over_numpy"), 1, "x"))
            cells.append(fmt(row.get("numba_over_keras"), 2, "x"))
            if "cupy" in backends:
                cells.append(fmt(row.get("cupy_over_keras"), 2, "x"))
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines += ["", "How each number was measured:", ""]
        for m, per_backend in results["epochs"].items():
            for b, e in per_backend.items():
                if "error" in e:
                    lines.append(f"- {m} / {b}: **failed**: `{e['error'][-300:]}`")
                    continue
                scaled = "" if e["n"] == common.TRAIN_SIZE else (
                    f", scaled from {e['n']} images to 60,000")
                cpu = common.median(e["epoch_cpu_s"]) * common.TRAIN_SIZE / e["n"]
                lines.append(f"- {m} / {b}: median of {len(e['epoch_s'])} epochs on {e['n']} images"
                             f"{scaled} (epochs: {', '.join(f'{t:.2f}' for t in e['epoch_s'])} s; "
                             f"CPU {cpu:.2f} s per 60,000); load {e.get('load_1min')}"
                             + (f"; inputs: {e['note']}" if e.get("note") else ""))
        for v in results.get("variants") or []:
            lines += ["", f"The same, measured **{v['label']}** (seconds per epoch; "
                      "numba / Keras against the Keras time above):", ""]
            for m, per_backend in v["epochs"].items():
                cells = []
                for b, e in per_backend.items():
                    t = per_epoch(e)
                    k = keras_epoch(results, m)
                    cells.append(f"{b} {fmt(t)}" + (f" ({t / k:.2f}x Keras)" if b == "numba" and t and k else "")
                                 + (f" [load {e.get('load_1min')}]" if e.get("load_1min") else ""))
                lines.append(f"- {m}: " + ", ".join(cells))
        lines += ["", f"Keras (3 / TensorFlow CPU): {ks.get('source') or 'not available'}."]
        kd = ks.get("data") or {}
        if kd:
            lines.append(f"Keras versions: {kd.get('versions')}; load average during the Keras run: "
                         f"{kd.get('machine', {}).get('load_average_1_5_15_before')} -> "
                         f"{kd.get('machine', {}).get('load_average_1_5_15_after')}. Keras trains "
                         "mlp_features on the same 392 inputs per image (HOG or random values: "
                         "the time does not depend on them).")
        lines += ["", "![epoch times](epochs.png)", ""]
        # inference
        lines += ["## Inference throughput (predict on the 10,000 test images, batch 128; images/s)", "",
                  "| model | " + " | ".join(backends) + " | Keras |", "|---|" + "---:|" * (len(backends) + 1)]
        for m, per_backend in results["epochs"].items():
            cells = [fmt(per_backend.get(b, {}).get("inference_images_per_s"), 0) for b in backends]
            cells.append(fmt(keras_inference(results, m), 0))
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
        # compile
        lines += ["## numba's first-epoch overhead", "",
                  "The extra seconds of the first training step of a fresh process over a later "
                  "step: loading the compiled kernels from numba's on-disk cache (or compiling them "
                  "when the cache is empty) and starting the thread pool. Every kernel an epoch uses "
                  "runs in that first step, so this is the whole extra time of the first epoch. "
                  "`import` is the time to import tinynet with numba and the kernels module.", ""]
        for m, row in summary.items():
            if "numba_first_step_overhead_s" in row:
                lines.append(f"- {m}: {row['numba_first_step_overhead_s']:.2f} s with the cache "
                             f"filled (import {fmt(row.get('numba_import_s'))} s)")
        cold = results.get("cold_compile") or {}
        for m, e in cold.items():
            if "error" in e:
                lines.append(f"- {m} with an empty cache: failed: `{e['error'][-200:]}`")
            elif e.get("first_steps_s"):
                lines.append(f"- {m} with an **empty** cache (compiling every kernel it uses): "
                             f"{e['first_steps_s'][0] - min(e['first_steps_s'][1:]):.1f} s")
        lines.append("")
    # memory --------------------------------------------------------------------------------
    if results.get("memory"):
        lines += ["## Peak memory training on all of MNIST (resident set, MB)", "",
                  "A fresh process loads the 60,000 training images as the model's float32 input, "
                  "builds the model and trains it (stopped after a few dozen batches: the peak is "
                  "reached in the first batches). `after imports` is the interpreter with numpy, "
                  "numba and tinynet loaded.", "",
                  "| model | backend | after imports | with the data | peak |", "|---|---|---:|---:|---:|"]
        for m, per_backend in results["memory"].items():
            for b, e in per_backend.items():
                if "error" in e:
                    lines.append(f"| {m} | {b} | failed | | |")
                else:
                    lines.append(f"| {m} | {b} | {e['rss_after_imports_mb']:.0f} | "
                                 f"{e['rss_with_data_mb']:.0f} | **{e['max_rss_mb']:.0f}** |")
        lines.append("")
    # kernels -------------------------------------------------------------------------------
    if results.get("kernels"):
        kb = [b for b in backends if "rows" in results["kernels"].get(b, {})]
        lines += ["## Kernels (batch 128, float32; milliseconds per call, median)", "",
                  "| kernel | shape | " + " | ".join(kb) + (" | numba speed-up |" if {"numpy", "numba"} <= set(kb) else " |"),
                  "|---|---|" + "---:|" * (len(kb) + ({"numpy", "numba"} <= set(kb)))]
        rows = {}
        for b in kb:
            for r in results["kernels"][b]["rows"]:
                rows.setdefault((r["kernel"], r["shape"]), {})[b] = r
        for (k, shape), per in rows.items():
            cells = []
            for b in kb:
                r = per.get(b)
                cells.append("–" if r is None else f"{r['ms']:.3f}" +
                             (f" ({r['gflops']:.0f} GFLOP/s)" if r.get("gflops") else ""))
            if {"numpy", "numba"} <= set(kb) and "numpy" in per and "numba" in per:
                cells.append(f"{per['numpy']['ms'] / per['numba']['ms']:.1f}x")
            lines.append(f"| {k} | {shape} | " + " | ".join(cells) + " |")
        for b in backends:
            if "error" in results["kernels"].get(b, {}):
                lines.append(f"\n{b}: failed: `{results['kernels'][b]['error'][-300:]}`")
        if "numba" in kb:
            lines += ["", "The dense rows time NumPy's BLAS (tinynet's Dense is the same code on both "
                      "CPU backends); in the numba process OpenBLAS runs on one thread once the "
                      "parallel kernels have run (see the thread policy in `tinynet/backend.py`: on a small "
                      "machine BLAS's spinning threads otherwise take the cores from the kernels)."]
        lines += ["", "![kernels](kernels.png)", ""]
    # scaling -------------------------------------------------------------------------------
    if results.get("scaling") or results.get("batch_sweep"):
        sc = results.get("scaling") or {}
        lines += [f"## Scaling ({sc.get('model', '')})", ""]
        for b, e in (sc.get("points") or {}).items():
            if "error" in e:
                lines.append(f"- {b}: failed: `{e['error'][-200:]}`")
                continue
            pts = ", ".join(f"{p['n']}: {p['epoch_s']:.2f} s" for p in e["points"])
            lines.append(f"- {b}, seconds for one epoch by number of images: {pts}")
        bs = results.get("batch_sweep") or {}
        for b, e in (bs.get("points") or {}).items():
            if "error" in e:
                lines.append(f"- {b} batch sweep: failed: `{e['error'][-200:]}`")
                continue
            pts = ", ".join(f"{p['batch']}: {p['train_images_per_s']:.0f} / {p['inference_images_per_s']:.0f}"
                            for p in e["points"])
            lines.append(f"- {b}, images/s training / inference by batch size ({e['n']} images): {pts}")
        lines += ["", "![scaling](scaling.png)", ""]
    lines += ["## Method", "",
              "- Every measurement runs in a fresh process (`python -m benchmarks.worker`); times are "
              "medians after a warm-up; ratios are computed from numbers of this same run.",
              "- Epoch times come from one `fit(..., epochs=1+N, verbose=0)` call, each epoch timed by "
              "a callback (as the Keras script times Keras), so data preparation is not counted.",
              "- Peak memory is `ru_maxrss` of the measuring process.",
              ""]
    lines += kept_sections(out / "RESULTS.md")
    (out / "RESULTS.md").write_text("\n".join(lines) + ("\n" if lines[-1] else ""))


def write_plots(results, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    colors = {"numpy": "#8c8c8c", "numba": "#1f77b4", "cupy": "#2ca02c", "keras": "#d62728"}
    summary = results.get("summary") or {}
    if summary:
        names = list(summary)
        series = [b for b in results["backends"]] + ["keras"]
        fig, ax = plt.subplots(figsize=(8, 4.2), dpi=100)
        width = 0.8 / len(series)
        for i, b in enumerate(series):
            vals = [summary[m]["epoch_s"].get(b) for m in names]
            xs = np.arange(len(names)) + (i - (len(series) - 1) / 2) * width
            heights = [v if v else 0 for v in vals]
            bars = ax.bar(xs, heights, width, label=b if b != "keras" else "Keras (TF CPU)",
                          color=colors.get(b))
            for bar, v in zip(bars, vals):
                if v:
                    ax.annotate(f"{v:.1f}" if v >= 1 else f"{v:.2f}", (bar.get_x() + bar.get_width() / 2, v),
                                ha="center", va="bottom", fontsize=7)
        ax.set_yscale("log")
        ax.set_xticks(np.arange(len(names)), names)
        ax.set_ylabel("seconds per epoch (60,000 images, log scale)")
        ax.set_title("Training epoch time, batch 128, float32 (lower is better)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "epochs.png")
        plt.close(fig)
    kern = results.get("kernels") or {}
    kb = [b for b in results["backends"] if "rows" in kern.get(b, {})]
    if kb:
        labels = [f"{r['kernel'].split(' (')[0]}\n{r['shape']}" for r in kern[kb[0]]["rows"]]
        fig, ax = plt.subplots(figsize=(11, 4.5), dpi=90)
        width = 0.8 / len(kb)
        for i, b in enumerate(kb):
            ms = [r["ms"] for r in kern[b]["rows"]]
            ax.bar(np.arange(len(ms)) + (i - (len(kb) - 1) / 2) * width, ms, width, label=b,
                   color=colors.get(b))
        ax.set_yscale("log")
        ax.set_xticks(np.arange(len(labels)), labels, rotation=90, fontsize=6)
        ax.set_ylabel("ms per call (log)")
        ax.set_title("Kernels at the report models' shapes, batch 128, float32")
        ax.legend(fontsize=8)
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
    write_report(results, args.out)
    write_plots(results, args.out)
    print((args.out / "RESULTS.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
