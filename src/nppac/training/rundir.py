"""A run's directory: its one owner (:class:`RunDir`: its files' names, their readers and writers), and the checks
before a run starts or resumes.

A run directory holds everything needed to continue it. Its ``config.json`` names the run's copy of its prior
(``prior/``), however the prior was given, so the file alone reruns the run; it names files inside the run relative
to it, and ``inputs.json`` records the path and content hash of each file outside, so that a moved run reruns and
resumes. A new run refuses a directory in use; a resumed run refuses a checkpoint it cannot continue exactly
(damaged, of another version, past the steps asked for, under an edited configuration, or with its prior or its rows
in ``progress.csv`` gone or changed).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import time
from pathlib import Path
from typing import Any, TypeVar

import torch

from nppac.data.loaders import is_minari_id
from nppac.data.replay import ReplayBuffer
from nppac.errors import NppacError
from nppac.outputs import check_output_dir, content_hash, write_atomic
from nppac.training.checkpoint import CHECKPOINT_NAME, load_checkpoint
from nppac.training.config import PATH_FIELDS, ResolvedConfig, TrainConfig, migrate, read_stored
from nppac.training.logger import PROGRESS_NAME, current_column_names, parse_progress, read_progress

log = logging.getLogger(__name__)
Config = TypeVar("Config", bound=TrainConfig)

CONFIG_NAME = "config.json"
PRIOR_DIR = "prior"
ACTOR_NAME = "actor.safetensors"
STATUS_NAME = "status.json"
"""The suite runner's record of a run: finished with its summary, diverged or failed with its error."""
REFERENCES_NAME = "references.json"
"""What the run's learning curve is read against (:mod:`nppac.training.references`)."""
PROVENANCE_NAME = "provenance.json"
"""Every start of the run and the code it ran (:mod:`nppac.training.provenance`)."""
RUN_FILES = (CONFIG_NAME, PROGRESS_NAME, STATUS_NAME, REFERENCES_NAME, PROVENANCE_NAME)
"""What a run's report row and figure are made from: the files a suite's export copies."""

RESUMABLE_CHANGES = ("steps", "num_threads", "device", "eval_every", *PATH_FIELDS)
"""Settings a resumed run may differ in from the checkpoint it continues (the files: the same content, found where
the run or the file moved; :func:`check_inputs` and the prior's hash in the checkpoint make sure of it)."""
INPUTS_RECORD = "inputs.json"
"""The files outside the run that its ``config.json`` names: setting → its absolute path and content hash."""
DEMOS_RECORD = "demos.json"
"""Runs before :data:`INPUTS_RECORD` recorded their demonstration file alone, in this file."""


