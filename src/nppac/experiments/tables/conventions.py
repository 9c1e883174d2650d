"""The same algorithms under two σ0 conventions: each suite's final value and AUC, and their difference.

    nppac suite report results/cpu results/cpu-std --table conventions [--task halfcheetah] [--adjust holm]

Reads each suite folder's ``report.json`` and prints a Markdown table: for every algorithm both suites ran on the
task, mean [95 % interval] over seeds under each convention and the second minus the first with Welch's interval.
The table's differences are one family whose p-values are adjusted across it (``--adjust``, Holm by default), ✓
marking an adjusted p-value below 0.05. An algorithm both suites ran with identical settings
(:mod:`nppac.experiments.replicates`) is one cell, not a comparison: its row pools the seeds of both.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from nppac.errors import NppacError
from nppac.experiments.report import Estimate
from nppac.experiments.stats import BOUNDS, adjust_p_values, comparison_text, family_text, welch_test
from nppac.experiments.tables.runs import cell_key, read_report


def _cell(estimate: dict[str, Any], digits: str = ",.0f") -> str:
    return f"{estimate['mean']:{digits}} [{estimate['lo']:{digits}}, {estimate['hi']:{digits}}]"


def table(first: Path, second: Path, task: str = "halfcheetah", adjust: str = "holm") -> list[str]:
    """The Markdown lines of the table, then the sentence that names its family of comparisons."""
    tasks = [read_report(folder)["tasks"].get(task) for folder in (first, second)]
    if tasks[0] is None or tasks[1] is None:
        raise NppacError(f"task {task!r} is not in both reports")
    metric = tasks[0]["primary_metric"]
    algos = [a for a in tasks[0]["algos"] if a in tasks[1]["algos"]]
    if not algos:
        raise NppacError(f"no algorithm of {task} is in both reports")
    d = ".2f" if "success" in metric else ",.0f"  # success rates in two decimals, returns in whole units
    bounds = BOUNDS.get(metric)
    rows: list[tuple[str, list[dict[str, Any]], bool]] = []
    for algo in algos:
        a, b = (t["algos"][algo] for t in tasks)
        ka, kb = cell_key(first, task, algo, a), cell_key(second, task, algo, b)
        rows.append((algo, [a, b], ka is not None and ka == kb))
    tests = {(algo, q): welch_test(b[q][metric]["values"], a[q][metric]["values"], bounds=bounds)
             for algo, (a, b), same in rows if not same for q in ("final", "auc")}
    adjusted = dict(zip(tests, adjust_p_values([t.p for t in tests.values()], adjust)))

    def difference(algo: str, quantity: str) -> str:
        return comparison_text(tests[algo, quantity], adjusted[algo, quantity], adjust, f"{{:+{d}}}")

    def pooled(a: dict[str, Any], b: dict[str, Any], quantity: str) -> str:
        values = a[quantity][metric]["values"] + b[quantity][metric]["values"]
        e = Estimate.of(values, bounds)
        return f"one cell (identical settings): {_cell({'mean': e.mean, 'lo': e.lo, 'hi': e.hi}, d)}, n = {e.n}"

    names = (first.name, second.name)
    lines = [f"| algo | final {names[0]} | final {names[1]} | Δ final | AUC {names[0]} | AUC {names[1]} | Δ AUC |",
             "|---|---|---|---|---|---|---|"]
    for algo, (a, b), same in rows:
        fa, fb = a["final"][metric], b["final"][metric]
        ua, ub = a["auc"][metric], b["auc"][metric]
        delta_final = pooled(a, b, "final") if same else difference(algo, "final")
        delta_auc = pooled(a, b, "auc") if same else difference(algo, "auc")
        lines.append(f"| {algo} | {_cell(fa, d)} | {_cell(fb, d)} | {delta_final} | {_cell(ua, d)} "
                     f"| {_cell(ub, d)} | {delta_auc} |")
    size = sum(math.isfinite(t.p) for t in tests.values())
    return lines + ["", family_text(size, adjust, "this table (Δ final and Δ AUC of every algorithm)")
                    + " The intervals are Welch's 95 % intervals of each comparison alone."]
