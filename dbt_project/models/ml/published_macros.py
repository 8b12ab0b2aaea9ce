"""Persist the static scoring macros kept as SQL under udfs/ (e.g. ml.rfm_segment) in the
warehouse, so any DuckDB client can call them without Python; returns the list published."""


def model(dbt, session):
    dbt.config(materialized="table")
    import pyarrow as pa

    from pyprofile.dbt import publish_static_functions

    names = publish_static_functions(session)
    return pa.table({"macro": names, "kind": ["static SQL macro (udfs/)"] * len(names)})
