"""What the tables read of a suite folder: its runs' config.json and progress.csv, its report.json, its K of final."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from nppac.diagnostics.curves import as_float
from nppac.errors import NppacError
from nppac.experiments.replicates import cell_setting_key
from nppac.training.rundir import RunDir


def read_rows(run: Path) -> list[dict[str, str]]:
    """The complete rows of a run's ``progress.csv``, its columns under today's names (runs of earlier versions
    too)."""
    return RunDir(run).progress()[1]


def step0_rows(run: Path) -> list[dict[str, str]]:
    """A run's rows from its step-0 evaluation on: an offline phase's rows all sit at env_steps = 0, and its last
    one is the step-0 evaluation."""
    every = read_rows(run)
    offline = [r for r in every if r.get("phase") == "offline"]
    return offline[-1:] + [r for r in every if r.get("phase") != "offline"]


def numbers(rows: list[dict[str, str]], column: str) -> list[float]:
    """A column of ``rows`` as numbers (NaN where a row has none)."""
    return [as_float(r.get(column)) for r in rows]


def read_report(folder: Path) -> dict[str, Any]:
    """The ``report.json`` that ``nppac suite report`` wrote into a suite folder."""
    path = folder / "report.json"
    if not path.is_file():
        raise NppacError(f"{path}: no report; run `nppac suite report {folder}` first")
    return json.loads(path.read_text())


def cell_key(folder: Path, task: str, algo: str, summary: dict[str, Any]) -> str | None:
    """The settings shared by the seeds of a report's cell (``summary``: its entry under report.json's algos)."""
    return cell_setting_key(folder / task / algo / f"seed-{seed}" for seed in summary["seeds"])


def last_k(suite: Path) -> int:
    """The K of the suite's report (``suite.json``'s report.last_k): a run's final value is the mean of its last K
    evaluated rows (:func:`nppac.experiments.report.run_final`)."""
    from nppac.experiments.suite import MANIFEST_NAME, ReportSettings

    try:
        return int(json.loads((suite / MANIFEST_NAME).read_text())["report"]["last_k"])
    except (OSError, ValueError, KeyError, TypeError):
        return ReportSettings().last_k


def final(run: Path, steps: list[float], values: list[float]) -> float:
    """The run's final value from the evaluations it logged at ``steps``, as the report defines it
    (:func:`nppac.experiments.report.run_final`, K of the run's suite folder)."""
    from nppac.experiments.report import config_schedule, run_final

    config = RunDir(run).config()
    return run_final(np.asarray(steps, dtype=float), values, config_schedule(config), last_k(run.parents[2]))


def finished(run: Path) -> bool:
    """Whether a run reached its configured steps (config.json and progress.csv are enough to tell)."""
    try:
        steps = RunDir(run).config()["steps"]
        rows = read_rows(run)
    except (NppacError, KeyError):
        return False
    return bool(rows) and int(rows[-1]["env_steps"]) >= int(steps)


def state(run: Path) -> str | None:
    """The suite runner's record of the run (``status.json``): finished, diverged, failed; None without one."""
    found = (RunDir(run).status() or {}).get("status")
    return None if found is None else str(found)


def done(run: Path) -> bool:
    """Finished, or stopped for good by training's non-finite guard (a diverged run is a result too)."""
    return finished(run) or state(run) == "diverged"


ALGOS = ("nppac", "ppac-nn", "nppac-nn-std", "sac", "sac-bc", "awac", "bc")
"""The order of a suite's algorithm columns in the tables; variants (any other folder) follow, sorted by name."""


def columns(suite: Path, task: str) -> list[str]:
    """The suite's columns (``TASK/COLUMN/seed-S``) that ran the task: algorithms in ALGOS order, then variants."""
    present = {p.name for p in (suite / task).iterdir() if p.is_dir()} if (suite / task).is_dir() else set()
    return [a for a in ALGOS if a in present] + sorted(present - set(ALGOS))


PRIOR_ALGOS = ("nppac", "ppac-nn", "nppac-nn-std")
"""The algorithms with a prior π0 (their runs have a σ0 setting)."""


def prior_name(config: dict[str, Any]) -> str | None:
    """The run's prior setting by its glossary name (docs/RESULTS.md: published, exact-variance, std, love-std),
    the ``prior_convention`` of its (``prior_sigma``, ``prior_variance``). An NN's σ0 has no LOVE estimate, so the
    NN variants' is exact whatever the run asked for, as is that of runs from before ``prior_variance``. None for a
    run without a prior."""
    from nppac.training.config import PRIOR_CONVENTIONS

    algo = config.get("algo")
    if algo not in PRIOR_ALGOS and config.get("prior") is None:
        return None
    estimate = "exact" if algo in ("ppac-nn", "nppac-nn-std") else config.get("prior_variance") or "exact"
    pair = (str(config.get("prior_sigma")), estimate)
    return next((name for name, value in PRIOR_CONVENTIONS.items() if value == pair), " · ".join(pair))


def non_finite(run: Path) -> tuple[str, int] | None:
    """What became non-finite in a diverged run and in which epoch (the one being trained, after the last it
    logged), from its ``status.json`` error: ("critic gradient", 5) of "critic gradient became non-finite at
    epoch 5 (…)"; None when the run did not diverge or its error does not say."""
    if state(run) != "diverged":
        return None
    error = str((RunDir(run).status() or {}).get("error") or "")
    found = re.match(r"(.+?) became non-finite at epoch (\d+)", error)
    if found is None:
        return None
    # "critic loss Σ_k (Q_k − y)²": the term's name, its words before its formula.
    words = found.group(1).split()
    name = " ".join(words[:next((i for i, w in enumerate(words) if not w.isascii() or not w.isalpha()), len(words))])
    return name or found.group(1), int(found.group(2))
