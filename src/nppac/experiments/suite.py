"""Suite files: tasks × algorithms × seeds with shared settings, expanded into runs.

A suite file is TOML::

    name = "halfcheetah-priors"            # optional, default: the file's stem
    tasks = ["halfcheetah", "door-binary"]
    algos = ["nppac", "ppac-nn", "sac"]
    seeds = 5                              # seeds 0..4, or a list: [0, 3, 7]
    skip = ["door-binary/sac"]             # optional: task/algo pairs left out of the product
    shared_init = true                     # optional: one policy initialization per task × seed × σ0 setting

    [settings]                             # every run: any TrainConfig field
    steps = 300_000

    [task.door-binary]                     # runs of one task
    steps = 500_000

    [algo.ppac-nn]                         # runs of one algorithm
    prior_iters = 200

    [variant.nppac-ln]                     # a variant: an algorithm with settings of its own,
    algo = "nppac"                         # listed in algos like an algorithm
    critic_layernorm = true

    [report]                               # how `nppac suite report` summarizes
    last_k = 3
    threshold = { halfcheetah = 3000.0, door-binary = 0.5 }
    adjust = "holm"                        # p-values across the report's comparisons: holm, bh or none

A task is any name ``nppac train --task`` takes (:mod:`nppac.tasks`). A run's configuration is ``settings``,
then its task's table, then its algorithm's, then its variant's (a later table wins), each value typed as every
source's are; relative ``demos`` and ``prior`` paths are taken from the suite file's directory. Each run lives in
``OUT/task/algo/seed-S``, a variant's in ``OUT/task/VARIANT/seed-S``: reports and ``--only`` treat a variant as
an algorithm of its own.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import math
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nppac.data.loaders import is_minari_id
from nppac.errors import NppacError
from nppac.experiments.stats import ADJUSTMENTS
from nppac.outputs import real_output, write_atomic
from nppac.settings import typed
from nppac.tasks import UnknownTaskError, get_task, list_tasks
from nppac.training import TrainConfig
from nppac.training.algorithms import ALGORITHMS
from nppac.training.config import PATH_FIELDS, current_name, own_settings

Settings = tuple[tuple[str, Any], ...]
"""A table's settings, typed, in the file's order."""

MANIFEST_NAME = "suite.json"
"""The expanded suite, written into the output directory by ``nppac suite run``."""
MANIFEST_FORMAT = "nppac-suite"
"""The ``format`` of a manifest (manifests written before it have none, and are recognized by reading them)."""

_TOP_KEYS = ("name", "tasks", "algos", "seeds", "skip", "shared_init", "settings", "task", "algo", "variant",
             "report")
_SET_BY_SUITE = {"task": "tasks", "algo": "algos", "seed": "seeds"}
_REPORT_KEYS = ("last_k", "threshold", "adjust")


@dataclass(frozen=True)
class RunSpec:
    """One run of a suite: which task, algorithm and seed, and its full training configuration."""

    config: TrainConfig
    """settings < task table < algorithm table, with the run's task, algo and seed."""
    overrides: tuple[str, ...] = ()
    """The ``key=value`` settings applied on top of TrainConfig's defaults, in order."""
    variant: str | None = None
    """The suite's name for a variant of ``config.algo`` (its ``[variant.NAME]`` table); None for the algorithm."""

    @property
    def task(self) -> str:
        return self.config.task

    @property
    def algo(self) -> str:
        """The run's column of the suite: its variant's name, else its algorithm (``config.algo`` trains)."""
        return self.variant or self.config.algo

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def key(self) -> str:
        """``task/algo/seed-S``: the run's name and its directory below the suite's output."""
        return f"{self.task}/{self.algo}/seed-{self.seed}"

    def directory(self, out: str | Path) -> Path:
        return Path(out) / self.task / self.algo / f"seed-{self.seed}"

    def to_json(self) -> dict[str, Any]:
        entry = {"key": self.key, "task": self.task, "algo": self.algo, "seed": self.seed,
                 "overrides": list(self.overrides), "config": self.config.to_dict()}
        return entry | ({"variant": self.variant} if self.variant else {})


