"""``nppac train``: train N-PPAC, PPAC-NN, SAC or a baseline (SAC+BC, AWAC, BC) on a task."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import typer

from nppac.cli.common import QUIET, emit_json


def _algorithms_help() -> str:
    """The algorithm table as help text (imported lazily by typer only when --help renders it)."""
    from nppac.training.algorithms import ALGORITHMS

    return "; ".join(f"{a.name}: {a.summary}" for a in ALGORITHMS.values())


def train(
    task: str | None = typer.Option(None, "--task", help="Task: a name of `nppac tasks`, a gymnasium id "
                                    "(e.g. HalfCheetah-v5, with --demos), module:function returning a Task, or an "
                                    "entry point of group nppac.tasks."),
    algo: str | None = typer.Option(None, "--algo", help="Algorithm: " + _algorithms_help() + "."),
    demos: Path | None = typer.Option(None, "--demos", help="Demonstrations: any file `nppac data` reads, or "
                                      "minari:ID (default: the task's own set)."),
    prior_dir: Path | None = typer.Option(None, "--prior", help="Saved prior directory (default: fit from --demos)."),
    steps: int | None = typer.Option(None, "--steps", help="Total environment steps (with --resume: a new total)."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed."),
    preset: str | None = typer.Option(None, "--preset", help="Named settings for what a run leaves unset: "
                                      "published (the published code's prior, protocol and per-task settings)."),
    device: str | None = typer.Option(None, "--device", help="cpu or cuda."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Allow pickle-based demonstration files."),
    seed_demos: bool = typer.Option(
        False, "--seed-demos", help="Put the demonstrations into the replay buffer (default for awac and bc)."),
    config_file: Path | None = typer.Option(
        None, "--config", help="A run described in a file: a .toml like a suite cell (task, algo, seed, steps "
        "and a settings table) or a past run's config.json; the other options and --set override it."),
    out: Path = typer.Option(..., "--out", help="Run directory (must not exist unless --resume)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
    overrides: list[str] = typer.Option([], "--set", help="Override any config field (TrainConfig, or the "
                                        "algorithm's own settings such as awac's lam): --set key=value."),
    json_out: bool = typer.Option(False, "--json", help="Print the run summary as one JSON document."),
    quiet: bool = QUIET,
) -> None:
    """Train an agent online; writes config.json, progress.csv, TensorBoard events and checkpoints to --out."""
    from nppac.errors import NppacError
    from nppac.training import TrainConfig
    from nppac.training import train as run_training
    from nppac.training.rundir import check_inputs

    config = None
    if resume and config_file is not None:
        raise NppacError("--resume continues the run in --out with its stored configuration; drop --config")
    if not resume:
        base, given = TrainConfig.from_file(config_file) if config_file is not None else (TrainConfig(), set())
        if config_file is not None and config_file.suffix == ".json":  # a past run's files, wherever it moved
            base = check_inputs(base, config_file.parent)
        if (task is None and "task" not in given) or (algo is None and "algo" not in given):
            raise NppacError("--task and --algo are required for a new run (or --config FILE naming them, or "
                             "--resume --out DIR)")
        flags: dict[str, Any] = {"task": task, "algo": algo, "demos": _str(demos), "prior": _str(prior_dir),
                                 "steps": steps, "seed": seed, "device": device, "preset": preset,
                                 "allow_pickle": allow_pickle or None, "seed_demos": seed_demos or None}
        given_twice = {o.partition("=")[0].strip() for o in overrides} & {k for k, v in flags.items() if v is not None}
        twice = sorted(given_twice)
        if twice:
            raise NppacError(f"--{twice[0].replace('_', '-')} and --set {twice[0]}=... both give {twice[0]}; "
                             "give it once")
        config = dataclasses.replace(base, **{k: v for k, v in flags.items() if v is not None})
        config = config.with_overrides(overrides).validate()
    else:
        options = {"--demos": demos, "--prior": prior_dir, "--preset": preset, "--device": device,
                   "--allow-pickle": allow_pickle or None,
                   "--seed-demos": seed_demos or None, **{f"--set {o}": True for o in overrides}}
        _check_resume(out, {"task": task, "algo": algo, "seed": seed},
                      [k if v is True else f"{k} {v}" for k, v in options.items() if v is not None])
    summary = run_training(config, out, resume=resume, steps=steps if resume else None, progress=not quiet)
    if json_out:
        emit_json(summary)
    else:
        print(f"{summary['algo']} on {summary['task']}: {summary['epochs']} epochs, {summary['env_steps']} env steps, "
              f"eval return {summary['step0_eval_return']:.2f} at step 0, final {summary['final_eval_return']:.2f} "
              f"→ {summary['out_dir']}", file=sys.stderr)


def _check_resume(out: Path, identity: dict[str, object], ignored: list[str]) -> None:
    """Refuse ``--task``/``--algo``/``--seed`` that differ from the run being resumed (they define it);
    name every other option that ``--resume`` ignores."""
    from nppac.errors import NppacError
    from nppac.training.rundir import RunDir

    run = RunDir(out)
    if not run.started:
        return  # train() says there is nothing to resume
    cfg = run.train_config()
    differ = [f"--{k} {v} (the run's {k} is {getattr(cfg, k)})" for k, v in identity.items()
              if v is not None and v != getattr(cfg, k)]
    if differ:
        raise NppacError(f"--resume continues the run in {out} as it was started, but {', '.join(differ)}; "
                         "drop those options, or start a new run with another --out")
    if ignored:
        print(f"note: --resume continues with the configuration stored in {run.config_file}; ignoring "
              f"{', '.join(ignored)} (only --steps may change)", file=sys.stderr)


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)
