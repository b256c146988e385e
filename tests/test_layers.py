"""The shape of the house, read statically from the source: layers point one way, no import
cycle (function-level imports included: a lazy import does not hide one), settings at the bottom,
no venue named outside ``market/venues/``, no module over 500 lines.

The graph is the runtime imports of ``market/`` (``if TYPE_CHECKING:`` blocks excluded), as the
interpreter would follow them, resolved to the package's own modules.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

MARKET = ROOT / "market"
MAX_LINES = 500
# bottom to top; a module is in the layer of its longest matching prefix
LAYERS = (
    ("market", "market.errors", "market.events", "market.backoff", "market.redact",
     "market.symbols", "market.urls", "market.recording"),
    ("market.settings",),
    ("market.book", "market.sync", "market.analytics", "market.metrics", "market.views",
     "market.store", "market.wants"),
    ("market.venues",),
    ("market.pipeline", "market.connection", "market.transport", "market.replay", "market.feed",
     "market.bench"),
    ("market.worker", "market.history", "market.bus"),
    ("market.cli", "market.__main__"),
)  # fmt: skip
VENUE_WORD = re.compile(r"binance|bybit|hyperliquid|\bmock\b", re.I)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(MARKET.rglob("*.py"))}


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(name: str) -> set[str]:
    """The package's modules ``name`` imports at run time, anywhere in its code."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for other in child.orelse:
                    visit(other)
                continue
            targets: list[str] = []
            if isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    module = ".".join(base + ([child.module] if child.module else []))
                else:
                    module = child.module or ""
                targets = [module] + [f"{module}.{alias.name}" for alias in child.names]
            found.update(t for t in targets if t in MODULES)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    found.discard(name)
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def layer(name: str) -> int:
    best = (-1, -1)
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best[1]:
                best = (i, len(prefix))
    assert best[0] >= 0, f"{name}: in no layer (add it to LAYERS)"
    return best[0]


def test_every_module_has_a_layer_and_imports_point_down() -> None:
    upward = sorted((m, d) for m, deps in GRAPH.items() for d in deps if layer(d) > layer(m))
    assert upward == []


def test_no_import_cycle() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def strong(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            strong(v)
    assert cycles == []


def test_settings_is_at_the_bottom() -> None:
    below = set(LAYERS[0])
    assert GRAPH["market.settings"] <= below, GRAPH["market.settings"] - below
    assert all(GRAPH[m] <= below for m in GRAPH["market.settings"])


@pytest.mark.parametrize("top", [MARKET, ROOT / "app"], ids=["market", "app"])
def test_no_venue_is_named_outside_the_venues(top: Path) -> None:
    named = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted(top.rglob("*.py"))
        if MARKET / "venues" not in path.parents
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if VENUE_WORD.search(line)
    ]
    assert named == []


def test_no_module_over_the_limit() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for top in (MARKET, ROOT / "app")
        for path in top.rglob("*.py")
    }
    assert {p: n for p, n in sizes.items() if n > MAX_LINES} == {}
