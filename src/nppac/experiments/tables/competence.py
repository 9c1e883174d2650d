"""Does a run keep its prior's competence? Epoch by epoch, against the prior's mean action and step 0.

    nppac suite report results/cpu results/cpu-published --table competence --task pen-binary

For every finished or diverged run of the task, from its progress.csv and references.json: y_0, its evaluation at
env_steps = 0 (success rate on hand tasks, else return); y_prior, the prior's mean action rolled out like the
agent's evaluation (for runs without a prior: that of a GP-prior run of the same suite and task); min_e y_e / y_prior
and min_e y_e / y_0 over the online epochs; its final value as the report defines it
(:func:`nppac.experiments.report.run_final`); and its mean online update rate (what a remedy costs). A run that
keeps its prior's competence has both minima near 1 or above.

Rows are grouped into cells of identical settings (:mod:`nppac.experiments.replicates`), whichever suite folder and
column hold them, labelled by column and prior setting; a cell of several seeds ends with its mean and 95 %
Student-t interval, and the worst seed's minimum (keeping the prior is about every seed).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from nppac.diagnostics.curves import as_float
from nppac.errors import NppacError
from nppac.experiments.replicates import setting_key
from nppac.experiments.report import Estimate
from nppac.experiments.stats import BOUNDS
from nppac.experiments.tables.runs import columns, done, final, non_finite, numbers, prior_name, state, step0_rows
from nppac.training.rundir import RunDir


def _prior_reference(run: Path, metric: str) -> float:
    return as_float((RunDir(run).references().get("prior_mean_action") or {}).get(metric))


def setting(config: dict[str, Any]) -> str:
    """A run's prior setting (:func:`nppac.experiments.tables.runs.prior_name`), hand protocol and remedies."""
    name = prior_name(config)
    parts = [] if name is None else [name]
    if config.get("task", "").endswith("-binary"):
        parts.append(str(config.get("hand_protocol") or "awac"))
    parts += remedies(config)
    return " · ".join(parts) or "—"


def remedies(config: dict[str, Any]) -> list[str]:
    """The remedies a run has on (docs/remedies.md), as ``name=value``; none for runs from before them."""
    on = []
    if config.get("auto_alpha_target"):
        on.append(f"auto_alpha_target={config['auto_alpha_target']}")
    if config.get("critic_warmstart_steps"):
        on.append(f"critic_warmstart={config['critic_warmstart_steps']}@{config.get('critic_warmstart_data')}")
    if config.get("critic_layernorm"):
        on.append("critic_layernorm")
    if config.get("actor_delay_updates"):
        on.append(f"actor_delay_updates={config['actor_delay_updates']}")
    if config.get("kl_anchor") not in (None, "prior"):
        on.append(f"kl_anchor={config['kl_anchor']}")
    if config.get("second_actor") not in (None, "none"):
        choice = config.get("second_actor_choice") or "greedy"
        rule = f"softmax@{config.get('second_actor_temperature')}" if choice == "softmax" else choice
        on.append(f"second_actor={config['second_actor']}/{rule}")
    if config.get("demo_batch_fraction"):
        on.append(f"demo_batch_fraction={config['demo_batch_fraction']}")
    return on


def summarize(run: Path, fallback_prior: float) -> dict[str, Any]:
    """One run's prior reference, step 0, both minimum ratios and final value; its column is its folder's name,
    its cell the settings it shares with its replications."""
    rows = step0_rows(run)
    config = RunDir(run).config()
    metric = "success" if config["task"].endswith("-binary") else "return"
    values = numbers(rows, f"eval_{metric}")
    steps = numbers(rows, "env_steps")
    rates = [x for x in numbers(rows[1:], "updates_per_s") if math.isfinite(x)]
    prior = _prior_reference(run, metric)
    prior = prior if math.isfinite(prior) else fallback_prior
    start, online = values[0], values[1:]

    def ratio(num: float, den: float) -> float:
        return num / den if math.isfinite(num) and math.isfinite(den) and den > 0 else math.nan

    lowest = min(online) if online else math.nan
    episodes = {key: [x for x in numbers(rows[1:], key) if math.isfinite(x)]
                for key in ("train_return", "eval_return_min")}
    return {"algo": run.parent.name, "setting": setting(config), "cell": setting_key(config), "seed": config["seed"],
            "metric": metric, "prior": prior, "step0": start, "min_vs_prior": ratio(lowest, prior),
            "min_vs_step0": ratio(lowest, start), "final": final(run, steps, values),
            "diverged": state(run) == "diverged", "non_finite": non_finite(run),
            "epochs": int(as_float(rows[-1].get("epoch"))),
            "steps": steps, "values": values, "updates_per_s": sum(rates) / len(rates) if rates else math.nan,
            "episodes": episodes}


