from __future__ import annotations

import copy
import logging
import math
import os
import stat

import numpy as np
import pytest
import torch

from nppac.agents import (
    KLSAC,
    Actor,
    KLSACConfig,
    critic_target,
    initialize_policy,
    kl_sac_update,
    load_actor,
    policy_loss,
    prior_log_prob,
    save_actor,
)
from nppac.data.replay import ReplayBuffer
from nppac.distributions import gaussian_kl, gaussian_log_prob
from nppac.errors import NppacError
from nppac.training.prior_cache import PriorCache
from tests.builders import (
    LinearGaussianPrior,
    assert_grads_equal,
    float64_copy,
    move_targets_away,
    normal_log_density,
    one_thread_per_test,  # noqa: F401 (autouse fixture)
    perturb,
    random_batch,
    tanh_normal_log_density,
    transitions,
)


def test_one_sample_kl_estimate_matches_closed_form_for_gaussian_head():
    torch.manual_seed(0)
    actor = Actor(3, 2, (16,), "gaussian_tanh_mean")
    s = torch.randn(1, 3)
    mu0, sigma0 = torch.tensor([[0.3, -0.2]]), torch.tensor([[0.5, 0.8]])
    n = 200_000
    with torch.no_grad():
        action, log_pi = actor.sample(s.expand(n, -1))
        estimates = log_pi - gaussian_log_prob(action, mu0, sigma0)
        mean, std = actor(s)
        kl = gaussian_kl(mean, std, mu0, sigma0).item()
    # Monte Carlo: the estimator is unbiased with standard error sd/√n; 5 SE leaves a
    # false-failure chance below 1e-6 while a biased estimator (e.g. a missing term) fails.
    se = estimates.std().item() / math.sqrt(n)
    assert abs(estimates.mean().item() - kl) < 5 * se
    assert se < 0.01 * max(kl, 1.0)


def test_tanh_head_log_prob_includes_the_jacobian():
    torch.manual_seed(1)
    actor = Actor(4, 3, (16, 16), "tanh_gaussian")
    obs = torch.randn(64, 4)
    with torch.no_grad():
        action, log_pi = actor.sample(obs)
        mean, std = actor(obs)
    reference = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mean, std), [torch.distributions.TanhTransform()])
    torch.testing.assert_close(log_pi, reference.log_prob(action).sum(-1), atol=2e-3, rtol=1e-4)
    torch.testing.assert_close(actor.log_prob(obs, action), log_pi, atol=2e-3, rtol=1e-4)
    assert action.abs().max() < 1.0


@pytest.mark.parametrize("kind", ["tanh_gaussian", "gaussian_tanh_mean"])
def test_log_density_from_the_heads_output_is_the_log_prob(kind):
    torch.manual_seed(2)
    actor = Actor(4, 3, (16,), kind)
    obs = torch.randn(32, 4)
    with torch.no_grad():
        action, _ = actor.sample(obs)
        mean, std = actor(obs)
        log_density = actor.log_density(mean, std, action)
    if kind == "tanh_gaussian":
        expected = tanh_normal_log_density(torch.atanh(action.clamp(-1 + 1e-6, 1 - 1e-6)), mean, std)
    else:
        expected = normal_log_density(action, mean, std)
    torch.testing.assert_close(log_density, expected, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(actor.log_prob(obs, action), log_density)


def test_log_std_is_clamped():
    actor = Actor(2, 1, (4,), "gaussian_tanh_mean")
    with torch.no_grad():
        actor.trunk[-1].bias.copy_(torch.tensor([0.0, 50.0]))
        actor.trunk[-1].weight.zero_()
        assert actor(torch.zeros(1, 2))[1].item() == pytest.approx(math.exp(2.0))
        actor.trunk[-1].bias.copy_(torch.tensor([0.0, -50.0]))
        assert actor(torch.zeros(1, 2))[1].item() == pytest.approx(math.exp(-20.0))


def test_critic_target_and_policy_loss_formulas():
    r, done = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0])
    q_next, logp, logp0 = torch.tensor([5.0, 7.0]), torch.tensor([-1.0, 0.0]), torch.tensor([-3.0, 4.0])
    y = critic_target(r, done, q_next, logp, logp0, alpha=0.5, gamma=0.9)
    # y = r + γ(1 − done)[Q̄ − α(log π − log π0)]: 1 + 0.9·(5 − 0.5·2) = 4.6; terminal → r.
    torch.testing.assert_close(y, torch.tensor([4.6, 2.0]))
    loss = policy_loss(torch.tensor([-1.0, 1.0]), torch.tensor([-2.0, 0.0]), torch.tensor([3.0, 1.0]), alpha=0.2)
    # mean of α(log π − log π0) − Q: (0.2 − 3 + 0.2 − 1) / 2
    assert loss.item() == pytest.approx(-1.8)


