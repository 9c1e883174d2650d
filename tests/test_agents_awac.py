from __future__ import annotations

import copy
import csv
import math

import pytest
import torch
from torch import nn

from nppac.agents import AWAC, AWACConfig, advantage_weights, awac_policy_loss, awac_update
from nppac.data.replay import ReplayBuffer
from nppac.errors import DivergedError, NppacError
from nppac.training import TrainConfig, train
from nppac.training.checkpoint import load_checkpoint
from tests.builders import (
    assert_grads_equal,
    float64_copy,
    move_targets_away,
    normal_log_density,
    one_thread_per_test,  # noqa: F401 (autouse fixture)
    random_batch,
    tiny,
    tiny_demos,
    transitions,
)


def test_advantage_weights_are_a_softmax_over_the_batch():
    advantage = torch.tensor([0.0, 1.0, 2.0, -1.0])
    for lam in (1.0, 0.5):
        e = [math.exp(a / lam) for a in advantage.tolist()]
        torch.testing.assert_close(advantage_weights(advantage, lam), torch.tensor([x / sum(e) for x in e]))
    # λ → 0: all weight on the best transition; λ → ∞: behaviour cloning (uniform weights).
    torch.testing.assert_close(advantage_weights(advantage, 1e-3), torch.tensor([0.0, 0.0, 1.0, 0.0]))
    torch.testing.assert_close(advantage_weights(advantage, 1e6), torch.full((4,), 0.25))
    # exp(A/λ) of A = 500 overflows float32; the normalized weights do not.
    assert torch.isfinite(advantage_weights(torch.tensor([500.0, 0.0]), 1.0)).all()
    loss = awac_policy_loss(torch.tensor([-1.0, -3.0]), torch.tensor([0.25, 0.75]))
    assert loss.item() == pytest.approx(0.25 * 1.0 + 0.75 * 3.0)


@pytest.mark.parametrize("value_at_mean", [True, False])
def test_update_uses_the_awac_formulas(value_at_mean):
    torch.manual_seed(0)
    cfg = AWACConfig(gamma=0.9, lam=0.7, score_clip=0.05, value_at_mean=value_at_mean)
    agent = AWAC(5, 2, "gaussian_tanh_mean", (16, 16), (16, 16), cfg, q_bounds=(-10.0, 0.0))
    move_targets_away(agent.critic_target)
    buf = ReplayBuffer(5, 2, capacity=64)
    buf.add(*transitions(64))
    batch = buf.sample(32)
    ref = copy.deepcopy(agent)
    # Replay the step's random draws: a′ ~ π(·|s′) for the target (clipped to the box), then V(s).
    torch.manual_seed(5)
    with torch.no_grad():
        a_next, _ = ref.actor.sample(batch.next_obs)
        q_next = ref.critic_target(batch.next_obs, a_next.clamp(-1, 1)).clamp(-10, 0).min(0).values
        y = batch.reward + 0.9 * (1 - batch.done) * q_next
        a_pi = ref.actor.deterministic(batch.obs) if value_at_mean else ref.actor.sample(batch.obs)[0].clamp(-1, 1)
        v = ref.critic(batch.obs, a_pi).min(0).values
        q = ref.critic(batch.obs, batch.action)
        advantage = q.min(0).values - v
        score = advantage.clamp(max=0.05)
        w = torch.exp(score / 0.7) / torch.exp(score / 0.7).sum()
        log_pi = ref.actor.log_prob(batch.obs, batch.action)
        actor_loss = -(w * log_pi).sum()
        critic_loss = ((q[0] - y) ** 2).mean() + ((q[1] - y) ** 2).mean()
    torch.manual_seed(5)
    stats = {k: float(v) for k, v in awac_update(agent, batch).items()}
    assert set(stats) == set(agent.metric_terms)
    assert stats["q_target"] == pytest.approx(y.mean().item(), rel=1e-5)  # no entropy term in the target
    assert stats["critic_loss"] == pytest.approx(critic_loss.item(), rel=1e-5)
    assert stats["advantage_mean"] == pytest.approx(advantage.mean().item(), abs=1e-6)
    assert stats["awac_weight_max"] == pytest.approx(32 * w.max().item(), rel=1e-5)
    assert stats["awac_weight_ess"] == pytest.approx(1 / (32 * (w ** 2).sum().item()), rel=1e-5)
    assert stats["actor_loss"] == pytest.approx(actor_loss.item(), rel=1e-5)
    assert stats["replay_log_likelihood"] == pytest.approx(log_pi.mean().item(), rel=1e-5)
    assert stats["policy_std"] == pytest.approx(math.exp(-3.0), rel=1e-5)  # the middle of log σ ∈ [−6, 0]
    for tp, old, p in zip(agent.critic_target.parameters(), ref.critic_target.parameters(), agent.critic.parameters()):
        torch.testing.assert_close(tp, 0.995 * old + 0.005 * p)


