"""A screen's report: N-PPAC's step-0 and epoch-by-epoch evaluations per variant, against the prior's mean action.

    nppac suite report results/conventions-love results/conventions-love-pen --table screen --out DIR

A screen is a suite of short runs of one algorithm's variants (``benchmarks/suites/screen_*.toml``), those of a
task and seed starting from one shared initialization. Its report, from the finished runs of one or more suite
folders (a hand task with its own demonstrations or GP has its own), writes ``NAME.json``, ``NAME.md`` (a summary
per variant, then every run), ``NAME.png`` and ``NAME-grid.png`` (NAME: the destination's name).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from nppac.errors import NppacError
from nppac.experiments.suite import MANIFEST_NAME
from nppac.experiments.tables.runs import finished, read_rows
from nppac.outputs import write_atomic
from nppac.training.rundir import RunDir

logger = logging.getLogger(__name__)

COLOUR_ORDER = ("std+uniform", "std+policy", "exact-variance+policy", "exact-variance+uniform", "published+policy",
                "love-std+policy", "std+policy@awac", "std+policy@nppac", "published+policy@awac",
                "published+policy@nppac", "default", "warmstart-demos", "warmstart-warmup", "alpha-kl-act-dim",
                "alpha-kl-init", "layernorm", "actor-delay", "alpha-kl-init+layernorm", "anchor-init")
"""The screens' variants (benchmarks/suites/screen_*.toml) in the order of their colours in the figures, so that a
variant keeps its colour from one screen to the next; other variants follow in their order of appearance."""


def _check_own(dest: Path) -> None:
    """Refuse, before any work, to replace files in ``dest`` that an earlier screen report did not write: its four
    files may exist only beside a ``NAME.json`` that holds a screen's results (a task's prior's mean action and
    settings), as this report writes it."""
    name = dest.name
    files = [dest / f"{name}{suffix}" for suffix in (".json", ".md", ".png", "-grid.png")]
    present = [f for f in files if f.exists() or f.is_symlink()]
    if not present:
        return
    try:
        earlier = json.loads(files[0].read_text()) if not files[0].is_symlink() else None
    except (OSError, ValueError):
        earlier = None
    if not (isinstance(earlier, dict) and earlier and all(
            isinstance(entry, dict) and {"prior_mean_action", "settings"} <= entry.keys()
            for entry in earlier.values())):
        raise NppacError(f"{present[0]} was not written by a screen report, and the screen's files would replace it; "
                         "move it away, or choose another --out")


def _columns(out: Path) -> tuple[list[str], list[str]]:
    """The suite folder's tasks and columns (algorithms and variants) in its suite file's order."""
    try:
        manifest = json.loads((out / MANIFEST_NAME).read_text())
        return list(manifest["tasks"]), list(manifest["algos"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise NppacError(f"{out / MANIFEST_NAME}: no suite manifest ({err}); is {out} a suite's folder?") from None


def _prior_mean_action(runs: list[Path]) -> dict[str, Any]:
    """The prior's mean action as the first of ``runs`` that recorded one evaluated it (its references.json)."""
    for run in runs:
        found = RunDir(run).references().get("prior_mean_action")
        if found:
            return {"return": found.get("return"), "success": found.get("success")}
    return {"return": None, "success": None}


