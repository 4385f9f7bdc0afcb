"""Dependencies point one way (DESIGN.md, "Layout"): ``web``/``cli``/``demo`` → ``sync`` → ``hub`` →
``mappings``, ``connectors``, ``config``; nothing points back.

Every import of the project's own modules is read with ``ast`` — at module level, inside functions and
inside ``if TYPE_CHECKING:`` blocks alike (a type-only import still ties the layers together), plus
``importlib.import_module("…")`` with a literal name — and each one must go to a layer its importer may
use. The layers' own graph must have no cycle.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# top-level module or package → layer
LAYER_OF = {
    "web": "web", "webhooks": "web",
    "cli": "cli",
    "demo": "demo",
    "worker": "worker",
    "benchmarks": "benchmarks",
    "sync": "sync",
    "hub": "hub",
    "mappings": "mappings", "connectors": "connectors", "config": "config",
}
BOTTOM = {"mappings", "connectors", "config"}
# layer → the layers it may import (its own included)
MAY_USE: dict[str, set[str]] = {
    "config": {"config"},
    "mappings": {"mappings"},
    "connectors": {"connectors", "config"},
    "hub": {"hub"} | BOTTOM,
    "sync": {"sync", "hub"} | BOTTOM,
    "web": {"web", "sync", "hub"} | BOTTOM,
    "worker": {"worker", "web", "sync", "hub"} | BOTTOM,   # the entry point of the worker processes
    "demo": {"demo", "worker", "web", "sync", "hub"} | BOTTOM,  # runs the real receiver and pipeline
    "cli": {"cli", "demo", "worker", "web", "sync", "hub"} | BOTTOM,  # ``o2c serve|worker|demo|…``
    "benchmarks": set(LAYER_OF.values()),   # the harness drives everything; nothing imports it
}


@dataclass(frozen=True)
class Arrow:
    importer: str
    imported: str
    line: int

    @property
    def source_layer(self) -> str:
        return layer_of(self.importer)

    @property
    def target_layer(self) -> str:
        return layer_of(self.imported)

    def __str__(self) -> str:
        return f"{self.source_layer} → {self.target_layer}: {self.importer} (line {self.line}) imports {self.imported}"


def layer_of(module: str) -> str:
    return LAYER_OF[module.split(".")[0]]


def project_files() -> list[Path]:
    files = []
    for top in LAYER_OF:
        package, module = ROOT / top, ROOT / f"{top}.py"
        if package.is_dir():
            files.extend(sorted(package.rglob("*.py")))
        elif module.is_file():
            files.append(module)
    return files


def module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join(parts), is_package


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    if node.level == 0:
        base = node.module or ""
    else:
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join(package + ([node.module] if node.module else []))
    # ``from sync import alerts`` imports ``sync.alerts``: name the submodule when there is one
    names = []
    for alias in node.names:
        candidate = f"{base}.{alias.name}" if base else alias.name
        names.append(candidate if _is_module(candidate) else base)
    return names


def _is_module(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports_of(path: Path) -> list[Arrow]:
    module, is_package = module_name(path)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    arrows = []
    for node in ast.walk(tree):   # every statement: module level, functions, TYPE_CHECKING blocks
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            targets = _absolute(node, module, is_package)
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and (getattr(node.func, "attr", None) == "import_module"
                   or getattr(node.func, "id", None) in ("import_module", "__import__"))):
            targets = [node.args[0].value]
        else:
            continue
        arrows.extend(Arrow(module, target, node.lineno) for target in targets
                      if target.split(".")[0] in LAYER_OF)
    return arrows


def all_arrows() -> list[Arrow]:
    return [arrow for path in project_files() for arrow in imports_of(path)]


def wrong_way(arrows: list[Arrow]) -> list[Arrow]:
    return [a for a in arrows if a.target_layer not in MAY_USE[a.source_layer]]


def layer_cycles(arrows: list[Arrow]) -> list[list[str]]:
    graph: dict[str, set[str]] = {}
    for a in arrows:
        if a.source_layer != a.target_layer:
            graph.setdefault(a.source_layer, set()).add(a.target_layer)
    cycles, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def test_the_walk_sees_the_whole_project() -> None:
    modules = {module_name(p)[0] for p in project_files()}
    for expected in ("web.app", "web.console.runs", "cli.main", "demo.run", "demo.simulators.shopify", "webhooks",
                     "worker", "sync.dispatch", "sync.alerts", "sync.orders.runner", "hub.runtime", "hub.models",
                     "mappings.rules", "connectors.quickbooks", "config"):
        assert expected in modules
    arrows = all_arrows()
    assert len(arrows) > 300
    # function-level and TYPE_CHECKING imports are among them
    assert any(a.importer == "hub.storefronts" and a.imported == "hub.revocation" for a in arrows)
    assert any(a.importer == "sync.jobs" and a.imported == "hub.runtime" for a in arrows)


def test_no_arrow_points_the_wrong_way() -> None:
    wrong = wrong_way(all_arrows())
    assert not wrong, "imports against the layering:\n" + "\n".join(map(str, wrong))


def test_no_cycle_between_layers() -> None:
    cycles = layer_cycles(all_arrows())
    assert not cycles, "cycles between layers: " + "; ".join(" → ".join(c) for c in cycles)


@pytest.mark.parametrize(("source", "imported"), [
    ("hub/x.py", "from sync.dispatch import make_dispatcher"),
    ("sync/x.py", "def f():\n    from web.console.actions import rerun"),
    ("hub/x.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from sync.dispatch import Dispatcher"),
    ("mappings/x.py", "from hub.models import Binding"),
    ("connectors/x.py", "from mappings.model import Order"),
    ("config/x.py", "import connectors"),
    ("web/x.py", "import cli.main"),
    ("sync/x.py", "import importlib\nimportlib.import_module('web.app')"),
])
def test_the_check_refuses_a_wrong_way_arrow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str,
                                            imported: str) -> None:
    """The rule itself: each of these imports would be reported."""
    file = tmp_path / source
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(imported + "\n", encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert wrong_way(imports_of(file)), f"{source}: {imported!r} was not reported"


def test_a_cycle_between_layers_is_reported() -> None:
    arrows = [Arrow("web.app", "sync.dispatch", 1), Arrow("sync.dispatch", "web.app", 2)]
    assert layer_cycles(arrows)


def test_mappings_read_no_file() -> None:
    """Mapping rules arrive as data: nothing in ``mappings/`` opens a file or a packaged resource."""
    readers = ("importlib.resources", "pathlib", "os", "io")
    offenders = []
    for path in sorted((ROOT / "mappings").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "open":
                names = ["open"]
            else:
                continue
            if any(n == "open" or n in readers or n.startswith(tuple(r + "." for r in readers)) for n in names):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders


# who may touch the process environment: the settings object reads it; the gunicorn runner hands it whole to
# the job process it starts; the benchmark harness sets it for the processes it measures.
ENVIRONMENT_READERS = {"hub/settings.py", "web/gunicorn_app.py"}


def test_settings_are_read_only_through_the_settings_object() -> None:
    offenders = []
    for path in project_files():
        rel = path.relative_to(ROOT).as_posix()
        if rel in ENVIRONMENT_READERS or rel.startswith("benchmarks/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv", "unsetenv")
                    and isinstance(node.value, ast.Name) and node.value.id == "os"):
                offenders.append(f"{rel}:{node.lineno}")
            elif isinstance(node, ast.ImportFrom) and node.module == "os" and \
                    {a.name for a in node.names} & {"environ", "getenv", "putenv"}:
                offenders.append(f"{rel}:{node.lineno}")
    assert not offenders, f"read the setting through hub.settings.Settings instead: {offenders}"
