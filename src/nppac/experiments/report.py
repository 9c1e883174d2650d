"""A suite's report: final performance and sample efficiency per task and algorithm, with 95 % intervals.

For each run i of a task and algorithm, from its evaluations y_1..y_N at environment
steps s_1 < … < s_N (``progress.csv``):

* final performance (DESIGN.md §5.4):  F_i = (1/K) Σ_{j=N−K+1}^{N} y_j, the mean of
  the last K evaluations (all N when N < K);
* sample efficiency, the normalized area under the learning curve (trapezoidal rule):
  A_i = 1/(s_N − s_1) · Σ_{j=2}^{N} (s_j − s_{j−1}) (y_j + y_{j−1})/2, the curve's
  average height over the steps it covers (A_i = y_1 when N = 1);
* the initial performance: y at s = 0, the policy before any environment step (after
  initialization toward the prior or an offline phase; DESIGN.md §5, claim 2);
* optionally the steps to a threshold: the first s_j with y_j ≥ level.

Across the n finished seeds of an algorithm, each is summarized by its mean and the
Student-t 95 % interval of :func:`nppac.diagnostics.curves.t_interval`
(mean ± t_{0.975, n−1} · s/√n, s with ddof = 1; a single seed has no width). Steps to
a threshold are averaged over the seeds that reached it, and the count is reported.

Each algorithm is also compared with a baseline algorithm (the suite's first, unless
told otherwise) on the primary metric: the difference of means, Δ = mean(algo) −
mean(baseline), with Welch's 95 % interval (unequal variances, Welch–Satterthwaite
degrees of freedom). A difference is marked as supported by the seeds when that
interval excludes 0; with 3 seeds per side few differences are, and an unmarked one
is not evidence of equality.

Finished and diverged runs enter the tables and the learning-curve figures; failed,
unfinished and pending runs are listed with their progress and error. A diverged run
(its losses became non-finite and training stopped at its last good checkpoint) is an
outcome of the algorithm on that seed, so leaving it out would flatter the algorithm:
it enters with its last evaluation held at every remaining epoch of its schedule, which
is what its checkpoint scores, and its training metrics (KL, Q, gradient norms) end
where it stopped. Every row thus covers the same schedule, and each row says how many
of its seeds diverged.

The curve is checked before it is averaged (:func:`check_curve`): a finished run whose
``progress.csv`` does not hold one whole, finite row per step of its schedule is
*damaged*, one trained to another schedule than the suite now asks for is *outdated*;
both are listed with the reason instead of entering a row.

A report replaces only the files a report wrote, known by their content: ``report.json``'s
``"format": "nppac-suite-report"``, the same marker as an HTML comment on ``report.md``'s
first line, and the mark of nppac's PNG figures (reports written before the markers: by
their title and keys, and figures drawn by Matplotlib beside such a report).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nppac.diagnostics.curves import Run, compare_runs, load_run, plot_comparison, t_interval
from nppac.diagnostics.style import is_marked_figure, png_text
from nppac.errors import NppacError
from nppac.experiments.runners import completed_epochs, read_status, run_state
from nppac.experiments.suite import MANIFEST_NAME, ReportSettings, RunSpec, Suite, read_manifest
from nppac.outputs import real_output, write_atomic

REPORT_FORMAT = "nppac-suite-report"
"""The ``format`` of ``report.json``; ``report.md`` starts with :data:`REPORT_MARK`."""
REPORT_MARK = f"<!-- {REPORT_FORMAT} -->"

INTERVAL = ("mean and 95% Student-t interval across seeds: mean ± t(0.975, n−1)·s/√n, s with ddof=1 "
            "(nppac.diagnostics.curves.t_interval); lo = hi = mean for a single seed")
FINAL = "final: mean of a run's last K evaluations (all of them when it has fewer)"
AUC = ("auc: normalized area under the learning curve, 1/(s_N − s_1) Σ_j (s_j − s_{j−1})(y_j + y_{j−1})/2 "
       "over the run's evaluations (trapezoidal rule)")
INITIAL = "initial: the evaluation at env_steps = 0 (after initialization or an offline phase)"
DIFFERENCE = ("difference: mean(algo) − mean(baseline) with Welch's 95% interval (unequal variances); "
              "supported = the interval excludes 0 (needs ≥ 2 seeds on each side)")
DIVERGED = ("diverged: a run stopped by a non-finite loss enters with its last evaluation held to the end of "
            "its schedule; its other metrics end where it stopped")
THRESHOLD = "steps_to_threshold: first env_steps with an evaluation ≥ the level, averaged over the seeds reaching it"

METRIC_LABELS = {"eval_return": "return", "eval_success": "success rate"}


def final_performance(values: np.ndarray, last_k: int) -> float:
    """F = mean of the last ``last_k`` evaluations."""
    return float(np.mean(values[-last_k:]))


def normalized_auc(steps: np.ndarray, values: np.ndarray) -> float:
    """A = 1/(s_N − s_1) · Σ_j (s_j − s_{j−1})(y_j + y_{j−1})/2; the single value when there is one evaluation."""
    if len(values) == 1:
        return float(values[0])
    area = np.sum(np.diff(steps) * (values[1:] + values[:-1]) / 2)
    return float(area / (steps[-1] - steps[0]))


def initial_performance(steps: np.ndarray, values: np.ndarray) -> float | None:
    """The evaluation logged at env_steps = 0 (None when the run has no step-0 row)."""
    return float(values[0]) if len(steps) and steps[0] == 0 else None


def welch_difference(a: list[float], b: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean(a) − mean(b), lo, hi): Welch's interval of the difference of means; lo = hi = NaN below 2 seeds a side."""
    from scipy import stats

    diff = float(np.mean(a) - np.mean(b))
    if len(a) < 2 or len(b) < 2:
        return diff, math.nan, math.nan
    if np.var(a) == 0 and np.var(b) == 0:
        return diff, diff, diff
    interval = stats.ttest_ind(a, b, equal_var=False).confidence_interval(level)
    return diff, float(interval.low), float(interval.high)