class RunDir:
    """A run's directory (``nppac train --out``, a suite's ``TASK/ALGO/seed-S``): the one place that names its files
    and reads or writes its records. Those a run may lack read as empty when missing or unreadable; its configuration
    is refused in one line naming the file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.config_file, self.progress_file, self.checkpoint, self.prior_dir, self.actor = (
            self.path / name for name in (CONFIG_NAME, PROGRESS_NAME, CHECKPOINT_NAME, PRIOR_DIR, ACTOR_NAME))

    @property
    def started(self) -> bool:
        """Whether a run started here: its ``config.json`` is the first file it writes."""
        return self.config_file.exists()

    def exported_files(self) -> list[Path]:
        """The run's files of :data:`RUN_FILES` that exist: what an export copies."""
        return [self.path / name for name in RUN_FILES if (self.path / name).is_file()]

    def config(self) -> dict[str, Any]:
        """The stored configuration as written (:func:`~nppac.training.config.read_stored`)."""
        return read_stored(self.config_file)

    def train_config(self, hint: str | None = None, what: str = "a run directory") -> TrainConfig:
        """The stored configuration, typed in this version's form (:meth:`TrainConfig.load`). With ``hint``, a
        directory without one is refused as not ``what``, ``hint`` saying what to give instead."""
        if hint is not None and not self.config_file.is_file():
            raise NppacError(f"{self.path} is not {what} (no {CONFIG_NAME}); {hint}")
        return TrainConfig.load(self.config_file)

    def progress(self, *, strict: bool = False, config: dict[str, Any] | None = None
                 ) -> tuple[list[str], list[dict[str, str]]]:
        """The one reader of the run's ``progress.csv``: its columns under today's names
        (:func:`~nppac.training.logger.current_column_names`) and its complete rows (:func:`parse_progress`). With
        ``strict`` a cut row, a missing or an unreadable file is refused in one line: a curve drawn from it cannot be
        trusted. ``config`` (the run's ``config.json``) is read when not given.
        """
        from nppac.training.algorithms import run_uses_prior

        progress = self.progress_file
        try:
            text = ""
            if strict or progress.is_file():
                with progress.open(newline="") as f:
                    text = f.read()
            header, body, cut = parse_progress(text)
        except (OSError, UnicodeDecodeError, csv.Error) as err:
            if strict:
                raise NppacError(f"{progress} is not a readable CSV file ({err})") from None
            return [], []
        if cut is not None and strict:
            raise NppacError(f"{progress} is cut or edited: {cut}; a run writes whole rows, so its curve "
                             "cannot be trusted: train the run again")
        config = self.record(CONFIG_NAME) or {} if config is None else config
        names = current_column_names(header, run_uses_prior(config))
        return names, [dict(zip(names, row)) for row in body]

    def inputs(self) -> dict[str, Any] | None:
        """The record of the files outside the run (:data:`INPUTS_RECORD`, or an earlier run's :data:`DEMOS_RECORD`),
        None without one; refused in one line when it cannot be read or was edited."""
        record_file = self.path / INPUTS_RECORD
        if not record_file.exists():
            demos = self.record(DEMOS_RECORD)
            return None if demos is None else {"demos": demos}
        try:
            records = json.loads(record_file.read_text())
        except (OSError, ValueError) as err:
            raise NppacError(f"{record_file} cannot be read ({err}); restore it, or start a new run") from None
        if not (isinstance(records, dict) and all(
                name in PATH_FIELDS and isinstance(r, dict) and isinstance(r.get("path"), str)
                and isinstance(r.get("sha256"), str) for name, r in records.items())):
            raise NppacError(f"{record_file} is not a record of the run's outside files ({{name: {{path, sha256}}}}); "
                             "was it edited? restore it, or start a new run")
        return records

    def status(self) -> dict[str, Any] | None:
        """The suite runner's record of the run (None when it never finished with it, or the file is unreadable)."""
        return self.record(STATUS_NAME)

    def write_status(self, record: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.write(STATUS_NAME, {**record, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})

    def clear_status(self) -> None:
        """Forget an earlier failure before trying again (and the directory it alone kept, so training starts clean)."""
        (self.path / STATUS_NAME).unlink(missing_ok=True)
        if self.path.is_dir() and not any(self.path.iterdir()):
            self.path.rmdir()

    def references(self) -> dict[str, Any]:
        """The run's references ({} for runs written before them, or a broken file)."""
        return self.record(REFERENCES_NAME) or {}

    def provenance(self) -> dict[str, Any]:
        """The run's provenance record (``{"starts": []}`` when it has none, or it cannot be read)."""
        record = self.record(PROVENANCE_NAME)
        return record if record is not None and isinstance(record.get("starts"), list) else {"starts": []}

    def record(self, name: str) -> dict[str, Any] | None:
        """The run's JSON record ``name`` (None when it is missing, unreadable or no object)."""
        try:
            record = json.loads((self.path / name).read_text())
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def write(self, name: str, record: dict[str, Any]) -> None:
        """Replace the run's JSON record ``name`` whole (a kill leaves the old file or the new one); numpy and torch
        scalars as numbers, anything else JSON lacks as text."""
        text = json.dumps(record, indent=2, default=lambda x: x.item() if hasattr(x, "item") else str(x))
        write_atomic(self.path / name, text + "\n")


def prepare_run_dir(config: TrainConfig | None, out: Path, resume: bool) -> ResolvedConfig:
    """The run's configuration: the stored one when resuming, else ``config`` resolved and written."""
    run = RunDir(out)
    if resume:
        if not run.started:
            raise NppacError(f"nothing to resume in {out}: no {CONFIG_NAME}; start a new run without --resume")
        cfg = check_inputs(run.train_config().resolved(), out)
        if config is not None:
            given = config.resolved().to_dict()
            differ = [k for k, v in cfg.to_dict().items() if given[k] != v]
            if differ:
                log.warning("resuming with the stored configuration; ignoring new values of: %s", ", ".join(differ))
        return cfg
    if config is None:
        raise NppacError("a training configuration is required unless resuming")
    check_new_run_dir(out)
    cfg = config.resolved()
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(run.config_file)
    home = out.resolve()
    record = {name: {"path": str(Path(value).resolve()), "sha256": content_hash(Path(value))}
              for name in PATH_FIELDS if isinstance(value := getattr(cfg, name), str) and Path(value).exists()
              and not Path(value).resolve().is_relative_to(home)}
    if record:
        run.write(INPUTS_RECORD, record)
    return cfg


def check_new_run_dir(out: Path, to_continue: str = "pass --resume to continue it or choose another --out") -> None:
    """Refuse, before any work, a directory a new run cannot start in: one in use (``to_continue`` says how to
    continue its run instead), a file, a place that cannot be written."""
    if out.is_dir() and any(out.iterdir()):
        raise NppacError(f"output directory {out} already exists; {to_continue}")
    check_output_dir(out)


def own_prior(out: Path) -> str:
    """The run's copy of its prior, as an absolute path (its ``config.json`` names it relative to the run, so that
    ``nppac train --config OUT/config.json`` reruns the run from any working directory, wherever OUT moved)."""
    return str(RunDir(out).prior_dir.resolve())


def is_own_prior(path: str | Path, out: Path) -> bool:
    """Whether ``path`` is the run's own copy of its prior (``out/prior``)."""
    return Path(path).resolve() == Path(own_prior(out))


def check_inputs(cfg: Config, directory: Path) -> Config:
    """``cfg`` with each file outside the run that it names (:meth:`RunDir.inputs`) where the config names it, else
    at the path recorded at the start; refused in one line, naming both, when neither exists or its sha256 changed."""
    records = RunDir(directory).inputs()
    if records is None:
        home = directory.resolve()
        outside = [name for name in PATH_FIELDS if isinstance(value := getattr(cfg, name), str)
                   and not is_minari_id(value) and not Path(value).resolve().is_relative_to(home)]
        if outside and "schema" in (RunDir(directory).record(CONFIG_NAME) or {}):  # this version records them
            raise NppacError(f"{directory / INPUTS_RECORD} is gone: {', '.join(outside)} outside the run can no "
                             "longer be checked against what it started from; restore it, or start a new run")
        return cfg  # nothing outside the run, or a run from before the record
    found: dict[str, Any] = {}
    for name, record in records.items():
        given = getattr(cfg, name)
        path = next((p for p in (Path(given) if given else None, Path(record["path"])) if p and p.exists()), None)
        if path is None:
            raise NppacError(f"{name} of the run in {directory}: neither {given} nor {record['path']} (where it "
                             "started) exists; restore the file to rerun or resume it")
        if content_hash(path) != record["sha256"]:
            raise NppacError(f"{name} of the run in {directory}: {path} is not the file it started from "
                             f"({record['path']}, sha256 in {INPUTS_RECORD}); restore that file, or start a new run")
        found[name] = str(path)
    return dataclasses.replace(cfg, **found)


def load_resume_checkpoint(cfg: ResolvedConfig, out: Path, device: torch.device) -> dict[str, Any] | None:
    """The checkpoint a resumed run continues from (None when none was written yet), refused in one line unless it is
    exactly the state the run saved: intact (:func:`load_checkpoint`), with run phases, not past the run's steps,
    under the run's ``config.json``, its replay buffer's sizes agreeing, with the run's prior and the rows of
    ``progress.csv`` up to it. Nothing is written before these checks."""
    ckpt_path, progress = RunDir(out).checkpoint, RunDir(out).progress_file
    if not ckpt_path.exists():
        rows = len(read_progress(progress)[1])
        if rows:  # every row is written after its checkpoint
            raise NppacError(f"{ckpt_path} is gone, but {progress} holds {rows} rows: the state they were written "
                             f"from is lost; restore the checkpoint, or start over with a new --out (or delete {out})")
        return None
    ckpt = load_checkpoint(ckpt_path, device)
    if "state" not in ckpt:
        raise NppacError(f"checkpoint {ckpt_path} was written by an nppac version without run phases; "
                         "finish it with that version or start a new run")
    if int(ckpt["env_steps"]) > cfg.n_epochs * cfg.steps_per_epoch:
        raise NppacError(f"the run in {out} has already taken {int(ckpt['env_steps']):,} env steps; "
                         f"--steps must be at least that, got {cfg.steps:,}")
    check_same_run(cfg, ckpt, ckpt_path)
    problem = ReplayBuffer.state_problem(ckpt["replay"])
    if problem is not None:
        raise NppacError(f"checkpoint {ckpt_path} is not the state that was saved: its replay buffer {problem}; "
                         "restore it, or start over with a new --out")
    _check_prior(cfg, out, ckpt.get("prior_sha256"), ckpt_path)
    _check_progress(progress, ckpt, ckpt_path)
    return ckpt


def _check_prior(cfg: ResolvedConfig, out: Path, recorded: str | None, ckpt_path: Path) -> None:
    """The run's ``prior/`` is the one its checkpoint was trained with (the content hash the checkpoint records)."""
    stored = RunDir(out).prior_dir
    if cfg.prior_kind is None:
        return
    if recorded is None:
        log.info("checkpoint %s records no hash of the run's prior (an earlier version wrote it); %s is not checked",
                 ckpt_path, stored)
    elif not stored.is_dir():
        raise NppacError(f"the run's prior {stored} is gone, but its checkpoint {ckpt_path} was trained with it; "
                         "restore it, or start over with a new --out (a prior fitted again would be another one)")
    elif content_hash(stored) != recorded:
        raise NppacError(f"the run's prior {stored} changed since its checkpoint {ckpt_path} was written (sha256 "
                         "differs); restore it, or start over with a new --out")


def _check_progress(progress: Path, ckpt: dict[str, Any], ckpt_path: Path) -> None:
    """``progress.csv`` holds every row up to the checkpoint's (as many as it counts; earlier versions: its own at
    least). A kill between the checkpoint and its row leaves the row in ``ckpt["row"]``, to be written again;
    otherwise that entry is dropped. Fills ``rows`` in an earlier version's state."""
    state = ckpt["state"]
    key = (int(state["epoch"]), int(state["gradient_steps"]))
    header, rows = read_progress(progress)
    try:
        keys = [(int(r[header.index("epoch")]), int(r[header.index("gradient_steps")])) for r in rows]
    except ValueError:
        raise NppacError(f"{progress} is damaged (no epoch and gradient_steps in each row); restore it, or start "
                         "over with a new --out") from None
    if any(a >= b for a, b in zip(keys, keys[1:])):
        raise NppacError(f"{progress} is damaged: its rows are not in the order a run writes them (a row repeated or "
                         "out of place); restore it, or start over with a new --out")
    before, own = sum(k < key for k in keys), key in keys
    if own and isinstance(ckpt.get("row"), dict):  # the row on file is the one the checkpoint holds
        on_file = dict(zip(header, rows[keys.index(key)]))
        differ = [name for name in ("env_steps", "eval_return", "eval_success")
                  if not _same_number(on_file.get(name), ckpt["row"].get(name))]
        if differ:
            raise NppacError(f"{progress}: the row of epoch {key[0]} differs from the one saved with {ckpt_path} "
                             f"({', '.join(differ)}); it belongs to another run: restore it, or start over with a "
                             "new --out")
    saved = state.get("rows")
    complete = own if saved is None else before == saved - 1 and (own or "row" in ckpt)
    if not complete:
        written = f"{saved} rows were" if saved is not None else "its own row was"
        raise NppacError(f"{progress} holds {before + own} rows up to epoch {key[0]} (gradient step {key[1]}), where "
                         f"{written} written with the checkpoint {ckpt_path}; restore it, or start over with a new "
                         "--out")
    state["rows"] = before + 1
    if own:
        ckpt.pop("row", None)


def _same_number(text: Any, value: Any) -> bool:
    """A logged cell and the value it was written from (empty for None): the logger writes 6 significant digits."""
    if value is None or text in (None, ""):
        return (value is None) == (text in (None, ""))
    try:
        return math.isclose(float(text), float(value), rel_tol=1e-4, abs_tol=1e-6) or \
            (math.isnan(float(text)) and math.isnan(float(value)))
    except (TypeError, ValueError):
        return False


def check_same_run(cfg: TrainConfig, ckpt: dict[str, Any], ckpt_path: Path) -> None:
    """Refuse, in one line, a ``config.json`` edited since the checkpoint was written."""
    if "config" not in ckpt:
        return
    saved = migrate(json.loads(ckpt["config"]))  # both in one form, whichever version wrote the checkpoint
    now = migrate(json.loads(json.dumps(cfg.to_dict())))
    changed = [k for k in now if k not in RESUMABLE_CHANGES and saved.get(k) != now[k]]
    if changed:
        shown = ", ".join(f"{k}: {saved.get(k)!r} → {now[k]!r}" for k in changed[:3])
        raise NppacError(f"the run's {CONFIG_NAME} differs from its checkpoint {ckpt_path} in {shown}; "
                         "restore the file or start a new run")
