"""``nppac suite run|report``: many tasks × algorithms × seeds from one TOML file, and their report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from typer.core import TyperCommand

from nppac.cli.common import QUIET, emit_json, print_table

if TYPE_CHECKING:
    from collections.abc import Sequence

    from nppac.experiments import Suite
    from nppac.experiments.suite import RunSpec

app = typer.Typer(help="Experiment suites: run tasks × algorithms × seeds locally or on Ray, then report.",
                  no_args_is_help=True)

_LOCAL_RAY = "local"
"""What a bare ``--ray`` means: start a local Ray (or join the one RAY_ADDRESS names)."""


class _OptionalRayAddress(TyperCommand):
    """Lets ``--ray`` stand alone (a local Ray) or take an ADDRESS; click options otherwise always need a value."""

    # typer passes its Context; the base class names the Context of the click typer vendors (a private module).
    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        args = list(args)
        for i, arg in enumerate(args):
            if arg == "--ray" and (i + 1 == len(args) or args[i + 1].startswith("-")):
                args.insert(i + 1, _LOCAL_RAY)
                break
        return super().parse_args(ctx, args)


@app.command("run", cls=_OptionalRayAddress)
def run(
    suite_file: Path = typer.Argument(..., metavar="SUITE.toml", help="Suite file (see docs/experiments.md)."),
    out: Path = typer.Option(..., "--out", help="Suite directory: runs go to OUT/task/algo/seed-S."),
    workers: int = typer.Option(1, "--workers", help="Runs at a time on this machine (> 1: a process per run)."),
    ray: str | None = typer.Option(
        None, "--ray", metavar="[ADDRESS]",
        help="Run on Ray, one task per run: alone for a local Ray, or a cluster address (auto, ray://HOST:10001). "
             "Cluster nodes must share OUT."),
    gpus_per_run: float = typer.Option(1.0, "--gpus-per-run", help="With --ray: GPUs per run whose device is cuda."),
    only: list[str] = typer.Option([], "--only", metavar="PATTERN",
                                    help="Train only the runs whose TASK/ALGO/seed-S matches this shell pattern "
                                         "(repeatable): 'halfcheetah/*', '*/nppac/*', '*/seed-0'."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the expanded runs and their state; train nothing."),
    json_out: bool = typer.Option(False, "--json", help="Print the runs (or their results) as one JSON document."),
    quiet: bool = QUIET,
) -> None:
    """Train every run of a suite; finished runs are skipped, interrupted ones resumed, failures recorded.

    A run whose losses become non-finite is recorded as diverged (stopped at its last good
    checkpoint) and not trained again: it is a result. Exits 1 when a run failed (its error
    is in OUT/task/algo/seed-S/status.json), 0 otherwise.
    """
    from nppac.errors import NppacError
    from nppac.experiments import LocalRunner, RayRunner, load_suite, run_suite
    from nppac.experiments.runners import Runner, import_ray

    suite = load_suite(suite_file)
    suite.check_output(out)  # the dry run refuses what the real run would
    selected = suite.select(only)
    if dry_run:
        _list_runs(suite, selected, out, json_out)
        return
    if ray is not None:
        if workers != 1:
            raise NppacError("--workers is for local runs; with --ray, Ray schedules one task per run")
        if ray.endswith(".toml"):
            raise NppacError(f"--ray took {ray!r} as its address; put the suite file before --ray")
        import_ray()
        runner: Runner = RayRunner(None if ray == _LOCAL_RAY else ray, gpus_per_run)
    else:
        runner = LocalRunner(workers)
    results = run_suite(suite, out, runner, progress=not quiet, only=only)
    failed = [r for r in results if r.outcome == "failed"]
    if json_out:
        emit_json({"suite": suite.name, "out": str(out), "runs": [r.to_json() for r in results]})
    else:
        counts = {k: sum(r.outcome == k for r in results)
                  for k in ("finished", "diverged", "skipped", "failed", "busy")}
        text = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
        print(f"suite {suite.name}: {text} → {out}", file=sys.stderr)
        for result in results:
            if result.outcome in ("diverged", "failed"):
                print(f"  {result.outcome} {result.key}: {result.error}", file=sys.stderr)
        print(f"report: nppac suite report {out}", file=sys.stderr)
    if failed:
        raise typer.Exit(1)


def _list_runs(suite: Suite, runs: Sequence[RunSpec], out: Path, json_out: bool) -> None:
    from nppac.experiments import run_state
    from nppac.experiments.runners import asks_longer, completed_epochs, time_left
    from nppac.training.provenance import resumes

    def state(run: RunSpec) -> str:
        """The run's state, with a finished run the suite now asks for more epochs shown as "to extend"."""
        found = run_state(run.directory(out))
        return "to extend" if found == "finished" and asks_longer(run, run.directory(out)) else found

    left = time_left(runs, out)
    rows = [{**r.to_json(), "dir": str(r.directory(out)), "state": state(r),
             "epochs": completed_epochs(r.directory(out)), "n_epochs": r.config.n_epochs,
             "resumes": resumes(r.directory(out)), "left_s": left[r.key][0], "left_estimated_from_others":
             left[r.key][1]} for r in runs]
    known = [row["left_s"] for row in rows if row["left_s"] is not None]
    unknown = sum(row["left_s"] is None for row in rows)
    if json_out:
        emit_json({"suite": suite.name, "out": str(out), "runs": rows, "left_s": sum(known), "left_unknown": unknown})
        return
    from rich.table import Table

    shared = [o for o in suite.runs[0].overrides if all(o in r.overrides for r in suite.runs)]
    of = f" of {len(suite.runs)}" if len(runs) < len(suite.runs) else ""
    measured = [f"{_hours(sum(known))} of one core"] if known or not unknown else []
    total = "left: " + ", and ".join([*measured, *([f"{unknown} runs nothing has measured yet"] if unknown else [])])
    table = Table(title=f"suite {suite.name}: {len(rows)}{of} runs in {out}",
                  caption="\n".join([*([f"every run: {' '.join(shared)}"] if shared else []), total,
                                      "≈: estimated from the same task and algorithm's runs"]))
    for column in ("run", "state", "epochs", "left", "resumes", "own settings"):
        table.add_column(column)
    for spec, row in zip(runs, rows):
        own = [o for o in spec.overrides if o not in shared]
        seconds, borrowed = left[spec.key]
        when = "?" if seconds is None else ("" if seconds == 0 else ("≈" if borrowed else "") + _hours(seconds))
        table.add_row(spec.key, row["state"], f"{row['epochs']}/{row['n_epochs']}", when,
                      str(row["resumes"]), " ".join(own))
    print_table(table)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


