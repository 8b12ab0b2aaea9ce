"""``Synthesizer``: a conditional tabular GAN (CTGAN family) as a scikit-learn style estimator."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from pyprofile.errors import InputError
from pyprofile.models.base import Estimator
from pyprofile.models.data import as_arrow, sample_rows
from pyprofile.models.device import resolve_device, torch_threads
from pyprofile.models.synth.calibration import category_offsets
from pyprofile.models.synth.modules import Discriminator, Generator, init_
from pyprofile.models.synth.quality import QualityEstimator
from pyprofile.models.synth.train import ConditionSampler, Nets, TrainConfig, train
from pyprofile.models.synth.transformer import DataTransformer, warn_excluded

SAMPLE_CHUNK = 16384
TAU = 0.2
CALIBRATION_ROWS = 20_000  # enough for 1001 quantile knots, whatever the table's size
CATEGORY_ROWS = 10_000  # generated rows the category offsets are fitted on
DEFAULT_BATCH, WIDE_BATCH = 500, 1000  # rows per step; WIDE_BATCH from WIDE_LEVELS levels
WIDE_LEVELS = 100


class Synthesizer(Estimator):
    """Conditional tabular GAN (CTGAN family) for customer tables.

    - **Encoding**: numeric columns through their empirical quantiles to a Gaussian scale, then
      mode-specific normalisation (one mode: the columns are Gaussian already; ten with
      ``encoding="gmm"``); categories, booleans and null flags one-hot.
    - **Generator**: residual MLP from (noise, condition vector) to scaled values (tanh) and
      one-hot blocks (argmax forward, softmax gradient backward).
    - **Critic**: packed (PacGAN) MLP with dropout, WGAN-GP loss; training-by-sampling with
      log-frequency conditions and a condition cross-entropy.
    - **Moment loss**: the generator also matches the means and second moments of the
      standardised encoded rows (pairwise contingency tables and correlations).
    - **One pass per step**: critic and generator are updated from one generator forward
      and one backward (gradient reversal); lazy gradient penalty every ``gp_every`` steps.
    - **Calibration**: after training, every numeric column's generated distribution is
      mapped onto the real quantiles, and per-category logit offsets bring every category's
      (and null flag's) sampled frequency to the real one (``calibrate_categories``), so
      marginals match while the joint structure stays the generator's. The best checkpoint
      (quality estimate every ``eval_every`` epochs) is kept.
    - **Budget**: an epoch is one pass of random batches over the rows, cut so that all epochs
      together take at most ``max_steps`` optimiser steps (6,000: more than 300 epochs of
      Telco's or the 10k demo's feature table take, so their quality is unchanged); tables over
      ``max_rows`` rows (200,000) are learnt from a seeded sample, stratified on ``label``.
      Training cost therefore stops growing with the table.
    - **Batch** (``batch_size=None``): 500 rows, or 1,000 when the category columns have
      ``WIDE_LEVELS`` (100) levels or more together — a 500-row batch then holds about five
      rows per level, too few for the critic to see how two category columns go together
      (pair trends on Caravan's 590 levels: benchmarks/results/synth_wide.md). A
      private fit uses 500 (its sampling rate is fixed before any category is released).

    >>> synth = Synthesizer(epochs=300, random_state=0).fit(df, label="churn")
    >>> synth.sample(1000, conditions={"contract": "Two year"})

    With ``label`` given to ``fit``, unconditional samples are stratified on the label so its
    rate matches the real one exactly, and training conditions on the label half of the time.

    **Differential privacy** (``epsilon``, optional ``delta``; needs ``opacus``): the fit is
    (epsilon, delta)-DP for adding or removing one row. The encoding is learnt from a noisy
    summary, the critic by DP-SGD (per-row gradients clipped to ``dp_clip``, one row per
    critic input), and no step reads real rows otherwise: no moment loss, no checkpoint
    choice, integers numeric unless named in ``discrete_columns``. ``epsilon_`` and ``delta_``
    hold what was spent (opacus' RDP accountant); the noise is secret, so private fits are not
    repeatable. What is and is not protected: :mod:`pyprofile.models.synth.dp`.
    """

    fitted_attribute: ClassVar[str] = "nets_"
    artifact_format: ClassVar[str] = "pyprofile.synthesizer/3"

    def __init__(
        self,
        *,
        epochs: int = 300,
        batch_size: int | None = None,
        max_steps: int | None = 6000,
        max_rows: int | None = 200_000,
        noise_dim: int = 128,
        generator_dim: tuple[int, ...] = (128, 128),
        discriminator_dim: tuple[int, ...] = (64, 64),
        generator_lr: float = 2e-3,
        discriminator_lr: float = 2e-3,
        weight_decay: float = 1e-6,
        discriminator_steps: int = 1,
        pac: int = 10,
        gp_weight: float = 10.0,
        lr_schedule: str = "cosine",
        max_modes: int | None = None,
        encoding: str = "quantile",
        label_share: float = 0.5,
        gumbel: bool = False,
        moment_weight: float = 1.0,
        gp_every: int = 4,
        select_best: bool = True,
        eval_every: int = 10,
        eval_rows: int = 5000,
        amp: bool = False,
        calibrate_categories: bool = True,
        epsilon: float | None = None,
        delta: float | None = None,
        dp_clip: float = 1.0,
        random_state: int = 0,
        device: str = "auto",
        threads: int | None = 1,
        verbose: bool = False,
    ):
        self.epochs = epochs
        self.batch_size = batch_size
        self.max_steps, self.max_rows = max_steps, max_rows
        self.noise_dim, self.generator_dim = noise_dim, generator_dim
        self.discriminator_dim = discriminator_dim
        self.generator_lr, self.discriminator_lr = generator_lr, discriminator_lr
        self.weight_decay = weight_decay
        self.discriminator_steps = discriminator_steps
        self.pac, self.gp_weight = pac, gp_weight
        self.lr_schedule = lr_schedule
        self.max_modes = max_modes
        self.encoding = encoding
        self.label_share = label_share
        self.gumbel = gumbel
        self.moment_weight = moment_weight
        self.gp_every = gp_every
        self.select_best, self.eval_every, self.eval_rows = select_best, eval_every, eval_rows
        self.amp = amp
        self.calibrate_categories = calibrate_categories
        self.epsilon, self.delta, self.dp_clip = epsilon, delta, dp_clip
        self.random_state = random_state
        self.device = device
        self.threads = threads
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def fit(self, data, discrete_columns=None, *, label: str | None = None) -> Synthesizer:
        """Learn the joint distribution of ``data`` (DataFrame or Arrow table)."""
        table = as_arrow(data)
        self._validate(table, label)
        if self.epsilon is not None:
            return self._fit_private(table, discrete_columns, label)
        self.epsilon_ = self.delta_ = self.noise_multiplier_ = None
        keep = self.learning_sample(table, label)
        if keep is not None:
            table = table.take(pa.array(keep))
        self.n_training_rows_ = table.num_rows
        self._fit_transformer(table, discrete_columns, label)
        self.batch_size_ = self._batch_size()
        self.device_ = resolve_device(self.device)
        matrix = self.transformer_.transform(table)
        codes = self.transformer_.category_codes(table)
        self._build(codes)
        gen = torch.Generator(device=self.device_).manual_seed(self.random_state)
        rng = np.random.default_rng(self.random_state)
        evaluate = self._estimator(table) if self.select_best else None
        with torch_threads(self.threads, self.device_):
            self.history_, self.best_epoch_ = self._train(matrix, rng, gen, evaluate)
            self._calibrate()
        if self.verbose:
            self._bar.stop()
        return self

    def _fit_transformer(self, table, discrete_columns, label, private=None) -> None:
        self.transformer_ = DataTransformer(
            max_modes=self.max_modes, encoding=self.encoding, random_state=self.random_state
        )
        # the label is always a category
        self.transformer_.fit(
            table, discrete_columns, also_discrete=[label] if label else (), private=private
        )
        warn_excluded(self.transformer_.excluded_)
        if label is not None and label in self.transformer_.excluded_:
            raise InputError(
                f"label column {label} is excluded ({self.transformer_.excluded_[label]})"
            )
        self.label_ = label

    def learning_sample(self, data, label: str | None = None) -> np.ndarray | None:
        """The rows of ``data`` a (non-private) ``fit`` learns from: sorted indices of the
        seeded sample, stratified on ``label``, of ``max_rows`` rows, or None for all of them."""
        table = as_arrow(data)
        strata = None if label is None else table[label].to_numpy(zero_copy_only=False)
        return sample_rows(table.num_rows, self.max_rows, self.random_state, strata=strata)

    def _fit_private(self, table: pa.Table, discrete_columns, label) -> Synthesizer:
        """A differentially private fit (:mod:`.dp`): the transformer from the private
        summary, the critic by DP-SGD, no checkpoint choice, no moment loss."""
        from pyprofile.models.synth import dp, dp_train

        rng, noise = dp.secret_rng()
        if self.max_rows is not None and table.num_rows > self.max_rows:  # Poisson: private
            keep = np.flatnonzero(rng.random(table.num_rows) < self.max_rows / table.num_rows)
            table = table.take(pa.array(keep))
        n = self.n_training_rows_ = table.num_rows
        self.batch_size_ = self.batch_size or DEFAULT_BATCH
        config = self._config()
        delta = self.delta if self.delta is not None else min(1e-5, 1 / (10 * n))
        budget = dp.plan(
            self.epsilon, delta, min(self.batch_size_ / n, 1.0), dp_train.private_steps(n, config)
        )
        summary = dp.PrivateSummary(budget.summary_noise, budget.delta, rng)
        self._fit_transformer(table, discrete_columns, label, private=summary)
        self.device_ = resolve_device(self.device)
        matrix = self.transformer_.transform(table)
        self._build(_codes_from_counts(self._released_counts()))
        step = dp_train.PrivateStep(
            nets=self.nets_,
            data=torch.as_tensor(matrix, device=self.device_),
            codes=self.transformer_.category_codes(table),
            sampler=self.sampler_,
            config=config,
            noise_multiplier=budget.sgd_noise,
            clip=self.dp_clip,
            rng=rng,
            noise=noise,
            generator=torch.Generator(device=self.device_).manual_seed(self.random_state),
        )
        with torch_threads(self.threads, self.device_):
            progress = self._progress() if self.verbose else None
            self.history_, self.best_epoch_ = dp_train.train_private(step, progress=progress)
            self._calibrate()
        if self.verbose:
            self._bar.stop()
        self.epsilon_, self.delta_ = budget.spent(), budget.delta
        self.noise_multiplier_ = budget.sgd_noise
        return self

    def _released_counts(self) -> np.ndarray:
        """(discrete columns, widest) released category counts, each column scaled to the
        same total (the condition sampler's code matrix is rebuilt from them)."""
        specs = {s["name"]: s for s in self.transformer_.columns_}
        names = self.transformer_.discrete_
        width = max((len(specs[c]["counts"]) for c in names), default=1)
        total = self.n_training_rows_
        out = np.zeros((len(names), width), np.int64)
        for d, c in enumerate(names):
            share = np.asarray(specs[c]["counts"], float) * total / sum(specs[c]["counts"])
            out[d, : len(share)] = np.floor(share)
            rest = np.argsort(-(share - np.floor(share)), kind="stable")[: total - out[d].sum()]
            out[d, rest] += 1
        return out

    def column_kinds(self) -> dict[str, str]:
        """SDMetrics-style kind of every modelled column (numerical, datetime, categorical,
        boolean)."""
        self._check_fitted_transformer()
        kinds = {}
        for spec in self.transformer_.columns_:
            if spec["type"] == "discrete":
                kinds[spec["name"]] = "boolean" if spec["kind"] == "bool" else "categorical"
            else:
                kinds[spec["name"]] = (
                    "datetime" if spec["kind"] in ("date", "timestamp") else "numerical"
                )
        return kinds

    def _check_fitted_transformer(self) -> None:
        if not hasattr(self, "transformer_"):
            self._check_fitted()

    def _estimator(self, table: pa.Table):
        """Quality estimate of the current generator (SDMetrics' score on a fixed-seed sample
        against up to 20,000 training rows), used to keep the best checkpoint."""
        if table.num_rows > 20_000:
            rows = np.random.default_rng(self.random_state).choice(table.num_rows, 20_000, False)
            table = table.take(pa.array(np.sort(rows)))
        kinds = self.column_kinds()
        estimator = QualityEstimator(table.select(list(kinds)).to_pandas(), kinds)
        n = min(self.eval_rows, max(table.num_rows, 1000))

        def evaluate():
            self._calibrate()
            sample = self.sample_arrow(n, random_state=self.random_state + 2)
            return estimator.score(sample.to_pandas())["score"]

        return evaluate

    def _config(self) -> TrainConfig:
        return TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size_,
            max_steps=self.max_steps,
            lr_g=self.generator_lr,
            lr_d=self.discriminator_lr,
            weight_decay=self.weight_decay,
            discriminator_steps=self.discriminator_steps,
            gp_weight=self.gp_weight,
            schedule=self.lr_schedule,
            tau=TAU,
            amp=self.amp,
            moment_weight=self.moment_weight,
            gp_every=self.gp_every,
            eval_every=self.eval_every,
        )

    def _train(self, matrix, rng, gen, evaluate):
        return train(
            self.nets_,
            torch.as_tensor(matrix, device=self.device_),
            self.sampler_,
            self._config(),
            rng=rng,
            generator=gen,
            evaluate=evaluate,
            progress=self._progress() if self.verbose else None,
        )

    @property
    def _pac(self) -> int:
        """Rows per critic input: one in a private fit (a pack would couple rows' gradients)."""
        return 1 if self.epsilon is not None else self.pac

    def _batch_size(self) -> int:
        """The batch asked for, else by the category levels (class docstring, *Batch*)."""
        if self.batch_size is not None:
            return self.batch_size
        levels = sum(len(c["categories"]) for c in self.transformer_.columns_ if "categories" in c)
        return WIDE_BATCH if levels >= WIDE_LEVELS else DEFAULT_BATCH

    def _validate(self, table: pa.Table, label):
        if self.batch_size is not None and (self.batch_size % self._pac or self.batch_size <= 0):
            raise InputError(
                f"batch_size ({self.batch_size}) must be a multiple of pac ({self.pac})"
            )
        if self.epochs < 1:
            raise InputError(f"epochs must be at least 1, got {self.epochs}")
        for name in ("max_steps", "max_rows"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InputError(f"{name} must be at least 1 (or None), got {value}")
        if table.num_rows == 0:
            raise InputError("the table is empty (0 rows): nothing to learn from")
        if self.max_rows is not None and self.max_rows < self._pac:
            raise InputError(f"max_rows ({self.max_rows}) must be at least pac ({self._pac})")
        if table.num_rows < self._pac:
            raise InputError(f"need at least {self._pac} rows to train, got {table.num_rows}")
        if label is not None and label not in table.column_names:
            raise InputError(f"label column {label} is not in the table ({table.num_rows} rows)")

    def _build(self, codes):
        """Networks, output layout and condition sampler for the fitted transformer."""
        t = self.transformer_
        names = t.discrete_
        label = names.index(self.label_) if self.label_ is not None else None
        n_cats = [b.width for b in t.blocks_ if b.kind == "category"]
        self.sampler_ = ConditionSampler(codes, n_cats, label=label, label_share=self.label_share)
        cond_dim = self.sampler_.dim
        gen = torch.Generator().manual_seed(self.random_state)
        widths = [b.width for b in t.blocks_]
        g = Generator(
            self.noise_dim + cond_dim,
            tuple(self.generator_dim),
            t.n_values_,
            widths,
            gumbel=self.gumbel,
        )
        d = Discriminator(
            t.output_dim_ + cond_dim,
            tuple(self.discriminator_dim),
            self._pac,
            dropout=0.0 if self.epsilon is not None else 0.5,  # DP noise regularises instead
        )
        init_(g, gen)
        init_(d, gen)
        cat_blocks = [i for i, b in enumerate(t.blocks_) if b.kind == "category"]
        self.nets_ = Nets(
            generator=g.to(self.device_),
            discriminator=d.to(self.device_),
            cond_blocks=torch.as_tensor(cat_blocks, dtype=torch.long, device=self.device_),
            noise_dim=self.noise_dim,
        )

    def _progress(self):
        from rich.progress import Progress

        self._bar = Progress(transient=False)
        self._bar.start()
        task = self._bar.add_task("synthesizer", total=self.epochs)

        def update(record):
            critic = "" if record["loss_d"] is None else f"D {record['loss_d']:+.3f} "
            self._bar.update(
                task,
                advance=1,
                description=(
                    f"epoch {record['epoch']}: {critic}"
                    f"G {record['loss_g']:+.3f} cond {record['loss_cond']:.3f} "
                    f"moments {record['loss_moment']:.3f}"
                ),
            )

        return update

    # ------------------------------------------------------------------ sample
    def sample(
        self, n: int, conditions: dict | None = None, *, random_state: int | None = None
    ) -> pd.DataFrame:
        """``n`` synthetic rows; every row has exactly the values in ``conditions``.

        Discrete conditions set the generator's conditional vector and fix that column's
        category, so no row is rejected. The same ``random_state`` gives the same rows.
        """
        return self.sample_arrow(n, conditions, random_state=random_state).to_pandas()

    def sample_arrow(self, n: int, conditions=None, *, random_state=None) -> pa.Table:
        """Like :meth:`sample`, as an Arrow table with the training column types."""
        self._check_fitted()
        n = int(n)
        if n < 0:
            raise InputError(f"n must be >= 0, got {n}")
        forced = self._forced(conditions or {})
        seed = self.random_state + 1 if random_state is None else random_state
        return self.transformer_.inverse_transform(*self._generate(n, forced, seed))

    def _calibrate(self) -> None:
        """Fit the category offsets, then the transformer's quantile mapping, on large
        generated samples (same seed every time, so a fit stays deterministic)."""
        if self.calibrate_categories:
            self._fit_category_bias()
        self.transformer_.calibration_ = None
        self.transformer_.calibrate(*self._generate(CALIBRATION_ROWS, {}, self.random_state + 3))

    def _fit_category_bias(self) -> None:
        """Per-category logit offsets that bring the sampled frequency of every category (and
        null flag) to the real one (:func:`.calibration.category_offsets`).

        The argmax output gives each category the part of noise space where its logit wins;
        a rare category can lose everywhere, and on wide tables with many small categorical
        columns these per-column losses add up. Like the numeric calibration, this fixes the
        marginals after training; which rows get which category stays the generator's."""
        g = self.nets_.generator
        _, _, logits, forced = self._generate(CATEGORY_ROWS, {}, self.random_state + 4, logits=True)
        offsets = category_offsets(
            logits, forced, g.widths, self.transformer_.block_targets(), gumbel=self.gumbel
        )
        with torch.no_grad():
            g.bias.copy_(torch.as_tensor(offsets, dtype=g.bias.dtype, device=g.bias.device))

    def _conditions(self, n: int, forced: dict, rng) -> tuple[np.ndarray, np.ndarray]:
        """The condition column and category of every row, chosen up front so that chunks do
        not change the rows: the forced one, the label stratified, or the real frequencies."""
        t, sampler = self.transformer_, self.sampler_
        if forced:
            col = next(iter(forced))
            return np.full(n, col, dtype=np.int64), np.full(n, forced[col], dtype=np.int64)
        if self.label_ is not None:
            col = t.discrete_.index(self.label_)
            return np.full(n, col, dtype=np.int64), sampler.stratified(col, n, rng)
        return sampler.sample_original(n, rng)

    def _generate(self, n: int, forced: dict, seed: int, *, logits: bool = False):
        """Generated scaled values (rows, n_values) and block codes (rows, blocks); with
        ``logits``, also the one-hot logits (rows, one-hot width, before the category
        offsets) and which blocks each row had forced (rows, blocks)."""
        rng = np.random.default_rng(seed)
        gen = torch.Generator(device=self.device_).manual_seed(seed)
        t, sampler = self.transformer_, self.sampler_
        cols, cats = self._conditions(n, forced, rng)
        block_of = np.array([i for i, b in enumerate(t.blocks_) if b.kind == "category"])
        g = self.nets_.generator
        was_training = g.training
        g.eval()
        parts = ([], [], [], [])
        try:
            with torch.no_grad():  # all cores: batched sampling gains from threads
                for lo in range(0, n, SAMPLE_CHUNK):
                    c, k = cols[lo : lo + SAMPLE_CHUNK], cats[lo : lo + SAMPLE_CHUNK]
                    cond = sampler.vector(c, k, self.device_)
                    z = torch.randn((len(c), self.noise_dim), generator=gen, device=self.device_)
                    forced_t = np.full((len(c), len(t.blocks_)), -1, dtype=np.int64)
                    if len(block_of):
                        forced_t[np.arange(len(c)), block_of[c]] = k  # the condition holds
                    for column, category in forced.items():
                        forced_t[:, block_of[column]] = category
                    v, acc, code = g(
                        torch.cat([z, cond], 1),
                        tau=TAU,
                        generator=gen,
                        forced=torch.as_tensor(forced_t, device=self.device_),
                        hard=True,
                    )
                    parts[0].append(v.cpu().numpy())
                    parts[1].append(code.cpu().numpy())
                    if logits:
                        parts[2].append(acc[:, t.n_values_ :].cpu().numpy())
                        parts[3].append(forced_t >= 0)
        finally:
            g.train(was_training)
        if not parts[0]:
            empty = (np.zeros((0, t.n_values_), np.float32), np.zeros((0, len(t.blocks_)), int))
            return (*empty, np.zeros((0, t.n_onehot_)), np.zeros((0, len(t.blocks_)), bool))[
                : 4 if logits else 2
            ]
        return tuple(np.concatenate(p) for p in parts[: 4 if logits else 2])

    def _forced(self, conditions: dict) -> dict[int, int]:
        """{discrete column index: category code} for the requested conditions."""
        t = self.transformer_
        specs = {s["name"]: s for s in t.columns_}
        out = {}
        for column, value in conditions.items():
            if column not in specs:
                raise InputError(f"cannot condition on {column}: not a modelled column")
            spec = specs[column]
            if spec["type"] != "discrete":
                raise InputError(
                    f"cannot condition on numeric column {column}: conditions take discrete "
                    f"columns ({', '.join(t.discrete_)})"
                )
            value = value.item() if isinstance(value, np.generic) else value
            cats = spec["categories"]
            matches = [
                i
                for i, c in enumerate(cats)
                if c == value and isinstance(c, bool) == isinstance(value, bool)
            ]
            if not matches and isinstance(value, str):  # from the CLI: "col=value" text
                matches = [i for i, c in enumerate(cats) if str(c).lower() == value.lower()]
            if not matches:
                raise InputError(
                    f"{column} has no category {value!r}; known: {spec['categories'][:20]}"
                )
            out[t.discrete_.index(column)] = matches[0]
        return out

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """State dicts, transformer state and history (no pickle)."""
        arrays = {}
        for prefix, module in (("g", self.nets_.generator), ("d", self.nets_.discriminator)):
            for key, value in module.state_dict().items():
                arrays[f"{prefix}.{key}"] = value
        t_arrays, t_meta = self.transformer_.state()
        arrays.update({f"t.{k}": v for k, v in t_arrays.items()})
        arrays["codes"] = self._codes_summary()
        state = {
            "transformer": t_meta,
            "label": self.label_,
            "history": self.history_,
            "best_epoch": self.best_epoch_,
            "n_training_rows": self.n_training_rows_,
            "batch_size": self.batch_size_,
            "privacy": [self.epsilon_, self.delta_, self.noise_multiplier_],
        }
        return arrays, state

    def _codes_summary(self) -> np.ndarray:
        """Category counts per discrete column: all the condition sampler needs to sample."""
        s = self.sampler_
        return s.counts if s.n_columns else np.zeros((0, 1), np.int64)

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        t_arrays = {k[2:]: v for k, v in arrays.items() if k.startswith("t.")}
        self.transformer_ = DataTransformer.from_state(t_arrays, state["transformer"])
        self.label_ = state["label"]
        self.history_ = state["history"]
        self.best_epoch_ = state["best_epoch"]
        self.n_training_rows_ = state.get("n_training_rows")  # None: saved before it was kept
        self.batch_size_ = state.get("batch_size", self.batch_size)
        self.epsilon_, self.delta_, self.noise_multiplier_ = state.get("privacy", [None] * 3)
        self.device_ = resolve_device(self.device)
        self._build(_codes_from_counts(arrays["codes"]))
        for prefix, module in (("g", self.nets_.generator), ("d", self.nets_.discriminator)):
            state_dict = {
                k[2:]: torch.as_tensor(v) for k, v in arrays.items() if k.startswith(prefix + ".")
            }
            module.load_state_dict(state_dict)


def _codes_from_counts(counts: np.ndarray) -> np.ndarray:
    """Rebuild a code matrix with the stored category counts (same frequencies, sorted rows)."""
    if counts.shape[0] == 0:
        return np.zeros((1, 0), np.int64)
    n = int(counts[0].sum())
    codes = np.zeros((n, counts.shape[0]), np.int64)
    for d, row in enumerate(counts):
        codes[:, d] = np.repeat(np.arange(len(row)), row)[:n]
    return codes
