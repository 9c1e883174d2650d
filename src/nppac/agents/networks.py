"""The agent's networks: the actor π_φ (two heads) and the twin critics Q1, Q2."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save
from torch import nn

from nppac.distributions import gaussian_log_prob
from nppac.errors import NppacError
from nppac.outputs import atomic_file

ActorKind = Literal["tanh_gaussian", "gaussian_tanh_mean"]
ACTOR_KINDS: tuple[str, ...] = ("tanh_gaussian", "gaussian_tanh_mean")

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
"""Clamp of a state-dependent log σ_φ(s) (published rlkit SAC / N-PPAC actors)."""
_LOG_2 = math.log(2.0)


def check_log_std_range(value: tuple[float, float] | None) -> None:
    """Refuse a log σ range that is empty (low ≥ high), in one line."""
    if value is not None and not value[0] < value[1]:
        raise NppacError(f"log_std_range={value!r}: give low,high with low < high (e.g. --set log_std_range=-6,0)")


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers of the given widths with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def tanh_log_det_jacobian(u: torch.Tensor) -> torch.Tensor:
    """Σ log(1 − tanh²(u)), written as 2(log 2 − u − softplus(−2u)) so it stays finite for large |u|."""
    return (2.0 * (_LOG_2 - u - F.softplus(-2.0 * u))).sum(-1)


class Actor(nn.Module):
    """π_φ(a|s): an MLP trunk giving a diagonal Gaussian, read through one of two heads.

    * ``tanh_gaussian`` (locomotion): u ~ N(μ_φ(s), σ_φ²(s)), a = tanh(u);
      log π(a|s) = log N(u; μ, σ²) − Σ log(1 − tanh²(u)).
    * ``gaussian_tanh_mean`` (hand): a ~ N(tanh(μ_φ(s)), σ_φ²(s)); actions are not
      squashed (the environment clips them), so log π is the plain Gaussian density.

    By default log σ_φ(s) is a second output of the trunk, clamped to [−20, 2]. With ``log_std_range=(lo, hi)`` it is
    one learned value per action dimension, independent of the state, kept in [lo, hi] (AWAC's published hand-task
    policy: [−6, 0]).
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...], kind: ActorKind,
                 log_std_range: tuple[float, float] | None = None) -> None:
        super().__init__()
        if kind not in ACTOR_KINDS:
            raise NppacError(f"unknown actor head {kind!r}; choose one of: {', '.join(ACTOR_KINDS)}")
        self.obs_dim, self.act_dim, self.hidden, self.kind = obs_dim, act_dim, tuple(hidden), kind
        self.log_std_range = None if log_std_range is None else (float(log_std_range[0]), float(log_std_range[1]))
        if self.log_std_range is None:
            self.trunk = mlp([obs_dim, *hidden, 2 * act_dim])
        else:
            # rlkit's std_architecture="values": log σ = lo + sigmoid(w)(hi − lo), one w per action
            # dimension, starting at the middle of the range.
            self.trunk = mlp([obs_dim, *hidden, act_dim])
            self.log_std_logits = nn.Parameter(torch.zeros(act_dim))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) of the Gaussian: pre-squash for ``tanh_gaussian``, tanh'd mean for ``gaussian_tanh_mean``."""
        if self.log_std_range is None:
            mean, log_std = self.trunk(obs).chunk(2, dim=-1)
            log_std = log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)
        else:
            lo, hi = self.log_std_range
            mean = self.trunk(obs)
            log_std = (lo + torch.sigmoid(self.log_std_logits) * (hi - lo)).expand_as(mean)
        if self.kind == "gaussian_tanh_mean":
            mean = torch.tanh(mean)
        return mean, log_std.exp()

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterized action a = f_φ(ε; s) and its log-density log π_φ(a|s), shape (batch,)."""
        mean, std = self(obs)
        u = mean + std * torch.randn_like(mean)
        log_prob = gaussian_log_prob(u, mean, std)
        if self.kind == "tanh_gaussian":
            return torch.tanh(u), log_prob - tanh_log_det_jacobian(u)
        return u, log_prob

    def log_prob(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """log π_φ(a|s) of given actions (for ``tanh_gaussian`` actions are clipped just inside (−1, 1))."""
        mean, std = self(obs)
        return self.log_density(mean, std, action)

    def log_density(self, mean: torch.Tensor, std: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """log π_φ(a|s) from the head's (mean, std) at s, as :meth:`forward` returns them."""
        if self.kind == "tanh_gaussian":
            u = torch.atanh(action.clamp(-1.0 + 1e-6, 1.0 - 1e-6))
            return gaussian_log_prob(u, mean, std) - tanh_log_det_jacobian(u)
        return gaussian_log_prob(action, mean, std)

    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        """The mean action (tanh of the mean for ``tanh_gaussian``), clipped to [−1, 1]."""
        return self.mean_action(self(obs)[0])

    def mean_action(self, mean: torch.Tensor) -> torch.Tensor:
        """The deterministic action from the head's mean, as :meth:`forward` returns it."""
        if self.kind == "tanh_gaussian":
            mean = torch.tanh(mean)
        return mean.clamp(-1.0, 1.0)

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic action for one state (obs_dim,) or a batch (n, obs_dim), as float32 numpy."""
        param = next(self.parameters())
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=param.device)
        return self.deterministic(x).cpu().numpy()


class EnsembleLinear(nn.Module):
    """k independent linear layers applied in one batched matmul: (k, B, in) → (k, B, out)."""

    def __init__(self, k: int, n_in: int, n_out: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(n_in)  # nn.Linear's default initialization, per member
        self.weight = nn.Parameter(torch.empty(k, n_in, n_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(k, 1, n_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleLayerNorm(nn.Module):
    """Layer normalization of each ensemble member's (n, batch, width) activations, with its own gain and bias."""

    def __init__(self, n: int, width: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n, 1, width))
        self.bias = nn.Parameter(torch.zeros(n, 1, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:]) * self.weight + self.bias


