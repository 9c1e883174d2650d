"""Every setting is typed by its declaration, from every source: a run's config.json, a run or suite TOML,
``--set`` and the Python API. The cases are generated from the declared types of TrainConfig's fields and of
each algorithm's own settings: each source is fed every value of another type, and must refuse it in one line
naming the source and the key, before anything is written."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import pickle
import re
import shutil
import types
import typing
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nppac
from nppac.errors import NppacError
from nppac.experiments import load_suite
from nppac.priors import PRIOR_KINDS, combine_priors, load_prior, make_prior
from nppac.priors.common import SAVED_FIELDS
from nppac.training import TrainConfig
from nppac.training.algorithms import ALGORITHMS
from nppac.training.config import PATH_FIELDS, own_settings
from tests.builders import make_demos, nppac_in_process

HINTS = typing.get_type_hints(TrainConfig)
FIELDS = [f.name for f in dataclasses.fields(TrainConfig)]
OWN = [(a.name, key, typing.get_type_hints(a.settings)[key]) for a in ALGORITHMS.values() for key in own_settings(a)]
"""(algorithm, setting, declared type) of every algorithm's own settings."""

VALUES: list[Any] = ["false", True, 3, 2.5, [3], [2.5, "a"], {"k": 1}, None]
"""One value of each JSON type (a TOML file has no null)."""
TEXTS = ["maybe", "2.5", "3", "1,x", ""]
"""``--set`` texts."""
BOOL_TEXTS = ("true", "false", "1", "0", "yes", "no", "on", "off")


