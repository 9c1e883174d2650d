"""Every bad input ends the same way: exit code 2, one line on stderr, nothing written.

One row per refusal: a function that writes a crafted input into a fresh folder and
returns the command line, the fragments the one ``error: ...`` line must contain, and
the outputs that must not exist afterwards. Commands run in this process
(:func:`nppac.cli.main`, with the stderr logging the console entry point sets up), so
the whole table takes seconds.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import pickle
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from nppac.cli import main
from nppac.data import Demonstrations, Trajectory, save_npz
from nppac.priors import fit_prior
from nppac.training import TrainConfig
from tests.builders import flip_bit, raw_episodes, torch_threads, write_minari


@dataclass
class Context:
    """What a row may use: its folder, priors saved once for the module, and monkeypatch."""

    folder: Path
    priors: dict[str, Path]
    monkeypatch: pytest.MonkeyPatch
    kept: list[object] = field(default_factory=list)
    """What a row holds open while its command runs (a lock of another process)."""

    def prior_dir(self, kind: str) -> Path:
        """A private copy of the saved ``kind`` prior, free to damage."""
        return Path(shutil.copytree(self.priors[kind], self.folder / kind))


@dataclass(frozen=True)
class Refusal:
    name: str
    setup: Callable[[Context], list[str]]
    """Writes the inputs into ``ctx.folder`` and returns the command line (without ``nppac``)."""
    says: tuple[str, ...] = ()
    """Fragments of the one stderr line (paths relative to the folder are made absolute)."""
    absent: tuple[str, ...] = ()
    """Outputs, relative to the folder, that must not exist afterwards."""


# Inputs ------------------------------------------------------------------------------------------

def toy_demos(n: int = 30, obs_dim: int = 3, act_dim: int = 2) -> Demonstrations:
    rng = np.random.default_rng(0)
    states = rng.normal(size=(n, obs_dim)).astype(np.float32)
    actions = np.tanh(states[:, :act_dim])
    traj = Trajectory(states, actions, np.zeros(n, np.float32), np.zeros(n, bool), np.arange(n) == n - 1,
                      states.copy())
    return Demonstrations([traj])


def npz_with(ctx: Context, **changes: np.ndarray) -> Path:
    """nppac's .npz of the toy set with some entries replaced (as a damaged or hand-made file would be)."""
    good = save_npz(toy_demos(), ctx.folder / "good.npz")
    with np.load(good) as z:
        arrays = {key: z[key] for key in z.files}
    arrays.update(changes)
    path = ctx.folder / "demos.npz"
    np.savez(path, **arrays)
    return path


def meta(**header: object) -> np.ndarray:
    return np.array(json.dumps(header))


def inspect_npz(**changes: np.ndarray) -> Callable[[Context], list[str]]:
    return lambda ctx: ["data", "inspect", str(npz_with(ctx, **changes))]


def hdf5_with_terminal(value: float) -> Callable[[Context], list[str]]:
    def setup(ctx: Context) -> list[str]:
        path = ctx.folder / "demos.h5"
        with h5py.File(path, "w") as f:
            f["observations"], f["actions"], f["rewards"] = np.zeros((6, 3)), np.zeros((6, 2)), np.zeros(6)
            f["terminals"] = np.array([0, 0, value, 0, 0, 1.0])
        return ["data", "inspect", str(path)]
    return setup


def minari_dict_observations(ctx: Context) -> list[str]:
    return ["data", "inspect", str(write_minari(ctx.folder, ctx.monkeypatch, raw_episodes(), dict_observations=True))]


def dense_hammer(ctx: Context) -> list[str]:
    rng = np.random.default_rng(0)
    path = ctx.folder / "hammer.pkl"
    with open(path, "wb") as f:
        pickle.dump([{"observations": rng.normal(size=(10, 46)), "actions": rng.uniform(-1, 1, (10, 26)),
                      "rewards": rng.normal(size=10)}], f)
    return ["data", "inspect", str(path), "--task", "hammer-binary", "--allow-pickle"]


def convert_to(out: str, prepare: Callable[[Context], None] = lambda ctx: None) -> Callable[[Context], list[str]]:
    def setup(ctx: Context) -> list[str]:
        source = save_npz(toy_demos(), ctx.folder / "in.npz")
        prepare(ctx)
        return ["data", "convert", str(source), str(ctx.folder / out)]
    return setup


def read_only(ctx: Context) -> None:
    folder = ctx.folder / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:  # root writes anywhere; let the check see the folder as a user would
        real_access = os.access
        ctx.monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == folder else real_access(p, mode))


def states_file(ctx: Context, values: np.ndarray) -> Path:
    path = ctx.folder / "states.npy"
    np.save(path, values)
    return path


_FOUR_STATES = np.zeros((4, 3), np.float32)


