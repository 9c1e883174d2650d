"""Learning curves across runs: mean and 95 % interval over seeds, per group (DESIGN.md §5.3).

Runs (``config.json``, ``progress.csv``) are grouped by a config key. Within a group they are aligned on
``env_steps`` and cut to the steps every run reached, so each point averages the same ``n`` seeds (a run logged
at other steps is interpolated onto the shortest run's grid). The interval is Student's t interval of the mean,
mean ± t_{0.975, n−1} · s / √n (s with ddof = 1; empty for a single seed). Quantities drawn on a log axis (the
policy-gradient norm spans orders of magnitude between priors) are averaged in log space: the geometric mean with
the t interval of log x mapped back, positive and symmetric on the axis it is drawn on.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nppac.errors import NppacError

log = logging.getLogger(__name__)

INTERVAL = ("95% Student-t interval across seeds: mean ± t(0.975, n−1)·s/√n, s with ddof=1; "
            "metrics with statistic 'geometric_mean' apply it to log x and map mean, lo, hi back with exp")
"""How ``mean``/``lo``/``hi`` are computed, written into every comparison's JSON."""


@dataclass(frozen=True)
class Metric:
    """A progress column drawn as one panel."""

    column: str
    label: str
    """Y-axis label."""
    log: bool = False
    """Positive and spans orders of magnitude: log y axis, geometric mean over seeds."""
    symlog: bool = False
    """Either sign and may span orders of magnitude (an NN prior's KL of 1e10 beside a GP's of 10): symmetric-log
    y axis (:func:`_linthresh`), arithmetic mean over seeds."""


SUCCESS = Metric("eval_success", "evaluation success rate")
RETURN = Metric("eval_return", "evaluation return")
PANELS = (
    Metric("q_mean", "mean Q-value (symlog axis)", symlog=True),
    Metric("kl_mean", "KL(π ‖ π0) (mean; symlog axis)", symlog=True),
    Metric("policy_grad_norm", "policy gradient norm (geometric mean)", log=True),
)
"""The panels after the first (return or success)."""


@dataclass(frozen=True)
class Run:
    """One training run: where it lives, its config and its progress columns."""

    directory: Path
    config: dict[str, Any]
    columns: dict[str, np.ndarray]
    """Column name → float array, one entry per progress row (NaN where empty)."""
    references: dict[str, Any] = field(default_factory=dict)
    """The run's ``references.json``: the demonstrations' and the prior's mean-action return/success."""
    stopped_at: float | None = None
    """For a diverged run completed to its schedule: the env steps where training stopped (evaluations held after)."""

    @property
    def env_steps(self) -> np.ndarray:
        return self.columns["env_steps"]

    def has(self, column: str) -> bool:
        """Whether the column exists with at least one finite value."""
        return column in self.columns and bool(np.isfinite(self.columns[column]).any())


def as_float(text: Any) -> float:
    """A progress cell or JSON value as a number; NaN when missing, empty or not a number."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def load_run(directory: str | Path) -> Run:
    """Read ``config.json`` and ``progress.csv`` of a run directory (errors name the file)."""
    from nppac.training.rundir import RunDir

    run = RunDir(directory)
    if not run.path.is_dir():
        raise NppacError(f"run directory {run.path} does not exist")
    progress = run.progress_file
    if not progress.is_file():
        raise NppacError(f"run directory {run.path} has no progress.csv; pass directories written by `nppac train`")
    config = run.config() if run.config_file.is_file() else {}
    names, rows = run.progress(strict=True, config=config)
    if "env_steps" not in names:
        raise NppacError(f"{progress} has no env_steps column; pass directories written by `nppac train`")
    if not rows:
        raise NppacError(f"{progress} has no rows yet; wait for the run's first epoch")
    init_kl = next((as_float(row.get("init_kl")) for row in rows if row.get("init_kl")), math.nan)
    # The rows of an offline phase all sit at env_steps = 0; its last one is the curve's step-0 point.
    rows = [row for row, later in zip(rows, rows[1:] + [None])
            if later is None or row.get("phase") != "offline" or later.get("env_steps") != row.get("env_steps")]
    columns = {name: np.array([as_float(row.get(name)) for row in rows]) for name in names}
    steps = columns["env_steps"]
    if "kl_mean" in columns and steps[0] == 0 and math.isnan(columns["kl_mean"][0]):
        columns["kl_mean"][0] = init_kl  # no update before step 0: the KL there is the initialized actor's
    if not np.isfinite(steps).all() or (np.diff(steps) <= 0).any():
        raise NppacError(f"{progress}: env_steps must be finite and increasing row by row")
    return Run(run.path, config, columns, run.references())


def group_key(run: Run, by: str) -> str:
    """The run's value of config key ``by`` (dots reach into nested dicts) as text; several comma-separated keys
    (``algo,prior_sigma``) give their values joined with " / " (``nppac / std``)."""
    names = []
    for key in (k.strip() for k in by.split(",")):
        value: Any = run.config
        for part in key.split("."):
            if not isinstance(value, dict) or part not in value:
                keys = ", ".join(sorted(run.config)) or "none: config.json is missing or empty"
                raise NppacError(f"{run.directory}/config.json has no '{key}' to group by (keys: {keys})")
            value = value[part]
        names.append(str(value))
    return " / ".join(names)


def group_runs(runs: Sequence[Run], by: str) -> dict[str, list[Run]]:
    """Runs grouped by config key ``by``, groups in order of first appearance."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(group_key(run, by), []).append(run)
    return groups


