"""A run's phases: the step-0 row of every algorithm, the warm-up collector, resuming inside the offline phase."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from nppac.training import TrainConfig, train
from nppac.training.algorithms import ALGORITHMS
from nppac.training.checkpoint import load_checkpoint
from nppac.training.setup import build_agent
from tests.builders import (
    TINY,
    LinearGaussianPrior,
    one_thread_per_test,  # noqa: F401 (autouse fixture)
    tiny,
    tiny_demos,
)


def _rows(out):
    with (out / "progress.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def _stand_in(algo: str):
    kind = ALGORITHMS[algo].prior_kind
    return None if kind is None else LinearGaussianPrior(17, 6, kind=kind)


@pytest.mark.parametrize("algo", list(ALGORITHMS))
def test_every_algorithm_writes_an_evaluated_step0_row_and_all_its_metrics(tmp_path, algo):
    out = tmp_path / algo
    config = TrainConfig(algo=algo, offline_updates=None if ALGORITHMS[algo].offline_updates == 0 else 10,
                         offline_eval_every=10, **tiny(algo, steps=150))
    summary = train(config, out, prior=_stand_in(algo), demos=tiny_demos(), progress=False)
    header, rows = _rows(out)
    first = rows[0]
    assert (int(first["epoch"]), int(first["env_steps"])) == (0, 0)
    assert first["phase"] == ("offline" if ALGORITHMS[algo].offline_updates else "init")
    assert math.isfinite(float(first["eval_return"]))
    assert summary["step0_eval_return"] == pytest.approx(float(first["eval_return"]), rel=1e-4)
    # Every metric the update reports by name has its column, filled once updates happen.
    agent_metrics = build_agent(config.resolved(), tiny_demos, torch.device("cpu")).metric_terms
    assert set(agent_metrics) <= set(header)
    updated = [r for r in rows if int(r["gradient_steps"]) > 0 and r["updates_per_s"]]
    assert updated, rows
    for name in agent_metrics:
        assert math.isfinite(float(updated[-1][name])), (name, updated[-1])


def test_warmup_is_collected_by_the_initialized_policy_or_uniformly(tmp_path):
    from nppac.agents import load_actor

    gaps = {}
    for warmup in ("policy", "uniform"):
        out = tmp_path / warmup
        config = TrainConfig(algo="nppac", warmup=warmup, **{**TINY, "steps": 150, "init_epochs": 300,
                                                             "warmup_steps": 150, "updates_per_epoch": 0})
        train(config, out, prior=LinearGaussianPrior(17, 6), demos=tiny_demos(), progress=False)
        replay = load_checkpoint(out / "checkpoint.pt")["replay"]["storage"]
        actor = load_actor(out / "actor.safetensors")  # no update happened: the policy that collected
        with torch.no_grad():
            gaps[warmup] = (replay["action"] - actor.deterministic(replay["obs"])).abs().mean().item()
    # The initialized policy's samples stay near its mean action; uniform actions on [−1, 1]^6 do not.
    assert gaps["policy"] < 0.6 * gaps["uniform"], gaps


def test_a_kill_inside_the_offline_phase_resumes_there_and_matches_an_uninterrupted_run(tmp_path):
    config = TrainConfig(algo="awac", offline_updates=30, offline_eval_every=10, **tiny("awac"))

    class Killed(Exception):
        pass

    def kill_at_20(row):
        if row["gradient_steps"] == 20:
            raise Killed

    with pytest.raises(Killed):
        train(config, tmp_path / "killed", demos=tiny_demos(), progress=False, on_epoch_end=kill_at_20)
    state = load_checkpoint(tmp_path / "killed" / "checkpoint.pt")["state"]
    assert (state["offline_done"], state["step0_done"]) == (20, False)
    train(None, tmp_path / "killed", resume=True, demos=tiny_demos(), progress=False)
    train(config, tmp_path / "whole", demos=tiny_demos(), progress=False)
    _, killed = _rows(tmp_path / "killed")
    _, whole = _rows(tmp_path / "whole")
    key = [(r["phase"], int(r["env_steps"]), int(r["gradient_steps"])) for r in killed]
    assert key == [("offline", 0, 10), ("offline", 0, 20), ("offline", 0, 30), ("online", 150, 70),
                   ("online", 300, 110)]
    assert key == [(r["phase"], int(r["env_steps"]), int(r["gradient_steps"])) for r in whole]
    for a, b in zip(killed, whole):
        for column in ("eval_return", "q_mean", "actor_loss"):
            assert float(a[column]) == pytest.approx(float(b[column]), rel=1e-5, abs=1e-6), column


def test_fused_adam_on_the_cpu_matches_the_reference_adam():
    from nppac.agents.base import adam

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    ref = [p.detach().clone().requires_grad_(True) for p in net.parameters()]
    fused = adam(net.parameters(), 1e-2, torch.device("cpu"), weight_decay=1e-4)
    plain = torch.optim.Adam(ref, lr=1e-2, weight_decay=1e-4)
    x = torch.randn(64, 5)
    for _ in range(20):
        for params, opt in ((list(net.parameters()), fused), (ref, plain)):
            h = torch.relu(x @ params[0].T + params[1])
            loss = (h @ params[2].T + params[3]).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    for a, b in zip(net.parameters(), ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_initialization_far_from_the_prior_warns_about_the_observation_scale(caplog):
    """States scaled by 1e6: the actor reads them unscaled and starts millions of nats from π0; a WARNING names the
    KL and the scale and says to normalize. Order-one states and an actor near π0: no warning."""
    from nppac.agents.kl_sac import initialize_policy
    from nppac.agents.networks import Actor
    from nppac.training.setup import warn_if_far_from_prior

    states = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
    mean, std = torch.zeros(64, 2), torch.full((64, 2), 0.3)
    for scale, warned in ((1.0, False), (1e6, True)):
        torch.manual_seed(0)
        caplog.clear()
        actor = Actor(3, 2, (16,), "gaussian_tanh_mean")
        kl = initialize_policy(actor, states * scale, mean, std, 1, prior_sigma="std")[0]
        with caplog.at_level("WARNING"):
            warn_if_far_from_prior("the policy", kl, states * scale, mean, std)
        lines = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert bool(lines) == warned, lines
    assert "normalize the observations" in lines[0] and "reach |s| = 3.41e+06" in lines[0]