def held_to_schedule(run: Run, total_steps: int, steps_per_epoch: int) -> Run:
    """A stopped run's curve completed to ``total_steps``: one row per remaining epoch, its last evaluation held.

    Only the evaluation columns are held; every other column is NaN in the added rows. The result's
    ``stopped_at`` is the step of the last logged row, also when nothing is left to add (a run that stopped
    in its last epoch), so that figures can say the run diverged.
    """
    last = float(run.env_steps[-1])
    added = np.arange(last + steps_per_epoch, total_steps + 0.5, steps_per_epoch, dtype=float)
    if added.size == 0:
        return run if run.stopped_at is not None else dataclasses.replace(run, stopped_at=last)
    columns = {}
    for name, values in run.columns.items():
        if name == "env_steps":
            tail = added
        elif name in METRIC_LABELS and np.isfinite(values).any():
            tail = np.full(added.shape, values[np.isfinite(values)][-1])
        else:
            tail = np.full(added.shape, np.nan)
        columns[name] = np.concatenate([values, tail])
    return dataclasses.replace(run, columns=columns, stopped_at=last)


def check_curve(run: Run, spec: RunSpec, diverged: bool) -> None:
    """Raise a one-line :class:`NppacError` unless a finished or diverged run's rows are whole and on schedule.

    A run's ``config.json`` records its schedule, ``steps // steps_per_epoch`` epochs: one row at
    env_steps = 0 and one per epoch. A finished run must have exactly these rows, a diverged one the
    first of them; every evaluation must be finite. Otherwise the run is *damaged* (its
    ``progress.csv`` was cut, edited or partly lost) and is not averaged in. A run trained to another
    schedule than the suite's ``spec`` (its ``steps`` changed since) raises :class:`ScheduleError`:
    averaging it in would mix schedules in one row.
    """
    progress = run.directory / "progress.csv"
    try:
        per, epochs = int(run.config["steps_per_epoch"]), int(run.config["steps"]) // int(run.config["steps_per_epoch"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        raise NppacError(f"{run.directory / 'config.json'} has no positive integer steps and steps_per_epoch; "
                         "the run's schedule is unknown") from None
    schedule = np.arange(epochs + 1, dtype=float) * per
    steps = run.env_steps
    expected = schedule[:len(steps)] if diverged else schedule
    if not np.array_equal(steps, expected):
        off = [s for s in steps if s not in set(schedule)]
        what = (f"has rows off its schedule (env_steps {_steps_list(off)})" if off else
                f"lacks the rows at env_steps {_steps_list([s for s in expected if s not in set(steps)])}")
        raise NppacError(f"{progress} {what}: a run of {epochs} epochs × {per:,} steps writes one row at "
                         "env_steps 0 and one per epoch; the file was cut or edited, train the run again")
    for column in METRIC_LABELS:
        if column in run.columns and not np.isfinite(run.columns[column]).all():
            bad = steps[~np.isfinite(run.columns[column])]
            raise NppacError(f"{progress}: {column} is not a finite number at env_steps {_steps_list(bad)}; "
                             "the file was cut or edited, train the run again")
    ran, per_asked = epochs * per, spec.config.steps_per_epoch
    asked = spec.config.n_epochs * per_asked
    if per == per_asked and (steps[-1] <= asked if diverged else ran == asked):
        return
    extend = not diverged and per == per_asked and ran < asked
    raise ScheduleError(f"{run.directory} ran {ran:,} env steps in epochs of {per:,}; the suite asks for {asked:,} "
                        f"in epochs of {per_asked:,}: " + ("run `nppac suite run` again to extend it" if extend else
                                                           "delete the run's directory to train it again"))


