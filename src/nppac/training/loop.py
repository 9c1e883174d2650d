"""The one loop shared by every algorithm: pretrain offline, collect, update, evaluate, log, checkpoint.

A run goes through up to three phases, each visible in ``progress.csv`` (column ``phase``) and each resumable from
its checkpoint:

* ``init`` — π0 fitted or loaded and the policy initialized toward it (:mod:`nppac.training.setup`); one
  evaluated row at env_steps = 0.
* ``offline`` — ``offline_updates`` gradient steps on the buffer seeded with the demonstrations (AWAC's
  pretraining, BC's whole training), an evaluated row and a checkpoint every ``offline_eval_every`` steps.
* ``online`` — per epoch ``steps_per_epoch`` environment steps, then ``updates_per_epoch`` gradient steps, then
  a deterministic evaluation in a separate environment, a row, TensorBoard scalars and an atomic checkpoint.

This is the published rlkit order, each evaluation logged at the environment steps it saw. The first ``warmup_steps``
are collected before any online update, by the (initialized) policy as published, or uniformly (SAC, which has
nothing to start from). The loop is the same for every algorithm: the agent's metrics reach the logs by name, how it
collects and is evaluated is its ``acting()``, where the online updates draw their batches is ``run.online_batches``,
and whatever it keeps travels in its ``state_dict``.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import logging
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from nppac.agents.base import Agent, Metrics
from nppac.agents.networks import Actor, save_actor
from nppac.data.demos import Demonstrations
from nppac.data.replay import BatchSource
from nppac.errors import DivergedError
from nppac.outputs import one_writer
from nppac.priors.base import Prior
from nppac.training.checkpoint import CHECKPOINT_FORMAT, rng_state, save_checkpoint
from nppac.training.config import ResolvedConfig, TrainConfig
from nppac.training.envs import Collector, evaluate
from nppac.training.logger import RunLogger, progress_columns
from nppac.training.progress import ProgressBar
from nppac.training.provenance import record_start
from nppac.training.rundir import RunDir, own_prior, prepare_run_dir
from nppac.training.setup import Run, restore_or_start_run
from nppac.training.timing import timed

log = logging.getLogger(__name__)


class EpochMetrics:
    """Running sums of the gradient-step metrics on the training device, read once per row, and per metric the first
    step at which it was NaN/Inf, so that the check can name the term that broke first."""

    def __init__(self, names: tuple[str, ...], device: torch.device) -> None:
        self.names = names
        self.total = torch.zeros(len(names), device=device)
        self.first_bad = torch.zeros(len(names), dtype=torch.long, device=device)
        self.count = torch.zeros((), dtype=torch.long, device=device)

    def add(self, stats: Metrics) -> None:
        """Accumulate one step's metrics, given by name (device ops only)."""
        values = torch.stack([stats[k] for k in self.names])
        self.count += 1
        newly_bad = ~torch.isfinite(values) & (self.first_bad == 0)
        self.first_bad.copy_(torch.where(newly_bad, self.count, self.first_bad))
        self.total += values

    def read(self) -> tuple[dict[str, float], dict[str, int], int]:
        """(means, first non-finite step of each metric (0: never), steps) in one device→host copy; resets."""
        host = torch.cat([self.total.double(), self.first_bad.double(), self.count.double().reshape(1)]).cpu()
        n, steps = len(self.names), int(host[-1])
        means = {k: float(host[i]) / steps if steps else math.nan for i, k in enumerate(self.names)}
        first_bad = {k: int(host[n + i]) for i, k in enumerate(self.names)}
        self.total.zero_()
        self.first_bad.zero_()
        self.count.zero_()
        return means, first_bad, steps


def make_gradient_step(agent: Agent, buffer: BatchSource, metrics: EpochMetrics,
                       batch_size: int) -> Callable[[], None]:
    """The whole gradient step (replay sampling, update, metric accumulation) as one tensor-only function."""

    def gradient_step() -> None:
        metrics.add(agent.update(buffer.sample(batch_size)))

    return gradient_step