def _parts(hint: Any) -> tuple[Any, bool]:
    """(the type, whether None is allowed) of a declaration ``T`` or ``T | None``."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return hint, False


def fits(value: Any, hint: Any) -> bool:
    """The documented rule: booleans are true/false only; whole numbers ints or floats without a fraction, not
    booleans; numbers ints or floats, not booleans; tuples lists of fitting items (of their length where fixed)."""
    kind, optional = _parts(hint)
    if value is None:
        return optional
    if typing.get_origin(kind) is tuple:
        items = typing.get_args(kind)
        fixed = items[-1] is not Ellipsis
        return isinstance(value, list) and (not fixed or len(value) == len(items)) and \
            all(fits(v, items[i] if fixed else items[0]) for i, v in enumerate(value))
    if typing.get_origin(kind) is dict:
        return isinstance(value, dict)
    if typing.get_origin(kind) is typing.Literal:
        return isinstance(value, str) and value in typing.get_args(kind)
    if kind is bool or isinstance(value, bool):
        return kind is bool and isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) or isinstance(value, float) and value.is_integer()
    if kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, kind)


def text_fits(text: str, hint: Any) -> bool:
    """The rule for ``--set`` texts: the same, after none/null/empty, the boolean words and ``a,b`` lists."""
    kind, optional = _parts(hint)
    if optional and text.lower() in ("none", "null", ""):
        return True
    if typing.get_origin(kind) is tuple:
        items = typing.get_args(kind)
        parts = [p for p in text.split(",") if p.strip()]
        return (items[-1] is Ellipsis or len(parts) == len(items)) and all(text_fits(p, items[0]) for p in parts)
    if kind is bool:
        return text.lower() in BOOL_TEXTS
    if kind in (int, float):
        try:
            return fits(float(text), kind)
        except ValueError:
            return False
    return True


def wrong(hint: Any, values: list[Any]) -> list[Any]:
    return [v for v in values if not fits(v, hint)]


def toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml(v)}" for k, v in value.items()) + "}"
    return repr(value)


def cases(*left_out: str, texts: bool = False) -> list[Any]:
    """(algorithm, key, declared type) of TrainConfig's fields (under sac, or the first algorithm that reads it)
    and of each algorithm's own settings, but ``left_out``; with ``texts``, only those some ``--set`` text does not
    fit."""
    every = [(reader(name), name, HINTS[name]) for name in FIELDS] + OWN
    return [pytest.param(*case, id=f"{case[0]}-{case[1]}") for case in every if case[1] not in left_out
            and (not texts or any(not text_fits(t, case[2]) for t in TEXTS))]


def reader(name: str) -> str:
    """sac, or the first algorithm that reads TrainConfig field ``name``."""
    return next(a for a in ("sac", *ALGORITHMS) if ALGORITHMS[a].reads_setting(name))


def refused_by_cli(monkeypatch, capsys, tmp_path: Path, argv: list[str], *says: str) -> None:
    code, _, err = nppac_in_process(monkeypatch, capsys, *argv, "--quiet", "--out", str(tmp_path / "run"))
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for fragment in ("expected", *says):
        assert fragment in lines[0], lines[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("algo, key, hint", cases())
def test_a_run_config_json_refuses_every_value_of_another_type(algo, key, hint, tmp_path, monkeypatch, capsys):
    stored = TrainConfig(task="hopper", algo=algo).resolved().to_dict()
    path = tmp_path / "config.json"
    for value in wrong(hint, VALUES):
        if key in stored:
            edited = {**stored, key: value}
        else:
            edited = {**stored, "algo_settings": {key: value}}
        path.write_text(json.dumps(edited))
        refused_by_cli(monkeypatch, capsys, tmp_path, ["train", "--config", str(path)], str(path), f"{key} = ")
        (tmp_path / "old").mkdir(exist_ok=True)
        (tmp_path / "old" / "config.json").write_text(json.dumps(edited))
        code, _, err = nppac_in_process(monkeypatch, capsys, "train", "--resume", "--quiet",
                                        "--out", str(tmp_path / "old"))
        assert code == 2 and f"{key} = " in err and err.count("\n") == 1, err
        assert sorted(p.name for p in (tmp_path / "old").iterdir()) == ["config.json"]


@pytest.mark.parametrize("algo, key, hint", cases("algo_settings"))
def test_a_run_toml_refuses_every_value_of_another_type(algo, key, hint, tmp_path, monkeypatch, capsys):
    path = tmp_path / "run.toml"
    for value in wrong(hint, [v for v in VALUES if v is not None]):
        head = "" if key in ("task", "algo") else 'task = "hopper"\n'
        head += "" if key == "algo" else f'algo = "{algo}"\n'
        path.write_text(f"{head}[settings]\n{key} = {toml(value)}\n")
        refused_by_cli(monkeypatch, capsys, tmp_path, ["train", "--config", str(path)], str(path), f"{key} = ")


@pytest.mark.parametrize("algo, key, hint", cases("task", "algo", "seed", "algo_settings"))
def test_a_suite_refuses_every_value_of_another_type(algo, key, hint, tmp_path):
    path = tmp_path / "suite.toml"
    for value in wrong(hint, [v for v in VALUES if v is not None]):
        path.write_text(f'tasks = ["hopper"]\nalgos = ["{algo}"]\nseeds = 1\n[algo.{algo}]\n{key} = {toml(value)}\n')
        with pytest.raises(NppacError) as info:
            load_suite(path)
        assert str(info.value).startswith(f"{path}: [algo.{algo}] {key} = ") and "expected" in str(info.value)


@pytest.mark.parametrize("algo, key, hint", cases("algo_settings", texts=True))
def test_set_refuses_every_text_of_another_type(algo, key, hint, tmp_path, monkeypatch, capsys):
    for text in [t for t in TEXTS if not text_fits(t, hint)]:
        refused_by_cli(monkeypatch, capsys, tmp_path, ["train", "--task", "hopper", "--algo", algo,
                                                       "--set", f"{key}={text}"], f"--set {key}=")


@pytest.mark.parametrize("algo, key, hint", cases())
def test_the_api_refuses_every_value_of_another_type(algo, key, hint, tmp_path):
    for value in wrong(hint, VALUES):
        if key in HINTS:
            with pytest.raises(NppacError, match=f"^{key} = .*: expected "):
                TrainConfig(**{key: value})
        if key not in ("algo", "prior", "demos", "algo_settings"):  # Model's algo names it; prior and demos
            with pytest.raises(NppacError, match=f"^{key} = .*: expected "):  # may be objects
                nppac.Model(**{"task": "hopper", "algo": algo, key: value})
    assert not list(tmp_path.iterdir())


def test_a_whole_float_is_a_whole_number_in_every_source_and_a_fraction_is_not(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**TrainConfig(algo="sac").to_dict(), "steps": 3e3}))
    (tmp_path / "run.toml").write_text('algo = "sac"\nsteps = 3e3\n')
    (tmp_path / "suite.toml").write_text('tasks = ["hopper"]\nalgos = ["sac"]\nseeds = 1\n[settings]\nsteps = 3e3\n')
    for cfg in (TrainConfig.from_file(tmp_path / "config.json")[0], TrainConfig.from_file(tmp_path / "run.toml")[0],
                load_suite(tmp_path / "suite.toml").runs[0].config, TrainConfig().with_overrides(["steps=3e3"]),
                nppac.SAC("hopper", steps=3000.0).config, TrainConfig(steps=3e3)):
        assert cfg.steps == 3000 and type(cfg.steps) is int
    for source in (lambda: TrainConfig(steps=3000.5), lambda: TrainConfig().with_overrides(["steps=3000.5"]),
                   lambda: TrainConfig(seed=True), lambda: TrainConfig().with_overrides(["seed=true"])):
        with pytest.raises(NppacError, match="expected a whole number"):
            source()
    assert TrainConfig(actor_hidden=[64.0, 64], alpha=1).actor_hidden == (64, 64)
    assert TrainConfig(alpha=1).alpha == 1.0 and type(TrainConfig(alpha=1).alpha) is float
    assert [TrainConfig().with_overrides([f"auto_alpha={t}"]).auto_alpha for t in BOOL_TEXTS] == [True, False] * 4


def test_a_string_false_never_allows_a_pickle_to_run(tmp_path, monkeypatch, capsys):
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    demos = tmp_path / "demos.pkl"
    demos.write_bytes(pickle.dumps([Payload()]))
    stored = {**TrainConfig(task="hopper", algo="sac-bc").resolved().to_dict(), "demos": str(demos),
              "allow_pickle": "false"}
    (tmp_path / "config.json").write_text(json.dumps(stored))
    code, _, err = nppac_in_process(monkeypatch, capsys, "train", "--config", str(tmp_path / "config.json"),
                                    "--quiet", "--out", str(tmp_path / "run"))
    assert not marker.exists(), "the pickle was loaded"
    assert code == 2 and "allow_pickle = 'false': expected true or false" in err and err.count("\n") == 1, err
    run = tmp_path / "old"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(stored))
    code, _, err = nppac_in_process(monkeypatch, capsys, "train", "--resume", "--quiet", "--out", str(run))
    assert code == 2 and "allow_pickle = 'false'" in err, err
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_no_setting_takes_a_non_finite_number_from_any_source(tmp_path):
    floats = [k for k, h in HINTS.items() if float in typing.get_args(h) or h is float]
    assert len(floats) > 10
    for key in floats:
        for value in (math.nan, math.inf, -math.inf):
            with pytest.raises(NppacError, match=f"^{key} = .*: expected a finite number"):
                TrainConfig(**{key: value})
    with pytest.raises(NppacError, match="expected a finite number"):
        nppac.AWAC("hopper", lam=math.inf)
    with pytest.raises(NppacError, match="expected a finite number"):
        TrainConfig(algo="sac", auto_alpha=True).with_overrides(["target_entropy=nan"])


@pytest.mark.parametrize("settings, says", [
    ({"seed": -1}, "seed=-1 is out of range"), ({"seed": 2**70}, "is out of range"),
    ({"love_seed": -7}, "love_seed=-7 is out of range"), ({"critic_hidden": []}, "critic_hidden=() is empty"),
])
def test_seeds_and_layer_lists_outside_what_a_run_can_use_are_refused(settings, says):
    with pytest.raises(NppacError, match=re.escape(says)):
        TrainConfig(**settings).validate()


@pytest.fixture(scope="module")
def saved_priors(tmp_path_factory) -> dict[str, Path]:
    """A tiny GP, NN and mean-std prior, saved."""
    rng = np.random.default_rng(0)
    demos = make_demos(rng.normal(size=(30, 3)), np.tanh(rng.normal(size=(30, 2))))
    root, priors = tmp_path_factory.mktemp("priors"), {}
    for kind, settings in (("gp", {"iters": 3}), ("nn", {"iters": 2, "hidden": (8,)})):
        priors[kind] = make_prior(kind, **settings)
        priors[kind].fit(demos)
    priors["gp-mean-nn-std"] = combine_priors(priors["gp"], priors["nn"])
    for kind, prior in priors.items():
        prior.save(root / kind)
    return {kind: root / kind for kind in priors}


def declared(kind: str, saved: dict[str, Any]) -> list[tuple[str, Any]]:
    """(key, declared type) of every field of a saved prior's settings.json (``saved``) and of its config."""
    config = typing.get_type_hints(PRIOR_KINDS[kind][1]).items() if kind in PRIOR_KINDS else ()
    return [(key, hint) for key, hint in SAVED_FIELDS.items() if key in saved] + \
        [(f"config.{key}", hint) for key, hint in config]