@app.command("export")
def export(
    out: Path = typer.Argument(..., metavar="OUT", help="Suite directory written by `nppac suite run --out`."),
    dest: Path = typer.Argument(..., metavar="DEST", help="Where the small files go (new, empty, or an earlier "
                                                          "export of the same suite)."),
) -> None:
    """Copy what the report is made from (configs, progress, status, references, prior records); no weights."""
    from nppac.experiments import export_suite

    written = export_suite(out, dest)
    size = sum(p.stat().st_size for p in written)
    print(f"exported {len(written)} files ({size / 1e6:.1f} MB) to {dest}; report: nppac suite report {dest}",
          file=sys.stderr)


TABLES = ("competence", "conventions", "pathology", "priors", "screen")
"""The tables ``nppac suite report --table`` prints from suite folders (:mod:`nppac.experiments.tables`)."""
_READERS: dict[str, tuple[str | None, ...]] = {
    "--out": (None, "screen"), "--last-k": (None,), "--threshold": (None,), "--baseline": (None,),
    "--adjust": (None, "conventions", "priors"), "--json": (None,), "--versus": ("priors",),
    "--columns": ("competence",), "--episodes": ("competence",), "--figure": ("competence",)}
"""Who reads each option of ``suite report``: the report (None) or the named tables."""


