"""The settings of one training run: :class:`TrainConfig`, its task defaults and ``--set`` overrides."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nppac.agents.kl_sac import ALGOS
from nppac.agents.networks import ACTOR_KINDS
from nppac.errors import NppacError
from nppac.tasks import Task, get_task
from nppac.training.algorithms import ALGORITHMS, Algorithm


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run; ``None`` fields take the task's published default (DESIGN.md §3)."""

    task: str = "halfcheetah"
    """Registered task name (``nppac tasks``)."""
    algo: str = "nppac"
    """nppac (GP prior), ppac-nn (NN prior), sac (no prior), or the baselines sac-bc, awac, bc."""
    seed: int = 0
    """Seed of torch, numpy and the environments."""
    device: str = "cpu"
    """Training device: cpu or cuda."""
    steps: int = 1_000_000
    """Total environment steps (a whole number of epochs is run)."""
    steps_per_epoch: int = 1000
    """Environment steps collected per epoch."""
    updates_per_epoch: int = 1000
    """Gradient steps per epoch, after its collection (bc takes none: it learns from the demonstrations only)."""
    warmup_steps: int | None = None
    """Uniform-random steps before the first update (algorithm default: 1000; 0 for awac and bc)."""
    offline_updates: int | None = None
    """Gradient steps on the demonstration-seeded replay buffer before interaction (awac 25,000; bc 10,000; else 0)."""
    eval_episodes: int | None = None
    """Deterministic evaluation episodes per epoch (task: 5000 steps in all)."""
    horizon: int | None = None
    """Episode length cap of training and evaluation (task: 1000 locomotion, 200 hand)."""
    replay_capacity: int = 1_000_000
    """Replay capacity (allocated: min(capacity, steps + seeded demonstrations))."""
    batch_size: int | None = None
    """Gradient-step mini-batch size (task: 256 locomotion, 1024 hand)."""
    gamma: float = 0.99
    """Discount γ."""
    tau: float = 0.005
    """Polyak rate of the target critics."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor (and of policy initialization)."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critics."""
    alpha: float | None = None
    """Temperature α (task default; initial value with auto_alpha)."""
    auto_alpha: bool = False
    """Adapt α toward target_entropy (sac) or target_kl (nppac, ppac-nn)."""
    target_entropy: float | None = None
    """Entropy target of automatic α for sac (default −act_dim)."""
    target_kl: float | None = None
    """KL target of automatic α for the prior variants (required with auto_alpha)."""
    alpha_lr: float = 3e-4
    """Adam learning rate of log α."""
    actor: str | None = None
    """Actor head: tanh_gaussian or gaussian_tanh_mean (task default)."""
    actor_hidden: tuple[int, ...] | None = None
    """Actor hidden widths (task: 2×256 locomotion, 4×256 hand)."""
    critic_hidden: tuple[int, ...] = (256, 256)
    """Hidden widths of each critic."""
    init_epochs: int | None = None
    """Epochs of KL(π‖π0) policy initialization on demonstration states (task default; 0 skips)."""
    init_batch_size: int = 64
    """Mini-batch size of policy initialization."""
    seed_demos: bool | None = None
    """Put the demonstration transitions into the replay buffer before training (default: true for awac and bc)."""
    demos: str | None = None
    """Demonstration file (default: the task's bundled set)."""
    prior: str | None = None
    """Directory of a saved prior (default: fit one from the demonstrations)."""
    prior_kernel: str | None = None
    """State kernel of a GP prior fitted here (task default)."""
    prior_iters: int | None = None
    """Optimizer iterations (GP) or epochs (NN) of a prior fitted here (the prior's own default)."""
    bc_weight: float = 1.0
    """sac-bc: weight λ of the behaviour-cloning term −λ E_D0[log π(a|s)] in the actor loss."""
    awac_lambda: float = 1.0
    """awac: temperature λ of the advantage weights softmax(A/λ) (published hand-task setting)."""
    awac_value_samples: int = 1
    """awac: policy actions averaged in V(s) = E_{a~π} min_k Q_k(s, a)."""
    allow_pickle: bool = False
    """Allow reading pickle-based demonstration files (only for files you trust)."""
    num_threads: int | None = 1
    """torch CPU threads; 1 by default: 256-wide networks gain little from more and lose badly on busy cores."""

    @property
    def prior_kind(self) -> str | None:
        """'gp', 'nn' or None (sac and the baselines)."""
        return ALGOS[self.algo]

    @property
    def algorithm(self) -> Algorithm:
        """How the training loop runs ``algo`` (its entry in the algorithm table)."""
        return ALGORITHMS[self.algo]

    def validate(self) -> TrainConfig:
        """Raise a one-line :class:`NppacError` for an impossible setting; returns self."""
        get_task(self.task)
        if self.algo not in ALGOS:
            raise NppacError(f"unknown algorithm {self.algo!r}; choose one of: {', '.join(ALGOS)}")
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise NppacError(f"unknown device {self.device!r}; choose cpu or cuda")
        if self.actor is not None and self.actor not in ACTOR_KINDS:
            raise NppacError(f"unknown actor head {self.actor!r}; choose one of: {', '.join(ACTOR_KINDS)}")
        positive = ("steps", "steps_per_epoch", "replay_capacity", "init_batch_size", "eval_episodes", "horizon",
                    "batch_size", "awac_value_samples")
        for name in positive:
            value = getattr(self, name)
            if value is not None and value < 1:
                raise NppacError(f"config field {name} must be positive, got {value}")
        for name in ("updates_per_epoch", "warmup_steps", "init_epochs", "offline_updates", "bc_weight"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise NppacError(f"config field {name} must be ≥ 0, got {value}")
        if not self.awac_lambda > 0:
            raise NppacError(f"config field awac_lambda must be positive, got {self.awac_lambda}")
        if self.steps < self.steps_per_epoch:
            raise NppacError(f"steps={self.steps} is less than one epoch (steps_per_epoch={self.steps_per_epoch})")
        if self.auto_alpha and self.prior_kind is not None and self.target_kl is None:
            raise NppacError(f"auto_alpha with algo {self.algo} needs a target KL: --set target_kl=VALUE")
        algorithm = self.algorithm
        seed_demos = _or(self.seed_demos, algorithm.seed_demos)
        offline_updates = _or(self.offline_updates, algorithm.offline_updates)
        if not algorithm.online_updates and not (offline_updates and seed_demos):
            raise NppacError(f"algo {self.algo} learns only from the demonstrations before interaction; "
                             f"it needs seed_demos=true and offline_updates > 0 (got {seed_demos}, {offline_updates})")
        if offline_updates and not seed_demos:
            raise NppacError(f"offline_updates={offline_updates} trains on the demonstrations in the replay buffer; "
                             "add --set seed_demos=true (or --set offline_updates=0)")
        return self

    def resolved(self) -> TrainConfig:
        """A copy with every ``None`` default filled in from the task and the algorithm."""
        task = get_task(self.validate().task)
        d = task.defaults
        algorithm = self.algorithm
        return dataclasses.replace(
            self,
            warmup_steps=_or(self.warmup_steps, algorithm.warmup_steps),
            offline_updates=_or(self.offline_updates, algorithm.offline_updates),
            seed_demos=_or(self.seed_demos, algorithm.seed_demos),
            eval_episodes=_or(self.eval_episodes, task.eval_episodes),
            horizon=_or(self.horizon, task.horizon),
            batch_size=_or(self.batch_size, d.batch_size),
            alpha=_or(self.alpha, d.alpha),
            target_entropy=_or(self.target_entropy, -float(task.act_dim)),
            actor=_or(self.actor, d.actor),
            actor_hidden=_or(self.actor_hidden, tuple(d.actor_hidden)),
            init_epochs=_or(self.init_epochs, d.init_epochs),
            prior_kernel=_or(self.prior_kernel, d.kernel),
        )

    @property
    def task_spec(self) -> Task:
        return get_task(self.task)

    @property
    def n_epochs(self) -> int:
        return self.steps // self.steps_per_epoch

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a dict (e.g. a run's ``config.json``); unknown keys raise :class:`NppacError`."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise NppacError(f"unknown config key(s): {', '.join(unknown)}")
        # JSON has no tuples: the hidden-width lists come back as lists.
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise NppacError(f"cannot read run config {path}: {err}") from None
        try:
            return cls.from_dict(data)
        except NppacError as err:
            raise NppacError(f"{path}: {err} (written by another nppac version? rename or remove the key "
                             "to match `nppac train --help` / TrainConfig)") from None

    def with_overrides(self, pairs: list[str]) -> TrainConfig:
        """Apply ``key=value`` strings (``--set``); values are parsed by the field's type."""
        hints = typing.get_type_hints(type(self))
        changes: dict[str, Any] = {}
        for pair in pairs:
            key, sep, text = pair.partition("=")
            key = key.strip()
            if not sep:
                raise NppacError(f"--set expects key=value, got {pair!r}")
            if key not in hints:
                known = ", ".join(f.name for f in dataclasses.fields(self))
                raise NppacError(f"unknown config key {key!r} in --set; known keys: {known}")
            changes[key] = _parse(key, text.strip(), hints[key])
        return dataclasses.replace(self, **changes)


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _parse(key: str, text: str, hint: Any) -> Any:
    """A --set value from text, by the field's type hint."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        if text.lower() in ("none", "null", ""):
            return None
        hint = next(a for a in args if a is not type(None))
    try:
        if hint is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if typing.get_origin(hint) is tuple:
            return tuple(int(x) for x in text.split(",") if x.strip())
        return hint(text)
    except (ValueError, TypeError):
        raise NppacError(f"--set {key}={text!r}: cannot parse as {getattr(hint, '__name__', hint)}") from None

