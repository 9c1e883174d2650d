"""The KL-SAC remedies: critic warm start, automatic α toward a named KL target, LayerNorm critics, a delayed
actor, the online KL anchored to the initialized policy, the prior as a second actor, demonstrations in every
batch. Each is a named setting, off by default."""

from __future__ import annotations

import copy
import csv

import pytest
import torch

from nppac.agents import KLSAC, KLSACConfig
from nppac.agents.networks import EnsembleLayerNorm, freeze
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
        (dict(algo="awac", critic_layernorm=True), "awac does not read critic_layernorm"),
        (dict(algo="sac", auto_alpha_target="init-kl"), "sac does not read auto_alpha_target"),
        (dict(auto_alpha_target="act-dim", target_kl=3.0), "drop target_kl"),
        (dict(auto_alpha_target="half"), "auto_alpha_target='half'"),
        (dict(critic_warmstart_data="replay"), "critic_warmstart_data='replay'"),
        (dict(critic_warmstart_steps=-1), "critic_warmstart_steps=-1 is out of range"),
        (dict(kl_anchor="demos"), "kl_anchor='demos'"),
        (dict(algo="awac", kl_anchor="init-actor"), "awac does not read kl_anchor"),
        (dict(algo="sac", kl_anchor="init-actor"), "sac does not read kl_anchor"),
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
    cache.anchor_to(freeze(actor))
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


@pytest.mark.parametrize("kwargs, message", [
    (dict(algo="sac", second_actor="prior-mean"), "sac does not read second_actor"),
    (dict(algo="sac", second_actor="init-actor"), "sac does not read second_actor"),
    (dict(algo="awac", second_actor="prior-mean"), "awac does not read second_actor"),
    (dict(second_actor="expert"), "second_actor='expert'"),
    (dict(second_actor="prior-mean", second_actor_choice="max"), "second_actor_choice='max'"),
    (dict(second_actor="prior-mean", second_actor_choice="softmax", second_actor_temperature=0.0),
     "second_actor_temperature=0.0 is out of range: must be > 0"),
    (dict(second_actor="prior-mean", second_actor_choice="softmax", second_actor_temperature=-1.0),
     "second_actor_temperature=-1.0 is out of range"),
    (dict(second_actor="prior-mean", second_actor_temperature=3.0), "applies to second_actor_choice=softmax only"),
    (dict(second_actor_choice="softmax"), "set second_actor=prior-mean or init-actor"),
    (dict(second_actor="prior-mean", kl_anchor="init-actor"), "use second_actor=init-actor with the anchor"),
    (dict(second_actor="init-actor", init_epochs=0), "init_epochs=0 without init_actor leaves none"),
    (dict(demo_batch_fraction=1.0), "demo_batch_fraction=1.0 is out of range: must be ≥ 0.0 and < 1.0"),
    (dict(demo_batch_fraction=-0.1), "demo_batch_fraction=-0.1 is out of range"),
    (dict(demo_batch_fraction=0.001), "takes 0 demonstration transitions per batch"),
    (dict(demo_batch_fraction=0.999), "takes 256 demonstration transitions per batch"),
    (dict(algo="awac", demo_batch_fraction=0.5), "awac does not read demo_batch_fraction"),
])
def test_second_actor_and_demo_batch_settings_are_refused_in_one_line(kwargs, message):
    with pytest.raises(NppacError, match=message) as refused:
        TrainConfig(task="halfcheetah", **kwargs).resolved()
    assert "\n" not in str(refused.value)


