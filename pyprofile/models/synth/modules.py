"""Generator and discriminator of the synthesizer, and the vectorised output activation.

The generator is a residual MLP (BatchNorm + ReLU blocks with identity skips); the
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
        if isinstance(m, nn.Linear) and m.bias is not None:  # bias-free maps start at zero
            bound = 1.0 / math.sqrt(m.in_features)
            with torch.no_grad():
                m.weight.uniform_(-bound, bound, generator=generator)
                m.bias.uniform_(-bound, bound, generator=generator)


class Block(nn.Module):
    """Linear, BatchNorm, ReLU; residual (``x + f(x)``) wherever input and output widths match."""

    def __init__(self, i: int, o: int):
        super().__init__()
        self.fc = nn.Linear(i, o)
        self.bn = nn.BatchNorm1d(o)
        self.residual = i == o

    def forward(self, x):
        if self.training or torch.is_grad_enabled():
            h = F.relu(self.bn(self.fc(x)))
            return x + h if self.residual else h
        # inference: BatchNorm's running statistics folded into the linear map, in place
        bn = self.bn
        scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
        bias = (self.fc.bias - bn.running_mean) * scale + bn.bias
        h = torch.relu_(F.linear(x, self.fc.weight * scale[:, None], bias))
        return h.add_(x) if self.residual else h


class Generator(nn.Module):
    """Residual MLP from (noise, condition) to ``[tanh values | one-hot blocks]``.

    Each one-hot block is the argmax of its logits: exact one-hots forward (as at sampling) and
    the softmax's gradient backward (straight-through). With ``gumbel`` the argmax is taken
    after Gumbel noise (a categorical draw per block, as CTGAN); without it (the default) every
    category is a function of the noise vector, so categories can co-vary freely, which is
    what keeps structural pairs such as "no internet service => no online backup" intact.
    """

    def __init__(
        self, input_dim: int, hidden: tuple[int, ...], n_values: int, widths: list[int], *, gumbel
    ):
        super().__init__()
        self.gumbel = gumbel
        dims = [input_dim, *hidden]
        self.body = nn.Sequential(*(Block(a, b) for a, b in zip(dims, dims[1:], strict=False)))
        self.n_values, self.widths = n_values, list(widths)
        total = int(sum(widths))
        self.out = nn.Linear(dims[-1], n_values + total)
        # each block's columns: a padded (blocks, width) index for the per-block max and argmax
        # (no gradient), and a (columns, blocks) membership matrix for the softmax sums
        width = max(widths) if widths else 1
        index = np.zeros((len(widths), width), dtype=np.int64)
        valid = np.zeros((len(widths), width), dtype=bool)
        block_of = np.repeat(np.arange(len(widths)), widths).astype(np.int64)
        starts = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(np.int64)
        for b, w in enumerate(widths):
            index[b, :w] = starts[b] + np.arange(w)
            valid[b, :w] = True
        member = np.zeros((total, len(widths)), dtype=np.float32)
        member[np.arange(total), block_of] = 1.0
        # per-category logit offsets, fitted after training so that sampled category
        # frequencies match the real ones (used at sampling only: ``hard=True``)
        self.register_buffer("bias", torch.zeros(total))
        for name, value in (
            ("pad_index", index),
            ("pad_valid", valid),
            ("block_of", block_of),
            ("block_start", starts),
            ("member", member),
        ):
            self.register_buffer(name, torch.as_tensor(value), persistent=False)

    def forward(self, x, *, tau: float, generator=None, forced=None, hard: bool = False):
        """Returns (critic input, raw outputs, category code per block).

        ``forced`` (rows, blocks) holds a category per block or -1: forced blocks take that
        category (conditions). ``hard``: values and codes only (sampling, no one-hots built).
        """
        acc = self.out(self.body(x))
        n = self.n_values
        values = torch.tanh(acc[:, :n])
        if not self.widths:
            return values, acc, torch.zeros((len(acc), 0), dtype=torch.long, device=acc.device)
        logits = acc[:, n:] + self.bias if hard else acc[:, n:]
        noisy = self._noisy(logits, generator)
        with torch.no_grad():
            padded = noisy[:, self.pad_index].masked_fill(~self.pad_valid, float("-inf"))
            top, codes = padded.max(-1)
        if forced is not None:
            codes = torch.where(forced >= 0, forced, codes)
        if hard:
            return values, acc, codes
        # softmax per block on the flat layout: the gradient path has no gather or padding
        e = torch.exp((noisy - top[:, self.block_of]) / tau)
        soft = e / (e @ self.member)[:, self.block_of]
        onehot = torch.zeros_like(soft).scatter_(1, codes + self.block_start, 1.0)
        return torch.cat([values, onehot - soft.detach() + soft], dim=1), acc, codes

    def _noisy(self, logits, generator):
        """Logits plus Gumbel noise (a categorical draw per block), or the logits alone: then
        every category is a function of the noise vector, so categories can co-vary freely."""
        if not self.gumbel:
            return logits
        u = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
        return logits - torch.log(-torch.log(u + 1e-20) + 1e-20)


LEAK = 0.2  # the critic's leaky ReLU slope (private fits differentiate it by hand)


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
            h = F.leaky_relu(layer(h), LEAK)
            if self.training and self.dropout > 0:
                keep = torch.rand(h.shape, generator=generator, device=h.device) >= self.dropout
                h = h * keep / (1 - self.dropout)
        return self.out(h)
