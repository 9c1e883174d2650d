"""``nppac diagnose``: (being built)."""

import typer

app = typer.Typer(help="diagnose commands.", no_args_is_help=True)


def compare() -> None:
    """Learning curves across runs (being built)."""
    raise typer.Exit(1)
