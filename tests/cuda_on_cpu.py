"""tinynet's own CUDA kernels run on the CPU: their source compiled by g++ and run block by block.

The CuPy backend's CUDA kernels (``tinynet/kernels/cupy_gpu.py``: the matrix product, the direct
convolution, the loss and accuracy rows) can only run where a GPU is lent, which is rarely. Their
logic (indices, bounds, the sums' order, NaN's path) is C++ that any compiler reads, so this
module checks it without a GPU: the source, after a prelude that gives it CUDA's names, is
compiled into a shared library; a launch runs the grid's blocks one after the other, and a
block's threads as user-level threads (``ucontext``) that take turns: each runs until its next
``__syncthreads()`` or its end, so that every thread of the block reaches a barrier before any
passes it, as on the GPU. ``__shared__`` memory is one static buffer (a block at a time), the
dynamic one filled with 0xFF bytes (NaN, -1) before each block. Integer arguments must be
NumPy's int32 / int64, as a GPU needs them.

CuPy's elementwise kernels (``cupy.ElementwiseKernel``: im2col, col2im, the pooling) run too,
their operation in a loop over ``i`` (:class:`Elementwise`). The raw kernels' source also goes
through NVIDIA's own compiler where it is installed (:func:`nvrtc`, :func:`nvrtc_log`: NVRTC
compiles to PTX without a GPU), for the dialect g++ does not check. What this does not check:
what only a GPU shows (speed, the memory model between blocks). The CuPy calls the kernels'
Python side makes (``cp.empty``, ``cp.ascontiguousarray``...) are NumPy's here:
:func:`load_cupy_gpu` loads the module with a stand-in for CuPy.
"""
import ctypes
import hashlib
import importlib.util
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import types

import numpy as np

PRELUDE = r"""
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <ucontext.h>
#include <vector>
struct tn_dim3 { unsigned x = 0, y = 0, z = 0; };
static tn_dim3 threadIdx, blockIdx, blockDim, gridDim;
static ucontext_t tn_scheduler;
static ucontext_t* tn_running;
#define __syncthreads() swapcontext(tn_running, &tn_scheduler)
#define __global__
#define __device__
#define __shared__ static
using std::min; using std::max; using std::isnan; using std::exp; using std::log;
using std::ptrdiff_t;
alignas(16) static unsigned char tinynet_shared[48 * 1024];  // the block's dynamic shared memory
static size_t tn_shared_bytes;
extern "C" int tn_overrun = 0;  // set when a block wrote past the shared memory it was given
static std::function<void()> tn_body;
static std::vector<char> tn_done;
static int tn_current;
static void tn_trampoline() { tn_body(); tn_done[tn_current] = 1; }
static void tn_launch(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                      unsigned bz, std::function<void()> body) {
    const int threads = bx * by * bz, stack = 1 << 16;
    gridDim = {gx, gy, gz}; blockDim = {bx, by, bz}; tn_body = body;
    std::vector<ucontext_t> ctx(threads);
    std::vector<char> stacks((size_t)threads * stack);
    for (unsigned z = 0; z < gz; ++z)
    for (unsigned y = 0; y < gy; ++y)
    for (unsigned x = 0; x < gx; ++x) {
        blockIdx = {x, y, z};
        tn_done.assign(threads, 0);
        // what a block has not written reads as NaN (floats) or -1 (ints), not as the block
        // before left it: a kernel that reads shared memory before staging it fails its test
        memset(tinynet_shared, 0xFF, tn_shared_bytes);
        memset(tinynet_shared + tn_shared_bytes, 0xA5, sizeof tinynet_shared - tn_shared_bytes);
        for (int t = 0; t < threads; ++t) {
            getcontext(&ctx[t]);
            ctx[t].uc_stack.ss_sp = &stacks[(size_t)t * stack];
            ctx[t].uc_stack.ss_size = stack;
            ctx[t].uc_link = &tn_scheduler;
            makecontext(&ctx[t], tn_trampoline, 0);
        }
        for (bool live = true; live;) {  // a round: each thread on to its next barrier or its end
            live = false;
            for (int t = 0; t < threads; ++t) {
                if (tn_done[t]) continue;
                threadIdx = {(unsigned)(t % bx), (unsigned)(t / bx % by),
                             (unsigned)(t / (bx * by))};
                tn_current = t; tn_running = &ctx[t];
                swapcontext(&tn_scheduler, &ctx[t]);
                live = live || !tn_done[t];
            }
        }
        for (size_t k = tn_shared_bytes; k < sizeof tinynet_shared; ++k)
            if (tinynet_shared[k] != 0xA5) tn_overrun = 1;
    }
}
"""
_ENTRY = re.compile(r'extern "C" __global__ void (\w+)\((.*?)\)\s*\{', re.S)
# a kernel's dynamic shared memory, the prelude's buffer here
_DYNAMIC_SHARED = re.compile(r"extern __shared__[^;]*tinynet_shared\[\];")
_BUILT = {}
SOURCES = []  # every source given to Module, in order (see nvrtc_log)


