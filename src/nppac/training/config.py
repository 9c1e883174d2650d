"""The settings of one training run: :class:`TrainConfig`, its task defaults and ``--set`` overrides."""

from __future__ import annotations

import dataclasses
import json
import tomllib
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from nppac.agents.kl_sac import SIGMA_CONVENTIONS, SigmaConvention
from nppac.agents.networks import ACTOR_KINDS, ActorKind
from nppac.agents.second_actor import SECOND_ACTOR_CHOICES, SECOND_ACTORS
from nppac.data.loaders import is_minari_id
from nppac.data.replay import demo_count
from nppac.data.validate import MAX_CLIPPED_ACTIONS
from nppac.errors import NppacError
from nppac.outputs import write_atomic
from nppac.priors.gp import VARIANCE_ESTIMATES, VarianceEstimate
from nppac.priors.kernels import KERNELS
from nppac.settings import field_types, parsed, typed, typed_fields
from nppac.tasks import BINARY_REWARDS, HAND_PROTOCOLS, BinaryRewardName, Task, get_task
from nppac.training.algorithms import ALGORITHMS, INSTEAD, WARMUPS, Algorithm, Warmup, get_algorithm
from nppac.training.presets import PRESETS, preset_settings

AUTO_ALPHA_TARGETS: tuple[str, ...] = ("act-dim", "init-kl")
"""Named KL targets of automatic α (``auto_alpha_target``)."""
KL_ANCHORS: tuple[str, ...] = ("prior", "init-actor")
"""The mean of the reference in the online KL (``kl_anchor``)."""

CONFIG_SCHEMA = 2
"""Version of a run's ``config.json``: 2 records only the settings its algorithm reads (:func:`migrate` reads older
ones)."""
RENAMED: dict[str, tuple[str, str]] = {"actor_log_std_range": ("log_std_range", "temperature")}
"""Old setting name → (its name now, the group of :data:`~nppac.training.algorithms.SETTING_GROUPS` whose algorithms
read it under the old name): accepted there with a deprecation warning, refused elsewhere."""

PATH_FIELDS: tuple[str, ...] = ("demos", "prior", "prior_gpytorch", "init_actor")
"""Settings that name files: relative to the run or suite file that gives them (a ``minari:ID`` names none)."""

PRIOR_CONVENTIONS: dict[str, tuple[str, str]] = {
    "published": ("variance", "love"),
    "exact-variance": ("variance", "exact"),
    "std": ("std", "exact"),
    "love-std": ("std", "love"),
}
"""Named (prior_sigma, prior_variance) pairs; ``published`` is the published code's prior N(μ0, (σ²_LOVE)²)."""

REMOVED_SETTINGS: dict[str, tuple[Any, ...]] = {"critic_warmstart_steps": (0,), "actor_delay_updates": (0,),
                                                "critic_warmstart_data": ("demos", "warmup")}
"""Settings of earlier versions, removed because they were measured harmful (docs/remedies.md), with the values that
leave them off: a stored config.json or suite manifest that holds those still reads; any other use is refused."""


def _removed(key: str) -> NppacError:
    return NppacError(f"config key {key}: removed in this version; measured harmful, docs/remedies.md")


def _with_paths(values: dict[str, Any], change: Callable[[str], str]) -> dict[str, Any]:
    """``values`` with each file a setting names (:data:`PATH_FIELDS`; a ``minari:ID`` names none) ``change``d."""
    return {k: change(v) if k in PATH_FIELDS and isinstance(v, str) and not is_minari_id(v) else v
            for k, v in values.items()}


