"""What the CLI prints for people: versions, progress off a terminal, times, columns."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime
from importlib.metadata import version

from pipeline.cli.common import local_time, progress


def test_version():
    out = subprocess.run([sys.executable, "-m", "pipeline.cli", "--version"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"imgpipe, version {version('imgpipe')}"


def test_progress_off_a_terminal_prints_a_few_lines_not_one_per_step(capsys):
    show = progress("finished")
    for done in range(1, 301):
        show(done, 300)
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1] == "finished: 300/300" and "\r" not in "".join(lines)
    assert 2 <= len(lines) <= 11


def test_times_are_shown_as_local_iso_times():
    shown = local_time(1_796_187_360.25)
    assert datetime.fromisoformat(shown).timestamp() == 1_796_187_360.25
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.250[+-]\d\d:\d\d$", shown)
    assert local_time(None) == "-"


def test_config_columns_line_up():
    out = subprocess.run([sys.executable, "-m", "pipeline.cli", "config"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(out) > 20
    value_column = {len(re.match(r"(\S+\s+)", line).group(1)) for line in out}
    assert len(value_column) == 1  # every value starts in the same column
    assert any(line.split()[1] == "(empty)" for line in out)


def test_submit_wait_ends_with_a_summary():
    from pipeline.cli.jobs import summary_line

    rows = [{"status": "DONE"}, {"status": "FAILED"}, {"status": "DONE"}]
    assert summary_line(rows, "file:///srv/objects/") == (
        "3 jobs: 2 DONE, 1 FAILED; outputs under file:///srv/objects/outputs/")
    assert summary_line([{"status": "DONE"}], "gs://b/p") == (
        "1 job: 1 DONE; outputs under gs://b/p/outputs/")
