"""A run's directory: its stored configuration, the checks before a run starts or resumes, and the names of its files.

A run directory holds everything needed to continue it: ``config.json`` (the resolved
configuration), ``checkpoint.pt``, the prior (``prior/``), ``progress.csv`` and the
final actor. ``config.json`` names the run's copy of its prior, however the prior was
given (a path, an object, a suite's shared prior, or fitted in the run), so the file
alone reruns the run. A new run refuses a directory in use; a resumed run takes its stored
configuration and refuses a checkpoint it cannot continue (written by another
version, past the steps asked for, or saved under a configuration edited since).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import torch

from nppac.errors import NppacError
from nppac.outputs import check_output_dir, content_hash
from nppac.training.checkpoint import CHECKPOINT_NAME, load_checkpoint
from nppac.training.config import ResolvedConfig, TrainConfig, with_legacy_values

log = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
PRIOR_DIR = "prior"
ACTOR_NAME = "actor.safetensors"

RESUMABLE_CHANGES = ("steps", "num_threads", "device", "demos", "eval_every")
"""Settings a resumed run may differ in from the checkpoint it continues (``demos``: the same file, found from
another working directory; :func:`check_demonstrations` makes sure of it)."""
DEMOS_RECORD = "demos.json"
"""The demonstration file a run started from: its absolute path and content hash."""


def prepare_run_dir(config: TrainConfig | None, out: Path, resume: bool) -> ResolvedConfig:
    """The run's configuration: the stored one when resuming, else ``config`` resolved and written."""
    stored = out / CONFIG_NAME
    if resume:
        if not stored.exists():
            raise NppacError(f"nothing to resume in {out}: no {CONFIG_NAME}; start a new run without --resume")
        cfg = check_demonstrations(TrainConfig.load(stored).resolved(), out)  # fills fields added since the start
        if config is not None:
            given = config.resolved().to_dict()
            differ = [k for k, v in cfg.to_dict().items() if given[k] != v]
            if differ:
                log.warning("resuming with the stored configuration; ignoring new values of: %s", ", ".join(differ))
        return cfg
    if config is None:
        raise NppacError("a training configuration is required unless resuming")
    if out.is_dir() and any(out.iterdir()):
        raise NppacError(f"output directory {out} already exists; pass --resume to continue it or choose another --out")
    check_output_dir(out)
    cfg = config.resolved()
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(stored)
    if cfg.demos is not None and Path(cfg.demos).exists():
        record = {"path": str(Path(cfg.demos).resolve()), "sha256": content_hash(Path(cfg.demos))}
        (out / DEMOS_RECORD).write_text(json.dumps(record, indent=2) + "\n")
    return cfg


def own_prior(out: Path) -> str:
    """The run's copy of its prior, as its ``config.json`` names it: an absolute path, so that
    ``nppac train --config OUT/config.json`` reruns the run from any working directory."""
    return str((out / PRIOR_DIR).resolve())


def is_own_prior(path: str | Path, out: Path) -> bool:
    """Whether ``path`` is the run's own copy of its prior (``out/prior``)."""
    return Path(path).resolve() == (out / PRIOR_DIR).resolve()


def check_demonstrations(cfg: ResolvedConfig, out: Path) -> ResolvedConfig:
    """A resumed run's demonstrations are the file it started from: found from any working directory (by the
    absolute path recorded at the start), and refused in one line when their content changed."""
    try:
        record = json.loads((out / DEMOS_RECORD).read_text())
    except (OSError, ValueError):
        return cfg  # runs from before the record, or without a demonstration file
    path = Path(cfg.demos) if cfg.demos is not None and Path(cfg.demos).exists() else Path(record["path"])
    if not path.exists():
        raise NppacError(f"the run's demonstrations {cfg.demos} (started from {record['path']}) are gone; "
                         "restore the file to resume")
    if content_hash(path) != record["sha256"]:
        raise NppacError(f"{path} changed since the run in {out} started (sha256 differs from {DEMOS_RECORD}); "
                         "restore the original demonstrations to resume, or start a new run")
    return dataclasses.replace(cfg, demos=str(path))


def load_resume_checkpoint(cfg: ResolvedConfig, out: Path, device: torch.device) -> dict[str, Any] | None:
    """The checkpoint a resumed run continues from (None when none was written yet), refused in one line when
    it cannot be continued: written without run phases, past the run's steps, or under another ``config.json``."""
    ckpt_path = out / CHECKPOINT_NAME
    if not ckpt_path.exists():
        return None
    ckpt = load_checkpoint(ckpt_path, device)
    if "state" not in ckpt:
        raise NppacError(f"checkpoint {ckpt_path} was written by an nppac version without run phases; "
                         "finish it with that version or start a new run")
    if int(ckpt["env_steps"]) > cfg.n_epochs * cfg.steps_per_epoch:
        raise NppacError(f"the run in {out} has already taken {int(ckpt['env_steps']):,} env steps; "
                         f"--steps must be at least that, got {cfg.steps:,}")
    return ckpt


def check_same_run(cfg: TrainConfig, ckpt: dict[str, Any], ckpt_path: Path) -> None:
    """Refuse, in one line, a ``config.json`` edited since the checkpoint was written."""
    if "config" not in ckpt:
        return
    saved = with_legacy_values(json.loads(ckpt["config"]))
    now = json.loads(json.dumps(cfg.to_dict()))
    changed = [k for k in now if k not in RESUMABLE_CHANGES and saved.get(k) != now[k]]
    if changed:
        shown = ", ".join(f"{k}: {saved.get(k)!r} → {now[k]!r}" for k in changed[:3])
        raise NppacError(f"the run's {CONFIG_NAME} differs from its checkpoint {ckpt_path} in {shown}; "
                         "restore the file or start a new run")
