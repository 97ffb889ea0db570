"""The layout's rules, read from the imports themselves (with `ast`): every
import counts, at the top of a module or inside a function, and importing
`a.b` runs `a/__init__.py` first, so it counts as importing `a` too.

- No import runs in a circle.
- Data flows one way: view or API -> service -> models; cron -> job ->
  service -> dispatch. A service never imports an entry point: a view, the
  API, a job, a command or the app factory.
- Only `wsgi.py`, the tests and the benchmarks build an app.
"""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("surveys", "cadence")
# Entry points: modules that register routes or commands, the jobs the
# workers run, the cron table and the factory. Everything else is a service
# (or a model) and may only import services and models.
ENTRY_POINT_PATTERN = re.compile(r"\bBlueprint\(|@\w+_bp\.(get|post|put|patch|delete|route)\b|\bAppGroup\(|@click\.command")
ENTRY_POINT_MODULES = {"surveys.app", "cadence.jobs", "cadence.cron"}
FACTORY = "surveys.app"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            modules[module_name(path)] = path
    return modules


def imported_names(name: str, path: Path) -> set[str]:
    """Every module name an import statement in the file mentions, absolute."""
    names = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = name.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        for target in imported_names(name, path):
            # `from a.b import c` names a.b.c, a module or a name in a.b.
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                graph[name].add(target)
        # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
        parts = name.split(".")
        graph[name].update(".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in modules)
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def entry_points(modules: dict[str, Path]) -> set[str]:
    found = {name for name, path in modules.items() if ENTRY_POINT_PATTERN.search(path.read_text())}
    return found | ENTRY_POINT_MODULES | {name for name in modules if name.startswith("surveys.api.")}


MODULES = project_modules()
GRAPH = import_graph(MODULES)


def test_the_rules_see_the_project():
    # A reader that found nothing would pass everything below.
    assert len(MODULES) > 40 and {"surveys.app", "cadence.planner", "cadence.dispatch"} <= set(MODULES)
    assert "cadence.dispatch" in GRAPH["cadence.planner"] and "surveys" in GRAPH["surveys.app"]
    assert {"surveys.app", "cadence.jobs", "cadence.views", "surveys.api.rounds"} <= entry_points(MODULES)


def test_no_import_runs_in_a_circle():
    assert import_cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_circle():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_services_never_import_views_jobs_commands_or_the_factory():
    entries = entry_points(MODULES)
    wrong = {name: sorted(GRAPH[name] & entries) for name in sorted(set(MODULES) - entries) if GRAPH[name] & entries}
    assert wrong == {}


def test_only_wsgi_tests_and_benchmarks_build_an_app():
    importers = sorted(name for name, targets in GRAPH.items() if FACTORY in targets)
    assert importers == []
    outside = [path for path in (ROOT / "wsgi.py", *ROOT.glob("bench/*.py"), *ROOT.glob("tests/*.py"))
               if FACTORY in imported_names(path.stem, path)]
    assert ROOT / "wsgi.py" in outside
