"""``nppac evaluate``: a run's final actor, evaluated as the run evaluates it."""

from __future__ import annotations

from pathlib import Path

import typer

from nppac.cli.common import DEVICE, emit_json


def evaluate(
    run: Path = typer.Argument(
        ..., metavar="RUN_DIR", help="Run directory (the --out of `nppac train`, a suite's run, the API's)."),
    episodes: int | None = typer.Option(None, "--episodes", min=1, help="Episodes (default: the run's eval_episodes)."),
    seed: int | None = typer.Option(
        None, "--seed", help="Seed of the evaluation environment (default: the run's, seed + 10000: the episodes of "
                             "its first evaluation)."),
    video: Path | None = typer.Option(
        None, "--video", help="Record the worst episode to this .mp4 (gymnasium's recorder: needs moviepy and an "
                              "OpenGL context, e.g. MUJOCO_GL=egl)."),
    device: str = DEVICE,
    json_out: bool = typer.Option(False, "--json", help="Print the results as one JSON document."),
) -> None:
    """Evaluate the run's final actor deterministically on its task and evaluation protocol: success rate (hand
    tasks) or mean return with a 95 % interval, and the worst episode."""
    from nppac.diagnostics.evaluation import evaluate_policy

    result = evaluate_policy(run, n_episodes=episodes, seed=seed, device=device, video=video)
    if json_out:
        emit_json(result.to_json())
        return
    lo, hi = result.interval
    rate = result.success_rate
    headline = f"mean return {result.mean_return:.1f} [{lo:.1f}, {hi:.1f}] (95 % t interval)" if rate is None else \
        f"success rate {rate:.2f} [{lo:.2f}, {hi:.2f}] (95 % Wilson interval), mean return {result.mean_return:.1f}"
    print(f"{result.task}: {headline} over {result.episodes} episodes (seed {result.seed}, horizon {result.horizon}); "
          f"worst episode {result.worst_episode} (return {result.worst_return:.1f}); {result.policy}")
    if result.video is not None:
        print(f"video of episode {result.worst_episode}: {result.video}")
