"""``nppac prior fit / predict / evaluate`` end to end, including the published pen set."""

import json
import resource

import numpy as np
import pytest
import torch

from nppac.cli.prior import _fit_settings
from nppac.errors import NppacError
from tests.builders import toy_npz
from tests.conftest import run_cli

PEN_PEAK_RSS_MB = 2500
"""Peak resident memory allowed for a GP fit on the pen set (4,975 states × 24 actions)."""


def child_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # kB on Linux


@pytest.mark.parametrize("kind", ["gp", "nn"])
def test_fit_writes_the_prior_and_metrics_json(kind, tmp_path):
    data = toy_npz(tmp_path / "toy.npz")
    out = tmp_path / kind
    proc = run_cli("prior", "fit", "--data", str(data), "--kind", kind, "--iters", "20", "--out", str(out),
                   "--threads", "1", "--json", check=True)
    metrics = json.loads(proc.stdout)
    assert metrics == json.loads((out / "metrics.json").read_text())
    assert metrics["kind"] == kind and metrics["n"] == 120 and metrics["act_dim"] == 2
    assert set(metrics["std_offset"]) == {"0.5", "1", "2", "4", "8"}
    assert (metrics["mll_per_entry"] is None) == (kind == "nn")
    if kind == "nn":
        return
    assert json.loads((out / "settings.json").read_text())["config"]["kernel"] == "matern52"  # the default
    states = tmp_path / "s.npy"
    np.save(states, np.zeros((5, 3), np.float32))
    run_cli("prior", "predict", "--prior", str(out), "--states", str(states), "--out", str(tmp_path / "p.npz"),
            check=True)
    pred = np.load(tmp_path / "p.npz")
    assert pred["mean"].shape == pred["std"].shape == (5, 2)
    assert (pred["std"] > 0).all()


def test_flags_that_do_not_apply_are_user_errors(tmp_path):
    with pytest.raises(NppacError, match="--kernel, --rank apply to --kind gp only"):
        _fit_settings("nn", None, "rbf", 2, None, None, None, "cpu", 0)
    with pytest.raises(NppacError, match="--predict-rtol applies to --kind gp only"):
        _fit_settings("nn", None, None, None, None, None, None, "cpu", 0, predict_rtol=0.01)
    assert _fit_settings("gp", None, None, None, None, None, None, "cpu", 0, predict_rtol=0.0)["predict_rtol"] == 0.0
    with pytest.raises(NppacError, match="--variant applies to --kind nn only"):
        _fit_settings("gp", None, None, None, None, None, "gaussian", "cpu", 0)
    with pytest.raises(NppacError, match="unknown --kind 'svm'"):
        _fit_settings("svm", None, None, None, None, None, None, "cpu", 0)
    assert _fit_settings("gp", "door-binary", None, None, 5, None, None, "cpu", 0)["kernel"] == "matern12"
    if not torch.cuda.is_available():
        with pytest.raises(NppacError, match="device .cuda. requested but"):
            _fit_settings("gp", None, None, None, None, None, None, "cuda", 0)
    proc = run_cli("prior", "predict", "--prior", str(tmp_path / "missing"), "--states", str(tmp_path / "s.npy"),
                   "--out", str(tmp_path / "p.npz"))
    assert proc.returncode == 2 and "settings.json not found" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def pen_gp(tmp_path_factory):
    from tests.conftest import PEN_FILE

    if not PEN_FILE.exists():
        pytest.skip(f"published pen set not found at {PEN_FILE}")
    out = tmp_path_factory.mktemp("pen") / "gp"
    proc = run_cli("prior", "fit", "--data", str(PEN_FILE), "--allow-pickle", "--task", "pen-binary",
                   "--kind", "gp", "--fit-subset", "300", "--iters", "15", "--threads", "1",
                   "--out", str(out), "--json", check=True)
    return out, json.loads(proc.stdout), child_peak_rss_mb()


def test_pen_gp_fit_stays_within_memory_and_conditions_on_every_state(pen_gp):
    out, metrics, peak_mb = pen_gp
    assert peak_mb < PEN_PEAK_RSS_MB
    assert metrics["n"] == 4975 and metrics["obs_dim"] == 45 and metrics["act_dim"] == 24
    assert metrics["fit"]["subset"] == 300 and metrics["fit"]["iterations"] == 15
    assert metrics["fit"]["conditioning"] == "exact"
    settings = json.loads((out / "settings.json").read_text())
    assert settings["config"]["kernel"] == "matern52"  # pen-binary's published kernel
    # The GP std grows with the distance from the demonstrations.
    offsets = [metrics["std_offset"][c] for c in ("0.5", "1", "2", "4", "8")]
    assert metrics["std_on_data"] < offsets[0] and offsets == sorted(offsets)


def test_pen_predict_rejects_states_of_the_wrong_dimension(pen_gp, tmp_path):
    out, _, _ = pen_gp
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((4, 39), np.float32))
    proc = run_cli("prior", "predict", "--prior", str(out), "--states", str(bad), "--out", str(tmp_path / "p.npz"))
    assert proc.returncode == 2
    assert "bad.npy" in proc.stderr and "(4, 39)" in proc.stderr and "45" in proc.stderr


def test_pen_evaluate_rolls_out_the_mean_action(pen_gp):
    out, _, _ = pen_gp
    proc = run_cli("prior", "evaluate", "--prior", str(out), "--task", "pen-binary", "--episodes", "1", "--json",
                   check=True)
    result = json.loads(proc.stdout)
    assert result["episodes"] == 1 and len(result["returns"]) == 1
    assert -200.0 <= result["return_mean"] <= 0.0  # binary reward: −1 per step without success, 200 steps
    assert result["success_rate"] in (0.0, 1.0)
    proc = run_cli("prior", "evaluate", "--prior", str(out), "--task", "door-binary", "--episodes", "1")
    assert proc.returncode == 2 and "45→24" in proc.stderr


def test_fit_refuses_a_prior_narrow_everywhere_and_keeps_it_when_allowed(tmp_path, monkeypatch, capsys, caplog):
    """A constant action dimension: exit code 2, one error line after the progress, nothing written; with
    --allow-narrow-prior the prior is written and a WARNING names σ0."""
    from nppac.data import save_npz
    from tests.builders import make_demos, nppac_in_process

    rng = np.random.default_rng(0)
    states = rng.normal(size=(120, 3)).astype(np.float32)
    actions = np.stack([np.tanh(states[:, 0]), np.full(120, 0.5, np.float32)], 1)
    data = save_npz(make_demos(states, actions), tmp_path / "constant.npz")
    argv = ["prior", "fit", "--data", str(data), "--kind", "gp", "--iters", "100", "--out", str(tmp_path / "gp")]
    code, _, err = nppac_in_process(monkeypatch, capsys, *argv)
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and "Traceback" not in err and len(errors) == 1, err
    assert "constant.npz: σ0 of action dim 1 is at most 0.0" in errors[0] and "--allow-narrow-prior" in errors[0]
    assert not (tmp_path / "gp").exists()
    with caplog.at_level("WARNING"):
        code, out, err = nppac_in_process(monkeypatch, capsys, *argv, "--allow-narrow-prior")
    assert code == 0 and (tmp_path / "gp" / "weights.safetensors").is_file(), err
    assert any(r.levelname == "WARNING" and "σ0 of action dim 1 is at most" in r.getMessage() for r in caplog.records)
