"""How σ0 enters π0 and who collects the warm-up: N-PPAC's step-0 and first-epoch returns per setting.

The published code builds π0 with the GP's variance where a std belongs, and collects
its first 1,000 steps with the initialized policy; nppac offers both as settings
(``prior_sigma``, ``warmup``). This script measures what each choice does to the
policy's competence right after initialization: for every task × setting × seed it
trains ``nppac`` for a few epochs from the same fitted GP prior (fitted once per task,
reused by every run) and records the evaluated return (or success) at env_steps = 0
and after each epoch, plus the prior's own mean-action return. ``--settings conventions``
(the default) screens the σ0 scale, the GP's variance estimate (exact or LOVE's) and, on
hand tasks, the two published protocols; ``--settings remedies`` screens the remedies of
N-PPAC's competence loss (automatic α presets, LayerNorm critics) against today's default;
the critic warm starts and the delayed actor it also screened were measured harmful and
removed (docs/remedies.md), and their runs' folders are still reported.

    python benchmarks/conventions.py --out /tmp/conventions --tasks hopper halfcheetah --seeds 0 1
    python benchmarks/conventions.py --out /tmp/remedies --tasks hopper --settings remedies --epochs 10
    python benchmarks/conventions.py --out /tmp/conventions --report docs/figures/conventions
    python benchmarks/conventions.py --out /tmp/remedies /tmp/remedies-pen --report docs/figures/remedies
    python benchmarks/conventions.py --out /tmp/remedies --export results/remedies

Every setting of a task and seed starts from one initialized actor: the published policy
initialization toward π0 runs once per task, seed and σ0 setting (``OUT/inits``; the
fields of ``INIT_FIELDS`` name it), and each run loads it (``init_actor``). Settings that
share a σ0 then differ only in what they change after step 0, and the screen does each
initialization once instead of once per setting.

Runs live in ``OUT/runs/TASK/SETTING/seed-S`` and resume where they stopped; ``--report DIR``
writes ``NAME.json``, ``NAME.md`` (a summary per setting, then every run), ``NAME.png`` and
``NAME-grid.png`` (NAME: DIR's name) from whatever runs are finished under one or more outs
(a hand task screened with its own ``--demos`` or ``--gpytorch`` has an out of its own). It
reads only each run's ``config.json`` and ``progress.csv`` and each prior's
``metrics.json``; ``--export DEST`` copies just those (and ``references.json``, ``status.json``)
of the finished runs into DEST, as ``results/`` keeps them.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from run_files import finished, read_rows

SETTINGS: dict[str, dict[str, Any]] = {
    "std+uniform": {"prior_sigma": "std", "warmup": "uniform"},
    "std+policy": {"prior_sigma": "std", "warmup": "policy"},
    "exact-variance+policy": {"prior_sigma": "variance", "warmup": "policy"},
    "exact-variance+uniform": {"prior_sigma": "variance", "warmup": "uniform"},
    # The GP's variance estimate: LOVE's (gpytorch 1.0.1's, the published code's) against the exact one.
    "published+policy": {"prior_convention": "published", "warmup": "policy"},
    "love-std+policy": {"prior_convention": "love-std", "warmup": "policy"},
    # The hand tasks' two published protocols under each scale (locomotion runs skip these).
    "std+policy@awac": {"prior_sigma": "std", "warmup": "policy", "hand_protocol": "awac"},
    "std+policy@nppac": {"prior_sigma": "std", "warmup": "policy", "hand_protocol": "nppac"},
    "published+policy@awac": {"prior_convention": "published", "warmup": "policy", "hand_protocol": "awac"},
    "published+policy@nppac": {"prior_convention": "published", "warmup": "policy", "hand_protocol": "nppac"},
    # The remedies of N-PPAC's competence loss, each alone on top of the task's defaults.
    "default": {},
    "alpha-kl-act-dim": {"auto_alpha_target": "act-dim"},
    "alpha-kl-init": {"auto_alpha_target": "init-kl"},
    "layernorm": {"critic_layernorm": True},
    # Combinations of the screen's best (not in the remedies screen: run them by name).
    "alpha-kl-init+layernorm": {"auto_alpha_target": "init-kl", "critic_layernorm": True},
    "anchor-init": {"kl_anchor": "init-actor"},
}
"""Setting name → TrainConfig fields. A conventions setting is named PRIOR+WARMUP[@PROTOCOL], PRIOR by the
glossary of docs/RESULTS.md (the ``prior_convention`` values): ``exact-variance+policy`` is the published code's
scale with the exact GP variance, ``published+policy`` the published prior itself. Settings with ``@`` fix a
hand protocol."""
LEGACY_NAMES = {"variance+policy": "exact-variance+policy", "variance+uniform": "exact-variance+uniform",
                "love-variance+policy": "published+policy", "love-variance+policy@awac": "published+policy@awac",
                "love-variance+policy@nppac": "published+policy@nppac"}
"""Earlier names of settings → today's: still accepted by --settings, and their run folders (``OUT/runs/TASK/
OLD-NAME``, as results/conventions-love keeps them) are read and resumed under today's name."""
CONVENTIONS = ["std+uniform", "std+policy", "exact-variance+policy", "exact-variance+uniform", "published+policy",
               "love-std+policy", "std+policy@awac", "std+policy@nppac", "published+policy@awac",
               "published+policy@nppac"]