def _agent_and_batch(use_prior: bool, kind: str = "tanh_gaussian"):
    torch.manual_seed(0)
    agent = KLSAC(5, 2, kind, (16, 16), (16, 16), KLSACConfig(alpha=0.3, gamma=0.9, use_prior=use_prior))
    buf = ReplayBuffer(5, 2, capacity=64, prior_cache=PriorCache(LinearGaussianPrior(5, 2)))
    buf.add(*transitions(64))
    return agent, buf.sample(32)


@pytest.mark.parametrize("use_prior", [True, False])
def test_update_uses_the_design_formulas(use_prior):
    agent, batch = _agent_and_batch(use_prior)
    move_targets_away(agent.critic_target)
    ref = copy.deepcopy(agent)
    torch.manual_seed(123)
    with torch.no_grad():
        a2, logp2 = ref.actor.sample(batch.next_obs)
        logp0_2 = gaussian_log_prob(a2, batch.next_prior_mean, batch.next_prior_std) if use_prior else 0.0
        q_bar = ref.critic_target(batch.next_obs, a2).min(0).values
        y = batch.reward + 0.9 * (1 - batch.done) * (q_bar - 0.3 * (logp2 - logp0_2))
        q = ref.critic(batch.obs, batch.action)
        critic_loss = ((q[0] - y) ** 2).mean() + ((q[1] - y) ** 2).mean()
    torch.manual_seed(123)
    stats = {k: float(v) for k, v in kl_sac_update(agent, batch).items()}
    assert stats["q_target"] == pytest.approx(y.mean().item(), rel=1e-5)
    assert stats["critic_loss"] == pytest.approx(critic_loss.item(), rel=1e-5)
    assert stats["alpha"] == pytest.approx(0.3)
    if use_prior:
        assert stats["next_kl_mean"] == pytest.approx((logp2 - logp0_2).mean().item(), rel=1e-5)
    else:  # SAC: log π0 ≡ 0, the penalty is log π (entropy form), reported as such
        assert stats["prior_log_prob_mean"] == 0.0
        assert stats["next_log_pi_mean"] == pytest.approx(logp2.mean().item(), rel=1e-5)
    # Polyak: Q̄ ← (1 − τ)Q̄ + τQ with the post-step critic.
    for tp, old, p in zip(agent.critic_target.parameters(), ref.critic_target.parameters(), agent.critic.parameters()):
        torch.testing.assert_close(tp, 0.995 * old + 0.005 * p)


def test_actor_loss_without_prior_is_sacs():
    agent, batch = _agent_and_batch(use_prior=False)
    ref = copy.deepcopy(agent)
    # Replay the update's RNG: the critic step draws a′ first, then the actor step draws a.
    torch.manual_seed(7)
    with torch.no_grad():
        ref.actor.sample(batch.next_obs)
    critic_after = copy.deepcopy(agent)
    torch.manual_seed(7)
    kl_sac_update(critic_after, batch)
    torch.manual_seed(7)
    with torch.no_grad():
        ref.actor.sample(batch.next_obs)
        a, logp = ref.actor.sample(batch.obs)
        sac_loss = (0.3 * logp - critic_after.critic(batch.obs, a).min(0).values).mean()
    torch.manual_seed(7)
    stats = {k: float(v) for k, v in kl_sac_update(agent, batch).items()}
    assert stats["actor_loss"] == pytest.approx(sac_loss.item(), rel=1e-4, abs=1e-5)
    assert stats["log_pi_mean"] == pytest.approx(logp.mean().item(), rel=1e-5) and "kl_mean" not in stats


