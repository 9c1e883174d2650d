"""What the agent reads of π0: (μ0, σ0) at replay states, computed once per stored state.

The σ0 convention is a named setting because the published code differs from the
math here (DESIGN.md §2): it builds π0 as ``Normal(mean, variance)``, passing the GP's
predictive *variance* where a standard deviation belongs.

* ``std`` — π0 = N(μ0, σ0²), the math as written.
* ``variance`` — π0 = N(μ0, (σ0²)²): the published code's prior. Where σ0 < 1 it is
  sharper than the math says (σ0 = 0.2 acts as 0.04), which near the data acts like a
  much larger α.

The convention is applied to every prior kind alike (GP, NN, the ablation), so that a
comparison between priors within a task stays fair.

An *anchored* cache (``kl_anchor = "init-actor"``, a remedy beyond the paper) answers with a
frozen actor's mean action in the place of μ0 and the prior's σ0: the online KL then pulls
toward the initialized policy where the prior is sure and lets go where its σ0 reverts.
"""

from __future__ import annotations

from typing import Literal

import torch

from nppac.agents.networks import Actor
from nppac.errors import NonFiniteError, NppacError
from nppac.priors.base import Prior

SigmaConvention = Literal["std", "variance"]
SIGMA_CONVENTIONS: tuple[str, ...] = ("std", "variance")


class PriorCache:
    """(μ0, σ0) of ``prior`` at states, in chunks, checked, on ``device``, with the σ0 convention applied.

    Handed to :class:`~nppac.data.replay.ReplayBuffer` (which stores the values beside
    each transition) and used by policy initialization, so both see the same π0.
    """

    def __init__(self, prior: Prior, sigma: SigmaConvention = "std", device: str | torch.device = "cpu",
                 chunk: int = 4096) -> None:
        if sigma not in SIGMA_CONVENTIONS:
            raise NppacError(f"unknown prior σ0 convention {sigma!r}; choose one of: {', '.join(SIGMA_CONVENTIONS)}")
        self.prior, self.sigma, self.device, self.chunk = prior, sigma, torch.device(device), chunk
        self.anchor: Actor | None = None

    def anchor_to(self, frozen: Actor) -> None:
        """From now on μ0 is ``frozen``'s mean action (its ``deterministic``: the run's frozen copy of the initialized
        policy, :func:`~nppac.agents.networks.freeze`); σ0 stays the prior's."""
        self.anchor = frozen

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
        if self.sigma == "variance":
            std = std.pow(2)
        if self.anchor is not None:
            mean = torch.cat([self.anchor.deterministic(chunk.to(self.device, torch.float32))
                              for chunk in states.split(self.chunk)])
        return mean, std
