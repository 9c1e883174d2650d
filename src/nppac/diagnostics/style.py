"""One plotting style for every diagnostic figure: sizes, fonts, colours, saving.

Figures are drawn off-screen (the Agg backend), so diagnostics run on headless
machines and in tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from nppac.outputs import atomic_file, check_output_file

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

PANEL_SIZE = (5.0, 3.8)
"""Width and height of one panel, in inches."""
DPI = 150
"""Resolution of saved raster figures: sharp on screen without huge files."""
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")
FIGURE_MARK = "nppac"
"""The ``Comment`` of every PNG nppac draws: how a report knows the figures it may replace."""
"""Figure formats the diagnostics write."""
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
"""Line colours, one per group, in a fixed order so that figures stay comparable."""

_RC: dict[RcKeyType, Any] = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def context() -> Any:
    """A context in which figures are created, drawn and saved in the shared style.

    The style is scoped (not written into the global ``rcParams``) so that importing
    nppac never changes a caller's own figures.
    """
    return plt.rc_context(_RC)


def subplots(ncols: int, nrows: int = 1, **kwargs: Any) -> tuple[Figure, Any]:
    """A figure of ``nrows × ncols`` panels of :data:`PANEL_SIZE`; call inside :func:`context`.

    Returns ``(figure, axes)`` with ``axes`` always a 2-D array (``squeeze=False``).
    """
    return plt.subplots(
        nrows, ncols, figsize=(PANEL_SIZE[0] * ncols, PANEL_SIZE[1] * nrows),
        squeeze=False, layout="constrained", **kwargs,
    )


def check_figure_path(path: str | Path) -> Path:
    """The output path as a :class:`Path`, once it can be written as a figure (fails before any work).

    Missing folders are created by :func:`save_figure`; the figure's numbers go beside it as ``.json``.
    """
    return check_output_file(path, FIGURE_SUFFIXES, make_folders=True)


def save_figure(fig: Figure, path: str | Path, dpi: int = DPI) -> Path:
    """Write ``fig`` whole to ``path`` (parents created), then close it. A PNG carries :data:`FIGURE_MARK`."""
    path = check_figure_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    png = path.suffix.lower() == ".png"
    with atomic_file(path) as f:
        fig.savefig(f, dpi=dpi, format=path.suffix[1:].lower(), metadata={"Comment": FIGURE_MARK} if png else None)
    plt.close(fig)
    return path


def is_marked_figure(path: str | Path) -> bool:
    """Whether ``path`` is a PNG that :func:`save_figure` wrote (its ``Comment`` is :data:`FIGURE_MARK`)."""
    return png_text(path).get("Comment") == FIGURE_MARK


def png_text(path: str | Path) -> dict[str, Any]:
    """The text entries of a PNG (empty for any other file)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return {str(k): v for k, v in image.info.items()} if image.format == "PNG" else {}
    except (OSError, ValueError, SyntaxError):
        return {}
