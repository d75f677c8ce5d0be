"""The floor plan holds: ARCHITECTURE.md, the import-linter contract and the code agree.

`lint-imports` (run by scripts/test) checks that imports point only down the layers; these tests
check what it does not: that every package has a place in the documented layers, that the
contract and the document name the same layers, that no import cycle exists (TYPE_CHECKING
imports included), and the size limits of modules and functions.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import accessaudit

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(accessaudit.__file__).resolve().parent
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
#: Comments that cite a tracker nobody can open. A third party's public issue is fine
#: ("ldap3 issue 336"), so only our own kinds of reference are refused.
TRACKER = re.compile(r"(?i)(?<![\w-] )\b(?:issue|goal|user story|session)\s*#?\d+")


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every accessaudit module ``module`` imports, wherever the import statement is."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module and name.startswith("accessaudit."):
                found.add(name)
    return found


def _layers_contract() -> list[set[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    [contract] = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    return [{p.strip() for p in layer.split("|")} for layer in contract["layers"]]


def _layers_documented() -> list[set[str]]:
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d) \| ([^|]+) \|", text, flags=re.MULTILINE)
    return [set(re.findall(r"`(\w+)`", packages)) for _, packages in rows]


def test_the_documented_layers_are_the_checked_layers() -> None:
    assert _layers_documented() == _layers_contract()


def test_every_package_and_top_level_module_has_a_layer() -> None:
    placed = set().union(*_layers_contract())
    top = {
        p.stem if p.is_file() else p.name
        for p in PACKAGE.iterdir()
        if (p.suffix == ".py" and p.stem not in ("__init__", "__main__"))
        or (p.is_dir() and (p / "__init__.py").exists())
    }
    assert top - placed == set()


def test_no_import_cycles() -> None:
    modules = _modules()
    graph = {m: _imports(m, p, modules) for m, p in modules.items()}
    # Tarjan's strongly connected components, iteratively
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    component.append(m)
                    if m == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    assert cycles == []


def test_module_and_function_sizes() -> None:
    too_long_modules = []
    too_long_functions = []
    for module, path in _modules().items():
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) > MAX_MODULE_LINES:
            too_long_modules.append(f"{module}: {len(lines)}")
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            marked = first >= 2 and lines[first - 2].strip().startswith("# long:")
            if length > MAX_FUNCTION_LINES and not marked:
                too_long_functions.append(f"{module}.{node.name}: {length}")
    assert too_long_modules == []
    assert too_long_functions == []


def test_comments_explain_the_code_not_its_history() -> None:
    cited = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in [*PACKAGE.rglob("*.py"), *(ROOT / "rules").glob("*.toml")]
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if TRACKER.search(line)
    ]
    assert cited == []
