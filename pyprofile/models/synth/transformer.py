"""Reversible encoding of a customer table for the GAN: mode-specific normalisation, one-hots.

Numeric columns (floats, integers, dates, timestamps) are mapped to a Gaussian scale, either
through their empirical quantiles (``encoding="quantile"``: exact marginals, point masses such as
"0 spend" and bounds are kept by construction) or by standardising (``encoding="gmm"``, plain
CTGAN), and then split by a per-column Gaussian mixture into a mode one-hot plus a scaled value
in [-1, 1] (a column with a single mode, the default after the quantile map, has no one-hot).
The mixtures of all columns are fitted together by a vectorised EM (one array
operation per iteration for every column), instead of one scikit-learn
``BayesianGaussianMixture`` per column, the slow step of CTGAN. Categorical and boolean columns
(and integer columns with few values) become one-hots; nulls are a category for discrete
columns and a null indicator for numeric ones. Id and PII columns are left out.

The encoded matrix is laid out as ``[scaled values | one-hot blocks]``: the first
``n_values`` columns use ``tanh``; each later block is one softmax (mode, null indicator or
category). The state is plain arrays and JSON (no pickle).
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.special import ndtr, ndtri

from pyprofile.errors import InputError
from pyprofile.models.base import NotFittedError
from pyprofile.models.data import as_arrow

ID_PATTERN = re.compile(r"(^id$|_id$|^id_|uuid|guid)", re.IGNORECASE)
PII_PATTERN = re.compile(
    r"^(e_?mail|email_address|phone|phone_number|telephone|mobile|mobile_number|name|"
    r"first_?name|last_?name|full_?name|surname|customer_name|contact_name|address|"
    r"street|street_address|zip|zip_code|postcode|postal_code|ssn|passport|iban|"
    r"credit_card|card_number|ip|ip_address)$|_(email|phone|phone_number)$",
    re.IGNORECASE,
)
HIGH_CARDINALITY = 0.5  # text columns with more distinct values than this share of rows
MAX_DISCRETE_INTEGERS = 10  # integer columns with at most this many values are categories
EM_ROWS = 20_000
EM_ITERATIONS = 60
QUANTILES = 1001
DAY_US = 86_400_000_000  # microseconds in a day
CHUNK = 65_536


@dataclass
class Block:
    """One softmax block of the encoded matrix."""

    kind: str  # "mode" | "null" | "category"
    column: str
    start: int  # offset inside the one-hot part
    width: int


def _kind(field: pa.Field) -> str:
    t = field.type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "str"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "float"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_null(t):
        return "null"
    return "unsupported"


def _numeric(col: pa.ChunkedArray, kind: str) -> np.ndarray:
    """A column as float64 with NaN for nulls (dates as days, timestamps as microseconds)."""
    if kind == "date":
        col = pc.cast(col, pa.date32()).cast(pa.int32())
    elif kind == "timestamp":
        col = pc.cast(col, pa.timestamp("us", tz=col.type.tz)).cast(pa.int64())
    return col.cast(pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)


def _decimals(x: np.ndarray) -> int:
    """Fewest decimals (0-6) that represent every value, so outputs are rounded like inputs."""
    sample = x[:10_000]
    for d in range(7):
        scaled = sample * 10.0**d
        if np.all(np.abs(scaled - np.round(scaled)) < 1e-6 * np.maximum(1.0, np.abs(scaled))):
            return d
    return -1  # keep full precision


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    return value


def excluded_columns(names, n_rows: int, uniques: dict[str, int]) -> dict[str, str]:
    """Columns left out of the model, with the reason (ids, PII, all-distinct text)."""
    out = {}
    for name in names:
        if ID_PATTERN.search(name):
            out[name] = "identifier"
        elif PII_PATTERN.search(name):
            out[name] = "personal data (PII)"
        elif name in uniques and n_rows > 20 and uniques[name] > HIGH_CARDINALITY * n_rows:
            out[name] = "text with a distinct value on most rows (free text, names or ids)"
    return out


def fast_gmm(
    x: np.ndarray, n_modes: int, rng: np.random.Generator, *, weight_threshold: float = 0.005
):
    """Fit a 1-D Gaussian mixture to every column of ``x`` at once (NaN = missing).

    Returns ``(means, stds, weights)``, each of shape (columns, n_modes); modes whose weight
    falls under ``weight_threshold`` get weight 0 and are never used.
    """
    n, c = x.shape
    if n > EM_ROWS:
        x = x[rng.choice(n, EM_ROWS, replace=False)]
    valid = ~np.isnan(x)
    xv = np.where(valid, x, 0.0)
    w = valid.astype(np.float64)
    k = n_modes
    qs = (np.arange(k) + 0.5) / k
    means = np.stack(
        [np.quantile(x[valid[:, j], j], qs) if valid[:, j].any() else np.zeros(k) for j in range(c)]
    )
    spread = np.array([np.std(x[valid[:, j], j]) if valid[:, j].any() else 1.0 for j in range(c)])
    floor = (1e-3 * np.maximum(spread, 1e-9))[:, None] ** 2
    var = np.repeat(((spread / k) ** 2 + floor[:, 0])[:, None], k, axis=1)
    weights = np.full((c, k), 1.0 / k)
    for _ in range(EM_ITERATIONS):
        resp = _responsibilities(xv, means, var, weights)  # (n, c, k)
        resp *= w[:, :, None]
        nk = resp.sum(0) + 1e-12
        weights = nk / nk.sum(1, keepdims=True)
        means = np.einsum("nck,nc->ck", resp, xv) / nk
        diff2 = (xv[:, :, None] - means[None]) ** 2
        var = np.einsum("nck,nck->ck", resp, diff2) / nk + floor
    weights = np.where(weights < weight_threshold, 0.0, weights)
    weights /= weights.sum(1, keepdims=True)
    return means, np.sqrt(var), weights


def _responsibilities(x, means, var, weights):
    with np.errstate(divide="ignore"):
        logw = np.log(weights)
    logp = -0.5 * (x[:, :, None] - means[None]) ** 2 / var[None] - 0.5 * np.log(var)[None]
    logp = logp + logw[None]
    logp -= logp.max(2, keepdims=True)
    p = np.exp(logp)
    return p / p.sum(2, keepdims=True)


class DataTransformer:
    """Encode a table to a float matrix for the GAN and decode generated matrices back.

    Parameters are stored as given; ``fit`` learns everything ending in ``_``.
    """

    def __init__(self, *, max_modes: int | None = None, encoding: str = "quantile", random_state=0):
        self.max_modes = max_modes
        self.encoding = encoding
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    def fit(self, data, discrete_columns=None, *, exclude=(), also_discrete=(), private=None):
        """Learn the encoding of ``data``; with ``private`` (a :class:`.dp.PrivateSummary`),
        only from its noisy counts: categories that clear its threshold, quantiles of its
        histograms, and integers numeric unless named discrete (no count of distinct values)."""
        table = as_arrow(data)
        if self.encoding not in ("quantile", "gmm"):
            raise InputError(f"encoding must be 'quantile' or 'gmm', got {self.encoding!r}")
        if table.num_rows == 0:
            raise InputError("the table is empty (0 rows): nothing to learn from")
        rng = np.random.default_rng(self.random_state)
        kinds = {f.name: _kind(f) for f in table.schema}
        excluded, names = self._usable(table, kinds, exclude, counted=private is None)
        if private is not None and discrete_columns is None:
            discrete_columns = ()  # integers with few values are not counted: numeric
        discrete = self._discrete(table, kinds, names, discrete_columns)
        discrete |= {c for c in also_discrete if c in names}
        specs = {}
        if private is not None:
            stamps = sum(kinds[c] == "timestamp" for c in names if c not in discrete)
            private.bind(len(names), len(names) - len(discrete), stamps)
            specs = {c: _private_spec(private.categories(table[c]), c, kinds[c]) for c in discrete}
            for c in [c for c, spec in specs.items() if not spec["categories"]]:
                excluded[c] = "no category is frequent enough to release under the privacy budget"
            names = [c for c in names if c not in excluded]
        self.private_ = private is not None
        self.excluded_ = excluded
        self.schema_ = pa.schema([table.schema.field(c) for c in names])
        self.full_schema_ = table.schema
        self.n_rows_ = table.num_rows
        self.columns_ = [
            specs.get(c) or _discrete_spec(table, c, kinds[c])
            if c in discrete
            else {"name": c, "kind": kinds[c], "type": "numeric"}
            for c in names
        ]
        self._fit_numeric(table, [c for c in names if c not in discrete], rng, private)
        if not self.columns_:
            raise InputError(
                f"the privacy noise hides every column of this table ({table.num_rows} rows, "
                f"{len(names)} columns): use a larger epsilon, fewer columns or more rows"
            )
        self.calibration_ = None
        self._layout()
        return self

    @staticmethod
    def _usable(table: pa.Table, kinds: dict[str, str], exclude, *, counted=True):
        """(excluded columns with the reason, the columns to model); unusable ones refused.
        Without ``counted`` (a private fit) text is never left out for its count of values."""
        n = table.num_rows
        bad = [
            f"{c} ({table.schema.field(c).type})" for c, k in kinds.items() if k == "unsupported"
        ]
        uniques = {
            c: pc.count_distinct(table[c]).as_py()
            for c, k in kinds.items()
            if k == "str" and counted
        }
        excluded = excluded_columns(table.column_names, n, uniques)
        excluded.update({c: "excluded by the caller" for c in exclude})
        bad = [b for b in bad if b.split(" ")[0] not in excluded]
        if bad:
            raise InputError(
                f"unsupported column type(s) for the synthesizer: {', '.join(bad)} "
                f"({n} rows); cast them to numbers, text, booleans or dates, or exclude them"
            )
        names = [c for c in table.column_names if c not in excluded]
        if not names:
            raise InputError(f"no column left to model after excluding {', '.join(excluded)}")
        all_null = [c for c in names if table[c].null_count == n]
        if all_null and counted:  # a private fit learns a null share instead (no error to leak)
            raise InputError(
                f"column(s) {', '.join(all_null)} are null on all {n} rows: "
                "nothing to learn; exclude them"
            )
        return excluded, names

    @staticmethod
    def _discrete(table: pa.Table, kinds: dict[str, str], names: list[str], given) -> set[str]:
        """Text and booleans, plus ``given`` columns (default: integers with few values)."""
        if given is None:
            return {
                c
                for c in names
                if kinds[c] in ("str", "bool")
                or (
                    kinds[c] == "int"
                    and pc.count_distinct(table[c]).as_py() <= MAX_DISCRETE_INTEGERS
                )
            }
        unknown = [c for c in given if c not in table.column_names]
        if unknown:
            raise InputError(f"discrete column(s) {', '.join(unknown)} not in the table")
        discrete = {c for c in given if c in names}
        return discrete | {c for c in names if kinds[c] in ("str", "bool")}

    def _fit_numeric(self, table, numeric, rng, private=None):
        if private is not None:
            return self._fit_private(table, numeric, private, rng)
        specs = {s["name"]: s for s in self.columns_}
        # quantile-encoded columns are Gaussian already: one mode; standardised ones: CTGAN's 10
        k = self.max_modes or (1 if self.encoding == "quantile" else 10)
        self.numeric_ = numeric
        m = len(numeric)
        self.quantiles_ = np.zeros((m, QUANTILES))
        self.bounds_ = np.zeros((m, 2))
        self.loc_ = np.zeros(m)
        self.scale_ = np.ones(m)
        zs = []
        for j, c in enumerate(numeric):
            x = _numeric(table[c], specs[c]["kind"])
            valid = x[~np.isnan(x)]
            specs[c]["has_null"] = bool(np.isnan(x).any())
            specs[c]["null_share"] = float(np.isnan(x).mean())
            specs[c]["decimals"] = 0 if specs[c]["kind"] != "float" else _decimals(valid)
            self.bounds_[j] = valid.min(), valid.max()
            self.quantiles_[j] = np.quantile(valid, np.linspace(0, 1, QUANTILES))
            self.loc_[j], self.scale_[j] = valid.mean(), max(valid.std(), 1e-12)
            zs.append(self._to_gauss(j, x, rng))
        z = np.stack(zs, 1) if zs else np.zeros((self.n_rows_, 0))
        self.means_, self.stds_, self.weights_ = (
            fast_gmm(z, k, rng) if m else (np.zeros((0, k)),) * 3
        )
        self._z_cache = z  # the training encoding reuses it (dropped after transform)

    def _fit_private(self, table, numeric, private, rng):
        """Quantiles and null shares from the private summary's histograms; the rows are then
        encoded through those quantiles (not through their ranks among each other, which
        would make one row's encoding depend on the others). A column whose values the noise
        hides is left out, like a category column with no category to release."""
        if self.encoding != "quantile" or (self.max_modes or 1) != 1:
            raise InputError("a private fit takes the default encoding (quantile, one mode)")
        specs = {s["name"]: s for s in self.columns_}
        released = {c: self._release(table[c], specs[c], private) for c in numeric}
        hidden = [c for c, r in released.items() if r is None]
        for c in hidden:
            self.excluded_[c] = "its values are hidden by the privacy noise (too few rows)"
        self.columns_ = [s for s in self.columns_ if s["name"] not in hidden]
        self.schema_ = pa.schema([f for f in self.schema_ if f.name not in hidden])
        self.numeric_ = numeric = [c for c in numeric if c not in hidden]
        m = len(numeric)
        self.quantiles_ = np.array([released[c][0] for c in numeric]).reshape(m, QUANTILES)
        self.bounds_ = self.quantiles_[:, [0, -1]]
        self.loc_, self.scale_ = np.zeros(m), np.ones(m)
        for c in numeric:
            specs[c].update(has_null=released[c][1] > 0, null_share=released[c][1], decimals=-1)
        zs = [
            self._to_gauss(j, _numeric(table[c], specs[c]["kind"]), rng)
            for j, c in enumerate(numeric)
        ]
        self._z_cache = np.stack(zs, 1) if zs else np.zeros((self.n_rows_, 0))
        # the quantile map makes every column standard normal: one mode, known exactly
        self.means_, self.stds_, self.weights_ = np.zeros((m, 1)), np.ones((m, 1)), np.ones((m, 1))

    @staticmethod
    def _release(col, spec, private):
        """(quantile knots, null share) of a numeric column from the private summary, or None
        when its noise hides the values; timestamps of whole days go as dates."""
        x = _numeric(col, spec["kind"])
        if spec["kind"] == "timestamp" and private.days_only(x):
            spec["days_only"] = True  # released like a date, decoded to midnight
            released = private.numeric(x / DAY_US, "date")
            return None if released is None else (released[0] * DAY_US, released[1])
        return private.numeric(x, spec["kind"])

    def _to_gauss(self, j, x, rng):
        """Numeric column -> Gaussian scale (NaN kept): through the column's ranks, or, once
        private, through the released quantiles (a row's encoding then needs no other row)."""
        if self.private_:
            return _through_knots(x, self.quantiles_[j], rng)
        if self.encoding == "gmm":
            return (x - self.loc_[j]) / self.scale_[j]
        valid = ~np.isnan(x)
        v = x[valid]
        sorted_v = np.sort(v)
        lo = np.searchsorted(sorted_v, v, "left")
        hi = np.searchsorted(sorted_v, v, "right")
        # distributional transform: ties (point masses) spread uniformly over their mass
        u = (lo + rng.random(len(v)) * (hi - lo)) / len(v)
        u = np.clip(u, 0.5 / len(v), 1 - 0.5 / len(v))
        out = np.full_like(x, np.nan)
        out[valid] = ndtri(u)
        return out

    def _from_gauss(self, z):
        """Gaussian scale -> numeric columns, clipped to the training bounds.

        Once calibrated, a value's rank among generated values (its generated CDF) picks the
        real quantile: each column then has the real marginal whatever small distortions the
        generator leaves, while the dependence between columns stays the generator's."""
        out = np.empty_like(z)
        grid = np.linspace(0, 1, QUANTILES)
        calibration = self.calibration_
        for j in range(z.shape[1]):
            if calibration is not None:
                # generated quantile -> real quantile at the same level, in one interpolation
                out[:, j] = np.interp(z[:, j], calibration[j], self.quantiles_[j])
            elif self.encoding == "gmm":
                x = z[:, j] * self.scale_[j] + self.loc_[j]
                out[:, j] = np.clip(x, self.bounds_[j, 0], self.bounds_[j, 1])
            else:
                out[:, j] = np.interp(ndtr(z[:, j]), grid, self.quantiles_[j])
        return out  # interpolation in the quantiles stays within [min, max] by construction

    def calibrate(self, values: np.ndarray, onehot_codes: np.ndarray) -> None:
        """Learn every numeric column's generated distribution from a large generated sample
        (the arguments of :meth:`inverse_transform`), so that decoding maps it onto the real
        one (quantile mapping)."""
        self._check()
        z, nulls = self._decode_gauss(values, onehot_codes)
        grid = np.linspace(0, 1, QUANTILES)
        knots = np.zeros((z.shape[1], QUANTILES))
        for j in range(z.shape[1]):
            v = z[~nulls[:, j], j]
            knots[j] = np.quantile(v, grid) if len(v) else ndtri(np.clip(grid, 1e-6, 1 - 1e-6))
        self.calibration_ = knots

    def block_targets(self) -> list[np.ndarray | None]:
        """The real frequency of every category of each one-hot block (categories and null
        flags; None for mode blocks), in block order."""
        specs = {s["name"]: s for s in self.columns_}
        out = []
        for b in self.blocks_:
            spec = specs[b.column]
            if b.kind == "category":
                counts = np.asarray(spec["counts"], dtype=float)
                out.append(counts / counts.sum())
            elif b.kind == "null" and "null_share" in spec:
                out.append(np.array([1 - spec["null_share"], spec["null_share"]]))
            else:
                out.append(None)
        return out

    def _layout(self):
        """Blocks of the one-hot part, in order: categories (table order), then numeric modes
        and null flags. The generator emits blocks in this order, each seeing the ones before."""
        blocks, start = [], 0
        specs = {s["name"]: s for s in self.columns_}
        for s in self.columns_:
            if s["type"] == "discrete":
                blocks.append(Block("category", s["name"], start, len(s["categories"])))
                start += len(s["categories"])
        self.mode_index_ = []  # per numeric column: indices of its active modes
        for j, c in enumerate(self.numeric_):
            active = np.flatnonzero(self.weights_[j] > 0)
            self.mode_index_.append(active)
            if len(active) > 1:  # a single mode needs no one-hot
                blocks.append(Block("mode", c, start, len(active)))
                start += len(active)
            if specs[c]["has_null"]:
                blocks.append(Block("null", c, start, 2))
                start += 2
        self.blocks_ = blocks
        self.n_values_ = len(self.numeric_)
        self.n_onehot_ = start
        self.output_dim_ = self.n_values_ + start
        self.discrete_ = [s["name"] for s in self.columns_ if s["type"] == "discrete"]

    # ------------------------------------------------------------------ encode
    def _check(self):
        if not hasattr(self, "blocks_"):
            raise NotFittedError("DataTransformer is not fitted: call fit first")

    def category_codes(self, data) -> np.ndarray:
        """(rows, discrete columns) integer category codes of a table (nulls are a category)."""
        self._check()
        table = as_arrow(data)
        specs = {s["name"]: s for s in self.columns_}
        codes = np.zeros((table.num_rows, len(self.discrete_)), dtype=np.int64)
        for d, c in enumerate(self.discrete_):
            col = table[c]
            if pa.types.is_dictionary(col.type):
                col = col.cast(col.type.value_type)
            cats = specs[c]["categories"]
            non_null = [v for v in cats if v is not None]
            idx = pc.index_in(col, value_set=pa.array(non_null, type=col.type)).to_numpy(
                zero_copy_only=False
            )
            lookup = np.array([cats.index(v) for v in non_null] + [-1])
            idx = np.where(np.isnan(idx.astype(float)), len(non_null), idx).astype(np.int64)
            mapped = lookup[idx]
            if None in cats:
                mapped = np.where(mapped < 0, cats.index(None), mapped)
            if self.private_:  # a private fit: the first released category
                mapped = np.where(mapped < 0, 0, mapped)
            if (mapped < 0).any():
                raise InputError(f"column {c} has values not seen in training")
            codes[:, d] = mapped
        return codes

    def transform(self, data, *, random_state=None) -> np.ndarray:
        """Encode rows into the GAN's float32 matrix (modes drawn from their posterior)."""
        self._check()
        table = as_arrow(data)
        rng = np.random.default_rng(self.random_state if random_state is None else random_state)
        n = table.num_rows
        z = getattr(self, "_z_cache", None)
        if z is None or len(z) != n:
            specs = {s["name"]: s for s in self.columns_}
            cols = [
                self._to_gauss(j, _numeric(table[c], specs[c]["kind"]), rng)
                for j, c in enumerate(self.numeric_)
            ]
            z = np.stack(cols, 1) if cols else np.zeros((n, 0))
        self._z_cache = None
        out = np.zeros((n, self.output_dim_), dtype=np.float32)
        codes = self.category_codes(table)
        for lo in range(0, n, CHUNK):
            self._encode_numeric(z[lo : lo + CHUNK], out[lo : lo + CHUNK], rng)
        cat_blocks = [b for b in self.blocks_ if b.kind == "category"]
        rows = np.arange(n)
        for d, b in enumerate(cat_blocks):
            out[rows, self.n_values_ + b.start + codes[:, d]] = 1.0
        return out

    def _encode_numeric(self, z, out, rng):
        if z.shape[1] == 0:
            return
        null = np.isnan(z)
        zv = np.where(null, 0.0, z)
        resp = _responsibilities(zv, self.means_, self.stds_**2, self.weights_)
        # Gumbel-max: one posterior draw of the mode per value, for all columns at once
        gumbel = -np.log(-np.log(rng.random(resp.shape) + 1e-20) + 1e-20)
        with np.errstate(divide="ignore"):
            mode = np.argmax(np.log(resp) + gumbel, axis=2)
        mu = np.take_along_axis(self.means_[None], mode[:, :, None], 2)[:, :, 0]
        sd = np.take_along_axis(self.stds_[None], mode[:, :, None], 2)[:, :, 0]
        out[:, : self.n_values_] = np.clip((zv - mu) / (4 * sd), -0.99, 0.99)
        rows = np.arange(len(z))
        position = {c: j for j, c in enumerate(self.numeric_)}
        for b in self.blocks_:
            if b.kind == "category":
                continue
            j = position[b.column]
            if b.kind == "mode":
                pos = np.searchsorted(self.mode_index_[j], mode[:, j])
                out[rows, self.n_values_ + b.start + pos] = 1.0
            else:
                out[rows, self.n_values_ + b.start + null[:, j].astype(int)] = 1.0

    # ------------------------------------------------------------------ decode
    def inverse_transform(self, values: np.ndarray, onehot_codes: np.ndarray) -> pa.Table:
        """Decode generated rows: ``values`` (rows, n_values) in [-1, 1] and the argmax code of
        every one-hot block (rows, blocks). Returns an Arrow table with the training schema."""
        self._check()
        arrays = {}
        z, nulls = self._decode_gauss(values, onehot_codes)
        cat_codes = {
            b.column: onehot_codes[:, i] for i, b in enumerate(self.blocks_) if b.kind == "category"
        }
        x = self._from_gauss(z)
        specs = {s["name"]: s for s in self.columns_}
        for j, c in enumerate(self.numeric_):
            arrays[c] = self._numeric_array(
                specs[c], self.schema_.field(c).type, x[:, j], nulls[:, j]
            )
        for c in self.discrete_:
            typ = self.schema_.field(c).type
            if pa.types.is_dictionary(typ):
                typ = typ.value_type
            cats = pa.array(specs[c]["categories"], type=typ)
            arrays[c] = cats.take(pa.array(cat_codes[c]))
        return pa.table([arrays[c] for c in self.schema_.names], schema=self._plain_schema())

    def _decode_gauss(self, values, onehot_codes):
        """Numeric columns on the Gaussian scale, and their null flags, from generated rows."""
        n = len(values)
        nulls = np.zeros((n, self.n_values_), dtype=bool)
        position = {c: j for j, c in enumerate(self.numeric_)}
        first = np.array([m[0] for m in self.mode_index_], dtype=np.int64)  # single-mode columns
        columns = np.arange(self.n_values_)
        z = values * 4 * self.stds_[columns, first] + self.means_[columns, first]
        for i, b in enumerate(self.blocks_):
            if b.kind == "mode":
                j = position[b.column]
                mode = self.mode_index_[j][onehot_codes[:, i]]
                z[:, j] = values[:, j] * 4 * self.stds_[j, mode] + self.means_[j, mode]
            elif b.kind == "null":
                nulls[:, position[b.column]] = onehot_codes[:, i] == 1
        return z, nulls

    def _plain_schema(self):
        fields = []
        for f in self.schema_:
            t = f.type.value_type if pa.types.is_dictionary(f.type) else f.type
            fields.append(pa.field(f.name, t))
        return pa.schema(fields)

    @staticmethod
    def _numeric_array(spec, typ, x, null):
        kind = spec["kind"]
        if kind == "float":
            d = spec["decimals"]
            if d >= 0:
                x = np.round(x, d)
            arr = pa.array(x, mask=null if null.any() else None)
            return arr.cast(typ, safe=False)
        ints = np.round(x).astype(np.int64)
        if spec.get("days_only"):  # a private fit found whole days: midnight, as they were
            ints = np.round(x / DAY_US).astype(np.int64) * DAY_US
        mask = null if null.any() else None
        if kind == "int":
            return pa.array(ints, mask=mask).cast(typ)
        if kind == "date":
            return pa.array(ints.astype(np.int32), mask=mask).cast(pa.date32()).cast(typ)
        return pa.array(ints, mask=mask).cast(pa.timestamp("us", tz=typ.tz)).cast(typ)

    # ------------------------------------------------------------------ state
    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        """Arrays and JSON metadata that rebuild this transformer (no pickle)."""
        self._check()
        arrays = {
            "quantiles": self.quantiles_,
            "bounds": self.bounds_,
            "loc": self.loc_,
            "scale": self.scale_,
            "means": self.means_,
            "stds": self.stds_,
            "weights": self.weights_,
            "schema": np.frombuffer(self.schema_.serialize().to_pybytes(), dtype=np.uint8),
            "full_schema": np.frombuffer(
                self.full_schema_.serialize().to_pybytes(), dtype=np.uint8
            ),
        }
        meta = {
            "params": {
                "max_modes": self.max_modes,
                "encoding": self.encoding,
                "random_state": self.random_state,
            },
            "columns": self.columns_,
            "numeric": self.numeric_,
            "excluded": self.excluded_,
            "n_rows": self.n_rows_,
            "private": self.private_,
        }
        if self.calibration_ is not None:
            arrays["calibration"] = self.calibration_
        json.dumps(meta)  # fail early if a category is not JSON-able
        return arrays, meta

    @classmethod
    def from_state(cls, arrays, meta) -> DataTransformer:
        self = cls(**meta["params"])
        self.quantiles_ = arrays["quantiles"]
        self.bounds_ = arrays["bounds"]
        self.loc_, self.scale_ = arrays["loc"], arrays["scale"]
        self.means_, self.stds_, self.weights_ = arrays["means"], arrays["stds"], arrays["weights"]
        self.schema_ = pa.ipc.read_schema(pa.py_buffer(arrays["schema"].tobytes()))
        self.full_schema_ = pa.ipc.read_schema(pa.py_buffer(arrays["full_schema"].tobytes()))
        self.columns_ = meta["columns"]
        self.numeric_ = meta["numeric"]
        self.excluded_ = meta["excluded"]
        self.n_rows_ = meta["n_rows"]
        self.private_ = meta.get("private", False)
        self.calibration_ = arrays.get("calibration")
        self._layout()
        return self


def _through_knots(x: np.ndarray, knots: np.ndarray, rng) -> np.ndarray:
    """A column to the Gaussian scale through fixed quantile knots, row by row (NaN kept);
    a value on a run of equal knots (a point mass) is spread uniformly over its levels."""
    out = np.full_like(x, np.nan)
    valid = ~np.isnan(x)
    v = np.clip(x[valid], knots[0], knots[-1])
    lo = np.searchsorted(knots, v, "left")
    hi = np.searchsorted(knots, v, "right")
    # inside a cell: interpolate; on knots: spread over the run of equal ones
    between = np.interp(v, knots, np.arange(len(knots)))
    level = np.where(hi > lo, lo + rng.random(len(v)) * (hi - 1 - lo), between)
    u = np.clip(level / (len(knots) - 1), 0.5 / len(knots), 1 - 0.5 / len(knots))
    out[valid] = ndtri(u)
    return out


def _private_spec(released: tuple[list, list[int]], name: str, kind: str) -> dict:
    """A discrete column's spec from the private summary's released categories and counts."""
    values, counts = released
    return {
        "name": name,
        "kind": kind,
        "type": "discrete",
        "categories": [_jsonable(v) for v in values],
        "counts": counts,
    }


def _discrete_spec(table: pa.Table, name: str, kind: str) -> dict:
    """A discrete column's categories, most frequent first, with their counts."""
    col = table[name]
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    vc = pc.value_counts(col)
    values = vc.field("values").to_pylist()
    counts = vc.field("counts").to_numpy()
    order = np.argsort(-counts, kind="stable")
    return {
        "name": name,
        "kind": kind,
        "type": "discrete",
        "categories": [_jsonable(values[i]) for i in order],
        "counts": [int(counts[i]) for i in order],
    }


def warn_excluded(excluded: dict[str, str]) -> None:
    """Say which columns the synthesizer leaves out and why."""
    if excluded:
        detail = "; ".join(f"{c}: {why}" for c, why in excluded.items())
        warnings.warn(f"synthesizer leaves out {len(excluded)} column(s): {detail}", stacklevel=3)
