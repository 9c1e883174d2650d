"""The prior as a second actor (a remedy beyond the paper, after PEX and IBRL): in every state the agent has two
candidate actions, the learning policy's and a fixed second one, and takes the one its critic values higher.

PEX (Zhang, Xu, Yu 2023) keeps the initial policy frozen beside the learner and picks between their actions by Q;
IBRL (Hu et al. 2023) lets an imitation policy propose an action both for acting and in the TD target. Here the
second action a₂(s) is

* ``prior-mean``: the prior's mean action clip(μ0(s), −1, 1) (in the gradient step: the μ0(s′) cached in the
  replay batch, so the step never asks the prior), or
* ``init-actor``: the initialized policy's mean action, from a frozen copy of it (the copy ``kl_anchor =
  "init-actor"`` anchors the KL to; the run saves it in every checkpoint).

With Q(s, a) = min_k Q_k(s, a), the rule that takes a₂ (c = 1) or the policy's action a_π (c = 0) is

    greedy:   c = 1[Q(s, a₂) > Q(s, a_π)]            (a tie keeps the policy's action)
    softmax:  c ~ Bernoulli(σ((Q(s, a₂) − Q(s, a_π)) / T)),  σ the logistic function, T the temperature

(the softmax over the two values exp(Q/T), drawn with torch's generator: the run's, seeded and checkpointed). It acts
in three places:

* collection: a_π ~ π(·|s) against a₂(s), compared by the critics, with the configured rule;
* the critic target, at s′: a′_π ~ π(·|s′) against a′₂ = a₂(s′), compared by the *target* critics Q̄, with the
  configured rule; the chosen second action carries no entropy or KL term (as in IBRL, whose target has none):

      y = r + γ (1 − done) [ (1 − c) (Q̄(s′, a′_π) − α (log π(a′_π|s′) − log π0(a′_π|s′)))  +  c Q̄(s′, a′₂) ]

* evaluation: the policy's mean action against a₂(s), greedily (deterministic).

The actor's own loss is unchanged: it learns from the critic as before, while the second action stays available
wherever the critic prefers it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from nppac.agents.networks import Actor, TwinCritic
from nppac.data.replay import Batch

SecondActorSource = Literal["prior-mean", "init-actor"]
SECOND_ACTORS: tuple[str, ...] = ("none", "prior-mean", "init-actor")
"""Settings of ``second_actor``: none (off), the prior's mean action, the frozen initialized policy's mean action."""
SecondActorChoice = Literal["greedy", "softmax"]
SECOND_ACTOR_CHOICES: tuple[str, ...] = ("greedy", "softmax")
"""How the second action is chosen in collection and in the critic target (evaluation is always greedy)."""

SECOND_SHARE_TERM = "share of s′ whose critic target took the second action"
"""The update's metric ``next_second_share``, described for the non-finite message."""


def choose_second(q_policy: torch.Tensor, q_second: torch.Tensor, choice: str, temperature: float = 1.0,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Where the second action is taken (a bool tensor of the values' shape): greedy 1[Q₂ > Q_π], or softmax c ~
    Bernoulli(σ((Q₂ − Q_π) / T)) with ``generator`` (None: torch's default generator)."""
    if choice == "greedy":
        return q_second > q_policy
    draw = torch.rand(q_policy.shape, generator=generator, device=q_policy.device, dtype=q_policy.dtype)
    return draw < torch.sigmoid((q_second - q_policy) / temperature)


def second_actor_target(reward: torch.Tensor, done: torch.Tensor, q_policy: torch.Tensor, penalty: torch.Tensor,
                        q_second: torch.Tensor, chosen: torch.Tensor, alpha: torch.Tensor | float,
                        gamma: float) -> torch.Tensor:
    """y = r + γ (1 − done) [(1 − c)(Q̄(s′, a′_π) − α (log π − log π0)(a′_π|s′)) + c Q̄(s′, a′₂)].

    ``penalty`` is log π(a′_π|s′) − log π0(a′_π|s′); the chosen second action has no such term.
    """
    soft = q_policy - alpha * penalty
    return reward + gamma * (1.0 - done) * torch.where(chosen, q_second, soft)


@dataclass(frozen=True)
class SecondActor:
    """The second candidate action a₂(s) and the rule that chooses between it and the policy's action."""

    source: SecondActorSource
    propose: Callable[[torch.Tensor], torch.Tensor]
    """a₂ at states the replay batch has not cached: clip(μ0(s)) asked of the prior (collection, evaluation), or the
    frozen initialized policy's mean action (everywhere)."""
    choice: SecondActorChoice = "greedy"
    temperature: float = 1.0
    """T of the softmax choice: where Q(s, a₂) exceeds Q(s, a_π) by T, a₂ is taken with probability σ(1) ≈ 0.73."""

    def at_next_states(self, batch: Batch) -> torch.Tensor:
        """a′₂ = a₂(s′) of a replay batch: the cached μ0(s′), clipped (prior-mean), or ``propose(s′)``."""
        if self.source == "prior-mean" and batch.next_prior_mean is not None:
            return batch.next_prior_mean.clamp(-1.0, 1.0)
        return self.propose(batch.next_obs)

    def choose(self, q_policy: torch.Tensor, q_second: torch.Tensor) -> torch.Tensor:
        """Where a₂ is taken, by the configured rule (:func:`choose_second`)."""
        return choose_second(q_policy, q_second, self.choice, self.temperature)


class SecondActorActing:
    """How an agent with a second actor acts: collection takes π's sample or a₂(s) by the critics' min Q (the
    configured rule), evaluation π's mean action or a₂(s) greedily. It counts how often a₂ was taken, on the device,
    and reports the shares once per progress row (:meth:`read`)."""

    columns: tuple[str, ...] = ("train_second_share", "eval_second_share")
    """Share of collected steps that took the second action; share of evaluation steps that did."""

    def __init__(self, actor: Actor, critic: TwinCritic, second: SecondActor) -> None:
        self.actor, self.critic, self.second = actor, critic, second
        device = next(actor.parameters()).device
        self.counts = {name: torch.zeros(2, device=device) for name in self.columns}
        """Per column: (steps that took a₂, steps), since the last :meth:`read`."""

    def _q(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.critic(obs, action).min(0).values

    def _count(self, column: str, chosen: torch.Tensor) -> None:
        self.counts[column][0] += chosen.sum()
        self.counts[column][1] += len(chosen)

    @torch.no_grad()
    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor]:
        """The collected actions for a batch of states (the collector reads ``sample(obs)[0]``)."""
        action = self.actor.sample(obs)[0]
        second = self.second.propose(obs)
        chosen = self.second.choose(self._q(obs, action), self._q(obs, second))
        self._count("train_second_share", chosen)
        return (torch.where(chosen[:, None], second, action),)

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """The evaluated actions for a batch of states (n, obs_dim): the greedy choice, no random draw."""
        states = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.counts["eval_second_share"].device)
        mean, second = self.actor.deterministic(states), self.second.propose(states)
        chosen = choose_second(self._q(states, mean), self._q(states, second), "greedy")
        self._count("eval_second_share", chosen)
        return torch.where(chosen[:, None], second, mean).cpu().numpy()

    def read(self) -> dict[str, float | None]:
        """The shares since the last read (None where nothing was counted), in one device→host copy; resets."""
        host = torch.stack(list(self.counts.values())).cpu()
        for count in self.counts.values():
            count.zero_()
        return {name: float(row[0] / row[1]) if row[1] else None for name, row in zip(self.columns, host)}