def test_demo_batch_fraction_without_demonstrations_is_refused(tmp_path):
    config = TrainConfig(task="pen-binary", algo="sac", demo_batch_fraction=0.5, steps=200, steps_per_epoch=200)
    with pytest.raises(NppacError, match="demo_batch_fraction=0.5 draws part of every batch from the "
                                         "demonstrations, and task pen-binary has no bundled set; pass --demos"):
        train(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def _pen_demos(rewards: list[float]):
    import numpy as np

    from nppac.data.demos import Demonstrations, Trajectory

    n = len(rewards)
    states = 5.0 + np.arange(n, dtype=np.float32)[:, None] + np.zeros((n, 45), np.float32)  # row i: 5 + i
    flags = np.zeros(n, bool)
    return Demonstrations([Trajectory(states, np.zeros((n, 24), np.float32), np.asarray(rewards, np.float32), flags,
                                      flags, states + 0.5)])


@pytest.mark.parametrize("fraction, batch_size, from_demos", [(0.5, 64, 32), (0.25, 32, 8), (0.3, 10, 3),
                                                              (0.5, 33, 17)])
def test_mixed_batches_take_the_fraction_from_the_relabelled_demonstrations(fraction, batch_size, from_demos):
    """N-PPAC's pen protocol rewards 1 at the goal, else 0: the demonstrations' 0/−1 labels are relabelled."""
    import numpy as np

    from nppac.data.replay import MixedBatches, ReplayBuffer
    from nppac.training.setup import demonstration_buffer

    cfg = TrainConfig(task="pen-binary", algo="nppac").resolved()
    assert cfg.binary_reward == "zero_one"
    labels = [0.0, -1.0, -1.0, 0.0, -1.0, 0.0, 0.0, -1.0]
    demos = demonstration_buffer(cfg, _pen_demos(labels), None, torch.device("cpu"))
    replay = ReplayBuffer(45, 24, 100)
    replay.add(-np.ones((100, 45)), np.zeros((100, 24)), np.full(100, 7.0), -np.ones((100, 45)), np.zeros(100))
    torch.manual_seed(0)
    batch = MixedBatches(replay, demos, fraction).sample(batch_size)
    assert batch.obs.shape == (batch_size, 45) and batch.prior_mean is None
    is_demo = batch.obs[:, 0] > 0
    assert is_demo[:from_demos].all() and not is_demo[from_demos:].any()
    rows = (batch.obs[:from_demos, 0] - 5.0).long()
    relabelled = torch.tensor([1.0 if r == 0.0 else 0.0 for r in labels])
    assert torch.equal(batch.reward[:from_demos], relabelled[rows])
    assert torch.equal(batch.next_obs[:from_demos, 0], batch.obs[:from_demos, 0] + 0.5)
    assert (batch.reward[from_demos:] == 7.0).all()


def _read_rows(run) -> list[dict[str, str]]:
    with (run / "progress.csv").open() as f:
        return list(csv.DictReader(f))


def test_every_online_batch_of_a_run_mixes_in_its_demonstrations(tmp_path, monkeypatch):
    from nppac.data.replay import MixedBatches
    from tests.builders import TINY, LinearGaussianPrior, tiny_demos

    drawn = []
    sample = MixedBatches.sample

    def spy(self, batch_size):
        batch = sample(self, batch_size)
        drawn.append((batch_size, len(self.demos), len(self.replay)))
        return batch

    monkeypatch.setattr(MixedBatches, "sample", spy)
    demos = tiny_demos()
    train(TrainConfig(**{**TINY, "steps": 150}, demo_batch_fraction=0.5), tmp_path / "run",
          prior=LinearGaussianPrior(17, 6), demos=demos, progress=False)
    assert drawn == [(32, demos.n_transitions, 150)] * 40  # each of the epoch's 40 updates


@pytest.mark.parametrize("always", [True, False])
def test_a_run_logs_the_share_of_second_actions_in_collection_target_and_evaluation(tmp_path, monkeypatch, always):
    """With the choice forced, the shares are known: 1 (every collected action is clip(μ0(s))) or 0 (the run is
    the one without a second actor, number for number: the second actor draws no random number when greedy)."""
    import nppac.agents.second_actor as second_actor
    from tests.builders import TINY, LinearGaussianPrior, tiny_demos

    monkeypatch.setattr(second_actor, "choose_second",
                        lambda q_policy, q_second, *args, **kwargs: torch.full_like(q_policy, always, dtype=torch.bool))
    prior = LinearGaussianPrior(17, 6)
    run = tmp_path / "second"
    train(TrainConfig(**TINY, second_actor="prior-mean"), run, prior=prior, demos=tiny_demos(), progress=False)
    rows = _read_rows(run)
    share = "1" if always else "0"
    assert [(r["train_second_share"], r["next_second_share"], r["eval_second_share"]) for r in rows] == \
        [("", "", share), (share, share, share), (share, share, share)]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"charts/train_second_share", "losses/next_second_share", "eval/second_share"} <= set(tags)
    assert [e.value for e in events.Scalars("charts/train_second_share")] == [float(always)] * 2

    from nppac.training.checkpoint import load_checkpoint

    storage = load_checkpoint(run / "checkpoint.pt")["replay"]["storage"]
    if always:  # every collected action is the prior's mean action, as cached for its state
        torch.testing.assert_close(storage["action"], storage["prior_mean"].clamp(-1, 1), rtol=0, atol=1e-6)
    else:
        plain = tmp_path / "plain"
        train(TrainConfig(**TINY), plain, prior=prior, demos=tiny_demos(), progress=False)
        for got, want in zip(rows, _read_rows(plain)):
            for column in ("eval_return", "q_mean", "critic_loss", "actor_loss", "kl_mean", "train_return"):
                assert got[column] == want[column], column


