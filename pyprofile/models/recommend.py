"""Implicit-feedback recommendations: popularity, item-kNN, EASE, ALS and a sequence model
behind one estimator.

``Recommender(method=...)`` fits on interactions (customer_id, product_id, weight, timestamp),
one row per event or per customer x product pair, and ``recommend`` returns the top K unseen
products per customer with a score and a readable reason. Methods:

* ``popularity`` - products by total weight, within the customer's segment when segments are
  given, else overall.
* ``itemknn`` - item-item cosine similarity of the weighted interaction columns, with a
  shrinkage term in the denominator and the ``neighbors`` most similar items kept per item.
* ``ease`` - EASE^R (Steck, 2019): a closed-form item-item linear autoencoder
  ``B = I - P / diag(P)``, ``P = (X'X + lambda I)^-1``, over the products with at least
  ``min_support`` customers (at most ``max_items`` of them, the most popular); ``lambda`` is
  ``ease_lambda`` times the mean diagonal of ``X'X``, so one value suits many data sizes.
* ``als`` - implicit-feedback matrix factorisation (Hu, Koren & Volinsky, 2008) by alternating
  least squares with a few conjugate-gradient steps per sweep, seeded.
* ``sequence`` - :class:`~pyprofile.models.sequence.SequenceRecommender`, causal
  self-attention over each customer's time-ordered events, trained to predict the next
  product; its settings go in ``sequence_params`` (a dict), its seed is ``random_state``. It
  reads the events given as ``fit(..., sequences=...)`` (one row per event: customer_id,
  product_id, timestamp, optional event_type), else the interaction rows themselves (each row
  one event at its timestamp); scores are next-product probabilities.
* ``auto`` - each of ``candidates`` is fitted on an inner time split of the training data (the
  latest ``validation_fraction`` of every customer's interactions held out) and the one with
  the best validation NDCG@10 is refitted on everything (the comparison runs on a seeded
  sample of at most ``selection_customers`` customers, 50,000). The default candidates are
  popularity, item-kNN, EASE and ALS; ``sequence`` joins only when named in ``candidates``:
  it trains a network (a minute or more on two CPU cores, against seconds) and, measured
  (``benchmarks/results/sequence.md``), loses to item-kNN and EASE on MovieLens and on the
  demo's held-out part even where it edged them on the inner split (by 0.001 NDCG@10), so it
  is chosen only when it beats the best other candidate by ``sequence_margin`` (5 %,
  relative). Its inner fit sees only the events before each customer's held-out part. Segments take part in the selection
  only with ``select_with_segments=True``: a segment table computed from the whole history
  would let segment popularity see the validation period.

Each customer x product's summed weight ``w`` enters as ``log2(1 + w)`` (``weighting="log"``;
or ``"binary"``, ``"raw"``). The item-based methods score a customer's history weighted
towards its recent end: the interaction ``j`` places before the latest weighs
``0.5 ** (j / history_half_life)``.
Customers without history (cold start) get their segment's or the overall popularity; when
a personalised model has fewer than K positive scores the rest is filled the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse as sp

from pyprofile.errors import InputError
from pyprofile.models.base import Estimator
from pyprofile.models.data import as_frame, require_columns, sample_rows, sorted_unique
from pyprofile.models.ranking import ranking_metrics, time_split
from pyprofile.models.sequence import SequenceRecommender
from pyprofile.models.sequence_data import (
    from_id_array,
    id_array,
    read_tokens,
    timestamps,
    tokens_before,
)

METHODS = ("popularity", "itemknn", "ease", "als", "sequence")
# What auto compares unless told otherwise: the closed-form and few-sweep models (seconds);
# the sequence model is opt-in (candidates=[..., "sequence"]) because it trains a network.
AUTO_CANDIDATES = ("popularity", "itemknn", "ease", "als")
# How a customer x product's summed weight enters the models: dampened by default, so that
# a product bought many times or viewed a hundred times does not drown the rest.
WEIGHTINGS = {"log": lambda w: np.log2(1.0 + w), "binary": np.ones_like, "raw": lambda w: w}
USER, ITEM, WEIGHT, TIME = "customer_id", "product_id", "weight", "timestamp"
_BATCH = 1024  # customers scored per dense block...
_BLOCK_CELLS = 8_000_000  # ...of at most this many customer x product scores


class Recommender(Estimator):
    """Top-K product recommendations from implicit feedback (scikit-learn style estimator).

    >>> rec = Recommender(method="auto", random_state=0).fit(interactions, segments=segments)
    >>> rec.recommend(["c1", "c2"], k=10)  # customer_id, rank, product_id, score, reason
    """

    fitted_attribute: ClassVar[str] = "method_"
    artifact_format: ClassVar[str] = "pyprofile.recommender/2"

    def __init__(
        self,
        method: str = "auto",
        *,
        k: int = 10,
        neighbors: int = 200,
        shrinkage: float = 50.0,
        ease_lambda: float = 10.0,
        min_support: int = 3,
        max_items: int = 2000,
        factors: int = 32,
        regularization: float = 0.1,
        alpha: float = 1.0,
        iterations: int = 15,
        history_half_life: float | None = 10.0,
        weighting: str = "log",
        candidates: Sequence[str | dict[str, Any]] | None = None,
        validation_fraction: float = 0.2,
        selection_customers: int | None = 50_000,
        sequence_margin: float = 0.05,
        select_with_segments: bool = False,
        exclude_seen: bool = True,
        seen_column: str | None = None,
        sequence_params: dict[str, Any] | None = None,
        random_state: int | None = None,
        device: str = "auto",
        threads: int | None = 1,
        verbose: bool = False,
    ):
        self.method = method
        self.k = k
        self.neighbors = neighbors
        self.shrinkage = shrinkage
        self.ease_lambda = ease_lambda
        self.min_support = min_support
        self.max_items = max_items
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.history_half_life = history_half_life
        self.weighting = weighting
        self.candidates = candidates
        self.validation_fraction = validation_fraction
        self.selection_customers = selection_customers
        self.sequence_margin = sequence_margin
        self.select_with_segments = select_with_segments
        self.exclude_seen = exclude_seen
        self.seen_column = seen_column
        self.sequence_params = sequence_params
        self.random_state = random_state
        self.device = device
        self.threads = threads
        self.verbose = verbose

    @property
    def similarity_(self) -> sp.csr_matrix:
        """Item x item cosine similarity (top ``neighbors`` per product), computed on first use."""
        self._check_fitted()
        if self._similarity is None:
            self._similarity = _cosine_topk(self.matrix_, self.neighbors, self.shrinkage)
        return self._similarity

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        interactions: Any,
        *,
        segments: Any = None,
        products: Any = None,
        sequences: Any = None,
    ) -> Recommender:
        """Learn from interactions (customer_id, product_id, weight, timestamp).

        ``segments``: optional customer_id -> segment table (columns ``customer_id`` and
        ``segment``), a pandas Series indexed by customer id, or a dict; it may name customers
        without interactions (they get their segment's popular products). ``products``: optional
        catalogue (a table with ``product_id`` or a sequence of ids); interactions naming other
        products are rejected, and catalogue products without interactions count as products.
        ``sequences``: optional events for the ``sequence`` method (customer_id, product_id,
        timestamp, optional event_type; one row per event); without them it reads the
        interaction rows as events.
        """
        self._validate_params()
        frame = _aggregate(interactions, self.seen_column)
        catalogue = _catalogue(products, frame)
        seg = _segments(segments)
        candidates = self._candidates()
        events = None
        if any(_method_of(c) == "sequence" for c in candidates):
            events = _sequence_events(interactions, sequences, catalogue, products is not None)
        method = self.method
        self.validation_ = []
        if method == "auto":
            method, chosen = self._select(frame, catalogue, seg, events, candidates)
        else:
            chosen = {}
        params = {**self.get_params(), **chosen}
        frame[WEIGHT] = WEIGHTINGS[params["weighting"]](frame[WEIGHT].to_numpy(np.float64))
        self._fit_data(frame, catalogue, seg, params["history_half_life"])
        self._fit_model(method, params, events)
        self.method_ = method
        self.selected_params_ = chosen
        self._map_sequence_products()
        return self

    def sequence_estimator(self) -> SequenceRecommender:
        """An unfitted :class:`~pyprofile.models.sequence.SequenceRecommender` with this
        recommender's sequence settings (``sequence_params``, ``random_state``, ``device``,
        ``threads``, ``verbose``): what ``method="sequence"`` fits."""
        return _sequence_model(self.get_params())

    def _map_sequence_products(self) -> None:
        """Column of each of the sequence model's products among ``products_`` (-1: none)."""
        model = getattr(self, "sequence_model_", None)
        self._sequence_columns = (
            np.zeros(0, np.int64)
            if model is None
            else self._item_index.get_indexer(model.products_)
        )

    def _validate_params(self) -> None:
        if self.method not in (*METHODS, "auto"):
            raise InputError(f"unknown method {self.method!r}; use auto or one of {METHODS}")
        if self.k < 1:
            raise InputError(f"k must be at least 1, got {self.k}")
        if self.weighting not in WEIGHTINGS:
            raise InputError(f"unknown weighting {self.weighting!r}; use one of {WEIGHTINGS}")
        if self.history_half_life is not None and self.history_half_life <= 0:
            raise InputError("history_half_life must be positive or None")
        if not self.sequence_margin >= 0:
            raise InputError(f"sequence_margin must be at least 0, got {self.sequence_margin}")
        if self.selection_customers is not None and self.selection_customers < 1:
            raise InputError(
                f"selection_customers must be at least 1 (or None), got {self.selection_customers}"
            )
        _check_sequence_params(self.sequence_params)

    def _candidates(self) -> list[Any]:
        """What this fit may train: the method, or auto's candidates (by default
        ``AUTO_CANDIDATES``; the sequence model only when named in ``candidates``)."""
        if self.method != "auto":
            return [self.method]
        if self.candidates:
            return list(self.candidates)
        return list(AUTO_CANDIDATES)

    def _fit_data(
        self,
        frame: pd.DataFrame,
        catalogue: np.ndarray,
        seg: pd.Series | None,
        half_life: float | None,
    ) -> None:
        """Index customers and products and build the weighted customer x product matrices."""
        self.products_ = catalogue
        users = sorted_unique(frame[USER].to_numpy())
        self.customers_ = users
        self._user_index = pd.Index(users)
        self._item_index = pd.Index(catalogue)
        u = self._user_index.get_indexer(frame[USER])
        i = self._item_index.get_indexer(frame[ITEM])
        shape = (len(users), len(catalogue))
        w = frame[WEIGHT].to_numpy(np.float64)
        self.matrix_ = sp.csr_matrix((w, (u, i)), shape=shape)
        self.matrix_.sum_duplicates()
        # Position from the customer's latest interaction (0 = latest) drives history decay.
        order = np.lexsort(
            (-i, -frame[TIME].to_numpy().astype("datetime64[ns]").astype(np.int64), u)
        )
        pos = np.empty(len(u), np.int64)
        starts = np.r_[0, np.flatnonzero(np.diff(u[order])) + 1]
        counts = np.diff(np.r_[starts, len(u)])
        pos[order] = np.arange(len(u)) - np.repeat(starts, counts)
        decay = 1.0 if half_life is None else 0.5 ** (pos / half_life)
        self.profile_ = sp.csr_matrix((w * decay, (u, i)), shape=shape)
        seen = frame["_seen"].to_numpy()
        self.seen_ = sp.csr_matrix((np.ones(seen.sum()), (u[seen], i[seen])), shape=shape)
        self.popularity_ = np.asarray(self.matrix_.sum(axis=0)).ravel()
        self._fit_segments(seg)
        self._similarity = None

    def _fit_segments(self, seg: pd.Series | None) -> None:
        self.segments_ = np.array([], dtype=object) if seg is None else np.unique(seg.to_numpy())
        self.segment_of_ = {} if seg is None else seg.to_dict()
        self.segment_popularity_ = np.zeros((len(self.segments_), len(self.products_)))
        if seg is None:
            return
        user_seg = pd.Index(self.segments_).get_indexer(seg.reindex(self.customers_).to_numpy())
        known = user_seg >= 0
        onehot = sp.csr_matrix(
            (np.ones(known.sum()), (user_seg[known], np.flatnonzero(known))),
            shape=(len(self.segments_), len(self.customers_)),
        )
        self.segment_popularity_ = np.asarray((onehot @ self.matrix_).todense())

    def _fit_model(self, method: str, params: dict[str, Any], events: Any = None) -> None:
        self.sequence_model_ = None
        self.ease_items_ = np.array([], dtype=np.int64)
        self.ease_weights_ = np.zeros((0, 0), np.float32)
        self.user_factors_ = np.zeros((0, 0), np.float32)
        self.item_factors_ = np.zeros((0, 0), np.float32)
        n_items = self.matrix_.shape[1]
        self.knn_ = sp.csr_matrix((n_items, n_items), dtype=np.float32)
        if method == "itemknn":
            self.knn_ = _cosine_topk(self.matrix_, params["neighbors"], params["shrinkage"])
            if params["neighbors"] == self.neighbors and params["shrinkage"] == self.shrinkage:
                self._similarity = self.knn_
        elif method == "ease":
            self.ease_items_, self.ease_weights_ = _ease(
                self.matrix_, params["ease_lambda"], params["min_support"], params["max_items"]
            )
        elif method == "sequence":
            self.sequence_model_ = _sequence_model(params).fit(events)
        elif method == "als":
            rng = np.random.default_rng(params["random_state"])
            self.user_factors_, self.item_factors_ = _als(
                self.matrix_,
                params["factors"],
                params["regularization"],
                params["alpha"],
                params["iterations"],
                rng,
            )

    def _select(
        self,
        frame: pd.DataFrame,
        catalogue: np.ndarray,
        seg: pd.Series | None,
        events: Any,
        candidates: list[Any],
    ) -> tuple[str, dict[str, Any]]:
        """Fit every candidate on an inner time split; keep the best validation NDCG@10
        (popularity when no customer has enough history for a validation part). The sequence
        candidate sees each customer's events before their validation part only. Above
        ``selection_customers`` customers the comparison runs on a seeded sample of them, so
        choosing costs the same on any base; the winner is then fitted on everyone."""
        frame, events = customer_sample(
            frame, events, self.selection_customers, self.random_state or 0
        )
        inner, valid = time_split(frame, self.validation_fraction)
        scored = []
        users = valid[USER].unique()
        for cand in candidates:
            spec = {"method": cand} if isinstance(cand, str) else dict(cand)
            if spec.get("method") not in METHODS:
                raise InputError(f"candidate {cand!r}: name a method, one of {METHODS}")
            base = {k: v for k, v in self.get_params().items() if k not in ("candidates",)}
            model = Recommender(**{**base, **spec, "verbose": False, "seen_column": "_seen"})
            if model.method == "auto":
                raise InputError("auto cannot be one of its own candidates")
            # Segments are usually computed from the whole history, validation part included:
            # segment popularity would see the future, so selection ignores them by default.
            skipped = _fit_candidate(
                model,
                inner,
                segments=seg if self.select_with_segments else None,
                products=catalogue,
                sequences=None if events is None else tokens_before(events, valid),
            )
            if skipped:  # events too short for a sequence model before the validation part
                score = {"ndcg@10": None, "skipped": skipped}
            elif len(users) == 0:  # nobody has enough history to hold some out
                score = {"ndcg@10": None}
            else:
                recs = model.recommend(users, 10, reasons=False)
                score = ranking_metrics(recs, valid, 10, train=inner, n_catalogue=len(catalogue))
            record = {**spec, **score}
            self.validation_.append(record)
            if self.verbose:
                print(f"[recommend] {record}")
            scored.append((spec, score["ndcg@10"]))
        spec = choose(scored, self.sequence_margin)
        return spec["method"], {k: v for k, v in spec.items() if k != "method"}

    # ------------------------------------------------------------------ scoring
    def _scores(self, rows: np.ndarray) -> np.ndarray:
        """Dense personalised scores for known customers (row indices), one row each."""
        m = self.method_
        if m == "popularity":
            return np.zeros((len(rows), len(self.products_)))
        if m == "sequence":
            out = np.zeros((len(rows), len(self.products_)))
            probs = self.sequence_model_.next_item_scores(self.customers_[rows])
            known = self._sequence_columns >= 0
            out[:, self._sequence_columns[known]] = probs[:, known]
            return out
        if m == "als":
            return self.user_factors_[rows] @ self.item_factors_.T
        profile = self.profile_[rows]
        if m == "itemknn":
            return np.asarray((profile @ self.knn_).todense())
        out = np.zeros((len(rows), len(self.products_)))
        if len(self.ease_items_):
            out[:, self.ease_items_] = profile[:, self.ease_items_] @ self.ease_weights_
        return out

    def _fallback(self, customers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Popularity row per customer (its segment's when known and non-empty) and whether
        that row is the segment's."""
        seg_idx = pd.Index(self.segments_).get_indexer(
            [self.segment_of_.get(c, None) for c in customers]
        )
        if len(self.segments_):
            has = self.segment_popularity_.sum(axis=1) > 0
            seg_idx = np.where((seg_idx >= 0) & has[np.maximum(seg_idx, 0)], seg_idx, -1)
        table = np.vstack([self.segment_popularity_, self.popularity_[None, :]])
        return table[np.where(seg_idx >= 0, seg_idx, -1)], seg_idx >= 0

    def recommend(
        self,
        customer_ids: Iterable[Any] | None = None,
        k: int | None = None,
        *,
        exclude_seen: bool | None = None,
        reasons: bool = True,
    ) -> pd.DataFrame:
        """Top ``k`` products per customer: customer_id, rank (1 = best), product_id, score, reason.

        ``customer_ids`` defaults to every customer seen in ``fit`` (interactions or segments).
        Unknown customers are cold start: segment or overall popularity. Already-seen products
        are excluded unless ``exclude_seen=False``. Model-scored products rank first, by the
        model's score; when fewer than ``k`` have a positive score, popular products fill the
        list with their popularity share (of the segment's or overall weight) as score.
        """
        self._check_fitted()
        k = self.k if k is None else int(k)
        if k < 1:
            raise InputError(f"k must be at least 1, got {k}")
        exclude = self.exclude_seen if exclude_seen is None else exclude_seen
        if customer_ids is None:
            ids = [*self.customers_.tolist(), *self.segment_of_]
        else:
            ids = _as_list(customer_ids)
        customers = np.asarray(list(dict.fromkeys(ids)), dtype=object)
        batch = max(1, min(_BATCH, _BLOCK_CELLS // max(len(self.products_), 1)))
        frames = [
            self._recommend_block(customers[s : s + batch], k, exclude, reasons)
            for s in range(0, len(customers), batch)
        ]
        if not frames:
            return _empty_recs()
        return pd.concat(frames, ignore_index=True)

    def _recommend_block(
        self, customers: np.ndarray, k: int, exclude: bool, reasons: bool
    ) -> pd.DataFrame:
        n_items = len(self.products_)
        rows = self._user_index.get_indexer(customers)
        known = rows >= 0
        pop, in_segment = self._fallback(customers)
        pop_share = pop / np.maximum(pop.sum(axis=1, keepdims=True), 1e-12)
        personal = np.zeros((len(customers), n_items))
        if known.any():
            personal[known] = self._scores(rows[known])
        is_personal = personal > 0
        # Personalised items first (by score), then popular ones (by popularity share).
        rank_key = np.where(is_personal, 2.0 + personal / max(personal.max(), 1e-12), pop_share)
        if self.method_ == "als":
            is_personal = np.broadcast_to(known[:, None], personal.shape).copy()
            z = personal - personal.min(initial=0.0)
            rank_key = np.where(is_personal, 2.0 + z / max(z.max(), 1e-12), pop_share)
        if exclude and known.any():
            seen = self.seen_[rows[known]].tocoo()
            rank_key[np.flatnonzero(known)[seen.row], seen.col] = -np.inf
        top, key = _topk_rows(rank_key, min(k, n_items))
        valid = np.isfinite(key)
        r, c = np.nonzero(valid)
        items = top[r, c]
        pers = is_personal[r, items]
        score = np.where(pers, personal[r, items], pop_share[r, items])
        out = pd.DataFrame(
            {
                USER: customers[r],
                "rank": (c + 1).astype(np.int32),
                ITEM: self.products_[items],
                "score": score.astype(np.float64),
            }
        )
        if reasons:
            out["reason"] = self._reasons(rows[r], items, pers, in_segment[r])
        return out

    def _reasons(
        self, rows: np.ndarray, items: np.ndarray, personal: np.ndarray, in_segment: np.ndarray
    ) -> np.ndarray:
        """A short reason per recommendation: the history item most similar to it, else popularity."""
        reason = np.where(in_segment, "popular in your segment", "popular overall").astype(object)
        idx = np.flatnonzero(personal & (rows >= 0))
        if len(idx) == 0:
            return reason
        because = _best_history_item(self.profile_, self._explainer(), rows[idx], items[idx])
        names = np.where(
            because >= 0,
            np.char.add(
                "bought together with ", self.products_[np.maximum(because, 0)].astype(str)
            ),
            "customers like you chose it",
        )
        reason[idx] = names
        return reason

    def _explainer(self) -> sp.csr_matrix:
        """Item x item weights whose product with the history explains a score."""
        if self.method_ == "itemknn":
            return self.knn_
        if self.method_ == "ease" and len(self.ease_items_):
            b = np.where(self.ease_weights_ > 0, self.ease_weights_, 0.0)
            n = len(self.products_)
            local = sp.coo_matrix(b)
            return sp.csr_matrix(
                (local.data, (self.ease_items_[local.row], self.ease_items_[local.col])),
                shape=(n, n),
            )
        return self.similarity_

    def similar_products(self, k: int = 20) -> pd.DataFrame:
        """Top ``k`` similar products per product (co-interaction cosine with shrinkage).

        Columns: product_id, rank, similar_product_id, score (0-1). Products without
        co-interactions have no rows.
        """
        self._check_fitted()
        sim = self.similarity_.T.tocsr()  # row j: product j's neighbours
        rows, cols, vals = _topk_sparse_rows(sim, k)
        order = np.lexsort((cols, -vals, rows))
        rows, cols, vals = rows[order], cols[order], vals[order]
        starts = np.r_[0, np.flatnonzero(np.diff(rows)) + 1]
        rank = np.arange(len(rows)) - np.repeat(starts, np.diff(np.r_[starts, len(rows)]))
        return pd.DataFrame(
            {
                ITEM: self.products_[rows],
                "rank": (rank + 1).astype(np.int32),
                "similar_product_id": self.products_[cols],
                "score": vals.astype(np.float64),
            }
        )

    def evaluate(self, test: Any, k: int = 10) -> dict[str, float]:
        """Recall@K, NDCG@K and coverage against held-out interactions of the fitted customers."""
        self._check_fitted()
        test_f = as_frame(test, "test")
        require_columns(test_f, [USER, ITEM], "test")
        recs = self.recommend(test_f[USER].unique(), k, reasons=False)
        seen = self.seen_.tocoo()
        train = pd.DataFrame({USER: self.customers_[seen.row], ITEM: self.products_[seen.col]})
        return ranking_metrics(recs, test_f, k, train=train, n_catalogue=len(self.products_))

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays: dict[str, np.ndarray] = {
            "customers": id_array(self.customers_),
            "products": id_array(self.products_),
            "popularity": self.popularity_,
            "segment_popularity": self.segment_popularity_,
            "segments": id_array(self.segments_),
            "segment_customers": id_array(np.array(list(self.segment_of_), dtype=object)),
            "segment_values": id_array(np.array(list(self.segment_of_.values()), dtype=object)),
            "ease_items": self.ease_items_,
            "ease_weights": self.ease_weights_,
            "user_factors": self.user_factors_,
            "item_factors": self.item_factors_,
        }
        if self.sequence_model_ is not None:  # its own pickle-free artifact, as bytes
            blob = self.sequence_model_.to_artifact()
            arrays["sequence_model"] = np.frombuffer(blob, dtype=np.uint8)
        for name in ("matrix_", "profile_", "seen_", "similarity_", "knn_"):
            m = getattr(self, name).tocsr()
            arrays.update(
                {f"{name}data": m.data, f"{name}indices": m.indices, f"{name}indptr": m.indptr}
            )
        state = {
            "method_": self.method_,
            "selected_params_": _jsonable_params(self.selected_params_),
            "validation_": _jsonable_params(self.validation_),
        }
        return arrays, state

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.customers_ = from_id_array(arrays["customers"])
        self.products_ = from_id_array(arrays["products"])
        self._user_index = pd.Index(self.customers_)
        self._item_index = pd.Index(self.products_)
        self.popularity_ = arrays["popularity"]
        self.segment_popularity_ = arrays["segment_popularity"]
        self.segments_ = from_id_array(arrays["segments"])
        self.segment_of_ = dict(
            zip(
                from_id_array(arrays["segment_customers"]).tolist(),
                from_id_array(arrays["segment_values"]).tolist(),
                strict=True,
            )
        )
        self.ease_items_ = arrays["ease_items"]
        self.ease_weights_ = arrays["ease_weights"]
        self.user_factors_ = arrays["user_factors"]
        self.item_factors_ = arrays["item_factors"]
        shapes = {
            "matrix_": (len(self.customers_), len(self.products_)),
            "profile_": (len(self.customers_), len(self.products_)),
            "seen_": (len(self.customers_), len(self.products_)),
            "similarity_": (len(self.products_), len(self.products_)),
            "knn_": (len(self.products_), len(self.products_)),
        }
        for name, shape in shapes.items():
            m = sp.csr_matrix(
                (arrays[f"{name}data"], arrays[f"{name}indices"], arrays[f"{name}indptr"]),
                shape=shape,
            )
            setattr(self, "_similarity" if name == "similarity_" else name, m)
        self.method_ = state["method_"]
        self.selected_params_ = state["selected_params_"]
        self.validation_ = state["validation_"]
        self.sequence_model_ = None
        if "sequence_model" in arrays:
            self.sequence_model_ = SequenceRecommender.from_artifact(
                arrays["sequence_model"].tobytes(), device=self.device, threads=self.threads
            )
        self._map_sequence_products()


# ---------------------------------------------------------------------- input handling
# The sequence model's settings that come from the Recommender's own parameters.
_SHARED_SEQUENCE_PARAMS = ("random_state", "device", "threads", "verbose")


def customer_sample(
    frame: pd.DataFrame, events: Any, customers: int | None, seed: int
) -> tuple[pd.DataFrame, Any]:
    """The interactions (and events) of a seeded sample of at most ``customers`` customers."""
    users = sorted_unique(frame[USER].to_numpy())
    keep = sample_rows(len(users), customers, seed)
    if keep is None:
        return frame, events
    chosen = users[keep]
    frame = frame[frame[USER].isin(chosen)].reset_index(drop=True)
    if events is not None:
        events = events[events[USER].isin(chosen)].reset_index(drop=True)
    return frame, events


def choose(scored: list[tuple[dict[str, Any], float | None]], sequence_margin: float) -> dict:
    """The candidate spec with the best validation NDCG@10 (first on ties; popularity when
    none was scored), a sequence candidate's score counting ``1 + sequence_margin`` times
    less: the network must beat the closed-form models clearly, not by noise."""
    best, best_score = {"method": "popularity"}, -1.0
    for spec, ndcg in scored:
        if ndcg is None:
            continue
        effective = ndcg / (1.0 + sequence_margin) if spec["method"] == "sequence" else ndcg
        if effective > best_score:
            best, best_score = spec, effective
    return best


def _fit_candidate(model: Recommender, inner: pd.DataFrame, **inputs: Any) -> str | None:
    """Fit one of auto's candidates; a sequence candidate whose events cannot train a model
    (e.g. every customer has one event before the validation part) is skipped: the reason."""
    try:
        model.fit(inner, **inputs)
    except InputError as exc:
        if model.method != "sequence":
            raise
        return str(exc)
    return None


def _method_of(candidate: Any) -> str | None:
    return candidate if isinstance(candidate, str) else dict(candidate).get("method")


def _check_sequence_params(params: Any) -> None:
    if params is None:
        return
    if not isinstance(params, dict):
        raise InputError(f"sequence_params must be a dict or None, got {type(params).__name__}")
    allowed = set(SequenceRecommender().get_params()) - set(_SHARED_SEQUENCE_PARAMS)
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise InputError(
            f"sequence_params: unknown setting(s) {', '.join(unknown)}; "
            f"use {', '.join(sorted(allowed))} (random_state, device, threads and verbose are "
            "the Recommender's own)"
        )


def _sequence_model(params: dict[str, Any]) -> SequenceRecommender:
    shared = {name: params[name] for name in _SHARED_SEQUENCE_PARAMS}
    return SequenceRecommender(**{**(params.get("sequence_params") or {}), **shared})


def _sequence_events(
    interactions: Any, sequences: Any, catalogue: np.ndarray, check_catalogue: bool
) -> pd.DataFrame:
    """The sequence model's events: ``sequences`` when given (products checked against an
    explicit catalogue), else the interaction rows with a positive weight."""
    if sequences is None:
        frame = as_frame(interactions, "interactions")
        if WEIGHT in frame.columns:
            frame = frame[pd.to_numeric(frame[WEIGHT], errors="coerce") > 0]
        return read_tokens(frame, "interactions")
    events = read_tokens(sequences, "sequences")
    unknown = ~events[ITEM].isin(catalogue)
    if check_catalogue and unknown.any():
        examples = ", ".join(map(str, pd.unique(events.loc[unknown, ITEM])[:5]))
        raise InputError(
            f"sequences ({len(events)} rows): {int(unknown.sum())} row(s) name product ids "
            f"absent from the products catalogue ({len(catalogue)} products), e.g. {examples}"
        )
    return events


def _as_list(values: Any) -> list[Any]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        return [values]
    return list(values.tolist() if hasattr(values, "tolist") else values)


def _aggregate(interactions: Any, seen_column: str | None) -> pd.DataFrame:
    """Validate interactions and collapse them to one row per customer x product."""
    frame = as_frame(interactions, "interactions")
    cols = [USER, ITEM, TIME] + ([seen_column] if seen_column else [])
    require_columns(frame, cols, "interactions")
    if frame.empty:
        raise InputError("interactions is empty: nothing to learn from (0 rows)")
    weight = frame[WEIGHT] if WEIGHT in frame.columns else pd.Series(1.0, index=frame.index)
    weight = pd.to_numeric(weight, errors="coerce")
    data = pd.DataFrame(
        {
            USER: frame[USER],
            ITEM: frame[ITEM],
            WEIGHT: weight,
            TIME: timestamps(frame[TIME]),
            "_seen": frame[seen_column].fillna(0).astype(float) > 0 if seen_column else True,
        }
    )
    for col in (USER, ITEM, WEIGHT, TIME):
        bad = int(data[col].isna().sum())
        if bad:
            raise InputError(
                f"interactions ({len(data)} rows): {bad} row(s) have a null or unreadable {col}"
            )
    negative = int((data[WEIGHT] < 0).sum())
    if negative:
        raise InputError(
            f"interactions ({len(data)} rows): {negative} row(s) have a negative weight"
        )
    data = data[data[WEIGHT] > 0]
    if data.empty:
        raise InputError("interactions: every weight is 0, nothing to learn from")
    return (
        data.groupby([USER, ITEM], as_index=False, sort=True)
        .agg({WEIGHT: "sum", TIME: "max", "_seen": "max"})
        .reset_index(drop=True)
    )


def _catalogue(products: Any, frame: pd.DataFrame) -> np.ndarray:
    present = sorted_unique(frame[ITEM].to_numpy())
    if products is None:
        return present
    if isinstance(products, pd.DataFrame) or hasattr(products, "column_names"):
        table = as_frame(products, "products")
        require_columns(table, [ITEM], "products")
        ids = table[ITEM].dropna().to_numpy()
    else:
        ids = np.asarray(_as_list(products))
    catalogue = sorted_unique(ids)
    unknown = ~frame[ITEM].isin(catalogue)
    if unknown.any():
        examples = ", ".join(map(str, pd.unique(frame.loc[unknown, ITEM])[:5]))
        raise InputError(
            f"interactions: {int(unknown.sum())} customer x product pair(s) name product ids "
            f"absent from the products catalogue ({len(catalogue)} products), e.g. {examples}"
        )
    return catalogue


def _segments(segments: Any) -> pd.Series | None:
    if segments is None:
        return None
    if isinstance(segments, dict):
        seg = pd.Series(segments)
    elif isinstance(segments, pd.Series):
        seg = segments
    else:
        table = as_frame(segments, "segments")
        require_columns(table, [USER, "segment"], "segments")
        seg = pd.Series(table["segment"].to_numpy(), index=table[USER].to_numpy())
    seg = seg[~seg.index.duplicated(keep="last")].dropna()
    return seg.astype(str)


def _empty_recs() -> pd.DataFrame:
    return pd.DataFrame(
        {
            USER: pd.Series([], dtype=object),
            "rank": pd.Series([], dtype=np.int32),
            ITEM: pd.Series([], dtype=object),
            "score": pd.Series([], dtype=np.float64),
            "reason": pd.Series([], dtype=object),
        }
    )


def _jsonable_params(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable_params(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable_params(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


# ---------------------------------------------------------------------- models
def _topk_rows(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of the ``k`` largest entries per row, best first.

    Ties are broken by the lower column index, also at the k-th place, so results never
    depend on the selection algorithm. torch.topk finds the threshold several times faster
    than numpy's partition.
    """
    import torch

    values = np.ascontiguousarray(values)
    kth = torch.topk(torch.from_numpy(values), k, dim=1, sorted=False).values.numpy().min(axis=1)
    above = values > kth[:, None]
    tied = values == kth[:, None]
    need = k - above.sum(axis=1)
    chosen = above | (tied & (np.cumsum(tied, axis=1) <= need[:, None]))
    idx = np.nonzero(chosen)[1].reshape(len(values), k)
    vals = np.take_along_axis(values, idx, 1)
    order = np.lexsort((idx, -vals), axis=-1)
    return np.take_along_axis(idx, order, 1), np.take_along_axis(vals, order, 1)


def _topk_sparse_rows(m: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, col, value) of the ``k`` largest positive entries of every row of a CSR matrix."""
    m = m.tocsr()
    m.eliminate_zeros()
    counts = np.diff(m.indptr)
    rows = np.repeat(np.arange(m.shape[0]), counts)
    order = np.lexsort((m.indices, -m.data, rows))
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order)) - np.repeat(m.indptr[:-1], counts)
    keep = (m.data > 0) & (rank < k)
    return rows[keep], m.indices[keep], m.data[keep]


def _cosine_topk(x: sp.csr_matrix, neighbors: int, shrinkage: float) -> sp.csr_matrix:
    """Item x item cosine similarity with shrinkage, top ``neighbors`` per target column.

    Entry (i, j) is how much history item ``i`` supports recommending ``j``; each column
    keeps its ``neighbors`` strongest sources, and the diagonal is zero.
    """
    n_users, n_items = x.shape
    x32 = x.astype(np.float32).tocsr()
    xt = x32.T.tocsr()
    norms = np.sqrt(np.asarray(xt.multiply(xt).sum(axis=1)).ravel())
    dense = x32.toarray() if n_users * n_items <= 50_000_000 else None
    kk = min(neighbors, n_items - 1)
    rows, cols, vals = [], [], []
    block = max(1, min(n_items, 4_000_000 // max(n_items, 1)))
    for start in range(0, n_items if kk >= 1 else 0, block):
        stop = min(n_items, start + block)
        gram = xt[start:stop] @ dense if dense is not None else (xt[start:stop] @ x32).toarray()
        gram /= norms[start:stop, None] * norms[None, :] + np.float32(shrinkage) + 1e-12
        gram[np.arange(stop - start), np.arange(start, stop)] = 0.0
        top, val = _topk_rows(gram, kk)
        keep = val > 0
        rows.append(np.repeat(np.arange(start, stop), kk)[keep.ravel()])
        cols.append(top[keep])
        vals.append(val[keep])
    if not rows:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    # Row i = target item i with its neighbours; transpose so rows are history items.
    target = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_items, n_items),
    )
    return target.T.tocsr()


def _ease(
    x: sp.csr_matrix, lam: float, min_support: int, max_items: int
) -> tuple[np.ndarray, np.ndarray]:
    """EASE^R weights over the supported items: ``B = I - P diagMat(1 / diag(P))``, zero diagonal."""
    support = np.diff(x.tocsc().indptr)
    items = np.flatnonzero(support >= max(1, min_support))
    if len(items) > max_items:
        top = np.lexsort((items, -support[items]))[:max_items]
        items = np.sort(items[top])
    if len(items) == 0:
        return items.astype(np.int64), np.zeros((0, 0), np.float32)
    xs = x[:, items]
    gram = np.asarray((xs.T @ xs).todense(), dtype=np.float64)
    # lam is relative to the mean diagonal (an item's weight mass) so it transfers across sizes.
    gram[np.diag_indices_from(gram)] += lam * np.diag(gram).mean()
    factor = scipy.linalg.cho_factor(gram, lower=True, overwrite_a=True, check_finite=False)
    p = scipy.linalg.cho_solve(factor, np.eye(len(items)), overwrite_b=True, check_finite=False)
    b = p / (-np.diag(p))[None, :]
    b[np.diag_indices_from(b)] = 0.0
    return items.astype(np.int64), b.astype(np.float32)


def _rowdot(a: np.ndarray, b: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``sum(a[rows] * b[cols], axis=1)`` in bounded chunks."""
    out = np.empty(len(rows), dtype=a.dtype)
    step = 1 << 18
    for s in range(0, len(rows), step):
        out[s : s + step] = np.einsum("nf,nf->n", a[rows[s : s + step]], b[cols[s : s + step]])
    return out


def _als_half(
    conf: sp.csr_matrix, x: np.ndarray, y: np.ndarray, reg: float, cg_steps: int = 3
) -> np.ndarray:
    """One ALS half-sweep: update ``x`` for every row of ``conf`` by conjugate gradient.

    Solves ``(Y'Y + Y'(C_u - I)Y + reg I) x_u = Y'C_u 1`` (Hu et al.) for all rows at once,
    warm-started from the current ``x``.
    """
    conf = conf.tocsr()
    rows = np.repeat(np.arange(conf.shape[0]), np.diff(conf.indptr))
    cols, c = conf.indices, conf.data
    yty = y.T @ y + reg * np.eye(y.shape[1], dtype=y.dtype)
    work = conf.copy()  # same sparsity, data replaced on every product

    def apply(v: np.ndarray) -> np.ndarray:
        work.data = (c - 1.0) * _rowdot(v, y, rows, cols)
        return v @ yty + work @ y

    b = conf @ y
    r = b - apply(x)
    p = r.copy()
    rs = np.einsum("nf,nf->n", r, r)
    for _ in range(cg_steps):
        ap = apply(p)
        denom = np.einsum("nf,nf->n", p, ap)
        step = np.divide(rs, denom, out=np.zeros_like(rs), where=denom > 1e-20)
        x = x + step[:, None] * p
        r = r - step[:, None] * ap
        rs_new = np.einsum("nf,nf->n", r, r)
        beta = np.divide(rs_new, rs, out=np.zeros_like(rs), where=rs > 1e-20)
        p = r + beta[:, None] * p
        rs = rs_new
    return x


def _als(
    x: sp.csr_matrix,
    factors: int,
    reg: float,
    alpha: float,
    iterations: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Implicit ALS with confidence ``1 + alpha * weight``; returns (user, item) factors."""
    # float32 halves the memory traffic of the gathers that dominate the time.
    conf = x.tocsr().astype(np.float32)
    conf.data = 1.0 + np.float32(alpha) * conf.data
    n_users, n_items = x.shape
    u = rng.normal(0.0, 0.01, (n_users, factors)).astype(np.float32)
    v = rng.normal(0.0, 0.01, (n_items, factors)).astype(np.float32)
    conf_t = conf.T.tocsr()
    for _ in range(iterations):
        u = _als_half(conf, u, v, reg)
        v = _als_half(conf_t, v, u, reg)
    return u.astype(np.float32), v.astype(np.float32)


def _best_history_item(
    profile: sp.csr_matrix, sim: sp.csr_matrix, rows: np.ndarray, items: np.ndarray
) -> np.ndarray:
    """For each (customer row, recommended item): the history item with the largest
    ``profile[u, i] * sim[i, item]``, or -1 when no history item is similar at all.

    Vectorised: every pair is expanded by the customer's history and the similarities are
    looked up by binary search in the sorted (row, column) keys of ``sim``.
    """
    prof = profile.tocsr()
    sim = sim.tocsr()
    sim.sort_indices()
    n = np.int64(sim.shape[1])
    sim_rows = np.repeat(np.arange(sim.shape[0], dtype=np.int64), np.diff(sim.indptr))
    sim_keys = sim_rows * n + sim.indices
    out = np.full(len(rows), -1, np.int64)
    step = 100_000
    for s in range(0, len(rows), step):
        r, it = rows[s : s + step], items[s : s + step]
        h = np.diff(prof.indptr)[r]
        if h.sum() == 0 or len(sim_keys) == 0:
            continue
        pair = np.repeat(np.arange(len(r)), h)
        first = np.cumsum(h) - h
        pos = np.repeat(prof.indptr[r], h) + (np.arange(h.sum()) - np.repeat(first, h))
        hist = prof.indices[pos].astype(np.int64)
        keys = hist * n + np.repeat(it, h)
        loc = np.minimum(np.searchsorted(sim_keys, keys), len(sim_keys) - 1)
        value = np.where(sim_keys[loc] == keys, prof.data[pos] * sim.data[loc], 0.0)
        order = np.lexsort((hist, -value, pair))
        has = h > 0
        best = order[first[has]]
        out[s + np.flatnonzero(has)] = np.where(value[best] > 0, hist[best], -1)
    return out
