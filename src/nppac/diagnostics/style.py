"""One plotting style for every diagnostic figure: sizes, fonts, colours, saving (off-screen, the Agg backend)."""

from __future__ import annotations

import math
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from nppac.outputs import atomic_file, check_output_file

if TYPE_CHECKING:
    from matplotlib.axis import Axis
    from matplotlib.typing import RcKeyType

PANEL_SIZE = (5.0, 3.8)
"""Width and height of one panel, in inches."""
DPI = 150
"""Resolution of saved raster figures: sharp on screen without huge files."""
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")
"""Figure formats the diagnostics write."""
FIGURE_MARK = "nppac"
"""The ``Comment`` of every PNG nppac draws: how a report knows the figures it may replace."""
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
"""Line colours, one per group, in a fixed order so that figures stay comparable."""
ALGORITHM_COLORS = {"nppac": "#1f77b4", "ppac-nn": "#d62728", "nppac-nn-std": "#2ca02c", "sac-bc": "#ff7f0e",
                    "awac": "#9467bd", "bc": "#8c564b", "sac": "#e377c2"}
"""Each registered algorithm's colour, the same in every figure whatever else it shows."""
OTHER_COLORS = ("#7f7f7f", "#bcbd22", "#17becf", "#e6ab02", "#1b9e77", "#000080")
"""Colours for any other group (a suite's variant, a prior kind), none of them an algorithm's."""


def color(name: str) -> str:
    """The colour of group ``name`` in every figure: its algorithm's, else one the name's CRC-32 picks
    (stable across figures and processes, whatever other groups are drawn)."""
    return ALGORITHM_COLORS.get(name) or OTHER_COLORS[zlib.crc32(name.encode()) % len(OTHER_COLORS)]


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
    """A context in which figures are created, drawn and saved in the shared style (scoped, so that nppac never
    changes a caller's own figures)."""
    return plt.rc_context(_RC)


def subplots(ncols: int, nrows: int = 1, **kwargs: Any) -> tuple[Figure, Any]:
    """A figure of ``nrows × ncols`` panels of :data:`PANEL_SIZE` and its 2-D array of axes; call inside
    :func:`context`."""
    return plt.subplots(
        nrows, ncols, figsize=(PANEL_SIZE[0] * ncols, PANEL_SIZE[1] * nrows),
        squeeze=False, layout="constrained", **kwargs,
    )


def readable_log_ticks(axis: Axis, at_least: int = 3) -> None:
    """At least ``at_least`` labelled major ticks on a log or symlog axis, whose scales label decades only (a KL
    from 5 to 50 would show one label). Call once the limits are set: the first locator that puts enough ticks in
    view is kept (decades, 1-2-5, 1…9 per decade, then evenly spaced values)."""
    from matplotlib import ticker

    lo, hi = sorted(axis.get_view_interval())
    symlog = axis.get_scale() == "symlog"
    for subs in ((1.0,), (1.0, 2.0, 5.0), tuple(map(float, range(1, 10)))):
        locator: ticker.Locator = ticker.SymmetricalLogLocator(axis.get_transform(), subs=subs) if symlog \
            else ticker.LogLocator(subs=subs)
        if sum(lo <= t <= hi for t in locator.tick_values(lo, hi)) >= at_least:
            axis.set_major_locator(locator)
            axis.set_major_formatter(ticker.LogFormatterSciNotation(labelOnlyBase=False,
                                                                    minor_thresholds=(math.inf, math.inf)))
            return
    axis.set_major_locator(ticker.MaxNLocator(nbins=at_least + 1))
    axis.set_major_formatter(ticker.ScalarFormatter())


def check_figure_path(path: str | Path) -> Path:
    """The output path as a :class:`Path`, once it can be written as a figure (fails before any work)."""
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
