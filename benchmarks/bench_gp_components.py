"""GP fast prediction: σ0 error against the number of kept eigen-components and the float64 head.

Fits the GP prior of `bench_gp.py` (same data, same settings) with every component
kept, then on 500 held-out states and 1,000 probe states (`offset_states` at c = 0.5,
1, 2) reports the max relative σ0 error against exact prediction

* of keeping the first k components (largest first), all in float64, and
* of keeping k components with the first h in float64 and the rest in float32, applied
  to the residual k* − U_h U_hᵀ k* (what `nppac.priors.gp.Posterior` does) or, for
  h = 0, to k* itself.

    .venv/bin/python benchmarks/bench_gp_components.py --data halfcheetah --n 10000 \\
        [--ks 800 1000 1500 2000 3000] [--heads 0 16 64 256] [--threads 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_gp import machine, make_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="halfcheetah", choices=["pen", "halfcheetah", "synthetic"])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--ks", type=int, nargs="+", default=[600, 800, 1000, 1200, 1500, 2000, 3000])
    parser.add_argument("--heads", type=int, nargs="+", default=[0, 16, 64, 256])
    parser.add_argument("--iters", type=int, default=1000, help="Hyperparameter iterations, as bench_gp.py's.")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from nppac.data.demos import Demonstrations, Trajectory
    from nppac.priors import GPConfig, GPPrior, offset_states
    from nppac.priors.kernels import kernel_matrix

    if args.threads:
        torch.set_num_threads(args.threads)
    states, actions, held, source = make_data(args.n, 500, data=args.data)
    if held is None:
        raise SystemExit(f"--data {args.data} --n {args.n} leaves no held-out states; use a smaller --n")
    zeros = np.zeros(len(states), np.float32)
    demos = Demonstrations([Trajectory(states, actions, zeros, zeros.astype(bool), zeros.astype(bool), states)])
    prior = GPPrior(GPConfig(kernel="matern52", iters=args.iters, predict_rtol=0.0))
    prior.fit(demos)
    post = prior.posterior
    if post is None:
        raise SystemExit("the GP kept no posterior after its fit")
    order = post.delta_g.abs().max(1).values.argsort(descending=True)
    q, delta_g = post.proj[:, order], post.delta_g[order]
    probes = np.concatenate([offset_states(states, c, n=334, seed=1) for c in (0.5, 1.0, 2.0)])[:1000]
    rows = []
    with torch.no_grad():
        for name, raw in (("held_out", held), ("probes", probes)):
            kstar = kernel_matrix(prior.standardize(torch.from_numpy(raw)), post.basis, prior.hyper.lengthscale,
                                  prior.config.kernel)
            u = kstar @ q
            base = kstar.pow(2).sum(1, keepdim=True) * post.g0

            def std(quad: torch.Tensor, base: torch.Tensor = base) -> torch.Tensor:
                return ((post.b_diag - base - quad).clamp_min(0.0) + post.noise).sqrt()

            exact = std(u.pow(2) @ delta_g)

            def error(quad: torch.Tensor, exact: torch.Tensor = exact) -> float:
                return float(((std(quad) - exact).abs() / exact).max())

            for k in [k for k in args.ks if k <= len(q)]:
                row = {"states": name, "k": k, "float64": error(u[:, :k].pow(2) @ delta_g[:k])}
                for h in [h for h in args.heads if h < k]:
                    residual = kstar - u[:, :h] @ q[:, :h].T
                    tail = (residual.float() @ q[:, h:k].float()).double()
                    row[f"head_{h}"] = error(u[:, :h].pow(2) @ delta_g[:h] + tail.pow(2) @ delta_g[h:k])
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps({"machine": machine(), "command": " ".join(sys.argv), "data": source, "n": args.n,
                          "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
