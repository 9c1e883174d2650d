"""nppac: KL-regularized actor-critic RL with non-parametric behavioral reference policies."""

__version__ = "0.1.0"