@one_writer("out_dir")
def train(config: TrainConfig | None, out_dir: str | Path, resume: bool = False, prior: Prior | None = None,
          demos: Demonstrations | None = None, *, steps: int | None = None, progress: bool = True,
          on_epoch_end: Callable[[dict[str, Any]], bool | None] | None = None,
          on_step: Callable[[int], bool | None] | None = None,
          on_start: Callable[[Actor], None] | None = None) -> dict[str, Any]:
    """Train an agent and return a summary (step-0, last and best evaluation, steps, paths).

    ``out_dir`` receives ``config.json``, ``progress.csv``, TensorBoard events, ``checkpoint.pt`` (saved just before
    each row), the prior (``prior/``) and the final actor (``actor.safetensors``). With ``resume`` the stored
    configuration is used and the run continues from its last checkpoint, whichever phase it was in; ``steps`` then
    sets a new total (at least the steps already done). ``prior``/``demos`` supply in-memory objects instead of
    paths. ``on_epoch_end(row)`` is called after each row's checkpoint, ``on_step(env_steps)`` after every online
    environment step: False from either stops the run (after the row; at once, without one), resumable like a killed
    run. ``on_start(actor)`` receives the live actor before the first phase.
    """
    started = time.perf_counter()
    out = Path(out_dir)
    fresh_dir = not resume and not out.exists()
    cfg = prepare_run_dir(config, out, resume)
    if resume and steps is not None and steps != cfg.steps:
        cfg = dataclasses.replace(cfg, steps=steps).validate()
    try:
        run = restore_or_start_run(cfg, out, resume, prior, demos, progress)
    except Exception:
        if fresh_dir:  # a run that never started leaves no directory that would demand --resume
            shutil.rmtree(out, ignore_errors=True)
        raise
    record_start(out, run.state.epoch, run.state.env_steps)
    names_its_prior = not resume and cfg.prior_kind is not None
    if names_its_prior:
        # config.json names the copy the run trains with, however the prior was given: the file alone reruns it.
        cfg = dataclasses.replace(cfg, prior=own_prior(out))
    if names_its_prior or (resume and steps is not None):
        cfg.save(RunDir(out).config_file)
    task, agent = cfg.task_spec, run.agent
    columns = progress_columns(task.reward == "binary", tuple(agent.metric_terms),
                               with_init=run.prior_cache is not None, acting=run.acting.columns)
    # TensorBoard's step is env_steps: events of an offline phase share step 0 and are not purged on resume.
    logger = RunLogger(out, columns, purge_step=run.state.env_steps + 1 if resume and run.state.step0_done else None)
    if run.unwritten_row is not None:
        logger.log(run.unwritten_row)
    if on_start is not None:
        on_start(agent.actor)
    loop = _Loop(cfg, run, logger, out, started, on_epoch_end, on_step)
    try:
        with ProgressBar(progress) as bar:
            loop.bar = bar
            if not run.state.step0_done:
                loop.initial_phases()
            if not loop.stopped:
                loop.online()
    finally:
        logger.close()
        for env in [*run.envs.values(), *run.eval_copies]:
            env.close()

    save_actor(agent.actor, RunDir(out).actor)
    return _summary(out, cfg, loop.rows)


