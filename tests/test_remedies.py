"""The KL-SAC remedies: automatic α toward a named KL target, LayerNorm critics, the online KL anchored to the
initialized policy, the prior as a second actor, demonstrations in every batch. Each is a named setting of the
KL-SAC agent, off by default; the critic warm start and the delayed actor, measured harmful, are refused."""

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


@pytest.mark.parametrize("target, direction", [(-1e3, 1.0), (1e3, -1.0)])
def test_automatic_alpha_moves_toward_its_kl_target(target, direction):
    a = agent(auto_alpha=True, penalty_target=target)
    before = a.log_alpha.item()
    a.update(batch())
    assert direction * (a.log_alpha.item() - before) > 0


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
    from nppac.training.setup import build_agent

    built = build_agent(cfg, lambda: None, torch.device("cpu"))
    assert built.alpha_opt is not None and built.penalty_target.item() == 6.0
    for kwargs, message in (
        (dict(algo="awac", critic_layernorm=True), "awac does not read critic_layernorm"),
        (dict(algo="sac", auto_alpha_target="init-kl"), "sac does not read auto_alpha_target"),
        (dict(auto_alpha_target="act-dim", target_kl=3.0), "drop target_kl"),
        (dict(auto_alpha_target="half"), "auto_alpha_target='half'"),
        (dict(kl_anchor="demos"), "kl_anchor='demos'"),
        (dict(algo="awac", kl_anchor="init-actor"), "awac does not read kl_anchor"),
        (dict(algo="sac", kl_anchor="init-actor"), "sac does not read kl_anchor"),
        (dict(kl_anchor="init-actor", init_epochs=0), "init_epochs=0 without init_actor leaves none"),
    ):
        with pytest.raises(NppacError, match=message):
            TrainConfig(task="halfcheetah", **kwargs).resolved()


REMOVED = "removed in this version; measured harmful, docs/remedies.md"


@pytest.mark.parametrize("key, value", [("critic_warmstart_steps", 5000), ("critic_warmstart_data", "replay"),
                                        ("actor_delay_updates", 3000)])
def test_the_removed_remedies_are_refused_in_one_line_and_old_configs_that_leave_them_off_still_read(
        tmp_path, key, value):
    import json

    stored = TrainConfig(task="halfcheetah").resolved().to_dict()
    old = {**stored, "critic_warmstart_steps": 0, "critic_warmstart_data": "demos", "actor_delay_updates": 0}
    (tmp_path / "config.json").write_text(json.dumps(old))
    assert TrainConfig.load(tmp_path / "config.json").to_dict() == stored
    assert TrainConfig.from_dict(old).to_dict() == stored  # a suite manifest's runs
    (tmp_path / "config.json").write_text(json.dumps({**old, key: value}))
    for refused in (lambda: TrainConfig.load(tmp_path / "config.json"),
                    lambda: TrainConfig().with_values({key: value}),
                    lambda: TrainConfig().with_overrides([f"{key}={value}"])):
        with pytest.raises(NppacError, match=f"config key {key}: {REMOVED}") as err:
            refused()
        assert "\n" not in str(err.value)
    from nppac.experiments.replicates import setting_key

    assert setting_key(old) == setting_key(stored)  # reports group old runs with new ones


