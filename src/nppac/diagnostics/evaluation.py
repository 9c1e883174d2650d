"""A trained policy evaluated as its run evaluates it (:func:`nppac.training.envs.evaluate`: the mean action, the
run's horizon, by default its evaluation seed), with a 95 % interval (Wilson's for a success rate, Student's t for
a mean return) and its worst episode, which gymnasium's ``RecordVideo`` can record.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
import numbers
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch

from nppac.agents.networks import Actor, load_actor
from nppac.diagnostics.curves import t_interval
from nppac.errors import NppacError
from nppac.outputs import check_output_file
from nppac.tasks import Task, get_task, task_name

log = logging.getLogger(__name__)

LEVEL = 0.95
"""The coverage of the reported interval."""


class TrainedModel(Protocol):
    """What :func:`evaluate_policy` reads of a model of :mod:`nppac.api`."""

    config: Any
    actor: Actor | None


@dataclass(frozen=True)
class PolicyEvaluation:
    """Per-episode results of a deterministic evaluation, and the 95 % interval of its headline number: the
    success rate on a binary task (Wilson), the mean return otherwise (Student's t; one episode: the return)."""

    task: str
    policy: str
    """What was evaluated: the actor file, or the checkpoint its actor came from."""
    seed: int
    """The evaluation environment's seed: episode i is the (i + 1)-th reset of the environment seeded with it."""
    horizon: int
    returns: list[float]
    successes: list[bool] | None
    interval: tuple[float, float]
    video: str | None = None

    @property
    def episodes(self) -> int:
        return len(self.returns)

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    @property
    def success_rate(self) -> float | None:
        return None if self.successes is None else float(np.mean(self.successes))

    @property
    def mean(self) -> float:
        """The headline number: the success rate on a binary task, else the mean return."""
        rate = self.success_rate
        return self.mean_return if rate is None else rate

    @property
    def worst_episode(self) -> int:
        """The index of the episode with the lowest return (the first of ties)."""
        return int(np.argmin(self.returns))

    @property
    def worst_return(self) -> float:
        return self.returns[self.worst_episode]

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "interval": list(self.interval), "episodes": self.episodes,
                "mean": self.mean, "mean_return": self.mean_return, "success_rate": self.success_rate,
                "worst_episode": self.worst_episode, "worst_return": self.worst_return, "level": LEVEL}


def evaluate_policy(model_or_run: TrainedModel | Actor | str | Path, task: str | Task | None = None,
                    n_episodes: int | None = None, seed: int | None = None, device: str = "cpu",
                    video: str | Path | None = None) -> PolicyEvaluation:
    """Evaluate a model (:mod:`nppac.api`), a run directory's final actor or an :class:`Actor` as its run would.

    ``task``, ``n_episodes`` and ``seed`` default to the run's (an actor needs ``task``, its seed is 0); ``device``
    is where a run directory's actor is loaded; ``video``, an ``.mp4`` for the worst episode, is checked first.
    """
    from nppac.devices import resolve_device
    from nppac.training.envs import EVAL_SEED_OFFSET, eval_envs, evaluate
    from nppac.training.experts import check_fits

    for name, value, low in (("n_episodes", n_episodes, 1), ("seed", seed, 0)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low):
            raise NppacError(f"{name} = {value!r}: expected a whole number ≥ {low} or None")
    actor, cfg, policy = _policy(model_or_run, resolve_device(device))
    if task is None and cfg is None:
        raise NppacError("evaluating an Actor needs task=...; a model or a run directory names its own")
    spec = get_task(task_name(task)) if task is not None else cfg.task_spec
    check_fits(actor, spec)
    own = cfg is not None and cfg.task_spec.name == spec.name
    horizon = cfg.eval_horizon if own else spec.horizon
    episodes = n_episodes if n_episodes is not None else cfg.eval_episodes if own else spec.eval_episodes
    seed = seed if seed is not None else (cfg.seed if cfg is not None else 0) + EVAL_SEED_OFFSET
    if episodes < 1:
        raise NppacError(f"the number of episodes must be at least 1, got {episodes}")
    if video is not None:
        video = check_output_file(video, ".mp4")
        check_renderer(spec)
    envs = eval_envs(spec, horizon, seed, episodes)
    try:
        result = evaluate(actor, envs, spec, episodes, horizon)
    finally:
        for env in envs:
            env.close()
    returns = result.returns
    if result.successes is not None:
        interval = wilson_interval(sum(result.successes), episodes)
    else:
        _, lo, hi, _ = t_interval(np.asarray(returns, dtype=float).reshape(-1, 1), LEVEL)
        interval = (float(lo[0]), float(hi[0]))
    evaluation = PolicyEvaluation(spec.name, policy, seed, horizon, returns, result.successes, interval)
    if video is None:
        return evaluation
    record_episode(actor, spec, horizon, seed, evaluation.worst_episode, Path(video))
    return dataclasses.replace(evaluation, video=str(video))