@pytest.mark.parametrize("value_at_mean", [True, False])
def test_steps_descend_the_awac_losses(value_at_mean):
    """The critic and actor losses of the module docstring, written out in float64, and their gradients.

    The policy is made broad and off-centre, so that sampled actions leave the box [−1, 1]
    and the clip of a′ (and of V's sampled action) matters. The update's noise is replayed
    from the same seed, in its order: a′ for the target, then V's action when it is sampled.
    """
    torch.manual_seed(0)
    cfg = AWACConfig(gamma=0.9, lam=0.3, score_clip=0.05, value_at_mean=value_at_mean)
    agent = AWAC(5, 2, "gaussian_tanh_mean", (16, 16), (16, 16), cfg)
    with torch.no_grad():
        agent.actor.trunk[-1].bias.copy_(torch.tensor([1.5, -1.0]))
        agent.actor.log_std_logits.fill_(3.0)  # log σ = −6 + 6 sigmoid(3) ≈ −0.3
    batch = random_batch(32, 5, 2, seed=1)
    actor, critic, critic_target = (float64_copy(m) for m in (agent.actor, agent.critic, agent.critic_target))
    torch.manual_seed(11)
    eps_next, eps_value = torch.randn(32, 2).double(), torch.randn(32, 2).double()
    torch.manual_seed(11)
    stats = {k: float(v) for k, v in awac_update(agent, batch).items()}

    obs, action = batch.obs.double(), batch.action.double()
    reward, next_obs, done = batch.reward.double(), batch.next_obs.double(), batch.done.double()
    with torch.no_grad():
        next_mean, next_std = actor(next_obs)
        next_action = next_mean + next_std * eps_next
        assert next_action.abs().max() > 1.0
        q_next = critic_target(next_obs, next_action.clamp(-1.0, 1.0))
        y = reward + 0.9 * (1.0 - done) * torch.minimum(q_next[0], q_next[1])
        mean, std = actor(obs)
        policy_action = mean if value_at_mean else mean + std * eps_value
        q_policy = critic(obs, policy_action.clamp(-1.0, 1.0))
        q_data = critic(obs, action)
        advantage = torch.minimum(q_data[0], q_data[1]) - torch.minimum(q_policy[0], q_policy[1])
        assert (advantage > 0.05).any() and (advantage < 0.05).any()  # the score clip acts on part of the batch
        score = torch.exp(advantage.clamp(max=0.05) / 0.3)
        w = score / score.sum()
    mean, std = actor(obs)
    log_pi = normal_log_density(action, mean, std)
    actor_loss = -(w * log_pi).sum()
    q = critic(obs, action)
    critic_loss = ((q[0] - y) ** 2).mean() + ((q[1] - y) ** 2).mean()

    expected = {
        "q_target": y.mean(), "q_mean": q_data.mean(), "critic_loss": critic_loss,
        "advantage_mean": advantage.mean(), "advantage_std": advantage.std(correction=0),
        "awac_weight_max": 32 * w.max(), "awac_weight_ess": 1.0 / (32 * w.pow(2).sum()),
        "replay_log_likelihood": log_pi.mean(), "actor_loss": actor_loss, "policy_std": std.mean(),
    }
    for name, value in expected.items():
        assert stats[name] == pytest.approx(value.item(), rel=1e-5, abs=1e-6), name
    # Each step descends its own loss: the weights are held fixed in the actor's, to which Adam adds the
    # policy's L2 term (AWACConfig.actor_weight_decay).
    assert_grads_equal(agent.actor, torch.autograd.grad(actor_loss, list(actor.parameters())))
    assert [group["weight_decay"] for group in agent.actor_opt.param_groups] == [cfg.actor_weight_decay] == [1e-4]
    assert_grads_equal(agent.critic, torch.autograd.grad(critic_loss, list(critic.parameters())))


