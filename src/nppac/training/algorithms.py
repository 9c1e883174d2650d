"""The algorithm table: every algorithm the training loop runs, registered once.

An entry names the algorithm and its kind of reference policy, names the groups of shared settings it reads
(:data:`SETTING_GROUPS`; a setting it does not read is refused, and its ``config.json`` records none), gives its own
settings (a config dataclass whose fields ``--set`` reaches: ``--set lam=0.3`` for awac), builds its agent, and says
where its use of the one shared loop differs: whether the demonstrations are seeded into the replay buffer, how many
gradient steps it takes on them before interaction and on what batches, how the first steps are collected, whether it
learns online, whether its critics are bounded, and which defaults it changes. Add an algorithm by writing its agent
in ``nppac/agents/`` and one entry here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from nppac.agents.awac import AWAC, AWACConfig
from nppac.agents.base import Agent
from nppac.agents.bc import BC, BCConfig
from nppac.agents.kl_sac import KLSAC, KLSACConfig, PriorMean
from nppac.agents.networks import ActorKind, check_log_std_range
from nppac.agents.sac_bc import SACBC, DemoSampler, SACBCConfig
from nppac.data.demos import Demonstrations
from nppac.errors import NppacError

DemoLoader = Callable[[], Demonstrations]
"""Loads the run's demonstrations on first call (only algorithms that read them call it)."""

Warmup = Literal["policy", "uniform"]
WARMUPS: tuple[str, ...] = ("policy", "uniform")

ABLATION_PRIOR = "gp-mean-nn-std"
"""The variance ablation's reference policy: the GP's mean with the NN's σ0 (:mod:`nppac.priors.mean_std`)."""

SETTING_GROUPS: dict[str, tuple[str, ...]] = {
    "online": ("updates_per_epoch", "warmup_steps", "warmup"),
    "critics": ("gamma", "tau", "critic_lr", "critic_hidden", "bound_q"),
    "temperature": ("alpha", "auto_alpha", "alpha_lr"),
    "entropy": ("target_entropy",),
    "prior": ("prior", "prior_iters", "prior_sigma", "prior_variance", "prior_convention", "target_kl",
              "init_epochs", "init_batch_size"),
    "gp": ("prior_kernel", "prior_gpytorch", "love_rank", "love_seed"),
    "remedies": ("critic_warmstart_steps", "critic_warmstart_data", "critic_layernorm", "actor_delay_updates",
                 "demo_batch_fraction"),
    "anchors": ("auto_alpha_target", "kl_anchor", "second_actor", "second_actor_choice", "second_actor_temperature"),
}
"""The TrainConfig fields that only some algorithms read, by group; an algorithm names the groups it reads
(``Algorithm.reads``). Every other field (task, seed, steps, schedule, evaluation, replay, actor, demonstrations,
device) is read by every algorithm. online: steps of learning while interacting; critics: the Q-functions;
temperature: α of the KL-SAC family; entropy: SAC's target without a prior; prior: π0, its σ0 convention and the
policy initialization toward it; gp: a GP prior fitted here; remedies and anchors: the KL-SAC remedies (anchors read
the prior or the policy initialized toward it)."""

INSTEAD: dict[str, str] = {"target_kl": "target_entropy", "target_entropy": "target_kl",
                           "actor_log_std_range": "log_std_range"}
"""Settings of one concept under another algorithm's name: a refusal names the one the algorithm reads."""


@dataclass(frozen=True)
class AgentSpec:
    """What a builder reads of a run, made from its resolved configuration (:func:`nppac.training.setup.agent_spec`)."""

    obs_dim: int
    act_dim: int
    actor: ActorKind
    actor_hidden: tuple[int, ...]
    critic_hidden: tuple[int, ...]
    q_bounds: tuple[float, float] | None
    """Clamp of the critics, [r_min, r_max] / (1 − γ), where the run bounds them."""
    kl_sac: KLSACConfig
    """The KL-SAC hyperparameters (read by the builders of the KL-SAC family only)."""
    settings: Any
    """The algorithm's own settings object (None for algorithms without one)."""
    demos: DemoLoader
    """The run's demonstrations on demand (only algorithms that read them call it)."""
    device: torch.device
    prior_mean: PriorMean | None = None
    """clip(μ0(s)) at new states, where the run has a prior (the KL-SAC second actor ``prior-mean`` proposes it)."""


