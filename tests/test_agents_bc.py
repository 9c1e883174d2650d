from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

from nppac.agents import BC, BCConfig, bc_loss, bc_update, load_actor
from nppac.agents.networks import Actor
from nppac.data import save_npz
from nppac.data.replay import ReplayBuffer
from nppac.errors import NppacError
from nppac.training import TrainConfig, train
from nppac.training.checkpoint import load_checkpoint
from tests.builders import (
    assert_grads_equal,
    float64_copy,
    normal_log_density,
    one_thread_per_test,  # noqa: F401 (autouse fixture)
    random_batch,
    tanh_normal_log_density,
    tiny,
    tiny_demos,
    tiny_sets,
)
from tests.conftest import run_cli


def test_loss_is_the_negative_gaussian_log_likelihood():
    actor = Actor(3, 1, (4,), "gaussian_tanh_mean")
    with torch.no_grad():  # a constant policy: mean tanh(0.5), std e^{-1}
        actor.trunk[-1].weight.zero_()
        actor.trunk[-1].bias.copy_(torch.tensor([0.5, -1.0]))
    obs, action = torch.randn(2, 3), torch.tensor([[0.2], [0.9]])
    mu, sigma = math.tanh(0.5), math.exp(-1.0)
    log_lik = [-0.5 * ((a - mu) / sigma) ** 2 - math.log(sigma) - 0.5 * math.log(2 * math.pi) for a in (0.2, 0.9)]
    assert bc_loss(actor, obs, action).item() == pytest.approx(-sum(log_lik) / 2, rel=1e-6)


@pytest.mark.parametrize("kind, log_std_range", [("gaussian_tanh_mean", (-6.0, 0.0)), ("tanh_gaussian", (-6.0, 0.0)),
                                                 ("gaussian_tanh_mean", None)])
def test_step_descends_the_negative_log_likelihood(kind, log_std_range):
    """−E log π(a|s) over the batch's (s, a), written out in float64, and its gradient; bound actions included."""
    torch.manual_seed(0)
    agent = BC(5, 2, kind, (16, 16), BCConfig(log_std_range=log_std_range))
    assert agent.actor.log_std_range == log_std_range
    batch = random_batch(32, 5, 2, seed=1)
    batch.action[:3] = torch.tensor([[1.0, -1.0], [-1.0, 0.3], [0.5, 1.0]])
    actor = float64_copy(agent.actor)
    stats = {k: float(v) for k, v in bc_update(agent, batch).items()}

    mean, std = actor(batch.obs.double())
    if kind == "tanh_gaussian":  # actions on the bounds are read just inside them, at ±(1 − 1e-6) in float32
        u = torch.atanh(batch.action.clamp(-1 + 1e-6, 1 - 1e-6).double())
        log_pi, mean_action = tanh_normal_log_density(u, mean, std), torch.tanh(mean)
    else:
        log_pi, mean_action = normal_log_density(batch.action.double(), mean, std), mean
    loss = -log_pi.mean()
    assert stats["bc_log_likelihood"] == pytest.approx(-loss.item(), rel=1e-5)
    assert stats["action_mse"] == pytest.approx((mean_action - batch.action.double()).pow(2).mean().item(), rel=1e-5)
    assert_grads_equal(agent.actor, torch.autograd.grad(loss, list(actor.parameters())))


@pytest.mark.parametrize("kind", ["gaussian_tanh_mean", "tanh_gaussian"])
def test_cloning_a_smooth_one_dimensional_policy_reaches_low_action_error(kind):
    torch.manual_seed(0)
    n = 512
    s = torch.rand(n, 1) * 2 - 1
    a = 0.8 * torch.sin(2.5 * s) + 0.01 * torch.randn(n, 1)
    buf = ReplayBuffer(1, 1, capacity=n)
    buf.add(s, a, torch.zeros(n), s, torch.zeros(n))
    agent = BC(1, 1, kind, (64, 64), BCConfig(actor_lr=3e-3))
    for _ in range(400):
        stats = {k: float(v) for k, v in bc_update(agent, buf.sample(128)).items()}
    grid = torch.linspace(-1, 1, 101).unsqueeze(1)
    with torch.no_grad():
        error = (agent.actor.deterministic(grid) - 0.8 * torch.sin(2.5 * grid)).pow(2).mean().item()
    assert error < 2e-3
    assert stats["action_mse"] < 5e-3 and stats["bc_log_likelihood"] > 1.0  # sharper than N(·, 0.1²) would be


def test_config_needs_the_demonstrations_offline():
    cfg = TrainConfig(algo="bc").resolved()
    assert (cfg.offline_updates, cfg.seed_demos, cfg.algorithm.online_updates) == \
        (10_000, True, False)
    for bad in ({"seed_demos": False}, {"offline_updates": 0}):
        with pytest.raises(NppacError, match="algo bc learns only from the demonstrations"):
            TrainConfig(algo="bc", **bad).validate()


def test_two_epoch_run_evaluates_without_online_updates(tmp_path):
    out = tmp_path / "bc"
    summary = train(TrainConfig(algo="bc", offline_updates=50, **tiny("bc")), out, demos=tiny_demos(), progress=False)
    with (out / "progress.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["phase"], int(r["env_steps"]), int(r["gradient_steps"])) for r in rows] == \
        [("offline", 0, 50), ("online", 150, 50), ("online", 300, 50)]
    assert float(rows[0]["action_mse"]) > 0 and float(rows[0]["updates_per_s"]) > 0
    for row in rows[1:]:
        assert math.isfinite(float(row["eval_return"])) and math.isfinite(float(row["env_steps_per_s"]))
        # No gradient step happens online: every update metric is empty.
        for column in ("bc_log_likelihood", "action_mse", "policy_grad_norm", "updates_per_s"):
            assert row[column] == "", (column, row)
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["replay"]["size"] == ckpt["replay"]["capacity"] == 120  # only D0: online data is never used
    assert set(ckpt["agent"]) == {"actor", "actor_opt"}
    # The actor after both epochs is the one trained offline: the final file equals the checkpoint's weights.
    final = load_actor(out / "actor.safetensors")
    for name, value in final.state_dict().items():
        torch.testing.assert_close(value, ckpt["agent"]["actor"][name])
    assert summary["algo"] == "bc"


def test_cli_trains_bc(tmp_path):
    demos = save_npz(tiny_demos(), tmp_path / "demos.npz")
    proc = run_cli("train", "--task", "halfcheetah", "--algo", "bc", "--demos", str(demos), "--steps", "300",
                   "--out", str(tmp_path / "run"), *tiny_sets("bc"), "--set", "offline_updates=20", "--json", "--quiet")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert (summary["algo"], summary["epochs"], summary["env_steps"]) == ("bc", 2, 300)
    assert np.isfinite(summary["final_eval_return"])
