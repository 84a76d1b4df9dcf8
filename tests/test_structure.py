"""The shape of the package (issue 12): no module of tinynet imports, directly or through others,
a module that imports it back -- counting imports inside functions too, which is how cycles used
to hide (backend <-> kernels.numba_cpu, io <-> model)."""
import ast
from pathlib import Path

import tinynet

PACKAGE = Path(tinynet.__file__).parent


def _module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(current, node):
    """The tinynet modules an import node names (``from . import a, b`` names a and b)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.startswith("tinynet")]
    package = current.split(".") if current == "tinynet" or current.endswith("__init__") else \
        current.split(".")[:-1]
    if node.level:
        base = package[:len(package) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not target.startswith("tinynet"):
        return []
    return [target] + [f"{target}.{a.name}" for a in node.names]


def import_graph():
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        me = name + (".__init__" if path.name == "__init__.py" else "")
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges.update(t for t in _resolve(me, node) if t in modules and t != name)
        graph[name] = edges - {"tinynet"}  # the package itself only re-exports
    return graph


def test_the_import_graph_of_tinynet_has_no_cycle():
    graph = import_graph()
    assert "tinynet.backend" in graph and "tinynet.kernels.numpy_ref" in graph["tinynet.backend"]
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_kernel_imports_the_backend_or_changes_a_process_setting():
    for path in (PACKAGE / "kernels").glob("*.py"):
        text = path.read_text()
        assert "backend" not in {a.split(".")[-1] for a in _imports(text)}, path.name
        assert "os.environ[" not in text and "set_blas_threads" not in text, path.name


def _imports(text):
    names = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom):
            names.update(a.name for a in node.names)
            names.add(node.module or "")
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names
