"""What the training loop needs from an agent, and the optimizer plumbing every update shares."""

from __future__ import annotations

from typing import Any, Iterable, Protocol

import torch
from torch import nn

from nppac.agents.networks import Actor
from nppac.data.replay import Batch


class Agent(Protocol):
    """An algorithm's networks and optimizers, seen from the shared training loop.

    ``update`` is one gradient step on a replay mini-batch; it returns the values
    named by ``metrics``, in that order, stacked in one tensor on ``device`` (no host
    syncs). ``metric_terms`` gives each metric a human name for the one-line message
    when it becomes non-finite. ``state_dict()["actor"]`` is the actor's weights.
    """

    actor: Actor
    device: torch.device
    metrics: tuple[str, ...]
    metric_terms: dict[str, str]

    def update(self, batch: Batch) -> torch.Tensor:
        """One gradient step; the :attr:`metrics` as one device tensor."""

    def state_dict(self) -> dict[str, Any]:
        """Everything a checkpoint needs to continue training (key ``actor``: the actor's weights)."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""


def adam(params: Iterable[nn.Parameter], lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam whose step counter lives on the device on CUDA: no host syncs, CUDA-graph capturable."""
    return torch.optim.Adam(params, lr=lr, capturable=device.type == "cuda")


def optimizer_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor,
                   params: Iterable[nn.Parameter]) -> torch.Tensor:
    """Backpropagate ``loss``, step ``optimizer``; returns the gradient norm of ``params`` (a device tensor)."""
    params = list(params)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
    optimizer.step()
    return norm


@torch.no_grad()
def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging of target networks: θ̄ ← (1 − τ) θ̄ + τ θ."""
    for target_param, param in zip(target.parameters(), source.parameters()):
        target_param.lerp_(param, tau)
