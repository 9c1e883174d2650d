"""The prior as a second actor: the critic target's choice at s′, the choice rules, and how the agent acts with it
(collection and evaluation), each recomputed here independently of nppac."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from nppac.agents import KLSAC, Actor, KLSACConfig, kl_sac_update
from nppac.agents.second_actor import choose_second
from nppac.errors import NppacError
from tests.builders import (
    assert_grads_equal,
    float64_copy,
    move_targets_away,
    normal_log_density,
    one_thread_per_test,  # noqa: F401 (autouse fixture)
    perturb,
    random_batch,
    tanh_normal_log_density,
)

OBS, ACT, B = 5, 2, 64
TEMPERATURE = 0.02
"""Of the order of the tiny critics' Q-differences here, so that the softmax choice differs from the greedy one."""


def _never_asked(states: torch.Tensor) -> torch.Tensor:
    raise AssertionError("the gradient step asked the prior: μ0(s′) is cached in the batch")


def _prior_mean_action(states: torch.Tensor) -> torch.Tensor:
    """clip(μ0(s), −1, 1) of a linear prior, as a run asks it at new states (collection, evaluation)."""
    return (1.5 * states[:, :ACT]).clamp(-1.0, 1.0)


def _agent(source: str, choice: str, prior_mean=_prior_mean_action) -> tuple[KLSAC, Actor]:
    """An agent whose settings name the second actor, built as a run builds it: policy initialization moves the
    actor, ``before_online`` freezes it, and the actor learns on. Returns the agent and its initialized policy."""
    torch.manual_seed(0)
    config = KLSACConfig(alpha=0.3, gamma=0.9, second_actor=source, second_actor_choice=choice,
                         second_actor_temperature=TEMPERATURE)
    agent = KLSAC(OBS, ACT, "tanh_gaussian", (16, 16), (16, 16), config, prior_mean=prior_mean)
    move_targets_away(agent.critic_target)
    perturb(agent.actor, seed=5)
    initialized = copy.deepcopy(agent.actor)
    agent.before_online({})
    perturb(agent.actor, seed=6)
    return agent, initialized


def _second(source: str, initialized: Actor, states: torch.Tensor) -> torch.Tensor:
    """a₂(s) at new states: the prior's clipped mean action, or the initialized policy's mean action."""
    return _prior_mean_action(states) if source == "prior-mean" else initialized.deterministic(states)


@pytest.mark.parametrize("source", ["prior-mean", "init-actor"])
@pytest.mark.parametrize("choice", ["greedy", "softmax"])
def test_the_critic_target_takes_the_second_action_where_the_target_critics_choose_it(source, choice):
    """y = r + γ(1 − d)[(1 − c)(Q̄(s′, a′_π) − α(log π − log π0)(a′_π|s′)) + c Q̄(s′, a′₂)], in float64.

    a′₂ = clip(μ0(s′)) from the batch's cache (prior-mean; some μ0 here leave the box) or the frozen actor's mean
    action (init-actor, the copy ``before_online`` froze); c = 1[Q̄₂ > Q̄_π] or c ~ Bernoulli(σ((Q̄₂ − Q̄_π)/T))
    with the update's own uniform draw (after a′_π's noise). The critics' gradient is the loss's on that target;
    the KL's mean stays μ0 (no anchor), and the step asks the prior nothing.
    """
    agent, initialized = _agent(source, choice, prior_mean=_never_asked)
    batch = random_batch(B, OBS, ACT, seed=1)
    batch = batch._replace(next_prior_mean=2.0 * batch.next_prior_mean)
    actor, critic_before, critic_target, frozen64 = (float64_copy(m) for m in
                                                     (agent.actor, agent.critic, agent.critic_target, initialized))
    torch.manual_seed(11)
    eps_next, draw = torch.randn(B, ACT).double(), torch.rand(B).double()
    torch.manual_seed(11)
    stats = {k: float(v) for k, v in kl_sac_update(agent, batch).items()}

    next_obs = batch.next_obs.double()
    with torch.no_grad():
        mean, std = actor(next_obs)
        u = mean + std * eps_next
        next_action, next_log_pi = torch.tanh(u), tanh_normal_log_density(u, mean, std)
        next_log_prior = normal_log_density(next_action, batch.next_prior_mean.double(), batch.next_prior_std.double())
        q_policy = critic_target(next_obs, next_action).min(0).values
        if source == "prior-mean":
            second_action = batch.next_prior_mean.double().clamp(-1.0, 1.0)
        else:
            second_action = frozen64.deterministic(next_obs)
        q_second = critic_target(next_obs, second_action).min(0).values
        greedy = q_second > q_policy
        chosen = greedy if choice == "greedy" else draw < 1.0 / (1.0 + torch.exp(-(q_second - q_policy) / TEMPERATURE))
        soft = q_policy - 0.3 * (next_log_pi - next_log_prior)
        y = batch.reward.double() + 0.9 * (1 - batch.done.double()) * torch.where(chosen, q_second, soft)
    q = critic_before(batch.obs.double(), batch.action.double())
    critic_loss = ((q[0] - y) ** 2).mean() + ((q[1] - y) ** 2).mean()

    assert set(stats) == set(agent.metric_terms)  # the share among them
    assert 0.1 < chosen.double().mean().item() < 0.9  # both candidates win somewhere: the choice is exercised
    if choice == "softmax":
        assert (chosen != greedy).any()  # the draw, not the comparison alone, decides some states
    assert stats["next_second_share"] == pytest.approx(chosen.double().mean().item(), abs=1e-7)
    assert stats["q_target"] == pytest.approx(y.mean().item(), rel=1e-5, abs=1e-6)
    assert stats["critic_loss"] == pytest.approx(critic_loss.item(), rel=1e-5)
    # The penalty metric stays the policy's a′ in every state.
    assert stats["next_kl_mean"] == pytest.approx((next_log_pi - next_log_prior).mean().item(), rel=1e-5)
    assert_grads_equal(agent.critic, torch.autograd.grad(critic_loss, list(critic_before.parameters())))


