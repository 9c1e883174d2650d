"""A suite's report on disk: ``report.md`` and ``report.json`` (with their marker), its figures, and the
cross-task aggregate beside them; it replaces only files a report wrote."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from nppac.diagnostics.curves import compare_runs, plot_comparison
from nppac.diagnostics.style import is_marked_figure, png_text
from nppac.errors import NppacError
from nppac.experiments.aggregate import STATS_HINT, aggregate, available, normalization
from nppac.experiments.report import (
    REPORT_FORMAT,
    REPORT_MARK,
    RunEntry,
    SuiteReport,
    collect_runs,
    common_scale_scores,
    summarize,
)
from nppac.experiments.stats import ADJUSTMENTS
from nppac.experiments.suite import ReportSettings
from nppac.outputs import real_output, write_atomic


def write_report(out: str | Path, path: str | Path | None = None, last_k: int | None = None,
                 thresholds: dict[str, float] | None = None, figures: bool = True,
                 baseline: str | None = None, adjust: str | None = None) -> tuple[SuiteReport, list[Path]]:
    """Write ``REPORT.md``, ``REPORT.json`` and one learning-curve PNG per task; returns the report and the files.

    ``path`` defaults to ``OUT/report.md``; figures go to ``<report dir>/figures/<task>.png``.
    ``last_k``, ``thresholds`` and ``adjust`` (holm, bh or none) override the suite file's ``[report]``
    settings; ``baseline`` is the algorithm the others are compared with (default: the suite's first).
    """
    out = Path(out)
    suite, entries = collect_runs(out)
    settings = ReportSettings(last_k if last_k is not None else suite.report.last_k,
                              {**suite.report.thresholds, **(thresholds or {})},
                              adjust if adjust is not None else suite.report.adjust)
    if settings.last_k < 1:
        raise NppacError(f"--last-k must be at least 1, got {settings.last_k}")
    if settings.adjust not in ADJUSTMENTS:
        raise NppacError(f"--adjust must be one of {', '.join(ADJUSTMENTS)}, got {settings.adjust!r}")
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
    across = None
    if available():
        ends = normalization(report, entries)
        across = aggregate(common_scale_scores(report, entries, ends), ends,
                           path.parent / "figures" if figures else None)
    markdown = report.to_markdown(relative_to=path.parent)
    data = report.to_json(relative_to=path.parent)
    if across is not None:
        markdown += "\n" + "\n".join(across.to_markdown(relative_to=path.parent))
        data["aggregate"] = across.to_json(relative_to=path.parent)
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
