"""What can be solved: the task registry.

Each :class:`Task` carries its environment factory (seeded, actions rescaled to [−1, 1], horizon enforced, the
binary sparse reward for the Adroit hand tasks), its default hyperparameters (DESIGN.md §3) and, for the hand tasks,
the success predicate read from an observation. Besides the paper's tasks (``_TASKS`` below) and those given to
:func:`register_task`, a task may be named by a gymnasium id, ``module:function`` or an entry point of group
``nppac.tasks`` (README, "Your own task"); that name is what a run's ``config.json`` and a suite keep. An
environment's spaces are checked once, when its task is made: a flat Box of observations, a flat Box of actions
with finite bounds.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib
import io
import logging
import os
import sys
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from nppac.errors import NppacError

logger = logging.getLogger(__name__)

Kernel = Literal["rbf", "matern12", "matern32", "matern52"]
ActorKind = Literal["tanh_gaussian", "gaussian_tanh_mean"]


@dataclass(frozen=True)
class TaskDefaults:
    """Published per-task hyperparameters (DESIGN.md §3 table)."""

    alpha: float
    """KL (or entropy) temperature α."""
    kernel: Kernel
    """State kernel of the GP reference policy."""
    actor: ActorKind
    """Actor head: tanh-squashed Gaussian, or Gaussian with tanh on the mean."""
    actor_hidden: tuple[int, ...]
    """Hidden layer widths of the actor."""
    batch_size: int
    """Gradient-step mini-batch size."""
    init_epochs: int
    """Epochs of KL(π‖π0) policy initialization on demonstration states."""
    prior_sigma: Literal["std", "variance"]
    """How σ0 enters π0: as its std (the math), or the variance in the std's place (the published code).

    Chosen per task family (docs/conventions.md): the published convention keeps the prior's competence on
    locomotion; on the hand tasks, where the GP's σ0 on the data is ~0.015, squaring it swamps the critic.
    """


LOCOMOTION = TaskDefaults(0.1, "rbf", "tanh_gaussian", (256, 256), 256, 400, "variance")
HAND = TaskDefaults(0.5, "matern12", "gaussian_tanh_mean", (256, 256, 256, 256), 1024, 400, "std")
OWN = TaskDefaults(0.1, "rbf", "tanh_gaussian", (256, 256), 256, 400, "std")
"""Defaults of a user's own task: the locomotion settings, with σ0 entering π0 as its std (the math)."""


@dataclass(frozen=True)
class SuccessPredicate:
    """A hand task's success predicate read from the observation after a step: the environment's own
    ``info["success"]`` (Adroit v1, as DAPG's v0), so that demonstrations with another reward can be relabelled."""

    description: str
    """What holds, with the observation entries read (recorded in relabelled data)."""
    holds: Callable[[np.ndarray], np.ndarray]
    """(n, obs_dim) observations → (n,) bool."""


def _door_open(obs: np.ndarray) -> np.ndarray:
    return obs[:, 28] >= 1.35


def _pen_at_target(obs: np.ndarray) -> np.ndarray:
    position_error = np.linalg.norm(obs[:, 39:42], axis=1)
    orientation_similarity = np.sum(obs[:, 33:36] * obs[:, 36:39], axis=1)
    return (position_error < 0.075) & (orientation_similarity > 0.95)


def _ball_at_target(obs: np.ndarray) -> np.ndarray:
    return np.linalg.norm(obs[:, 36:39], axis=1) < 0.1


DOOR_OPEN = SuccessPredicate("door hinge angle ≥ 1.35 rad (obs[28])", _door_open)
PEN_AT_TARGET = SuccessPredicate(
    "pen within 0.075 of its target (‖obs[39:42]‖) and aligned with it (obs[33:36]·obs[36:39] > 0.95)",
    _pen_at_target,
)
BALL_AT_TARGET = SuccessPredicate("ball within 0.1 of its target (‖obs[36:39]‖ < 0.1)", _ball_at_target)

_QUIET_MUJOCO = ("compiler attribute 'settotalmass' is deprecated",)
"""MuJoCo warnings about the model files gymnasium ships (not ours to fix), dropped at env construction."""
_ADROIT_NOTICE = "environment's reward functions were updated"


