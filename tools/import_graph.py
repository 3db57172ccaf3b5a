"""Draw the project's import graph and list its cycles (issue 12: "draw the import graph").

    python tools/import_graph.py                 # cycles (strongly connected groups) and a count
    python tools/import_graph.py --dot graph.dot # also the graph for Graphviz: dot -Tsvg graph.dot
    python tools/import_graph.py --check         # exit 1 on a cycle or a broken layer rule (LAYERS)

Reads the sources with `ast` (nothing is imported or run). Every import counts, at the top of a
module or inside a function (a lazy import is still a dependency); `from pkg import name` counts
as an import of `pkg.name` when that is a module, else of `pkg`. A package's `__init__` is its own
node. Packages scanned: tuner, model, benchmarks.

Layer rule (``--check``, tests/test_import_graph.py): no module of ``tuner.core`` imports Ray,
torch or MLflow, nor a module of ``model``, ``benchmarks`` or the other rooms of ``tuner`` (only
``tuner.core``, the shared leaves ``tuner.contract``/``tuner.errors``/``tuner.folders`` and the
trial's settings table ``tuner.training.settings``, itself Ray- and torch-free).
"""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tuner", "model", "benchmarks")


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of PACKAGES."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def edges(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports (anywhere in its body)."""
    graph: dict[str, set[str]] = {name: set() for name in mods}
    for name, path in mods.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:   # relative import
                    anchor = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for target in targets:
                while target and target not in mods:     # `import tuner.x.y` -> closest module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


# The Ray-free core and what it may import from the project (prefixes) and never from outside.
CORE = "tuner.core"
CORE_MAY_IMPORT = ("tuner.core", "tuner.contract", "tuner.errors", "tuner.folders", "tuner.training.settings")
CORE_NEVER_IMPORTS = ("ray", "torch", "mlflow", "tensorboardX", "model", "benchmarks")


def third_party(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the top-level names of what it imports from outside the scanned packages."""
    found: dict[str, set[str]] = {name: set() for name in mods}
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                tops = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                tops = {node.module.split(".")[0]}
            else:
                continue
            found[name] |= {top for top in tops if top not in PACKAGES}
    return found


def _inside(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def layer_violations(graph: dict[str, set[str]], outside: dict[str, set[str]]) -> list[str]:
    """One line per import of a ``tuner.core`` module that breaks the layer rule."""
    bad = []
    for name in sorted(graph):
        if not _inside(name, CORE):
            continue
        for target in sorted(graph[name]):
            if not any(_inside(target, prefix) for prefix in CORE_MAY_IMPORT):
                bad.append(f"{name} imports {target} (the core may import only {', '.join(CORE_MAY_IMPORT)})")
        for top in sorted(outside[name] & set(CORE_NEVER_IMPORTS)):
            bad.append(f"{name} imports {top} (the core imports none of {', '.join(CORE_NEVER_IMPORTS)})")
    return bad


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(groups)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dot", help="also write the graph in Graphviz dot format to this file")
    parser.add_argument("--check", action="store_true",
                        help="exit with status 1 on an import cycle or a broken layer rule")
    args = parser.parse_args(argv)
    mods = modules()
    graph = edges(mods)
    found = cycles(graph)
    broken = layer_violations(graph, third_party(mods))
    print(f"{len(graph)} modules, {sum(map(len, graph.values()))} imports, {len(found)} import cycles, "
          f"{len(broken)} layer rule breaks")
    for group in found:
        print("cycle: " + " <-> ".join(group))
    for line in broken:
        print("layer: " + line)
    if args.dot:
        lines = ["digraph imports {", "  rankdir=LR;"]
        lines += [f'  "{a}" -> "{b}";' for a in sorted(graph) for b in sorted(graph[a])]
        Path(args.dot).write_text("\n".join(lines + ["}"]) + "\n")
    return 1 if args.check and (found or broken) else 0


if __name__ == "__main__":
    raise SystemExit(main())