REMEDIES = ["default", "alpha-kl-act-dim", "alpha-kl-init", "layernorm"]
"""The two screens: σ0 conventions and protocols (--settings conventions) and remedies (--settings remedies)."""


def setting_name(name: str) -> str:
    """A setting's name today (an earlier name is translated by LEGACY_NAMES)."""
    return LEGACY_NAMES.get(name, name)


def _run_dir(out: Path, task: str, setting: str, seed: int) -> Path:
    """Where a setting's run lives: under its name, or under an earlier name of it where such a run exists."""
    for name in (setting, *(old for old, new in LEGACY_NAMES.items() if new == setting)):
        if (out / "runs" / task / name / f"seed-{seed}").exists():
            return out / "runs" / task / name / f"seed-{seed}"
    return out / "runs" / task / setting / f"seed-{seed}"


def applies(setting: str, task: str) -> bool:
    """Hand-protocol settings are for the binary hand tasks only."""
    return "hand_protocol" not in SETTINGS[setting] or task.endswith("-binary")


INIT_FIELDS = ("prior_sigma", "prior_convention", "prior_variance")
"""The settings that change policy initialization (it fits the policy to π0 with the run's σ0)."""


def _init_fields(setting: str) -> dict[str, Any]:
    return {k: v for k, v in SETTINGS[setting].items() if k in INIT_FIELDS}


def _init_dir(out: Path, task: str, setting: str, seed: int) -> Path:
    """Where the initialized actor of ``setting``'s σ0 lives; settings with the same σ0 share it."""
    name = "+".join(f"{k}={v}" for k, v in sorted(_init_fields(setting).items())) or "default"
    return out / "inits" / task / name / f"seed-{seed}"


def _prior_dir(out: Path, task: str) -> Path:
    return out / "priors" / task


def _fit_prior(out: Path, task: str, demos: str | None, allow_pickle: bool, gpytorch: str | None = None) -> None:
    """The task's GP prior (its default kernel), fitted once and saved for every run."""
    import torch

    from nppac.data import load_demos
    from nppac.priors import fit_prior
    from nppac.tasks import get_task

    torch.set_num_threads(1)
    target = _prior_dir(out, task)
    if (target / "settings.json").exists():
        return
    spec = get_task(task)
    data = load_demos(demos or spec.bundled_demos, task=task, allow_pickle=allow_pickle)
    prior, metrics = fit_prior(data, "gp", kernel=spec.defaults.kernel, from_gpytorch=gpytorch)
    tmp = target.with_name(target.name + ".tmp")
    prior.save(tmp)
    metrics["mean_action"] = _prior_return(prior, task)
    (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float) + "\n")
    tmp.rename(target)


def _prior_return(prior: Any, task: str) -> dict[str, float | None]:
    """The prior's mean action rolled out like a run's references.json (the task's evaluation protocol)."""
    from nppac.tasks import get_task
    from nppac.training.references import references

    spec = get_task(task)
    values = references(spec, None, prior, spec.eval_episodes, spec.horizon, seed=20_000)["prior_mean_action"]
    return {"return": values["return"], "success": values["success"]}


def _initialize(job: tuple[str, str, int, str, str | None, bool, int | None]) -> str:
    """The initialized actor of a task, seed and σ0 setting: a run stopped at its step-0 row."""

    from nppac.training import TrainConfig, train

    out_s, task, seed, setting, demos, allow_pickle, init_epochs = job
    logging.basicConfig(level=logging.WARNING)
    out = Path(out_s)
    target = _init_dir(out, task, setting, seed)
    if (target / "actor.safetensors").exists():
        return f"{target} done"
    work = target.with_name(target.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)  # an initialization cut short starts again
    cfg = TrainConfig(task=task, algo="nppac", seed=seed, steps=1000, prior=str(_prior_dir(out, task)),
                      demos=demos, allow_pickle=allow_pickle, num_threads=1, init_epochs=init_epochs,
                      **_init_fields(setting))
    train(cfg, work, progress=False, on_epoch_end=lambda row: False)
    work.rename(target)
    return f"{target}: initialized"


