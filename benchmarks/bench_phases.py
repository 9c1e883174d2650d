"""Where a training run's time goes: prior fit, initialization, warm-up, collection, updates, evaluation, the rest.

Runs one short run in this process (the library's own ``nppac.training.train``), times
the phases it marks (:mod:`nppac.training.timing`), prints the phase table, and
extrapolates it to a longer run:

    .venv/bin/python benchmarks/bench_phases.py --task halfcheetah --algo nppac --steps 3000 \\
        --prior runs/gp-halfcheetah --extrapolate 30000 [--init-epochs N] [--json OUT.json]

Phases (each the time spent inside the run's phase of that name, :data:`nppac.training.timing.PHASES`):

* prior fit — fitting the run's prior (zero with ``--prior``: a suite fits its priors once, before its runs);
* references — the prior's mean action and the uniform policy, evaluated once;
* π0 at demo states — the prior's (μ0, σ0) at the demonstration states, computed once (the initialization
  inside it excluded);
* initialization — the epochs of KL(π‖π0) on the demonstration states;
* warm-up — the collection (env steps and the replay buffer's additions) of the epochs that start before
  ``warmup_steps`` env steps are stored;
* collection — the same afterwards (env steps with the policy, and π0 cached at the new states);
* updates — every gradient step; evaluation; checkpoints;
* other — the rest of the run's wall time (building the agent, buffers and environments, logging).

The pure update rate is gradient steps per second inside the updates alone; the whole
run's rate is env steps per second of wall time. With one gradient step per env step
(the default) their ratio is the share of the run spent updating.

**Extrapolation** to ``--extrapolate`` env steps: what happens once (prior fit,
references, initialization scaled to the task's default epochs when ``--init-epochs``
runs fewer, warm-up, and everything before the first collected step) is kept; the
costs of the epochs after the warm-up (updates, collection, evaluation, other) are
scaled by their number, and checkpoint time also by the replay buffer's mean size
(a checkpoint writes the filled buffer). The script measures the code it imports:
run it with ``PYTHONPATH=OTHER_CHECKOUT/src`` to measure another version whose runs mark
their phases.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

import nppac
from nppac.training import TrainConfig, train
from nppac.training.config import ResolvedConfig
from nppac.training.timing import PHASES as RUN_PHASES
from nppac.training.timing import phase_timer

COLLECTION = RUN_PHASES.index("collection")
PHASES = (*RUN_PHASES[:COLLECTION], "warm-up", *RUN_PHASES[COLLECTION:], "other")
"""The table's rows: the run's phases, its collection split into the warm-up and the rest, and the rest of the
run's wall time."""


class PhaseClock:
    """Seconds per phase, split into the part before the first collected env step (once per run) and after."""

    def __init__(self, device: torch.device, warmup_steps: int, steps_per_epoch: int) -> None:
        self.device, self.warmup_steps, self.steps_per_epoch = device, warmup_steps, steps_per_epoch
        self.before: dict[str, float] = defaultdict(float)
        self.after: dict[str, float] = defaultdict(float)
        self.started = 0.0
        self.first_step_at: float | None = None
        """Seconds from the start of the run to its first collected env step."""
        self.env_steps = self.checkpoints_after = 0
        self.inner: list[float] = []
        """Per phase in progress, the seconds its own inner phases took (a phase's time excludes theirs)."""

    @property
    def collecting(self) -> bool:
        return self.first_step_at is not None

    def now(self) -> float:
        if self.device.type == "cuda":  # queued kernels belong to the phase that launched them
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def add(self, phase: str, seconds: float) -> None:
        (self.after if self.collecting else self.before)[phase] += seconds

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """The run's timer (:func:`nppac.training.timing.phase_timer`): the seconds of each phase it enters."""
        if phase == "collection":
            if self.first_step_at is None:
                self.first_step_at = self.now() - self.started
            if self.env_steps < self.warmup_steps:
                phase = "warm-up"
            self.env_steps += self.steps_per_epoch
        elif phase == "checkpoints":
            self.checkpoints_after += self.collecting
        t0 = self.now()
        self.inner.append(0.0)
        try:
            yield
        finally:
            elapsed = self.now() - t0
            self.add(phase, elapsed - self.inner.pop())
            if self.inner:
                self.inner[-1] += elapsed

    def measured(self, total: float) -> dict[str, float]:
        """Seconds per phase of the measured run; ``other`` is the rest of its wall time."""
        out = {p: self.before.get(p, 0.0) + self.after.get(p, 0.0) for p in PHASES if p != "other"}
        out["other"] = max(0.0, total - sum(out.values()))
        return out

    def extrapolated(self, cfg: ResolvedConfig, epochs_run: int, updates_run: int, target_steps: int,
                     init_scale: float, total: float) -> dict[str, float]:
        """Seconds per phase for a run of ``target_steps`` (see the module docstring)."""
        target_epochs = target_steps // cfg.steps_per_epoch
        warmup_epochs = math.ceil(cfg.warmup_steps / cfg.steps_per_epoch)
        per_epoch = target_epochs / epochs_run
        per_collection = (target_epochs - warmup_epochs) / (epochs_run - warmup_epochs)
        window = self.first_step_at if self.first_step_at is not None else total
        other_before = max(0.0, window - sum(self.before.values()))
        other_after = max(0.0, total - window - sum(self.after.values()))
        # A checkpoint writes the filled replay buffer, whose mean size over the rows grows with the run.
        rows_run = max(1, self.checkpoints_after)
        checkpoint_scale = target_epochs / rows_run * (target_epochs + 1) / (rows_run + 1)
        out = {}
        for phase in PHASES:
            once = self.before.get(phase, 0.0) * (init_scale if phase == "initialization" else 1.0)
            after = self.after.get(phase, 0.0)
            if phase == "warm-up":
                out[phase] = once + after
            elif phase == "updates":
                out[phase] = once + after / max(1, updates_run) * target_epochs * cfg.updates_per_epoch
            elif phase == "checkpoints":
                out[phase] = once + after * checkpoint_scale
            elif phase == "other":
                out[phase] = other_before + other_after * per_epoch
            elif phase == "collection":
                out[phase] = once + after * per_collection
            else:
                out[phase] = once + after * per_epoch
        return out


