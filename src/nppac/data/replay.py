"""The replay buffer, with the behavioral reference policy cached beside each transition.

π0 is fixed and depends only on the state, so (μ0, σ0) for s and s′ are computed once, when transitions enter
the buffer (DESIGN.md §3, prior caching): a gradient step never evaluates the prior, whose cost grows with the
demonstrations. The buffer is handed the function that computes them and knows nothing of priors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import numpy as np
import torch

from nppac.errors import NppacError

PriorFn = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""(μ0, σ0), each (n, act_dim), of the reference policy at n states, on the buffer's device."""

_FIELDS = ("obs", "action", "reward", "next_obs", "done")
_PRIOR_FIELDS = ("prior_mean", "prior_std", "next_prior_mean", "next_prior_std")


class Batch(NamedTuple):
    """A mini-batch of transitions; the prior fields are None in a buffer without a prior."""

    obs: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    next_obs: torch.Tensor
    done: torch.Tensor
    """1.0 only for true terminal states: time-limit truncations bootstrap."""
    prior_mean: torch.Tensor | None = None
    prior_std: torch.Tensor | None = None
    next_prior_mean: torch.Tensor | None = None
    next_prior_std: torch.Tensor | None = None


class ReplayBuffer:
    """A ring buffer of transitions held as torch tensors on the training device.

    With a ``prior_cache`` function, (μ0, σ0) of s and s′ are stored beside each transition
    by :meth:`add`. Sampling draws indices with torch's RNG on the device and needs no
    host sync, so it can sit inside a compiled or graph-captured gradient step.
    """

    def __init__(self, obs_dim: int, act_dim: int, capacity: int, device: str | torch.device = "cpu",
                 prior_cache: PriorFn | None = None) -> None:
        if capacity < 1:
            raise NppacError(f"replay capacity must be positive, got {capacity}")
        self.obs_dim, self.act_dim, self.capacity = obs_dim, act_dim, capacity
        self.device = torch.device(device)
        self.prior_cache = prior_cache
        shapes = {"obs": (obs_dim,), "action": (act_dim,), "reward": (), "next_obs": (obs_dim,), "done": ()}
        if prior_cache is not None:
            shapes.update({k: (act_dim,) for k in _PRIOR_FIELDS})
        self.storage = {k: torch.zeros((capacity, *s), device=self.device) for k, s in shapes.items()}
        self.ptr = 0
        self.size = 0
        self._size_t = torch.zeros((), dtype=torch.long, device=self.device)

    def __len__(self) -> int:
        return self.size

    @property
    def has_prior(self) -> bool:
        return self.prior_cache is not None

    def add(self, obs: Any, action: Any, reward: Any, next_obs: Any, done: Any) -> None:
        """Append n transitions (arrays with a leading dimension n), caching π0 at s and s′ if there is a prior."""
        values = {k: torch.as_tensor(np.asarray(v, dtype=np.float32) if not torch.is_tensor(v) else v,
                                     dtype=torch.float32, device=self.device)
                  for k, v in zip(_FIELDS, (obs, action, reward, next_obs, done))}
        n = len(values["obs"])
        if n == 0:
            return
        if self.prior_cache is not None:
            values.update(self._prior_values(self.prior_cache, values["obs"], values["next_obs"]))
        if n > self.capacity:  # only the newest transitions survive a full wrap
            values = {k: v[-self.capacity:] for k, v in values.items()}
            n = self.capacity
        idx = (self.ptr + torch.arange(n, device=self.device)) % self.capacity
        for k, v in values.items():
            self.storage[k][idx] = v.reshape(n, *self.storage[k].shape[1:]).to(self.device)
        self.ptr = (self.ptr + n) % self.capacity
        self.size = min(self.size + n, self.capacity)
        self._size_t.fill_(self.size)

    def _prior_values(self, cache: PriorFn, obs: torch.Tensor, next_obs: torch.Tensor) -> dict[str, torch.Tensor]:
        """(μ0, σ0) at s and s′, each distinct state predicted once.

        Transitions collected in order chain: s′ of one step is s of the next, except where
        an episode ended. Those s′ reuse the values of the s they equal (exactly), so the
        prior, the costly part of collection, sees n states plus one per episode boundary
        instead of 2n.
        """
        n = len(obs)
        chained = torch.zeros(n, dtype=torch.bool, device=obs.device)
        chained[:-1] = (next_obs[:-1] == obs[1:]).all(dim=1)
        fresh = (~chained).nonzero().squeeze(1)
        queried = n + len(fresh)
        mean, std = cache(torch.cat([obs, next_obs[fresh]]))
        if mean.shape != (queried, self.act_dim) or std.shape != mean.shape:
            raise NppacError(f"the prior returned shapes {tuple(mean.shape)}, {tuple(std.shape)}; "
                             f"expected ({queried}, {self.act_dim})")
        # row of s′_i among the predictions: s_{i+1}'s where chained, its own after the n states otherwise
        rows = torch.arange(1, n + 1, device=mean.device)
        rows[fresh.to(mean.device)] = n + torch.arange(len(fresh), device=mean.device)
        return {"prior_mean": mean[:n], "prior_std": std[:n],
                "next_prior_mean": mean[rows], "next_prior_std": std[rows]}

    def sample(self, batch_size: int) -> Batch:
        """Uniform mini-batch (with replacement) over the stored transitions; no host sync."""
        # The modulus is a device tensor, so neither the growing size nor the draw leaves the device.
        idx = torch.randint(0, 2**62, (batch_size,), device=self.device) % self._size_t
        return Batch(**{k: v[idx] for k, v in self.storage.items()})

    def state_dict(self) -> dict[str, Any]:
        """The filled part of the storage plus the write position (for checkpoints)."""
        return {"ptr": self.ptr, "size": self.size, "capacity": self.capacity,
                "storage": {k: v[: self.size].clone() for k, v in self.storage.items()}}

    @staticmethod
    def state_problem(state: Any) -> str | None:
        """What makes a saved :meth:`state_dict` inconsistent, in words (None: nothing)."""
        try:
            ptr, size, capacity, storage = (state[k] for k in ("ptr", "size", "capacity", "storage"))
        except (KeyError, TypeError):
            return "lacks one of ptr, size, capacity, storage"
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (ptr, size, capacity)):
            return f"has counts that are not integers (ptr {ptr!r}, size {size!r}, capacity {capacity!r})"
        if not (0 <= size <= capacity and 0 <= ptr < capacity and (ptr == size or size == capacity)):
            return f"has size {size} and write position {ptr} in a capacity of {capacity}"
        lengths = {k: len(v) if isinstance(v, torch.Tensor) and v.ndim else None for k, v in storage.items()} \
            if isinstance(storage, dict) else {}
        wrong = [f"{k} {n}" for k, n in lengths.items() if n != size]
        if not lengths or wrong:
            return f"holds {', '.join(wrong) or 'no'} transitions where its size is {size}"
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; another capacity (a run extended or shortened) keeps the newest transitions in
        the order they were added, so the ring goes on overwriting the oldest."""
        if set(state["storage"]) != set(self.storage):
            raise NppacError("checkpoint replay buffer does not match this run's prior; "
                             "resume with the configuration stored in the run directory")
        ptr, size = int(state["ptr"]), int(state["size"])
        storage = state["storage"]
        if int(state["capacity"]) != self.capacity:
            order = torch.arange(size)
            if size == int(state["capacity"]):  # wrapped: the oldest transition sits at ptr
                order = (order + ptr) % size
            order = order[max(0, size - self.capacity):]
            storage = {k: v[order] for k, v in storage.items()}
            size = len(order)
            ptr = size % self.capacity
        self.ptr, self.size = ptr, size
        for k, v in storage.items():
            self.storage[k][: self.size] = v.to(self.device)
        self._size_t.fill_(self.size)


class BatchSource(Protocol):
    """Where gradient steps draw their mini-batches: a :class:`ReplayBuffer`, or demonstrations and replay mixed."""

    def sample(self, batch_size: int) -> Batch: ...


def demo_count(fraction: float, batch_size: int) -> int:
    """The demonstration transitions of a mixed batch: f · B rounded to the nearest whole number (halves up)."""
    return math.floor(fraction * batch_size + 0.5)


class MixedBatches:
    """Mini-batches with a fixed share from the demonstrations (RLPD's symmetric sampling; Ball et al. 2023).

    Each batch of B transitions is ``demo_count(fraction, B)`` drawn from ``demos`` followed by the rest drawn
    from ``replay``, each by its buffer's own :meth:`ReplayBuffer.sample` (uniform, with replacement; no host
    sync). Both buffers must cache the same prior fields (or none).
    """

    def __init__(self, replay: ReplayBuffer, demos: ReplayBuffer, fraction: float) -> None:
        if replay.has_prior != demos.has_prior:
            raise NppacError("mixed batches need the demonstrations and the replay buffer to cache the same prior")
        self.replay, self.demos, self.fraction = replay, demos, fraction

    def sample(self, batch_size: int) -> Batch:
        """``demo_count`` demonstration transitions, then replay transitions: B in all."""
        n = demo_count(self.fraction, batch_size)
        first, rest = self.demos.sample(n), self.replay.sample(batch_size - n)
        return Batch._make(None if a is None or b is None else torch.cat([a, b]) for a, b in zip(first, rest))
