"""The codebase's shape: imports run one way, no import circles, every third-party import declared.

core (tracker/*.py) <- the collector (tracker/collect) and the webhooks (tracker/webhooks)
<- reports (reports/) <- the composition roots (the app factory, the command line root, wsgi).
"""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The composition roots: the app factory, wsgi, the server, and the command line (its root and the
# groups it keeps itself, tracker/cli/).
ROOTS = {"tracker.app", "tracker.wsgi", "tracker.server", "tracker.__main__"}
ROOT_PACKAGES = ("tracker.cli",)
LAYERS = {"core": 0, "tracker.collect": 1, "tracker.webhooks": 1, "reports": 2, "root": 3}


def _modules() -> dict[str, Path]:
    found = {}
    for package in ("tracker", "reports"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _layer(module: str) -> str:
    if module in ROOTS or any(module == p or module.startswith(p + ".") for p in ROOT_PACKAGES):
        return "root"
    for prefix in ("tracker.collect", "tracker.webhooks", "reports"):
        if module == prefix or module.startswith(prefix + "."):
            return prefix
    return "core"


def _imports(path: Path, top_level_only: bool = False) -> list[tuple[str, ast.AST]]:
    """(imported module, node) for every import of the project's own modules in a file."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    if top_level_only:  # also imports inside module-level if/try blocks, not in functions
        nodes = [n for stmt in tree.body for n in ast.walk(stmt)
                 if not isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(alias.name, node) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node))
            # `from reports import api` imports the module reports.api
            found += [(f"{node.module}.{a.name}", node) for a in node.names
                      if f"{node.module}.{a.name}" in MODULES]
    return [(name, node) for name, node in found if name.split(".")[0] in ("tracker", "reports")]


def _is_type_checking(node: ast.AST, tree: ast.Module) -> bool:
    for stmt in tree.body:
        if isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test):
            if any(child is node for child in ast.walk(stmt)):
                return True
    return False


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_one_way(module):
    """No module imports from a layer above its own, and the collector and the webhooks do not
    import each other."""
    own = _layer(module)
    for name, _node in _imports(MODULES[module]):
        target = _layer(name)
        assert LAYERS[target] <= LAYERS[own], f"{module} ({own}) imports {name} ({target})"
        if LAYERS[target] == LAYERS[own] == 1:
            assert target == own, f"{module} imports {name}: the collector and the webhooks are peers"


def test_no_import_circles():
    graph = {m: {n for n, _ in _imports(p, top_level_only=True) if n in MODULES and n != m}
             for m, p in MODULES.items()}
    # A package's __init__ is imported with each of its submodules; an edge back to it is not a circle.
    for module, targets in graph.items():
        targets.difference_update({t for t in targets if module.startswith(t + ".")})
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import circle: " + " -> ".join(path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_function_level_imports_say_what_they_buy(module):
    """Imports sit at the top of a module; one inside a function is a package gathering its own
    submodules, or carries a comment (on its line or the line above) saying what it buys."""
    path = MODULES[module]
    source = path.read_text().splitlines()
    tree = ast.parse("\n".join(source))
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(func):
            if not isinstance(node, ast.Import | ast.ImportFrom) or _is_type_checking(node, tree):
                continue
            own_package = path.name == "__init__.py" and isinstance(node, ast.ImportFrom) and (
                node.module == module)
            line = source[node.lineno - 1]
            above = source[node.lineno - 2].strip() if node.lineno > 1 else ""
            assert own_package or "#" in line or above.startswith("#"), (
                f"{module}:{node.lineno}: `{line.strip()}` inside a function without saying why")


def test_every_third_party_import_is_a_declared_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(spec) for spec in project["dependencies"]}
    distributions = packages_distributions()
    files = [*MODULES.values(), *(ROOT / "migrations").rglob("*.py")]
    missing = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in ("tracker", "reports", "__future__"):
                    continue
                owners = {_name(d) for d in distributions.get(top, [top])}
                if not owners & declared:
                    missing.add(f"{top} ({path.relative_to(ROOT)})")
    assert not missing, f"imported but not declared in pyproject.toml: {sorted(missing)}"


def _name(spec: str) -> str:
    for stop in "<>=!~[; ":
        spec = spec.split(stop)[0]
    return spec.strip().lower().replace("_", "-")
