"""Training of the synthesizer: condition sampling, the training step and the epoch loop.

One step updates the critic (WGAN-GP, packed) and the generator (adversarial loss, condition
cross-entropy and moment loss) from a single generator forward and a single backward pass;
optional extra critic steps come before it. Steps return loss tensors (no ``.item()``: the
loop syncs once per epoch). All randomness comes from the ``numpy.random.Generator`` and
``torch.Generator`` passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from pyprofile.models.synth.modules import Discriminator, Generator

MOMENT_STD_FLOOR = 0.2  # encoded columns are standardised, rare one-hots amplified at most 5x


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
    cond_blocks: torch.Tensor  # index of each discrete column's block among all blocks
    noise_dim: int


def _noise(nets, cond, generator):
    z = torch.randn((len(cond), nets.noise_dim), generator=generator, device=cond.device)
    return torch.cat([z, cond], dim=1)


def interpolate(real, fake, pac, generator):
    """Random points between real and fake packs (one mixing weight per pack)."""
    alpha = torch.rand((len(real) // pac, 1, 1), generator=generator, device=real.device)
    alpha = alpha.expand(-1, pac, real.shape[1]).reshape(real.shape)
    return alpha * real + (1 - alpha) * fake


def forced_codes(nets, cols, cats, n_blocks, device):
    """(rows, blocks) codes that pin each row's condition column to its category (-1: free)."""
    forced = torch.full((len(cols), n_blocks), -1, dtype=torch.long, device=device)
    if len(nets.cond_blocks):
        rows = torch.arange(len(cols), device=device)
        forced[rows, nets.cond_blocks[cols]] = cats
    return forced


def draw_batch(sampler, rng, nets, data, batch_size):
    """(conditions, forced codes, columns, categories, matching real rows) for one update."""
    device = data.device
    cols, cats, rows = sampler.sample_train(batch_size, rng)
    cols_t = torch.as_tensor(cols, device=device)
    cats_t = torch.as_tensor(cats, device=device)
    forced = forced_codes(nets, cols_t, cats_t, len(nets.generator.widths), device)
    real = data[torch.as_tensor(rows, device=device)]
    return sampler.vector(cols, cats, device), forced, cols_t, cats_t, real


def critic_pass(disc, real_in, fake_in, *, penalty, generator, autocast):
    """Real packs, fake packs and (with ``penalty``) interpolates through the critic as one
    batch; returns (mean score on real, mean score on fakes, WGAN-GP penalty: the critic's
    gradient norm on the interpolates, penalised away from 1)."""
    pac = disc.pac
    parts = [real_in, fake_in]
    if penalty:
        mix = interpolate(real_in, fake_in.detach(), pac, generator).requires_grad_(True)
        parts.append(mix)
    with autocast():
        scores = disc(torch.cat(parts), generator).float()
    packs = len(real_in) // pac
    gp = torch.zeros((), device=real_in.device)
    if penalty:
        (grad,) = torch.autograd.grad(scores[2 * packs :].sum(), mix, create_graph=True)
        gp = ((grad.reshape(-1, pac * mix.shape[1]).norm(2, dim=1) - 1) ** 2).mean()
    return scores[:packs].mean(), scores[packs : 2 * packs].mean(), gp


def discriminator_step(nets, opt, real, cond, forced, *, tau, gp_weight, generator, autocast):
    """An extra critic update on fresh fakes (no generator gradient needed)."""
    with torch.no_grad(), autocast():
        fake, _, _ = nets.generator(
            _noise(nets, cond, generator), tau=tau, generator=generator, forced=forced
        )
    real_in = torch.cat([real, cond], dim=1)
    fake_in = torch.cat([fake.float(), cond], dim=1)
    score_real, score_fake, gp = critic_pass(
        nets.discriminator, real_in, fake_in, penalty=True, generator=generator, autocast=autocast
    )
    loss = score_fake - score_real
    opt.zero_grad(set_to_none=True)
    (loss + gp_weight * gp).backward()
    opt.step()
    return loss.detach(), gp.detach()