class TwinCritic(nn.Module):
    """Q_k(s, a), k = 1, 2: two independent MLPs evaluated together; ``forward`` returns (2, batch).

    With ``bounds=(lo, hi)`` the outputs are clamped to that interval. With ``layernorm`` every hidden layer is
    normalized before its ReLU (RLPD's remedy for a critic that extrapolates to large values at actions it has not
    seen; Ball et al. 2023).
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...],
                 bounds: tuple[float, float] | None = None, layernorm: bool = False) -> None:
        super().__init__()
        sizes = [obs_dim + act_dim, *hidden, 1]
        self.bounds = bounds
        self.layers = nn.ModuleList(EnsembleLinear(2, i, o) for i, o in zip(sizes[:-1], sizes[1:]))
        self.norms = nn.ModuleList(EnsembleLayerNorm(2, width) for width in hidden) if layernorm else None

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        x = torch.cat([obs, action], dim=-1).expand(2, -1, -1)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                if self.norms is not None:
                    x = self.norms[i](x)
                x = torch.relu(x)
        x = x.squeeze(-1)
        if self.bounds is not None:
            # The returns' range where the reward's is known (binary tasks: [−1/(1 − γ), 0]); rlkit's
            # hand-task critics end in the same clamp (Clamp(max=0)).
            x = x.clamp(*self.bounds)
        return x


def freeze(actor: Actor) -> Actor:
    """A frozen copy of ``actor`` (no gradients, eval mode): training ``actor`` on leaves it as it is."""
    return copy.deepcopy(actor).requires_grad_(False).eval()


def save_actor(actor: Actor, path: str | Path) -> None:
    """Write the actor's weights to a safetensors file, its architecture in the metadata."""
    meta = {"kind": actor.kind, "obs_dim": str(actor.obs_dim), "act_dim": str(actor.act_dim),
            "hidden": ",".join(str(h) for h in actor.hidden)}
    if actor.log_std_range is not None:
        meta["log_std_range"] = ",".join(str(v) for v in actor.log_std_range)
    tensors = {k: v.detach().cpu().contiguous() for k, v in actor.state_dict().items()}
    # Bytes through atomic_file: safetensors' own save_file creates files with mode 0600.
    with atomic_file(path) as f:
        f.write(save(tensors, metadata=meta))


def load_actor(path: str | Path, device: str | torch.device = "cpu") -> Actor:
    """Rebuild an actor written by :func:`save_actor` (in eval mode, on ``device``)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise NppacError(f"actor file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        hidden = tuple(int(h) for h in meta["hidden"].split(",") if h)
        log_std_range = None
        if "log_std_range" in meta:
            low, high = (float(v) for v in meta["log_std_range"].split(","))
            log_std_range = (low, high)
        actor = Actor(int(meta["obs_dim"]), int(meta["act_dim"]), hidden, meta["kind"], log_std_range)
        tensors = load_file(str(path))
        actor.load_state_dict(tensors)
    except (KeyError, ValueError, RuntimeError, OSError, SafetensorError) as err:
        raise NppacError(f"{path} is not an nppac actor file ({err.__class__.__name__}: {err}); "
                         "write it with nppac.agents.save_actor") from None
    bad = next((name for name, tensor in tensors.items() if not bool(torch.isfinite(tensor).all())), None)
    if bad is not None:  # its actions would be NaN
        raise NppacError(f"{path}: tensor {bad!r} holds NaN or Inf, which no trained actor does; the file is "
                         "damaged, restore it or save the actor again")
    return actor.to(device).eval()
