"""The README's first API example runs as written."""

from __future__ import annotations

import csv
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readmes_api_example_runs_as_written(tmp_path, monkeypatch):
    text = README.read_text()
    section = text[text.index("## As a library"):]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "readme_example"}
    exec(compile(block.group(1), "README.md", "exec"), namespace)  # the project's own README
    with (tmp_path / "runs" / "hc-api" / "progress.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[-1]["env_steps"] == "3000"  # 2,000 steps, then 1,000 more of the same run
    assert namespace["action"].shape == (6,)  # type: ignore[attr-defined]
    assert (tmp_path / "runs" / "hc-api-snapshots").is_dir()
