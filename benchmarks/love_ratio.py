"""How much larger is LOVE's variance than the exact one, task by task, and what σ0 each setting gives.

The published code's σ0² is gpytorch 1.0.1's LOVE estimate (rank-100 Lanczos), not the exact
GP variance (DESIGN.md §2, nppac.priors.love). For each task this script fits the task's GP
prior as a run would (the task's kernel, seed 0; cached in OUT/priors/TASK), or imports a
published gpytorch checkpoint, and reports over 500 random demonstration states × all action
dims, and at states displaced by 0.5 and 2 demonstration standard deviations:

* the median exact and LOVE predictive variance (with noise), and the median over the states × action
  dims of each entry's ratio LOVE ÷ exact (not the ratio of the two medians);
* the median σ0 the agent's π0 gets under each prior setting (docs/RESULTS.md's glossary): std (σ0 exact, as
  a standard deviation), exact-variance (σ0² exact, in the place of σ0), love-std and published (σ0² from LOVE,
  in the place of σ0: the published prior).

    python benchmarks/love_ratio.py --out /tmp/love --tasks halfcheetah hopper walker2d door-binary pen-binary \\
        --demos pen-binary=../shared/data/pen2_sparse.npy --demos door-binary=../shared/data/door-v0_demos.pickle \\
        --gpytorch pen-binary=../shared/data/gp_pen_matern52_rank1.pt --allow-pickle \\
        --report docs/figures/conventions/love

Writes REPORT.md and REPORT.json (a task fitted and, where given, imported appears twice);
``--report docs/figures/conventions/love --from-json`` writes REPORT.md again from REPORT.json alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

OFFSETS = (0.0, 0.5, 2.0)
"""Displacements of the probe states, in demonstration standard deviations per state dimension."""
N_STATES = 500


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    out = {}
    for value in values:
        task, sep, path = value.partition("=")
        if not sep:
            sys.exit(f"{flag} expects TASK=PATH, got {value!r}")
        out[task] = path
    return out


def _prior(task: str, source: str, demos: Any, out: Path, gpytorch: str | None, iters: int | None) -> Any:
    from nppac.priors import fit_prior, load_prior
    from nppac.tasks import get_task

    target = out / "priors" / f"{task}-{source}"
    if (target / "settings.json").exists():
        return load_prior(target)
    kernel = get_task(task).defaults.kernel
    settings: dict[str, Any] = {} if iters is None else {"iters": iters}
    prior, _ = fit_prior(demos, "gp", from_gpytorch=gpytorch if source == "published" else None, kernel=kernel, seed=0,
                         **settings)
    prior.save(target)
    return prior


def measure(prior: Any, states: np.ndarray, spread: np.ndarray) -> dict[str, Any]:
    rng = np.random.default_rng(2)
    rows: dict[str, Any] = {}
    for offset in OFFSETS:
        probe = states + offset * spread * rng.normal(size=states.shape)
        x = torch.as_tensor(probe, dtype=torch.float64)
        exact = prior.set_variance("exact").predict(x)[1].pow(2).numpy()
        started = time.perf_counter()
        love = prior.set_variance("love").predict(x)[1].pow(2).numpy()
        seconds = time.perf_counter() - started
        rows[f"{offset:g}"] = {
            "exact_median": float(np.median(exact)), "exact_min": float(exact.min()), "exact_max": float(exact.max()),
            "love_median": float(np.median(love)), "love_min": float(love.min()), "love_max": float(love.max()),
            "ratio_median": float(np.median(love / exact)),
            "sigma0": {"std · exact": float(np.median(np.sqrt(exact))), "variance · exact": float(np.median(exact)),
                       "std · love": float(np.median(np.sqrt(love))), "variance · love": float(np.median(love))},
            "love_seconds": seconds,
        }
    prior.set_variance("exact")
    return rows


def markdown(results: list[dict[str, Any]]) -> str:
    """The table of REPORT.md: a row per task, GP and probe states. The ratio is the median over the probe's
    states × action dimensions of each entry's LOVE ÷ exact variance (not the ratio of the two medians); the
    σ0 columns are the median σ0 the agent's π0 gets under each prior setting, by the glossary names of
    docs/RESULTS.md (``prior_convention``)."""
    lines = ["| task | GP | kernel | n | states | exact variance, median (min–max) | LOVE variance, median (min–max) "
             "| LOVE ÷ exact, median over states × action dims | σ0 under std | exact-variance | love-std "
             "| published |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        for offset, m in r["offsets"].items():
            where = "demonstrations" if offset == "0" else f"{offset} demo-std off"
            s = m["sigma0"]
            lines.append(
                f"| {r['task']} | {r['gp']} | {r['kernel']} | {r['n']:,} | {where} "
                f"| {m['exact_median']:.2g} ({m['exact_min']:.2g}–{m['exact_max']:.2g}) "
                f"| {m['love_median']:.2g} ({m['love_min']:.2g}–{m['love_max']:.2g}) | {m['ratio_median']:.3g}× "
                f"| {s['std · exact']:.3g} | {s['variance · exact']:.3g} "
                f"| {s['std · love']:.3g} | {s['variance · love']:.3g} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="cache of fitted priors (required to measure)")
    parser.add_argument("--tasks", nargs="+", default=["halfcheetah", "hopper", "walker2d", "pen-binary"])
    parser.add_argument("--demos", action="append", default=[], help="TASK=PATH (default: the bundled set)")
    parser.add_argument("--gpytorch", action="append", default=[], help="TASK=CHECKPOINT: also the published GP")
    parser.add_argument("--allow-pickle", action="store_true")
    parser.add_argument("--iters", type=int, default=None, help="GP hyperparameter iterations (default: the GP's)")
    parser.add_argument("--report", type=Path, required=True, help="REPORT path without suffix")
    parser.add_argument("--from-json", action="store_true",
                        help="only write REPORT.md again from the measurements in REPORT.json (no prior is fitted)")
    args = parser.parse_args()
    if args.from_json:
        args.report.with_suffix(".md").write_text(markdown(json.loads(args.report.with_suffix(".json").read_text())))
        print(f"wrote {args.report.with_suffix('.md')}")
        return
    if args.out is None:
        parser.error("--out is required to measure (or pass --from-json)")
    torch.set_num_threads(1)
    from nppac.data import load_demos
    from nppac.tasks import get_task

    demos_paths, checkpoints = _pairs(args.demos, "--demos"), _pairs(args.gpytorch, "--gpytorch")
    results = []
    for task in args.tasks:
        path = demos_paths.get(task) or get_task(task).bundled_demos
        if path is None:
            parser.error(f"task {task} has no bundled demonstrations; pass --demos {task}=PATH")
        demos = load_demos(path, task=task, allow_pickle=args.allow_pickle, clip_actions=True)
        picks = np.random.default_rng(1).choice(len(demos.states), min(N_STATES, len(demos.states)), replace=False)
        states, spread = demos.states[picks].astype(np.float64), demos.states.std(0).astype(np.float64)
        sources = ["fitted"] + (["published"] if task in checkpoints else [])
        for source in sources:
            print(f"{task}: {source} GP", file=sys.stderr)
            prior = _prior(task, source, demos, args.out, checkpoints.get(task), args.iters)
            results.append({"task": task, "gp": source, "kernel": prior.config.kernel, "n": len(demos.states),
                            "offsets": measure(prior, states, spread)})
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    args.report.with_suffix(".md").write_text(markdown(results))
    print(f"wrote {args.report.with_suffix('.md')} and .json")


if __name__ == "__main__":
    main()