@dataclass(frozen=True)
class ReportSettings:
    """How a suite's report summarizes its runs (the suite file's ``[report]`` table)."""

    last_k: int = 3
    """Final performance of a run: the mean of its last K evaluations."""
    thresholds: dict[str, float] = field(default_factory=dict)
    """Task → level of the primary metric whose first crossing is reported (steps to threshold)."""
    adjust: str = "holm"
    """How the p-values of the report's comparisons are adjusted across them: holm (family-wise error rate),
    bh (Benjamini–Hochberg, false discovery rate) or none (:mod:`nppac.experiments.stats`)."""

    def to_json(self) -> dict[str, Any]:
        return {"last_k": self.last_k, "threshold": dict(self.thresholds), "adjust": self.adjust}


@dataclass(frozen=True)
class Suite:
    """A named set of runs: every task × algorithm × seed, each with its own configuration."""

    name: str
    runs: tuple[RunSpec, ...]
    """Seed by seed (all tasks and algorithms of seed 0 first) so that a suite stopped early is balanced."""
    report: ReportSettings = ReportSettings()
    source: str | None = None
    """The suite file it was read from."""
    columns: tuple[str, ...] = ()
    """The algorithms and variants in the order the suite file lists them (``algos``)."""
    shared_init: bool = False
    """Whether runs start from one policy initialization per task, seed and initialization setting
    (:mod:`nppac.experiments.shared_inits`)."""

    @property
    def tasks(self) -> list[str]:
        return list(dict.fromkeys(r.task for r in self.runs))

    @property
    def algos(self) -> list[str]:
        """The columns that have runs, in the suite file's order (a skipped cell does not move its column)."""
        present = dict.fromkeys(r.algo for r in self.runs)
        return [a for a in self.columns if a in present] + [a for a in present if a not in self.columns]

    @property
    def seeds(self) -> list[int]:
        return list(dict.fromkeys(r.seed for r in self.runs))

    def select(self, patterns: Sequence[str]) -> tuple[RunSpec, ...]:
        """The runs whose key (task/algo/seed-S) matches any of the shell-style ``patterns`` (all without any); a
        pattern that matches no run is refused."""
        if not patterns:
            return self.runs
        for pattern in patterns:
            if not any(fnmatch.fnmatchcase(r.key, pattern) for r in self.runs):
                raise NppacError(f"--only {pattern!r} matches no run of suite {self.name}; runs are named "
                                 f"TASK/ALGO/seed-S with tasks {', '.join(self.tasks)} and algorithms "
                                 f"{', '.join(self.algos)} (e.g. --only '{self.tasks[0]}/*')")
        return tuple(r for r in self.runs if any(fnmatch.fnmatchcase(r.key, p) for p in patterns))

    def to_json(self) -> dict[str, Any]:
        return {"format": MANIFEST_FORMAT, "name": self.name, "source": self.source, "tasks": self.tasks,
                "algos": self.algos, "seeds": self.seeds, "report": self.report.to_json(),
                "runs": [r.to_json() for r in self.runs]} | ({"shared_init": True} if self.shared_init else {})

    def fingerprint(self) -> str:
        """sha256 of the suite's name and expanded runs (key, variant and the suite file's settings), files named
        by their file names alone: the same on any machine, changed by any other run or setting."""
        def portable(override: str) -> str:
            key, _, value = override.partition("=")
            return f"{key}={Path(value).name}" if key in PATH_FIELDS else override

        runs = [[r.key, r.variant, [portable(o) for o in r.overrides]] for r in self.runs]
        return hashlib.sha256(json.dumps({"name": self.name, "runs": runs}).encode()).hexdigest()

    def check_output(self, out: str | Path) -> None:
        """Refuse, in one line, an output that is a file, holds the runs of another suite, or is not empty
        without being a suite's output (no manifest)."""
        out = Path(out)
        real_output(out)
        if out.exists() and not out.is_dir():
            raise NppacError(f"{out} is a file; --out must be a directory (new, or this suite's earlier output)")
        if not out.is_dir() or not any(out.iterdir()):
            return
        if not (out / MANIFEST_NAME).exists():
            raise NppacError(f"{out} is not empty and holds no {MANIFEST_NAME}, so it is no suite's output; "
                             "choose a new or empty --out")
        previous = read_manifest(out).name
        if previous != self.name:
            raise NppacError(f"{out} holds the runs of suite {previous!r}, not {self.name!r}; "
                             "choose another --out (or rename the suite)")

    def write_manifest(self, out: str | Path) -> Path:
        """Write the expanded suite to ``OUT/suite.json``; refuses an output that holds another suite."""
        self.check_output(out)
        path = Path(out) / MANIFEST_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_atomic(path, json.dumps(self.to_json(), indent=2) + "\n")