def test_a_run_with_both_resumed_after_a_kill_matches_an_uninterrupted_one(tmp_path):
    """The frozen initialized policy (saved as the anchor), the softmax draws (torch's generator, checkpointed) and
    the mixed batches (the demonstrations' buffer rebuilt on resume) continue where the killed run stopped."""
    from nppac.training.checkpoint import load_checkpoint
    from tests.builders import TINY, LinearGaussianPrior, tiny_demos

    # 50-step episodes end with each 150-step epoch: the collector holds no episode across the kill.
    config = TrainConfig(**{**TINY, "steps": 450, "horizon": 50}, second_actor="init-actor",
                         second_actor_choice="softmax", second_actor_temperature=0.1, demo_batch_fraction=0.5)
    prior = LinearGaussianPrior(17, 6)

    class Killed(Exception):
        pass

    def kill_after_one(row):
        if row["epoch"] == 1:
            raise Killed

    with pytest.raises(Killed):
        train(config, tmp_path / "killed", prior=prior, demos=tiny_demos(), progress=False,
              on_epoch_end=kill_after_one)
    first = load_checkpoint(tmp_path / "killed" / "checkpoint.pt")
    train(None, tmp_path / "killed", resume=True, prior=prior, demos=tiny_demos(), progress=False)
    train(config, tmp_path / "whole", prior=prior, demos=tiny_demos(), progress=False)
    killed, whole = _read_rows(tmp_path / "killed"), _read_rows(tmp_path / "whole")
    assert [int(r["epoch"]) for r in killed] == [int(r["epoch"]) for r in whole] == [0, 1, 2, 3]
    for a, b in zip(killed, whole):
        for column in ("eval_return", "q_mean", "actor_loss", "next_second_share", "train_second_share",
                       "eval_second_share", "train_return"):
            assert a[column] == b[column], (column, a["epoch"])
    shares = [float(r["next_second_share"]) for r in whole[1:]]
    assert all(0 < s < 1 for s in shares), shares
    ckpt = {name: load_checkpoint(tmp_path / name / "checkpoint.pt") for name in ("killed", "whole")}
    for k, v in ckpt["whole"]["anchor"].items():  # the frozen policy is the initialized one, kept across the resume
        assert torch.equal(ckpt["killed"]["anchor"][k], v) and torch.equal(first["anchor"][k], v)
    for k, v in ckpt["whole"]["agent"]["actor"].items():
        torch.testing.assert_close(ckpt["killed"]["agent"]["actor"][k], v, rtol=1e-5, atol=1e-6)
