"""Losses and update steps of the agents: KL-regularized SAC (nppac / ppac-nn / sac)."""

from nppac.agents.kl_sac import (
    ALGOS,
    METRIC_TERMS,
    METRICS,
    KLSAC,
    KLSACConfig,
    critic_target,
    initialize_policy,
    kl_sac_update,
    policy_loss,
    prior_log_prob,
)
from nppac.agents.networks import Actor, ActorKind, TwinCritic, load_actor, save_actor

__all__ = [
    "ALGOS",
    "METRICS",
    "METRIC_TERMS",
    "KLSAC",
    "KLSACConfig",
    "Actor",
    "ActorKind",
    "TwinCritic",
    "critic_target",
    "initialize_policy",
    "kl_sac_update",
    "load_actor",
    "policy_loss",
    "prior_log_prob",
    "save_actor",
]
