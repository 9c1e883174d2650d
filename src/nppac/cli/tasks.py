"""``nppac tasks``: list the task registry."""

from __future__ import annotations

import typer
from rich.table import Table

from nppac.cli.common import emit_json, print_table
from nppac.tasks import entry_point_tasks, list_tasks


def tasks(json_out: bool = typer.Option(False, "--json", help="Print one JSON list on stdout.")) -> None:
    """List the registered tasks (the paper's, then those of installed packages' nppac.tasks entry points) with
    their dimensions, horizon and reward kind. Any gymnasium id with a Box action space is a task too."""
    entry_point_tasks()
    registry = list_tasks()
    if json_out:
        emit_json([t.to_json() for t in registry])
        return
    table = Table(title="nppac tasks")
    for col in ("name", "env_id", "obs", "act", "horizon", "reward", "α", "kernel", "actor"):
        table.add_column(col)
    for t in registry:
        d = t.defaults
        table.add_row(t.name, t.env_id, str(t.obs_dim), str(t.act_dim), str(t.horizon), t.reward,
                      str(d.alpha), d.kernel, d.actor)
    print_table(table)
