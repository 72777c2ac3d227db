"""The import graph between ddapps' subpackages, checked against the design card's layering.

``python -m ddapps.tools.layers`` prints which unit imports which and exits 1 if any rule is
broken (``make test`` runs it through ``tests/test_layers.py``). Imports inside functions count.

Units: the **core** (data, nets, augment, methods, evaluation, dp, utils and the top-level modules
such as ``synthetic``), the **tools** built on it (``bench``, ``distributed``), the
**applications** (``continual``, ``nas``, ``federated``, ``privacy``) and the **command line**
(``ddapps.cli``). Rules:

1. the core imports no tool, application or command line;
2. a tool imports no application and no command line beyond its public helpers (``ddapps.cli.common``);
3. an application imports no other application (except ``federated`` -> ``privacy``, whose audit it may use);
4. nothing imports a private name (``_x``) of another unit.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

APPLICATIONS = ("continual", "nas", "federated", "privacy")
TOOLS = ("bench", "distributed", "tools")
CLI = "cli"
ALLOWED_APP_EDGES = {("federated", "privacy")}
PUBLIC_CLI = ("ddapps.cli.common",)


@dataclass(frozen=True)
class Edge:
    """``source`` module imports ``target`` (a module, or a module's name when ``name`` is set)."""

    source: str
    target: str
    name: str | None
    line: int


def unit_of(module: str) -> str:
    """The unit of a dotted ddapps module: its first component below ``ddapps`` (``core`` for the rest)."""
    parts = module.split(".")
    if len(parts) < 2:
        return "core"
    head = parts[1]
    if head in APPLICATIONS or head in TOOLS:
        return head
    if head in (CLI, "cli_experts"):
        return CLI
    return "core"


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, module: str) -> list[Edge]:
    """Every ddapps import of one file (absolute and relative, at any depth)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    edges = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            edges += [Edge(module, a.name, None, node.lineno) for a in node.names if a.name.startswith("ddapps")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.startswith("ddapps"):
                edges += [Edge(module, base, a.name, node.lineno) for a in node.names]
    return edges


def violations(edges: list[Edge]) -> list[str]:
    """The rules each edge breaks, as readable lines."""
    found = []
    for e in edges:
        src, dst = unit_of(e.source), unit_of(e.target)
        where = f"{e.source}:{e.line} imports {e.target}" + (f".{e.name}" if e.name else "")
        if src == dst:
            continue
        if src == "core" and dst != "core":
            found.append(f"core -> {dst}: {where}")
        elif src in TOOLS and (dst in APPLICATIONS or (dst == CLI and not e.target.startswith(PUBLIC_CLI))):
            found.append(f"tool -> {dst}: {where}")
        elif src in APPLICATIONS and dst in APPLICATIONS and (src, dst) not in ALLOWED_APP_EDGES:
            found.append(f"application -> application: {where}")
        if e.name and e.name.startswith("_") and not e.name.startswith("__"):
            found.append(f"private name of another unit: {where}")
    return found


def scan(root: Path) -> list[Edge]:
    edges = []
    for path in sorted(root.rglob("*.py")):
        edges += imports(path, module_name(path, root))
    return edges


def graph(edges: list[Edge]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for e in edges:
        src, dst = unit_of(e.source), unit_of(e.target)
        if src != dst:
            out[src].add(dst)
    return out


def main(argv: list[str] | None = None) -> int:
    root = Path(__file__).resolve().parents[1]
    edges = scan(root)
    for src, dsts in sorted(graph(edges).items()):
        print(f"{src:>11} -> {', '.join(sorted(dsts))}")
    bad = violations(edges)
    for line in bad:
        print(f"violation: {line}", file=sys.stderr)
    print(f"{len(edges)} imports, {len(bad)} violation(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
