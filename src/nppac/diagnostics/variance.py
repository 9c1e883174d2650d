"""Variance maps: where does each prior's predictive std collapse? (DESIGN.md §5.1)

A grid on the demonstration states' first two principal components, extending well beyond the data, is lifted
back to state space (s = mean + z₁ u₁ + z₂ u₂) and each prior's predictive std σ0(s), averaged over action
dimensions, drawn as a heatmap. A GP's std grows away from the data; a maximum-likelihood NN's stays tiny
everywhere — the pathology behind Proposition 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nppac.diagnostics.inputs import LabelledPrior
from nppac.errors import NppacError


@dataclass(frozen=True)
class PrincipalPlane:
    """The affine plane spanned by the first two principal components of a state set."""

    mean: np.ndarray
    """(obs_dim,) mean state."""
    components: np.ndarray
    """(2, obs_dim) orthonormal principal directions u₁, u₂ (rows)."""
    explained_variance_ratio: np.ndarray
    """(2,) fraction of the state variance along u₁ and u₂."""

    def project(self, states: np.ndarray) -> np.ndarray:
        """(n, 2) coordinates z = Uᵀ(s − mean)."""
        return (states - self.mean) @ self.components.T

    def lift(self, coords: np.ndarray) -> np.ndarray:
        """(n, obs_dim) states s = mean + z₁ u₁ + z₂ u₂ on the plane."""
        return self.mean + coords @ self.components


def principal_plane(states: np.ndarray) -> PrincipalPlane:
    """PCA of the (centred, unscaled) states; each direction's sign fixed by its largest loading."""
    states = np.asarray(states, dtype=np.float64)
    if states.ndim != 2 or states.shape[1] < 2 or states.shape[0] < 3:
        raise NppacError(f"variance map needs at least 3 states of at least 2 dims; got shape {states.shape}")
    mean = states.mean(axis=0)
    _, singular, vt = np.linalg.svd(states - mean, full_matrices=False)
    components = vt[:2]
    # SVD signs are arbitrary; fixing them keeps maps of the same data identical across runs.
    signs = np.sign(components[np.arange(2), np.abs(components).argmax(axis=1)])
    components = components * signs[:, None]
    variance = singular**2
    return PrincipalPlane(mean, components, variance[:2] / variance.sum())


@dataclass(frozen=True)
class VarianceMapConfig:
    """How the grid over the principal plane is laid out."""

    grid: int = 80
    """Cells per principal component."""
    extent: float = 3.0
    """Grid width per component as a multiple of the data's range, centred on the data."""
    batch_size: int = 2048
    """States per ``predict`` call (bounds the memory of a GP's cross-covariance)."""

    def __post_init__(self) -> None:
        if self.grid < 4:
            raise NppacError(f"--grid {self.grid}: use at least 4 cells per component")
        if not self.extent >= 1.0:
            raise NppacError(f"--extent {self.extent}: use at least 1 (the grid must cover the data)")


@dataclass(frozen=True)
class PriorVarianceMap:
    """One prior's predictive std over the grid and its summary numbers."""

    label: str
    """Panel title: kind, kernel or head, directory."""
    kind: str
    """The prior's kind (``gp`` or ``nn``)."""
    source: str
    """Where the prior was loaded from."""
    std_grid: np.ndarray
    """(grid, grid) mean-over-actions σ0 at cell centres; row i is PC 2 cell i, column j PC 1 cell j."""
    std_at_data: float
    """Mean σ0 at the demonstration states themselves."""

    @property
    def std_outer_ring(self) -> float:
        """Mean σ0 over the grid's outermost ring of cells (farthest from the data)."""
        ring = np.ones_like(self.std_grid, dtype=bool)
        ring[1:-1, 1:-1] = False
        return float(self.std_grid[ring].mean())

    @property
    def ratio(self) -> float:
        """std_outer_ring / std_at_data: > 1 when uncertainty grows off the data."""
        return self.std_outer_ring / self.std_at_data

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label, "kind": self.kind, "source": self.source,
            "std_at_data": self.std_at_data, "std_outer_ring": self.std_outer_ring, "ratio": self.ratio,
            "std_grid_min": float(self.std_grid.min()), "std_grid_max": float(self.std_grid.max()),
        }


@dataclass(frozen=True)
class VarianceMap:
    """Everything a variance-map figure shows."""

    plane: PrincipalPlane
    pc1_edges: np.ndarray
    """(grid + 1,) cell edges along PC 1."""
    pc2_edges: np.ndarray
    """(grid + 1,) cell edges along PC 2."""
    data_coords: np.ndarray
    """(n, 2) demonstration states on the plane."""
    priors: list[PriorVarianceMap]
    config: VarianceMapConfig

    def to_json(self) -> dict[str, Any]:
        return {
            "n_states": int(len(self.data_coords)),
            "grid": self.config.grid,
            "extent": self.config.extent,
            "explained_variance_ratio": self.plane.explained_variance_ratio.tolist(),
            "pc1_range": [float(self.pc1_edges[0]), float(self.pc1_edges[-1])],
            "pc2_range": [float(self.pc2_edges[0]), float(self.pc2_edges[-1])],
            "priors": [p.to_json() for p in self.priors],
        }


