"""``nppac expert`` (train, export, evaluate locomotion experts) and ``nppac demos`` (collect demonstrations)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from nppac.cli.common import DEVICE, QUIET, emit_json
from nppac.outputs import check_output_dir, check_output_file

expert_app = typer.Typer(help="Train, export and evaluate locomotion experts.", no_args_is_help=True)
demos_app = typer.Typer(help="Collect demonstrations from an expert.", no_args_is_help=True)

_TASK_HELP = "Task name (see `nppac tasks`)."
_EXPERT_HELP = "'bundled' (the expert shipped for the task), an actor .safetensors file, or a run directory."
_HORIZON_HELP = "Cap each episode at this many steps (default: the task's horizon)."


@expert_app.command("train")
def train_command(
    task: str | None = typer.Option(None, "--task", help=_TASK_HELP),
    steps: int | None = typer.Option(
        None, "--steps", help="Total environment steps (default 1,000,000; with --resume: a new total)."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    device: str = DEVICE,
    out: Path = typer.Option(..., "--out", help="Run directory (must not exist unless --resume)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
    overrides: list[str] = typer.Option([], "--set", help="Override any training config field: --set key=value."),
    json_out: bool = typer.Option(False, "--json", help="Print the run summary as one JSON document."),
    quiet: bool = QUIET,
) -> None:
    """Train an expert with SAC (automatic α); keeps --out/expert.safetensors at the best evaluation so far."""
    from nppac.errors import NppacError
    from nppac.training.experts import EXPERT_STEPS, expert_config, train_expert

    config = None
    if not resume:
        if task is None:
            raise NppacError("--task is required for a new expert run (or pass --resume --out DIR)")
        check_output_dir(out)
        config = expert_config(task, EXPERT_STEPS if steps is None else steps, seed, device, overrides)
    elif overrides or task is not None:
        print("note: --resume continues with the configuration stored in the run directory (only --steps may change)",
              file=sys.stderr)
    summary = train_expert(config, out, resume=resume, progress=not quiet, steps=steps if resume else None)
    if json_out:
        emit_json(summary)
        return
    print(f"expert for {summary['task']}: {summary['env_steps']:,} env steps, best eval return "
          f"{summary['expert_eval_return']:.1f} → {summary['expert']}", file=sys.stderr)


@expert_app.command("export")
def export_command(
    run: Path = typer.Option(..., "--run", help="Run directory of `nppac expert train` (may still be training)."),
    out: Path = typer.Option(..., "--out", help="Actor file to write (.safetensors; metadata beside it as .json)."),
    json_out: bool = typer.Option(False, "--json", help="Print the exported metadata as one JSON document."),
) -> None:
    """Extract the actor of a run's latest checkpoint, e.g. to harvest a long run while it trains."""
    from nppac.training.experts import export_expert

    check_output_file(out, ".safetensors")
    meta = export_expert(run, out)
    if json_out:
        emit_json(meta)
        return
    print(f"exported epoch {meta['epoch']} ({meta['env_steps']:,} env steps, eval return {meta['eval_return']}) "
          f"→ {out}", file=sys.stderr)


@expert_app.command("evaluate")
def evaluate_command(
    task: str | None = typer.Option(None, "--task", help=_TASK_HELP + " Default: the --expert run directory's."),
    expert: str = typer.Option("bundled", "--expert", help=_EXPERT_HELP),
    episodes: int = typer.Option(10, "--episodes", help="Number of episodes."),
    seed: int = typer.Option(0, "--seed", help="Seed of the environment."),
    horizon: int | None = typer.Option(None, "--horizon", help=_HORIZON_HELP),
    json_out: bool = typer.Option(False, "--json", help="Print the statistics as one JSON document."),
    quiet: bool = QUIET,
) -> None:
    """Return of the expert's deterministic policy (the mean action): mean, std, min, max over episodes."""
    from nppac.training.experts import evaluate_expert, expert_task, load_expert, resolve_expert

    task = expert_task(expert, task)
    path = resolve_expert(expert, task)
    stats = {"expert": str(path),
             **evaluate_expert(load_expert(str(path), task), task, episodes, seed, horizon, progress=not quiet)}
    if json_out:
        emit_json(stats)
        return
    print(f"{stats['task']}: return {stats['return_mean']:.1f} ± {stats['return_std']:.1f} "
          f"(min {stats['return_min']:.1f}, max {stats['return_max']:.1f}) over {episodes} episodes of {path}")


@demos_app.command("collect")
def collect_command(
    task: str = typer.Option(..., "--task", help=_TASK_HELP),
    expert: str = typer.Option("bundled", "--expert", help=_EXPERT_HELP),
    episodes: int = typer.Option(10, "--episodes", help="Number of trajectories."),
    action_noise: float = typer.Option(0.15, "--action-noise", help="Std of the Gaussian noise added to actions."),
    seed: int = typer.Option(0, "--seed", help="Seed of the environment and the noise (same seed, same file)."),
    horizon: int | None = typer.Option(None, "--horizon", help=_HORIZON_HELP),
    out: Path = typer.Option(..., "--out", help="Output .npz file (replaced atomically if it exists)."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary of the written set as one JSON document."),
    quiet: bool = QUIET,
) -> None:
    """Roll out the expert with Gaussian action noise and write the demonstrations in nppac's .npz format."""
    from nppac.data import inspect_demos, load_npz, save_npz
    from nppac.training.experts import collect_demos, load_expert, resolve_expert

    check_output_file(out, ".npz")
    path = resolve_expert(expert, task)
    name = f"bundled:{task}" if expert == "bundled" else str(path)
    demos = collect_demos(load_expert(str(path), task), task, episodes, action_noise, seed, horizon,
                          progress=not quiet, expert_name=name)
    written = save_npz(demos, out)
    summary = {**inspect_demos(load_npz(written)), "expert": name, "action_noise": action_noise, "seed": seed}
    if json_out:
        emit_json(summary)
        return
    print(f"wrote {written}: {summary['n_trajectories']} trajectories, {summary['n_transitions']:,} transitions, "
          f"return {summary['return_mean']:.1f} ± {summary['return_std']:.1f}", file=sys.stderr)