class ScheduleError(NppacError):
    """A run trained to another schedule than its suite asks for (the suite's ``steps`` changed since)."""


def _steps_list(steps: list[float] | np.ndarray, shown: int = 3) -> str:
    """``1,000, 2,000, 3,000, … (12 rows)``: the first few env steps of a list."""
    text = ", ".join(f"{s:,.0f}" for s in list(steps)[:shown])
    return f"{text}, … ({len(steps)} rows)" if len(steps) > shown else text


def steps_to_threshold(steps: np.ndarray, values: np.ndarray, level: float) -> float | None:
    """The first logged step whose evaluation reaches ``level`` (None when none does)."""
    reached = np.flatnonzero(values >= level)
    return float(steps[reached[0]]) if reached.size else None


@dataclass(frozen=True)
class Estimate:
    """A quantity over seeds: per-seed values, their mean and 95 % t-interval."""

    values: list[float]
    mean: float
    lo: float
    hi: float

    @property
    def n(self) -> int:
        return len(self.values)

    @classmethod
    def of(cls, values: list[float]) -> Estimate:
        mean, lo, hi, _ = t_interval(np.asarray(values, dtype=float).reshape(-1, 1))
        return cls(list(values), float(mean[0]), float(lo[0]), float(hi[0]))

    def to_json(self) -> dict[str, Any]:
        return {"mean": _finite(self.mean), "lo": _finite(self.lo), "hi": _finite(self.hi), "n": self.n,
                "values": [_finite(v) for v in self.values]}

    def text(self) -> str:
        if self.n == 0 or not math.isfinite(self.mean):
            return "—"
        if self.n == 1:
            return f"{self.mean:.4g} (one seed)"
        return f"{self.mean:.4g} [{self.lo:.4g}, {self.hi:.4g}]"


