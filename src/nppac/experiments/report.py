"""A suite's report: final performance and sample efficiency per task and algorithm, with 95 % intervals.

From a run's evaluations y_1..y_N at environment steps s_1 < … < s_N (``progress.csv``: step 0, every
``eval_every``-th epoch and the last, :func:`evaluation_steps`):

* final performance (DESIGN.md §5.4): the mean of the last K evaluated rows of its schedule (:func:`run_final`);
* sample efficiency: A = 1/(s_N − s_1) · Σ_j (s_j − s_{j−1})(y_j + y_{j−1})/2, the curve's average height
  (trapezoidal rule; A = y_1 when N = 1);
* initial performance: y at s = 0, after initialization or an offline phase (DESIGN.md §5, claim 2);
* optionally the steps to a threshold: the first s_j with y_j ≥ level.

Over an algorithm's seeds each is a mean with Student's t 95 % interval (a success rate's cut to [0, 1]); the
seeds of a row share one prior fit, so the intervals leave out the variance between fits. Each algorithm is
compared with a baseline (the suite's first) by Welch's test, the report's comparisons one family whose p-values
are adjusted (Holm by default: :mod:`nppac.experiments.stats`); with 3 seeds a side an unmarked difference is not
evidence of equality.

A diverged run is an outcome of its algorithm on that seed, and leaving it out would flatter the algorithm: it
enters with its last evaluation held at the remaining rows of its schedule (what its last good checkpoint scores,
:func:`held_to_schedule`). A finished run whose curve is not whole and on schedule is listed as damaged or
outdated instead (:func:`check_curve`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nppac.diagnostics.curves import Run, finite, load_run, t_interval
from nppac.errors import NppacError
from nppac.experiments.runners import completed_epochs, run_state
from nppac.experiments.stats import (
    ALPHA,
    BOUNDS,
    P_LABELS,
    Welch,
    adjust_p_values,
    clip_interval,
    comparison_text,
    family_text,
    welch_test,
)
from nppac.experiments.suite import MANIFEST_NAME, ReportSettings, RunSpec, Suite, read_manifest
from nppac.outputs import relative_link
from nppac.training.rundir import RunDir

REPORT_FORMAT = "nppac-suite-report"
"""The ``format`` of ``report.json``; ``report.md`` starts with :data:`REPORT_MARK`."""
REPORT_MARK = f"<!-- {REPORT_FORMAT} -->"

INTERVAL = ("mean and 95% Student-t interval across seeds: mean ± t(0.975, n−1)·s/√n, s with ddof=1 "
            "(nppac.diagnostics.curves.t_interval); lo = hi = mean for a single seed; a success rate's interval "
            "is cut to [0, 1] (a difference's to [−1, 1]), which drops only impossible values")
PRIOR_FIT = ("prior fit: the seeds of a row share one prior fit (fitted once per suite), so the intervals leave out "
             "the variance between prior fits")
FINAL = ("final: mean of the last K evaluated rows of a run's schedule (all of them when it has fewer); a diverged "
         "run's rows after it stopped hold its last evaluation")
AUC = ("auc: normalized area under the learning curve, 1/(s_N − s_1) Σ_j (s_j − s_{j−1})(y_j + y_{j−1})/2 "
       "over the run's evaluations (trapezoidal rule)")
INITIAL = "initial: the evaluation at env_steps = 0 (after initialization or an offline phase)"
DIFFERENCE = ("difference: mean(algo) − mean(baseline) with Welch's 95% interval (unequal variances) and two-sided "
              "p-value (needs ≥ 2 seeds on each side); p_adjusted: adjusted across the report's comparisons "
              "(see comparisons); supported = p_adjusted < 0.05")
DIVERGED = ("diverged: a run stopped by a non-finite loss enters with its last evaluation held at each evaluated "
            "row of its schedule after it stopped; its other metrics end where it stopped")
FAMILY = "every task's algorithms against its baseline, on the final and AUC values of the primary metric"
THRESHOLD = "steps_to_threshold: first env_steps with an evaluation ≥ the level, averaged over the seeds reaching it"

METRIC_LABELS = {"eval_return": "return", "eval_success": "success rate"}


def final_performance(values: np.ndarray, last_k: int) -> float:
    """F = mean of the last ``last_k`` evaluations."""
    return float(np.mean(values[-last_k:]))


def evaluation_steps(total_steps: int, steps_per_epoch: int, eval_every: int = 1) -> np.ndarray:
    """The env steps of a run's evaluated rows: step 0, every ``eval_every``-th epoch and the last epoch."""
    epochs = total_steps // steps_per_epoch
    evaluated = [e for e in range(1, epochs + 1) if e % eval_every == 0 or e == epochs]
    return np.array([0, *evaluated], dtype=float) * steps_per_epoch


