"""Gradient steps per second of the KL-regularized SAC update: nppac (cached prior) vs sac (no prior).

Identical sizes for both (HalfCheetah dimensions, 2×256 actor and critics, batch 256,
a full replay buffer of 100k transitions); the only difference is the prior term read
from the cached (μ0, σ0), which any prior gives the update alike: here a small NN prior
fitted to random data. Rounds alternate between the two algorithms so that load
from other processes hits both alike; the median round is reported.

    .venv/bin/python benchmarks/bench_update.py [--device cpu|cuda] [--threads 1 2] [--rounds 5] [--updates 200]
        [--buffer 100000]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from nppac.agents import KLSAC, KLSACConfig
from nppac.data import Demonstrations
from nppac.data.replay import ReplayBuffer
from nppac.priors import Prior, make_prior
from nppac.training import EpochMetrics, make_gradient_step
from nppac.training.prior_cache import PriorCache

OBS_DIM, ACT_DIM, HIDDEN, BATCH = 17, 6, (256, 256), 256
Step = Callable[[], None]


def _prior() -> Prior:
    """A small NN prior fitted to random states (the update reads only the (μ0, σ0) cached from it)."""
    states = np.random.default_rng(0).standard_normal((256, OBS_DIM)).astype(np.float32)
    prior = make_prior("nn", hidden=(32,), iters=5)
    prior.fit(Demonstrations.from_arrays(states, np.tanh(states[:, :ACT_DIM])))
    return prior


def _step_fn(algo: str, device: torch.device, size: int) -> tuple[Step, EpochMetrics]:
    use_prior = algo == "nppac"
    torch.manual_seed(0)
    agent = KLSAC(OBS_DIM, ACT_DIM, "tanh_gaussian", HIDDEN, HIDDEN, KLSACConfig(use_prior=use_prior), device)
    prior_cache = PriorCache(_prior(), device=device) if use_prior else None
    buffer = ReplayBuffer(OBS_DIM, ACT_DIM, size, device, prior_cache=prior_cache)
    g = torch.Generator().manual_seed(1)
    buffer.add(torch.randn(size, OBS_DIM, generator=g), torch.rand(size, ACT_DIM, generator=g) * 2 - 1,
               torch.randn(size, generator=g), torch.randn(size, OBS_DIM, generator=g), torch.zeros(size))
    metrics = EpochMetrics(tuple(agent.metric_terms), device)
    return make_gradient_step(agent, buffer, metrics, BATCH), metrics


def _rate(step: Step, metrics: EpochMetrics, n: int) -> float:
    metrics.read()
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    metrics.read()  # the one host sync per epoch, as in training
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--buffer", type=int, default=100_000, help="Transitions in the replay buffer.")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} default threads, "
          f"torch {torch.__version__}, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    for threads in args.threads if device.type == "cpu" else [torch.get_num_threads()]:
        torch.set_num_threads(threads)
        steps = {algo: _step_fn(algo, device, args.buffer) for algo in ("nppac", "sac")}
        for step, metrics in steps.values():
            _rate(step, metrics, 20)  # warm-up: allocator, Adam state
        rates: dict[str, list[float]] = {"nppac": [], "sac": []}
        for _ in range(args.rounds):
            for algo, (step, metrics) in steps.items():
                rates[algo].append(_rate(step, metrics, args.updates))
        nppac, sac = statistics.median(rates["nppac"]), statistics.median(rates["sac"])
        print(f"threads={threads}: nppac {nppac:.0f} updates/s, sac {sac:.0f} updates/s, "
              f"ratio nppac/sac {nppac / sac:.3f}  (rounds: nppac {[round(r) for r in rates['nppac']]}, "
              f"sac {[round(r) for r in rates['sac']]})")


if __name__ == "__main__":
    main()