def _without_removed(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` without the removed settings that are left off (:data:`REMOVED_SETTINGS`)."""
    return {k: v for k, v in values.items() if k not in REMOVED_SETTINGS or v not in REMOVED_SETTINGS[k]}


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run; ``None`` fields take the task's published default (DESIGN.md §3)."""

    task: str = "halfcheetah"
    """Task: a registered name (``nppac tasks``), a gymnasium id, ``module:function`` or an entry point of group
    ``nppac.tasks``."""
    algo: str = "nppac"
    """Algorithm name (the table of nppac.training.algorithms)."""
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
    warmup_steps: int = 1000
    """Environment steps collected before the first online gradient step (rlkit's min_num_steps_before_training)."""
    warmup: str | None = None
    """Who collects the warm-up steps: policy (the initialized policy, published) or uniform (algorithm default)."""
    offline_updates: int | None = None
    """Gradient steps on the demonstration-seeded replay buffer before interaction (awac 25,000; bc 10,000; else 0)."""
    offline_batch_size: int | None = None
    """Mini-batch size of the offline gradient steps (algorithm default; else batch_size)."""
    offline_eval_every: int = 5000
    """Offline gradient steps between evaluated progress rows and checkpoints of the offline phase."""
    eval_every: int = 1
    """Online epochs per evaluated row and checkpoint (the last epoch always is): for runs where evaluation costs a
    noticeable share."""
    eval_episodes: int | None = None
    """Deterministic evaluation episodes per epoch (task: 5000 steps in all)."""
    horizon: int | None = None
    """Episode length cap of training (task: 1000 locomotion, 200 hand; the hand protocol's: pen 100 under nppac's)."""
    eval_horizon: int | None = None
    """Episode length cap of evaluation: a ``horizon`` given explicitly, else the task's, whatever the hand
    protocol's training horizon."""
    hand_protocol: str | None = None
    """Hand tasks' training protocol (nppac.tasks.HAND_PROTOCOLS): nppac (reward 0/1, pen 100 steps, time limit a
    terminal) or awac (reward −1/0, 200 steps, bootstrapped); algorithm default. Evaluation is AWAC's under both (the
    task's horizon, −1/0 return), so success rates compare."""
    binary_reward: str | None = None
    """Hand tasks' training reward: minus_one_zero (0 at the goal, else −1) or zero_one; the hand protocol's."""
    timeout_terminal: bool | None = None
    """Store a time-limit step as a terminal (no bootstrap), as the published rlkit code did; the hand protocol's on
    hand tasks, else false."""
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
    auto_alpha_target: str | None = None
    """Automatic α toward a named KL target (turns auto_alpha on): act-dim (the published trainer's tuning with a GP
    prior) or init-kl (the KL at the end of policy initialization). KL-SAC with a prior only."""
    critic_layernorm: bool = False
    """Layer-normalize the critics' hidden layers (RLPD's remedy for critic extrapolation). KL-SAC only."""
    kl_anchor: str = "prior"
    """The mean of the reference in the online KL: prior (μ0) or init-actor (the initialized policy's mean action,
    frozen, with the prior's σ0; initialization still fits π0). KL-SAC with a prior and an initialized policy only."""
    second_actor: str = "none"
    """A second candidate action, taken where the critics value it higher (PEX, IBRL): prior-mean (clip(μ0(s))) or
    init-actor (the frozen initialized policy's mean action); in collection, in the critic target and, greedily, in
    evaluation (nppac.agents.second_actor). KL-SAC with a prior only."""
    second_actor_choice: str = "greedy"
    """How the second action is chosen in collection and the critic target: greedy (the higher min_k Q_k) or softmax
    (probability σ((Q₂ − Q_π)/T)). Evaluation is always greedy."""
    second_actor_temperature: float = 1.0
    """Temperature T > 0 of the softmax choice, in the critics' units (softmax only)."""
    demo_batch_fraction: float = 0.0
    """Share f ∈ [0, 1) of each online batch drawn from the demonstrations (with the run's reward and cached prior;
    RLPD's symmetric sampling); 0 = off. KL-SAC only; needs demonstrations."""
    actor: str | None = None
    """Actor head: tanh_gaussian or gaussian_tanh_mean (task default)."""
    actor_hidden: tuple[int, ...] | None = None
    """Actor hidden widths (task: 2×256 locomotion, 4×256 hand)."""
    critic_hidden: tuple[int, ...] = (256, 256)
    """Hidden widths of each critic."""
    init_epochs: int | None = None
    """Epochs of KL(π‖π0) policy initialization on demonstration states (task default, 0 with ``init_actor``)."""
    init_batch_size: int = 64
    """Mini-batch size of policy initialization."""
    init_actor: str | None = None
    """An actor file (``nppac.agents.save_actor``: a run's ``actor.safetensors``, the quickstart's initialized actor)
    of the run's architecture that the policy starts from; ``init_epochs`` continue from it."""
    seed_demos: bool | None = None
    """Put the demonstration transitions into the replay buffer before training (default: true for awac and bc)."""
    demos: str | None = None
    """Demonstration file, or ``minari:ID`` (the local Minari store); default: the task's own set."""
    max_clipped_actions: float = MAX_CLIPPED_ACTIONS
    """Largest share of demonstration action values outside [−1, 1] that are clipped (with a warning); a set with
    more is refused, its actions more likely in the environment's own units. 1 accepts any."""
    prior: str | None = None
    """Directory of a saved prior (default: fit one from the demonstrations)."""
    prior_gpytorch: str | None = None
    """A gpytorch GP checkpoint whose hyperparameters the run's GP prior takes, conditioned on the run's
    demonstrations (the published prior; ``nppac prior import``)."""
    prior_kernel: str | None = None
    """State kernel of a GP prior fitted here (task default)."""
    prior_iters: int | None = None
    """Optimizer iterations (GP) or epochs (NN) of a prior fitted here (the prior's own default)."""
    prior_sigma: str | None = None
    """How σ0 enters π0: std (the math) or variance (the published code's N(μ0, σ0²) as std); task default."""
    prior_variance: str | None = None
    """Which GP predictive variance σ0² is: exact, or love (gpytorch 1.0.1's LOVE estimate, the published code's;
    nppac.priors.love). An NN prior's σ0 is exact either way. Default exact."""
    love_rank: int = 100
    """Lanczos iterations of the LOVE variance (published: 100)."""
    love_seed: int = 0
    """Seed of LOVE's random Lanczos start vector."""
    prior_convention: str | None = None
    """A named (prior_sigma, prior_variance) pair (:data:`PRIOR_CONVENTIONS`); published = (variance, love)."""
    preset: str | None = None
    """Named settings filling those left unset, before the algorithm's and the task's defaults: published = the
    published code's prior, protocol and per-task settings (nppac.training.presets)."""
    bound_q: bool | None = None
    """Clamp the critics to the returns' range [r_min, r_max]/(1 − γ) where the task's reward range is known;
    algorithm default (on for awac, whose critic has no entropy term)."""
    algo_settings: dict[str, Any] = field(default_factory=dict)
    """The algorithm's own settings given (fields of its settings class, e.g. awac's ``lam``): ``--set lam=0.3``; the
    others take the algorithm's defaults."""
    allow_pickle: bool = False
    """Allow reading pickle-based demonstration files (only for files you trust)."""
    num_threads: int | None = 1
    """torch CPU threads; 1 by default: 256-wide networks gain little from more and lose badly on busy cores."""

    def __post_init__(self) -> None:
        # Every setting typed by its declaration however it was given (a file, --set, the API): see typed().
        typed_fields(self, TrainConfig)
        algorithm = ALGORITHMS.get(self.algo)
        if algorithm is not None and algorithm.settings is not None:
            own = field_types(algorithm.settings)
            object.__setattr__(self, "algo_settings", {k: typed(k, v, own[k]) if k in own else v
                                                       for k, v in self.algo_settings.items()})

    @property
    def prior_kind(self) -> str | None:
        """'gp', 'nn', 'gp-mean-nn-std' or None (sac and the baselines)."""
        return get_algorithm(self.algo).prior_kind

    @property
    def algorithm(self) -> Algorithm:
        """How the training loop runs ``algo`` (its entry in the algorithm table)."""
        return get_algorithm(self.algo)

    def validate(self) -> Self:
        """Raise a one-line :class:`NppacError` for an impossible setting; returns self."""
        get_task(self.task)
        algorithm = get_algorithm(self.algo)
        if not isinstance(self, ResolvedConfig):  # which fills the fields its algorithm does not read, unused
            unread = [f.name for f in dataclasses.fields(TrainConfig)
                      if not algorithm.reads_setting(f.name) and getattr(self, f.name) != f.default]
            if unread:
                raise NppacError(algorithm.refusal(unread[0]))
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise NppacError(f"unknown device {self.device!r}; choose cpu or cuda")
        for name, choices in (("actor", ACTOR_KINDS), ("warmup", WARMUPS), ("prior_sigma", SIGMA_CONVENTIONS),
                              ("auto_alpha_target", AUTO_ALPHA_TARGETS),
                              ("kl_anchor", KL_ANCHORS), ("second_actor", SECOND_ACTORS),
                              ("second_actor_choice", SECOND_ACTOR_CHOICES),
                              ("prior_variance", VARIANCE_ESTIMATES), ("prior_convention", tuple(PRIOR_CONVENTIONS)),
                              ("prior_kernel", tuple(KERNELS)),
                              ("preset", PRESETS),
                              ("hand_protocol", tuple(HAND_PROTOCOLS)), ("binary_reward", tuple(BINARY_REWARDS))):
            value = getattr(self, name)
            if value is not None and value not in choices:
                raise NppacError(f"config field {name}={value!r}; choose one of: {', '.join(choices)}")
        for name, (lo, hi, lo_open, hi_open) in RANGES.items():
            values = getattr(self, name)
            if values == ():
                raise NppacError(f"config field {name}=() is empty: give at least one layer width")
            for value in values if isinstance(values, tuple) else (values,):
                if value is None:
                    continue
                if value != value or (value <= lo if lo_open else value < lo) \
                        or (hi is not None and (value >= hi if hi_open else value > hi)):
                    raise NppacError(f"config field {name}={value!r} is out of range: "
                                     f"must be {_describe(lo, hi, lo_open, hi_open)}")
        if get_task(self.task).reward != "binary":
            given = [name for name in ("hand_protocol", "binary_reward") if getattr(self, name) is not None]
            if given:
                raise NppacError(f"config field {given[0]} applies to the binary hand tasks only, not to {self.task}")
        if self.prior_convention is not None:
            for name, value in zip(("prior_sigma", "prior_variance"), PRIOR_CONVENTIONS[self.prior_convention]):
                if getattr(self, name) not in (None, value):
                    raise NppacError(f"prior_convention={self.prior_convention} sets {name}={value}, but "
                                     f"{name}={getattr(self, name)} was given; drop one of the two")
        shared = {f.name for f in dataclasses.fields(self)}
        clash = sorted(set(self.algo_settings) & shared)
        if clash:
            raise NppacError(f"algo_settings may not hold TrainConfig fields ({', '.join(clash)}); set them directly")
        algorithm.make_settings(self.algo_settings)
        if self.steps < self.steps_per_epoch:
            raise NppacError(f"steps={self.steps} is less than one epoch (steps_per_epoch={self.steps_per_epoch})")
        if self.kl_anchor == "init-actor" and self.init_epochs == 0 and not self.init_actor:
            raise NppacError("kl_anchor=init-actor anchors the KL to the initialized policy, and init_epochs=0 "
                             "without init_actor leaves none; initialize the policy or use kl_anchor=prior")
        self._validate_second_actor()
        if self.demo_batch_fraction > 0 and self.batch_size is not None \
                and not 0 < demo_count(self.demo_batch_fraction, self.batch_size) < self.batch_size:
            raise NppacError(f"demo_batch_fraction={self.demo_batch_fraction} of batch_size={self.batch_size} takes "
                             f"{demo_count(self.demo_batch_fraction, self.batch_size)} demonstration transitions per "
                             "batch; choose a fraction that leaves both parts at least one")
        if self.auto_alpha_target is not None and self.target_kl is not None:
            raise NppacError(f"auto_alpha_target={self.auto_alpha_target} sets the KL target; drop target_kl "
                             f"({self.target_kl}) or auto_alpha_target")
        if self.auto_alpha and self.prior_kind is not None and self.target_kl is None \
                and self.auto_alpha_target is None:
            raise NppacError(f"auto_alpha with algo {self.algo} needs a target KL: --set target_kl=VALUE")
        seed_demos = _or(self.seed_demos, algorithm.seed_demos)
        offline_updates = _or(self.offline_updates, algorithm.offline_updates)
        if not algorithm.online_updates and not (offline_updates and seed_demos):
            raise NppacError(f"algo {self.algo} learns only from the demonstrations before interaction; "
                             f"it needs seed_demos=true and offline_updates > 0 (got {seed_demos}, {offline_updates})")
        if offline_updates and not seed_demos:
            raise NppacError(f"offline_updates={offline_updates} trains on the demonstrations in the replay buffer; "
                             "add --set seed_demos=true (or --set offline_updates=0)")
        return self

    def _validate_second_actor(self) -> None:
        """The second actor's settings: it needs a prior (and an initialized policy for init-actor), the cached μ0
        for prior-mean, and a softmax for its choice settings."""
        if self.second_actor == "none":
            if self.second_actor_choice != "greedy" or self.second_actor_temperature != 1.0:
                raise NppacError("second_actor_choice and second_actor_temperature choose the second actor's action; "
                                 "set second_actor=prior-mean or init-actor")
            return
        if self.prior_kind is None:
            raise NppacError(f"second_actor={self.second_actor} proposes an action from the prior or the policy "
                             f"initialized toward it; algo {self.algo} has no prior")
        if self.second_actor == "init-actor" and self.init_epochs == 0 and not self.init_actor:
            raise NppacError("second_actor=init-actor proposes the initialized policy's action, and init_epochs=0 "
                             "without init_actor leaves none; initialize the policy or use second_actor=prior-mean")
        if self.second_actor_choice != "softmax" and self.second_actor_temperature != 1.0:
            raise NppacError(f"second_actor_temperature={self.second_actor_temperature} applies to "
                             "second_actor_choice=softmax only")

    def resolved(self) -> ResolvedConfig:
        """A copy with every ``None`` default filled in: from the preset, then the algorithm, then the task."""
        task = get_task(self.validate().task)
        d = task.defaults
        algorithm = self.algorithm
        cfg = self
        if cfg.preset is not None:
            given = preset_settings(cfg.preset, cfg.task, task.family, cfg.algo, algorithm.prior_kind is not None)
            cfg = dataclasses.replace(cfg, **{k: v for k, v in given.items()
                                              if getattr(cfg, k) is None and algorithm.reads_setting(k)}).validate()
        own = {k: v for k, v in algorithm.defaults_for(task.family).items() if getattr(cfg, k) is None}
        cfg = dataclasses.replace(cfg, **own)
        protocol = HAND_PROTOCOLS[_or(cfg.hand_protocol, algorithm.hand_protocol)] if task.family == "hand" else None
        sigma, variance = PRIOR_CONVENTIONS.get(cfg.prior_convention or "", (None, None))
        return ResolvedConfig(**{
            **{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)},
            "hand_protocol": None if protocol is None else protocol.name,
            "binary_reward": None if protocol is None else _or(cfg.binary_reward, protocol.binary_reward),
            "timeout_terminal": _or(cfg.timeout_terminal, False if protocol is None else protocol.timeout_terminal),
            "eval_horizon": _or(cfg.eval_horizon, _or(cfg.horizon, task.horizon)),
            "prior_variance": _or(cfg.prior_variance, _or(variance, "exact")),
            "warmup": _or(cfg.warmup, algorithm.warmup),
            "offline_updates": _or(cfg.offline_updates, algorithm.offline_updates),
            "offline_batch_size": _or(cfg.offline_batch_size,
                                      _or(algorithm.offline_batch_size, _or(cfg.batch_size, d.batch_size))),
            "seed_demos": _or(cfg.seed_demos, algorithm.seed_demos),
            "bound_q": _or(cfg.bound_q, algorithm.bound_q),
            "eval_episodes": _or(cfg.eval_episodes, task.eval_episodes),
            "horizon": _or(cfg.horizon, task.horizon if protocol is None else protocol.horizon(task)),
            "batch_size": _or(cfg.batch_size, d.batch_size),
            "alpha": _or(cfg.alpha, d.alpha),
            "target_entropy": _or(cfg.target_entropy, -float(task.act_dim)),
            "actor": _or(cfg.actor, d.actor),
            "actor_hidden": _or(cfg.actor_hidden, tuple(d.actor_hidden)),
            "init_epochs": _or(cfg.init_epochs, 0 if cfg.init_actor is not None else d.init_epochs),
            "prior_kernel": _or(cfg.prior_kernel, d.kernel),
            "prior_sigma": _or(cfg.prior_sigma, _or(sigma, d.prior_sigma)),
        }).validate()

    @property
    def task_spec(self) -> Task:
        return get_task(self.task)

    @property
    def n_epochs(self) -> int:
        return self.steps // self.steps_per_epoch

    def to_dict(self) -> dict[str, Any]:
        """The settings its algorithm reads, by name, after the schema version (:data:`CONFIG_SCHEMA`): a run's
        ``config.json``."""
        algorithm = self.algorithm
        return {"schema": CONFIG_SCHEMA,
                **{k: v for k, v in dataclasses.asdict(self).items() if algorithm.reads_setting(k)}}

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_dict` to ``path`` (a run's ``config.json``), naming the files inside its directory
        relative to it, so that the run still reads them once moved (:meth:`load`), and others by absolute path."""
        home = Path(path).parent.resolve()

        def named(value: str) -> str:
            file = Path(value).resolve()
            return str(file.relative_to(home) if file.is_relative_to(home) else file)

        write_atomic(path, json.dumps(_with_paths(self.to_dict(), named), indent=2) + "\n")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a stored dict (a run's ``config.json``, a suite manifest's run) in this version's form
        (:func:`migrate`), each value typed by its field (:func:`typed`); a key that is no setting, or one its
        algorithm does not read, raises :class:`NppacError`."""
        for key in set(_without_removed(data)) & set(REMOVED_SETTINGS):
            raise _removed(key)
        data = migrate(data)
        algorithm = get_algorithm(typed("algo", data.get("algo", cls.algo), str))
        known = {f.name for f in dataclasses.fields(cls)}
        unread = [k for k in data if (k in known or k in INSTEAD) and not algorithm.reads_setting(k)]
        if unread:
            raise NppacError(algorithm.refusal(unread[0]))
        unknown = sorted(set(data) - known)
        if unknown:
            raise NppacError(f"unknown config key(s): {', '.join(unknown)} (written by another nppac version? rename "
                             "or remove the key to match `nppac train --help` / TrainConfig)")
        return cls(**data)

    @classmethod
    def set_keys(cls, algo: str) -> list[str]:
        """Every ``--set`` key for ``algo``: the TrainConfig fields it reads, then its own settings."""
        algorithm = get_algorithm(algo)
        return [f.name for f in dataclasses.fields(cls) if f.name != "algo_settings" and
                algorithm.reads_setting(f.name)] + list(own_settings(algorithm))

    @classmethod
    def hint(cls, key: str, algo: str | None) -> Any:
        """The declared type of setting ``key`` (a TrainConfig field ``algo`` reads, or its own; any TrainConfig
        field for ``algo`` None); unknown keys and those ``algo`` does not read are refused."""
        hints = field_types(TrainConfig)
        if algo is None and key in hints and key != "algo_settings":
            return hints[key]
        if key in REMOVED_SETTINGS:
            raise _removed(key)
        algorithm = get_algorithm(algo or TrainConfig.algo)
        if key in own_settings(algorithm):
            return field_types(algorithm.settings)[key]
        if key in INSTEAD or (key in hints and key != "algo_settings"):
            if algorithm.reads_setting(key) and key in hints:
                return hints[key]
            raise NppacError(algorithm.refusal(key))
        raise NppacError(f"unknown config key {key!r} for algo {algorithm.name}; known keys: "
                         f"{', '.join(cls.set_keys(algorithm.name))}")

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """A stored run config; settings added since it was written take the values that run used."""
        data = read_stored(path)
        if "schema" in data:  # its paths are relative to it (:meth:`save`); earlier ones to where the run started
            data = _with_paths(data, lambda value: str(Path(path).parent.resolve() / value))
        try:
            return cls.from_dict(data)
        except NppacError as err:
            raise NppacError(f"{path}: {err}") from None

    @classmethod
    def from_file(cls, path: str | Path) -> tuple[TrainConfig, set[str]]:
        """A run described in a file, and the keys the file sets: a run's ``config.json``, or a ``.toml`` like a
        suite cell (any setting at the top level or in a ``[settings]`` table, which wins; relative paths from the
        file's directory). Unknown keys and values of another type than the setting's are refused in one line.
        """
        path = Path(path)
        if path.suffix == ".json":
            cfg = cls.load(path)
            return cfg, set(read_stored(path))
        if path.suffix != ".toml":
            raise NppacError(f"--config {path}: expected a .toml run file or a run's config.json")
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise NppacError(f"cannot read run file {path}: {err}") from None
        settings = data.pop("settings", {})
        if not isinstance(settings, dict):
            raise NppacError(f"{path}: settings must be a table ([settings]), got {settings!r}")
        merged = _with_paths({**data, **settings}, lambda value: str(path.parent / Path(value).expanduser()))
        try:
            return cls().with_values(merged), set(merged)
        except NppacError as err:
            raise NppacError(f"{path}: {err}") from None

    def with_values(self, values: dict[str, Any]) -> TrainConfig:
        """These settings by name, as a file or the API gives them: TrainConfig's fields, and the algorithm's own
        settings (into ``algo_settings``), each typed by its declaration (:func:`typed`); unknown keys are refused."""
        algo = typed("algo", values.get("algo", self.algo), str)
        values = {current_name(k, algo): v for k, v in values.items()}
        for key in values:
            self.hint(key, algo)
        own = {k: v for k, v in values.items() if k not in field_types(TrainConfig) or k == "algo_settings"}
        return dataclasses.replace(self, **{k: v for k, v in values.items() if k not in own},
                                   algo_settings={**self.algo_settings, **own})

    def with_overrides(self, pairs: list[str]) -> TrainConfig:
        """Apply ``key=value`` strings (``--set``), each read by the setting's type (:func:`parsed`); the algorithm's
        own settings land in ``algo_settings``."""
        values: dict[str, Any] = {}
        for pair in pairs:
            key, sep, text = pair.partition("=")
            key = key.strip()
            if not sep:
                raise NppacError(f"--set expects key=value, got {pair!r}")
            algo = values.get("algo", self.algo)
            key = current_name(key, algo)
            values[key] = parsed(key, text.strip(), self.hint(key, algo))
        return self.with_values(values)


@dataclass(frozen=True, kw_only=True)
class ResolvedConfig(TrainConfig):
    """The settings a run trains with: a :class:`TrainConfig` with every default filled in (by its ``resolved()``).

    Its fields are TrainConfig's, in the same order (so is its ``config.json``); those a default always fills are
    typed here without ``None``. Those still optional are so by meaning (no hand protocol off the hand tasks, …).
    """

    warmup: Warmup
    offline_updates: int
    offline_batch_size: int
    eval_episodes: int
    horizon: int
    eval_horizon: int
    binary_reward: BinaryRewardName | None
    timeout_terminal: bool
    batch_size: int
    alpha: float
    target_entropy: float
    actor: ActorKind
    actor_hidden: tuple[int, ...]
    init_epochs: int
    seed_demos: bool
    prior_kernel: str
    prior_sigma: SigmaConvention
    prior_variance: VarianceEstimate
    bound_q: bool

    def algo_config(self) -> Any:
        """The algorithm's own settings object (None for algorithms without one)."""
        return self.algorithm.make_settings(self.algo_settings, **_derived_settings(self))


def own_settings(algorithm: Algorithm) -> tuple[str, ...]:
    """The ``--set`` keys ``algorithm`` adds to TrainConfig's: the fields of its settings class TrainConfig lacks."""
    if algorithm.settings is None:
        return ()
    shared = {f.name for f in dataclasses.fields(TrainConfig)}
    return tuple(f.name for f in dataclasses.fields(algorithm.settings) if f.name not in shared)


def _derived_settings(cfg: ResolvedConfig) -> dict[str, Any]:
    """The values an algorithm's settings take from TrainConfig (shared hyperparameters, batch sizes) and from its
    defaults on the task's family."""
    return {**cfg.algorithm.family_settings.get(cfg.task_spec.family, {}), "gamma": cfg.gamma, "tau": cfg.tau,
            "actor_lr": cfg.actor_lr, "critic_lr": cfg.critic_lr,
            # SAC+BC: as many demonstration pairs per step as replay transitions, so both halves of its
            # actor loss see equal batches.
            "demo_batch_size": cfg.batch_size}


def current_name(key: str, algo: str) -> str:
    """Setting ``key``'s name now: an old name (:data:`RENAMED`) maps to the new one, with a deprecation warning, for
    the algorithms that read it under the old name (others refuse it, naming the one they read)."""
    new, group = RENAMED.get(key, (key, ""))
    if new == key or group not in get_algorithm(algo).reads:
        return key
    warnings.warn(f"setting {key} is now called {new}; {key} will be refused by a later version", FutureWarning,
                  stacklevel=3)
    return new


def read_stored(path: str | Path) -> dict[str, Any]:
    """A stored run config as written (a run's ``config.json``), refused in one line unless it is a JSON object."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise NppacError(f"cannot read run config {path}: {err}") from None
    if not isinstance(data, dict):
        raise NppacError(f"run config {path} is not a JSON object; restore it or start a new run")
    return data


def migrate(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored config (a run's ``config.json``, a checkpoint's or a suite manifest's copy) in this version's form:
    the one place that reads what earlier versions wrote.

    Settings added since it was written take their defaults. Written before schemas (nppac 0.1's runs, which recorded
    every field): settings added since take the values those runs ran with (hand tasks on AWAC's protocol, time
    limits bootstrapped, the exact GP variance, evaluation over the training horizon), renamed settings
    (:data:`RENAMED`) move to their new name where the algorithm read them, and the fields it does not read are
    dropped. Keys that are no setting are left for :meth:`TrainConfig.from_dict` to refuse.
    """
    data = _without_removed(dict(stored))
    schema = data.pop("schema", 1)
    if isinstance(schema, bool) or not isinstance(schema, int) or schema < 1:
        raise NppacError(f"config schema {schema!r} is not a schema version (a whole number from 1 to "
                         f"{CONFIG_SCHEMA}); was the file edited? restore it or start a new run")
    if schema > CONFIG_SCHEMA:
        raise NppacError(f"config schema {schema!r} is newer than this nppac's ({CONFIG_SCHEMA}); "
                         "read it with the nppac version that wrote it")
    algorithm = ALGORITHMS.get(str(data.get("algo", TrainConfig.algo)))
    try:
        family = get_task(str(data.get("task", TrainConfig.task))).family
    except NppacError:
        family = None
    if schema < 2 and algorithm is not None:
        filled: dict[str, Any] = {"timeout_terminal": False, "prior_variance": "exact",
                                  "eval_horizon": data.get("horizon")}
        if family == "hand":
            filled |= {"hand_protocol": "awac", "binary_reward": "minus_one_zero"}
        data = {**filled, **data}
        own = dict(data.get("algo_settings") or {})
        for old, (new, group) in RENAMED.items():
            value = data.pop(old, None)
            default = algorithm.family_settings.get(family or "", {}).get(new, _own_default(algorithm, new))
            if group in algorithm.reads and new not in own and json.dumps(value) != json.dumps(default):
                own[new] = value
        data["algo_settings"] = own
        shared = {f.name for f in dataclasses.fields(TrainConfig)}
        data = {k: v for k, v in data.items() if k not in shared or algorithm.reads_setting(k)}
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING
                and (algorithm is None or algorithm.reads_setting(f.name))}
    return {**defaults, **data}


def _own_default(algorithm: Algorithm, name: str) -> Any:
    fields = {f.name: f.default for f in dataclasses.fields(algorithm.settings)} if algorithm.settings else {}
    return fields.get(name)


RANGES: dict[str, tuple[float, float | None, bool, bool]] = {
    # field: (low, high, low open, high open); None: no upper bound. Tuples are checked element-wise.
    "seed": (0, 2**32 - 1, False, False),
    "love_seed": (0, 2**32 - 1, False, False),
    "steps": (1, None, False, False),
    "steps_per_epoch": (1, None, False, False),
    "updates_per_epoch": (0, None, False, False),
    "warmup_steps": (0, None, False, False),
    "offline_updates": (0, None, False, False),
    "offline_batch_size": (1, 65_536, False, False),
    "offline_eval_every": (1, None, False, False),
    "eval_every": (1, None, False, False),
    "eval_episodes": (1, None, False, False),
    "horizon": (1, None, False, False),
    "replay_capacity": (1, None, False, False),
    "batch_size": (1, 65_536, False, False),
    "gamma": (0.0, 1.0, False, True),
    "tau": (0.0, 1.0, True, False),
    "actor_lr": (0.0, None, True, False),
    "critic_lr": (0.0, None, True, False),
    "alpha": (0.0, None, True, False),
    "alpha_lr": (0.0, None, True, False),
    "target_kl": (0.0, None, False, False),
    "actor_hidden": (1, 65_536, False, False),
    "critic_hidden": (1, 65_536, False, False),
    "init_epochs": (0, None, False, False),
    "init_batch_size": (1, 65_536, False, False),
    "prior_iters": (1, None, False, False),
    "eval_horizon": (1, None, False, False),
    "second_actor_temperature": (0.0, None, True, False),
    "demo_batch_fraction": (0.0, 1.0, False, True),
    "love_rank": (1, None, False, False),
    "num_threads": (0, 1024, False, False),
    "max_clipped_actions": (0.0, 1.0, False, False),
}
"""The valid range of every numeric setting, in one place (checked by :meth:`TrainConfig.validate`)."""


def _describe(lo: float, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    low = f"{'>' if lo_open else '≥'} {lo}"
    return low if hi is None else f"{low} and {'<' if hi_open else '≤'} {hi}"


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value
