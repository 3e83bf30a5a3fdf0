"""Start-up stays light: importing the registries and the command line pulls in no torch and no
scipy.signal (they load when a method first needs them), so ``bench list`` and ``--help`` start fast."""
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize("module", ["methods", "metrics", "bench.cli"])
def test_import_loads_no_heavy_library(module):
    code = (f"import sys, {module}\n"
            "heavy = sorted(m for m in ('torch', 'scipy.signal', 'matplotlib.pyplot') if m in sys.modules)\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing {module} loaded {out.stdout.strip()}"


def test_listing_methods_loads_no_torch():
    code = "import sys\nfrom bench.cli import main\nmain(['list', 'methods'])\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


# ----------------------------------------------------------------------------------------- layer order

import ast  # noqa: E402

PACKAGES = ("common", "metrics", "methods", "bench")
# what each package may import from the project: common at the bottom; metrics and methods on it (methods
# may score with metrics, e.g. a GAN's validation); bench, the command line and studies, on top of all
ALLOWED = {"common": {"common"}, "metrics": {"common", "metrics"}, "methods": {"common", "metrics", "methods"},
           "bench": set(PACKAGES)}


def project_modules() -> dict[str, object]:
    """{dotted module name: path} of every module of the four packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports_of(name: str, path, modules) -> list[tuple[str, bool]]:
    """(imported project module, at module level?) for every import statement in the file, function-local
    ones included; ``from pkg import name`` counts as importing ``pkg.name`` when that is a module."""
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    top = set(map(id, tree.body))
    found = []

    def add(target, level_ok):
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target:
            found.append((target, level_ok))

    for node in ast.walk(tree):
        at_top = id(node) in top
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, at_top)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                add(full if full in modules else base, at_top)
    return found


def test_no_upward_import_anywhere():
    modules = project_modules()
    wrong = []
    for name, path in modules.items():
        package = name.split(".")[0]
        for target, _ in imports_of(name, path, modules):
            if target.split(".")[0] not in ALLOWED[package]:
                wrong.append(f"{name} imports {target}")
    assert not wrong, "imports against the layer order:\n" + "\n".join(sorted(set(wrong)))


def test_no_import_cycle_at_module_level():
    modules = project_modules()
    graph = {name: {t for t, top in imports_of(name, path, modules) if top and t != name}
             for name, path in modules.items()}
    # a package's __init__ imports what its submodules import from it first; a submodule importing its
    # own package's __init__ is how Python loads it, not a cycle
    for name in graph:
        graph[name] -= {p for p in (name.rsplit(".", i)[0] for i in range(1, name.count(".") + 1))}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):                                   # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    import sys
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))
    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, f"module-level import cycles: {cycles}"


def test_the_checker_sees_an_upward_import(tmp_path):
    """The walk itself: a function-local upward import and a relative one are both found."""
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from bench.datasets import Registry\nfrom . import sibling\n")
    found = imports_of("methods.m", path, {"methods.m": path, "methods.sibling": path, "bench.datasets": path})
    assert ("bench.datasets", False) in found and ("methods.sibling", True) in found
