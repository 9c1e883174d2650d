"""Locomotion experts and the demonstrations they give (DESIGN.md §4, AWAC protocol).

An expert is an :class:`~nppac.agents.networks.Actor` trained by the one training loop with SAC (no prior, automatic
α toward −act_dim). Its demonstrations are rollouts of μ(s) plus Gaussian noise, clipped to the bounds:

    a_t = clip(μ(s_t) + ε_t, −1, 1),   ε_t ~ N(0, σ² I),   σ = 0.15 by default.

An expert's run directory holds ``expert.safetensors``, the best-evaluated actor so far (a killed run still leaves a
usable expert), and ``expert.json``; bundled experts are ``nppac/assets/experts/{task}.safetensors`` and ``.json``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from nppac.agents.networks import Actor, load_actor, save_actor
from nppac.data.demos import Demonstrations, Trajectory
from nppac.errors import NppacError
from nppac.outputs import write_atomic
from nppac.tasks import Task, get_task
from nppac.training.checkpoint import load_checkpoint
from nppac.training.config import ResolvedConfig, TrainConfig
from nppac.training.envs import make_env
from nppac.training.loop import train
from nppac.training.progress import ProgressBar
from nppac.training.rundir import ACTOR_NAME, CONFIG_NAME, RunDir

log = logging.getLogger(__name__)

EXPERT_STEPS = 1_000_000
"""Default training budget of an expert, in environment steps."""
EXPERT_NAME = "expert.safetensors"
"""The expert's actor inside a run directory (its metadata: the same name with ``.json``)."""
EXPERT_FORMAT = "nppac-expert"
"""The ``format`` of an exported expert's ``.json`` record."""
DEFAULT_ACTION_NOISE = 0.15
"""Std of the Gaussian noise added to the expert's actions in demonstrations (AWAC protocol)."""


def bundled_expert_path(task: str) -> Path | None:
    """The expert shipped with nppac for ``task`` (``assets/experts/{task}.safetensors``), if any."""
    name = get_task(task).name
    path = Path(str(resources.files("nppac") / "assets" / "experts" / f"{name}.safetensors"))
    return path if path.is_file() else None


def load_expert(spec: str, task: str, device: str | torch.device = "cpu") -> Actor:
    """The expert named by ``spec`` for ``task``: ``"bundled"``, an actor file, or a run directory (its
    ``expert.safetensors``, else its final actor), refused in one line unless it fits the task."""
    actor = load_actor(resolve_expert(spec, task), device)
    check_fits(actor, get_task(task))
    return actor


def resolve_expert(spec: str, task: str) -> Path:
    """The actor file ``spec`` stands for (see :func:`load_expert`), without loading it."""
    if spec == "bundled":
        path = bundled_expert_path(task)
        if path is None:
            raise NppacError(
                f"task {task!r} has no bundled expert yet; train one with "
                f"`nppac expert train --task {task} --out DIR` and pass --expert DIR/{EXPERT_NAME}"
            )
        return path
    path = Path(spec)
    if path.is_dir():
        for name in (EXPERT_NAME, ACTOR_NAME):  # an expert run's best actor, else any run's final actor
            if (path / name).is_file():
                return path / name
        raise NppacError(f"{path} holds no {EXPERT_NAME} or {ACTOR_NAME}; pass an actor file, or export one from "
                         f"the run with `nppac expert export --run {path} --out FILE.safetensors`")
    if not path.is_file():
        raise NppacError(f"expert not found: {path}; pass 'bundled', an actor .safetensors file or a run directory")
    return path


def expert_task(spec: str, task: str | None) -> str:
    """The task an expert is evaluated on: ``task``, else the task of the run directory ``spec`` names."""
    if task is not None:
        return task
    if Path(spec).is_dir() and RunDir(spec).started:
        return RunDir(spec).train_config().task
    raise NppacError(f"--task is required unless --expert is a run directory (with a {CONFIG_NAME}); got {spec!r}")


