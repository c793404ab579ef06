"""The layering of ARCHITECTURE.md, checked on the source: a lower app never imports a higher one,
and no two apps import each other (directly or round a longer loop).

Every module of the ``otomat`` package is parsed with :mod:`ast`, so imports inside functions
count exactly like those at the top of a module: a function-local import hides a dependency from
the reader, not from the running program. Test modules (``tests/`` folders and ``conftest.py``)
are not checked: nothing imports them, so they add no dependency to the running code, and a
lower app's tests may build a higher app's rows to see its own signals reach them.

How a lower app tells a higher one about something without importing it: a Django signal (e.g.
``otomat.instances.signals``) or a registration hook the higher app calls in its ``ready()``
(e.g. ``otomat.support.apps`` registering with notify). A page that shows several domains is
composed in ``otomat/web`` (or the higher app that owns it)."""

from __future__ import annotations

import ast
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path

import otomat

PACKAGE = Path(otomat.__file__).parent

# What may import what: an app may import apps of its own layer or lower ones. A new top-level
# package or module of ``otomat`` has to be placed here before the test passes.
LAYERS: dict[str, int] = {
    # 0: the bottom. The package root (its __version__), settings, helpers, people and accounts.
    "otomat": 0,
    "settings": 0,
    "lib": 0,
    "accounts": 0,
    # 1: notifications, used by every app above (apps register their notices with it).
    "notify": 1,
    # 2: the products and their running bots. ops (heartbeats, leases, stale tasks, retention,
    # backup) serves the runtime and monitoring. botkit, botdata and the emulator stand apart.
    "catalog": 2,
    "instances": 2,
    "runtime": 2,
    "ops": 2,
    "botkit": 2,
    "botdata": 2,
    "tgemu": 2,
    # The API's toolkit (list windows, checked text types): every domain's router uses it, so
    # it sits below them (it reads catalog's text rule); the API itself (api.api) is on top.
    "api.lists": 2,
    "api.schemas": 2,
    # 3: the business domains.
    "billing": 3,
    "support": 3,
    "monitoring": 3,
    "projects": 3,
    "hooks": 3,  # outgoing webhooks: they watch the apps below by model name (signals)
    # 4: the faces that compose every domain.
    "api": 4,
    "web": 4,
    # 5: the project itself: URL configuration, servers and processes, the command line, demo
    # data, test support. ``otomat scheduler`` (ops.scheduler) is such a process: it enqueues
    # every app's periodic jobs, as the command line runs every app's commands.
    "urls": 5,
    "asgi": 5,
    "wsgi": 5,
    "cli": 5,
    "supervisor": 5,
    "demo": 5,
    "testing": 5,
    "ops.scheduler": 5,
}

# Packages that import nothing else of otomat: the SDK that products import (it never sees
# platform models) and the emulator (it stands alone, like the real Telegram).
STANDALONE = {"botkit", "tgemu"}


@dataclass(frozen=True)
class Edge:
    source: str  # app
    target: str  # app
    module: str  # file, relative to the repository
    line: int

    def __str__(self) -> str:
        return f"{self.module}:{self.line} ({self.source} → {self.target})"


def _unit_of(dotted: str) -> str | None:
    """Where an ``otomat.…`` module or name belongs in LAYERS: a module placed on its own
    (``otomat.api.lists`` → ``api.lists``), else its app (``otomat.billing.models`` →
    ``billing``), the package root for a name of ``otomat`` itself (``otomat.__version__``);
    None outside the package."""
    parts = dotted.split(".")
    if parts[0] != "otomat":
        return None
    if len(parts) > 2 and f"{parts[1]}.{parts[2]}" in LAYERS:
        return f"{parts[1]}.{parts[2]}"
    if len(parts) > 1 and ((PACKAGE / parts[1]).is_dir() or (PACKAGE / f"{parts[1]}.py").is_file()):
        return parts[1]
    return "otomat"


def _is_test_module(path: Path) -> bool:
    rel = path.relative_to(PACKAGE)
    return "tests" in rel.parts[:-1] or rel.name == "conftest.py"


def _module_name(path: Path) -> list[str]:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return parts


def _imported(node: ast.AST, module: list[str], is_package: bool) -> list[str]:
    """The names an import statement takes from other modules (``from otomat import demo`` →
    ``otomat.demo``); a relative import is resolved against the importing module."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        package = module if is_package else module[:-1]
        base = package[: len(package) - (node.level - 1)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    return [prefix if alias.name == "*" else f"{prefix}.{alias.name}" for alias in node.names]


@cache
def import_edges() -> tuple[Edge, ...]:
    """Every import of one app by another in the package's non-test modules."""
    edges = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if _is_test_module(path):
            continue
        module = _module_name(path)
        source = _unit_of(".".join(module))
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            for name in _imported(node, module, path.name == "__init__.py"):
                target = _unit_of(name)
                if target is not None and target != source:
                    rel = str(path.relative_to(PACKAGE.parent))
                    edges.append(Edge(source, target, rel, node.lineno))
    return tuple(dict.fromkeys(edges))  # one per line, however many names it imports