def config_schedule(config: Mapping[str, Any]) -> np.ndarray:
    """:func:`evaluation_steps` of a run's ``config.json`` (settings it lacks as the run had them: runs from
    before ``eval_every`` evaluated every epoch)."""
    from nppac.training.config import migrate

    filled = migrate(dict(config))
    return evaluation_steps(int(filled["steps"]), int(filled["steps_per_epoch"]), int(filled["eval_every"]))


def run_final(steps: np.ndarray, values: np.ndarray | Sequence[float], schedule: np.ndarray, last_k: int) -> float:
    """A run's final performance, as the report and every table define it: the mean of the last ``last_k``
    evaluated rows of its ``schedule`` (:func:`evaluation_steps`), from the evaluations it logged at ``steps``.

    A run that stopped early holds its last evaluation at the rows it did not reach (what its last good
    checkpoint scores): averaging its last K *logged* evaluations would credit a run that diverged within K rows
    with earlier ones, down to step 0.
    """
    added = int(np.sum(schedule > steps[-1])) if len(steps) else 0
    logged = np.asarray(values, dtype=float)
    return final_performance(np.concatenate([logged, np.full(added, logged[-1])]), last_k)


def normalized_auc(steps: np.ndarray, values: np.ndarray) -> float:
    """A = 1/(s_N − s_1) · Σ_j (s_j − s_{j−1})(y_j + y_{j−1})/2; the single value when there is one evaluation."""
    if len(values) == 1:
        return float(values[0])
    area = np.sum(np.diff(steps) * (values[1:] + values[:-1]) / 2)
    return float(area / (steps[-1] - steps[0]))


def initial_performance(steps: np.ndarray, values: np.ndarray) -> float | None:
    """The evaluation logged at env_steps = 0 (None when the run has no step-0 row)."""
    return float(values[0]) if len(steps) and steps[0] == 0 else None


