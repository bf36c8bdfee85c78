"""The package layout keeps its rules: imports point one way, no circles, no module over 600 lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from .import_graph import ROOT, cycles, graph, module_files

MAX_LINES = 600
VALUES = {
    "connector_core",
    "connector_core.errors",
    "connector_core.models",
    "connector_core.clock",
    "connector_core.secrets",
}
"""What the order book may import besides itself: the plugin API's values and errors."""


@pytest.fixture(scope="module")
def edges() -> dict[str, set[str]]:
    return graph()


def test_no_import_circles(edges: dict[str, set[str]]) -> None:
    """No group of connector_core modules imports itself round, counting imports inside functions."""
    assert cycles(edges) == []


def test_nothing_imports_the_cli_or_the_web_app(edges: dict[str, set[str]]) -> None:
    """Only the cli package imports cli modules, only the web package imports web modules."""
    offenders = {
        (module, target)
        for module, targets in edges.items()
        for target in targets
        for top in ("connector_core.cli", "connector_core.web")
        if (target == top or target.startswith(top + ".")) and not (module == top or module.startswith(top + "."))
    }
    assert offenders == set()


def test_db_imports_no_feature_module(edges: dict[str, set[str]]) -> None:
    """The order book (db) imports only itself and the plugin API's values, never a feature module."""
    offenders = {
        (module, target)
        for module, targets in edges.items()
        if module == "connector_core.db" or module.startswith("connector_core.db.")
        for target in targets
        if not (target.startswith("connector_core.db") or target in VALUES)
    }
    assert offenders == set()


def test_work_packages_do_not_import_what_sits_above_them(edges: dict[str, set[str]]) -> None:
    """sync, push, notify and the runtime never import the engine facade, the CLI, the web app or the kit."""
    above = ("connector_core.engine", "connector_core.cli", "connector_core.web", "connector_core.testing")
    below = ("connector_core.sync", "connector_core.push", "connector_core.notify", "connector_core.runtime")
    offenders = {
        (module, target)
        for module, targets in edges.items()
        if module.startswith(below)
        for target in targets
        if target.startswith(above)
    }
    assert offenders == set()


def test_no_module_is_over_600_lines() -> None:
    """Every module of connector_core has at most 600 lines."""
    long = {
        name: n
        for name, path in module_files(ROOT).items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_check_finds_a_circle_through_an_import_inside_a_function(tmp_path: Path) -> None:
    """A circle closed by a deferred import inside a function is found; one under TYPE_CHECKING is not."""
    pkg = tmp_path / "connector_core"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from connector_core.sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("def f():\n    from connector_core import a\n    return a\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from connector_core import d\n")
    (pkg / "d.py").write_text("from . import c\n")
    found = cycles(graph(pkg))
    assert found == [["connector_core.a", "connector_core.sub.b"]]
