"""The one loop shared by every algorithm: initialize, pretrain offline, collect, update, evaluate, log, checkpoint.

A run goes through up to three phases, each visible in ``progress.csv`` (column
``phase``) and each resumable from its checkpoint:

* ``init`` — fit or load π0, then KL(π‖π0) policy initialization on the demonstration
  states (DESIGN.md §3); one evaluated row at env_steps = 0.
* ``offline`` — ``offline_updates`` gradient steps on the replay buffer seeded with the
  demonstrations (AWAC's pretraining, BC's whole training), an evaluated row and a
  checkpoint every ``offline_eval_every`` steps; the last of them is the step-0 row.
* ``online`` — epochs of ``steps_per_epoch`` environment steps, then
  ``updates_per_epoch`` gradient steps, then a deterministic evaluation in a separate
  environment, a row, TensorBoard scalars and an atomic checkpoint.

This is the published rlkit order — pretrain; evaluate; then per epoch collect, train,
evaluate — with each evaluation logged at the environment steps it saw. The first
``warmup_steps`` are collected before any online update, by the (initialized) policy
as published, or by uniform-random actions (SAC, which has nothing to start from). The
algorithm is an :class:`~nppac.agents.base.Agent` built from the table in
:mod:`nppac.training.algorithms`; every metric its update reports by name reaches
``progress.csv`` and TensorBoard.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch

from nppac.agents.base import Agent, Metrics
from nppac.agents.kl_sac import initialize_policy
from nppac.agents.networks import Actor, save_actor
from nppac.data.demos import Demonstrations
from nppac.data.relabel import as_binary_reward
from nppac.data.replay import ReplayBuffer
from nppac.devices import resolve_device
from nppac.errors import DivergedError, NonFiniteError, NppacError
from nppac.outputs import check_output_dir, one_writer
from nppac.priors import use_variance
from nppac.priors.base import Prior
from nppac.tasks import Task
from nppac.training.algorithms import ABLATION_PRIOR
from nppac.training.checkpoint import CHECKPOINT_NAME, load_checkpoint, restore_rng_state, rng_state, save_checkpoint
from nppac.training.config import TrainConfig, with_legacy_values
from nppac.training.logger import RunLogger, progress_columns, truncate_progress
from nppac.training.prior_cache import PriorCache
from nppac.training.references import REFERENCES_NAME, references, write_references

log = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
PRIOR_DIR = "prior"
ACTOR_NAME = "actor.safetensors"


class EpochMetrics:
    """Running sums of the gradient-step metrics, kept on the training device and read once per epoch.

    Besides the sums it remembers, per metric, the first gradient step at which the
    value was NaN/Inf, so the epoch-end check can name the term that broke first.
    """

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


def make_gradient_step(agent: Agent, buffer: ReplayBuffer, metrics: EpochMetrics,
                       batch_size: int, update: Callable[[Any], Metrics] | None = None) -> Callable[[], None]:
    """The whole gradient step (replay sampling, update, metric accumulation) as one tensor-only function.

    ``update`` replaces ``agent.update`` (the critic warm start's ``agent.critic_update``).
    """
    step = agent.update if update is None else update

    def gradient_step() -> None:
        metrics.add(step(buffer.sample(batch_size)))

    return gradient_step


class Collector:
    """Steps the training environment across epochs, keeping the current episode between calls."""

    def __init__(self, env: gym.Env, act_dim: int, device: torch.device, timeout_terminal: bool = False) -> None:
        self.env, self.act_dim, self.device = env, act_dim, device
        self.timeout_terminal = timeout_terminal
        self.obs: np.ndarray | None = None
        self.episode_return = 0.0
        self.last_return = math.nan

    def collect(self, actor: Actor, n_steps: int, n_uniform: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """n_steps transitions: the first ``n_uniform`` with uniform-random actions, the rest sampled from π."""
        obs_buf, act_buf, rew_buf, next_buf, done_buf = [], [], [], [], []
        for t in range(n_steps):
            if self.obs is None:
                self.obs, _ = self.env.reset()
                self.episode_return = 0.0
            if t < n_uniform:
                action = rng.uniform(-1.0, 1.0, self.act_dim).astype(np.float32)
            else:
                with torch.no_grad():
                    obs_t = torch.as_tensor(self.obs, dtype=torch.float32, device=self.device).unsqueeze(0)
                    action = actor.sample(obs_t)[0][0].cpu().numpy()
                # The Gaussian head's samples can leave [−1, 1]: store what the environment executes.
                action = np.clip(action, -1.0, 1.0)
            next_obs, reward, terminated, truncated, _ = self.env.step(action)
            obs_buf.append(self.obs)
            act_buf.append(action)
            rew_buf.append(reward)
            next_buf.append(next_obs)
            # Bootstrap through time-limit truncation (only a true terminal state ends the return), unless the
            # run reproduces the published code, which stored the time limit as a terminal.
            done_buf.append(terminated or (truncated and self.timeout_terminal))
            self.episode_return += float(reward)
            self.obs = next_obs
            if terminated or truncated:
                self.last_return = self.episode_return
                self.obs = None
        return {"obs": np.asarray(obs_buf, np.float32), "action": np.asarray(act_buf, np.float32),
                "reward": np.asarray(rew_buf, np.float32), "next_obs": np.asarray(next_buf, np.float32),
                "done": np.asarray(done_buf, np.float32)}


def evaluate(actor: Actor, env: gym.Env, task: Task, episodes: int, horizon: int) -> tuple[float, float | None]:
    """Mean return of the deterministic policy (the mean action) and, for binary tasks, the success rate."""
    returns, successes = [], []
    for _ in range(episodes):
        obs, _ = env.reset()
        total, flags = 0.0, []
        for _ in range(horizon):
            obs, reward, terminated, truncated, info = env.step(actor.act(obs))
            total += float(reward)
            flags.append(bool(info.get("success", False)))
            if terminated or truncated:
                break
        returns.append(total)
        if task.reward == "binary":
            successes.append(task.episode_success(flags))
    return float(np.mean(returns)), (float(np.mean(successes)) if task.reward == "binary" else None)


def make_env(task: Task, horizon: int, seed: int, binary_reward: str | None = None) -> gym.Env:
    """The task's environment, with the episode cap lowered to ``horizon`` when that is shorter.

    ``binary_reward`` names a hand task's reward values (default AWAC's −1/0, the evaluation's).
    """
    env = task.make_env(seed=seed, binary_reward=binary_reward or "minus_one_zero")  # type: ignore[arg-type]
    if horizon < task.horizon:
        env = gym.wrappers.TimeLimit(env, max_episode_steps=horizon)
    return env


@one_writer("out_dir")
def train(config: TrainConfig | None, out_dir: str | Path, resume: bool = False, prior: Prior | None = None,
          demos: Demonstrations | None = None, *, steps: int | None = None, progress: bool = True,
          on_epoch_end: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train an agent and return a summary (step-0, last and best evaluation, steps, paths).

    ``out_dir`` receives ``config.json``, ``progress.csv`` (a row at env_steps = 0, rows
    of the offline phase, one per online epoch), TensorBoard events, an atomic
    ``checkpoint.pt`` after every row, the prior (``prior/``) and the final actor
    (``actor.safetensors``). With ``resume`` the stored configuration is used and the
    run continues from its last checkpoint, whichever phase it was in; ``steps`` then
    sets a new total (to extend a run, or end it sooner; at least the steps already
    done). ``prior``/``demos`` supply in-memory objects instead of paths;
    ``on_epoch_end`` is called with each row after its checkpoint is written; returning False
    stops the run after that row (resumable like a killed run).
    """
    started = time.perf_counter()
    out = Path(out_dir)
    fresh_dir = not resume and not out.exists()
    cfg = _prepare_run_dir(config, out, resume)
    if resume and steps is not None and steps != cfg.steps:
        cfg = dataclasses.replace(cfg, steps=steps).validate()
    try:
        run = _setup(cfg, out, resume, prior, demos, progress)
    except Exception:
        if fresh_dir:  # a run that never started leaves no directory that would demand --resume
            shutil.rmtree(out, ignore_errors=True)
        raise
    if resume and steps is not None:
        cfg.save(out / CONFIG_NAME)
    task, agent = cfg.task_spec, run.agent
    columns = progress_columns(task.reward == "binary", tuple(agent.metric_terms), with_init=run.prior is not None)
    # TensorBoard's step is env_steps: events of an offline phase share step 0 and are not purged on resume.
    logger = RunLogger(out, columns, purge_step=run.state.env_steps + 1 if resume and run.state.step0_done else None)
    loop = _Loop(cfg, run, logger, out, started, on_epoch_end)
    try:
        with _ProgressBar(progress) as bar:
            loop.bar = bar
            if not run.state.step0_done:
                loop.initial_phases()
            if not loop.stopped:
                loop.online()
    finally:
        logger.close()
        for env in run.envs.values():
            env.close()

    save_actor(agent.actor, out / ACTOR_NAME)
    return _summary(out, cfg, loop.rows)


@dataclass
class _State:
    """Where a run stands; saved in every checkpoint."""

    epoch: int = 0
    """Online epochs done."""
    env_steps: int = 0
    gradient_steps: int = 0
    """Gradient steps taken in all phases."""
    offline_done: int = 0
    """Gradient steps of the offline phase taken."""
    step0_done: bool = False
    """Whether the row at env_steps = 0 (after initialization and the offline phase) is written."""
    warmstart_done: bool = False
    """Whether the critic warm start on the warm-up data has run (``critic_warmstart_data = "warmup"``)."""
    wall_s: float = 0.0


@dataclass
class _Run:
    """Everything the phases work on, fresh or restored from a checkpoint."""

    agent: Agent
    buffer: ReplayBuffer
    envs: dict[str, gym.Env]
    np_rng: np.random.Generator
    prior: PriorCache | None
    warmstart_buffer: ReplayBuffer | None = None
    """The demonstrations with the run's reward and cached prior, for the critic warm start on them."""
    state: _State = dataclasses.field(default_factory=_State)
    init_metrics: dict[str, float] = dataclasses.field(default_factory=dict)


class _Loop:
    """The phases of one run, writing a row and a checkpoint after each evaluation."""

    bar: _ProgressBar

    def __init__(self, cfg: TrainConfig, run: _Run, logger: RunLogger, out: Path, started: float,
                 on_row: Callable[[dict[str, Any]], None] | None) -> None:
        self.cfg, self.run, self.logger, self.on_row = cfg, run, logger, on_row
        self.wall_before, self.started = run.state.wall_s, started
        self.ckpt_path = out / CHECKPOINT_NAME
        self.metrics = EpochMetrics(tuple(run.agent.metric_terms), run.agent.device)
        self.rows: list[dict[str, Any]] = []
        self.stopped = False
        """Whether the epoch callback asked to stop (the run stays resumable where it stopped)."""

    def initial_phases(self) -> None:
        """Offline pretraining or the critic warm start on the demonstrations (if any), then the evaluated row at
        env_steps = 0. Both are logged as the offline phase: gradient steps on fixed data before interaction."""
        cfg, state, run = self.cfg, self.run.state, self.run
        if run.warmstart_buffer is not None:
            buffer, total, batch_size = run.warmstart_buffer, cfg.critic_warmstart_steps, cfg.batch_size
            step = make_gradient_step(run.agent, buffer, self.metrics, batch_size, run.agent.critic_update)  # type: ignore[attr-defined]
            what = "critic warm start (policy evaluation, actor frozen)"
        else:
            buffer, total, batch_size = run.buffer, cfg.offline_updates or 0, cfg.offline_batch_size or 0
            step = make_gradient_step(run.agent, buffer, self.metrics, batch_size)
            what = "offline phase"
        if not total:
            state.step0_done = True
            self.write_row("init", dict(self.run.init_metrics))
            return
        if state.offline_done == 0:
            log.info("%s: %d gradient steps on %d demonstration transitions (batch %d)", what, total,
                     len(buffer), batch_size)
        while state.offline_done < total:
            n = min(cfg.offline_eval_every, total - state.offline_done)
            t0 = time.perf_counter()
            for i in range(1, n + 1):
                step()
                if i % 100 == 0:
                    self.bar.stage("offline updates", state.offline_done + i, total)
            means, first_bad, _ = self.metrics.read()
            elapsed = time.perf_counter() - t0
            _check_finite(first_bad, self.run.agent, "during the offline phase", total, self.ckpt_path,
                          offset=state.offline_done)
            first = dict(self.run.init_metrics) if state.offline_done == 0 else {}  # KL after initialization
            state.offline_done += n
            state.gradient_steps += n
            state.step0_done = state.offline_done >= total
            self.write_row("offline", {**first, **means, "updates_per_s": n / elapsed})
            if self.stopped:
                return

    def _warm_start_on_replay(self, epoch: int) -> None:
        """The critic warm start on the warm-up steps in the buffer, before the first online update."""
        cfg, run, state = self.cfg, self.run, self.run.state
        n = cfg.critic_warmstart_steps
        if n:
            step = make_gradient_step(run.agent, run.buffer, self.metrics, cfg.batch_size,  # type: ignore[arg-type]
                                      run.agent.critic_update)  # type: ignore[attr-defined]
            log.info("critic warm start: %d policy-evaluation steps on %d warm-up transitions", n, len(run.buffer))
            for _ in range(n):
                step()
            means, first_bad, _ = self.metrics.read()
            _check_finite(first_bad, run.agent, f"during the critic warm start of epoch {epoch}", n, self.ckpt_path)
            log.info("critic warm start done: mean Q %.3g, critic loss %.3g", means["q_mean"], means["critic_loss"])
            state.gradient_steps += n
        state.warmstart_done = True

    def online(self) -> None:
        """The online epochs: collect, update, evaluate, row, checkpoint."""
        cfg, run, state = self.cfg, self.run, self.run.state
        task, agent = cfg.task_spec, run.agent
        learns_online = cfg.algorithm.online_updates
        collector = Collector(run.envs["train"], task.act_dim, agent.device, bool(cfg.timeout_terminal))
        gradient_step = make_gradient_step(agent, run.buffer, self.metrics, cfg.batch_size)  # type: ignore[arg-type]
        total_steps = cfg.n_epochs * cfg.steps_per_epoch
        self.bar.stage("env steps", state.env_steps, total_steps, f"epoch {state.epoch}/{cfg.n_epochs}")
        for epoch in range(state.epoch + 1, cfg.n_epochs + 1):
            t0 = time.perf_counter()
            n_uniform = max(0, min(cfg.steps_per_epoch, cfg.warmup_steps - state.env_steps)) \
                if cfg.warmup == "uniform" else 0
            batch = collector.collect(agent.actor, cfg.steps_per_epoch, n_uniform, run.np_rng)
            if learns_online:
                run.buffer.add(**batch)
            state.env_steps += cfg.steps_per_epoch
            t1 = time.perf_counter()
            n_updates = cfg.updates_per_epoch if learns_online and state.env_steps >= cfg.warmup_steps else 0
            if n_updates and cfg.critic_warmstart_data == "warmup" and not state.warmstart_done:
                self._warm_start_on_replay(epoch)
            for _ in range(n_updates):
                gradient_step()
            means, first_bad, _ = self.metrics.read()
            t2 = time.perf_counter()
            _check_finite(first_bad, agent, f"at epoch {epoch}", n_updates, self.ckpt_path)
            state.epoch = epoch
            state.gradient_steps += n_updates
            row = self.write_row("online", {
                **(means if n_updates else {}), "train_return": collector.last_return,
                "updates_per_s": n_updates / (t2 - t1) if n_updates else None,
                "env_steps_per_s": cfg.steps_per_epoch / (t1 - t0),
            })
            self.bar.stage("env steps", state.env_steps, total_steps, f"epoch {epoch}/{cfg.n_epochs} · eval "
                           f"{row['eval_return']:.1f} · train {collector.last_return:.1f}")
            if self.stopped:
                return

    def write_row(self, phase: str, values: dict[str, Any]) -> dict[str, Any]:
        """Evaluate the deterministic policy, write the row and TensorBoard scalars, then the checkpoint."""
        cfg, run, state = self.cfg, self.run, self.run.state
        eval_return, eval_success = evaluate(run.agent.actor, run.envs["eval"], cfg.task_spec,
                                             cfg.eval_episodes, cfg.eval_horizon)  # type: ignore[arg-type]
        state.wall_s = self.wall_before + time.perf_counter() - self.started
        row = {"phase": phase, "epoch": state.epoch, "env_steps": state.env_steps,
               "gradient_steps": state.gradient_steps, "wall_s": state.wall_s,
               "eval_return": eval_return, "eval_success": eval_success, **values}
        self.logger.log(row)
        save_checkpoint({
            "epoch": state.epoch, "env_steps": state.env_steps, "wall_s": state.wall_s,
            "state": dataclasses.asdict(state), "config": json.dumps(cfg.to_dict()),
            "agent": run.agent.state_dict(), "replay": run.buffer.state_dict(),
            "rng": rng_state(run.np_rng, run.envs),
        }, self.ckpt_path)
        self.rows.append(row)
        if self.on_row is not None and self.on_row(row) is False:
            log.info("stopped after this row (%s, env step %d): the epoch callback returned False", phase,
                     state.env_steps)
            self.stopped = True
        return row


def _setup(cfg: TrainConfig, out: Path, resume: bool, prior: Prior | None, demos: Demonstrations | None,
           progress: bool) -> _Run:
    """Prior, agent, replay buffer and environments; restored from the checkpoint when resuming.

    A fresh run is initialized here (KL(π‖π0) on the demonstration states) and its
    buffer seeded with the demonstrations where the algorithm asks for them.
    """
    task = cfg.task_spec
    device = resolve_device(cfg.device)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    ckpt_path = out / CHECKPOINT_NAME
    ckpt = load_checkpoint(ckpt_path, device) if resume and ckpt_path.exists() else None
    if ckpt is not None and "state" not in ckpt:
        raise NppacError(f"checkpoint {ckpt_path} was written by an nppac version without run phases; "
                         "finish it with that version or start a new run")
    if ckpt is not None and int(ckpt["env_steps"]) > cfg.n_epochs * cfg.steps_per_epoch:
        raise NppacError(f"the run in {out} has already taken {int(ckpt['env_steps']):,} env steps; "
                         f"--steps must be at least that, got {cfg.steps:,}")

    demo_source = _DemoSource(cfg, demos)
    resolved_prior = _resolve_prior(cfg, out, prior, demo_source, progress)
    if resolved_prior is not None and not use_variance(resolved_prior, cfg.prior_variance, cfg.love_rank,  # type: ignore[arg-type]
                                                       cfg.love_seed) and cfg.prior_variance == "love":
        log.info("the %s prior's σ0 has no LOVE estimate; it stays exact", resolved_prior.kind)
    prior_cache = None if resolved_prior is None else PriorCache(resolved_prior, cfg.prior_sigma, device)  # type: ignore[arg-type]
    agent = cfg.algorithm.build(cfg, cfg.algo_config(), demo_source.get, device)
    n_seeded = demo_source.get().n_transitions if cfg.seed_demos else 0
    n_online = cfg.n_epochs * cfg.steps_per_epoch if cfg.algorithm.online_updates else 0
    capacity = min(cfg.replay_capacity, n_online + n_seeded)
    buffer = ReplayBuffer(task.obs_dim, task.act_dim, capacity, device, prior=prior_cache)
    envs = {"train": make_env(task, cfg.horizon, cfg.seed, cfg.binary_reward),  # type: ignore[arg-type]
            "eval": make_env(task, cfg.eval_horizon, cfg.seed + 10_000)}  # type: ignore[arg-type]
    run = _Run(agent, buffer, envs, np.random.default_rng(cfg.seed), prior_cache)
    if cfg.critic_warmstart_steps and cfg.critic_warmstart_data == "demos":
        run.warmstart_buffer = _demonstration_buffer(cfg, demo_source.get(), prior_cache, device)

    if ckpt is not None:
        _check_same_run(cfg, ckpt, ckpt_path)
        try:
            agent.load_state_dict(ckpt["agent"])
            buffer.load_state_dict(ckpt["replay"])
        except (RuntimeError, KeyError, ValueError) as err:
            raise NppacError(f"checkpoint {ckpt_path} does not fit the run's {CONFIG_NAME} ({str(err).splitlines()[0]}); "
                             f"was {out / CONFIG_NAME} edited? restore it or start a new run") from None
        restore_rng_state(ckpt["rng"], run.np_rng, envs)
        run.state = _State(**ckpt["state"])
        where = f"epoch {run.state.epoch}" if run.state.step0_done else f"offline step {run.state.offline_done}"
        log.info("resuming %s after %s (%d env steps)", out, where, run.state.env_steps)
    else:
        if not (out / REFERENCES_NAME).exists():
            demos_for_reference = demo_source.get() if demo_source.available else None
            write_references(out, references(task, demos_for_reference, resolved_prior, cfg.eval_episodes,  # type: ignore[arg-type]
                                             cfg.eval_horizon, cfg.seed + 20_000))  # type: ignore[arg-type]
        if prior_cache is not None and cfg.init_epochs:
            run.init_metrics = _initialize_policy(agent, prior_cache, demo_source.get(), cfg, progress)
        if cfg.auto_alpha_target == "init-kl":
            if "init_kl" not in run.init_metrics:
                raise NppacError("auto_alpha_target=init-kl needs the KL measured by policy initialization; "
                                 "set init_epochs > 0 or choose auto_alpha_target=act-dim")
            agent.penalty_target.fill_(run.init_metrics["init_kl"])  # type: ignore[attr-defined]
            log.info("automatic α targets the KL after initialization, %.3g", run.init_metrics["init_kl"])
        if cfg.seed_demos:
            flat = demo_source.get().flat()
            buffer.add(flat["observations"], flat["actions"], training_rewards(flat["rewards"], cfg),
                       flat["next_observations"], flat["terminals"])
    truncate_progress(out / "progress.csv", run.state.epoch, run.state.gradient_steps if ckpt is not None else -1)
    return run


RESUMABLE_CHANGES = ("steps", "num_threads", "device")
"""Settings a resumed run may differ in from the checkpoint it continues."""


def _demonstration_buffer(cfg: TrainConfig, demos: Demonstrations, prior: PriorCache | None,
                          device: torch.device) -> ReplayBuffer:
    """The demonstrations as a replay buffer of their own, with the run's reward and cached prior."""
    task, flat = cfg.task_spec, demos.flat()
    buffer = ReplayBuffer(task.obs_dim, task.act_dim, demos.n_transitions, device, prior=prior)
    buffer.add(flat["observations"], flat["actions"], training_rewards(flat["rewards"], cfg),
               flat["next_observations"], flat["terminals"])
    return buffer


def training_rewards(rewards: np.ndarray, cfg: TrainConfig) -> np.ndarray:
    """Demonstration rewards as the run trains on them: a hand task's binary reward in the protocol's values."""
    return rewards if cfg.binary_reward is None else as_binary_reward(rewards, cfg.binary_reward)


def _check_same_run(cfg: TrainConfig, ckpt: dict[str, Any], ckpt_path: Path) -> None:
    """Refuse, in one line, a ``config.json`` edited since the checkpoint was written."""
    if "config" not in ckpt:
        return
    saved = with_legacy_values(json.loads(ckpt["config"]))
    now = json.loads(json.dumps(cfg.to_dict()))
    changed = [k for k in now if k not in RESUMABLE_CHANGES and saved.get(k) != now[k]]
    if changed:
        shown = ", ".join(f"{k}: {saved.get(k)!r} → {now[k]!r}" for k in changed[:3])
        raise NppacError(f"the run's {CONFIG_NAME} differs from its checkpoint {ckpt_path} in {shown}; "
                         "restore the file or start a new run")


def _prepare_run_dir(config: TrainConfig | None, out: Path, resume: bool) -> TrainConfig:
    """The run's configuration: the stored one when resuming, else ``config`` resolved and written."""
    stored = out / CONFIG_NAME
    if resume:
        if not stored.exists():
            raise NppacError(f"nothing to resume in {out}: no {CONFIG_NAME}; start a new run without --resume")
        cfg = TrainConfig.load(stored).resolved()  # fills fields added since the run started
        if config is not None:
            given = config.resolved().to_dict()
            differ = [k for k, v in cfg.to_dict().items() if given[k] != v]
            if differ:
                log.warning("resuming with the stored configuration; ignoring new values of: %s", ", ".join(differ))
        return cfg
    if config is None:
        raise NppacError("a training configuration is required unless resuming")
    if out.is_dir() and any(out.iterdir()):
        raise NppacError(f"output directory {out} already exists; pass --resume to continue it or choose another --out")
    check_output_dir(out)
    cfg = config.resolved()
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(stored)
    return cfg


class _DemoSource:
    """Demonstrations loaded on first use: the given object, ``config.demos`` or the task's bundled set."""

    def __init__(self, cfg: TrainConfig, demos: Demonstrations | None) -> None:
        self.cfg, self.demos = cfg, demos

    @property
    def available(self) -> bool:
        """Whether there are demonstrations to load (given, configured, or bundled with the task)."""
        return self.demos is not None or self.cfg.demos is not None or self.cfg.task_spec.bundled_demos is not None

    def get(self) -> Demonstrations:
        if self.demos is None:
            from nppac.data import load_demos

            task = self.cfg.task_spec
            path = self.cfg.demos or task.bundled_demos
            if path is None:
                hint = " (or --prior DIR with --set init_epochs=0)" if self.cfg.prior_kind else ""
                raise NppacError(f"algo {self.cfg.algo} on task {task.name!r} needs demonstrations but the task has "
                                 f"no bundled set; pass --demos PATH{hint}")
            # Clipped to the action box: the environment executes clip(a), so that is the action to learn from.
            self.demos = load_demos(path, task=task.name, allow_pickle=self.cfg.allow_pickle, clip_actions=True)
        return self.demos


def _resolve_prior(cfg: TrainConfig, out: Path, prior: Prior | None, demos: _DemoSource,
                   progress: bool) -> Prior | None:
    """π0 for this run: given, stored in the run directory, loaded from ``config.prior``, or fitted here.

    A copy is kept in ``out/prior`` so that a resumed run needs nothing outside its directory.
    """
    if cfg.prior_kind is None:
        if prior is not None:
            raise NppacError(f"algo {cfg.algo!r} uses no prior; choose an algorithm with one (nppac, ppac-nn, "
                             "nppac-nn-std) to train with it")
        return None
    stored = out / PRIOR_DIR
    if prior is None:
        if (stored / "settings.json").exists():
            prior = _load_prior(stored)
        elif cfg.prior is not None:
            prior = _load_prior(cfg.prior)
            shutil.copytree(cfg.prior, stored, dirs_exist_ok=True)
        else:
            prior = _fit_prior(cfg, demos.get(), progress)
            prior.save(stored)
    elif not stored.exists():
        prior.save(stored)
    task = cfg.task_spec
    if (prior.obs_dim, prior.act_dim) != (task.obs_dim, task.act_dim):
        raise NppacError(f"prior has obs_dim={prior.obs_dim}, act_dim={prior.act_dim} but task {task.name} has "
                         f"obs_dim={task.obs_dim}, act_dim={task.act_dim}")
    if getattr(prior, "squashed", False):
        # The replay buffer caches (μ0, σ0) and the update evaluates a plain Gaussian log π0 from them.
        raise NppacError("a tanh-squashed prior cannot be cached as a Gaussian; fit the NN prior with "
                         "--variant gaussian (the default) or fixed_std")
    if prior.kind != cfg.prior_kind:
        log.warning("algo %s expects a %s prior but was given a %s prior", cfg.algo, cfg.prior_kind, prior.kind)
    return prior


def _load_prior(directory: str | Path) -> Prior:
    from nppac.priors import load_prior

    return load_prior(directory)


def _fit_prior(cfg: TrainConfig, demos: Demonstrations, progress: bool) -> Prior:
    """The algorithm's prior fitted on the demonstrations (GP with the task kernel, NN, or both for the ablation)."""
    from nppac.priors import combine_priors, fit_prior

    def fit(kind: str) -> Prior:
        settings: dict[str, Any] = {"seed": cfg.seed, "device": cfg.device}
        if kind == "gp":
            settings["kernel"] = cfg.prior_kernel
            settings["from_gpytorch"] = cfg.prior_gpytorch
        if cfg.prior_iters is not None:
            settings["iters"] = cfg.prior_iters
        log.info("fitting a %s prior on %d demonstration transitions", kind, demos.n_transitions)
        with _ProgressBar(progress) as bar:
            prior, metrics = fit_prior(demos, kind, progress=bar.stage, **settings)  # type: ignore[arg-type]
        log.info("%s prior fitted: %s", kind, {k: v for k, v in metrics.items() if isinstance(v, (int, float))})
        return prior

    if cfg.prior_kind == ABLATION_PRIOR:
        return combine_priors(fit("gp"), fit("nn"))
    return fit(cfg.prior_kind)  # type: ignore[arg-type]


def _initialize_policy(agent: Agent, prior: PriorCache, demos: Demonstrations, cfg: TrainConfig,
                       progress: bool) -> dict[str, float]:
    """KL(π‖π0) initialization on the demonstration states; returns the KL of its first and last epoch."""
    states = torch.as_tensor(demos.states, device=agent.device)
    log.info("initializing the policy: KL(π‖π0) on %d demonstration states for %d epochs", len(states), cfg.init_epochs)
    prior_mean, prior_std = prior(states)
    with _ProgressBar(progress) as bar:
        history = initialize_policy(agent.actor, states, prior_mean, prior_std, cfg.init_epochs,  # type: ignore[arg-type]
                                    cfg.init_batch_size, cfg.actor_lr, cfg.seed, progress=bar.stage)
    if not math.isfinite(history[-1]):
        raise NonFiniteError("KL(π‖π0) became non-finite during policy initialization; check the prior's σ0")
    log.info("policy initialized: KL(π‖π0) %.3g → %.3g over %d epochs", history[0], history[-1], len(history))
    return {"init_kl_start": history[0], "init_kl": history[-1]}


def _check_finite(first_bad: dict[str, int], agent: Agent, when: str, n_updates: int, ckpt_path: Path,
                  offset: int = 0) -> None:
    """Stop at the first term that became NaN/Inf, before anything of the epoch is saved.

    ``offset`` is the number of the phase's steps taken before these (the offline phase is read in chunks).
    """
    bad = {k: step for k, step in first_bad.items() if step > 0}
    if not bad:
        return
    order = list(agent.metric_terms)
    term = min(bad, key=lambda k: (bad[k], order.index(k)))
    kept = f"last good checkpoint {ckpt_path} kept" if ckpt_path.exists() else "no checkpoint was written yet"
    raise DivergedError(f"{agent.metric_terms[term]} became non-finite {when} "
                         f"(gradient step {offset + bad[term]} of {n_updates}); run stopped, {kept}")


def _summary(out: Path, cfg: TrainConfig, rows: list[dict[str, Any]]) -> dict[str, Any]:
    with (out / "progress.csv").open(newline="") as f:
        history = list(csv.DictReader(f))
    online = [r for r in history if r["phase"] == "online"]
    step0 = [r for r in history if r["phase"] != "online"]
    returns = [float(r["eval_return"]) for r in history]
    summary: dict[str, Any] = {
        "out_dir": str(out), "task": cfg.task, "algo": cfg.algo, "seed": cfg.seed,
        "epochs": len(online), "env_steps": int(history[-1]["env_steps"]) if history else 0,
        "gradient_steps": int(history[-1]["gradient_steps"]) if history else 0,
        "wall_s": float(history[-1]["wall_s"]) if history else 0.0,
        "step0_eval_return": float(step0[-1]["eval_return"]) if step0 else math.nan,
        "final_eval_return": returns[-1] if returns else math.nan,
        "best_eval_return": max(returns) if returns else math.nan,
        "actor": str(out / ACTOR_NAME), "checkpoint": str(out / CHECKPOINT_NAME),
        "rows_this_call": len(rows),
    }
    if cfg.task_spec.reward == "binary" and history:
        summary["step0_eval_success"] = float(step0[-1]["eval_success"]) if step0 else math.nan
        summary["final_eval_success"] = float(history[-1]["eval_success"])
    return summary


class _ProgressBar:
    """Rich progress rows on stderr, one per stage (the prior fit's, then env steps with returns and ETA)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.rows: dict[str, Any] = {}

    def __enter__(self) -> _ProgressBar:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(),
                                     TextColumn("{task.fields[note]}"), TimeRemainingColumn(),
                                     console=Console(stderr=True))
            self.progress.start()
        return self

    def stage(self, name: str, completed: int, total: int, note: str = "") -> None:
        """Show ``completed``/``total`` on the row ``name`` (a ``progress(stage, completed, total)`` callback)."""
        if not self.enabled:
            return
        if name not in self.rows:
            self.rows[name] = self.progress.add_task(name, total=total, note=note)
        self.progress.update(self.rows[name], completed=completed, total=total, note=note)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.progress.stop()