class MomentMatcher:
    """Moment loss: squared distance between the means and second moments of real and
    generated rows in the encoded space, after standardising every encoded column.

    On one-hot blocks the second moment holds every pair of columns' contingency table, and
    on the scaled values their correlation: matching it pulls the generator straight at the
    pairwise structure that the critic only reports through its score. Standardising puts
    numeric values (small in the encoding) and one-hots on one footing; the floor on the
    standard deviation keeps rare categories from amplifying sampling noise.
    """

    def __init__(self, weight: float, data: torch.Tensor):
        self.weight = weight
        self.center = data.mean(0)
        self.scale = 1 / data.std(0).clamp_min(MOMENT_STD_FLOOR)

    def _moments(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.center) * self.scale
        return torch.cat([x.mean(0)[None], x.t() @ x / len(x)])

    def __call__(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self._moments(real)
        return self.weight * ((self._moments(fake) - target) ** 2).sum()


class _Reverse(torch.autograd.Function):
    """Identity forward, negated gradient backward (gradient reversal)."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -grad


def train_step(nets, opts, batch, *, tau, gp_weight, moments, generator, autocast, penalty=True):
    """Critic and generator updated together from one forward and one backward pass; returns
    the losses (critic, penalty, generator's adversarial, condition, moment) as one tensor.

    Real rows, fakes (through a gradient reversal) and, with ``penalty``, the interpolates of
    the gradient penalty go through the critic as one batch, so a single backward of
    ``critic(fake) - critic(real) + penalty + condition loss + moment loss`` gives the critic
    the gradient of its WGAN-GP loss and the generator that of
    ``-critic(fake) + condition loss + moment loss``."""
    cond, forced, cols, cats, real = batch
    opt_d, opt_g = opts
    with autocast():
        fake, raw, _ = nets.generator(
            _noise(nets, cond, generator), tau=tau, generator=generator, forced=forced
        )
    fake_in = _Reverse.apply(torch.cat([fake.float(), cond], dim=1))
    real_in = torch.cat([real, cond], dim=1)
    score_real, score_fake, gp = critic_pass(
        nets.discriminator,
        real_in,
        fake_in,
        penalty=penalty,
        generator=generator,
        autocast=autocast,
    )
    loss_d = score_fake - score_real
    cond_loss = condition_loss(nets, raw, cols, cats)
    moment = moments(fake.float(), real) if moments is not None else torch.zeros_like(gp)
    loss = loss_d + gp_weight * gp + cond_loss + moment
    opt_d.zero_grad(set_to_none=True)
    opt_g.zero_grad(set_to_none=True)
    loss.backward()
    opt_d.step()
    opt_g.step()
    losses = (loss_d, gp, -score_fake, cond_loss, moment)
    return torch.stack([x.detach().float() for x in losses])


def condition_loss(nets, raw, cols, cats):
    """Cross-entropy of each row's condition column against its asked-for category."""
    if not len(nets.cond_blocks):
        return torch.zeros((), device=raw.device)
    g = nets.generator
    block = nets.cond_blocks[cols]  # each row's block: gather just its logits
    logits = raw[:, g.n_values :].float().gather(1, g.pad_index[block])
    logits = logits.masked_fill(~g.pad_valid[block], -1e4)
    return torch.nn.functional.cross_entropy(logits, cats)


def lr_factor(schedule: str, progress: float) -> float:
    """Learning-rate multiplier at ``progress`` in [0, 1]: constant, or cosine down to 10%."""
    if schedule == "cosine":
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))
    return 1.0


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation settings of one training run (see :class:`Synthesizer`)."""

    epochs: int
    batch_size: int
    max_steps: int | None
    lr_g: float
    lr_d: float
    weight_decay: float
    discriminator_steps: int
    gp_weight: float
    schedule: str
    tau: float
    amp: bool
    moment_weight: float = 0.0
    gp_every: int = 1
    eval_every: int = 10


def train(
    nets: Nets,
    data: torch.Tensor,
    sampler: ConditionSampler,
    config: TrainConfig,
    *,
    rng: np.random.Generator,
    generator: torch.Generator,
    evaluate=None,
    progress=None,
) -> tuple[list[dict], int]:
    """The epoch loop (Adam, cosine learning-rate decay); returns one record per epoch (losses
    averaged over its batches) and the epoch whose generator is kept: with ``evaluate`` (a
    callable returning a quality estimate), the generator is scored every ``eval_every``
    epochs and at the end, and the best kept."""
    adam = {"betas": (0.5, 0.9), "weight_decay": config.weight_decay, "fused": True}
    loop = _Loop(
        nets=nets,
        data=data,
        sampler=sampler,
        config=config,
        opt_g=torch.optim.Adam(nets.generator.parameters(), lr=config.lr_g, **adam),
        opt_d=torch.optim.Adam(nets.discriminator.parameters(), lr=config.lr_d, **adam),
        steps=steps_per_epoch(len(data), config),
        rng=rng,
        generator=generator,
        moments=MomentMatcher(config.moment_weight, data) if config.moment_weight > 0 else None,
    )
    epochs, history, best = config.epochs, [], None
    nets.generator.train()
    nets.discriminator.train()
    for epoch in range(epochs):
        record = loop.epoch(epoch)
        if evaluate is not None and ((epoch + 1) % config.eval_every == 0 or epoch + 1 == epochs):
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


def steps_per_epoch(n_rows: int, config: TrainConfig) -> int:
    """Optimiser steps per epoch: one pass over the rows (batches are drawn at random, so an
    epoch is a number of steps), cut so that all epochs together take at most ``max_steps``:
    the cost then stops growing with the table, and every epoch still ends in a checkpoint
    and a learning-rate step of the same schedule."""
    steps = max(1, n_rows // config.batch_size)
    if config.max_steps is not None:
        steps = min(steps, max(1, config.max_steps // config.epochs))
    return steps


@dataclass
class _Loop:
    """Everything one epoch of training needs; :meth:`epoch` runs one."""

    nets: Nets
    data: torch.Tensor
    sampler: ConditionSampler
    config: TrainConfig
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    steps: int
    rng: np.random.Generator
    generator: torch.Generator
    moments: MomentMatcher | None

    def autocast(self):
        device = self.data.device.type
        enabled = self.config.amp and device == "cuda"
        return torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=enabled)

    def _set_lr(self, done: float) -> None:
        factor = lr_factor(self.config.schedule, done)
        for opt, lr in ((self.opt_g, self.config.lr_g), (self.opt_d, self.config.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr * factor

    def epoch(self, epoch: int) -> dict:
        """One pass over the data; the epoch's record (losses averaged over its steps)."""
        sums = torch.zeros(5, device=self.data.device)
        penalised = 0
        for step in range(self.steps):
            global_step = epoch * self.steps + step
            self._set_lr(global_step / (self.config.epochs * self.steps))
            for _ in range(self.config.discriminator_steps - 1):
                cond, forced, _, _, real = draw_batch(
                    self.sampler, self.rng, self.nets, self.data, self.config.batch_size
                )
                discriminator_step(
                    self.nets,
                    self.opt_d,
                    real,
                    cond,
                    forced,
                    tau=self.config.tau,
                    gp_weight=self.config.gp_weight,
                    generator=self.generator,
                    autocast=self.autocast,
                )
            penalty = global_step % self.config.gp_every == 0
            penalised += penalty
            sums += train_step(
                self.nets,
                (self.opt_d, self.opt_g),
                draw_batch(self.sampler, self.rng, self.nets, self.data, self.config.batch_size),
                tau=self.config.tau,
                # lazy regularisation: the penalty on every gp_every-th step, scaled up
                gp_weight=self.config.gp_weight * self.config.gp_every,
                penalty=penalty,
                moments=self.moments,
                generator=self.generator,
                autocast=self.autocast,
            )
        mean = (sums / self.steps).tolist()
        return {
            "epoch": epoch + 1,
            "loss_d": mean[0],
            "gradient_penalty": mean[1] * self.steps / max(penalised, 1),  # penalised steps
            "loss_g": mean[2],
            "loss_cond": mean[3],
            "loss_moment": mean[4],
        }
