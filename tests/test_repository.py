"""The repository's own text: no file is left with the markers of an unresolved merge."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^(<{7} |>{7} |={7}$)", re.M)


def test_no_file_holds_a_merge_conflict_marker():
    files = [ROOT / "README.md", *(p for d in ("docs", "src", "tests", "benchmarks", "examples", "scripts")
                                   for p in (ROOT / d).rglob("*") if p.suffix in {".md", ".py", ".toml", ".sh"})]
    assert len(files) > 50
    marked = [str(p.relative_to(ROOT)) for p in files if MARKER.search(p.read_text(errors="replace"))]
    assert marked == []
