"""README's "Your own images, step by step" block, run as a user would (free ports, a
fresh folder, generated photos), so the walk-through cannot rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.dev.samples import write_samples
from pipeline.kafka import local as localkafka

pytestmark = pytest.mark.kafka
README = Path(__file__).resolve().parents[2] / "README.md"


def walkthrough() -> list[str]:
    text = README.read_text()
    block = re.search(r"<!-- walkthrough[^>]*-->\n(.*?)<!-- /walkthrough -->", text, re.S)
    assert block, "README.md lost its walk-through block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def test_the_readme_walkthrough_processes_a_folder_of_photos(tmp_path):
    lines = walkthrough()
    assert lines[0].startswith(". .venv/bin/activate")
    photos = write_samples(tmp_path / "photos", 3, 640, 480)
    # the venv this suite runs in stands for the one `make run` made
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    broker, web = localkafka.free_port(), localkafka.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMGPIPE_")}
    env.update(IMGPIPE_BROKER=f"kafka://127.0.0.1:{broker}", IMGPIPE_WEB_PORT=str(web),
               IMGPIPE_PARTITIONS="2")
    script = "set -e\n" + "\n".join(lines) + "\n"
    try:
        result = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=600)
    finally:
        localkafka.down(tmp_path / "var" / "kafka", echo=lambda m: None)
    log = (tmp_path / "worker.log").read_text(errors="replace")[-3000:] \
        if (tmp_path / "worker.log").exists() else "(no worker log)"
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{log}"
    made = sorted((tmp_path / "var" / "objects" / "outputs").rglob("*.*"))
    outputs = sorted(p.name for p in made)
    assert outputs == ["large.jpg"] * len(photos) + ["thumb.webp"] * len(photos)
    # A folder per job, named after its photo; each job's line names its file.
    assert {p.parent.name.rsplit("-", 1)[0] for p in made} == {p.stem for p in photos}
    assert all(photo.name in result.stdout for photo in photos)
    assert result.stdout.count("DONE") == len(photos)
    assert f"{len(photos)} jobs: {len(photos)} DONE; outputs under" in result.stderr
