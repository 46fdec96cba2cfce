"""The structure of the code, held by a test: apps depend on each other one way, and no
service module and task module import each other.

Every import counts: at module level, inside a function, or under TYPE_CHECKING; a
dependency hidden in a function body is still a dependency."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "tranche"

# From the top down: an app may import the apps below it, never one above. "project" is
# the modules of the Django project itself (settings, urls, api, cli, wsgi): the top.
LAYERS = ["project", "web", "billing", "notifications", "projects", "sales", "accounts", "core"]


def _module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, root: Path = PACKAGE) -> Iterator[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    module = _module_name(path, root)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            # `from tranche.billing import tasks` imports the module tranche.billing.tasks.
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    """Module -> the tranche modules it imports (only those that exist)."""
    files = [p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts]
    modules = {_module_name(p): p for p in files}
    return {
        name: {target for target in _imports(path) if target in modules and target != name}
        for name, path in modules.items()
    }


def _app(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) == 1:
        return None  # the package itself
    if len(parts) == 2 and parts[1] not in LAYERS:
        return "project"  # tranche.api, tranche.urls, tranche.cli, …
    return parts[1]


def app_edges() -> dict[tuple[str, str], list[str]]:
    edges: dict[tuple[str, str], list[str]] = {}
    for source, targets in import_graph().items():
        for target in targets:
            pair = (_app(source), _app(target))
            if pair[0] and pair[1] and pair[0] != pair[1]:
                edges.setdefault((pair[0], pair[1]), []).append(f"{source} -> {target}")
    return edges


def test_every_app_has_a_layer() -> None:
    apps = {p.name for p in PACKAGE.iterdir() if (p / "apps.py").exists()}
    assert apps == set(LAYERS) - {"project"}


def test_apps_import_only_the_apps_below_them() -> None:
    upward = {
        pair: sorted(lines)
        for pair, lines in app_edges().items()
        if LAYERS.index(pair[0]) > LAYERS.index(pair[1])
    }
    assert upward == {}


def test_the_app_graph_has_no_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for source, target in app_edges():
        graph.setdefault(source, set()).add(target)
    seen: set[str] = set()

    def visit(app: str, path: list[str]) -> None:
        assert app not in path, f"import cycle between apps: {' -> '.join([*path, app])}"
        if app in seen:
            return
        for target in sorted(graph.get(app, ())):
            visit(target, [*path, app])
        seen.add(app)

    for app in sorted(graph):
        visit(app, [])


def test_no_modules_import_each_other_even_through_others() -> None:
    """No cycle among modules at all: a pair that imports each other (a service and its
    task, a selector and a schema) would be one."""
    graph = import_graph()
    finished: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        assert module not in path, f"import cycle: {' -> '.join([*path, module])}"
        if module in finished:
            return
        for target in sorted(graph[module]):
            visit(target, [*path, module])
        finished.add(module)

    for module in sorted(graph):
        visit(module, [])


def _is_tasks(module: str) -> bool:
    return module.endswith(".tasks")


def _is_service(module: str) -> bool:
    return ".services" in module or module.endswith(".services")


def test_no_service_module_and_task_module_import_each_other() -> None:
    graph = import_graph()
    pairs = sorted(
        (service, task)
        for service, targets in graph.items()
        if _is_service(service)
        for task in targets
        if _is_tasks(task) and service in graph[task]
    )
    assert pairs == []


def test_the_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The tests above could pass by not seeing an import: this one proves that imports
    inside functions, under TYPE_CHECKING and relative ones are all seen."""
    module = tmp_path / "tranche" / "projects" / "m.py"
    module.parent.mkdir(parents=True)
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from tranche.sales.models import Quote\n"
        "def f():\n    from tranche.billing.services import invoice_send\n"
        "from . import selectors\n"
    )
    found = set(_imports(module, root=tmp_path / "tranche"))
    assert {
        "tranche.sales.models",
        "tranche.billing.services",
        "tranche.billing.services.invoice_send",
        "tranche.projects.selectors",
    } <= found