@contextlib.contextmanager
def _quiet_mujoco() -> Iterator[None]:
    """MuJoCo's known warnings about gymnasium's model files (printed from C, for every env) dropped while an env is
    built; any other goes to this module's logger."""
    import mujoco

    def on_warning(message: str) -> None:
        if not message.startswith(_QUIET_MUJOCO):
            logger.warning("MuJoCo: %s", message)

    previous = mujoco.get_mju_user_warning()
    mujoco.set_mju_user_warning(on_warning)
    try:
        yield
    finally:
        mujoco.set_mju_user_warning(previous)


def _register_adroit() -> None:
    """Register gymnasium-robotics' environments, without its import's notice that the Adroit v1 *dense* rewards
    changed (the hand tasks use the binary reward, which did not); anything else printed still reaches stderr."""
    printed = io.StringIO()
    with contextlib.redirect_stderr(printed):
        import gymnasium_robotics
    kept = [line for line in printed.getvalue().splitlines() if _ADROIT_NOTICE not in line]
    if kept:
        print("\n".join(kept), file=sys.stderr)
    gym.register_envs(gymnasium_robotics)


@dataclass(frozen=True)
class Task:
    """A registered task: environment, dimensions, reward kind and defaults."""

    name: str
    env_id: str
    obs_dim: int
    act_dim: int
    horizon: int
    reward: Literal["dense", "binary"]
    defaults: TaskDefaults
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    success_steps: int | None = None
    """Binary tasks: an episode succeeds when the goal holds in more than this many steps (DAPG)."""
    success_from_obs: SuccessPredicate | None = None
    """Binary tasks: the success predicate read from an observation (None where it is not in it)."""
    make: Callable[[], gym.Env] | None = None
    """Builds a new environment, capped at ``horizon`` here (default: ``gym.make(env_id, **env_kwargs)``)."""
    episodes: int | None = None
    """Evaluation episodes per epoch (default: 5000 steps in all, DESIGN.md §3)."""
    demos: str | None = None
    """The task's own demonstration file (default: the set bundled with nppac under the task's name, if any)."""

    @property
    def family(self) -> Literal["locomotion", "hand"]:
        return "hand" if self.reward == "binary" else "locomotion"

    def reward_range(self, binary_reward: BinaryRewardName = "minus_one_zero") -> tuple[float, float] | None:
        """[r_min, r_max] of one step's reward where it is known: binary tasks give −1/0 or 0/1."""
        if self.reward != "binary":
            return None
        success, failure = BINARY_REWARDS[binary_reward]
        return min(success, failure), max(success, failure)

    @property
    def eval_episodes(self) -> int:
        """Evaluation episodes per epoch: the task's own count, else 5000 steps in all (DESIGN.md §3)."""
        return self.episodes if self.episodes is not None else max(1, 5000 // self.horizon)

    @property
    def bundled_demos(self) -> Path | None:
        """The task's own demonstration file, else the set shipped with nppac for it, if any."""
        if self.demos is not None:
            return Path(self.demos)
        path = Path(str(resources.files("nppac") / "assets" / "demos" / f"{self.name}.npz"))
        return path if path.exists() else None

    def make_env(self, seed: int | None = None, binary_reward: BinaryRewardName = "minus_one_zero",
                 render_mode: str | None = None) -> gym.Env:
        """Build the environment; with ``seed`` it is reset once and its action space seeded.

        Binary tasks reward success and failure as ``binary_reward`` says (:data:`BINARY_REWARDS`).
        ``render_mode`` is gymnasium's (``"rgb_array"`` for videos); a task's own factory must build it so.
        """
        with _quiet_mujoco():
            env = self._new_env(render_mode)
        box = env.action_space
        if isinstance(box, gym.spaces.Box) and not (np.allclose(box.low, -1.0) and np.allclose(box.high, 1.0)):
            env = gym.wrappers.RescaleAction(env, np.float64(-1.0), np.float64(1.0))
        if self.reward == "binary":
            env = BinaryReward(env, *BINARY_REWARDS[binary_reward])
        if seed is not None:
            env.reset(seed=seed)
            env.action_space.seed(seed)
        return env

    def _new_env(self, render_mode: str | None = None) -> gym.Env:
        """A new environment, its episodes capped at the horizon."""
        if self.make is None:
            if self.env_id not in gym.registry:
                _register_adroit()
            # render_mode only when asked: a user's environment need not take the keyword.
            rendering: dict[str, Any] = {} if render_mode is None else {"render_mode": render_mode}
            return gym.make(self.env_id, max_episode_steps=self.horizon, **rendering, **self.env_kwargs)
        env = self.make()
        if not isinstance(env, gym.Env):
            raise NppacError(f"task {self.name!r}: its environment factory returned a {type(env).__name__}, "
                             "not a gymnasium.Env")
        if render_mode is not None and env.render_mode != render_mode:
            raise NppacError(f"task {self.name!r}: its environment factory builds render_mode={env.render_mode!r}, "
                             f"not {render_mode!r}; build the environment with render_mode={render_mode!r}")
        return gym.wrappers.TimeLimit(env, max_episode_steps=self.horizon)

    def episode_success(self, successes: np.ndarray | list[bool]) -> bool:
        """DAPG's convention: success when the goal holds in more than ``success_steps`` steps."""
        if self.success_steps is None:
            raise NppacError(f"task {self.name!r} has no success predicate (dense reward)")
        return int(np.sum(successes)) > self.success_steps

    def to_json(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in ("name", "env_id", "obs_dim", "act_dim", "horizon", "reward")}


class BinaryReward(gym.Wrapper):
    """The binary sparse reward: ``success`` (AWAC's 0) when the goal holds after the step, else ``failure`` (−1);
    the environment's own reward is kept in ``info["dense_reward"]``."""

    def __init__(self, env: gym.Env, success: float = 0.0, failure: float = -1.0) -> None:
        super().__init__(env)
        self.success, self.failure = success, failure

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        info = dict(info)
        info["dense_reward"] = float(reward)
        success = bool(info.get("success", False))
        return obs, self.success if success else self.failure, terminated, truncated, info


BinaryRewardName = Literal["minus_one_zero", "zero_one"]
BINARY_REWARDS: dict[str, tuple[float, float]] = {"minus_one_zero": (0.0, -1.0), "zero_one": (1.0, 0.0)}
"""Binary reward name → (reward when the goal holds after the step, reward otherwise)."""


@dataclass(frozen=True)
class HandProtocol:
    """How a hand task is trained: the reward's values, the episode length, and what a time limit means.

    Two are published (DESIGN.md §4, :data:`HAND_PROTOCOLS`). N-PPAC's stores the time limit as a terminal:
    gym 0.12's TimeLimit returned done=True and rlkit stored it.
    """

    name: str
    binary_reward: BinaryRewardName
    timeout_terminal: bool
    horizons: dict[str, int] = field(default_factory=dict)
    """Task name → training episode length where it differs from the task's horizon."""
    description: str = ""

    def horizon(self, task: Task) -> int:
        return self.horizons.get(task.name, task.horizon)


HAND_PROTOCOLS: dict[str, HandProtocol] = {
    "awac": HandProtocol("awac", "minus_one_zero", False, {},
                         "AWAC's *-binary-v0: reward −1/0, 200-step episodes, time limits bootstrapped"),
    "nppac": HandProtocol("nppac", "zero_one", True, {"pen-binary": 100},
                          "N-PPAC's *-zero-one-v0: reward 0/1, pen episodes of 100 steps, time limits as terminals"),
}
"""The published hand-task training protocols by name (``--set hand_protocol=...``)."""


_TASKS: dict[str, Task] = {
    t.name: t
    for t in [
        Task("halfcheetah", "HalfCheetah-v5", 17, 6, 1000, "dense", LOCOMOTION),
        Task("hopper", "Hopper-v5", 11, 3, 1000, "dense", LOCOMOTION),
        Task("walker2d", "Walker2d-v5", 17, 6, 1000, "dense",
             TaskDefaults(0.2, "rbf", "tanh_gaussian", (256, 256), 256, 400, "variance")),
        Task("ant", "Ant-v5", 27, 8, 1000, "dense", LOCOMOTION,
             env_kwargs={"include_cfrc_ext_in_observation": False}),
        Task("door-binary", "AdroitHandDoor-v1", 39, 28, 200, "binary", HAND, success_steps=25,
             success_from_obs=DOOR_OPEN),
        Task("pen-binary", "AdroitHandPen-v1", 45, 24, 200, "binary",
             TaskDefaults(0.1, "matern52", "gaussian_tanh_mean", (256, 256, 256, 256), 1024, 550, "std"),
             success_steps=20, success_from_obs=PEN_AT_TARGET),
        Task("relocate-binary", "AdroitHandRelocate-v1", 39, 30, 200, "binary", HAND, success_steps=25,
             success_from_obs=BALL_AT_TARGET),
        Task("hammer-binary", "AdroitHandHammer-v1", 46, 26, 200, "binary", HAND, success_steps=25),
    ]
}


BUILTIN_TASKS: tuple[str, ...] = tuple(_TASKS)
"""The paper's tasks, which :func:`register_task` may not replace."""


class UnknownTaskError(NppacError):
    """A task name that is neither registered nor a gymnasium id, ``module:function`` or entry point."""


def list_tasks() -> list[Task]:
    """All registered tasks: the paper's (locomotion first), then those registered since."""
    return list(_TASKS.values())


def get_task(name: str) -> Task:
    """Look a task up: a registered name, else a task named by a gymnasium id, ``module:function`` or an
    entry point of group ``nppac.tasks`` (:func:`resolve`); else a one-line :class:`NppacError`."""
    if not isinstance(name, str):
        raise NppacError(f"task {name!r}: expected a task's name (a string)")
    if name in _TASKS:
        return _TASKS[name]
    task = resolve(name)
    if task is None:
        raise UnknownTaskError(
            f"unknown task {name!r}; choose one of: {', '.join(_TASKS)}, or name your own: a gymnasium id "
            "(e.g. HalfCheetah-v5), module:function returning a Task, or an entry point of group nppac.tasks")
    return task


# ---------------------------------------------------------------- your own task

ENTRY_POINT_GROUP = "nppac.tasks"
"""The entry point group an installed package lists its tasks in (name → a Task or a function)."""

EnvSource = str | gym.Env | Callable[[], gym.Env]
"""A gymnasium id, an environment object, or a function that builds a new environment."""

_RESOLVED: dict[str, Task] = {}
"""Tasks named by a gymnasium id, ``module:function`` or an entry point, by that name: made once per process."""


def register_task(name: str, env: EnvSource, *, reward: str = "dense", horizon: int | None = None,
                  eval_episodes: int | None = None, demos: str | os.PathLike[str] | None = None,
                  env_kwargs: dict[str, Any] | None = None, success_steps: int | None = None,
                  defaults: TaskDefaults | None = None, **settings: Any) -> Task:
    """Register a task under ``name`` and return it; it then works wherever a task name does.

    ``env``: a gymnasium id (made with ``env_kwargs``), a function building a new environment, or an environment
    object (remade from its spec, else copied). ``reward``: ``dense``, or ``binary`` (the environment's
    ``info["success"]`` gives −1/0; an episode succeeds when the goal holds in more than ``success_steps`` steps).
    ``horizon`` defaults to the environment's time limit, ``eval_episodes`` to 5000 steps in all; ``demos`` is used
    when a run names none. ``defaults`` (default :data:`OWN`) with ``settings`` (fields of :class:`TaskDefaults`)
    are what the task gives where a run leaves them unset. The paper's task names cannot be replaced; another name
    registered again is replaced. Every problem is refused in one line (:class:`NppacError`).
    """
    if name in BUILTIN_TASKS:
        raise NppacError(f"task name {name!r} is one of nppac's own tasks; register yours under another name")
    if not isinstance(name, str) or name in ("", ".", "..") or any(c.isspace() for c in name) or "/" in name:
        raise NppacError(f"task name {name!r}: give a non-empty name without spaces or '/', not '.' or '..' "
                         "(it names run folders)")
    task = make_task(name, env, reward=reward, horizon=horizon, eval_episodes=eval_episodes, demos=demos,
                     env_kwargs=env_kwargs, success_steps=success_steps, defaults=defaults, **settings)
    return _register(task)


def make_task(name: str, env: EnvSource, *, reward: str = "dense", horizon: int | None = None,
              eval_episodes: int | None = None, demos: str | os.PathLike[str] | None = None,
              env_kwargs: dict[str, Any] | None = None, success_steps: int | None = None,
              defaults: TaskDefaults | None = None, **settings: Any) -> Task:
    """The task :func:`register_task` registers, made and checked but not registered."""
    if reward not in ("dense", "binary"):
        raise NppacError(f"task {name!r}: reward={reward!r}; choose dense or binary")
    for setting, value, low in (("horizon", horizon, 1), ("eval_episodes", eval_episodes, 1),
                              ("success_steps", success_steps, 0)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < low):
            raise NppacError(f"task {name!r}: {setting}={value!r}; give a whole number ≥ {low}")
    if success_steps is not None and reward != "binary":
        raise NppacError(f"task {name!r}: success_steps applies to a binary reward only")
    if demos is not None and not str(demos).startswith("minari:") and not Path(demos).exists():
        raise NppacError(f"task {name!r}: demos {demos}: no such file or directory")
    task_defaults = _defaults(name, defaults, settings)
    env_id, make, kwargs, probe, own_probe = _environment(name, env, env_kwargs)
    try:
        obs_dim, act_dim = _dims(probe, name)
        horizon = horizon if horizon is not None else _time_limit(probe)
    finally:
        if own_probe:
            probe.close()
    if horizon is None:
        raise NppacError(f"task {name!r}: the environment has no time limit; give the episode length "
                         f"(register_task({name!r}, ..., horizon=N))")
    return Task(name, env_id, obs_dim, act_dim, horizon, "binary" if reward == "binary" else "dense",
                task_defaults, env_kwargs=kwargs, success_steps=(success_steps or 0) if reward == "binary" else None,
                make=make, episodes=eval_episodes, demos=None if demos is None else str(demos))


def env_task(env: gym.Env) -> Task:
    """The task of an environment object (the API's models take one): registered under its id, else its class name."""
    name = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
    return register_task(name, env)


def task_name(task: str | Task | gym.Env) -> str:
    """The name a run's configuration keeps for a task given by name, as a Task (registered here), or as an
    environment object (:func:`env_task`)."""
    if isinstance(task, Task):
        return _register(task).name
    if isinstance(task, gym.Env):
        return env_task(task).name
    if not isinstance(task, str):
        raise NppacError(f"task = {task!r}: expected a name, a Task or a gymnasium.Env, not a {type(task).__name__}")
    return task


def resolve(name: str) -> Task | None:
    """The task an unregistered name stands for (module docs), made once; None when it names none."""
    if name in _RESOLVED:
        return _RESOLVED[name]
    task = _from_entry_point(name)
    if task is None and ":" in name:
        task = _from_module(name)
    if task is None and _is_gym_id(name):
        task = make_task(name, name)
    if task is not None:
        _RESOLVED[name] = task
    return task


def entry_point_tasks() -> list[Task]:
    """The tasks of every installed package's ``nppac.tasks`` entry points (loaded here)."""
    return [task for ep in entry_points(group=ENTRY_POINT_GROUP) if (task := resolve(ep.name)) is not None]


def _register(task: Task) -> Task:
    """``task`` under its name, unless that name is one of the paper's tasks (another object)."""
    if _TASKS.get(task.name) is task:
        return task
    if task.name in BUILTIN_TASKS:
        raise NppacError(f"task name {task.name!r} is one of nppac's own tasks; register yours under another name")
    if task.name in _TASKS:
        logger.info("task %r registered again: the new one replaces it", task.name)
    _TASKS[task.name] = task
    return task


def _defaults(name: str, defaults: TaskDefaults | None, settings: dict[str, Any]) -> TaskDefaults:
    """``defaults`` (else :data:`OWN`) with ``settings`` replacing its fields, each value checked."""
    base = OWN if defaults is None else defaults
    fields = [f.name for f in dataclasses.fields(TaskDefaults)]
    unknown = sorted(set(settings) - set(fields))
    if unknown:
        raise NppacError(f"task {name!r}: unknown setting(s) {', '.join(unknown)}; a task's defaults are "
                         f"{', '.join(fields)}")
    if "actor_hidden" in settings and isinstance(settings["actor_hidden"], list):
        settings = {**settings, "actor_hidden": tuple(settings["actor_hidden"])}
    out = dataclasses.replace(base, **settings)
    choices = {"kernel": typing.get_args(Kernel), "actor": typing.get_args(ActorKind),
               "prior_sigma": ("std", "variance")}
    for setting, allowed in choices.items():
        if getattr(out, setting) not in allowed:
            raise NppacError(f"task {name!r}: {setting}={getattr(out, setting)!r}; choose one of: "
                             f"{', '.join(allowed)}")
    if isinstance(out.alpha, bool) or not isinstance(out.alpha, (int, float)) or not out.alpha > 0:
        raise NppacError(f"task {name!r}: alpha={out.alpha!r}; give a number > 0")
    for setting, low in (("batch_size", 1), ("init_epochs", 0)):
        value = getattr(out, setting)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise NppacError(f"task {name!r}: {setting}={value!r}; give a whole number ≥ {low}")
    hidden = out.actor_hidden
    if not isinstance(hidden, tuple) or not hidden or not all(
            isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in hidden):
        raise NppacError(f"task {name!r}: actor_hidden={hidden!r}; give the layer widths, e.g. (256, 256)")
    return out


def _environment(name: str, env: EnvSource, env_kwargs: dict[str, Any] | None
                 ) -> tuple[str, Callable[[], gym.Env] | None, dict[str, Any], gym.Env, bool]:
    """(env_id, factory or None for gym.make(env_id), gym.make's kwargs, an environment to read the spaces of,
    whether that one is ours to close)."""
    kwargs = dict(env_kwargs or {})
    if isinstance(env, str):
        env_id = _gym_id(name, env)
        with _quiet_mujoco():
            probe = _call(name, lambda: gym.make(env_id, **kwargs), f"gym.make({env_id!r})")
        return env_id, None, kwargs, probe, True
    if kwargs:
        raise NppacError(f"task {name!r}: env_kwargs apply to a gymnasium id; build them into your environment")
    if isinstance(env, gym.Env):
        spec = env.spec
        if spec is not None and spec.id in gym.registry:
            return spec.id, lambda: gym.make(spec), {}, env, False
        try:
            copy.deepcopy(env)
        except Exception as err:  # an environment may hold anything (handles, sockets); the user needs the cause
            raise NppacError(f"task {name!r}: the environment object cannot be copied ({type(err).__name__}: "
                             f"{err}) and has no gymnasium id to remake it from; pass a function that builds "
                             "a new one") from None
        return type(env.unwrapped).__name__, lambda: copy.deepcopy(env), {}, env, False
    if callable(env):
        described = f"{getattr(env, '__module__', '?')}:{getattr(env, '__qualname__', type(env).__name__)}"
        with _quiet_mujoco():
            probe = _call(name, env, described)
        if not isinstance(probe, gym.Env):
            raise NppacError(f"task {name!r}: {described} returned a {type(probe).__name__}, not a gymnasium.Env")
        return described, env, {}, probe, True
    raise NppacError(f"task {name!r}: env must be a gymnasium id, an environment or a function building one, "
                     f"not a {type(env).__name__}")


def _call(name: str, make: Callable[[], Any], described: str) -> Any:
    """``make()``, any failure of the user's code as one line naming it."""
    try:
        return make()
    except NppacError:
        raise
    except Exception as err:  # the user's environment code can raise anything
        raise NppacError(f"task {name!r}: {described} raised {type(err).__name__}: {err}") from None


def _gym_id(name: str, env_id: str) -> str:
    """A registered gymnasium id (``module:EnvId`` imports the module first), or a one-line refusal."""
    if env_id not in gym.registry and ":" in env_id:
        module, _, env_id = env_id.partition(":")
        _import(module, name)
    if not _is_gym_id(env_id):
        raise NppacError(f"task {name!r}: {env_id!r} is not a registered gymnasium id; register the "
                         "environment with gymnasium.register first, or pass a function that builds it")
    return env_id


def _is_gym_id(env_id: str) -> bool:
    """Whether gymnasium knows ``env_id`` (gymnasium-robotics' ids included, registered on demand)."""
    if env_id in gym.registry:
        return True
    _register_adroit()
    return env_id in gym.registry


def _dims(env: gym.Env, name: str) -> tuple[int, int]:
    """(obs_dim, act_dim) of an environment whose spaces nppac can learn in; else a one-line refusal."""
    obs, act = env.observation_space, env.action_space
    if not isinstance(obs, gym.spaces.Box) or len(obs.shape) != 1:
        raise NppacError(f"task {name!r}: observation space {obs} is not a flat Box; nppac reads an observation as "
                         "one vector of reals (flatten it, e.g. with gymnasium.wrappers.FlattenObservation)")
    if not isinstance(act, gym.spaces.Box):
        kind = "discrete" if isinstance(act, (gym.spaces.Discrete, gym.spaces.MultiDiscrete,
                                               gym.spaces.MultiBinary)) else "not a Box"
        raise NppacError(f"task {name!r}: action space {act} is {kind}; nppac's policies act in a continuous, "
                         "bounded Box")
    if len(act.shape) != 1 or not np.issubdtype(act.dtype, np.floating):
        raise NppacError(f"task {name!r}: action space {act} is not a flat Box of floats; nppac's policies act in "
                         "a continuous, bounded Box of shape (act_dim,)")
    if not (np.isfinite(act.low).all() and np.isfinite(act.high).all()):
        raise NppacError(f"task {name!r}: action space {act} is unbounded (infinite low or high); nppac's policies "
                         "act in a bounded box, rescaled to [-1, 1]: give the environment finite action bounds")
    if (act.low >= act.high).any():
        raise NppacError(f"task {name!r}: action space {act} has dimensions with low ≥ high; every action "
                         "dimension needs a range")
    return int(obs.shape[0]), int(act.shape[0])


def _time_limit(env: gym.Env) -> int | None:
    """The episode cap of an environment: its spec's, else that of a TimeLimit wrapper around it."""
    if env.spec is not None and env.spec.max_episode_steps is not None:
        return int(env.spec.max_episode_steps)
    while isinstance(env, gym.Wrapper):
        if isinstance(env, gym.wrappers.TimeLimit):
            return int(env._max_episode_steps)
        env = env.env
    return None


def _from_entry_point(name: str) -> Task | None:
    """The task an installed package lists under ``name`` in the ``nppac.tasks`` entry points."""
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        return None
    ep = found[0]
    try:
        target = ep.load()
    except Exception as err:  # importing a third-party package can raise anything
        raise NppacError(f"task {name!r}: entry point {ep.name} = {ep.value} (group {ENTRY_POINT_GROUP}) cannot "
                         f"be loaded ({type(err).__name__}: {err})") from None
    return _task_of(target, name, f"entry point {ep.value}")


def _from_module(spec: str) -> Task | None:
    """``module:function`` (or ``module:EnvId``); None when the module part names no module."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        return None
    module = _import(module_name, spec)
    target = getattr(module, attr, None)
    if target is None:
        if attr in gym.registry:  # module:EnvId, registered by importing the module
            return make_task(spec, attr)
        raise NppacError(f"task {spec!r}: module {module_name} has no {attr!r}: neither a function returning a Task "
                         "nor a gymnasium id it registers")
    return _task_of(target, spec, spec)


def _import(module_name: str, spec: str) -> Any:
    """Import ``module_name`` from the installed packages or the current directory; one line if it fails."""
    if os.getcwd() not in sys.path:  # the `nppac` script runs without it, unlike `python -m nppac`
        sys.path.append(os.getcwd())
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name is not None and module_name.startswith(err.name):
            raise NppacError(f"task {spec!r}: no module named {err.name!r} (installed, or in the current "
                             "directory)") from None
        raise NppacError(f"task {spec!r}: importing {module_name} failed: {err}") from None
    except Exception as err:  # the user's module can raise anything on import
        raise NppacError(f"task {spec!r}: importing {module_name} raised {type(err).__name__}: {err}") from None


def _task_of(target: Any, name: str, described: str) -> Task:
    """The Task of an entry point's or ``module:function``'s object: a Task, or a function returning (or
    registering exactly) one; registered under its own name too."""
    if isinstance(target, Task):
        return _register(target)
    if not callable(target):
        raise NppacError(f"task {name!r}: {described} is a {type(target).__name__}, neither a Task nor a function "
                         "returning one")
    before = set(_TASKS)
    result = _call(name, target, described)
    if isinstance(result, Task):
        return _register(result)
    added = sorted(set(_TASKS) - before)
    if result is None and len(added) == 1:
        return _TASKS[added[0]]
    raise NppacError(f"task {name!r}: {described} returned {type(result).__name__}; return the Task "
                     "(register_task returns it)")
