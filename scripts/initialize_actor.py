"""Make the quickstart's initialized actor for a task and bundle it into the package.

    .venv/bin/python scripts/initialize_actor.py --task halfcheetah

Fits the GP prior exactly as ``nppac quickstart`` does (the same settings, seed and
bundled demonstrations: the same prior), then trains N-PPAC through
``nppac.training.train`` with the task's published policy initialization (400 epochs of
KL(π‖π0) on the demonstration states) and stops after the evaluated row at
env_steps = 0, before any environment step. The actor of that row is written to
``src/nppac/assets/initialized/TASK.safetensors``; ``TASK.json`` records the prior's
settings (the quickstart uses the actor only with that prior), the initialization's
settings and KL, and the returns at step 0: the actor's and the prior's mean action's.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch

from nppac.data import load_demos
from nppac.tasks import get_task
from nppac.training import TrainConfig, train
from nppac.training.quickstart import fit_quickstart_prior, prior_settings
from nppac.training.references import read_references

ASSETS = Path(__file__).resolve().parents[1] / "src" / "nppac" / "assets" / "initialized"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="halfcheetah")
    parser.add_argument("--prior-iters", type=int, default=100, help="As nppac quickstart's --prior-iters.")
    parser.add_argument("--inducing", type=int, default=1000, help="As nppac quickstart's --inducing.")
    parser.add_argument("--seed", type=int, default=0, help="As nppac quickstart's --seed.")
    parser.add_argument("--epochs", type=int, default=None, help="Initialization epochs (default: the task's).")
    parser.add_argument("--out", type=Path, default=ASSETS, help="Directory to write TASK.safetensors/.json into.")
    args = parser.parse_args()

    torch.set_num_threads(1)
    task = get_task(args.task)
    if task.bundled_demos is None:
        parser.error(f"task {task.name} has no bundled demonstrations")
    settings = prior_settings(task, task.bundled_demos, args.prior_iters, args.inducing, args.seed)
    demos = load_demos(task.bundled_demos, task=task.name, clip_actions=True)
    started = time.perf_counter()
    prior, _ = fit_quickstart_prior(demos, settings)
    config = TrainConfig(task=task.name, algo="nppac", steps=1000, seed=args.seed, init_epochs=args.epochs,
                         demos=str(task.bundled_demos)).validate()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        summary = train(config, run, prior=prior, demos=demos, on_epoch_end=lambda row: False)
        row = _rows(run)[0]
        reference = read_references(run).get("prior_mean_action", {})
        args.out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run / "actor.safetensors", args.out / f"{task.name}.safetensors")
    resolved = config.resolved()
    record = {
        "task": task.name, "prior": settings,
        "initialization": {"epochs": resolved.init_epochs, "batch_size": resolved.init_batch_size,
                           "lr": resolved.actor_lr, "seed": resolved.seed, "prior_sigma": resolved.prior_sigma,
                           "actor": resolved.actor, "actor_hidden": list(resolved.actor_hidden),
                           "kl_start": float(row["init_kl_start"]), "kl": float(row["init_kl"])},
        "eval_return": summary["step0_eval_return"], "prior_mean_action_return": reference.get("return"),
        "eval_episodes": resolved.eval_episodes, "torch": torch.__version__,
        "seconds": round(time.perf_counter() - started, 1),
        "command": f"scripts/initialize_actor.py --task {task.name} --prior-iters {args.prior_iters} "
                   f"--inducing {args.inducing} --seed {args.seed}"
                   + (f" --epochs {args.epochs}" if args.epochs is not None else ""),
    }
    (args.out / f"{task.name}.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


def _rows(run: Path) -> list[dict[str, str]]:
    with (run / "progress.csv").open(newline="") as f:
        return list(csv.DictReader(f))


if __name__ == "__main__":
    main()
