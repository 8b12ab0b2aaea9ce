"""The sequence recommender's network: a small causal transformer over event tokens.

Each position's input is the sum of a product embedding, an event-type embedding, a learned
position embedding (positions counted so that the latest event always has the last one) and,
optionally, an embedding of the log-bucketed time gap since the previous event. Pre-norm
transformer blocks (multi-head self-attention that sees only earlier positions and never
padding, then a GELU MLP) produce one hidden state per position; the last one, after a final
layer norm, is the customer's embedding. Next-product scores are its dot products with the
(tied) product embeddings plus a per-product bias.

All randomness (initialisation, dropout) comes from a ``torch.Generator`` passed in, never from
torch's global state.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from pyprofile.models.sequence_data import GAP_BUCKETS, PAD


def dropout(x: torch.Tensor, p: float, generator: torch.Generator | None) -> torch.Tensor:
    """Inverted dropout drawn from ``generator``; identity when ``generator`` is None (eval)."""
    if generator is None or p <= 0.0:
        return x
    keep = torch.rand(x.shape, generator=generator, device=x.device) >= p
    return x * keep / (1.0 - p)


class CausalBlock(nn.Module):
    """Pre-norm transformer block: masked multi-head self-attention, then an MLP."""

    def __init__(self, dim: int, heads: int, dropout_rate: float):
        super().__init__()
        self.heads, self.p = heads, dropout_rate
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, 4 * dim)
        self.out = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, generator=None) -> torch.Tensor:
        b, length, dim = x.shape
        q, k, v = self.qkv(self.norm1(x)).split(dim, dim=2)
        shape = (b, length, self.heads, dim // self.heads)
        q, k, v = (t.view(shape).transpose(1, 2) for t in (q, k, v))
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        attended = attended.transpose(1, 2).reshape(b, length, dim)
        x = x + dropout(self.proj(attended), self.p, generator)
        return x + dropout(self.out(F.gelu(self.fc(self.norm2(x)))), self.p, generator)


class SequenceNet(nn.Module):
    """Embeddings, causal blocks, a final norm and the tied next-product head."""

    def __init__(
        self,
        n_items: int,
        n_types: int,
        *,
        max_length: int,
        dim: int,
        layers: int,
        heads: int,
        dropout_rate: float,
        time_gaps: bool,
    ):
        super().__init__()
        self.p = dropout_rate
        self.item = nn.Embedding(n_items + 2, dim, padding_idx=PAD)
        self.kind = nn.Embedding(n_types + 2, dim, padding_idx=PAD)
        self.position = nn.Embedding(max_length, dim)
        self.gap = nn.Embedding(GAP_BUCKETS, dim, padding_idx=0) if time_gaps else None
        self.blocks = nn.ModuleList(CausalBlock(dim, heads, dropout_rate) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.bias = nn.Parameter(torch.zeros(n_items))

    def init_(self, generator: torch.Generator) -> SequenceNet:
        """GPT-style initialisation from ``generator``: N(0, 0.02) weights (residual outputs
        scaled down by the depth), zero biases and padding rows, unit layer norms."""
        depth_scale = 0.02 / math.sqrt(2 * max(len(self.blocks), 1))
        with torch.no_grad():
            for name, param in self.named_parameters():
                if param.dim() == 1:  # layer-norm weights (1) and biases (0)
                    param.fill_(1.0 if name.endswith("weight") else 0.0)
                    continue
                std = depth_scale if name.endswith(("proj.weight", "out.weight")) else 0.02
                param.normal_(0.0, std, generator=generator)
            for emb in (self.item, self.kind, self.gap):
                if emb is not None:
                    emb.weight[emb.padding_idx].zero_()
        return self

    def hidden(self, items, types, gaps, generator=None) -> torch.Tensor:
        """Hidden states ``(batch, length, dim)`` of left-padded token windows."""
        length = items.shape[1]
        positions = torch.arange(
            self.position.num_embeddings - length, self.position.num_embeddings, device=items.device
        )
        x = self.item(items) + self.kind(types) + self.position(positions)[None]
        if self.gap is not None:
            x = x + self.gap(gaps)
        x = dropout(x, self.p, generator)
        mask = attention_mask(items)
        for block in self.blocks:
            x = block(x, mask, generator)
        return self.norm(x)

    def logits(self, h: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        """Next-product scores: for every product, or for the product indices ``items``."""
        weight = self.item.weight[2:] if items is None else self.item.weight[items + 2]
        bias = self.bias if items is None else self.bias[items]
        return h @ weight.T + bias


def attention_mask(items: torch.Tensor) -> torch.Tensor:
    """``(batch, 1, length, length)``: position ``q`` may attend to ``k <= q`` unless ``k`` is
    padding (a padded position attends to itself only, so no row is empty)."""
    length = items.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool, device=items.device).tril()
    real = (items != PAD)[:, None, :]
    diagonal = torch.eye(length, dtype=torch.bool, device=items.device)[None]
    return ((causal[None] & real) | diagonal)[:, None]
