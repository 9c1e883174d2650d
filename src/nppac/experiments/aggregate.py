"""Statistics across tasks with rliable (Agarwal et al., NeurIPS 2021): IQM, mean, probability of improvement,
performance profiles. Optional: ``pip install 'nppac[stats]'``.

Each run's final performance is put on one scale: the success rate on hand tasks, the demonstration-normalized
return (R − R_random) / (R_demos − R_random) on locomotion (both references from the run's ``references.json``;
R_random measured here, with the same seed, for runs from before it was recorded). rliable needs the same number
of runs of an algorithm on every task: an algorithm missing a task is left out (and named), and each keeps its
first n seeds per task, n the fewest it has. Intervals and the profiles' bands are stratified-bootstrap 95 %
intervals, every resample drawn from one seeded generator (:data:`BOOTSTRAP_SEED`) so that a report is reproducible.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nppac.experiments.report import RunEntry, SuiteReport, markdown_table
from nppac.outputs import relative_link
from nppac.tasks import get_task
from nppac.training.references import random_policy_return
from nppac.training.rundir import RunDir

STATS_HINT = ("Aggregates across tasks (IQM, probability of improvement, performance profiles) need rliable: "
              "pip install 'nppac[stats]'")
BOOTSTRAP_REPS = 5_000
BOOTSTRAP_SEED = 0
Interval = tuple[float, float, float]
"""A point estimate with its interval: (point, lo, hi)."""
REFERENCE_SEED = 20_000
"""The seed of a run's reference evaluations (training/setup.py evaluates references with seed + 20,000)."""


def available() -> bool:
    """Whether rliable imports (it needs pandas < 3)."""
    try:
        import rliable.library  # noqa: F401
    except Exception:
        return False
    return True


@dataclass
class Aggregate:
    """The cross-task statistics of one suite report."""

    tasks: list[str]
    algos: list[str]
    runs_per_task: dict[str, int]
    normalization: dict[str, dict[str, float]]
    iqm: dict[str, Interval]
    mean: dict[str, Interval]
    improvement: dict[str, Interval]
    """"X over Y" → P(X > Y) with its interval."""
    excluded: dict[str, str] = field(default_factory=dict)
    profile: Path | None = None

    def to_json(self, relative_to: Path | None = None) -> dict[str, Any]:
        def triple(v: Interval) -> dict[str, float]:
            return {"point": v[0], "lo": v[1], "hi": v[2]}

        return {"tasks": self.tasks, "algos": self.algos, "runs_per_task": self.runs_per_task,
                "normalization": self.normalization, "iqm": {k: triple(v) for k, v in self.iqm.items()},
                "mean": {k: triple(v) for k, v in self.mean.items()},
                "probability_of_improvement": {k: triple(v) for k, v in self.improvement.items()},
                "excluded": self.excluded, "performance_profile": relative_link(self.profile, relative_to)}

    def to_markdown(self, relative_to: Path | None = None) -> list[str]:
        lines = ["## Across tasks (rliable)", "",
                 f"Final performance on one scale: success rate on hand tasks, (R − R_random) / (R_demos − R_random) "
                 f"on locomotion; tasks {', '.join(self.tasks)}. Point estimate [stratified-bootstrap 95 % interval] "
                 f"over runs resampled within each task ({BOOTSTRAP_REPS:,} resamples).", ""]
        for task, ends in self.normalization.items():
            lines.append(f"- {task}: R_random = {ends['random']:.1f}, R_demos = {ends['demos']:.1f}")
        for algo, reason in self.excluded.items():
            lines.append(f"- left out: {algo} ({reason})")
        lines += ["", *markdown_table(["algo", "runs per task", "IQM", "mean"],
                                      ([algo, str(self.runs_per_task[algo]), _text(self.iqm[algo], ".3f"),
                                        _text(self.mean[algo], ".3f")] for algo in self.algos))]
        if self.improvement:
            lines += ["", *markdown_table(["comparison", "probability of improvement"],
                                          ([f"P({pair.replace(' over ', ' > ')})", _text(v, ".2f")]
                                           for pair, v in self.improvement.items()))]
        if self.profile is not None:
            lines += ["", f"![performance profiles]({relative_link(self.profile, relative_to)})"]
        return lines + [""]


def _text(v: Interval, digits: str) -> str:
    return f"{v[0]:{digits}} [{v[1]:{digits}}, {v[2]:{digits}}]"


