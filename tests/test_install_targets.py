"""`make run` installs what the quickstart needs and says so; `make test` and `make lint` add the test extra."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST_TOOLS = {"pytest", "pytest-timeout", "pytest-xdist", "hypothesis", "mypy", "ruff", "ray", "gpytorch"}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower()


def test_the_test_tools_are_in_the_test_extra_only():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {_name(r) for r in project["dependencies"]}
    assert not runtime & TEST_TOOLS
    assert TEST_TOOLS <= {_name(r) for r in project["optional-dependencies"]["test"]}


def _dry_run(target: str, venv: Path) -> list[str]:
    """The commands ``make TARGET`` would run on a fresh clone (no virtual environment yet)."""
    done = subprocess.run(["make", "-n", "--no-print-directory", "-C", str(ROOT), f"VENV={venv}", target],
                          capture_output=True, text=True, check=True)
    return done.stdout.splitlines()


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_run_installs_nppac_without_the_test_extra_and_says_what(tmp_path):
    commands = _dry_run("run", tmp_path / "venv")
    installs = [c for c in commands if "pip install" in c]
    assert any(c.endswith("pip install -e .") for c in installs), installs
    assert not any("[test" in c for c in installs), installs
    assert not any(re.search(r"pip install.* -q\b", c) for c in installs), "pip must not run silently"
    said = " ".join(c for c in commands if c.startswith("echo"))
    assert "installing nppac" in said and "GB" in said
    assert commands[-1].endswith("nppac quickstart")


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize("target", ["test", "lint"])
def test_make_test_and_lint_add_the_test_extra(tmp_path, target):
    commands = _dry_run(target, tmp_path / "venv")
    installs = [c for c in commands if "pip install" in c]
    assert any(c.endswith('pip install -e ".[test]"') for c in installs), installs
    assert any("installing the test extra" in c for c in commands if c.startswith("echo"))
    assert any(c.endswith("-m mypy") for c in commands)
