"""What a run writes as it goes: ``progress.csv`` (one row per evaluation) and TensorBoard events."""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nppac.outputs import write_atomic

PROGRESS_NAME = "progress.csv"

LEADING_COLUMNS: tuple[str, ...] = (
    "phase", "epoch", "env_steps", "gradient_steps", "wall_s", "eval_return", "eval_success", "eval_return_min",
)
"""The first columns of every ``progress.csv``; ``eval_success`` only for binary-reward tasks. ``eval_return`` is the
mean over the evaluation's episodes, ``eval_return_min`` its worst episode (runs stored before it existed resume
without it).

``phase`` is init, offline or online; rows with env_steps = 0 evaluate the policy before any interaction (the last of
them is the step-0 point of a learning curve).
"""

INIT_COLUMNS: tuple[str, ...] = ("init_kl_start", "init_kl")
"""KL(π‖π0) in the first and last epoch of policy initialization (runs with a prior; the init row)."""

LOOP_COLUMNS: tuple[str, ...] = ("train_return", "updates_per_s", "env_steps_per_s")
"""What the loop itself measures, after the agent's metrics."""

RENAMED_COLUMNS: dict[str, str] = {"target_kl": "next_kl_mean"}
"""Columns that runs of earlier versions wrote under another name → their name now (runs with a prior)."""

RENAMED_COLUMNS_WITHOUT_PRIOR: dict[str, str] = {"target_kl": "next_log_pi_mean", "kl_mean": "log_pi_mean"}
"""The same for runs without a prior (SAC, SAC+BC): with log π0 ≡ 0 their KL columns held log π."""


def current_column_names(names: Sequence[str], uses_prior: bool) -> list[str]:
    """A ``progress.csv`` header with the names of earlier versions mapped to today's (today's are kept).

    The one place old names are read: learning curves, reports and the benchmark tables see today's names only, and a
    resumed run rewrites its header with them.
    """
    renamed = RENAMED_COLUMNS if uses_prior else RENAMED_COLUMNS_WITHOUT_PRIOR
    return [renamed.get(name, name) for name in names]


def progress_columns(binary: bool, metrics: tuple[str, ...], with_init: bool = False,
                     acting: tuple[str, ...] = ()) -> list[str]:
    """The columns of a run's ``progress.csv``: the leading ones, the agent's metrics by name, what the run's acting
    rule reports (the second actor's shares), the loop's."""
    leading = [c for c in LEADING_COLUMNS if binary or c != "eval_success"]
    return [*leading, *(INIT_COLUMNS if with_init else ()), *metrics, *acting, *LOOP_COLUMNS]


def tensorboard_tag(column: str) -> str:
    """TensorBoard tag of a column, grouped by prefix (CleanRL's convention): eval/, charts/ or losses/.

    Columns of the training episodes (``train_…``) are charts, like the loop's own.
    """
    if column.startswith("eval_"):
        return f"eval/{column[len('eval_'):]}"
    if column in LOOP_COLUMNS or column in INIT_COLUMNS or column in LEADING_COLUMNS or column.startswith("train_"):
        return f"charts/{column}"
    return f"losses/{column}"


def parse_progress(text: str) -> tuple[list[str], list[list[str]], str | None]:
    """The header and the complete rows of a ``progress.csv``'s text, and where a row cut short by a kill was left
    out (None: none was): its last line has no line end, or it has another number of fields than the header."""
    table = list(csv.reader(io.StringIO(text)))
    if not table:
        return [], [], None
    header, body = table[0], table[1:]
    cut = next((i for i, row in enumerate(body, start=2) if len(row) != len(header)), None)
    where = f"line {cut} has {len(body[cut - 2])} of {len(header)} fields" if cut is not None else \
        f"its last line ({len(table)}) has no line end" if body and not text.endswith("\n") else None
    return header, [r for r in (body if text.endswith("\n") else body[:-1]) if len(r) == len(header)], where


def read_progress(path: Path) -> tuple[list[str], list[list[str]]]:
    """The header and the complete rows of a ``progress.csv`` (:func:`parse_progress`; none without the file)."""
    try:
        with path.open(newline="") as f:
            text = f.read()
    except FileNotFoundError:
        return [], []
    return parse_progress(text)[:2]


def truncate_progress(path: Path, last_epoch: int, last_gradient_steps: int, uses_prior: bool) -> None:
    """Keep only the rows up to the checkpoint (epoch, gradient step); a resumed run rewrites the rest, atomically.

    The header is rewritten with today's column names (:func:`current_column_names`), so that the rows the resumed
    run appends fill the columns its earlier rows filled.
    """
    header, body = read_progress(path)
    if not header:
        return
    epoch, grad = header.index("epoch"), header.index("gradient_steps")
    # A row cut short by a kill has too few fields; rows past the checkpoint are rewritten by the resumed run.
    kept = [r for r in body
            if len(r) == len(header) and (int(r[epoch]), int(r[grad])) <= (last_epoch, last_gradient_steps)]
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(current_column_names(header, uses_prior))
    writer.writerows(kept)
    write_atomic(path, text.getvalue())


class RunLogger:
    """Appends one ``progress.csv`` row and one set of TensorBoard scalars per evaluation.

    ``purge_step`` (the environment step of the checkpoint a run resumes from) drops TensorBoard events that a killed
    run wrote past its last checkpoint. TensorBoard's step is the environment step: the rows of an offline phase all
    sit at step 0 (``progress.csv`` tells them apart by ``gradient_steps``).
    """

    def __init__(self, out_dir: Path, columns: list[str], purge_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.path = out_dir / PROGRESS_NAME
        new_file = not self.path.exists() or self.path.stat().st_size == 0
        if not new_file:  # a resumed run keeps the columns it started with
            with self.path.open(newline="") as f:
                columns = next(csv.reader(f), columns)
        self.columns = columns
        self._file = self.path.open("a", newline="")
        self._csv = csv.DictWriter(self._file, fieldnames=self.columns, extrasaction="ignore")
        if new_file:
            self._csv.writeheader()
            self._file.flush()
        self.tb = SummaryWriter(log_dir=str(out_dir / "tensorboard"), purge_step=purge_step)

    def log(self, row: dict[str, Any]) -> None:
        """Write one row; every numeric value in it also becomes a TensorBoard scalar."""
        self._csv.writerow({k: _fmt(row.get(k)) for k in self.columns})
        self._file.flush()
        os.fsync(self._file.fileno())
        step = int(row["env_steps"])
        for key, value in row.items():
            if key in ("phase", "epoch", "env_steps") or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if not math.isnan(value):
                self.tb.add_scalar(tensorboard_tag(key), float(value), step)
        self.tb.flush()

    def close(self) -> None:
        self._file.close()
        self.tb.close()


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else value