def held_to_schedule(run: Run, total_steps: int, steps_per_epoch: int, eval_every: int = 1) -> Run:
    """A stopped run's curve completed to ``total_steps``: one row per remaining evaluated epoch
    (:func:`evaluation_steps`), its last evaluation held and every other column NaN. ``stopped_at`` is set
    even when nothing is left to add, so that figures can say the run diverged.
    """
    last = float(run.env_steps[-1])
    schedule = evaluation_steps(total_steps, steps_per_epoch, eval_every)
    added = schedule[schedule > last]
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

    A finished run must have every row of its ``config.json``'s schedule (:func:`evaluation_steps`), a
    diverged one the first of them, every evaluation finite. Each row must end an epoch, with at most
    ``eval_every`` epochs between two (a run extended to more steps keeps the row of its former last epoch,
    off the new cadence). A run trained to another schedule than the suite's ``spec`` raises
    :class:`ScheduleError`: averaging it in would mix schedules in one row.
    """
    progress = RunDir(run.directory).progress_file
    try:
        per, epochs = int(run.config["steps_per_epoch"]), int(run.config["steps"]) // int(run.config["steps_per_epoch"])
        every = int(run.config.get("eval_every") or 1)
        schedule = evaluation_steps(epochs * per, per, every)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        raise NppacError(f"{RunDir(run.directory).config_file} has no positive integer steps, steps_per_epoch and "
                         "eval_every; the run's schedule is unknown") from None
    steps = run.env_steps
    epoch_ends = set(np.arange(epochs + 1, dtype=float) * per)
    off = [s for s in steps if s not in epoch_ends]
    missing = [s for s in schedule if s < steps[0] or (not diverged and s > steps[-1])]
    for before, after in zip(steps, steps[1:]):
        if after - before > every * per:
            missing += [s for s in schedule if before < s < after]
    if off or missing:
        what = (f"has rows off its schedule (env_steps {_steps_list(off)})" if off else
                f"lacks the rows at env_steps {_steps_list(sorted(missing))}")
        cadence = "one per epoch" if every == 1 else f"one every {every} epochs and at the last"
        raise NppacError(f"{progress} {what}: a run of {epochs} epochs × {per:,} steps writes one row at "
                         f"env_steps 0 and {cadence}; the file was cut or edited, train the run again")
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
    def of(cls, values: list[float], bounds: tuple[float, float] | None = None) -> Estimate:
        """The mean and t-interval of ``values``; with ``bounds``, the interval is cut to them
        (:func:`nppac.experiments.stats.clip_interval`)."""
        mean, lo, hi, _ = t_interval(np.asarray(values, dtype=float).reshape(-1, 1))
        return cls(list(values), float(mean[0]), *clip_interval(float(lo[0]), float(hi[0]), bounds))

    def to_json(self) -> dict[str, Any]:
        return {"mean": finite(self.mean), "lo": finite(self.lo), "hi": finite(self.hi), "n": self.n,
                "values": [finite(v) for v in self.values]}

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
    test: Welch
    """The difference, its Welch 95 % interval and p-value (:func:`nppac.experiments.stats.welch_test`)."""
    p_adjusted: float = math.nan
    """The p-value adjusted across the report's comparisons (:func:`nppac.experiments.stats.adjust_p_values`)."""
    method: str = "holm"
    """How ``p_adjusted`` was adjusted: holm, bh or none."""

    @property
    def supported(self) -> bool | None:
        """Whether the seeds support a difference (its adjusted p-value is below 0.05); None without a test."""
        if not math.isfinite(self.p_adjusted):
            return None
        return self.p_adjusted < ALPHA

    def to_json(self) -> dict[str, Any]:
        return {"diff": finite(self.test.diff), "lo": finite(self.test.lo), "hi": finite(self.test.hi),
                "p": finite(self.test.p), "p_adjusted": finite(self.p_adjusted), "supported": self.supported}

    def text(self) -> str:
        return comparison_text(self.test, self.p_adjusted, self.method)


