"""What the benchmark scripts read of a run directory: its config.json and progress.csv only."""

from __future__ import annotations

import csv
import json
from pathlib import Path


def read_rows(run: Path) -> list[dict[str, str]]:
    """The rows of a run's ``progress.csv``."""
    with (run / "progress.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def finished(run: Path) -> bool:
    """Whether a run reached its configured steps (config.json and progress.csv are enough to tell)."""
    try:
        steps = json.loads((run / "config.json").read_text())["steps"]
        rows = read_rows(run)
    except (OSError, ValueError, KeyError):
        return False
    return bool(rows) and int(rows[-1]["env_steps"]) >= int(steps)
