"""Policy initializations done once per suite and loaded by every run that would do the same one.

A screen compares variants of an algorithm that differ only after step 0 (a remedy, a warm-up rule): with
``shared_init = true``, the initialization toward π0 runs once per task, seed and initialization setting
(:data:`INIT_SETTINGS`) into ``OUT/inits/TASK-ALGO-seed-S-HASH/`` (a run stopped at step 0), and every such run
starts from its actor (``init_actor``): the variants start from the same policy, initialized once, not N times.
Like shared priors, each is made under a lock and moved into place whole.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from nppac.experiments.shared_priors import build_once, with_shared
from nppac.experiments.suite import RunSpec, Suite
from nppac.training import TrainConfig
from nppac.training.config import PATH_FIELDS
from nppac.training.rundir import ACTOR_NAME

log = logging.getLogger(__name__)

INITS_DIR = "inits"
INIT_SETTINGS = ("task", "algo", "seed", "device", "num_threads", "demos", "allow_pickle", "max_clipped_actions",
                 "prior", "prior_sigma", "prior_variance", "prior_convention", "love_rank", "love_seed", "actor",
                 "actor_hidden", "actor_lr", "init_epochs", "init_batch_size")
"""What a policy initialization reads of a run's settings: runs that agree on these share one (and on the
algorithm's own ``log_std_range``, :data:`INIT_OWN_SETTINGS`)."""
INIT_OWN_SETTINGS = ("log_std_range",)
RECORD_NAME = "shared_init.json"


def init_config(cfg: TrainConfig) -> TrainConfig:
    """The configuration of the initialization a run shares: its INIT_SETTINGS, one epoch, stopped at step 0."""
    own = {k: v for k, v in cfg.algo_settings.items() if k in INIT_OWN_SETTINGS}
    return TrainConfig(**{k: getattr(cfg, k) for k in INIT_SETTINGS}, steps=cfg.steps_per_epoch,
                       steps_per_epoch=cfg.steps_per_epoch, algo_settings=own)


def shared_init(cfg: TrainConfig, root: Path) -> Path:
    """The initialized actor of a run's configuration (its ``prior`` already the shared one), made here if missing."""
    init = init_config(cfg)
    settings = {k: Path(v).name if k in PATH_FIELDS and v is not None else v
                for k, v in dataclasses.asdict(init).items()}
    key = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]

    def make(tmp: Path) -> None:
        from nppac.training import train

        log.info("initializing the shared policy of %s/%s seed %d", cfg.task, cfg.algo, cfg.seed)
        train(init, tmp, progress=False, on_epoch_end=lambda row: False)

    target = root / f"{cfg.task}-{cfg.algo}-seed-{cfg.seed}-{key}"
    return build_once(target, make, settings, RECORD_NAME) / ACTOR_NAME


def with_shared_inits(suite: Suite, out: Path, keys: Collection[str] | None = None) -> Suite:
    """The suite with every run that would initialize its policy toward π0 started from the shared initialization
    (made here if missing); ``keys`` limits this to the runs about to train (None: every run)."""

    def plan(run: RunSpec) -> Callable[[], dict[str, Any]] | None:
        resolved = run.config.resolved()
        if (not suite.shared_init or resolved.prior_kind is None or not resolved.init_epochs
                or run.config.init_actor is not None):
            return None
        return lambda: {"init_actor": str(shared_init(run.config, out / INITS_DIR)), "init_epochs": 0}

    return with_shared(suite, keys, plan, log, "no shared initialization (%s); the run initializes its own")
