"""Printing benchmark results: a readable table, machine facts, optional JSON."""

from __future__ import annotations

import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import click


def machine() -> dict[str, Any]:
    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "-"

    return {
        "python": sys.version.split()[0], "platform": platform.platform(),
        "cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
        "opencv": version("opencv-python-headless"), "pillow": version("pillow"),
        "numpy": version("numpy"), "faust": version("faust-streaming"),
        "aiokafka": version("aiokafka"),
    }


def print_table(title: str, rows: list[tuple[str, str]]) -> None:
    click.echo(f"\n{title}")
    width = max((len(name) for name, _ in rows), default=0)
    for name, value in rows:
        click.echo(f"  {name:<{width}}  {value}")


def finish(name: str, results: dict[str, Any], json_path: Path | None) -> None:
    info = machine()
    print_table("machine", [(k, str(v)) for k, v in info.items()])
    if json_path:
        json_path.write_text(json.dumps({"benchmark": name, "machine": info, **results},
                                        indent=2))
        click.echo(f"\nwrote {json_path}")