def test_greedy_takes_the_second_action_only_where_it_is_valued_higher():
    q_policy = torch.tensor([1.0, 2.0, 3.0, -1.0])
    q_second = torch.tensor([2.0, 2.0, 1.0, -0.5])
    assert choose_second(q_policy, q_second, "greedy").tolist() == [True, False, False, True]  # a tie keeps π's


@pytest.mark.parametrize("gap, temperature", [(0.0, 1.0), (1.0, 1.0), (-2.0, 1.0), (3.0, 10.0), (-0.5, 0.25)])
def test_softmax_takes_the_second_action_with_the_probability_of_its_softmax_weight(gap, temperature):
    """P(a₂) = exp(Q₂/T) / (exp(Q_π/T) + exp(Q₂/T)); the frequency of a fixed generator's draws within 5 SE."""
    n = 40_000
    q_policy = torch.full((n,), 3.0)
    q_second = q_policy + gap
    chosen = choose_second(q_policy, q_second, "softmax", temperature, torch.Generator().manual_seed(0))
    p = math.exp(3.0 / temperature + gap / temperature) / (math.exp(3.0 / temperature)
                                                         + math.exp(3.0 / temperature + gap / temperature))
    assert abs(chosen.double().mean().item() - p) < 5 * math.sqrt(p * (1 - p) / n)
    again = choose_second(q_policy, q_second, "softmax", temperature, torch.Generator().manual_seed(0))
    assert torch.equal(chosen, again)  # the same generator state draws the same choices


@pytest.mark.parametrize("source", ["prior-mean", "init-actor"])
@pytest.mark.parametrize("choice", ["greedy", "softmax"])
def test_collection_takes_the_candidate_the_critics_choose_and_counts_its_share(source, choice):
    agent, initialized = _agent(source, choice)
    acting = agent.acting()
    obs = torch.randn(B, OBS, generator=torch.Generator().manual_seed(3))
    torch.manual_seed(7)
    with torch.no_grad():
        action = agent.actor.sample(obs)[0]
        draw = torch.rand(B)
        second = _second(source, initialized, obs)
        q_policy, q_second = (agent.critic(obs, a).min(0).values for a in (action, second))
    chosen = q_second > q_policy if choice == "greedy" else draw < torch.sigmoid((q_second - q_policy) / TEMPERATURE)
    torch.manual_seed(7)
    collected = acting.sample(obs)[0]
    assert 0 < chosen.sum() < B
    torch.testing.assert_close(collected, torch.where(chosen[:, None], second, action), rtol=0, atol=0)
    assert acting.read() == {"train_second_share": pytest.approx(chosen.double().mean().item()),
                             "eval_second_share": None}
    assert acting.read() == {"train_second_share": None, "eval_second_share": None}  # read resets


@pytest.mark.parametrize("source", ["prior-mean", "init-actor"])
@pytest.mark.parametrize("choice", ["greedy", "softmax"])
def test_evaluation_takes_the_greedy_choice_between_the_mean_action_and_the_second(source, choice):
    agent, initialized = _agent(source, choice)
    acting = agent.acting()
    obs = np.random.default_rng(4).normal(size=(B, OBS)).astype(np.float32)
    states = torch.as_tensor(obs)
    with torch.no_grad():
        mean, second = agent.actor.deterministic(states), _second(source, initialized, states)
        chosen = agent.critic(states, second).min(0).values > agent.critic(states, mean).min(0).values
    rng = torch.get_rng_state()
    actions = acting.act(obs)
    assert torch.equal(torch.get_rng_state(), rng)  # deterministic: no random draw, whatever the choice setting
    assert 0 < chosen.sum() < B
    np.testing.assert_array_equal(actions, torch.where(chosen[:, None], second, mean).numpy())
    share = chosen.double().mean().item()
    assert acting.read() == {"train_second_share": None, "eval_second_share": pytest.approx(share)}


def test_the_prior_mean_second_actor_without_the_priors_mean_action_is_refused():
    config = KLSACConfig(second_actor="prior-mean")
    message = "^second_actor=prior-mean needs the prior's mean action or the initialized policy$"
    with pytest.raises(NppacError, match=message):
        KLSAC(OBS, ACT, "tanh_gaussian", (8,), (8,), config)
