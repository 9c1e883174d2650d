"""AWAC as published on pen-binary, beside BC: Q-values, weight statistics and success, offline and online.

    python benchmarks/awac_pen.py --demos ../shared/data/pen2_sparse.npy --out /tmp/awac-pen --seeds 0 1
    python benchmarks/awac_pen.py --out /tmp/awac-pen --seeds 0 1 --report docs/figures/awac-pen

Each run is ``nppac train --task pen-binary --algo ALGO --demos DEMOS --allow-pickle --steps STEPS
--seed S --out OUT/ALGO/seed-S`` (AWAC: the published 25,000 offline steps, then online epochs;
BC: 10,000 offline steps). Finished runs are skipped. ``--report`` writes ``summary.md`` (the
numbers) and ``compare.png`` with ``compare.json`` (what ``nppac compare`` of all runs writes),
reading only each run's ``config.json``, ``progress.csv`` and ``references.json``:
``results/awac-pen`` holds those of the measured runs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from nppac.diagnostics.curves import compare_runs, load_run, plot_comparison
from nppac.experiments.tables.runs import finished, read_rows

ALGOS = ("awac", "bc")


def _num(text: str | None) -> float | None:
    return float(text) if text not in (None, "") else None


def summary(out: Path) -> str:
    lines = ["| algo | seed | phase | env steps | gradient steps | success | q_mean | awac_weight_max | "
             "awac_weight_ess | policy_std |", "|---|---|---|---|---|---|---|---|---|---|"]
    for algo in ALGOS:
        for run in sorted((out / algo).glob("seed-*")):
            if not finished(run):
                continue
            for r in read_rows(run):
                cells = [_num(r.get(k)) for k in ("q_mean", "awac_weight_max", "awac_weight_ess", "policy_std")]
                shown = ["" if v is None else f"{v:.3g}" for v in cells]
                lines.append(f"| {algo} | {run.name.removeprefix('seed-')} | {r['phase']} | {int(r['env_steps']):,} | "
                             f"{int(r['gradient_steps']):,} | {float(r['eval_success']):.2f} | {' | '.join(shown)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--demos", type=Path, default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--report", type=Path, default=None)
    args = parser.parse_args()
    if args.report is None:
        if args.demos is None:
            parser.error("--demos is required to train")
        for seed in args.seeds:
            for algo in ALGOS:
                run = args.out / algo / f"seed-{seed}"
                if finished(run):
                    continue
                cmd = [sys.executable, "-m", "nppac", "train", "--task", "pen-binary", "--algo", algo, "--demos",
                       str(args.demos), "--allow-pickle", "--steps", str(args.steps), "--seed", str(seed),
                       "--out", str(run), "--quiet"]
                if (run / "config.json").exists():
                    cmd = [sys.executable, "-m", "nppac", "train", "--resume", "--out", str(run), "--quiet"]
                subprocess.run(cmd, check=True)
        return
    args.report.mkdir(parents=True, exist_ok=True)
    (args.report / "summary.md").write_text(summary(args.out))
    comparison = compare_runs([load_run(r) for algo in ALGOS for r in sorted((args.out / algo).glob("seed-*"))
                               if finished(r)])
    figure = plot_comparison(comparison, args.report / "compare.png")
    figure.with_suffix(".json").write_text(json.dumps(comparison.to_json(), indent=2) + "\n")
    print(f"wrote {args.report / 'summary.md'}, {figure} and {figure.with_suffix('.json')}")


if __name__ == "__main__":
    main()
