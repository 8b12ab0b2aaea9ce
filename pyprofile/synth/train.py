"""Training of the synthesizer: condition sampling, the two WGAN-GP steps and the epoch loop.

``discriminator_step`` and ``generator_step`` each do one optimiser step and return loss
tensors (no ``.item()``: the loop syncs once per epoch). All randomness comes from the
``numpy.random.Generator`` and ``torch.Generator`` passed in.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from pyprofile.synth.modules import Discriminator, Generator, OutputLayout


class ConditionSampler:
    """Training-by-sampling: pick a discrete column, a category by log-frequency, a real row.

    ``codes`` holds every row's category code per discrete column. With a ``label`` column,
    that column is the condition on ``label_share`` of the rows, so the generator learns the
    label-conditional distributions that label-stratified sampling later asks for.
    """

    def __init__(self, codes: np.ndarray, n_categories: list[int], *, label=None, label_share=0.5):
        self.n_columns = len(n_categories)
        self.n_categories = np.asarray(n_categories)
        self.offsets = np.concatenate([[0], np.cumsum(n_categories)[:-1]]).astype(np.int64)
        self.dim = int(np.sum(n_categories))
        self.label = label
        self.label_share = label_share
        self.n_rows = len(codes)
        if not self.n_columns:
            return
        width = int(self.n_categories.max())
        counts = np.zeros((self.n_columns, width))
        for d, k in enumerate(n_categories):
            counts[d, :k] = np.bincount(codes[:, d], minlength=k)
        self.frequency = counts / counts.sum(1, keepdims=True)
        logf = np.where(counts > 0, np.log(counts + 1), 0.0)
        self.cum_log = np.cumsum(logf / logf.sum(1, keepdims=True), 1)
        self.cum_freq = np.cumsum(self.frequency, 1)
        self.order = np.argsort(codes, axis=0, kind="stable")  # rows sorted per column
        starts = np.concatenate([np.zeros((self.n_columns, 1)), np.cumsum(counts, 1)], 1)
        self.starts, self.counts = starts[:, :-1].astype(np.int64), counts.astype(np.int64)

    def _columns(self, batch, rng):
        cols = rng.integers(0, self.n_columns, batch)
        if self.label is not None and self.n_columns > 1:
            others = rng.integers(0, self.n_columns - 1, batch)
            others = others + (others >= self.label)
            cols = np.where(rng.random(batch) < self.label_share, self.label, others)
        return cols

    @staticmethod
    def _draw(cum, cols, rng):
        u = rng.random(len(cols))[:, None]
        return np.minimum((cum[cols] < u).sum(1), cum.shape[1] - 1)

    def sample_train(self, batch, rng):
        """(columns, categories, matching real rows) for one training batch."""
        if not self.n_columns:
            zeros = np.zeros(batch, dtype=np.int64)
            return zeros, zeros, rng.integers(0, self.n_rows, batch)
        cols = self._columns(batch, rng)
        cats = self._draw(self.cum_log, cols, rng)
        start, count = self.starts[cols, cats], self.counts[cols, cats]
        pos = start + np.floor(rng.random(batch) * count).astype(np.int64)
        return cols, cats, self.order[pos, cols]

    def sample_original(self, batch, rng):
        """Conditions for plain sampling: a random column, a category at its real frequency."""
        if not self.n_columns:
            return np.zeros(batch, dtype=np.int64), np.zeros(batch, dtype=np.int64)
        cols = rng.integers(0, self.n_columns, batch)
        return cols, self._draw(self.cum_freq, cols, rng)

    def stratified(self, column, n, rng):
        """Exactly the real frequency of ``column``'s categories over n rows (shuffled)."""
        freq = self.frequency[column, : self.n_categories[column]]
        counts = np.floor(freq * n).astype(np.int64)
        rest = np.argsort(-(freq * n - counts), kind="stable")[: n - counts.sum()]
        counts[rest] += 1
        return rng.permutation(np.repeat(np.arange(len(freq)), counts))

    def vector(self, cols, cats, device) -> torch.Tensor:
        cond = torch.zeros((len(cols), self.dim), device=device)
        if self.n_columns:
            idx = torch.as_tensor(self.offsets[cols] + cats, device=device)
            cond[torch.arange(len(cols), device=device), idx] = 1.0
        return cond