class _Loop:
    """The phases of one run, writing a row and a checkpoint after each evaluation."""

    bar: ProgressBar

    def __init__(self, cfg: ResolvedConfig, run: Run, logger: RunLogger, out: Path, started: float,
                 on_row: Callable[[dict[str, Any]], bool | None] | None,
                 on_step: Callable[[int], bool | None] | None = None) -> None:
        self.cfg, self.run, self.logger, self.on_row, self.on_step = cfg, run, logger, on_row, on_step
        self.wall_before, self.started = run.state.wall_s, started
        self.ckpt_path = RunDir(out).checkpoint
        self.metrics = EpochMetrics(tuple(run.agent.metric_terms), run.agent.device)
        self.rows: list[dict[str, Any]] = []
        self.stopped = False
        """Whether a callback asked to stop (the run stays resumable from its last checkpoint)."""

    def initial_phases(self) -> None:
        """Offline pretraining (if any), then the evaluated row at env_steps = 0."""
        cfg, state, buffer = self.cfg, self.run.state, self.run.buffer
        total, batch_size = cfg.offline_updates, cfg.offline_batch_size
        step = make_gradient_step(self.run.agent, buffer, self.metrics, batch_size)
        if not total:
            state.step0_done = True
            self.evaluate_log_and_checkpoint("init", dict(self.run.init_metrics))
            return
        if state.offline_done == 0:
            log.info("offline phase: %d gradient steps on %d demonstration transitions (batch %d)", total,
                     len(buffer), batch_size)
        while state.offline_done < total:
            n = min(cfg.offline_eval_every, total - state.offline_done)
            t0 = time.perf_counter()
            self.gradient_steps(step, n, "offline updates", state.offline_done, total)
            means, first_bad, _ = self.metrics.read()
            elapsed = time.perf_counter() - t0
            _check_finite(first_bad, self.run.agent, "during the offline phase", total, self.ckpt_path,
                          offset=state.offline_done)
            first = dict(self.run.init_metrics) if state.offline_done == 0 else {}  # KL after initialization
            state.offline_done += n
            state.gradient_steps += n
            state.step0_done = state.offline_done >= total
            self.evaluate_log_and_checkpoint("offline", {**first, **means, "updates_per_s": n / elapsed})
            if self.stopped:
                return

    def online(self) -> None:
        """The online epochs: collect, update, evaluate, row, checkpoint."""
        cfg, run, state = self.cfg, self.run, self.run.state
        task, agent = cfg.task_spec, run.agent
        learns_online = cfg.algorithm.online_updates
        collector = Collector(run.envs["train"], task.act_dim, agent.device, cfg.timeout_terminal)
        gradient_step = make_gradient_step(agent, run.online_batches, self.metrics, cfg.batch_size)
        total_steps = cfg.n_epochs * cfg.steps_per_epoch
        self.bar.stage("env steps", state.env_steps, total_steps, f"epoch {state.epoch}/{cfg.n_epochs}")
        # The online gradient steps by the end of each epoch (none before warmup_steps): an epoch's updates are most
        # of its time, so their progress shows between the epochs' rows.
        per_epoch = [cfg.updates_per_epoch if learns_online and e * cfg.steps_per_epoch >= cfg.warmup_steps else 0
                     for e in range(1, cfg.n_epochs + 1)]
        updates_by = list(itertools.accumulate(per_epoch, initial=0))
        first = state.epoch + 1  # the first epoch of the row being gathered
        collect_s = update_s = 0.0
        n_updates = 0
        for epoch in range(state.epoch + 1, cfg.n_epochs + 1):
            t0 = time.perf_counter()
            n_uniform = max(0, min(cfg.steps_per_epoch, cfg.warmup_steps - state.env_steps)) \
                if cfg.warmup == "uniform" else 0
            hook = None if self.on_step is None else functools.partial(_shifted, self.on_step, state.env_steps)
            with timed("collection"):
                batch = collector.collect(run.acting, cfg.steps_per_epoch, n_uniform, run.np_rng, hook)
                if len(batch["obs"]) < cfg.steps_per_epoch:
                    log.info("stopped at env step %d: the step callback returned False; the run resumes from its "
                             "last checkpoint", state.env_steps + len(batch["obs"]))
                    self.stopped = True
                    return
                if learns_online:
                    run.buffer.add(**batch)
            state.env_steps += cfg.steps_per_epoch
            t1 = time.perf_counter()
            epoch_updates = cfg.updates_per_epoch if learns_online and state.env_steps >= cfg.warmup_steps else 0
            self.gradient_steps(gradient_step, epoch_updates, "gradient steps", updates_by[epoch - 1], updates_by[-1])
            n_updates += epoch_updates
            collect_s += t1 - t0
            update_s += time.perf_counter() - t1
            state.epoch = epoch
            if epoch % cfg.eval_every and epoch < cfg.n_epochs:
                # No row yet: the metrics stay on the device, summed over the row's epochs (one host read per row).
                self.bar.stage("env steps", state.env_steps, total_steps, f"epoch {epoch}/{cfg.n_epochs}")
                continue
            means, first_bad, _ = self.metrics.read()
            span = f"at epoch {epoch}" if first == epoch else f"in epochs {first}-{epoch}"
            _check_finite(first_bad, agent, span, n_updates, self.ckpt_path)
            state.gradient_steps += n_updates
            row = self.evaluate_log_and_checkpoint("online", {
                **(means if n_updates else {}), "train_return": collector.last_return,
                "updates_per_s": n_updates / update_s if n_updates else None,
                "env_steps_per_s": cfg.steps_per_epoch * (epoch - first + 1) / collect_s,
            })
            self.bar.stage("env steps", state.env_steps, total_steps, f"epoch {epoch}/{cfg.n_epochs} · eval "
                           f"{row['eval_return']:.1f} · train {collector.last_return:.1f}")
            if self.stopped:
                return
            first, collect_s, update_s, n_updates = epoch + 1, 0.0, 0.0, 0

    def gradient_steps(self, step: Callable[[], None], n: int, stage: str, done: int, total: int) -> None:
        """``n`` gradient steps, shown as ``done + i`` of ``total`` on the progress row ``stage``."""
        with timed("updates"):
            for i in range(1, n + 1):
                step()
                if i % 100 == 0:
                    self.bar.stage(stage, done + i, total)

    def evaluate_log_and_checkpoint(self, phase: str, values: dict[str, Any]) -> dict[str, Any]:
        """Evaluate the deterministic policy, write the row and TensorBoard scalars, then the checkpoint; ask the
        epoch callback whether to go on."""
        cfg, run, state = self.cfg, self.run, self.run.state
        with timed("evaluation"):
            evaluation = evaluate(run.acting, [run.envs["eval"], *run.eval_copies], cfg.task_spec,
                                  cfg.eval_episodes, cfg.eval_horizon, progress=self.bar.stage)
        state.wall_s = self.wall_before + time.perf_counter() - self.started
        row = {"phase": phase, "epoch": state.epoch, "env_steps": state.env_steps,
               "gradient_steps": state.gradient_steps, "wall_s": state.wall_s,
               "eval_return": evaluation.mean_return, "eval_success": evaluation.success_rate,
               "eval_return_min": evaluation.min_return, **values, **run.acting.read()}
        state.rows += 1
        # The checkpoint first, holding its row: a row in progress.csv always has its checkpoint, and a kill
        # between the two leaves a row that the resumed run writes from the checkpoint.
        with timed("checkpoints"):
            save_checkpoint({
                "epoch": state.epoch, "env_steps": state.env_steps, "wall_s": state.wall_s,
                "state": dataclasses.asdict(state), "config": json.dumps(cfg.to_dict()),
                "agent": run.agent.state_dict(), "replay": run.buffer.state_dict(),
                "rng": rng_state(run.np_rng, run.envs), "row": row, "format": CHECKPOINT_FORMAT,
                **({} if run.prior_sha256 is None else {"prior_sha256": run.prior_sha256}),
            }, self.ckpt_path)
        self.logger.log(row)
        self.rows.append(row)
        if self.on_row is not None and self.on_row(row) is False:
            log.info("stopped after this row (%s, env step %d): the epoch callback returned False", phase,
                     state.env_steps)
            self.stopped = True
        return row


