"""What the benchmark scripts read of a run directory: its config.json and progress.csv only."""

from __future__ import annotations

import csv
import json
from pathlib import Path


def read_rows(run: Path) -> list[dict[str, str]]:
    """The rows of a run's ``progress.csv``, its columns under today's names (runs of earlier versions too)."""
    from nppac.training.algorithms import run_uses_prior
    from nppac.training.logger import current_column_names

    try:
        config = json.loads((run / "config.json").read_text())
    except (OSError, ValueError):
        config = {}
    with (run / "progress.csv").open(newline="") as f:
        header = next(csv.reader(f), None)
        if header is None:
            return []
        return list(csv.DictReader(f, fieldnames=current_column_names(header, run_uses_prior(config))))


def finished(run: Path) -> bool:
    """Whether a run reached its configured steps (config.json and progress.csv are enough to tell)."""
    try:
        steps = json.loads((run / "config.json").read_text())["steps"]
        rows = read_rows(run)
    except (OSError, ValueError, KeyError):
        return False
    return bool(rows) and int(rows[-1]["env_steps"]) >= int(steps)


def state(run: Path) -> str | None:
    """The suite runner's record of the run (``status.json``): finished, diverged, failed; None without one."""
    try:
        return str(json.loads((run / "status.json").read_text())["status"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def done(run: Path) -> bool:
    """Finished, or stopped for good by training's non-finite guard (a diverged run is a result too)."""
    return finished(run) or state(run) == "diverged"


ALGOS = ("nppac", "ppac-nn", "nppac-nn-std", "sac", "sac-bc", "awac", "bc")
"""The order of a suite's algorithm columns in the tables; variants (any other folder) follow, sorted by name."""


def columns(suite: Path, task: str) -> list[str]:
    """The suite's columns (``TASK/COLUMN/seed-S``) that ran the task: algorithms in ALGOS order, then variants."""
    present = {p.name for p in (suite / task).iterdir() if p.is_dir()} if (suite / task).is_dir() else set()
    return [a for a in ALGOS if a in present] + sorted(present - set(ALGOS))