def load_suite(path: str | Path) -> Suite:
    """Read and expand a suite file; every mistake is a one-line :class:`NppacError` naming the file and key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as err:
        raise NppacError(f"cannot read suite file {path}: {err.strerror or err}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise NppacError(f"{path}: not valid TOML: {err}") from None
    return parse_suite(data, source=path)


def parse_suite(data: dict[str, Any], source: str | Path = "<suite>") -> Suite:
    """Expand a suite given as a dict (the parsed TOML); ``source`` names it in errors and anchors relative paths."""
    where = str(source)
    base = Path(source).parent if isinstance(source, Path) else Path.cwd()
    _check_keys(data, _TOP_KEYS, where, "")
    name = data.get("name", Path(where).stem)
    if not isinstance(name, str) or not name.strip() or "/" in name:
        raise NppacError(f"{where}: name must be a non-empty string without '/', got {name!r}")
    tasks = _task_names(data, where)
    task_names = list(dict.fromkeys([*(t.name for t in list_tasks()), *tasks]))
    variants = _variants(data, where, base)
    algos = _names(data, "algos", [*ALGORITHMS, *variants], where)
    seeds = _seeds(data.get("seeds"), where)
    skip = _skip(data.get("skip", []), tasks, algos, where)

    settings = _overrides(_table(data, "settings", where), "[settings]", where, base)
    per_task = _tables(data, "task", task_names, where, base)
    per_algo = _tables(data, "algo", list(ALGORITHMS), where, base)
    # An algorithm's table also applies to its variants.
    trained = [*algos, *(variants[a][0] for a in algos if a in variants)]
    for kind, tables, chosen, listed in (("task", per_task, tasks, "tasks"), ("algo", per_algo, trained, "algos"),
                                         ("variant", variants, algos, "algos")):
        for table_name in tables:
            if table_name not in chosen:
                raise NppacError(f"{where}: [{kind}.{table_name}]: {table_name} is not in the suite's {listed} "
                                 f"({', '.join(dict.fromkeys(chosen))}); add it there or remove the table")
    for label, table in (("[settings]", settings), *((f"[task.{t}]", per_task[t]) for t in per_task)):
        for key, _ in table:
            if not any(ALGORITHMS[a].reads_setting(key) for a in trained if a in ALGORITHMS):
                raise NppacError(f"{where}: {label} {key}: read by none of the suite's algos "
                                 f"({', '.join(dict.fromkeys(trained))}); remove it")
    if len(skip) == len(tasks) * len(algos):
        raise NppacError(f"{where}: skip removes every task/algo pair; the suite would train nothing")

    runs = []
    for seed in seeds:
        for task in tasks:
            for algo in algos:
                if f"{task}/{algo}" in skip:
                    continue
                base_algo, own = variants.get(algo, (algo, ()))
                # A shared table applies where the algorithm reads it; an algorithm's or a variant's, whole.
                shared = [(k, v) for k, v in (*settings, *per_task.get(task, ()))
                          if ALGORITHMS[base_algo].reads_setting(k)]
                values = (*shared, *per_algo.get(base_algo, ()), *own)
                config = TrainConfig(task=task, algo=base_algo, seed=seed).with_values(dict(values))
                spec = RunSpec(config, tuple(f"{k}={_text(v)}" for k, v in values), algo if algo in variants else None)
                try:
                    config.validate()
                except NppacError as err:
                    raise NppacError(f"{where}: run {spec.key}: {err}") from None
                runs.append(spec)
    shared_init = data.get("shared_init", False)
    if not isinstance(shared_init, bool):
        raise NppacError(f"{where}: shared_init must be true or false, got {shared_init!r}")
    return Suite(name, tuple(runs), _report(data, where, tasks), str(source), tuple(algos), shared_init)


def read_manifest(out: str | Path) -> Suite:
    """The suite that ``nppac suite run`` expanded into ``OUT/suite.json``."""
    path = Path(out) / MANIFEST_NAME
    try:
        data = json.loads(path.read_text())
        runs = tuple(RunSpec(TrainConfig.from_dict(r["config"]), tuple(r["overrides"]), r.get("variant"))
                     for r in data["runs"])
        settings = _report({"report": data.get("report", {})}, MANIFEST_NAME, list(dict.fromkeys(r.task for r in runs)))
        return Suite(data["name"], runs, settings, data.get("source"), tuple(data.get("algos", ())),
                     bool(data.get("shared_init", False)))
    except OSError as err:
        raise NppacError(f"cannot read {path}: {err.strerror or err}; "
                         f"is {out} the --out of `nppac suite run`?") from None
    except (ValueError, KeyError, TypeError, NppacError) as err:
        raise NppacError(f"{path} is not a suite manifest ({err.__class__.__name__}: {err}): it was cut or edited; "
                         "restore it from a copy (an export of the suite holds one)") from None


def _check_keys(table: dict[str, Any], known: tuple[str, ...], where: str, prefix: str) -> None:
    for key in table:
        if key not in known:
            raise NppacError(f"{where}: unknown key {prefix}{key}; expected one of: {', '.join(known)}")


def _names(data: dict[str, Any], key: str, known: list[str] | None, where: str) -> list[str]:
    """A non-empty list of names without repeats, each one of ``known`` (None: checked by the caller)."""
    value = data.get(key)
    if value is None:
        example = known[0] if known else "halfcheetah"
        raise NppacError(f"{where}: missing key {key} (a list, e.g. {key} = [{example!r}])")
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise NppacError(f"{where}: {key} must be a non-empty list of names, got {value!r}")
    for name in value:
        if known is not None and name not in known:
            raise NppacError(f"{where}: {key}: unknown name {name!r}; choose from: {', '.join(known)}")
    if len(set(value)) != len(value):
        raise NppacError(f"{where}: {key} lists a name twice: {value}")
    return value


def _task_names(data: dict[str, Any], where: str) -> list[str]:
    """The suite's tasks: registered names, or any other name of a task (a gymnasium id, ``module:function``, an
    entry point), each resolved here so that a mistake is refused before any run."""
    known = [t.name for t in list_tasks()]
    names = _names(data, "tasks", None, where)
    for name in names:
        try:
            get_task(name)
        except UnknownTaskError:
            raise NppacError(f"{where}: tasks: unknown name {name!r}; choose from: {', '.join(known)}, or name "
                             "your own (a gymnasium id, module:function, an entry point of group nppac.tasks)"
                             ) from None
        except NppacError as err:
            raise NppacError(f"{where}: tasks: {err}") from None
    return names


def _skip(value: Any, tasks: list[str], algos: list[str], where: str) -> set[str]:
    """``skip = ["halfcheetah/bc"]``: task/algorithm pairs of the product that the suite leaves out."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise NppacError(f"{where}: skip must be a list of \"task/algo\" strings, got {value!r}")
    pairs = {f"{t}/{a}" for t in tasks for a in algos}
    unknown = [v for v in value if v not in pairs]
    if unknown:
        raise NppacError(f"{where}: skip names {unknown[0]!r}, which is not one of the suite's task/algo pairs")
    return set(value)


