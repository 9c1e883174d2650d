"""The same algorithms side by side under several priors: one column per suite, for step 0, final value and AUC.

    python benchmarks/priors_table.py results/cpu-published results/cpu results/cpu-std --task halfcheetah

Reads the ``report.json`` that ``nppac suite report`` wrote in each suite folder and prints
one Markdown table per quantity (step 0, final, AUC of the task's primary metric): a row per
algorithm, a column per suite, each cell mean [95 % Student-t interval] (n seeds), "—" where
the suite did not run the algorithm on the task. Suites that differ in prior (σ0 scale,
variance estimate) or protocol are labelled by their folder name; say in the text what each is.
``--versus ALGO`` adds, for final and AUC, each cell's difference from ALGO (taken from the first
suite that ran it) with Welch's 95 % interval, ✓ where it excludes 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nppac.experiments.report import welch_difference


def _report(folder: Path) -> dict[str, Any]:
    path = folder / "report.json"
    if not path.is_file():
        sys.exit(f"{path}: no report; run `nppac suite report {folder}` first")
    return json.loads(path.read_text())


def _cell(estimate: dict[str, Any] | None, success: bool) -> str:
    if estimate is None:
        return "—"
    fmt = "{:.2f}" if success else "{:,.0f}"
    n = len(estimate.get("values", []))
    if n < 2:
        return f"{fmt.format(estimate['mean'])} (n = {n})"
    return f"{fmt.format(estimate['mean'])} [{fmt.format(estimate['lo'])}, {fmt.format(estimate['hi'])}] (n = {n})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suites", nargs="+", type=Path, help="suite folders with a report.json")
    parser.add_argument("--task", default="halfcheetah")
    parser.add_argument("--versus", default=None, help="an algorithm to difference every cell against")
    args = parser.parse_args()
    tasks = {folder.name: _report(folder)["tasks"].get(args.task) for folder in args.suites}
    present = {name: task for name, task in tasks.items() if task is not None}
    if not present:
        sys.exit(f"task {args.task!r} is in none of the reports")
    metric = next(iter(present.values()))["primary_metric"]
    success = "success" in metric
    algos = list(dict.fromkeys(a for task in present.values() for a in task["algos"]))
    for quantity, title in (("initial", "step 0"), ("final", "final"), ("auc", "AUC")):
        print(f"\n{title} {metric.replace('_', ' ')} on {args.task}:\n")
        print("| algo | " + " | ".join(present) + " |")
        print("|---|" + "---|" * len(present))
        for algo in algos:
            cells = [_cell(task["algos"].get(algo, {}).get(quantity, {}).get(metric), success)
                     for task in present.values()]
            print(f"| {algo} | " + " | ".join(cells) + " |")
        if args.versus is not None and quantity != "initial":
            _versus(present, args.versus, quantity, metric, success)


def _versus(present: dict[str, Any], versus: str, quantity: str, metric: str, success: bool) -> None:
    """Each suite's cells minus ``versus``'s (from the first suite that ran it), with Welch's interval."""
    reference = next((task["algos"][versus][quantity][metric]["values"] for task in present.values()
                      if versus in task["algos"]), None)
    if reference is None:
        sys.exit(f"no suite ran {versus!r} on this task")
    fmt = "{:+.2f}" if success else "{:+,.0f}"
    print(f"\n{quantity} minus {versus}'s:\n")
    print("| algo | " + " | ".join(present) + " |")
    print("|---|" + "---|" * len(present))
    for algo in dict.fromkeys(a for task in present.values() for a in task["algos"]):
        cells = []
        for task in present.values():
            values = task["algos"].get(algo, {}).get(quantity, {}).get(metric, {}).get("values")
            if not values or algo == versus:
                cells.append("—")
                continue
            diff, lo, hi = welch_difference(values, reference)
            mark = " ✓" if lo > 0 or hi < 0 else ""
            cells.append(f"{fmt.format(diff)} [{fmt.format(lo)}, {fmt.format(hi)}]{mark}")
        print(f"| {algo} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