def _run(job: tuple[str, str, int, int, str, str | None, bool]) -> str:
    out_s, task, seed, epochs, setting, demos, allow_pickle = job
    from nppac.training import TrainConfig, train

    logging.basicConfig(level=logging.WARNING)
    out = Path(out_s)
    run_dir = _run_dir(out, task, setting, seed)
    if finished(run_dir):
        return f"{run_dir} done"
    cfg = TrainConfig(task=task, algo="nppac", seed=seed, steps=epochs * 1000, prior=str(_prior_dir(out, task)),
                      demos=demos, allow_pickle=allow_pickle, num_threads=1,
                      init_actor=str(_init_dir(out, task, setting, seed) / "actor.safetensors"),
                      **SETTINGS[setting])
    resume = (run_dir / "config.json").exists()
    summary = train(None if resume else cfg, run_dir, resume=resume, progress=False)
    return f"{run_dir}: step 0 {summary['step0_eval_return']:.1f} → {summary['final_eval_return']:.1f}"


def report(outs: list[Path], dest: Path) -> None:
    """``NAME.json``, ``NAME.md`` and ``NAME.png`` (NAME: ``dest``'s own name) from the finished runs under each
    of ``outs``: a screen's locomotion and hand parts may live in separate outs (the hand tasks' own GP)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    result: dict[str, Any] = {}
    task_dirs = [(out, task_dir) for out in outs for task_dir in sorted((out / "runs").iterdir())]
    for out, task_dir in task_dirs:
        task = task_dir.name
        if task in result:
            raise SystemExit(f"error: task {task} has runs under more than one --out; report them apart")
        prior_metrics = json.loads((_prior_dir(out, task) / "metrics.json").read_text())
        entry: dict[str, Any] = {"prior_mean_action": prior_metrics["mean_action"], "settings": {}}
        order = {name: i for i, name in enumerate(SETTINGS)}
        for setting_dir in sorted(task_dir.iterdir(), key=lambda d: (order.get(setting_name(d.name), len(order)),
                                                                     setting_name(d.name))):
            runs = {}
            for run_dir in sorted(setting_dir.glob("seed-*")):
                if not finished(run_dir):
                    continue
                # Step 0 is the last row at env_steps = 0: a critic warm start on the demonstrations logs it as
                # its phase's last row (the actor is frozen through it), after the initialization's.
                every = read_rows(run_dir)
                rows = ([r for r in every if int(r["env_steps"]) == 0][-1:]
                        + [r for r in every if int(r["env_steps"]) > 0])
                column = "eval_success" if rows[0].get("eval_success") not in (None, "") else "eval_return"
                runs[run_dir.name] = {
                    "metric": column,
                    "evals": [float(r[column]) for r in rows],
                    "env_steps": [int(r["env_steps"]) for r in rows],
                    "kl_mean": [float(r["kl_mean"]) if r.get("kl_mean") else None for r in rows],
                    "q_mean": [float(r["q_mean"]) if r.get("q_mean") else None for r in rows],
                    "init_kl": float(rows[0]["init_kl"]) if rows[0].get("init_kl") else None,
                    "step0_wall_s": float(rows[0]["wall_s"]) if rows[0].get("wall_s") else None,
                    "updates_per_s": _mean([float(r["updates_per_s"]) for r in rows[1:] if r.get("updates_per_s")]),
                }
            if runs:
                entry["settings"][setting_name(setting_dir.name)] = runs
        result[task] = entry
    dest.mkdir(parents=True, exist_ok=True)
    name = dest.name
    (dest / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    (dest / f"{name}.md").write_text(_summary(result) + "\n" + _table(result))

    tasks = list(result)
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.6), squeeze=False)
    palette = [plt.get_cmap("tab20")(i) for i in range(20)]
    colors = {name: palette[i % len(palette)] for i, name in enumerate(SETTINGS)}
    for ax, task in zip(axes[0], tasks):
        entry = result[task]
        metric = "eval_return"
        for setting, runs in entry["settings"].items():
            for i, run in enumerate(runs.values()):
                metric = run["metric"]
                ax.plot(np.asarray(run["env_steps"]) / 1000, run["evals"], "o-", color=colors.get(setting, "k"),
                        alpha=0.75, ms=3, label=setting if i == 0 else None)
        prior_value = entry["prior_mean_action"]["success" if metric == "eval_success" else "return"]
        ax.axhline(prior_value, color="k", ls="--", lw=1, label="prior's mean action")
        ax.set_title(task)
        ax.set_xlabel("env steps (thousands)")
        ax.set_ylabel("success rate" if metric == "eval_success" else "return")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("N-PPAC after initialization (step 0) and each epoch, per setting; one line per seed", fontsize=9)
    fig.tight_layout()
    fig.savefig(dest / f"{name}.png", dpi=110)
    plt.close(fig)
    _grid(result, dest / f"{name}-grid.png")
    print(f"wrote {dest / name}.json, .md, .png and -grid.png")


def _grid(result: dict[str, Any], path: Path) -> None:
    """Small multiples: a row per task, a column per setting, every seed's curve, the prior's mean action
    (dashed) and 0.9× of it (dotted); the task's first setting's seeds in grey behind the others, to compare
    with. A setting the task did not run leaves its panel out."""
    import matplotlib.pyplot as plt
    import numpy as np

    result = {task: entry for task, entry in result.items() if entry["settings"]}
    if not result:
        return
    settings = list(dict.fromkeys(s for entry in result.values() for s in entry["settings"]))  # SETTINGS' order
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
    fig.savefig(path, dpi=110)
    plt.close(fig)


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


RUN_FILES = ("config.json", "progress.csv", "references.json", "status.json")
"""What --export copies of a run: enough for --report and the docs' tables, nothing that holds weights."""


