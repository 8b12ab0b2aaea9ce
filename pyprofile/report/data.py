"""The warehouse queries behind the report: the data of each section, as DataFrames and dicts.

Values are bound as ``?`` parameters, identifiers go through :mod:`pyprofile.warehouse.sql`
and table names come from :mod:`pyprofile.warehouse.tables`. Aggregations (counts, means, the
RFM grid, per-group recommendations) run in SQL over whole tables; distributions are read
from a seeded sample of at most ``sample_rows`` rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pyprofile.errors import PyprofileError, WarehouseError
from pyprofile.warehouse import tables
from pyprofile.warehouse.engine import Warehouse
from pyprofile.warehouse.registry import ModelRecord, load_model
from pyprofile.warehouse.sql import qualified, quote

# the CLI command that writes each table
MAKERS = {
    tables.FEATURES: "features",
    tables.SEGMENTS: "segment",
    tables.SYNTHETIC: "synth",
    tables.SCORES: "score",
    tables.RECOMMENDATIONS: "recommend",
}
PRODUCT_TABLES = (tables.PRODUCTS, tables.RAW_PRODUCTS)
# Columns compared between real and synthetic customers, in order of preference.
SYNTH_NUMERIC = (
    "recency_days",
    "order_count",
    "monetary_amount",
    "avg_order_amount",
    "tenure_days",
    "age",
    "session_count",
    "return_rate",
    "discount_share",
)
SYNTH_CATEGORICAL = ("rfm_segment", "region", "channel", "income_band", "gender")
SAMPLE_KEYS = ("customer_id", "synthetic_id")  # a row key to sample on, when the table has one
AT_RISK = 0.5  # churn probability from which a customer counts as at risk
REASONS_SHOWN = 8
TOP_RANK = 3  # recommendations counted: each customer's top 3
TOP_PRODUCTS = 5  # products shown per group
# per-segment means shown on the persona cards: table -> (column, label)
SEGMENT_STATS = {
    tables.FEATURES: (("monetary_amount", "avg spend"), ("order_count", "avg orders")),
    tables.SCORES: (("churn_probability", "churn risk"), ("clv_12m", "avg 12m value")),
}
LIFT_COLUMNS = (
    "bin",
    "customers",
    "positives",
    "rate",
    "lift",
    "cumulative_lift",
    "cumulative_gain",
)
CALIBRATION_COLUMNS = ("bin", "lower", "upper", "customers", "mean_predicted", "observed_rate")


class Skip(Exception):
    """Raised when a section cannot be drawn; the message is shown in its place."""


# --------------------------------------------------------------------------- access
class Source:
    """Warehouse access with the lookups several sections share."""

    def __init__(self, wh: Warehouse, *, sample_rows: int, random_state: int):
        self.wh = wh
        self.sample_rows = int(sample_rows)
        self.random_state = int(random_state)
        self._exists: dict[str, bool] = {}
        self._segments: pd.DataFrame | None = None

    def exists(self, name: str) -> bool:
        if name not in self._exists:
            self._exists[name] = self.wh.exists(name)
        return self._exists[name]

    def has(self, name: str, *columns: str) -> bool:
        """Whether the table exists with all of ``columns``."""
        return self.exists(name) and set(columns) <= set(self.wh.columns(name))

    def need(self, name: str, columns: Sequence[str] = ()) -> dict[str, str]:
        """The table's columns, or skip the section saying which table/column is missing."""
        if not self.exists(name):
            hint = f" (run `pyprofile {MAKERS[name]}` or `pyprofile run`)" if name in MAKERS else ""
            raise Skip(f"table {name} does not exist yet{hint}")
        cols = self.wh.columns(name)
        missing = [c for c in columns if c not in cols]
        if missing:
            raise Skip(f"table {name} has no column {', '.join(missing)}")
        if self.wh.count(name) == 0:
            raise Skip(f"table {name} is empty")
        return cols

    def frame(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        return self.wh.query(sql, params).to_pandas()

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        return self.wh.scalar(sql, params)

    def sample(self, name: str, columns: Sequence[str]) -> tuple[pd.DataFrame, int]:
        """Up to ``sample_rows`` rows and the table's row count.

        The sample is the rows with the smallest hash of (``random_state``, row key): seeded,
        the same whatever the number of threads, and not clumped on the sampled values."""
        total = self.wh.count(name)
        sql = f"select {', '.join(quote(c) for c in columns)} from {qualified(name)}"
        if total <= self.sample_rows:
            return self.frame(sql), total
        table_columns = list(self.wh.columns(name))
        keys = [k for k in SAMPLE_KEYS if k in table_columns][:1] or table_columns
        order = ", ".join(quote(k) for k in keys)
        sql += f" order by hash(cast(? as bigint), {order}) limit ?"
        return self.frame(sql, [self.random_state, self.sample_rows]), total

    def segments(self) -> pd.DataFrame:
        """segment_id, segment_name, customers per learned segment (ordered by id); may be empty."""
        if self._segments is None:
            self._segments = pd.DataFrame(columns=["segment_id", "segment_name", "customers"])
            if self.has(tables.SEGMENTS, "segment_id", "segment_name"):
                self._segments = self.frame(
                    "select segment_id, min(segment_name) as segment_name, count(*) as customers "
                    f"from {qualified(tables.SEGMENTS)} group by segment_id order by segment_id"
                )
        return self._segments

    def version(self, name: str) -> str | None:
        """The table's latest ``model_version`` (None without one)."""
        if not self.has(name, "model_version"):
            return None
        return self.scalar(f"select max(model_version) from {qualified(name)}")


# --------------------------------------------------------------------------- header
def key_numbers(src: Source) -> dict[str, Any]:
    """The header's raw numbers, those the tables have: customers, revenue, buyers, as_of,
    segments (None without learned segments) and clv_12m (predicted 12-month value)."""
    out: dict[str, Any] = {}
    features = qualified(tables.FEATURES)
    if src.exists(tables.FEATURES):
        cols = src.wh.columns(tables.FEATURES)
        out["customers"] = src.wh.count(tables.FEATURES)
        if "monetary_amount" in cols:
            out["revenue"] = float(src.scalar(f"select sum(monetary_amount) from {features}") or 0)
        if "has_purchased" in cols:
            out["buyers"] = int(src.scalar(f"select count(*) from {features} where has_purchased"))
        if "as_of_date" in cols:
            out["as_of"] = src.scalar(f"select max(as_of_date) from {features}")
    out["segments"] = len(src.segments()) or None
    if src.has(tables.SCORES, "clv_12m"):
        clv = src.scalar(f"select sum(clv_12m) from {qualified(tables.SCORES)}")
        out["clv_12m"] = float(clv or 0.0)
    return out


def model_versions(src: Source) -> list[tuple[str, str]]:
    """(table, model version) of each ml table that carries one."""
    names = (tables.SEGMENTS, tables.SYNTHETIC, tables.SCORES, tables.RECOMMENDATIONS)
    return [(name, v) for name in names if (v := src.version(name)) is not None]


# --------------------------------------------------------------------------- segments
def segment_sizes(src: Source) -> pd.DataFrame:
    """segment_id, segment_name, customers of each learned segment."""
    src.need(tables.SEGMENTS, ["customer_id", "segment_id", "segment_name"])
    return src.segments()


def segment_profiles(src: Source) -> pd.DataFrame:
    """ml.segment_profiles ordered by segment id (empty when it is missing)."""
    if not src.has(tables.SEGMENT_PROFILES, "segment_id"):
        return pd.DataFrame()
    return src.frame(f"select * from {qualified(tables.SEGMENT_PROFILES)} order by segment_id")


def segment_stats(src: Source) -> pd.DataFrame:
    """Mean spend, orders, churn probability and CLV per segment, from the tables present;
    columns are segment_id and the labels of :data:`SEGMENT_STATS`."""
    selects, joins = [], []
    for i, (table, wanted) in enumerate(SEGMENT_STATS.items()):
        if not src.has(table, "customer_id"):
            continue
        cols = src.wh.columns(table)
        alias = quote(f"t{i}")
        selects += [
            f"avg({alias}.{quote(c)}) as {quote(label)}" for c, label in wanted if c in cols
        ]
        joins.append(f"left join {qualified(table)} {alias} using (customer_id)")
    if not selects:
        return pd.DataFrame(columns=["segment_id"])
    return src.frame(
        f"select s.segment_id, {', '.join(selects)} from {qualified(tables.SEGMENTS)} s "
        f"{' '.join(joins)} group by s.segment_id"
    )


def map_points(src: Source) -> tuple[pd.DataFrame, int]:
    """A sample of segment_id, segment_name, map_x, map_y (ordered by segment) and the count."""
    src.need(tables.SEGMENTS, ["segment_name", "map_x", "map_y"])
    data, total = src.sample(tables.SEGMENTS, ["segment_id", "segment_name", "map_x", "map_y"])
    data = data.dropna(subset=["map_x", "map_y"]).sort_values("segment_id", kind="stable")
    if data.empty:
        raise Skip(f"table {tables.SEGMENTS} has no map coordinates")
    return data, total


# --------------------------------------------------------------------------- RFM
def rfm_grid(
    frame: pd.DataFrame,
    *,
    r: str = "r_score",
    f: str = "f_score",
    m: str = "monetary_amount",
) -> pd.DataFrame:
    """Customers and mean spend per (recency score, frequency score) cell; rows without scores
    (customers who never bought) are left out. Columns: r_score, f_score, customers, mean_spend.

    The pandas reference of :func:`rfm_cells`, which computes the same in SQL."""
    data = frame[[r, f, m]].dropna(subset=[r, f])
    grid = (
        data.groupby([r, f])
        .agg(customers=(m, "size"), mean_spend=(m, "mean"))
        .reset_index()
        .rename(columns={r: "r_score", f: "f_score"})
    )
    grid[["r_score", "f_score"]] = grid[["r_score", "f_score"]].astype("int64")
    return grid.sort_values(["r_score", "f_score"], ignore_index=True)


def rfm_cells(src: Source) -> pd.DataFrame:
    """The RFM grid of the feature table (see :func:`rfm_grid`), in SQL."""
    src.need(tables.FEATURES, ["r_score", "f_score", "monetary_amount"])
    grid = src.frame(
        "select cast(r_score as integer) as r_score, cast(f_score as integer) as f_score, "
        "count(*) as customers, avg(monetary_amount) as mean_spend "
        f"from {qualified(tables.FEATURES)} where r_score is not null and f_score is not null "
        "group by 1, 2 order by 1, 2"
    )
    if grid.empty:
        raise Skip(f"table {tables.FEATURES} has no customer with R and F scores (no purchases)")
    return grid


def rfm_segments(src: Source) -> pd.DataFrame:
    """rfm_segment, customers, mean_spend, largest first (empty without the column)."""
    if not src.has(tables.FEATURES, "rfm_segment", "monetary_amount"):
        return pd.DataFrame(columns=["rfm_segment", "customers", "mean_spend"])
    return src.frame(
        "select rfm_segment, count(*) as customers, avg(monetary_amount) as mean_spend "
        f"from {qualified(tables.FEATURES)} where rfm_segment is not null "
        "group by 1 order by 2 desc, 1"
    )


# --------------------------------------------------------------------------- synthetic
@dataclass(frozen=True)
class SyntheticSample:
    """Samples of real and synthetic customers over the compared columns."""

    real: pd.DataFrame
    synthetic: pd.DataFrame
    numeric: list[str]
    categorical: list[str]


def synthetic_sample(src: Source) -> SyntheticSample:
    """Up to 6 numeric and 3 categorical columns that both tables have, sampled from each."""
    scols = src.need(tables.SYNTHETIC)
    fcols = src.need(tables.FEATURES)
    numeric = [c for c in SYNTH_NUMERIC if c in scols and c in fcols][:6]
    categorical = [c for c in SYNTH_CATEGORICAL if c in scols and c in fcols][:3]
    if not numeric and not categorical:
        raise Skip(f"{tables.SYNTHETIC} and {tables.FEATURES} share none of the compared columns")
    real, _ = src.sample(tables.FEATURES, numeric + categorical)
    synthetic, _ = src.sample(tables.SYNTHETIC, numeric + categorical)
    return SyntheticSample(real, synthetic, numeric, categorical)


def synthetic_quality(src: Source) -> pd.DataFrame | None:
    """The latest synthetic run's rows of ml.synthetic_quality (None when there are none)."""
    if not src.exists(tables.SYNTHETIC_QUALITY):
        return None
    q = src.frame(f"select * from {qualified(tables.SYNTHETIC_QUALITY)}")
    if q.empty:
        return None
    if "created_at" in q.columns and "model_version" in q.columns:
        latest = q.sort_values("created_at")["model_version"].iloc[-1]
        q = q[q["model_version"] == latest]
    return q


# --------------------------------------------------------------------------- churn
def churn_probabilities(src: Source) -> tuple[np.ndarray, int]:
    """A sample of churn probabilities and the number of scored customers."""
    src.need(tables.SCORES, ["customer_id", "churn_probability"])
    data, total = src.sample(tables.SCORES, ["churn_probability"])
    p = pd.to_numeric(data["churn_probability"], errors="coerce").dropna().to_numpy(dtype=float)
    if p.size == 0:
        raise Skip(f"table {tables.SCORES} has no churn probability")
    return p, total


def at_risk_customers(src: Source) -> int:
    """Customers whose churn probability is at least :data:`AT_RISK`."""
    sql = f"select count(*) from {qualified(tables.SCORES)} where churn_probability >= ?"
    return int(src.scalar(sql, [AT_RISK]))


def churn_reasons(src: Source) -> pd.DataFrame:
    """reason, customers: the main churn reason of at-risk customers, most frequent first."""
    if not src.has(tables.SCORES, "churn_reason_1"):
        return pd.DataFrame(columns=["reason", "customers"])
    return src.frame(
        "select churn_reason_1 as reason, count(*) as customers "
        f"from {qualified(tables.SCORES)} "
        "where churn_probability >= ? and churn_reason_1 is not null "
        "group by 1 order by 2 desc, 1 limit ?",
        [AT_RISK, REASONS_SHOWN],
    )


@dataclass(frozen=True)
class ChurnEvaluation:
    """The churn model's held-out lift and calibration tables as saved when it was trained
    (None when the registry lacks them), and a note saying where they come from or why not."""

    lift: pd.DataFrame | None
    calibration: pd.DataFrame | None
    note: str


def churn_evaluation(src: Source) -> ChurnEvaluation:
    """The lift and calibration tables of the churn model that scored ml.customer_scores.

    The table's ``model_version`` names a ``customer_scores`` bundle in the registry, whose
    ``params["components"]["churn"]`` is the churn model's version; its ``metrics`` hold the
    tables, computed on the model's own held-out split at training time."""
    if not src.exists(tables.REGISTRY):
        return ChurnEvaluation(None, None, f"No lift chart: {tables.REGISTRY} does not exist.")
    try:
        record = churn_record(src)
    except PyprofileError as exc:
        return ChurnEvaluation(None, None, f"No lift chart: {exc}.")
    lift = _stored_table(record.metrics.get("lift_table"), LIFT_COLUMNS)
    calibration = _stored_table(record.metrics.get("calibration_table"), CALIBRATION_COLUMNS)
    where = f"churn model {record.version} in {tables.REGISTRY}"
    notes = [
        f"No {what}: {where} has no {key} (retrain it with `pyprofile score`)."
        for what, key, table in (
            ("lift chart", "lift_table", lift),
            ("calibration plot", "calibration_table", calibration),
        )
        if table is None
    ]
    if lift is not None or calibration is not None:
        held_out = int((lift if lift is not None else calibration)["customers"].sum())
        source = record.params.get("training_table", "the training table")
        label = record.params.get("label", "churned")
        notes.insert(
            0,
            f"Measured when churn model {record.version} was trained, on its {held_out:,} "
            f"held-out customers of {source} (label {label}).",
        )
    return ChurnEvaluation(lift, calibration, " ".join(notes))


def churn_record(src: Source) -> ModelRecord:
    """The registry record of the churn model behind ml.customer_scores."""
    return component_record(src, "churn", tables.CHURN_MODEL)


def component_record(src: Source, component: str, model: str) -> ModelRecord:
    """The registry record of one model of the scoring bundle behind ml.customer_scores."""
    bundle = load_model(src.wh, tables.SCORES_MODEL, src.version(tables.SCORES))
    components = bundle.params.get("components")
    version = components.get(component) if isinstance(components, dict) else None
    if not isinstance(version, str):
        raise WarehouseError(
            f"scoring bundle {bundle.version} in {tables.REGISTRY} names no {component} model"
        )
    return load_model(src.wh, model, version)


def segment_selection(src: Source) -> tuple[dict[str, Any] | None, str]:
    """How the segments behind ml.customer_segments were chosen against the k-means baseline,
    as stored when the segmenter was trained; and a note saying so (or why it is missing)."""
    if not src.exists(tables.REGISTRY):
        return None, f"No model selection: {tables.REGISTRY} does not exist."
    try:
        record = load_model(src.wh, tables.SEGMENTER_MODEL, src.version(tables.SEGMENTS))
    except PyprofileError as exc:
        return None, f"No model selection: {exc}."
    chosen = record.metrics.get("baseline_comparison")
    if not isinstance(chosen, dict):
        return None, (
            f"No model selection: segmenter {record.version} predates it "
            "(retrain with `pyprofile segment`)."
        )
    return chosen, (
        f"Measured when segmenter {record.version} was trained, on {chosen['sample_rows']:,} "
        f"customers in the {chosen['space']} space; stability = mean ARI between bootstrap "
        "refits. The baseline is k-means on the same scaled features at the same k."
    )


LIFETIME_CHECK_COLUMNS = ("frequency", "customers", "predicted", "actual")


def lifetime_checks(src: Source) -> tuple[pd.DataFrame | None, list[str]]:
    """BG/NBD's holdout calibration per frequency (predicted vs actual purchases in the label
    window, stored when it was fitted) and the scoring bundle's assumption checks in words."""
    if not src.exists(tables.REGISTRY) or not src.exists(tables.SCORES):
        return None, []
    try:
        bundle = load_model(src.wh, tables.SCORES_MODEL, src.version(tables.SCORES))
        record = component_record(src, "bgnbd", tables.BGNBD_MODEL)
    except PyprofileError as exc:
        return None, [f"No BG/NBD check: {exc}."]
    table = _stored_table(record.metrics.get("calibration_table"), LIFETIME_CHECK_COLUMNS)
    notes = [str(n) for n in bundle.params.get("diagnostics") or []]
    return table, notes


def _stored_table(records: Any, columns: Sequence[str]) -> pd.DataFrame | None:
    """A table saved in a model's metrics (a list of records), or None when it is absent or
    lacks one of ``columns``."""
    if not isinstance(records, list) or not records:
        return None
    if not all(isinstance(r, dict) and set(columns) <= set(r) for r in records):
        return None
    return pd.DataFrame.from_records(records, columns=list(columns))


# --------------------------------------------------------------------------- steps
def pipeline_steps(src: Source) -> list[dict[str, Any]]:
    """Every ml step's run log (status, rows, version, why it or a part was skipped)."""
    steps = []
    for step, log in tables.RUN_LOGS.items():
        if not src.exists(log):
            steps.append({"step": step, "status": "not run", "message": f"no {log}"})
            continue
        row = src.frame(
            f"select status, rows_written, model_version, message from {qualified(log)}"
        ).iloc[0]
        steps.append({"step": step, **row.to_dict()})
    return steps


# --------------------------------------------------------------------------- CLV
def clv_values(src: Source) -> tuple[np.ndarray, np.ndarray]:
    """A sample of 12-month values, and of P(alive) of repeat buyers only: BG/NBD gives 1 to
    every customer without a repeat purchase, which says nothing about them (empty when the
    column or the features' ``frequency`` is missing)."""
    cols = src.need(tables.SCORES, ["clv_12m"])
    data, _ = src.sample(tables.SCORES, ["clv_12m"])
    clv = pd.to_numeric(data["clv_12m"], errors="coerce").dropna().to_numpy(dtype=float)
    if clv.size == 0:
        raise Skip(f"table {tables.SCORES} has no CLV values (no customer with purchases)")
    alive = np.array([])
    if "p_alive" in cols and src.has(tables.FEATURES, "customer_id", "frequency"):
        repeat = src.frame(
            f"select s.p_alive from {qualified(tables.SCORES)} s "
            f"join {qualified(tables.FEATURES)} f using (customer_id) "
            "where f.frequency > 0 and s.p_alive is not null "
            "order by hash(cast(? as bigint), s.customer_id) limit ?",
            [src.random_state, src.sample_rows],
        )
        alive = repeat["p_alive"].to_numpy(dtype=float)
    return clv, alive


def one_time_buyers(src: Source) -> tuple[int, int] | None:
    """(customers whose only purchases fall on one day, customers with purchases), or None."""
    if not src.has(tables.FEATURES, "frequency"):
        return None
    row = src.frame(
        "select count(*) filter (where frequency = 0) as once, count(frequency) as buyers "
        f"from {qualified(tables.FEATURES)}"
    ).iloc[0]
    return int(row["once"]), int(row["buyers"])


def clv_totals(src: Source) -> dict[str, float]:
    """total, mean, median of clv_12m over all customers, and the customers missing one."""
    row = src.frame(
        "select sum(clv_12m) as total, avg(clv_12m) as mean, median(clv_12m) as median, "
        f"count(*) - count(clv_12m) as missing from {qualified(tables.SCORES)}"
    ).iloc[0]
    return {k: float(v) for k, v in row.items()}


# --------------------------------------------------------------------------- recommendations
@dataclass(frozen=True)
class Grouping:
    """How recommended customers are grouped: ``kind`` is "segment", "rfm" or "all"."""

    kind: str
    expression: str
    join: str
    params: tuple[Any, ...]


def recommendation_grouping(src: Source) -> Grouping:
    """Learned segments when there are any, else named RFM segments, else everyone."""
    if len(src.segments()):
        join = f"left join {qualified(tables.SEGMENTS)} s using (customer_id)"
        return Grouping("segment", "coalesce(s.segment_name, ?)", join, ("unsegmented",))
    if src.has(tables.FEATURES, "rfm_segment"):
        join = f"left join {qualified(tables.FEATURES)} f using (customer_id)"
        return Grouping("rfm", "coalesce(f.rfm_segment, ?)", join, ("no purchase",))
    return Grouping("all", "cast(? as varchar)", "", ("all customers",))


def top_recommendations(src: Source, grouping: Grouping) -> pd.DataFrame:
    """grp, product_id, customers, total, label: per group, the products most often in its
    customers' top 3 (total: the group's customers with recommendations)."""
    src.need(tables.RECOMMENDATIONS, ["customer_id", "product_id", "rank"])
    top = src.frame(
        f"with r as (select r.customer_id, r.product_id, {grouping.expression} as grp "
        f"from {qualified(tables.RECOMMENDATIONS)} r {grouping.join} where r.rank <= ?), "
        "c as (select grp, product_id, count(*) as customers from r group by 1, 2), "
        "t as (select grp, count(distinct customer_id) as total from r group by 1) "
        "select c.grp, c.product_id, c.customers, t.total from c join t using (grp) "
        "qualify row_number() over (partition by c.grp order by c.customers desc, "
        "cast(c.product_id as varchar)) <= ? order by c.grp, c.customers desc",
        [*grouping.params, TOP_RANK, TOP_PRODUCTS],
    )
    if top.empty:
        raise Skip(f"table {tables.RECOMMENDATIONS} has no rows with rank <= {TOP_RANK}")
    labels = product_labels(src, list(top["product_id"].unique()))
    top["label"] = [labels.get(p, str(p)) for p in top["product_id"]]
    return top


EVALUATION_COLUMNS = ("model", "selection_ndcg@10", "held_out_ndcg", "held_out_recall", "chosen")
_METRIC_KEYS = {"ndcg@10", "recall@10", "coverage", "users", "skipped"}


@dataclass(frozen=True)
class RecommenderEvaluation:
    """The recommender behind ml.recommendations against its baselines, as stored when it was
    trained: one row per model (:data:`EVALUATION_COLUMNS`; ``k`` of the held-out columns),
    and notes saying where the numbers come from or why there are none."""

    table: pd.DataFrame | None
    k: int | None
    notes: list[str]


def recommender_evaluation(src: Source) -> RecommenderEvaluation:
    """Every candidate's NDCG@10 on auto's inner time split (the selection, the sequence model
    among them when it was a candidate) and the held-out NDCG@k / Recall@k of the chosen model
    and of popularity, from the registry record of the recommender that wrote
    ml.recommendations; plus the sequence model behind ml.customer_embeddings, when it ran."""
    if not src.exists(tables.REGISTRY):
        return RecommenderEvaluation(None, None, [f"No comparison: {tables.REGISTRY} is missing."])
    try:
        record = load_model(src.wh, tables.RECOMMENDER_MODEL, src.version(tables.RECOMMENDATIONS))
    except PyprofileError as exc:
        return RecommenderEvaluation(None, None, [f"No comparison: {exc}."])
    metrics, chosen = record.metrics, record.params.get("selected_method")
    found = [key.split("@")[1] for key in metrics if key.startswith("model_ndcg@")]
    k = int(found[0]) if found else None
    rows = [_candidate_row(v) for v in metrics.get("validation") or [] if isinstance(v, dict)]
    for name in (chosen, "popularity"):
        if name and not any(r["model"].split(" ")[0] == name for r in rows):
            rows.append({"model": name, "selection_ndcg@10": None})
    best = _chosen_index(rows, chosen)
    for i, row in enumerate(rows):
        held = "model" if i == best else "popularity" if row["model"] == "popularity" else None
        row["held_out_ndcg"] = metrics.get(f"{held}_ndcg@{k}") if held and k else None
        row["held_out_recall"] = metrics.get(f"{held}_recall@{k}") if held and k else None
        row["chosen"] = i == best
    notes = [_evaluation_note(record, k)]
    notes += [
        f"{who}: {metrics[f'{who}_note']}"
        for who in ("model", "popularity")
        if f"{who}_note" in metrics
    ]
    notes += _sequence_note(src)
    table = pd.DataFrame.from_records(rows, columns=list(EVALUATION_COLUMNS))
    return RecommenderEvaluation(table, k, notes)


def _candidate_row(record: dict[str, Any]) -> dict[str, Any]:
    """A validation record as a row: the method with its other settings, its NDCG@10."""
    settings = {key: v for key, v in record.items() if key not in _METRIC_KEYS | {"method"}}
    said = ", ".join(f"{key}={v}" for key, v in settings.items() if not isinstance(v, dict))
    model = str(record.get("method")) + (f" ({said})" if said else "")
    if record.get("skipped"):
        model += f" - skipped: {record['skipped']}"
    return {"model": model, "selection_ndcg@10": record.get("ndcg@10")}


def _chosen_index(rows: list[dict[str, Any]], chosen: str | None) -> int | None:
    """The row of the chosen method (its best selection score when it appears more than once)."""
    mine = [i for i, r in enumerate(rows) if r["model"].split(" ")[0] == chosen]
    if not mine:
        return None
    return max(mine, key=lambda i: rows[i]["selection_ndcg@10"] or -1.0)


def _evaluation_note(record: ModelRecord, k: int | None) -> str:
    test = record.metrics.get("test_interactions")
    held = (
        f"held-out NDCG@{k} and Recall@{k} on each customer's latest interactions "
        f"({test:,} rows), never seen by the selection, for the chosen model and popularity"
        if k and test
        else "no held-out metrics were stored"
    )
    return (
        f"Measured when recommender {record.version} was trained: selection NDCG@10 of every "
        f"candidate on an inner time split of the earlier interactions (auto keeps the best); "
        f"{held}."
    )


def _sequence_note(src: Source) -> list[str]:
    """The sequence model behind ml.customer_embeddings, on its own early-stopping split."""
    version = src.version(tables.CUSTOMER_EMBEDDINGS)
    if version is None:
        return []
    try:
        record = load_model(src.wh, tables.SEQUENCE_MODEL, version)
    except PyprofileError as exc:
        return [f"No sequence model figures: {exc}."]
    score = record.metrics.get("validation_ndcg@10")
    if score is None:
        return []
    return [
        f"Sequence model {record.version} (the customer embeddings): NDCG@10 {score:.3f} on "
        "each training customer's latest event, its own early-stopping split, best at step "
        f"{record.metrics.get('best_step')} (not the split of the table above)."
    ]


def product_labels(src: Source, ids: Sequence[Any]) -> dict[Any, str]:
    """product id -> "id · category · brand" (at most 40 characters) from the product table."""
    for table in PRODUCT_TABLES:
        if not src.has(table, "product_id"):
            continue
        cols = src.wh.columns(table)
        extra = [c for c in ("product_name", "name", "category", "brand") if c in cols]
        select = ", ".join(quote(c) for c in ["product_id", *extra])
        frame = src.frame(f"select {select} from {qualified(table)}")
        frame = frame[frame["product_id"].isin(list(ids))]
        out = {}
        for row in frame.itertuples(index=False):
            parts = [str(row[0])] + [str(v) for v in row[1:] if v is not None and v == v]
            out[row[0]] = " · ".join(parts)[:40]
        return out
    return {}