def predict(prior_dir: Callable[[Context], Path], states: np.ndarray = _FOUR_STATES,
            out: str = "p.npz", *extra: str) -> Callable[[Context], list[str]]:
    def setup(ctx: Context) -> list[str]:
        return ["prior", "predict", "--prior", str(prior_dir(ctx)), "--states", str(states_file(ctx, states)),
                "--out", str(ctx.folder / out), *extra]
    return setup


def nan_weights(ctx: Context) -> Path:
    prior_dir = ctx.prior_dir("nn")
    tensors = load_file(str(prior_dir / "weights.safetensors"))
    tensors["mean_head.bias"][0] = float("nan")
    save_file(tensors, str(prior_dir / "weights.safetensors"))
    return prior_dir


def truncated_weights(ctx: Context) -> Path:
    prior_dir = ctx.prior_dir("gp")
    weights = prior_dir / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    return prior_dir


def edited_obs_dim(ctx: Context) -> Path:
    prior_dir = ctx.prior_dir("nn")
    settings = json.loads((prior_dir / "settings.json").read_text())
    settings["obs_dim"] = 5
    (prior_dir / "settings.json").write_text(json.dumps(settings))
    return prior_dir


def zero_state_scale(ctx: Context) -> Path:
    prior_dir = ctx.prior_dir("gp")
    tensors = load_file(str(prior_dir / "weights.safetensors"))
    tensors["x_scale"][1] = 0.0
    save_file(tensors, str(prior_dir / "weights.safetensors"))
    return prior_dir


def integer_weights(ctx: Context) -> Path:
    prior_dir = ctx.prior_dir("nn")
    tensors = load_file(str(prior_dir / "weights.safetensors"))
    tensors["x_scale"] = tensors["x_scale"].to(torch.int64)
    save_file(tensors, str(prior_dir / "weights.safetensors"))
    return prior_dir


def gpytorch_import(**changes: torch.Tensor) -> Callable[[Context], list[str]]:
    """``prior import`` of a 3→2-dim multitask GP's state dict with some tensors replaced."""
    def setup(ctx: Context) -> list[str]:
        task, data = "covar_module.task_covar_module.", "covar_module.data_covar_module."
        state = {task + "covar_factor": torch.ones(2, 1), task + "raw_var": torch.zeros(2),
                 data + "raw_lengthscale": torch.zeros(1, 3), "mean_module.base_means.0.constant": torch.zeros(1),
                 "mean_module.base_means.1.constant": torch.zeros(1), "likelihood.raw_task_noises": torch.zeros(2),
                 "likelihood.raw_noise": torch.zeros(1)}
        torch.save(state | {(data if "lengthscale" in k else task) + k: v for k, v in changes.items()},
                   ctx.folder / "gp.pt")
        data = save_npz(toy_demos(), ctx.folder / "toy.npz")
        return ["prior", "import", "--gpytorch", str(ctx.folder / "gp.pt"), "--data", str(data), "--kernel", "rbf",
                "--out", str(ctx.folder / "prior")]
    return setup


def little_memory(ctx: Context) -> None:
    ctx.monkeypatch.setattr("nppac.priors.gp.available_memory", lambda device: 50_000)


def fit_to(out: str, *extra: str,
           prepare: Callable[[Context], None] = lambda ctx: None) -> Callable[[Context], list[str]]:
    def setup(ctx: Context) -> list[str]:
        data = save_npz(toy_demos(), ctx.folder / "toy.npz")
        prepare(ctx)
        return ["prior", "fit", "--data", str(data), "--kind", "nn", "--iters", "2", "--out", str(ctx.folder / out),
                *extra]
    return setup


def folder_of_notes(ctx: Context) -> None:
    (ctx.folder / "stuff").mkdir()
    (ctx.folder / "stuff" / "notes.txt").write_text("not a prior")


def folder_of_settings(ctx: Context) -> None:
    (ctx.folder / "stuff").mkdir()
    (ctx.folder / "stuff" / "settings.json").write_text('{"kind": "editor settings"}')


def run_with_checkpoint(write: Callable[[Path], None], algo: str = "sac") -> Callable[[Context], Path]:
    """A run directory as `nppac train` leaves it (config.json), with a crafted checkpoint.pt."""
    def make(ctx: Context) -> Path:
        run = ctx.folder / "run"
        run.mkdir()
        TrainConfig(task="hopper", algo=algo, steps=2000).validate().save(run / "config.json")
        write(run / "checkpoint.pt")
        return run
    return make


def saved_run(path: Path, **changes: object) -> None:
    """A checkpoint as a run writes it after its first epoch, with its second row (the agent a stand-in)."""
    torch.save({"epoch": 1, "env_steps": 1000, "wall_s": 1.0, "agent": {"w": torch.zeros(3)}, "rng": {},
                "state": {"epoch": 1, "gradient_steps": 1000, "rows": 2},
                "replay": {"ptr": 0, "size": 1000, "capacity": 1000, "storage": {"reward": torch.zeros(1000)}},
                **changes}, path)


