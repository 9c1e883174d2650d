"""What a run writes as it goes: ``progress.csv`` (one row per epoch) and TensorBoard events."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

PROGRESS_COLUMNS: tuple[str, ...] = (
    "epoch", "env_steps", "wall_s", "eval_return", "eval_success", "q_mean", "kl_mean",
    "prior_log_prob_mean", "policy_grad_norm", "critic_grad_norm", "alpha", "updates_per_s", "env_steps_per_s",
)
"""Columns of ``progress.csv``; ``eval_success`` only for binary-reward tasks."""

TENSORBOARD_TAGS: dict[str, str] = {
    "eval_return": "eval/return",
    "eval_success": "eval/success",
    "train_return": "charts/train_return",
    "q_mean": "losses/q_mean",
    "q_target": "losses/q_target",
    "critic_loss": "losses/critic_loss",
    "actor_loss": "losses/actor_loss",
    "kl_mean": "losses/kl_mean",
    "target_kl": "losses/target_kl",
    "prior_log_prob_mean": "losses/prior_log_prob_mean",
    "bc_log_likelihood": "losses/bc_log_likelihood",
    "action_mse": "losses/action_mse",
    "advantage_mean": "losses/advantage_mean",
    "replay_log_likelihood": "losses/replay_log_likelihood",
    "awac_weight_max": "charts/awac_weight_max",
    "policy_grad_norm": "charts/policy_grad_norm",
    "critic_grad_norm": "charts/critic_grad_norm",
    "alpha": "charts/alpha",
    "updates_per_s": "charts/updates_per_s",
    "env_steps_per_s": "charts/env_steps_per_s",
}
"""Epoch metric → TensorBoard tag, grouped by prefix (CleanRL's convention)."""


def progress_columns(binary: bool) -> list[str]:
    return [c for c in PROGRESS_COLUMNS if binary or c != "eval_success"]


def truncate_progress(path: Path, last_epoch: int) -> None:
    """Keep only the rows of epochs ≤ ``last_epoch`` (a resumed run rewrites the rest), atomically."""
    if not path.exists():
        return
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    header, body = rows[0], rows[1:]
    # A row cut short by a kill has too few fields; rows past the checkpoint are rewritten by the resumed run.
    kept = [r for r in body if len(r) == len(header) and int(r[0]) <= last_epoch]
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(kept)
    os.replace(tmp, path)


class RunLogger:
    """Appends one ``progress.csv`` row and one set of TensorBoard scalars per epoch.

    ``purge_step`` (the environment step of the checkpoint a run resumes from) drops
    TensorBoard events that a killed run wrote past its last checkpoint.
    """

    def __init__(self, out_dir: Path, binary: bool, purge_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.columns = progress_columns(binary)
        self.path = out_dir / "progress.csv"
        new_file = not self.path.exists() or self.path.stat().st_size == 0
        self._file = self.path.open("a", newline="")
        self._csv = csv.DictWriter(self._file, fieldnames=self.columns, extrasaction="ignore")
        if new_file:
            self._csv.writeheader()
            self._file.flush()
        self.tb = SummaryWriter(log_dir=str(out_dir / "tensorboard"), purge_step=purge_step)

    def log(self, row: dict[str, Any]) -> None:
        """Write one epoch: ``row`` holds every progress column plus extra TensorBoard metrics."""
        self._csv.writerow({k: _fmt(row.get(k)) for k in self.columns})
        self._file.flush()
        os.fsync(self._file.fileno())
        step = int(row["env_steps"])
        for key, tag in TENSORBOARD_TAGS.items():
            value = row.get(key)
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                self.tb.add_scalar(tag, float(value), step)
        self.tb.flush()

    def close(self) -> None:
        self._file.close()
        self.tb.close()


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else value