@dataclass(frozen=True)
class Difference:
    """One algorithm against the baseline on one summary (final or AUC) of the primary metric."""

    algo: str
    baseline: str
    summary: str
    """final or auc."""
    diff: float
    lo: float
    hi: float

    @property
    def supported(self) -> bool | None:
        """Whether the seeds support a difference (the interval excludes 0); None without an interval."""
        if not (math.isfinite(self.lo) and math.isfinite(self.hi)):
            return None
        return self.lo > 0 or self.hi < 0

    def to_json(self) -> dict[str, Any]:
        return {"diff": _finite(self.diff), "lo": _finite(self.lo), "hi": _finite(self.hi),
                "supported": self.supported}

    def text(self) -> str:
        if self.supported is None:
            return f"{self.diff:+.4g} (no interval: < 2 seeds)"
        mark = " **✓**" if self.supported else ""
        return f"{self.diff:+.4g} [{self.lo:+.4g}, {self.hi:+.4g}]{mark}"


@dataclass(frozen=True)
class RunEntry:
    """One run of the suite as found on disk."""

    spec: RunSpec
    directory: Path
    state: str
    """finished, diverged, failed, unfinished or pending (:func:`nppac.experiments.runners.run_state`); damaged
    (a finished or diverged run whose progress.csv is cut, edited or off its schedule) or outdated (trained to
    another schedule than the suite's): :func:`check_curve`."""
    epochs: int
    """Evaluations logged so far."""
    error: str | None = None
    run: Run | None = None
    """Its progress, for a finished run; for a diverged one, completed by :func:`held_to_schedule`."""

    def to_json(self, settings: ReportSettings) -> dict[str, Any]:
        entry: dict[str, Any] = {"key": self.spec.key, "task": self.spec.task, "algo": self.spec.algo,
                                 "seed": self.spec.seed, "dir": str(self.directory), "status": self.state,
                                 "epochs": self.epochs, "n_epochs": self.spec.config.n_epochs}
        if self.error is not None:
            entry["error"] = self.error
        if self.run is not None:
            for column in METRIC_LABELS:
                if self.run.has(column):
                    steps, values = _curve(self.run, column)
                    entry[column] = {"initial": initial_performance(steps, values),
                                     "final": final_performance(values, settings.last_k),
                                     "auc": normalized_auc(steps, values), "last": float(values[-1])}
        return entry


@dataclass(frozen=True)
class AlgoSummary:
    """One algorithm on one task: its finished seeds summarized."""

    algo: str
    seeds: list[int]
    final: dict[str, Estimate]
    """Metric column → final performance over seeds."""
    auc: dict[str, Estimate]
    """Metric column → normalized area under the learning curve over seeds."""
    env_steps: float
    """Steps of the longest of its runs."""
    initial: dict[str, Estimate] = field(default_factory=dict)
    """Metric column → the step-0 evaluation over the seeds that logged one."""
    threshold: Estimate | None = None
    """Steps to the task's threshold over the seeds that reached it (None without a threshold)."""
    diverged: list[int] = field(default_factory=list)
    """The seeds among ``seeds`` whose training diverged (their last evaluation held to the end)."""

    def to_json(self, n_threshold_runs: int) -> dict[str, Any]:
        out: dict[str, Any] = {"n": len(self.seeds), "seeds": self.seeds, "diverged": self.diverged,
                               "env_steps": self.env_steps,
                               "initial": {k: e.to_json() for k, e in self.initial.items()},
                               "final": {k: e.to_json() for k, e in self.final.items()},
                               "auc": {k: e.to_json() for k, e in self.auc.items()}}
        if self.threshold is not None:
            out["steps_to_threshold"] = {**self.threshold.to_json(), "reached": self.threshold.n,
                                         "of": n_threshold_runs}
        return out


