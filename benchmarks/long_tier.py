"""The long tier read run by run: final, AUC, when a level is reached and kept, and every dip.

    python benchmarks/long_tier.py results/cpu-long --task pen-binary --level 0.9 --figure docs/figures/long/pen.png
    python benchmarks/long_tier.py results/cpu-long --task halfcheetah --level 1.0 --figure docs/figures/long/hc.png

For every finished or diverged run of the task (``SUITE/TASK/COLUMN/seed-S``; ``--all`` adds runs still
training, marked as such), from its progress.csv (evaluations at the env steps they were logged at):

* step 0 and **final**: the evaluation at env_steps = 0, and the mean of the last ``--last-k`` evaluations;
* **AUC**: the mean evaluation over the run's env steps (trapezoids over the logged evaluations, step 0
  included), so a run that learns early scores higher than one that ends at the same level late;
* **reaches / keeps**: the first env step with an evaluation ≥ the level, and the first from which every
  later evaluation stays ≥ the level (— where none); the level is ``--level`` success on hand tasks and
  ``--level`` × the return of the prior's mean action elsewhere (from a GP-prior run's references.json);
* **dips**: the epochs whose evaluation is below half the run's best evaluation so far (after that best
  was above zero), as ranges;
* **run rate ÷ update rate**: env steps per second of the whole run's wall time (its start, initialization,
  collection, evaluation and checkpoints included) over its mean online gradient steps per second: the share
  of the run spent updating, with one update per env step;
* **eval + checkpoint share**: the share of the online rows' wall time spent outside collection and updates
  (the evaluation, the checkpoint and the row), from each row's own timings, and in parentheses what it
  would have been with an evaluation and checkpoint every epoch (the same cost per row, over one epoch's
  work instead of ``eval_every`` epochs').

Per column, the mean of final and AUC over seeds with a 95 % Student-t interval (clipped to [0, 1] for a
success rate). Prints Markdown;
``--figure`` draws every seed's curve (thin) and each column's mean (thick), with the level dashed.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import numpy as np

from nppac.diagnostics import style
from nppac.diagnostics.curves import Run, load_run, t_interval
from nppac.experiments.tables.runs import columns, done


def level_of(runs: list[Run], hand: bool, level: float) -> float:
    """The absolute level: a success rate on hand tasks, else ``level`` × the prior's mean-action return."""
    if hand:
        return level
    returns = [r.references.get("prior_mean_action", {}).get("return") for r in runs]
    found = [float(x) for x in returns if isinstance(x, (int, float)) and math.isfinite(x)]
    return level * float(np.mean(found)) if found else math.nan


def reach_and_keep(steps: np.ndarray, values: np.ndarray, level: float) -> tuple[float, float]:
    """(first step with a value ≥ level, first step from which every later value stays ≥ level); NaN: never."""
    above = values >= level
    reaches = float(steps[above.argmax()]) if above.any() else math.nan
    below = np.flatnonzero(~above)
    if not above.any() or (below.size and below[-1] == len(values) - 1):
        return reaches, math.nan
    return reaches, float(steps[below[-1] + 1] if below.size else steps[0])


def dips(epochs: np.ndarray, values: np.ndarray) -> list[tuple[int, int]]:
    """Ranges of epochs (first, last) whose value is below half the best value so far (once that best is > 0)."""
    best = np.maximum.accumulate(values)
    low = (best > 0) & (values < 0.5 * best)
    ranges: list[tuple[int, int]] = []
    for i in np.flatnonzero(low):
        if ranges and i > 0 and low[i - 1]:
            ranges[-1] = (ranges[-1][0], int(epochs[i]))
        else:
            ranges.append((int(epochs[i]), int(epochs[i])))
    return ranges


def auc(steps: np.ndarray, values: np.ndarray) -> float:
    """The mean value over the env steps the evaluations span (trapezoids)."""
    if len(values) < 2 or steps[-1] <= steps[0]:
        return float(values[-1]) if len(values) else math.nan
    area = float(np.sum((values[1:] + values[:-1]) / 2 * np.diff(steps)))
    return area / float(steps[-1] - steps[0])


