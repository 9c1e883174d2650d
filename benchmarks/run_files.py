"""What the benchmark scripts read of a run directory: its config.json and progress.csv (and its suite's K of final)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np


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


def last_k(suite: Path) -> int:
    """The K of the suite's report (``suite.json``'s report.last_k): a run's final value is the mean of its last K
    evaluated rows (:func:`nppac.experiments.report.run_final`)."""
    from nppac.experiments.suite import MANIFEST_NAME, ReportSettings

    try:
        return int(json.loads((suite / MANIFEST_NAME).read_text())["report"]["last_k"])
    except (OSError, ValueError, KeyError, TypeError):
        return ReportSettings().last_k


def final(run: Path, steps: list[float], values: list[float]) -> float:
    """The run's final value from the evaluations it logged at ``steps`` (its step-0 row and online rows), as the
    report defines it (:func:`nppac.experiments.report.run_final`, K of the run's suite folder)."""
    from nppac.experiments.report import config_schedule, run_final

    config = json.loads((run / "config.json").read_text())
    return run_final(np.asarray(steps, dtype=float), values, config_schedule(config), last_k(run.parents[2]))


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
