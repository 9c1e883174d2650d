"""The variance ablation: a mean-std prior, whose mean is one prior's and whose σ0 is another's.

The paper isolates the cause of the pathology with π0(·|s) = N(μ_GP(s), σ_NN²(s)): the
GP's mean with the MLE network's collapsing variance. Against the full GP prior only
σ0 differs, so any gap in online learning is the variance's doing.

Its kind names both parts, in memory and in ``settings.json`` alike: ``gp-mean-nn-std``
for the ablation. Priors saved by earlier versions under the kind ``combined`` load too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from nppac.data.demos import Demonstrations
from nppac.distributions import gaussian_log_prob
from nppac.errors import NppacError
from nppac.outputs import write_atomic
from nppac.priors.base import Prior
from nppac.priors.common import PRIOR_FORMAT, SETTINGS, Progress, read_settings
from nppac.priors.kinds import LOADERS, PRIOR_KINDS, load_prior
from nppac.priors.metrics import prior_mean

LEGACY_KIND = "combined"
"""``kind`` under which earlier versions saved every mean-std prior (the parts' kinds in ``mean`` and ``std``)."""


def mean_std_kind(mean_kind: str, std_kind: str) -> str:
    """The kind of a mean-std prior from its parts' kinds: ``gp-mean-nn-std`` for the GP's mean and the NN's σ0."""
    return f"{mean_kind}-mean-{std_kind}-std"


class MeanStdPrior:
    """π0(·|s) = N(μ0 of ``mean_prior`` at s, σ0 of ``std_prior`` at s); its ``kind`` reads e.g. ``gp-mean-nn-std``."""

    squashed = False

    def __init__(self, mean_prior: Prior, std_prior: Prior) -> None:
        for role, part in (("mean", mean_prior), ("std", std_prior)):
            if part.squashed:
                raise NppacError(f"the {role} prior is tanh-squashed; combine Gaussian priors only "
                                 "(fit the NN prior with --variant gaussian or fixed_std)")
        if (mean_prior.obs_dim, mean_prior.act_dim) != (std_prior.obs_dim, std_prior.act_dim):
            raise NppacError(f"cannot combine a mean prior for obs_dim={mean_prior.obs_dim}, "
                             f"act_dim={mean_prior.act_dim} with a std prior for obs_dim={std_prior.obs_dim}, "
                             f"act_dim={std_prior.act_dim}")
        self.mean_prior, self.std_prior = mean_prior, std_prior
        self.kind = mean_std_kind(mean_prior.kind, std_prior.kind)
        self.obs_dim, self.act_dim = mean_prior.obs_dim, mean_prior.act_dim

    @property
    def fit_seconds(self) -> float | None:
        mean_s, std_s = self.mean_prior.fit_seconds, self.std_prior.fit_seconds
        return None if mean_s is None or std_s is None else float(mean_s + std_s)

    def fit(self, demos: Demonstrations, progress: Progress | None = None) -> dict[str, Any]:
        """Fit both parts to the demonstrations; returns their fit summaries under ``mean`` and ``std``."""
        info = {"mean": self.mean_prior.fit(demos, progress=progress),
                "std": self.std_prior.fit(demos, progress=progress)}
        self.obs_dim, self.act_dim = self.mean_prior.obs_dim, self.mean_prior.act_dim
        return info

    def predict(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, _ = self.mean_prior.predict(states)
        _, std = self.std_prior.predict(states)
        return mean, std

    def predict_mean(self, states: torch.Tensor) -> torch.Tensor:
        """μ0 alone: the mean prior's."""
        return prior_mean(self.mean_prior, states)

    def log_prob(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        mean, std = self.predict(states)
        return gaussian_log_prob(actions, mean, std)

    def to(self, device: torch.device | str) -> MeanStdPrior:
        self.mean_prior.to(device)
        self.std_prior.to(device)
        return self

    def save(self, directory: str | Path) -> None:
        """``settings.json`` (the kind, e.g. ``gp-mean-nn-std``) with the two parts saved in ``mean/`` and ``std/``."""
        out = Path(directory)
        self.mean_prior.save(out / "mean")
        self.std_prior.save(out / "std")
        settings = {"kind": self.kind, "format_version": 1, "obs_dim": self.obs_dim, "act_dim": self.act_dim,
                    "mean": self.mean_prior.kind, "std": self.std_prior.kind}
        write_atomic(out / SETTINGS, json.dumps({**settings, "format": PRIOR_FORMAT}, indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> MeanStdPrior:
        """Read a prior written by :meth:`save` (or by an earlier version, kind ``combined``), onto ``device``."""
        root = Path(directory)
        settings = read_settings(root)
        if settings["kind"] not in (LEGACY_KIND, mean_std_kind(str(settings.get("mean")), str(settings.get("std")))):
            raise NppacError(f"{root / SETTINGS}: not a mean-std prior")
        return cls(load_prior(root / "mean", device), load_prior(root / "std", device))


# Every pairing of the fitted kinds (the ablation's gp-mean-nn-std among them), and the earlier name.
LOADERS.update({mean_std_kind(m, s): MeanStdPrior.load for m in PRIOR_KINDS for s in PRIOR_KINDS})
LOADERS[LEGACY_KIND] = MeanStdPrior.load


def combine_priors(mean_prior: Prior, std_prior: Prior) -> MeanStdPrior:
    """The mean-std prior N(μ0 of ``mean_prior``, σ0² of ``std_prior``) (the ablation: the GP's mean, the NN's σ0)."""
    return MeanStdPrior(mean_prior, std_prior)
