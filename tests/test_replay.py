from __future__ import annotations

import pytest
import torch

from nppac.data.replay import ReplayBuffer
from nppac.errors import NonFiniteError, NppacError
from nppac.training.prior_cache import PriorCache
from tests.builders import LinearGaussianPrior, transitions


def test_cached_prior_values_equal_direct_predictions():
    prior = LinearGaussianPrior(5, 2)
    buf = ReplayBuffer(5, 2, capacity=100, prior_cache=PriorCache(prior, chunk=16))
    obs, act, rew, nxt, done = transitions(40)
    buf.add(obs, act, rew, nxt, done)
    buf.add(*transitions(10, seed=1))
    assert len(buf) == 50
    all_obs = torch.cat([torch.as_tensor(obs, dtype=torch.float32), torch.as_tensor(transitions(10, seed=1)[0],
                                                                                    dtype=torch.float32)])
    all_next = torch.cat([torch.as_tensor(nxt, dtype=torch.float32), torch.as_tensor(transitions(10, seed=1)[3],
                                                                                     dtype=torch.float32)])
    mean, std = prior.predict(all_obs)
    next_mean, next_std = prior.predict(all_next)
    st = buf.storage
    torch.testing.assert_close(st["prior_mean"][:50], mean)
    torch.testing.assert_close(st["prior_std"][:50], std)
    torch.testing.assert_close(st["next_prior_mean"][:50], next_mean)
    torch.testing.assert_close(st["next_prior_std"][:50], next_std)
    # A sampled batch carries the cached values of exactly the sampled states.
    batch = buf.sample(256)
    m, s = prior.predict(batch.obs)
    torch.testing.assert_close(batch.prior_mean, m)
    torch.testing.assert_close(batch.next_prior_std, prior.predict(batch.next_obs)[1])


def test_prior_is_called_once_per_add_in_chunks():
    prior = LinearGaussianPrior(5, 2)
    buf = ReplayBuffer(5, 2, capacity=1000, prior_cache=PriorCache(prior, chunk=1000))
    buf.add(*transitions(300))  # s and s' of 300 transitions: 600 states, one chunk
    assert prior.calls == 1
    buf.sample(64)
    assert prior.calls == 1  # sampling never evaluates the prior


def test_ring_buffer_keeps_newest_and_samples_only_stored():
    buf = ReplayBuffer(5, 2, capacity=8)
    obs, act, rew, nxt, done = transitions(11)
    buf.add(obs[:6], act[:6], rew[:6], nxt[:6], done[:6])
    buf.add(obs[6:], act[6:], rew[6:], nxt[6:], done[6:])
    assert len(buf) == 8 and buf.ptr == 3
    assert sorted(buf.storage["reward"].tolist()) == [3, 4, 5, 6, 7, 8, 9, 10]
    small = ReplayBuffer(5, 2, capacity=50)
    small.add(*transitions(5))
    torch.manual_seed(0)
    rewards = small.sample(2000).reward
    assert set(rewards.tolist()) == {0.0, 1.0, 2.0, 3.0, 4.0}  # uniform over the 5 stored, nothing else
    assert small.has_prior is False and small.sample(3).prior_mean is None


def test_state_dict_round_trip():
    buf = ReplayBuffer(5, 2, capacity=20, prior_cache=PriorCache(LinearGaussianPrior(5, 2)))
    buf.add(*transitions(13))
    other = ReplayBuffer(5, 2, capacity=20, prior_cache=PriorCache(LinearGaussianPrior(5, 2)))
    other.load_state_dict(buf.state_dict())
    assert (other.ptr, other.size) == (13, 13)
    for k in buf.storage:
        torch.testing.assert_close(other.storage[k], buf.storage[k])
    with pytest.raises(NppacError, match="prior"):
        ReplayBuffer(5, 2, capacity=20).load_state_dict(buf.state_dict())


@pytest.mark.parametrize("added", [5, 11])  # not yet full / wrapped around
@pytest.mark.parametrize("capacity", [4, 8, 30])
def test_state_loads_into_another_capacity_keeping_the_newest_in_order(added, capacity):
    buf = ReplayBuffer(5, 2, capacity=8)
    buf.add(*transitions(added))
    other = ReplayBuffer(5, 2, capacity=capacity)
    other.load_state_dict(buf.state_dict())
    kept = list(range(added))[-min(added, 8, capacity):]  # rewards are the insertion indices
    assert len(other) == len(kept) and other.storage["reward"][: len(kept)].tolist() == kept
    # The ring then overwrites the oldest kept transition first.
    other.add(*(x[:1] for x in transitions(1, seed=1)))
    expected = kept[1:] + [0] if len(kept) == capacity else kept + [0]
    assert sorted(other.storage["reward"][: len(other)].tolist()) == sorted(expected)


def test_bad_prior_is_refused():
    with pytest.raises(NppacError, match=r"expected \(6, 2\)"):
        ReplayBuffer(5, 2, capacity=10, prior_cache=PriorCache(LinearGaussianPrior(5, 3))).add(*transitions(3))

    class ZeroStd(LinearGaussianPrior):
        def predict(self, states):
            mean, std = super().predict(states)
            return mean, 0 * std

    with pytest.raises(NonFiniteError, match="non-positive std"):
        ReplayBuffer(5, 2, capacity=10, prior_cache=PriorCache(ZeroStd(5, 2))).add(*transitions(3))


def test_the_cache_stores_sigma0_as_the_prior_predicts_it():
    """The σ0 convention is the loss's (nppac.agents.kl_sac.prior_log_prob): the buffer keeps the predicted std."""
    prior = LinearGaussianPrior(5, 2)
    states = torch.as_tensor(transitions(20)[0], dtype=torch.float32)
    mean, std = prior.predict(states)
    buf = ReplayBuffer(5, 2, capacity=20, prior_cache=PriorCache(prior))
    buf.add(*transitions(20))
    torch.testing.assert_close(buf.storage["prior_mean"], mean, rtol=0, atol=0)
    torch.testing.assert_close(buf.storage["prior_std"], std, rtol=0, atol=0)


def test_chained_transitions_query_each_state_once():
    """Collected in order, s′ of a step is s of the next: those states are predicted once, and every
    stored value is still the prior's at its own state (a reset breaks the chain)."""
    prior = LinearGaussianPrior(5, 2)
    queried: list[int] = []

    def cache(states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        queried.append(len(states))
        return prior.predict(states)

    traj = torch.randn(13, 5)
    obs, nxt = traj[:-1].clone(), traj[1:].clone()
    nxt[4, 0] += 1.0  # an episode ends at step 4: its s′ is a final state, step 5 starts from a reset
    # (that final state differs from the reset state in one coordinate only)
    n = len(obs)
    buf = ReplayBuffer(5, 2, capacity=100, prior_cache=cache)
    buf.add(obs, torch.zeros(n, 2), torch.zeros(n), nxt, torch.zeros(n))
    assert queried == [n + 2]  # the n states, the final state of step 4 and the last s′
    mean, std = prior.predict(nxt)
    torch.testing.assert_close(buf.storage["next_prior_mean"][:n], mean)
    torch.testing.assert_close(buf.storage["next_prior_std"][:n], std)
    torch.testing.assert_close(buf.storage["prior_mean"][:n], prior.predict(obs)[0])