def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(mean, lo, hi, n) over axis 0 of ``values`` (seeds × steps), ignoring NaN entries."""
    from scipy import stats

    n = np.isfinite(values).sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN steps and single seeds are expected
        mean = np.nanmean(values, axis=0)
        sd = np.nanstd(values, axis=0, ddof=1)
    half = np.where(n > 1, stats.t.ppf(0.5 + level / 2, np.maximum(n - 1, 1)) * sd / np.sqrt(np.maximum(n, 1)), 0.0)
    return mean, mean - half, mean + half, n


@dataclass(frozen=True)
class Curve:
    """One group's aggregate of one metric on the common env-steps grid."""

    env_steps: np.ndarray
    per_run: np.ndarray
    """(n_runs, n_steps) each run's values on the grid."""
    geometric: bool = False
    """Aggregate log x (geometric mean) instead of x."""

    def summary(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(mean, lo, hi, n) per step; see :data:`INTERVAL`."""
        if not self.geometric:
            return t_interval(self.per_run)
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.where(self.per_run > 0, np.log(self.per_run), np.nan)
        mean, lo, hi, n = t_interval(logs)
        return np.exp(mean), np.exp(lo), np.exp(hi), n

    def to_json(self) -> dict[str, Any]:
        mean, lo, hi, n = self.summary()
        return {
            "statistic": "geometric_mean" if self.geometric else "mean",
            "env_steps": _listed(self.env_steps), "mean": _listed(mean), "lo": _listed(lo), "hi": _listed(hi),
            "n": n.tolist(),
            "final": {"env_steps": float(self.env_steps[-1]), "mean": finite(mean[-1]), "lo": finite(lo[-1]),
                      "hi": finite(hi[-1]), "values": _listed(self.per_run[:, -1])},
        }


def finite(x: float) -> float | None:
    """``x`` for JSON, which has no NaN: None unless finite."""
    return float(x) if math.isfinite(x) else None


def _listed(a: np.ndarray) -> list[float | None]:
    return [finite(float(x)) for x in a]


def common_grid(runs: Sequence[Run]) -> np.ndarray:
    """The env_steps of the shortest run, within the range every run covers."""
    start = max(float(r.env_steps[0]) for r in runs)
    shortest = min(runs, key=lambda r: float(r.env_steps[-1]))
    grid = shortest.env_steps[shortest.env_steps >= start]
    if grid.size == 0:
        names = ", ".join(str(r.directory) for r in runs)
        raise NppacError(f"runs {names} share no env_steps range; compare runs of the same schedule")
    return grid


def curve(runs: Sequence[Run], metric: Metric, grid: np.ndarray) -> Curve:
    """Each run's metric on ``grid`` (exact where the steps match, else linear interpolation)."""
    column = metric.column
    per_run = np.stack([
        np.interp(grid, r.env_steps, r.columns[column]) if r.has(column) else np.full(grid.shape, np.nan)
        for r in runs
    ])
    return Curve(grid, per_run, geometric=metric.log)


@dataclass(frozen=True)
class Group:
    """The runs of one group and their curves."""

    name: str
    runs: list[Run]
    curves: dict[str, Curve]

    def to_json(self) -> dict[str, Any]:
        return {
            "runs": [str(r.directory) for r in self.runs], "n": len(self.runs),
            "max_env_steps": [float(r.env_steps[-1]) for r in self.runs],
            "metrics": {name: c.to_json() for name, c in self.curves.items()},
        }


@dataclass(frozen=True)
class Comparison:
    """Everything a comparison figure shows."""

    group_by: str
    primary: Metric
    """Eval success when every run logs it (binary tasks), else eval return."""
    groups: list[Group]

    @property
    def panels(self) -> list[Metric]:
        return [self.primary, *PANELS]

    @property
    def tasks(self) -> list[str]:
        """The tasks of the compared runs, as named in their configs."""
        return sorted({str(r.config["task"]) for g in self.groups for r in g.runs if "task" in r.config})

    def to_json(self) -> dict[str, Any]:
        return {"group_by": self.group_by, "interval": INTERVAL, "primary_metric": self.primary.column,
                "references": reference_lines(self), "groups": {g.name: g.to_json() for g in self.groups}}


def compare_runs(runs: Sequence[Run], group_by: str = "algo") -> Comparison:
    """Group ``runs`` by ``group_by`` and aggregate every panel's metric over each group's seeds."""
    if not runs:
        raise NppacError("no runs to compare; pass at least one run directory")
    primary = SUCCESS if all(r.has(SUCCESS.column) for r in runs) else RETURN
    metrics = (RETURN, SUCCESS, *PANELS)
    groups = []
    for name, members in group_runs(runs, group_by).items():
        grid = common_grid(members)
        longer = [r for r in members if r.env_steps[-1] > grid[-1]]
        if longer:
            log.info("group %s: curves end at %s env steps, where every run has data; cut %s",
                     name, f"{grid[-1]:,.0f}", ", ".join(str(r.directory) for r in longer))
        curves = {m.column: curve(members, m, grid) for m in metrics if any(r.has(m.column) for r in members)}
        groups.append(Group(name, members, curves))
    return Comparison(group_by, primary, groups)


def _label(group: Group) -> str:
    diverged = sum(r.stopped_at is not None for r in group.runs)
    return f"{group.name} (n={len(group.runs)}" + (f", {diverged} diverged, last evaluation held)" if diverged else ")")


def _steps_formatter(value: float, _: Any) -> str:
    if abs(value) >= 1e6:
        return f"{value / 1e6:g}M"
    if abs(value) >= 1e3:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


def plot_comparison(comparison: Comparison, path: str | Path) -> Path:
    """A 2 × 2 figure: primary metric, Q, KL and policy-gradient norm against env steps."""
    from matplotlib.ticker import FuncFormatter

    from nppac.diagnostics import style

    with style.context():
        fig, axes = style.subplots(2, nrows=2)
        for ax, metric in zip(axes.flat, comparison.panels):
            drawn = [(i, g) for i, g in enumerate(comparison.groups) if metric.column in g.curves]
            looks = _group_styles([g.name for g in comparison.groups])
            per_run = [g.curves[metric.column].per_run for _, g in drawn]
            for i, group in drawn:
                c = group.curves[metric.column]
                mean, lo, hi, _ = c.summary()
                color, linestyle = looks[i]
                ax.fill_between(c.env_steps, lo, hi, color=color, alpha=0.2, linewidth=0)
                # Few epochs: mark the logged points so that straight segments are not read as data.
                marker = "o" if len(c.env_steps) <= 20 else None
                ax.plot(c.env_steps, mean, color=color, linestyle=linestyle, marker=marker, markersize=3,
                        label=_label(group))
            ax.set_ylabel(metric.label)
            ax.set_xlabel("environment steps")
            ax.xaxis.set_major_formatter(FuncFormatter(_steps_formatter))
            if not drawn:
                ax.text(0.5, 0.5, f"{metric.column} not logged", transform=ax.transAxes,
                        ha="center", va="center", color="gray")
                continue
            if metric.log:
                ax.set_yscale("log")
            elif metric.symlog:
                ax.set_yscale("symlog", linthresh=_linthresh(per_run))
            limits = _run_limits(per_run, metric)
            if limits is not None:
                ax.set_ylim(*limits)
            if metric.log or metric.symlog:
                style.readable_log_ticks(ax.yaxis)
        _draw_references(axes.flat[0], comparison)
        if len(comparison.tasks) == 1:
            fig.suptitle(comparison.tasks[0])
        handles, labels = axes.flat[0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="outside lower center", ncols=min(len(handles), 4),
                       title=f"{comparison.group_by}: mean and 95 % t-interval over seeds "
                             "(axes span the runs' own values)")
        return style.save_figure(fig, path)


def _group_styles(names: list[str]) -> list[tuple[str, str]]:
    """(color, line style) per group: the group's color (:func:`style.color`, the same in every figure), or,
    for groups named by several keys ("nppac / std"), the first value's color and one line style per the rest."""
    from nppac.diagnostics import style

    if not all(" / " in n for n in names):
        return [(style.color(n), "-") for n in names]
    rests = list(dict.fromkeys(n.split(" / ", 1)[1] for n in names))
    lines = ("-", "--", ":", "-.")
    return [(style.color(n.split(" / ", 1)[0]), lines[rests.index(n.split(" / ", 1)[1]) % len(lines)])
            for n in names]


def _run_limits(per_run: list[np.ndarray], metric: Metric) -> tuple[float, float] | None:
    """Y limits spanning every run's own values, with a margin: a t-interval over 2–3 seeds (t_{0.975} = 12.7 for
    two) can reach far beyond anything a run logged, so the band is cut at the axis."""
    values = _finite_values(per_run)
    values = values[(values > 0) if metric.log else slice(None)]
    if values.size == 0:
        return None
    lo, hi = float(values.min()), float(values.max())
    if metric.log:
        return lo / 1.5, hi * 1.5
    if metric.symlog:
        t = _linthresh(per_run)
        return lo - 0.3 * abs(lo) - 0.5 * t, hi + 0.3 * abs(hi) + 0.5 * t
    pad = 0.05 * (hi - lo) or 0.05 * max(abs(hi), 1.0)
    return lo - pad, hi + pad


def _finite_values(per_run: list[np.ndarray]) -> np.ndarray:
    values = np.concatenate([v.ravel() for v in per_run])
    return values[np.isfinite(values)]


def _linthresh(per_run: list[np.ndarray]) -> float:
    """The symlog axis' linear range ±t: 1, or the decade of the smallest nonzero |value| below it,
    so that small values (a KL of 0.01) are drawn on the logarithmic part and get ticks of their own."""
    small = np.abs(_finite_values(per_run))
    small = small[small > 0]
    return min(1.0, 10.0 ** math.floor(math.log10(small.min()))) if small.size else 1.0


def reference_lines(comparison: Comparison) -> dict[str, float]:
    """Label → level of the reference lines on the primary panel, for a single task: the demonstrations and the
    prior's mean action (the GP's where any run has one, N-PPAC's π0, else the first found)."""
    if len(comparison.tasks) != 1:
        return {}
    key = "success" if comparison.panels[0].column == "eval_success" else "return"
    runs = [r for g in comparison.groups for r in g.runs if r.references]
    lines: dict[str, float] = {}
    demos = [r.references["demos"].get(key) for r in runs if isinstance(r.references.get("demos"), dict)]
    demos = [v for v in demos if isinstance(v, (int, float))]
    if demos:
        lines["demonstrations (mean)"] = float(demos[0])
    priors = [r.references["prior_mean_action"] for r in runs
              if isinstance(r.references.get("prior_mean_action"), dict)]
    priors = sorted((p for p in priors if isinstance(p.get(key), (int, float))), key=lambda p: p.get("kind") != "gp")
    if priors:
        lines[f"{priors[0].get('kind', 'prior')} prior's mean action"] = float(priors[0][key])
    return lines


def _draw_references(ax: Any, comparison: Comparison) -> None:
    lines = reference_lines(comparison)
    for (label, level), style_ in zip(lines.items(), (":", "--")):
        ax.axhline(level, color="0.25", linestyle=style_, linewidth=1.0, label=label)
    if lines:  # keep the reference levels on the axis the runs' values set
        lo, hi = ax.get_ylim()
        pad = 0.05 * (hi - lo)
        ax.set_ylim(min(lo, min(lines.values()) - pad), max(hi, max(lines.values()) + pad))