def _shifted(on_step: Callable[[int], bool | None], base: int, t: int) -> bool | None:
    """The step callback told the run's step count: ``base`` before the collection, plus its ``t`` steps."""
    return on_step(base + t)


def _check_finite(first_bad: dict[str, int], agent: Agent, when: str, n_updates: int, ckpt_path: Path,
                  offset: int = 0) -> None:
    """Stop at the first term that became NaN/Inf, before anything of the epoch is saved (``offset``: the phase's
    steps before these, as the offline phase is read in chunks)."""
    bad = {k: step for k, step in first_bad.items() if step > 0}
    if not bad:
        return
    order = list(agent.metric_terms)
    term = min(bad, key=lambda k: (bad[k], order.index(k)))
    kept = f"last good checkpoint {ckpt_path} kept" if ckpt_path.exists() else "no checkpoint was written yet"
    raise DivergedError(f"{agent.metric_terms[term]} became non-finite {when} "
                         f"(gradient step {offset + bad[term]} of {n_updates}); run stopped, {kept}")


def _summary(out: Path, cfg: ResolvedConfig, rows: list[dict[str, Any]]) -> dict[str, Any]:
    run = RunDir(out)
    history = run.progress()[1]
    online = [r for r in history if r["phase"] == "online"]
    step0 = [r for r in history if r["phase"] != "online"]
    returns = [float(r["eval_return"]) for r in history]
    summary: dict[str, Any] = {
        "out_dir": str(out), "task": cfg.task, "algo": cfg.algo, "seed": cfg.seed,
        "epochs": int(online[-1]["epoch"]) if online else 0,
        "env_steps": int(history[-1]["env_steps"]) if history else 0,
        "gradient_steps": int(history[-1]["gradient_steps"]) if history else 0,
        "wall_s": float(history[-1]["wall_s"]) if history else 0.0,
        "step0_eval_return": float(step0[-1]["eval_return"]) if step0 else math.nan,
        "final_eval_return": returns[-1] if returns else math.nan,
        "best_eval_return": max(returns) if returns else math.nan,
        "actor": str(run.actor), "checkpoint": str(run.checkpoint),
        "rows_this_call": len(rows),
    }
    if cfg.task_spec.reward == "binary" and history:
        summary["step0_eval_success"] = float(step0[-1]["eval_success"]) if step0 else math.nan
        summary["final_eval_success"] = float(history[-1]["eval_success"])
    return summary