def bit_flipped(path: Path) -> None:
    saved_run(path)
    flip_bit(path, lambda infos: max(infos, key=lambda i: i.file_size))


def checkpoint_gone(ctx: Context) -> list[str]:
    run = run_with_checkpoint(lambda path: None)(ctx)
    (run / "progress.csv").write_text("phase,epoch,env_steps,gradient_steps\ninit,0,0,0\n")
    return ["train", "--resume", "--quiet", "--out", str(run)]


def random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(4096))


def code_running_pickle(path: Path) -> None:
    class Trap:
        def __reduce__(self):
            return (Path.touch, (path.parent / "ran",))

    with open(path, "wb") as f:
        pickle.dump({"epoch": Trap()}, f)


def without_keys(path: Path) -> None:
    torch.save({"epoch": 1}, path)


def resume(checkpoint: Callable[[Path], None]) -> Callable[[Context], list[str]]:
    return lambda ctx: ["train", "--resume", "--quiet", "--out", str(run_with_checkpoint(checkpoint)(ctx))]


def resume_with_prior(checkpoint: Callable[[Path], None]) -> Callable[[Context], list[str]]:
    return lambda ctx: ["train", "--resume", "--quiet", "--out", str(run_with_checkpoint(checkpoint, "ppac-nn")(ctx))]


def export(checkpoint: Callable[[Path], None], out: str = "expert.safetensors") -> Callable[[Context], list[str]]:
    return lambda ctx: ["expert", "export", "--run", str(run_with_checkpoint(checkpoint)(ctx)),
                        "--out", str(ctx.folder / out)]


def train_with(*settings: str) -> Callable[[Context], list[str]]:
    sets = [x for setting in settings for x in ("--set", setting)]
    return lambda ctx: ["train", "--task", "halfcheetah", "--algo", "sac", "--out", str(ctx.folder / "run"), *sets]


def edited_config(**fields: object) -> Callable[[Context], list[str]]:
    """A run whose config.json was edited after its checkpoint was written."""
    def setup(ctx: Context) -> list[str]:
        run = ctx.folder / "run"
        run.mkdir()
        cfg = TrainConfig(task="halfcheetah", algo="sac", steps=2000).resolved()
        torch.save({"epoch": 1, "env_steps": 1000, "wall_s": 1.0, "state": {}, "agent": {}, "replay": {}, "rng": {},
                    "config": json.dumps(cfg.to_dict())}, run / "checkpoint.pt")
        (run / "config.json").write_text(json.dumps({**cfg.to_dict(), **fields}))
        return ["train", "--resume", "--quiet", "--out", str(run)]
    return setup


def resume_as(*argv: str) -> Callable[[Context], list[str]]:
    """``nppac train --resume`` of a halfcheetah/sac run (seed 0) with options that define another run."""
    def setup(ctx: Context) -> list[str]:
        run = ctx.folder / "run"
        run.mkdir()
        TrainConfig(task="halfcheetah", algo="sac", steps=1000).validate().save(run / "config.json")
        return ["train", "--resume", "--quiet", "--out", str(run), *argv]
    return setup


def trainer_holds(directory: str, *argv: str) -> Callable[[Context], list[str]]:
    """``nppac train ARGV --out DIRECTORY`` while another trainer (pid 4242) holds the directory's lock."""
    def setup(ctx: Context) -> list[str]:
        lock = (ctx.folder / f".{directory}.lock").open("w")
        fcntl.flock(lock, fcntl.LOCK_EX)
        lock.write("4242\n")
        lock.flush()
        ctx.kept.append(lock)
        return ["train", *argv, "--quiet", "--out", str(ctx.folder / directory)]
    return setup


def compare_cut_run(ctx: Context) -> list[str]:
    """``nppac compare`` of a run whose last row was cut mid-number (0.976797 written as far as 0.97)."""
    run = ctx.folder / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"task": "hopper", "algo": "sac", "seed": 0}))
    (run / "progress.csv").write_text("epoch,env_steps,eval_return\n0,0,0.5\n1,100,0.97")
    return ["compare", str(run), "--out", str(ctx.folder / "c.png")]


def compare_beside_notes(ctx: Context) -> list[str]:
    """``nppac compare --out c.png`` where ``c.json``, which the figure's numbers would replace, is the user's."""
    run = ctx.folder / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"task": "hopper", "algo": "sac", "seed": 0}))
    (run / "progress.csv").write_text("epoch,env_steps,eval_return\n0,0,0.5\n1,100,0.9\n")
    (ctx.folder / "c.json").write_text('{"my": "notes"}')
    return ["compare", str(run), "--out", str(ctx.folder / "c.png")]


