"""Generator and discriminator of the synthesizer, and the vectorised output activation.

The generator is CTGAN's residual MLP (each block concatenates its input to its output); the
discriminator is a packed (PacGAN) MLP critic. Weights are initialised and dropout masks drawn
from a caller's ``torch.Generator``, so a seed gives the same model without global RNG state.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def init_(module: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default Linear init (uniform +-1/sqrt(fan_in)), drawn from ``generator``."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            bound = 1.0 / math.sqrt(m.in_features)
            with torch.no_grad():
                m.weight.uniform_(-bound, bound, generator=generator)
                m.bias.uniform_(-bound, bound, generator=generator)


class Residual(nn.Module):
    def __init__(self, i: int, o: int):
        super().__init__()
        self.fc = nn.Linear(i, o)
        self.bn = nn.BatchNorm1d(o)

    def forward(self, x):
        return torch.cat([F.relu(self.bn(self.fc(x))), x], dim=1)


class Generator(nn.Module):
    def __init__(self, noise_dim: int, hidden: tuple[int, ...], output_dim: int):
        super().__init__()
        layers, dim = [], noise_dim
        for h in hidden:
            layers.append(Residual(dim, h))
            dim += h
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(dim, output_dim)

    def forward(self, x):
        return self.out(self.body(x))


class Discriminator(nn.Module):
    """Packed critic: ``pac`` rows are concatenated and scored together (PacGAN)."""

    def __init__(self, input_dim: int, hidden: tuple[int, ...], pac: int, dropout: float = 0.5):
        super().__init__()
        self.pac = pac
        self.dropout = dropout
        dims = [input_dim * pac, *hidden]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, dims[1:], strict=False))
        self.out = nn.Linear(dims[-1], 1)

    def forward(self, x, generator: torch.Generator | None = None):
        h = x.reshape(-1, x.shape[1] * self.pac)
        for layer in self.hidden:
            h = F.leaky_relu(layer(h), 0.2)
            if self.training and self.dropout > 0:
                keep = torch.rand(h.shape, generator=generator, device=h.device) >= self.dropout
                h = h * keep / (1 - self.dropout)
        return self.out(h)


class OutputLayout:
    """Gather the one-hot part's blocks into a padded (rows, blocks, width) view and back.

    One masked softmax over the padded view activates every block at once, whatever the
    number of columns (CTGAN loops over columns in Python on every step).
    """

    def __init__(self, n_values: int, widths: list[int], device):
        self.n_values = n_values
        self.widths = widths
        width = max(widths) if widths else 1
        idx = np.zeros((len(widths), width), dtype=np.int64)
        valid = np.zeros((len(widths), width), dtype=bool)
        start = 0
        for b, w in enumerate(widths):
            idx[b, :w] = n_values + start + np.arange(w)
            valid[b, :w] = True
            start += w
        self.index = torch.as_tensor(idx, device=device)
        self.valid = torch.as_tensor(valid, device=device)
        self.flat = torch.as_tensor(np.flatnonzero(valid.ravel()), device=device)

    def padded(self, raw: torch.Tensor) -> torch.Tensor:
        """(rows, blocks, width) logits, padding at -inf."""
        logits = raw[:, self.index]
        return logits.masked_fill(~self.valid, float("-inf"))

    def activate(
        self,
        raw,
        *,
        tau: float,
        generator: torch.Generator | None,
        hard: bool,
        straight_through: bool = False,
    ):
        """tanh on values; Gumbel-softmax on every block (``hard``: codes of the draw;
        ``straight_through``: exact one-hots forward, soft gradients backward)."""
        values = torch.tanh(raw[:, : self.n_values])
        if not self.widths:
            return values, None
        logits = self.padded(raw)
        u = torch.rand(logits.shape, generator=generator, device=raw.device, dtype=raw.dtype)
        gumbel = -torch.log(-torch.log(u + 1e-20) + 1e-20)
        noisy = logits + gumbel
        if hard:
            codes = noisy.argmax(-1)
            return values, codes
        soft = torch.softmax(noisy / tau, dim=-1)
        if straight_through:
            hard_oh = torch.zeros_like(soft).scatter_(-1, noisy.argmax(-1, keepdim=True), 1.0)
            soft = hard_oh - soft.detach() + soft
        onehot = soft.reshape(len(raw), -1)[:, self.flat]
        return torch.cat([values, onehot], dim=1), None

    def onehot(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (rows, blocks) -> the flat one-hot part (rows, sum(widths))."""
        oh = torch.zeros(
            (len(codes), len(self.widths), self.index.shape[1]), device=codes.device
        ).scatter_(2, codes[:, :, None], 1.0)
        return oh.reshape(len(codes), -1)[:, self.flat]
