"""Shared test builders: single-threaded torch fixtures, demonstration sets, stand-in priors, tiny run settings,
and replay batches with the reference densities that recompute the agents' losses independently of nppac."""

import copy
import json
import pickle
import sys
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from torch import nn

from nppac.data import save_npz
from nppac.data.demos import Demonstrations, Trajectory
from nppac.data.replay import Batch
from nppac.distributions import gaussian_log_prob


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the body with `count` torch threads, restoring the previous count afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Small matrices: one thread is as fast, and far faster on a busy machine."""
    with torch_threads(1):
        yield


@pytest.fixture(autouse=True)
def one_thread_per_test() -> Iterator[None]:
    """Tiny networks: one thread is fastest, and immune to the other cores being busy."""
    with torch_threads(1):
        yield


def benchmark_module(name: str) -> ModuleType:
    """A script of ``benchmarks/`` imported as a module (its own folder on the path while it imports)."""
    import importlib

    folder = str(Path(__file__).resolve().parents[1] / "benchmarks")
    sys.path.insert(0, folder)
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(folder)


def flip_bit(path: Path, pick: Callable[[list[zipfile.ZipInfo]], zipfile.ZipInfo], bit: int = 1) -> None:
    """Flip a bit in the middle of the stored bytes of the entry of the zip ``path`` (a checkpoint) that ``pick``
    chooses."""
    with zipfile.ZipFile(path) as archive:
        info = pick(archive.infolist())
    data = bytearray(path.read_bytes())
    lengths = data[info.header_offset + 26:info.header_offset + 30]  # of the local header's name and extra field
    start = info.header_offset + 30 + int.from_bytes(lengths[:2], "little") + int.from_bytes(lengths[2:], "little")
    data[start + info.file_size // 2] ^= bit
    path.write_bytes(bytes(data))


def make_demos(states: np.ndarray, actions: np.ndarray) -> Demonstrations:
    """One trajectory with the given states/actions, zero rewards and no episode ends."""
    n = len(states)
    traj = Trajectory(states.astype(np.float32), actions.astype(np.float32), np.zeros(n, np.float32),
                      np.zeros(n, bool), np.zeros(n, bool), states.astype(np.float32))
    return Demonstrations([traj])


# ---------------------------------------------------------------- demonstrations

LENGTHS = (5, 7, 3)
"""Steps of the episodes :func:`raw_episodes` makes by default."""
OBS_DIM, ACT_DIM = 3, 2


def raw_episodes(seed: int = 0, lengths=LENGTHS, obs_dim: int = OBS_DIM, act_dim: int = ACT_DIM) -> list[dict]:
    """Float64 episodes with T + 1 states each; only the first ends in a terminal."""
    rng = np.random.default_rng(seed)
    episodes = []
    for i, steps in enumerate(lengths):
        episodes.append({
            "states": rng.normal(size=(steps + 1, obs_dim)),
            "actions": rng.uniform(-1, 1, size=(steps, act_dim)),
            "rewards": rng.normal(size=steps),
            "terminal": i == 0,
            "success": rng.random(steps) < 0.5,
        })
    return episodes


def assert_same(a: Demonstrations, b: Demonstrations) -> None:
    """Same trajectories, bit for bit, with the same dtypes and infos."""
    assert len(a) == len(b)
    for ta, tb in zip(a, b):
        for name in ("observations", "actions", "rewards", "terminals", "timeouts", "next_observations"):
            x, y = getattr(ta, name), getattr(tb, name)
            assert x.dtype == y.dtype, name
            np.testing.assert_array_equal(x, y, err_msg=name)
        assert sorted(ta.infos) == sorted(tb.infos)
        for key in ta.infos:
            assert ta.infos[key].dtype == tb.infos[key].dtype
            np.testing.assert_array_equal(ta.infos[key], tb.infos[key])


def write_pickle(tmp_path, paths, name: str = "demos.pkl"):
    """``paths`` pickled into ``tmp_path / name`` (an mjrl-style demonstration file); returns the path."""
    path = tmp_path / name
    with open(path, "wb") as f:
        pickle.dump(paths, f)
    return path


def binary_paths(successes: list[int], steps: int = 30, obs_dim: int = 45, act_dim: int = 24) -> list[dict]:
    """Pen-shaped trajectories whose first ``k`` steps succeed (binary reward 0), the rest −1."""
    rng = np.random.default_rng(1)
    return [{
        "observations": rng.normal(size=(steps, obs_dim)),
        "actions": rng.uniform(-1, 1, size=(steps, act_dim)),
        "rewards": np.where(np.arange(steps) < k, 0.0, -1.0),
    } for k in successes]


def toy_npz(path, n=120, obs_dim=3, act_dim=2, seed=0):
    """One trajectory of ``n`` random states and actions tanh(s[:act_dim]), saved as nppac ``.npz`` at ``path``."""
    rng = np.random.default_rng(seed)
    states = rng.normal(size=(n, obs_dim)).astype(np.float32)
    actions = np.tanh(states[:, :act_dim]).astype(np.float32)
    traj = Trajectory(states, actions, np.zeros(n, np.float32), np.zeros(n, bool),
                      np.r_[np.zeros(n - 1, bool), True], states.copy())
    save_npz(Demonstrations([traj]), path)
    return path


def write_minari(folder: Path, monkeypatch, episodes: list[dict], infos: str = "success",
                 dict_observations: bool = False) -> Path:
    """A local Minari dataset written with Minari's own API; returns its folder.

    ``infos``: "success" (a success flag per step), "other" (infos without one) or
    "none" (no infos given: Minari then stores none).
    """
    gym = pytest.importorskip("gymnasium")
    minari = pytest.importorskip("minari")
    from minari.data_collector.episode_buffer import EpisodeBuffer

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(folder))
    observation_space = gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
    if dict_observations:
        observation_space = gym.spaces.Dict({"joints": observation_space,
                                             "goal": gym.spaces.Box(-1, 1, (1,), np.float32)})
    buffers = []
    for i, ep in enumerate(episodes):
        steps = len(ep["actions"])
        states = ep["states"].astype(np.float32)
        extra = {
            # Minari keeps the reset info first
            "success": {"infos": {"success": np.concatenate([[False], ep["success"]])}},
            "other": {"infos": {"distance": np.arange(steps + 1, dtype=np.float64)}},
            "none": {},
        }[infos]
        buffers.append(EpisodeBuffer(
            id=i,
            observations={"joints": states, "goal": np.zeros((steps + 1, 1), np.float32)}
            if dict_observations else states,
            actions=ep["actions"].astype(np.float32),
            rewards=list(ep["rewards"]),
            terminations=list((np.arange(steps) == steps - 1) & ep["terminal"]),
            truncations=list((np.arange(steps) == steps - 1) & (not ep["terminal"])),
            **extra,
        ))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Minari's reminders about missing eval_env/env_spec metadata
        minari.create_dataset_from_buffers(
            "nppac-test-v0", buffers,
            observation_space=observation_space,
            action_space=gym.spaces.Box(-1.0, 1.0, (ACT_DIM,), np.float32),
            author="nppac", author_email="nppac@example.org", code_permalink="tests", algorithm_name="synthetic",
            description="test set",
        )
    return folder / "nppac-test-v0"


# ---------------------------------------------------------------- training runs

TINY = dict(task="halfcheetah", steps=300, steps_per_epoch=150, updates_per_epoch=40, warmup_steps=150,
            eval_episodes=1, horizon=60, batch_size=32, actor_hidden=(32, 32), critic_hidden=(32, 32),
            init_epochs=2, num_threads=1, prior_sigma="std")
"""Two 150-step epochs of 40 updates with 32-wide networks: seconds, but every stage runs."""


TINY_SETS = ["--set", "steps_per_epoch=150", "--set", "updates_per_epoch=60", "--set", "warmup_steps=150",
             "--set", "eval_episodes=1", "--set", "horizon=50", "--set", "batch_size=32",
             "--set", "actor_hidden=32,32", "--set", "critic_hidden=32,32", "--set", "num_threads=1"]
"""The TINY settings of a run as ``--set`` flags of ``nppac train`` (150-step epochs, 32-wide networks)."""


def tiny(algo: str, **settings: object) -> dict[str, object]:
    """TINY less what ``algo`` does not read (the table of nppac.training.algorithms), then ``settings``."""
    from nppac.training.algorithms import get_algorithm

    return {**{k: v for k, v in TINY.items() if get_algorithm(algo).reads_setting(k)}, **settings}


def tiny_sets(algo: str) -> list[str]:
    """TINY_SETS less what ``algo`` does not read."""
    from nppac.training.algorithms import get_algorithm

    pairs = [(TINY_SETS[i], TINY_SETS[i + 1]) for i in range(0, len(TINY_SETS), 2)]
    return [x for flag, kv in pairs if get_algorithm(algo).reads_setting(kv.partition("=")[0]) for x in (flag, kv)]


def tiny_demos(task: str = "halfcheetah", episodes: int = 2, length: int = 60, seed: int = 0) -> Demonstrations:
    """Short rollouts of a fixed smooth policy: enough for a prior and policy initialization in tests."""
    from nppac.tasks import get_task

    env = get_task(task).make_env(seed=seed)
    rng = np.random.default_rng(seed)
    trajectories = []
    for _ in range(episodes):
        obs, _ = env.reset()
        rows = []
        for _ in range(length):
            smooth = 0.5 * np.tanh(obs[: env.action_space.shape[0]])
            action = np.clip(smooth + 0.1 * rng.normal(size=env.action_space.shape), -1, 1).astype(np.float32)
            nxt, reward, terminated, _, _ = env.step(action)
            rows.append((obs, action, reward, terminated, nxt))
            obs = nxt
        o, a, r, d, n = (np.asarray(x, dtype=np.float32) for x in zip(*rows))
        timeouts = np.zeros(length, bool)
        timeouts[-1] = True
        trajectories.append(Trajectory(o, a, r, d.astype(bool), timeouts, n))
    env.close()
    return Demonstrations(trajectories, source="test rollouts", format="memory", task=task)


class LinearGaussianPrior:
    """A fixed stand-in reference policy: π0(·|s) = N(tanh(s W), diag σ0²(s)), σ0 = 0.2 + 0.1·|tanh(s v)|."""

    def __init__(self, obs_dim: int, act_dim: int, kind: str = "gp", seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.kind, self.obs_dim, self.act_dim = kind, obs_dim, act_dim
        self.W = 0.3 * torch.randn(obs_dim, act_dim, generator=g)
        self.v = torch.randn(obs_dim, act_dim, generator=g)
        self.calls = 0

    def predict(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls += 1
        s = states.float().cpu()
        return torch.tanh(s @ self.W).to(states.device), (0.2 + 0.1 * torch.tanh(s @ self.v).abs()).to(states.device)

    def log_prob(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        mean, std = self.predict(states)
        return gaussian_log_prob(actions, mean, std)

    def fit(self, demos):
        return {}

    def save(self, directory: str | Path) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / "stand_in.json").write_text(json.dumps({"kind": self.kind}))


def transitions(n: int, obs_dim: int = 5, act_dim: int = 2, seed: int = 0):
    """``n`` random (obs, action, reward, next_obs, done) arrays; rewards count up, every 7th step is done."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, obs_dim)), rng.uniform(-1, 1, (n, act_dim)), np.arange(n, dtype=float),
            rng.normal(size=(n, obs_dim)), (np.arange(n) % 7 == 0).astype(float))


