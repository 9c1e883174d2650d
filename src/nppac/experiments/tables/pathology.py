"""Claims 1 and 3 of docs/RESULTS.md run by run: when each run loses its initial competence, and how large its KL,
policy-gradient norm and Q-values grow.

    nppac suite report results/cpu results/cpu-std --table pathology [--task halfcheetah]

For every finished or diverged run of the task, from its progress.csv: the step-0 evaluation y_0 (success rate
where the task logs one, else return), the first epoch whose evaluation falls below half of it ("drop"), its lowest
evaluation after step 0, the KL(π‖π0) after policy initialization (``init_kl``: to the run's own π0, so runs of
different σ0 are not comparable by it), its final value as the report defines it
(:func:`nppac.experiments.report.run_final`), the largest epoch-mean KL, policy-gradient norm and |Q| it logged,
and for a diverged run what became non-finite in which epoch (from its status.json). Prints one Markdown table.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from nppac.experiments.report import markdown_table
from nppac.experiments.tables.runs import (
    PRIOR_ALGOS,
    columns,
    done,
    final,
    last_k,
    non_finite,
    numbers,
    prior_name,
    step0_rows,
)
from nppac.training.rundir import RunDir


def summarize(run: Path) -> dict[str, Any]:
    rows = step0_rows(run)
    config = RunDir(run).config()
    success = numbers(rows, "eval_success")
    metric = "success" if all(math.isfinite(v) for v in success) else "return"
    returns = success if metric == "success" else numbers(rows, "eval_return")
    epochs = [int(r["epoch"]) for r in rows]
    start = returns[0]
    drop = next((e for e, y in zip(epochs[1:], returns[1:]) if y < 0.5 * start), None) if start > 0 else None

    def peak(column: str, absolute: bool = False) -> float:
        values = [abs(v) if absolute else v for v in numbers(rows[1:], column) if math.isfinite(v)]
        return max(values) if values else math.nan

    init_kl = numbers(rows[:1], "init_kl")[0] if rows else math.nan
    return {"algo": run.parent.name, "prior": prior_name(config), "seed": config["seed"], "metric": metric,
            "init_kl": init_kl,
            "non_finite": non_finite(run), "has_prior": config["algo"] in PRIOR_ALGOS, "step0": start, "drop": drop,
            "lowest": min(returns[1:], default=math.nan),
            "final": final(run, numbers(rows, "env_steps"), returns), "kl": peak("kl_mean"),
            "grad": peak("policy_grad_norm"), "q": peak("q_mean", absolute=True)}


def table(suites: list[Path], task: str = "halfcheetah") -> list[str]:
    """The Markdown lines: a row per finished or diverged run of the task in the suites."""
    runs = [r for suite in suites for algo in columns(suite, task)
            for r in sorted((suite / task / algo).glob("seed-*")) if done(r)]
    summaries = [summarize(run) for run in runs]
    metric = summaries[0]["metric"] if summaries else "return"
    k = " / ".join(str(n) for n in dict.fromkeys(last_k(suite) for suite in suites))
    number = "{:.2f}" if metric == "success" else "{:,.0f}"

    def g(x: float) -> str:
        return f"{x:.3g}" if math.isfinite(x) else "—"

    rows = []
    for s in summaries:
        cells = [number.format(s[k]) if math.isfinite(s[k]) else "—" for k in ("step0", "lowest", "final")]
        stopped = "—" if s["non_finite"] is None else f"{s['non_finite'][1]} ({s['non_finite'][0]})"
        prior = [s["prior"], g(s["init_kl"])] if s["has_prior"] else ["—", "—"]
        rows.append([s["algo"], prior[0], str(s["seed"]), prior[1], cells[0], str(s["drop"] or "—"), cells[1],
                     cells[2], g(s["kl"]) if s["has_prior"] else "—", g(s["grad"]), g(s["q"]), stopped])
    return markdown_table(["algo", "prior", "seed", "KL after init", f"step-0 {metric}", "drop below ½ step 0 at epoch",
                           "lowest after step 0", f"final (last {k} rows of its schedule)", "max KL",
                           "max policy-grad norm", "max abs Q", "went non-finite in epoch"], rows)
