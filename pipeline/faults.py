"""Crash points: a test hook to kill a worker at an exact place in the processing path.

A SIGKILL from outside cannot be timed between "outputs written" and "offsets
committed"; this can. Set IMGPIPE_CRASH_AT to a point's name (and IMGPIPE_CRASH_MARKER
to a file path, so it fires once across restarts). Unset, it costs one dict lookup.
"""

from __future__ import annotations

import os
from pathlib import Path

POINTS = ("after_effects", "after_results")


def crash_point(name: str) -> None:
    """Exit the process at once (no cleanup, like SIGKILL) if this point is armed."""
    if os.environ.get("IMGPIPE_CRASH_AT") != name:
        return
    marker = os.environ.get("IMGPIPE_CRASH_MARKER")
    if marker:
        if Path(marker).exists():
            return
        Path(marker).write_text(name)
    os._exit(137)