def export(out: Path, dest: Path) -> int:
    """Copy the finished runs' RUN_FILES and the priors' metrics.json from ``out`` to ``dest``, keeping their paths."""
    copied = []
    for run in sorted((out / "runs").glob("*/*/seed-*")):
        if finished(run):
            copied += [run / name for name in RUN_FILES if (run / name).is_file()]
    copied += sorted((out / "priors").glob("*/metrics.json"))
    for path in copied:
        target = dest / path.relative_to(out)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    return len(copied)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, nargs="+", required=True,
                        help="Directory of priors and runs (outside the repository); --report reads several.")
    parser.add_argument("--tasks", nargs="*", default=[])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1])
    parser.add_argument("--settings", nargs="*", default=CONVENTIONS,
                        help="setting names, or 'conventions' / 'remedies' for a whole screen "
                             f"(known: {', '.join(SETTINGS)})")
    parser.add_argument("--gpytorch", default=None, help="A gpytorch GP checkpoint to import as the prior "
                        "(e.g. the published pen GP) instead of fitting one.")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--init-epochs", type=int, default=None,
                        help="Epochs of policy initialization (default: the task's published number; fewer for a "
                             "quick check of the script only).")
    parser.add_argument("--demos", default=None, help="Demonstrations (default: the task's bundled set).")
    parser.add_argument("--allow-pickle", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--report", type=Path, default=None,
                        help="Write NAME.json, .md and .png into this directory (NAME: its name) and stop.")
    parser.add_argument("--export", type=Path, default=None,
                        help="Copy the run files of --out's finished runs and its priors' metrics.json into this "
                             "directory (e.g. results/remedies) and stop; no weights, buffers or inits.")
    args = parser.parse_args()
    if args.report is not None:
        report(args.out, args.report)
        return
    if args.export is not None:
        if len(args.out) != 1:
            parser.error("--export copies one --out")
        print(f"copied {export(args.out[0], args.export)} files into {args.export}", file=sys.stderr)
        return
    if len(args.out) != 1:
        parser.error("a screen runs in one --out; several are for --report only")
    args.out = args.out[0]
    settings = [setting_name(name) for given in args.settings
                for name in {"conventions": CONVENTIONS, "remedies": REMEDIES}.get(given, [given])]
    unknown = [name for name in settings if name not in SETTINGS]
    if unknown:
        parser.error(f"unknown setting {unknown[0]!r}; known: {', '.join(SETTINGS)}")
    # A kill of the script ends its workers too: the pool's exit terminates them.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ctx = mp.get_context("spawn")
    with ctx.Pool(args.workers) as pool:
        for _ in pool.imap_unordered(_fit_one, [(str(args.out), t, args.demos, args.allow_pickle, args.gpytorch)
                                                for t in args.tasks]):
            pass
        chosen = [(t, s, setting) for t in args.tasks for s in args.seeds for setting in settings
                  if applies(setting, t)]
        stems = {_init_dir(args.out, t, setting, s): (str(args.out), t, s, setting, args.demos, args.allow_pickle,
                                                      args.init_epochs) for t, s, setting in chosen}
        for line in pool.imap_unordered(_initialize, list(stems.values())):
            print(line, file=sys.stderr, flush=True)
        jobs = [(str(args.out), t, s, args.epochs, setting, args.demos, args.allow_pickle) for t, s, setting in chosen]
        for line in pool.imap_unordered(_run, jobs):
            print(line, file=sys.stderr, flush=True)


def _fit_one(job: tuple[str, str, str | None, bool, str | None]) -> None:
    out, task, demos, allow_pickle, gpytorch = job
    _fit_prior(Path(out), task, demos, allow_pickle, gpytorch)


if __name__ == "__main__":
    main()
