"""Everything a run works on, built before its first phase: demonstrations, π0, the agent, buffers, environments.

:func:`restore_or_start_run` builds them and then either restores the run from its checkpoint (resuming) or starts it
fresh: writes ``references.json``, initializes the policy toward π0 (KL(π‖π0) on the demonstration states, DESIGN.md
§3) and seeds the replay buffer with the demonstrations where the algorithm asks for them.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from nppac.agents.base import Acting, Agent
from nppac.agents.kl_sac import KLSACConfig, PriorMean, SigmaConvention, initialize_policy, policy_kl
from nppac.agents.networks import load_actor
from nppac.data.demos import Demonstrations
from nppac.data.relabel import as_binary_reward
from nppac.data.replay import BatchSource, MixedBatches, ReplayBuffer
from nppac.devices import resolve_device
from nppac.distributions import gaussian_kl
from nppac.errors import NonFiniteError, NppacError
from nppac.outputs import content_hash
from nppac.priors import combine_priors, fit_prior, load_prior, use_variance
from nppac.priors.base import Prior
from nppac.priors.metrics import mean_action
from nppac.settings import typed_fields
from nppac.tasks import get_task
from nppac.training.algorithms import ABLATION_PRIOR, AgentSpec, DemoLoader
from nppac.training.checkpoint import CHECKPOINT_FORMAT, restore_rng_state
from nppac.training.config import ResolvedConfig, TrainConfig
from nppac.training.envs import EVAL_SEED_OFFSET, eval_envs, make_env
from nppac.training.logger import truncate_progress
from nppac.training.prior_cache import PriorCache
from nppac.training.progress import ProgressBar
from nppac.training.references import references
from nppac.training.rundir import CONFIG_NAME, REFERENCES_NAME, RunDir, is_own_prior, load_resume_checkpoint
from nppac.training.timing import timed

log = logging.getLogger(__name__)


@dataclass
class RunState:
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
    wall_s: float = 0.0
    rows: int = 0
    """Rows of ``progress.csv`` written, the checkpoint's own included (it is saved just before its row)."""

    def __post_init__(self) -> None:
        typed_fields(self)  # as a checkpoint holds it


@dataclass
class Run:
    """Everything the phases work on, fresh or restored from a checkpoint."""

    agent: Agent
    buffer: ReplayBuffer
    envs: dict[str, gym.Env]
    """The training and the evaluation environment, whose generators every checkpoint saves."""
    np_rng: np.random.Generator
    prior_cache: PriorCache | None
    acting: Acting
    """How the run collects and is evaluated (the agent's ``acting()``)."""
    eval_copies: list[gym.Env] = dataclasses.field(default_factory=list)
    """Copies of the evaluation environment that run its episodes side by side (their streams come from it)."""
    mixed_batches: MixedBatches | None = None
    """Demonstrations and replay in every online batch (``demo_batch_fraction``); None: the replay buffer alone."""
    state: RunState = dataclasses.field(default_factory=RunState)
    init_metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    prior_sha256: str | None = None
    """Content hash of the run's ``prior/``, recorded in every checkpoint (a resume checks it)."""
    unwritten_row: dict[str, Any] | None = None
    """The checkpoint's row when a kill came between saving the checkpoint and writing its row."""

    @property
    def online_batches(self) -> BatchSource:
        """Where the online gradient steps draw their batches."""
        return self.buffer if self.mixed_batches is None else self.mixed_batches