def normalization(report: SuiteReport, entries: list[RunEntry]) -> dict[str, dict[str, float]]:
    """Task → its R_random and R_demos, for the locomotion tasks of the report."""
    out: dict[str, dict[str, float]] = {}
    for task in report.tasks:
        spec = get_task(task.task)
        if spec.reward == "binary":
            continue
        refs = [RunDir(e.directory).references() for e in entries if e.spec.task == task.task and e.run is not None]
        demos = next((r["demos"]["return"] for r in refs if r.get("demos")), None)
        random = next((r["random"]["return"] for r in refs if r.get("random")), None)
        if random is None:
            cfg = next(e.spec.config.resolved() for e in entries if e.spec.task == task.task)
            random = random_policy_return(spec, cfg.eval_episodes, cfg.eval_horizon, cfg.seed + REFERENCE_SEED)
        if demos is not None:
            out[task.task] = {"random": float(random), "demos": float(demos)}
    return out


def aggregate(by_algo: dict[str, dict[str, list[float]]], ends: dict[str, dict[str, float]],
              figures: Path | None = None, reference: str = "nppac") -> Aggregate | None:
    """The cross-task statistics of per-seed scores on the common scale (algo → task → scores, in seed order;
    :func:`nppac.experiments.report.common_scale_scores`); None without rliable or without a complete algorithm."""
    if not available():
        return None
    tasks = sorted({t for per in by_algo.values() for t in per})
    excluded, score_dict = {}, {}
    for algo, per_task in by_algo.items():
        missing = [t for t in tasks if t not in per_task]
        if missing:
            excluded[algo] = f"no finished run on {', '.join(missing)}"
            continue
        n = min(len(v) for v in per_task.values())
        score_dict[algo] = np.array([per_task[t][:n] for t in tasks]).T  # (runs, tasks)
    if not score_dict:
        return None
    with _seeded_bootstrap():
        iqm, mean, improvement = _intervals(score_dict, reference)
    result = Aggregate(tasks, list(score_dict), {a: int(v.shape[0]) for a, v in score_dict.items()}, ends, iqm,
                       mean, improvement, excluded)
    if figures is not None:
        with _seeded_bootstrap():
            result.profile = _profile(score_dict, figures / "performance_profile.png")
    return result


@contextmanager
def _seeded_bootstrap() -> Iterator[None]:
    """NumPy's global generator seeded with :data:`BOOTSTRAP_SEED` inside, restored after: rliable's bootstrap
    draws from it (its random_state only reaches arch's unused one)."""
    outside = np.random.get_state()
    np.random.seed(BOOTSTRAP_SEED)
    try:
        yield
    finally:
        np.random.set_state(outside)


def _intervals(score_dict: dict[str, np.ndarray], reference: str
               ) -> tuple[dict[str, Interval], dict[str, Interval], dict[str, Interval]]:
    """IQM, mean and P(reference > other), each a point estimate with its stratified-bootstrap 95 % interval."""
    from rliable import library as rly
    from rliable import metrics

    rng = np.random.RandomState(BOOTSTRAP_SEED)
    iqm: dict[str, Interval] = {}
    mean: dict[str, Interval] = {}
    for target, func in ((iqm, metrics.aggregate_iqm), (mean, metrics.aggregate_mean)):
        points, cis = rly.get_interval_estimates(score_dict, lambda x, f=func: np.array([f(x)]),
                                                 reps=BOOTSTRAP_REPS, random_state=rng)
        for algo in score_dict:
            target[algo] = (float(points[algo][0]), float(cis[algo][0][0]), float(cis[algo][1][0]))
    improvement = {}
    if reference in score_dict:
        pairs = {f"{reference} over {other}": (score_dict[reference], score_dict[other])
                 for other in score_dict if other != reference}
        if pairs:
            points, cis = rly.get_interval_estimates(pairs, metrics.probability_of_improvement,
                                                     reps=BOOTSTRAP_REPS // 10, random_state=rng)
            improvement = {k: (float(np.ravel(points[k])[0]), float(np.ravel(cis[k])[0]), float(np.ravel(cis[k])[1]))
                           for k in pairs}
    return iqm, mean, improvement


def _profile(score_dict: dict[str, np.ndarray], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rliable import library as rly
    from rliable import plot_utils

    from nppac.diagnostics.style import color, save_figure

    top = max(1.0, float(max(v.max() for v in score_dict.values())))
    taus = np.linspace(min(0.0, float(min(v.min() for v in score_dict.values()))), top, 101)
    profiles, cis = rly.create_performance_profile(score_dict, taus, reps=2000)
    colors = {algo: color(algo) for algo in score_dict}
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    plot_utils.plot_performance_profiles(profiles, taus, performance_profile_cis=cis, ax=ax, colors=colors,
                                         xlabel=r"score $\tau$", ylabel=r"fraction of runs with score > $\tau$")
    from matplotlib.lines import Line2D

    ax.legend([Line2D([0], [0], color=c) for c in colors.values()], list(colors), fontsize=8, loc="lower left")
    ax.set_title("success rate (hand tasks), demonstration-normalized return (locomotion)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)
