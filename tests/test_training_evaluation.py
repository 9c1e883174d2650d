"""The deterministic evaluation: episodes stepped side by side are exactly the episodes run one after another."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nppac.agents.networks import Actor
from nppac.tasks import Task, get_task, list_tasks
from nppac.training.envs import EVAL_WIDTH, eval_envs, evaluate, make_env
from tests.builders import one_thread_per_test  # noqa: F401 (autouse fixture)


class ElementwisePolicy:
    """A deterministic policy whose action for a row does not depend on the other rows of the batch, bit for bit;
    it keeps every batch of observations it was asked about."""

    def __init__(self, act_dim: int) -> None:
        self.act_dim = act_dim
        self.seen: list[np.ndarray] = []

    def act(self, obs: np.ndarray) -> np.ndarray:
        self.seen.append(obs.copy())
        return np.tanh(3.0 * obs[:, :self.act_dim] + 0.5).astype(np.float32)


def episodes_seen(seen: list[np.ndarray], episodes: int, horizon: int) -> list[np.ndarray]:
    """Per episode, the observations the policy was asked about (episodes that all last ``horizon`` steps)."""
    per_episode: list[list[np.ndarray]] = [[] for _ in range(episodes)]
    first = 0
    for start in range(0, len(seen), horizon):
        wave = seen[start:start + horizon]
        for batch in wave:
            for j, row in enumerate(batch):
                per_episode[first + j].append(row)
        first += len(wave[0])
    return [np.stack(rows) for rows in per_episode]


def one_after_another(policy, env, task: Task, episodes: int, horizon: int) -> tuple[list[float], list[bool]]:
    """The reference: one environment, one episode after another, one observation per policy call."""
    returns, successes = [], []
    for _ in range(episodes):
        obs, _ = env.reset()
        total, flags = 0.0, []
        for _ in range(horizon):
            obs, reward, terminated, truncated, info = env.step(policy.act(obs[None])[0])
            total += float(reward)
            flags.append(bool(info.get("success", False)))
            if terminated or truncated:
                break
        returns.append(total)
        successes.append(task.episode_success(flags) if task.reward == "binary" else False)
    return returns, successes


def generator_state(env) -> dict:
    return env.unwrapped.np_random.bit_generator.state


@pytest.mark.parametrize(("name", "horizon", "width"), [("halfcheetah", 12, 3), ("hopper", 10, 4),
                                                         ("pen-binary", 15, 3)])
def test_side_by_side_episodes_are_the_one_after_another_episodes(name, horizon, width):
    task = get_task(name)
    episodes = 7  # waves of `width`, the last one shorter
    reference, policy = ElementwisePolicy(task.act_dim), ElementwisePolicy(task.act_dim)
    reference_env = make_env(task, horizon, seed=5)
    expected, expected_success = one_after_another(reference, reference_env, task, episodes, horizon)
    envs = [make_env(task, horizon, seed=5), *(make_env(task, horizon, None) for _ in range(width - 1))]
    result = evaluate(policy, envs, task, episodes, horizon)
    assert result.returns == expected  # exactly, episode by episode
    # Every episode saw exactly the observations of its one-after-another counterpart, from its own start.
    trajectories = episodes_seen(policy.seen, episodes, horizon)
    for got, want in zip(trajectories, episodes_seen(reference.seen, episodes, horizon)):
        np.testing.assert_array_equal(got, want)
    assert len({t[0].tobytes() for t in trajectories}) == episodes
    assert max(len(batch) for batch in policy.seen) == width
    if task.reward == "binary":
        assert result.successes == expected_success
        assert set(result.successes) <= {True, False}
    else:
        assert result.successes is None and result.success_rate is None
    assert result.mean_return == pytest.approx(np.mean(expected))
    # The stream continues where the one-after-another evaluation leaves it: the next evaluation agrees too.
    assert generator_state(envs[0]) == generator_state(reference_env)
    again = evaluate(policy, envs, task, 2, horizon)
    assert again.returns == one_after_another(policy, reference_env, task, 2, horizon)[0]


def test_hopper_episodes_that_end_early_leave_the_others_running():
    task = get_task("hopper")
    horizon = 200
    expected, _ = one_after_another(ElementwisePolicy(task.act_dim), make_env(task, horizon, seed=1), task, 4,
                                    horizon)
    policy = ElementwisePolicy(task.act_dim)
    result = evaluate(policy, eval_envs(task, horizon, 1, 4), task, 4, horizon)
    assert result.returns == expected
    sizes = [len(batch) for batch in policy.seen]
    assert sizes[0] == 4 and 0 < sizes[-1] < 4 and len(sizes) < horizon  # two fell first, the others went on


def test_the_actor_evaluated_side_by_side_gives_the_sequential_returns():
    task = get_task("halfcheetah")
    torch.manual_seed(0)
    actor = Actor(task.obs_dim, task.act_dim, (32, 32), "tanh_gaussian")
    horizon, episodes = 10, 5
    expected, _ = one_after_another(actor, make_env(task, horizon, seed=3), task, episodes, horizon)
    result = evaluate(actor, eval_envs(task, horizon, 3, episodes), task, episodes, horizon)
    # A batched forward may round differently from one row at a time; over 10 steps that stays at float level.
    np.testing.assert_allclose(result.returns, expected, rtol=1e-5, atol=1e-5)
    assert result.min_return == min(result.returns) < result.mean_return  # the worst episode, logged beside the mean


def test_evaluation_width_is_capped():
    task = get_task("halfcheetah")
    assert len(eval_envs(task, 5, 0, 3)) == 3
    assert len(eval_envs(task, 5, 0, 50)) == EVAL_WIDTH


@pytest.mark.parametrize("name", [t.name for t in list_tasks()])
def test_stepping_draws_nothing_from_the_environment_generator(name):
    """What side-by-side evaluation relies on: a task draws random numbers at a reset only."""
    task = get_task(name)
    env = task.make_env(seed=0)
    env.reset()
    before = generator_state(env)
    rng = np.random.default_rng(0)
    for _ in range(5):
        env.step(rng.uniform(-1, 1, task.act_dim).astype(np.float32))
    assert generator_state(env) == before
