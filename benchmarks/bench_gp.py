"""GP prior: fit and predict time, peak memory and fast-prediction error at several set sizes.

Each size runs in its own subprocess (so peak memory is per size) with a wall-clock
limit. Data (T = 24, d = 45): states and actions of the published pen set (a random
subset for n ≤ 4,975; for larger n, copies of it with every state jittered by 0.1 ×
its per-dimension std and every action by N(0, 0.05²), clipped); synthetic smooth
data of the same shape when the pen set is absent, or with ``--data synthetic``.
Prediction is timed on 1,000 probe states (`offset_states` at c = 0.5, 1, 2); the fast
σ0 is compared with the exact one on those and, for n ≤ 4,475, on 500 held-out
demonstration states.

``--data halfcheetah`` uses the bundled halfcheetah demonstrations instead (10,000
states, T = 6, d = 17: the set `nppac train --task halfcheetah` conditions on by
default); its held-out states are 500 states of one more episode collected from the
bundled expert with another seed.

    .venv/bin/python benchmarks/bench_gp.py [--sizes 1000 5000 20000] [--iters 1000]
        [--data pen|halfcheetah|synthetic] [--predict-rtol 0.002]
        [--conditioning auto|exact|inducing] [--device cpu|cuda] [--threads 1] [--timeout 900]
        [--exact-max 5000] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from nppac.priors.gp import Conditioning

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[1]
PEN_FILE = REPO.parent / "shared" / "data" / "pen2_sparse.npy"
OBS_DIM, ACT_DIM = 45, 24


def _pen_arrays() -> tuple[np.ndarray, np.ndarray] | None:
    if not PEN_FILE.exists():
        return None
    from nppac.data import load_demos

    demos = load_demos(PEN_FILE, allow_pickle=True)
    return demos.states, demos.actions


def _halfcheetah_arrays(n: int, held_out: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    from nppac.data import load_demos
    from nppac.tasks import get_task
    from nppac.training.experts import collect_demos, load_expert

    bundled = get_task("halfcheetah").bundled_demos
    if bundled is None:
        raise SystemExit("--data halfcheetah needs the task's bundled demonstrations, which this install lacks")
    demos = load_demos(bundled, task="halfcheetah")
    if n > demos.n_transitions:
        raise SystemExit(f"--data halfcheetah has {demos.n_transitions} states; ask for at most that many")
    order = np.random.default_rng(seed).permutation(demos.n_transitions)[:n]
    extra = collect_demos(load_expert("bundled", "halfcheetah"), "halfcheetah", episodes=1, seed=seed + 1)
    held = extra.states[np.random.default_rng(seed).permutation(extra.n_transitions)[:held_out]]
    source = "halfcheetah bundled" if n == demos.n_transitions else "halfcheetah bundled subset"
    return demos.states[order], demos.actions[order], held, source


def make_data(n: int, held_out: int, seed: int = 0, data: str = "pen"
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, str]:
    """(states, actions, held-out states or None, description) with n conditioning states."""
    if data == "halfcheetah":
        return _halfcheetah_arrays(n, held_out, seed)
    rng = np.random.default_rng(seed)
    pen = _pen_arrays() if data == "pen" else None
    if pen is None:
        states = rng.standard_normal((n + held_out, OBS_DIM)).astype(np.float32)
        mix = rng.standard_normal((OBS_DIM, ACT_DIM)) / np.sqrt(OBS_DIM)
        actions = np.tanh(np.sin(states @ mix) + 0.05 * rng.standard_normal((n + held_out, ACT_DIM)))
        return states[:n], actions[:n].astype(np.float32), states[n:], "synthetic"
    states, actions = pen
    order = rng.permutation(len(states))
    if n + held_out <= len(states):
        return states[order[:n]], actions[order[:n]], states[order[n:n + held_out]], "pen subset"
    if n <= len(states):
        return states[order[:n]], actions[order[:n]], None, "pen" if n == len(states) else "pen subset"
    copies = -(-n // len(states))
    scale = states.std(0)
    big_s = np.concatenate([states + (k > 0) * 0.1 * scale * rng.standard_normal(states.shape) for k in range(copies)])
    big_a = np.concatenate([np.clip(actions + (k > 0) * 0.05 * rng.standard_normal(actions.shape), -1, 1)
                            for k in range(copies)])
    return big_s[:n].astype(np.float32), big_a[:n].astype(np.float32), None, f"pen × {copies}, jittered"


def _timed(fn: Callable[[], T], device: str) -> tuple[float, T]:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def worker(n: int, iters: int, conditioning: Conditioning, device: str, threads: int | None, exact_max: int,
           data: str = "pen", predict_rtol: float = 2e-3) -> dict[str, Any]:
    """Fit, predict and measure one size; returns one JSON-able row."""
    from nppac.data.demos import Demonstrations, Trajectory
    from nppac.priors import GPConfig, GPPrior, offset_states

    if threads:
        torch.set_num_threads(threads)
    states, actions, held, source = make_data(n, 500, data=data)
    zeros = np.zeros(len(states), np.float32)
    demos = Demonstrations([Trajectory(states, actions, zeros, zeros.astype(bool), zeros.astype(bool), states)])
    prior = GPPrior(GPConfig(kernel="matern52", iters=iters, conditioning=conditioning, device=device,
                             predict_rtol=predict_rtol))
    cpu0 = time.process_time()
    info = prior.fit(demos)
    fit_cpu = time.process_time() - cpu0
    probes = torch.from_numpy(np.concatenate([offset_states(states, c, n=334, seed=1) for c in (0.5, 1.0, 2.0)])[:1000])
    probes = probes.to(device)
    prior.predict(probes[:10])  # warm-up
    predict_s = min(_timed(lambda: prior.predict(probes), device)[0] for _ in range(3))
    row = {
        "n": n, "data": source, "device": device, "threads": torch.get_num_threads(), "iters": info["iterations"],
        "subset": info["subset"], "predict_rtol": predict_rtol, "conditioning": info["conditioning"],
        "predict_rank": info["predict_rank"],
        "predict_float64_rank": info.get("predict_float64_rank"),
        "learn_s": info["learn_seconds"], "condition_s": info["condition_seconds"], "fit_s": info["fit_seconds"],
        "fit_cpu_s": fit_cpu, "mll_per_entry": info["mll_per_entry"], "predict_1000_s": predict_s,
    }
    if info["conditioning"] == "exact" and n <= exact_max:
        exact_first_s, _ = _timed(lambda: prior.predict(probes[:1], exact=True), device)
        exact_s, (_, std_exact) = _timed(lambda: prior.predict(probes, exact=True), device)
        _, std_fast = prior.predict(probes)
        rel = ((std_fast - std_exact).abs() / std_exact).cpu()
        row |= {"exact_setup_s": exact_first_s, "predict_1000_exact_s": exact_s,
                "std_rel_err_max": float(rel.max()), "std_rel_err_mean": float(rel.mean())}
        if held is not None:
            held_t = torch.from_numpy(held).to(device)
            rel_h = ((prior.predict(held_t)[1] - prior.predict(held_t, exact=True)[1]).abs()
                     / prior.predict(held_t, exact=True)[1]).cpu()
            row |= {"held_out_std_rel_err_max": float(rel_h.max())}
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.startswith("cuda"):
        row["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return row


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{cpu}, {torch.get_num_threads()} torch threads available, torch {torch.__version__}{gpu}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--iters", type=int, default=1000)
    parser.add_argument("--conditioning", default="auto", choices=["auto", "exact", "inducing"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data", default="pen", choices=["pen", "halfcheetah", "synthetic"])
    parser.add_argument("--predict-rtol", type=float, default=2e-3, help="GPConfig.predict_rtol (fast σ0 tolerance).")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=900, help="Wall-clock seconds per size.")
    parser.add_argument("--exact-max", type=int, default=5000,
                        help="Compare fast with exact σ0 (one more eigendecomposition) up to this n.")
    parser.add_argument("--json", action="store_true", help="Print the rows as one JSON list.")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.iters, args.conditioning, args.device, args.threads, args.exact_max,
                                args.data, args.predict_rtol)))
        return
    rows = []
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--worker", str(n), "--iters", str(args.iters),
               "--conditioning", args.conditioning, "--device", args.device, "--exact-max", str(args.exact_max),
               "--data", args.data, "--predict-rtol", str(args.predict_rtol)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
            if proc.returncode != 0:
                error = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"
                rows.append({"n": n, "error": error})
            else:
                rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        except subprocess.TimeoutExpired:
            rows.append({"n": n, "error": f"timed out after {time.perf_counter() - start:.0f} s"})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps({"machine": machine(), "command": " ".join(sys.argv), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
