"""Customer sequence embeddings as extra inputs of the propensity and segmentation flows.

``run_scoring(..., sequences=...)`` and ``run_segmentation(..., sequences=...)`` take a table of
every customer's events (customer_id, product_id, event_at, optionally event_type) and, point
in time, add the embedding of each customer's history (``embedding_00``...) to the features:

* a :class:`~pyprofile.models.sequence.SequenceRecommender` is fitted only on the events on or
  before the date the features describe (the churn training set's cutoff, after which the
  label window starts; the segmentation's as_of), and each customer is embedded from their
  events up to that date;
* the churn scores at as_of use that same sequence model on the events up to as_of.

Off by default, decided by measurement (``benchmarks/results/sequence.md``, demo warehouse,
3,000 customers, 3 seeds): churn ROC AUC 0.974 -> 0.976, no gain (lower on one seed); segment
ARI against the demo's hidden types 0.742 -> 0.842, a clear gain on that one generated data
set, but it costs a sequence-model fit per run and the SQL segment functions, and is not yet
measured on data shaped differently from the demo. The table must hold whole histories: one
that keeps only each customer's latest events up to as_of (such as
``features.customer_event_sequences``, whose ``event_count`` exceeds its rows) is refused,
because the part before an earlier cutoff would then depend on the events after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from pyprofile.errors import InputError
from pyprofile.flows.publish import ModelEntry, observation_date, read_events
from pyprofile.models.sequence import SequenceRecommender
from pyprofile.models.sequence_data import ITEM, TIME, USER
from pyprofile.warehouse.engine import Warehouse
from pyprofile.warehouse.sql import qualified, quote

EMBEDDING_PREFIX = "embedding_"


def embedding_columns(columns: Any) -> list[str]:
    """The embedding columns among ``columns``."""
    return [c for c in columns if str(c).startswith(EMBEDDING_PREFIX)]


def read_history(wh: Warehouse, table: str) -> pd.DataFrame:
    """Every event of ``table`` (customer_id, product_id, event_at as timestamp, event_type
    when present); a table truncated to each customer's latest events is refused."""
    columns = wh.require(table, [USER, ITEM, "event_at"])
    if "event_count" in columns:
        truncated = wh.scalar(
            f"select count(*) from (select {quote(USER)}, max({quote('event_count')}) as n, "
            f"count(*) as kept from {qualified(table)} group by {quote(USER)}) as t "
            "where n > kept"
        )
        if truncated:
            raise InputError(
                f"table {table} keeps only the latest events of {truncated} customer(s) "
                "(event_count above their rows): their history before a cutoff would depend on "
                "later events; give a table with every event"
            )
    return read_events(wh, table)


def until(events: pd.DataFrame, day: date) -> pd.DataFrame:
    """The events on or before ``day`` (by calendar date, as the dbt features count)."""
    return events[events[TIME].dt.normalize() <= pd.Timestamp(day)]


@dataclass
class Embedder:
    """A sequence model fitted on the events up to ``fitted_until``, and where they came from."""

    model: SequenceRecommender
    table: str
    fitted_until: date

    def at(self, events: pd.DataFrame, day: date, customers: Any, id_column: str) -> pd.DataFrame:
        """``id_column`` and the embeddings of ``customers`` from their events up to ``day``
        (customers without any get the empty history's)."""
        ids = pd.Series(customers).to_numpy()
        known = events[events[USER].isin(ids)]
        frame = self.model.embed(ids, events=until(known, day))
        return frame.rename(columns={USER: id_column})

    def entry(self, name: str) -> ModelEntry:
        """The registry entry of the sequence model (its settings and training record)."""
        params = {
            key: value
            for key, value in self.model.get_params().items()
            if value is None or np.isscalar(value)
        }
        params.update(sequences=self.table, fitted_until=str(self.fitted_until))
        metrics = {
            "validation_ndcg@10": self.model.validation_ndcg_,
            "best_step": self.model.best_step_,
        }
        return ModelEntry(name, self.model.to_artifact(), params, metrics)


def fit_embedder(
    events: pd.DataFrame, day: date, table: str, params: dict[str, Any] | None, random_state: int
) -> Embedder:
    """A sequence model fitted only on ``events`` on or before ``day``."""
    settings = {"random_state": random_state, **(params or {})}
    try:
        model = SequenceRecommender(**settings).fit(until(events, day))
    except InputError as exc:
        raise InputError(f"table {table}, events up to {day}: {exc}") from exc
    return Embedder(model, table, day)


def feature_date(wh: Warehouse, table: str, what: str) -> date:
    """The as_of_date of ``table`` (the date its ``what`` describe); none is an error."""
    day = observation_date(wh, table)
    if day is None:
        raise InputError(
            f"table {table} has no as_of_date: sequence embeddings need the date its {what} "
            "describe, to use only the events up to it"
        )
    return day
