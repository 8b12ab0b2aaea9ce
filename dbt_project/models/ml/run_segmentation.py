"""Learned customer segments (autoencoder + k-means, or k-means alone when that scores better),
with personas; writes ml.customer_segments and ml.segment_profiles and publishes segment_of().

The library writes its tables and macros itself, atomically; this model returns a one-row run
summary (ml.run_segmentation). Settings come from this model's config in dbt_project.yml.
"""


def model(dbt, session):
    dbt.config(materialized="table")
    dbt.ref("customer_features")  # lineage: run after the features
    from pyprofile.dbt import config_value as _value
    from pyprofile.dbt import run_step
    from pyprofile.flows.segmentation import run_segmentation

    k_range = _value(dbt.config.get("k_range")) or "3:12"
    lo, hi = (int(x) for x in k_range.split(":"))
    epochs = _value(dbt.config.get("epochs"), int)
    return run_step(
        "segmenter",
        "ml.customer_segments, ml.segment_profiles",
        lambda: run_segmentation(
            session,
            "features.customer_features",
            k=_value(dbt.config.get("k"), int),
            k_range=(lo, hi),
            random_state=_value(dbt.config.get("random_state"), int) or 0,
            **({"epochs": epochs} if epochs else {}),
        ),
        extra=["k"],
    )