@pytest.mark.parametrize("kind, use_prior, prior_sigma, anchored", [
    ("tanh_gaussian", True, "std", False), ("gaussian_tanh_mean", True, "std", False),
    ("tanh_gaussian", True, "variance", False), ("gaussian_tanh_mean", True, "variance", True),
    ("tanh_gaussian", True, "std", True), ("tanh_gaussian", False, "std", False)])
def test_update_descends_the_design_losses(kind, use_prior, prior_sigma, anchored):
    """DESIGN.md §3's critic and actor losses, written out in float64, and their gradients.

    actor loss: E[α (log π(a|s) − log π0(a|s)) − min_k Q_k(s, a)], a = f_φ(ε; s), with log π0
    from the batch's cached (μ0, σ0) at s: π0 = N(μ0, σ0²) under ``std``, N(μ0, (σ0²)²) under
    ``variance`` (DESIGN.md §2); anchored (``kl_anchor = "init-actor"``), μ0 is the frozen
    initialized policy's mean action. The noise is the update's own: the same seed, drawn in
    the same order (a′ for the critic target, then a).
    """
    torch.manual_seed(0)
    config = KLSACConfig(alpha=0.3, gamma=0.9, use_prior=use_prior, prior_sigma=prior_sigma,
                         kl_anchor="init-actor" if anchored else "prior")
    agent = KLSAC(5, 2, kind, (16, 16), (16, 16), config)
    if anchored:  # an initialized policy other than the one that learns on
        with torch.no_grad():
            for p in agent.init_actor.parameters():
                p.add_(0.3 * torch.randn_like(p))
    move_targets_away(agent.critic_target)
    batch = random_batch(32, 5, 2, seed=1)
    actor, critic_before, critic_target = (float64_copy(m) for m in (agent.actor, agent.critic, agent.critic_target))
    init_actor = float64_copy(agent.init_actor) if anchored else None
    torch.manual_seed(11)
    eps_next, eps = torch.randn(32, 2).double(), torch.randn(32, 2).double()
    torch.manual_seed(11)
    stats = {k: float(v) for k, v in kl_sac_update(agent, batch).items()}
    critic = float64_copy(agent.critic)  # the actor step reads the critics after their own step

    def policy(obs: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, std = actor(obs)
        u = mean + std * noise
        if kind == "tanh_gaussian":
            return torch.tanh(u), tanh_normal_log_density(u, mean, std)
        return u, normal_log_density(u, mean, std)

    def prior_log_density(action: torch.Tensor, obs: torch.Tensor, mean: torch.Tensor,
                          sigma0: torch.Tensor) -> torch.Tensor:
        if not use_prior:
            return torch.zeros(len(action))
        with torch.no_grad():
            mean = init_actor.deterministic(obs) if anchored else mean.double()
        return normal_log_density(action, mean, sigma0.double() ** (2 if prior_sigma == "variance" else 1))

    obs, next_obs = batch.obs.double(), batch.next_obs.double()
    with torch.no_grad():
        next_action, next_log_pi = policy(next_obs, eps_next)
        next_log_prior = prior_log_density(next_action, next_obs, batch.next_prior_mean, batch.next_prior_std)
        q_next = critic_target(next_obs, next_action)
        y = batch.reward.double() + 0.9 * (1 - batch.done.double()) * (
            torch.minimum(q_next[0], q_next[1]) - 0.3 * (next_log_pi - next_log_prior))
    q_data = critic_before(obs, batch.action.double())
    critic_loss = ((q_data[0] - y) ** 2).mean() + ((q_data[1] - y) ** 2).mean()
    action, log_pi = policy(obs, eps)
    log_prior = prior_log_density(action, obs, batch.prior_mean, batch.prior_std)
    q = critic(obs, action)
    loss = (0.3 * (log_pi - log_prior) - torch.minimum(q[0], q[1])).mean()

    assert set(stats) == set(agent.metric_terms)
    # With a prior the penalty is a KL; without one (SAC) it is log π, the entropy term, and named so.
    kl, next_kl = ("kl_mean", "next_kl_mean") if use_prior else ("log_pi_mean", "next_log_pi_mean")
    assert stats[next_kl] == pytest.approx((next_log_pi - next_log_prior).mean().item(), rel=1e-5, abs=1e-6)
    assert stats["critic_loss"] == pytest.approx(critic_loss.item(), rel=1e-5)
    assert stats["actor_loss"] == pytest.approx(loss.item(), rel=1e-5, abs=1e-6)
    assert stats[kl] == pytest.approx((log_pi - log_prior).mean().item(), rel=1e-5, abs=1e-6)
    assert stats["prior_log_prob_mean"] == pytest.approx(log_prior.mean().item(), rel=1e-5, abs=1e-6)
    if use_prior:  # the regularizer is really there: log π0 is far from 0 on this batch
        assert abs(log_prior.mean().item()) > 0.5
    # The actor step descends its loss, log π0's pull on a = f_φ(ε; s) included; the critics' gradient
    # is their own loss's alone (the actor loss leaves their weights out).
    assert_grads_equal(agent.actor, torch.autograd.grad(loss, list(actor.parameters())))
    assert_grads_equal(agent.critic, torch.autograd.grad(critic_loss, list(critic_before.parameters())))
    assert stats["policy_grad_norm"] == pytest.approx(
        torch.cat([p.grad.flatten() for p in agent.actor.parameters()]).norm().item(), rel=1e-6)


def test_without_prior_log_pi0_is_zero_in_the_actions_batch_shape():
    action = torch.rand(3, 4, 2, dtype=torch.float64) * 2 - 1
    zero = prior_log_prob(action, None, None, "std")
    assert zero.shape == (3, 4) and zero.dtype == torch.float64 and not zero.any()
    mu0, sigma0 = torch.zeros(3, 4, 2, dtype=torch.float64), torch.full((3, 4, 2), 0.5, dtype=torch.float64)
    torch.testing.assert_close(prior_log_prob(action, mu0, sigma0, "std"), normal_log_density(action, mu0, sigma0))
    # The published code's convention: σ0² in the place of σ0 (DESIGN.md §2), N(μ0, 0.25²) here.
    torch.testing.assert_close(prior_log_prob(action, mu0, sigma0, "variance"),
                               normal_log_density(action, mu0, torch.full_like(sigma0, 0.25)))


@pytest.mark.parametrize("prior_sigma", ["std", "variance"])
def test_the_kl_of_raw_sigma0_and_its_convention_is_the_kl_of_the_scale_cached_before(prior_sigma):
    """Before the convention moved into the loss, the cache stored the scale itself (σ0, or σ0 ** 2 under
    ``variance``) and the loss read it as the std: both ways give the same numbers, bit for bit, in the update
    (its metrics and every weight after it) and in policy initialization."""
    batch = random_batch(32, 5, 2, seed=3)
    scaled = batch._replace(**{k: getattr(batch, k) ** 2 if prior_sigma == "variance" else getattr(batch, k)
                               for k in ("prior_std", "next_prior_std")})
    results = []
    for config_sigma, b in ((prior_sigma, batch), ("std", scaled)):
        torch.manual_seed(0)
        agent = KLSAC(5, 2, "tanh_gaussian", (16,), (16,), KLSACConfig(alpha=0.3, prior_sigma=config_sigma))
        torch.manual_seed(1)
        stats = kl_sac_update(agent, b)
        torch.manual_seed(2)
        actor = Actor(5, 2, (16,), "gaussian_tanh_mean")
        history = initialize_policy(actor, b.obs, b.prior_mean, b.prior_std, epochs=2, batch_size=8,
                                    prior_sigma=config_sigma)
        results.append((stats, agent.state_dict(), history, actor.state_dict()))
    (new, new_state, new_history, new_actor), (old, old_state, old_history, old_actor) = results
    assert all(torch.equal(new[k], old[k]) for k in old) and new_history == old_history
    for section in ("actor", "critic"):
        assert all(torch.equal(new_state[section][k], v) for k, v in old_state[section].items())
    assert all(torch.equal(new_actor[k], v) for k, v in old_actor.items())


def test_temperature_step_descends_the_design_alpha_loss():
    """−log α (E[log π − log π0] − target): α grows while the penalty exceeds its target."""
    torch.manual_seed(0)
    config = KLSACConfig(alpha=0.3, auto_alpha=True, penalty_target=-2.0, alpha_lr=0.01)
    agent = KLSAC(5, 2, "tanh_gaussian", (16,), (16,), config)
    stats = {k: float(v) for k, v in kl_sac_update(agent, random_batch(32, 5, 2, seed=2)).items()}
    gap = stats["kl_mean"] - (-2.0)
    assert stats["alpha"] == pytest.approx(0.3)  # this step's losses use α before its update
    assert agent.log_alpha.grad.item() == pytest.approx(-gap, rel=1e-5)
    # Adam's first step moves log α by the learning rate, in the direction of the penalty's excess.
    assert agent.log_alpha.item() == pytest.approx(math.log(0.3) + 0.01 * math.copysign(1.0, gap), rel=1e-5)


@pytest.mark.parametrize("target, init_metrics, expected", [
    (None, {"init_kl": 1.7}, None), ("act-dim", {"init_kl": 1.7}, 2.0),
    ("init-kl", {"init_kl_start": 9.0, "init_kl": 1.7}, 1.7)])
def test_automatic_alpha_targets_the_named_kl(caplog, target, init_metrics, expected):
    """``auto_alpha_target`` turns automatic α on (``auto_alpha`` left off): act-dim steers E[log π − log π0]
    toward the action dimension, init-kl toward the KL policy initialization reached, which ``before_online``
    reads and logs. Without it α stays fixed. One step on −log α (E[log π − log π0] − target)."""
    torch.manual_seed(0)
    agent = KLSAC(5, 2, "tanh_gaussian", (16,), (16,), KLSACConfig(alpha=0.3, alpha_lr=0.01, auto_alpha_target=target))
    caplog.set_level(logging.INFO, logger="nppac.agents.kl_sac")
    agent.before_online(init_metrics)
    stats = {k: float(v) for k, v in kl_sac_update(agent, random_batch(32, 5, 2, seed=2)).items()}
    if expected is None:
        assert agent.alpha_opt is None and not agent.log_alpha.requires_grad
        assert agent.log_alpha.item() == pytest.approx(math.log(0.3), rel=1e-7)
    else:
        gap = stats["kl_mean"] - expected
        assert agent.log_alpha.grad.item() == pytest.approx(-gap, rel=1e-5)
        assert agent.log_alpha.item() == pytest.approx(math.log(0.3) + 0.01 * math.copysign(1.0, gap), rel=1e-5)
    logged = ["automatic α targets the KL after initialization, 1.7"] if target == "init-kl" else []
    assert caplog.messages == logged


def test_the_init_kl_target_without_an_initialization_is_refused():
    agent = KLSAC(5, 2, "tanh_gaussian", (8,), (8,), KLSACConfig(auto_alpha_target="init-kl"))
    message = ("^auto_alpha_target=init-kl needs the KL measured by policy initialization; "
               "set init_epochs > 0 or choose auto_alpha_target=act-dim$")
    with pytest.raises(NppacError, match=message):
        agent.before_online({})


def test_before_online_freezes_the_initialized_policy_the_kl_is_anchored_to(caplog):
    """``kl_anchor = init-actor``: the KL's mean is the mean action of the policy as ``before_online`` found it
    (not as built, not as it learns after); with no cached prior there is no reference at all."""
    torch.manual_seed(0)
    agent = KLSAC(5, 2, "tanh_gaussian", (16,), (16,), KLSACConfig(kl_anchor="init-actor"))
    built = copy.deepcopy(agent.actor)
    perturb(agent.actor, seed=1)
    initialized = copy.deepcopy(agent.actor)
    caplog.set_level(logging.INFO, logger="nppac.agents.kl_sac")
    agent.before_online({"init_kl": 1.7})
    perturb(agent.actor, seed=2)
    batch = random_batch(16, 5, 2)
    with torch.no_grad():
        anchor = agent.kl_mean(batch.obs, batch.prior_mean)
        assert torch.equal(anchor, initialized.deterministic(batch.obs))
        assert not torch.equal(anchor, built.deterministic(batch.obs))
    assert agent.kl_mean(batch.obs, None) is None
    assert caplog.messages == ["the online KL is anchored to the initialized policy's mean action, with the prior's σ0"]


def test_a_restored_agent_takes_the_same_next_step():
    """``state_dict`` holds what the remedies keep (log α and its optimizer, the init-kl target, the frozen
    initialized policy), and only where a setting reads it: an agent restored into a fresh one steps as it does."""
    config = KLSACConfig(alpha=0.3, alpha_lr=0.01, auto_alpha_target="init-kl", kl_anchor="init-actor")

    def fresh(seed: int, settings: KLSACConfig = config) -> KLSAC:
        torch.manual_seed(seed)
        return KLSAC(5, 2, "tanh_gaussian", (16,), (16,), settings)

    agent = fresh(0)
    perturb(agent.actor, seed=1)
    agent.before_online({"init_kl": 1.7})
    torch.manual_seed(2)
    agent.update(random_batch(32, 5, 2, seed=1))
    restored = fresh(3)
    restored.load_state_dict(copy.deepcopy(agent.state_dict()))
    steps = []
    for a in (agent, restored):
        torch.manual_seed(4)
        steps.append((a.update(random_batch(32, 5, 2, seed=2)), a.state_dict()))
    (stats, state), (restored_stats, restored_state) = steps
    assert all(torch.equal(stats[k], restored_stats[k]) for k in stats)
    for section in ("actor", "critic", "critic_target", "init_actor"):
        assert all(torch.equal(state[section][k], v) for k, v in restored_state[section].items())
    assert torch.equal(agent.log_alpha, restored.log_alpha) and restored.penalty_target.item() == pytest.approx(1.7)
    plain = {"actor", "critic", "critic_target", "actor_opt", "critic_opt", "log_alpha", "penalty_target"}
    assert set(state) == plain | {"alpha_opt", "init_actor"}
    assert set(fresh(0, KLSACConfig()).state_dict()) == plain
    assert set(fresh(0, KLSACConfig(second_actor="init-actor")).state_dict()) == plain | {"init_actor"}


@pytest.mark.parametrize("layernorm, bounds", [(False, None), (True, (-0.1, 0.05))])
def test_the_critics_are_built_as_configured(layernorm, bounds):
    """``critic_layernorm`` (RLPD): every hidden layer of both critics, and of their targets, normalized before its
    ReLU; ``q_bounds``: Q clamped to [lo, hi] (the binary tasks). Recomputed in float64 from the weights."""
    torch.manual_seed(0)
    agent = KLSAC(5, 2, "tanh_gaussian", (16, 16), (16, 16), KLSACConfig(critic_layernorm=layernorm),
                  q_bounds=bounds)
    perturb(agent.critic, scale=0.1, seed=1)  # gains and biases of the norms away from 1 and 0
    batch = random_batch(64, 5, 2, seed=1)
    for critic in (agent.critic, agent.critic_target):
        h = torch.cat([batch.obs, batch.action], -1).double().expand(2, -1, -1)
        for i, layer in enumerate(critic.layers):
            h = h @ layer.weight.double() + layer.bias.double()
            if i < len(critic.layers) - 1:
                if layernorm:
                    h = (h - h.mean(-1, keepdim=True)) / torch.sqrt(h.var(-1, unbiased=False, keepdim=True) + 1e-5)
                    h = h * critic.norms[i].weight.double() + critic.norms[i].bias.double()
                h = torch.relu(h)
        q = h.squeeze(-1).detach()
        if bounds is not None:
            assert (q < bounds[0]).any() and (q > bounds[1]).any()  # the clamp binds on both sides
            q = q.clamp(*bounds)
        with torch.no_grad():
            torch.testing.assert_close(critic(batch.obs, batch.action).double(), q, rtol=1e-5, atol=1e-6)


def test_automatic_alpha_moves_toward_the_target():
    torch.manual_seed(0)
    # A very low entropy target (penalty target −H̄ = 20 » log π): α must fall.
    agent = KLSAC(5, 2, "tanh_gaussian", (16,), (16,), KLSACConfig(alpha=1.0, auto_alpha=True, penalty_target=20.0,
                                                                    alpha_lr=0.05, use_prior=False))
    buf = ReplayBuffer(5, 2, capacity=64)
    buf.add(*transitions(64))
    for _ in range(20):
        agent.update(buf.sample(32))
    assert agent.log_alpha.exp().item() < 0.5


@pytest.mark.parametrize("kind", ["gaussian_tanh_mean", "tanh_gaussian"])
def test_policy_initialization_reduces_kl_to_prior(kind):
    torch.manual_seed(0)
    prior = LinearGaussianPrior(5, 2)
    states = torch.randn(256, 5)
    mu0, sigma0 = prior.predict(states)
    actor = Actor(5, 2, (32, 32), kind)
    history = initialize_policy(actor, states, mu0, sigma0, epochs=15, batch_size=64, lr=3e-3, prior_sigma="std")
    with torch.no_grad():
        mean, std = actor(states)
        if kind == "gaussian_tanh_mean":
            final = gaussian_kl(mean, std, mu0, sigma0).mean().item()
        else:
            a, logp = actor.sample(states.repeat(20, 1))
            final = (logp - gaussian_log_prob(a, mu0.repeat(20, 1), sigma0.repeat(20, 1))).mean().item()
    assert len(history) == 15
    assert final < 0.3 * history[0]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_saved_actor_has_the_mode_of_any_other_file(tmp_path, umask):
    previous = os.umask(umask)
    try:
        save_actor(Actor(3, 2, (4,), "gaussian_tanh_mean"), tmp_path / "a.safetensors")
        (tmp_path / "other.json").write_text("{}")
    finally:
        os.umask(previous)
    mode = stat.S_IMODE((tmp_path / "a.safetensors").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "other.json").stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


@pytest.mark.parametrize("kind, prior_sigma", [("gaussian_tanh_mean", "std"), ("tanh_gaussian", "std"),
                                               ("gaussian_tanh_mean", "variance"), ("tanh_gaussian", "variance")])
def test_initialization_minimizes_the_kl_to_the_prior_over_shuffled_batches(kind, prior_sigma):
    """KL(π‖π0) in closed form (Gaussian head) or as a one-sample estimate (tanh head), written out in float64,
    π0 = N(μ0, σ0²), or N(μ0, (σ0²)²) under the published code's convention.

    With lr = 0 every mini-batch sees the same actor, so each epoch's KL and the last
    batch's gradient follow from the seed's shuffles and the replayed noise alone.
    """
    g = torch.Generator().manual_seed(4)
    states = torch.randn(40, 5, generator=g)
    mu0, sigma0 = torch.rand(40, 2, generator=g) * 1.6 - 0.8, 0.2 + 0.6 * torch.rand(40, 2, generator=g)
    torch.manual_seed(0)
    actor = Actor(5, 2, (16, 16), kind)
    ref = float64_copy(actor)
    rng = np.random.default_rng(7)
    torch.manual_seed(3)
    expected = []
    for _ in range(2):
        total = 0.0
        for idx in torch.as_tensor(rng.permutation(40)).split(16):
            mean, std = ref(states[idx].double())
            scale = sigma0[idx].double() ** (2 if prior_sigma == "variance" else 1)
            prior = torch.distributions.Normal(mu0[idx].double(), scale)
            if kind == "gaussian_tanh_mean":
                kl = torch.distributions.kl_divergence(torch.distributions.Normal(mean, std), prior).sum(-1).mean()
            else:
                u = mean + std * torch.randn(len(idx), 2).double()
                kl = (tanh_normal_log_density(u, mean, std) - prior.log_prob(torch.tanh(u)).sum(-1)).mean()
            total += kl.item() * len(idx)
        expected.append(total / 40)
    calls = []
    torch.manual_seed(3)
    history = initialize_policy(actor, states, mu0, sigma0, epochs=2, batch_size=16, lr=0.0, seed=7,
                                progress=lambda *args: calls.append(args), prior_sigma=prior_sigma)
    assert history == pytest.approx(expected, rel=1e-5)
    assert_grads_equal(actor, torch.autograd.grad(kl, list(ref.parameters())))
    assert calls == [("policy initialization", 1, 2), ("policy initialization", 2, 2)]
    assert initialize_policy(actor, states, mu0, sigma0, epochs=0, prior_sigma="std") == []  # no epoch, no KL
    with pytest.raises(NppacError, match="40 states but 39 prior predictions"):
        initialize_policy(actor, states, mu0[:39], sigma0[:39], epochs=1, prior_sigma="std")


@pytest.mark.parametrize("kind", ["gaussian_tanh_mean", "tanh_gaussian"])
def test_initialization_takes_the_steps_of_the_plain_loop(kind):
    """The same parameters as the straightforward loop (index each mini-batch, the reference Adam, the epoch's
    KL read at its end) for the same seeds: the faster loop changes what it costs, not what it computes."""
    g = torch.Generator().manual_seed(1)
    states = torch.randn(200, 5, generator=g)
    mu0, sigma0 = torch.rand(200, 2, generator=g) * 1.6 - 0.8, 0.2 + 0.6 * torch.rand(200, 2, generator=g)
    torch.manual_seed(0)
    actor = Actor(5, 2, (32, 32), kind)
    ref = copy.deepcopy(actor)
    optimizer = torch.optim.Adam(ref.parameters(), lr=1e-3, foreach=False)
    rng = np.random.default_rng(3)
    torch.manual_seed(5)
    expected = []
    for _ in range(4):
        total = 0.0
        for idx in torch.as_tensor(rng.permutation(200)).split(64):  # the last batch is shorter
            if kind == "gaussian_tanh_mean":
                mean, std = ref(states[idx])
                kl = gaussian_kl(mean, std, mu0[idx], sigma0[idx]).mean()
            else:
                a, log_pi = ref.sample(states[idx])
                kl = (log_pi - gaussian_log_prob(a, mu0[idx], sigma0[idx])).mean()
            optimizer.zero_grad()
            kl.backward()
            optimizer.step()
            total += kl.item() * len(idx)
        expected.append(total / 200)
    torch.manual_seed(5)
    history = initialize_policy(actor, states, mu0, sigma0, epochs=4, batch_size=64, lr=1e-3, seed=3,
                                prior_sigma="std")
    assert history == pytest.approx(expected, rel=1e-5)
    for got, want in zip(actor.parameters(), ref.parameters()):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert history[-1] < history[0]


def test_save_load_actor_round_trip(tmp_path):
    torch.manual_seed(0)
    actor = Actor(6, 3, (8, 8, 8), "gaussian_tanh_mean")
    save_actor(actor, tmp_path / "a.safetensors")
    loaded = load_actor(tmp_path / "a.safetensors")
    assert (loaded.kind, loaded.obs_dim, loaded.act_dim, loaded.hidden) == ("gaussian_tanh_mean", 6, 3, (8, 8, 8))
    obs = np.random.default_rng(0).normal(size=(4, 6)) * 10
    np.testing.assert_array_equal(loaded.act(obs), actor.act(obs))
    single = loaded.act(obs[0])
    assert single.shape == (3,) and single.dtype == np.float32 and np.abs(single).max() <= 1.0
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(NppacError, match="bad.safetensors"):
        load_actor(tmp_path / "bad.safetensors")
    with torch.no_grad():
        actor.trunk[0].bias[1] = float("nan")  # a damaged file: its actions would be NaN
    save_actor(actor, tmp_path / "nan.safetensors")
    with pytest.raises(NppacError, match="nan.safetensors: tensor 'trunk.0.bias' holds NaN"):
        load_actor(tmp_path / "nan.safetensors")