def check_fits(actor: Actor, task: Task) -> None:
    """Raise :class:`NppacError` unless the actor's observation and action dimensions are the task's."""
    if (actor.obs_dim, actor.act_dim) != (task.obs_dim, task.act_dim):
        raise NppacError(f"expert has obs_dim={actor.obs_dim}, act_dim={actor.act_dim} but task {task.name!r} has "
                         f"obs_dim={task.obs_dim}, act_dim={task.act_dim}; pass an expert trained on {task.name}")


def evaluate_expert(actor: Actor, task: str, episodes: int = 10, seed: int = 0, horizon: int | None = None,
                    progress: bool = False) -> dict[str, Any]:
    """Statistics of the deterministic policy μ(s) over ``episodes`` episodes: ``returns`` and ``lengths`` per
    episode, ``return_mean``, ``return_std`` (population), ``return_min``, ``return_max`` and, on binary tasks,
    ``success_rate``; the episodes of :func:`collect_demos` with no noise and the same ``seed``."""
    demos = collect_demos(actor, task, episodes, action_noise=0.0, seed=seed, horizon=horizon, progress=progress)
    return {"task": demos.task, "episodes": episodes, "seed": seed, **_return_stats(demos)}


def collect_demos(actor: Actor, task: str, episodes: int = 10, action_noise: float = DEFAULT_ACTION_NOISE,
                  seed: int = 0, horizon: int | None = None, progress: bool = False,
                  expert_name: str = "") -> Demonstrations:
    """Roll the expert out with noisy actions a_t = clip(μ(s_t) + ε_t, −1, 1), ε_t ~ N(0, σ² I).

    Episodes end at a true terminal state or at the horizon (the task's, or ``horizon`` when shorter); the same
    ``seed`` gives identical arrays. ``meta`` records ``expert_name``, σ, the seed, the horizon and the returns.
    """
    spec = get_task(task)
    check_fits(actor, spec)
    if episodes < 1:
        raise NppacError(f"episodes must be at least 1, got {episodes}")
    if action_noise < 0 or not math.isfinite(action_noise):
        raise NppacError(f"action noise must be a finite std ≥ 0, got {action_noise}")
    if not 0 <= seed < 2**32:
        raise NppacError(f"seed must lie in [0, {2**32 - 1}], got {seed}")
    horizon = spec.horizon if horizon is None else horizon
    if not 1 <= horizon <= spec.horizon:
        raise NppacError(f"horizon must lie in [1, {spec.horizon}] for task {spec.name!r}, got {horizon}")
    # Two independent streams from one seed: gymnasium seeds its own PCG64 from the same
    # SeedSequence as numpy's default_rng, so sharing the seed would correlate the
    # action noise with the environment's initial-state noise.
    env_stream, noise_stream = np.random.SeedSequence(seed).spawn(2)
    env = make_env(spec, horizon, int(env_stream.generate_state(1)[0]))
    noise = np.random.default_rng(noise_stream)
    trajectories = []
    try:
        with ProgressBar(progress) as bar:
            for k in range(episodes):
                trajectories.append(_rollout(actor, env, spec, action_noise, noise))
                bar.stage(f"{spec.name} rollouts", k + 1, episodes,
                          f"last return {trajectories[-1].episode_return:.1f}")
    finally:
        env.close()
    returns = [t.episode_return for t in trajectories]
    meta = {"expert": expert_name, "action_noise": action_noise, "seed": seed, "horizon": horizon, "returns": returns}
    return Demonstrations(trajectories, source=f"{spec.name} expert rollouts", format="rollouts",
                          task=spec.name, meta=meta)


