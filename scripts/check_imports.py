"""Dependencies point one way: pure modules import no I/O module, and the package's imports have no cycle.

    python scripts/check_imports.py            # exit 1 with one line per problem (`make lint` runs it)

Every module of `restart/` is listed below as pure (data in, data out: no network, files, clock, threads
or signals) or I/O. A pure module may import only pure modules of the package and none of `IO_LIBRARIES`.
A module in neither list is a problem too: a new module is classified when it is added. Imports are read
with `ast` (function-level and `TYPE_CHECKING` imports included), so nothing is executed.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

PACKAGE = "restart"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE

PURE = frozenset(
    {
        "__init__", "artifacts", "avoided", "cause", "commands", "context", "dbt_vocabulary", "decide",
        "engines", "fusion", "graph", "microbatch", "outcome", "outputs", "overrides", "plan", "records",
        "redaction", "selection", "selector", "settings", "summary", "transient", "verify", "webhook",
    }
)  # fmt: skip
IO = frozenset(
    {
        "__main__", "actions", "api", "cli", "followup", "github", "jobs", "orchestrate", "poll", "relay",
        "signals", "transport", "trigger",
    }
)  # fmt: skip
# Libraries a pure module never imports: the network, processes, threads, signals, the clock, randomness.
IO_LIBRARIES = frozenset(
    {
        "requests", "urllib3", "github", "socket", "http", "subprocess", "threading", "concurrent", "signal",
        "time", "random", "secrets", "os", "sys", "io", "shutil", "tempfile",
    }
)  # fmt: skip
# Known exceptions, each with the reason it is allowed; remove an entry once its reason is gone.
ALLOWED = {
    # The marker's random nonce; only the executor calls `next_marker`.
    ("cause", "secrets"): "the marker's nonce",
}


def imports(path: Path, package: str = PACKAGE) -> Iterator[tuple[str, int]]:
    """(imported top-level name or package module, line) for every import in the file at `path`.

    A module of the package is named by its file stem (`restart.api` -> `api`); anything else by its
    top-level name (`requests.adapters` -> `requests`).
    """
    modules = {p.stem for p in path.parent.glob("*.py")}
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield _name(alias.name, package), node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == package:  # from restart import api, decide (or a name of __init__)
                for alias in node.names:
                    yield (alias.name if alias.name in modules else "__init__"), node.lineno
            else:
                yield _name(node.module, package), node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            for alias in node.names:  # relative: from . import x / from .x import y
                yield (node.module or alias.name).split(".")[0], node.lineno


def _name(module: str, package: str) -> str:
    head, _, rest = module.partition(".")
    return rest.split(".")[0] if head == package and rest else head


def graph(root: Path = ROOT, package: str = PACKAGE) -> dict[str, dict[str, int]]:
    """Each module of the package -> the package modules it imports (with the first line of each)."""
    modules = {p.stem: p for p in sorted(root.glob("*.py"))}
    found: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        edges: dict[str, int] = {}
        for target, line in imports(path, package):
            if target in modules and target != name:
                edges.setdefault(target, line)
        found[name] = edges
    return found


def cycles(edges: Mapping[str, Mapping[str, int]]) -> list[list[str]]:
    """The import cycles, each as a path that starts and ends at the same module (one per cycle found)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(edges):
        if state.get(start):
            continue
        path: list[str] = []
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(edges[start])))]
        state[start], path = 1, [start]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                state[node] = 2
            elif state.get(child) == 1:
                found.append([*path[path.index(child) :], child])
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(edges.get(child, {})))))
    return found


def problems(
    root: Path = ROOT,
    package: str = PACKAGE,
    pure: frozenset[str] = PURE,
    io: frozenset[str] = IO,
    allowed: Mapping[tuple[str, str], str] = ALLOWED,
) -> list[str]:
    """One line per broken rule (empty when the package keeps them all)."""
    lines: list[str] = []
    edges = graph(root, package)
    for name in sorted(edges):
        where = f"{package}/{name}.py"
        if name not in pure and name not in io:
            lines.append(f"{where}: neither pure nor I/O: add it to PURE or IO in scripts/check_imports.py")
            continue
        if name not in pure:
            continue
        for target, line in edges[name].items():
            if target not in pure and (name, target) not in allowed:
                lines.append(f"{where}:{line}: pure module imports the I/O module {package}.{target}")
        for target, line in imports(root / f"{name}.py", package):
            if target in IO_LIBRARIES and target not in edges and (name, target) not in allowed:
                lines.append(f"{where}:{line}: pure module imports {target}")
    for cycle in cycles(edges):
        lines.append(f"{package}/: import cycle {' -> '.join(cycle)}")
    return lines


def main() -> int:
    found = problems()
    for line in found:
        print(line, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
