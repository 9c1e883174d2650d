"""The compute device a command asks for, checked against this machine before any work."""

from __future__ import annotations

import torch

from nppac.errors import NppacError

DEVICE_TYPES = ("cpu", "cuda")
"""Device types nppac runs on (``cuda`` may carry an index: ``cuda:1``)."""


def resolve_device(name: str | torch.device) -> torch.device:
    """``name`` as a :class:`torch.device`, or a one-line :class:`NppacError` saying why it cannot be used.

    Refused: names torch does not know or nppac does not run on (``tpu``, ``mps``), and
    CUDA devices this torch cannot reach (a CPU-only build, no GPU, an index past the
    last GPU).
    """
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise NppacError(f"unknown device {str(name)!r}; choose cpu or cuda (or cuda:N)") from None
    if device.type not in DEVICE_TYPES:
        raise NppacError(f"device {str(name)!r} is not supported; choose cpu or cuda (or cuda:N)")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            cpu_only = torch.version.cuda is None and torch.version.hip is None
            why = "this torch is a CPU-only build" if cpu_only else "torch sees no CUDA device"
            raise NppacError(f"device {str(name)!r} requested but {why}; use cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise NppacError(f"device {str(name)!r} requested but torch sees only "
                             f"{torch.cuda.device_count()} CUDA device(s); "
                             f"use cuda:0 … cuda:{torch.cuda.device_count() - 1}")
    return device
