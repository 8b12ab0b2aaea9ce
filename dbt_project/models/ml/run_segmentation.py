"""Learned customer segments (autoencoder + k-means, or k-means alone when that scores better),
with personas; writes ml.customer_segments and ml.segment_profiles and publishes segment_of().

The library writes its tables and macros itself, atomically; this model returns a one-row run
summary (ml.run_segmentation). Settings come from this model's config in dbt_project.yml; only
the ones that are set are passed, so every default is the library's.
"""


def _k_range(text):
    """The `segments_k_range` var, "lo:hi", as (lo, hi)."""
    lo, hi = (int(x) for x in str(text).split(":"))
    return lo, hi


def model(dbt, session):
    dbt.config(materialized="table")
    dbt.ref("customer_features")  # lineage: run after the features
    from pyprofile.dbt import config_value, run_step
    from pyprofile.flows.segmentation import run_segmentation

    settings = {
        "currency": config_value(dbt.config.get("currency")),
        "k": config_value(dbt.config.get("k"), int),
        "k_range": config_value(dbt.config.get("k_range"), _k_range),
        "epochs": config_value(dbt.config.get("epochs"), int),
        "random_state": config_value(dbt.config.get("random_state"), int),
    }
    options = {name: value for name, value in settings.items() if value is not None}
    return run_step(
        "segmenter",
        "ml.customer_segments, ml.segment_profiles",
        lambda: run_segmentation(session, **options),
        extra=["k"],
        session=session,
    )