def _rollout(actor: Actor, env: gym.Env, task: Task, noise_std: float, noise: np.random.Generator) -> Trajectory:
    """One episode; ``noise`` is only drawn from when σ > 0, so σ = 0 is exactly the deterministic policy."""
    obs, _ = env.reset()
    steps = []
    while True:
        action = actor.act(obs)
        if noise_std > 0:
            action = action + noise_std * noise.standard_normal(task.act_dim).astype(np.float32)
        action = np.clip(action, -1.0, 1.0)
        next_obs, reward, terminated, truncated, info = env.step(action)
        steps.append((obs, action, reward, terminated, truncated and not terminated, next_obs,
                      bool(info.get("success", False))))
        obs = next_obs
        if terminated or truncated:
            break
    observations, actions, rewards, terminals, timeouts, next_observations, success = zip(*steps)
    return Trajectory(
        observations=np.asarray(observations, np.float32),
        actions=np.asarray(actions, np.float32),
        rewards=np.asarray(rewards, np.float32),
        terminals=np.asarray(terminals, bool),
        timeouts=np.asarray(timeouts, bool),
        next_observations=np.asarray(next_observations, np.float32),
        infos={"success": np.asarray(success, bool)} if task.reward == "binary" else {},
    )


def _return_stats(demos: Demonstrations) -> dict[str, Any]:
    returns = np.asarray(demos.meta["returns"], np.float64)
    stats: dict[str, Any] = {
        "return_mean": float(returns.mean()), "return_std": float(returns.std()),
        "return_min": float(returns.min()), "return_max": float(returns.max()),
        "returns": returns.tolist(), "lengths": [len(t) for t in demos],
    }
    if demos.task is None:
        raise NppacError("expert demonstrations name no task")
    task = get_task(demos.task)
    if task.reward == "binary":
        stats["success_rate"] = float(np.mean([task.episode_success(t.infos["success"]) for t in demos]))
    return stats


def expert_config(task: str, steps: int = EXPERT_STEPS, seed: int = 0, device: str = "cpu",
                  overrides: Sequence[str] = ()) -> TrainConfig:
    """The training configuration of an expert: SAC (no prior) with automatic α toward −act_dim, with ``overrides``
    (``--set key=value``) on top; the algorithm must stay ``sac``."""
    config = TrainConfig(task=task, algo="sac", seed=seed, device=device, steps=steps, auto_alpha=True)
    config = config.with_overrides(list(overrides))
    if config.algo != "sac":
        raise NppacError(f"an expert is trained with algo 'sac' (no prior), not {config.algo!r}; drop --set algo")
    return config.validate()


def train_expert(config: TrainConfig | None, out_dir: str | Path, resume: bool = False,
                 progress: bool = True, steps: int | None = None) -> dict[str, Any]:
    """Train an expert with :func:`nppac.training.train`, keeping ``out_dir/expert.safetensors`` the best-evaluated
    actor so far (exported with ``expert.json`` after each epoch that beats it; the final actor stays in
    ``actor.safetensors``). ``resume`` and ``steps`` as for ``train``. Returns the loop's summary plus ``expert``
    (the path) and ``expert_eval_return``.
    """
    out = Path(out_dir)
    expert_file = out / EXPERT_NAME
    algo = RunDir(out).train_config().algo if resume and RunDir(out).started else "sac"
    if algo != "sac":
        raise NppacError(f"{out} is a {algo} run, not an expert's (sac); continue it with "
                         f"`nppac train --resume --out {out}`")
    best = _exported_return(expert_file) if resume else -math.inf

    def export_if_best(row: dict[str, Any]) -> None:
        nonlocal best
        if row["phase"] == "online" and row["eval_return"] > best:
            best = float(row["eval_return"])
            export_expert(out, expert_file)
            log.info("new best eval return %.1f at epoch %d: expert written to %s", best, row["epoch"], expert_file)

    summary = train(config, out, resume=resume, steps=steps, progress=progress, on_epoch_end=export_if_best)
    if not expert_file.is_file():
        export_expert(out, expert_file)
    return {**summary, "expert": str(expert_file), "expert_eval_return": _exported_return(expert_file)}