@pytest.mark.parametrize("kind", ["gp", "nn", "gp-mean-nn-std"])
def test_a_saved_prior_settings_json_refuses_every_value_of_another_type(kind, saved_priors, tmp_path):
    saved = json.loads((saved_priors[kind] / "settings.json").read_text())
    assert set(saved) <= set(SAVED_FIELDS)  # every field written is declared
    folder = tmp_path / kind
    shutil.copytree(saved_priors[kind], folder)
    for key, hint in declared(kind, saved):
        table, _, field = key.rpartition(".")
        for value in wrong(hint, VALUES):
            edited = copy.deepcopy(saved)
            (edited[table] if table else edited)[field] = value
            (folder / "settings.json").write_text(json.dumps(edited))
            with pytest.raises(NppacError) as info:
                load_prior(folder)
            assert str(info.value).startswith(f"{folder / 'settings.json'}: {key} = {value!r}: expected "), info.value
            assert "\n" not in str(info.value)
    assert load_prior(saved_priors[kind]).kind == kind


def test_every_named_choice_is_refused_when_it_names_none_before_any_work():
    """A setting whose string names a choice (a kernel, an actor head, a convention) is refused by validate(),
    before a run fits its prior: every string setting but the paths."""
    strings = [name for name in FIELDS if _parts(HINTS[name])[0] is str and name not in PATH_FIELDS]
    assert "prior_kernel" in strings and len(strings) > 10
    for name in strings:
        with pytest.raises(NppacError, match="cosine"):
            TrainConfig(**{"algo": reader(name), name: "cosine"}).validate()
