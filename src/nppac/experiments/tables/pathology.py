"""Claims 1 and 3 of docs/RESULTS.md run by run: when each run loses its initial competence,
and how large its KL, policy-gradient norm and Q-values grow.

    nppac suite report results/cpu results/cpu-std --table pathology [--task halfcheetah]

For every finished or diverged run of the task (each suite directory holds
TASK/ALGO/seed-S), from its progress.csv: the step-0 evaluation y_0 (success rate where the
task logs one, else return), the first epoch whose evaluation falls below half of it
("drop"; "—" when none does), its lowest evaluation after step 0, the mean KL(π‖π0) at the end of policy initialization
(``init_kl`` of the step-0 row: a KL to the run's own π0, so runs of different priors' σ0 are not
comparable by it), its final value as the
suite's report defines it (the mean of the last K evaluated rows of its schedule, K of its
suite's report, a diverged run's last evaluation held after it stopped:
:func:`nppac.experiments.report.run_final`), the largest epoch-mean KL(π‖π0), policy-gradient
norm and |Q| it logged, and for a diverged run what became non-finite and in which epoch (the
epoch being trained when it did, from its status.json; the run's last logged row is the epoch
before). The prior column names the run's prior setting as docs/RESULTS.md's glossary does
(published, exact-variance, std, love-std). Prints one Markdown table.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from nppac.experiments.tables.runs import PRIOR_ALGOS, columns, done, final, last_k, non_finite, prior_name, read_rows
from nppac.training.rundir import RunDir


def _values(rows: list[dict[str, str]], column: str) -> list[float]:
    out = []
    for row in rows:
        try:
            out.append(float(row[column]))
        except (KeyError, TypeError, ValueError):
            out.append(math.nan)
    return out


def summarize(run: Path) -> dict[str, Any]:
    # An offline phase's rows all sit at env_steps = 0; its last one is the run's step-0 evaluation.
    every = read_rows(run)
    offline = [r for r in every if r.get("phase") == "offline"]
    rows = offline[-1:] + [r for r in every if r.get("phase") != "offline"]
    config = RunDir(run).config()
    success = _values(rows, "eval_success")
    metric = "success" if all(math.isfinite(v) for v in success) else "return"
    returns = success if metric == "success" else _values(rows, "eval_return")
    epochs = [int(r["epoch"]) for r in rows]
    start = returns[0]
    drop = next((e for e, y in zip(epochs[1:], returns[1:]) if y < 0.5 * start), None) if start > 0 else None

    def peak(column: str, absolute: bool = False) -> float:
        values = [abs(v) if absolute else v for v in _values(rows[1:], column) if math.isfinite(v)]
        return max(values) if values else math.nan

    steps = _values(rows, "env_steps")
    init_kl = _values(rows[:1], "init_kl")[0] if rows else math.nan
    return {"algo": run.parent.name, "prior": prior_name(config), "seed": config["seed"], "metric": metric,
            "init_kl": init_kl,
            "non_finite": non_finite(run), "has_prior": config["algo"] in PRIOR_ALGOS, "step0": start, "drop": drop,
            "lowest": min(returns[1:], default=math.nan),
            "final": final(run, steps, returns), "kl": peak("kl_mean"), "grad": peak("policy_grad_norm"),
            "q": peak("q_mean", absolute=True)}





def table(suites: list[Path], task: str = "halfcheetah") -> list[str]:
    """The Markdown lines: a row per finished or diverged run of the task in the suites."""
    runs = [r for suite in suites for algo in columns(suite, task)
            for r in sorted((suite / task / algo).glob("seed-*")) if done(r)]
    summaries = [summarize(run) for run in runs]
    metric = summaries[0]["metric"] if summaries else "return"
    k = " / ".join(str(n) for n in dict.fromkeys(last_k(suite) for suite in suites))
    lines = [f"| algo | prior | seed | KL after init | step-0 {metric} | drop below ½ step 0 at epoch "
             f"| lowest after step 0 | final (last {k} rows of its schedule) | max KL | max policy-grad norm "
             "| max abs Q | went non-finite in epoch |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    number = "{:.2f}" if metric == "success" else "{:,.0f}"

    def g(x: float) -> str:
        return f"{x:.3g}" if math.isfinite(x) else "—"

    for s in summaries:
        kl = g(s["kl"]) if s["has_prior"] else "—"
        sigma = s["prior"] if s["has_prior"] else "—"
        cells = [number.format(s[k]) if math.isfinite(s[k]) else "—" for k in ("step0", "lowest", "final")]
        stopped = "—" if s["non_finite"] is None else f"{s['non_finite'][1]} ({s['non_finite'][0]})"
        init = g(s["init_kl"]) if s["has_prior"] else "—"
        lines.append(f"| {s['algo']} | {sigma} | {s['seed']} | {init} | {cells[0]} | {s['drop'] or '—'} | {cells[1]} "
                     f"| {cells[2]} | {kl} | {g(s['grad'])} | {g(s['q'])} | {stopped} |")
    return lines