def restore_or_start_run(cfg: ResolvedConfig, out: Path, resume: bool, prior: Prior | None,
                         demos: Demonstrations | None, progress: bool) -> Run:
    """Prior, agent, replay buffer and environments; then the run restored from its checkpoint when resuming (and one
    was written), else started fresh: policy initialization, the buffer seeded with the demonstrations."""
    device = resolve_device(cfg.device)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    ckpt = load_resume_checkpoint(cfg, out, device) if resume else None
    demo_source = DemoSource(cfg, demos)
    if cfg.demo_batch_fraction and not demo_source.available:
        raise NppacError(f"demo_batch_fraction={cfg.demo_batch_fraction} draws part of every batch from the "
                         f"demonstrations, and task {cfg.task} has no bundled set; pass --demos PATH")
    resolved_prior = resolve_prior(cfg, out, prior, demo_source, progress)
    run = _build_run(cfg, resolved_prior, demo_source, device)
    run.prior_sha256 = None if resolved_prior is None else content_hash(RunDir(out).prior_dir)
    if ckpt is not None:
        _restore(run, cfg, out, ckpt)
    else:
        _start_fresh(run, cfg, out, resolved_prior, demo_source, progress)
    if cfg.demo_batch_fraction:
        demo_buffer = demonstration_buffer(cfg, demo_source.get(), run.prior_cache, device)
        run.mixed_batches = MixedBatches(run.buffer, demo_buffer, cfg.demo_batch_fraction)
    truncate_progress(RunDir(out).progress_file, run.state.epoch, run.state.gradient_steps if ckpt is not None else -1,
                      uses_prior=cfg.prior_kind is not None)
    return run


def _build_run(cfg: ResolvedConfig, prior: Prior | None, demo_source: DemoSource, device: torch.device) -> Run:
    """The run's cached prior, agent, replay buffer(s), environments and numpy generator, before any training."""
    task = cfg.task_spec
    if prior is not None and not use_variance(prior, cfg.prior_variance, cfg.love_rank, cfg.love_seed) \
            and cfg.prior_variance == "love":
        log.info("the %s prior's σ0 has no LOVE estimate; it stays exact", prior.kind)
    prior_cache = None if prior is None else PriorCache(prior, device)
    agent = build_agent(cfg, demo_source.get, device, prior)
    n_seeded = demo_source.get().n_transitions if cfg.seed_demos else 0
    n_online = cfg.n_epochs * cfg.steps_per_epoch if cfg.algorithm.online_updates else 0
    capacity = min(cfg.replay_capacity, n_online + n_seeded)
    buffer = ReplayBuffer(task.obs_dim, task.act_dim, capacity, device, prior_cache=prior_cache)
    evaluation, *copies = eval_envs(task, cfg.eval_horizon, cfg.seed + EVAL_SEED_OFFSET, cfg.eval_episodes)
    envs = {"train": make_env(task, cfg.horizon, cfg.seed, cfg.binary_reward), "eval": evaluation}
    return Run(agent, buffer, envs, np.random.default_rng(cfg.seed), prior_cache, agent.acting(), eval_copies=copies)


def _prior_mean_action(prior: Prior, states: torch.Tensor) -> torch.Tensor:
    """clip(μ0(s), −1, 1) at states the replay buffer has not cached (collection, evaluation), in float32."""
    return mean_action(prior, states).to(states.device, torch.float32)


def _restore(run: Run, cfg: ResolvedConfig, out: Path, ckpt: dict[str, Any]) -> None:
    """Agent, replay buffer, generators and phase state from the checkpoint (checked by load_resume_checkpoint)."""
    ckpt_path = RunDir(out).checkpoint
    if ckpt.get("format", 1) < CHECKPOINT_FORMAT:
        _from_format_1(ckpt, cfg)
    try:
        run.agent.load_state_dict(ckpt["agent"])
        run.buffer.load_state_dict(ckpt["replay"])
        restore_rng_state(ckpt["rng"], run.np_rng, run.envs)
        run.state = RunState(**ckpt["state"])
        differ = next((k for k in ("epoch", "env_steps") if ckpt[k] != getattr(run.state, k)), None)
        if differ:
            raise ValueError(f"its {differ} {ckpt[differ]} and its run state's {getattr(run.state, differ)} differ")
    except (RuntimeError, KeyError, ValueError, TypeError, NppacError) as err:
        raise NppacError(f"checkpoint {ckpt_path} does not fit the run's {CONFIG_NAME} ({str(err).splitlines()[0]}); "
                         f"was either edited? restore them, or start over with a new --out") from None
    run.unwritten_row = ckpt.get("row")
    where = f"epoch {run.state.epoch}" if run.state.step0_done else f"offline step {run.state.offline_done}"
    log.info("resuming %s after %s (%d env steps)", out, where, run.state.env_steps)


