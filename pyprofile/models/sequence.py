"""A sequence recommender: causal self-attention over each customer's time-ordered events.

``SequenceRecommender`` reads events (customer_id, product_id, timestamp, optional
event_type), one row per event, e.g. ``features.customer_event_sequences``; every customer's
history becomes a sequence of (product, event type, time gap) tokens after a start token. A
small transformer (:mod:`pyprofile.models.sequence_nets`: learned positions, optional
log-bucketed time gaps, causal multi-head attention) is trained to predict each next product
with cross-entropy over all products, or a sampled softmax for large catalogues
(:mod:`pyprofile.models.sequence_train`: step budget, early stopping on each customer's
held-out latest event). What it gives:

* ``recommend(customer_ids, k, exclude_seen=True)`` - the top ``k`` next products per customer
  (customer_id, rank, product_id, score = the model's next-product probability);
* ``embed(customer_ids)`` - the customer's state after their latest event (``dim`` numbers,
  columns ``embedding_00``...), usable as features by other models;
* ``score_sequences(events, k)`` - the same for histories given as data (e.g. from SQL), and
  ``next_items_udf(k)``, their vectorised form for a session-only SQL function.

``target_types`` (e.g. ``["purchase"]``) makes it a next-*purchase* model: every event is read
as input, but only the products of events of those types are prediction targets (training
loss and early stopping), so views and carts inform the prediction without being predicted;
"seen" products (left out of recommendations and of the validation) are then those of the
customer's earlier events of those types: a viewed product can still be recommended.

Cost is set by the step budget, not the data size: ``steps`` batches of ``batch_size`` windows
of ``max_length`` events, whatever the number of customers; scoring streams customers in
batches. A customer the model has not seen (or whose events are all unknown) is an empty
history: the start token's prediction, which is close to the products customers start with.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from pyprofile.errors import InputError
from pyprofile.models.base import Estimator
from pyprofile.models.data import sorted_unique
from pyprofile.models.device import resolve_device, torch_threads
from pyprofile.models.sequence_data import (
    ITEM,
    START,
    TIME,
    TYPE,
    USER,
    Sequences,
    encode,
    from_id_array,
    id_array,
    last_windows,
    read_tokens,
    seen_items,
)

LOSSES = ("auto", "full", "sampled")
FULL_SOFTMAX_RATIO = 4  # auto: full softmax up to this many times `negatives` products
_BATCH = 1024  # customers scored per forward pass


class SequenceRecommender(Estimator):
    """Next-product recommendations and customer embeddings from event sequences.

    >>> model = SequenceRecommender(random_state=0).fit(events)  # customer_id, product_id, ...
    >>> model.recommend(["c1"], k=10)  # customer_id, rank, product_id, score
    >>> model.embed(["c1"])  # customer_id, embedding_00, ..., embedding_63
    """

    fitted_attribute: ClassVar[str] = "net_"
    artifact_format: ClassVar[str] = "pyprofile.sequence_recommender/1"

    def __init__(
        self,
        *,
        max_length: int = 50,
        dim: int = 64,
        layers: int = 2,
        heads: int = 2,
        dropout: float = 0.2,
        time_gaps: bool = True,
        loss: str = "auto",
        negatives: int = 1024,
        steps: int = 1000,
        batch_size: int = 64,
        learning_rate: float = 2e-3,
        weight_decay: float = 0.01,
        eval_every: int = 50,
        patience: int = 4,
        validation_size: int = 2000,
        k: int = 10,
        exclude_seen: bool = True,
        target_types: list[str] | None = None,
        random_state: int | None = 0,
        device: str = "auto",
        threads: int | None = 1,
        verbose: bool = False,
    ):
        self.max_length = max_length
        self.dim = dim
        self.layers = layers
        self.heads = heads
        self.dropout = dropout
        self.time_gaps = time_gaps
        self.loss = loss
        self.negatives = negatives
        self.steps = steps
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.eval_every = eval_every
        self.patience = patience
        self.validation_size = validation_size
        self.k = k
        self.exclude_seen = exclude_seen
        self.target_types = target_types
        self.random_state = random_state
        self.device = device
        self.threads = threads
        self.verbose = verbose

    # ------------------------------------------------------------------ fitting
    def fit(self, events: Any) -> SequenceRecommender:
        """Learn from events: customer_id, product_id, timestamp and optionally event_type
        (one row per event; ties in time are ordered by product_id, then event_type)."""
        import torch

        from pyprofile.models.sequence_train import Budget, split_latest, train

        self._validate_params()
        data = read_tokens(events, "sequences")
        _check_trainable(data)
        self.products_ = from_id_array(sorted_unique(id_array(data[ITEM].to_numpy())))
        self.event_types_ = np.unique(data[TYPE].to_numpy()).astype(object)
        seqs, _ = encode(data, pd.Index(self.products_), pd.Index(self.event_types_))
        rng = np.random.default_rng(self.random_state)
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        codes = self._target_codes()
        train_seqs, validation = split_latest(
            seqs, rng, self.validation_size, self.max_length, codes
        )
        self._device = resolve_device(self.device)
        fields = set(Budget.__dataclass_fields__) - {"target_codes"}
        budget = Budget(**{name: getattr(self, name) for name in fields}, target_codes=codes)
        budget.loss = self._loss()
        with torch_threads(self.threads, self._device):
            self.net_ = self._new_net().init_(generator).to(self._device)
            device_generator = torch.Generator(device=self._device).manual_seed(
                int(rng.integers(2**62))
            )
            self.history_, self.best_step_ = train(
                self.net_,
                train_seqs,
                validation,
                budget,
                rng,
                device_generator,
                self._device,
                self.verbose,
            )
        scores = [r["validation_ndcg@10"] for r in self.history_ if "validation_ndcg@10" in r]
        self.validation_ndcg_ = max(scores) if scores else None
        self._keep(seqs)
        return self

    def _validate_params(self) -> None:
        if self.loss not in LOSSES:
            raise InputError(f"unknown loss {self.loss!r}; use one of {LOSSES}")
        for name in ("max_length", "dim", "layers", "heads", "steps", "batch_size", "k"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.dim % self.heads:
            raise InputError(f"dim ({self.dim}) must be a multiple of heads ({self.heads})")
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"dropout must lie in [0, 1), got {self.dropout}")
        if self.eval_every < 1 or self.patience < 1 or self.negatives < 1:
            raise InputError("eval_every, patience and negatives must be at least 1")

    def _target_codes(self) -> np.ndarray | None:
        """The type codes of ``target_types`` (None: every event type is predicted)."""
        if self.target_types is None:
            return None
        wanted = [str(t) for t in _as_list(self.target_types)]
        codes = pd.Index(self.event_types_).get_indexer(wanted)
        if len(wanted) == 0 or (codes < 0).any():
            missing = [t for t, c in zip(wanted, codes, strict=True) if c < 0] or ["(none)"]
            raise InputError(
                f"sequences: target_types {', '.join(missing)} not found in column event_type "
                f"(it has {', '.join(map(str, self.event_types_))})"
            )
        return codes.astype(np.int16) + 2

    def _loss(self) -> str:
        """``auto``: full softmax unless the catalogue is over ``FULL_SOFTMAX_RATIO`` times
        ``negatives`` products (then sampled: per step, cost grows with ``negatives``)."""
        if self.loss != "auto":
            return self.loss
        return "full" if len(self.products_) <= FULL_SOFTMAX_RATIO * self.negatives else "sampled"

    def _new_net(self):
        from pyprofile.models.sequence_nets import SequenceNet

        return SequenceNet(
            len(self.products_),
            len(self.event_types_),
            max_length=self.max_length,
            dim=self.dim,
            layers=self.layers,
            heads=self.heads,
            dropout_rate=self.dropout,
            time_gaps=self.time_gaps,
        )

    def _keep(self, seqs: Sequences) -> None:
        """What scoring needs: every customer's latest window, products seen, popularity."""
        self.customers_ = from_id_array(id_array(seqs.customers))
        tail = seqs.tail(self.max_length)
        self.sequence_indptr_ = tail.indptr
        self.sequence_items_ = tail.items
        self.sequence_types_ = tail.types
        self.sequence_gaps_ = tail.gaps
        self.seen_indptr_, self.seen_items_ = seen_items(seqs, self._target_codes())
        self.popularity_ = seqs.item_counts(len(self.products_)).astype(np.float64)
        self._index = pd.Index(self.customers_)

    # ------------------------------------------------------------------ scoring
    def _stored(self) -> Sequences:
        return Sequences(
            self.customers_,
            self.sequence_indptr_,
            self.sequence_items_,
            self.sequence_types_,
            self.sequence_gaps_,
        )

    def _forward(self, seqs: Sequences, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings, next-product probabilities) of ``seqs``' customers at ``rows``; row -1
        is an empty history. Eval mode, no gradients, in batches."""
        import torch

        embeddings, probabilities = [], []
        self.net_.eval()
        with torch_threads(self.threads, self._device), torch.no_grad():
            for s in range(0, len(rows), _BATCH):
                window = _windows(seqs, rows[s : s + _BATCH], self.max_length)
                t = {n: torch.from_numpy(v).to(self._device) for n, v in window.items()}
                h = self.net_.hidden(t["items"], t["types"], t["gaps"])[:, -1]
                probabilities.append(torch.softmax(self.net_.logits(h), dim=1).cpu().numpy())
                embeddings.append(h.cpu().numpy())
        dim = self.dim
        if not embeddings:
            return np.zeros((0, dim), np.float32), np.zeros((0, len(self.products_)), np.float32)
        return np.concatenate(embeddings), np.concatenate(probabilities)

    def _rows(self, customer_ids: Iterable[Any] | None) -> tuple[np.ndarray, np.ndarray]:
        if customer_ids is None:
            customers = np.asarray(self.customers_, dtype=object)
        else:
            customers = np.asarray(list(dict.fromkeys(_as_list(customer_ids))), dtype=object)
        return customers, self._index.get_indexer(customers)

    def next_item_scores(self, customer_ids: Iterable[Any]) -> np.ndarray:
        """Next-product probabilities, one row per customer id as given (columns:
        ``products_``); unknown customers get the empty history's."""
        self._check_fitted()
        ids = _as_list(customer_ids)
        return self._forward(self._stored(), self._index.get_indexer(ids))[1]

    def recommend(
        self,
        customer_ids: Iterable[Any] | None = None,
        k: int | None = None,
        *,
        exclude_seen: bool | None = None,
    ) -> pd.DataFrame:
        """Top ``k`` next products per customer: customer_id, rank (1 = best), product_id,
        score (next-product probability). ``customer_ids`` defaults to every fitted customer;
        products in the customer's history (with ``target_types``: of its events of those
        types, e.g. products bought before, not those only viewed) are left out unless
        ``exclude_seen=False``."""
        self._check_fitted()
        customers, rows = self._rows(customer_ids)
        exclude = self.exclude_seen if exclude_seen is None else exclude_seen
        seen = (self.seen_indptr_, self.seen_items_) if exclude else None
        return self._top(self._stored(), customers, rows, self._k(k), seen)

    def _k(self, k: int | None) -> int:
        k = self.k if k is None else int(k)
        if k < 1:
            raise InputError(f"k must be at least 1, got {k}")
        return k

    def _top(self, seqs, customers, rows, k, seen) -> pd.DataFrame:
        frames = []
        for s in range(0, len(rows), _BATCH):
            part = rows[s : s + _BATCH]
            probs = self._forward(seqs, part)[1].astype(np.float64)
            if seen is not None:
                _mask_seen(probs, part, *seen)
            frames.append(_top_frame(customers[s : s + _BATCH], probs, self.products_, k))
        if not frames:
            return _top_frame(np.zeros(0, object), np.zeros((0, 0)), self.products_, k)
        return pd.concat(frames, ignore_index=True)

    def embed(
        self, customer_ids: Iterable[Any] | None = None, *, events: Any = None
    ) -> pd.DataFrame:
        """customer_id and the embedding columns ``embedding_00``... (the model's state after
        the customer's latest event); unknown customers get the empty history's.

        ``events`` (customer_id, product_id, timestamp, optional event_type) replaces the
        fitted histories, e.g. the same customers at a later date: only the latest
        ``max_length`` events of each count, products and event types the model was not
        trained on are skipped, and ``customer_ids`` defaults to the customers in ``events``.
        """
        self._check_fitted()
        if events is None:
            customers, rows = self._rows(customer_ids)
            seqs = self._stored()
        else:
            data = read_tokens(events, "events")
            seqs, _ = encode(
                data, pd.Index(self.products_), pd.Index(self.event_types_), unknown="ignore"
            )
            seqs = seqs.tail(self.max_length)
            ids = seqs.customers if customer_ids is None else customer_ids
            customers = np.asarray(list(dict.fromkeys(_as_list(ids))), dtype=object)
            rows = pd.Index(seqs.customers).get_indexer(customers)
        emb = self._forward(seqs, rows)[0].astype(np.float64)
        return _embedding_frame(customers, emb)

    def score_sequences(
        self,
        events: Any,
        k: int | None = None,
        *,
        exclude_seen: bool | None = None,
        unknown: str = "error",
    ) -> pd.DataFrame:
        """Recommendations for histories given as events (customer_id identifies a history;
        product_id; timestamp and event_type optional), not for the fitted customers.

        Only the latest ``max_length`` events of each history count. Products or event types
        the model was not trained on are an :class:`~pyprofile.errors.InputError`
        (``unknown="error"``) or skipped (``"ignore"``).
        """
        self._check_fitted()
        if unknown not in ("error", "ignore"):
            raise InputError(f"unknown must be 'error' or 'ignore', got {unknown!r}")
        data = read_tokens(events, "sequences")
        seqs, _ = encode(
            data, pd.Index(self.products_), pd.Index(self.event_types_), unknown=unknown
        )
        seqs = seqs.tail(self.max_length)
        rows = np.arange(len(seqs))
        exclude = self.exclude_seen if exclude_seen is None else exclude_seen
        seen = seen_items(seqs, self._target_codes()) if exclude else None
        return self._top(seqs, np.asarray(seqs.customers, dtype=object), rows, self._k(k), seen)

    def next_items_udf(self, k: int = 10):
        """A vectorised (Arrow) function for a **session-only** SQL function
        ``next_items(product_ids VARCHAR[], event_types VARCHAR[], event_ats TIMESTAMP[])
        -> VARCHAR[]``: the ``k`` most likely next products (ids as text) after each given
        history, products of the history excluded. Unknown products and event types are
        skipped; a NULL or empty history gets the empty history's prediction.

        It needs this Python process: create it on your own DuckDB connection, where it lives
        until that connection closes (another client, e.g. a BI tool, never sees it; they read
        the stored ``ml.recommendations``)::

            con.create_function("next_items", model.next_items_udf(10),
                                ["VARCHAR[]", "VARCHAR[]", "TIMESTAMP[]"], "VARCHAR[]",
                                type="arrow", null_handling="special", side_effects=False)
            con.sql("select customer_id, next_items(list(product_id order by event_at), "
                    "list(event_type order by event_at), list(event_at order by event_at)) "
                    "from features.customer_event_sequences group by customer_id")

        :func:`pyprofile.warehouse.functions.register` deliberately does not register it:
        nothing of the network is persisted as SQL."""
        self._check_fitted()
        k = self._k(k)
        as_text = pd.Index(np.asarray(self.products_).astype(str))

        prior = self._top(self._stored(), np.array([0], object), np.array([-1]), k, None)
        prior_items = [str(p) for p in prior[ITEM]]

        def next_items(product_ids, event_types, event_ats):
            import pyarrow as pa

            frame = _udf_events(product_ids, event_types, event_ats, self.products_, as_text)
            out = {}
            if len(frame):
                recs = self.score_sequences(frame, k, unknown="ignore")
                out = {int(r): [str(p) for p in g[ITEM]] for r, g in recs.groupby(USER)}
            rows = [out.get(i) or prior_items for i in range(len(product_ids))]
            return pa.array(rows, type=pa.list_(pa.string()))

        return next_items

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays: dict[str, Any] = {
            "products": id_array(self.products_),
            "event_types": np.asarray(self.event_types_).astype(str),
            "customers": id_array(self.customers_),
            "sequence_indptr": self.sequence_indptr_,
            "sequence_items": self.sequence_items_,
            "sequence_types": self.sequence_types_,
            "sequence_gaps": self.sequence_gaps_,
            "seen_indptr": self.seen_indptr_,
            "seen_items": self.seen_items_,
            "popularity": self.popularity_,
        }
        for name, value in self.net_.state_dict().items():
            arrays[f"net/{name}"] = value.detach().cpu().numpy()
        state = {
            "history_": self.history_,
            "best_step_": self.best_step_,
            "validation_ndcg_": self.validation_ndcg_,
        }
        return arrays, state

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        import torch

        self.products_ = from_id_array(arrays["products"])
        self.event_types_ = arrays["event_types"].astype(object)
        self.customers_ = from_id_array(arrays["customers"])
        for name in ("sequence_indptr", "sequence_items", "sequence_types", "sequence_gaps"):
            setattr(self, f"{name}_", arrays[name])
        self.seen_indptr_, self.seen_items_ = arrays["seen_indptr"], arrays["seen_items"]
        self.popularity_ = arrays["popularity"]
        self._index = pd.Index(self.customers_)
        self._device = resolve_device(self.device)
        net = self._new_net()
        weights = {
            key.removeprefix("net/"): torch.from_numpy(np.array(value))
            for key, value in arrays.items()
            if key.startswith("net/")
        }
        net.load_state_dict(weights)
        self.net_ = net.to(self._device).eval()
        self.history_ = state["history_"]
        self.best_step_ = state["best_step_"]
        self.validation_ndcg_ = state["validation_ndcg_"]


