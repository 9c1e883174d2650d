from __future__ import annotations

import copy
import csv
import math

import pytest
import torch

from nppac.agents import (
    KLSAC,
    SACBC,
    DemoSampler,
    KLSACConfig,
    SACBCConfig,
    kl_sac_update,
    sac_bc_policy_loss,
    sac_bc_update,
)
from nppac.agents.networks import tanh_log_det_jacobian
from nppac.data.replay import ReplayBuffer
from nppac.distributions import gaussian_log_prob
from nppac.errors import NppacError
from nppac.training import TrainConfig, train
from tests.builders import (
    assert_grads_equal,
    float64_copy,
    normal_log_density,
    one_thread_per_test,  # noqa: F401 (autouse fixture)
    random_batch,
    tanh_normal_log_density,
    tiny,
    tiny_demos,
    transitions,
)


def test_policy_loss_adds_minus_lambda_times_the_demo_log_likelihood():
    log_pi, q_min = torch.tensor([-1.0, 1.0]), torch.tensor([3.0, 1.0])
    loss = sac_bc_policy_loss(log_pi, q_min, alpha=0.2, bc_log_likelihood=torch.tensor(-4.0), bc_weight=0.5)
    # mean(α log π − Q) − λ E log π(a_demo|s_demo) = (−0.2 − 3 + 0.2 − 1)/2 − 0.5·(−4)
    assert loss.item() == pytest.approx(-2.0 + 2.0)


def _agents(bc_weight: float, demo_obs: torch.Tensor, demo_action: torch.Tensor):
    torch.manual_seed(0)
    sac = KLSAC(5, 2, "tanh_gaussian", (16, 16), (16, 16), KLSACConfig(alpha=0.3, gamma=0.9, use_prior=False))
    sac_bc = SACBC(copy.deepcopy(sac), DemoSampler(demo_obs, demo_action), SACBCConfig(bc_weight, demo_batch_size=8))
    buf = ReplayBuffer(5, 2, capacity=64)
    buf.add(*transitions(64))
    return sac, sac_bc, buf.sample(32)


def test_update_is_sac_plus_the_bc_term_with_demo_actions_clamped():
    # One demonstration pair, so every demonstration batch is that pair; its actions sit on the bounds.
    demo_obs, demo_action = torch.randn(1, 5), torch.tensor([[1.0, -1.0]])
    sac, sac_bc, batch = _agents(0.7, demo_obs, demo_action)
    with torch.no_grad():
        mean, std = sac.actor(demo_obs)
        u = torch.atanh(torch.tensor([[1 - 1e-6, -(1 - 1e-6)]]))
        demo_log_pi = (gaussian_log_prob(u, mean, std) - tanh_log_det_jacobian(u)).item()
    torch.manual_seed(3)
    sac_stats = {k: float(v) for k, v in kl_sac_update(sac, batch).items()}
    torch.manual_seed(3)
    stats = {k: float(v) for k, v in sac_bc_update(sac_bc, batch).items()}
    assert math.isfinite(demo_log_pi)
    assert stats["bc_log_likelihood"] == pytest.approx(demo_log_pi, rel=1e-5)
    assert stats["actor_loss"] == pytest.approx(sac_stats["actor_loss"] - 0.7 * demo_log_pi, rel=1e-5)
    # The critic step is SAC's, untouched by the demonstrations; the actor step leaves the critics' gradient alone.
    for a, b in zip(sac.critic.parameters(), sac_bc.sac.critic.parameters()):
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(a.grad, b.grad)
    assert "prior_log_prob_mean" not in stats and set(stats) == set(sac_bc.metric_terms)


@pytest.mark.parametrize("kind", ["tanh_gaussian", "gaussian_tanh_mean"])
def test_actor_step_descends_sac_loss_minus_the_demo_log_likelihood(kind):
    """E[α log π(a|s) − min_k Q_k(s, a)] − λ E_D0[log π(a_demo|s_demo)], written out in float64.

    The update's noise and demonstration indices are replayed from the same seed, in its
    order: a′ for the critic target, a for the actor, then the demonstration batch.
    """
    g = torch.Generator().manual_seed(5)
    demo_obs, demo_action = torch.randn(10, 5, generator=g), torch.rand(10, 2, generator=g) * 2 - 1
    demo_action[:3] = torch.tensor([[1.0, -1.0], [-1.0, 0.3], [0.5, 1.0]])  # on the bounds, as recorded
    torch.manual_seed(0)
    sac = KLSAC(5, 2, kind, (16, 16), (16, 16), KLSACConfig(alpha=0.3, gamma=0.9, use_prior=False))
    agent = SACBC(sac, DemoSampler(demo_obs, demo_action), SACBCConfig(bc_weight=0.7, demo_batch_size=8))
    batch = random_batch(32, 5, 2, seed=1)
    actor = float64_copy(agent.actor)
    torch.manual_seed(11)
    _, eps, idx = torch.randn(32, 2), torch.randn(32, 2), torch.randint(0, 10, (8,))
    torch.manual_seed(11)
    stats = {k: float(v) for k, v in sac_bc_update(agent, batch).items()}
    critic = float64_copy(sac.critic)  # the actor step reads the critics after their own step

    obs = batch.obs.double()
    mean, std = actor(obs)
    demo_mean, demo_std = actor(demo_obs[idx].double())
    u = mean + std * eps.double()
    if kind == "tanh_gaussian":
        action, log_pi = torch.tanh(u), tanh_normal_log_density(u, mean, std)
        # Demonstrations on the bounds are read just inside them, at ±(1 − 1e-6) in float32.
        demo_u = torch.atanh(demo_action[idx].clamp(-1 + 1e-6, 1 - 1e-6).double())
        demo_log_pi = tanh_normal_log_density(demo_u, demo_mean, demo_std)
    else:
        action, log_pi = u, normal_log_density(u, mean, std)
        demo_log_pi = normal_log_density(demo_action[idx].double(), demo_mean, demo_std)
    q = critic(obs, action)
    loss = (0.3 * log_pi - torch.minimum(q[0], q[1])).mean() - 0.7 * demo_log_pi.mean()

    assert stats["bc_log_likelihood"] == pytest.approx(demo_log_pi.mean().item(), rel=1e-5)
    assert stats["actor_loss"] == pytest.approx(loss.item(), rel=1e-5)
    assert stats["log_pi_mean"] == pytest.approx(log_pi.mean().item(), rel=1e-5)
    assert_grads_equal(agent.actor, torch.autograd.grad(loss, list(actor.parameters())))


