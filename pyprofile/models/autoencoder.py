"""The segmenter's small ReLU autoencoder: torch training, float64 numpy scoring.

Training is seeded by a local ``torch.Generator``; the fitted encoder is kept as float64
(weight, bias) arrays, which :func:`encode` applies with sums accumulated left to right, the
order of the SQL that :mod:`pyprofile.warehouse.scoring_sql` writes.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from pyprofile.models.device import resolve_device, torch_threads

log = logging.getLogger(__name__)


def dense(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, *, relu: bool) -> np.ndarray:
    """``bias + sum_i weight[:, i] * x[:, i]`` accumulated left to right, as the SQL does."""
    acc = bias[None, :] + x[:, [0]] * weight[None, :, 0]
    for i in range(1, x.shape[1]):
        acc += x[:, [i]] * weight[None, :, i]
    return np.maximum(acc, 0.0) if relu else acc


def encode(
    z: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]], *, exact: bool = True
) -> np.ndarray:
    """Run the encoder layers (ReLU between, linear last) in float64; identity without layers.

    ``exact`` sums in the SQL's order (what scoring needs); ``exact=False`` uses BLAS, which is
    faster and agrees to rounding (enough for model selection).
    """
    for i, (weight, bias) in enumerate(layers):
        relu = i < len(layers) - 1
        if exact:
            z = dense(z, weight, bias, relu=relu)
        else:
            z = z @ weight.T + bias
            z = np.maximum(z, 0.0) if relu else z
    return z


def standardize_last(
    layers: list[tuple[np.ndarray, np.ndarray]], embedding: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Fold ``(e - mean) / std`` of the embedding into the last encoder layer's weights."""
    mean, std = embedding.mean(axis=0), embedding.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    weight, bias = layers[-1]
    return [*layers[:-1], (weight / std[:, None], (bias - mean) / std)]


class Autoencoder:
    """A small ReLU autoencoder and its training loop (seeded by a local torch.Generator)."""

    def __init__(
        self,
        n_in: int,
        *,
        hidden_dim: int,
        embedding_dim: int,
        seed: int,
        device: str,
        threads: int | None,
    ):
        import torch
        from torch import nn

        self.torch, self.nn = torch, nn
        self.threads = threads
        self.device = resolve_device(device)
        self.gen = torch.Generator().manual_seed(seed)
        self.encoder = nn.Sequential(
            nn.Linear(n_in, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, embedding_dim)
        )
        self.decoder = nn.Sequential(
            nn.Linear(embedding_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, n_in)
        )
        with torch.no_grad():  # seeded init from the local generator (PyTorch's default ranges)
            for layer in [*self.encoder, *self.decoder]:
                if isinstance(layer, nn.Linear):
                    bound = 1.0 / math.sqrt(layer.in_features)
                    layer.weight.uniform_(-bound, bound, generator=self.gen)
                    layer.bias.uniform_(-bound, bound, generator=self.gen)
        self.encoder.to(self.device)
        self.decoder.to(self.device)

    def train(
        self,
        z: np.ndarray,
        *,
        epochs: int,
        batch_size: int,
        learning_rate: float,
        noise: float = 0.0,
        centers: np.ndarray | None = None,
        gamma: float = 0.0,
        phase: str = "pretrain",
        verbose: bool = False,
    ) -> list[dict[str, float]]:
        """Minimise reconstruction MSE (+ ``gamma`` x squared distance to the nearest center).

        With ``centers`` this is the deep-clustering fine-tune (DCN-style): embeddings are pulled
        towards their k-means centers, which are learned jointly.
        """
        torch, nn = self.torch, self.nn
        params = [*self.encoder.parameters(), *self.decoder.parameters()]
        mu = None
        if centers is not None:
            mu = nn.Parameter(torch.as_tensor(centers, dtype=torch.float32, device=self.device))
            params.append(mu)
        optimiser = torch.optim.Adam(params, lr=learning_rate)
        data = torch.as_tensor(z, dtype=torch.float32)
        history: list[dict[str, float]] = []
        self.encoder.train()
        self.decoder.train()
        with torch_threads(self.threads, self.device):
            self._loop(
                data, history, optimiser, epochs, batch_size, noise, mu, gamma, phase, verbose
            )
        self.encoder.eval()
        self.decoder.eval()
        return history

    def _loop(self, data, history, optimiser, epochs, batch_size, noise, mu, gamma, phase, verbose):
        torch, nn = self.torch, self.nn
        n = data.shape[0]
        for epoch in range(epochs):
            order = torch.randperm(n, generator=self.gen)
            total = torch.zeros((), device=self.device)
            total_c = torch.zeros((), device=self.device)
            for start in range(0, n, batch_size):
                batch = data[order[start : start + batch_size]].to(self.device)
                noisy = batch
                if noise > 0:  # denoising: reconstruct the clean row from a perturbed one
                    noisy = batch + noise * torch.randn(
                        batch.shape, generator=self.gen, dtype=batch.dtype
                    ).to(self.device)
                emb = self.encoder(noisy)
                loss = nn.functional.mse_loss(self.decoder(emb), batch)
                total += loss.detach() * batch.shape[0]
                if mu is not None:
                    closest = torch.cdist(emb, mu).pow(2).min(dim=1).values.mean()
                    total_c += closest.detach() * batch.shape[0]
                    loss = loss + gamma * closest
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
            record = {"phase": phase, "epoch": epoch + 1, "loss": float(total.item() / n)}
            if mu is not None:
                record["cluster_loss"] = float(total_c.item() / n)
            history.append(record)
            if verbose:
                log.info("autoencoder %s epoch %d/%d  %s", phase, epoch + 1, epochs, record)

    def clone(self, seed: int) -> Autoencoder:
        """An independent copy of the current weights, with its own generator."""
        import copy

        other = copy.copy(self)
        other.encoder = copy.deepcopy(self.encoder)
        other.decoder = copy.deepcopy(self.decoder)
        other.gen = self.torch.Generator().manual_seed(seed)
        return other

    def layers(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Encoder weights and biases as float64 arrays (what SQL and predict use)."""
        return [
            (
                layer.weight.detach().cpu().numpy().astype(np.float64),
                layer.bias.detach().cpu().numpy().astype(np.float64),
            )
            for layer in self.encoder
            if isinstance(layer, self.nn.Linear)
        ]
