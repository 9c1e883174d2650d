"""``nppac quickstart``: the main job of ``make run`` — fit the GP prior, train N-PPAC briefly from the bundled
initialized actor, plot."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import typer

from nppac.cli.common import emit_json, set_threads
from nppac.outputs import check_output_dir


def quickstart(
    task: str = typer.Option("halfcheetah", "--task", help="Task name (see `nppac tasks`)."),
    demos: Path | None = typer.Option(None, "--demos", help="Demonstrations (default: the task's bundled set)."),
    steps: int = typer.Option(5000, "--steps", help="Environment steps of the N-PPAC run (1000 per epoch)."),
    prior_iters: int = typer.Option(100, "--prior-iters", help="Adam iterations of the GP marginal likelihood."),
    inducing: int = typer.Option(
        1000, "--inducing", help="Inducing states of the GP posterior (0: exact on all states)."),
    init_epochs: int | None = typer.Option(
        None, "--init-epochs", help="Epochs of KL(π‖π0) policy initialization (default: start from the task's "
        "bundled initialized actor where it was made for this prior, else 5)."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    threads: int = typer.Option(1, "--threads", help="torch CPU threads (0: torch's default). 1 by default: the GP "
                                "fit took 92 s with 2 threads against 8 s with 1 while the other core was busy."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Allow pickle-based demonstration files."),
    out: Path | None = typer.Option(None, "--out", help="Run directory (default: runs/quickstart-TASK-TIME)."),
    json_out: bool = typer.Option(False, "--json", help="Print the run summary as one JSON document."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Fit the GP reference policy on the default demonstrations, train N-PPAC for a short budget, plot it.

    The policy starts from the task's bundled initialized actor (400 epochs of KL(π‖π0)
    toward this same GP prior, made by scripts/initialize_actor.py) where there is one,
    else from a short initialization. The run directory gets config.json, progress.csv,
    TensorBoard events, the prior (prior/ and prior_metrics.json) and learning_curve.png;
    its path is printed last.
    """
    from nppac.data import load_demos
    from nppac.data.validate import MAX_CLIPPED_ACTIONS
    from nppac.diagnostics.curves import compare_runs, load_run, plot_comparison
    from nppac.errors import NppacError
    from nppac.tasks import get_task
    from nppac.training import TrainConfig, train
    from nppac.training.progress import ProgressBar
    from nppac.training.quickstart import fit_quickstart_prior, initialized_actor, prior_settings

    set_threads(threads)
    spec = get_task(task)
    source = demos if demos is not None else spec.bundled_demos
    if source is None:
        raise NppacError(f"task {task!r} has no bundled demonstrations; pass --demos PATH "
                         "(e.g. one written by `nppac demos collect`)")
    out_dir = out if out is not None else Path("runs") / f"quickstart-{task}-{time.strftime('%Y%m%d-%H%M%S')}"
    check_output_dir(out_dir)

    data = load_demos(source, task=task, allow_pickle=allow_pickle, clip_actions=True, max_clipped=MAX_CLIPPED_ACTIONS)
    say = (lambda msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr))
    say(f"[1/3] fitting the GP prior ({spec.defaults.kernel}) on {data.n_transitions} demonstrated states "
        f"from {source}")
    # A short default: hyperparameters on 500 states, posterior through 1000 inducing states
    # (`nppac train` and `nppac prior fit` condition exactly by default).
    settings = prior_settings(spec, Path(source), prior_iters, inducing, seed)
    with ProgressBar(not quiet) as bar:
        prior, metrics = fit_quickstart_prior(data, settings, bar.stage)
    say(f"      σ0 on the data {metrics['std_on_data']:.3f}, 8 data-stds away {metrics['std_offset']['8']:.3f}")

    bundled = initialized_actor(spec, settings) if init_epochs is None else None
    if bundled is not None:
        # The record's KL (5.36 for halfcheetah) is the mean over the last initialization epoch's mini-batches, taken
        # while Adam still moved the actor; the run measures the actor itself on every state (4.73, logged once, and
        # init_kl at step 0). Quoting both printed two KLs for one actor.
        actor_path, record = bundled
        say(f"[2/3] training N-PPAC for {steps} environment steps from the bundled initialized actor {actor_path} "
            f"({record['initialization']['epochs']} epochs of KL(π‖π0) toward this GP prior)")
    else:
        init_epochs = 5 if init_epochs is None else init_epochs
        say(f"[2/3] training N-PPAC for {steps} environment steps after {init_epochs} epochs of policy "
            "initialization")
    config = TrainConfig(task=task, algo="nppac", steps=steps, seed=seed, demos=str(source), allow_pickle=allow_pickle,
                         init_actor=None if bundled is None else str(bundled[0]),
                         init_epochs=0 if bundled is not None else init_epochs,
                         num_threads=threads or None).validate()
    summary = train(config, out_dir, prior=prior, demos=data, progress=not quiet)
    (out_dir / "prior_metrics.json").write_text(json.dumps(metrics, indent=2, default=float) + "\n")

    say("[3/3] plotting the learning curve")
    figure = plot_comparison(compare_runs([load_run(out_dir)], group_by="algo"), out_dir / "learning_curve.png")
    summary = {**summary, "learning_curve": str(figure), "prior_metrics": str(out_dir / "prior_metrics.json"),
               "init_actor": str(bundled[0]) if bundled is not None else None}
    if json_out:
        emit_json(summary)
    else:
        from nppac.training.rundir import RunDir

        prior_line = RunDir(out_dir).references().get("prior_mean_action", {}).get("return")
        versus = f" (the GP prior's mean action alone: {prior_line:.1f})" if prior_line is not None else ""
        start_what = "the initialized actor" if bundled is not None else "initialization"
        say(f"eval return {summary['step0_eval_return']:.1f} from {start_what}, {summary['final_eval_return']:.1f} "
            f"after {summary['env_steps']} env steps{versus}")
        print(f"run directory: {out_dir}")
