"""Priors fitted once per suite and read by every run that asks for the same one.

The published code fits one GP per task and reuses it for every seed. A suite does the same: each distinct
(demonstrations, prior kind, fit settings) is fitted once, with seed 0, into ``OUT/priors/TASK-KIND-HASH/``, HASH
from the demonstrations' content and the settings (a changed file or setting gives a new prior, never a stale
one), and every run of that task and kind trains with ``prior`` set to it. The variance ablation's prior combines
the shared GP and NN priors.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from nppac.data.loaders import local_path
from nppac.errors import NppacError
from nppac.experiments.suite import RunSpec, Suite
from nppac.outputs import content_hash
from nppac.training import TrainConfig
from nppac.training.algorithms import ABLATION_PRIOR

log = logging.getLogger(__name__)

PRIORS_DIR = "priors"
FIT_SEED = 0
"""Seed of every shared fit: one prior per task for all seeds, as published."""


def _demos_source(cfg: TrainConfig) -> str:
    """The run's demonstrations: its ``demos`` (a file or ``minari:ID``), else its task's own set."""
    path = cfg.demos or cfg.task_spec.bundled_demos
    if path is None:
        raise NppacError(f"task {cfg.task} has no bundled demonstrations to fit a prior on; set demos in the suite")
    return str(path)


def prior_settings(cfg: TrainConfig, kind: str) -> dict[str, Any]:
    """What a shared prior of ``kind`` depends on, besides the demonstrations' content."""
    settings: dict[str, Any] = {"task": cfg.task, "kind": kind, "iters": cfg.prior_iters, "seed": FIT_SEED}
    if kind == "gp":
        settings["kernel"] = cfg.prior_kernel
        if cfg.prior_gpytorch is not None:
            settings["gpytorch"] = cfg.prior_gpytorch
            settings["gpytorch_sha256"] = content_hash(Path(cfg.prior_gpytorch))
    return settings


def shared_prior(cfg: TrainConfig, kind: str, root: Path) -> Path:
    """The directory of the shared prior of ``kind`` for a resolved run config, fitted here if missing."""
    if kind == ABLATION_PRIOR:
        parts = {role: shared_prior(cfg, part, root) for role, part in (("mean", "gp"), ("std", "nn"))}
        key = hashlib.sha256(json.dumps({k: str(v) for k, v in parts.items()}).encode()).hexdigest()[:12]
        return build_once(root / f"{cfg.task}-{kind}-{key}", lambda tmp: _combine(parts, tmp),
                      {"kind": kind, "parts": {k: str(v) for k, v in parts.items()}})
    demos = _demos_source(cfg)
    settings = prior_settings(cfg, kind)
    record = {**settings, "demos": demos, "demos_sha256": content_hash(local_path(demos))}
    key = hashlib.sha256(json.dumps({k: v for k, v in record.items() if k not in ("demos", "gpytorch")}, sort_keys=True)
                         .encode()).hexdigest()[:12]
    return build_once(root / f"{cfg.task}-{kind}-{key}", lambda tmp: _fit(cfg, kind, settings, tmp), record)


def build_once(target: Path, make: Any, record: dict[str, Any], record_name: str = "shared_prior.json") -> Path:
    """``target`` made once by ``make(tmp_dir)``, under a lock, moved into place whole with ``record`` in its
    ``record_name`` (a target made earlier, with its record, is returned as it is)."""
    if (target / record_name).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / f".{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second suite process waits for the first one's fit
        if not (target / record_name).exists():
            tmp = target.with_name(target.name + ".tmp")
            if tmp.is_symlink():  # a fit cut short leaves a folder; a link would be followed out of OUT
                raise NppacError(f"{tmp} is a symbolic link, not a fit cut short; remove it")
            shutil.rmtree(tmp, ignore_errors=True)
            make(tmp)
            (tmp / record_name).write_text(json.dumps(record, indent=2) + "\n")
            tmp.rename(target)
    return target


def _fit(cfg: TrainConfig, kind: str, settings: dict[str, Any], tmp: Path) -> None:
    from nppac.data import load_demos
    from nppac.priors import fit_prior

    demos = load_demos(_demos_source(cfg), task=cfg.task, allow_pickle=cfg.allow_pickle, clip_actions=True,
                       max_clipped=cfg.max_clipped_actions)
    fit_settings = {k: v for k, v in settings.items() if k in ("kernel", "iters", "seed") and v is not None}
    log.info("fitting the shared %s prior of %s on %d transitions", kind, cfg.task, demos.n_transitions)
    prior, metrics = fit_prior(demos, kind, from_gpytorch=settings.get("gpytorch"), **fit_settings)
    prior.save(tmp)
    (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float) + "\n")


def _combine(parts: dict[str, Path], tmp: Path) -> None:
    from nppac.priors import combine_priors, load_prior

    combine_priors(load_prior(parts["mean"]), load_prior(parts["std"])).save(tmp)


Plan = Callable[[RunSpec], Callable[[], dict[str, Any]] | None]
"""How to make what a run shares, returning the settings that point the run at it (None: the run shares nothing)."""


def with_shared(suite: Suite, keys: Collection[str] | None, plan: Plan, logger: logging.Logger, failure: str) -> Suite:
    """The suite with each run of ``keys`` (None: every run) pointed at what it shares, made here by ``plan``. What
    cannot be made (missing or bad demonstrations) is left to its run, which then fails with the one-line error in
    its ``status.json`` while the suite goes on; ``logger`` warns with ``failure``."""
    runs = []
    for run in suite.runs:
        make = plan(run)
        if make is not None and (keys is None or run.key in keys):
            try:
                changes = make()
            except (NppacError, OSError) as err:
                logger.warning("%s: " + failure, run.key, err)
            else:
                run = dataclasses.replace(run, config=dataclasses.replace(run.config, **changes))
        runs.append(run)
    return dataclasses.replace(suite, runs=tuple(runs))


def with_shared_priors(suite: Suite, out: Path, keys: Collection[str] | None = None) -> Suite:
    """The suite with every run that would fit its own prior pointed at the shared one (fitted here if missing);
    ``keys`` limits this to the runs about to train (None: every run), so that a suite trained part by part
    (``--only``) fits only the priors of its part."""

    def plan(run: RunSpec) -> Callable[[], dict[str, Any]] | None:
        cfg = run.config.resolved()
        kind = cfg.prior_kind
        if kind is None or cfg.prior is not None:
            return None
        return lambda: {"prior": str(shared_prior(cfg, kind, out / PRIORS_DIR))}

    return with_shared(suite, keys, plan, log, "no shared prior (%s); the run fits its own")