@app.command("report")
def report(
    outs: list[Path] = typer.Argument(..., metavar="OUT...", help="Suite directory written by `nppac suite run "
                                                                   "--out` (several for --table)."),
    report_path: Path | None = typer.Option(None, "--out", help="Markdown report (default OUT/report.md); "
                                                                  "the JSON and figures/ go beside it. With --table "
                                                                  "screen: the folder of the screen's files."),
    last_k: int | None = typer.Option(None, "--last-k", help="Evaluations averaged into final performance "
                                                             "(default: the suite's report.last_k, 3)."),
    thresholds: list[str] = typer.Option([], "--threshold", help="TASK=LEVEL: also report steps until the primary "
                                                                 "metric reaches LEVEL (repeatable)."),
    baseline: str | None = typer.Option(None, "--baseline", help="Algorithm the others are compared with "
                                                                  "(Welch 95 % interval; default: the suite's first)."),
    adjust: str | None = typer.Option(None, "--adjust", help="How the p-values of the report's comparisons are "
                                                             "adjusted across them: holm, bh (Benjamini–Hochberg) "
                                                             "or none (default: the suite's report.adjust, holm)."),
    json_out: bool = typer.Option(False, "--json", help="Print the report's numbers as one JSON document."),
    table: str | None = typer.Option(
        None, "--table", help="Instead, print one table of the suite folders' runs (Markdown): competence (each run "
                              "against its prior's mean action and step 0), conventions (the same algorithms in two "
                              "suites, and their difference), pathology (run by run: the drop, KL, gradient, Q), "
                              "priors (a column per suite; reads each folder's report.json) or screen (writes a "
                              "screen's report files into --out)."),
    task: str = typer.Option("halfcheetah", "--task", help="With --table: the task."),
    versus: str | None = typer.Option(None, "--versus", help="With --table priors: the algorithm every cell is "
                                                             "differenced against."),
    columns: list[str] = typer.Option([], "--columns", help="With --table competence: only this column "
                                                            "(an algorithm or variant; repeatable)."),
    episodes: bool = typer.Option(False, "--episodes", help="With --table competence: the share of single episodes "
                                                            "that fail, fall short of or keep the prior's return."),
    figure: Path | None = typer.Option(None, "--figure", help="With --table competence: also draw each run's "
                                                              "evaluation ÷ the prior's mean action (a .png)."),
) -> None:
    """Final performance and sample efficiency per task and algorithm (mean, 95 % t-interval), with curves;
    or, with --table, one table of one or more suite folders (docs/experiments.md)."""
    from nppac.errors import NppacError

    if table is not None and table not in TABLES:
        raise NppacError(f"--table {table!r}: choose one of {', '.join(TABLES)}")
    given = {"--out": report_path, "--last-k": last_k, "--threshold": thresholds, "--baseline": baseline,
             "--adjust": adjust, "--json": json_out, "--versus": versus, "--columns": columns, "--episodes": episodes,
             "--figure": figure}
    for option, value in given.items():
        if value and table not in _READERS[option]:
            readers = " or ".join("the report (no --table)" if t is None else f"--table {t}" for t in _READERS[option])
            raise NppacError(f"{option} is read by {readers} only; drop it")
    if table is not None:
        lines = _table_lines(table, outs, report_path, task, versus, adjust or "holm", columns, episodes, figure)
        if lines:
            print("\n".join(lines))
        return
    if len(outs) != 1:
        raise NppacError(f"nppac suite report reads one suite folder, got {len(outs)}; several are for --table")
    from nppac.experiments import write_report

    summary, written = write_report(outs[0], report_path, last_k, _thresholds(thresholds), baseline=baseline,
                                    adjust=adjust)
    if json_out:
        emit_json(summary.to_json())
        return
    from rich.console import Console
    from rich.markdown import Markdown

    Console().print(Markdown(summary.to_markdown()))
    print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)


def _table_lines(table: str, outs: list[Path], dest: Path | None, task: str, versus: str | None, adjust: str,
                 columns: list[str], episodes: bool, figure: Path | None) -> list[str]:
    from nppac.errors import NppacError
    from nppac.experiments import tables
    from nppac.experiments.suite import read_manifest

    if table != "screen" and not any(task in read_manifest(out).tasks for out in outs):
        raise NppacError(f"--task {task}: no run of it in {', '.join(map(str, outs))}; name one of their tasks")
    if table == "competence":
        only = columns or None
        if episodes:
            return tables.competence.episodes_table(outs, task, only)
        lines = tables.competence.table(outs, task, only)
        if figure is not None:
            tables.competence.figure(outs, task, figure, only)
        return lines
    if table == "conventions":
        if len(outs) != 2:
            raise NppacError(f"--table conventions compares two suite folders, got {len(outs)}")
        return tables.conventions.table(outs[0], outs[1], task, adjust)
    if table == "pathology":
        return tables.pathology.table(outs, task)
    if table == "priors":
        return tables.priors.tables(outs, task, versus, adjust)
    if dest is None:
        raise NppacError("--table screen writes its files into a folder: give it with --out DIR")
    written = tables.screen.report(outs, dest)
    print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    return []


def _thresholds(pairs: list[str]) -> dict[str, float]:
    import math

    from nppac.errors import NppacError
    from nppac.tasks import get_task

    levels = {}
    for pair in pairs:
        task, sep, text = pair.partition("=")
        try:
            if not sep:
                raise ValueError
            get_task(task.strip())  # a mistyped task is refused by name
            levels[task.strip()] = float(text)
            if not math.isfinite(levels[task.strip()]):
                raise ValueError
        except ValueError:
            raise NppacError(f"--threshold expects TASK=LEVEL with a finite number, got {pair!r}") from None
    return levels
