"""Import floors: utils/cfg → nn, data → engine → models/cli, with no upward imports and no cycles."""

import ast
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "ultralytics"
FLOORS = {"utils": 0, "cfg": 0, "nn": 1, "data": 1, "engine": 2, "models": 3, "cli": 3, "__main__": 3}


def _module_name(path):
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path, top_level_only=False):
    """Absolute names of the ultralytics modules a file imports (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("ultralytics"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            if base.startswith("ultralytics"):
                found.add(base)
    return found


def _floor(module):
    parts = module.split(".")
    return FLOORS.get(parts[1]) if len(parts) > 1 else None


def test_no_import_goes_up_a_floor():
    violations = []
    for path in PKG.rglob("*.py"):
        src = _module_name(path)
        own = _floor(src)
        if own is None:
            continue  # the top-level package re-exports lazily and sits above every floor
        for target in _imports(path):
            floor = _floor(target)
            if floor is not None and floor > own:
                violations.append(f"{src} (floor {own}) imports {target} (floor {floor})")
    assert not violations, "\n".join(violations)


def test_no_import_cycles():
    modules = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph = {m: {t for t in _imports(p, top_level_only=True) if t in modules and t != m} for m, p in modules.items()}
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(nxt) :], nxt]))
            if nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for module in graph:
        if module not in state:
            visit(module, [module])


def test_import_is_cheap_and_side_effect_free():
    """``import ultralytics`` must not pull in torch-heavy floors or touch the file system."""
    code = "import sys, ultralytics; print(sorted(m for m in sys.modules if m.startswith('ultralytics')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['ultralytics']"