def suite_into(prepare: Callable[[Path], None], *flags: str) -> Callable[[Context], list[str]]:
    """``suite run`` of a one-run suite named "mine" into an output that ``prepare`` made."""
    def setup(ctx: Context) -> list[str]:
        path = ctx.folder / "mine.toml"
        path.write_text('tasks = ["halfcheetah"]\nalgos = ["sac"]\nseeds = 1\n[settings]\nsteps = 1000\n')
        prepare(ctx.folder / "out")
        return ["suite", "run", str(path), "--out", str(ctx.folder / "out"), *flags]
    return setup


def other_suite(out: Path) -> None:
    out.mkdir()
    (out / "suite.json").write_text(json.dumps({"name": "theirs", "runs": []}))


def halfcheetah_suite(ctx: Context, *flags: str) -> list[str]:
    """``suite report`` of the manifest of a one-run halfcheetah suite, with ``flags``."""
    from nppac.experiments import parse_suite

    parse_suite({"name": "mine", "tasks": ["halfcheetah"], "algos": ["sac"], "seeds": 1}).write_manifest(
        ctx.folder / "out")
    return ["suite", "report", str(ctx.folder / "out"), *flags]


def expert_never_trains(ctx: Context) -> list[str]:
    """``expert train --steps 0``, where a training would be a failure of its own."""
    def train(*args: object, **kwargs: object) -> None:
        raise AssertionError("trained")

    ctx.monkeypatch.setattr("nppac.training.experts.train_expert", train)
    return ["expert", "train", "--task", "halfcheetah", "--steps", "0", "--out", str(ctx.folder / "e")]


def run_file_not_utf8(ctx: Context) -> list[str]:
    path = ctx.folder / "run.toml"
    path.write_bytes(b'task = "halfcheetah"\nalgo = "sac"\n# \xff\n')
    return ["train", "--config", str(path), "--out", str(ctx.folder / "run")]


def notes_in(out: Path, name: str = "notes.txt") -> None:
    out.mkdir(exist_ok=True)
    (out / name).write_text("mine")


def video_run(render_error: Exception | None) -> Callable[[Context], list[str]]:
    """``evaluate --video`` of a run (its config and an untrained actor) where the environment's frame raises
    ``render_error`` (None: it renders, and moviepy is missing)."""
    def setup(ctx: Context) -> list[str]:
        from nppac.agents.networks import Actor, save_actor

        TrainConfig(task="halfcheetah", algo="sac").save(ctx.folder / "config.json")
        save_actor(Actor(17, 6, (8,), "tanh_gaussian"), ctx.folder / "actor.safetensors")

        class Frames:
            def render(self) -> np.ndarray:
                if render_error is not None:
                    raise render_error
                return np.zeros((4, 4, 3), np.uint8)

            def close(self) -> None:
                pass

        ctx.monkeypatch.setattr("nppac.training.envs.make_env", lambda *args, **kwargs: Frames())
        ctx.monkeypatch.setitem(sys.modules, "moviepy", None)
        return ["evaluate", str(ctx.folder), "--video", str(ctx.folder / "v.mp4")]
    return setup


def export_into_a_link(ctx: Context) -> list[str]:
    other_suite(ctx.folder / "out")
    other_suite(ctx.folder / "copy")
    (ctx.folder / "copy" / "halfcheetah").symlink_to(ctx.folder)
    return ["suite", "export", str(ctx.folder / "out"), str(ctx.folder / "copy")]


class UnboundedActions(gym.Env):
    """An environment whose actions have no bounds: nppac's policies cannot act in it."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)


def unbounded_task() -> object:
    """``--task tests.test_refusals:unbounded_task``: registers a task on :class:`UnboundedActions`."""
    from nppac.tasks import register_task

    return register_task("unbounded", UnboundedActions, horizon=10)


def wide_actions(ctx: Context) -> list[str]:
    """Demonstrations of halfcheetah's dimensions whose actions lie in [-2, 2]: half of the values outside the box."""
    rng = np.random.default_rng(0)
    n = 40
    states = rng.normal(size=(n, 17)).astype(np.float32)
    traj = Trajectory(states, rng.uniform(-2, 2, (n, 6)).astype(np.float32), np.zeros(n, np.float32),
                      np.zeros(n, bool), np.arange(n) == n - 1, states.copy())
    path = save_npz(Demonstrations([traj]), ctx.folder / "wide.npz")
    return ["train", "--task", "halfcheetah", "--algo", "nppac", "--demos", str(path), "--out", str(ctx.folder / "run")]


def missing_minari(ctx: Context) -> list[str]:
    ctx.monkeypatch.setenv("MINARI_DATASETS_PATH", str(ctx.folder / "store"))
    return ["data", "inspect", "minari:D4RL/pen/human-v2"]


# The table ---------------------------------------------------------------------------------------