def report(outs: list[Path], dest: Path) -> list[Path]:
    """``NAME.json``, ``NAME.md``, ``NAME.png`` and ``NAME-grid.png`` (NAME: ``dest``'s own name) from the finished
    runs of the suite folders ``outs``: a screen's locomotion and hand parts may live in separate folders (the
    hand tasks' own GP). Returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from nppac.diagnostics.style import save_figure

    _check_own(dest)
    result: dict[str, Any] = {}
    for out in outs:
        tasks, columns = _columns(out)
        for task in tasks:
            if task in result:
                raise NppacError(f"task {task} has runs in more than one suite folder; report them apart")
            settings: dict[str, Any] = {}
            for column in columns:
                runs = {d.name: _run(d) for d in sorted((out / task / column).glob("seed-*")) if finished(d)}
                if runs:
                    settings[column] = runs
            if not settings:
                logger.warning("%s: no finished run of %s yet; the screen's report leaves it out", out, task)
                continue
            first = [out / task / column / seed for column, runs in settings.items() for seed in runs]
            result[task] = {"prior_mean_action": _prior_mean_action(first), "settings": settings}
            if result[task]["prior_mean_action"]["return"] is None:
                raise NppacError(f"no finished run of {task} in {out} recorded its prior's mean action (in its "
                                 "references.json); a screen compares runs with a prior (nppac and its variants)")
    if not result:
        raise NppacError(f"no finished run in {', '.join(map(str, outs))}; a screen reports its finished runs")
    dest.mkdir(parents=True, exist_ok=True)
    name = dest.name
    write_atomic(dest / f"{name}.json", json.dumps(result, indent=1) + "\n")
    write_atomic(dest / f"{name}.md", _summary(result) + "\n" + _table(result))

    tasks = list(result)
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.6), squeeze=False)
    palette = [plt.get_cmap("tab20")(i) for i in range(20)]
    names = dict.fromkeys([*COLOUR_ORDER, *(s for entry in result.values() for s in entry["settings"])])
    colors = {name: palette[i % len(palette)] for i, name in enumerate(names)}
    for ax, task in zip(axes[0], tasks):
        entry = result[task]
        metric = "eval_return"
        for setting, runs in entry["settings"].items():
            for i, run in enumerate(runs.values()):
                metric = run["metric"]
                ax.plot(np.asarray(run["env_steps"]) / 1000, run["evals"], "o-", color=colors[setting],
                        alpha=0.75, ms=3, label=setting if i == 0 else None)
        prior_value = entry["prior_mean_action"]["success" if metric == "eval_success" else "return"]
        ax.axhline(prior_value, color="k", ls="--", lw=1, label="prior's mean action")
        ax.set_title(task)
        ax.set_xlabel("env steps (thousands)")
        ax.set_ylabel("success rate" if metric == "eval_success" else "return")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("N-PPAC after initialization (step 0) and each epoch, per setting; one line per seed", fontsize=9)
    fig.tight_layout()
    save_figure(fig, dest / f"{name}.png", dpi=110)
    _grid(result, dest / f"{name}-grid.png")
    return [dest / f"{name}{suffix}" for suffix in (".json", ".md", ".png", "-grid.png")]


def _grid(result: dict[str, Any], path: Path) -> None:
    """Small multiples: a row per task, a column per setting, every seed's curve, the prior's mean action
    (dashed) and 0.9× of it (dotted); the task's first setting's seeds in grey behind the others, to compare
    with. A setting the task did not run leaves its panel out."""
    import matplotlib.pyplot as plt
    import numpy as np

    from nppac.diagnostics.style import save_figure

    result = {task: entry for task, entry in result.items() if entry["settings"]}
    if not result:
        return
    settings = list(dict.fromkeys(s for entry in result.values() for s in entry["settings"]))  # the suites' order
    fig, axes = plt.subplots(len(result), len(settings), figsize=(2.1 * len(settings), 1.9 * len(result)),
                             squeeze=False)
    for i, (task, entry) in enumerate(result.items()):
        row = axes[i]
        runs = entry["settings"]
        reference = next(s for s in settings if s in runs)
        first = runs[reference]
        metric = next(iter(next(iter(runs.values())).values()))["metric"]
        prior = entry["prior_mean_action"]["success" if metric == "eval_success" else "return"]
        values = [v for group in runs.values() for run in group.values() for v in run["evals"]]
        top, low = max([*values, prior or 0]), min([*values, 0])
        for ax, setting in zip(row, settings):
            if setting not in runs:
                ax.set_visible(False)
                continue
            for run in first.values() if setting != reference else []:
                ax.plot(np.asarray(run["env_steps"]) / 1000, run["evals"], color="0.75", lw=1)
            for run in runs.get(setting, {}).values():
                ax.plot(np.asarray(run["env_steps"]) / 1000, run["evals"], "o-", ms=2, lw=1.2)
            if prior is not None:
                ax.axhline(prior, color="k", ls="--", lw=0.8)
                ax.axhline(0.9 * prior, color="k", ls=":", lw=0.8)
            ax.set_ylim(low - 0.05 * (top - low), top + 0.05 * (top - low))
            ax.tick_params(labelsize=6)
            if setting == reference:
                ax.set_ylabel(f"{task}\n{'success' if metric == 'eval_success' else 'return'}", fontsize=7)
            ax.set_title(setting, fontsize=7)
            ax.set_xlabel("env steps (k)", fontsize=7)
            ax.xaxis.set_tick_params(labelbottom=True)
    fig.suptitle("each setting's seeds (colour) against the task's first setting's (grey); dashed: the prior's "
                 "mean action, dotted: 0.9× it", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _competence(run: dict[str, Any], prior: dict[str, Any]) -> tuple[float, float]:
    """A run's min over epochs 1… of (evaluation ÷ the prior's mean action) and of (evaluation ÷ step 0)."""
    evals = run["evals"]
    reference = prior["success"] if run["metric"] == "eval_success" else prior["return"]
    lowest = min(evals[1:]) if len(evals) > 1 else float("nan")
    vs_prior = lowest / reference if reference and reference > 0 else float("nan")
    return vs_prior, (lowest / evals[0] if evals[0] > 0 else float("nan"))


def _summary(result: dict[str, Any]) -> str:
    """A markdown table, one row per task and setting: the worst seed's competence ratios, the seeds' mean final
    evaluation, and the mean update rate."""
    lines = ["| task | setting | seeds | worst min ÷ prior's mean action | worst min ÷ step 0 | final, mean "
             "| updates/s, mean |", "|---|---|---|---|---|---|---|"]
    for task, entry in result.items():
        prior = entry["prior_mean_action"]
        for setting, runs in entry["settings"].items():
            ratios = [_competence(run, prior) for run in runs.values()]
            finals = [run["evals"][-1] for run in runs.values()]
            rate = _mean([r for run in runs.values() if (r := run.get("updates_per_s")) is not None])
            success = next(iter(runs.values()))["metric"] == "eval_success"
            final = _mean(finals)
            shown = "" if final is None else (f"{final:.2f}" if success else f"{final:,.0f}")
            lines.append(f"| {task} | {setting} | {len(runs)} | {min(r[0] for r in ratios):.2f} "
                         f"| {min(r[1] for r in ratios):.2f} | {shown} | {'' if rate is None else f'{rate:.0f}'} |")
    return "\n".join(lines) + "\n"


def _table(result: dict[str, Any]) -> str:
    """A markdown table: per task and setting, step-0 and epoch-1…N evaluations, one cell per seed."""
    lines = ["| task | setting | seed | step 0 | epochs 1… | final | min(epochs) / step 0 "
             "| min(epochs) / prior's mean action | KL after init | s to step 0 | updates/s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for task, entry in result.items():
        prior = entry["prior_mean_action"]
        for setting, runs in entry["settings"].items():
            for seed, run in runs.items():
                evals = run["evals"]
                success = run["metric"] == "eval_success"
                fmt = (lambda v: f"{v:.2f}") if success else (lambda v: f"{v:,.0f}")
                vs_prior, ratio = _competence(run, prior)
                init_kl = f"{run['init_kl']:.3g}" if run["init_kl"] is not None else ""
                rate, setup = run.get("updates_per_s"), run.get("step0_wall_s")
                lines.append(f"| {task} | {setting} | {seed.removeprefix('seed-')} | {fmt(evals[0])} | "
                             f"{', '.join(fmt(v) for v in evals[1:])} | {fmt(evals[-1])} | {ratio:.2f} "
                             f"| {vs_prior:.2f} | {init_kl} | {'' if setup is None else f'{setup:.0f}'} "
                             f"| {'' if rate is None else f'{rate:.0f}'} |")
        shown = f"{prior['success']:.2f} success" if prior.get("success") is not None else f"{prior['return']:,.0f}"
        lines.append(f"| {task} | prior's mean action | | {shown} | | | | | | | |")
    return "\n".join(lines) + "\n"


def _run(run_dir: Path) -> dict[str, Any]:
    """A run's evaluations from step 0 on, with its KL, Q, initialization and pace."""
    # Step 0 is the last row at env_steps = 0: a critic warm start on the demonstrations logs it as
    # its phase's last row (the actor is frozen through it), after the initialization's.
    every = read_rows(run_dir)
    rows = [r for r in every if int(r["env_steps"]) == 0][-1:] + [r for r in every if int(r["env_steps"]) > 0]
    column = "eval_success" if rows[0].get("eval_success") not in (None, "") else "eval_return"
    return {
        "metric": column,
        "evals": [float(r[column]) for r in rows],
        "env_steps": [int(r["env_steps"]) for r in rows],
        "kl_mean": [float(r["kl_mean"]) if r.get("kl_mean") else None for r in rows],
        "q_mean": [float(r["q_mean"]) if r.get("q_mean") else None for r in rows],
        "init_kl": float(rows[0]["init_kl"]) if rows[0].get("init_kl") else None,
        "step0_wall_s": float(rows[0]["wall_s"]) if rows[0].get("wall_s") else None,
        "updates_per_s": _mean([float(r["updates_per_s"]) for r in rows[1:] if r.get("updates_per_s")]),
    }