def _from_format_1(ckpt: dict[str, Any], cfg: ResolvedConfig) -> None:
    """A checkpoint of an earlier version as this one writes it, exactly: its replay buffer's σ0² (cached squared
    under ``prior_sigma = "variance"``) becomes σ0 again; the frozen initialized policy saved beside the agent
    (``anchor``) joins the agent's state; the removed critic warm start's flag goes."""
    storage = ckpt["replay"]["storage"]
    if cfg.prior_sigma == "variance" and "prior_std" in storage:
        for key in ("prior_std", "next_prior_std"):
            # Exact: in binary floating point rounded to nearest, sqrt(fl(σ·σ)) = σ (barring under- and overflow).
            storage[key] = storage[key].sqrt()
    if "anchor" in ckpt:
        ckpt["agent"]["init_actor"] = ckpt.pop("anchor")
    ckpt["state"].pop("warmstart_done", None)


def _start_fresh(run: Run, cfg: ResolvedConfig, out: Path, prior: Prior | None, demo_source: DemoSource,
                 progress: bool) -> None:
    """``references.json``, policy initialization toward π0 (and the KL target it sets), demonstrations seeded."""
    task = cfg.task_spec
    if not RunDir(out).references():
        demos_for_reference = demo_source.get() if demo_source.available else None
        with ProgressBar(progress) as bar, timed("references"):
            values = references(task, demos_for_reference, prior, cfg.eval_episodes, cfg.eval_horizon,
                                cfg.seed + 20_000, bar.stage)
        RunDir(out).write(REFERENCES_NAME, values)
    if cfg.init_actor is not None:
        run.init_metrics = start_from_actor(run.agent, cfg.init_actor, run.prior_cache, demo_source, cfg.prior_sigma)
    if run.prior_cache is not None and cfg.init_epochs:
        with timed("π0 at demo states"):  # the initialization's own phase inside it
            run.init_metrics = initialize_toward_prior(run.agent, run.prior_cache, demo_source.get(), cfg, progress)
    run.agent.before_online(run.init_metrics)
    if cfg.seed_demos:
        add_demonstrations(run.buffer, demo_source.get(), cfg)


def q_bounds(cfg: ResolvedConfig) -> tuple[float, float] | None:
    """[r_min, r_max] / (1 − γ) where the task's reward range is known and ``bound_q`` is on; else None."""
    reward_range = cfg.task_spec.reward_range(cfg.binary_reward or "minus_one_zero")
    if not cfg.bound_q or reward_range is None:
        return None
    lo, hi = reward_range
    return lo / (1.0 - cfg.gamma), hi / (1.0 - cfg.gamma)


def kl_sac_config(cfg: ResolvedConfig) -> KLSACConfig:
    """KL-SAC hyperparameters from a resolved config: with a prior for nppac / ppac-nn, without for sac, sac-bc."""
    use_prior = cfg.prior_kind is not None
    # Automatic α tracks E[log π − log π0]: −H̄ for SAC (log π0 ≡ 0), the KL target with a prior.
    target = cfg.target_kl if use_prior else -cfg.target_entropy
    shared = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(KLSACConfig) if hasattr(cfg, f.name)}
    return KLSACConfig(**shared, penalty_target=float(target or 0.0), use_prior=use_prior)


def agent_spec(cfg: ResolvedConfig, demos: DemoLoader, device: torch.device, prior: Prior | None = None) -> AgentSpec:
    """What the algorithm's builder reads of a resolved config (``demos`` loads the demonstrations on demand)."""
    task = cfg.task_spec
    prior_mean: PriorMean | None = None if prior is None else functools.partial(_prior_mean_action, prior)
    return AgentSpec(obs_dim=task.obs_dim, act_dim=task.act_dim, actor=cfg.actor, actor_hidden=cfg.actor_hidden,
                     critic_hidden=cfg.critic_hidden,
                     q_bounds=q_bounds(cfg), kl_sac=kl_sac_config(cfg), settings=cfg.algo_config(), demos=demos,
                     device=device, prior_mean=prior_mean)