def test_score_clip_bounds_the_weight_of_any_one_transition():
    # Without the clip one transition with a large advantage takes all the weight; with c = 0.5, λ = 0.5,
    # no transition weighs more than e^(0.5/0.5 − min score/λ) relative to the others.
    advantage = torch.tensor([30.0, 0.0, 0.0, 0.0])
    assert advantage_weights(advantage, 0.5).max().item() == pytest.approx(1.0)
    clipped = advantage_weights(advantage, 0.5, score_clip=0.5)
    assert clipped.max().item() == pytest.approx(math.e / (math.e + 3.0), rel=1e-6)


def test_critic_bounds_clamp_q_to_the_returns_range():
    agent = AWAC(3, 2, "gaussian_tanh_mean", (8,), (8,), AWACConfig(), q_bounds=(-100.0, 0.0))
    with torch.no_grad():
        agent.critic.layers[-1].bias.fill_(500.0)
    assert agent.critic(torch.zeros(4, 3), torch.zeros(4, 2)).max().item() == 0.0
    with torch.no_grad():
        agent.critic.layers[-1].bias.fill_(-500.0)
    assert agent.critic(torch.zeros(4, 3), torch.zeros(4, 2)).min().item() == -100.0


class _FixedCritic(nn.Module):
    """Q_1(s, a) = 4 Σ a, Q_2 = Q_1 + 1: the larger action is better; a zero-weight parameter keeps Adam happy."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(()))

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        q = 4.0 * action.sum(-1)
        return torch.stack([q, q + 1.0]) + 0.0 * self.unused


@pytest.mark.parametrize("lam, expected", [(0.1, 0.5), (1e6, 0.0)])
def test_actor_moves_toward_high_advantage_actions(lam, expected):
    """A bandit with demonstrated actions ±0.5: AWAC picks +0.5; with λ → ∞ it is BC, the mean 0."""
    torch.manual_seed(0)
    agent = AWAC(1, 1, "gaussian_tanh_mean", (16,), (4,), AWACConfig(lam=lam, actor_lr=3e-3))
    agent.critic, agent.critic_target = _FixedCritic(), _FixedCritic()
    agent.critic_opt = torch.optim.SGD(agent.critic.parameters(), lr=0.0)
    n = 128
    action = torch.tensor([[0.5], [-0.5]]).repeat(n // 2, 1)
    buf = ReplayBuffer(1, 1, capacity=n)
    buf.add(torch.zeros(n, 1), action, torch.zeros(n), torch.zeros(n, 1), torch.zeros(n))
    for _ in range(300):
        agent.update(buf.sample(n))
    mean_action = agent.actor.act(torch.zeros(1, 1).numpy()).item()
    assert mean_action == pytest.approx(expected, abs=0.08)


def test_config_defaults_and_validation():
    cfg = TrainConfig(algo="awac", task="pen-binary").resolved()
    assert (cfg.batch_size, cfg.offline_updates, cfg.offline_batch_size, cfg.seed_demos, cfg.warmup, cfg.bound_q,
            cfg.actor_hidden) == (1024, 25_000, 128, True, "policy", True, (256, 256))
    assert cfg.algo_config() == AWACConfig(lam=0.5, score_clip=0.5, value_at_mean=True, actor_weight_decay=1e-4,
                                           log_std_range=(-6.0, 0.0))
    assert cfg.actor == "gaussian_tanh_mean"
    # Locomotion: rlkit's mujoco configuration; --set still wins over a family default.
    loco = TrainConfig(algo="awac", task="halfcheetah").resolved()
    assert (loco.actor, loco.actor_hidden, loco.batch_size, loco.offline_updates, loco.offline_batch_size) == (
        "gaussian_tanh_mean", (256, 256, 256, 256), 1024, 50_000, 128)
    assert loco.algo_config() == AWACConfig(lam=2.0, score_clip=math.inf, value_at_mean=False,
                                            actor_weight_decay=1e-4, log_std_range=(-6.0, 0.0))
    mine = TrainConfig(algo="awac", task="halfcheetah", batch_size=256).with_overrides(["lam=0.7"]).resolved()
    assert (mine.batch_size, mine.algo_config().lam, mine.algo_config().score_clip) == (256, 0.7, math.inf)
    assert TrainConfig(algo="bc", task="halfcheetah").resolved().actor == "gaussian_tanh_mean"
    sac = TrainConfig(algo="sac").resolved()
    assert (sac.offline_updates, sac.seed_demos, sac.warmup_steps, sac.warmup) == (0, False, 1000, "uniform")
    with pytest.raises(NppacError, match="seed_demos=true"):
        TrainConfig(algo="awac", seed_demos=False).validate()
    TrainConfig(algo="awac", seed_demos=False, offline_updates=0).validate()  # online-only AWAC is allowed
    assert TrainConfig(algo="awac").with_overrides(["lam=0.3"]).resolved().algo_config().lam == 0.3
    with pytest.raises(NppacError, match="unknown config key 'lam'.*algo sac"):
        TrainConfig(algo="sac").with_overrides(["lam=0.3"])


def test_awac_policy_fits_actions_at_the_bounds():
    # Demonstrations recorded at the action bounds (23 % of halfcheetah's bundled entries are ±1). Under a
    # tanh-squashed Gaussian their likelihood hangs on u = atanh(1 − 1e-6) ≈ 7.25, so maximizing it drives
    # the pre-tanh mean toward ±7; under the AWAC policy (tanh on the mean) a = ±1 is an ordinary point.
    from nppac.agents.networks import Actor

    torch.manual_seed(0)
    obs, action = torch.zeros(4, 3), torch.tensor([[1.0, -1.0], [1.0, 1.0], [-1.0, 0.5], [0.2, -1.0]])
    nll = {kind: -Actor(3, 2, (16,), kind, log_std_range=(-6.0, 0.0)).log_prob(obs, action)
           for kind in ("gaussian_tanh_mean", "tanh_gaussian")}
    # Same σ = e^−3 for both: the Gaussian term alone is (a − tanh μ)²/(2σ²) ≤ 2² · e^6 / 2 per entry.
    assert torch.isfinite(nll["gaussian_tanh_mean"]).all()
    assert (nll["gaussian_tanh_mean"] < 2 * 2.0**2 * math.exp(6.0) / 2 + 10).all()
    assert (nll["tanh_gaussian"] > 20 * nll["gaussian_tanh_mean"]).all()


def test_two_epoch_run_pretrains_offline_then_learns_online(tmp_path):
    out = tmp_path / "awac"
    summary = train(TrainConfig(algo="awac", offline_updates=20, offline_eval_every=15, **tiny("awac")), out,
                    demos=tiny_demos(), progress=False)
    with (out / "progress.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["phase"], int(r["env_steps"]), int(r["gradient_steps"])) for r in rows] == \
        [("offline", 0, 15), ("offline", 0, 20), ("online", 150, 60), ("online", 300, 100)]
    for row in rows:
        for column in ("eval_return", "q_mean", "policy_grad_norm", "critic_grad_norm", "updates_per_s",
                       "awac_weight_max", "awac_weight_ess", "advantage_mean"):
            assert math.isfinite(float(row[column])), (column, row)
        assert "kl_mean" not in row and "alpha" not in row  # AWAC has no prior and no temperature α
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["replay"]["size"] == 120 + 300  # the demonstrations stay in the buffer beside the online data
    assert set(ckpt["agent"]) == {"actor", "critic", "critic_target", "actor_opt", "critic_opt"}
    assert summary["algo"] == "awac" and math.isfinite(summary["final_eval_return"])
    assert summary["step0_eval_return"] == pytest.approx(float(rows[1]["eval_return"]), rel=1e-4)


def test_non_finite_weights_are_named(tmp_path):
    # λ at float32's smallest positive value: A/λ overflows, and the softmax of +∞ is NaN.
    config = TrainConfig(algo="awac", offline_updates=5, **tiny("awac")).with_overrides(["lam=1e-45", "score_clip=inf"])
    with pytest.raises(DivergedError, match=r"AWAC advantage weights softmax\(A/λ\) became non-finite during "
                                             r"the offline phase \(gradient step 1 of 5\)"):
        train(config, tmp_path / "run", demos=tiny_demos(), progress=False)
