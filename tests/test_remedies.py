"""The KL-SAC remedies: critic warm start, automatic α toward a named KL target, LayerNorm critics, a delayed
actor, the online KL anchored to the initialized policy. Each is a named setting, off by default."""

from __future__ import annotations

import copy
import csv

import pytest
import torch

from nppac.agents import KLSAC, KLSACConfig
from nppac.agents.networks import EnsembleLayerNorm
from nppac.data.replay import Batch
from nppac.errors import NppacError
from nppac.training import TrainConfig, train
from tests.builders import one_thread_per_test  # noqa: F401 (autouse fixture)

OBS, ACT, B = 5, 2, 64


def agent(**settings) -> KLSAC:
    torch.manual_seed(0)
    config = KLSACConfig(**{"alpha": 0.2, **settings})
    return KLSAC(OBS, ACT, "gaussian_tanh_mean", (16, 16), (16, 16), config)


def batch(seed: int = 1) -> Batch:
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g)

    return Batch(r(B, OBS), r(B, ACT).clamp(-1, 1), r(B), r(B, OBS), torch.zeros(B), 0.3 * r(B, ACT),
                 0.2 + r(B, ACT).abs(), 0.3 * r(B, ACT), 0.2 + r(B, ACT).abs())


def params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_the_warm_start_step_changes_only_the_critics():
    a = agent(auto_alpha=True, penalty_target=1.0)
    actor, critic, target, log_alpha = params(a.actor), params(a.critic), params(a.critic_target), a.log_alpha.item()
    metrics = a.critic_update(batch())
    assert same(params(a.actor), actor) and a.log_alpha.item() == log_alpha
    assert not same(params(a.critic), critic) and not same(params(a.critic_target), target)
    assert metrics["policy_grad_norm"].item() == 0.0 and metrics["critic_grad_norm"].item() > 0
    assert a.updates == 0  # the actor delay counts online updates only
    a.update(batch())
    assert not same(params(a.actor), actor)


@pytest.mark.parametrize("target, direction", [(-1e3, 1.0), (1e3, -1.0)])
def test_automatic_alpha_moves_toward_its_kl_target(target, direction):
    a = agent(auto_alpha=True, penalty_target=target)
    before = a.log_alpha.item()
    a.update(batch())
    assert direction * (a.log_alpha.item() - before) > 0


def test_actor_waits_for_its_delay_and_the_count_survives_a_checkpoint():
    a = agent(actor_delay_updates=3)
    actor = params(a.actor)
    for k in range(3):
        metrics = a.update(batch(k))
        assert metrics["policy_grad_norm"].item() == 0.0
    assert same(params(a.actor), actor)
    restored = agent(actor_delay_updates=3)
    restored.load_state_dict(copy.deepcopy(a.state_dict()))
    assert restored.updates == 3
    restored.update(batch(5))
    assert not same(params(restored.actor), actor)


def test_layernorm_critics_only_when_asked():
    plain, normed = agent(), agent(critic_layernorm=True)
    assert plain.critic.norms is None
    norms = [m for m in normed.critic.modules() if isinstance(m, EnsembleLayerNorm)]
    assert len(norms) == 2
    # The hidden activations are normalized per sample: scaling the first layer's weights changes nothing.
    b = batch()
    q = normed.critic(b.obs, b.action)
    with torch.no_grad():
        normed.critic.layers[0].weight.mul_(7.0)
        normed.critic.layers[0].bias.mul_(7.0)
    torch.testing.assert_close(normed.critic(b.obs, b.action), q, rtol=1e-4, atol=1e-5)


def test_remedy_settings_are_checked():
    cfg = TrainConfig(task="halfcheetah", algo="nppac", auto_alpha_target="act-dim").resolved()
    from nppac.training.setup import kl_sac_config

    assert kl_sac_config(cfg).auto_alpha and kl_sac_config(cfg).penalty_target == 6.0
    for kwargs, message in (
        (dict(algo="awac", critic_layernorm=True), "critic_layernorm applies to the KL-SAC algorithms only"),
        (dict(algo="sac", auto_alpha_target="init-kl"), "has no prior"),
        (dict(auto_alpha_target="act-dim", target_kl=3.0), "drop target_kl"),
        (dict(auto_alpha_target="half"), "auto_alpha_target='half'"),
        (dict(critic_warmstart_data="replay"), "critic_warmstart_data='replay'"),
        (dict(critic_warmstart_steps=-1), "critic_warmstart_steps=-1 is out of range"),
        (dict(kl_anchor="demos"), "kl_anchor='demos'"),
        (dict(algo="awac", kl_anchor="init-actor"), "kl_anchor applies to the KL-SAC algorithms only"),
        (dict(algo="sac", kl_anchor="init-actor"), "algo sac has no prior"),
        (dict(kl_anchor="init-actor", init_epochs=0), "init_epochs=0 without init_actor leaves none"),
    ):
        with pytest.raises(NppacError, match=message):
            TrainConfig(task="halfcheetah", **kwargs).resolved()


