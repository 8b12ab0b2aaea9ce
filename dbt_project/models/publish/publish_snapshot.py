"""Publish the snapshot that BI tools and `pyprofile report` read: a consistent, checkpointed
copy of this warehouse next to it, <dir>/<stem>.published/<name>, swapped in atomically.

Runs last in `dbt build`: it refs the marts and every ml step, so it runs only after they and
their tests pass (a failed build leaves the previous snapshot in place). Readers open the
snapshot read-only and never block a run. This model's own run log is left out of the copy.
The `snapshot_schemas` var (config `schemas`) limits the schemas copied; default: all.
"""


def _names(text):
    """A list var as rendered into config ("['features', 'ml']") or "features,ml"."""
    if isinstance(text, list | tuple):
        return tuple(text)
    return tuple(n.strip(" '\"") for n in str(text).strip("[]").split(",") if n.strip(" '\""))


def model(dbt, session):
    dbt.config(materialized="table")
    dbt.ref("customer_profiles")  # lineage: publish after the marts and every ml step
    dbt.ref("segment_summary")
    dbt.ref("published_macros")
    dbt.ref("run_synthesizer")
    dbt.ref("run_segmentation")
    dbt.ref("run_scoring")
    dbt.ref("run_recommendations")
    from pyprofile.dbt import config_value
    from pyprofile.warehouse.snapshot import publish_snapshot

    schemas = config_value(dbt.config.get("schemas"), _names)
    published = publish_snapshot(
        session, schemas=schemas, exclude=[f"{dbt.this.schema}.{dbt.this.identifier}"]
    )
    return published.to_arrow()