REFUSALS = [
    # Data that crashed the readers
    Refusal("npz string field", inspect_npz(rewards=np.array(["a"] * 30)), ("demos.npz", "'rewards'", "not numeric")),
    Refusal("npz meta without task", inspect_npz(meta=meta(schema="nppac-demos", version=1, meta={})),
            ("'meta'", "no 'task' entry")),
    Refusal("npz meta not an object", inspect_npz(meta=np.array("[1, 2]")), ("'meta'", "JSON list")),
    Refusal("npz float lengths", inspect_npz(lengths=np.array([30.0])), ("'lengths'", "integers")),
    Refusal("npz negative lengths", inspect_npz(lengths=np.array([45, -15])), ("trajectory 1 has length -15", "≥ 0")),
    Refusal("minari dict observations", minari_dict_observations,
            ("'observations'", "Dict space", "keys goal, joints")),
    Refusal("demonstrations mostly outside the action box", wide_actions,
            ("wide.npz", "lie outside [-1, 1] (max |a| = 1.999; 50.4% of 240)", "more than the 10% that learning clips",
             "--set max_clipped_actions=1"), ("run",)),
    Refusal("a Minari id not in the local store", missing_minari,
            ("minari:D4RL/pen/human-v2: not in the local Minari store", "nppac never downloads",
             "minari download D4RL/pen/human-v2")),
    Refusal("demonstrations of other dimensions than a gymnasium task",
            lambda ctx: ["data", "inspect", str(save_npz(toy_demos(), ctx.folder / "toy.npz")), "--task",
                         "Pendulum-v1"],
            ("toy.npz", "'actions': has 2 dims but task 'Pendulum-v1' expects 1",)),
    # Tasks nppac cannot learn in
    Refusal("a discrete gymnasium task", lambda ctx: ["train", "--task", "CartPole-v1", "--algo", "sac", "--out",
                                                     str(ctx.folder / "run")],
            ("task 'CartPole-v1': action space Discrete(2) is discrete",), ("run",)),
    Refusal("an unbounded action space", lambda ctx: ["train", "--task", "tests.test_refusals:unbounded_task",
                                                     "--algo", "sac", "--out", str(ctx.folder / "run")],
            ("task 'unbounded'", "is unbounded (infinite low or high)", "finite action bounds"), ("run",)),
    Refusal("module:function that returns no task", lambda ctx: ["train", "--task", "tests.test_refusals:toy_demos",
                                                                "--algo", "sac", "--out", str(ctx.folder / "run")],
            ("tests.test_refusals:toy_demos returned Demonstrations; return the Task",), ("run",)),
    Refusal("a task nppac does not know", lambda ctx: ["train", "--task", "halfcheeta", "--algo", "sac", "--out",
                                                      str(ctx.folder / "run")],
            ("unknown task 'halfcheeta'", "a gymnasium id (e.g. HalfCheetah-v5), module:function"), ("run",)),
    # Data accepted that should not be
    Refusal("hdf5 terminal 0.5", hdf5_with_terminal(0.5), ("demos.h5", "'terminals'", "other than 0/1 (e.g. 0.5)")),
    Refusal("hdf5 terminal 7", hdf5_with_terminal(7.0), ("'terminals'", "other than 0/1 (e.g. 7.0)")),
    Refusal("observation beyond float32", inspect_npz(observations=np.full((30, 3), 1e300)),
            ("'observations'", "NaN/Inf", "float32")),
    Refusal("complex rewards", inspect_npz(rewards=np.zeros(30) + 1j), ("'rewards'", "complex")),
    Refusal("dense rewards for a task without predicate", dense_hammer, ("hammer.pkl", "not binary", "hammer-binary")),
    Refusal("predict NaN states", predict(lambda ctx: ctx.prior_dir("gp"), np.full((4, 3), np.nan, np.float32)),
            ("states.npy", "NaN/Inf"), ("p.npz",)),
    Refusal("prior with NaN weights", predict(nan_weights), ("weights.safetensors", "'mean_head.bias'", "NaN"),
            ("p.npz",)),
    Refusal("prior with a state scale of 0", predict(zero_state_scale), ("weights.safetensors", "x_scale[1] = 0",
                                                                         "must be positive"), ("p.npz",)),
    Refusal("prior weights of an integer dtype", predict(integer_weights),
            ("weights.safetensors", "'x_scale' has dtype int64", "real floating-point"), ("p.npz",)),
    Refusal("gpytorch lengthscale that rounds to 0", gpytorch_import(raw_lengthscale=torch.tensor([[0.0, -800, 0]])),
            ("gp.pt", "lengthscale[1] = 0, but it must be positive", "softplus rounds it to 0"), ("prior",)),
    Refusal("gpytorch complex tensor", gpytorch_import(covar_factor=torch.ones(2, 1, dtype=torch.complex64)),
            ("gp.pt", "'covar_module.task_covar_module.covar_factor' has dtype complex64"), ("prior",)),
    Refusal("a GP fit larger than the memory left", fit_to("prior", "--kind", "gp", "--fit-subset", "0",
                                                           prepare=little_memory),
            ("a GP fit on 30 states needs about 0.089 MiB for learning on 30 states", "only 0.048 MiB are available",
             "--fit-subset 21"), ("prior",)),
    # Files that crashed
    Refusal("truncated prior weights", predict(truncated_weights),
            ("weights.safetensors", "not a readable safetensors"), ("p.npz",)),
    Refusal("prior obs_dim edited", predict(edited_obs_dim), ("weights.safetensors", "do not belong together"),
            ("p.npz",)),
    Refusal("predict into a missing folder", predict(lambda ctx: ctx.prior_dir("nn"), out="missing/p.npz"),
            ("missing", "does not exist"), ("missing",)),
    Refusal("predict on cuda without cuda",
            predict(lambda ctx: ctx.prior_dir("nn"), np.zeros((4, 3), np.float32), "p.npz", "--device", "cuda"),
            ("device 'cuda'", "use cpu"), ("p.npz",)),
    Refusal("fit on tpu", fit_to("prior", "--device", "tpu"), ("device 'tpu'",), ("prior",)),
    Refusal("fit onto an existing file", fit_to("toy.npz"), ("toy.npz is a file",)),
    Refusal("fit into a folder of other files", fit_to("stuff", prepare=folder_of_notes),
            ("stuff exists and is not empty",), ("stuff/settings.json", "stuff/weights.safetensors")),
    Refusal("fit into a folder whose settings.json is no prior's", fit_to("stuff", prepare=folder_of_settings),
            ("stuff exists and is not empty, and it is not an earlier prior",), ("stuff/weights.safetensors",)),
    Refusal("convert onto a directory", convert_to("existing", lambda ctx: (ctx.folder / "existing").mkdir()),
            ("existing is a directory",), ("existing/out.npz",)),
    Refusal("convert into a read-only folder", convert_to("locked/out.npz", read_only), ("locked", "no permission"),
            ("locked/out.npz",)),
    Refusal("convert into a missing folder", convert_to("missing/out.npz"), ("missing", "does not exist"),
            ("missing",)),
    Refusal("resume from random bytes", resume(random_bytes), ("checkpoint.pt", "not a complete checkpoint"),
            ("run/progress.csv",)),
    Refusal("resume from a checkpoint without its entries", resume(without_keys),
            ("checkpoint.pt", "no entry 'env_steps'"), ("run/progress.csv",)),
    Refusal("resume from a checkpoint with a flipped bit", resume(bit_flipped),
            ("checkpoint.pt is not the state that was saved", "fails its CRC check", "start over with a new --out"),
            ("run/progress.csv",)),
    Refusal("resume from a checkpoint holding NaN", resume(lambda p: saved_run(p, agent={"w": torch.tensor([np.nan])})),
            ("checkpoint.pt", "agent.w holds NaN or Inf"), ("run/progress.csv",)),
    Refusal("resume with replay sizes that disagree",
            resume(lambda p: saved_run(p, replay={"ptr": 900, "size": 900, "capacity": 1000,
                                                  "storage": {"reward": torch.zeros(1000)}})),
            ("its replay buffer holds reward 1000 transitions where its size is 900",), ("run/progress.csv",)),
    Refusal("resume without the checkpoint its rows were saved with", checkpoint_gone,
            ("checkpoint.pt is gone, but", "progress.csv holds 1 rows"), ("run/provenance.json",)),
    Refusal("resume with the rows of progress.csv gone", resume(saved_run),
            ("progress.csv holds 0 rows up to epoch 1", "2 rows were written"), ("run/progress.csv",)),
    Refusal("resume with the run's prior gone", resume_with_prior(lambda p: saved_run(p, prior_sha256="0" * 64)),
            ("the run's prior", "prior is gone", "a prior fitted again would be another one"), ("run/prior",)),
    Refusal("export from random bytes", export(random_bytes), ("checkpoint.pt", "not a complete checkpoint"),
            ("expert.safetensors",)),
    Refusal("export from a code-running pickle", export(code_running_pickle),
            ("checkpoint.pt", "not a complete checkpoint"), ("expert.safetensors", "run/ran")),
    Refusal("export from a checkpoint without its entries", export(without_keys), ("no entry 'env_steps'",),
            ("expert.safetensors",)),
    Refusal("export into a missing folder", export(without_keys, "missing/expert.safetensors"), ("does not exist",),
            ("missing",)),
    # Settings out of their declared range, refused before any work
    Refusal("discount above one", train_with("gamma=5"), ("gamma=5", "< 1.0"), ("run",)),
    Refusal("negative temperature", train_with("alpha=-1"), ("alpha=-1", "> 0.0"), ("run",)),
    Refusal("negative learning rate", train_with("actor_lr=-1"), ("actor_lr=-1", "> 0.0"), ("run",)),
    Refusal("negative thread count", train_with("num_threads=-2"), ("num_threads=-2", "≥ 0"), ("run",)),
    Refusal("zero-width layer", train_with("actor_hidden=0,-3"), ("actor_hidden=0", "≥ 1"), ("run",)),
    Refusal("a setting the algorithm does not read",
            lambda ctx: ["train", "--task", "halfcheetah", "--algo", "awac", "--set", "alpha=0.3",
                         "--out", str(ctx.folder / "run")], ("awac does not read alpha", "read by nppac"), ("run",)),
    Refusal("a setting under another algorithm's name",
            lambda ctx: ["train", "--task", "halfcheetah", "--algo", "bc", "--set", "actor_log_std_range=-5,0",
                         "--out", str(ctx.folder / "run")], ("bc reads log_std_range, not actor_log_std_range",),
            ("run",)),
    Refusal("empty log σ range", train_with("log_std_range=0,-6"),
            ("log_std_range=(0.0, -6.0)", "low < high"), ("run",)),
    Refusal("batch larger than memory", train_with("batch_size=100000000"), ("batch_size=100000000", "≤ 65536"),
            ("run",)),
    Refusal("awac temperature zero", lambda ctx: ["train", "--task", "pen-binary", "--algo", "awac", "--set", "lam=0",
                                                 "--out", str(ctx.folder / "run")], ("lam=0", "> 0"), ("run",)),
    Refusal("an algorithm's setting on another algorithm", train_with("lam=0.3"), ("'lam'", "algo sac"), ("run",)),
    Refusal("a setting given by its option and by --set", train_with("task=hopper"),
            ("--task and --set task=... both give task", "give it once"), ("run",)),
    Refusal("a removed remedy", train_with("critic_warmstart_steps=5000"),
            ("config key critic_warmstart_steps: removed in this version; measured harmful, docs/remedies.md",),
            ("run",)),
    Refusal("a run config that turns a removed remedy on", edited_config(actor_delay_updates=3000),
            ("config.json: config key actor_delay_updates: removed in this version",)),
    Refusal("resume with a non-numeric setting", edited_config(steps="abc"),
            ("config.json: steps = 'abc': expected a whole number",)),
    Refusal("a run config with a string for a boolean", edited_config(allow_pickle="false"),
            ("config.json: allow_pickle = 'false': expected true or false",)),
    Refusal("resume with another task", edited_config(task="hopper"),
            ("differs from its checkpoint", "task: 'halfcheetah' → 'hopper'")),
    Refusal("resume as another algorithm and seed", resume_as("--algo", "awac", "--seed", "3"),
            ("--algo awac (the run's algo is sac), --seed 3 (the run's seed is 0)", "another --out"),
            ("run/progress.csv",)),
    Refusal("resume as another task", resume_as("--task", "hopper", "--algo", "sac"),
            ("--task hopper (the run's task is halfcheetah);",), ("run/progress.csv",)),
    Refusal("a second trainer on one --out", trainer_holds("run", "--task", "halfcheetah", "--algo", "sac",
                                                                   "--steps", "1000"),
            ("run is in use: process 4242 holds", ".run.lock", "choose another --out"), ("run",)),
    Refusal("a second trainer resuming a run", trainer_holds("run", "--resume"),
            ("run is in use: process 4242 holds",), ("run",)),
    Refusal("compare a run whose last row is cut", compare_cut_run,
            ("progress.csv is cut or edited", "its last line (3) has no line end"), ("c.png",)),
    # Suite outputs
    Refusal("compare beside a .json of the user's", compare_beside_notes,
            ("c.json was not written by nppac", "another --out"), ("c.png",)),
    Refusal("suite into another suite's output", suite_into(other_suite), ("holds the runs of suite 'theirs'",),
            ("out/halfcheetah",)),
    Refusal("dry run into another suite's output", suite_into(other_suite, "--dry-run"),
            ("holds the runs of suite 'theirs'",)),
    Refusal("suite onto a file", suite_into(lambda out: out.write_text("x")), ("is a file",)),
    Refusal("suite into a folder of other files", suite_into(notes_in), ("holds no suite.json", "new or empty --out"),
            ("out/suite.json", "out/halfcheetah")),
    Refusal("report over a report.md it did not write",
            lambda ctx: (other_suite(ctx.folder / "out"), notes_in(ctx.folder / "out", "report.md"),
                         ["suite", "report", str(ctx.folder / "out")])[2],
            ("report.md was not written by `nppac suite report`",), ("out/report.json",)),
    Refusal("export into a copy holding a link", export_into_a_link, ("copy/halfcheetah is a symbolic link",)),
    Refusal("--only that matches no run", suite_into(lambda out: None, "--only", "door-binary/*"),
            ("--only 'door-binary/*' matches no run of suite mine", "tasks halfcheetah"), ("out",)),
    Refusal("export of a folder that is no suite", lambda ctx: ["suite", "export", str(ctx.folder),
                                                                str(ctx.folder / "copy")],
            ("has no suite.json", "nppac suite run"), ("copy",)),
    Refusal("report against an algorithm not in the suite",
            lambda ctx: (other_suite(ctx.folder / "out"), ["suite", "report", str(ctx.folder / "out"),
                                                           "--baseline", "awac"])[1],
            ("--baseline awac is not an algorithm of suite theirs",), ("out/report.md",)),
    Refusal("report with an adjustment of p-values that does not exist",
            lambda ctx: (other_suite(ctx.folder / "out"), ["suite", "report", str(ctx.folder / "out"),
                                                           "--adjust", "bonferroni"])[1],
            ("--adjust must be one of holm, bh, none, got 'bonferroni'",), ("out/report.md",)),
    Refusal("report with a threshold that is no finite number",
            lambda ctx: halfcheetah_suite(ctx, "--threshold", "halfcheetah=nan"),
            ("--threshold expects TASK=LEVEL with a finite number, got 'halfcheetah=nan'",), ("out/report.md",)),
    Refusal("report with an option of a table, without it", lambda ctx: halfcheetah_suite(ctx, "--versus", "sac"),
            ("--versus is read by --table priors only",), ("out/report.md",)),
    Refusal("a table with an option of the report", lambda ctx: halfcheetah_suite(ctx, "--table", "pathology",
                                                                                   "--baseline", "sac"),
            ("--baseline is read by the report (no --table) only",)),
    Refusal("a table of a task the suites did not run", lambda ctx: halfcheetah_suite(ctx, "--table", "pathology",
                                                                                      "--task", "hopper"),
            ("--task hopper: no run of it in",)),
    Refusal("a run file that is not UTF-8", run_file_not_utf8, ("cannot read run file", "run.toml"), ("run",)),
    # Experts
    Refusal("an expert of 0 steps", expert_never_trains, ("steps=0 is out of range",), ("e",)),
    Refusal("demonstrations of a negative seed", lambda ctx: ["demos", "collect", "--task", "halfcheetah",
                                                              "--episodes", "1", "--seed", "-1", "--out",
                                                              str(ctx.folder / "d.npz")],
            ("seed must lie in [0, 4294967295], got -1",), ("d.npz",)),
    # Evaluation
    Refusal("evaluate a folder that is not a run", lambda ctx: ["evaluate", str(ctx.folder)],
            ("is not a run directory (no config.json)", "nppac train")),
    Refusal("evaluate no episodes", lambda ctx: ["evaluate", str(ctx.folder), "--episodes", "0"],
            ("'--episodes'", "greater than or equal to 1")),
    Refusal("evaluate --video where nothing renders", video_run(RuntimeError("invalid value for MUJOCO_GL: x")),
            ("--video: task halfcheetah cannot render", "MUJOCO_GL=egl", "MUJOCO_GL=osmesa"), ("v.mp4",)),
    Refusal("evaluate --video without moviepy", video_run(None), ("--video needs moviepy", "pip install moviepy"),
            ("v.mp4",)),
    # Usage errors caught by the parser
    Refusal("not an integer", lambda ctx: ["train", "--steps", "abc", "--out", str(ctx.folder / "run")],
            ("Invalid value for '--steps'", "nppac train --help"), ("run",)),
    Refusal("missing required option", lambda ctx: ["prior", "fit", "--data", "x.npz"], ("Missing option '--out'",)),
    Refusal("unknown option", lambda ctx: ["data", "inspect", "--bogus"], ("No such option: --bogus",)),
]