def compiler():
    """The C++ compiler's path, or ``None``."""
    return shutil.which("g++")


_PROBE = r"""
extern "C" __global__ void tn_probe(int* out) {
    __shared__ int seen[2];
    seen[threadIdx.x] = threadIdx.x + 1;
    __syncthreads();
    out[threadIdx.x] = seen[1 - threadIdx.x];
}
"""


def unavailable():
    """Why CUDA source cannot run on this machine's CPU (no g++, no ucontext), or ``None``: a
    two-thread kernel that swaps values through shared memory is compiled and run. (A failure
    of the real kernels' source after this probe passed is theirs, not the machine's.)"""
    if compiler() is None:
        return "no C++ compiler (g++) to run the CUDA source on the CPU"
    try:
        out = np.zeros(2, np.int32)
        Module(_PROBE).get_function("tn_probe")((1,), (2,), (out,))
    except (RuntimeError, OSError) as e:
        return f"the CUDA source cannot run on this CPU: {str(e)[:300]}"
    if out.tolist() != [2, 1]:
        return f"the emulation's barrier does not hold here (got {out.tolist()})"
    return None


class Module:
    """A stand-in for ``cupy.RawModule``: ``get_function(name)(grid, block, args, shared_mem=0)``
    runs the kernel on the CPU, its array arguments NumPy arrays (the kernel gets a pointer to
    each one's first element, as CuPy passes a view)."""

    def __init__(self, code, **options):
        if code not in SOURCES:
            SOURCES.append(code)
        self.signatures, wrappers = {}, []
        for name, params in _ENTRY.findall(code):
            params = [p.strip() for p in " ".join(params.split()).split(",")]
            names = [p.split()[-1].lstrip("*") for p in params]
            self.signatures[name] = params
            wrappers.append(f'extern "C" void tn_launch_{name}(unsigned gx, unsigned gy, '
                            f'unsigned gz, unsigned bx, unsigned by, unsigned bz, '
                            f'unsigned shared, {", ".join(params)}) {{ tn_shared_bytes = shared; '
                            f'tn_launch(gx, gy, gz, bx, by, bz, [=] {{ '
                            f'{name}({", ".join(names)}); }}); }}')
        source = (PRELUDE + _DYNAMIC_SHARED.sub("", code) + "\n" + "\n".join(wrappers) + "\n")
        key = hashlib.sha1(source.encode()).hexdigest()[:16]
        if key not in _BUILT:
            with tempfile.TemporaryDirectory(prefix="tinynet_cuda_on_cpu_") as folder:
                folder = pathlib.Path(folder)  # (the library stays loaded once its file is gone)
                (folder / "kernels.cpp").write_text(source)
                done = subprocess.run([compiler(), "-std=c++17", "-O1", "-shared", "-fPIC", "-w",
                                       "-o", str(folder / "kernels.so"),
                                       str(folder / "kernels.cpp")], capture_output=True,
                                      text=True)
                if done.returncode != 0:
                    raise RuntimeError("g++ could not compile the CUDA source:\n"
                                       + done.stderr[-3000:])
                _BUILT[key] = ctypes.CDLL(str(folder / "kernels.so"))
        self.library = _BUILT[key]

    def get_function(self, name):
        params, launch = self.signatures[name], getattr(self.library, f"tn_launch_{name}")

        def run(grid, block, args, shared_mem=0):
            if len(args) != len(params):
                raise TypeError(f"{name}: {len(args)} arguments for {len(params)} parameters")
            if shared_mem > 48 * 1024:  # (a GPU refuses more without asking for it)
                raise ValueError(f"{name}: {shared_mem} bytes of shared memory")
            grid, block = (tuple(grid) + (1, 1))[:3], (tuple(block) + (1, 1))[:3]
            values = [ctypes.c_uint(int(v)) for v in grid + block + (shared_mem,)]
            for param, arg in zip(params, args):
                if param.startswith("bool"):
                    values.append(ctypes.c_bool(bool(arg)))
                elif "*" in param:
                    if not isinstance(arg, np.ndarray):
                        raise TypeError(f"{name}: {param} must be an array, got {type(arg)}")
                    values.append(ctypes.c_void_p(arg.ctypes.data))  # (its first element)
                elif param.startswith("long long"):  # CuPy passes a Python int as 64 bits,
                    if not isinstance(arg, np.int64):  # so a GPU needs NumPy's int types
                        raise TypeError(f"{name}: {param} needs an np.int64, got {arg!r}")
                    values.append(ctypes.c_longlong(int(arg)))
                else:
                    if not (param.startswith("int") and isinstance(arg, np.int32)):
                        raise TypeError(f"{name}: {param} needs an np.int32, got {arg!r}")
                    values.append(ctypes.c_int(int(arg)))
            overrun = ctypes.c_int.in_dll(self.library, "tn_overrun")
            overrun.value = 0
            launch(*values)
            if overrun.value:
                raise RuntimeError(f"{name} wrote past the {shared_mem} bytes of shared memory "
                                   "its launch gave it")
        return run


