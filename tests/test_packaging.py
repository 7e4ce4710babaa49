"""What a normal install needs is declared: every third-party import of the project's code is a declared
dependency, and the suites ship inside the package (found through importlib.resources)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OWN = {"governance", "assets", "expectations"}


def imported_top_level_modules() -> set[str]:
    names: set[str] = set()
    for path in [*ROOT.joinpath("governance").rglob("*.py"), *ROOT.joinpath("assets").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in OWN}


def declared_distributions() -> set[str]:
    """The distributions pyproject.toml names: the dependencies and the optional features' extras (the
    `spark` and `postgres` extras, imported only where their feature is configured — `dev` is not a feature)."""
    project = tomllib.loads(ROOT.joinpath("pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    requirements = project["dependencies"] + [r for name, rs in extras.items() if name != "dev" for r in rs]
    return {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def test_every_third_party_import_is_a_declared_dependency():
    providers = importlib.metadata.packages_distributions()
    declared = declared_distributions()
    undeclared = {}
    for module in sorted(imported_top_level_modules()):
        dists = {d.lower().replace("_", "-") for d in providers.get(module, [])}
        assert dists, f"{module} is imported but no installed distribution provides it"
        if not dists & declared:
            undeclared[module] = sorted(dists)
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_the_suites_ship_with_the_package():
    from governance.quality.runner import suites_dir

    suites = sorted(p.name for p in suites_dir().glob("*.json"))
    assert "clean.events.json" in suites and "integrated.users.json" in suites
    config = tomllib.loads(ROOT.joinpath("pyproject.toml").read_text())["tool"]["setuptools"]
    assert "expectations" in str(config), "expectations/ must be packaged (package data)"
