"""``nppac train`` (being built)."""

import typer


def train() -> None:
    """Train an agent (being built)."""
    raise typer.Exit(1)