def describe(run: Run, metric: str, level: float, last_k: int) -> dict[str, Any]:
    steps, values = run.env_steps, run.columns[metric]
    keep = np.isfinite(values)
    steps, values, epochs = steps[keep], values[keep], run.columns["epoch"][keep]
    reaches, keeps = reach_and_keep(steps, values, level)
    rates = run.columns.get("updates_per_s", np.array([]))
    rates = rates[(run.columns["epoch"] > 0) & np.isfinite(rates)] if rates.size else rates  # online rows
    wall = run.columns.get("wall_s", np.array([]))
    wall = wall[np.isfinite(wall)]
    whole = float(run.env_steps[-1] / wall[-1]) if wall.size and wall[-1] > 0 else math.nan
    return {"rate_ratio": whole / float(np.mean(rates)) if rates.size else math.nan,
            **overhead(run),
            "seed": run.config.get("seed"), "step0": float(values[0]), "final": float(np.mean(values[-last_k:])),
            "auc": auc(steps, values), "reaches": reaches, "keeps": keeps, "dips": dips(epochs, values),
            "steps": int(steps[-1]), "steps_total": int(run.config.get("steps", steps[-1])),
            "done": done(run.directory)}


def overhead(run: Run) -> dict[str, float]:
    """The share of an online row's wall time outside collection and updates (its evaluation, checkpoint and
    logging), as run, and as it would have been with a row (and its evaluation and checkpoint) every epoch."""
    cols, every = run.columns, int(run.config.get("eval_every", 1))
    needed = ("wall_s", "updates_per_s", "env_steps_per_s", "gradient_steps")
    if not all(c in cols for c in needed):
        return {"overhead": math.nan, "overhead_every_epoch": math.nan}
    online = np.flatnonzero(cols["epoch"] > 0)
    online = online[online > 0]
    if not online.size:
        return {"overhead": math.nan, "overhead_every_epoch": math.nan}
    wall = cols["wall_s"][online] - cols["wall_s"][online - 1]
    updates = cols["gradient_steps"][online] - cols["gradient_steps"][online - 1]
    steps = cols["env_steps"][online] - cols["env_steps"][online - 1]
    rate = np.where(updates > 0, cols["updates_per_s"][online], np.inf)
    rest = wall - updates / rate - steps / cols["env_steps_per_s"][online]
    epochs = cols["epoch"][online] - cols["epoch"][online - 1]
    ok = np.isfinite(rest) & (wall > 0) & (epochs > 0)
    if not ok.any():
        return {"overhead": math.nan, "overhead_every_epoch": math.nan}
    rest, wall, epochs = rest[ok], wall[ok], epochs[ok]
    per_epoch_work = (wall - rest) / epochs
    return {"overhead": float(np.sum(rest) / np.sum(wall)),
            "overhead_every_epoch": float(np.mean(rest / (per_epoch_work + rest))) if every > 1 else
            float(np.sum(rest) / np.sum(wall))}


def _fmt(x: float, hand: bool) -> str:
    return "—" if not math.isfinite(x) else (f"{x:.2f}" if hand else f"{x:,.0f}")


def _pct(x: float) -> str:
    return "—" if not math.isfinite(x) else f"{100 * x:.1f} %"


def _steps(x: float) -> str:
    return "—" if not math.isfinite(x) else ("0" if x == 0 else f"{x / 1000:,.0f}k")


