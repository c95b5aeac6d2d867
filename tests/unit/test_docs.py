"""Docs stay true to the code: every op and parameter is documented."""

import re
from pathlib import Path

from pipeline.ops.registry import OPERATIONS
from pipeline.settings import Settings, markdown_table

ROOT = Path(__file__).resolve().parents[2]


def test_every_operation_and_parameter_is_documented():
    text = (ROOT / "docs" / "operations.md").read_text()
    for name, op in OPERATIONS.items():
        assert f"### {name}" in text, name
        for param in op.params:
            assert param.name in text, f"{name}.{param.name}"


def test_readme_configuration_table_is_current():
    readme = (ROOT / "README.md").read_text()
    assert markdown_table() in readme, "regenerate with: python -m pipeline.settings"
    for variable, _, _ in Settings().describe():
        assert f"`{variable}`" in readme, variable


def test_every_source_path_the_docs_name_exists():
    root = ROOT
    pattern = re.compile(r"\b(?:pipeline|agents|tables|tests)/[\w/]+\.py\b")
    named = {(doc.name, path) for doc in [root / "README.md", *sorted((root / "docs").glob(
        "*.md"))] for path in pattern.findall(doc.read_text())}
    assert named and not {(doc, path) for doc, path in named if not (root / path).exists()}
