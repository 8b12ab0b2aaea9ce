"""DP-SGD training of the synthesizer (``Synthesizer(epsilon=...)``; see :mod:`.dp`).

Each step draws a Poisson sample of real rows (each row in with probability ``sample_rate``),
pairs every real row with a generated one, and computes each pair's critic loss
``critic(fake) - critic(real) + gp_weight * penalty`` and its gradient on its own
(``torch.func``: one real row changes one gradient). Each gradient is clipped to ``clip``;
the sum plus Gaussian noise of sd ``noise_multiplier * clip``, over the expected sample size,
is the critic's update. The generator then takes a step against the critic on generated rows
only, with conditions drawn from the released category frequencies: it never reads a real row.
A real row's condition is one of its own categories (a random column), as in CTGAN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pyprofile.models.synth.modules import LEAK, Discriminator
from pyprofile.models.synth.train import (
    ConditionSampler,
    Nets,
    TrainConfig,
    condition_loss,
    forced_codes,
    lr_factor,
    steps_per_epoch,
)


@dataclass
class PrivateStep:
    """What one DP-SGD step needs: the data, its codes, the budget's noise and the optimisers."""

    nets: Nets
    data: torch.Tensor
    codes: np.ndarray  # (rows, discrete columns): the real rows' own categories
    sampler: ConditionSampler  # built from the released counts
    config: TrainConfig
    noise_multiplier: float
    clip: float
    rng: np.random.Generator  # secret: row sampling
    noise: torch.Generator  # secret: gradient noise
    generator: torch.Generator  # the generator's noise (touches no real row)

    def __post_init__(self):
        adam = {"betas": (0.5, 0.9), "weight_decay": self.config.weight_decay}
        self.opt_g = torch.optim.Adam(self.nets.generator.parameters(), lr=self.config.lr_g, **adam)
        self.opt_d = torch.optim.Adam(
            self.nets.discriminator.parameters(), lr=self.config.lr_d, **adam
        )
        self.expected = max(self.config.batch_size, 1)
        self.sample_rate = min(self.config.batch_size / len(self.data), 1.0)

    def _fakes(self, m: int, *, grad_needed: bool):
        """(critic input, raw outputs, columns, categories) of ``m`` generated rows."""
        s, device = self.sampler, self.data.device
        if s.n_columns:
            cols = s._columns(m, self.rng)
            cats = s._draw(s.cum_freq, cols, self.rng)
        else:
            cols = cats = np.zeros(m, dtype=np.int64)
        cond = s.vector(cols, cats, device)
        cols_t, cats_t = torch.as_tensor(cols, device=device), torch.as_tensor(cats, device=device)
        forced = forced_codes(self.nets, cols_t, cats_t, len(self.nets.generator.widths), device)
        z = torch.randn((m, self.nets.noise_dim), generator=self.generator, device=device)
        with torch.set_grad_enabled(grad_needed):
            fake, raw, _ = self.nets.generator(
                torch.cat([z, cond], 1), tau=0.2, generator=self.generator, forced=forced
            )
        return torch.cat([fake, cond], 1), raw, cols_t, cats_t

    def _reals(self) -> torch.Tensor:
        """A Poisson sample of real rows, each with one of its own categories as condition."""
        n = len(self.data)
        m = int(self.rng.binomial(n, self.sample_rate))
        rows = self.rng.choice(n, m, replace=False)
        s = self.sampler
        if s.n_columns:
            cols = s._columns(m, self.rng)
            cats = self.codes[rows, cols]
        else:
            cols = cats = np.zeros(m, dtype=np.int64)
        real = self.data[torch.as_tensor(rows, device=self.data.device)]
        return torch.cat([real, s.vector(cols, cats, self.data.device)], 1)

    def critic_step(self) -> None:
        """One private critic update (its loss on real rows is not kept: it is not private)."""
        real = self._reals()
        fake = self._fakes(len(real), grad_needed=False)[0]
        alpha = torch.rand((len(real), 1), generator=self.generator, device=real.device)
        grads = self.private_gradient(real, fake, alpha)
        for name, p in self.nets.discriminator.named_parameters():
            p.grad = grads[name]
        self.opt_d.step()

    def private_gradient(self, real, fake, alpha) -> dict[str, torch.Tensor]:
        """The critic's private gradient for real rows paired with generated ones: each pair's
        gradient clipped to ``clip``, summed, plus Gaussian noise, over the expected sample
        size."""
        disc = self.nets.discriminator
        with torch.no_grad():
            grads = pair_gradients(disc, real, fake, alpha, self.config.gp_weight)[0]
            norms = torch.sqrt(sum(g.reshape(len(real), -1).pow(2).sum(1) for g in grads))
            scale = (self.clip / (norms + 1e-6)).clamp(max=1.0)
            out = {}
            for (name, p), g in zip(disc.named_parameters(), grads, strict=True):
                sd = self.noise_multiplier * self.clip
                noise = torch.normal(0.0, sd, p.shape, generator=self.noise).to(p.device)
                out[name] = (torch.tensordot(scale, g, dims=1) + noise) / self.expected
        return out

    def generator_step(self) -> tuple[float, float]:
        """One generator update against the critic (generated rows only)."""
        disc = self.nets.discriminator
        disc.requires_grad_(False)
        try:
            fake, raw, cols, cats = self._fakes(self.config.batch_size, grad_needed=True)
            adversarial = -disc(fake).mean()
            cond = condition_loss(self.nets, raw, cols, cats)
            self.opt_g.zero_grad(set_to_none=True)
            (adversarial + cond).backward()
            self.opt_g.step()
        finally:
            disc.requires_grad_(True)
        return adversarial.item(), cond.item()

    def set_lr(self, progress: float) -> None:
        factor = lr_factor(self.config.schedule, progress)
        for opt, lr in ((self.opt_g, self.config.lr_g), (self.opt_d, self.config.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr * factor


def private_steps(n_rows: int, config: TrainConfig) -> int:
    """The critic steps (each one sampled mechanism for the accountant) a fit takes."""
    return config.epochs * steps_per_epoch(n_rows, config) * config.discriminator_steps


def train_private(step: PrivateStep, *, progress=None) -> tuple[list[dict], int]:
    """The epoch loop of a private fit; (one record per epoch, the last epoch): a private fit
    keeps its last generator (choosing a checkpoint would read real rows)."""
    config = step.config
    per_epoch = steps_per_epoch(len(step.data), config)
    total = config.epochs * per_epoch
    step.nets.generator.train()
    step.nets.discriminator.train()
    history = []
    for epoch in range(config.epochs):
        sums = np.zeros(2)
        for i in range(per_epoch):
            step.set_lr((epoch * per_epoch + i) / total)
            for _ in range(config.discriminator_steps):
                step.critic_step()
            sums += step.generator_step()
        mean = sums / per_epoch
        record = {  # the critic's losses read real rows without noise: not recorded
            "epoch": epoch + 1,
            "loss_d": None,
            "gradient_penalty": None,
            "loss_g": mean[0],
            "loss_cond": mean[1],
            "loss_moment": 0.0,
        }
        history.append(record)
        if progress is not None:
            progress(record)
    return history, config.epochs


def _forward(disc: Discriminator, x: torch.Tensor):
    """Inputs of every layer and the leaky ReLU's slope at every hidden unit."""
    inputs, slopes = [x], []
    for layer in disc.hidden:
        pre = layer(inputs[-1])
        slopes.append(torch.where(pre > 0, 1.0, LEAK))
        inputs.append(pre * slopes[-1])
    return inputs, slopes, disc.out(inputs[-1])[:, 0]


def _score_gradients(disc, inputs, slopes, sign: float) -> list[torch.Tensor]:
    """Per-row gradients of ``sign * critic(x)`` (weights and biases, in parameter order)."""
    back = torch.full((len(inputs[0]), 1), sign, device=inputs[0].device)
    out = [back[:, :, None] * inputs[-1][:, None, :], back]
    back = back @ disc.out.weight
    for layer, x, slope in zip(disc.hidden[::-1], inputs[-2::-1], slopes[::-1], strict=True):
        back = back * slope
        out = [back[:, :, None] * x[:, None, :], back, *out]
        back = back @ layer.weight
    return out


def _penalty_gradients(disc, slopes, gp_weight: float):
    """Per-row gradients of ``gp_weight * (|d critic / dx| - 1) ** 2`` and the penalties.

    The critic is piecewise linear, so its input gradient is a product of weights and fixed
    slopes, ``W1' s1 W2' s2 ... w``; differentiating the penalty through that product gives
    each weight an outer product of two per-row vectors (biases get nothing)."""
    weights = [layer.weight for layer in disc.hidden]
    vs = [slopes[-1] * disc.out.weight]  # v_L, then v_(L-1) ... v_1
    for w, slope in zip(weights[:0:-1], slopes[-2::-1], strict=True):
        vs.append(slope * (vs[-1] @ w))
    vs = vs[::-1]  # v_1 ... v_L
    slope_x = vs[0] @ weights[0]  # the critic's gradient in its input, per row
    norm = torch.sqrt(slope_x.pow(2).sum(1, keepdim=True) + 1e-12)
    penalty = (norm - 1)[:, 0] ** 2
    back = gp_weight * 2 * (norm - 1) * slope_x / norm
    out = []
    for k, w in enumerate(weights):
        if k:  # v_k = s_k * (v_(k+1) W_(k+1)): back is d/d v_k here
            back = back * slopes[k - 1]
        out += [vs[k][:, :, None] * back[:, None, :], torch.zeros_like(vs[k])]
        back = back @ w.T
    out += [(back * slopes[-1])[:, None, :], torch.zeros((len(back), 1), device=back.device)]
    return out, penalty


def pair_gradients(disc, real, fake, alpha, gp_weight):
    """Per-row gradients (one tensor per parameter, rows first) of each pair's WGAN-GP loss
    ``critic(fake) - critic(real) + gp_weight * penalty``, the losses and the penalties.
    Written out for the critic's MLP (no dropout) instead of per-row autograd: many times
    faster, and tested against autograd row by row."""
    if disc.dropout and disc.training:
        raise ValueError("a private critic has no dropout")
    real_in, real_slopes, real_score = _forward(disc, real)
    fake_in, fake_slopes, fake_score = _forward(disc, fake)
    mix_slopes = _forward(disc, alpha * real + (1 - alpha) * fake)[1]
    gp_grads, penalty = _penalty_gradients(disc, mix_slopes, gp_weight)
    parts = zip(
        _score_gradients(disc, fake_in, fake_slopes, 1.0),
        _score_gradients(disc, real_in, real_slopes, -1.0),
        gp_grads,
        strict=True,
    )
    return [a + b + c for a, b, c in parts], fake_score - real_score, penalty
