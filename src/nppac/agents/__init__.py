"""Losses and update steps of the agents: KL-regularized SAC (nppac / ppac-nn / sac), SAC+BC, AWAC and BC.

Each algorithm is a small config dataclass plus an update function over tensors that returns its metrics by name; the
training loop drives any of them through the :class:`~nppac.agents.base.Agent` protocol. The algorithms are
registered, once, in :mod:`nppac.training.algorithms`.
"""

from nppac.agents.awac import AWAC, AWAC_METRIC_TERMS, AWACConfig, advantage_weights, awac_policy_loss, awac_update
from nppac.agents.base import ActorCritic, Agent, Metrics, optimizer_step, soft_update
from nppac.agents.bc import BC, BC_METRIC_TERMS, BCConfig, bc_loss, bc_update
from nppac.agents.kl_sac import (
    KL_SAC_METRIC_TERMS,
    KLSAC,
    SAC_METRIC_TERMS,
    KLSACConfig,
    critic_step,
    critic_target,
    initialize_policy,
    kl_sac_update,
    policy_loss,
    prior_log_prob,
    temperature_step,
)
from nppac.agents.networks import Actor, ActorKind, TwinCritic, load_actor, save_actor
from nppac.agents.sac_bc import (
    SAC_BC_METRIC_TERMS,
    SACBC,
    DemoSampler,
    SACBCConfig,
    demo_log_likelihood,
    sac_bc_policy_loss,
    sac_bc_update,
)

__all__ = [
    "AWAC", "AWAC_METRIC_TERMS", "BC", "BC_METRIC_TERMS", "KL_SAC_METRIC_TERMS", "KLSAC", "SACBC",
    "SAC_BC_METRIC_TERMS", "SAC_METRIC_TERMS", "AWACConfig", "Actor", "ActorCritic", "ActorKind", "Agent", "BCConfig",
    "DemoSampler", "KLSACConfig", "Metrics", "SACBCConfig", "TwinCritic", "advantage_weights", "awac_policy_loss",
    "awac_update", "bc_loss", "bc_update", "critic_step", "critic_target", "demo_log_likelihood", "initialize_policy",
    "kl_sac_update", "load_actor", "optimizer_step", "policy_loss", "prior_log_prob", "sac_bc_policy_loss",
    "sac_bc_update", "save_actor", "soft_update", "temperature_step",
]
