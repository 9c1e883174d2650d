"""The same algorithms side by side under several priors: one column per suite, for step 0, final value and AUC.

    nppac suite report results/cpu-published results/cpu results/cpu-std --table priors --task halfcheetah

Reads each suite folder's ``report.json`` and prints one Markdown table per quantity (step 0, final, AUC of the
task's primary metric): a row per algorithm, a column per suite (labelled by its folder's name), each cell mean
[95 % Student-t interval] (n seeds). Cells of suites that ran identical settings
(:mod:`nppac.experiments.replicates`) are one cell: each table is followed by such cells pooled.

``--versus ALGO`` adds, for final and AUC, each cell's difference from ALGO's cell (the first suite's, pooled with
those of identical settings) with Welch's 95 % interval; the printed differences are one family whose p-values are
adjusted across it (``--adjust``, Holm by default), ✓ marking an adjusted p-value below 0.05.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from nppac.errors import NppacError
from nppac.experiments.report import Estimate
from nppac.experiments.stats import BOUNDS, Welch, adjust_p_values, comparison_text, family_text, welch_test
from nppac.experiments.tables.runs import cell_key, read_report

Keys = dict[tuple[Path, str], str | None]
"""(suite folder, algo) → the settings its cell's seeds share (None when they differ or are unknown)."""
Differences = dict[tuple[str, Path, str], tuple[Welch, float]]
"""(quantity, suite folder, algo) → Welch's test of the cell minus the reference's, and its adjusted p-value."""


def _cell(estimate: dict[str, Any] | None, success: bool) -> str:
    if estimate is None:
        return "—"
    fmt = "{:.2f}" if success else "{:,.0f}"
    n = len(estimate.get("values", []))
    if n < 2:
        return f"{fmt.format(estimate['mean'])} (n = {n})"
    return f"{fmt.format(estimate['mean'])} [{fmt.format(estimate['lo'])}, {fmt.format(estimate['hi'])}] (n = {n})"


def _present(suites: list[Path], task_name: str) -> tuple[dict[Path, Any], str, Keys]:
    """The reports' entries of the task (by suite folder, those that have it), its primary metric, the cells' keys."""
    present = {folder: task for folder in suites if (task := read_report(folder)["tasks"].get(task_name)) is not None}
    if not present:
        raise NppacError(f"task {task_name!r} is in none of the reports")
    keys = {(folder, algo): cell_key(folder, task_name, algo, summary)
            for folder, task in present.items() for algo, summary in task["algos"].items()}
    return present, next(iter(present.values()))["primary_metric"], keys


def tables(suites: list[Path], task_name: str, versus: str | None = None, adjust: str = "holm") -> list[str]:
    """The Markdown lines: per quantity a row per algorithm and a column per suite, then the pooled cells of
    identical settings and (with ``versus``) the differences from ``versus``'s cell."""
    present, metric, keys = _present(suites, task_name)
    success = "success" in metric
    algos = list(dict.fromkeys(a for task in present.values() for a in task["algos"]))
    differences = _differences(present, keys, versus, metric, adjust) if versus is not None else {}
    names = " | ".join(folder.name for folder in present)
    lines = []
    for quantity, title in (("initial", "step 0"), ("final", "final"), ("auc", "AUC")):
        lines += ["", f"{title} {metric.replace('_', ' ')} on {task_name}:", "", f"| algo | {names} |",
                  "|---|" + "---|" * len(present)]
        for algo in algos:
            cells = [_cell(task["algos"].get(algo, {}).get(quantity, {}).get(metric), success)
                     for task in present.values()]
            lines.append(f"| {algo} | " + " | ".join(cells) + " |")
        lines += _pooled(present, keys, quantity, metric, success)
        if versus is not None and quantity != "initial":
            lines += ["", f"{quantity} minus {versus}'s:", "", f"| algo | {names} |", "|---|" + "---|" * len(present)]
            fmt = "{:+.2f}" if success else "{:+,.0f}"
            for algo in algos:
                found = [differences.get((quantity, folder, algo)) for folder in present]
                cells = ["—" if f is None else comparison_text(*f, adjust, fmt, "✓") for f in found]
                lines.append(f"| {algo} | " + " | ".join(cells) + " |")
    if versus is not None:
        size = sum(math.isfinite(test.p) for test, _ in differences.values())
        lines += ["", family_text(size, adjust, f"the two tables of differences from {versus}") + " The "
                  f"intervals are Welch's 95 % intervals of each comparison alone; {versus}'s cell is "
                  f"{_reference(present, keys, versus)[1]}."]
    return lines


def differences(suites: list[Path], task_name: str, versus: str, adjust: str = "holm") -> Differences:
    """The differences the ``--versus`` tables print, one family (:data:`Differences`)."""
    present, metric, keys = _present(suites, task_name)
    return _differences(present, keys, versus, metric, adjust)


def _values(task: dict[str, Any], algo: str, quantity: str, metric: str) -> list[float]:
    return task["algos"].get(algo, {}).get(quantity, {}).get(metric, {}).get("values") or []


def _reference(present: dict[Path, Any], keys: Keys, versus: str) -> tuple[list[Path], str]:
    """The suites whose ``versus`` cell is the first one's (identical settings), and how the text names it."""
    ran = [folder for folder, task in present.items() if versus in task["algos"]]
    if not ran:
        raise NppacError(f"no suite ran {versus!r} on this task")
    key = keys[ran[0], versus]
    pooled = [folder for folder in ran if folder == ran[0] or (key is not None and keys[folder, versus] == key)]
    names = " + ".join(folder.name for folder in pooled)
    return pooled, (f"{names}'s" if len(pooled) == 1 else f"pooled over {names} (identical settings)")


def _differences(present: dict[Path, Any], keys: Keys, versus: str, metric: str, adjust: str) -> Differences:
    pooled, _ = _reference(present, keys, versus)
    tests: dict[tuple[str, Path, str], Welch] = {}
    for quantity in ("final", "auc"):
        reference = [v for folder in pooled for v in _values(present[folder], versus, quantity, metric)]
        for folder, task in present.items():
            for algo in task["algos"]:
                values = _values(task, algo, quantity, metric)
                if values and algo != versus:
                    tests[quantity, folder, algo] = welch_test(values, reference, bounds=BOUNDS.get(metric))
    adjusted = adjust_p_values([t.p for t in tests.values()], adjust)
    return {key: (test, p) for (key, test), p in zip(tests.items(), adjusted)}


def _pooled(present: dict[Path, Any], keys: Keys, quantity: str, metric: str, success: bool) -> list[str]:
    """Lines naming each cell that several suites ran with identical settings, with its seeds pooled."""
    groups: dict[tuple[str, str], list[Path]] = {}
    for (folder, algo), key in keys.items():
        if key is not None:
            groups.setdefault((algo, key), []).append(folder)
    lines = []
    for (algo, _), folders in groups.items():
        if len(folders) > 1:
            values = [v for folder in folders for v in _values(present[folder], algo, quantity, metric)]
            estimate = Estimate.of(values, BOUNDS.get(metric))
            pooled = {"mean": estimate.mean, "lo": estimate.lo, "hi": estimate.hi, "values": values}
            lines.append(f"- {algo}: identical settings in {' and '.join(f.name for f in folders)}, one cell: "
                         f"{_cell(pooled, success)}")
    return ["", *lines] if lines else []
