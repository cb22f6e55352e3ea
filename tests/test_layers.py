"""The package tree, the imports and the README's architecture diagram tell the same story.

Every import in assistant/, ingest/ and eval/ (lazy ones inside functions too) is read with ast and checked
against ALLOWED: a layer imports only the layers below it. The README's diagram must name every layer
package, and name no package that does not exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# layer -> the layers it may import (besides itself). services and cli are the composition root.
ALLOWED: dict[str, set[str]] = {
    "assistant.core": set(),
    "assistant.backends": {"assistant.core"},
    "assistant.answering": {"assistant.core", "assistant.backends"},
    "assistant.refcheck": {"assistant.core"},
    "assistant.web": {"assistant.core", "assistant.answering", "assistant.backends", "assistant.refcheck"},
    "ingest": {"assistant.core"},
    "assistant.services": {
        "assistant.core",
        "assistant.answering",
        "assistant.backends",
        "assistant.refcheck",
        "assistant.web",
        "ingest",
    },
    "assistant.cli": {
        "assistant.core",
        "assistant.answering",
        "assistant.backends",
        "assistant.refcheck",
        "assistant.web",
        "assistant.services",
        "ingest",
        "eval",
    },
    "eval": {
        "assistant.core",
        "assistant.answering",
        "assistant.backends",
        "assistant.refcheck",
        "assistant.services",
        "ingest",
    },
}
LAYER_PACKAGES = [
    "assistant/core",
    "assistant/answering",
    "assistant/backends",
    "assistant/web",
    "assistant/refcheck",
    "assistant/cli",
    "ingest",
    "eval",
]


def layer_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "assistant" and len(parts) > 1 else parts[0]


def imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return [(line, name) for line, name in out if name.split(".")[0] in ("assistant", "ingest", "eval")]


def modules():
    for top in ("assistant", "ingest", "eval"):
        for path in sorted((ROOT / top).rglob("*.py")):
            yield path, ".".join(path.relative_to(ROOT).with_suffix("").parts)


def test_every_module_belongs_to_a_layer_with_rules():
    for _path, module in modules():
        if module in ("assistant", "assistant.__init__"):
            continue
        assert layer_of(module) in ALLOWED, f"{module}: no layer rule; add it to ALLOWED and the README diagram"


def test_layers_import_only_the_layers_below_them():
    wrong = []
    for path, module in modules():
        mine = layer_of(module)
        for line, name in imports(path):
            theirs = layer_of(name)
            if theirs != mine and theirs not in ALLOWED.get(mine, set()):
                wrong.append(f"{path.relative_to(ROOT)}:{line} ({mine}) imports {name} ({theirs})")
    assert wrong == []


def test_the_checker_itself_catches_a_forbidden_import(tmp_path):
    # ingest reaching into the answering layer is exactly what the rule forbids.
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from assistant.answering.evidence import select_evidence\n")
    found = [layer_of(name) for _, name in imports(bad)]
    assert found == ["assistant.answering"] and "assistant.answering" not in ALLOWED["ingest"]


@pytest.fixture(scope="module")
def diagram() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    return section.split("```", 2)[1]


def test_the_readme_diagram_names_every_layer_package(diagram):
    for package in LAYER_PACKAGES:
        assert (ROOT / package / "__init__.py").is_file(), f"{package} is in the list but not a package"
        assert f"{package}/" in diagram, f"{package}/ missing from the README's architecture diagram"


def test_every_package_the_diagram_names_exists(diagram):
    named = set(re.findall(r"\b((?:assistant|ingest|eval)(?:/[a-z_]+)*)/", diagram))
    missing = [p for p in sorted(named) if not (ROOT / p).is_dir()]
    assert missing == [], f"the README diagram names packages that do not exist: {missing}"
    subpackages = {p.parent.relative_to(ROOT).as_posix() for p in (ROOT / "assistant").glob("*/__init__.py")}
    assert subpackages <= named, f"packages not in the README diagram: {sorted(subpackages - named)}"