def test_automatic_alpha_reads_the_entropy_penalty():
    """With automatic α the temperature loss is SAC's: −log α (E[log π] − target), log π0 ≡ 0."""
    torch.manual_seed(0)
    sac = KLSAC(5, 2, "tanh_gaussian", (16,), (16,), KLSACConfig(alpha=0.3, auto_alpha=True, penalty_target=-2.0,
                                                                  use_prior=False))
    agent = SACBC(sac, DemoSampler(torch.randn(4, 5), torch.zeros(4, 2)), SACBCConfig(demo_batch_size=4))
    stats = {k: float(v) for k, v in sac_bc_update(agent, random_batch(32, 5, 2, seed=2)).items()}
    assert sac.log_alpha.grad.item() == pytest.approx(-(stats["log_pi_mean"] + 2.0), rel=1e-5)


def test_zero_weight_is_sac_exactly():
    sac, sac_bc, batch = _agents(0.0, torch.randn(10, 5), torch.rand(10, 2) * 2 - 1)
    torch.manual_seed(4)
    kl_sac_update(sac, batch)
    torch.manual_seed(4)
    sac_bc.update(batch)
    for a, b in zip(sac.actor.parameters(), sac_bc.actor.parameters()):
        torch.testing.assert_close(a, b)


def test_demo_sampler_draws_every_pair_and_refuses_empty_sets():
    obs = torch.arange(6.0).reshape(6, 1)
    sampler = DemoSampler(obs, -obs)
    s, a = sampler.sample(600)
    assert s.shape == (600, 1) and torch.equal(a, -s)
    assert set(s.flatten().tolist()) == set(range(6))
    with pytest.raises(NppacError, match="0 states"):
        DemoSampler(torch.zeros(0, 1), torch.zeros(0, 1))


def test_two_epoch_run_writes_finite_metrics(tmp_path):
    out = tmp_path / "sac-bc"
    summary = train(TrainConfig(algo="sac-bc", **tiny("sac-bc")), out, demos=tiny_demos(), progress=False)
    with (out / "progress.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        header, rows = reader.fieldnames, list(reader)
    assert [(r["phase"], int(r["env_steps"])) for r in rows] == [("init", 0), ("online", 150), ("online", 300)]
    for row in rows[1:]:
        assert all(math.isfinite(float(row[c])) for c in header if c != "phase"), row
    assert "prior_log_prob_mean" not in header  # no prior: log π0 ≡ 0 is not reported
    # ... and its penalty terms are log π, logged as such, never as a KL
    assert {"log_pi_mean", "next_log_pi_mean"} <= set(header) and not {"kl_mean", "next_kl_mean"} & set(header)
    assert summary["algo"] == "sac-bc" and not (out / "prior").exists()


@pytest.mark.parametrize("algo", ["sac", "sac-bc"])
def test_prior_free_sac_on_hand_tasks_bounds_its_log_std(algo):
    """Without a prior the entropy bonus would drive the hand tasks' untanh-ed Gaussian to log σ = 2 (σ ≈ 7.4)."""
    from nppac.training.algorithms import ALGORITHMS
    from nppac.training.setup import agent_spec, kl_sac_config

    hand = TrainConfig(task="pen-binary", algo=algo).resolved()
    assert hand.actor == "gaussian_tanh_mean" and hand.algo_config().log_std_range == (-6.0, 0.0)
    assert TrainConfig(task="halfcheetah", algo=algo).resolved().algo_config().log_std_range is None
    assert TrainConfig(task="pen-binary", algo="nppac").resolved().algo_config().log_std_range is None  # prior
    agent = ALGORITHMS["sac"].build(agent_spec(hand, lambda: None, torch.device("cpu")))  # SAC+BC's KL-SAC part
    assert agent.actor.log_std_range == (-6.0, 0.0)
    # However the weights move, σ stays at most 1: the entropy of 24 dimensions at most 24 · ½ log(2πe).
    with torch.no_grad():
        for p in agent.actor.parameters():
            p.add_(100.0)
        _, log_prob = agent.actor.sample(torch.zeros(512, hand.task_spec.obs_dim))
    assert -log_prob.mean().item() <= 24 * 0.5 * math.log(2 * math.pi * math.e) + 1.0
    assert kl_sac_config(hand).use_prior is False
