"""The column types of every output table: what BI tools and ODBC/JDBC drivers read.

Outputs use six types only: BIGINT, DOUBLE, VARCHAR, DATE, TIMESTAMP and BOOLEAN — never
HUGEINT, DECIMAL, small integers, or the NULL type DuckDB gives a column that happens to be all
null. :func:`conform` casts a table about to be published: declared columns to their contract
type (so an all-null column still has its type), every other column by the rules of
:func:`bi_type`. Keys keep their source type (an integer customer id stays BIGINT). The model
registry (artifacts as BLOBs) is pyprofile's own and not for BI.
"""

from __future__ import annotations

import pyarrow as pa

from pyprofile.warehouse import tables

BI_TYPES = ("BIGINT", "DOUBLE", "VARCHAR", "DATE", "TIMESTAMP", "BOOLEAN")

_STAMPS = {"model_version": pa.string(), "as_of_date": pa.date32()}
CONTRACTS: dict[str, dict[str, pa.DataType]] = {
    tables.SEGMENTS: {
        "segment_id": pa.int64(),
        "segment_name": pa.string(),
        "distance_to_centroid": pa.float64(),
        "map_x": pa.float64(),
        "map_y": pa.float64(),
        **_STAMPS,
    },
    tables.SEGMENT_PROFILES: {
        "segment_id": pa.int64(),
        "segment_name": pa.string(),
        "size": pa.int64(),
        "share": pa.float64(),
        "description": pa.string(),
        "dominant_rfm_segment": pa.string(),
        "dominant_rfm_share": pa.float64(),
        "favourite_categories": pa.string(),
        "top_features": pa.string(),
        "facts": pa.string(),
        **_STAMPS,
    },
    tables.SCORES: {
        "churn_probability": pa.float64(),
        "purchase_probability": pa.float64(),
        "churn_reason_1": pa.string(),
        "churn_reason_2": pa.string(),
        "churn_reason_3": pa.string(),
        "p_alive": pa.float64(),
        "expected_purchases_90d": pa.float64(),
        "expected_avg_order_value": pa.float64(),
        "clv_12m": pa.float64(),
        **_STAMPS,
    },
    tables.SYNTHETIC: {"synthetic_id": pa.int64(), **_STAMPS},
    tables.RECOMMENDATIONS: {
        "rank": pa.int64(),
        "score": pa.float64(),
        "reason": pa.string(),
        **_STAMPS,
    },
    tables.PRODUCT_SIMILARITIES: {"rank": pa.int64(), "score": pa.float64(), **_STAMPS},
}


def bi_type(arrow_type: pa.DataType) -> pa.DataType:
    """The BI-safe type a column of ``arrow_type`` is written as."""
    t = arrow_type
    if pa.types.is_dictionary(t):
        return bi_type(t.value_type)
    if pa.types.is_boolean(t) or pa.types.is_date32(t) or pa.types.is_float64(t):
        return t
    if pa.types.is_integer(t):
        return pa.int64()
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return pa.float64()
    if pa.types.is_date(t):
        return pa.date32()
    if pa.types.is_timestamp(t):
        return pa.timestamp("us")  # DuckDB TIMESTAMP (naive)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t):
        return pa.string()
    return t  # anything else (lists: embeddings) is written as it is


def conform(name: str, table: pa.Table | pa.RecordBatchReader):
    """``table`` (or a stream of batches) with the contract's types for ``name`` and BI-safe
    types elsewhere."""
    schema = _schema(name, table.schema)
    if isinstance(table, pa.RecordBatchReader):
        if schema.equals(table.schema):
            return table
        batches = (batch.cast(schema) for batch in table)
        return pa.RecordBatchReader.from_batches(schema, batches)
    return table if schema.equals(table.schema) else table.cast(schema)


def _schema(name: str, source: pa.Schema) -> pa.Schema:
    contract = CONTRACTS.get(name, {})
    fields = []
    for field in source:
        target = contract.get(field.name) or bi_type(field.type)
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            target = pa.timestamp("us", tz=field.type.tz)  # keep the zone: TIMESTAMPTZ
        fields.append(pa.field(field.name, target))
    return pa.schema(fields)