@dataclass(frozen=True)
class RunEntry:
    """One run of the suite as found on disk."""

    spec: RunSpec
    directory: Path
    state: str
    """:func:`nppac.experiments.runners.run_state`'s, or damaged or outdated (:func:`check_curve`)."""
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
                                     "final": self.final(column, settings.last_k),
                                     "auc": normalized_auc(steps, values), "last": float(values[-1])}
        return entry

    def final(self, column: str, last_k: int) -> float:
        """The run's final performance on ``column`` (:func:`run_final`, on the schedule its suite asks for)."""
        run = self.run
        if run is None:
            raise ValueError(f"{self.spec.key} is {self.state}: only a finished or diverged run has a final value")
        steps, values = _curve(run, column)
        if run.stopped_at is not None:
            logged = steps <= run.stopped_at
            steps, values = steps[logged], values[logged]
        config = self.spec.config
        return run_final(steps, values, evaluation_steps(config.steps, config.steps_per_epoch, config.eval_every),
                         last_k)


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

    def to_json(self, relative_to: Path | None = None) -> dict[str, Any]:
        differences: dict[str, dict[str, Any]] = {}
        for d in self.differences:
            differences.setdefault(d.algo, {})[d.summary] = d.to_json()
        return {"primary_metric": self.primary, "metrics": self.metrics, "threshold": self.threshold,
                "figure": relative_link(self.figure, relative_to),
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

    @property
    def family_size(self) -> int:
        """How many comparisons (with a test: ≥ 2 seeds a side) the report's p-values are adjusted across."""
        return sum(math.isfinite(d.test.p) for t in self.tasks for d in t.differences)

    def comparisons_text(self) -> str:
        """The family of comparisons and the adjustment of their p-values, in one sentence."""
        return family_text(self.family_size, self.settings.adjust, f"this report ({FAMILY})")

    def to_json(self, relative_to: Path | None = None) -> dict[str, Any]:
        """The report's numbers; figure paths relative to ``relative_to`` (the report's directory)."""
        counts: dict[str, int] = {}
        for entry in self.entries:
            counts[entry.state] = counts.get(entry.state, 0) + 1
        return {
            "format": REPORT_FORMAT, "suite": self.name, "out": str(self.out), "created": self.created,
            "last_k": self.settings.last_k,
            "definitions": {"interval": INTERVAL, "initial": INITIAL, "final": FINAL, "auc": AUC,
                            "difference": DIFFERENCE, "comparisons": self.comparisons_text(),
                            "threshold": THRESHOLD, "diverged": DIVERGED, "prior_fit": PRIOR_FIT},
            "comparisons": {"family": FAMILY, "size": self.family_size, "adjust": self.settings.adjust,
                            "p_label": P_LABELS[self.settings.adjust], "alpha": ALPHA},
            "counts": counts,
            "tasks": {t.task: t.to_json(relative_to) for t in self.tasks},
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
                 "- Cells: mean [95 % Student-t interval] over the finished and diverged seeds (n); a success "
                 "rate's interval is cut to [0, 1] (a difference's to [−1, 1]), which drops only impossible values.",
                 "- The seeds of a row share one prior fit (a suite fits each prior once), so the intervals leave "
                 "out the variance between prior fits.",
                 "- A **diverged** run (its losses became non-finite; training stopped at its last good checkpoint) "
                 "counts with its last evaluation held at each evaluated row of its schedule after it stopped (its "
                 f"final is the mean of its schedule's last {k} rows, like every run's); its other metrics end where "
                 "it stopped.",
                 "- Differences: mean(algo) − mean(baseline) [Welch 95 % interval of that comparison alone], then "
                 "its p-value. " + self.comparisons_text() + " An unmarked difference is not evidence of equality.",
                 ""]
        for task in self.tasks:
            lines += [f"## {task.task}", ""]
            if task.figure is not None:
                lines += [f"![{task.task} learning curves]({relative_link(task.figure, relative_to)})", ""]
            if not task.algos:
                lines += ["No finished runs yet.", ""]
                continue
            header = ["algo", "n", "env steps"]
            for column in task.metrics:
                label = METRIC_LABELS[column]
                header += [f"step-0 {label}", f"final {label}", f"AUC {label}"]
            if task.threshold is not None:
                header.append(f"steps to {METRIC_LABELS[task.primary]} ≥ {task.threshold:g}")
            rows = []
            for algo in task.algos:
                n = f"{len(algo.seeds)} ({len(algo.diverged)} diverged)" if algo.diverged else str(len(algo.seeds))
                row = [algo.algo, n, f"{algo.env_steps:,.0f}"]
                for column in task.metrics:
                    row += [_cell(algo.initial.get(column)), _cell(algo.final.get(column)), _cell(algo.auc.get(column))]
                if algo.threshold is not None:
                    reached = f"{algo.threshold.n}/{len(algo.seeds)} reached"
                    row.append(f"{algo.threshold.text()}, {reached}" if algo.threshold.n else reached)
                rows.append(row)
            lines += [*markdown_table(header, rows), ""]
            if task.differences:
                label = METRIC_LABELS[task.primary]
                cells = {(d.algo, d.summary): d.text() for d in task.differences}
                lines += [f"Against {task.baseline} ({label}):", "",
                          *markdown_table(["algo", f"Δ final {label}", f"Δ AUC {label}"],
                                          ([name, cells.get((name, "final"), "—"), cells.get((name, "auc"), "—")]
                                           for name in dict.fromkeys(d.algo for d in task.differences))), ""]
        diverged = [e for e in self.entries if e.state == "diverged" and e.run is not None]
        if diverged:
            lines += ["## Diverged runs", "", "In the tables with their last evaluation held to the end of "
                      "their schedule.", "",
                      *markdown_table(["run", "stopped after epoch", "error"],
                                      ([e.spec.key, _epochs(e), _escaped(e.error)] for e in diverged)), ""]
        lines += ["## Runs not in the tables", ""]
        if not self.incomplete:
            lines += ["None: every run finished.", ""]
        else:
            lines += [*markdown_table(["run", "status", "epochs", "error"],
                                      ([e.spec.key, e.state, _epochs(e), _escaped(e.error)] for e in self.incomplete)),
                      ""]
        return "\n".join(lines)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A Markdown table's lines: the header, its rule and a line per row of cells."""
    return [f"| {' | '.join(header)} |", "|" + "---|" * len(header), *(f"| {' | '.join(row)} |" for row in rows)]


def _cell(estimate: Estimate | None) -> str:
    return estimate.text() if estimate is not None else "—"


def _epochs(entry: RunEntry) -> str:
    return f"{entry.epochs}/{entry.spec.config.n_epochs}"


def _escaped(error: str | None) -> str:
    return (error or "").replace("|", "\\|")


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
        status = RunDir(directory).status() or {}
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
                    run = held_to_schedule(run, spec.config.steps, spec.config.steps_per_epoch,
                                           spec.config.eval_every)
        entries.append(RunEntry(spec, directory, state, completed_epochs(directory), error, run))
    return suite, entries


def summarize(suite: Suite, entries: list[RunEntry], settings: ReportSettings, out: Path,
              baseline: str | None = None) -> SuiteReport:
    """The numbers of the report (no files written); differences are taken against ``baseline``
    (default: the suite's first algorithm), their p-values adjusted across all of them by ``settings.adjust``."""
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
            tabled_runs = [e for e in entries if e.spec.task == task and e.spec.algo == algo and e.run is not None]
            if not tabled_runs:
                continue
            mine = [(e.spec.seed, e.run) for e in tabled_runs if e.run is not None]
            diverged = [e.spec.seed for e in tabled_runs if e.state == "diverged"]
            initial, final, auc = {}, {}, {}
            for column in metrics:
                curves = [_curve(run, column) for _, run in mine]
                starts = [initial_performance(s, v) for s, v in curves]
                bounds = BOUNDS.get(column)
                initial[column] = Estimate.of([v for v in starts if v is not None], bounds)
                final[column] = Estimate.of([e.final(column, settings.last_k) for e in tabled_runs], bounds)
                auc[column] = Estimate.of([normalized_auc(s, v) for s, v in curves], bounds)
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
                    test = welch_test(ours, theirs, bounds=BOUNDS.get(primary))
                    differences.append(Difference(other.algo, reference.algo, name, test, method=settings.adjust))
        tasks.append(TaskReport(task, primary, metrics, algos, level,
                                baseline=baseline if reference is not None else None, differences=differences))
    return SuiteReport(suite.name, out, settings, _adjusted(tasks, settings.adjust), entries)


def _adjusted(tasks: list[TaskReport], method: str) -> list[TaskReport]:
    """The tasks with each difference's p-value adjusted across every difference of the report."""
    every = [d for t in tasks for d in t.differences]
    adjusted = iter(adjust_p_values([d.test.p for d in every], method))
    return [dataclasses.replace(t, differences=[dataclasses.replace(d, p_adjusted=next(adjusted))
                                                for d in t.differences]) for t in tasks]


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
            final = entry.final(task.primary, report.settings.last_k)
            if task.primary != "eval_success":
                lo, hi = ends[task.task]["random"], ends[task.task]["demos"]
                final = (final - lo) / (hi - lo)
            out.setdefault(entry.spec.algo, {}).setdefault(task.task, []).append(final)
    return out