@dataclass
class Nets:
    generator: Generator
    discriminator: Discriminator
    layout: OutputLayout
    cond_blocks: torch.Tensor  # index of each discrete column's block among all blocks
    noise_dim: int


def _noise(nets, cond, generator):
    z = torch.randn((len(cond), nets.noise_dim), generator=generator, device=cond.device)
    return torch.cat([z, cond], dim=1)


def gradient_penalty(disc, real, fake, pac, generator):
    """WGAN-GP on packs: penalise the critic's gradient norm away from 1 on interpolates."""
    alpha = torch.rand((len(real) // pac, 1, 1), generator=generator, device=real.device)
    alpha = alpha.expand(-1, pac, real.shape[1]).reshape(real.shape)
    mix = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    score = disc(mix, generator)
    (grad,) = torch.autograd.grad(score.sum(), mix, create_graph=True)
    norm = grad.reshape(-1, pac * real.shape[1]).norm(2, dim=1)
    return ((norm - 1) ** 2).mean()


def forced_codes(nets, cols, cats, n_blocks, device):
    """(rows, blocks) codes that pin each row's condition column to its category (-1: free)."""
    forced = torch.full((len(cols), n_blocks), -1, dtype=torch.long, device=device)
    if len(nets.cond_blocks):
        rows = torch.arange(len(cols), device=device)
        forced[rows, nets.cond_blocks[cols]] = cats
    return forced


def discriminator_step(nets, opt, real, cond, forced, *, tau, gp_weight, generator, autocast):
    """One critic update; returns (wasserstein loss, gradient penalty) tensors."""
    with torch.no_grad(), autocast():
        fake, _, _ = nets.generator(
            _noise(nets, cond, generator), tau=tau, generator=generator, forced=forced
        )
    real_in = torch.cat([real, cond], dim=1)
    fake_in = torch.cat([fake.float(), cond], dim=1)
    with autocast():
        loss = (
            nets.discriminator(fake_in, generator).mean()
            - nets.discriminator(real_in, generator).mean()
        )
    gp = gradient_penalty(nets.discriminator, real_in, fake_in, nets.discriminator.pac, generator)
    opt.zero_grad(set_to_none=True)
    (loss.float() + gp_weight * gp).backward()
    opt.step()
    return loss.detach(), gp.detach()


def generator_step(nets, opt, cond, forced, cols, cats, *, tau, generator, autocast):
    """One generator update; returns (adversarial loss, condition cross-entropy) tensors."""
    with autocast():
        fake, raw, _ = nets.generator(
            _noise(nets, cond, generator), tau=tau, generator=generator, forced=forced
        )
        adv = -nets.discriminator(torch.cat([fake, cond], dim=1), generator).mean()
    if len(nets.cond_blocks):
        logits = nets.layout.padded(raw.float())[:, nets.cond_blocks]  # (rows, columns, width)
        chosen = logits[torch.arange(len(raw), device=raw.device), cols]
        chosen = chosen.masked_fill(torch.isinf(chosen), -1e4)
        cond_loss = torch.nn.functional.cross_entropy(chosen, cats)
    else:
        cond_loss = torch.zeros((), device=raw.device)
    opt.zero_grad(set_to_none=True)
    (adv.float() + cond_loss).backward()
    opt.step()
    return adv.detach(), cond_loss.detach()


def lr_factor(schedule: str, progress: float) -> float:
    """Learning-rate multiplier at ``progress`` in [0, 1]: constant, or cosine down to 10%."""
    if schedule == "cosine":
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))
    return 1.0