def _suite_prior(suite: Path, task: str, metric: str) -> float:
    """The prior's mean-action evaluation recorded by a GP-prior run of the suite (for runs without a prior):
    the ``nppac`` column's, else any column's whose runs recorded one (a suite of nppac variants)."""
    for column in sorted(columns(suite, task), key=lambda c: c != "nppac"):
        for run in sorted((suite / task / column).glob("seed-*")):
            value = _prior_reference(run, metric)
            if math.isfinite(value):
                return value
    return math.nan


def _fmt(x: float, pattern: str = "{:.2f}") -> str:
    return pattern.format(x) if math.isfinite(x) else "—"


def _estimate(runs: list[dict[str, Any]], key: str, pattern: str = "{:.2f}", bounded: bool = False) -> str:
    """Mean [95 % Student-t interval] of a group's finite values (``bounded``: a success rate's, cut to [0, 1])."""
    values = [r[key] for r in runs if math.isfinite(r[key])]
    if not values:
        return "—"
    estimate = Estimate.of(values, BOUNDS["eval_success"] if bounded else None)
    if len(values) < 2:
        return _fmt(estimate.mean, pattern)
    return f"{_fmt(estimate.mean, pattern)} [{_fmt(estimate.lo, pattern)}, {_fmt(estimate.hi, pattern)}]"