def _phases(run) -> list[tuple[str, int]]:
    with (run / "progress.csv").open() as f:
        return [(row["phase"], int(row["gradient_steps"])) for row in csv.DictReader(f)]


def test_a_run_warm_starts_its_critics_on_the_demonstrations_or_the_warmup(tmp_path):
    from nppac.priors import fit_prior
    from nppac.training.checkpoint import load_checkpoint
    from tests.builders import TINY, tiny_demos

    demos = tiny_demos()
    prior, _ = fit_prior(demos, "gp", kernel="rbf", iters=5)
    base = {**TINY, "steps": 150, "offline_eval_every": 20}
    train(TrainConfig(**base, critic_warmstart_steps=30, auto_alpha_target="init-kl"), tmp_path / "demos",
          prior=prior, demos=demos, progress=False)
    # Two offline rows (20 and 30 critic steps) at env_steps = 0, then the online epoch's 40 updates.
    assert _phases(tmp_path / "demos") == [("offline", 20), ("offline", 30), ("online", 70)]
    ckpt = load_checkpoint(tmp_path / "demos" / "checkpoint.pt", torch.device("cpu"))
    with (tmp_path / "demos" / "progress.csv").open() as f:
        init_kl = float(next(csv.DictReader(f))["init_kl"])
    assert ckpt["agent"]["penalty_target"].item() == pytest.approx(init_kl, rel=1e-6)
    train(TrainConfig(**base, critic_warmstart_steps=25, critic_warmstart_data="warmup"), tmp_path / "warmup",
          prior=prior, demos=demos, progress=False)
    assert _phases(tmp_path / "warmup") == [("init", 0), ("online", 65)]


class _Prior:
    """A prior whose μ0 and σ0 are known functions of the state."""

    kind, obs_dim, act_dim, squashed, fit_seconds = "gp", OBS, ACT, False, None

    def predict(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return 0.1 * states[:, :ACT], 0.2 + 0.1 * states[:, ACT:2 * ACT].abs()


def test_an_anchored_cache_answers_with_the_frozen_actors_mean_and_the_priors_sigma():
    from nppac.training.prior_cache import PriorCache

    actor = agent().actor
    states = torch.randn(10, OBS)
    cache = PriorCache(_Prior(), "variance", chunk=4)  # chunks of 4: the anchor's mean follows them in order
    mu0, s0 = cache(states)
    cache.anchor_to(actor)
    mean, std = cache(states)
    with torch.no_grad():
        assert torch.allclose(mean, actor.deterministic(states), atol=1e-6) and not torch.allclose(mean, mu0)
        assert torch.equal(std, s0) and torch.allclose(std, (0.2 + 0.1 * states[:, ACT:2 * ACT].abs()) ** 2)
        for p in actor.parameters():  # the live actor learns on; the anchor does not
            p.add_(1.0)
        assert torch.equal(cache(states)[0], mean)


def test_a_run_anchored_to_its_initialized_policy_caches_its_mean_and_keeps_it_on_resume(tmp_path):
    from nppac.agents.networks import load_actor
    from nppac.priors import fit_prior
    from nppac.training.checkpoint import load_checkpoint
    from tests.builders import TINY, tiny_demos

    demos = tiny_demos()
    prior, _ = fit_prior(demos, "gp", kernel="rbf", iters=5)
    run = tmp_path / "anchored"
    train(TrainConfig(**{**TINY, "steps": 150}, kl_anchor="init-actor"), run, prior=prior, demos=demos,
          progress=False)
    first = load_checkpoint(run / "checkpoint.pt", torch.device("cpu"))
    train(None, run, resume=True, steps=300, progress=False)
    ckpt = load_checkpoint(run / "checkpoint.pt", torch.device("cpu"))
    assert all(torch.equal(first["anchor"][k], v) for k, v in ckpt["anchor"].items())
    anchor = load_actor(run / "actor.safetensors")  # the architecture; its weights are the anchor's
    anchor.load_state_dict(ckpt["anchor"])
    assert not all(torch.equal(anchor.state_dict()[k], v) for k, v in ckpt["agent"]["actor"].items())
    storage = ckpt["replay"]["storage"]
    assert len(storage["obs"]) == 300  # both epochs' states, the second collected after the resume
    with torch.no_grad():
        assert torch.allclose(storage["prior_mean"], anchor.deterministic(storage["obs"]), atol=1e-6)
        assert torch.allclose(storage["prior_std"], prior.predict(storage["obs"])[1], atol=1e-5)
    plain = tmp_path / "plain"
    train(TrainConfig(**{**TINY, "steps": 150}), plain, prior=prior, demos=demos, progress=False)
    assert "anchor" not in load_checkpoint(plain / "checkpoint.pt", torch.device("cpu"))