def train(
    nets: Nets,
    data: torch.Tensor,
    sampler: ConditionSampler,
    *,
    epochs: int,
    batch_size: int,
    lr_g: float,
    lr_d: float,
    weight_decay: float,
    discriminator_steps: int,
    gp_weight: float,
    schedule: str,
    tau: float,
    rng: np.random.Generator,
    generator: torch.Generator,
    amp: bool,
    head_lr_scale: float = 1.0,
    evaluate=None,
    eval_every: int = 10,
    progress=None,
) -> tuple[list[dict], int]:
    """The epoch loop; returns one record per epoch (losses averaged over its batches) and the
    epoch whose generator is kept: with ``evaluate`` (a callable returning a quality estimate),
    the generator is scored every ``eval_every`` epochs and at the end, and the best kept."""
    device = data.device
    head = [p for name, p in nets.generator.named_parameters() if name.startswith("mix.")]
    rest = [p for name, p in nets.generator.named_parameters() if not name.startswith("mix.")]
    groups = [{"params": rest, "scale": 1.0}]
    if head:
        groups.append({"params": head, "scale": head_lr_scale})
    opt_g = torch.optim.Adam(groups, lr=lr_g, betas=(0.5, 0.9), weight_decay=weight_decay)
    opt_d = torch.optim.Adam(
        nets.discriminator.parameters(), lr=lr_d, betas=(0.5, 0.9), weight_decay=weight_decay
    )
    use_amp = amp and device.type == "cuda"

    def autocast():
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp)

    steps = max(1, len(data) // batch_size)
    n_blocks = len(nets.generator.widths)
    total = epochs * steps
    history, best = [], None
    nets.generator.train()
    nets.discriminator.train()
    for epoch in range(epochs):
        t0 = time.perf_counter()
        sums = torch.zeros(4, device=device)
        for step in range(steps):
            factor = lr_factor(schedule, (epoch * steps + step) / total)
            for group in opt_g.param_groups:
                group["lr"] = lr_g * factor * group["scale"]
            for group in opt_d.param_groups:
                group["lr"] = lr_d * factor
            for _ in range(discriminator_steps):
                cols, cats, rows = sampler.sample_train(batch_size, rng)
                cond = sampler.vector(cols, cats, device)
                cols_t = torch.as_tensor(cols, device=device)
                cats_t = torch.as_tensor(cats, device=device)
                forced = forced_codes(nets, cols_t, cats_t, n_blocks, device)
                real = data[torch.as_tensor(rows, device=device)]
                loss_d, gp = discriminator_step(
                    nets,
                    opt_d,
                    real,
                    cond,
                    forced,
                    tau=tau,
                    gp_weight=gp_weight,
                    generator=generator,
                    autocast=autocast,
                )
            cols, cats, _ = sampler.sample_train(batch_size, rng)
            cond = sampler.vector(cols, cats, device)
            cols_t = torch.as_tensor(cols, device=device)
            cats_t = torch.as_tensor(cats, device=device)
            loss_g, loss_c = generator_step(
                nets,
                opt_g,
                cond,
                forced_codes(nets, cols_t, cats_t, n_blocks, device),
                cols_t,
                cats_t,
                tau=tau,
                generator=generator,
                autocast=autocast,
            )
            sums += torch.stack([loss_d.float(), gp, loss_g.float(), loss_c])
        mean = (sums / steps).tolist()
        record = {
            "epoch": epoch + 1,
            "loss_d": mean[0],
            "gradient_penalty": mean[1],
            "loss_g": mean[2],
            "loss_cond": mean[3],
            "seconds": time.perf_counter() - t0,
        }
        if evaluate is not None and ((epoch + 1) % eval_every == 0 or epoch + 1 == epochs):
            record["quality_estimate"] = score = float(evaluate())
            if best is None or score > best[0]:
                state = {k: v.detach().clone() for k, v in nets.generator.state_dict().items()}
                best = (score, epoch + 1, state)
        history.append(record)
        if progress is not None:
            progress(record)
    if best is None:
        return history, epochs
    nets.generator.load_state_dict(best[2])
    return history, best[1]
