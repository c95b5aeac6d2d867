"""The layout README.md promises: imports run one way (agents -> tables -> pipeline),
Faust's internals are reached only through the seam, and no module grows past 400
lines."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("pipeline", "tables", "agents")
#: Which of our top-level packages each may import.
ALLOWED = {"pipeline": {"pipeline"}, "tables": {"pipeline", "tables"},
           "agents": {"pipeline", "tables", "agents"}}
SEAM = ROOT / "pipeline" / "worker" / "faustcompat.py"


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_run_one_way(package):
    wrong = {f"{path.relative_to(ROOT)} imports {name}"
             for path in modules(package) for name in imported(path)
             if name.split(".")[0] in PACKAGES and name.split(".")[0] not in ALLOWED[package]}
    assert not wrong


def test_private_faust_and_aiokafka_attributes_are_reached_only_through_the_seam():
    # a private attribute of an object that comes from Faust or aiokafka: the names the
    # seam wraps, and any import of a private name from those packages
    private = re.compile(r"\.(_read_offset|_current_event|_new_changelog_topic|"
                         r"_verified_source_topics_for_partitions|_ensure_producer|"
                         r"_ensure_consumer|_client\b|_thread\b)")
    from_private = re.compile(r"from (faust|aiokafka)[\w.]* import .*\b_[a-z]")
    offenders = [str(path.relative_to(ROOT)) for package in PACKAGES
                 for path in modules(package) if path != SEAM
                 and (private.search(path.read_text()) or from_private.search(
                     path.read_text()))]
    assert not offenders


def test_no_module_is_longer_than_400_lines():
    long = {str(p.relative_to(ROOT)): n for package in PACKAGES for p in modules(package)
            if (n := len(p.read_text().splitlines())) > 400}
    assert not long