def _interval(values: list[float], hand: bool) -> str:
    mean, lo, hi, _ = (float(np.asarray(v).squeeze()) for v in t_interval(np.asarray(values, float)[:, None]))
    if hand:  # a success rate's interval stays within [0, 1]: clipped
        lo, hi = max(lo, 0.0), min(hi, 1.0)
    if len(values) < 2:
        return f"{_fmt(mean, hand)} (n = 1)"
    return f"{_fmt(mean, hand)} [{_fmt(lo, hand)}, {_fmt(hi, hand)}] (n = {len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suite", type=Path)
    parser.add_argument("--task", required=True)
    parser.add_argument("--level", type=float, required=True, help="success rate (hand) or × the prior's return")
    parser.add_argument("--last-k", type=int, default=3)
    parser.add_argument("--all", action="store_true", help="also runs still training (marked *)")
    parser.add_argument("--figure", type=Path)
    args = parser.parse_args()
    hand = args.task.endswith("-binary")
    metric = "eval_success" if hand else "eval_return"
    groups = {c: [load_run(d) for d in sorted((args.suite / args.task / c).glob("seed-*"))
                  if (d / "progress.csv").is_file() and (args.all or done(d))] for c in columns(args.suite, args.task)}
    groups = {c: runs for c, runs in groups.items() if runs}
    level = level_of([r for runs in groups.values() for r in runs], hand, args.level)
    what = "success" if hand else "return"
    scale = "success" if hand else f"{args.level:g} × the prior mean action"
    print(f"**{args.task}**, level {_fmt(level, hand)} ({scale}); final: mean of the last {args.last_k} evaluations\n")
    print(f"| column | seed | env steps | step-0 {what} | final | AUC | reaches level | keeps level from "
          "| dips (epochs) | run rate ÷ update rate | eval + checkpoint share (every epoch) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    rows: dict[str, list[dict[str, Any]]] = {}
    for column, runs in groups.items():
        rows[column] = [describe(r, metric, level, args.last_k) for r in runs]
        for row in rows[column]:
            mark = "" if row["done"] else " *"
            spans = ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in row["dips"]) or "none"
            print(f"| {column} | {row['seed']}{mark} | {row['steps']:,} / {row['steps_total']:,} | "
                  f"{_fmt(row['step0'], hand)} | {_fmt(row['final'], hand)} | {_fmt(row['auc'], hand)} | "
                  f"{_steps(row['reaches'])} | {_steps(row['keeps'])} | {spans} | {_fmt(row['rate_ratio'], True)} | "
                  f"{_pct(row['overhead'])} ({_pct(row['overhead_every_epoch'])}) |")
    print("\n| column | final, mean [95 % t interval] | AUC, mean [95 % t interval] |\n|---|---|---|")
    for column, found in rows.items():
        print(f"| {column} | {_interval([r['final'] for r in found], hand)} | "
              f"{_interval([r['auc'] for r in found], hand)} |")
    if not args.all and any(not r["done"] for found in rows.values() for r in found):
        print("\n\\* still training")
    if args.figure:
        draw(groups, metric, level, args.task, args.figure)
        print(f"\nfigure: {args.figure}")


def draw(groups: dict[str, list[Run]], metric: str, level: float, task: str, path: Path) -> None:
    with style.context():
        fig, axes = style.subplots(1)
        ax = axes[0, 0]
        fig.set_size_inches(style.PANEL_SIZE[0] * 1.6, style.PANEL_SIZE[1] * 1.2)
        for column, runs in groups.items():
            color = style.color(column)
            for run in runs:
                keep = np.isfinite(run.columns[metric])
                ax.plot(run.env_steps[keep], run.columns[metric][keep], color=color, lw=0.8,
                        alpha=0.45 if len(runs) > 1 else 0.9)
            lengths = {len(r.env_steps) for r in runs}
            if len(runs) > 1 and len(lengths) == 1:  # the seeds of a cell share their evaluation steps
                ax.plot(runs[0].env_steps, np.mean([r.columns[metric] for r in runs], axis=0), color=color, lw=2,
                        label=f"{column} (mean of {len(runs)})")
            else:
                ax.plot([], [], color=color, lw=2, label=f"{column} ({len(runs)} seed{'s' if len(runs) > 1 else ''})")
        if math.isfinite(level):
            ax.axhline(level, color="0.3", ls="--", lw=1, label="level")
        ax.set_xlabel("env steps")
        ax.set_ylabel("evaluation success rate" if metric == "eval_success" else "evaluation return")
        ax.set_title(f"{task}: every seed (thin), each column's mean (thick)")
        ax.legend(loc="best")
        path.parent.mkdir(parents=True, exist_ok=True)
        style.save_figure(fig, path)


if __name__ == "__main__":
    main()
