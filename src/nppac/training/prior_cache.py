"""What the agent reads of π0: (μ0, σ0) at replay states, computed once per stored state.

σ0 is cached as the prior predicts it (the GP's exact or LOVE std, ``nppac.priors.use_variance``), for every prior
kind alike; how σ0 scales π0 (``prior_sigma``, DESIGN.md §2) is applied where the KL is computed
(:func:`nppac.agents.kl_sac.prior_log_prob`), so that the loss shows which π0 a run regularizes toward.
"""

from __future__ import annotations

import torch

from nppac.errors import NonFiniteError, NppacError
from nppac.priors.base import Prior


class PriorCache:
    """(μ0, σ0) of ``prior`` at states, in chunks, checked, on ``device``: what the replay buffer stores beside each
    transition and policy initialization reads, so both see the same π0."""

    def __init__(self, prior: Prior, device: str | torch.device = "cpu", chunk: int = 4096) -> None:
        self.prior, self.device, self.chunk = prior, torch.device(device), chunk

    @torch.no_grad()
    def __call__(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        means, stds = [], []
        for chunk in states.split(self.chunk):  # predict takes states on any device and answers on theirs
            mean, std = self.prior.predict(chunk)
            means.append(mean.to(self.device, torch.float32))
            stds.append(std.to(self.device, torch.float32))
        mean, std = torch.cat(means), torch.cat(stds)
        if mean.shape != (len(states), self.prior.act_dim) or std.shape != mean.shape:
            raise NppacError(f"prior.predict returned shapes {tuple(mean.shape)}, {tuple(std.shape)}; "
                             f"expected ({len(states)}, {self.prior.act_dim})")
        if not bool(torch.isfinite(mean).all() & torch.isfinite(std).all() & (std > 0).all()):
            raise NonFiniteError(f"prior ({self.prior.kind}) predicted a non-finite mean or a non-positive std "
                                 "for new replay states; check the prior's fit")
        return mean, std