def mean_predictive_std(prior: Any, states: np.ndarray, batch_size: int = 2048) -> np.ndarray:
    """(n,) σ0(s) averaged over action dimensions, predicted in batches without gradients."""
    out = []
    with torch.no_grad():
        for start in range(0, len(states), batch_size):
            batch = torch.as_tensor(states[start:start + batch_size], dtype=torch.float32)
            _, std = prior.predict(batch)
            out.append(std.detach().double().mean(dim=-1).cpu().numpy())
    return np.concatenate(out)


def _grid_edges(coords: np.ndarray, extent: float, cells: int) -> np.ndarray:
    lo, hi = float(coords.min()), float(coords.max())
    width = (hi - lo) or 1.0  # a flat component still gets a visible band around it
    centre = 0.5 * (lo + hi)
    return np.linspace(centre - 0.5 * extent * width, centre + 0.5 * extent * width, cells + 1)


def variance_map(
    states: np.ndarray,
    priors: Sequence[LabelledPrior],
    config: VarianceMapConfig = VarianceMapConfig(),
    progress: Callable[[], None] | None = None,
) -> VarianceMap:
    """Predictive std of each prior over the principal plane of ``states`` (calls ``progress`` per prior)."""
    states = np.asarray(states, dtype=np.float64)
    plane = principal_plane(states)
    coords = plane.project(states)
    pc1_edges = _grid_edges(coords[:, 0], config.extent, config.grid)
    pc2_edges = _grid_edges(coords[:, 1], config.extent, config.grid)
    pc1_mid = 0.5 * (pc1_edges[1:] + pc1_edges[:-1])
    pc2_mid = 0.5 * (pc2_edges[1:] + pc2_edges[:-1])
    z1, z2 = np.meshgrid(pc1_mid, pc2_mid)  # (grid, grid), row index along PC 2
    grid_states = plane.lift(np.stack([z1.ravel(), z2.ravel()], axis=1))

    maps = []
    for p in priors:
        std_grid = mean_predictive_std(p.prior, grid_states, config.batch_size).reshape(z1.shape)
        std_data = mean_predictive_std(p.prior, states, config.batch_size)
        maps.append(PriorVarianceMap(p.label, p.prior.kind, p.source, std_grid, float(std_data.mean())))
        if progress is not None:
            progress()
    return VarianceMap(plane, pc1_edges, pc2_edges, coords, maps, config)


def plot_variance_map(vmap: VarianceMap, path: str | Path) -> Path:
    """One heatmap panel per prior on a shared logarithmic colour scale, data overlaid."""
    from matplotlib.colors import LogNorm

    from nppac.diagnostics import style

    positive = np.concatenate([m.std_grid[m.std_grid > 0] for m in vmap.priors])
    if positive.size == 0:
        raise NppacError("every prior predicts std 0 on the whole grid; nothing to draw on a log scale")
    vmin, vmax = float(positive.min()), float(positive.max())
    if vmax <= vmin * 1.01:  # a constant std still needs a non-empty colour range
        vmin, vmax = vmin / 1.5, vmax * 1.5
    norm = LogNorm(vmin=vmin, vmax=vmax)
    evr = vmap.plane.explained_variance_ratio

    with style.context():
        fig, axes = style.subplots(len(vmap.priors))
        meshes = []
        for ax, m in zip(axes[0], vmap.priors):
            meshes.append(ax.pcolormesh(vmap.pc1_edges, vmap.pc2_edges, np.clip(m.std_grid, vmin, None),
                                        norm=norm, cmap="viridis", shading="flat", rasterized=True))
            ax.scatter(vmap.data_coords[:, 0], vmap.data_coords[:, 1], s=3, c="white",
                       edgecolors="black", linewidths=0.2, alpha=0.7, label="demonstrations")
            ax.set_title(f"{m.label}\n" + rf"$\sigma_0$ at data {m.std_at_data:.3g}, outer ring {m.std_outer_ring:.3g}")
            ax.set_xlabel(f"PC 1 ({100 * evr[0]:.0f}% of variance)")
            ax.set_ylabel(f"PC 2 ({100 * evr[1]:.0f}% of variance)")
            ax.set_xlim(vmap.pc1_edges[0], vmap.pc1_edges[-1])
            ax.set_ylim(vmap.pc2_edges[0], vmap.pc2_edges[-1])
            ax.grid(False)
        axes[0][0].legend(loc="upper left", markerscale=4, facecolor="0.75", framealpha=0.9)
        bar = fig.colorbar(meshes[-1], ax=axes[0].tolist(), shrink=0.9)
        bar.set_label(r"predictive std $\sigma_0$ (mean over action dims)")
        return style.save_figure(fig, path)
