"""Losses and update steps of the agents: KL-regularized SAC (nppac / ppac-nn / sac), SAC+BC, AWAC and BC.

Each algorithm is a small config dataclass plus an update function over tensors; the
training loop drives any of them through the :class:`~nppac.agents.base.Agent` protocol.
"""

from nppac.agents.awac import AWAC, AWAC_METRICS, AWACConfig, advantage_weights, awac_policy_loss, awac_update
from nppac.agents.base import Agent, optimizer_step, soft_update
from nppac.agents.bc import BC, BC_METRICS, BCConfig, bc_loss, bc_update
from nppac.agents.kl_sac import (
    ALGOS,
    METRIC_TERMS,
    METRICS,
    KLSAC,
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
    SAC_BC_METRICS,
    SACBC,
    DemoSampler,
    SACBCConfig,
    demo_log_likelihood,
    sac_bc_policy_loss,
    sac_bc_update,
)

__all__ = [
    "ALGOS",
    "AWAC",
    "AWAC_METRICS",
    "BC",
    "BC_METRICS",
    "METRICS",
    "METRIC_TERMS",
    "KLSAC",
    "SACBC",
    "SAC_BC_METRICS",
    "AWACConfig",
    "Actor",
    "ActorKind",
    "Agent",
    "BCConfig",
    "DemoSampler",
    "KLSACConfig",
    "SACBCConfig",
    "TwinCritic",
    "advantage_weights",
    "awac_policy_loss",
    "awac_update",
    "bc_loss",
    "bc_update",
    "critic_step",
    "critic_target",
    "demo_log_likelihood",
    "initialize_policy",
    "kl_sac_update",
    "load_actor",
    "optimizer_step",
    "policy_loss",
    "prior_log_prob",
    "sac_bc_policy_loss",
    "sac_bc_update",
    "save_actor",
    "soft_update",
    "temperature_step",
]