def _seeds(value: Any, where: str) -> list[int]:
    """``seeds = N`` means seeds 0..N−1; a list names them."""
    if value is None:
        raise NppacError(f"{where}: missing key seeds (a count, e.g. seeds = 5, or a list of seeds)")
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise NppacError(f"{where}: seeds must be at least 1, got {value}")
        return list(range(value))
    ok = (isinstance(value, list) and value and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                                    for s in value))
    if not ok:
        raise NppacError(f"{where}: seeds must be a count or a non-empty list of non-negative integers, got {value!r}")
    if len(set(value)) != len(value):
        raise NppacError(f"{where}: seeds lists a seed twice: {value}")
    return list(value)


def _table(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise NppacError(f"{where}: {key} must be a table ([{key}]), got {value!r}")
    return value


def _tables(data: dict[str, Any], kind: str, known: list[str], where: str, base: Path) -> dict[str, Settings]:
    """``[task.NAME]`` / ``[algo.NAME]`` tables as typed settings, by name."""
    tables = _table(data, kind, where)
    out = {}
    for name, table in tables.items():
        if name not in known:
            raise NppacError(f"{where}: [{kind}.{name}]: unknown {kind} {name!r}; choose from: {', '.join(known)}")
        if not isinstance(table, dict):
            raise NppacError(f"{where}: {kind}.{name} must be a table ([{kind}.{name}]), got {table!r}")
        out[name] = _overrides(table, f"[{kind}.{name}]", where, base, algo=name if kind == "algo" else None)
    return out


_VARIANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+@-]*")
"""A variant's name is a folder and an ``--only`` pattern's part: no glob characters, separators or spaces
(``std+policy@awac``, a screen's names, are fine)."""


