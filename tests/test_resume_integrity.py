"""A resume continues exactly the state a run saved, or is refused in one line before anything is written:
a checkpoint whose bytes changed (a flipped bit, a damaged pickle byte), that holds NaN, whose replay sizes
disagree, or that is gone; a progress.csv without the rows up to the checkpoint; a prior gone or replaced."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from nppac.data import save_npz
from nppac.priors import fit_prior
from nppac.training import TrainConfig, train
from tests.builders import TINY, flip_bit, nppac_in_process, tiny_demos


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A two-epoch ppac-nn run (its NN prior fitted in the run), trained once for the module."""
    root = tmp_path_factory.mktemp("trained")
    demos = save_npz(tiny_demos(), root / "demos.npz")
    train(TrainConfig(algo="ppac-nn", demos=str(demos), prior_iters=3, **TINY), root / "run", progress=False)
    return root / "run"


def files(run: Path) -> dict[str, str]:
    return {str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run.rglob("*"))
            if p.is_file()}


def resume(run: Path, monkeypatch, capsys) -> tuple[int, str]:
    code, _, err = nppac_in_process(monkeypatch, capsys, "train", "--resume", "--steps", "450", "--quiet",
                                    "--out", str(run))
    return code, err


def edit_checkpoint(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        state = torch.load(run / "checkpoint.pt", weights_only=True)
        edit(state)
        torch.save(state, run / "checkpoint.pt")
    return damage


def flipped(pick: Callable[[list[zipfile.ZipInfo]], zipfile.ZipInfo], bit: int = 1) -> Callable[[Path], None]:
    return lambda run: flip_bit(run / "checkpoint.pt", pick, bit)


def nan_in(*keys: str) -> Callable[[Path], None]:
    """NaN in the first tensor below ``keys`` of the checkpoint."""
    def edit(state: dict) -> None:
        entry = state
        for key in keys:
            entry = entry[key]
        while isinstance(entry, dict):
            entry = next(iter(entry.values()))
        entry.view(-1)[0] = float("nan")
    return edit_checkpoint(edit)


def replay(**changes: object) -> Callable[[Path], None]:
    return edit_checkpoint(lambda state: state["replay"].update(changes))


def another_prior(run: Path) -> None:
    prior, _ = fit_prior(tiny_demos(seed=1), "nn", iters=3, seed=1)
    shutil.rmtree(run / "prior")
    prior.save(run / "prior")


DAMAGES = {
    "a flipped bit in the tensor data": (flipped(lambda infos: max(infos, key=lambda i: i.file_size)),
                                         ("checkpoint.pt", "fails its CRC check")),
    "a damaged pickle byte": (flipped(lambda infos: next(i for i in infos if i.filename.endswith("data.pkl")), 0x40),
                              ("checkpoint.pt", "data.pkl fails its CRC check")),
    "NaN in a weight": (nan_in("agent", "critic"), ("checkpoint.pt", "agent.critic.", "NaN or Inf")),
    "NaN in a replay reward": (nan_in("replay", "storage", "reward"), ("replay.storage.reward", "NaN or Inf")),
    "a replay size beyond its storage": (replay(size=301), ("replay buffer has size 301",)),
    "a replay write position off the ring": (replay(ptr=300), ("write position 300 in a capacity of 300",)),
    "a replay storage cut short": (edit_checkpoint(lambda s: s["replay"]["storage"].update(
        reward=s["replay"]["storage"]["reward"][:100])), ("reward 100 transitions where its size is 300",)),
    "a numpy generator state of another kind": (edit_checkpoint(lambda s: s["rng"].update(numpy={"state": 1})),
                                                ("checkpoint.pt does not fit", "state must be for a PCG64 RNG")),
    "a run state of another type": (edit_checkpoint(lambda s: s["state"].update(env_steps="300")),
                                    ("checkpoint.pt does not fit", "env_steps = '300'")),
    "a run state with an entry no run saves": (edit_checkpoint(lambda s: s["state"].update(bonus=1)),
                                               ("checkpoint.pt does not fit", "bonus")),
    "a run state at other env steps than the checkpoint": (
        edit_checkpoint(lambda s: s["state"].update(env_steps=s["state"]["env_steps"] + 7)),
        ("checkpoint.pt does not fit", "env_steps 300 and its run state's 307 differ")),
    "the checkpoint gone": (lambda run: (run / "checkpoint.pt").unlink(), ("checkpoint.pt is gone", "3 rows")),
    "progress.csv gone": (lambda run: (run / "progress.csv").unlink(), ("progress.csv holds 0 rows", "3 rows were")),
    "a middle row of progress.csv gone": (
        lambda run: (run / "progress.csv").write_text("".join(
            line for i, line in enumerate((run / "progress.csv").read_text().splitlines(True)) if i != 1)),
        ("progress.csv holds 2 rows up to epoch 2",)),
    "the prior gone": (lambda run: shutil.rmtree(run / "prior"), ("prior is gone",)),
    "the prior replaced": (another_prior, ("prior", "changed since its checkpoint")),
}


@pytest.mark.parametrize("name", DAMAGES)
def test_a_resume_of_anything_but_the_saved_state_is_refused_before_writing(name, trained, tmp_path, monkeypatch,
                                                                            capsys):
    damage, says = DAMAGES[name]
    run = Path(shutil.copytree(trained, tmp_path / "run"))
    damage(run)
    before = files(run)
    code, err = resume(run, monkeypatch, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and "diverged" not in err and "non-finite" not in err
    for fragment in (*says, "start over with a new --out"):
        assert fragment in lines[0], lines[0]
    assert files(run) == before


def test_a_kill_between_the_checkpoint_and_its_row_loses_no_row(trained, tmp_path, monkeypatch, capsys):
    run = Path(shutil.copytree(trained, tmp_path / "run"))
    lines = (run / "progress.csv").read_text().splitlines(True)
    (run / "progress.csv").write_text("".join(lines[:-1]) + lines[-1][:7])  # the last row cut mid-write
    code, err = resume(run, monkeypatch, capsys)
    assert code == 0, err
    after = (run / "progress.csv").read_text().splitlines(True)
    assert after[:len(lines)] == lines and len(after) == len(lines) + 1


def test_a_checkpoint_of_an_earlier_version_resumes_and_says_what_it_cannot_check(trained, tmp_path, monkeypatch,
                                                                                  capsys, caplog):
    run = Path(shutil.copytree(trained, tmp_path / "run"))

    def earlier(state: dict) -> None:  # no prior hash, no rows counted, no row inside
        del state["prior_sha256"], state["row"], state["state"]["rows"]

    edit_checkpoint(earlier)(run)
    with caplog.at_level(logging.INFO):
        code, err = resume(run, monkeypatch, capsys)
    assert code == 0, err
    assert "records no hash of the run's prior" in caplog.text
    assert torch.load(run / "checkpoint.pt", weights_only=True)["state"]["rows"] == 4
    (run / "checkpoint.pt").unlink()
    code, err = resume(run, monkeypatch, capsys)
    assert code == 2 and "checkpoint.pt is gone, but" in err and "4 rows" in err


def _swap_progress_with_another_run(run: Path) -> None:
    path = run / "progress.csv"
    lines = path.read_text().splitlines(keepends=True)
    header = lines[0].split(",")
    at = header.index("eval_return")
    cells = lines[-1].rstrip("\n").split(",")
    cells[at] = str(float(cells[at]) + 17.0)  # the same epochs, another run's numbers
    path.write_text("".join(lines[:-1]) + ",".join(cells) + "\n")


def _edit_json(name: str, value: object) -> Callable[[Path], None]:
    def edit(run: Path) -> None:
        (run / name).write_text(value if isinstance(value, str) else json.dumps(value))
    return edit


def _edit_config(**changes: object) -> Callable[[Path], None]:
    def edit(run: Path) -> None:
        config = json.loads((run / "config.json").read_text())
        (run / "config.json").write_text(json.dumps({**config, **changes}))
    return edit


@pytest.mark.parametrize("damage, says", [
    (_swap_progress_with_another_run, "belongs to another run"),
    (lambda run: (run / "progress.csv").write_text((run / "progress.csv").read_text()
                                                   + (run / "progress.csv").read_text().splitlines()[-1] + "\n"),
     "not in the order a run writes them"),
    (lambda run: (run / "inputs.json").unlink(), "inputs.json is gone"),
    (lambda run: (run / "inputs.json").write_text((run / "inputs.json").read_text()[:20]), "cannot be read"),
    (_edit_json("inputs.json", []), "not a record of the run's outside files"),
    (_edit_json("inputs.json", {"demos": {"path": 5, "sha256": "x"}}), "not a record of the run's outside files"),
    (lambda run: (run / "config.json").write_bytes(b"\xff\xfe\x00garbage"), "cannot read run config"),
    (_edit_config(schema=True), "not a schema version"),
    (_edit_config(schema=-1), "not a schema version"),
    (_edit_config(schema="2"), "not a schema version"),
])
def test_a_resume_from_files_that_are_not_the_runs_is_refused_in_one_line(trained, tmp_path, monkeypatch, capsys,
                                                                           damage, says):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    damage(run)
    before = files(run)
    code, err = resume(run, monkeypatch, capsys)
    assert code == 2 and says in err and err.count("\n") == 1, err
    assert files(run) == before
