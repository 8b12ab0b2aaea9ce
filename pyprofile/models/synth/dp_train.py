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
from torch.func import functional_call, grad, vmap

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

    def critic_step(self) -> tuple[float, float]:
        """One private critic update; (mean critic loss, mean penalty) of the sample."""
        real = self._reals()
        fake = self._fakes(len(real), grad_needed=False)[0]
        alpha = torch.rand((len(real), 1), generator=self.generator, device=real.device)
        grads, loss, gp = self.private_gradient(real, fake, alpha)
        for name, p in self.nets.discriminator.named_parameters():
            p.grad = grads[name]
        self.opt_d.step()
        return loss, gp

    def private_gradient(self, real, fake, alpha) -> tuple[dict, float, float]:
        """The critic's private gradient for real rows paired with generated ones: each pair's
        gradient clipped to ``clip``, summed, plus Gaussian noise, over the expected sample
        size; and the sample's mean loss and penalty."""
        disc = self.nets.discriminator
        params = {k: v.detach() for k, v in disc.named_parameters()}
        if len(real):
            grads, (loss, gp) = vmap(grad(self._pair_loss, has_aux=True), in_dims=(None, 0, 0, 0))(
                params, real, fake, alpha
            )
            norms = torch.sqrt(sum(g.reshape(len(real), -1).pow(2).sum(1) for g in grads.values()))
            scale = (self.clip / (norms + 1e-6)).clamp(max=1.0)
            summed = {k: torch.tensordot(scale, g, dims=1) for k, g in grads.items()}
            stats = loss.mean().item(), gp.mean().item()
        else:  # an empty Poisson sample: the update is noise alone
            summed = {k: torch.zeros_like(v) for k, v in params.items()}
            stats = 0.0, 0.0
        out = {}
        for name, value in summed.items():
            sd = self.noise_multiplier * self.clip
            noise = torch.normal(0.0, sd, value.shape, generator=self.noise).to(value.device)
            out[name] = (value + noise) / self.expected
        return out, *stats

    def _pair_loss(self, params, real, fake, alpha):
        """One pair's WGAN-GP critic loss (and its parts), as a function of the parameters."""
        disc = self.nets.discriminator

        def score(p, x):
            return functional_call(disc, p, (x[None],))[0, 0]

        mix = alpha * real + (1 - alpha) * fake
        slope = grad(score, argnums=1)(params, mix)
        gp = (torch.sqrt(slope.pow(2).sum() + 1e-12) - 1) ** 2
        loss = score(params, fake) - score(params, real)
        return loss + self.config.gp_weight * gp, (loss, gp)

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
        sums = np.zeros(4)
        for i in range(per_epoch):
            step.set_lr((epoch * per_epoch + i) / total)
            for _ in range(config.discriminator_steps):
                loss_d, gp = step.critic_step()
            sums += (loss_d, gp, *step.generator_step())
        mean = sums / per_epoch
        record = {
            "epoch": epoch + 1,
            "loss_d": mean[0],
            "gradient_penalty": mean[1],
            "loss_g": mean[2],
            "loss_cond": mean[3],
            "loss_moment": 0.0,
        }
        history.append(record)
        if progress is not None:
            progress(record)
    return history, config.epochs