def build_agent(cfg: ResolvedConfig, demos: DemoLoader, device: torch.device, prior: Prior | None = None) -> Agent:
    """The algorithm's agent for a resolved config (``demos`` loads the demonstrations if its builder reads them;
    ``prior``'s mean action is proposed by the second actor ``prior-mean``)."""
    return cfg.algorithm.build(agent_spec(cfg, demos, device, prior))


def demonstration_buffer(cfg: ResolvedConfig, demos: Demonstrations, prior_cache: PriorCache | None,
                         device: torch.device) -> ReplayBuffer:
    """The demonstrations as a replay buffer of their own, with the run's reward and cached prior."""
    task = cfg.task_spec
    return add_demonstrations(ReplayBuffer(task.obs_dim, task.act_dim, demos.n_transitions, device,
                                           prior_cache=prior_cache), demos, cfg)


def add_demonstrations(buffer: ReplayBuffer, demos: Demonstrations, cfg: ResolvedConfig) -> ReplayBuffer:
    """``buffer`` with the demonstrations added, a hand task's binary reward in the run's protocol's values."""
    flat = demos.flat()
    rewards = flat["rewards"] if cfg.binary_reward is None else as_binary_reward(flat["rewards"], cfg.binary_reward)
    buffer.add(flat["observations"], flat["actions"], rewards, flat["next_observations"], flat["terminals"])
    return buffer


class DemoSource:
    """Demonstrations loaded on first use: the given object, ``config.demos`` or the task's own set, each checked as
    a loaded file is, with actions clipped to the box (up to the run's ``max_clipped_actions``)."""

    def __init__(self, cfg: TrainConfig, demos: Demonstrations | None) -> None:
        self.cfg, self.demos, self.checked = cfg, demos, False

    @property
    def available(self) -> bool:
        """Whether there are demonstrations to load (given, configured, or bundled with the task)."""
        return self.demos is not None or self.cfg.demos is not None or self.cfg.task_spec.bundled_demos is not None

    def get(self) -> Demonstrations:
        from nppac.data import load_demos

        # Clipped to the action box: the environment executes clip(a), so that is the action to learn from.
        limit = self.cfg.max_clipped_actions
        if self.demos is None:
            task = self.cfg.task_spec
            path = self.cfg.demos or task.bundled_demos
            if path is None:
                hint = " (or --prior DIR with --set init_epochs=0)" if self.cfg.prior_kind else ""
                raise NppacError(f"algo {self.cfg.algo} on task {task.name!r} needs demonstrations but the task has "
                                 f"no bundled set; pass --demos PATH{hint}")
            self.demos = load_demos(path, task=self.cfg.task, allow_pickle=self.cfg.allow_pickle, clip_actions=True,
                                    max_clipped=limit)
        elif not self.checked:
            self.demos = self.demos.checked(task=self.cfg.task, clip_actions=True, max_clipped=limit)
        self.checked = True
        return self.demos


def check_prior_task(directory: Path, task: str) -> None:
    """Refuse a saved prior recorded as fitted for another task (its metrics.json or shared_prior.json says which);
    matching dimensions are not enough (halfcheetah's and walker2d's agree)."""
    for name in ("metrics.json", "shared_prior.json"):
        try:
            recorded = json.loads((directory / name).read_text()).get("task")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(recorded, str) and not same_task(recorded, task):
            raise NppacError(f"{directory}: this prior was fitted for task {recorded} ({name}), not {task}; "
                             f"fit one for {task} (nppac prior fit --task {task})")


def same_task(a: str, b: str) -> bool:
    """Whether two task names name one task (a ``module:function`` and the name of the Task it returns do)."""
    if a == b:
        return True
    try:
        return get_task(a) is get_task(b)
    except NppacError:
        return False