def wilson_interval(successes: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson's score interval of a success rate: inside [0, 1], and not empty at 0 or n successes."""
    from scipy import stats

    ci = stats.binomtest(int(successes), n).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def _policy(source: TrainedModel | Actor | str | Path, device: torch.device) -> tuple[Actor, Any, str]:
    """(the actor, the run's resolved settings or None, what the actor is) of what :func:`evaluate_policy` takes."""
    from nppac.training.experts import checkpoint_actor
    from nppac.training.rundir import ACTOR_NAME, RunDir

    if isinstance(source, Actor):  # evaluated where it is, as a model's actor
        return source, None, "actor"
    if not isinstance(source, (str, Path)):
        if not hasattr(source, "actor") or not hasattr(source, "config"):
            raise NppacError(f"cannot evaluate {source!r}: give a run directory, a model (nppac.api) or an Actor")
        if source.actor is None:
            raise NppacError("the model has not been trained or loaded: call learn() or Model.load(run_dir)")
        return source.actor, source.config.resolved(), str(getattr(source, "run_dir", None) or "model")
    run = RunDir(source)
    cfg = run.train_config("pass the --out of `nppac train`").resolved()
    if cfg.second_actor != "none":
        log.warning("%s acted by second_actor=%s; this evaluates its actor alone", run.path, cfg.second_actor)
    if run.actor.is_file():
        return load_actor(run.actor, device), cfg, str(run.actor)
    actor, ckpt = checkpoint_actor(run.path, cfg, device)  # a run still training, or stopped by a kill
    return actor, cfg, f"{run.path} (checkpoint at {int(ckpt['env_steps']):,} env steps; no {ACTOR_NAME} yet)"


_RENDER_HINT = ("set MUJOCO_GL=egl (a GPU, or Mesa's EGL) or MUJOCO_GL=osmesa (CPU: apt install libosmesa6) "
                "and run again")


@contextlib.contextmanager
def _quiet_probe() -> Iterator[None]:
    """No warnings, no log lines of PyOpenGL's library search and no 'Exception ignored' reports from a renderer
    that failed half-way (its ``__del__``): a refusal stays one line."""
    hook, opengl = sys.unraisablehook, logging.getLogger("OpenGL")
    level = opengl.level
    sys.unraisablehook = lambda _: None
    opengl.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
            gc.collect()
    finally:
        sys.unraisablehook = hook
        opengl.setLevel(level)


def check_renderer(task: Task) -> None:
    """Refuse in one line, before any work, when the task's environment cannot render a frame (no OpenGL
    context) or moviepy, which gymnasium's recorder writes with, is missing."""
    from nppac.training.envs import make_env

    errors: tuple[type[BaseException], ...] = (RuntimeError, AttributeError, ImportError, OSError, ValueError)
    with _quiet_probe():
        try:
            import mujoco

            errors = (*errors, mujoco.FatalError)
        except errors:  # MuJoCo absent, or refusing its MUJOCO_GL at import: the probe below meets it again
            pass
        try:
            env = make_env(task, 1, 0, render_mode="rgb_array")
            frame = env.render()
            env.close()
        except errors as err:
            raise NppacError(f"--video: task {task.name} cannot render ({type(err).__name__}: "
                             f"{' '.join(str(err).split())}); {_RENDER_HINT}") from None
    if not isinstance(frame, np.ndarray):
        raise NppacError(f"--video: task {task.name}'s environment rendered no image in render_mode='rgb_array'")
    try:
        import moviepy  # noqa: F401
    except ImportError:
        raise NppacError("--video needs moviepy, which gymnasium's video recorder writes with: "
                         "pip install moviepy (or gymnasium[other])") from None


def record_episode(actor: Actor, task: Task, horizon: int, seed: int, episode: int, out: Path) -> None:
    """Episode ``episode`` of the evaluation seeded with ``seed`` (the same episode: the stream is replayed by as
    many resets), recorded by ``gymnasium.wrappers.RecordVideo`` to ``out``, which is replaced whole."""
    from nppac.training.envs import make_env

    folder = Path(tempfile.mkdtemp(prefix=f".{out.stem}.", dir=out.parent))
    try:
        env = gym.wrappers.RecordVideo(make_env(task, horizon, seed, render_mode="rgb_array"), str(folder),
                                       episode_trigger=lambda i: i == episode, name_prefix="episode",
                                       disable_logger=True)
        for _ in range(episode):
            env.reset()
        obs, _ = env.reset()
        for _ in range(horizon):
            obs, _, terminated, truncated, _ = env.step(actor.act(obs[None])[0])
            if terminated or truncated:
                break
        env.close()
        written = next(folder.glob("*.mp4"), None)
        if written is None:
            raise NppacError(f"--video: gymnasium's recorder wrote no video for episode {episode} of {task.name}")
        written.replace(out)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
