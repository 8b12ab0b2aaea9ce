"""Churn and purchase propensity, P(alive), expected purchases and CLV; writes ml.customer_scores.

Trains on features.customer_training (features at as_of - horizon, labels after) and scores
features.customer_features (at as_of). The library writes its tables and macros itself; this
model returns a one-row run summary (ml.run_scoring). Settings come from this model's config.
"""


def model(dbt, session):
    dbt.config(materialized="table")
    dbt.ref("customer_training")  # lineage: run after the feature tables
    dbt.ref("customer_features")
    from pyprofile.dbt import run_step
    from pyprofile.flows.scoring import run_scoring

    return run_step(
        "customer_scores",
        "ml.customer_scores",
        lambda: run_scoring(
            session,
            horizon_days=int(dbt.config.get("horizon_days") or 90),
            random_state=int(dbt.config.get("random_state") or 0),
        ),
    )