def check_prior(cfg: TrainConfig, prior: Prior) -> None:
    """Refuse a prior the run cannot train with: for an algorithm without one, of other dimensions than the task's,
    or tanh-squashed."""
    if cfg.prior_kind is None:
        raise NppacError(f"algo {cfg.algo!r} uses no prior; choose an algorithm with one (nppac, ppac-nn, "
                         "nppac-nn-std) to train with it")
    task = cfg.task_spec
    if (prior.obs_dim, prior.act_dim) != (task.obs_dim, task.act_dim):
        raise NppacError(f"prior has obs_dim={prior.obs_dim}, act_dim={prior.act_dim} but task {task.name} has "
                         f"obs_dim={task.obs_dim}, act_dim={task.act_dim}")
    if getattr(prior, "squashed", False):  # a prior given in memory may be any object with predict
        # The replay buffer caches (μ0, σ0) and the update evaluates a plain Gaussian log π0 from them.
        raise NppacError("a tanh-squashed prior cannot be cached as a Gaussian; fit the NN prior with "
                         "--variant gaussian (the default) or fixed_std")


def resolve_prior(cfg: ResolvedConfig, out: Path, prior: Prior | None, demos: DemoSource,
                  progress: bool) -> Prior | None:
    """π0 for this run: given, stored in the run directory, loaded from ``config.prior``, or fitted here.

    A copy is kept in ``out/prior`` so that a resumed run needs nothing outside its directory. ``config.prior``
    naming that copy itself (a run's own ``config.json``) means: load it from there, or, when it is missing, fit it
    there.
    """
    if cfg.prior_kind is None:
        if prior is not None:
            check_prior(cfg, prior)
        return None
    stored = RunDir(out).prior_dir
    if prior is None:
        if (stored / "settings.json").exists():
            prior = load_prior(stored)
        elif cfg.prior is not None and not is_own_prior(cfg.prior, out):
            check_prior_task(Path(cfg.prior), cfg.task)
            prior = load_prior(cfg.prior)
            shutil.copytree(cfg.prior, stored, dirs_exist_ok=True)
        else:
            if cfg.prior is not None:
                log.info("the run's prior %s is missing; fitting it there with the run's settings", stored)
            prior = fit_run_prior(cfg, cfg.prior_kind, demos.get(), progress)
            prior.save(stored)
    elif not stored.exists():
        prior.save(stored)
    check_prior(cfg, prior)
    if prior.kind != cfg.prior_kind:
        log.warning("algo %s expects a %s prior but was given a %s prior", cfg.algo, cfg.prior_kind, prior.kind)
    return prior


def fit_run_prior(cfg: ResolvedConfig, kind: str, demos: Demonstrations, progress: bool) -> Prior:
    """A prior of ``kind`` fitted on the demonstrations with the run's settings: the GP with the run's kernel, the
    NN, or both for the ablation (:data:`~nppac.training.algorithms.ABLATION_PRIOR`)."""

    def fit(kind: str) -> Prior:
        settings: dict[str, Any] = {"seed": cfg.seed, "device": cfg.device}
        if kind == "gp":
            settings["kernel"] = cfg.prior_kernel
            settings["from_gpytorch"] = cfg.prior_gpytorch
        if cfg.prior_iters is not None:
            settings["iters"] = cfg.prior_iters
        log.info("fitting a %s prior on %d demonstration transitions", kind, demos.n_transitions)
        with ProgressBar(progress) as bar, timed("prior fit"):
            prior, metrics = fit_prior(demos, kind, progress=bar.stage, **settings)
        log.info("%s prior fitted: %s", kind, {k: v for k, v in metrics.items() if isinstance(v, (int, float))})
        return prior

    if kind == ABLATION_PRIOR:
        return combine_priors(fit("gp"), fit("nn"))
    return fit(kind)