def cells(summaries: list[dict[str, Any]]) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """The runs grouped into cells of identical settings, in order of first appearance, each named by its suite
    folders, columns and prior setting (``cpu + cpu-published`` for a cell both ran)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for s in summaries:
        groups.setdefault(s["cell"], []).append(s)

    def joined(runs: list[dict[str, Any]], key: str) -> str:
        return " + ".join(dict.fromkeys(r[key] for r in runs))

    return {(joined(runs, "suite"), joined(runs, "algo"), runs[0]["setting"]): runs for runs in groups.values()}


def collect(suites: list[Path], task: str, only: list[str] | None = None) -> list[dict[str, Any]]:
    """The summaries of every finished or diverged run of the task in the suites, column by column
    (the columns named in ``only``, when given)."""
    metric = "success" if task.endswith("-binary") else "return"
    present = [c for suite in suites for c in columns(suite, task)]
    unknown = [c for c in only or [] if c not in present]
    if unknown:
        raise NppacError(f"--columns {unknown[0]}: no such column of {task} in {', '.join(map(str, suites))}; "
                         f"there are: {', '.join(dict.fromkeys(present)) or 'none'}")
    summaries = []
    for suite in suites:
        fallback = _suite_prior(suite, task, metric)
        for column in columns(suite, task):
            if only and column not in only:
                continue
            summaries += [{"suite": suite.name, **summarize(r, fallback)}
                          for r in sorted((suite / task / column).glob("seed-*")) if done(r)]
    return summaries


def table(suites: list[Path], task: str, only: list[str] | None = None) -> list[str]:
    """The Markdown lines: a row per finished or diverged run, then per group of seeds its mean and worst seed."""
    metric = "success" if task.endswith("-binary") else "return"
    summaries = collect(suites, task, only)
    number = "{:.2f}" if metric == "success" else "{:,.0f}"
    bounded = metric == "success"
    lines = [f"| suite | algo or variant | prior setting | seed | prior's mean action | step 0 | min ÷ prior "
             f"| min ÷ step 0 | final ({metric}) | updates/s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for (suite, algo, name), runs in cells(summaries).items():
        for s in runs:
            stopped = s["non_finite"]
            note = ("" if not s["diverged"] else " (diverged)" if stopped is None
                    else f" (diverged: {stopped[0]} non-finite in epoch {stopped[1]})")
            lines.append(f"| {s['suite']} | {s['algo']} | {name} | {s['seed']} | {_fmt(s['prior'], number)} "
                         f"| {_fmt(s['step0'], number)} | {_fmt(s['min_vs_prior'])} | {_fmt(s['min_vs_step0'])} "
                         f"| {_fmt(s['final'], number)}{note} | {_fmt(s['updates_per_s'], '{:.0f}')} |")
        if len(runs) > 1:
            worst = min((r["min_vs_prior"] for r in runs if math.isfinite(r["min_vs_prior"])), default=math.nan)
            lines.append(f"| {suite} | **{algo}** | **{name}** | mean of {len(runs)} [95 % t] | "
                         f"| {_estimate(runs, 'step0', number, bounded)} "
                         f"| **{_estimate(runs, 'min_vs_prior')}**, worst seed {_fmt(worst)} "
                         f"| **{_estimate(runs, 'min_vs_step0')}** | {_estimate(runs, 'final', number, bounded)} "
                         f"| {_estimate(runs, 'updates_per_s', '{:.0f}')} |")
    return lines


BANDS = (0.2, 0.9)
"""Where an episode's return falls against the prior's mean action: failed (< 0.2), partial, kept (≥ 0.9)."""


def episodes_table(suites: list[Path], task: str, only: list[str] | None = None) -> list[str]:
    """Markdown lines: per group of seeds, how its single episodes compare with the prior's mean action: the online
    epochs' training episodes (``train_return``, stochastic) and each evaluation's worst episode (``eval_return_min``).
    A mean that falls because some episodes fail outright shows as failed and kept episodes, a policy uniformly
    worse as partial ones."""
    if task.endswith("-binary"):
        raise NppacError("--episodes compares returns with the prior's mean-action return: locomotion tasks only")
    low, high = BANDS
    lines = [f"| suite | algo or variant | prior setting | episodes | training: < {low} · {low}–{high} · ≥ {high} "
             f"of the prior | evaluations' worst episode: < {low} · {low}–{high} · ≥ {high} |",
             "|---|---|---|---|---|---|"]
    groups = cells(collect(suites, task, only))

    def bands(runs: list[dict[str, Any]], key: str) -> str:
        ratios = [v / r["prior"] for r in runs if r["prior"] > 0 for v in r["episodes"][key]]
        if not ratios:
            return "—"
        counts = (sum(x < low for x in ratios), sum(low <= x < high for x in ratios), sum(x >= high for x in ratios))
        return " · ".join(f"{c / len(ratios):.0%}" for c in counts) + f" (of {len(ratios)})"

    for (suite, algo, name), runs in groups.items():
        lines.append(f"| {suite} | {algo} | {name} | {len(runs)} seeds | {bands(runs, 'train_return')} "
                     f"| {bands(runs, 'eval_return_min')} |")
    return lines


def figure(suites: list[Path], task: str, path: Path, only: list[str] | None = None, goal: float = 0.9) -> None:
    """Evaluation ÷ the prior's mean action over environment steps, a line per seed, a panel per column and setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nppac.diagnostics.style import check_figure_path, save_figure

    check_figure_path(path)
    groups = cells(collect(suites, task, only))
    if not groups:
        raise NppacError(f"no finished run of {task!r} in {', '.join(map(str, suites))}")
    ncols = min(len(groups), 4)
    nrows = -(-len(groups) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.9 * nrows), sharey=True, squeeze=False)
    for ax in axes.flat[len(groups):]:
        ax.set_visible(False)
    for ax, ((suite, algo, name), runs) in zip(axes.flat, groups.items(), strict=False):
        for s in runs:
            ratios = [v / s["prior"] if s["prior"] > 0 else math.nan for v in s["values"]]
            label = (f"{s['suite']} " if " + " in suite else "") + f"seed {s['seed']}" + \
                (" (diverged)" if s["diverged"] else "")
            ax.plot(s["steps"], ratios, marker=".", lw=1, label=label)
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.axhline(goal, color="grey", lw=0.8, ls="--")
        ax.set_title(f"{algo} ({suite})\n{name}", fontsize=8)
        ax.set_xlabel("environment steps")
        ax.legend(fontsize=7)
    for row in axes:
        row[0].set_ylabel(f"{task}: eval ÷ prior")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