@pytest.fixture(scope="module")
def saved_priors(tmp_path_factory) -> dict[str, Path]:
    """A GP and an NN prior fitted on the toy set, saved once (rows copy them before damaging them)."""
    root = tmp_path_factory.mktemp("priors")
    saved = {}
    with torch_threads(1):
        for kind, settings in (("gp", {"iters": 2}), ("nn", {"iters": 2, "hidden": (8,)})):
            prior, _ = fit_prior(toy_demos(), kind, **settings)
            prior.save(root / kind)
            saved[kind] = root / kind
    return saved


def run_nppac(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit code and stderr of ``nppac ARGV``, run in this process."""
    handler = logging.StreamHandler(sys.stderr)  # what the entry point's logging.basicConfig gives a user
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        with torch_threads(torch.get_num_threads()), pytest.raises(SystemExit) as exit_info:
            main(argv)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    return exit_info.value.code, capsys.readouterr().err


@pytest.mark.parametrize("row", REFUSALS, ids=[r.name for r in REFUSALS])
def test_refusal(row: Refusal, tmp_path, saved_priors, monkeypatch, capsys):
    if "cuda" in row.name and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    ctx = Context(tmp_path, saved_priors, monkeypatch)  # kept to the end: what it holds open stays open
    argv = row.setup(ctx)
    code, err = run_nppac(argv, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in row.says:
        assert fragment in lines[0], lines[0]
    for name in row.absent:
        assert not (tmp_path / name).exists(), f"{name} was written"