# ---------------------------------------------------------------------- helpers
def _as_list(values: Any) -> list[Any]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        return [values]
    return list(values.tolist() if hasattr(values, "tolist") else values)


def _check_trainable(data: pd.DataFrame) -> None:
    """A sequence model needs events, and customers with at least two of them."""
    if data.empty:
        raise InputError("sequences is empty: nothing to learn from (0 rows)")
    counts = data.groupby(USER, sort=False).size()
    if (counts >= 2).sum() == 0:
        raise InputError(
            f"sequences ({len(data)} rows): all {len(counts)} customer(s) have a single event "
            f"(column {USER}); a sequence model needs customers with at least two"
        )


def _windows(seqs: Sequences, rows: np.ndarray, length: int) -> dict[str, np.ndarray]:
    """Latest windows of the customers at ``rows``; row -1 is an empty history (start only)."""
    n = len(rows)
    out = {
        "items": np.zeros((n, length), np.int64),
        "types": np.zeros((n, length), np.int64),
        "gaps": np.zeros((n, length), np.int64),
    }
    out["items"][:, -1] = START
    out["types"][:, -1] = START
    known = rows >= 0
    if known.any():
        window = last_windows(seqs, rows[known], length)
        for name in out:
            out[name][known] = window[name]
    return out


def _mask_seen(probs: np.ndarray, rows: np.ndarray, indptr: np.ndarray, items: np.ndarray):
    """Set the products each customer (row -1: none) has seen to -inf, in place."""
    known = np.flatnonzero(rows >= 0)
    counts = np.diff(indptr)[rows[known]]
    where = np.repeat(known, counts)
    starts = np.repeat(indptr[rows[known]], counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    probs[where, items[starts + offsets]] = -np.inf


def _top_frame(customers: np.ndarray, probs: np.ndarray, products: np.ndarray, k: int):
    """The ``k`` best finite scores per row, best first (ties: lower product index first)."""
    k = min(k, probs.shape[1])
    if len(customers) == 0 or k == 0:
        return pd.DataFrame(
            {
                USER: pd.Series([], dtype=object),
                "rank": pd.Series([], dtype=np.int32),
                ITEM: pd.Series([], dtype=object),
                "score": pd.Series([], dtype=np.float64),
            }
        )
    top = np.argpartition(-probs, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(probs, top, 1)
    order = np.lexsort((top, -vals), axis=-1)
    top, vals = np.take_along_axis(top, order, 1), np.take_along_axis(vals, order, 1)
    r, c = np.nonzero(np.isfinite(vals))
    return pd.DataFrame(
        {
            USER: customers[r],
            "rank": (c + 1).astype(np.int32),
            ITEM: np.asarray(products, dtype=object)[top[r, c]],
            "score": vals[r, c],
        }
    )


def _embedding_frame(customers: np.ndarray, emb: np.ndarray) -> pd.DataFrame:
    width = max(2, len(str(emb.shape[1] - 1)))
    columns = {f"embedding_{i:0{width}d}": emb[:, i] for i in range(emb.shape[1])}
    return pd.DataFrame({USER: customers, **columns})


def _udf_events(product_ids, event_types, event_ats, products, as_text) -> pd.DataFrame:
    """The UDF's list arguments as event rows (customer_id = the row's number); null lists
    and null elements are skipped."""
    ids, kinds = product_ids.to_pylist(), event_types.to_pylist()
    times = event_ats.to_pylist()
    rows = []
    for row, (p, e, t) in enumerate(zip(ids, kinds, times, strict=True)):
        if not p:
            continue
        e = e or [None] * len(p)
        t = t or [None] * len(p)
        rows += [(row, a, b, c) for a, b, c in zip(p, e, t, strict=False) if a is not None]
    frame = pd.DataFrame(rows, columns=[USER, "text", TYPE, TIME])
    code = as_text.get_indexer(frame["text"].astype(str))
    frame[ITEM] = np.where(code >= 0, np.asarray(products, dtype=object)[np.maximum(code, 0)], None)
    frame = frame[(code >= 0) & frame[TYPE].notna()]
    if frame[TIME].isna().any():
        frame[TIME] = frame[TIME].fillna(pd.Timestamp(0))
    return frame.drop(columns="text")
