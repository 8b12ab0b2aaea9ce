"""Resolve the torch device once: CUDA when present, else CPU."""

from __future__ import annotations


def resolve_device(device: str = "auto"):
    """``"auto"`` picks CUDA when available, otherwise CPU; anything else is passed to torch."""
    import torch

    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
