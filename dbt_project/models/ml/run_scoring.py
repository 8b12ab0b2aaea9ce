"""Churn and purchase propensity, P(alive), expected purchases and CLV; writes ml.customer_scores.

Trains on features.customer_training (features at as_of - horizon, labels after) and scores
features.customer_features (at as_of). The library writes its tables and macros itself; this
model returns a one-row run summary (ml.run_scoring). Settings come from this model's config;
only the ones that are set are passed, so every default is the library's.
"""


def model(dbt, session):
    dbt.config(materialized="table")
    dbt.ref("customer_training")  # lineage: run after the feature tables
    dbt.ref("customer_features")
    from pyprofile.dbt import config_value, run_step
    from pyprofile.flows.scoring import run_scoring

    settings = {
        "horizon_days": config_value(dbt.config.get("horizon_days"), int),
        "currency": config_value(dbt.config.get("currency")),
        "random_state": config_value(dbt.config.get("random_state"), int),
    }
    options = {name: value for name, value in settings.items() if value is not None}
    return run_step(
        "customer_scores",
        "ml.customer_scores",
        lambda: run_scoring(session, **options),
        session=session,
    )
