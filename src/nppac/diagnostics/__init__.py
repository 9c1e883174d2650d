"""Diagnostics that show the pathology and its cure (DESIGN.md §5).

* :mod:`nppac.diagnostics.variance` — predictive-std maps of priors over the
  demonstrations' principal plane.
* :mod:`nppac.diagnostics.gradients` — Proposition 1 measured: actor-loss gradient
  norm against σ0, and under a fitted prior on and off the data.
* :mod:`nppac.diagnostics.curves` — learning curves across runs and seeds.
* :mod:`nppac.diagnostics.style` — the shared figure style.

Each writes a figure and returns the numbers behind it (``to_json()``).
"""