@dataclass(frozen=True)
class Algorithm:
    """One algorithm: its name, prior kind, own settings, agent builder and how the shared loop runs it."""

    name: str
    summary: str
    """One line for ``nppac train --help`` and the docs."""
    build: Callable[[AgentSpec], Agent]
    """The agent for what the run gives it (dimensions, networks, hyperparameters, demonstrations, device)."""
    prior_kind: str | None = None
    """Kind of reference policy cached in its replay buffer: gp, nn, gp-mean-nn-std, or None."""
    settings: type | None = None
    """Dataclass of the algorithm's own settings; its fields are ``--set`` keys (stored in ``algo_settings``)."""
    seed_demos: bool = False
    """Default of ``seed_demos``: put D0 into the replay buffer before training."""
    offline_updates: int = 0
    """Default of ``offline_updates``: gradient steps on the seeded buffer before interaction."""
    offline_batch_size: int | None = None
    """Default of ``offline_batch_size`` (None: the online batch size)."""
    warmup: Warmup = "policy"
    """Default of ``warmup``: who collects the first ``warmup_steps``: the (initialized) policy, or uniform actions."""
    online_updates: bool = True
    """Whether it takes gradient steps while interacting (BC does not: it learns from D0 only)."""
    bound_q: bool = False
    """Default of ``bound_q``: clamp the critics to the returns' range where the task's reward range is known.

    Sound only for critics without an entropy or KL term in their target (AWAC's α = 0)."""
    reads: tuple[str, ...] = ()
    """The groups of :data:`SETTING_GROUPS` it reads, beside the settings every algorithm reads."""
    hand_protocol: str = "nppac"
    """Default of ``hand_protocol`` on hand tasks: the published training protocol of the paper whose numbers the
    algorithm's comparison reproduces (N-PPAC's for the KL-SAC family, AWAC's for awac and bc)."""
    defaults: dict[str, Any] = field(default_factory=dict)
    """TrainConfig fields whose default this algorithm changes (before the task's defaults apply)."""
    family_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Task family (locomotion, hand) → TrainConfig defaults of this algorithm on that family, over ``defaults``."""
    family_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Task family → defaults of the algorithm's own settings on that family (``--set`` still overrides them)."""

    def reads_setting(self, name: str) -> bool:
        """Whether a run of this algorithm reads TrainConfig field ``name``."""
        return not any(name in fields and group not in self.reads for group, fields in SETTING_GROUPS.items())

    def refusal(self, name: str) -> str:
        """Why setting ``name`` is refused for this algorithm, in one line, naming what it reads instead."""
        other = INSTEAD.get(name)
        if other is not None and (self.reads_setting(other) or other in own_settings_of(self)):
            return f"{self.name} reads {other}, not {name}"
        readers = [a.name for a in _TABLE if a.reads_setting(name)]
        return f"{self.name} does not read {name} (read by {', '.join(readers)}); drop it or choose one of those"

    def defaults_for(self, family: str) -> dict[str, Any]:
        """TrainConfig defaults of this algorithm on a task of ``family``."""
        return {**self.defaults, **self.family_defaults.get(family, {})}

    def make_settings(self, values: dict[str, Any], **given: Any) -> Any:
        """The settings object from ``given`` (values the loop derives) and the run's ``algo_settings``."""
        if self.settings is None:
            if values:
                raise NppacError(f"algo {self.name} has no settings of its own; got {', '.join(values)}")
            return None
        known = {f.name for f in dataclasses.fields(self.settings)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise NppacError(f"unknown setting(s) {', '.join(unknown)} for algo {self.name}; its own settings are: "
                             f"{', '.join(sorted(known - set(given)))}")
        settings = self.settings(**{**{k: v for k, v in given.items() if k in known}, **values})
        return settings.validate() if hasattr(settings, "validate") else settings


def own_settings_of(algorithm: Algorithm) -> tuple[str, ...]:
    """The field names of ``algorithm``'s own settings class (none without one)."""
    return () if algorithm.settings is None else tuple(f.name for f in dataclasses.fields(algorithm.settings))


@dataclass(frozen=True)
class KLSACSettings:
    """The KL-SAC actors' own setting (their other hyperparameters are TrainConfig's)."""

    log_std_range: tuple[float, float] | None = None
    """One learned log σ per action dimension in [low, high] (rlkit's std_architecture="values") instead of a
    state-dependent log σ clamped to [−20, 2] (sac on hand tasks: −6,0)."""

    def validate(self) -> KLSACSettings:
        """Raise a one-line :class:`NppacError` for an impossible setting; returns self."""
        check_log_std_range(self.log_std_range)
        return self


def _kl_sac(spec: AgentSpec) -> KLSAC:
    return KLSAC(spec.obs_dim, spec.act_dim, spec.actor, spec.actor_hidden, spec.critic_hidden, spec.kl_sac,
                 spec.device, q_bounds=spec.q_bounds, log_std_range=spec.settings.log_std_range,
                 prior_mean=spec.prior_mean)


def _sac_bc(spec: AgentSpec) -> SACBC:
    d = spec.demos()
    sampler = DemoSampler(torch.as_tensor(d.states, device=spec.device),
                          torch.as_tensor(d.actions, device=spec.device))
    return SACBC(_kl_sac(spec), sampler, spec.settings)


def _awac(spec: AgentSpec) -> AWAC:
    return AWAC(spec.obs_dim, spec.act_dim, spec.actor, spec.actor_hidden, spec.critic_hidden, spec.settings,
                spec.device, q_bounds=spec.q_bounds)


def _bc(spec: AgentSpec) -> BC:
    return BC(spec.obs_dim, spec.act_dim, spec.actor, spec.actor_hidden, spec.settings, spec.device)


_KL_SAC_READS = ("online", "critics", "temperature", "prior", "remedies", "anchors")

_TABLE = [
    Algorithm("nppac", "N-PPAC: KL-regularized SAC toward a GP reference policy", _kl_sac, prior_kind="gp",
              settings=KLSACSettings, reads=(*_KL_SAC_READS, "gp")),
    Algorithm("ppac-nn", "PPAC with an MLE neural reference policy (BRAC-style, the pathological baseline)",
              _kl_sac, prior_kind="nn", settings=KLSACSettings, reads=_KL_SAC_READS),
    Algorithm("nppac-nn-std", "the variance ablation: N-PPAC toward a prior with the GP's mean and the NN's σ0",
              _kl_sac, prior_kind=ABLATION_PRIOR, settings=KLSACSettings, reads=(*_KL_SAC_READS, "gp")),
    # Without a prior nothing bounds the entropy bonus −α log π of the hand tasks' untanh-ed Gaussian: its
    # state-dependent log σ runs to the clamp's 2 (σ ≈ 7.4 on a [−1, 1] action box) within an epoch and the
    # critics, trained at such actions, diverge (pen-binary sac-bc: Q 518 → 46,545 in 3 epochs). So the
    # prior-free SAC variants take AWAC's and BC's policy there: one log σ per dimension in [−6, 0].
    Algorithm("sac", "soft actor-critic, no reference policy", _kl_sac, warmup="uniform", settings=KLSACSettings,
              reads=("online", "critics", "temperature", "entropy", "remedies"),
              family_settings={"hand": {"log_std_range": (-6.0, 0.0)}}),
    # SAC+BC's soft Q includes −α log π, which the returns' range does not bound: no clamp by default.
    Algorithm("sac-bc", "SAC plus a behaviour-cloning log-likelihood term on demonstration batches", _sac_bc,
              settings=SACBCConfig, warmup="uniform", reads=("online", "critics", "temperature", "entropy"),
              family_settings={"hand": {"log_std_range": (-6.0, 0.0)}}),
    # The public AWAC configurations (rlkit examples/awac/hand and examples/awac/mujoco; docs/baselines.md):
    # rlkit's GaussianPolicy (tanh on the mean, state-independent log σ) on every task, offline steps on
    # batches of 128 (rlkit's bc_batch_size), critics clamped to the returns' range where it is known.
    # Hand: 25,000 offline steps, a 2 × 256 policy, λ = 0.5, advantages clipped at 0.5, V at the mean.
    # Locomotion: 50,000 offline steps, a 4 × 256 policy, batch 1024, λ = 2, no clip, V at a sampled action.
    Algorithm("awac", "AWAC: advantage-weighted actor-critic, offline pretraining then online", _awac,
              settings=AWACConfig, seed_demos=True, offline_updates=25_000, offline_batch_size=128, bound_q=True,
              hand_protocol="awac", reads=("online", "critics"),
              defaults={"actor": "gaussian_tanh_mean"},
              family_defaults={"hand": {"actor_hidden": (256, 256)},
                               "locomotion": {"actor_hidden": (256, 256, 256, 256), "batch_size": 1024,
                                              "offline_updates": 50_000}},
              family_settings={"locomotion": {"lam": 2.0, "score_clip": float("inf"), "value_at_mean": False}}),
    # BC's policy is AWAC's: a tanh-squashed Gaussian cannot fit demonstrations recorded at the action bounds
    # (23 % of halfcheetah's bundled action entries are ±1, where atanh diverges).
    Algorithm("bc", "behavioural cloning: the actor fitted to the demonstrations, evaluated by its mean action",
              _bc, settings=BCConfig, seed_demos=True, offline_updates=10_000, online_updates=False,
              hand_protocol="awac",
              defaults={"actor": "gaussian_tanh_mean"}),
]

ALGORITHMS: dict[str, Algorithm] = {a.name: a for a in _TABLE}
"""Algorithm name → its entry: the one table of algorithms."""


def get_algorithm(name: str) -> Algorithm:
    """Look an algorithm up by name; unknown names raise a one-line :class:`NppacError`."""
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise NppacError(f"unknown algorithm {name!r}; choose one of: {', '.join(ALGORITHMS)}") from None


def run_uses_prior(config: dict[str, Any]) -> bool:
    """Whether the run of a ``config.json`` (read as a dict) trained against a reference policy: its algorithm's
    entry says so, however the prior was passed (a path in ``prior``, or an object, which leaves it empty)."""
    algorithm = ALGORITHMS.get(str(config.get("algo")))
    if algorithm is not None:
        return algorithm.prior_kind is not None
    return config.get("prior") is not None