def test_the_anchor_is_the_frozen_initialized_policy_kept_by_the_agent_and_its_checkpoint():
    """``before_online`` freezes the initialized policy; the KL's mean is its mean action at the batch's states
    (the cached μ0 is left as the prior predicted it); the copy stays while the actor learns, and travels in the
    agent's own state."""
    a = agent(kl_anchor="init-actor")
    with torch.no_grad():
        for p in a.actor.parameters():  # the policy as initialization left it
            p.add_(0.1)
    a.before_online({"init_kl": 1.0})
    b = batch()
    initialized = copy.deepcopy(a.actor)
    with torch.no_grad():
        torch.testing.assert_close(a.kl_mean(b.obs, b.prior_mean), initialized.deterministic(b.obs), rtol=0, atol=0)
    for k in range(3):
        a.update(batch(k))
    with torch.no_grad():
        assert not torch.equal(a.actor.deterministic(b.obs), initialized.deterministic(b.obs))
        assert torch.equal(a.kl_mean(b.obs, b.prior_mean), initialized.deterministic(b.obs))
    restored = agent(kl_anchor="init-actor")
    restored.load_state_dict(copy.deepcopy(a.state_dict()))
    assert all(torch.equal(restored.init_actor.state_dict()[k], v) for k, v in a.init_actor.state_dict().items())
    assert torch.equal(agent().kl_mean(b.obs, b.prior_mean), b.prior_mean)  # unanchored: μ0 itself
    assert "init_actor" not in agent().state_dict()


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
    first = load_checkpoint(run / "checkpoint.pt", torch.device("cpu"))["agent"]["init_actor"]
    train(None, run, resume=True, steps=300, progress=False)
    ckpt = load_checkpoint(run / "checkpoint.pt", torch.device("cpu"))
    assert all(torch.equal(first[k], v) for k, v in ckpt["agent"]["init_actor"].items())
    anchor = load_actor(run / "actor.safetensors")  # the architecture; its weights are the anchor's
    anchor.load_state_dict(ckpt["agent"]["init_actor"])
    assert not all(torch.equal(anchor.state_dict()[k], v) for k, v in ckpt["agent"]["actor"].items())
    storage = ckpt["replay"]["storage"]
    assert len(storage["obs"]) == 300  # both epochs' states, the second collected after the resume
    mu0, sigma0 = prior.predict(storage["obs"])  # cached as predicted: the anchor acts in the loss
    assert torch.allclose(storage["prior_mean"], mu0, atol=1e-5) and torch.allclose(storage["prior_std"], sigma0,
                                                                                     atol=1e-5)
    plain = tmp_path / "plain"
    train(TrainConfig(**{**TINY, "steps": 150}), plain, prior=prior, demos=demos, progress=False)
    assert "init_actor" not in load_checkpoint(plain / "checkpoint.pt", torch.device("cpu"))["agent"]


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
    """The frozen initialized policy (in the agent's state), the softmax draws (torch's generator, checkpointed) and
    the mixed batches (the demonstrations' buffer rebuilt on resume) continue where the killed run stopped."""
    from nppac.training.checkpoint import load_checkpoint
    from tests.builders import TINY, LinearGaussianPrior, tiny_demos

    # 50-step episodes end with each 150-step epoch: the collector holds no episode across the kill.
    config = TrainConfig(**{**TINY, "steps": 450, "horizon": 50}, second_actor="init-actor",
                         second_actor_choice="softmax", second_actor_temperature=0.1, demo_batch_fraction=0.5)
    prior = LinearGaussianPrior(17, 6)

    with pytest.raises(_Killed):
        train(config, tmp_path / "killed", prior=prior, demos=tiny_demos(), progress=False,
              on_epoch_end=_kill_after_one)
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
    for k, v in ckpt["whole"]["agent"]["init_actor"].items():  # the initialized policy, kept across the resume
        assert torch.equal(ckpt["killed"]["agent"]["init_actor"][k], v)
        assert torch.equal(first["agent"]["init_actor"][k], v)
    for k, v in ckpt["whole"]["agent"]["actor"].items():
        torch.testing.assert_close(ckpt["killed"]["agent"]["actor"][k], v, rtol=1e-5, atol=1e-6)


def test_a_checkpoint_of_the_earlier_format_resumes_exactly(tmp_path):
    """Before format 2 the replay buffer cached σ0² under ``prior_sigma = "variance"``, the frozen initialized
    policy sat beside the agent as ``anchor`` and the run state held the critic warm start's flag: such a checkpoint
    (with its config.json naming the removed settings, off) resumes into the numbers of the run that never stopped."""
    import json

    from nppac.training.checkpoint import load_checkpoint, save_checkpoint
    from tests.builders import TINY, LinearGaussianPrior, tiny_demos

    config = TrainConfig(**{**TINY, "steps": 450, "horizon": 50, "prior_sigma": "variance"}, kl_anchor="init-actor")
    prior = LinearGaussianPrior(17, 6)

    killed = tmp_path / "killed"
    with pytest.raises(_Killed):
        train(config, killed, prior=prior, demos=tiny_demos(), progress=False, on_epoch_end=_kill_after_one)
    ckpt = load_checkpoint(killed / "checkpoint.pt")
    assert ckpt.pop("format") == 2
    storage = ckpt["replay"]["storage"]
    sigma0 = storage["prior_std"].clone()
    for key in ("prior_std", "next_prior_std"):
        storage[key] = storage[key] ** 2
    ckpt["anchor"] = ckpt["agent"].pop("init_actor")
    ckpt["state"]["warmstart_done"] = False
    removed = {"critic_warmstart_steps": 0, "critic_warmstart_data": "demos", "actor_delay_updates": 0}
    ckpt["config"] = json.dumps({**json.loads(ckpt["config"]), **removed})
    save_checkpoint(ckpt, killed / "checkpoint.pt")
    stored = json.loads((killed / "config.json").read_text())
    (killed / "config.json").write_text(json.dumps({**stored, **removed}))

    train(None, killed, resume=True, prior=prior, demos=tiny_demos(), progress=False)
    train(config, tmp_path / "whole", prior=prior, demos=tiny_demos(), progress=False)
    rows = {name: _read_rows(tmp_path / name) for name in ("killed", "whole")}
    assert [r["epoch"] for r in rows["killed"]] == [r["epoch"] for r in rows["whole"]] == ["0", "1", "2", "3"]
    for a, b in zip(rows["killed"], rows["whole"]):
        for column in ("eval_return", "q_mean", "critic_loss", "actor_loss", "kl_mean", "train_return"):
            assert a[column] == b[column], (column, a["epoch"])
    resumed = load_checkpoint(killed / "checkpoint.pt")["replay"]["storage"]["prior_std"]
    assert torch.equal(resumed[:len(sigma0)], sigma0)  # σ0 itself again, bit for bit


class _Killed(Exception):
    """A kill after epoch 1, as a test stands it in."""


def _kill_after_one(row: dict) -> None:
    if row["epoch"] == 1:
        raise _Killed
