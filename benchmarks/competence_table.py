"""Does a run keep its prior's competence? Epoch by epoch, against the prior's mean action and step 0.

    python benchmarks/competence_table.py results/cpu results/cpu-published --task pen-binary

For every finished or diverged run of the task (each suite directory holds TASK/ALGO/seed-S),
from its progress.csv and references.json: y_0, its evaluation at env_steps = 0 (success rate
on hand tasks, else return); y_prior, the prior's mean action rolled out like the agent's
evaluation (the run's own references.json, or, for runs without a prior, that of a GP-prior
run of the same suite and task); and over the online epochs after step 0

    min_e y_e / y_prior      min_e y_e / y_0      and the final evaluation (mean of the last 3 logged).

A run that keeps its prior's competence has both minima near 1 or above. Rows are grouped by
algorithm and the run's prior setting (σ0 scale · variance estimate · hand protocol), and each
group ends with the mean of its seeds' values. Prints one Markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from run_files import done, read_rows, state

ALGOS = ("nppac", "ppac-nn", "nppac-nn-std", "sac", "sac-bc", "awac", "bc")


def _float(text: str | None) -> float:
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _prior_reference(references: dict[str, Any], metric: str) -> float:
    values = references.get("prior_mean_action") or {}
    return _float(values.get(metric))


def setting(config: dict[str, Any]) -> str:
    """σ0 scale · variance estimate · hand protocol of a run (runs from before a setting existed: as they ran)."""
    if config.get("prior") is None and config.get("algo") not in ("nppac", "ppac-nn", "nppac-nn-std"):
        parts = []
    else:
        # The variance estimate is the GP's: the NN variants' σ0 is the NN's own, whatever prior_variance says.
        estimate = config.get("prior_variance") or "exact" if config.get("algo") == "nppac" else "exact"
        parts = [str(config.get("prior_sigma")), str(estimate)]
    if config.get("task", "").endswith("-binary"):
        parts.append(str(config.get("hand_protocol") or "awac"))
    return " · ".join(parts) or "—"


def summarize(run: Path, fallback_prior: float) -> dict[str, Any]:
    every = read_rows(run)
    offline = [r for r in every if r.get("phase") == "offline"]
    rows = offline[-1:] + [r for r in every if r.get("phase") != "offline"]
    config = json.loads((run / "config.json").read_text())
    metric = "success" if config["task"].endswith("-binary") else "return"
    column = "eval_success" if metric == "success" else "eval_return"
    values = [_float(r.get(column)) for r in rows]
    try:
        references = json.loads((run / "references.json").read_text())
    except (OSError, ValueError):
        references = {}
    prior = _prior_reference(references, metric)
    prior = prior if math.isfinite(prior) else fallback_prior
    start, online = values[0], values[1:]
    last = values[-3:]

    def ratio(num: float, den: float) -> float:
        return num / den if math.isfinite(num) and math.isfinite(den) and den > 0 else math.nan

    lowest = min(online) if online else math.nan
    return {"algo": config["algo"], "setting": setting(config), "seed": config["seed"], "metric": metric,
            "prior": prior, "step0": start, "min_vs_prior": ratio(lowest, prior), "min_vs_step0": ratio(lowest, start),
            "final": sum(last) / len(last), "diverged": state(run) == "diverged", "epochs": len(online)}


def _suite_prior(suite: Path, task: str, metric: str) -> float:
    """The prior's mean-action evaluation recorded by a GP-prior run of the suite (for runs without a prior)."""
    for path in sorted((suite / task / "nppac").glob("seed-*/references.json")):
        try:
            value = _prior_reference(json.loads(path.read_text()), metric)
        except (OSError, ValueError):
            continue
        if math.isfinite(value):
            return value
    return math.nan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suites", nargs="+", type=Path, help="suite directories (or their exported copies)")
    parser.add_argument("--task", default="halfcheetah")
    args = parser.parse_args()
    metric = "success" if args.task.endswith("-binary") else "return"
    summaries = []
    for suite in args.suites:
        fallback = _suite_prior(suite, args.task, metric)
        for algo in ALGOS:
            summaries += [summarize(r, fallback) for r in sorted((suite / args.task / algo).glob("seed-*")) if done(r)]
    number = "{:.2f}" if metric == "success" else "{:,.0f}"

    def fmt(x: float, pattern: str = "{:.2f}") -> str:
        return pattern.format(x) if math.isfinite(x) else "—"

    print(f"| algo | prior setting | seed | prior's mean action | step 0 | min ÷ prior | min ÷ step 0 "
          f"| final ({metric}) |")
    print("|---|---|---|---|---|---|---|---|")
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for s in summaries:
        groups.setdefault((s["algo"], s["setting"]), []).append(s)
    for (algo, name), runs in groups.items():
        for s in runs:
            note = f" (diverged after {s['epochs']} epochs)" if s["diverged"] else ""
            print(f"| {algo} | {name} | {s['seed']} | {fmt(s['prior'], number)} | {fmt(s['step0'], number)} "
                  f"| {fmt(s['min_vs_prior'])} | {fmt(s['min_vs_step0'])} | {fmt(s['final'], number)}{note} |")
        if len(runs) > 1:
            def mean(key: str, runs: list[dict] = runs) -> float:
                vals = [r[key] for r in runs if math.isfinite(r[key])]
                return sum(vals) / len(vals) if vals else math.nan

            print(f"| **{algo}** | **{name}** | mean of {len(runs)} | | {fmt(mean('step0'), number)} "
                  f"| **{fmt(mean('min_vs_prior'))}** | **{fmt(mean('min_vs_step0'))}** "
                  f"| {fmt(mean('final'), number)} |")


if __name__ == "__main__":
    main()