_C_TYPES = {"int32": ("int", ctypes.c_int), "bool": ("bool", ctypes.c_bool),
            "float32": ("float", ctypes.c_float), "float64": ("double", ctypes.c_double)}


class Elementwise:
    """A stand-in for ``cupy.ElementwiseKernel(in_params, out_params, operation, name)``: the
    operation runs for each ``i`` of the outputs' size, one after the other. A ``raw`` array is
    a pointer (the operation indexes it); any other array parameter is its element ``i``
    (outputs by reference); ``T`` is the arrays' float type. Every output is passed in (as
    cupy_gpu does), of one size; an input array of another size is refused (no broadcasting)."""

    def __init__(self, in_params, out_params, operation, name, **options):
        self.name, self.operation = name, operation
        self.params = [(p.split()[-1], p.split()[-2], p.split()[0] == "raw", i >= 0)
                       for i, p in enumerate(x.strip() for x in in_params.split(","))]
        self.params += [(p.split()[-1], p.split()[-2], False, False)
                        for p in (x.strip() for x in out_params.split(","))]
        self.libraries = {}

    def _library(self, t):
        if t not in self.libraries:
            decl, body = [], []
            for name, kind, raw, is_input in self.params:
                ctype = t if kind == "T" else _C_TYPES[kind][0]
                decl.append(f"{'const ' if is_input else ''}{ctype}* {name}_at, bool {name}_array")
                if raw:
                    body.append(f"const {ctype}* {name} = {name}_at;")
                elif is_input:
                    body.append(f"const {ctype} {name} = {name}_array ? {name}_at[i] : *{name}_at;")
                else:
                    body.append(f"{ctype}& {name} = {name}_at[i];")
            code = (f'extern "C" __global__ void tn_{self.name}(long long size, {", ".join(decl)})'
                    f' {{\n using T = {t};\n for (ptrdiff_t i = 0; i < size; ++i) {{\n'
                    + "\n".join(body)
                    + "\n" + self.operation + "\n }\n}\n")
            self.libraries[t] = Module(code).get_function(f"tn_{self.name}")
        return self.libraries[t]

    def __call__(self, *args):
        if len(args) != len(self.params):
            raise TypeError(f"{self.name}: {len(args)} arguments for {len(self.params)}")
        arrays = [a for a, (_, kind, _, _) in zip(args, self.params)
                  if kind == "T" and isinstance(a, np.ndarray)]
        t = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}[arrays[0].dtype]
        size = args[len(args) - 1].size
        values, keep = [np.int64(size)], []
        for a, (name, kind, raw, is_input) in zip(args, self.params):
            dtype = arrays[0].dtype if kind == "T" else np.dtype(kind)
            if isinstance(a, np.ndarray):
                if not (raw or a.size == size) or a.dtype != dtype or not a.flags.c_contiguous:
                    raise TypeError(f"{self.name}: {name} {a.shape} {a.dtype} does not fit")
                values += [a, 1]
            else:
                keep.append(np.array([a], dtype=dtype))  # a scalar: its element 0
                values += [keep[-1], 0]
        self._library(t)((1,), (1,), values)


