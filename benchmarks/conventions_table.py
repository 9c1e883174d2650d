"""The same algorithms under the two σ0 conventions: each suite's final value and AUC, and their difference.

    python benchmarks/conventions_table.py results/cpu results/cpu-std [--task halfcheetah]

Reads the ``report.json`` that ``nppac suite report`` wrote in each suite folder (run
``benchmarks/results_figures.sh`` first) and prints a Markdown table: for every algorithm
with a prior that both suites ran on the task, mean [95 % interval] over seeds under each
convention, and the second minus the first with Welch's interval (✓ where it excludes 0).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from nppac.experiments.report import welch_difference


def _report(folder: Path) -> dict:
    path = folder / "report.json"
    if not path.is_file():
        sys.exit(f"{path}: no report; run `nppac suite report {folder}` first")
    return json.loads(path.read_text())


def _cell(estimate: dict, digits: str = ",.0f") -> str:
    return f"{estimate['mean']:{digits}} [{estimate['lo']:{digits}}, {estimate['hi']:{digits}}]"


def _difference(a: dict, b: dict, digits: str = ",.0f") -> str:
    diff, lo, hi = welch_difference(b["values"], a["values"])
    if math.isnan(lo):
        return f"{diff:+{digits}} (no interval)"
    mark = " **✓**" if lo > 0 or hi < 0 else ""
    return f"{diff:+{digits}} [{lo:+{digits}}, {hi:+{digits}}]{mark}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path, help="suite folder of the first convention (e.g. results/cpu)")
    parser.add_argument("second", type=Path, help="suite folder of the second convention (e.g. results/cpu-std)")
    parser.add_argument("--task", default="halfcheetah")
    args = parser.parse_args()
    first, second = _report(args.first), _report(args.second)
    tasks = [r["tasks"].get(args.task) for r in (first, second)]
    if None in tasks:
        sys.exit(f"task {args.task!r} is not in both reports")
    metric = tasks[0]["primary_metric"]
    algos = [a for a in tasks[0]["algos"] if a in tasks[1]["algos"]]
    if not algos:
        sys.exit(f"no algorithm of {args.task} is in both reports")
    names = (args.first.name, args.second.name)
    print(f"| algo | final {names[0]} | final {names[1]} | Δ final | AUC {names[0]} | AUC {names[1]} | Δ AUC |")
    print("|---|---|---|---|---|---|---|")
    for algo in algos:
        a, b = (t["algos"][algo] for t in tasks)
        fa, fb = a["final"][metric], b["final"][metric]
        ua, ub = a["auc"][metric], b["auc"][metric]
        d = ".2f" if "success" in metric else ",.0f"  # success rates in two decimals, returns in whole units
        print(f"| {algo} | {_cell(fa, d)} | {_cell(fb, d)} | {_difference(fa, fb, d)} | {_cell(ua, d)} "
              f"| {_cell(ub, d)} | {_difference(ua, ub, d)} |")


if __name__ == "__main__":
    main()