def upward(edges: Sequence[Edge]) -> list[Edge]:
    return [e for e in edges if LAYERS[e.source] < LAYERS[e.target]]


def cycles(edges: Sequence[Edge]) -> list[list[Edge]]:
    """The import edges inside each group of apps that reach one another (a strongly connected
    component of more than one app, Tarjan's algorithm), one list per group."""
    graph: dict[str, set[str]] = defaultdict(set)
    for e in edges:
        graph[e.source].add(e.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(app: str) -> None:
        index[app] = low[app] = len(index)
        stack.append(app)
        on_stack.add(app)
        for other in sorted(graph[app]):
            if other not in index:
                visit(other)
                low[app] = min(low[app], low[other])
            elif other in on_stack:
                low[app] = min(low[app], index[other])
        if low[app] == index[app]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == app:
                    break
            if len(group) > 1:
                groups.append(group)

    for app in sorted(graph):
        if app not in index:
            visit(app)
    return [_loops(edges, group) for group in groups]


def _loops(edges: Sequence[Edge], group: set[str]) -> list[Edge]:
    """The imports that close loops inside ``group``: both directions of every pair of apps that
    import each other, and for an app not in such a pair one shortest loop through it."""
    by_pair: dict[tuple[str, str], list[Edge]] = defaultdict(list)
    for e in edges:
        if e.source in group and e.target in group:
            by_pair[(e.source, e.target)].append(e)
    found: list[Edge] = []
    covered: set[str] = set()
    for (a, b), there in sorted(by_pair.items()):
        if a < b and (b, a) in by_pair:
            found += there + by_pair[(b, a)]
            covered |= {a, b}
    for app in sorted(group - covered):
        path = _shortest_loop(app, set(by_pair))
        for a, b in pairwise(path):
            found += [e for e in by_pair[(a, b)] if e not in found]
    return found


def _shortest_loop(start: str, pairs: set[tuple[str, str]]) -> list[str]:
    """Apps from ``start`` back to it along ``pairs`` (breadth first), start repeated at the end."""
    queue = deque([[start]])
    seen = {start}
    while queue:
        path = queue.popleft()
        for a, b in sorted(pairs):
            if a != path[-1]:
                continue
            if b == start:
                return [*path, start]
            if b not in seen:
                seen.add(b)
                queue.append([*path, b])
    return [start]


def test_every_app_has_a_layer() -> None:
    unplaced = sorted({e.source for e in import_edges()} - LAYERS.keys())
    unplaced += sorted({e.target for e in import_edges()} - LAYERS.keys() - set(unplaced))
    assert not unplaced, f"place these in LAYERS: {unplaced}"


def test_no_app_imports_a_higher_layer() -> None:
    found = upward(import_edges())
    assert not found, f"{len(found)} imports of a higher layer:\n" + "\n".join(map(str, found))


def test_no_import_cycles_between_apps() -> None:
    found = cycles(import_edges())
    report = "\n\n".join(
        " ⇄ ".join(sorted({e.source for e in group})) + ":\n" + "\n".join(map(str, group))
        for group in found
    )
    directions = {(e.source, e.target) for e in import_edges()}
    mutual = sorted(f"{a}⇄{b}" for a, b in directions if a < b and (b, a) in directions)
    assert not found, (
        f"{len(found)} groups of apps that reach one another through imports, with "
        f"{len(mutual)} pairs that import each other ({', '.join(mutual)}):\n{report}"
    )


def test_standalone_packages_import_no_other_app() -> None:
    found = [e for e in import_edges() if e.source in STANDALONE]
    assert not found, "\n".join(map(str, found))


def test_the_checker_sees_function_local_and_relative_imports() -> None:
    """The parser's own check: an import inside a function and a relative import both count."""
    source = "def f():\n    from otomat.billing import models\n\nfrom ..web import views\n"
    tree = ast.parse(source)
    names = [
        name
        for node in ast.walk(tree)
        for name in _imported(node, ["otomat", "catalog", "views"], is_package=False)
    ]
    assert sorted(names) == ["otomat.billing.models", "otomat.web.views"]
    assert _unit_of("otomat.api.lists.Offset") == "api.lists"
    assert _unit_of("otomat.api.api") == "api"
    assert _unit_of("otomat.__version__") == "otomat"
    edges = [Edge("catalog", "billing", "a.py", 2), Edge("billing", "catalog", "b.py", 9)]
    assert upward(edges) == [edges[0]]
    assert cycles(edges) == [[edges[1], edges[0]]]