def source_commit(module_file: str) -> str:
    """The git commit (and whether the tree differs from it) of the nppac source being measured."""
    where = Path(module_file).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(where), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + (" (modified)" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="halfcheetah")
    parser.add_argument("--algo", default="nppac")
    parser.add_argument("--steps", type=int, default=3000, help="Env steps of the measured run (at least 2 epochs).")
    parser.add_argument("--prior", default=None, help="A saved prior directory (default: fit one in the run).")
    parser.add_argument("--init-epochs", type=int, default=None, help="Initialization epochs (default: the task's).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the run's num_threads).")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="key=value: any TrainConfig field.")
    parser.add_argument("--extrapolate", type=int, default=30_000, help="Env steps to extrapolate the table to.")
    parser.add_argument("--out", default=None, help="Run directory (default: a temporary one, removed).")
    parser.add_argument("--json", default=None, help="Also write the measurements to this JSON file.")
    args = parser.parse_args()

    config = TrainConfig(task=args.task, algo=args.algo, steps=args.steps, seed=args.seed, device=args.device,
                         prior=args.prior, init_epochs=args.init_epochs, num_threads=args.threads)
    config = config.with_overrides(args.overrides).validate()
    cfg = config.resolved()
    if cfg.n_epochs * cfg.steps_per_epoch < cfg.warmup_steps + cfg.steps_per_epoch:
        parser.error("--steps must cover the warm-up and at least one epoch after it")
    default_init = TrainConfig(task=cfg.task, algo=cfg.algo).resolved().init_epochs
    init_scale = default_init / cfg.init_epochs if cfg.init_epochs else 1.0
    clock = PhaseClock(torch.device(args.device), cfg.warmup_steps, cfg.steps_per_epoch)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp, phase_timer(clock.timed):
        clock.started = clock.now()
        summary = train(config, Path(args.out) if args.out else Path(tmp) / "run", progress=False)
        total = clock.now() - clock.started
    load_end = os.getloadavg()
    updates = summary["gradient_steps"]
    measured = clock.measured(total)
    projected = clock.extrapolated(cfg, summary["epochs"], updates, args.extrapolate, init_scale, total)
    projected_total = sum(projected.values())
    update_rate = updates / measured["updates"] if measured["updates"] else math.nan
    run_rate = summary["env_steps"] / total
    projected_run_rate = args.extrapolate / projected_total
    report = {
        "nppac": str(Path(nppac.__file__).resolve().parent), "commit": source_commit(nppac.__file__),
        "torch": torch.__version__, "threads": args.threads, "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(), "load_average_start": load[0], "load_average_end": load_end[0],
        "task": cfg.task, "algo": cfg.algo, "env_steps": summary["env_steps"], "gradient_steps": updates,
        "init_epochs": cfg.init_epochs, "seconds": measured, "total_s": total, "update_rate": update_rate,
        "run_env_steps_per_s": run_rate, "ratio": run_rate / update_rate,
        "extrapolated_steps": args.extrapolate, "extrapolated_init_epochs": default_init if cfg.init_epochs else 0,
        "extrapolated_seconds": projected, "extrapolated_total_s": projected_total,
        "extrapolated_ratio": projected_run_rate / update_rate,
        "step0_eval_return": summary["step0_eval_return"], "final_eval_return": summary["final_eval_return"],
    }
    print(f"nppac {report['nppac']} at {report['commit']}; torch {report['torch']}, {args.threads} thread(s), "
          f"load average {load[0]:.1f} → {load_end[0]:.1f} on {report['cpus']} CPUs")
    print(f"{cfg.algo} on {cfg.task}: {summary['env_steps']:,} env steps, {updates:,} gradient steps, "
          f"{cfg.init_epochs} initialization epochs (extrapolated: {report['extrapolated_init_epochs']})")
    print()
    print(f"| phase | {summary['env_steps']:,}-step run (s) | % | {args.extrapolate:,} steps, extrapolated (s) | % |")
    print("|---|---|---|---|---|")
    for phase in PHASES:
        print(f"| {phase} | {measured[phase]:.1f} | {100 * measured[phase] / total:.1f} | "
              f"{projected[phase]:.1f} | {100 * projected[phase] / projected_total:.1f} |")
    print(f"| **total** | {total:.1f} | 100 | {projected_total:.1f} | 100 |")
    print()
    print(f"pure update rate {update_rate:.1f} gradient steps/s; whole run {run_rate:.1f} env steps/s "
          f"(ratio {report['ratio']:.2f}); extrapolated to {args.extrapolate:,} steps: "
          f"{projected_run_rate:.1f} env steps/s (ratio {report['extrapolated_ratio']:.2f})")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
