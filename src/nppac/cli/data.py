"""``nppac data``: inspect and convert demonstration sets."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from nppac.cli.common import emit_json, print_table
from nppac.data import inspect_demos, load_demos, save_npz
from nppac.outputs import check_output_file

app = typer.Typer(help="Inspect and convert demonstration sets.", no_args_is_help=True)

_PATH_HELP = ("Demonstrations: .npz (nppac, or D4RL arrays), .npy (rlkit), .pkl/.pickle (mjrl), .h5/.hdf5 (D4RL), "
              "a Minari dataset folder, or minari:ID (a dataset of the local Minari store, never downloaded).")
_PICKLE_HELP = "Allow pickle-based files (.pkl, object .npy); loading a pickle can run code, so only for trusted files."
_TASK_HELP = ("Check dimensions against this task (see `nppac tasks`; a gymnasium id or module:function works "
              "too); binary tasks get the binary reward (relabelled if needed) and report the success rate.")


@app.command("inspect")
def inspect_command(
    path: Path = typer.Argument(..., help=_PATH_HELP),
    task: str | None = typer.Option(None, "--task", help=_TASK_HELP),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help=_PICKLE_HELP),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Validate a demonstration set and summarize it: sizes, dimensions, returns, the action range and the share
    of action values outside the task's box [-1, 1], success rate."""
    summary = inspect_demos(load_demos(path, task=task, allow_pickle=allow_pickle), task=task)
    if json_out:
        emit_json(summary)
        return
    table = Table(title=f"demonstrations: {path}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in summary.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    print_table(table)


@app.command("convert")
def convert_command(
    path: Path = typer.Argument(..., help=_PATH_HELP),
    out: Path = typer.Argument(..., help="Output .npz file (replaced atomically if it exists)."),
    task: str | None = typer.Option(None, "--task", help=_TASK_HELP),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help=_PICKLE_HELP),
    clip_actions: bool = typer.Option(False, "--clip-actions",
                                      help="Clip actions outside [-1, 1] instead of only warning."),
) -> None:
    """Validate a demonstration set and write it in nppac's .npz format."""
    check_output_file(out, ".npz")
    demos = load_demos(path, task=task, allow_pickle=allow_pickle, clip_actions=clip_actions)
    written = save_npz(demos, out)
    typer.echo(f"wrote {written}: {len(demos)} trajectories, {demos.n_transitions:,} transitions")
