"""Shared test builders: single-threaded torch fixtures and demonstration sets from arrays."""

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from nppac.data.demos import Demonstrations, Trajectory


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the body with `count` torch threads, restoring the previous count afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Small matrices: one thread is as fast, and far faster on a busy machine."""
    with torch_threads(1):
        yield


@pytest.fixture(autouse=True)
def one_thread_per_test() -> Iterator[None]:
    """Tiny networks: one thread is fastest, and immune to the other cores being busy."""
    with torch_threads(1):
        yield


def make_demos(states: np.ndarray, actions: np.ndarray) -> Demonstrations:
    """One trajectory with the given states/actions, zero rewards and no episode ends."""
    n = len(states)
    traj = Trajectory(states.astype(np.float32), actions.astype(np.float32), np.zeros(n, np.float32),
                      np.zeros(n, bool), np.zeros(n, bool), states.astype(np.float32))
    return Demonstrations([traj])
