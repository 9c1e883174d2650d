"""The statistics of comparisons: Welch's test of a difference of means, p-values adjusted across a family of
comparisons, and intervals held to a quantity's bounds.

A report (or a table) makes m comparisons at once; marking each whose own test has p < 0.05 would find about
0.05·m differences among algorithms that do not differ at all. Adjusted across the family:

* Holm (1979), step-down, controls the family-wise error rate (the chance of any false ✓).
  With p_(1) ≤ … ≤ p_(m) sorted:  p̃_(i) = max_{j ≤ i} min(1, (m − j + 1) · p_(j)).
* Benjamini–Hochberg (1995), step-up, controls the false discovery rate (the expected share
  of false ✓ among the ✓):  p̃_(i) = min_{j ≥ i} min(1, m · p_(j) / j).
* none: p̃ = p.

A difference is marked as supported when p̃ < :data:`ALPHA`. Comparisons without a test
(fewer than 2 seeds on a side) are not in the family.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ALPHA = 0.05
"""The level a difference's adjusted p-value must fall below to be marked (✓)."""
ADJUSTMENTS: dict[str, str] = {"holm": "Holm", "bh": "Benjamini–Hochberg", "none": "unadjusted"}
"""Adjustment methods of p-values across a family of comparisons, by the name a suite file or flag gives."""
P_LABELS: dict[str, str] = {"holm": "p_Holm", "bh": "p_BH", "none": "p"}
"""How an adjusted p-value is labelled next to its difference."""
BOUNDS: dict[str, tuple[float, float]] = {"eval_success": (0.0, 1.0)}
"""Metric column → the range its values (and so their mean) cannot leave."""


def adjust_p_values(p_values: Sequence[float], method: str = "holm") -> list[float]:
    """The p-values adjusted across the family of those that are finite (NaN entries stay NaN, outside it)."""
    if method not in ADJUSTMENTS:
        raise ValueError(f"unknown adjustment {method!r}; one of {', '.join(ADJUSTMENTS)}")
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, math.nan)
    family = np.flatnonzero(np.isfinite(p))
    m = family.size
    if m == 0:
        return out.tolist()
    order = family[np.argsort(p[family], kind="stable")]
    ranked = p[order]
    rank = np.arange(1, m + 1)
    if method == "holm":
        adjusted = np.maximum.accumulate(np.minimum(1.0, (m - rank + 1) * ranked))
    elif method == "bh":
        adjusted = np.minimum.accumulate(np.minimum(1.0, m * ranked / rank)[::-1])[::-1]
    else:
        adjusted = ranked
    out[order] = adjusted
    return out.tolist()


@dataclass(frozen=True)
class Welch:
    """mean(a) − mean(b), Welch's interval of it (unequal variances, Welch–Satterthwaite degrees of freedom)
    and the two-sided p-value of the difference being 0; lo = hi = p = NaN below 2 seeds a side."""

    diff: float
    lo: float
    hi: float
    p: float


def welch_test(a: Sequence[float], b: Sequence[float], level: float = 0.95,
               bounds: tuple[float, float] | None = None) -> Welch:
    """Welch's test of mean(a) − mean(b). Two sides without spread give the difference exactly (p = 0 unless
    it is 0). With ``bounds`` (lo, hi) of the values, the interval is cut to [lo − hi, hi − lo], the range a
    difference of two means in it can take."""
    from scipy import stats

    diff = float(np.mean(a) - np.mean(b))
    if len(a) < 2 or len(b) < 2:
        return Welch(diff, math.nan, math.nan, math.nan)
    if np.var(a) == 0 and np.var(b) == 0:
        return Welch(diff, diff, diff, 0.0 if diff != 0 else 1.0)
    test = stats.ttest_ind(a, b, equal_var=False)
    interval = test.confidence_interval(level)
    lo, hi = float(interval.low), float(interval.high)
    if bounds is not None:
        width = bounds[1] - bounds[0]
        lo, hi = clip_interval(lo, hi, (-width, width))
    return Welch(diff, lo, hi, float(test.pvalue))


def clip_interval(lo: float, hi: float, bounds: tuple[float, float] | None) -> tuple[float, float]:
    """An interval cut to the range its quantity cannot leave: it drops only impossible values, so the interval
    covers the true value as often as before (with 3 seeds a percentile bootstrap, 10 distinct resamples, would
    not)."""
    if bounds is None:
        return lo, hi
    return max(lo, bounds[0]), min(hi, bounds[1])


def p_text(p: float) -> str:
    """A p-value in two significant digits (``< 0.001`` below that)."""
    return "< 0.001" if p < 0.001 else f"{p:.2g}"


def comparison_text(test: Welch, p_adjusted: float, method: str, number: str = "{:+.4g}", mark: str = "**✓**") -> str:
    """``Δ [lo, hi], p_Holm 0.012 ✓``: one comparison as the report and the tables print it."""
    if not math.isfinite(test.lo):
        return f"{number.format(test.diff)} (no interval: < 2 seeds)"
    supported = f" {mark}" if p_adjusted < ALPHA else ""
    return (f"{number.format(test.diff)} [{number.format(test.lo)}, {number.format(test.hi)}], "
            f"{P_LABELS[method]} {p_text(p_adjusted)}{supported}")


def family_text(m: int, method: str, family: str) -> str:
    """The family of comparisons and how their p-values are adjusted, in a sentence or two."""
    label = P_LABELS[method]
    if m == 0:
        return f"No comparison of {family} has a test (each needs ≥ 2 seeds a side), so none is marked."
    if method == "none":
        return (f"{label}: Welch's two-sided p-value, not adjusted for the {m} comparisons of {family}; "
                f"✓ marks {label} < {ALPHA:g} (an interval that excludes 0), a difference these seeds support.")
    return (f"{label}: Welch's two-sided p-value adjusted by {ADJUSTMENTS[method]} across the family of the {m} "
            f"comparisons of {family}; ✓ marks {label} < {ALPHA:g}, a difference these seeds support (an interval "
            "that excludes 0 without it does not count).")