def nppac_in_process(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """``nppac ARGS`` through the console entry point in this process: (exit code, stdout, stderr).

    Cheaper than a subprocess (no second torch import); one end-to-end subprocess test remains.
    """
    from nppac.cli import main

    monkeypatch.setattr(sys, "argv", ["nppac", *args])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out, captured.err


def random_batch(n: int, obs_dim: int, act_dim: int, seed: int = 0) -> Batch:
    """n random transitions inside the action box, every fifth terminal, with a cached prior (μ0, σ0) at s and
    an unrelated one at s′ (so that reading the prior at the wrong state changes every number)."""
    g = torch.Generator().manual_seed(seed)
    obs, next_obs = torch.randn(n, obs_dim, generator=g), torch.randn(n, obs_dim, generator=g)
    action = torch.rand(n, act_dim, generator=g) * 1.8 - 0.9
    reward = torch.randn(n, generator=g)
    done = (torch.arange(n) % 5 == 0).float()
    prior = [(torch.rand(n, act_dim, generator=g) * 1.6 - 0.8, 0.2 + 0.6 * torch.rand(n, act_dim, generator=g))
             for _ in range(2)]
    return Batch(obs, action, reward, next_obs, done, prior[0][0], prior[0][1], prior[1][0], prior[1][1])


def perturb(module: nn.Module, scale: float = 0.3, seed: int = 0) -> None:
    """Add scale · N(0, 1) noise, from a generator seeded with ``seed``, to every parameter of ``module``: a network
    that training moved (an actor after policy initialization, then after online steps)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.add_(scale * torch.randn(param.shape, generator=g))


def move_targets_away(critic_target: nn.Module, scale: float = 0.1, seed: int = 0) -> None:
    """Perturb freshly copied target critics, so that one Polyak step Q̄ ← (1 − τ) Q̄ + τ Q shows τ.

    Right after the copy Q̄ and Q differ only by one critic step, and any τ passes at float32 tolerance.
    """
    perturb(critic_target, scale, seed)


def float64_copy(module: nn.Module) -> nn.Module:
    """A float64 copy of a network: the reference computation, free of float32 rounding."""
    return copy.deepcopy(module).double()


def normal_log_density(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, diag std²) summed over the last dimension, by torch.distributions (not nppac's)."""
    return torch.distributions.Normal(mean, std).log_prob(x).sum(-1)


def tanh_normal_log_density(u: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """log-density of a = tanh(u), u ~ N(mean, diag std²): the Gaussian's, less Σ log(1 − tanh²(u))."""
    return normal_log_density(u, mean, std) - torch.log(1.0 - torch.tanh(u).pow(2)).sum(-1)


def assert_grads_equal(module: nn.Module, expected: Sequence[torch.Tensor], rtol: float = 1e-5,
                       atol: float = 1e-6) -> None:
    """The gradients a module's last backward pass left on its parameters equal ``expected`` (same order)."""
    params = list(module.parameters())
    assert len(params) == len(expected)
    for param, grad in zip(params, expected):
        assert param.grad is not None
        torch.testing.assert_close(param.grad.double(), grad.double(), rtol=rtol, atol=atol)
