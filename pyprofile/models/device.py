"""Torch device and CPU threads, resolved in one place."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


def resolve_device(device: str | None = "auto"):
    """``"auto"`` picks CUDA when available, otherwise CPU; anything else is passed to torch."""
    import torch

    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@contextmanager
def torch_threads(threads: int | None, device) -> Iterator[None]:
    """Set torch's CPU threads for a block and restore them afterwards.

    Small networks train fastest on one thread and then do not oversubscribe a shared
    machine; ``threads=None`` (or a GPU device) leaves torch's setting alone.
    """
    import torch

    if threads is None or device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