class _SumOverAxis:
    """``cupy.ReductionKernel`` for the one reduction cupy_gpu declares (a sum of the product's
    parts over axis 0), as NumPy's sum."""

    def __init__(self, in_params, out_params, map_expr, reduce_expr, *args, **kwargs):
        assert reduce_expr.replace(" ", "") == "a+b", reduce_expr

    def __call__(self, array, axis):
        return array.sum(axis=axis)


def fake_cupy():
    cp = types.ModuleType("cupy")
    for name in ("ndarray", "empty", "zeros", "empty_like", "ascontiguousarray", "asarray",
                 "int32"):
        setattr(cp, name, getattr(np, name))
    cp.asnumpy = np.asarray
    cp.RawModule, cp.ElementwiseKernel, cp.ReductionKernel = Module, Elementwise, _SumOverAxis
    return cp


def load_cupy_gpu():
    """``tinynet.kernels.cupy_gpu`` loaded with NumPy standing in for CuPy and its raw kernels
    compiled for the CPU (a module of its own: the real one, and ``sys.modules["cupy"]``, are
    left as they were)."""
    path = importlib.util.find_spec("tinynet.kernels.cupy_gpu").origin
    spec = importlib.util.spec_from_file_location("tinynet.kernels._cupy_gpu_on_cpu", path)
    module = importlib.util.module_from_spec(spec)
    before = sys.modules.get("cupy")
    sys.modules["cupy"] = fake_cupy()
    try:
        spec.loader.exec_module(module)
    finally:
        if before is None:
            del sys.modules["cupy"]
        else:
            sys.modules["cupy"] = before
    return module


def nvrtc():
    """NVIDIA's runtime CUDA compiler (NVRTC, the one CuPy compiles with), loaded from the
    ``nvidia-cuda-nvrtc-cu12`` package (the ``cuda-check`` extra) or the system; ``None``
    where there is none. It compiles to PTX without a GPU."""
    import ctypes.util
    import glob
    try:
        import nvidia.cuda_nvrtc
        folders = list(nvidia.cuda_nvrtc.__path__)
    except ImportError:
        folders = []
    candidates = [p for folder in folders for p in sorted(glob.glob(f"{folder}/lib/libnvrtc.so*"))
                  if "builtins" not in p and ".alt." not in p]
    found = ctypes.util.find_library("nvrtc")
    for path in candidates + ([found] if found else []):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def nvrtc_log(library, code, arch="compute_90"):
    """``None`` when NVRTC compiles ``code`` for ``arch`` (compute_90: the H100 and H200), else
    its log."""
    program = ctypes.c_void_p()
    if library.nvrtcCreateProgram(ctypes.byref(program), code.encode(), b"tinynet.cu", 0, None,
                                  None) != 0:
        return "nvrtcCreateProgram failed"
    try:
        options = (ctypes.c_char_p * 1)(f"-arch={arch}".encode())
        status = library.nvrtcCompileProgram(program, 1, options)
        size = ctypes.c_size_t()
        library.nvrtcGetProgramLogSize(program, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        library.nvrtcGetProgramLog(program, log)
        return None if status == 0 else log.value.decode(errors="replace")
    finally:
        library.nvrtcDestroyProgram(ctypes.byref(program))
