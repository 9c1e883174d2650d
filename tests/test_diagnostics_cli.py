"""`nppac diagnose variance|gradients` end to end, with a GP and an NN prior fitted on a toy set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli

OBS_DIM, ACT_DIM = 4, 2


def toy_demos(n_traj: int = 3, length: int = 80, seed: int = 0):
    """States near a 2-D plane in 4 dims; actions a smooth function of the state, in [-1, 1]."""
    from nppac.data import Demonstrations, Trajectory

    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(2, OBS_DIM))
    trajectories = []
    for _ in range(n_traj):
        latent = np.cumsum(0.1 * rng.normal(size=(length + 1, 2)), axis=0)
        obs = (latent @ mixing + 0.01 * rng.normal(size=(length + 1, OBS_DIM))).astype(np.float32)
        actions = np.tanh(obs[:-1, :ACT_DIM] + 0.05 * rng.normal(size=(length, ACT_DIM))).astype(np.float32)
        done = np.zeros(length, dtype=bool)
        timeouts = done.copy()
        timeouts[-1] = True
        trajectories.append(Trajectory(obs[:-1], actions, np.zeros(length, np.float32), done, timeouts, obs[1:]))
    return Demonstrations(trajectories, source="toy", format="toy")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A demonstration file and one saved GP and one saved NN prior fitted on it."""
    from nppac.data import save_npz
    from nppac.priors import make_prior

    root = tmp_path_factory.mktemp("diagnose")
    demos = toy_demos()
    data = save_npz(demos, root / "toy.npz")
    gp = make_prior("gp", kernel="rbf", iters=20)
    nn = make_prior("nn", hidden=(64, 64), iters=300)
    gp.fit(demos)
    nn.fit(demos)
    gp.save(root / "prior_gp")
    nn.save(root / "prior_nn")
    return {"data": data, "gp": root / "prior_gp", "nn": root / "prior_nn", "root": root}


def test_variance_map_nn_collapses_off_data_and_gp_does_not(fitted: dict[str, Path]):
    out = fitted["root"] / "figs" / "variance.png"
    proc = run_cli("diagnose", "variance", "--data", str(fitted["data"]), "--priors", str(fitted["gp"]),
                   str(fitted["nn"]), "--out", str(out), "--grid", "30", "--json")
    assert proc.returncode == 0, proc.stderr
    numbers = json.loads(proc.stdout)
    assert json.loads(out.with_suffix(".json").read_text()) == numbers
    assert out.stat().st_size > 10_000
    gp, nn = numbers["priors"]
    assert (gp["kind"], nn["kind"]) == ("gp", "nn")
    assert "rbf" in gp["label"]
    assert nn["std_outer_ring"] < gp["std_outer_ring"]
    assert gp["ratio"] > 2, "the GP's std must grow away from the demonstrations"
    assert gp["ratio"] == pytest.approx(gp["std_outer_ring"] / gp["std_at_data"])


def test_gradient_probe_under_fitted_priors(fitted: dict[str, Path]):
    out = fitted["root"] / "figs" / "gradients.png"
    proc = run_cli("diagnose", "gradients", "--prior", str(fitted["gp"]), "--prior", str(fitted["nn"]),
                   "--data", str(fitted["data"]), "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    numbers = json.loads(proc.stdout)
    assert out.stat().st_size > 10_000
    sweep = numbers["sweep"]
    assert np.all(np.diff(sweep["grad_norm"]) < 0)  # σ0 ascending, norm descending
    assert sweep["loglog_slope_small_sigma0"] == pytest.approx(-2.0, abs=0.1)
    gp, nn = numbers["priors"]
    assert [lv["offset"] for lv in gp["levels"]] == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0]
    # Far from the data the GP's σ0 is larger than at it, and larger than the NN's.
    assert gp["levels"][-1]["sigma0_mean"] > gp["levels"][0]["sigma0_mean"]
    assert gp["levels"][-1]["sigma0_mean"] > nn["levels"][-1]["sigma0_mean"]
    assert nn["levels"][-1]["grad_norm_mean"] > gp["levels"][-1]["grad_norm_mean"]


def test_bad_inputs_exit_2_with_one_line(fitted: dict[str, Path], tmp_path: Path):
    cases = [
        ("diagnose", "variance", "--data", str(fitted["data"]), "--priors", str(fitted["gp"]),
         str(tmp_path / "missing"), "--out", str(tmp_path / "v.png")),
        ("diagnose", "gradients", "--prior", str(fitted["gp"]), "--data", str(fitted["data"]),
         "--out", str(tmp_path / "g.txt")),
    ]
    for args in cases:
        proc = run_cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = [line for line in proc.stderr.splitlines() if line.startswith("error")]
        assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
