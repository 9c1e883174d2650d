"""What ``nppac quickstart`` trains from: its GP prior's settings and the actors initialized toward that prior.

The published policy initialization (400 epochs of KL(π‖π0) on the demonstration states) takes minutes on a CPU,
longer than the whole quickstart should. A task's initialized actor is therefore made once, by
``scripts/initialize_actor.py``, toward the GP prior the quickstart fits (the same settings, seed and demonstrations
give the same prior), and shipped in ``nppac/assets/initialized/TASK.safetensors``; its ``TASK.json`` records the
prior it was initialized toward, so the quickstart uses it only with that prior.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from nppac.data.demos import Demonstrations
from nppac.outputs import content_hash
from nppac.priors.base import Prior
from nppac.priors.common import Progress
from nppac.tasks import Task

FIT_SUBSET = 500
"""States the quickstart's GP learns its hyperparameters on."""


def prior_settings(task: Task, demos: Path, iters: int, inducing: int, seed: int) -> dict[str, Any]:
    """Everything the quickstart's GP prior depends on: its fit settings and the demonstrations' content."""
    conditioning = {"conditioning": "inducing", "num_inducing": inducing} if inducing else {"conditioning": "exact"}
    return {"kind": "gp", "kernel": task.defaults.kernel, "iters": iters, "fit_subset": FIT_SUBSET, "seed": seed,
            **conditioning, "demos_sha256": content_hash(demos)}


def fit_quickstart_prior(demos: Demonstrations, settings: dict[str, Any],
                         progress: Progress | None = None) -> tuple[Prior, dict[str, Any]]:
    """The quickstart's GP prior: hyperparameters on :data:`FIT_SUBSET` states, the posterior through inducing states
    (or exact), as ``settings`` (:func:`prior_settings`) say."""
    from nppac.priors import fit_prior

    fit = {k: v for k, v in settings.items() if k not in ("kind", "demos_sha256")}
    return fit_prior(demos, "gp", progress=progress, **fit)


def asset_dir() -> Path:
    return Path(str(resources.files("nppac") / "assets" / "initialized"))


def initialized_actor(task: Task, settings: dict[str, Any]) -> tuple[Path, dict[str, Any]] | None:
    """The bundled actor initialized toward the prior that ``settings`` fit, and its record; None when the task has
    none or it was made for another prior."""
    path = asset_dir() / f"{task.name}.safetensors"
    try:
        record = json.loads(path.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return None
    if not path.is_file() or record.get("prior") != settings:
        return None
    return path, record