def _variants(data: dict[str, Any], where: str, base: Path) -> dict[str, tuple[str, Settings]]:
    """``[variant.NAME]`` tables: NAME → (the algorithm it varies, its typed settings)."""
    out: dict[str, tuple[str, Settings]] = {}
    for name, table in _table(data, "variant", where).items():
        label = f"[variant.{name}]"
        if not isinstance(table, dict):
            raise NppacError(f"{where}: variant.{name} must be a table ({label}), got {table!r}")
        if not _VARIANT_NAME.fullmatch(name) or name.lower() in (a.lower() for a in (*ALGORITHMS, *out)):
            raise NppacError(f"{where}: {label}: a variant needs a name of its own: letters, digits, '.', '_', "
                             f"'+', '@' and '-', starting with a letter or digit, not an algorithm's or another "
                             f"variant's in any case; got {name!r}")
        algo = table.get("algo")
        if not isinstance(algo, str) or algo not in ALGORITHMS:
            raise NppacError(f"{where}: {label} algo = {algo!r}: name the algorithm it varies "
                             f"({', '.join(ALGORITHMS)})")
        settings = {k: v for k, v in table.items() if k != "algo"}
        out[name] = (str(algo), _overrides(settings, label, where, base, algo=str(algo)))
    return out


def _overrides(table: dict[str, Any], label: str, where: str, base: Path, algo: str | None = None) -> Settings:
    """One table's settings, each typed by its declaration (:func:`nppac.settings.typed`): TrainConfig fields, and
    in the table of one algorithm (``algo``) that algorithm's own settings (awac's ``lam``)."""
    own = {k: a.name for a in ALGORITHMS.values() for k in own_settings(a) if a.name == algo}
    known = [f.name for f in dataclasses.fields(TrainConfig) if f.name != "algo_settings"] + sorted(own)
    pairs = []
    for key, value in table.items():
        key = key if algo is None else current_name(key, algo)
        if key in _SET_BY_SUITE:
            raise NppacError(f"{where}: {label} {key}: set by the suite's {_SET_BY_SUITE[key]} list, not per table")
        if key not in known:
            raise NppacError(f"{where}: {label} {key}: unknown setting; known: {', '.join(known)}")
        if key in PATH_FIELDS:
            if not isinstance(value, str):
                raise NppacError(f"{where}: {label} {key} = {value!r}: expected a string or null "
                                 "(a path: \"path/to/file\")")
            if not is_minari_id(value):
                value = str(base / Path(value).expanduser())
        try:
            pairs.append((key, typed(key, value, TrainConfig.hint(key, algo))))
        except NppacError as err:
            raise NppacError(f"{where}: {label} {err}") from None
    return tuple(pairs)


def _text(value: Any) -> str:
    """A typed setting in ``--set`` syntax (a tuple as ``a,b``), as the suite's listing shows it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return ",".join(str(v) for v in value) if isinstance(value, tuple) else str(value)


def _report(data: dict[str, Any], where: str, task_names: list[str]) -> ReportSettings:
    table = _table(data, "report", where)
    _check_keys(table, _REPORT_KEYS, where, "report.")
    last_k = table.get("last_k", 3)
    if not isinstance(last_k, int) or isinstance(last_k, bool) or last_k < 1:
        raise NppacError(f"{where}: report.last_k must be a positive integer, got {last_k!r}")
    thresholds = table.get("threshold", {})
    if not isinstance(thresholds, dict):
        raise NppacError(f"{where}: report.threshold must be a table of task = level, got {thresholds!r}")
    for task, level in thresholds.items():
        if task not in task_names:
            raise NppacError(f"{where}: report.threshold: {task!r} is not one of the suite's tasks "
                             f"({', '.join(task_names)})")
        if not isinstance(level, (int, float)) or isinstance(level, bool) or not math.isfinite(level):
            raise NppacError(f"{where}: report.threshold.{task} must be a finite number, got {level!r}")
    adjust = table.get("adjust", "holm")
    if adjust not in ADJUSTMENTS:
        raise NppacError(f"{where}: report.adjust must be one of {', '.join(ADJUSTMENTS)} (how the p-values of "
                         f"the report's comparisons are adjusted), got {adjust!r}")
    return ReportSettings(last_k, {t: float(v) for t, v in thresholds.items()}, adjust)