def export_expert(run_dir: str | Path, out_file: str | Path) -> dict[str, Any]:
    """Write the actor of a run's latest checkpoint to ``out_file`` and its metadata beside it (``.json``); safe on a
    run still training (checkpoints are replaced whole). Returns the metadata (format :data:`EXPERT_FORMAT`, the
    run's task, algo, seed, evaluation settings and budget, the checkpoint's epoch, env steps and eval return)."""
    run, out = Path(run_dir), Path(out_file)
    if out.suffix != ".safetensors":
        raise NppacError(f"{out}: the expert file must end in .safetensors")
    if not out.parent.is_dir():
        raise NppacError(f"{out}: the folder {out.parent} does not exist; create it first")
    record = out.with_suffix(".json")
    if record.exists() and _expert_record(record) is None:
        raise NppacError(f"{record} is not an exported expert's record, and the export would replace it; "
                         "move it away or choose another --out")
    cfg = RunDir(run).train_config("pass the --out of `nppac expert train`", what="a training run").resolved()
    actor, ckpt = checkpoint_actor(run, cfg)
    epoch, env_steps, task = int(ckpt["epoch"]), int(ckpt["env_steps"]), cfg.task_spec
    save_actor(actor, out)
    meta = {"format": EXPERT_FORMAT, "task": task.name, "algo": cfg.algo, "seed": cfg.seed, "epoch": epoch,
            "env_steps": env_steps, "eval_return": _eval_return(run, epoch), "eval_episodes": cfg.eval_episodes,
            "horizon": cfg.horizon, "run_steps": cfg.steps, "run": str(run)}
    write_atomic(record, json.dumps(meta, indent=2) + "\n")
    return meta


def checkpoint_actor(run: Path, cfg: ResolvedConfig,
                     device: str | torch.device = "cpu") -> tuple[Actor, dict[str, Any]]:
    """The actor of a run's latest checkpoint (safe while the run trains: checkpoints are replaced whole), and the
    checkpoint's entries read (``epoch``, ``env_steps``)."""
    ckpt_path = RunDir(run).checkpoint
    if not ckpt_path.is_file():
        raise NppacError(f"{run} has no {ckpt_path.name} yet; wait for its first epoch to finish")
    # mmap: only the actor's tensors are read, not the replay buffer stored beside them.
    ckpt = load_checkpoint(ckpt_path, "cpu", required=("epoch", "env_steps", "agent.actor"), mmap=True)
    task = cfg.task_spec
    actor = Actor(task.obs_dim, task.act_dim, cfg.actor_hidden, cfg.actor,
                  getattr(cfg.algo_config(), "log_std_range", None))
    try:
        actor.load_state_dict(ckpt["agent"]["actor"])
    except RuntimeError as err:
        raise NppacError(f"checkpoint {ckpt_path} does not fit the run's {CONFIG_NAME} "
                         f"({str(err).splitlines()[-1].strip()}); was either edited? restore them") from None
    return actor.to(device).eval(), ckpt


def _expert_record(path: Path) -> dict[str, Any] | None:
    """The record beside an exported expert, known by :data:`EXPERT_FORMAT` or (written before it) its keys."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    ours = isinstance(data, dict) and (data.get("format") == EXPERT_FORMAT
                                       or {"task", "epoch", "env_steps", "run"} <= data.keys())
    return data if ours else None


def _eval_return(run: Path, epoch: int) -> float | None:
    """The evaluation return of ``epoch`` in the run's ``progress.csv`` (None if the row is missing or cut)."""
    value = next((row.get("eval_return") for row in RunDir(run).progress()[1] if row.get("epoch") == str(epoch)), None)
    try:
        return None if value is None else float(value)
    except ValueError:
        return None


def _exported_return(expert_file: Path) -> float:
    """The evaluation return recorded beside an exported expert (−inf if there is none yet)."""
    value = (_expert_record(expert_file.with_suffix(".json")) or {}).get("eval_return")
    return -math.inf if not isinstance(value, (int, float)) or not math.isfinite(value) else float(value)