@dataclass(frozen=True)
class TaskReport:
    """One task's table and figure."""

    task: str
    primary: str
    """eval_success when every finished run logs it (binary tasks), else eval_return."""
    metrics: list[str]
    algos: list[AlgoSummary]
    threshold: float | None = None
    figure: Path | None = None
    baseline: str | None = None
    """The algorithm the others are compared with (None when it has no finished run)."""
    differences: list[Difference] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        differences: dict[str, dict[str, Any]] = {}
        for d in self.differences:
            differences.setdefault(d.algo, {})[d.summary] = d.to_json()
        return {"primary_metric": self.primary, "metrics": self.metrics, "threshold": self.threshold,
                "figure": str(self.figure) if self.figure else None,
                "algos": {a.algo: a.to_json(len(a.seeds)) for a in self.algos},
                "baseline": self.baseline, "differences": differences}


@dataclass(frozen=True)
class SuiteReport:
    """Everything ``nppac suite report`` shows."""

    name: str
    out: Path
    settings: ReportSettings
    tasks: list[TaskReport]
    entries: list[RunEntry]
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M:%S"))

    @property
    def incomplete(self) -> list[RunEntry]:
        """Runs that are not in the tables: failed, unfinished, pending, damaged or outdated."""
        return [e for e in self.entries if e.run is None]

    def to_json(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for entry in self.entries:
            counts[entry.state] = counts.get(entry.state, 0) + 1
        return {
            "format": REPORT_FORMAT, "suite": self.name, "out": str(self.out), "created": self.created,
            "last_k": self.settings.last_k,
            "definitions": {"interval": INTERVAL, "initial": INITIAL, "final": FINAL, "auc": AUC,
                            "difference": DIFFERENCE, "threshold": THRESHOLD, "diverged": DIVERGED},
            "counts": counts,
            "tasks": {t.task: t.to_json() for t in self.tasks},
            "runs": [e.to_json(self.settings) for e in self.entries],
            "incomplete": [e.spec.key for e in self.incomplete],
        }

    def to_markdown(self, relative_to: Path | None = None) -> str:
        """The report as Markdown; figure links are relative to ``relative_to`` (the report's directory)."""
        k = self.settings.last_k
        lines = [f"# Suite report: {self.name}", "",
                 f"Runs in `{self.out}` ({len(self.entries)} in the suite, {len(self.entries) - len(self.incomplete)} "
                 f"in the tables), {self.created}.", "",
                 f"- **step 0**: the evaluation before any environment step; **final**: mean of a run's last {k} "
                 "evaluations; **AUC**: area under its learning curve divided by the steps it covers "
                 "(trapezoidal rule), i.e. the curve's average height.",
                 "- Cells: mean [95 % Student-t interval] over the finished and diverged seeds (n).",
                 "- A **diverged** run (its losses became non-finite; training stopped at its last good checkpoint) "
                 "counts with its last evaluation held to the end of its schedule; its other metrics end where "
                 "it stopped.",
                 "- Differences: mean(algo) − mean(baseline) [Welch 95 % interval]; **✓** marks an interval "
                 "that excludes 0, a difference these seeds support. An unmarked difference is not evidence "
                 "of equality.", ""]
        for task in self.tasks:
            lines += [f"## {task.task}", ""]
            if task.figure is not None:
                link = os.path.relpath(task.figure, relative_to) if relative_to else str(task.figure)
                lines += [f"![{task.task} learning curves]({link})", ""]
            if not task.algos:
                lines += ["No finished runs yet.", ""]
                continue
            header = ["algo", "n", "env steps"]
            for column in task.metrics:
                label = METRIC_LABELS[column]
                header += [f"step-0 {label}", f"final {label}", f"AUC {label}"]
            if task.threshold is not None:
                header.append(f"steps to {METRIC_LABELS[task.primary]} ≥ {task.threshold:g}")
            lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            for algo in task.algos:
                n = f"{len(algo.seeds)} ({len(algo.diverged)} diverged)" if algo.diverged else str(len(algo.seeds))
                row = [algo.algo, n, f"{algo.env_steps:,.0f}"]
                for column in task.metrics:
                    row += [_cell(algo.initial.get(column)), _cell(algo.final.get(column)), _cell(algo.auc.get(column))]
                if algo.threshold is not None:
                    reached = f"{algo.threshold.n}/{len(algo.seeds)} reached"
                    row.append(f"{algo.threshold.text()}, {reached}" if algo.threshold.n else reached)
                lines.append("| " + " | ".join(row) + " |")
            lines.append("")
            if task.differences:
                label = METRIC_LABELS[task.primary]
                lines += [f"Against {task.baseline} ({label}):", "",
                          f"| algo | Δ final {label} | Δ AUC {label} |", "|---|---|---|"]
                for name in dict.fromkeys(d.algo for d in task.differences):
                    cells = {d.summary: d.text() for d in task.differences if d.algo == name}
                    lines.append(f"| {name} | {cells.get('final', '—')} | {cells.get('auc', '—')} |")
                lines.append("")
        diverged = [e for e in self.entries if e.state == "diverged" and e.run is not None]
        if diverged:
            lines += ["## Diverged runs", "", "In the tables with their last evaluation held to the end of "
                      "their schedule.", "", "| run | stopped after epoch | error |", "|---|---|---|"]
            for entry in diverged:
                error = (entry.error or "").replace("|", "\\|")
                lines.append(f"| {entry.spec.key} | {entry.epochs}/{entry.spec.config.n_epochs} | {error} |")
            lines.append("")
        lines += ["## Runs not in the tables", ""]
        if not self.incomplete:
            lines += ["None: every run finished.", ""]
        else:
            lines += ["| run | status | epochs | error |", "|---|---|---|---|"]
            for entry in self.incomplete:
                error = (entry.error or "").replace("|", "\\|")
                lines.append(f"| {entry.spec.key} | {entry.state} | {entry.epochs}/{entry.spec.config.n_epochs} "
                             f"| {error} |")
            lines.append("")
        return "\n".join(lines)


def _cell(estimate: Estimate | None) -> str:
    return estimate.text() if estimate is not None else "—"


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _curve(run: Run, column: str) -> tuple[np.ndarray, np.ndarray]:
    """The run's logged (steps, values) of ``column`` where the value is finite."""
    values = run.columns[column]
    keep = np.isfinite(values)
    return run.env_steps[keep], values[keep]


def collect_runs(out: str | Path) -> tuple[Suite, list[RunEntry]]:
    """The suite of ``OUT/suite.json`` and the state of each of its runs on disk."""
    out = Path(out)
    if not (out / MANIFEST_NAME).exists():
        raise NppacError(f"{out} has no {MANIFEST_NAME}; pass the --out directory of `nppac suite run`")
    suite = read_manifest(out)
    entries = []
    for spec in suite.runs:
        directory = spec.directory(out)
        state = run_state(directory)
        status = read_status(directory) or {}
        error = status.get("error") if state in ("failed", "diverged") else None
        run = None
        if state in ("finished", "diverged"):
            try:
                run = load_run(directory)
                check_curve(run, spec, diverged=state == "diverged")
            except NppacError as err:
                state, error, run = "outdated" if isinstance(err, ScheduleError) else "damaged", str(err), None
            else:
                if state == "diverged":
                    run = held_to_schedule(run, spec.config.steps, spec.config.steps_per_epoch)
        entries.append(RunEntry(spec, directory, state, completed_epochs(directory), error, run))
    return suite, entries


def summarize(suite: Suite, entries: list[RunEntry], settings: ReportSettings, out: Path,
              baseline: str | None = None) -> SuiteReport:
    """The numbers of the report (no files written); differences are taken against ``baseline``
    (default: the suite's first algorithm)."""
    if baseline is None:
        baseline = suite.algos[0] if suite.algos else None
    elif baseline not in suite.algos:
        raise NppacError(f"--baseline {baseline} is not an algorithm of suite {suite.name} "
                         f"(its algorithms: {', '.join(suite.algos)})")
    tasks = []
    for task in suite.tasks:
        tabled = [(e.spec, e.run) for e in entries if e.spec.task == task and e.run is not None]
        has_success = bool(tabled) and all(run.has("eval_success") for _, run in tabled)
        metrics = ["eval_success", "eval_return"] if has_success else ["eval_return"]
        primary = metrics[0]
        level = settings.thresholds.get(task)
        algos = []
        for algo in suite.algos:
            mine = [(spec.seed, run) for spec, run in tabled if spec.algo == algo]
            diverged = [e.spec.seed for e in entries
                        if e.spec.task == task and e.spec.algo == algo and e.state == "diverged" and e.run is not None]
            if not mine:
                continue
            initial, final, auc = {}, {}, {}
            for column in metrics:
                curves = [_curve(run, column) for _, run in mine]
                starts = [initial_performance(s, v) for s, v in curves]
                initial[column] = Estimate.of([v for v in starts if v is not None])
                final[column] = Estimate.of([final_performance(v, settings.last_k) for _, v in curves])
                auc[column] = Estimate.of([normalized_auc(s, v) for s, v in curves])
            threshold = None
            if level is not None:
                hits = [steps_to_threshold(*_curve(run, primary), level) for _, run in mine]
                threshold = Estimate.of([h for h in hits if h is not None])
            env_steps = max(float(run.env_steps[-1]) for _, run in mine)
            algos.append(AlgoSummary(algo, [seed for seed, _ in mine], final, auc, env_steps, initial, threshold,
                                     diverged))
        reference = next((a for a in algos if a.algo == baseline), None)
        differences = []
        if reference is not None:
            for other in algos:
                if other is reference:
                    continue
                for name in ("final", "auc"):
                    ours = getattr(other, name)[primary].values
                    theirs = getattr(reference, name)[primary].values
                    differences.append(Difference(other.algo, reference.algo, name, *welch_difference(ours, theirs)))
        tasks.append(TaskReport(task, primary, metrics, algos, level,
                                baseline=baseline if reference is not None else None, differences=differences))
    return SuiteReport(suite.name, out, settings, tasks, entries)


def common_scale_scores(report: SuiteReport, entries: list[RunEntry], ends: dict[str, dict[str, float]]
           ) -> dict[str, dict[str, list[float]]]:
    """Algo → task → per-seed final performance on the common scale of :mod:`nppac.experiments.aggregate`
    (success rate; demonstration-normalized return with the task's ``ends``), in seed order."""
    out: dict[str, dict[str, list[float]]] = {}
    for task in report.tasks:
        if task.primary != "eval_success" and task.task not in ends:
            continue
        for entry in sorted((e for e in entries if e.spec.task == task.task and e.run is not None),
                            key=lambda e: e.spec.seed):
            _, values = _curve(entry.run, task.primary)  # type: ignore[arg-type]
            final = final_performance(values, report.settings.last_k)
            if task.primary != "eval_success":
                lo, hi = ends[task.task]["random"], ends[task.task]["demos"]
                final = (final - lo) / (hi - lo)
            out.setdefault(entry.spec.algo, {}).setdefault(task.task, []).append(final)
    return out


def write_report(out: str | Path, path: str | Path | None = None, last_k: int | None = None,
                 thresholds: dict[str, float] | None = None, figures: bool = True,
                 baseline: str | None = None) -> tuple[SuiteReport, list[Path]]:
    """Write ``REPORT.md``, ``REPORT.json`` and one learning-curve PNG per task; returns the report and the files.

    ``path`` defaults to ``OUT/report.md``; figures go to ``<report dir>/figures/<task>.png``.
    ``last_k`` and ``thresholds`` override the suite file's ``[report]`` settings; ``baseline`` is the
    algorithm the others are compared with (default: the suite's first).
    """
    out = Path(out)
    suite, entries = collect_runs(out)
    settings = ReportSettings(last_k if last_k is not None else suite.report.last_k,
                              {**suite.report.thresholds, **(thresholds or {})})
    if settings.last_k < 1:
        raise NppacError(f"--last-k must be at least 1, got {settings.last_k}")
    report = summarize(suite, entries, settings, out, baseline)
    path = Path(path) if path is not None else out / "report.md"
    if path.suffix != ".md":
        raise NppacError(f"report path {path} must end in .md (the JSON is written beside it)")
    path = real_output(path.parent) / path.name
    json_path = path.with_suffix(".json")
    drawn = [path.parent / "figures" / f"{name}.png" for name in (*suite.tasks, "performance_profile")]
    _check_replaceable(path, json_path, drawn if figures else [])
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    if figures:
        report = _with_figures(report, entries, path.parent / "figures")
        written += [t.figure for t in report.tasks if t.figure is not None]
    from nppac.experiments.aggregate import STATS_HINT, aggregate, available, normalization

    across = None
    if available():
        ends = normalization(report, entries)
        across = aggregate(common_scale_scores(report, entries, ends), ends,
                           path.parent / "figures" if figures else None)
    markdown = report.to_markdown(relative_to=path.parent)
    data = report.to_json()
    if across is not None:
        markdown += "\n" + "\n".join(across.to_markdown(relative_to=path.parent))
        data["aggregate"] = across.to_json()
        if across.profile is not None:
            written.append(across.profile)
    else:
        markdown += "\n" + STATS_HINT + "\n"
        data["aggregate"] = None
    write_atomic(path, f"{REPORT_MARK}\n{markdown}")
    write_atomic(json_path, json.dumps(data, indent=2) + "\n")
    return report, [path, json_path, *written]


def _check_replaceable(path: Path, json_path: Path, figures: list[Path]) -> None:
    """Refuse, in one line, a link where the report goes, or a file it would replace that no report wrote."""
    for file in (path, json_path, path.parent / "figures", *figures):
        if file.is_symlink():
            raise NppacError(f"{file} is a symbolic link; a report replaces only the files a report wrote: remove "
                             "the link, or write the report elsewhere with --out")
    by_report = _is_report_json(json_path)
    title = _first_line(path)
    ours = {path: title == REPORT_MARK or (title.startswith("# Suite report: ") and by_report), json_path: by_report}
    for file in (path, json_path, *figures):
        mine = ours[file] if file in ours else (
            is_marked_figure(file) or (by_report and str(png_text(file).get("Software", "")).startswith("Matplotlib")))
        if file.exists() and not mine:
            raise NppacError(f"{file} was not written by `nppac suite report`, which would replace it; move it away, "
                             "or write the report elsewhere with --out")


def _is_report_json(path: Path) -> bool:
    """Whether ``path`` is a report's JSON: it carries :data:`REPORT_FORMAT`, or (written before the marker) a
    report's keys."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and (data.get("format") == REPORT_FORMAT
                                       or {"suite", "definitions", "tasks", "runs"} <= data.keys())


def _first_line(path: Path) -> str:
    try:
        with path.open(encoding="utf-8") as f:
            return f.readline().rstrip("\n")
    except (OSError, ValueError):
        return ""


def _with_figures(report: SuiteReport, entries: list[RunEntry], directory: Path) -> SuiteReport:
    """Draw each task's finished runs with :func:`plot_comparison` (mean and 95 % interval per algo)."""
    tasks = []
    for task in report.tasks:
        # Grouped by the suite's column, so that a variant is drawn apart from its algorithm.
        runs = [dataclasses.replace(e.run, config={**e.run.config, "algo": e.spec.algo})
                for a in task.algos for e in entries
                if e.spec.task == task.task and e.spec.algo == a.algo and e.run is not None]
        figure = (plot_comparison(compare_runs(runs, "algo"), directory / f"{task.task}.png")
                  if runs else None)
        tasks.append(dataclasses.replace(task, figure=figure))
    return dataclasses.replace(report, tasks=tasks)