def start_from_actor(agent: Agent, path: str, prior_cache: PriorCache | None, demos: DemoSource,
                     prior_sigma: SigmaConvention) -> dict[str, float]:
    """Load ``path`` into the agent's actor (refused in one line unless it has the run's architecture); returns its
    KL(π‖π0) on the demonstration states, measured as policy initialization reports it (when there are both)."""
    actor = load_actor(path, agent.device)
    mine = agent.actor
    shape = ("kind", "obs_dim", "act_dim", "hidden", "log_std_range")
    differ = [f"{k} {getattr(actor, k)} (the run's: {getattr(mine, k)})" for k in shape
              if getattr(actor, k) != getattr(mine, k)]
    if differ:
        raise NppacError(f"init_actor {path} does not fit the run's actor: {', '.join(differ)}")
    mine.load_state_dict(actor.state_dict())
    if prior_cache is None or not demos.available:
        log.info("the policy starts from the actor in %s", path)
        return {}
    states = torch.as_tensor(demos.get().states, device=agent.device)
    prior_mean, prior_std = prior_cache(states)
    with torch.no_grad():
        kl = float(policy_kl(mine, states, prior_mean, prior_std, prior_sigma))
    if not math.isfinite(kl):
        raise NonFiniteError(f"KL(π‖π0) of the actor in {path} is not finite; check the prior's σ0")
    log.info("the policy starts from the actor in %s: KL(π‖π0) %.3g on the %d demonstration states (init_kl)", path,
             kl, len(states))
    warn_if_far_from_prior(f"the actor in {path}", kl, states, prior_mean, prior_std)
    return {"init_kl": kl}


OBS_SCALE_WARN = 1e3
"""Demonstrated observations beyond this in absolute value (or a per-dimension std beyond it) get a warning: the
actor reads raw observations (the priors standardize theirs), and a network fed 1e6 starts with outputs, and a
KL(π‖π0), millions of times too large (5e6 measured for states scaled by 1e6)."""
KL_WARN_RATIO = 100.0
"""A policy's KL(π‖π0) at initialization beyond this multiple of KL(N(0, I) ‖ π0), what an actor whose outputs are of
order one has, gets the same warning."""


def warn_if_far_from_prior(whose: str, kl: float, states: torch.Tensor, prior_mean: torch.Tensor,
                           prior_std: torch.Tensor) -> None:
    """A WARNING line when the observations' scale is extreme or ``kl`` is far above an order-one actor's."""
    unit = float(gaussian_kl(torch.zeros_like(prior_mean), torch.ones_like(prior_std), prior_mean, prior_std).mean())
    reach, spread = float(states.abs().max()), float(states.std(0).max()) if len(states) > 1 else 0.0
    if max(reach, spread) <= OBS_SCALE_WARN and kl <= KL_WARN_RATIO * unit:
        return
    log.warning("KL(π‖π0) of %s is %.3g on the demonstration states, %.3g× that of N(0, I) (%.3g); the "
                "demonstrations' observations reach |s| = %.3g (largest per-dim std %.3g) and the actor reads them "
                "unscaled: normalize the observations (the task's environment and the demonstrations alike, e.g. "
                "with a gymnasium ObservationWrapper), or check the prior's σ0", whose, kl, kl / max(unit, 1e-12),
                unit, reach, spread)


def initialize_toward_prior(agent: Agent, prior_cache: PriorCache, demos: Demonstrations, cfg: ResolvedConfig,
                            progress: bool) -> dict[str, float]:
    """KL(π‖π0) initialization on the demonstration states; returns the KL of its first and last epoch."""
    states = torch.as_tensor(demos.states, device=agent.device)
    log.info("initializing the policy: KL(π‖π0) on %d demonstration states for %d epochs", len(states), cfg.init_epochs)
    prior_mean, prior_std = prior_cache(states)
    with ProgressBar(progress) as bar, timed("initialization"):
        history = initialize_policy(agent.actor, states, prior_mean, prior_std, cfg.init_epochs,
                                    cfg.init_batch_size, cfg.actor_lr, cfg.seed, progress=bar.stage,
                                    prior_sigma=cfg.prior_sigma)
    if not math.isfinite(history[-1]):
        raise NonFiniteError("KL(π‖π0) became non-finite during policy initialization; check the prior's σ0")
    log.info("policy initialized: KL(π‖π0) %.3g → %.3g over %d epochs", history[0], history[-1], len(history))
    warn_if_far_from_prior("the policy in its first epoch of initialization", history[0], states, prior_mean,
                           prior_std)
    return {"init_kl_start": history[0], "init_kl": history[-1]}
